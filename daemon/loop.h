/*
 * loop.h - pstmd's event loop (daemon/loop.c): one epoll set, a handler
 * per descriptor, nothing else.  It knows no protocol.
 */
#ifndef PSTMD_LOOP_H
#define PSTMD_LOOP_H

#include <stdint.h>

struct loop;
typedef void (*loop_fn)(struct loop *l, int fd, uint32_t events, void *arg);

struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Watch @fd for @events (EPOLLIN, ...), calling fn(l, fd, events, arg).
 * 0, or -errno.  An fd is watched at most once. */
int loop_add(struct loop *l, int fd, uint32_t events, loop_fn fn, void *arg);
/* Change the events of a watched fd. */
int loop_mod(struct loop *l, int fd, uint32_t events);
/* Stop watching @fd (before closing it).  Events for it that are already
 * fetched are dropped, also when the number is watched again at once. */
void loop_del(struct loop *l, int fd);

/* Wait at most @timeout_ms (-1: for ever) and run the handlers of what
 * is ready.  0, or -errno of epoll_wait (EINTR is 0). */
int loop_once(struct loop *l, int timeout_ms);

#endif
