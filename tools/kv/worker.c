/*
 * worker.c - a worker process: its own attachment to the region (never
 * one inherited across fork), one event loop, SIGTERM to stop.  Killed
 * at any moment, it loses nothing acknowledged: a reply is only sent
 * after its transaction committed, and pstm recovers the rest.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "conn.h"
#include "store.h"
#include "worker.h"

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

int worker_main(const struct worker_opts *o)
{
	struct kv_store st;
	struct kv_server s;
	sigset_t wait_mask;
	pid_t parent = getppid();

	/* the supervisor gone (even by SIGKILL): stop too */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		return 0;
	struct sigaction sa = { .sa_handler = on_stop };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	/* SIGTERM/SIGINT stay blocked (the supervisor blocked them) except
	 * while the loop waits */
	sigprocmask(SIG_SETMASK, NULL, &wait_mask);
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGINT);

	int rc = store_attach(&st, o->uri, NULL);
	if (rc) {
		fprintf(stderr, "pstm-kv[%ld]: %s: %s\n", (long)getpid(), o->uri,
			pstm_strerror(rc));
		return WORKER_EXIT_STARTUP;
	}
	memset(&s, 0, sizeof s);
	s.info.pid = getpid();
	s.info.port = o->port;
	s.info.index = o->index;
	s.info.uri = o->uri;
	s.max_clients = o->max_clients;
	exec_init(&s.exec, &st, &s.info);
	int status = 0;
	if (conn_server_init(&s, o->listen_fd)) {
		perror("pstm-kv: epoll");
		status = WORKER_EXIT_STARTUP;
	} else if (loop_run(&s.loop, &stop, &wait_mask)) {
		perror("pstm-kv: epoll_wait");
		status = 1;
	}
	conn_server_free(&s);
	exec_free(&s.exec);
	store_detach(&st);
	return status;
}
