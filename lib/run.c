/*
 * run.c - add/run (after PyPy's transaction module).
 *
 * The pending set is a liburcu wait-free concurrent queue: pstm_add and
 * committing transactions enqueue without blocking, workers dequeue.
 * `outstanding` counts transactions queued or running; a transaction's
 * children are enqueued before its own count is dropped, so it reaches 0
 * only when nothing is left anywhere: that is when the workers stop.
 * Idle workers sleep on a condition variable (process-local; nothing here
 * is in the region).  A failure sets `cancel`: from then on dequeued
 * transactions are discarded instead of run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu/wfcqueue.h>

#include "run.h"
#include "tx.h"

struct run_node {
	struct cds_wfcq_node node;
	pstm_fn fn;
	void *arg;
};

struct run_state {
	struct cds_wfcq_head head;
	struct cds_wfcq_tail tail;
	_Atomic long outstanding; /* queued + running */
	_Atomic int active;       /* a pstm_run is in progress */
	_Atomic int cancel;
	int err;                  /* first failure; under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pstm_region *r;
};

int run_init(struct pstm_region *r)
{
	struct run_state *s = calloc(1, sizeof(*s));
	if (!s)
		return PSTM_ENOMEM;
	cds_wfcq_init(&s->head, &s->tail);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->r = r;
	r->run = s;
	return 0;
}

static void discard_all(struct run_state *s)
{
	struct cds_wfcq_node *n;
	while ((n = cds_wfcq_dequeue_blocking(&s->head, &s->tail))) {
		free(caa_container_of(n, struct run_node, node));
		atomic_fetch_sub(&s->outstanding, 1);
	}
}

void run_fini(struct pstm_region *r)
{
	struct run_state *s = r->run;
	if (!s)
		return;
	discard_all(s);
	cds_wfcq_destroy(&s->head, &s->tail);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	r->run = NULL;
}

static void wake(struct run_state *s)
{
	pthread_mutex_lock(&s->mu);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static int enqueue(struct run_state *s, pstm_fn fn, void *arg)
{
	struct run_node *n = malloc(sizeof(*n));
	if (!n)
		return PSTM_ENOMEM;
	cds_wfcq_node_init(&n->node);
	n->fn = fn;
	n->arg = arg;
	atomic_fetch_add(&s->outstanding, 1);
	cds_wfcq_enqueue(&s->head, &s->tail, &n->node);
	if (atomic_load(&s->active))
		wake(s);
	return 0;
}

int pstm_add(pstm_region *r, pstm_fn fn, void *arg)
{
	if (!r || !fn)
		return PSTM_EINVAL;
	if (tx_running())
		return PSTM_EINTX;
	return enqueue(r->run, fn, arg);
}

/* Commit hook of pstm_tx_add: the transaction committed, so its child
 * joins the pending set (before the parent's own count drops). */
static void add_committed(pstm_region *r, void *fn, void *arg)
{
	pstm_fn f;
	memcpy(&f, &fn, sizeof(f));
	if (enqueue(r->run, f, arg) != 0) {
		/* out of memory after commit: fail the run */
		struct run_state *s = r->run;
		pthread_mutex_lock(&s->mu);
		if (!s->err)
			s->err = PSTM_ENOMEM;
		pthread_mutex_unlock(&s->mu);
		atomic_store(&s->cancel, 1);
	}
}

int pstm_tx_add(pstm_tx *tx, pstm_fn fn, void *arg)
{
	void *f;
	if (!tx || !fn)
		return PSTM_EINVAL;
	memcpy(&f, &fn, sizeof(f)); /* a function pointer through void * */
	tx_on_commit(tx, add_committed, f, arg);
	return 0;
}

static void finish_one(struct run_state *s)
{
	if (atomic_fetch_sub(&s->outstanding, 1) == 1)
		wake(s);
}

static void *worker(void *p)
{
	struct run_state *s = p;

	for (;;) {
		struct cds_wfcq_node *cn =
			cds_wfcq_dequeue_blocking(&s->head, &s->tail);
		if (cn) {
			struct run_node *n = caa_container_of(cn, struct run_node, node);
			if (!atomic_load(&s->cancel)) {
				int rc = pstm_atomic(s->r, n->fn, n->arg);
				if (rc != 0) {
					pthread_mutex_lock(&s->mu);
					if (!s->err)
						s->err = rc;
					pthread_mutex_unlock(&s->mu);
					atomic_store(&s->cancel, 1);
				}
			}
			free(n);
			finish_one(s);
			continue;
		}
		pthread_mutex_lock(&s->mu);
		while (atomic_load(&s->outstanding) > 0 &&
		       cds_wfcq_empty(&s->head, &s->tail)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 2000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		}
		bool done = atomic_load(&s->outstanding) == 0;
		pthread_mutex_unlock(&s->mu);
		if (done)
			return NULL;
	}
}

int pstm_run(pstm_region *r, int nthreads)
{
	struct run_state *s;
	pthread_t *th;
	int expect = 0, rc, started = 0;

	if (!r || nthreads < 1 || nthreads > 1024)
		return PSTM_EINVAL;
	if (tx_running())
		return PSTM_EINTX;
	s = r->run;
	if (!atomic_compare_exchange_strong(&s->active, &expect, 1))
		return PSTM_EBUSY;
	s->err = 0;
	atomic_store(&s->cancel, 0);
	th = calloc((size_t)nthreads, sizeof(*th));
	if (!th) {
		atomic_store(&s->active, 0);
		return PSTM_ENOMEM;
	}
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&th[i], NULL, worker, s) != 0)
			break;
		started++;
	}
	if (started == 0)
		worker(s); /* no thread could start: run here */
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
	rc = s->err;
	atomic_store(&s->cancel, 0);
	atomic_store(&s->active, 0);
	return rc;
}
