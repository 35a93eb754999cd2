/*
 * checkpoint.h - checkpoints (lib/checkpoint.c).
 */
#ifndef PSTM_CHECKPOINT_H
#define PSTM_CHECKPOINT_H

#include "region.h"

/*
 * Durable and relaxed regions: make written-back data durable and raise
 * the durable horizon above @past, so that records up to seq @past may be
 * reused.  0, or a relaxed region's sticky flush error.
 */
HIDDEN int checkpoint_until(struct pstm_region *r, uint64_t past);

#endif /* PSTM_CHECKPOINT_H */
