/*
 * stm.c - the word-based STM (TL2 / TinySTM-LSA family) over a region:
 * snapshots, transactional loads and stores, validation and aborts.  The
 * commit protocol is lib/commit.c, the per-thread descriptors lib/txd.c,
 * the driver of pstm_atomic lib/driver.c, hooks lib/hooks.c, inevitable
 * transactions lib/inevitable.c.
 *
 * Execution.  A transaction samples the global clock into rv.  Each load
 * reads the word's orec, the word, then the orec again (a sequence lock);
 * an unlocked orec whose version is <= rv means the word belongs to the
 * snapshot rv.  A newer version triggers an extension: sample the clock,
 * revalidate every read, and move rv forward; if that fails the
 * transaction aborts right there, so user code never sees a value from
 * outside one snapshot (opacity).  Stores go to a private write set and
 * are found again by later loads (read-your-own-writes).
 *
 * Unwinding.  Conflicts and errors siglongjmp to the driver
 * (lib/driver.c), which rolls back and re-runs (conflict) or returns the
 * error.  Nested pstm_atomic calls are flattened into the outermost.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "recovery.h"
#include "redo_log.h"
#include "stm.h"
#include "testing.h"


/* ---------------------------------------------------------- aborting */

/*
 * Unlock what we locked (at commit, or an inevitable transaction's
 * touches), the data unchanged.  In a commit, first ROLLBACK: from then
 * on no waiter takes our locks.  If a waiter aborted us first (ABORTED),
 * our locks were free for the taking: each goes back with its version
 * + 1, as a waiter's steal does, so that a waiter still holding an old
 * lock word can never match a later lock of ours (ABA).  By CAS either
 * way: a lock a waiter took is no longer ours.
 */
void stm_release_unchanged(pstm_tx *t)
{
	struct pstm_region *r = t->r;
	struct log_header *h = region_log(r, t->slot);
	const uint64_t mine = ((uint64_t)t->slot << 1) | OREC_LOCK;
	uint64_t st = atomic_load_explicit(&h->state, memory_order_acquire);
	uint64_t bump = 0;
	if (LOG_ST(st) == LOG_LOCKING) {
		if (!atomic_compare_exchange_strong_explicit(
			    &h->state, &st, (st & ~0xffull) | LOG_ROLLBACK,
			    memory_order_acq_rel, memory_order_acquire))
			bump = 1; /* now ABORTED */
		else
			CRASH_POINT(CP_ABORT_ROLLBACK);
	}
	if (LOG_ST(st) == LOG_ABORTED)
		bump = 1;
	for (uint32_t i = 0; i < t->nlocks; i++) {
		_Atomic uint64_t *o = &r->orecs[t->locks[i]];
		uint64_t v = atomic_load_explicit(o, memory_order_relaxed);
		if (bump && (v & ((1ull << OREC_VSHIFT) - 1)) == mine)
			clock_raise(r, orec_version(v) + 1);
		while ((v & ((1ull << OREC_VSHIFT) - 1)) == mine &&
		       !atomic_compare_exchange_weak_explicit(
			       o, &v, orec_make(orec_version(v) + bump),
			       memory_order_release, memory_order_relaxed))
			;
	}
	t->nlocks = 0;
	atomic_store_explicit(&h->state, LOG_IDLE, memory_order_release);
}

void stm_abort(pstm_tx *t, int cause)
{
	t->st[cause]++;
	conflict_capture(t, cause); /* for pstm conflicts */
	if (t->nlocks)
		stm_release_unchanged(t);
	hooks_drop(t);
	STM_LONGJMP(t, t->env, JUMP_RETRY);
}

void stm_doom(pstm_tx *t, int err)
{
	if (t->nlocks)
		stm_release_unchanged(t);
	hooks_drop(t);
	t->doomed = err;
}

void stm_fail(pstm_tx *t, int err)
{
	t->err = err;
	if (t->nlocks)
		stm_release_unchanged(t);
	hooks_drop(t);
	STM_LONGJMP(t, t->env, JUMP_ERROR);
}

/* -------------------------------------------------------- validation */

/*
 * A slotless descriptor's reads above its snapshot (take_newer,
 * read_through), whose versions a later commit may give the orec again
 * (nobody raised the clock past them: GV5's "nobody read it" holds for
 * such a reader), are validated by value as well: a blind commit that
 * reused the version changed the value.  A value changed and changed
 * back reads as it is.
 */
void stm_newer_push(pstm_tx *t, uint64_t off, uint64_t val, uint64_t lock,
		       uint64_t state)
{
	if (t->nnewer == t->newer_cap) {
		uint32_t nc = t->newer_cap ? 2 * t->newer_cap : 16;
		struct newer_read *n = nc > t->newer_cap ? realloc(t->newer, sizeof(*n) * nc)
							 : NULL;
		if (!n)
			stm_fail(t, PSTM_ENOMEM);
		t->newer = n;
		t->newer_cap = nc;
	}
	t->newer[t->nnewer++] = (struct newer_read){off, val, lock, state};
}

/*
 * The values of those reads still hold: a word read through a commit's
 * record (@lock its lock word) holds it while that commit still locks
 * the orec (the same lock word, the owner's state word unchanged: k
 * names the commit); any other word, and one whose orec is unlocked
 * now, holds it in memory.
 */
static bool newer_values_ok(pstm_tx *t)
{
	struct pstm_region *r = t->r;
	fence_acquire(); /* after the orec loads of the validation */
	for (uint32_t i = 0; i < t->nnewer; i++) {
		const struct newer_read *e = &t->newer[i];
		uint64_t o = atomic_load_explicit(region_orec(r, e->off),
						  memory_order_acquire);
		if (e->lock && o == e->lock &&
		    atomic_load_explicit(&region_log(r, orec_owner(o))->state,
					 memory_order_acquire) == e->state)
			continue;
		if (orec_is_locked(o) ||
		    __atomic_load_n(region_word(r, e->off), DATA_LOAD) != e->val)
			return false;
		fence_acquire();
		if (atomic_load_explicit(region_orec(r, e->off), memory_order_relaxed) != o)
			return false;
	}
	return true;
}

/* Every read so far still current: then the snapshot is @now. */
bool stm_revalidate_at(pstm_tx *t, uint64_t now)
{
	if (!stm_validate(t) || (t->nnewer && !newer_values_ok(t)))
		return false;
	t->rv = now;
	t->rv_bound = orec_make(now) | ((1ull << OREC_VSHIFT) - 1);
	return true;
}

/*
 * Move the snapshot forward to include version @seen (which is newer than
 * rv): the clock is raised to at least @seen (committers do not advance
 * it, see commit()), then every read so far must still be current.
 */
bool stm_extend(pstm_tx *t, uint64_t seen)
{
	_Atomic uint64_t *clk = &t->r->rt->clock;
	uint64_t now = atomic_load_explicit(clk, memory_order_acquire);
	while (now < seen &&
	       !atomic_compare_exchange_weak_explicit(clk, &now, seen,
						      memory_order_acq_rel,
						      memory_order_acquire))
		;
	if (now < seen)
		now = seen;
	return stm_revalidate_at(t, now);
}

/* ----------------------------------------------------------- the set */

static inline uint32_t word_hash(uint64_t off)
{
	return (uint32_t)((off >> 3) * 0x9E3779B97F4A7C15ull >> 32);
}

static inline uint64_t bloom_bit(uint64_t off)
{
	return 1ull << ((off >> 3) & 63);
}

/*
 * The write set is searched linearly while it is small (WS_LINEAR
 * entries: what most transactions write), through its hash table once
 * larger: the table is filled only when the set outgrows the linear
 * search, so a small transaction's store is an append and a Bloom bit.
 */
#define WS_LINEAR 16

static int ws_find(pstm_tx *t, uint64_t off)
{
	if (t->nws <= WS_LINEAR) {
		for (uint32_t i = 0; i < t->nws; i++)
			if (t->ws[i].off == off)
				return (int)i;
		return -1;
	}
	uint32_t h = word_hash(off) & t->wtab_mask;
	while (t->wtab_epoch[h] == t->epoch) {
		uint32_t i = t->wtab[h];
		if (t->ws[i].off == off)
			return (int)i;
		h = (h + 1) & t->wtab_mask;
	}
	return -1;
}

static void ws_hash(pstm_tx *t, uint32_t i)
{
	uint32_t h = word_hash(t->ws[i].off) & t->wtab_mask;
	while (t->wtab_epoch[h] == t->epoch)
		h = (h + 1) & t->wtab_mask;
	t->wtab_epoch[h] = t->epoch;
	t->wtab[h] = i;
}

/* Entry @t->nws - 1 was appended beyond the linear part: index it (and,
 * the first time, the linear part). */
static __attribute__((noinline)) void ws_index(pstm_tx *t)
{
	uint32_t i = t->nws - 1;
	if (i == WS_LINEAR)
		for (uint32_t k = 0; k < WS_LINEAR; k++)
			ws_hash(t, k);
	ws_hash(t, i);
}

static inline void ws_append(pstm_tx *t, uint64_t off, uint64_t v)
{
	t->ws[t->nws++] = (struct wentry){off, v};
	t->wbloom |= bloom_bit(off);
	if (__builtin_expect(t->nws > WS_LINEAR, 0))
		ws_index(t);
}

/*
 * Double the write set's room, and the hash table's with it (entries keep
 * their order: they are the redo record).  Larger than the ring holds,
 * the record goes to an overflow extent at commit (lib/overflow.c): a
 * format 1 region has none, and an inevitable transaction can use only
 * the one its slot has.
 */
void stm_grow_ws(pstm_tx *t)
{
	struct pstm_region *r = t->r;
	if (t->nws >= r->log_cap && !r->ovf_ok)
		stm_fail(t, PSTM_ELOGFULL);
	if (t->ws_cap >= (1u << 30))
		stm_fail(t, PSTM_ELOGFULL); /* 16 GiB of redo entries */
	uint32_t cap = t->ws_cap * 2, tab = (t->wtab_mask + 1) * 2;
	struct wentry *ws = realloc(t->ws, sizeof(*ws) * cap);
	if (!ws)
		stm_fail(t, PSTM_ENOMEM);
	t->ws = ws;
	uint32_t *wt = malloc(sizeof(*wt) * tab);
	uint32_t *we = calloc(tab, sizeof(*we));
	if (!wt || !we) {
		free(wt);
		free(we);
		stm_fail(t, PSTM_ENOMEM);
	}
	free(t->wtab);
	free(t->wtab_epoch);
	t->wtab = wt;
	t->wtab_epoch = we;
	t->wtab_mask = tab - 1;
	t->epoch = 1;
	if (t->nws > WS_LINEAR)
		for (uint32_t i = 0; i < t->nws; i++)
			ws_hash(t, i);
	t->ws_cap = t->ws_limit = cap;
}

static __attribute__((noinline)) void ws_put_slow(pstm_tx *t, uint64_t off,
						  uint64_t v)
{
	int i = ws_find(t, off);
	if (i >= 0) {
		t->ws[i].val = v;
		return;
	}
	if (t->read_only)
		stm_fail(t, PSTM_EINVAL); /* a store in pstm_atomic_ro */
	if (t->nws == t->ws_cap)
		stm_grow_ws(t);
	if (t->inevitable) {
		if (t->nws >= t->r->log_cap && t->nws >= t->ovf_cap)
			stm_fail(t, PSTM_ELOGFULL); /* lib/overflow.c */
		stm_inevitable_lock(t, region_orec_idx(t->r, off));
	}
	ws_append(t, off, v);
}

/* Buffer a store: found again by later loads, written at commit. */
static inline void ws_put(pstm_tx *t, uint64_t off, uint64_t v)
{
	if (__builtin_expect((t->wbloom & bloom_bit(off)) || t->nws == t->ws_limit, 0))
		ws_put_slow(t, off, v);
	else
		ws_append(t, off, v);
}

__attribute__((noinline)) void stm_rs_push(pstm_tx *t, uint64_t idx, uint64_t o)
{
	if (t->nrs == t->rs_cap) {
		if (t->rs_cap >= (1u << 31))
			stm_fail(t, PSTM_ENOMEM);
		uint32_t nc = t->rs_cap * 2;
		struct rentry *n = realloc(t->rs, sizeof(*n) * nc);
		if (!n)
			stm_fail(t, PSTM_ENOMEM);
		t->rs = n;
		t->rs_cap = nc;
	}
	t->rs[t->nrs++] = (struct rentry){idx, o};
}

/* ------------------------------------------------------------ access */

static inline void check_range(pstm_tx *t, uint64_t off, uint64_t n, uint64_t lo)
{
	if (__builtin_expect(off < lo || off > t->r->heap_hi ||
				     n > t->r->heap_hi - off, 0))
		stm_fail(t, PSTM_ERANGE);
}

/*
 * One compare for the common case: an aligned word in the user heap.
 * The offset into the heap wraps when off < heap_lo; rotated right by 3,
 * a misaligned one's low bits land at the top: either way it exceeds the
 * last word's index.
 */
static inline bool user_word_ok(pstm_tx *t, uint64_t off)
{
	uint64_t rel = off - t->r->heap_lo;
	return ((rel >> 3) | (rel << 61)) <= t->r->heap_wspan;
}

/*
 * stm_extend() for a slotless descriptor (a handle that attaches nothing,
 * r->rt_readonly), which may not raise the clock: its runtime mapping is
 * read-only.  The word just loaded (@v, at orec word @o1 of orec @idx,
 * newer than rv) joins the read set first; then rv moves to the clock as
 * read here, never past it, and every read, that word included, must
 * still be current.  If so, all of them held together at the validation,
 * which followed the clock read: a commit that locks any of them later
 * reads a clock >= rv (it locks, then reads the clock), so its wv > rv
 * and a later load of its words comes back here; one that locked earlier
 * failed the validation.  That is what raising the clock buys the normal
 * path, and @v may be newer than rv (GV5: nobody raised the clock to it
 * yet): it is taken on the strength of the validation alone.  Each such
 * word costs a validation of the read set until some writer raises the
 * clock.  Returns @v, or aborts.
 */
static __attribute__((noinline)) uint64_t take_newer(pstm_tx *t, uint64_t idx,
						     uint64_t o1, uint64_t v,
						     uint64_t off)
{
	stm_rs_push(t, idx, o1);
	stm_newer_push(t, off, v, 0, 0); /* the version may repeat: the value tells */
	if (!stm_revalidate_at(t, atomic_load_explicit(&t->r->rt->clock,
						   memory_order_acquire))) {
		t->cf.hint_off = off;
		stm_abort(t, ST_AB_READ);
	}
	return v;
}

/*
 * Transactional load of the aligned, range-checked word at @off: the slow
 * path, for every case the fast path below declines (own write, locked or
 * changing orec, version newer than the snapshot, full read set).
 */
static __attribute__((noinline)) uint64_t load_slow(pstm_tx *t, uint64_t off)
{
	struct pstm_region *r = t->r;

	if (t->wbloom & bloom_bit(off)) {
		int i = ws_find(t, off);
		if (i >= 0)
			return t->ws[i].val;
	}
	uint64_t idx = region_orec_idx(r, off);
	if (t->inevitable) {
		/* locked by us from now on: nobody can write it back */
		stm_inevitable_lock(t, idx);
		return __atomic_load_n(region_word(r, off), DATA_LOAD);
	}
	_Atomic uint64_t *o = &r->orecs[idx];
	const uint64_t *w = region_word(r, off);
	uint64_t o1 = atomic_load_explicit(o, memory_order_acquire);
	for (;;) {
		if (orec_is_locked(o1)) {
			t->cf.hint_off = off; /* if it aborts: where */
			uint64_t val;
			/* a lock word read through before is a commit that
			 * was already slow past its commit point: no spin */
			uint64_t *seen = &t->through_seen[idx % THROUGH_SEEN];
			if (*seen == o1 && stm_read_through(t, off, idx, o, o1, true, &val))
				return val;
			o1 = stm_spin_unlocked(o, o1);
			if (!orec_is_locked(o1))
				continue;
			if (stm_read_through(t, off, idx, o, o1, false, &val)) {
				*seen = o1;
				return val;
			}
			o1 = stm_wait_after_spin(t, o, o1, ST_AB_READ);
			continue;
		}
		uint64_t v = __atomic_load_n(w, DATA_LOAD);
		fence_acquire();
		uint64_t o2 = atomic_load_explicit(o, memory_order_relaxed);
		if (o1 != o2) {
			o1 = o2;
			continue;
		}
		if (orec_version(o1) > t->rv && !TESTING_NO_VALIDATE(r)) {
			if (__builtin_expect(t->slot == TXD_NO_SLOT, 0))
				return take_newer(t, idx, o1, v, off);
			if (!stm_extend(t, orec_version(o1))) {
				t->cf.hint_off = off;
				stm_abort(t, ST_AB_READ);
			}
			continue;
		}
		stm_rs_push(t, idx, o1);
		return v;
	}
}

/*
 * The fast path: no own write to this word, orec unlocked and unchanged
 * around the data load, version within the snapshot.  o1 <= rv_bound
 * tests "unlocked (bit 0) or locked" and "version <= rv" at once only
 * together with the lock-bit test, so both are spelled out.
 */
static inline uint64_t load_word(pstm_tx *t, uint64_t off)
{
	struct pstm_region *r = t->r;
	uint64_t idx = region_orec_idx(r, off);
	_Atomic uint64_t *o = &r->orecs[idx];
	uint64_t o1 = atomic_load_explicit(o, memory_order_acquire);
	uint64_t v = __atomic_load_n(region_word(r, off), DATA_LOAD);
	fence_acquire();
	uint64_t o2 = atomic_load_explicit(o, memory_order_relaxed);
	if (__builtin_expect((t->wbloom & bloom_bit(off)) != 0, 0) ||
	    __builtin_expect(o1 != o2, 0) ||
	    __builtin_expect(orec_is_locked(o1), 0) ||
	    __builtin_expect(o1 > t->rv_bound, 0) ||
	    __builtin_expect(t->nrs == t->rs_cap, 0))
		return load_slow(t, off);
	t->rs[t->nrs++] = (struct rentry){idx, o1};
	return v;
}

uint64_t stm_load(pstm_tx *t, uint64_t off, uint64_t lo)
{
	check_range(t, off, 8, lo);
	if (off & 7)
		stm_fail(t, PSTM_EINVAL);
	return load_word(t, off);
}

void stm_store(pstm_tx *t, uint64_t off, uint64_t v, uint64_t lo)
{
	check_range(t, off, 8, lo);
	if (off & 7)
		stm_fail(t, PSTM_EINVAL);
	ws_put(t, off, v);
}

void pstm_read(pstm_tx *tx, pstm_off off, void *dst, size_t n)
{
	pstm_tx *t = tx;
	uint8_t *d = dst;

	check_range(t, off, n, t->r->heap_lo);
	while (n) {
		uint64_t w = off & ~7ull, sh = off & 7;
		size_t k = 8 - sh < n ? 8 - sh : n;
		uint64_t v = load_word(t, w);
		memcpy(d, (uint8_t *)&v + sh, k);
		d += k;
		off += k;
		n -= k;
	}
}

void pstm_write(pstm_tx *tx, pstm_off off, const void *src, size_t n)
{
	pstm_tx *t = tx;
	const uint8_t *s = src;

	check_range(t, off, n, t->r->heap_lo);
	while (n) {
		uint64_t w = off & ~7ull, sh = off & 7;
		size_t k = 8 - sh < n ? 8 - sh : n;
		uint64_t v = 0;
		if (k != 8)
			v = load_word(t, w);
		memcpy((uint8_t *)&v + sh, s, k);
		ws_put(t, w, v);
		s += k;
		off += k;
		n -= k;
	}
}

/* unaligned, or a range error: out of line, so that the fast paths
 * below keep their word in a register */
static __attribute__((noinline)) uint64_t load64_other(pstm_tx *tx, pstm_off off)
{
	uint64_t v;
	pstm_read(tx, off, &v, 8);
	return v;
}

static __attribute__((noinline)) void store64_other(pstm_tx *tx, pstm_off off,
						    uint64_t v)
{
	pstm_write(tx, off, &v, 8);
}

uint64_t pstm_load64(pstm_tx *tx, pstm_off off)
{
	if (__builtin_expect(!user_word_ok(tx, off), 0))
		return load64_other(tx, off);
	return load_word(tx, off);
}

void pstm_store64(pstm_tx *tx, pstm_off off, uint64_t v)
{
	if (__builtin_expect(!user_word_ok(tx, off), 0)) {
		store64_other(tx, off, v);
		return;
	}
	ws_put(tx, off, v);
}

pstm_region *pstm_tx_region(pstm_tx *tx) { return tx ? tx->r : NULL; }

