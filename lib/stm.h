/*
 * stm.h - transaction descriptors and the word-level STM used by the
 * allocator and add/run modules.
 */
#ifndef PSTM_STM_H
#define PSTM_STM_H

#include <setjmp.h>

#include "region.h"
#include "tx.h"

/* statistics indexes, in struct slot / proc_entry stats[] */
enum { ST_COMMITS, ST_COMMITS_RO, ST_AB_READ, ST_AB_LOCK, ST_AB_VALIDATE,
       ST_AB_USER, ST_ESCALATIONS, ST_RECOVERIES, ST_COUNT };

struct wentry {
	uint64_t off; /* aligned word offset */
	uint64_t val;
};

struct rentry {
	uint64_t idx; /* orec index */
	uint64_t o;   /* orec value seen (unlocked) */
};

/* tx_on_commit: run after the commit, in order; dropped on abort */
struct tx_hook {
	tx_hook_fn fn;
	void *a, *b;
	struct tx_hook *next;
};

/* One per (thread, open region): this is the pstm_tx users see. */
struct pstm_tx {
	struct pstm_region *r;
	uint32_t slot;
	uint32_t depth;           /* >0 while a transaction runs */
	uint64_t rv;              /* snapshot version */
	uint64_t rv_bound;        /* orec words <= this are within rv */
	sigjmp_buf env;           /* unwinding point of the running attempt */
	int err;                  /* error carried by an unwinding failure */

	struct wentry *ws;        /* write set, in write order */
	uint32_t nws, ws_cap;     /* ws_cap = redo log capacity */
	uint32_t *wtab;           /* open addressing: idx+1 of ws, tagged */
	uint32_t *wtab_epoch;
	uint32_t wtab_mask, epoch;
	uint64_t wbloom;

	struct rentry *rs;        /* read set */
	uint32_t nrs, rs_cap;

	uint64_t *locks;          /* orec indexes we locked at commit */
	uint32_t nlocks;

	struct tx_hook *hooks;    /* tx_on_commit, newest first */

	uint32_t retries;
	bool escalated;
	uint64_t prng;
	uint64_t st[ST_COUNT];    /* totals since the slot was claimed */
	uint32_t st_unflushed;

	struct pstm_tx *next;     /* region's list */
};
typedef struct pstm_tx txd;

HIDDEN void stm_thread_exit(void *tx);
HIDDEN void stm_release_all(struct pstm_region *r);
HIDDEN void stm_count_recovery(struct pstm_region *r);

/* Word access with bounds [lo, heap_hi); lo is heap_off for internal
 * metadata (allocator), heap_lo for user calls. */
HIDDEN uint64_t stm_load(txd *t, uint64_t off, uint64_t lo);
HIDDEN void stm_store(txd *t, uint64_t off, uint64_t v, uint64_t lo);
/* End the running transaction with error @err (unwinds). */
HIDDEN _Noreturn void stm_fail(txd *t, int err);

#endif /* PSTM_STM_H */
