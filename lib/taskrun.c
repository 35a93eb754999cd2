/*
 * taskrun.c - pstm_queue_run: the worker threads that run the region's
 * task queue, how they sleep, and when they stop.  The queue itself and
 * its transactions are lib/taskq.c.
 *
 * A worker's loop: stop if the failed list is not empty; take and run
 * the top of its own lane; else steal (taskq_scan, taskq_take); else
 * ask taskq_idle, which sees in one snapshot whether any task is left
 * (none: return 0), whether any left is of a type this process or a
 * live bound worker can run (yes: sleep and look again), or not
 * (return PSTM_EUNREGISTERED).  A scan or idle check that a commit
 * disturbed is not re-run: it means the queue is busy, and the worker
 * sleeps briefly instead of spinning on it.
 *
 * Sleeping.  Idle workers sleep on the run's condition variable with a
 * timeout that doubles from 50 us to 1 ms.  A worker of this process
 * whose committed task left two or more tasks in its lane (one to
 * steal) wakes one sleeper at once; workers of other processes notice
 * within their timeout: nothing is shared between processes but the
 * queue, and no process writes anything for another to wake it.  Four
 * sleeping workers cost one scan of the lanes per millisecond each.
 *
 * Stopping.  The first error of a worker of this process (a failed
 * task, or a failure of the queue's own transactions) is the run's
 * result: `stop` makes the others leave after the task they are
 * running.  A task that fails in another process reaches us through
 * the failed list, which every worker reads between tasks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "taskq.h"
#include "tx.h"

#define NAP_MIN_NS 50000ull    /* first sleep of an idle worker */
#define NAP_MAX_NS 1000000ull  /* longest: how late another process's
				  tasks may be seen */
#define MAX_THREADS 1024

struct run {
	pstm_region *r;
	struct taskq_geo g;
	pthread_mutex_t mu;     /* err, unreg; the sleepers' wait */
	pthread_cond_t cv;      /* signalled by wake() */
	_Atomic uint64_t gen;   /* bumped by wake(): a sleeper that saw an
				   older value does not wait */
	_Atomic int nsleeping;  /* workers in nap() (seq_cst with gen) */
	_Atomic int stop;       /* a worker failed: the others leave */
	int err;                /* the first worker error; under mu */
	bool unreg;             /* a worker saw only unregistered tasks */
};

static void wake(struct run *x, bool all)
{
	atomic_fetch_add(&x->gen, 1);
	if (atomic_load(&x->nsleeping) > 0) {
		pthread_mutex_lock(&x->mu);
		if (all)
			pthread_cond_broadcast(&x->cv);
		else
			pthread_cond_signal(&x->cv);
		pthread_mutex_unlock(&x->mu);
	}
}

/* Sleep up to *nap_ns (then doubled), unless wake() was called since
 * the worker read @seen. */
static void nap(struct run *x, uint64_t seen, uint64_t *nap_ns)
{
	struct timespec ts;
	*nap_ns = *nap_ns ? *nap_ns * 2 : NAP_MIN_NS;
	if (*nap_ns > NAP_MAX_NS)
		*nap_ns = NAP_MAX_NS;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + *nap_ns;
	ts.tv_sec += (time_t)(ns / 1000000000ull);
	ts.tv_nsec = (long)(ns % 1000000000ull);
	pthread_mutex_lock(&x->mu);
	atomic_fetch_add(&x->nsleeping, 1);
	if (atomic_load(&x->gen) == seen && !atomic_load(&x->stop))
		(void)pthread_cond_timedwait(&x->cv, &x->mu, &ts);
	atomic_fetch_sub(&x->nsleeping, 1);
	pthread_mutex_unlock(&x->mu);
}

static void fail_run(struct run *x, int err)
{
	pthread_mutex_lock(&x->mu);
	if (!x->err)
		x->err = err;
	pthread_mutex_unlock(&x->mu);
	atomic_store(&x->stop, 1);
	wake(x, true);
}

/*
 * After a take: 1 to go on at once, 0 if it found nothing, or -1 once
 * the worker must stop (the run's error recorded).
 */
static int after_take(struct run *x, struct taskq_worker *w, int rc)
{
	if (rc == 0) {
		if (w->stealable)
			wake(x, false);
		return w->outcome != TASKQ_EMPTY;
	}
	if (w->phase == TASKQ_PH_RUN) {
		bool recorded;
		int frc = taskq_fail(w, rc, &recorded);
		if (frc) {
			fail_run(x, frc);
			return -1;
		}
		if (!recorded)
			return 1; /* someone else had it: not ours to report */
	}
	fail_run(x, rc);
	return -1;
}

static void worker(struct run *x)
{
	struct taskq_worker w;
	uint64_t nap_ns = 0;
	int rc = taskq_worker_init(&w, x->r, &x->g);
	if (!rc)
		rc = taskq_bind(&w, true);
	if (rc) {
		taskq_worker_fini(&w);
		fail_run(x, rc);
		return;
	}
	while (!atomic_load(&x->stop)) {
		uint64_t seen = atomic_load(&x->gen);
		int ferr, k;
		if ((rc = taskq_failed(&w, &ferr)) != 0 || ferr) {
			fail_run(x, rc ? rc : ferr);
			break;
		}
		if (w.bound_mask != taskq_mask(w.s) && (rc = taskq_bind(&w, true)) != 0) {
			fail_run(x, rc);
			break;
		}
		if ((k = after_take(x, &w, taskq_take_own(&w))) != 0) {
			if (k < 0)
				break;
			nap_ns = 0;
			continue;
		}
		struct taskq_cand c;
		if ((rc = taskq_scan(&w, &c)) != 0) {
			fail_run(x, rc);
			break;
		}
		if (c.kind == TASKQ_STEAL) {
			if ((k = after_take(x, &w, taskq_take(&w, &c))) < 0)
				break;
			if (k)
				nap_ns = 0;
			continue;
		}
		struct taskq_idle id;
		if (!c.busy && (rc = taskq_idle(&w, &id)) != 0) {
			fail_run(x, rc);
			break;
		}
		if (c.busy || id.busy) {
			nap(x, seen, &nap_ns);
			continue;
		}
		if (id.failed)
			continue; /* seen at the top of the loop */
		if (id.total == 0)
			break; /* nothing queued, nothing running: done */
		if (id.mine && c.kind == TASKQ_ROTATE) {
			if (after_take(x, &w, taskq_take(&w, &c)) < 0)
				break;
			continue;
		}
		if (!id.mine && !id.others) {
			pthread_mutex_lock(&x->mu);
			x->unreg = true;
			pthread_mutex_unlock(&x->mu);
			break;
		}
		/* someone runs what is left (maybe adding more): wait */
		for (uint32_t l = 0; l < w.g.nlanes; l++)
			w.rot_first[l] = 0;
		nap(x, seen, &nap_ns);
	}
	rc = taskq_bind(&w, false);
	if (rc)
		fail_run(x, rc);
	taskq_worker_fini(&w);
}

static void *worker_main(void *p)
{
	worker(p);
	return NULL;
}

int pstm_queue_run(pstm_region *r, int nthreads)
{
	struct run x = {.r = r};
	pthread_t *th;
	int started = 0, first_err;

	if (!r || nthreads < 1 || nthreads > MAX_THREADS)
		return PSTM_EINVAL;
	if (tx_running())
		return PSTM_EINTX;
	int rc = taskq_open(r, false, &x.g);
	if (rc == PSTM_ENOENT)
		return 0; /* no task was ever enqueued */
	if (rc)
		return rc;
	if ((rc = taskq_run_begin(r)) != 0)
		return rc;
	/* a stopped queue stays stopped: nothing runs until the failed
	 * tasks are retried or dropped */
	struct taskq_worker probe = {.r = r, .g = x.g};
	if ((rc = taskq_failed(&probe, &first_err)) != 0 || first_err) {
		taskq_run_end(r);
		return rc ? rc : first_err;
	}
	th = calloc((size_t)nthreads, sizeof(*th));
	if (!th || pthread_mutex_init(&x.mu, NULL) != 0) {
		free(th);
		taskq_run_end(r);
		return PSTM_ENOMEM;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&x.cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		pthread_mutex_destroy(&x.mu);
		free(th);
		taskq_run_end(r);
		return PSTM_ENOMEM;
	}
	pthread_condattr_destroy(&ca);
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&th[i], NULL, worker_main, &x) != 0)
			break;
		started++;
	}
	if (started == 0)
		worker(&x); /* no thread could start: run here */
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
	rc = x.err ? x.err : x.unreg ? PSTM_EUNREGISTERED : 0;
	pthread_cond_destroy(&x.cv);
	pthread_mutex_destroy(&x.mu);
	taskq_run_end(r);
	return rc;
}
