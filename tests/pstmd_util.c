#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "pstmd_util.h"
#include "wire.h"

static int serial;

void test_pstmd_names(struct test_pstmd *d)
{
	memset(d, 0, sizeof(*d));
	int pid = (int)getpid(), n = serial++;
	snprintf(d->sock, sizeof(d->sock), "/tmp/pstm-test-pstmd-%d-%d.sock", pid, n);
	snprintf(d->state, sizeof(d->state), "/tmp/pstm-test-pstmd-%d-%d.regions", pid, n);
	snprintf(d->log, sizeof(d->log), "/tmp/pstm-test-pstmd-%d-%d.log", pid, n);
}

static const char *pstmd_bin(void)
{
	static char path[512];
	const char *b = getenv("PSTM_BIN");
	snprintf(path, sizeof(path), "%s/pstmd", b && *b ? b : "build");
	return path;
}

static uint64_t now_ms(void)
{
	return test_now_ns() / 1000000u;
}

void test_pstmd_start(struct test_pstmd *d, const char *const *extra)
{
	const char *argv[32];
	int n = 0;
	argv[n++] = pstmd_bin();
	argv[n++] = "--foreground";
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	argv[n++] = "--state";
	argv[n++] = d->state;
	argv[n++] = "--config";
	argv[n++] = d->config[0] ? d->config : "/dev/null";
	for (int i = 0; extra && extra[i] && n < 31; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	fflush(stdout);
	fflush(stderr);
	d->pid = fork();
	if (d->pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	assert_true(d->pid > 0);
	uint64_t until = now_ms() + 5000;
	struct test_pstmd_status st;
	while (test_pstmd_ping(d->sock, &st) != 0) {
		int status;
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			print_error("pstmd exited before answering (see %s)\n", d->log);
			d->pid = 0;
			fail();
		}
		assert_true(now_ms() < until);
		usleep(2000);
	}
}

int test_exec(const char *prog, const char *const *args, const char *const *env,
	      char *out, size_t n)
{
	const char *argv[32];
	char path[512];
	int k = 0, p[2];
	const char *b = getenv("PSTM_BIN");
	snprintf(path, sizeof(path), "%s/%s", b && *b ? b : "build", prog);
	argv[k++] = path;
	for (int i = 0; args[i] && k < 31; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	assert_int_equal(pipe(p), 0);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], 2);
		dup2(p[1], 1);
		for (int i = 0; env && env[i]; i++)
			if (strchr(env[i], '='))
				putenv((char *)env[i]);
			else
				unsetenv(env[i]);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	close(p[1]);
	size_t got = 0;
	ssize_t r;
	while (got + 1 < n && (r = read(p[0], out + got, n - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = 0;
	close(p[0]);
	return test_wait(pid);
}

int test_pstmd_run(const char *const *args, char *err, size_t n)
{
	return test_exec("pstmd", args, NULL, err, n);
}

void test_pstmd_stop(struct test_pstmd *d)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	assert_int_equal(test_wait(d->pid), 0);
	d->pid = 0;
}

void test_pstmd_kill(struct test_pstmd *d)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGKILL);
	assert_int_equal(test_wait(d->pid), 128 + SIGKILL);
	d->pid = 0;
}

void test_pstmd_remove(struct test_pstmd *d)
{
	char lock[160];
	if (d->pid > 0)
		test_pstmd_kill(d);
	snprintf(lock, sizeof(lock), "%s.lock", d->sock);
	unlink(d->sock);
	unlink(lock);
	unlink(d->state);
	snprintf(lock, sizeof(lock), "%s.new", d->state); /* a write cut short */
	unlink(lock);
	unlink(d->log);
	if (d->config[0])
		unlink(d->config);
}

int test_pstmd_connect(const char *sock)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int test_pstmd_ping(const char *sock, struct test_pstmd_status *st)
{
	struct wire_buf w;
	uint8_t buf[WIRE_MAX_BYTES];
	int fds[WIRE_MAX_FDS], nfds, rc = -1;
	struct wire_msg m;
	int fd = test_pstmd_connect(sock);
	if (fd < 0)
		return -1;
	wire_begin(&w, WIRE_PING, 7);
	if (wire_end(&w) < 0 || wire_send(fd, &w, NULL, 0, false) != 0)
		goto out;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 2000) != 1)
		goto out;
	ssize_t k = wire_recv(fd, buf, fds, &nfds, false);
	wire_close_fds(fds, nfds);
	if (k > 0 && wire_parse(buf, (size_t)k, nfds, &m) == 0 && m.type == WIRE_STATUS &&
	    m.id == 7) {
		st->regions = (uint32_t)m.u[WT_REGIONS];
		st->members = (uint32_t)m.u[WT_MEMBERS];
		st->recoveries = m.u[WT_RECOVERIES];
		rc = 0;
	}
out:
	close(fd);
	return rc;
}

bool test_pstmd_wait(const char *sock, uint32_t regions, uint32_t members, int ms)
{
	uint64_t until = now_ms() + (uint64_t)ms;
	struct test_pstmd_status st = {0};
	do {
		if (test_pstmd_ping(sock, &st) == 0 && st.regions == regions &&
		    st.members == members)
			return true;
		usleep(1000);
	} while (now_ms() < until);
	print_error("pstmd status: %u regions, %u members; waited for %u, %u\n",
		    st.regions, st.members, regions, members);
	return false;
}

bool test_poll_until(bool (*cond)(void *arg), void *arg, int ms)
{
	uint64_t until = test_now_ns() + (uint64_t)ms * 1000000u;
	for (;;) {
		if (cond(arg))
			return true;
		if (test_now_ns() >= until)
			return false;
		usleep(100);
	}
}
