/*
 * stm.h - the transaction layer's private header: the descriptor (struct
 * pstm_tx) and the calls between lib/txd.c, lib/stm.c and lib/commit.c.
 * Layers above use lib/tx.h instead.
 */
#ifndef PSTM_STM_H
#define PSTM_STM_H

#include <setjmp.h>

#include "conflict.h"
#include "region.h"
#include "tx.h"

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

/*
 * The unwinding point of a running attempt (lib/driver.c sets it; lib/
 * stm.c's aborts and failures jump to it).  GCC's __builtin_setjmp keeps
 * only the frame, stack and resume address: the compiler saves the
 * setting function's registers itself.  It costs ~5 instructions against
 * sigsetjmp's ~27 (glibc mangles eight registers, then calls
 * __sigjmp_save), on every transaction.  Its longjmp carries no value, so
 * the reason goes in t->jump.  Sanitizer builds keep sigsetjmp: ASan and
 * TSan intercept siglongjmp to forget the frames it skips, and know
 * nothing of the builtin.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || \
	!defined(__GNUC__)
typedef sigjmp_buf stm_jmpbuf;
#define STM_SETJMP(t, buf) sigsetjmp(buf, 0)
#define STM_LONGJMP(t, buf, v) siglongjmp(buf, v)
#else
typedef void *stm_jmpbuf[5];
#define STM_SETJMP(t, buf) (__builtin_setjmp(buf) ? (t)->jump : 0)
#define STM_LONGJMP(t, buf, v)                  \
	do {                                    \
		(t)->jump = (v);                \
		__builtin_longjmp(buf, 1);      \
	} while (0)
#endif

/* The slot of a descriptor of a handle that attaches nothing
 * (r->rt_readonly): no orec, log or table names it (mine-tests against
 * it never match: it does not fit the orec's slot field). */
#define TXD_NO_SLOT UINT32_MAX

/* One per (thread, open region): this is the pstm_tx users see. */
struct pstm_tx {
	struct pstm_region *r;
	struct txd_cache *tlc;    /* its thread's tl_txd_cache (lib/txd.c):
				     the driver's stores to it skip a TLS
				     lookup (a call in the shared library) */
	uint32_t slot;
	struct log_header *log;   /* the slot's log (region_log), kept */
	uint32_t depth;           /* >0 while a transaction runs */
	uint64_t rv;              /* snapshot version */
	uint64_t rv_bound;        /* orec words <= this are within rv */
	stm_jmpbuf env;           /* unwinding point of the running attempt */
	int jump;                 /* why it was jumped to (JUMP_*) */
	int err;                  /* error carried by an unwinding failure */

	struct wentry *ws;        /* write set, in write order */
	uint32_t nws, ws_cap;     /* ws_cap: room in ws (grows) */
	uint32_t ws_limit;        /* ws_cap; 0 in pstm_atomic_ro (stores go
				     the slow way and fail) */
	uint32_t *wtab;           /* open addressing: idx+1 of ws, tagged */
	uint32_t *wtab_epoch;
	uint32_t wtab_mask, epoch;
	uint64_t wbloom;

	struct rentry *rs;        /* read set */
	uint32_t nrs, rs_cap;

	uint64_t *locks;          /* orec indexes we locked (commit, or
				     inevitable: at first touch) */
	uint32_t nlocks, locks_cap;

	struct tx_hook *hooks;    /* tx_on_commit, newest first */
	struct tx_hook *abort_hooks; /* pstm_tx_on_abort, newest first */

	uint32_t retries;
	bool escalated;
	bool read_only;           /* pstm_atomic_ro: no store, no escalation */
	bool explicit_tx;         /* begun with pstm_tx_begin (never unwinds
				     its caller) */
	bool guard;               /* explicit: env is a live unwinding point */
	bool explicit_retry;      /* the last explicit attempt conflicted */
	int doomed;               /* explicit: rolled back with this code */
	bool inevitable;          /* holds rt->inevitable: will not abort */
	bool behind_inevitable;   /* this abort waited for the inevitable
				     transaction: no step towards escalating */
	uint64_t prng;
	uint64_t st[ST_COUNT];    /* totals since the slot was claimed */

	/*
	 * Large transactions (lib/overflow.c): this slot's overflow extent
	 * (0 if none), the entries it holds, and the seq of the last
	 * durable record in it (0: none may still be replayed).  side: a
	 * descriptor on the same slot for the small transactions that take
	 * and give back extents while this one's attempt waits.
	 */
	uint64_t ovf_off, ovf_cap, ovf_seq;
	struct pstm_tx *side;

	/*
	 * Stopped owners (stm_wait_unlocked): commit_k numbers this slot's
	 * commits (log_state); blk_* is the commit we last found holding a
	 * lock we need: its slot, its log state word, since when.
	 */
	uint64_t commit_k;
	uint32_t blk_slot;
	uint64_t blk_state, blk_since;

	/* lock words lately read through (lib/stm.c read_through), by
	 * orec index: met again, they are read through without a spin */
#define THROUGH_SEEN 4
	uint64_t through_seen[THROUGH_SEEN];
	uint64_t through_state[THROUGH_SEEN]; /* slot << 48 | state word
						 of a record it persisted */
	/* slotless: reads taken above the snapshot, validated by value
	 * too (lib/stm.c newer_push) */
	struct newer_read {
		uint64_t off, val;
		uint64_t lock, state; /* read through this commit; 0: memory */
	} *newer;
	uint32_t nnewer, newer_cap;

	struct pstm_tx *next;     /* region's list */
	struct conflict_state cf; /* conflict reports (lib/conflict.c) */
	/* TXD_NO_SLOT: where txd_stats_flush puts st[] (no slot's words to
	 * mirror them); relaxed atomics, read by pstm_stats_get of any
	 * thread */
	_Atomic uint64_t st_out[ST_COUNT];
};

/* lib/txd.c: this thread's descriptor for @r (claiming a slot on first
 * use; NULL and *err if none is free or memory is short).  The last one
 * the thread used is cached: the fast path is inline (every transaction
 * takes it). */
struct txd_cache {
	uint64_t open_id; /* handle it belongs to, 0 if none */
	pstm_tx *t;
	/* lib/driver.c's thread state, here so that one thread-local
	 * address serves a whole pstm_atomic (each one costs a TLS lookup
	 * in the shared library) */
	pstm_tx *cur;          /* the running transaction, if any */
	bool in_abort_hooks;   /* pstm_tx_on_abort hooks run */
};
extern HIDDEN __thread struct txd_cache tl_txd_cache;
HIDDEN pstm_tx *txd_get_slow(struct pstm_region *r, int *err);
static inline pstm_tx *txd_get(struct pstm_region *r, int *err)
{
	if (__builtin_expect(tl_txd_cache.open_id == r->open_id, 1))
		return tl_txd_cache.t;
	return txd_get_slow(r, err);
}
HIDDEN void txd_thread_exit(void *tx);       /* pthread key destructor */
HIDDEN void txd_release_all(struct pstm_region *r); /* pstm_close */
HIDDEN void txd_stats_flush(pstm_tx *t);     /* statistics to the slot */
#define STATS_FLUSH_EVERY 256 /* update commits between two stats_flush
				 (a power of two: lib/commit.c) */

/* lib/stm.c: word access with bounds [lo, heap_hi); lo is heap_off for
 * internal metadata (allocator), heap_lo for user calls. */
HIDDEN uint64_t stm_load(pstm_tx *t, uint64_t off, uint64_t lo);
HIDDEN void stm_store(pstm_tx *t, uint64_t off, uint64_t v, uint64_t lo);
/* End the running transaction with error @err (unwinds). */
HIDDEN _Noreturn void stm_fail(pstm_tx *t, int err);
/* Abort the running attempt for a conflict of kind @cause (ST_AB_*) and
 * re-run it (unwinds). */
HIDDEN _Noreturn void stm_abort(pstm_tx *t, int cause);
/* Orec @o holds @v, locked by another slot: wait for it, recover a dead
 * owner, or abort (cause @cause).  Returns the orec's new value. */
HIDDEN uint64_t stm_wait_unlocked(pstm_tx *t, _Atomic uint64_t *o, uint64_t v,
				  int cause);
/* lib/stm.c, the read set and validation, shared with lib/lockwait.c:
 * push a read; validate every read and take @now as the snapshot; move
 * the snapshot to include version @seen (raising the clock); a slotless
 * descriptor's read above its snapshot, validated by value too (@lock,
 * @state: read through that commit, 0: from memory) */
HIDDEN void stm_rs_push(pstm_tx *t, uint64_t idx, uint64_t o);
HIDDEN bool stm_revalidate_at(pstm_tx *t, uint64_t now);
HIDDEN bool stm_extend(pstm_tx *t, uint64_t seen);
HIDDEN void stm_newer_push(pstm_tx *t, uint64_t off, uint64_t val, uint64_t lock,
			   uint64_t state);
/* lib/lockwait.c: a load met orec @o (word @off, index @idx) locked with
 * @v: spin briefly (the orec's new value); read the word through the
 * holder's redo record if it is past its commit point (true, *out and
 * the read set entry; @again: @v was read through before); else wait,
 * recover, abort a stopped holder or abort (stm_wait_unlocked's part
 * after its spin) */
HIDDEN uint64_t stm_spin_unlocked(_Atomic uint64_t *o, uint64_t v);
HIDDEN bool stm_read_through(pstm_tx *t, uint64_t off, uint64_t idx,
			     _Atomic uint64_t *o, uint64_t v, bool again, uint64_t *out);
HIDDEN uint64_t stm_wait_after_spin(pstm_tx *t, _Atomic uint64_t *o, uint64_t v,
				    int cause);
/* Unlock what the commit locked, keeping the old versions; log IDLE. */
HIDDEN void stm_release_unchanged(pstm_tx *t);
/* lib/stm.c: a lock naming a slot that stays free for 10 ms (damage) */
HIDDEN bool stm_orphan_lock(struct pstm_region *r, _Atomic uint64_t *o,
			    uint64_t v);
/* lib/inevitable.c: lock orec @idx for the inevitable transaction @t,
 * waiting for (never aborting on) another holder */
HIDDEN void stm_inevitable_lock(pstm_tx *t, uint64_t idx);
/* lib/driver.c: this thread's running transaction, or NULL */
HIDDEN pstm_tx *stm_current(void);
/*
 * lib/driver.c: take the region's serial token for this thread's slot,
 * outside any transaction, waiting while another holds it: until
 * stm_serial_release, no update transaction of any other thread or
 * process begins (those running finish; read-only ones keep running).
 * The holder may run read-only transactions meanwhile, no update one
 * (it would wait for itself).  A holder that dies is cleared by its
 * recoverer.  0, PSTM_EINTX, or why no slot could be claimed.
 */
HIDDEN int stm_serial_hold(struct pstm_region *r);
HIDDEN void stm_serial_release(struct pstm_region *r);
/* lib/driver.c: run @fn(t, arg) under an unwinding point of its own, for
 * an explicit transaction: returns fn's value, or what unwound it
 * (PSTM_ECONFLICT, or the error), the attempt then being doomed */
HIDDEN int stm_guarded(pstm_tx *t, pstm_fn fn, void *arg);
/* lib/stm.c: an explicit attempt ends with @err without unwinding:
 * rolled back now, later calls return @err */
HIDDEN void stm_doom(pstm_tx *t, int err);
/* lib/hooks.c: the hook lists */
HIDDEN void hooks_free(struct tx_hook **l);       /* free, never run */
HIDDEN void hooks_drop(pstm_tx *t);               /* attempt ends: commit hooks go */
HIDDEN void hooks_run(struct pstm_region *r, struct tx_hook *h); /* run, free */

/* spins on a locked orec before looking at its owner */
#define LOCK_SPINS 256
/* a commit that holds a lock we need for this long without leaving
 * LOCKING is taken to be stopped, and aborted (docs/design.md, "Stopped
 * processes") */
#define STOPPED_NS 1000000ull

/* siglongjmp values to the driver's unwinding point (t->env) */
#define JUMP_RETRY 1
#define JUMP_ERROR 2

/* lib/txd.c: a descriptor sharing @t's slot (for stm_run_side), NULL if
 * memory is short */
HIDDEN pstm_tx *txd_side_new(pstm_tx *t);
/* lib/driver.c: run @fn as a transaction of its own on @t's slot, while
 * @t's attempt (which must hold no orec) waits; returns as pstm_atomic */
HIDDEN int stm_run_side(pstm_tx *t, pstm_fn fn, void *arg);
/* lib/overflow.c: make t's extent ready for a record of t->nws entries
 * (unwinds with the error: nothing is locked yet); give it back when the
 * descriptor goes (best effort: an orphan is freed later) */
HIDDEN void overflow_prepare(pstm_tx *t);
/* commit step 1 of a large transaction: its entries into the extent,
 * the ring record @rec naming it (lib/overflow.c) */
HIDDEN void overflow_write(pstm_tx *t, struct log_record *rec);
HIDDEN void overflow_release(pstm_tx *t);
/* lib/stm.c: the write set outgrew ws: make room (unwinds) */
HIDDEN void stm_grow_ws(pstm_tx *t);

/* lib/commit.c: commit the running update attempt (may abort: unwinds). */
HIDDEN void stm_commit_update(pstm_tx *t);
/* Record orec index @idx as locked by @t (t->locks grows for inevitable
 * transactions, which lock what they read too; unwinds with
 * PSTM_ENOMEM). */
HIDDEN void stm_grow_locks(pstm_tx *t);
static inline void stm_note_lock(pstm_tx *t, uint64_t idx)
{
	if (__builtin_expect(t->nlocks == t->locks_cap, 0))
		stm_grow_locks(t);
	t->locks[t->nlocks++] = idx;
}

/*
 * Data words are read and written with relaxed atomics ordered by fences
 * (the sequence-lock idiom).  ThreadSanitizer does not model fences, so
 * its builds use acquire loads and release stores on the data instead:
 * the same ordering, a little stronger.
 */
#ifdef __SANITIZE_THREAD__
#define DATA_LOAD __ATOMIC_ACQUIRE
#define DATA_STORE __ATOMIC_RELEASE
#define fence_acquire() ((void)0)
#define fence_release() ((void)0)
#else
#define DATA_LOAD __ATOMIC_RELAXED
#define DATA_STORE __ATOMIC_RELAXED
#define fence_acquire() atomic_thread_fence(memory_order_acquire)
#define fence_release() atomic_thread_fence(memory_order_release)
#endif

/* Are all reads still current (or locked by us, unchanged before)?
 * Inline: commit (lib/commit.c) runs it on every update transaction. */
static inline bool stm_validate(pstm_tx *t)
{
	_Atomic uint64_t *const orecs = t->r->orecs;
	const struct rentry *rs = t->rs;
	const uint32_t n = t->nrs;
	uint64_t mine = ((uint64_t)t->slot << 1) | OREC_LOCK;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t cur = atomic_load_explicit(&orecs[rs[i].idx],
						    memory_order_acquire);
		if (cur == rs[i].o)
			continue;
		/* the same version: unchanged (only the writer field of a
		 * format 2 orec differs, after a lock and release that did not
		 * change it), or locked by us at commit, unchanged before */
		if (((cur ^ rs[i].o) >> OREC_VSHIFT) == 0 &&
		    ((cur & ((1ull << OREC_VSHIFT) - 1)) == mine ||
		     !orec_is_locked(cur)))
			continue;
		return false;
	}
	return true;
}

/* Commit the running attempt of @fn (NULL: explicit).  A read-only one
 * writes nothing shared (its statistics are flushed later); an inevitable
 * one may hold read locks.  An update publishes its name for conflict
 * reports when it is not the one its slot published last (lib/conflict.c). */
static inline void stm_commit(pstm_tx *t, pstm_fn fn)
{
	if (t->nws == 0) {
		t->st[ST_COMMITS_RO]++;
		if (t->nlocks)
			stm_release_unchanged(t);
		return;
	}
	if (__builtin_expect(fn != t->cf.pub_fn, 0))
		conflict_publish(t, fn);
	stm_commit_update(t);
}

#endif /* PSTM_STM_H */
