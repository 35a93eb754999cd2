/*
 * flush.h - relaxed durability: the working copy's committed records
 * reach the file within flush_ms, in commit order (lib/flush.c).
 */
#ifndef PSTM_FLUSH_H
#define PSTM_FLUSH_H

#include "region.h"

/* Start this process's flush thread (relaxed regions; 0 otherwise). */
HIDDEN int flush_start(struct pstm_region *r);
/* Stop it and make everything committed durable; returns 0 or the
 * region's sticky flush error.  No-op (0) on other regions. */
HIDDEN int flush_stop(struct pstm_region *r);
/* A committer's ring is full: flush and checkpoint until the working
 * copy's horizon passes @past. */
HIDDEN int flush_checkpoint(struct pstm_region *r, uint64_t past);
/* pstm_sync: wait until every commit so far is durable in the file;
 * 0 at once on other regions, or the sticky flush error. */
HIDDEN int flush_sync(struct pstm_region *r);

#endif /* PSTM_FLUSH_H */
