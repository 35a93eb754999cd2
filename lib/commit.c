/*
 * commit.c - the commit protocol of update transactions (read-only ones
 * just return: they write nothing shared).
 *
 *   1. copy the write set into a redo record in this slot's log area
 *      (durable: appended to the slot's ring), wv_floor = clock + 1 (a
 *      bound for readers: lib/lockwait.c, read_before), state LOCKING
 *   2. lock every written orec by CAS (version kept, slot in the word)
 *   3. wv = clock + 1 (the clock is not written: GV5, see below);
 *      revalidate the reads
 *   4. CAS out of LOCKING (a waiter may have aborted us: lib/stm.c,
 *      take_from_stopped); durable: to SEALING, publish inflight, take
 *      a sequence number, crc; state COMMITTED; persist the record;
 *      volatile: the CAS goes to COMMITTED               <- commit point
 *   5. write the words back (the media gets them at the next checkpoint);
 *      durable: inflight = 0
 *   6. state RELEASING
 *   7. release each orec with version wv; state IDLE
 * A process that dies anywhere here is settled by replay_settle_slot
 * (lib/replay.c): before 4 its locks are dropped (nothing changed), from
 * 4 on its record is replayed and its orecs released with wv.  After a
 * power failure the durable records above the horizon are replayed.
 * docs/design.md section 4 names each step's crash window.
 */
#include <string.h>

#include "checkpoint.h"
#include "crash.h"
#include "flush.h"
#include "redo_log.h"
#include "stm.h"
#include "testing.h"

/*
 * The protocol, for a record in the ring (!@large) or in the slot's
 * overflow extent (lib/overflow.c), with its crash points (@armed) or
 * without, on a region known volatile (@vol) or either: four copies of
 * one body (small unarmed volatile, small unarmed, small armed, large),
 * so that the common ones keep their registers and test no crash point
 * (a shared body cost ~20 instructions a commit, the points ~25) and a
 * volatile one no durability (~25 more, and 5-10% of a transfer).
 */
#define CP(p)                                \
	do {                                 \
		if (armed)                   \
			CRASH_POINT(p);      \
	} while (0)

/* The write set into the record's entries.  ThreadSanitizer builds store
 * word by word, with relaxed atomics: a reader that reads a live slot's
 * record (lib/stm.c read_through) may race with the next commit's copy
 * and discards what it read then, which TSan would report on a memcpy. */
static inline void record_put_entries(struct log_entry *e, const struct wentry *ws,
				      uint32_t n)
{
#ifdef __SANITIZE_THREAD__
	for (uint32_t i = 0; i < n; i++) {
		__atomic_store_n(&e[i].off, ws[i].off, __ATOMIC_RELAXED);
		__atomic_store_n(&e[i].val, ws[i].val, __ATOMIC_RELAXED);
	}
#else
	/* the usual few entries by a loop: memcpy's call for 32 bytes cost
	 * 2-5% of a 2-account transfer (bench bank, 1,024 accounts, 25 and
	 * 41 interleaved rounds) */
	if (n <= 8) {
		for (uint32_t i = 0; i < n; i++)
			e[i] = (struct log_entry){ws[i].off, ws[i].val};
	} else {
		memcpy(e, ws, sizeof(struct log_entry) * n);
	}
#endif
}

/*
 * Lock the orecs of write entries @i.. (commit's step 2, its uncommon
 * part): an orec locked by another waits for it (stm_wait_unlocked, which
 * may unwind: the rollback releases what t->nlocks names, so the count is
 * stored before each wait), one that is ours already (two words on one
 * orec) is skipped, a lost CAS is tried again.  Returns the lock count.
 */
static __attribute__((noinline)) uint32_t lock_rest(pstm_tx *t, uint32_t i, uint32_t nl)
{
	const struct wentry *ws = t->ws;
	const uint32_t nws = t->nws;
	_Atomic uint64_t *const orecs = t->r->orecs;
	const uint64_t omask = t->r->orec_mask;
	const uint64_t mine = ((uint64_t)t->slot << 1) | OREC_LOCK;
	uint64_t *const locks_at = t->locks;

	for (; i < nws; i++) {
		uint64_t idx = (ws[i].off >> OREC_SHIFT) & omask;
		_Atomic uint64_t *o = &orecs[idx];
		uint64_t v = atomic_load_explicit(o, memory_order_relaxed);
		for (;;) {
			if (orec_is_locked(v)) {
				if ((v & ((1ull << OREC_VSHIFT) - 1)) == mine)
					break; /* shared orec, already ours */
				t->nlocks = nl;
				v = stm_wait_unlocked(t, o, v, ST_AB_LOCK);
				continue;
			}
			if (atomic_compare_exchange_weak_explicit(
				    o, &v, (v & ~((1ull << OREC_VSHIFT) - 1)) | mine,
				    memory_order_acq_rel, memory_order_relaxed)) {
				locks_at[nl++] = idx;
				break;
			}
		}
	}
	return nl;
}

static inline __attribute__((always_inline)) void commit(pstm_tx *t, const bool large,
							 const bool armed, const bool vol)
{
	struct pstm_region *r = t->r;
	/* in locals: every atomic below would load the fields again */
	const bool durable = !vol && r->durable;
	const bool relaxed = !vol && r->relaxed;

	struct log_header *h = t->log;
	struct slot *sl = &r->slots[t->slot];
	const uint64_t mine = ((uint64_t)t->slot << 1) | OREC_LOCK;
	/* more than the ring holds: entries in the overflow extent */
	if (large)
		overflow_prepare(t);
	const uint64_t rbytes = large ? record_bytes(1) : record_bytes(t->nws);

	/*
	 * 1. the write set into a redo record: recovery can name our orecs.
	 * Durable regions append to the slot's ring; when it is full, a
	 * checkpoint first makes every record in it obsolete.
	 */
	uint64_t pos = 0;
	if (durable) {
		pos = atomic_load_explicit(&sl->ring_head, memory_order_relaxed);
		if (pos + rbytes > r->ring_bytes) {
			int rc = checkpoint_until(r, atomic_load(&r->rt->dseq) - 1);
			if (rc)
				stm_fail(t, rc); /* nothing locked yet */
			pos = 0;
			if (relaxed) /* the flusher tells rounds apart */
				atomic_fetch_add_explicit(&sl->wrap, 1,
							  memory_order_relaxed);
		}
	}
	struct log_record *rec = (struct log_record *)((uint8_t *)(h + 1) + pos);
	if (large) {
		overflow_write(t, rec);
	} else {
		record_put_entries(record_entries(rec), t->ws, t->nws);
		__atomic_store_n(&rec->count, t->nws, __ATOMIC_RELAXED);
		__atomic_store_n(&rec->magic, LOG_REC_MAGIC, __ATOMIC_RELAXED);
	}
	/* relaxed atomics (plain moves): readers of a live slot's log
	 * (read-through, conflict reports) read them racing with the next
	 * commit, and check the state word around */
	__atomic_store_n(&h->rec_off, pos, __ATOMIC_RELAXED);
	__atomic_store_n(&h->count, t->nws, __ATOMIC_RELAXED);
	if (durable) /* only relaxed regions count wraps: 0 on the others */
		h->wrap = atomic_load_explicit(&sl->wrap, memory_order_relaxed);
	__atomic_store_n(&h->wv_floor,
			 atomic_load_explicit(&r->rt->clock, memory_order_acquire) + 1,
			 __ATOMIC_RELAXED);
	const uint64_t k = ++t->commit_k;
	atomic_store_explicit(&h->state, log_state(k, LOG_LOCKING),
			      memory_order_release);
	CP(CP_COMMIT_LOCKING);

	/*
	 * 2. lock.  The loops below keep the sets' bounds in locals: every
	 * atomic here is a compiler barrier, and the fields would be loaded
	 * again each round (t->nlocks itself stays exact: a wait may unwind,
	 * and the rollback releases what it names).
	 */
	const struct wentry *ws = t->ws;
	const uint32_t nws = t->nws;
	_Atomic uint64_t *const orecs = r->orecs;
	const uint64_t omask = r->orec_mask;
	/* room for a lock per write: the loop notes them unchecked */
	while (__builtin_expect(t->locks_cap - t->nlocks < nws, 0))
		stm_grow_locks(t);
	uint64_t *const locks_at = t->locks;
	/* the common case: each orec free and the CAS won.  No call in this
	 * loop, so its values stay in scratch registers (with the wait's
	 * call inside, GCC moved eight registers to the stack and back
	 * around it, ~25 instructions a commit); anything else (locked,
	 * ours already, a lost CAS) goes on in lock_rest() */
	uint32_t nl = t->nlocks, li = 0;
	for (; li < nws; li++) {
		uint64_t idx = (ws[li].off >> OREC_SHIFT) & omask;
		_Atomic uint64_t *o = &orecs[idx];
		uint64_t v = atomic_load_explicit(o, memory_order_relaxed);
		/* acq_rel: whoever sees this lock sees LOCKING(k) */
		if (__builtin_expect(orec_is_locked(v), 0) ||
		    __builtin_expect(!atomic_compare_exchange_weak_explicit(
					     o, &v, (v & ~((1ull << OREC_VSHIFT) - 1)) | mine,
					     memory_order_acq_rel, memory_order_relaxed),
				     0))
			break;
		locks_at[nl++] = idx;
	}
	if (__builtin_expect(li < nws, 0))
		nl = lock_rest(t, li, nl);
	t->nlocks = nl;
	/* data stores below must not become visible before the locks */
	fence_release();
	CP(CP_COMMIT_LOCKED);

	/*
	 * 3. commit version, validation.  wv = clock + 1, read after our
	 * locks, *without* advancing the clock (TL2's GV5): a reader whose
	 * snapshot rv was taken before we locked has rv <= clock < wv, so it
	 * can never accept our new version next to an old value of another
	 * word we write; the first reader that meets version wv raises the
	 * clock to it (extend()).  Several commits may share a wv, so reads
	 * are always validated (no "wv == rv + 1" shortcut).  This keeps the
	 * clock's cache line read-mostly: with a fetch_add per commit it was
	 * the bottleneck with two processes (docs/design.md).
	 */
	uint64_t wv = atomic_load_explicit(&r->rt->clock, memory_order_acquire) + 1;
	if (wv >= OREC_VMAX)
		stm_fail(t, PSTM_ECLOCK);
	if (!TESTING_NO_VALIDATE(r) && !stm_validate(t))
		stm_abort(t, ST_AB_VALIDATE);

	/*
	 * 4. commit point.  Durable: a sequence number orders our record
	 * against others writing the same words; inflight (a lower bound of
	 * it, published first, seq_cst) keeps checkpoints from declaring it
	 * in the data before our write-back; then the record is persisted.
	 */
	__atomic_store_n(&h->wv, wv, __ATOMIC_RELAXED);
	/*
	 * Against waiters that take a stopped commit's locks (lib/stm.c,
	 * take_from_stopped), the commit point is this CAS out of LOCKING:
	 * if one of them aborted us first, we roll back.  Durable regions
	 * pass through SEALING (no waiter aborts that) to take a seq and
	 * seal the record.
	 */
	uint64_t lk = log_state(k, LOG_LOCKING);
	if (durable) {
		if (!atomic_compare_exchange_strong_explicit(
			    &h->state, &lk, log_state(k, LOG_SEALING),
			    memory_order_acq_rel, memory_order_relaxed))
			stm_abort(t, ST_AB_LOCK);
		atomic_store(&sl->inflight, atomic_load(&r->rt->dseq));
		rec->seq = atomic_fetch_add(&r->rt->dseq, 1);
		rec->crc = redo_log_crc_of(rec, large ? record_entries_at(r, r->base, rec, pos)
						       : record_entries(rec));
	}
	CP(CP_COMMIT_SEALED);
	if (durable)
		atomic_store_explicit(&h->state, log_state(k, LOG_COMMITTED),
				      memory_order_release);
	else if (!atomic_compare_exchange_strong_explicit(
			 &h->state, &lk, log_state(k, LOG_COMMITTED),
			 memory_order_acq_rel, memory_order_relaxed))
		stm_abort(t, ST_AB_LOCK);
	if (relaxed) { /* the flusher may copy it now; nothing waits */
		atomic_store_explicit(&sl->pub, h->wrap << 32 | (pos + rbytes),
				      memory_order_release);
		flush_note_commit(r); /* a flush thread that asked to hear */
	} else if (durable)
		redo_log_persist_record(r, t->slot, rec, rbytes);
	CP(CP_COMMIT_LOGGED);

	/* 5. write back; the media gets it at the next checkpoint.  Not
	 * before the state left LOCKING/SEALING: a reader that finds the
	 * orec locked then reads the old value from memory and checks
	 * the state after (lib/lockwait.c, read_before) */
	fence_release();
	uint8_t *const base = r->base;
	for (uint32_t i = 0; i < nws; i++)
		__atomic_store_n((uint64_t *)(base + ws[i].off), ws[i].val, DATA_STORE);
	if (durable) {
		atomic_store_explicit(&sl->ring_head, pos + rbytes,
				      memory_order_relaxed);
		atomic_store(&sl->inflight, 0);
		/* (b) of lib/overflow.c before it is written again */
		if (large)
			t->ovf_seq = rec->seq;
	}
	CP(CP_COMMIT_WRITTEN);

	/* 6. written back: a recoverer must not replay any more */
	atomic_store_explicit(&h->state, log_state(k, LOG_RELEASING),
			      memory_order_release);
	CP(CP_COMMIT_RETIRED);

	/* 7. release */
	const uint64_t nv = orec_make(wv) | t->cf.orec_tag; /* format 2: the writer */
	const uint64_t *locks = t->locks;
	const uint32_t nlocks = t->nlocks;
	for (uint32_t i = 0; i < nlocks; i++) {
		if (armed && i == nlocks / 2)
			CRASH_POINT(CP_COMMIT_RELEASED);
		atomic_store_explicit(&orecs[locks[i]], nv, memory_order_release);
	}
	t->nlocks = 0;
	atomic_store_explicit(&h->state, LOG_IDLE, memory_order_relaxed);

	/* the slot's words get the counts every STATS_FLUSH_EVERY commits
	 * (a count of its own since the last flush cost ~3 instructions) */
	if ((++t->st[ST_COMMITS] & (STATS_FLUSH_EVERY - 1)) == 0)
		txd_stats_flush(t);
}

static __attribute__((noinline)) void commit_large(pstm_tx *t)
{
	commit(t, true, true, false);
}

static __attribute__((noinline)) void commit_armed(pstm_tx *t)
{
	commit(t, false, true, false);
}

static __attribute__((noinline)) void commit_vol(pstm_tx *t)
{
	commit(t, false, false, true);
}

static __attribute__((noinline)) void commit_small(pstm_tx *t)
{
	commit(t, false, false, false);
}

void stm_commit_update(pstm_tx *t)
{
	if (__builtin_expect(t->nws > t->r->log_cap, 0))
		commit_large(t);
	else if (__builtin_expect(atomic_load_explicit(&crash_armed,
						       memory_order_relaxed) != 0, 0))
		commit_armed(t); /* a crash point is armed (tests, crashtest) */
	else if (!t->r->durable)
		commit_vol(t);
	else
		commit_small(t);
}
