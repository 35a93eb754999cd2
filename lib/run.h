/*
 * run.h - the add/run model: a process-local pending set of transactions
 * and the workers of pstm_run.
 */
#ifndef PSTM_RUN_H
#define PSTM_RUN_H

#include "region.h"

HIDDEN int run_init(struct pstm_region *r);
HIDDEN void run_fini(struct pstm_region *r);

#endif /* PSTM_RUN_H */
