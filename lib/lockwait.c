/*
 * lockwait.c - what a transaction does when it meets an orec that another
 * slot holds (lib/stm.c's loads, lib/commit.c's locks): spin briefly;
 * recover a dead owner; abort a commit stopped before its commit point
 * (take_from_stopped); past it, read the word through that commit's redo
 * record (stm_read_through); else abort the attempt.  docs/design.md,
 * "Stopped processes", gives every state and why each answer is safe.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <time.h>

#include "persist.h"
#include "recovery.h"
#include "redo_log.h"
#include "stm.h"
#include "testing.h"

/*
 * Is @v, still in orec @o, a lock that nobody owns?  Slots are freed only
 * after their locks are released, so a lock naming a slot that stays free
 * (same state word, no claim in between) for 10 ms can only come from a
 * bug or a damaged runtime: the transaction ends with PSTM_ECORRUPT
 * (pstm check names it) instead of waiting forever.
 */
bool stm_orphan_lock(struct pstm_region *r, _Atomic uint64_t *o, uint64_t v)
{
	uint32_t s = orec_owner(v);
	if (s >= r->sb.max_slots)
		return true;
	uint64_t st = atomic_load_explicit(&r->slots[s].state, memory_order_acquire);
	if (SLOT_ST(st) != SLOT_FREE)
		return false;
	for (int i = 0; i < 10; i++) {
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
		if (atomic_load_explicit(o, memory_order_acquire) != v ||
		    atomic_load_explicit(&r->slots[s].state, memory_order_acquire) != st)
			return false;
	}
	return true;
}

/*
 * A live owner that does not progress (stopped, frozen, descheduled):
 * the lock @v at @o belongs to slot @s.  If its commit has sat in
 * LOCKING (before its commit point) for STOPPED_NS since we first met
 * it, abort it: CAS LOCKING(k) -> ABORTED(k), which its owner's commit
 * point CAS then loses.  A lock of an ABORTED commit is free: take it
 * back to unlocked with its version + 1 (never the old word again: see
 * stm_release_unchanged).  True if @o changed hands (read it again).
 * The orec was read (acquire) before the state: its owner published
 * LOCKING(k) before locking, so an ABORTED state read here is the
 * state of the commit that took this lock, or of a later one that has
 * not locked it (a later lock would carry another word).
 */
static bool take_from_stopped(pstm_tx *t, uint32_t s, _Atomic uint64_t *o,
			      uint64_t v)
{
	struct pstm_region *r = t->r;
	/* a handle that attaches nothing (an observer, a read-only grant)
	 * writes no log state and no orec: it retries until the owner goes
	 * on or someone else aborts it */
	if (s >= r->sb.max_slots || r->rt_readonly)
		return false;
	struct log_header *h = region_log(r, s);
	uint64_t st = atomic_load_explicit(&h->state, memory_order_acquire);
	if (LOG_ST(st) == LOG_LOCKING) {
		/* the inevitable transaction never aborts; it commits */
		if (atomic_load_explicit(&r->rt->inevitable, memory_order_relaxed) ==
		    (uint64_t)s + 1)
			return false;
		uint64_t now = mono_ns();
		if (t->blk_slot != s || t->blk_state != st) {
			t->blk_slot = s;
			t->blk_state = st;
			t->blk_since = now;
			return false;
		}
		if (now - t->blk_since < STOPPED_NS)
			return false;
		if (!atomic_compare_exchange_strong_explicit(
			    &h->state, &st, (st & ~0xffull) | LOG_ABORTED,
			    memory_order_acq_rel, memory_order_acquire))
			return false; /* it moved on */
	} else if (LOG_ST(st) != LOG_ABORTED) {
		return false;
	}
	clock_raise(r, orec_version(v) + 1);
	atomic_compare_exchange_strong_explicit(o, &v, orec_make(orec_version(v) + 1),
						memory_order_acq_rel,
						memory_order_relaxed);
	return true;
}

/* Spin briefly on the locked orec @o (@v): its new value */
uint64_t stm_spin_unlocked(_Atomic uint64_t *o, uint64_t v)
{
	for (int i = 0; i < LOCK_SPINS; i++) {
		cpu_relax();
		v = atomic_load_explicit(o, memory_order_acquire);
		if (!orec_is_locked(v))
			break;
	}
	return v;
}


/*
 * The orec at @o is locked by another slot.  Wait briefly for its commit
 * to finish; if it does not, check whether its owner died (and recover it)
 * or stopped before its commit point (and abort it), or give up with an
 * abort.  Returns the new orec value.
 */
uint64_t stm_wait_unlocked(pstm_tx *t, _Atomic uint64_t *o, uint64_t v,
			      int cause)
{
	v = stm_spin_unlocked(o, v);
	if (!orec_is_locked(v))
		return v;
	return stm_wait_after_spin(t, o, v, cause);
}

/*
 * Read the word at @off (orec @idx at @o) through the redo record of the
 * commit that holds the orec (lock word @v) once that commit is past its
 * commit point, so that a reader never waits for a slow or stopped owner
 * to write back and release (issue 16; docs/design.md, "Stopped
 * processes").  True with *out (the read set has the entry) if it could;
 * false if the holder is not past its commit point or anything moved
 * (read the orec again).  Unwinds if the snapshot cannot take the
 * commit in.
 *
 * - The commit's state is COMMITTED(k) or RELEASING(k): nothing can undo
 *   it (a recoverer replays it).  Its owner wrote the record before
 *   LOCKING(k) and leaves it alone until IDLE; a lock word names one
 *   commit (its version bits change with every release).  So a record
 *   read between two reads of the same state word, with the orec still
 *   holding @v after it, is that commit's.
 * - The snapshot must include the commit: rv < its wv extends first (all
 *   reads so far revalidated), as meeting version wv would.
 * - A word the record does not name shares the orec only: nobody can
 *   write it while the orec is locked, so memory holds its value.
 * - A durable region's record may not be persisted yet at COMMITTED:
 *   the reader persists it (a flush or an msync; nothing shared is
 *   written) before it uses a value, so that it never sees a commit a
 *   power failure could take back.  An overflow record's extent is not
 *   flushed here: such a reader waits, as do reads of records longer
 *   than a ring (the search is linear).
 * - A lock word read through once is remembered (t->through_seen): met
 *   again it is read through at once, without the spin, and its record
 *   is not persisted again (@again).
 * - The read set keeps the version of the release, orec_make(wv) (see
 *   the comment at the push below); a slotless descriptor, which may
 *   not raise the clock, validates every other read after taking the
 *   value (as take_newer does: all of them held at that validation,
 *   when the commit was past its commit point and held the word), and
 *   keeps the lock word and the value (newer_push).
 */
/*
 * The word at @off from memory, if the commit holding its orec (@v at
 * @o) has written nothing back: its state is still @st (LOCKING,
 * SEALING, ROLLBACK or ABORTED of one commit) and the orec still @v after
 * the load.  The write-back comes only after COMMITTED, behind a release
 * fence (commit.c).
 */
static bool word_before(struct pstm_region *r, uint64_t off, _Atomic uint64_t *o,
			uint64_t v, struct log_header *h, uint64_t st, uint64_t *val)
{
	*val = __atomic_load_n(region_word(r, off), DATA_LOAD);
	fence_acquire();
	return atomic_load_explicit(&h->state, memory_order_relaxed) == st &&
	       atomic_load_explicit(o, memory_order_relaxed) == v;
}

/*
 * read_before for a slotless descriptor (an observer, a read-only grant):
 * it may not raise the clock, so an old version above its snapshot is
 * taken as take_newer takes one, every read revalidated at the clock's
 * value @now, which must stay below @bound.  The read set keeps the
 * lock word and t->newer the value with the lock and state words:
 * valid while the commit holds the orec in that state (before its commit
 * point), or once the orec is unlocked with the value unchanged in
 * memory (the commit rolled back, or wrote the same value); a later
 * validation after the commit passed its point fails (the state word
 * differs and the orec is locked, or the value differs), as for
 * read_through's slotless reads.
 */
static bool read_before_slotless(pstm_tx *t, uint64_t off, uint64_t idx,
				 _Atomic uint64_t *o, uint64_t v, struct log_header *h,
				 uint64_t st, uint64_t bound, uint64_t *out)
{
	struct pstm_region *r = t->r;
	bool above = orec_version(v) > t->rv;
	uint64_t now = above ? atomic_load_explicit(&r->rt->clock, memory_order_acquire)
			     : t->rv;
	if (now >= bound)
		return false;
	uint64_t val;
	if (!word_before(r, off, o, v, h, st, &val))
		return false;
	stm_rs_push(t, idx, v);
	stm_newer_push(t, off, val, v, st);
	if (above && !stm_revalidate_at(t, now)) {
		t->cf.hint_off = off;
		stm_abort(t, ST_AB_READ);
	}
	*out = val;
	return true;
}

/*
 * The word at @off (orec @idx at @o, lock word @v) as it was before the
 * commit that holds the orec and has not reached its commit point: state
 * @st LOCKING(k), or SEALING(k) on a durable region (which no waiter may
 * abort, and which a recoverer of its dead owner rolls back), or
 * ROLLBACK(k) or ABORTED(k) (it never commits: it writes nothing and
 * releases its locks, or waiters take them), header @h.
 * The reader takes the value from before that commit instead of waiting
 * for it.  Read-only readers only (slotless ones: read_before_slotless);
 * true with *out if it could.
 *
 * - Before COMMITTED the owner has written nothing back (the write-back
 *   comes after it, behind a release fence: commit.c).  So memory holds
 *   the value of the commit that released the orec with version
 *   orec_version(@v), if the state is still @st after the value was read
 *   and the orec still holds @v (a lock word names one commit).
 * - The snapshot must exclude the commit: its wv is at least
 *   h->wv_floor (clock + 1 read before LOCKING(k); published by it), and
 *   SEALING's h->wv is its wv; ROLLBACK and ABORTED need no bound.
 *   So rv < that bound (after extending to
 *   the old version if needed) serialises the reader before the commit.
 *   Otherwise (GV5: another commit of the same wv was met and raised the
 *   clock) it waits, as before.
 * - It never takes the commit in later: the read set gets the old
 *   version's unlocked word, which no validation matches while the
 *   commit holds the orec, nor after its release (version wv) or a
 *   take-back (version + 1): an extension past wv aborts the reader.
 */
static bool read_before(pstm_tx *t, uint64_t off, uint64_t idx,
			_Atomic uint64_t *o, uint64_t v, struct log_header *h,
			uint64_t st, uint64_t *out)
{
	struct pstm_region *r = t->r;
	/* ROLLBACK, ABORTED: that commit never commits, any snapshot may
	 * exclude it */
	uint64_t bound = LOG_ST(st) == LOG_SEALING
				 ? __atomic_load_n(&h->wv, __ATOMIC_RELAXED)
			 : LOG_ST(st) == LOG_LOCKING
				 ? __atomic_load_n(&h->wv_floor, __ATOMIC_RELAXED)
				 : OREC_VMAX - 1;
	uint64_t old = orec_version(v);
	if (TESTING_NO_VALIDATE(r) || bound >= OREC_VMAX)
		return false;
	if (t->slot == TXD_NO_SLOT)
		return read_before_slotless(t, off, idx, o, v, h, st, bound, out);
	if (old >= bound)
		return false;
	if (old > t->rv && !stm_extend(t, old)) {
		t->cf.hint_off = off;
		stm_abort(t, ST_AB_READ);
	}
	if (t->rv >= bound)
		return false;
	uint64_t val;
	if (!word_before(r, off, o, v, h, st, &val))
		return false;
	stm_rs_push(t, idx, orec_make(old));
	*out = val;
	return true;
}

bool stm_read_through(pstm_tx *t, uint64_t off, uint64_t idx,
			 _Atomic uint64_t *o, uint64_t v, bool again, uint64_t *out)
{
	struct pstm_region *r = t->r;
	uint32_t s = orec_owner(v);
	/* read-only transactions only: an update one would take the
	 * commit into its read set and then fail its commit's validation
	 * for as long as that commit holds the word (a dead holder then
	 * never gets recovered by it: it must wait, and recover, as
	 * before) */
	if (s >= r->sb.max_slots || s == t->slot || t->inevitable || !t->read_only)
		return false;
	struct log_header *h = region_log(r, s);
	uint64_t st = atomic_load_explicit(&h->state, memory_order_acquire);
	if (LOG_ST(st) == LOG_LOCKING || LOG_ST(st) == LOG_SEALING ||
	    LOG_ST(st) == LOG_ROLLBACK || LOG_ST(st) == LOG_ABORTED)
		return read_before(t, off, idx, o, v, h, st, out);
	if (LOG_ST(st) != LOG_COMMITTED && LOG_ST(st) != LOG_RELEASING)
		return false;
	uint64_t wv = __atomic_load_n(&h->wv, __ATOMIC_RELAXED);
	uint64_t pos = __atomic_load_n(&h->rec_off, __ATOMIC_RELAXED);
	uint64_t n = __atomic_load_n(&h->count, __ATOMIC_RELAXED);
	if (pos > r->ring_bytes - sizeof(struct log_record) ||
	    (pos & (CACHELINE - 1)) || n > r->log_cap)
		return false;
	struct log_record *rec = region_record(r, s, pos);
	if (__atomic_load_n(&rec->magic, __ATOMIC_RELAXED) != LOG_REC_MAGIC ||
	    __atomic_load_n(&rec->count, __ATOMIC_RELAXED) != n ||
	    record_bytes(n) > r->ring_bytes - pos)
		return false; /* an extent's, or moving */
	if (orec_version(v) > wv || wv >= OREC_VMAX)
		return false; /* not the header of this lock's commit */
	/* a slotless descriptor may not raise the clock: it validates its
	 * reads, this one among them, once it has the value (take_newer) */
	bool slotless = t->slot == TXD_NO_SLOT;
	if (t->rv < wv && !slotless && !TESTING_NO_VALIDATE(r) && !stm_extend(t, wv)) {
		t->cf.hint_off = off;
		stm_abort(t, ST_AB_READ);
	}
	/* persisted before by this descriptor if it read this commit (the
	 * same slot's state word: k names the commit) through already */
	uint64_t *done = &t->through_state[idx % THROUGH_SEEN];
	if (r->durable && !r->relaxed && LOG_ST(st) == LOG_COMMITTED &&
	    !(again && *done == (st | (uint64_t)s << 48))) {
		if (region_persist(r, rec, record_bytes(n)) != 0)
			return false;
		*done = st | (uint64_t)s << 48;
	}
	struct log_entry *e = record_entries(rec);
	uint64_t val = 0;
	bool named = false;
	for (uint64_t i = 0; i < n; i++)
		if (__atomic_load_n(&e[i].off, __ATOMIC_RELAXED) == off) {
			val = __atomic_load_n(&e[i].val, __ATOMIC_RELAXED);
			named = true;
		}
	if (!named)
		val = __atomic_load_n(region_word(r, off), DATA_LOAD);
	fence_acquire();
	if (atomic_load_explicit(&h->state, memory_order_relaxed) != st ||
	    atomic_load_explicit(o, memory_order_relaxed) != v)
		return false;
	if (slotless && t->rv < wv && !TESTING_NO_VALIDATE(r)) {
		/* the others validated while this commit held the word: read
		 * its state and lock word again after the validation */
		if (!stm_revalidate_at(t, atomic_load_explicit(&r->rt->clock,
							   memory_order_acquire))) {
			t->cf.hint_off = off;
			stm_abort(t, ST_AB_READ);
		}
		fence_acquire();
		if (atomic_load_explicit(&h->state, memory_order_relaxed) != st ||
		    atomic_load_explicit(o, memory_order_relaxed) != v)
			return false;
	}
	/*
	 * In the read set: for a descriptor that raised the clock to wv, the
	 * version the orec gets at the release (no later commit can give it
	 * again), never the lock word: a later commit of the same slot may
	 * lock the orec with the same word (its version unchanged, GV5) and
	 * change the value.  A slotless one cannot raise the clock, so
	 * versions and lock words may repeat for it: it keeps the lock word
	 * (valid while this commit holds the orec, so that its next reads
	 * of the commit's words validate) and the value, which its
	 * validations compare too.
	 */
	if (slotless) {
		stm_rs_push(t, idx, v);
		stm_newer_push(t, off, val, v, st);
	} else {
		stm_rs_push(t, idx, orec_make(wv));
	}
	*out = val;
	return true;
}

uint64_t stm_wait_after_spin(pstm_tx *t, _Atomic uint64_t *o, uint64_t v,
				int cause)
{
	if (slot_owner_dead_recover(t->r, orec_owner(v))) {
		uint64_t nv = atomic_load_explicit(o, memory_order_acquire);
		if (nv == v && stm_orphan_lock(t->r, o, v))
			stm_fail(t, PSTM_ECORRUPT);
		return nv;
	}
	if (take_from_stopped(t, orec_owner(v), o, v))
		return atomic_load_explicit(o, memory_order_acquire);
	/* held by the inevitable transaction: escalating would not make it
	 * commit sooner, only stop everybody else until it does */
	if (atomic_load_explicit(&t->r->rt->inevitable, memory_order_relaxed) ==
	    (uint64_t)orec_owner(v) + 1)
		t->behind_inevitable = true;
	conflict_note_lock(t, (uint64_t)(o - t->r->orecs), v);
	stm_abort(t, cause);
}

