/*
 * crashtest.h - what the files of pstm-crashtest share: its limits, the
 * root object it owns in the region, the memory shared with its workers,
 * the run's state (struct ct), and each file's entry points.
 *
 * pstm-crashtest tortures a workload with crashes, and checks it after
 * each.  Worker processes (workers.c) run the workload's step (workload.c)
 * in a loop; every step and the worker's commit counter in the region are
 * one transaction, and the worker counts in shared memory the steps
 * acknowledged to it (pstm_atomic returned 0).  Campaigns (campaigns.c):
 * (1) random SIGKILLs; (2) a victim that dies at a named crash point of
 * the commit path (PSTM_CRASH_AT) or, on a relaxed region, of the flusher
 * (one holding the flush token), or a victim that dies after its commit
 * point and then an opener that dies inside its recovery; (3) simulated
 * power failures on a copy of a file region (PSTM_TEST_POWERFAIL), each
 * crash image opened as after a reboot.  After every crash a transaction
 * checks (check.c) the workload's invariant (nothing half-applied) and
 * that each counter covers every acknowledged step and at most the one in
 * flight; after a crash point, exactly whether the interrupted step passed
 * the commit point.  On a relaxed region (--relaxed) workers also
 * pstm_sync every SYNC_EVERY steps and count the steps synced; process
 * crashes must still lose nothing, but a power failure may lose
 * acknowledged steps that no finished sync covered: a crash image must
 * hold each counter between its synced and acknowledged counts (the file
 * holds a prefix of the commit order).  The user's guide is
 * docs/crashtest.md; the workload interface is include/pstm_crashtest.h.
 */
#ifndef PSTM_CRASHTEST_PRIV_H
#define PSTM_CRASHTEST_PRIV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "pstm.h"
#include "pstm_crashtest.h"
#include "util.h"

#define PROG "pstm-crashtest"

enum {
	MAX_PROCS = 64,
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

static inline pstm_off counter_off(pstm_off root, int w)
{
	return root + 8 * (uint64_t)(ROOT_COUNTERS_W + w);
}

/* Worker exit statuses besides 0 (stopped when asked) and 128+signal
 * (3 and 4 are taken: the power-failure simulator's own _exit codes);
 * REAP_TIMEOUT is worker_reap's for one it had to kill. */
enum { W_OPEN = 10, W_STEP = 11, W_ROOT = 12, W_NO_CRASH = 13, W_SYNC = 14 };
enum { REAP_TIMEOUT = -2 };

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
	/* longest single pstm_atomic of any worker (atomic_store_max: a
	 * statistic, read by the parent at the end) */
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

/* The run: options (main.c), state, results.  One, in main; the workers
 * are forks and read their copy. */
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
	const struct pstm_crashtest_workload *wl; /* &wl_copy, or the bank */
	struct pstm_crashtest_workload wl_copy;   /* the workload's, its size */
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

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* the parent's random choices (seeded by --seed) */
static inline uint64_t rnd(struct ct *c)
{
	return xorshift64(&c->rng);
}

/* workload.c: the built-in bank, or the --workload object */
int workload_load(struct ct *c);

/* setup.c: create the region (replacing it), the root, the state */
int setup_region(struct ct *c);

/* workers.c */
int worker_run(struct ct *c, const char *uri, int w, const char *crash_at,
	       long max_steps, int sync_every);
pid_t worker_spawn(struct ct *c, int w, const char *crash_at, long max_steps,
		   int sync_every);
pid_t worker_spawn_opener(struct ct *c, const char *crash_at);
int worker_reap(pid_t pid, int timeout_ms);
const char *worker_status_text(int st, char *buf, size_t n);
int worker_start(struct ct *c, int w);
int worker_stop(struct ct *c, int w);
int workers_stop_all(struct ct *c);
void workers_kill_all(struct ct *c);

/* check.c: the checks after a crash */
int check_after(struct ct *c, pstm_region *r, const char *what,
		uint64_t out[MAX_PROCS]);
int check_after_floor(struct ct *c, pstm_region *r, const char *what,
		      const uint64_t *synced, uint64_t out[MAX_PROCS]);
int check_offline(struct ct *c, const char *uri, const char *what, bool settled);

/* campaigns.c */
int campaign_kills(struct ct *c);
int campaign_points(struct ct *c);
int campaign_settle(struct ct *c);
int campaign_powerfail(struct ct *c);
bool campaign_points_selected(const struct ct *c, bool flusher_too);

/* report.c */
__attribute__((format(printf, 2, 3)))
int report_violation(struct ct *c, const char *fmt, ...);
const char *report_tx_error(int rc, char *buf, size_t n);
void report_summary(const struct ct *c);

#endif
