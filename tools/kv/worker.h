/*
 * worker.h - one worker process of pstm-kv: attaches to the region, runs
 * one event loop on its listening socket until SIGTERM.
 */
#ifndef KV_WORKER_H
#define KV_WORKER_H

struct worker_opts {
	const char *uri;
	int port;
	int index;
	long max_clients;
	int listen_fd;
};

/* exit status of a worker that could not start (the supervisor gives up) */
#define WORKER_EXIT_STARTUP 3

/* runs in the forked child; returns its exit status */
int worker_main(const struct worker_opts *o);

#endif
