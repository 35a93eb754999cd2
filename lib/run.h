/*
 * run.h - the add/run model: a process-local pending set of transactions
 * and the workers of pstm_run.
 */
#ifndef PSTM_RUN_H
#define PSTM_RUN_H

#include "region.h"

struct addnode;

HIDDEN int run_init(struct pstm_region *r);
HIDDEN void run_fini(struct pstm_region *r);
/* Enqueue (and free) the pstm_tx_add list of a committed transaction. */
HIDDEN void run_enqueue_list(struct pstm_region *r, struct addnode *adds);

#endif /* PSTM_RUN_H */
