/*
 * loop.c - pstmd's event loop: an epoll set and a table of handlers
 * indexed by descriptor.
 *
 * Each epoll event carries the descriptor and the generation its watch
 * had when it was added, so an event fetched in the same batch as a
 * handler that closed (and maybe reused) that descriptor is recognised
 * and dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

struct watch {
	loop_fn fn;
	void *arg;
	uint32_t gen;   /* bumped by every add and del of this fd */
	int used;
};

struct loop {
	int epfd;
	struct watch *w;
	size_t nw;
};

#define BATCH 64

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l->w);
	free(l);
}

static int grow(struct loop *l, int fd)
{
	if ((size_t)fd < l->nw)
		return 0;
	size_t n = l->nw ? l->nw : 64;
	while (n <= (size_t)fd)
		n *= 2;
	struct watch *w = realloc(l->w, n * sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w + l->nw, 0, (n - l->nw) * sizeof(*w));
	l->w = w;
	l->nw = n;
	return 0;
}

static uint64_t key(struct loop *l, int fd)
{
	return (uint64_t)l->w[fd].gen << 32 | (uint32_t)fd;
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_fn fn, void *arg)
{
	if (fd < 0 || grow(l, fd) != 0)
		return fd < 0 ? -EBADF : -ENOMEM;
	struct watch *w = &l->w[fd];
	if (w->used)
		return -EEXIST;
	w->gen++;
	struct epoll_event ev = {.events = events, .data.u64 = key(l, fd)};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		return -errno;
	w->fn = fn;
	w->arg = arg;
	w->used = 1;
	return 0;
}

int loop_mod(struct loop *l, int fd, uint32_t events)
{
	if (fd < 0 || (size_t)fd >= l->nw || !l->w[fd].used)
		return -ENOENT;
	struct epoll_event ev = {.events = events, .data.u64 = key(l, fd)};
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
}

void loop_del(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nw || !l->w[fd].used)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->w[fd].used = 0;
	l->w[fd].gen++;
}

int loop_once(struct loop *l, int timeout_ms)
{
	struct epoll_event ev[BATCH];
	int n = epoll_wait(l->epfd, ev, BATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		int fd = (int)(uint32_t)ev[i].data.u64;
		uint32_t gen = (uint32_t)(ev[i].data.u64 >> 32);
		if ((size_t)fd >= l->nw || !l->w[fd].used || l->w[fd].gen != gen)
			continue; /* deleted by an earlier handler of this batch */
		l->w[fd].fn(l, fd, ev[i].events, l->w[fd].arg);
	}
	return 0;
}
