/*
 * stm.c - the word-based STM (TL2 / TinySTM-LSA family) over a region.
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
 * Commit of an update transaction (read-only ones just return: they
 * write nothing shared):
 *   1. copy the write set into a redo record in this slot's log area
 *      (durable: appended to the slot's ring), state LOCKING
 *   2. lock every written orec by CAS (version kept, slot in the word)
 *   3. wv = clock + 1 (the clock is not written: GV5, see below);
 *      revalidate the reads
 *   4. durable: publish inflight, take a sequence number, crc; state
 *      COMMITTED; persist the record                      <- commit point
 *   5. write the words back (the media gets them at the next checkpoint);
 *      durable: inflight = 0
 *   6. state RELEASING
 *   7. release each orec with version wv; state IDLE
 * A process that dies anywhere here is settled by redo_log_recover_slot:
 * before 4 its locks are dropped (nothing changed), from 4 on its record
 * is replayed and its orecs released with wv.  After a power failure the
 * durable records above the horizon are replayed (redo_log.c).
 *
 * Unwinding.  Conflicts and errors siglongjmp to the driver in
 * pstm_atomic, which rolls back and re-runs (conflict) or returns the
 * error.  Nested pstm_atomic calls are flattened into the outermost.
 *
 * Contention management.  After an abort the driver backs off for a
 * random time that doubles with each retry (capped), yielding the CPU
 * after a few.  After ESCALATE_AFTER consecutive aborts the transaction
 * takes the region's serial token: no transaction of any process begins
 * while it is held, so the holder soon runs alone and commits.  The token
 * of a dead holder is cleared by its recoverer.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "proc.h"
#include "redo_log.h"
#include "stm.h"

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

#define JUMP_RETRY 1
#define JUMP_ERROR 2
#define ESCALATE_AFTER 64
#define LOCK_SPINS 256
#define STATS_FLUSH_EVERY 256

static __thread txd *tl_cur;          /* running transaction, if any */
static __thread struct {
	uint64_t open_id;
	txd *t;
} tl_cache;

bool tx_running(void) { return tl_cur != NULL; }

/* ------------------------------------------------------- statistics */

static void stats_flush(txd *t)
{
	struct slot *sl = &t->r->slots[t->slot];
	for (int k = 0; k < ST_COUNT; k++)
		atomic_store_explicit(&sl->stats[k], t->st[k], memory_order_relaxed);
	t->st_unflushed = 0;
}

void stm_count_recovery(struct pstm_region *r)
{
	txd *t = tl_cache.open_id == r->open_id ? tl_cache.t : NULL;
	if (t)
		t->st[ST_RECOVERIES]++;
	else if (r->in_open) /* not attached yet: counted after attach */
		r->open_recoveries++;
	else
		atomic_fetch_add_explicit(&r->procs[r->proc_idx].stats[ST_RECOVERIES],
					  1, memory_order_relaxed);
}

int pstm_stats_get(pstm_region *r, struct pstm_stats *out)
{
	uint64_t sum[ST_COUNT] = {0};

	if (!r || !out)
		return PSTM_EINVAL;
	pthread_mutex_lock(&r->lock);
	for (txd *t = r->txds; t; t = t->next)
		if (t == tl_cache.t && t->depth == 0)
			stats_flush(t);
	pthread_mutex_unlock(&r->lock);
	for (int k = 0; k < ST_COUNT; k++)
		sum[k] = atomic_load_explicit(&r->procs[r->proc_idx].stats[k],
					      memory_order_relaxed);
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		uint64_t st = atomic_load_explicit(&r->slots[s].state,
						   memory_order_acquire);
		if (SLOT_ST(st) != SLOT_ACTIVE || SLOT_PROC(st) != r->proc_idx)
			continue;
		for (int k = 0; k < ST_COUNT; k++)
			sum[k] += atomic_load_explicit(&r->slots[s].stats[k],
						       memory_order_relaxed);
	}
	out->commits = sum[ST_COMMITS];
	out->commits_ro = sum[ST_COMMITS_RO];
	out->aborts_read = sum[ST_AB_READ];
	out->aborts_lock = sum[ST_AB_LOCK];
	out->aborts_validate = sum[ST_AB_VALIDATE];
	out->aborts_user = sum[ST_AB_USER];
	out->escalations = sum[ST_ESCALATIONS];
	out->recoveries = sum[ST_RECOVERIES];
	return 0;
}

/* ------------------------------------------------------ descriptors */

static void txd_free(txd *t)
{
	free(t->ws);
	free(t->wtab);
	free(t->wtab_epoch);
	free(t->rs);
	free(t->locks);
	free(t);
}

static txd *txd_new(struct pstm_region *r)
{
	txd *t = calloc(1, sizeof(*t));
	uint32_t tab = 16;

	if (!t)
		return NULL;
	t->r = r;
	t->ws_cap = r->log_cap;
	while (tab < 2 * t->ws_cap)
		tab <<= 1;
	t->wtab_mask = tab - 1;
	t->ws = malloc(sizeof(*t->ws) * t->ws_cap);
	t->wtab = malloc(sizeof(*t->wtab) * tab);
	t->wtab_epoch = calloc(tab, sizeof(*t->wtab_epoch));
	t->locks = malloc(sizeof(*t->locks) * t->ws_cap);
	t->rs_cap = 1024;
	t->rs = malloc(sizeof(*t->rs) * t->rs_cap);
	t->prng = (uint64_t)(uintptr_t)t ^ ((uint64_t)getpid() << 32) ^
		  (uint64_t)clock();
	if (!t->prng)
		t->prng = 88172645463325252ull;
	if (!t->ws || !t->wtab || !t->wtab_epoch || !t->locks || !t->rs) {
		txd_free(t);
		return NULL;
	}
	int s = slot_claim(r);
	if (s < 0) {
		txd_free(t);
		return NULL;
	}
	t->slot = (uint32_t)s;
	/* a fresh slot's log must be idle (its previous owner settled it) */
	pthread_mutex_lock(&r->lock);
	t->next = r->txds;
	r->txds = t;
	pthread_mutex_unlock(&r->lock);
	return t;
}

static void txd_unlink(struct pstm_region *r, txd *t)
{
	for (txd **p = &r->txds; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			return;
		}
}

void stm_thread_exit(void *p)
{
	txd *t = p;
	struct pstm_region *r = t->r;

	stats_flush(t);
	pthread_mutex_lock(&r->lock);
	txd_unlink(r, t);
	pthread_mutex_unlock(&r->lock);
	slot_release(r, t->slot);
	if (tl_cache.t == t)
		tl_cache.open_id = 0;
	txd_free(t);
}

void stm_release_all(struct pstm_region *r)
{
	pthread_mutex_lock(&r->lock);
	while (r->txds) {
		txd *t = r->txds;
		r->txds = t->next;
		stats_flush(t);
		slot_release(r, t->slot);
		if (tl_cache.t == t)
			tl_cache.open_id = 0;
		txd_free(t);
	}
	pthread_mutex_unlock(&r->lock);
}

/* This thread's descriptor for @r, claiming a slot on first use. */
static txd *txd_get(struct pstm_region *r, int *err)
{
	if (tl_cache.open_id == r->open_id)
		return tl_cache.t;
	txd *t = pthread_getspecific(r->key);
	if (!t) {
		t = txd_new(r);
		if (!t) {
			*err = PSTM_ESLOTFULL;
			return NULL;
		}
		if (pthread_setspecific(r->key, t) != 0) {
			stm_thread_exit(t);
			*err = PSTM_ENOMEM;
			return NULL;
		}
	}
	tl_cache.open_id = r->open_id;
	tl_cache.t = t;
	return t;
}

/* ---------------------------------------------------------- aborting */

static void drop_hooks(txd *t)
{
	while (t->hooks) {
		struct tx_hook *h = t->hooks;
		t->hooks = h->next;
		free(h);
	}
}

/* Run (and free) the commit hooks of a committed transaction, in the
 * order they were added (the list is newest first). */
static void run_hooks(struct pstm_region *r, struct tx_hook *h)
{
	struct tx_hook *rev = NULL;
	while (h) {
		struct tx_hook *n = h;
		h = n->next;
		n->next = rev;
		rev = n;
	}
	while (rev) {
		struct tx_hook *n = rev;
		rev = n->next;
		n->fn(r, n->a, n->b);
		free(n);
	}
}

/* Unlock what we locked at commit, keeping the old versions. */
static void release_locks_unchanged(txd *t)
{
	struct pstm_region *r = t->r;
	for (uint32_t i = 0; i < t->nlocks; i++) {
		_Atomic uint64_t *o = &r->orecs[t->locks[i]];
		uint64_t v = atomic_load_explicit(o, memory_order_relaxed);
		atomic_store_explicit(o, orec_make(orec_version(v)),
				      memory_order_release);
	}
	t->nlocks = 0;
	atomic_store_explicit(&region_log(r, t->slot)->state, LOG_IDLE,
			      memory_order_release);
}

static _Noreturn void tx_abort(txd *t, int cause)
{
	t->st[cause]++;
	if (t->nlocks)
		release_locks_unchanged(t);
	drop_hooks(t);
	siglongjmp(t->env, JUMP_RETRY);
}

void stm_fail(txd *t, int err)
{
	t->err = err;
	if (t->nlocks)
		release_locks_unchanged(t);
	drop_hooks(t);
	siglongjmp(t->env, JUMP_ERROR);
}

/* -------------------------------------------------------- validation */

static bool validate(txd *t)
{
	struct pstm_region *r = t->r;
	uint64_t mine = ((uint64_t)t->slot << 1) | OREC_LOCK;

	for (uint32_t i = 0; i < t->nrs; i++) {
		uint64_t cur = atomic_load_explicit(&r->orecs[t->rs[i].idx],
						    memory_order_acquire);
		if (cur == t->rs[i].o)
			continue;
		if ((cur & ((1ull << OREC_VSHIFT) - 1)) == mine &&
		    orec_make(orec_version(cur)) == t->rs[i].o)
			continue; /* locked by us at commit, unchanged before */
		return false;
	}
	return true;
}

/*
 * Move the snapshot forward to include version @seen (which is newer than
 * rv): the clock is raised to at least @seen (committers do not advance
 * it, see commit()), then every read so far must still be current.
 */
static bool extend(txd *t, uint64_t seen)
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
	if (!validate(t))
		return false;
	t->rv = now;
	t->rv_bound = orec_make(now) | ((1ull << OREC_VSHIFT) - 1);
	return true;
}

/*
 * Is @v, still in orec @o, a lock that nobody owns?  Slots are freed only
 * after their locks are released, so a lock naming a slot that stays free
 * (same state word, no claim in between) for 10 ms can only come from a
 * bug or a damaged runtime: the transaction ends with PSTM_ECORRUPT
 * (pstm check names it) instead of waiting forever.
 */
static bool orphan_lock(struct pstm_region *r, _Atomic uint64_t *o, uint64_t v)
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
 * The orec at @o is locked by another slot.  Wait briefly for its commit
 * to finish; if it does not, check whether its owner died (and recover it)
 * or give up with an abort.  Returns the new orec value.
 */
static uint64_t wait_unlocked(txd *t, _Atomic uint64_t *o, uint64_t v,
			      int cause)
{
	for (int i = 0; i < LOCK_SPINS; i++) {
		cpu_relax();
		v = atomic_load_explicit(o, memory_order_acquire);
		if (!orec_is_locked(v))
			return v;
	}
	if (slot_owner_dead_recover(t->r, orec_owner(v))) {
		uint64_t nv = atomic_load_explicit(o, memory_order_acquire);
		if (nv == v && orphan_lock(t->r, o, v))
			stm_fail(t, PSTM_ECORRUPT);
		return nv;
	}
	tx_abort(t, cause);
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

static int ws_find(txd *t, uint64_t off)
{
	uint32_t h = word_hash(off) & t->wtab_mask;
	while (t->wtab_epoch[h] == t->epoch) {
		uint32_t i = t->wtab[h];
		if (t->ws[i].off == off)
			return (int)i;
		h = (h + 1) & t->wtab_mask;
	}
	return -1;
}

static void ws_append(txd *t, uint64_t off, uint64_t v)
{
	uint32_t h = word_hash(off) & t->wtab_mask;
	while (t->wtab_epoch[h] == t->epoch)
		h = (h + 1) & t->wtab_mask;
	t->wtab_epoch[h] = t->epoch;
	t->wtab[h] = t->nws;
	t->ws[t->nws++] = (struct wentry){off, v};
	t->wbloom |= bloom_bit(off);
}

static __attribute__((noinline)) void ws_put_slow(txd *t, uint64_t off,
						  uint64_t v)
{
	int i = ws_find(t, off);
	if (i >= 0) {
		t->ws[i].val = v;
		return;
	}
	if (t->nws == t->ws_cap)
		stm_fail(t, PSTM_ELOGFULL);
	ws_append(t, off, v);
}

/* Buffer a store: found again by later loads, written at commit. */
static inline void ws_put(txd *t, uint64_t off, uint64_t v)
{
	if (__builtin_expect((t->wbloom & bloom_bit(off)) || t->nws == t->ws_cap, 0))
		ws_put_slow(t, off, v);
	else
		ws_append(t, off, v);
}

static __attribute__((noinline)) void rs_push(txd *t, uint64_t idx, uint64_t o)
{
	if (t->nrs == t->rs_cap) {
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

static inline void check_range(txd *t, uint64_t off, uint64_t n, uint64_t lo)
{
	if (__builtin_expect(off < lo || off > t->r->heap_hi ||
				     n > t->r->heap_hi - off, 0))
		stm_fail(t, PSTM_ERANGE);
}

/* One compare for the common case: aligned word in the user heap. */
static inline bool user_word_ok(txd *t, uint64_t off)
{
	uint64_t rel = off - t->r->heap_lo; /* wraps when off < heap_lo */
	return rel <= t->r->heap_hi - t->r->heap_lo - 8 && !(off & 7);
}

/*
 * Transactional load of the aligned, range-checked word at @off: the slow
 * path, for every case the fast path below declines (own write, locked or
 * changing orec, version newer than the snapshot, full read set).
 */
static __attribute__((noinline)) uint64_t load_slow(txd *t, uint64_t off)
{
	struct pstm_region *r = t->r;

	if (t->wbloom & bloom_bit(off)) {
		int i = ws_find(t, off);
		if (i >= 0)
			return t->ws[i].val;
	}
	uint64_t idx = region_orec_idx(r, off);
	_Atomic uint64_t *o = &r->orecs[idx];
	const uint64_t *w = region_word(r, off);
	uint64_t o1 = atomic_load_explicit(o, memory_order_acquire);
	for (;;) {
		if (orec_is_locked(o1)) {
			o1 = wait_unlocked(t, o, o1, ST_AB_READ);
			continue;
		}
		uint64_t v = __atomic_load_n(w, DATA_LOAD);
		fence_acquire();
		uint64_t o2 = atomic_load_explicit(o, memory_order_relaxed);
		if (o1 != o2) {
			o1 = o2;
			continue;
		}
		if (orec_version(o1) > t->rv && !r->test_no_validate) {
			if (!extend(t, orec_version(o1)))
				tx_abort(t, ST_AB_READ);
			continue;
		}
		rs_push(t, idx, o1);
		return v;
	}
}

/*
 * The fast path: no own write to this word, orec unlocked and unchanged
 * around the data load, version within the snapshot.  o1 <= rv_bound
 * tests "unlocked (bit 0) or locked" and "version <= rv" at once only
 * together with the lock-bit test, so both are spelled out.
 */
static inline uint64_t load_word(txd *t, uint64_t off)
{
	struct pstm_region *r = t->r;
	uint64_t idx = region_orec_idx(r, off);
	_Atomic uint64_t *o = &r->orecs[idx];
	uint64_t o1 = atomic_load_explicit(o, memory_order_acquire);
	uint64_t v = __atomic_load_n(region_word(r, off), DATA_LOAD);
	fence_acquire();
	uint64_t o2 = atomic_load_explicit(o, memory_order_relaxed);
	if (__builtin_expect((t->wbloom & bloom_bit(off)) | (o1 != o2) |
				     orec_is_locked(o1) | (o1 > t->rv_bound) |
				     (t->nrs == t->rs_cap),
			     0))
		return load_slow(t, off);
	t->rs[t->nrs++] = (struct rentry){idx, o1};
	return v;
}

uint64_t stm_load(txd *t, uint64_t off, uint64_t lo)
{
	check_range(t, off, 8, lo);
	if (off & 7)
		stm_fail(t, PSTM_EINVAL);
	return load_word(t, off);
}

void stm_store(txd *t, uint64_t off, uint64_t v, uint64_t lo)
{
	check_range(t, off, 8, lo);
	if (off & 7)
		stm_fail(t, PSTM_EINVAL);
	ws_put(t, off, v);
}

void pstm_read(pstm_tx *tx, pstm_off off, void *dst, size_t n)
{
	txd *t = tx;
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
	txd *t = tx;
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

uint64_t pstm_load64(pstm_tx *tx, pstm_off off)
{
	if (__builtin_expect(!user_word_ok(tx, off), 0)) {
		uint64_t v;
		pstm_read(tx, off, &v, 8); /* unaligned, or a range error */
		return v;
	}
	return load_word(tx, off);
}

void pstm_store64(pstm_tx *tx, pstm_off off, uint64_t v)
{
	if (__builtin_expect(!user_word_ok(tx, off), 0)) {
		pstm_write(tx, off, &v, 8);
		return;
	}
	ws_put(tx, off, v);
}

pstm_region *pstm_tx_region(pstm_tx *tx) { return tx ? tx->r : NULL; }

/* ------------------------------------------------- the boundary (tx.h) */

void tx_info(pstm_tx *t, struct tx_info *o)
{
	struct pstm_region *r = t->r;
	o->meta_lo = r->sb.heap_off;
	o->heap_lo = r->heap_lo;
	o->heap_hi = r->heap_hi;
	o->slot = t->slot;
	o->max_slots = r->sb.max_slots;
	o->write_cap = t->ws_cap;
	o->handle_id = r->open_id;
}

uint64_t tx_attempt(pstm_tx *t)
{
	return ((uint64_t)(t->slot + 1) << 32) | t->epoch;
}

uint64_t tx_load_meta(pstm_tx *t, uint64_t off)
{
	return stm_load(t, off, t->r->sb.heap_off);
}

void tx_store_meta(pstm_tx *t, uint64_t off, uint64_t v)
{
	stm_store(t, off, v, t->r->sb.heap_off);
}

void tx_fail(pstm_tx *t, int err) { stm_fail(t, err); }

void tx_on_commit(pstm_tx *t, tx_hook_fn fn, void *a, void *b)
{
	struct tx_hook *h = malloc(sizeof(*h));
	if (!h)
		stm_fail(t, PSTM_ENOMEM);
	*h = (struct tx_hook){fn, a, b, t->hooks};
	t->hooks = h;
}

/* A scratch buffer rides on a hook node that does nothing: the hook list
 * frees it when the attempt commits (run_hooks) or ends otherwise
 * (drop_hooks). */
static void scratch_done(pstm_region *r, void *a, void *b)
{
	(void)r;
	(void)a;
	(void)b;
}

void *tx_scratch(pstm_tx *t, size_t n)
{
	struct tx_hook *h = n <= SIZE_MAX - sizeof(*h) ? malloc(sizeof(*h) + n) : NULL;
	if (!h)
		stm_fail(t, PSTM_ENOMEM);
	*h = (struct tx_hook){scratch_done, NULL, NULL, t->hooks};
	t->hooks = h;
	return h + 1;
}

/* ------------------------------------------------------------ commit */

static void commit(txd *t)
{
	struct pstm_region *r = t->r;

	if (t->nws == 0) {
		t->st[ST_COMMITS_RO]++; /* flushed later: no shared write */
		return;
	}
	struct log_header *h = region_log(r, t->slot);
	struct slot *sl = &r->slots[t->slot];
	const uint64_t mine = ((uint64_t)t->slot << 1) | OREC_LOCK;
	const uint64_t rbytes = record_bytes(t->nws);

	/*
	 * 1. the write set into a redo record: recovery can name our orecs.
	 * Durable regions append to the slot's ring; when it is full, a
	 * checkpoint first makes every record in it obsolete.
	 */
	uint64_t pos = 0;
	if (r->durable) {
		pos = atomic_load_explicit(&sl->ring_head, memory_order_relaxed);
		if (pos + rbytes > r->ring_bytes) {
			int rc = redo_log_checkpoint(r, atomic_load(&r->rt->dseq) - 1);
			if (rc)
				stm_fail(t, rc); /* nothing locked yet */
			pos = 0;
			if (r->relaxed) /* the flusher tells rounds apart */
				atomic_fetch_add_explicit(&sl->wrap, 1,
							  memory_order_relaxed);
		}
	}
	struct log_record *rec = region_record(r, t->slot, pos);
	memcpy(record_entries(rec), t->ws, sizeof(struct log_entry) * t->nws);
	rec->count = t->nws;
	rec->magic = LOG_REC_MAGIC;
	h->rec_off = pos;
	h->count = t->nws;
	h->wrap = atomic_load_explicit(&sl->wrap, memory_order_relaxed);
	atomic_store_explicit(&h->state, LOG_LOCKING, memory_order_release);
	CRASH_POINT(CP_COMMIT_LOCKING);

	/* 2. lock */
	for (uint32_t i = 0; i < t->nws; i++) {
		uint64_t idx = region_orec_idx(r, t->ws[i].off);
		_Atomic uint64_t *o = &r->orecs[idx];
		uint64_t v = atomic_load_explicit(o, memory_order_relaxed);
		for (;;) {
			if (orec_is_locked(v)) {
				if ((v & ((1ull << OREC_VSHIFT) - 1)) == mine)
					break; /* shared orec, already ours */
				v = wait_unlocked(t, o, v, ST_AB_LOCK);
				continue;
			}
			if (atomic_compare_exchange_weak_explicit(
				    o, &v, orec_make_locked(v, t->slot),
				    memory_order_acquire, memory_order_relaxed)) {
				t->locks[t->nlocks++] = idx;
				break;
			}
		}
	}
	/* data stores below must not become visible before the locks */
	fence_release();
	CRASH_POINT(CP_COMMIT_LOCKED);

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
	if (!r->test_no_validate && !validate(t))
		tx_abort(t, ST_AB_VALIDATE);

	/*
	 * 4. commit point.  Durable: a sequence number orders our record
	 * against others writing the same words; inflight (a lower bound of
	 * it, published first, seq_cst) keeps checkpoints from declaring it
	 * in the data before our write-back; then the record is persisted.
	 */
	h->wv = wv;
	if (r->durable) {
		atomic_store(&sl->inflight, atomic_load(&r->rt->dseq));
		rec->seq = atomic_fetch_add(&r->rt->dseq, 1);
		rec->crc = redo_log_crc(rec);
	}
	CRASH_POINT(CP_COMMIT_SEALED);
	atomic_store_explicit(&h->state, LOG_COMMITTED, memory_order_release);
	if (r->relaxed) /* the flusher may copy it now; nothing waits */
		atomic_store_explicit(&sl->pub, h->wrap << 32 | (pos + rbytes),
				      memory_order_release);
	else if (r->durable)
		redo_log_persist_record(r, t->slot, rec, rbytes);
	CRASH_POINT(CP_COMMIT_LOGGED);

	/* 5. write back; the media gets it at the next checkpoint */
	for (uint32_t i = 0; i < t->nws; i++)
		__atomic_store_n(region_word(r, t->ws[i].off), t->ws[i].val,
				 DATA_STORE);
	if (r->durable) {
		atomic_store_explicit(&sl->ring_head, pos + rbytes,
				      memory_order_relaxed);
		atomic_store(&sl->inflight, 0);
	}
	CRASH_POINT(CP_COMMIT_WRITTEN);

	/* 6. written back: a recoverer must not replay any more */
	atomic_store_explicit(&h->state, LOG_RELEASING, memory_order_release);
	CRASH_POINT(CP_COMMIT_RETIRED);

	/* 7. release */
	const uint64_t nv = orec_make(wv);
	for (uint32_t i = 0; i < t->nlocks; i++) {
		if (i == t->nlocks / 2)
			CRASH_POINT(CP_COMMIT_RELEASED);
		atomic_store_explicit(&r->orecs[t->locks[i]], nv,
				      memory_order_release);
	}
	t->nlocks = 0;
	atomic_store_explicit(&h->state, LOG_IDLE, memory_order_relaxed);

	t->st[ST_COMMITS]++;
	if (++t->st_unflushed >= STATS_FLUSH_EVERY)
		stats_flush(t);
}

/* ------------------------------------------------------------ driver */

static void wait_serial(txd *t)
{
	struct pstm_region *r = t->r;
	uint64_t me = t->slot + 1, s;
	unsigned n = 0;

	while ((s = atomic_load_explicit(&r->rt->serial, memory_order_acquire)) &&
	       s != me) {
		if (++n % 64 == 0) {
			if (n % 4096 == 0)
				slot_owner_dead_recover(r, (uint32_t)(s - 1));
			sched_yield();
		} else {
			cpu_relax();
		}
	}
}

static void escalate(txd *t)
{
	struct pstm_region *r = t->r;
	uint64_t zero;

	for (;;) {
		wait_serial(t);
		zero = 0;
		if (atomic_compare_exchange_strong_explicit(
			    &r->rt->serial, &zero, t->slot + 1,
			    memory_order_acq_rel, memory_order_relaxed))
			break;
	}
	t->escalated = true;
	t->st[ST_ESCALATIONS]++;
}

static void backoff(txd *t)
{
	t->retries++;
	if (t->retries >= ESCALATE_AFTER && !t->escalated) {
		escalate(t);
		return;
	}
	if (t->escalated)
		return;
	unsigned shift = t->retries < 12 ? t->retries : 12;
	uint64_t spins = xorshift64(&t->prng) & ((1ull << shift) - 1);
	for (uint64_t i = 0; i < spins; i++)
		cpu_relax();
	if (t->retries > 4)
		sched_yield();
}

static void begin(txd *t)
{
	if (__builtin_expect(atomic_load_explicit(&t->r->rt->serial,
						  memory_order_acquire) != 0, 0) &&
	    !t->escalated)
		wait_serial(t);
	t->nws = t->nrs = t->nlocks = 0;
	t->wbloom = 0;
	if (++t->epoch == 0) {
		memset(t->wtab_epoch, 0, sizeof(*t->wtab_epoch) * (t->wtab_mask + 1));
		t->epoch = 1;
	}
	t->rv = atomic_load_explicit(&t->r->rt->clock, memory_order_acquire);
	/* an orec word <= rv_bound has version <= rv; with the broken-
	 * validation test switch every version is accepted */
	t->rv_bound = t->r->test_no_validate ? UINT64_MAX
					     : orec_make(t->rv) | ((1ull << OREC_VSHIFT) - 1);
}

static void end(txd *t)
{
	if (t->escalated) {
		atomic_store_explicit(&t->r->rt->serial, 0, memory_order_release);
		t->escalated = false;
	}
	t->depth = 0;
	tl_cur = NULL;
}

static int drive(txd *t, pstm_fn fn, void *arg)
{
	volatile int rc = 0;

	t->retries = 0;
	t->depth = 1;
	tl_cur = t;
	int j = sigsetjmp(t->env, 0);
	if (j == JUMP_ERROR) {
		rc = t->err;
		t->st[ST_AB_USER]++;
		end(t);
		return rc;
	}
	if (j == JUMP_RETRY) {
		t->depth = 1;
		tl_cur = t;
		backoff(t);
	}
	begin(t);
	rc = fn(t, arg);
	if (rc != 0) {
		t->st[ST_AB_USER]++;
		drop_hooks(t);
		end(t);
		return rc;
	}
	commit(t);
	struct tx_hook *hooks = t->hooks;
	t->hooks = NULL;
	end(t);
	if (hooks)
		run_hooks(t->r, hooks);
	return 0;
}

int pstm_atomic(pstm_region *r, pstm_fn fn, void *arg)
{
	int err = 0;

	if (!r || !fn)
		return PSTM_EINVAL;
	txd *cur = tl_cur;
	if (cur) {
		/* flattened nesting */
		if (cur->r != r)
			return PSTM_EINVAL;
		int rc = fn(cur, arg);
		if (rc != 0) {
			cur->err = rc;
			drop_hooks(cur);
			if (cur->nlocks)
				release_locks_unchanged(cur);
			siglongjmp(cur->env, JUMP_ERROR);
		}
		return 0;
	}
	txd *t = txd_get(r, &err);
	if (!t)
		return err;
	return drive(t, fn, arg);
}
