/*
 * pstmd_recovery.c - how long after a member's SIGKILL pstmd has freed
 * its process entry, transaction slot and locks, with no other process
 * transacting (make bench-pstmd).
 *
 * The program starts pstmd on a socket of its own.  Each round forks a
 * member that opens the region (registering with pstmd), begins a
 * transaction, makes it inevitable and stores to 16 words (so it holds
 * their orecs locked), then stops, inside the transaction.  Once pstmd
 * watches it, the parent takes the time, SIGKILLs it and spins on a
 * read-only mapping of the region (it never attaches, so it recovers
 * nothing) until the member's entry is free, none of its slots is held
 * and no orec is locked.  It prints the median, 90th percentile and
 * maximum of those times, and the same rounds' count with no pstmd
 * (whether anything is freed at all within a second).
 *
 *   build/bench/pstmd_recovery [--kills N] [--pstmd PATH] [URI]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "pstm.h"
#include "region.h"
#include "wire.h"

#define WORDS 16

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* pstmd's member count, or -1 */
static int members(const char *sock)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct wire_buf w;
	uint8_t buf[WIRE_MAX_BYTES];
	int fds[WIRE_MAX_FDS], nfds, n = -1;
	struct wire_msg m;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto out;
	wire_begin(&w, WIRE_PING, 1);
	if (wire_end(&w) < 0 || wire_send(fd, &w, NULL, 0, false) != 0)
		goto out;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 2000) != 1)
		goto out;
	ssize_t k = wire_recv(fd, buf, fds, &nfds, false);
	wire_close_fds(fds, nfds);
	if (k > 0 && wire_parse(buf, (size_t)k, nfds, &m) == 0 && m.type == WIRE_STATUS)
		n = (int)m.u[WT_MEMBERS];
out:
	if (fd >= 0)
		close(fd);
	return n;
}

struct hold {
	pstm_off base;
	int fd; /* tell the parent, then stop */
};

static int hold_locks(pstm_tx *tx, void *arg)
{
	struct hold *h = arg;
	pstm_tx_inevitable(tx);
	for (int i = 0; i < WORDS; i++)
		pstm_store64(tx, h->base + 8 * (pstm_off)i, (uint64_t)i);
	if (write(h->fd, "h", 1) != 1)
		_exit(3);
	for (;;)
		pause(); /* killed here, in the transaction */
}

static int setup(pstm_tx *tx, void *arg)
{
	pstm_off root = pstm_root(tx, 8);
	if (!pstm_load64(tx, root))
		pstm_store64(tx, root, pstm_alloc(tx, 8 * WORDS));
	*(pstm_off *)arg = pstm_load64(tx, root);
	return 0;
}

/* Is entry @p free, with no slot of it and no orec locked? */
static bool settled(struct pstm_region *r, uint32_t p)
{
	if (PROC_ST(atomic_load(&r->procs[p].state)) != PROC_FREE)
		return false;
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		uint64_t st = atomic_load(&r->slots[s].state);
		if (SLOT_ST(st) == SLOT_ACTIVE && SLOT_PROC(st) == p)
			return false;
	}
	for (uint64_t i = 0; i <= r->orec_mask; i++)
		if (orec_is_locked(atomic_load(&r->orecs[i])))
			return false;
	return true;
}

/* One round: the time from SIGKILL to settled, in ns; 0 if it did not
 * settle within a second. */
static uint64_t round_once(const char *uri, const char *sock, pstm_off base,
			   struct pstm_region *ro, _Atomic uint32_t *entry,
			   uint64_t *exit_ns)
{
	int p[2];
	if (pipe(p) != 0)
		exit(1);
	int before = sock ? members(sock) : 0;
	pid_t pid = fork();
	if (pid == 0) {
		pstm_region *r;
		close(p[0]);
		if (sock) {
			setenv("PSTM_DAEMON_SOCKET", sock, 1);
			unsetenv("PSTM_DAEMON");
		}
		if (pstm_open(uri, &r))
			_exit(2);
		atomic_store(entry, r->proc_idx);
		struct hold h = {base, p[1]};
		pstm_atomic(r, hold_locks, &h);
		_exit(4);
	}
	close(p[1]);
	char c;
	if (read(p[0], &c, 1) != 1) {
		fprintf(stderr, "member failed\n");
		exit(1);
	}
	close(p[0]);
	uint64_t until = now_ns() + 2000000000ull;
	while (sock && members(sock) <= before && now_ns() < until)
		usleep(200); /* pstmd has registered it */
	uint32_t e = atomic_load(entry);
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	uint64_t t0 = now_ns();
	kill(pid, SIGKILL);
	/* the kernel's part: until the exit is notified (what pstmd's
	 * pidfd waits for); a blocking poll, so this process takes no CPU
	 * from the dying one or from pstmd */
	struct pollfd pp = {.fd = pfd, .events = POLLIN};
	if (pfd >= 0 && poll(&pp, 1, 1000) == 1)
		*exit_ns = now_ns() - t0;
	if (pfd >= 0)
		close(pfd);
	uint64_t t;
	while (!settled(ro, e) && (t = now_ns()) - t0 < 1000000000ull)
		sched_yield();
	t = now_ns() - t0;
	int st;
	waitpid(pid, &st, 0);
	if (!settled(ro, e)) {
		/* without pstmd: nobody frees it; the next open does */
		pstm_region *r;
		if (pstm_open(uri, &r) == 0)
			pstm_close(r);
		return 0;
	}
	return t;
}

int main(int argc, char **argv)
{
	int kills = 50;
	const char *bin = "build/pstmd";
	char uri[128], sock[108];
	snprintf(uri, sizeof(uri), "shm:p13-pstmd-bench-%d", (int)getpid());
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--kills") && i + 1 < argc)
			kills = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--pstmd") && i + 1 < argc)
			bin = argv[++i];
		else if (argv[i][0] != '-')
			snprintf(uri, sizeof(uri), "%s", argv[i]);
		else {
			fprintf(stderr, "usage: pstmd_recovery [--kills N] [--pstmd PATH] [URI]\n");
			return 2;
		}
	}
	if (kills < 1 || kills > 100000)
		kills = 50;
	setenv("PSTM_DAEMON", "off", 1); /* this process never registers */
	snprintf(sock, sizeof(sock), "/tmp/p13-pstmd-bench-%d.sock", (int)getpid());
	pstm_region *r;
	pstm_off base;
	struct pstm_create_opts o = {.size_bytes = 8 << 20, .replace = 1};
	int rc = pstm_create(uri, &o, &r);
	if (rc || pstm_atomic(r, setup, &base) || pstm_close(r)) {
		fprintf(stderr, "%s: %s\n", uri, pstm_strerror(rc));
		return 1;
	}
	_Atomic uint32_t *entry = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct pstm_region ro;
	if (entry == MAP_FAILED || region_map_readonly(uri, &ro) != 0)
		return 1;

	pid_t d = fork();
	if (d == 0) {
		char state[140];
		snprintf(state, sizeof(state), "%s.regions", sock);
		int nul = open("/dev/null", O_WRONLY);
		dup2(nul, 2);
		execl(bin, bin, "--foreground", "--socket", sock, "--state", state,
		      "--config", "/dev/null", (char *)NULL);
		_exit(127);
	}
	uint64_t until = now_ns() + 5000000000ull;
	while (members(sock) < 0) {
		if (now_ns() > until) {
			fprintf(stderr, "%s did not start\n", bin);
			return 1;
		}
		usleep(1000);
	}
	uint64_t *t = calloc((size_t)kills, sizeof(*t));
	uint64_t *x = calloc((size_t)kills, sizeof(*x));
	int lost = 0;
	for (int k = 0; k < kills; k++)
		if ((t[k] = round_once(uri, sock, base, &ro, entry, &x[k])) == 0)
			lost++;
	kill(d, SIGTERM);
	waitpid(d, NULL, 0);
	char extra[160];
	snprintf(extra, sizeof(extra), "%s.regions", sock);
	unlink(extra);
	snprintf(extra, sizeof(extra), "%s.lock", sock);
	unlink(extra);

	qsort(t, (size_t)kills, sizeof(*t), cmp);
	qsort(x, (size_t)kills, sizeof(*x), cmp);
	printf("pstmd: SIGKILL of a member holding %d locks -> its entry, slot and "
	       "locks free, %d kills: median %.3f ms, p90 %.3f ms, max %.3f ms%s\n",
	       WORDS, kills, (double)t[kills / 2] / 1e6, (double)t[kills * 9 / 10] / 1e6,
	       (double)t[kills - 1] / 1e6, lost ? " (some not freed in 1 s!)" : "");
	printf("  of which the kernel's (SIGKILL until the exit is notified to a "
	       "pidfd): median %.3f ms, p90 %.3f ms\n",
	       (double)x[kills / 2] / 1e6, (double)x[kills * 9 / 10] / 1e6);
	int without = kills < 5 ? kills : 5, freed = 0;
	uint64_t ignore;
	for (int k = 0; k < without; k++)
		freed += round_once(uri, NULL, base, &ro, entry, &ignore) != 0;
	printf("without pstmd: %d of %d kills freed within 1 s (no process transacting)\n",
	       freed, without);
	region_unmap_readonly(&ro);
	pstm_unlink(uri);
	free(t);
	free(x);
	return lost ? 1 : 0;
}
