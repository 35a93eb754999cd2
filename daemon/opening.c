/*
 * opening.c - pstmd's own pstm_open of a region, off the event loop.
 *
 * pstm_open waits for the region's flock (its runtime companion's),
 * which any process that can read the file may hold for as long as it
 * likes; in the loop thread that stalled every other client and region
 * for as long (up to the 2 s it was given).  So each open runs in a
 * thread of its own, and the loop goes on.  The thread unblocks only
 * SIGALRM, whose handler does nothing and has no SA_RESTART: once the
 * open is OPEN_TIMEOUT_MS old the loop sends it SIGALRM (again every
 * RESIGNAL_MS, in case the first came just before the flock began),
 * the flock fails with EINTR and the open with it.  The thread then
 * writes the loop's eventfd, and the loop joins it and calls back.
 *
 * The library is thread-safe for distinct handles; the loop touches no
 * handle an opening thread has until it joined that thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pstm.h"
#include "pstmd.h"

#define OPEN_TIMEOUT_MS 2000
#define RESIGNAL_MS 100

struct opening {
	struct opening *next;
	char uri[PATH_MAX];
	opening_fn done;
	void *arg;
	pthread_t th;
	uint64_t signal_ms;       /* when to send SIGALRM (next) */
	bool signalled;           /* it was: a failure is the timeout */
	/* written by the thread before its eventfd write, read by the loop
	 * after it read the eventfd (acquire/release through `finished`) */
	pstm_region *r;
	int err;
	_Atomic bool finished;
};

static struct opening *openings; /* the loop thread's */
static int done_fd = -1;         /* eventfd: an opening finished */

static void on_alarm(int sig)
{
	(void)sig; /* only to interrupt the flock */
}

static void *open_main(void *arg)
{
	struct opening *o = arg;
	sigset_t set;
	sigfillset(&set);
	sigdelset(&set, SIGALRM);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	int err = pstm_open(o->uri, &o->r);
	sigfillset(&set);
	pthread_sigmask(SIG_SETMASK, &set, NULL); /* a late SIGALRM stays pending */
	o->err = err;
	atomic_store_explicit(&o->finished, true, memory_order_release);
	uint64_t one = 1;
	(void)!write(done_fd, &one, sizeof(one));
	return NULL;
}

/* The loop: join and call back every opening that finished. */
static void on_done(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct pstmd *d = arg;
	uint64_t v;
	(void)l;
	(void)events;
	(void)!read(fd, &v, sizeof(v));
	for (struct opening **pp = &openings; *pp;) {
		struct opening *o = *pp;
		if (!atomic_load_explicit(&o->finished, memory_order_acquire)) {
			pp = &o->next;
			continue;
		}
		*pp = o->next;
		pthread_join(o->th, NULL);
		int err = o->err && o->signalled ? PSTM_EBUSY : o->err; /* timed out */
		o->done(d, o->arg, err ? NULL : o->r, err);
		free(o);
	}
}

static int setup(struct pstmd *d)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	if (done_fd >= 0)
		return 0;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) != 0)
		return -1;
	done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (done_fd < 0)
		return -1;
	if (loop_add(d->loop, done_fd, EPOLLIN, on_done, d) != 0) {
		close(done_fd);
		done_fd = -1;
		return -1;
	}
	return 0;
}

int opening_start(struct pstmd *d, const char *uri, opening_fn done, void *arg)
{
	if (setup(d) != 0)
		return PSTM_ENOMEM;
	struct opening *o = calloc(1, sizeof(*o));
	if (!o)
		return PSTM_ENOMEM;
	snprintf(o->uri, sizeof(o->uri), "%s", uri);
	o->done = done;
	o->arg = arg;
	o->signal_ms = pstmd_now_ms() + OPEN_TIMEOUT_MS;
	if (pthread_create(&o->th, NULL, open_main, o) != 0) {
		free(o);
		return PSTM_ENOMEM;
	}
	o->next = openings;
	openings = o;
	return 0;
}

uint64_t opening_tick(void)
{
	uint64_t now = pstmd_now_ms(), next = UINT64_MAX;
	for (struct opening *o = openings; o; o = o->next) {
		if (atomic_load_explicit(&o->finished, memory_order_acquire))
			continue; /* joined at the loop's next turn */
		if (o->signal_ms <= now) {
			pthread_kill(o->th, SIGALRM); /* not joined yet: valid */
			o->signalled = true;
			o->signal_ms = now + RESIGNAL_MS;
		}
		if (o->signal_ms < next)
			next = o->signal_ms;
	}
	return next;
}

void opening_stop_all(struct pstmd *d)
{
	/* stopping: interrupt every open, wait for it, and let each caller
	 * see it fail (what an open got is closed) */
	while (openings) {
		for (struct opening *o = openings; o; o = o->next)
			if (!atomic_load(&o->finished)) {
				pthread_kill(o->th, SIGALRM);
				o->signalled = true;
			}
		usleep(1000);
		on_done(d->loop, done_fd, EPOLLIN, d);
	}
}
