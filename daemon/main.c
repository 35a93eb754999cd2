/*
 * pstmd - the pstm coordinator daemon.  This file: the command line, the
 * listening socket (socket activation, a lock against a second pstmd, a
 * stale socket left by a dead one), signals, readiness, the main loop.
 *
 * pstmd is never on the commit path.  Processes commit through shared
 * memory whether it runs or not; it adds recovery of a dead process at
 * once (pidfds), a relaxed region's background flushing, opening regions
 * by name with access control, and statistics (docs/design.md, "pstmd").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "pstm.h"
#include "pstmd.h"

#define DEFAULT_CONFIG "/etc/pstm/pstmd.conf"

uint64_t pstmd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void pstmd_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "pstmd: %s\n", line);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pstmd [--socket PATH] [--config FILE] [--state FILE]\n"
		"             [--metrics PATH] [--max-connections N]\n"
		"             [--idle-timeout-ms N] [--foreground]\n"
		"       pstmd --help | --version\n"
		"\n"
		"The pstm coordinator daemon: recovers a dead process's transaction\n"
		"slots at once, flushes relaxed regions, opens regions of its directory\n"
		"by name for permitted users, serves statistics.  Never on the commit\n"
		"path: processes work the same without it.\n"
		"\n"
		"  --socket PATH      listen here (default /run/pstm/pstmd.sock for root,\n"
		"                     $XDG_RUNTIME_DIR/pstmd.sock otherwise)\n"
		"  --config FILE      settings and grants (default " DEFAULT_CONFIG
		" if present)\n"
		"  --state FILE       served regions, for a restart (default: the socket\n"
		"                     path with .regions for .sock)\n"
		"  --metrics PATH     Prometheus text on a unix stream socket\n"
		"  --max-connections N, --idle-timeout-ms N\n"
		"  --foreground, -f   do not detach (what systemd runs)\n"
		"\n"
		"pstmd(8) has the configuration file and the protocol.\n");
}

/* --------------------------------------------------------- the socket */

/* SOCKET.lock, held for pstmd's life: a second pstmd on the same socket
 * stops here, so the socket file found next can only be a dead one's. */
static int take_lock(struct pstmd *d)
{
	char path[SUN_PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s.lock", d->cfg.socket);
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0) {
		pstmd_log("%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		pstmd_log("another pstmd is running on %s", d->cfg.socket);
		return -1;
	}
	return 0;
}

static void mkdir_parent(const char *path)
{
	char dir[SUN_PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) == 0)
			pstmd_log("made %s", dir);
	}
}

/* A socket file left at our path by a pstmd that died: nobody accepts on
 * it (the lock says no pstmd runs), so it goes.  Anything but a socket
 * stays, and pstmd does not start. */
static int remove_stale(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		pstmd_log("%s exists and is not a socket", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		close(fd);
		pstmd_log("a process listens on %s without holding its lock", path);
		return -1;
	}
	if (fd >= 0)
		close(fd);
	if (unlink(path) != 0) {
		pstmd_log("%s: %s", path, strerror(errno));
		return -1;
	}
	pstmd_log("removed the stale socket %s (its pstmd is gone)", path);
	return 0;
}

static int listen_on(struct pstmd *d)
{
#ifdef HAVE_LIBSYSTEMD
	int n = sd_listen_fds(1);
	if (n > 1) {
		pstmd_log("socket activation: %d sockets passed, want 1", n);
		return -1;
	}
	if (n == 1) {
		int fd = SD_LISTEN_FDS_START;
		if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
			pstmd_log("socket activation: not a listening unix seqpacket socket");
			return -1;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		d->listen_fd = fd;
		return 0;
	}
#endif
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(d->cfg.socket) >= sizeof(a.sun_path)) {
		pstmd_log("socket path too long: %s", d->cfg.socket);
		return -1;
	}
	mkdir_parent(d->cfg.socket);
	if (take_lock(d) != 0 || remove_stale(d->cfg.socket) != 0)
		return -1;
	memcpy(a.sun_path, d->cfg.socket, strlen(d->cfg.socket) + 1);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	mode_t old = umask(0111);
	int rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (rc != 0 || listen(fd, 128) != 0) {
		pstmd_log("%s: %s", d->cfg.socket, strerror(errno));
		close(fd);
		return -1;
	}
	/* anyone may connect: each request is checked by its SO_PEERCRED */
	chmod(d->cfg.socket, 0666);
	d->listen_fd = fd;
	d->socket_ours = true;
	return 0;
}

static int listen_metrics(struct pstmd *d)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	d->metrics_fd = -1;
	if (!d->cfg.metrics[0])
		return 0;
	struct stat st;
	if (lstat(d->cfg.metrics, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(d->cfg.metrics); /* ours, from a dead pstmd (we hold the lock) */
	memcpy(a.sun_path, d->cfg.metrics, strlen(d->cfg.metrics) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(fd, 16) != 0 || loop_add(d->loop, fd, EPOLLIN, metrics_accept, d) != 0) {
		pstmd_log("metrics %s: %s", d->cfg.metrics, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	d->metrics_fd = fd;
	return 0;
}

/* ------------------------------------------------------------ signals */

static void on_signal(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct pstmd *d = arg;
	struct signalfd_siginfo si;
	(void)l;
	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			pstmd_log("signal %u: stopping", si.ssi_signo);
			d->stop = true;
		}
	}
}

static int signals(struct pstmd *d)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	d->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->signal_fd < 0)
		return -1;
	return loop_add(d->loop, d->signal_fd, EPOLLIN, on_signal, d);
}

/* ---------------------------------------------------------- detaching */

/* Fork into the background; the parent exits once the child is ready
 * (ready_fd gets a byte) or gone, with the child's verdict. */
static int detach(int *ready_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		char c;
		close(p[1]);
		ssize_t k = read(p[0], &c, 1);
		_exit(k == 1 ? 0 : 1);
	}
	close(p[0]);
	setsid();
	if (chdir("/") != 0)
		return -1;
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		close(nul);
	}
	*ready_fd = p[1];
	return 0;
}

/* ----------------------------------------------------------------- main */

enum { O_SOCKET = 1000, O_CONFIG, O_STATE, O_METRICS, O_MAXCONN, O_IDLE };

static void default_state(struct pstmd_config *c)
{
	size_t n = strlen(c->socket);
	if (n > 5 && !strcmp(c->socket + n - 5, ".sock"))
		snprintf(c->state, sizeof(c->state), "%.*s.regions", (int)(n - 5), c->socket);
	else
		snprintf(c->state, sizeof(c->state), "%s.regions", c->socket);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, O_SOCKET},
		{"config", required_argument, NULL, O_CONFIG},
		{"state", required_argument, NULL, O_STATE},
		{"metrics", required_argument, NULL, O_METRICS},
		{"max-connections", required_argument, NULL, O_MAXCONN},
		{"idle-timeout-ms", required_argument, NULL, O_IDLE},
		{"foreground", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	static struct pstmd d;
	const char *o_socket = NULL, *o_config = NULL, *o_state = NULL, *o_metrics = NULL;
	long o_maxconn = 0, o_idle = 0;
	bool foreground = false;
	char err[512];
	int c, ready_fd = -1;

	while ((c = getopt_long(argc, argv, "fhV", opts, NULL)) != -1) {
		char *end = NULL;
		switch (c) {
		case O_SOCKET: o_socket = optarg; break;
		case O_CONFIG: o_config = optarg; break;
		case O_STATE: o_state = optarg; break;
		case O_METRICS: o_metrics = optarg; break;
		case O_MAXCONN:
		case O_IDLE: {
			long v = strtol(optarg, &end, 10);
			long lo = c == O_IDLE ? 10 : 1, hi = c == O_IDLE ? 3600000 : 65536;
			if (!*optarg || *end || v < lo || v > hi) {
				fprintf(stderr, "pstmd: %s %s: %ld..%ld\n",
					c == O_IDLE ? "--idle-timeout-ms" : "--max-connections",
					optarg, lo, hi);
				return 2;
			}
			*(c == O_IDLE ? &o_idle : &o_maxconn) = v;
			break;
		}
		case 'f': foreground = true; break;
		case 'h': usage(stdout); return 0;
		case 'V':
#ifdef HAVE_LIBSYSTEMD
			printf("pstmd %s (protocol %d, systemd)\n", pstm_version(), WIRE_VERSION);
#else
			printf("pstmd %s (protocol %d)\n", pstm_version(), WIRE_VERSION);
#endif
			return 0;
		default:
			fprintf(stderr, "pstmd: try 'pstmd --help'\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pstmd: unexpected argument '%s' (try 'pstmd --help')\n",
			argv[optind]);
		return 2;
	}

	d.cfg.max_conns = 256;
	d.cfg.max_conns_per_uid = 64;
	d.cfg.idle_ms = 10000;
	if (wire_default_socket(d.cfg.socket, sizeof(d.cfg.socket)) != 0) {
		fprintf(stderr, "pstmd: $XDG_RUNTIME_DIR too long for a socket path\n");
		return 2;
	}
	if (!o_config && access(DEFAULT_CONFIG, F_OK) == 0)
		o_config = DEFAULT_CONFIG;
	if (o_config && config_load(&d.cfg, o_config, err, sizeof(err)) != 0) {
		fprintf(stderr, "pstmd: %s\n", err);
		return 2;
	}
	if (o_socket) {
		if (!*o_socket || strlen(o_socket) >= sizeof(d.cfg.socket)) {
			fprintf(stderr, "pstmd: --socket: empty or too long\n");
			return 2;
		}
		snprintf(d.cfg.socket, sizeof(d.cfg.socket), "%s", o_socket);
	}
	if (o_state)
		snprintf(d.cfg.state, sizeof(d.cfg.state), "%s", o_state);
	else if (!d.cfg.state[0])
		default_state(&d.cfg);
	if (o_metrics) {
		if (strlen(o_metrics) >= sizeof(d.cfg.metrics)) {
			fprintf(stderr, "pstmd: --metrics: too long\n");
			return 2;
		}
		snprintf(d.cfg.metrics, sizeof(d.cfg.metrics), "%s", o_metrics);
	}
	if (o_maxconn)
		d.cfg.max_conns = (unsigned)o_maxconn;
	if (o_idle)
		d.cfg.idle_ms = (unsigned)o_idle;

	/* the regions pstmd opens itself must not register with it */
	setenv("PSTM_DAEMON", "off", 1);
	d.listen_fd = d.lock_fd = d.signal_fd = d.metrics_fd = -1;
	d.started_ms = pstmd_now_ms();
	d.loop = loop_new();
	if (!d.loop || signals(&d) != 0) {
		pstmd_log("cannot set up: %s", strerror(errno));
		return 1;
	}
	if (listen_on(&d) != 0)
		return 1;
	/* before any thread exists (the library's flush threads) */
	if (!foreground && detach(&ready_fd) != 0) {
		pstmd_log("cannot detach: %s", strerror(errno));
		return 1;
	}
	if (loop_add(d.loop, d.listen_fd, EPOLLIN, conn_accept, &d) != 0 ||
	    listen_metrics(&d) != 0)
		return 1;
	registry_adopt(&d);
	pstmd_log("%s listening on %s (adopting the regions of %s in the background)",
		  pstm_version(), d.socket_ours ? d.cfg.socket : "the socket systemd passed",
		  d.cfg.state[0] ? d.cfg.state : "no state file");
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "READY=1");
#endif
	if (ready_fd >= 0) {
		(void)!write(ready_fd, "r", 1);
		close(ready_fd);
	}

	while (!d.stop) {
		uint64_t next = conn_sweep(&d), t = registry_tick(&d), now = pstmd_now_ms();
		if (t < next)
			next = t;
		int timeout = next <= now ? 0 : next - now > 1000 ? 1000 : (int)(next - now);
		if (loop_once(d.loop, timeout) != 0) {
			pstmd_log("epoll: %s", strerror(errno));
			break;
		}
	}

#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	conn_close_all(&d);
	registry_close_all(&d);
	if (d.socket_ours)
		unlink(d.cfg.socket);
	if (d.metrics_fd >= 0)
		unlink(d.cfg.metrics);
	loop_free(d.loop);
	config_free(&d.cfg);
	pstmd_log("stopped");
	return 0;
}
