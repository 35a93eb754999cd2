/*
 * workers.c - pstm-crashtest's worker processes: the worker loop (the
 * workload's step and the slot's counter in one transaction, then the
 * acknowledged count in shared memory), forking victims and openers with
 * a crash point armed, waiting for them with a timeout, and stopping or
 * killing what still runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crashtest.h"

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

static void note_commit(struct shared *sh, int w, uint64_t took_ns)
{
	atomic_store_max(&sh->worst_ns, took_ns);
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
int worker_run(struct ct *c, const char *uri, int w, const char *crash_at,
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
				report_tx_error(rc, buf, sizeof(buf)));
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

pid_t worker_spawn(struct ct *c, int w, const char *crash_at, long max_steps,
		   int sync_every)
{
	fflush(stdout);
	fflush(stderr);
	pid_t p = fork();
	if (p == 0)
		_exit(worker_run(c, c->uri, w, crash_at, max_steps, sync_every));
	return p;
}

/* An opener with @crash_at armed: pstm_open recovers the dead and should
 * die inside that; exits W_NO_CRASH if the open completed. */
pid_t worker_spawn_opener(struct ct *c, const char *crash_at)
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

/* Wait for @pid: its exit status, or 128 + the signal that killed it;
 * after @timeout_ms (< 0: forever) SIGKILL it and return REAP_TIMEOUT. */
int worker_reap(pid_t pid, int timeout_ms)
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

/* What worker_reap's @st says about the process, for a violation. */
const char *worker_status_text(int st, char *buf, size_t n)
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

/* A worker for slot @w that runs until asked to stop. */
int worker_start(struct ct *c, int w)
{
	c->pid[w] = worker_spawn(c, w, NULL, -1, c->relaxed ? SYNC_EVERY : 0);
	if (c->pid[w] < 0) {
		c->pid[w] = 0;
		return report_violation(c, "fork: %s", strerror(errno));
	}
	return 0;
}

/* Ask slot @w's worker to finish its step and exit; it must do so. */
int worker_stop(struct ct *c, int w)
{
	char buf[64];
	if (!c->pid[w])
		return 0;
	atomic_store_explicit(&c->sh->stop[w], 1, memory_order_release);
	int st = worker_reap(c->pid[w], WAIT_MS);
	atomic_store_explicit(&c->sh->stop[w], 0, memory_order_relaxed);
	c->pid[w] = 0;
	if (st != 0)
		return report_violation(c, "worker %d %s", w,
					worker_status_text(st, buf, sizeof(buf)));
	return 0;
}

int workers_stop_all(struct ct *c)
{
	int rc = 0;
	for (int w = 0; w < c->procs; w++)
		if (c->pid[w])
			atomic_store_explicit(&c->sh->stop[w], 1, memory_order_release);
	for (int w = 0; w < c->procs; w++)
		if (worker_stop(c, w))
			rc = -1;
	return rc;
}

/* After a violation: whatever still runs dies; the region is left as is. */
void workers_kill_all(struct ct *c)
{
	for (int w = 0; w < c->procs; w++)
		if (c->pid[w]) {
			kill(c->pid[w], SIGKILL);
			worker_reap(c->pid[w], -1);
		}
}
