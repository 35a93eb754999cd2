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
/*
 * A commit of this process took its seq (seq_cst): tell the flush thread
 * if it asked (lib/flush.c, "checks").  One load on the commit path; the
 * exchange and, for a sleeping thread, one eventfd write, only at the
 * first commit after the thread asked.
 */
enum { FLUSH_WATCH_OFF, FLUSH_WATCH_NOTE, FLUSH_WATCH_SLEEP };
HIDDEN void flush_commit_seen(struct pstm_region *r);
static inline void flush_note_commit(struct pstm_region *r)
{
	_Atomic int *w = r->flush_watch;
	if (w && __builtin_expect(atomic_load_explicit(w, memory_order_seq_cst) !=
					  FLUSH_WATCH_OFF, 0))
		flush_commit_seen(r);
}
/* pstm_sync: wait until every commit so far is durable in the file;
 * 0 at once on other regions, or the sticky flush error. */
HIDDEN int flush_sync(struct pstm_region *r);

#endif /* PSTM_FLUSH_H */
