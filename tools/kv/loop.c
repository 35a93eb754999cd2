/* loop.c - the epoll event loop (see loop.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

#define BATCH 128

int loop_init(struct kv_loop *l)
{
	l->after_batch = NULL;
	l->arg = NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	return l->epfd < 0 ? -1 : 0;
}

void loop_free(struct kv_loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}

int loop_add(struct kv_loop *l, struct kv_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };
	w->events = events;
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev);
}

int loop_set(struct kv_loop *l, struct kv_watch *w, uint32_t events)
{
	if (w->events == events)
		return 0;
	struct epoll_event ev = { .events = events, .data.ptr = w };
	w->events = events;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

void loop_del(struct kv_loop *l, struct kv_watch *w)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

int loop_run(struct kv_loop *l, volatile sig_atomic_t *stop,
	     const sigset_t *mask)
{
	struct epoll_event ev[BATCH];
	while (!*stop) {
		int n = epoll_pwait(l->epfd, ev, BATCH, -1, mask);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (int i = 0; i < n; i++) {
			struct kv_watch *w = ev[i].data.ptr;
			w->ready(w, ev[i].events);
		}
		/* owners free what they closed here, never inside a batch
		 * that may still hold events for it */
		if (l->after_batch)
			l->after_batch(l->arg);
	}
	return 0;
}
