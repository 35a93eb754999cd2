/*
 * run.c - add/run (after PyPy's transaction module), and file
 * descriptors watched by the run loop, so that events become
 * transactions.
 *
 * The pending set is a liburcu wait-free concurrent queue: pstm_add and
 * committing transactions enqueue without blocking, workers dequeue.
 * `outstanding` counts transactions queued or running; a transaction's
 * children are enqueued before its own count is dropped, so it reaches 0
 * only when nothing is left anywhere.  The workers stop when nothing is
 * outstanding and no fd is watched, or when pstm_run_stop asks them to.
 * A failure sets `cancel` (dequeued transactions are discarded instead of
 * run) and stops the run.
 *
 * Sleeping.  Idle workers sleep in epoll_wait on the run's epoll set:
 * the watched fds (EPOLLONESHOT: one worker at a time runs an fd's
 * handler; the fd is re-armed when it returns) and an eventfd written
 * whenever there is something to look at (work queued, the last
 * transaction finished, a stop).  A worker that takes work from the queue
 * and leaves more behind writes it again, so the others follow.  Nothing
 * here is in the region: all of it is process-local.
 *
 * Watches are a table indexed by fd, under mu; an epoll event carries the
 * fd and the generation of its watch, so an event that arrives after an
 * unwatch (or a new watch of the same fd number) is recognised as stale.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <urcu/wfcqueue.h>

#include "run.h"
#include "tx.h"

#define WAKE_TAG UINT64_MAX   /* epoll data of the eventfd */
#define IDLE_POLL_MS 100      /* a sleeping worker looks again after this */
#define WATCH_EVENTS (EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP)

struct run_node {
	struct cds_wfcq_node node;
	pstm_fn fn;
	void *arg;
};

struct watch {
	bool used;
	bool busy;          /* a worker runs its handler (the fd is disarmed) */
	uint32_t gen;       /* bumped at every watch and unwatch of the fd */
	uint32_t events;
	pstm_fd_fn fn;
	void *arg;
};

struct run_state {
	struct cds_wfcq_head head;
	struct cds_wfcq_tail tail;
	_Atomic long outstanding; /* queued + running */
	_Atomic int active;       /* a pstm_run is in progress */
	_Atomic int cancel;
	_Atomic int stop;         /* pstm_run_stop, or a failure */
	_Atomic int nwatched;
	int err;                  /* first failure; under mu */
	pthread_mutex_t mu;       /* err, the watch table */
	struct watch *w;          /* indexed by fd */
	int wcap;
	int epfd, evfd;
	struct pstm_region *r;
};

int run_init(struct pstm_region *r)
{
	struct run_state *s = calloc(1, sizeof(*s));
	if (!s)
		return PSTM_ENOMEM;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
	if (s->epfd < 0 || s->evfd < 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev) != 0) {
		if (s->epfd >= 0)
			close(s->epfd);
		if (s->evfd >= 0)
			close(s->evfd);
		free(s);
		return PSTM_ENOMEM;
	}
	cds_wfcq_init(&s->head, &s->tail);
	pthread_mutex_init(&s->mu, NULL);
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
	close(s->epfd);
	close(s->evfd);
	free(s->w);
	free(s);
	r->run = NULL;
}

/* Something to look at: wake a sleeping worker (or all: level-triggered,
 * the eventfd stays readable until one of them reads it). */
static void wake(struct run_state *s)
{
	uint64_t one = 1;
	ssize_t n = write(s->evfd, &one, sizeof(one));
	(void)n; /* EAGAIN: the counter is full, so it is readable anyway */
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

static void fail_run(struct run_state *s, int rc)
{
	pthread_mutex_lock(&s->mu);
	if (!s->err)
		s->err = rc;
	pthread_mutex_unlock(&s->mu);
	atomic_store(&s->cancel, 1);
	atomic_store(&s->stop, 1);
	wake(s);
}

/* Commit hook of pstm_tx_add: the transaction committed, so its child
 * joins the pending set (before the parent's own count drops). */
static void add_committed(pstm_region *r, void *fn, void *arg)
{
	pstm_fn f;
	memcpy(&f, &fn, sizeof(f));
	if (enqueue(r->run, f, arg) != 0)
		fail_run(r->run, PSTM_ENOMEM); /* out of memory after commit */
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

static bool finished(struct run_state *s)
{
	return atomic_load(&s->stop) ||
	       (atomic_load(&s->outstanding) == 0 && atomic_load(&s->nwatched) == 0);
}

/* ------------------------------------------------------------ watches */

static uint64_t watch_tag(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

/* The epoll event @ev of a watched fd: run its handler unless the event
 * is stale, then re-arm the fd if it is still watched. */
static void run_handler(struct run_state *s, const struct epoll_event *ev)
{
	int fd = (int)(ev->data.u64 & 0xffffffffu);
	uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
	pthread_mutex_lock(&s->mu);
	struct watch *w = fd < s->wcap ? &s->w[fd] : NULL;
	if (!w || !w->used || w->gen != gen || w->busy) {
		pthread_mutex_unlock(&s->mu);
		return;
	}
	w->busy = true;
	pstm_fd_fn fn = w->fn;
	void *arg = w->arg;
	pthread_mutex_unlock(&s->mu);

	fn(s->r, fd, ev->events, arg);

	pthread_mutex_lock(&s->mu);
	w = &s->w[fd]; /* the table may have grown meanwhile */
	if (w->used && w->gen == gen) {
		w->busy = false;
		struct epoll_event re = {.events = w->events | EPOLLONESHOT,
					 .data.u64 = watch_tag(fd, gen)};
		(void)epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &re);
	}
	pthread_mutex_unlock(&s->mu);
}

int pstm_watch_fd(pstm_region *r, int fd, uint32_t events, pstm_fd_fn fn,
		  void *arg)
{
	if (!r || fd < 0 || !fn || !events || (events & ~(uint32_t)WATCH_EVENTS))
		return PSTM_EINVAL;
	struct run_state *s = r->run;
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	if (fd >= s->wcap) {
		int nc = s->wcap ? s->wcap : 64;
		while (nc <= fd)
			nc *= 2;
		struct watch *nw = realloc(s->w, sizeof(*nw) * (size_t)nc);
		if (!nw) {
			rc = PSTM_ENOMEM;
			goto out;
		}
		memset(nw + s->wcap, 0, sizeof(*nw) * (size_t)(nc - s->wcap));
		s->w = nw;
		s->wcap = nc;
	}
	struct watch *w = &s->w[fd];
	if (w->used) {
		rc = PSTM_EEXIST;
		goto out;
	}
	w->gen++;
	struct epoll_event ev = {.events = events | EPOLLONESHOT,
				 .data.u64 = watch_tag(fd, w->gen)};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		rc = errno == ENOMEM || errno == ENOSPC ? PSTM_ENOMEM : PSTM_EINVAL;
		goto out;
	}
	*w = (struct watch){.used = true, .gen = w->gen, .events = events,
			    .fn = fn, .arg = arg};
	atomic_fetch_add(&s->nwatched, 1);
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int pstm_unwatch_fd(pstm_region *r, int fd)
{
	if (!r || fd < 0)
		return PSTM_EINVAL;
	struct run_state *s = r->run;
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	if (fd >= s->wcap || !s->w[fd].used) {
		rc = PSTM_ENOENT;
	} else {
		struct watch *w = &s->w[fd];
		w->used = false;
		w->gen++; /* events still in flight are stale now */
		(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
		atomic_fetch_sub(&s->nwatched, 1);
	}
	pthread_mutex_unlock(&s->mu);
	if (!rc)
		wake(s); /* maybe the last reason to keep running */
	return rc;
}

int pstm_run_stop(pstm_region *r)
{
	if (!r)
		return PSTM_EINVAL;
	struct run_state *s = r->run;
	if (!atomic_load(&s->active))
		return PSTM_EINVAL;
	atomic_store(&s->stop, 1);
	wake(s);
	return 0;
}

/* ------------------------------------------------------------ workers */

static void run_one(struct run_state *s, struct run_node *n)
{
	if (!atomic_load(&s->cancel)) {
		int rc = pstm_atomic(s->r, n->fn, n->arg);
		if (rc != 0)
			fail_run(s, rc);
	}
	free(n);
	finish_one(s);
}

static void *worker(void *p)
{
	struct run_state *s = p;

	for (;;) {
		if (!atomic_load(&s->stop)) {
			struct cds_wfcq_node *cn =
				cds_wfcq_dequeue_blocking(&s->head, &s->tail);
			if (cn) {
				if (!cds_wfcq_empty(&s->head, &s->tail))
					wake(s); /* more for the others */
				run_one(s, caa_container_of(cn, struct run_node, node));
				continue;
			}
		}
		if (finished(s)) {
			wake(s); /* so that every other worker sees it too */
			return NULL;
		}
		struct epoll_event ev;
		int k = epoll_wait(s->epfd, &ev, 1, IDLE_POLL_MS);
		if (k <= 0)
			continue;
		if (ev.data.u64 == WAKE_TAG) {
			if (!finished(s)) { /* else leave it readable for all */
				uint64_t v;
				ssize_t n = read(s->evfd, &v, sizeof(v));
				(void)n;
			}
			continue;
		}
		run_handler(s, &ev);
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
	atomic_store(&s->stop, 0);
	uint64_t v; /* wakes left over from before this run */
	ssize_t n = read(s->evfd, &v, sizeof(v));
	(void)n;
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
	if (atomic_load(&s->cancel))
		discard_all(s); /* the run failed: what was pending is cancelled */
	rc = s->err;
	atomic_store(&s->cancel, 0);
	atomic_store(&s->stop, 0);
	atomic_store(&s->active, 0);
	return rc;
}
