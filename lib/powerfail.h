/*
 * powerfail.h - power-failure simulation for tests (see powerfail.c).
 */
#ifndef PSTM_POWERFAIL_H
#define PSTM_POWERFAIL_H

#include "region.h"

HIDDEN void powerfail_arm(struct pstm_region *r);   /* at open, from env */
HIDDEN void powerfail_flush(struct pstm_region *r, const void *p, size_t n);
HIDDEN void powerfail_drain(struct pstm_region *r);
HIDDEN void powerfail_free(struct pstm_region *r);

#endif
