/*
 * test_hooks.c - commit and abort hooks, pstm_atomic_ro, pstm_in_tx and
 * inevitable transactions (pstm_tx_inevitable), with real processes and
 * a real SIGKILL of an inevitable transaction.
 *
 * Conflicts are made deterministic with a second thread: the body reads
 * a word, has the other thread commit a change to it, and reads it again,
 * which must abort the attempt (its snapshot is stale).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "region.h"

enum { WORDS = 64 };

struct fix {
	const char *uri;
	pstm_off base; /* WORDS words in the root */
};

static int setup(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	f->base = pstm_root(tx, 8 * WORDS);
	return 0;
}

static pstm_region *fix_open(struct fix *f, const char *tag)
{
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 8 << 20};
	f->uri = test_shm_uri(tag);
	assert_pstm_ok(pstm_create(f->uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, setup, f));
	return r;
}

static void fix_close(struct fix *f, pstm_region *r)
{
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(f->uri));
}

static pstm_off word(const struct fix *f, int i) { return f->base + 8 * (uint64_t)i; }

/* --------------------------------------------------------- commit hooks */

struct log {
	int n;
	int v[16];
	bool in_tx_seen;  /* pstm_in_tx() was true inside a hook */
	int nested_rc;    /* what a transaction started by a hook returned */
	pstm_region *r;
	struct fix *f;
};
static struct log lg;

static void note(void *arg)
{
	lg.v[lg.n++] = (int)(intptr_t)arg;
	if (pstm_in_tx())
		lg.in_tx_seen = true;
}

static int bump(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	pstm_store64(tx, word(f, 1), pstm_load64(tx, word(f, 1)) + 1);
	return 0;
}

static void note_and_transact(void *arg)
{
	note(arg);
	lg.nested_rc = pstm_atomic(lg.r, bump, lg.f);
}

static int with_hooks(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	assert_true(pstm_in_tx());
	pstm_store64(tx, word(f, 0), 7);
	assert_int_equal(pstm_tx_on_commit(tx, note, (void *)1), 0);
	assert_int_equal(pstm_tx_on_abort(tx, note, (void *)-1), 0);
	assert_int_equal(pstm_tx_on_commit(tx, note_and_transact, (void *)2), 0);
	assert_int_equal(pstm_tx_on_commit(tx, note, (void *)3), 0);
	assert_int_equal(pstm_tx_on_commit(NULL, note, NULL), PSTM_EINVAL);
	assert_int_equal(pstm_tx_on_commit(tx, NULL, NULL), PSTM_EINVAL);
	/* nothing runs before the commit */
	assert_int_equal(lg.n, 0);
	return 0;
}

static int read_word(pstm_tx *tx, void *arg)
{
	uint64_t *out = arg;
	*out = pstm_load64(tx, (pstm_off)out[1]);
	return 0;
}

static uint64_t get(pstm_region *r, pstm_off off)
{
	uint64_t a[2] = {0, off};
	assert_pstm_ok(pstm_atomic_ro(r, read_word, a));
	return a[0];
}

static void test_commit_hooks(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = fix_open(&f, "commit");
	memset(&lg, 0, sizeof(lg));
	lg.r = r;
	lg.f = &f;
	assert_false(pstm_in_tx());
	assert_pstm_ok(pstm_atomic(r, with_hooks, &f));
	/* once each, in order, after the commit, outside the transaction;
	 * the abort hook never ran */
	assert_int_equal(lg.n, 3);
	assert_int_equal(lg.v[0], 1);
	assert_int_equal(lg.v[1], 2);
	assert_int_equal(lg.v[2], 3);
	assert_false(lg.in_tx_seen);
	assert_int_equal(lg.nested_rc, 0);
	assert_int_equal(get(r, word(&f, 0)), 7);
	assert_int_equal(get(r, word(&f, 1)), 1);
	fix_close(&f, r);
}

/* ----------------------------------------------------------- conflicts */

/* A thread that commits word 0 += 1 whenever asked. */
struct poker {
	pstm_region *r;
	struct fix *f;
	_Atomic int asked, done, stop;
};

static int poke_tx(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	pstm_store64(tx, word(f, 0), pstm_load64(tx, word(f, 0)) + 1);
	return 0;
}

static void *poker_main(void *arg)
{
	struct poker *p = arg;
	int seen = 0;
	while (!atomic_load(&p->stop)) {
		int a = atomic_load(&p->asked);
		if (a == seen) {
			sched_yield();
			continue;
		}
		seen = a;
		if (pstm_atomic(p->r, poke_tx, p->f) != 0)
			abort();
		atomic_store(&p->done, a);
	}
	return NULL;
}

static void poke(struct poker *p)
{
	int a = atomic_fetch_add(&p->asked, 1) + 1;
	while (atomic_load(&p->done) != a)
		sched_yield();
}

static struct {
	struct poker *p;
	struct fix *f;
	int attempts, conflicts_wanted;
	int aborted_hooks, committed_hooks;
	int eintx_in_hook;
	bool in_tx_in_hook;
	pstm_region *r;
} cx;

static void on_abort(void *arg)
{
	(void)arg;
	cx.aborted_hooks++;
	if (pstm_in_tx())
		cx.in_tx_in_hook = true;
	/* an abort hook may not start a transaction */
	if (pstm_atomic(cx.r, bump, cx.f) == PSTM_EINTX)
		cx.eintx_in_hook++;
}

static void on_commit(void *arg)
{
	(void)arg;
	cx.committed_hooks++;
}

/* Attempts 1..conflicts_wanted read word 0, have it changed under them
 * and read it again: the second read finds a newer version and the
 * extension fails, so the attempt aborts. */
static int conflicted(pstm_tx *tx, void *arg)
{
	(void)arg;
	cx.attempts++;
	pstm_tx_on_abort(tx, on_abort, NULL);
	pstm_tx_on_commit(tx, on_commit, NULL);
	uint64_t a = pstm_load64(tx, word(cx.f, 0));
	if (cx.attempts <= cx.conflicts_wanted)
		poke(cx.p);
	uint64_t b = pstm_load64(tx, word(cx.f, 0));
	return a == b ? 0 : 99; /* opacity: never two values in one attempt */
}

static int run_conflicted(pstm_region *r, struct fix *f, int n, bool ro)
{
	struct poker p = {.r = r, .f = f};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, poker_main, &p), 0);
	memset(&cx, 0, sizeof(cx));
	cx.p = &p;
	cx.f = f;
	cx.r = r;
	cx.conflicts_wanted = n;
	int rc = ro ? pstm_atomic_ro(r, conflicted, NULL)
		    : pstm_atomic(r, conflicted, NULL);
	atomic_store(&p.stop, 1);
	pthread_join(th, NULL);
	return rc;
}

static void test_abort_hooks_on_conflict(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = fix_open(&f, "conflict");
	assert_pstm_ok(run_conflicted(r, &f, 5, false));
	assert_int_equal(cx.attempts, 6);
	assert_int_equal(cx.aborted_hooks, 5);   /* once per rolled-back attempt */
	assert_int_equal(cx.committed_hooks, 1); /* once, for the one that committed */
	assert_int_equal(cx.eintx_in_hook, 5);
	assert_false(cx.in_tx_in_hook);
	assert_int_equal(get(r, word(&f, 0)), 5);
	fix_close(&f, r);
}

static int fails(pstm_tx *tx, void *arg)
{
	int how = (int)(intptr_t)arg;
	pstm_tx_on_abort(tx, on_abort, NULL);
	pstm_tx_on_commit(tx, on_commit, NULL);
	if (how == 0)
		return 42;
	(void)pstm_load64(tx, 8); /* below the heap: PSTM_ERANGE, unwinds */
	return 0;
}

static void test_abort_hooks_on_failure(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = fix_open(&f, "failure");
	memset(&cx, 0, sizeof(cx));
	cx.r = r;
	cx.f = &f;
	assert_int_equal(pstm_atomic(r, fails, (void *)0), 42);
	assert_int_equal(cx.aborted_hooks, 1);
	assert_int_equal(pstm_atomic(r, fails, (void *)1), PSTM_ERANGE);
	assert_int_equal(cx.aborted_hooks, 2);
	assert_int_equal(cx.committed_hooks, 0);
	assert_int_equal(cx.eintx_in_hook, 2);
	fix_close(&f, r);
}

/* ------------------------------------------------------------ read-only */

static int ro_store(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	(void)pstm_load64(tx, word(f, 2));
	pstm_store64(tx, word(f, 2), 1);
	return 0;
}

static int ro_alloc(pstm_tx *tx, void *arg)
{
	(void)arg;
	(void)pstm_alloc(tx, 64);
	return 0;
}

static int ro_inevitable(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_tx_inevitable(tx);
	return 0;
}

static int ro_sum(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	uint64_t sum = 0;
	for (int i = 0; i < 8; i++)
		sum += pstm_load64(tx, word(f, i));
	return sum == 0 ? 0 : 5;
}

static int rw_with_nested_ro(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	pstm_store64(tx, word(f, 3), 3);
	/* flattened: part of this read-write transaction */
	return pstm_atomic_ro(pstm_tx_region(tx), ro_store, f);
}

/* no shared write at all: 10,000 of them on a read-only mapping */
static int ro_child(void *arg, int i)
{
	(void)i;
	struct fix *f = arg;
	return test_ro_mapping_run(f->uri, ro_sum, f, 10000, 1, NULL);
}

static void test_atomic_ro(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = fix_open(&f, "ro");
	assert_int_equal(pstm_atomic_ro(r, ro_store, &f), PSTM_EINVAL);
	assert_int_equal(pstm_atomic_ro(r, ro_alloc, &f), PSTM_EINVAL);
	assert_int_equal(pstm_atomic_ro(r, ro_inevitable, &f), PSTM_EINVAL);
	assert_int_equal(get(r, word(&f, 2)), 0);
	assert_int_equal(pstm_atomic_ro(NULL, ro_sum, &f), PSTM_EINVAL);
	/* a store after a read-only transaction is an ordinary one again */
	assert_pstm_ok(pstm_atomic(r, rw_with_nested_ro, &f));
	assert_int_equal(get(r, word(&f, 2)), 1);
	assert_int_equal(get(r, word(&f, 3)), 3);
	assert_pstm_ok(pstm_atomic(r, ro_store, &f));
	fix_close(&f, r);

	/* no shared write at all: 10,000 of them on a read-only mapping */
	struct pstm_stats st;
	r = fix_open(&f, "ro2");
	test_run_procs(1, ro_child, &f);
	/* 70 deterministic conflicts: a read-write transaction would have
	 * escalated after 64 (and then waited for the poker thread, which
	 * cannot begin while the token is held: a deadlock this test would
	 * show); a read-only one never escalates */
	assert_pstm_ok(pstm_stats_get(r, &st));
	uint64_t esc0 = st.escalations;
	assert_pstm_ok(run_conflicted(r, &f, 70, true));
	assert_int_equal(cx.attempts, 71);
	assert_pstm_ok(pstm_stats_get(r, &st));
	assert_int_equal(st.escalations, esc0);
	assert_true(st.aborts_read >= 70);
	fix_close(&f, r);
}

/* ----------------------------------------------------------- inevitable */

struct shared {
	_Atomic uint64_t b_commits;        /* B's commits */
	_Atomic uint64_t d_commits;        /* D's commits (on A's word) */
	_Atomic uint64_t b_in_window;      /* B's commits while A was inevitable */
	_Atomic int a_window;              /* A is inevitable right now */
	_Atomic int a_done, b_stop;
	_Atomic uint64_t after_inevitable; /* bodies that ran past it */
	_Atomic uint64_t mid_seen;         /* C saw A's uncommitted value */
	_Atomic int a_ready;               /* killed test: A is inevitable */
	_Atomic uint64_t window_ns;
	_Atomic uint64_t b_before, b_before_ns; /* B before A's first window */
};

enum { MID = 0x6d69640000000000ull, A_ROUNDS = 40 };

struct ictx {
	struct fix *f;
	struct shared *sh;
	int sleep_us;
	int rounds;  /* A's inevitable transactions (A_ROUNDS if 0) */
	bool hang;   /* stay inevitable until killed */
};

static int a_body(pstm_tx *tx, void *arg)
{
	struct ictx *c = arg;
	struct fix *f = c->f;
	uint64_t x = pstm_load64(tx, word(f, 0));
	assert_int_equal(pstm_tx_inevitable(tx), 0);
	assert_int_equal(pstm_tx_inevitable(tx), 0); /* idempotent */
	atomic_fetch_add(&c->sh->after_inevitable, 1);
	uint64_t t0 = test_now_ns();
	atomic_store(&c->sh->a_window, 1);
	pstm_store64(tx, word(f, 2), MID); /* never seen by others */
	(void)pstm_load64(tx, word(f, 3)); /* a new read: locked too */
	if (c->hang) {
		atomic_store(&c->sh->a_ready, 1);
		for (;;)
			pause();
	}
	usleep((useconds_t)c->sleep_us);
	pstm_store64(tx, word(f, 2), 0);
	pstm_store64(tx, word(f, 0), x + 1000);
	atomic_store(&c->sh->a_window, 0);
	atomic_fetch_add(&c->sh->window_ns, test_now_ns() - t0);
	return 0;
}

/* B: words A never touches (10..17) */
static int b_body(pstm_tx *tx, void *arg)
{
	struct ictx *c = arg;
	uint64_t k = atomic_load(&c->sh->b_commits);
	pstm_off w = word(c->f, 10 + (int)(k % 8));
	pstm_store64(tx, w, pstm_load64(tx, w) + 1);
	return 0;
}

/* D: word 0, which A reads and writes */
static int d_body(pstm_tx *tx, void *arg)
{
	struct ictx *c = arg;
	pstm_off x = word(c->f, 0);
	pstm_store64(tx, x, pstm_load64(tx, x) + 1);
	return 0;
}

static int proc_d(void *arg, int i)
{
	(void)i;
	struct ictx *c = arg;
	pstm_region *r;
	if (pstm_open(c->f->uri, &r))
		return 2;
	while (!atomic_load(&c->sh->a_done)) {
		if (pstm_atomic(r, d_body, c))
			return 3;
		atomic_fetch_add(&c->sh->d_commits, 1);
	}
	return pstm_close(r) ? 4 : 0;
}

static int c_body(pstm_tx *tx, void *arg)
{
	struct ictx *c = arg;
	if (pstm_load64(tx, word(c->f, 2)) == MID)
		atomic_fetch_add(&c->sh->mid_seen, 1);
	return 0;
}

static int proc_a(void *arg, int i)
{
	(void)i;
	struct ictx *c = arg;
	pstm_region *r;
	if (pstm_open(c->f->uri, &r))
		return 2;
	if (c->rounds) /* let B measure its rate alone with D first */
		usleep(100000);
	for (int k = 0; k < (c->hang ? 1 : c->rounds ? c->rounds : A_ROUNDS); k++)
		if (pstm_atomic(r, a_body, c))
			return 3;
	atomic_store(&c->sh->a_done, 1);
	return pstm_close(r) ? 4 : 0;
}

static int proc_b(void *arg, int i)
{
	(void)i;
	struct ictx *c = arg;
	pstm_region *r;
	if (pstm_open(c->f->uri, &r))
		return 2;
	uint64_t t0 = test_now_ns();
	bool first_window = true;
	while (!atomic_load(&c->sh->a_done) && !atomic_load(&c->sh->b_stop)) {
		int in = atomic_load(&c->sh->a_window);
		if (in && first_window) {
			first_window = false;
			atomic_store(&c->sh->b_before, atomic_load(&c->sh->b_commits));
			atomic_store(&c->sh->b_before_ns, test_now_ns() - t0);
		}
		if (pstm_atomic(r, b_body, c))
			return 3;
		atomic_fetch_add(&c->sh->b_commits, 1);
		if (in && atomic_load(&c->sh->a_window))
			atomic_fetch_add(&c->sh->b_in_window, 1);
	}
	return pstm_close(r) ? 4 : 0;
}

static int proc_c(void *arg, int i)
{
	(void)i;
	struct ictx *c = arg;
	pstm_region *r;
	if (pstm_open(c->f->uri, &r))
		return 2;
	while (!atomic_load(&c->sh->a_done) && !atomic_load(&c->sh->b_stop))
		if (pstm_atomic_ro(r, c_body, c))
			return 3;
	return pstm_close(r) ? 4 : 0;
}

static void test_inevitable(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = fix_open(&f, "inev");
	struct shared *sh = test_map_shared(NULL, sizeof(*sh));
	assert_non_null(sh);
	struct ictx c = {.f = &f, .sh = sh, .sleep_us = 10000};
	pid_t a = test_spawn(proc_a, &c, 0);
	pid_t b = test_spawn(proc_b, &c, 1);
	pid_t cc = test_spawn(proc_c, &c, 2);
	pid_t d = test_spawn(proc_d, &c, 3);
	assert_int_equal(test_wait(a), 0);
	assert_int_equal(test_wait(b), 0);
	assert_int_equal(test_wait(cc), 0);
	assert_int_equal(test_wait(d), 0);
	/* every inevitable body ran past pstm_tx_inevitable exactly once */
	assert_int_equal(atomic_load(&sh->after_inevitable), A_ROUNDS);
	/* no update lost on the word both A and B write */
	uint64_t bc = atomic_load(&sh->b_commits);
	assert_int_equal(get(r, word(&f, 0)),
			 A_ROUNDS * 1000 + atomic_load(&sh->d_commits));
	uint64_t sum = 0;
	for (int i = 10; i < 18; i++)
		sum += get(r, word(&f, i));
	assert_int_equal(sum, bc);
	/* nobody saw A's uncommitted write */
	assert_int_equal(atomic_load(&sh->mid_seen), 0);
	assert_int_equal(get(r, word(&f, 2)), 0);
	/* B kept committing while A was inevitable */
	double win_s = (double)atomic_load(&sh->window_ns) / 1e9;
	uint64_t in = atomic_load(&sh->b_in_window);
	printf("# B (other words): %llu commits, %llu of them inside A's %.0f ms "
	       "of inevitable windows (%.0f commits/s there); D (A's word): "
	       "%llu commits\n",
	       (unsigned long long)bc, (unsigned long long)in, win_s * 1000,
	       in / (win_s > 0 ? win_s : 1),
	       (unsigned long long)atomic_load(&sh->d_commits));
	assert_true(in > 0);
	munmap(sh, sizeof(*sh));
	test_assert_clean(f.uri);
	fix_close(&f, r);
}

/*
 * A long inevitable window (300 ms) while D keeps writing A's word with
 * pstm_atomic: D must wait without escalating (an escalated D would stop
 * B, which writes other words, until A commits).  B's rate inside the
 * window must stay within reach of its rate before it.
 */
static void test_inevitable_long_window(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = fix_open(&f, "inevlong");
	struct shared *sh = test_map_shared(NULL, sizeof(*sh));
	assert_non_null(sh);
	struct ictx c = {.f = &f, .sh = sh, .sleep_us = 300000, .rounds = 1};
	pid_t b = test_spawn(proc_b, &c, 1);
	pid_t d = test_spawn(proc_d, &c, 3);
	pid_t a = test_spawn(proc_a, &c, 0);
	assert_int_equal(test_wait(a), 0);
	assert_int_equal(test_wait(b), 0);
	assert_int_equal(test_wait(d), 0);
	double before = (double)atomic_load(&sh->b_before) /
			((double)atomic_load(&sh->b_before_ns) / 1e9);
	double inside = (double)atomic_load(&sh->b_in_window) /
			((double)atomic_load(&sh->window_ns) / 1e9);
	printf("# B: %.0f commits/s before the window, %.0f/s inside it (%.0f%%); "
	       "D: %llu commits\n", before, inside, 100 * inside / before,
	       (unsigned long long)atomic_load(&sh->d_commits));
	assert_true(inside >= 0.25 * before);
	assert_int_equal(get(r, word(&f, 0)), 1000 + atomic_load(&sh->d_commits));
	munmap(sh, sizeof(*sh));
	fix_close(&f, r);
}

struct kread {
	struct fix *f;
	uint64_t out[3];
};

static int x_reader(pstm_tx *tx, void *arg)
{
	struct kread *k = arg;
	struct fix *f = k->f;
	uint64_t *out = k->out;
	out[0] = pstm_load64(tx, word(f, 0));
	out[1] = pstm_load64(tx, word(f, 2));
	out[2] = pstm_load64(tx, word(f, 3));
	pstm_store64(tx, word(f, 3), out[2] + 1);
	return 0;
}

static int take_inevitable(pstm_tx *tx, void *arg)
{
	(void)arg;
	return pstm_tx_inevitable(tx);
}

static void test_inevitable_killed(void **s)
{
	(void)s;
	struct fix f;
	struct kread k = {.f = &f};
	pstm_region *r = fix_open(&f, "inevkill");
	struct shared *sh = test_map_shared(NULL, sizeof(*sh));
	assert_non_null(sh);
	struct ictx c = {.f = &f, .sh = sh, .hang = true};
	pid_t a = test_spawn(proc_a, &c, 0);
	while (!atomic_load(&sh->a_ready))
		usleep(1000);
	kill(a, SIGKILL);
	assert_int_equal(test_wait(a), 128 + SIGKILL);
	/* the words it locked (read 0 and 3, wrote 2) are free again and
	 * unchanged; the inevitable role is free too */
	uint64_t t0 = test_now_ns();
	assert_pstm_ok(pstm_atomic(r, x_reader, &k));
	uint64_t waited = test_now_ns() - t0;
	assert_int_equal(k.out[0], 0);
	assert_int_equal(k.out[1], 0);
	assert_int_equal(k.out[2], 0);
	assert_pstm_ok(pstm_atomic(r, take_inevitable, NULL));
	printf("# first transaction after the kill took %.2f ms\n", waited / 1e6);
	assert_true(waited < 2000000000ull);
	munmap(sh, sizeof(*sh));
	test_assert_clean(f.uri);
	fix_close(&f, r);
}

/* ------------------------------------------------------ explicit form */

static int nested_body(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	/* inside pstm_tx_call the unwinding calls are allowed, and explicit
	 * ones use the call's unwinding point */
	uint64_t v;
	assert_int_equal(pstm_tx_load64(tx, word(f, 5), &v), 0);
	pstm_store64(tx, word(f, 5), v + 1);
	assert_int_equal(pstm_tx_commit(tx), PSTM_EINVAL); /* not from here */
	return (int)v + 7;
}

static void test_explicit_hooks(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = fix_open(&f, "explicit");
	memset(&lg, 0, sizeof(lg));
	lg.r = r;
	lg.f = &f;
	pstm_tx *tx;
	assert_pstm_ok(pstm_tx_begin(r, 0, &tx));
	assert_true(pstm_in_tx());
	assert_int_equal(pstm_tx_on_commit(tx, note, (void *)1), 0);
	assert_int_equal(pstm_tx_on_abort(tx, note, (void *)-1), 0);
	assert_int_equal(pstm_tx_call(tx, nested_body, &f), 7);
	/* pstm_atomic inside an explicit attempt: flattened, guarded */
	assert_int_equal(pstm_atomic(r, bump, &f), 0);
	assert_int_equal(pstm_tx_inevitable(tx), 0);
	assert_int_equal(pstm_tx_store64(tx, word(&f, 6), 66), 0);
	assert_int_equal(lg.n, 0);
	assert_pstm_ok(pstm_tx_commit(tx));
	assert_false(pstm_in_tx());
	assert_int_equal(lg.n, 1);
	assert_int_equal(lg.v[0], 1);
	assert_int_equal(get(r, word(&f, 5)), 1);
	assert_int_equal(get(r, word(&f, 1)), 1);
	assert_int_equal(get(r, word(&f, 6)), 66);
	/* ended by the caller: rolled back, abort hooks run */
	assert_pstm_ok(pstm_tx_begin(r, 0, &tx));
	assert_int_equal(pstm_tx_on_abort(tx, note, (void *)-1), 0);
	assert_int_equal(pstm_tx_store64(tx, word(&f, 6), 1), 0);
	assert_pstm_ok(pstm_tx_end(tx));
	assert_int_equal(lg.n, 2);
	assert_int_equal(lg.v[1], -1);
	assert_int_equal(get(r, word(&f, 6)), 66);
	fix_close(&f, r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_hooks),
		cmocka_unit_test(test_abort_hooks_on_conflict),
		cmocka_unit_test(test_abort_hooks_on_failure),
		cmocka_unit_test(test_atomic_ro),
		cmocka_unit_test(test_inevitable),
		cmocka_unit_test(test_inevitable_long_window),
		cmocka_unit_test(test_inevitable_killed),
		cmocka_unit_test(test_explicit_hooks),
	};
	TEST_OUTPUT();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
