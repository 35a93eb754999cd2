/*
 * pstm-crashtest - torture a workload with crashes, and check it after each.
 *
 * Worker processes run the workload's step in a loop; every step and the
 * worker's commit counter in the region are one transaction, and the
 * worker counts in shared memory the steps acknowledged to it (pstm_atomic
 * returned 0).  Campaigns: (1) random SIGKILLs; (2) a victim that dies at
 * a named crash point of the commit path (PSTM_CRASH_AT) or, on a relaxed
 * region, of the flusher (one holding the flush token), or a victim that
 * dies after its commit point and then an opener that dies inside its
 * recovery; (3) simulated power failures on a copy of a file region
 * (PSTM_TEST_POWERFAIL), each crash image opened as after a reboot.  After
 * every crash a transaction checks the workload's invariant (nothing
 * half-applied) and that each counter covers every acknowledged step and
 * at most the one in flight; after a crash point, exactly whether the
 * interrupted step passed the commit point.  On a relaxed region
 * (--relaxed) workers also pstm_sync every SYNC_EVERY steps and count the
 * steps synced; process crashes must still lose nothing, but a power
 * failure may lose acknowledged steps that no finished sync covered: a
 * crash image must hold each counter between its synced and acknowledged
 * counts (the file holds a prefix of the commit order).  The user's guide is
 * docs/crashtest.md; the workload interface is include/pstm_crashtest.h.
 * Exit status: 0 every check passed, 1 a violation (or the run could not
 * be set up), 2 usage error.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "pstm.h"
#include "cli.h"
#include "pstm_crashtest.h"
#include "region.h"
#include "util.h"
#include "emit.h"

#define PROG "pstm-crashtest"

enum {
	MAX_PROCS = 64,
	BANK_ACCOUNTS = 64,
	BANK_START = 1000,
	CRASH_AT_MAX_K = 20,          /* crash at the 1st..20th passage */
	POWERFAIL_ONE_IN = 300,       /* as tests/test_powerfail.c */
	WAIT_MS = 30000,              /* a worker that takes longer is stuck */
	RESUME_WAIT_MS = 100,         /* for the last kill's survivor commit */
	SYNC_EVERY = 16,              /* relaxed: a worker's pstm_sync period */
	POWERFAIL_ONE_IN_RELAXED = 40, /* relaxed: fewer persists per commit */
};
#define VICTIM_MAX_STEPS 1000000L /* a victim must die long before */

/*
 * The region's root object, owned by the tool (words):
 *   0 magic (written last by the set-up, so a half-made root is not ours)
 *   1 offset of the workload's state
 *   2 number of worker counters, 3 state_bytes
 *   4 + w: commit counter of worker slot w, incremented by every step of
 *   that slot in the step's own transaction; written by nobody else.
 */
#define ROOT_MAGIC 0x31305443544d5350ull /* "PSTMCT01" */
enum { ROOT_MAGIC_W, ROOT_STATE_W, ROOT_PROCS_W, ROOT_SBYTES_W, ROOT_COUNTERS_W };
#define ROOT_HDR_BYTES (8 * ROOT_COUNTERS_W)

static pstm_off counter_off(pstm_off root, int w)
{
	return root + 8 * (uint64_t)(ROOT_COUNTERS_W + w);
}

/* Worker exit statuses besides 0 (stopped when asked) and 128+signal
 * (3 and 4 are taken: the power-failure simulator's own _exit codes). */
enum { W_OPEN = 10, W_STEP = 11, W_ROOT = 12, W_NO_CRASH = 13, W_SYNC = 14 };

/*
 * Shared with the workers (MAP_SHARED | MAP_ANONYMOUS, inherited by fork).
 * Ordering: a worker's acked[w] increment is a release after pstm_atomic
 * returned, and the parent's loads are acquires, so a count the parent
 * reads covers only steps that had committed before; everything else is
 * statistics and flags (relaxed, or release/acquire where noted).
 */
struct shared {
	/* worker slot w: steps acknowledged (pstm_atomic returned 0).
	 * Written by the slot's current worker, and by the parent only while
	 * the slot has no live process (to the settled counter). */
	_Atomic uint64_t acked[MAX_PROCS];
	/* relaxed regions: of those, the steps a finished pstm_sync of the
	 * slot's worker covered (durable across power failure).  Written
	 * like acked (release after pstm_sync returned). */
	_Atomic uint64_t synced[MAX_PROCS];
	/* parent -> worker slot w: finish the current step and exit 0.
	 * Parent stores release, worker loads acquire before each step. */
	_Atomic int stop[MAX_PROCS];
	/* longest single pstm_atomic of any worker (max by CAS, relaxed) */
	_Atomic uint64_t worst_ns;
	/* acknowledged steps of all workers (relaxed counter) */
	_Atomic uint64_t commits;
	/* Time from a random kill to the first commit of a survivor: the
	 * parent stores killed and resume_ns = 0 (relaxed), then kill_ns
	 * (release); a worker other than `killed` that loads kill_ns
	 * (acquire) != 0 and commits later CASes resume_ns from 0. */
	_Atomic uint64_t kill_ns;
	_Atomic int killed;
	_Atomic uint64_t resume_ns;
};

struct ct {
	/* options */
	const char *uri, *lib;
	const char *point_list;  /* --points: comma-separated names, or NULL */
	int procs, rounds, point_rounds, powerfail;
	bool kills, points, pmem, json, keep;
	bool relaxed_opt;        /* --relaxed: create a PSTM_RELAXED region */
	uint32_t flush_ms;       /* --flush-ms, 0: the library's default */
	uint64_t seed, size_bytes;
	/* the run */
	const struct pstm_crashtest_workload *wl;
	const char *wl_name;
	bool is_file;
	uint64_t rng;
	struct shared *sh;
	pstm_region *r;          /* the parent's handle (checks), or NULL */
	pstm_off root, state;
	pid_t pid[MAX_PROCS];    /* live worker of each slot, 0 none */
	int is_pmem;             /* the region was mapped as pmem */
	bool relaxed;            /* the region is PSTM_RELAXED (region info) */
	uint32_t region_flush_ms;
	/* results */
	long kill_rounds, point_victims, recovery_victims, pf_images;
	long crashes, checks;
	long flush_victims;      /* relaxed: victims at the flusher's points */
	uint64_t pf_lost_acked;  /* relaxed: acknowledged steps a power
				    failure lost (allowed: not synced) */
	long pf_lossy;           /* power failures that lost any */
	uint64_t pf_lost_synced; /* synced steps lost (a violation) */
	uint64_t gap_max_ns, gap_sum_ns, gap_n;
	bool violated;
	char violation[1024];
	const char *inspect;     /* what a violation leaves to look at */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(struct ct *c) { return xorshift64(&c->rng); }

/* Record the first violation (later ones are consequences); returns -1. */
__attribute__((format(printf, 2, 3)))
static int violation(struct ct *c, const char *fmt, ...)
{
	va_list ap;
	if (c->violated)
		return -1;
	c->violated = true;
	va_start(ap, fmt);
	vsnprintf(c->violation, sizeof(c->violation), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: VIOLATION: %s\n", PROG, c->violation);
	return -1;
}

/* What a transaction's non-zero result means. */
static const char *tx_error(int rc, char *buf, size_t n)
{
	if (rc <= PSTM_EINVAL && rc >= PSTM_ERR_LAST)
		return pstm_strerror(rc);
	snprintf(buf, n, "the workload returned %d", rc);
	return buf;
}

/* ------------------------------------------------------------------ */
/* The built-in workload: money moves between accounts, total constant. */

static int bank_init(pstm_tx *tx, pstm_off s)
{
	for (uint64_t i = 0; i < BANK_ACCOUNTS; i++)
		pstm_store64(tx, s + 8 * i, BANK_START);
	return 0;
}

static int bank_step(pstm_tx *tx, pstm_off s, uint64_t rnd)
{
	pstm_off from = s + 8 * (rnd % BANK_ACCOUNTS);
	pstm_off to = s + 8 * ((rnd >> 8) % BANK_ACCOUNTS);
	uint64_t amount = (rnd >> 16) % 100, have = pstm_load64(tx, from);
	if (from == to || have < amount)
		return 0;
	pstm_store64(tx, from, have - amount);
	pstm_store64(tx, to, pstm_load64(tx, to) + amount);
	return 0;
}

static int bank_check(pstm_tx *tx, pstm_off s, char *why, size_t n)
{
	uint64_t total = 0;
	for (uint64_t i = 0; i < BANK_ACCOUNTS; i++)
		total += pstm_load64(tx, s + 8 * i);
	if (total == (uint64_t)BANK_ACCOUNTS * BANK_START)
		return 0;
	snprintf(why, n, "bank total %llu, expected %llu", (unsigned long long)total,
		 (unsigned long long)BANK_ACCOUNTS * BANK_START);
	return 1;
}

static const struct pstm_crashtest_workload bank = {
	.name = "bank",
	.state_bytes = 8 * BANK_ACCOUNTS,
	.init = bank_init,
	.step = bank_step,
	.check = bank_check,
};

static int load_workload(struct ct *c)
{
	char path[4096];
	if (!c->lib) {
		c->wl = &bank;
		c->wl_name = "bank (built-in)";
		return 0;
	}
	/* a bare file name means the current directory, not the library path */
	snprintf(path, sizeof(path), "%s%s", strchr(c->lib, '/') ? "" : "./", c->lib);
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "%s: cannot load workload: %s\n", PROG, dlerror());
		return -1;
	}
	const struct pstm_crashtest_workload *(*get)(void) =
		(const struct pstm_crashtest_workload *(*)(void))dlsym(h, PSTM_CRASHTEST_SYMBOL);
	if (!get) {
		fprintf(stderr, "%s: %s does not define %s()\n", PROG, c->lib,
			PSTM_CRASHTEST_SYMBOL);
		return -1;
	}
	c->wl = get();
	if (!c->wl || !c->wl->step || !c->wl->check || !c->wl->state_bytes) {
		fprintf(stderr, "%s: %s: %s() must return a workload with step, check "
			"and state_bytes > 0\n", PROG, c->lib, PSTM_CRASHTEST_SYMBOL);
		return -1;
	}
	const char *base = strrchr(c->lib, '/');
	c->wl_name = c->wl->name ? c->wl->name : base ? base + 1 : c->lib;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Transactions of the tool                                            */

struct step_arg {
	const struct pstm_crashtest_workload *wl;
	pstm_off state, counter;
	uint64_t rnd;
};

/* One worker transaction: the user's step and our counter, together. */
static int step_fn(pstm_tx *tx, void *arg)
{
	struct step_arg *a = arg;
	int rc = a->wl->step(tx, a->state, a->rnd);
	if (rc)
		return rc;
	pstm_store64(tx, a->counter, pstm_load64(tx, a->counter) + 1);
	return 0;
}

struct root_view {
	pstm_off root, state;
	uint64_t procs;
};

static int root_fn(pstm_tx *tx, void *arg)
{
	struct root_view *v = arg;
	v->root = pstm_root(tx, ROOT_HDR_BYTES);
	v->state = pstm_load64(tx, v->root + 8 * ROOT_STATE_W);
	v->procs = pstm_load64(tx, v->root + 8 * ROOT_PROCS_W);
	return pstm_load64(tx, v->root + 8 * ROOT_MAGIC_W) == ROOT_MAGIC ? 0 : 1;
}

enum { SNAP_CHECK_FAILED = 1 };

struct snapshot {
	const struct pstm_crashtest_workload *wl;
	pstm_off root, state;
	int procs;
	uint64_t counter[MAX_PROCS];
	int check_rc;
	char why[256];
};

/* Counters and the invariant, in one read-only transaction: a consistent
 * snapshot even while workers run.  Meeting a dead worker's locks here
 * recovers it. */
static int snapshot_fn(pstm_tx *tx, void *arg)
{
	struct snapshot *s = arg;
	for (int w = 0; w < s->procs; w++)
		s->counter[w] = pstm_load64(tx, counter_off(s->root, w));
	s->why[0] = '\0';
	s->check_rc = s->wl->check(tx, s->state, s->why, sizeof(s->why));
	s->why[sizeof(s->why) - 1] = '\0';
	return s->check_rc ? SNAP_CHECK_FAILED : 0;
}

/*
 * Check region @r after a crash (@what names it): the invariant holds, and
 * each worker slot's counter covers every step acknowledged before the
 * check began and at most one more than was acknowledged after it (the
 * step in flight).  A slot without a live worker has a fixed count, so
 * this is exact up to its one interrupted step.  Counters go to @out.
 * With @synced (a relaxed region after a power failure) the lower bound
 * is the synced count instead: acknowledged but unsynced steps may be
 * lost, synced ones may not.
 */
static int check_after_floor(struct ct *c, pstm_region *r, const char *what,
			     const uint64_t *synced, uint64_t out[MAX_PROCS])
{
	struct snapshot s = {.wl = c->wl, .root = c->root, .state = c->state,
			     .procs = c->procs};
	uint64_t before[MAX_PROCS], after[MAX_PROCS];
	char buf[64];

	for (int w = 0; w < c->procs; w++)
		before[w] = atomic_load_explicit(&c->sh->acked[w], memory_order_acquire);
	int rc = pstm_atomic(r, snapshot_fn, &s);
	for (int w = 0; w < c->procs; w++)
		after[w] = atomic_load_explicit(&c->sh->acked[w], memory_order_acquire);
	c->checks++;
	if (rc == SNAP_CHECK_FAILED)
		return violation(c, "%s: the workload's invariant does not hold: %s "
				 "(check returned %d)", what,
				 s.why[0] ? s.why : "no reason given", s.check_rc);
	if (rc)
		return violation(c, "%s: the check transaction failed: %s", what,
				 tx_error(rc, buf, sizeof(buf)));
	for (int w = 0; w < c->procs; w++) {
		if (synced && s.counter[w] < synced[w]) {
			c->pf_lost_synced = synced[w] - s.counter[w];
			return violation(c, "%s: worker slot %d: %llu steps were "
					 "synced (pstm_sync returned) but only %llu are "
					 "present (synced transactions lost)",
					 what, w, (unsigned long long)synced[w],
					 (unsigned long long)s.counter[w]);
		}
		if (!synced && s.counter[w] < before[w])
			return violation(c, "%s: worker slot %d: %llu steps were "
					 "acknowledged as committed but only %llu are "
					 "present (acknowledged transactions lost)",
					 what, w, (unsigned long long)before[w],
					 (unsigned long long)s.counter[w]);
		if (s.counter[w] > after[w] + 1)
			return violation(c, "%s: worker slot %d: %llu steps are present "
					 "but only %llu were acknowledged (at most one "
					 "may be in flight)", what, w,
					 (unsigned long long)s.counter[w],
					 (unsigned long long)after[w]);
		out[w] = s.counter[w];
	}
	return 0;
}

static int check_after(struct ct *c, pstm_region *r, const char *what,
		       uint64_t out[MAX_PROCS])
{
	return check_after_floor(c, r, what, NULL, out);
}

/* ------------------------------------------------------------------ */
/* Worker processes                                                    */

static void note_commit(struct shared *sh, int w, uint64_t took_ns)
{
	uint64_t worst = atomic_load_explicit(&sh->worst_ns, memory_order_relaxed);
	while (took_ns > worst &&
	       !atomic_compare_exchange_weak_explicit(&sh->worst_ns, &worst, took_ns,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
	uint64_t k = atomic_load_explicit(&sh->kill_ns, memory_order_acquire);
	if (k && atomic_load_explicit(&sh->killed, memory_order_relaxed) != w &&
	    atomic_load_explicit(&sh->resume_ns, memory_order_relaxed) == 0) {
		uint64_t t = now_ns(), zero = 0;
		if (t > k)
			atomic_compare_exchange_strong_explicit(&sh->resume_ns, &zero, t,
								memory_order_relaxed,
								memory_order_relaxed);
	}
}

/*
 * The body of a worker process for slot @w on region @uri: steps until
 * asked to stop (returns 0) or, with @max_steps >= 0, until that many
 * (returns W_NO_CRASH: a victim that should have died).  @crash_at arms a
 * crash point; the environment is read by pstm_open.  @sync_every > 0
 * (relaxed regions): pstm_sync after every that many acknowledged steps
 * (counted by the slot's counter), then record them as synced.
 */
static int worker(struct ct *c, const char *uri, int w, const char *crash_at,
		  long max_steps, int sync_every)
{
	pstm_region *r;
	struct root_view v;
	char buf[64];
	if (crash_at)
		setenv("PSTM_CRASH_AT", crash_at, 1);
	int rc = pstm_open(uri, &r);
	if (rc) {
		fprintf(stderr, "%s: worker %d: cannot open %s: %s\n", PROG, w, uri,
			pstm_strerror(rc));
		return W_OPEN;
	}
	rc = pstm_atomic(r, root_fn, &v);
	if (rc || v.procs <= (uint64_t)w) {
		fprintf(stderr, "%s: worker %d: %s has no crash-test root\n", PROG, w, uri);
		return W_ROOT;
	}
	struct step_arg a = {c->wl, v.state, counter_off(v.root, w), 0};
	uint64_t seed = c->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(w + 1)) ^
			((uint64_t)getpid() << 32) ^ now_ns();
	seed += !seed;
	for (long n = 0; max_steps < 0 || n < max_steps; n++) {
		if (atomic_load_explicit(&c->sh->stop[w], memory_order_acquire))
			break;
		a.rnd = xorshift64(&seed);
		uint64_t t0 = now_ns();
		rc = pstm_atomic(r, step_fn, &a);
		uint64_t took = now_ns() - t0;
		if (rc) {
			fprintf(stderr, "%s: worker %d: step failed: %s\n", PROG, w,
				tx_error(rc, buf, sizeof(buf)));
			return W_STEP;
		}
		uint64_t acked = atomic_fetch_add_explicit(&c->sh->acked[w], 1,
							   memory_order_release) + 1;
		atomic_fetch_add_explicit(&c->sh->commits, 1, memory_order_relaxed);
		note_commit(c->sh, w, took);
		if (sync_every > 0 && acked % (uint64_t)sync_every == 0) {
			/* covers every step committed before the call */
			rc = pstm_sync(r);
			if (rc) {
				fprintf(stderr, "%s: worker %d: pstm_sync failed: %s\n",
					PROG, w, pstm_strerror(rc));
				return W_SYNC;
			}
			atomic_store_explicit(&c->sh->synced[w], acked,
					      memory_order_release);
		}
		if (max_steps >= 0 && n + 1 == max_steps) {
			pstm_close(r);
			return W_NO_CRASH;
		}
	}
	pstm_close(r);
	return 0;
}

static pid_t spawn(struct ct *c, int w, const char *crash_at, long max_steps,
		   int sync_every)
{
	fflush(stdout);
	fflush(stderr);
	pid_t p = fork();
	if (p == 0)
		_exit(worker(c, c->uri, w, crash_at, max_steps, sync_every));
	return p;
}

/* An opener with @crash_at armed: pstm_open recovers the dead and should
 * die inside that; returns W_NO_CRASH if the open completed. */
static pid_t spawn_opener(struct ct *c, const char *crash_at)
{
	fflush(stdout);
	fflush(stderr);
	pid_t p = fork();
	if (p == 0) {
		pstm_region *r;
		setenv("PSTM_CRASH_AT", crash_at, 1);
		_exit(pstm_open(c->uri, &r) ? W_OPEN : W_NO_CRASH);
	}
	return p;
}

enum { REAP_TIMEOUT = -2 };

/* Wait for @pid: its exit status, or 128 + the signal that killed it;
 * after @timeout_ms (< 0: forever) SIGKILL it and return REAP_TIMEOUT. */
static int reap(pid_t pid, int timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;
	int st;
	for (;;) {
		pid_t got = waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
		if (got == pid)
			break;
		if (got < 0 && errno != EINTR)
			return -1;
		if (got == 0) {
			if (now_ns() > end) {
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				return REAP_TIMEOUT;
			}
			usleep(200);
		}
	}
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static const char *status_text(int st, char *buf, size_t n)
{
	switch (st) {
	case 0: return "exited normally";
	case W_OPEN: return "could not open the region";
	case W_STEP: return "failed a step (see its message)";
	case W_ROOT: return "found no crash-test root";
	case W_NO_CRASH: return "never reached its crash point";
	case W_SYNC: return "failed a pstm_sync (see its message)";
	case REAP_TIMEOUT: return "was stuck (killed after 30 s)";
	default: break;
	}
	if (st > 128)
		snprintf(buf, n, "died of signal %d", st - 128);
	else
		snprintf(buf, n, "exited with status %d", st);
	return buf;
}

static int start_worker(struct ct *c, int w)
{
	c->pid[w] = spawn(c, w, NULL, -1, c->relaxed ? SYNC_EVERY : 0);
	if (c->pid[w] < 0) {
		c->pid[w] = 0;
		return violation(c, "fork: %s", strerror(errno));
	}
	return 0;
}

/* Ask slot @w's worker to finish its step and exit; it must do so. */
static int stop_worker(struct ct *c, int w)
{
	char buf[64];
	if (!c->pid[w])
		return 0;
	atomic_store_explicit(&c->sh->stop[w], 1, memory_order_release);
	int st = reap(c->pid[w], WAIT_MS);
	atomic_store_explicit(&c->sh->stop[w], 0, memory_order_relaxed);
	c->pid[w] = 0;
	if (st != 0)
		return violation(c, "worker %d %s", w, status_text(st, buf, sizeof(buf)));
	return 0;
}

static int stop_all(struct ct *c)
{
	int rc = 0;
	for (int w = 0; w < c->procs; w++)
		if (c->pid[w])
			atomic_store_explicit(&c->sh->stop[w], 1, memory_order_release);
	for (int w = 0; w < c->procs; w++)
		if (stop_worker(c, w))
			rc = -1;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */

struct setup_arg {
	const struct pstm_crashtest_workload *wl;
	int procs;
	pstm_off root, state, zero_from, zero_to;
	int init_rc;
};

static int setup_alloc_fn(pstm_tx *tx, void *arg)
{
	struct setup_arg *s = arg;
	s->root = pstm_root(tx, 8 * (size_t)(ROOT_COUNTERS_W + s->procs));
	s->state = pstm_alloc(tx, s->wl->state_bytes);
	pstm_store64(tx, s->root + 8 * ROOT_STATE_W, s->state);
	pstm_store64(tx, s->root + 8 * ROOT_PROCS_W, (uint64_t)s->procs);
	pstm_store64(tx, s->root + 8 * ROOT_SBYTES_W, s->wl->state_bytes);
	return 0;
}

static int setup_zero_fn(pstm_tx *tx, void *arg)
{
	static const char zero[1024];
	struct setup_arg *s = arg;
	pstm_write(tx, s->zero_from, zero, (size_t)(s->zero_to - s->zero_from));
	return 0;
}

static int setup_init_fn(pstm_tx *tx, void *arg)
{
	struct setup_arg *s = arg;
	s->init_rc = s->wl->init ? s->wl->init(tx, s->state) : 0;
	if (s->init_rc)
		return s->init_rc;
	pstm_store64(tx, s->root + 8 * ROOT_MAGIC_W, ROOT_MAGIC);
	return 0;
}

/* Create the region (replacing it), the root, the zeroed state, init. */
static int setup_region(struct ct *c)
{
	struct pstm_create_opts o = {
		.size_bytes = c->size_bytes,
		/* workers, their replacements not yet recovered, openers, us */
		.max_procs = (uint32_t)(2 * c->procs + 8),
		.max_threads = (uint32_t)(2 * c->procs + 8),
		.replace = 1,
		.durability = c->relaxed_opt ? PSTM_RELAXED : PSTM_DEFAULT,
		.flush_ms = c->flush_ms,
	};
	struct setup_arg s = {.wl = c->wl, .procs = c->procs};
	struct pstm_region_info in;
	char buf[64];
	int rc = pstm_create(c->uri, &o, &c->r);
	if (rc) {
		fprintf(stderr, "%s: cannot create %s: %s\n", PROG, c->uri, pstm_strerror(rc));
		return -1;
	}
	pstm_region_info(c->r, &in);
	c->is_pmem = in.is_pmem;
	c->relaxed = in.durability == PSTM_RELAXED;
	c->region_flush_ms = in.flush_ms;
	const char *step = "allocating the root and state";
	if ((rc = pstm_atomic(c->r, setup_alloc_fn, &s)))
		goto fail;
	step = "zeroing the state";
	for (pstm_off off = s.state; off < s.state + c->wl->state_bytes; off += 1024) {
		s.zero_from = off;
		s.zero_to = off + 1024 < s.state + c->wl->state_bytes
				    ? off + 1024 : s.state + c->wl->state_bytes;
		if ((rc = pstm_atomic(c->r, setup_zero_fn, &s)))
			goto fail;
	}
	step = "the workload's init";
	if ((rc = pstm_atomic(c->r, setup_init_fn, &s)))
		goto fail;
	c->root = s.root;
	c->state = s.state;
	return 0;
fail:
	fprintf(stderr, "%s: setting up %s: %s: %s\n", PROG, c->uri, step,
		tx_error(rc, buf, sizeof(buf)));
	pstm_close(c->r);
	c->r = NULL;
	return -1;
}

/* ------------------------------------------------------------------ */
/* Campaign 1: random kills                                            */

/* Fold the last kill's "time to the next survivor commit" into the stats. */
static void collect_gap(struct ct *c)
{
	uint64_t k = atomic_load_explicit(&c->sh->kill_ns, memory_order_relaxed);
	uint64_t r = atomic_load_explicit(&c->sh->resume_ns, memory_order_relaxed);
	if (k && r > k) {
		uint64_t gap = r - k;
		c->gap_max_ns = gap > c->gap_max_ns ? gap : c->gap_max_ns;
		c->gap_sum_ns += gap;
		c->gap_n++;
	}
	atomic_store_explicit(&c->sh->kill_ns, 0, memory_order_relaxed);
}

static int campaign_kills(struct ct *c)
{
	uint64_t cnt[MAX_PROCS];
	char what[96], buf[64];
	for (int k = 0; k < c->rounds; k++) {
		usleep((useconds_t)(500 + rnd(c) % 3500));
		collect_gap(c);
		int w = (int)(rnd(c) % (uint64_t)c->procs);
		atomic_store_explicit(&c->sh->killed, w, memory_order_relaxed);
		atomic_store_explicit(&c->sh->resume_ns, 0, memory_order_relaxed);
		atomic_store_explicit(&c->sh->kill_ns, now_ns(), memory_order_release);
		kill(c->pid[w], SIGKILL);
		int st = reap(c->pid[w], -1);
		c->pid[w] = 0;
		snprintf(what, sizeof(what), "random kill %d (worker %d)", k + 1, w);
		if (st != 128 + SIGKILL)
			return violation(c, "%s: the worker had already ended: it %s",
					 what, status_text(st, buf, sizeof(buf)));
		c->crashes++;
		c->kill_rounds++;
		if (check_after(c, c->r, what, cnt))
			return -1;
		/* settled: the dead worker's interrupted step is in or out */
		atomic_store_explicit(&c->sh->acked[w], cnt[w], memory_order_relaxed);
		if (start_worker(c, w))
			return -1;
	}
	for (int i = 0; i < RESUME_WAIT_MS &&
			!atomic_load_explicit(&c->sh->resume_ns, memory_order_relaxed) &&
			atomic_load_explicit(&c->sh->kill_ns, memory_order_relaxed); i++)
		usleep(1000);
	collect_gap(c);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Campaign 2: crash points                                            */

/*
 * The flusher's points (relaxed regions only) are passed by whichever
 * thread of the victim holds the region's flush token: its flush thread
 * (every flush_ms) or its pstm_sync.  The victim syncs after every step
 * so that it takes the token often; still, its flush thread may die
 * there while its main thread is anywhere in a step, so the interrupted
 * step may be in or out (the plain bounds of check_after).  Whoever
 * holds the token dies with it: the other processes must take it over.
 */
static const struct {
	const char *name;
	bool committed;   /* a death there leaves the step committed */
	bool recovery;    /* a point inside the recovery of a dead process */
	bool flusher;     /* relaxed only: inside the flusher, step in or out */
} points[] = {
	{"commit.locking", false, false, false},
	{"commit.locked", false, false, false},
	{"commit.sealed", false, false, false},
	{"commit.logged", true, false, false},
	{"commit.written", true, false, false},
	{"commit.retired", true, false, false},
	{"commit.released", true, false, false},
	{"recover.claimed", true, true, false},
	{"recover.replayed", true, true, false},
	{"flush.copied", false, false, true},
	{"checkpoint.applied", false, false, true},
};
#define NPOINTS (sizeof(points) / sizeof(points[0]))
#define FLUSHER_AT_MAX_K 2 /* the victim syncs every step: 1st or 2nd pass */

/* Run a victim in slot @w armed with @crash_at, pstm_sync after every
 * @sync_every steps; it must be SIGKILLed (one that reaches
 * VICTIM_MAX_STEPS alive exits W_NO_CRASH, one stuck for WAIT_MS is
 * killed: both are reported, neither hangs the run). */
static int run_victim(struct ct *c, int w, const char *crash_at, int sync_every,
		      const char *what)
{
	char buf[64];
	pid_t v = spawn(c, w, crash_at, VICTIM_MAX_STEPS, sync_every);
	if (v < 0)
		return violation(c, "fork: %s", strerror(errno));
	int st = reap(v, WAIT_MS);
	if (st != 128 + SIGKILL)
		return violation(c, "%s: the victim (PSTM_CRASH_AT=%s) %s", what,
				 crash_at, status_text(st, buf, sizeof(buf)));
	c->crashes++;
	return 0;
}

/* A victim in slot @w dies at commit point @p beside the other workers. */
static int commit_point_round(struct ct *c, size_t p, int w, const char *what)
{
	uint64_t cnt[MAX_PROCS];
	char at[64];
	snprintf(at, sizeof(at), "%s:%d", points[p].name,
		 1 + (int)(rnd(c) % (points[p].flusher ? FLUSHER_AT_MAX_K
						       : CRASH_AT_MAX_K)));
	if (stop_worker(c, w) ||
	    run_victim(c, w, at, points[p].flusher ? 1 : c->relaxed ? SYNC_EVERY : 0,
		       what))
		return -1;
	uint64_t acked = atomic_load_explicit(&c->sh->acked[w], memory_order_acquire);
	if (check_after(c, c->r, what, cnt))
		return -1;
	if (points[p].flusher) { /* in or out: check_after's bounds */
		atomic_store_explicit(&c->sh->acked[w], cnt[w], memory_order_relaxed);
		c->flush_victims++;
		return start_worker(c, w);
	}
	uint64_t want = acked + (points[p].committed ? 1 : 0);
	if (cnt[w] != want)
		return violation(c, "%s: the victim died %s the commit point, yet its "
				 "interrupted step is %s (counter %llu, %llu "
				 "acknowledged)", what,
				 points[p].committed ? "after" : "before",
				 cnt[w] > acked ? "present" : "absent",
				 (unsigned long long)cnt[w], (unsigned long long)acked);
	atomic_store_explicit(&c->sh->acked[w], cnt[w], memory_order_relaxed);
	c->point_victims++;
	return start_worker(c, w);
}

/* With nobody else running (so nobody else recovers it): a victim dies
 * after its commit point, an opener dies at recovery point @p while
 * recovering it, then the next opener (ours) must finish the job. */
static int recovery_point_round(struct ct *c, size_t p, int w, const char *what)
{
	uint64_t cnt[MAX_PROCS];
	char at[64], buf[64];
	if (stop_all(c))
		return -1;
	snprintf(at, sizeof(at), "commit.logged:%d", 1 + (int)(rnd(c) % CRASH_AT_MAX_K));
	if (run_victim(c, w, at, c->relaxed ? SYNC_EVERY : 0, what))
		return -1;
	uint64_t acked = atomic_load_explicit(&c->sh->acked[w], memory_order_acquire);
	snprintf(at, sizeof(at), "%s:1", points[p].name);
	pid_t o = spawn_opener(c, at);
	if (o < 0)
		return violation(c, "fork: %s", strerror(errno));
	int st = reap(o, WAIT_MS);
	if (st != 128 + SIGKILL)
		return violation(c, "%s: the opener recovering the victim "
				 "(PSTM_CRASH_AT=%s) %s", what, at,
				 status_text(st, buf, sizeof(buf)));
	c->crashes++;
	/* the next opener finishes the recovery */
	pstm_region *r;
	int rc = pstm_open(c->uri, &r);
	if (rc)
		return violation(c, "%s: opening after the opener died: %s", what,
				 pstm_strerror(rc));
	rc = check_after(c, r, what, cnt);
	pstm_close(r);
	if (rc)
		return -1;
	if (cnt[w] != acked + 1)
		return violation(c, "%s: the victim died after its commit point and "
				 "its recovery was interrupted, yet its step is absent "
				 "(counter %llu, %llu acknowledged)", what,
				 (unsigned long long)cnt[w], (unsigned long long)acked);
	atomic_store_explicit(&c->sh->acked[w], cnt[w], memory_order_relaxed);
	c->recovery_victims++;
	for (int i = 0; i < c->procs; i++)
		if (start_worker(c, i))
			return -1;
	return 0;
}

/* Is point @p in --points (all are when it was not given)? */
static bool point_selected(const struct ct *c, size_t p)
{
	const char *s = c->point_list;
	size_t n = strlen(points[p].name);
	if (!s)
		return true;
	for (;;) {
		size_t len = strcspn(s, ",");
		if (len == n && strncmp(s, points[p].name, n) == 0)
			return true;
		if (!s[len])
			return false;
		s += len + 1;
	}
}

static int campaign_points(struct ct *c)
{
	char what[96];
	for (int pass = 0; pass < c->point_rounds; pass++)
		for (size_t p = 0; p < NPOINTS; p++) {
			if (!point_selected(c, p) || (points[p].flusher && !c->relaxed))
				continue;
			int w = (int)(rnd(c) % (uint64_t)c->procs);
			snprintf(what, sizeof(what), "crash point %s (pass %d, worker %d)",
				 points[p].name, pass + 1, w);
			if (points[p].recovery ? recovery_point_round(c, p, w, what)
					       : commit_point_round(c, p, w, what))
				return -1;
		}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Settling, and the offline check                                     */

/* pstm check's verdict on @uri: damage is a violation; so is recovery
 * left pending when @settled (everything was recovered by an open). */
static int offline_check(struct ct *c, const char *uri, const char *what, bool settled)
{
	struct check_report rep;
	int rc = region_check(uri, &rep);
	if (rc)
		return violation(c, "%s: pstm check cannot read %s: %s", what, uri,
				 pstm_strerror(rc));
	for (unsigned i = 0; i < rep.n; i++)
		if (rep.f[i].severity == CHECK_DAMAGE ||
		    (settled && rep.f[i].severity == CHECK_PENDING)) {
			violation(c, "%s: pstm check: %s: %s", what,
				  rep.f[i].severity == CHECK_DAMAGE ? "damage"
								    : "recovery left pending",
				  rep.f[i].text);
			break;
		}
	check_report_free(&rep);
	return c->violated ? -1 : 0;
}

/* Stop every worker; each counter must equal its acknowledged steps; a
 * fresh open recovers whatever is dead; then pstm check must be clean. */
static int settle(struct ct *c)
{
	uint64_t cnt[MAX_PROCS];
	if (stop_all(c) || check_after(c, c->r, "all workers stopped", cnt))
		return -1;
	for (int w = 0; w < c->procs; w++) {
		uint64_t a = atomic_load_explicit(&c->sh->acked[w], memory_order_acquire);
		if (cnt[w] != a)
			return violation(c, "all workers stopped: worker slot %d: counter "
					 "%llu, %llu acknowledged", w,
					 (unsigned long long)cnt[w], (unsigned long long)a);
	}
	pstm_close(c->r);
	c->r = NULL;
	pstm_region *r;
	int rc = pstm_open(c->uri, &r);
	if (rc)
		return violation(c, "reopening %s: %s", c->uri, pstm_strerror(rc));
	pstm_close(r);
	return offline_check(c, c->uri, "after the kill campaigns", true);
}

/* ------------------------------------------------------------------ */
/* Campaign 3: power failures (file regions)                           */

static int copy_file(const char *from, const char *to)
{
	char buf[1 << 16];
	ssize_t n = 0;
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (in >= 0 && out >= 0)
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n) {
				n = -1;
				break;
			}
	int rc = in < 0 || out < 0 || n < 0 ? -1 : 0;
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0)
		rc = -1;
	return rc;
}

static int one_power_failure(struct ct *c, int i, const char *work,
			     const char *image, const uint64_t base[MAX_PROCS])
{
	uint64_t cnt[MAX_PROCS], synced[MAX_PROCS];
	char what[96], buf[64];
	int w = i % c->procs;
	unsigned seed = (unsigned)(c->seed * 2654435761u) + (unsigned)i;
	snprintf(what, sizeof(what), "power failure %d (seed %u)", i + 1, seed);

	if (copy_file(c->uri, work))
		return violation(c, "copying %s to %s: %s", c->uri, work, strerror(errno));
	region_forget_volatile(work);
	unlink(image);
	for (int v = 0; v < c->procs; v++) {
		atomic_store_explicit(&c->sh->acked[v], base[v], memory_order_relaxed);
		atomic_store_explicit(&c->sh->synced[v], base[v], memory_order_relaxed);
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		char env[PATH_MAX + 64];
		snprintf(env, sizeof(env), "%s:%u:%d", image, seed,
			 c->relaxed ? POWERFAIL_ONE_IN_RELAXED : POWERFAIL_ONE_IN);
		setenv("PSTM_TEST_POWERFAIL", env, 1);
		_exit(worker(c, work, w, NULL, VICTIM_MAX_STEPS,
			     c->relaxed ? SYNC_EVERY : 0));
	}
	if (pid < 0)
		return violation(c, "fork: %s", strerror(errno));
	int st = reap(pid, WAIT_MS);
	if (st != 0 || access(image, F_OK) != 0)
		return violation(c, "%s: the worker %s%s", what,
				 st == W_NO_CRASH ? "never lost power"
						  : status_text(st, buf, sizeof(buf)),
				 st == 0 ? " without writing a crash image" : "");
	c->crashes++;
	region_forget_volatile(work);

	/* a fresh boot on the image: recovery replays committed records */
	region_forget_volatile(image);
	pstm_region *r;
	int rc = pstm_open(image, &r);
	if (rc)
		return violation(c, "%s: the crash image does not open: %s", what,
				 pstm_strerror(rc));
	c->inspect = image; /* from here on, a violation concerns the image */
	/* relaxed: a prefix of the commit order; with one worker running,
	 * its counter between its synced and acknowledged counts (+1) */
	for (int v = 0; v < c->procs; v++)
		synced[v] = atomic_load_explicit(&c->sh->synced[v], memory_order_acquire);
	rc = check_after_floor(c, r, what, c->relaxed ? synced : NULL, cnt);
	pstm_close(r);
	if (rc)
		return -1;
	uint64_t acked = atomic_load_explicit(&c->sh->acked[w], memory_order_acquire);
	if (cnt[w] < acked) { /* only a relaxed region gets here */
		c->pf_lost_acked += acked - cnt[w];
		c->pf_lossy++;
	}
	for (int v = 0; v < c->procs; v++)
		if (v != w && cnt[v] != base[v])
			return violation(c, "%s: worker slot %d did not run, yet its "
					 "counter went from %llu to %llu", what, v,
					 (unsigned long long)base[v],
					 (unsigned long long)cnt[v]);
	if (offline_check(c, image, what, false))
		return -1;
	region_forget_volatile(image);
	unlink(image);
	c->inspect = c->uri;
	c->pf_images++;
	return 0;
}

static int campaign_powerfail(struct ct *c)
{
	static char work[PATH_MAX], image[PATH_MAX];
	uint64_t base[MAX_PROCS];
	int rc = 0;
	snprintf(work, sizeof(work), "%s.ct-work", c->uri);
	if ((size_t)snprintf(image, sizeof(image), "%s.ct-image", c->uri) >= 240)
		return violation(c, "the path %s is too long for a crash image", c->uri);
	/* closed cleanly: the file must hold everything without its
	 * companions (relaxed: the working copy) */
	region_forget_volatile(c->uri);
	rc = pstm_open(c->uri, &c->r);
	if (rc)
		return violation(c, "opening %s: %s", c->uri, pstm_strerror(rc));
	if (check_after(c, c->r, "before the power failures", base))
		return -1;
	if (c->relaxed) /* forget_volatile above: all of it from the file */
		for (int w = 0; w < c->procs; w++)
			if (base[w] != atomic_load(&c->sh->acked[w]))
				return violation(c, "after a clean close and a power "
						 "failure: worker slot %d: counter %llu, "
						 "%llu acknowledged (a clean close must "
						 "leave every commit in the file)", w,
						 (unsigned long long)base[w],
						 (unsigned long long)atomic_load(&c->sh->acked[w]));
	pstm_close(c->r);
	c->r = NULL;
	for (int i = 0; i < c->powerfail && rc == 0; i++)
		rc = one_power_failure(c, i, work, image, base);
	if (rc == 0) { /* only the original remains, its runtime gone */
		region_forget_volatile(work);
		unlink(work);
		unlink(image);
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Report                                                              */


static double ms(uint64_t ns) { return (double)ns / 1e6; }

static void report_json(const struct ct *c, const char *path, const char *dur)
{
	struct emit e;
	emit_to_file(&e, stdout);
	emit_object(&e, NULL);
	emit_bool(&e, "ok", !c->violated);
	emit_str(&e, "uri", c->uri);
	emit_str(&e, "workload", c->wl_name);
	emit_int(&e, "procs", c->procs);
	emit_u64(&e, "seed", c->seed);
	emit_str(&e, "persistence", path);
	emit_int(&e, "random_kills", c->kill_rounds);
	emit_int(&e, "crash_point_victims", c->point_victims);
	emit_int(&e, "recovery_point_victims", c->recovery_victims);
	emit_int(&e, "powerfail_images", c->pf_images);
	emit_int(&e, "crashes", c->crashes);
	emit_int(&e, "checks", c->checks);
	emit_u64(&e, "commits", atomic_load(&c->sh->commits));
	emit_fixed(&e, "worst_tx_ms", ms(atomic_load(&c->sh->worst_ns)), 3);
	emit_str(&e, "durability", dur);
	if (c->relaxed) {
		emit_u64(&e, "flush_ms", c->region_flush_ms);
		emit_int(&e, "sync_every", SYNC_EVERY);
		emit_int(&e, "flush_point_victims", c->flush_victims);
		emit_u64(&e, "powerfail_lost_acked", c->pf_lost_acked);
		emit_int(&e, "powerfail_lossy_images", c->pf_lossy);
		emit_u64(&e, "powerfail_lost_synced", c->pf_lost_synced);
	}
	if (c->gap_n) {
		emit_object(&e, "kill_to_commit_ms");
		emit_fixed(&e, "max", ms(c->gap_max_ns), 3);
		emit_fixed(&e, "mean", ms(c->gap_sum_ns / c->gap_n), 3);
		emit_u64(&e, "samples", c->gap_n);
		emit_close(&e);
	} else {
		emit_null(&e, "kill_to_commit_ms");
	}
	emit_array(&e, "violations");
	if (c->violated)
		emit_str(&e, NULL, c->violation);
	emit_close(&e);
	if (c->violated || c->keep)
		emit_str(&e, "kept", c->violated ? c->inspect : c->uri);
	else
		emit_null(&e, "kept");
	emit_close(&e);
}

static void report(struct ct *c)
{
	uint64_t commits = atomic_load(&c->sh->commits);
	uint64_t worst = atomic_load(&c->sh->worst_ns);
	const char *path = !c->is_file ? "none (shm)" : c->is_pmem ? "pmem flush+drain"
								   : "msync";
	const char *dur = c->relaxed ? "relaxed" : c->is_file ? "durable" : "volatile";
	if (c->json) {
		report_json(c, path, dur);
		return;
	}
	printf("%s: workload %s on %s, %d workers, seed %llu\n", PROG, c->wl_name,
	       c->uri, c->procs, (unsigned long long)c->seed);
	if (c->relaxed)
		printf("  relaxed region   flushed every %u ms; workers pstm_sync "
		       "every %d steps\n", c->region_flush_ms, SYNC_EVERY);
	printf("  random kills     %ld rounds\n", c->kill_rounds);
	if (c->relaxed)
		printf("  crash points     %ld victims at commit points, %ld at the "
		       "flusher's points, %ld openers killed while recovering\n",
		       c->point_victims, c->flush_victims, c->recovery_victims);
	else
		printf("  crash points     %ld victims at commit points, %ld openers "
		       "killed while recovering\n", c->point_victims,
		       c->recovery_victims);
	if (c->is_file)
		printf("  power failures   %ld images (%s)\n", c->pf_images, path);
	else
		printf("  power failures   none (shm: does not survive them)\n");
	if (c->relaxed && (c->pf_images || c->pf_lost_synced))
		printf("  relaxed losses   %llu acknowledged commits lost in %ld of %ld "
		       "power failures (allowed: not yet synced); synced commits "
		       "lost: %llu%s\n", (unsigned long long)c->pf_lost_acked,
		       c->pf_lossy, c->pf_images, (unsigned long long)c->pf_lost_synced,
		       c->pf_lost_synced ? " (a violation)" : "");
	printf("  crashes          %ld (each followed by a check; %ld checks)\n",
	       c->crashes, c->checks);
	printf("  commits          %llu acknowledged\n", (unsigned long long)commits);
	printf("  worst stall      %.3f ms (longest single transaction of a worker)\n",
	       ms(worst));
	if (c->gap_n)
		printf("  kill to commit   max %.3f ms, mean %.3f ms (first survivor "
		       "commit after a kill)\n",
		       ms(c->gap_max_ns), ms(c->gap_sum_ns / c->gap_n));
	if (c->violated)
		printf("  violations       1: %s\nFAILED (kept for inspection: "
		       "pstm check %s)\n", c->violation, c->inspect);
	else
		printf("  violations       0\nOK\n");
}

/* ------------------------------------------------------------------ */
/* Command line                                                        */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [options] URI\n"
		"\n"
		"Run a workload in several processes on region URI (shm:NAME or a\n"
		"file path; created, replacing what is there), crash them, and check\n"
		"after every crash that the workload's invariant holds and that every\n"
		"transaction acknowledged as committed is present.\n"
		"\n"
		"  --workload LIB.so  the workload (include/pstm_crashtest.h);\n"
		"                     default: a built-in bank (64 accounts)\n"
		"  --procs N          worker processes (default 3, max %d)\n"
		"  --rounds N         random kills (default 200)\n"
		"  --point-rounds N   passes over the crash points (default 3)\n"
		"  --points LIST      only these crash points (comma-separated;\n"
		"                     default all: commit.locking, commit.locked,\n"
		"                     commit.sealed, commit.logged, commit.written,\n"
		"                     commit.retired, commit.released,\n"
		"                     recover.claimed, recover.replayed, and with\n"
		"                     --relaxed flush.copied, checkpoint.applied)\n"
		"  --no-kills         skip the random kills\n"
		"  --no-points        skip the crash points\n"
		"  --powerfail N      simulated power failures (file regions only;\n"
		"                     default 200 for files, 0 for shm:)\n"
		"  --pmem             run as on real pmem (PMEM_IS_PMEM_FORCE=1):\n"
		"                     persistence by flush+drain instead of msync\n"
		"  --relaxed          create a relaxed region (file only): workers\n"
		"                     pstm_sync every %d steps; a power failure may\n"
		"                     lose acknowledged steps, never synced ones\n"
		"  --flush-ms N       with --relaxed: the flush interval (1..60000)\n"
		"  --size N[K|M|G]    region size (default 8M)\n"
		"  --seed S           random seed (default: from the clock; printed)\n"
		"  --keep             keep the region afterwards (always kept on failure)\n"
		"  --json             print the summary as one JSON object\n"
		"  --help             this text\n"
		"\n"
		"Exit status: 0 all checks passed, 1 a violation or a failure to run,\n"
		"2 usage error.  See docs/crashtest.md.\n",
		MAX_PROCS, SYNC_EVERY);
}

const char *cli_prog = PROG;

static int parse_args(struct ct *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"workload", required_argument, 0, 'w'},
		{"procs", required_argument, 0, 'p'},
		{"rounds", required_argument, 0, 'r'},
		{"point-rounds", required_argument, 0, 'P'},
		{"points", required_argument, 0, 'L'},
		{"no-kills", no_argument, 0, 'K'},
		{"no-points", no_argument, 0, 'N'},
		{"powerfail", required_argument, 0, 'f'},
		{"pmem", no_argument, 0, 'm'},
		{"relaxed", no_argument, 0, 'R'},
		{"flush-ms", required_argument, 0, 'F'},
		{"size", required_argument, 0, 's'},
		{"seed", required_argument, 0, 'S'},
		{"keep", no_argument, 0, 'k'},
		{"json", no_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	uint64_t v;
	int opt;
	bool seeded = false;
	c->procs = 3;
	c->rounds = 200;
	c->point_rounds = 3;
	c->powerfail = -1;
	c->kills = c->points = true;
	c->size_bytes = 8 << 20;
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'w': c->lib = optarg; break;
		case 'p':
			if (cli_parse_u64(optarg, 0, 1, MAX_PROCS, &v))
				return cli_usage_error("bad --procs (1..64)");
			c->procs = (int)v;
			break;
		case 'r':
			if (cli_parse_u64(optarg, 0, 0, 100000000, &v))
				return cli_usage_error("bad --rounds");
			c->rounds = (int)v;
			break;
		case 'P':
			if (cli_parse_u64(optarg, 0, 0, 1000000, &v))
				return cli_usage_error("bad --point-rounds");
			c->point_rounds = (int)v;
			break;
		case 'L': {
			c->point_list = optarg;
			bool any = false;
			for (size_t p = 0; p < NPOINTS; p++)
				any |= point_selected(c, p);
			if (!any)
				return cli_usage_error("bad --points (names: commit.locking, "
						       "commit.locked, commit.sealed, "
						       "commit.logged, commit.written, "
						       "commit.retired, commit.released, "
						       "recover.claimed, recover.replayed, "
						       "flush.copied, checkpoint.applied)");
			break;
		}
		case 'K': c->kills = false; break;
		case 'N': c->points = false; break;
		case 'f':
			if (cli_parse_u64(optarg, 0, 0, 100000000, &v))
				return cli_usage_error("bad --powerfail");
			c->powerfail = (int)v;
			break;
		case 'm': c->pmem = true; break;
		case 'R': c->relaxed_opt = true; break;
		case 'F':
			if (cli_parse_u64(optarg, 0, 1, 60000, &v))
				return cli_usage_error("bad --flush-ms (1..60000)");
			c->flush_ms = (uint32_t)v;
			break;
		case 's':
			if (cli_parse_u64(optarg, CLI_UNITS, 1, UINT64_MAX, &c->size_bytes))
				return cli_usage_error("bad --size");
			break;
		case 'S':
			if (cli_parse_u64(optarg, 0, 0, UINT64_MAX, &c->seed))
				return cli_usage_error("bad --seed");
			seeded = true;
			break;
		case 'k': c->keep = true; break;
		case 'j': c->json = true; break;
		case 'h': usage(stdout); return 0;
		default: return 2; /* getopt printed why */
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("exactly one URI is needed");
	c->uri = argv[optind];
	c->is_file = strncmp(c->uri, "shm:", 4) != 0;
	if (c->powerfail < 0)
		c->powerfail = c->is_file ? 200 : 0;
	if (c->powerfail > 0 && !c->is_file)
		return cli_usage_error("--powerfail needs a file region (shm: does not "
				       "survive power failure)");
	if (c->pmem && !c->is_file)
		return cli_usage_error("--pmem needs a file region");
	if (c->relaxed_opt && !c->is_file)
		return cli_usage_error("--relaxed needs a file region (shm: has no "
				       "file to flush to)");
	if (c->flush_ms && !c->relaxed_opt)
		return cli_usage_error("--flush-ms needs --relaxed");
	if (c->point_list && !c->relaxed_opt) {
		bool other = false;
		for (size_t p = 0; p < NPOINTS; p++)
			other |= point_selected(c, p) && !points[p].flusher;
		if (!other)
			return cli_usage_error("flush.copied and checkpoint.applied need "
					       "--relaxed (only a relaxed region flushes)");
	}
	if (!c->kills)
		c->rounds = 0;
	if (!c->points)
		c->point_rounds = 0;
	if (!c->rounds && !c->point_rounds && !c->powerfail)
		return cli_usage_error("nothing to do (no kills, no crash points, no "
				       "power failures)");
	if (!seeded)
		c->seed = now_ns() ^ ((uint64_t)getpid() << 40);
	return -1; /* go on */
}

int main(int argc, char **argv)
{
	static struct ct c;
	int rc = parse_args(&c, argc, argv);
	if (rc >= 0)
		return rc;
	/* libpmem decides whether to force pmem when it starts: start again
	 * (getopt has only reordered argv) */
	if (c.pmem && !(getenv("PMEM_IS_PMEM_FORCE") &&
			!strcmp(getenv("PMEM_IS_PMEM_FORCE"), "1"))) {
		setenv("PMEM_IS_PMEM_FORCE", "1", 1);
		execv("/proc/self/exe", argv);
		fprintf(stderr, "%s: re-executing with PMEM_IS_PMEM_FORCE=1: %s\n",
			PROG, strerror(errno));
		return 1;
	}
	/* only the victims we start may crash */
	unsetenv("PSTM_CRASH_AT");
	unsetenv("PSTM_TEST_POWERFAIL");
	c.rng = c.seed ? c.seed : 1;
	c.inspect = c.uri;
	if (load_workload(&c))
		return 1;
	c.sh = mmap(NULL, sizeof(*c.sh), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c.sh == MAP_FAILED) {
		fprintf(stderr, "%s: mmap: %s\n", PROG, strerror(errno));
		return 1;
	}
	if (setup_region(&c))
		return 1;
	uint64_t cnt[MAX_PROCS];
	if (check_after(&c, c.r, "after init", cnt) == 0 && (c.rounds || c.point_rounds)) {
		for (int w = 0; w < c.procs && !c.violated; w++)
			start_worker(&c, w);
		if (!c.violated && campaign_kills(&c) == 0 && campaign_points(&c) == 0)
			settle(&c);
	}
	if (c.r && !c.violated && c.rounds == 0 && c.point_rounds == 0) {
		pstm_close(c.r);
		c.r = NULL;
	}
	if (!c.violated && c.powerfail)
		campaign_powerfail(&c);
	if (c.violated) {
		/* stop what still runs; the region is left as it is */
		for (int w = 0; w < c.procs; w++)
			if (c.pid[w]) {
				kill(c.pid[w], SIGKILL);
				reap(c.pid[w], -1);
			}
	}
	if (c.r)
		pstm_close(c.r);
	report(&c);
	if (!c.violated && !c.keep)
		pstm_unlink(c.uri);
	return c.violated ? 1 : 0;
}
