/*
 * loop.h - the event loop of one pstm-kv worker process: epoll, and
 * nothing about clients or the protocol (Redis's ae.c).
 */
#ifndef KV_LOOP_H
#define KV_LOOP_H

#include <signal.h>
#include <stdint.h>

struct kv_watch;
typedef void (*kv_ready_fn)(struct kv_watch *w, uint32_t events);

/* a watched fd; embedded in its owner (container_of) */
struct kv_watch {
	int fd;
	uint32_t events;  /* EPOLLIN / EPOLLOUT now asked for */
	kv_ready_fn ready;
};

struct kv_loop {
	int epfd;
	void (*after_batch)(void *arg); /* after each batch of events */
	void *arg;
};

int loop_init(struct kv_loop *l);
void loop_free(struct kv_loop *l);
int loop_add(struct kv_loop *l, struct kv_watch *w, uint32_t events);
/* change the events of @w (does nothing when they are the same) */
int loop_set(struct kv_loop *l, struct kv_watch *w, uint32_t events);
void loop_del(struct kv_loop *l, struct kv_watch *w);

/*
 * loop_run - dispatch events until *@stop is set; @mask is the signal
 * mask while waiting (signals that set *@stop are blocked otherwise, so
 * none is missed between the check and the wait).  Returns 0, or -1 with
 * errno when epoll fails.
 */
int loop_run(struct kv_loop *l, volatile sig_atomic_t *stop,
	     const sigset_t *mask);

#endif
