/*
 * stop_bench.c - does a stopped process block the others?  (make
 * bench-stop; docs/benchmarks.md)
 *
 * Three processes transfer money between the same two accounts of a shm
 * region.  The parent SIGSTOPs one of them, chosen at random, at random
 * moments, for STOP ms each, then SIGCONTs it, ROUNDS times.  For each
 * stop it counts the commits of the other two while it lasted; reported:
 * the stops during which they made none, and the longest time without
 * any commit by a running process.  A fourth process, never stopped,
 * runs read-only transactions over both accounts: reported, the stops
 * during which it made none (readers never wait past a commit point: they
 * read through the stopped commit's redo record).  Public API only, so
 * the same source measures any build of the library.
 *
 *   stop_bench [ROUNDS [STOP_MS [URI]]]     defaults 200, 100, shm:stopbench
 */
#define _GNU_SOURCE
#include <pstm.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
	_Atomic uint64_t commits[3];
	_Atomic uint64_t last_ns[3];
	_Atomic uint64_t reads;   /* the auditor's read-only transactions */
	_Atomic int bad;          /* it saw a wrong total */
	_Atomic int done;
};
static struct shared *SH;
static pstm_off BASE;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int setup(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_off root = pstm_root(tx, 8);
	BASE = pstm_load64(tx, root);
	if (!BASE) {
		BASE = pstm_alloc(tx, 16);
		pstm_store64(tx, BASE, 1000);
		pstm_store64(tx, BASE + 8, 1000);
		pstm_store64(tx, root, BASE);
	}
	return 0;
}

static int transfer(pstm_tx *tx, void *arg)
{
	uint64_t k = *(uint64_t *)arg;
	pstm_off a = BASE + 8 * (k & 1), b = BASE + 8 * !(k & 1);
	uint64_t va = pstm_load64(tx, a);
	if (va < 3)
		return 0;
	pstm_store64(tx, a, va - 3);
	pstm_store64(tx, b, pstm_load64(tx, b) + 3);
	return 0;
}

static int total(pstm_tx *tx, void *arg)
{
	*(uint64_t *)arg = pstm_load64(tx, BASE) + pstm_load64(tx, BASE + 8);
	return 0;
}

static void worker(const char *uri, int i)
{
	pstm_region *r;
	if (pstm_open(uri, &r) || pstm_atomic(r, setup, NULL))
		_exit(2);
	for (uint64_t k = (uint64_t)i; !atomic_load(&SH->done); k += 7) {
		if (pstm_atomic(r, transfer, &k))
			_exit(3);
		atomic_fetch_add(&SH->commits[i], 1);
		atomic_store(&SH->last_ns[i], now_ns());
	}
	pstm_close(r);
	_exit(0);
}

static void auditor(const char *uri)
{
	pstm_region *r;
	uint64_t sum;
	if (pstm_open(uri, &r) || pstm_atomic(r, setup, NULL))
		_exit(2);
	while (!atomic_load(&SH->done)) {
		if (pstm_atomic_ro(r, total, &sum))
			_exit(3);
		if (sum != 2000)
			atomic_store(&SH->bad, 1);
		atomic_fetch_add(&SH->reads, 1);
	}
	pstm_close(r);
	_exit(0);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 200;
	int stop_ms = argc > 2 ? atoi(argv[2]) : 100;
	const char *uri = argc > 3 ? argv[3] : "shm:stopbench";
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 4 << 20, .replace = 1};
	if (pstm_create(uri, &o, &r) || pstm_atomic(r, setup, NULL))
		return 1;
	pstm_close(r);
	SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (SH == MAP_FAILED)
		return 1;
	pid_t pid[4];
	for (int i = 0; i < 3; i++)
		if ((pid[i] = fork()) == 0)
			worker(uri, i);
	if ((pid[3] = fork()) == 0)
		auditor(uri);
	srand(12345);
	int blocked = 0, unread = 0;
	uint64_t worst_gap = 0;
	struct timespec ts = {0, 20000000};
	nanosleep(&ts, NULL);
	for (int n = 0; n < rounds; n++) {
		struct timespec gap = {0, (rand() % 20 + 1) * 1000000L};
		nanosleep(&gap, NULL);
		int v = rand() % 3;
		kill(pid[v], SIGSTOP);
		int st;
		waitpid(pid[v], &st, WUNTRACED);
		uint64_t c0 = 0, c1 = 0, t0 = now_ns(), r0 = atomic_load(&SH->reads);
		for (int i = 0; i < 3; i++)
			if (i != v)
				c0 += atomic_load(&SH->commits[i]);
		/* sample the others' last commit to find the longest gap */
		while (now_ns() - t0 < (uint64_t)stop_ms * 1000000ull) {
			struct timespec p = {0, 1000000};
			nanosleep(&p, NULL);
			uint64_t last = t0;
			for (int i = 0; i < 3; i++)
				if (i != v && atomic_load(&SH->last_ns[i]) > last)
					last = atomic_load(&SH->last_ns[i]);
			uint64_t now = now_ns(); /* after: never below last */
			if (now - last > worst_gap)
				worst_gap = now - last;
		}
		for (int i = 0; i < 3; i++)
			if (i != v)
				c1 += atomic_load(&SH->commits[i]);
		if (c1 == c0)
			blocked++;
		if (atomic_load(&SH->reads) == r0)
			unread++;
		kill(pid[v], SIGCONT);
	}
	atomic_store(&SH->done, 1);
	for (int i = 0; i < 4; i++)
		waitpid(pid[i], NULL, 0);
	if (atomic_load(&SH->bad)) {
		fprintf(stderr, "stop_bench: a read-only transaction saw a wrong total\n");
		return 1;
	}
	uint64_t sum = 0;
	if (pstm_open(uri, &r) || pstm_atomic(r, setup, NULL) ||
	    pstm_atomic(r, total, &sum) || sum != 2000) {
		fprintf(stderr, "stop_bench: total %llu, not 2000\n",
			(unsigned long long)sum);
		return 1;
	}
	pstm_close(r);
	pstm_unlink(uri);
	printf("stop_bench: %d stops of %d ms (3 processes, 2 accounts): the others "
	       "made no commit during %d (%.1f%%); longest time without a commit "
	       "by a running process %.1f ms; the reader made no read-only "
	       "transaction during %d (%.1f%%); totals exact\n",
	       rounds, stop_ms, blocked, 100.0 * blocked / rounds,
	       (double)worst_gap / 1e6, unread, 100.0 * unread / rounds);
	return 0;
}
