/*
 * driver.c - running transactions: pstm_atomic and pstm_atomic_ro (the
 * unwinding form: conflicts and errors siglongjmp back here, and the
 * attempt re-runs or returns the error), the explicit, non-unwinding
 * form (pstm_tx_begin ... pstm_tx_commit), and contention management.
 *
 * Contention management.  After an abort the driver backs off for a
 * random time that doubles with each retry (capped), yielding the CPU
 * after a few.  After ESCALATE_AFTER consecutive aborts the transaction
 * takes the region's serial token: no transaction of any process begins
 * while it is held, so the holder soon runs alone and commits.  The token
 * of a dead holder is cleared by its recoverer.  Read-only transactions
 * neither take the token nor wait for it: they lock nothing and are never
 * validated against, so they cannot make the holder lose, and a holder
 * that stopped (SIGSTOP) or died does not block them.
 *
 * About 670 lines, one concept: the unwinding point and what runs under
 * it.  The explicit form's calls set the same point as pstm_atomic and
 * share begin/end/backoff with it; a file of their own would have to
 * export the attempt's inner steps, which the hot path keeps inline.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <setjmp.h>
#include <string.h>

#include <time.h>

#include "crash.h"
#include "proc.h"
#include "recovery.h"
#include "stm.h"
#include "testing.h"

#define ESCALATE_AFTER 64

#define tl_cur tl_txd_cache.cur
#define tl_in_abort_hooks tl_txd_cache.in_abort_hooks

/* Run the attempt's abort hooks, outside the transaction: they may not
 * start one (pstm_atomic returns PSTM_EINTX meanwhile). */
static void hooks_run_abort(pstm_tx *t)
{
	struct tx_hook *h = t->abort_hooks;
	if (!h)
		return;
	t->abort_hooks = NULL;
	tl_in_abort_hooks = true;
	hooks_run(t->r, h);
	tl_in_abort_hooks = false;
}

bool tx_running(void) { return tl_cur != NULL; }
bool pstm_in_tx(void) { return tl_cur != NULL; }
pstm_tx *stm_current(void) { return tl_cur; }

/*
 * Wait while another slot holds the serial token.  A holder loses it to
 * a waiter once its token and rt->serial_beat (beaten at each attempt
 * of an escalated transaction, and by pstm copy's held passes) have
 * stayed the same for SERIAL_REVOKE_NS and its process is stopped
 * (SIGSTOP, a debugger: slot_owner_stopped), or for SERIAL_IDLE_NS
 * whatever it does (frozen, asleep in its body, or just long).  The
 * token only buys a starving transaction a quiet region, and its
 * transaction stays correct without it (it validates like any other);
 * a holder that lost it takes it again at its next abort (backoff).
 * The holder clears it at the end only if it still holds it (CAS).
 *
 * Why not revoke a merely descheduled holder: on a loaded machine an
 * escalated attempt of a few ms of CPU spans several time slices of
 * others; revoked at each, it lost to the same transactions again and
 * again (test_stm's long transaction took up to 30 s beside two CPU hogs).
 */
#define SERIAL_REVOKE_NS 10000000ull
#define SERIAL_IDLE_NS 1000000000ull
static void wait_serial(pstm_tx *t)
{
	struct pstm_region *r = t->r;
	uint64_t me = t->slot + 1, s, seen = 0, seen_beat = 0, since = 0;
	uint64_t looked = 0;
	unsigned n = 0;

	while ((s = atomic_load_explicit(&r->rt->serial, memory_order_acquire)) &&
	       s != me) {
		if (++n % 64 == 0) {
			if (n % 4096 == 0)
				slot_owner_dead_recover(r, (uint32_t)(s - 1));
			uint64_t now = mono_ns();
			uint64_t beat = atomic_load_explicit(&r->rt->serial_beat,
							     memory_order_relaxed);
			if (s != seen || beat != seen_beat) {
				seen = s;
				seen_beat = beat;
				since = looked = now;
			} else if (now - since > SERIAL_IDLE_NS ||
				   (now - since > SERIAL_REVOKE_NS &&
				    now - looked > 1000000 && /* one look a ms */
				    (looked = now,
				     slot_owner_stopped(r, (uint32_t)(s - 1))))) {
				atomic_compare_exchange_strong_explicit(
					&r->rt->serial, &s, 0, memory_order_acq_rel,
					memory_order_relaxed);
			}
			sched_yield();
		} else {
			cpu_relax();
		}
	}
}

static void escalate(pstm_tx *t)
{
	struct pstm_region *r = t->r;
	uint64_t zero;

	for (;;) {
		wait_serial(t);
		/* a side transaction (stm_run_side) of the holder: it runs
		 * alone already */
		if (atomic_load_explicit(&r->rt->serial, memory_order_acquire) ==
		    (uint64_t)t->slot + 1)
			return;
		zero = 0;
		if (atomic_compare_exchange_strong_explicit(
			    &r->rt->serial, &zero, t->slot + 1,
			    memory_order_acq_rel, memory_order_relaxed))
			break;
	}
	t->escalated = true;
	t->st[ST_ESCALATIONS]++;
	CRASH_POINT(CP_ESCALATED);
}

/*
 * The token held outside any transaction (pstm_copy's last pass): taken
 * as escalate() takes it, for this thread's slot, so that its recoverer
 * clears it if the holder dies.  This thread's read-only transactions
 * run meanwhile; nobody's update transaction begins.
 */
int stm_serial_hold(struct pstm_region *r)
{
	int err = 0;
	if (tl_cur)
		return PSTM_EINTX;
	if (r->rt_readonly) /* it would store the token */
		return PSTM_EINVAL;
	pstm_tx *t = txd_get(r, &err);
	if (!t)
		return err;
	for (;;) {
		wait_serial(t);
		uint64_t zero = 0;
		if (atomic_compare_exchange_strong_explicit(
			    &r->rt->serial, &zero, t->slot + 1,
			    memory_order_acq_rel, memory_order_relaxed))
			return 0;
	}
}

void stm_serial_release(struct pstm_region *r)
{
	int err = 0;
	pstm_tx *t = r->rt_readonly ? NULL : txd_get(r, &err);
	uint64_t me = t ? t->slot + 1 : 0;
	if (t)
		atomic_compare_exchange_strong_explicit(&r->rt->serial, &me, 0,
							memory_order_release,
							memory_order_relaxed);
}

static void backoff(pstm_tx *t)
{
	t->retries++;
	if (t->behind_inevitable) { /* waiting, not starving: never escalate */
		t->behind_inevitable = false;
		if (t->retries >= ESCALATE_AFTER)
			t->retries = ESCALATE_AFTER - 1;
	}
	if (t->escalated &&
	    atomic_load_explicit(&t->r->rt->serial, memory_order_relaxed) !=
		    (uint64_t)t->slot + 1)
		t->escalated = false; /* revoked (wait_serial): take it again */
	if (t->retries >= ESCALATE_AFTER && !t->escalated && !t->read_only) {
		escalate(t);
		return;
	}
	if (t->escalated)
		return;
	unsigned shift = t->retries < 12 ? t->retries : 12;
	uint64_t spins = xorshift64(&t->prng) & ((1ull << shift) - 1);
	for (uint64_t i = 0; i < spins; i++)
		cpu_relax();
	if (t->slot == TXD_NO_SLOT && t->retries > 16) {
		/* a handle that attaches nothing aborts nobody's commit: a
		 * stopped committer's lock stays until it goes on or another
		 * process aborts or recovers it; wait for that with sleeps
		 * that grow to 1 ms instead of spinning */
		unsigned us = t->retries - 16 < 10 ? 1u << (t->retries - 16) : 1000;
		struct timespec ts = {0, (long)(us > 1000 ? 1000 : us) * 1000};
		nanosleep(&ts, NULL);
	} else if (t->retries > 4) {
		sched_yield();
	}
}

static inline __attribute__((always_inline)) void begin(pstm_tx *t)
{
	struct rt_header *rt = t->r->rt; /* loaded once: acquires below */
	uint64_t serial = atomic_load_explicit(&rt->serial, memory_order_acquire);
	if (__builtin_expect(serial != 0, 0)) {
		if (serial == (uint64_t)t->slot + 1) /* the holder's next
							 attempt: progress */
			atomic_fetch_add_explicit(&rt->serial_beat, 1,
						  memory_order_relaxed);
		else if (!t->escalated && !t->read_only)
			wait_serial(t);
	}
	t->nws = t->nrs = t->nlocks = t->nnewer = 0;
	t->wbloom = 0;
	t->ws_limit = t->read_only ? 0 : t->ws_cap;
	if (++t->epoch == 0) {
		memset(t->wtab_epoch, 0, sizeof(*t->wtab_epoch) * (t->wtab_mask + 1));
		t->epoch = 1;
	}
	uint64_t rv = atomic_load_explicit(&rt->clock, memory_order_acquire);
	t->rv = rv;
	/* an orec word <= rv_bound has version <= rv; with the broken-
	 * validation test switch every version is accepted */
	t->rv_bound = TESTING_NO_VALIDATE(t->r) ? UINT64_MAX
					     : orec_make(rv) | ((1ull << OREC_VSHIFT) - 1);
}

static inline __attribute__((always_inline)) void end(pstm_tx *t)
{
	if (t->inevitable) { /* after its locks were released */
		atomic_store_explicit(&t->r->rt->inevitable, 0, memory_order_release);
		t->inevitable = false;
	}
	if (t->escalated) { /* unless it was revoked (wait_serial) */
		uint64_t me = (uint64_t)t->slot + 1;
		atomic_compare_exchange_strong_explicit(&t->r->rt->serial, &me, 0,
							memory_order_release,
							memory_order_relaxed);
		t->escalated = false;
	}
	t->depth = 0;
	t->tlc->cur = NULL;
}

/* The end of a committed attempt with hooks, inevitability or the
 * serial token (attempt()'s uncommon case). */
static __attribute__((noinline)) int committed_end(pstm_tx *t)
{
	if (t->abort_hooks) /* committed: they never run */
		hooks_free(&t->abort_hooks);
	struct tx_hook *hooks = t->hooks;
	t->hooks = NULL;
	end(t);
	if (hooks)
		hooks_run(t->r, hooks);
	return 0;
}

/*
 * One attempt of @fn on @t and its commit, run under drive()'s unwinding
 * point.  A function of its own: GCC keeps the variables of a function
 * that calls sigsetjmp in memory, so the hot path lives here, in
 * registers, while drive() keeps only the unwinding point.
 */
static __attribute__((noinline)) int attempt(pstm_tx *t, pstm_fn fn, void *arg)
{
	begin(t);
	int rc = fn(t, arg);
	if (__builtin_expect(t->doomed != 0, 0)) {
		/* a pstm_tx_* call of the body (the explicit form inside
		 * pstm_atomic) stopped the unwinding and returned the code;
		 * the attempt is rolled back already: carry on as the
		 * unwinding would have, from drive()'s point */
		int d = t->doomed;
		t->doomed = 0;
		if (d == PSTM_ECONFLICT)
			STM_LONGJMP(t, t->env, JUMP_RETRY);
		t->err = d;
		STM_LONGJMP(t, t->env, JUMP_ERROR);
	}
	if (rc != 0) {
		t->st[ST_AB_USER]++;
		if (t->nlocks) /* inevitable: what it locked when touched */
			stm_release_unchanged(t);
		hooks_drop(t);
		end(t);
		hooks_run_abort(t);
		return rc;
	}
	stm_commit(t, fn);
	/* the usual end, no hooks, inevitability or token to drop: one
	 * test (a test per field cost ~5 instructions a transaction) */
	if (__builtin_expect(((uintptr_t)t->abort_hooks | (uintptr_t)t->hooks |
			      (uintptr_t)t->inevitable | (uintptr_t)t->escalated) != 0,
			     0))
		return committed_end(t);
	t->depth = 0;
	t->tlc->cur = NULL;
	return 0;
}

static int drive(pstm_tx *t, pstm_fn fn, void *arg, bool read_only)
{
	t->retries = 0;
	t->depth = 1;
	t->read_only = read_only;
	t->doomed = 0;
	t->guard = false;
	t->tlc->cur = t;
	int j = STM_SETJMP(t, t->env);
	if (__builtin_expect(j != 0, 0)) {
		if (j == JUMP_ERROR) {
			int rc = t->err;
			t->st[ST_AB_USER]++;
			end(t);
			hooks_run_abort(t);
			return rc;
		}
		/* JUMP_RETRY */
		conflict_aborted(t, fn);
		tl_cur = NULL; /* the hooks run outside the transaction */
		hooks_run_abort(t);
		t->depth = 1;
		tl_cur = t;
		backoff(t);
		conflict_retrying(t);
	}
	int rc = attempt(t, fn, arg);
	/* not a tail call: this frame holds the unwinding point until the
	 * attempt is over */
	__asm__ volatile("" ::: "memory");
	return rc;
}

static __attribute__((noinline)) int atomic_other(pstm_region *r, pstm_fn fn,
						  void *arg, bool read_only)
{
	int err = 0;

	if (!r || !fn)
		return PSTM_EINVAL;
	if (__builtin_expect(tl_in_abort_hooks, 0))
		return PSTM_EINTX;
	pstm_tx *cur = tl_cur;
	if (cur && cur->explicit_tx && !cur->guard) {
		/* inside pstm_tx_begin's attempt: no unwinding point of the
		 * caller's to go to; stop it here */
		if (cur->r != r)
			return PSTM_EINVAL;
		return stm_guarded(cur, fn, arg);
	}
	if (cur) {
		/* flattened nesting */
		if (cur->r != r)
			return PSTM_EINVAL;
		int rc = fn(cur, arg);
		if (rc != 0)
			stm_fail(cur, rc); /* ends the outer transaction */
		return 0;
	}
	pstm_tx *t = txd_get(r, &err);
	if (!t)
		return err;
	/* an observing handle, or a read-only grant (pstmd:NAME), runs
	 * read-only transactions only (r->rt_readonly: without a slot) */
	return drive(t, fn, arg, read_only || r->rt_readonly);
}

/* The common case first, in a frame-less function that ends in drive():
 * a valid call, outside any transaction, on the handle this thread used
 * last.  Everything else, atomic_other(). */
static inline int atomic(pstm_region *r, pstm_fn fn, void *arg, bool read_only)
{
	struct txd_cache *c = &tl_txd_cache;
	if (__builtin_expect(r != NULL && fn != NULL && c->cur == NULL &&
				     !c->in_abort_hooks && c->open_id == r->open_id,
			     1))
		return drive(c->t, fn, arg, read_only || r->rt_readonly);
	return atomic_other(r, fn, arg, read_only);
}

int stm_run_side(pstm_tx *t, pstm_fn fn, void *arg)
{
	pstm_tx *s = t->side;
	if (!s && !(s = t->side = txd_side_new(t)))
		return PSTM_ENOMEM;
	pstm_tx *cur = tl_cur;
	int rc = drive(s, fn, arg, false);
	tl_cur = cur;
	/* its counts are the slot's: fold them into @t's, which the slot's
	 * statistics words mirror (txd_stats_flush) */
	for (int k = 0; k < ST_COUNT; k++)
		t->st[k] += s->st[k];
	memset(s->st, 0, sizeof(s->st));
	return rc;
}

int pstm_atomic(pstm_region *r, pstm_fn fn, void *arg)
{
	return atomic(r, fn, arg, false);
}

int pstm_atomic_ro(pstm_region *r, pstm_fn fn, void *arg)
{
	return atomic(r, fn, arg, true);
}

/* -------------------------------------------------- the explicit form */

/*
 * The explicit form runs each call under an unwinding point of its own
 * (sigsetjmp in the call's own frame): whatever the STM unwinds from
 * (a conflict, an error) stops there, and the call returns the code.
 * The attempt is then rolled back (stm_abort and stm_fail did that) and
 * doomed: every later call returns the same code until pstm_tx_commit or
 * pstm_tx_end ends it.
 *
 * The same calls work in the body of a pstm_atomic attempt (a task's,
 * for bindings whose task bodies must not be unwound): there the
 * attempt's point t->env is the driver's, so a call saves it, sets its
 * own and puts the driver's back before it returns; a doomed attempt is
 * re-run (or failed) by drive() once the body returns.
 */
static int doom(pstm_tx *t, int j)
{
	t->guard = false;
	t->doomed = j == JUMP_RETRY ? PSTM_ECONFLICT : t->err;
	return t->doomed;
}

/* pstm_tx_begin's attempt, running on this thread */
static bool explicit_ok(pstm_tx *t)
{
	return t && t->explicit_tx && t == tl_cur;
}

/* ... or the running attempt of pstm_atomic on this thread (its body) */
static bool guard_ok(pstm_tx *t)
{
	return t && t == tl_cur;
}

/* The guarded call in a pstm_atomic attempt: the driver's point kept */
static int guarded_in_atomic(pstm_tx *t, pstm_fn fn, void *arg)
{
	stm_jmpbuf saved;
	memcpy(saved, t->env, sizeof(saved));
	int j = STM_SETJMP(t, t->env);
	if (j) {
		memcpy(t->env, saved, sizeof(saved));
		return doom(t, j);
	}
	t->guard = true;
	int rc = fn(t, arg);
	t->guard = false;
	memcpy(t->env, saved, sizeof(saved));
	return rc;
}

int stm_guarded(pstm_tx *t, pstm_fn fn, void *arg)
{
	if (t->doomed)
		return t->doomed;
	if (t->guard) /* nested: the outer guard's point catches it */
		return fn(t, arg);
	if (!t->explicit_tx)
		return guarded_in_atomic(t, fn, arg);
	int j = STM_SETJMP(t, t->env);
	if (j)
		return doom(t, j);
	t->guard = true;
	int rc = fn(t, arg);
	t->guard = false;
	return rc;
}

struct guarded_call {
	int what;
	pstm_off off;
	uint64_t v;
	void *dst;
	const void *src;
	size_t n;
	uint64_t *out;
};

enum { GC_LOAD, GC_STORE, GC_READ, GC_WRITE, GC_ALLOC, GC_FREE, GC_ROOT };

static int guarded_call_fn(pstm_tx *t, void *arg)
{
	struct guarded_call *c = arg;
	switch (c->what) {
	case GC_LOAD: *c->out = pstm_load64(t, c->off); break;
	case GC_STORE: pstm_store64(t, c->off, c->v); break;
	case GC_READ: pstm_read(t, c->off, c->dst, c->n); break;
	case GC_WRITE: pstm_write(t, c->off, c->src, c->n); break;
	case GC_ALLOC: *c->out = pstm_alloc(t, c->n); break;
	case GC_FREE: pstm_free(t, c->off); break;
	case GC_ROOT: *c->out = pstm_root(t, c->n); break;
	}
	return 0;
}

/* Each accessor: the checks, a guard, the unwinding call. */
#define GUARDED(t, call, ...)                                              \
	do {                                                               \
		if (!guard_ok(t))                                          \
			return PSTM_EINVAL;                                \
		if ((t)->doomed)                                           \
			return (t)->doomed;                                \
		if ((t)->guard) { /* inside pstm_tx_call: theirs */        \
			call;                                              \
			return 0;                                          \
		}                                                          \
		if (!(t)->explicit_tx) { /* in a pstm_atomic body */       \
			struct guarded_call gc_ = {__VA_ARGS__};           \
			return guarded_in_atomic((t), guarded_call_fn, &gc_); \
		}                                                          \
		int j_ = STM_SETJMP((t), (t)->env);                           \
		if (j_)                                                    \
			return doom((t), j_);                              \
		(t)->guard = true;                                         \
		call;                                                      \
		(t)->guard = false;                                        \
		return 0;                                                  \
	} while (0)

int pstm_tx_begin(pstm_region *r, unsigned flags, pstm_tx **out)
{
	int err = 0;

	if (!out)
		return PSTM_EINVAL;
	*out = NULL;
	if (!r || (flags & ~PSTM_TX_READ_ONLY))
		return PSTM_EINVAL;
	if (tl_cur || tl_in_abort_hooks)
		return PSTM_EINTX;
	pstm_tx *t = txd_get(r, &err);
	if (!t)
		return err;
	if (!t->explicit_retry)
		t->retries = 0;
	t->depth = 1;
	t->read_only = (flags & PSTM_TX_READ_ONLY) != 0 || r->rt_readonly;
	t->explicit_tx = true;
	t->guard = false;
	t->doomed = 0;
	tl_cur = t;
	if (t->explicit_retry) {
		conflict_aborted(t, NULL);
		backoff(t); /* may escalate, as pstm_atomic would */
		conflict_retrying(t);
	}
	t->explicit_retry = false;
	begin(t);
	*out = t;
	return 0;
}

/* End a rolled-back attempt: counts, tokens, abort hooks. */
static int end_rolled_back(pstm_tx *t, int rc)
{
	if (rc != PSTM_ECONFLICT)
		t->st[ST_AB_USER]++;
	t->explicit_retry = rc == PSTM_ECONFLICT;
	t->explicit_tx = false;
	end(t);
	hooks_run_abort(t);
	return rc;
}

int pstm_tx_commit(pstm_tx *t)
{
	if (!explicit_ok(t) || t->guard) /* not from inside pstm_tx_call */
		return PSTM_EINVAL;
	if (t->doomed)
		return end_rolled_back(t, t->doomed);
	int j = STM_SETJMP(t, t->env);
	if (j)
		return end_rolled_back(t, doom(t, j));
	t->guard = true;
	stm_commit(t, NULL);
	t->guard = false;
	if (t->abort_hooks) /* committed: they never run */
		hooks_free(&t->abort_hooks);
	struct tx_hook *hooks = t->hooks;
	t->hooks = NULL;
	t->explicit_tx = false;
	end(t);
	if (hooks)
		hooks_run(t->r, hooks);
	return 0;
}

int pstm_tx_end(pstm_tx *t)
{
	if (!explicit_ok(t) || t->guard)
		return PSTM_EINVAL;
	if (t->doomed) {
		end_rolled_back(t, t->doomed);
		return 0;
	}
	stm_doom(t, PSTM_ECANCELED); /* rolled back by the caller's choice */
	t->st[ST_AB_USER]++;
	t->explicit_retry = false;
	t->explicit_tx = false;
	end(t);
	hooks_run_abort(t);
	return 0;
}

int pstm_tx_load64(pstm_tx *t, pstm_off off, uint64_t *out)
{
	if (!out)
		return PSTM_EINVAL;
	GUARDED(t, *out = pstm_load64(t, off), .what = GC_LOAD, .off = off, .out = out);
}

int pstm_tx_store64(pstm_tx *t, pstm_off off, uint64_t v)
{
	GUARDED(t, pstm_store64(t, off, v), .what = GC_STORE, .off = off, .v = v);
}

int pstm_tx_read(pstm_tx *t, pstm_off off, void *dst, size_t n)
{
	if (!dst && n)
		return PSTM_EINVAL;
	GUARDED(t, pstm_read(t, off, dst, n), .what = GC_READ, .off = off, .dst = dst, .n = n);
}

int pstm_tx_write(pstm_tx *t, pstm_off off, const void *src, size_t n)
{
	if (!src && n)
		return PSTM_EINVAL;
	GUARDED(t, pstm_write(t, off, src, n), .what = GC_WRITE, .off = off, .src = src, .n = n);
}

int pstm_tx_alloc(pstm_tx *t, size_t n, pstm_off *out)
{
	if (!out)
		return PSTM_EINVAL;
	GUARDED(t, *out = pstm_alloc(t, n), .what = GC_ALLOC, .n = n, .out = out);
}

int pstm_tx_free(pstm_tx *t, pstm_off off)
{
	GUARDED(t, pstm_free(t, off), .what = GC_FREE, .off = off);
}

int pstm_tx_root(pstm_tx *t, size_t n, pstm_off *out)
{
	if (!out)
		return PSTM_EINVAL;
	GUARDED(t, *out = pstm_root(t, n), .what = GC_ROOT, .n = n, .out = out);
}

int pstm_tx_call(pstm_tx *t, pstm_fn fn, void *arg)
{
	if (!guard_ok(t) || !fn)
		return PSTM_EINVAL;
	return stm_guarded(t, fn, arg);
}
