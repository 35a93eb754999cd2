/*
 * main.c - pstm-kv: options, the listening sockets and the supervisor.
 * The supervisor makes the region (and its map) if missing, binds one
 * SO_REUSEPORT socket per worker on 127.0.0.1, forks the workers and
 * restarts any that dies.  It keeps every socket open, so connections
 * that arrive while a worker restarts wait in its backlog.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pstm.h>

#include "conn.h"
#include "store.h"
#include "worker.h"

#define MAX_PROCESSES 64

static const char usage[] =
	"usage: pstm-kv --region URI [--port P] [--processes N] [options]\n"
	"A Redis-protocol (RESP2) server for strings and counters on a pstm\n"
	"region; every request is one transaction.  Listens on 127.0.0.1 only.\n"
	"  --region URI        shm:NAME or a file path (created if missing)\n"
	"  --port P            TCP port (default 6380)\n"
	"  --processes N       worker processes, 1..64 (default 1)\n"
	"  --max-clients N     connections per process (default 1024)\n"
	"  creating a region:\n"
	"  --size BYTES        region size, K/M/G suffixes (default 256M)\n"
	"  --durability D      volatile, durable or relaxed (default: volatile\n"
	"                      for shm:, durable for files)\n"
	"  --help, --version\n";

struct worker_slot {
	pid_t pid;
	int fd;
	struct timespec started;
	struct timespec restart_at;  /* when to restart a dead one */
};

static double since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (now.tv_nsec - t->tv_nsec) / 1e9;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end || v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
	    bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 511)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* systemd readiness, when started as a Type=notify service */
static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || (path[0] != '/' && path[0] != '@'))
		return;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(path);
	if (n >= sizeof a.sun_path)
		return;
	memcpy(a.sun_path, path, n);
	if (a.sun_path[0] == '@')
		a.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&a,
	       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	close(fd);
}

static pid_t start_worker(struct worker_slot *w, const struct worker_opts *base,
			  int index, const struct worker_slot *all, int n)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < n; i++)
			if (i != index)
				close(all[i].fd);
		struct worker_opts o = *base;
		o.index = index;
		o.listen_fd = w->fd;
		_exit(worker_main(&o));
	}
	if (pid > 0) {
		w->pid = pid;
		clock_gettime(CLOCK_MONOTONIC, &w->started);
		fprintf(stderr, "pstm-kv: worker %d started (pid %ld)\n", index,
			(long)pid);
	}
	return pid;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "region", required_argument, NULL, 'r' },
		{ "port", required_argument, NULL, 'p' },
		{ "processes", required_argument, NULL, 'n' },
		{ "max-clients", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "durability", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct worker_opts wo = { .port = 6380,
				  .max_clients = CONN_DEFAULT_MAX_CLIENTS };
	struct store_create cr = { .size_bytes = 256u << 20,
				   .log_bytes = 2u << 20 };
	long nproc = 1, v;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r': wo.uri = optarg; break;
		case 'p':
			if (parse_long(optarg, 1, 65535, &v))
				goto bad;
			wo.port = (int)v;
			break;
		case 'n':
			if (parse_long(optarg, 1, MAX_PROCESSES, &nproc))
				goto bad;
			break;
		case 'c':
			if (parse_long(optarg, 1, 1000000, &wo.max_clients))
				goto bad;
			break;
		case 's':
			if (parse_size(optarg, &cr.size_bytes))
				goto bad;
			break;
		case 'd':
			if (!strcmp(optarg, "volatile"))
				cr.durability = PSTM_VOLATILE;
			else if (!strcmp(optarg, "durable"))
				cr.durability = PSTM_DURABLE;
			else if (!strcmp(optarg, "relaxed"))
				cr.durability = PSTM_RELAXED;
			else
				goto bad;
			break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': printf("pstm-kv %s\n", pstm_version()); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (!wo.uri || optind != argc) {
		fputs(usage, stderr);
		return 2;
	}

	/* room for every client's socket */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)wo.max_clients + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)wo.max_clients + 64
			      ? rl.rlim_max : (rlim_t)wo.max_clients + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)wo.max_clients + 64) {
			wo.max_clients = (long)rl.rlim_cur - 64;
			if (wo.max_clients < 1)
				wo.max_clients = 1;
			fprintf(stderr, "pstm-kv: open files limit: at most %ld clients per process\n",
				wo.max_clients);
		}
	}

	struct kv_store st;
	int rc = store_attach(&st, wo.uri, &cr);
	if (rc) {
		fprintf(stderr, "pstm-kv: %s: %s\n", wo.uri, pstm_strerror(rc));
		return 1;
	}
	struct pstm_region_info ri;
	const char *dur = "?";
	if (pstm_region_info(st.r, &ri) == 0)
		dur = ri.durability == PSTM_DURABLE ? "durable"
		      : ri.durability == PSTM_RELAXED ? "relaxed" : "volatile";
	store_detach(&st);

	struct worker_slot w[MAX_PROCESSES];
	memset(w, 0, sizeof w);
	for (int i = 0; i < nproc; i++) {
		w[i].fd = listen_on(wo.port);
		if (w[i].fd < 0) {
			fprintf(stderr, "pstm-kv: 127.0.0.1:%d: %s\n", wo.port,
				strerror(errno));
			return 1;
		}
	}

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (int i = 0; i < nproc; i++)
		if (start_worker(&w[i], &wo, i, w, (int)nproc) < 0) {
			perror("pstm-kv: fork");
			return 1;
		}
	fprintf(stderr, "pstm-kv %s: serving %s (%s) on 127.0.0.1:%d, %ld processes\n",
		pstm_version(), wo.uri, dur, wo.port, nproc);
	notify("READY=1");

	int status = 0, stopping = 0;
	while (!stopping) {
		struct timespec tick = { 0, 100 * 1000 * 1000 };
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			stopping = 1;
			break;
		}
		pid_t pid;
		int ws;
		while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
			for (int i = 0; i < nproc; i++) {
				if (w[i].pid != pid)
					continue;
				w[i].pid = 0;
				if (WIFSIGNALED(ws))
					fprintf(stderr, "pstm-kv: worker %d (pid %ld) killed by signal %d\n",
						i, (long)pid, WTERMSIG(ws));
				else
					fprintf(stderr, "pstm-kv: worker %d (pid %ld) exited with status %d\n",
						i, (long)pid, WEXITSTATUS(ws));
				if (WIFEXITED(ws) && WEXITSTATUS(ws) == WORKER_EXIT_STARTUP) {
					fprintf(stderr, "pstm-kv: worker %d could not start: stopping\n", i);
					status = 1;
					stopping = 1;
				}
				/* one that dies young waits a second first */
				clock_gettime(CLOCK_MONOTONIC, &w[i].restart_at);
				if (since(&w[i].started) < 1.0)
					w[i].restart_at.tv_sec += 1;
			}
		}
		for (int i = 0; i < nproc && !stopping; i++)
			if (w[i].pid == 0 && since(&w[i].restart_at) >= 0 &&
			    start_worker(&w[i], &wo, i, w, (int)nproc) < 0)
				perror("pstm-kv: fork");
	}

	fprintf(stderr, "pstm-kv: stopping\n");
	notify("STOPPING=1");
	for (int i = 0; i < nproc; i++)
		if (w[i].pid > 0)
			kill(w[i].pid, SIGTERM);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int alive = 0;
		for (int i = 0; i < nproc; i++) {
			if (w[i].pid > 0 && waitpid(w[i].pid, NULL, WNOHANG) == w[i].pid)
				w[i].pid = 0;
			alive += w[i].pid > 0;
		}
		if (!alive)
			break;
		if (since(&t0) > 10.0) {  /* a stuck worker: no more waiting */
			for (int i = 0; i < nproc; i++)
				if (w[i].pid > 0)
					kill(w[i].pid, SIGKILL);
		}
		struct timespec ms = { 0, 10 * 1000 * 1000 };
		nanosleep(&ms, NULL);
	}
	for (int i = 0; i < nproc; i++)
		close(w[i].fd);
	fprintf(stderr, "pstm-kv: stopped\n");
	return status;
bad:
	fprintf(stderr, "pstm-kv: bad option value '%s'\n%s", optarg, usage);
	return 2;
}
