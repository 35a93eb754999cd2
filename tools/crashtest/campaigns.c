/*
 * campaigns.c - pstm-crashtest's three ways to crash: random kills of
 * running workers, victims at each named crash point (and openers killed
 * inside the recovery of one), simulated power failures on copies of a
 * file region; and the settling between them (every worker stopped, the
 * region reopened and checked offline).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crashtest.h"
#include "companion.h"
#include "region.h"

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

int campaign_kills(struct ct *c)
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
		int st = worker_reap(c->pid[w], -1);
		c->pid[w] = 0;
		snprintf(what, sizeof(what), "random kill %d (worker %d)", k + 1, w);
		if (st != 128 + SIGKILL)
			return report_violation(c, "%s: the worker had already ended: "
						"it %s", what,
						worker_status_text(st, buf, sizeof(buf)));
		c->crashes++;
		c->kill_rounds++;
		if (check_after(c, c->r, what, cnt))
			return -1;
		/* settled: the dead worker's interrupted step is in or out */
		atomic_store_explicit(&c->sh->acked[w], cnt[w], memory_order_relaxed);
		if (worker_start(c, w))
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
	pid_t v = worker_spawn(c, w, crash_at, VICTIM_MAX_STEPS, sync_every);
	if (v < 0)
		return report_violation(c, "fork: %s", strerror(errno));
	int st = worker_reap(v, WAIT_MS);
	if (st != 128 + SIGKILL)
		return report_violation(c, "%s: the victim (PSTM_CRASH_AT=%s) %s",
					what, crash_at,
					worker_status_text(st, buf, sizeof(buf)));
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
	if (worker_stop(c, w) ||
	    run_victim(c, w, at, points[p].flusher ? 1 : c->relaxed ? SYNC_EVERY : 0,
		       what))
		return -1;
	uint64_t acked = atomic_load_explicit(&c->sh->acked[w], memory_order_acquire);
	if (check_after(c, c->r, what, cnt))
		return -1;
	if (points[p].flusher) { /* in or out: check_after's bounds */
		atomic_store_explicit(&c->sh->acked[w], cnt[w], memory_order_relaxed);
		c->flush_victims++;
		return worker_start(c, w);
	}
	uint64_t want = acked + (points[p].committed ? 1 : 0);
	if (cnt[w] != want)
		return report_violation(c, "%s: the victim died %s the commit "
					"point, yet its interrupted step is %s "
					"(counter %llu, %llu acknowledged)", what,
					points[p].committed ? "after" : "before",
					cnt[w] > acked ? "present" : "absent",
					(unsigned long long)cnt[w],
					(unsigned long long)acked);
	atomic_store_explicit(&c->sh->acked[w], cnt[w], memory_order_relaxed);
	c->point_victims++;
	return worker_start(c, w);
}

/* With nobody else running (so nobody else recovers it): a victim dies
 * after its commit point, an opener dies at recovery point @p while
 * recovering it, then the next opener (ours) must finish the job. */
static int recovery_point_round(struct ct *c, size_t p, int w, const char *what)
{
	uint64_t cnt[MAX_PROCS];
	char at[64], buf[64];
	if (workers_stop_all(c))
		return -1;
	snprintf(at, sizeof(at), "commit.logged:%d", 1 + (int)(rnd(c) % CRASH_AT_MAX_K));
	if (run_victim(c, w, at, c->relaxed ? SYNC_EVERY : 0, what))
		return -1;
	uint64_t acked = atomic_load_explicit(&c->sh->acked[w], memory_order_acquire);
	snprintf(at, sizeof(at), "%s:1", points[p].name);
	pid_t o = worker_spawn_opener(c, at);
	if (o < 0)
		return report_violation(c, "fork: %s", strerror(errno));
	int st = worker_reap(o, WAIT_MS);
	if (st != 128 + SIGKILL)
		return report_violation(c, "%s: the opener recovering the victim "
					"(PSTM_CRASH_AT=%s) %s", what, at,
					worker_status_text(st, buf, sizeof(buf)));
	c->crashes++;
	/* the next opener finishes the recovery */
	pstm_region *r;
	int rc = pstm_open(c->uri, &r);
	if (rc)
		return report_violation(c, "%s: opening after the opener died: %s", what,
					pstm_strerror(rc));
	rc = check_after(c, r, what, cnt);
	pstm_close(r);
	if (rc)
		return -1;
	if (cnt[w] != acked + 1)
		return report_violation(c, "%s: the victim died after its commit "
					"point and its recovery was interrupted, "
					"yet its step is absent (counter %llu, "
					"%llu acknowledged)", what,
					(unsigned long long)cnt[w],
					(unsigned long long)acked);
	atomic_store_explicit(&c->sh->acked[w], cnt[w], memory_order_relaxed);
	c->recovery_victims++;
	for (int i = 0; i < c->procs; i++)
		if (worker_start(c, i))
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

/* Does --points name any point (@flusher_too), or any but the flusher's
 * (those need --relaxed)?  For the option checks of main.c. */
bool campaign_points_selected(const struct ct *c, bool flusher_too)
{
	for (size_t p = 0; p < NPOINTS; p++)
		if (point_selected(c, p) && (flusher_too || !points[p].flusher))
			return true;
	return false;
}

int campaign_points(struct ct *c)
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
/* Settling, between the kill campaigns and the power failures         */

/* Stop every worker; each counter must equal its acknowledged steps; a
 * fresh open recovers whatever is dead; then pstm check must be clean. */
int campaign_settle(struct ct *c)
{
	uint64_t cnt[MAX_PROCS];
	if (workers_stop_all(c) || check_after(c, c->r, "all workers stopped", cnt))
		return -1;
	for (int w = 0; w < c->procs; w++) {
		uint64_t a = atomic_load_explicit(&c->sh->acked[w], memory_order_acquire);
		if (cnt[w] != a)
			return report_violation(c, "all workers stopped: worker slot "
						"%d: counter %llu, %llu acknowledged",
						w, (unsigned long long)cnt[w],
						(unsigned long long)a);
	}
	pstm_close(c->r);
	c->r = NULL;
	pstm_region *r;
	int rc = pstm_open(c->uri, &r);
	if (rc)
		return report_violation(c, "reopening %s: %s", c->uri,
					pstm_strerror(rc));
	pstm_close(r);
	return check_offline(c, c->uri, "after the kill campaigns", true);
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
		return report_violation(c, "copying %s to %s: %s", c->uri, work,
					strerror(errno));
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
		_exit(worker_run(c, work, w, NULL, VICTIM_MAX_STEPS,
				 c->relaxed ? SYNC_EVERY : 0));
	}
	if (pid < 0)
		return report_violation(c, "fork: %s", strerror(errno));
	int st = worker_reap(pid, WAIT_MS);
	if (st != 0 || access(image, F_OK) != 0)
		return report_violation(c, "%s: the worker %s%s", what,
					st == W_NO_CRASH
						? "never lost power"
						: worker_status_text(st, buf, sizeof(buf)),
					st == 0 ? " without writing a crash image" : "");
	c->crashes++;
	region_forget_volatile(work);

	/* a fresh boot on the image: recovery replays committed records */
	region_forget_volatile(image);
	pstm_region *r;
	int rc = pstm_open(image, &r);
	if (rc)
		return report_violation(c, "%s: the crash image does not open: %s", what,
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
			return report_violation(c, "%s: worker slot %d did not run, "
						"yet its counter went from %llu to %llu",
						what, v,
						(unsigned long long)base[v],
						(unsigned long long)cnt[v]);
	if (check_offline(c, image, what, false))
		return -1;
	region_forget_volatile(image);
	unlink(image);
	c->inspect = c->uri;
	c->pf_images++;
	return 0;
}

int campaign_powerfail(struct ct *c)
{
	static char work[PATH_MAX], image[PATH_MAX];
	uint64_t base[MAX_PROCS];
	int rc = 0;
	snprintf(work, sizeof(work), "%s.ct-work", c->uri);
	if ((size_t)snprintf(image, sizeof(image), "%s.ct-image", c->uri) >= 240)
		return report_violation(c, "the path %s is too long for a crash "
					"image", c->uri);
	/* closed cleanly: the file must hold everything without its
	 * companions (relaxed: the working copy) */
	region_forget_volatile(c->uri);
	rc = pstm_open(c->uri, &c->r);
	if (rc)
		return report_violation(c, "opening %s: %s", c->uri, pstm_strerror(rc));
	if (check_after(c, c->r, "before the power failures", base))
		return -1;
	if (c->relaxed) /* forget_volatile above: all of it from the file */
		for (int w = 0; w < c->procs; w++)
			if (base[w] != atomic_load(&c->sh->acked[w]))
				return report_violation(
					c, "after a clean close and a power failure: "
					"worker slot %d: counter %llu, %llu acknowledged "
					"(a clean close must leave every commit in the "
					"file)", w, (unsigned long long)base[w],
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

