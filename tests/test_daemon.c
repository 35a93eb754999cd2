/*
 * test_daemon.c - pstmd with real processes on real sockets: its command
 * line; hostile messages, silent and too many clients, a stale socket,
 * a second daemon; members registering on their own, a member SIGKILLed
 * while it holds locks recovered by pstmd with nobody else transacting;
 * pstmd SIGKILLed under a two-process bank load (members keep
 * committing), restarted, adopting the region and its members from the
 * process table, and recovering one of them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "helpers.h"
#include "pstmd_util.h"
#include "region.h"
#include "wire.h"

enum { ACCOUNTS = 64 };

/* what a failed test leaves running: killed by the teardown */
static pid_t spawned[8];
static struct test_pstmd *running;
static char created_uri[256];

static pid_t spawn(int (*fn)(void *, int), int id)
{
	pid_t p = test_spawn(fn, NULL, id);
	for (int i = 0; i < 8; i++)
		if (!spawned[i]) {
			spawned[i] = p;
			break;
		}
	return p;
}

static int reap(pid_t p)
{
	for (int i = 0; i < 8; i++)
		if (spawned[i] == p)
			spawned[i] = 0;
	return test_wait(p);
}

static int teardown(void **s)
{
	(void)s;
	for (int i = 0; i < 8; i++)
		if (spawned[i]) {
			kill(spawned[i], SIGKILL);
			test_wait(spawned[i]);
			spawned[i] = 0;
		}
	if (running) {
		if (running->pid > 0)
			kill(running->pid, SIGCONT);
		test_pstmd_remove(running);
		running = NULL;
	}
	if (created_uri[0])
		pstm_unlink_opts(created_uri, PSTM_UNLINK_FORCE);
	char extra[128]; /* sockets of test_procs_and_metrics, test_systemd */
	snprintf(extra, sizeof(extra), "/tmp/pstm-test-pstmd-%d.metrics", (int)getpid());
	unlink(extra);
	snprintf(extra, sizeof(extra), "/tmp/pstm-test-pstmd-%d.notify", (int)getpid());
	unlink(extra);
	created_uri[0] = 0;
	return 0;
}


/* ---------------------------------------------------------- the CLI */

static void test_command_line(void **s)
{
	(void)s;
	char out[4096];
	const char *help[] = {"--help", NULL}, *ver[] = {"--version", NULL},
		   *bad[] = {"--bogus", NULL}, *extra[] = {"--foreground", "x", NULL},
		   *num[] = {"--max-connections", "0", NULL},
		   *cfg[] = {"--config", "/nonexistent/pstmd.conf", NULL};
	assert_int_equal(test_pstmd_run(help, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "usage: pstmd"));
	assert_int_equal(test_pstmd_run(ver, out, sizeof(out)), 0);
	assert_non_null(strstr(out, pstm_version()));
	assert_int_equal(test_pstmd_run(bad, out, sizeof(out)), 2);
	assert_int_equal(test_pstmd_run(extra, out, sizeof(out)), 2);
	assert_int_equal(test_pstmd_run(num, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "--max-connections 0"));
	assert_int_equal(test_pstmd_run(cfg, out, sizeof(out)), 2);

	/* a configuration it does not understand names the line */
	char path[128];
	snprintf(path, sizeof(path), "/tmp/pstm-test-pstmd-%d.conf", (int)getpid());
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "# ok\nidle-timeout-ms = 500\ncolour = blue\n");
	fclose(f);
	const char *c2[] = {"--config", path, NULL};
	assert_int_equal(test_pstmd_run(c2, out, sizeof(out)), 2);
	assert_non_null(strstr(out, ":3: unknown setting 'colour'"));
	f = fopen(path, "w");
	fprintf(f, "grant ../etc alice rw\n");
	fclose(f);
	assert_int_equal(test_pstmd_run(c2, out, sizeof(out)), 2);
	assert_non_null(strstr(out, ":1: grant: '../etc' is no region name"));
	unlink(path);
}

/* ------------------------------------------------------ hostile input */

/* Send raw @n bytes (with @nfds copies of stdin's fd); expect an ERROR
 * reply with PSTM_EINVAL whose text contains @want, then end of file. */
static void expect_refused(const char *sock, const void *msg, size_t n, int nfds,
			   const char *want)
{
	int fd = test_pstmd_connect(sock);
	assert_true(fd >= 0);
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 2)];
	} ctl;
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds) {
		int fds[2] = {0, 0};
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)n);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	uint8_t buf[WIRE_MAX_BYTES];
	int fds[WIRE_MAX_FDS], got;
	struct wire_msg m;
	ssize_t k = wire_recv(fd, buf, fds, &got, false);
	assert_true(k > 0);
	assert_int_equal(wire_parse(buf, (size_t)k, got, &m), 0);
	assert_int_equal(m.type, WIRE_ERROR);
	assert_int_equal((int32_t)m.u[WT_CODE], PSTM_EINVAL);
	if (!strstr(m.s[WT_TEXT], want))
		print_error("reply '%s', wanted '%s'\n", m.s[WT_TEXT], want);
	assert_non_null(strstr(m.s[WT_TEXT], want));
	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(wire_recv(fd, buf, fds, &got, false), 0); /* closed */
	close(fd);
}

static void test_hostile_messages(void **s)
{
	(void)s;
	static struct test_pstmd d;
	struct wire_buf w;
	struct test_pstmd_status st;
	test_pstmd_names(&d);
	running = &d;
	test_pstmd_start(&d, NULL);

	expect_refused(d.sock, "hello", 5, 0, "shorter than its header");
	wire_begin(&w, WIRE_PING, 1);
	wire_end(&w);
	uint8_t b[WIRE_MAX_BYTES + 64];
	memcpy(b, w.b, w.n);
	b[0] ^= 1;
	expect_refused(d.sock, b, w.n, 0, "bad magic");
	memcpy(b, w.b, w.n);
	b[4] = 9;
	expect_refused(d.sock, b, w.n, 0, "protocol version");
	memcpy(b, w.b, w.n);
	b[8] = 200; /* says 200 bytes: truncated */
	expect_refused(d.sock, b, w.n, 0, "length field");
	memcpy(b, w.b, w.n);
	b[6] = 99;
	expect_refused(d.sock, b, w.n, 0, "unknown message type");
	wire_begin(&w, WIRE_OK, 1); /* a reply is no request */
	wire_end(&w);
	expect_refused(d.sock, w.b, w.n, 0, "not a request");
	wire_begin(&w, WIRE_OPEN, 1); /* a field missing */
	wire_u32(&w, WT_WRITE, 1);
	wire_end(&w);
	expect_refused(d.sock, w.b, w.n, 0, "required field");
	wire_begin(&w, WIRE_OPEN, 1); /* a field twice */
	wire_str(&w, WT_NAME, "a");
	wire_str(&w, WT_NAME, "b");
	wire_u32(&w, WT_WRITE, 1);
	wire_end(&w);
	expect_refused(d.sock, w.b, w.n, 0, "twice");
	wire_begin(&w, WIRE_OPEN, 1); /* a field running past the end */
	wire_u32(&w, WT_WRITE, 1);
	wire_end(&w);
	memcpy(b, w.b, w.n);
	b[WIRE_HDR_BYTES + 2] = 40;
	expect_refused(d.sock, b, w.n, 0, "runs past the end");
	wire_begin(&w, WIRE_OPEN, 1); /* a string with a NUL inside */
	wire_bytes(&w, WT_NAME, "a\0b", 4);
	wire_u32(&w, WT_WRITE, 1);
	wire_end(&w);
	expect_refused(d.sock, w.b, w.n, 0, "string field");
	wire_begin(&w, WIRE_PROCS, 1); /* the region's fd missing */
	wire_end(&w);
	expect_refused(d.sock, w.b, w.n, 0, "file descriptors");
	wire_begin(&w, WIRE_PING, 1); /* descriptors it does not take */
	wire_end(&w);
	expect_refused(d.sock, w.b, w.n, 2, "file descriptors");
	memset(b, 0, sizeof(b)); /* longer than any message */
	memcpy(b, w.b, w.n);
	expect_refused(d.sock, b, sizeof(b), 0, "too long");
	/* a REGISTER of something that is not a region */
	int fd = test_pstmd_connect(d.sock);
	int nul = open("/dev/null", O_RDONLY);
	struct file_id id = {0};
	wire_begin(&w, WIRE_REGISTER, 3);
	wire_str(&w, WT_PATH, "/dev/null");
	wire_bytes(&w, WT_FILE_ID, &id, sizeof(id));
	wire_u32(&w, WT_PROC_IDX, 0);
	wire_u64(&w, WT_PROC_STATE, 1);
	wire_end(&w);
	assert_int_equal(wire_send(fd, &w, &nul, 1, false), 0);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	int fds[WIRE_MAX_FDS], nfds;
	struct wire_msg m;
	ssize_t k = wire_recv(fd, b, fds, &nfds, false);
	assert_true(k > 0);
	assert_int_equal(wire_parse(b, (size_t)k, nfds, &m), 0);
	assert_int_equal(m.type, WIRE_ERROR);
	assert_non_null(strstr(m.s[WT_TEXT], "not the region file"));
	close(fd);
	close(nul);
	/* still there, serving nobody */
	assert_int_equal(test_pstmd_ping(d.sock, &st), 0);
	assert_int_equal(st.regions, 0);
	test_pstmd_stop(&d);
	test_pstmd_remove(&d);
	running = NULL;
}

/* A client that never speaks is dropped after the idle timeout; past
 * the connection limit a client gets one ERROR and is closed; the
 * daemon answers others throughout. */
static void test_limits(void **s)
{
	(void)s;
	static struct test_pstmd d;
	struct test_pstmd_status st;
	const char *extra[] = {"--idle-timeout-ms", "300", "--max-connections", "4", NULL};
	test_pstmd_names(&d);
	running = &d;
	test_pstmd_start(&d, extra);

	int fd[4];
	for (int i = 0; i < 4; i++)
		assert_true((fd[i] = test_pstmd_connect(d.sock)) >= 0);
	int over = test_pstmd_connect(d.sock);
	assert_true(over >= 0);
	struct pollfd p = {.fd = over, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2000), 1);
	uint8_t b[WIRE_MAX_BYTES];
	int fds[WIRE_MAX_FDS], nfds;
	struct wire_msg m;
	ssize_t k = wire_recv(over, b, fds, &nfds, false);
	assert_true(k > 0);
	assert_int_equal(wire_parse(b, (size_t)k, nfds, &m), 0);
	assert_int_equal(m.type, WIRE_ERROR);
	assert_int_equal((int32_t)m.u[WT_CODE], PSTM_EBUSY);
	assert_int_equal(wire_recv(over, b, fds, &nfds, false), 0);
	close(over);

	/* the silent ones: closed within [idle, idle + a tick + slack] */
	uint64_t t0 = test_now_ns();
	for (int i = 0; i < 4; i++) {
		p.fd = fd[i];
		assert_int_equal(poll(&p, 1, 3000), 1);
		assert_int_equal(wire_recv(fd[i], b, fds, &nfds, false), 0);
		close(fd[i]);
	}
	double ms = (double)(test_now_ns() - t0) / 1e6;
	print_message("# silent connections closed after %.0f ms (idle timeout 300)\n", ms);
	assert_true(ms > 150 && ms < 3000);
	assert_int_equal(test_pstmd_ping(d.sock, &st), 0);
	test_pstmd_stop(&d);
	test_pstmd_remove(&d);
	running = NULL;
}

/* A dead pstmd's socket file is replaced; a live one's is not, and a
 * file that is no socket is never removed. */
static void test_stale_socket(void **s)
{
	(void)s;
	static struct test_pstmd d;
	struct stat st;
	char out[4096];
	test_pstmd_names(&d);
	running = &d;
	test_pstmd_start(&d, NULL);
	const char *second[] = {"--foreground", "--socket", d.sock, "--config", "/dev/null", NULL};
	assert_int_equal(test_pstmd_run(second, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "another pstmd is running"));
	test_pstmd_kill(&d);
	assert_int_equal(stat(d.sock, &st), 0); /* left behind */
	assert_true(S_ISSOCK(st.st_mode));
	assert_true(test_pstmd_connect(d.sock) < 0);
	test_pstmd_start(&d, NULL); /* replaces it */
	test_pstmd_stop(&d);
	assert_int_not_equal(stat(d.sock, &st), 0); /* a clean stop removes it */

	int fd = open(d.sock, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	assert_int_equal(test_pstmd_run(second, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "not a socket"));
	assert_int_equal(stat(d.sock, &st), 0);
	assert_int_equal(st.st_size, 4);
	test_pstmd_remove(&d);
	running = NULL;
}

/* ------------------------------------------------ members and recovery */

struct shared {
	_Atomic uint64_t commits[4];
	_Atomic uint64_t worst_ns;
	_Atomic int stop[4];     /* stop transacting (stay attached) */
	_Atomic int leave[4];    /* then close and exit */
	_Atomic int ready[4];
	_Atomic int stopped[4];  /* it has stopped transacting */
	_Atomic uint32_t entry[4];
};

static struct {
	const char *uri;
	const char *sock;
	struct test_bank bank;
	struct shared *sh;
	const char *crash_at;
} C;

static void setup_bank(const char *uri)
{
	struct pstm_create_opts o = {.size_bytes = 8 << 20};
	pstm_region *r;
	C.uri = uri;
	snprintf(created_uri, sizeof(created_uri), "%s", uri);
	C.bank.n = ACCOUNTS;
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_setup, &C.bank));
	assert_pstm_ok(pstm_close(r));
	C.sh = mmap(NULL, sizeof(*C.sh), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(C.sh != MAP_FAILED);
	memset(C.sh, 0, sizeof(*C.sh));
}

static void check_bank(void)
{
	pstm_region *r;
	struct test_bank_state bs = {.bank = &C.bank};
	assert_pstm_ok(pstm_open(C.uri, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_read, &bs));
	assert_int_equal(bs.total, ACCOUNTS * 1000);
	assert_pstm_ok(pstm_close(r));
	test_assert_clean(C.uri);
}

/* A member: registers by opening (PSTM_DAEMON_SOCKET), transfers until
 * told to stop, waits until told to leave, closes. */
static int member(void *arg, int id)
{
	(void)arg;
	pstm_region *r;
	setenv("PSTM_DAEMON_SOCKET", C.sock, 1);
	unsetenv("PSTM_DAEMON");
	if (C.crash_at && id == 0)
		setenv("PSTM_CRASH_AT", C.crash_at, 1);
	if (pstm_open(C.uri, &r))
		return 2;
	atomic_store(&C.sh->entry[id], r->proc_idx);
	atomic_store(&C.sh->ready[id], 1);
	uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 3);
	while (!atomic_load(&C.sh->stop[id])) {
		xorshift64(&x);
		struct test_xfer t = {&C.bank, x % ACCOUNTS, (x >> 20) % ACCOUNTS,
				      (x >> 40) % 50, 0};
		uint64_t t0 = test_now_ns();
		if (pstm_atomic(r, test_bank_transfer, &t))
			return 3;
		uint64_t dt = test_now_ns() - t0, w = atomic_load(&C.sh->worst_ns);
		while (dt > w && !atomic_compare_exchange_weak(&C.sh->worst_ns, &w, dt))
			;
		atomic_fetch_add(&C.sh->commits[id], 1);
	}
	atomic_store(&C.sh->stopped[id], 1);
	while (!atomic_load(&C.sh->leave[id]))
		usleep(500);
	return pstm_close(r) ? 4 : 0;
}

/* What the parent sees through a read-only mapping: it never attaches,
 * so it recovers nobody and transacts nothing. */
struct look {
	struct pstm_region ro;
	uint32_t entry;
};

static bool entry_settled(void *arg)
{
	struct look *l = arg;
	struct pstm_region *r = &l->ro;
	if (PROC_ST(atomic_load(&r->procs[l->entry].state)) != PROC_FREE)
		return false;
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		uint64_t st = atomic_load(&r->slots[s].state);
		if (SLOT_ST(st) == SLOT_ACTIVE && SLOT_PROC(st) == l->entry)
			return false;
	}
	for (uint64_t i = 0; i <= r->orec_mask; i++)
		if (orec_is_locked(atomic_load(&r->orecs[i])))
			return false;
	return true;
}

static unsigned locked_orecs(struct pstm_region *r)
{
	unsigned n = 0;
	for (uint64_t i = 0; i <= r->orec_mask; i++)
		n += orec_is_locked(atomic_load(&r->orecs[i])) != 0;
	return n;
}

static bool is_ready(void *arg)
{
	return atomic_load((_Atomic int *)arg) != 0;
}

/* One member dies at commit.locked (its write set locked), another sits
 * idle: pstmd alone frees the dead one's entry, slots and locks. */
static void dead_member(const char *uri, const char *at)
{
	static struct test_pstmd d;
	struct look l;
	test_pstmd_names(&d);
	running = &d;
	test_pstmd_start(&d, NULL);
	setup_bank(uri);
	C.sock = d.sock;
	C.crash_at = at;
	atomic_store(&C.sh->stop[1], 1); /* the idle one */
	pid_t idle = spawn(member, 1);
	assert_true(test_pstmd_wait(d.sock, 1, 1, 5000)); /* it registered */
	assert_true(test_poll_until(is_ready, &C.sh->stopped[1], 5000));
	pid_t victim = spawn(member, 0);
	assert_int_equal(reap(victim), 128 + SIGKILL);
	uint64_t t0 = test_now_ns();
	assert_pstm_ok(region_map_readonly(uri, &l.ro));
	l.entry = atomic_load(&C.sh->entry[0]);
	bool settled = test_poll_until(entry_settled, &l, 2000);
	double ms = (double)(test_now_ns() - t0) / 1e6;
	if (!settled)
		print_error("%s: entry %u not recovered, %u orecs locked\n", uri, l.entry,
			    locked_orecs(&l.ro));
	assert_true(settled);
	print_message("# %s: dead member's slots free %.2f ms after it was reaped\n", uri, ms);
	struct test_pstmd_status st;
	assert_int_equal(test_pstmd_ping(d.sock, &st), 0);
	assert_int_equal(st.recoveries, 1); /* pstmd did it, nobody else */
	region_unmap_readonly(&l.ro);
	atomic_store(&C.sh->leave[1], 1);
	assert_int_equal(reap(idle), 0);
	assert_true(test_pstmd_wait(d.sock, 0, 0, 3000)); /* let go of it */
	test_pstmd_stop(&d);
	check_bank();
	pstm_unlink(uri);
	test_pstmd_remove(&d);
	running = NULL;
	munmap(C.sh, sizeof(*C.sh));
	C.crash_at = NULL;
}

static void test_dead_member_shm(void **s)
{
	(void)s;
	dead_member(test_shm_uri("pstmd"), "commit.locked:20");
}

static void test_dead_member_file(void **s)
{
	(void)s;
	dead_member(test_file_uri("pstmd"), "commit.logged:5");
}

/* A member that exits without pstm_close is recovered too; one that
 * closes is simply forgotten; pstm_unlink right after works. */
static pstm_region *exit_attached_handle; /* kept: reachable at exit */

static int exit_attached(void *arg, int id)
{
	(void)arg;
	(void)id;
	setenv("PSTM_DAEMON_SOCKET", C.sock, 1);
	unsetenv("PSTM_DAEMON");
	/* exit, attached (the handle stays reachable for memcheck: the leak
	 * is the point) */
	return pstm_open(C.uri, &exit_attached_handle) ? 2 : 0;
}

static int open_close(void *arg, int id)
{
	(void)arg;
	(void)id;
	pstm_region *r;
	setenv("PSTM_DAEMON_SOCKET", C.sock, 1);
	unsetenv("PSTM_DAEMON");
	if (pstm_open(C.uri, &r))
		return 2;
	return pstm_close(r) ? 3 : 0;
}

/* pstm_unlink, as a member would run it; its exit status the error */
static int unlinker(void *arg, int id)
{
	(void)arg;
	(void)id;
	setenv("PSTM_DAEMON_SOCKET", C.sock, 1);
	unsetenv("PSTM_DAEMON");
	atomic_store(&C.sh->ready[3], 1);
	int rc = pstm_unlink(C.uri);
	return rc == 0 ? 0 : rc == PSTM_EBUSY ? 10 : 11;
}

/* Is @pid blocked in poll(2) (/proc/PID/syscall)? */
static pid_t blocked_pid;
static bool in_poll(void *arg)
{
	(void)arg;
	char path[64], buf[64] = {0};
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)blocked_pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t k = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return k > 0 && (atoi(buf) == SYS_poll || atoi(buf) == SYS_ppoll);
}

static void test_exit_and_close(void **s)
{
	(void)s;
	static struct test_pstmd d;
	struct test_pstmd_status st;
	test_pstmd_names(&d);
	running = &d;
	test_pstmd_start(&d, NULL);
	setup_bank(test_shm_uri("pstmd"));
	C.sock = d.sock;
	assert_int_equal(reap(spawn(exit_attached, 0)), 0);
	assert_true(test_pstmd_wait(d.sock, 0, 0, 3000));
	assert_int_equal(test_pstmd_ping(d.sock, &st), 0);
	assert_int_equal(st.recoveries, 1);
	assert_int_equal(reap(spawn(open_close, 0)), 0);
	assert_true(test_pstmd_wait(d.sock, 0, 0, 3000));
	assert_int_equal(test_pstmd_ping(d.sock, &st), 0);
	assert_int_equal(st.recoveries, 1);
	/* Right after the last member closed, pstmd may still hold the
	 * region: pstm_unlink asks it to let go.  Stopped with SIGSTOP,
	 * pstmd cannot have seen the close when the unlinker finds the
	 * region in use and asks; it answers once it runs again. */
	pid_t keep = spawn(member, 2);
	assert_true(test_pstmd_wait(d.sock, 1, 1, 5000));
	kill(d.pid, SIGSTOP);
	atomic_store(&C.sh->stop[2], 1);
	atomic_store(&C.sh->leave[2], 1);
	assert_int_equal(reap(keep), 0);
	pid_t u = spawn(unlinker, 3);
	blocked_pid = u;
	assert_true(test_poll_until(in_poll, NULL, 5000)); /* waits for pstmd */
	kill(d.pid, SIGCONT);
	assert_int_equal(reap(u), 0);
	test_pstmd_stop(&d);
	test_pstmd_remove(&d);
	running = NULL;
	munmap(C.sh, sizeof(*C.sh));
}

/* ------------------------------------------- pstmd's own death, restart */

struct progress {
	uint64_t from[2];
};

static bool both_progressed(void *arg)
{
	struct progress *p = arg;
	return atomic_load(&C.sh->commits[0]) > p->from[0] + 2000 &&
	       atomic_load(&C.sh->commits[1]) > p->from[1] + 2000;
}

static void test_killed_under_load(void **s)
{
	(void)s;
	static struct test_pstmd d;
	struct progress pr = {{0, 0}};
	struct look l;
	test_pstmd_names(&d);
	running = &d;
	test_pstmd_start(&d, NULL);
	setup_bank(test_shm_uri("pstmd"));
	C.sock = d.sock;
	pid_t m0 = spawn(member, 0), m1 = spawn(member, 1);
	assert_true(test_pstmd_wait(d.sock, 1, 2, 5000));
	assert_true(test_poll_until(both_progressed, &pr, 5000));

	/* pstmd dies: both keep committing */
	test_pstmd_kill(&d);
	pr.from[0] = atomic_load(&C.sh->commits[0]);
	pr.from[1] = atomic_load(&C.sh->commits[1]);
	assert_true(test_poll_until(both_progressed, &pr, 5000));

	/* a new pstmd on the same socket and state file adopts the region
	 * and both members from its process table (the dead pstmd's entry
	 * recovered on the way) */
	test_pstmd_start(&d, NULL);
	assert_true(test_pstmd_wait(d.sock, 1, 2, 5000));
	pr.from[0] = atomic_load(&C.sh->commits[0]);
	pr.from[1] = atomic_load(&C.sh->commits[1]);
	assert_true(test_poll_until(both_progressed, &pr, 5000));

	/* member 1 goes idle, member 0 is killed while transacting: the new
	 * pstmd recovers it with nobody else transacting */
	atomic_store(&C.sh->stop[1], 1);
	assert_true(test_poll_until(is_ready, &C.sh->stopped[1], 5000));
	assert_pstm_ok(region_map_readonly(C.uri, &l.ro));
	l.entry = atomic_load(&C.sh->entry[0]);
	kill(m0, SIGKILL);
	assert_int_equal(reap(m0), 128 + SIGKILL);
	assert_true(test_poll_until(entry_settled, &l, 2000));
	region_unmap_readonly(&l.ro);
	struct test_pstmd_status st;
	assert_int_equal(test_pstmd_ping(d.sock, &st), 0);
	assert_int_equal(st.recoveries, 2); /* the dead pstmd's entry, and it */
	assert_int_equal(st.members, 1);

	atomic_store(&C.sh->leave[1], 1);
	assert_int_equal(reap(m1), 0);
	print_message("# longest member transaction across pstmd's death and "
		      "restart: %.3f ms\n", (double)atomic_load(&C.sh->worst_ns) / 1e6);
	assert_true(atomic_load(&C.sh->worst_ns) < 1000000000ull);
	test_pstmd_stop(&d);
	check_bank();
	pstm_unlink(C.uri);
	test_pstmd_remove(&d);
	running = NULL;
	munmap(C.sh, sizeof(*C.sh));
}

/* ------------------------------------------------ a full process table */

static void make_region(const char *uri, uint32_t max_procs)
{
	struct pstm_create_opts o = {.size_bytes = 8 << 20, .max_procs = max_procs};
	pstm_region *r;
	C.uri = uri;
	snprintf(created_uri, sizeof(created_uri), "%s", uri);
	C.bank.n = ACCOUNTS;
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_setup, &C.bank));
	assert_pstm_ok(pstm_close(r));
	C.sh = mmap(NULL, sizeof(*C.sh), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	memset(C.sh, 0, sizeof(*C.sh));
	for (int i = 0; i < 4; i++)
		atomic_store(&C.sh->stop[i], 1); /* idle members */
}

static char log_want[300];
static const char *log_path;
static bool log_has(void *arg)
{
	(void)arg;
	static char buf[1 << 16];
	int fd = open(log_path, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return strstr(buf, log_want) != NULL;
}

/* pstmd never costs a process an entry it would have had without it:
 * it does not take the last free one, and lets go when an opener finds
 * the table full. */
static void test_full_table(void **s)
{
	(void)s;
	static struct test_pstmd d;
	pid_t m[3];
	test_pstmd_names(&d);
	running = &d;
	test_pstmd_start(&d, NULL);
	C.sock = d.sock;

	/* 3 entries: a member and pstmd, then a second member fills it */
	make_region(test_shm_uri("pstmd"), 3);
	m[0] = spawn(member, 0);
	assert_true(test_pstmd_wait(d.sock, 1, 1, 5000));
	m[1] = spawn(member, 1);
	assert_true(test_pstmd_wait(d.sock, 1, 2, 5000));
	/* a third process: the table is full; pstmd makes room */
	m[2] = spawn(member, 2);
	assert_true(test_poll_until(is_ready, &C.sh->ready[2], 5000));
	assert_true(test_pstmd_wait(d.sock, 0, 0, 5000)); /* and stays out */
	for (int i = 0; i < 3; i++) {
		atomic_store(&C.sh->leave[i], 1);
		assert_int_equal(reap(m[i]), 0);
	}
	check_bank();
	pstm_unlink(C.uri);
	munmap(C.sh, sizeof(*C.sh));

	/* 2 entries: pstmd would take the last one, so it does not serve */
	make_region(test_shm_uri("pstmd"), 2);
	m[0] = spawn(member, 0);
	assert_true(test_poll_until(is_ready, &C.sh->ready[0], 5000));
	snprintf(log_want, sizeof(log_want), "cannot serve %s: %s", C.uri,
		 pstm_strerror(PSTM_EPROCFULL));
	log_path = d.log;
	assert_true(test_poll_until(log_has, NULL, 5000));
	m[1] = spawn(member, 1);
	assert_true(test_poll_until(is_ready, &C.sh->ready[1], 5000));
	assert_true(test_pstmd_wait(d.sock, 0, 0, 3000));
	for (int i = 0; i < 2; i++) {
		atomic_store(&C.sh->leave[i], 1);
		assert_int_equal(reap(m[i]), 0);
	}
	pstm_unlink(C.uri);
	created_uri[0] = 0;
	test_pstmd_stop(&d);
	test_pstmd_remove(&d);
	running = NULL;
	munmap(C.sh, sizeof(*C.sh));
}

/* ------------------------------------------------ relaxed regions */

/* A relaxed member: commits @n transfers each time it is told to go */
static int relaxed_member(void *arg, int id)
{
	(void)arg;
	pstm_region *r;
	setenv("PSTM_DAEMON_SOCKET", C.sock, 1);
	unsetenv("PSTM_DAEMON");
	if (pstm_open(C.uri, &r))
		return 2;
	atomic_store(&C.sh->entry[id], r->proc_idx);
	atomic_store(&C.sh->ready[id], 1);
	uint64_t x = 77;
	int rounds = 0;
	while (!atomic_load(&C.sh->leave[id])) {
		if (atomic_load(&C.sh->stop[id]) == rounds) { /* no go yet */
			usleep(200);
			continue;
		}
		for (int k = 0; k < 200; k++) {
			xorshift64(&x);
			struct test_xfer t = {&C.bank, x % ACCOUNTS, (x >> 20) % ACCOUNTS, 5, 0};
			if (pstm_atomic(r, test_bank_transfer, &t))
				return 3;
			atomic_fetch_add(&C.sh->commits[id], 1);
		}
		rounds++;
		atomic_store(&C.sh->stopped[id], rounds);
	}
	return pstm_close(r) ? 4 : 0;
}

/* the file's own flushed mark: what a power failure would keep */
static uint64_t file_flushed(int fd)
{
	struct durable_state ds;
	assert_int_equal(pread(fd, &ds, sizeof(ds), DURABLE_STATE_OFF), (ssize_t)sizeof(ds));
	return atomic_load(&ds.flushed);
}

struct flushed_past {
	int fd;
	uint64_t seq;
};

static bool is_flushed(void *arg)
{
	struct flushed_past *f = arg;
	return file_flushed(f->fd) >= f->seq;
}

/* a round of the member's commits, waited for */
static void commit_round(int round)
{
	atomic_store(&C.sh->stop[0], round);
	while (atomic_load(&C.sh->stopped[0]) != round)
		usleep(100);
}

static uint32_t entry_of_pid(struct pstm_region *r, pid_t pid)
{
	for (uint32_t p = 0; p < r->sb.max_procs; p++)
		if (PROC_ST(atomic_load(&r->procs[p].state)) == PROC_ALIVE &&
		    atomic_load(&r->procs[p].pid) == (uint64_t)pid)
			return p;
	return UINT32_MAX;
}

static uint64_t tag_of(struct pstm_region *r, uint32_t p)
{
	return PROC_GEN(atomic_load(&r->procs[p].state)) << 16 | (p + 1);
}

/* Who holds the flush token, sampled for @ms: how often each tag. */
static void sample_token(struct pstm_region *r, uint64_t a, uint64_t b, int ms,
			 unsigned *na, unsigned *nb)
{
	uint64_t until = test_now_ns() + (uint64_t)ms * 1000000u;
	*na = *nb = 0;
	while (test_now_ns() < until) {
		uint64_t t = atomic_load(&r->rt->flush_owner);
		*na += t == a;
		*nb += t == b;
	}
}

/*
 * pstmd flushes a relaxed region for its member (the flush token is only
 * ever pstmd's while the member commits), and the file keeps up; killed,
 * pstmd's work is taken back by the member's own flush thread at once.
 */
static void test_relaxed_flusher(void **s)
{
	(void)s;
	static struct test_pstmd d;
	/* rings that the test's commits never fill: a committer whose ring
	 * is full checkpoints itself, as it must */
	struct pstm_create_opts o = {.size_bytes = 32 << 20, .durability = PSTM_RELAXED,
				     .flush_ms = 5, .max_procs = 8, .max_threads = 8,
				     .log_bytes = 2 << 20};
	pstm_region *r;
	struct pstm_region ro;
	unsigned by_pstmd, by_member;
	test_pstmd_names(&d);
	running = &d;
	test_pstmd_start(&d, NULL);
	C.uri = test_file_uri("pstmd-relaxed");
	snprintf(created_uri, sizeof(created_uri), "%s", C.uri);
	C.bank.n = ACCOUNTS;
	assert_pstm_ok(pstm_create(C.uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_setup, &C.bank));
	assert_pstm_ok(pstm_close(r));
	C.sh = mmap(NULL, sizeof(*C.sh), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	memset(C.sh, 0, sizeof(*C.sh));
	C.sock = d.sock;
	int fd = open(C.uri, O_RDONLY);
	assert_true(fd >= 0);

	pid_t m = spawn(relaxed_member, 0);
	assert_true(test_pstmd_wait(d.sock, 1, 1, 5000));
	assert_pstm_ok(region_map_readonly(C.uri, &ro));
	uint64_t t_pstmd = tag_of(&ro, entry_of_pid(&ro, d.pid));
	uint64_t t_member = tag_of(&ro, atomic_load(&C.sh->entry[0]));
	/* the member has read pstmd's FLUSHER by its second tick */
	commit_round(1);
	usleep(20000);
	int round = 1;
	by_pstmd = by_member = 0;
	for (int i = 0; i < 20; i++) { /* commits keep both flushers busy */
		unsigned a, b;
		atomic_store(&C.sh->stop[0], ++round);
		sample_token(&ro, t_pstmd, t_member, 20, &a, &b);
		while (atomic_load(&C.sh->stopped[0]) != round)
			usleep(100);
		by_pstmd += a;
		by_member += b;
	}
	print_message("# flush token seen held by pstmd %u times, by the member %u\n",
		      by_pstmd, by_member);
	assert_true(by_pstmd > 0);
	assert_int_equal(by_member, 0);
	struct flushed_past f = {fd, atomic_load(&ro.rt->dseq)};
	assert_true(test_poll_until(is_flushed, &f, 2000)); /* pstmd's flushes */

	/* pstmd dies: the member takes the flushing back */
	test_pstmd_kill(&d);
	uint64_t t0 = test_now_ns();
	commit_round(++round);
	f.seq = atomic_load(&ro.rt->dseq);
	assert_true(test_poll_until(is_flushed, &f, 2000));
	double ms = (double)(test_now_ns() - t0) / 1e6;
	print_message("# pstmd killed: the member's commits in the file %.1f ms later "
		      "(flush_ms 5)\n", ms);
	sample_token(&ro, t_pstmd, t_member, 100, &by_pstmd, &by_member);
	assert_true(by_member > 0); /* its flush thread's ticks again */
	region_unmap_readonly(&ro);
	close(fd);
	atomic_store(&C.sh->leave[0], 1);
	assert_int_equal(reap(m), 0);
	check_bank();
	pstm_unlink(C.uri);
	created_uri[0] = 0;
	test_pstmd_remove(&d);
	running = NULL;
	munmap(C.sh, sizeof(*C.sh));
}

/* ------------------------------------------ pstm procs and metrics */

/* the Prometheus page of the metrics socket @path */
static void metrics_page(const char *path, char *out, size_t n)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	size_t got = 0;
	ssize_t k;
	while (got + 1 < n && (k = read(fd, out + got, n - 1 - got)) > 0)
		got += (size_t)k;
	out[got] = 0;
	close(fd);
}

static void test_procs_and_metrics(void **s)
{
	(void)s;
	static struct test_pstmd d;
	static char out[1 << 16], metrics[100], env_sock[160], want[256];
	test_pstmd_names(&d);
	running = &d;
	snprintf(metrics, sizeof(metrics), "/tmp/pstm-test-pstmd-%d.metrics", (int)getpid());
	const char *extra[] = {"--metrics", metrics, NULL};
	test_pstmd_start(&d, extra);
	setup_bank(test_shm_uri("pstmd"));
	C.sock = d.sock;
	atomic_store(&C.sh->stop[0], 1);
	pid_t m = spawn(member, 0);
	assert_true(test_pstmd_wait(d.sock, 1, 1, 5000));
	assert_true(test_poll_until(is_ready, &C.sh->stopped[0], 5000));

	snprintf(env_sock, sizeof(env_sock), "PSTM_DAEMON_SOCKET=%s", d.sock);
	const char *env[] = {env_sock, "PSTM_DAEMON", NULL};
	const char *off[] = {env_sock, "PSTM_DAEMON=off", NULL};
	const char *args[] = {"procs", "--json", C.uri, NULL};
	assert_int_equal(test_exec("pstm", args, env, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"source\":\"pstmd\""));
	snprintf(want, sizeof(want), "\"pid\":%d,\"state\":\"alive\"", (int)m);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "\"watched\":true"));
	assert_non_null(strstr(out, "\"pstmd\":true")); /* its own entry */
	assert_int_equal(test_exec("pstm", args, off, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"source\":\"region\""));
	assert_non_null(strstr(out, want));
	/* pstm top asks pstmd too */
	const char *top[] = {"top", "--json", "--interval", "50", "--once", C.uri, NULL};
	assert_int_equal(test_exec("pstm", top, env, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"source\":\"pstmd\""));
	snprintf(want, sizeof(want), "\"pid\":%d,", (int)m);
	assert_non_null(strstr(out, want));
	assert_int_equal(test_exec("pstm", top, off, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"source\":\"region\""));
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "\"pid\":%d,\"state\":\"alive\"", (int)m);
	const char *text[] = {"procs", C.uri, NULL};
	assert_int_equal(test_exec("pstm", text, env, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "pstmd (watching 1 processes, 0 recovered)"));

	metrics_page(metrics, out, sizeof(out));
	assert_non_null(strstr(out, "# TYPE pstmd_regions gauge\npstmd_regions 1\n"));
	snprintf(want, sizeof(want), "pstm_region_members{region=\"%s\"} 1\n", C.uri);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "pstm_region_aborts{region=\"%s\",cause=\"lock\"} ",
		 C.uri);
	assert_non_null(strstr(out, want));

	atomic_store(&C.sh->leave[0], 1);
	assert_int_equal(reap(m), 0);
	assert_true(test_pstmd_wait(d.sock, 0, 0, 3000));
	assert_int_equal(test_exec("pstm", args, env, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "\"source\":\"region\""));
	assert_non_null(strstr(out, "\"processes\":[]"));
	test_pstmd_stop(&d);
	struct stat st;
	assert_int_not_equal(stat(metrics, &st), 0); /* removed at exit */
	pstm_unlink(C.uri);
	created_uri[0] = 0;
	test_pstmd_remove(&d);
	running = NULL;
	munmap(C.sh, sizeof(*C.sh));
}

/* ------------------------------------------------------------ systemd */

/* Readiness through $NOTIFY_SOCKET (sd_notify), and a listener passed by
 * socket activation (sd_listen_fds, with systemd-socket-activate): only
 * in a pstmd built with libsystemd. */
static void test_systemd(void **s)
{
	(void)s;
	static char out[4096], notify[108], env[160];
	const char *ver[] = {"--version", NULL};
	assert_int_equal(test_pstmd_run(ver, out, sizeof(out)), 0);
	if (!strstr(out, "systemd")) {
		print_message("# pstmd built without libsystemd: skipped\n");
		skip();
	}
	static struct test_pstmd d;
	test_pstmd_names(&d);
	running = &d;
	snprintf(notify, sizeof(notify), "/tmp/pstm-test-pstmd-%d.notify", (int)getpid());
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", notify);
	int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unlink(notify);
	assert_int_equal(bind(nfd, (struct sockaddr *)&a, sizeof(a)), 0);
	snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", notify);
	putenv(env); /* inherited by pstmd only: unset below */
	test_pstmd_start(&d, NULL);
	unsetenv("NOTIFY_SOCKET");
	struct pollfd p = {.fd = nfd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	ssize_t k = recv(nfd, out, sizeof(out) - 1, 0);
	assert_true(k > 0);
	out[k] = 0;
	assert_non_null(strstr(out, "READY=1"));
	test_pstmd_stop(&d);
	close(nfd);
	unlink(notify);

	const char *act = "/usr/bin/systemd-socket-activate";
	if (access(act, X_OK) != 0) {
		print_message("# no %s: socket activation not tried\n", act);
		test_pstmd_remove(&d);
		running = NULL;
		return;
	}
	/* systemd-socket-activate listens, and execs pstmd with the socket
	 * (LISTEN_FDS) at the first connection; pstmd then serves on it */
	char bin[512];
	const char *b = getenv("PSTM_BIN");
	snprintf(bin, sizeof(bin), "%s/pstmd", b && *b ? b : "build");
	fflush(stdout);
	d.pid = fork();
	if (d.pid == 0) {
		int fd = open(d.log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		execl(act, act, "--seqpacket", "-l", d.sock, bin, "--foreground", "--config",
		      "/dev/null", "--state", d.state, (char *)NULL);
		_exit(127);
	}
	uint64_t until = test_now_ns() + 5000000000ull;
	struct test_pstmd_status st;
	while (test_pstmd_ping(d.sock, &st) != 0) {
		assert_true(test_now_ns() < until);
		usleep(2000);
	}
	snprintf(log_want, sizeof(log_want), "listening on the socket systemd passed");
	log_path = d.log;
	assert_true(test_poll_until(log_has, NULL, 5000));
	test_pstmd_stop(&d);
	test_pstmd_remove(&d);
	running = NULL;
}

static int group_setup(void **s)
{
	(void)s;
	setenv("PSTM_DAEMON", "off", 1); /* the test process itself */
	return 0;
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test_teardown(test_command_line, teardown),
	cmocka_unit_test_teardown(test_hostile_messages, teardown),
	cmocka_unit_test_teardown(test_limits, teardown),
	cmocka_unit_test_teardown(test_stale_socket, teardown),
	cmocka_unit_test_teardown(test_dead_member_shm, teardown),
	cmocka_unit_test_teardown(test_dead_member_file, teardown),
	cmocka_unit_test_teardown(test_exit_and_close, teardown),
	cmocka_unit_test_teardown(test_killed_under_load, teardown),
	cmocka_unit_test_teardown(test_full_table, teardown),
	cmocka_unit_test_teardown(test_relaxed_flusher, teardown),
	cmocka_unit_test_teardown(test_procs_and_metrics, teardown),
	cmocka_unit_test_teardown(test_systemd, teardown),
};

int main(void)
{
	TEST_OUTPUT();
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
