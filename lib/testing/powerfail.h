/*
 * powerfail.h - the power-failure simulator of the test build
 * (lib/testing/powerfail.c); flush and drain hooks are in lib/testing.h.
 */
#ifndef PSTM_POWERFAIL_H
#define PSTM_POWERFAIL_H

#include "region.h"

/* Arm from "IMAGE:SEED:ONE_IN" (@v may be NULL: nothing). */
HIDDEN void powerfail_arm(struct pstm_region *r, const char *v);
HIDDEN void powerfail_free(struct pstm_region *r);

#endif /* PSTM_POWERFAIL_H */
