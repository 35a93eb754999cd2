/*
 * bank.c - several processes move money between accounts in one region.
 *
 *   bank [-p PROCS] [-t THREADS] [-a ACCOUNTS] [-s SECONDS] [URI]
 *
 * Creates URI (default shm:pstm-bank, replacing it), puts 1000 in every
 * account, then forks PROCS workers.  Each worker queues batches of
 * transfers with pstm_add and runs them with pstm_run on THREADS threads.
 * An auditor process sums all accounts inside transactions the whole
 * time; it must never see a total other than ACCOUNTS * 1000.  At the end
 * the parent prints the throughput and the final total, and exits 0 only
 * if the total is unchanged and the auditor saw no wrong total.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pstm.h"

struct bank {
	pstm_off accounts; /* array of uint64_t balances */
	uint64_t n;
};

struct transfer {
	struct bank *b;
	uint64_t from, to, amount;
};

struct stats { /* shared with the parent (MAP_SHARED) */
	uint64_t commits[64];
	struct pstm_stats tx[64]; /* each worker's pstm_stats_get at the end */
	uint64_t audits, wrong;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Move money; a transfer that would overdraw does nothing. */
static int transfer(pstm_tx *tx, void *arg)
{
	struct transfer *t = arg;
	pstm_off a = t->b->accounts + 8 * t->from;
	pstm_off c = t->b->accounts + 8 * t->to;
	uint64_t va = pstm_load64(tx, a);
	if (va < t->amount || t->from == t->to)
		return 0;
	pstm_store64(tx, a, va - t->amount);
	pstm_store64(tx, c, pstm_load64(tx, c) + t->amount);
	return 0;
}

struct sum {
	struct bank *b;
	uint64_t total;
};

static int sum_all(pstm_tx *tx, void *arg)
{
	struct sum *s = arg;
	s->total = 0;
	for (uint64_t i = 0; i < s->b->n; i++)
		s->total += pstm_load64(tx, s->b->accounts + 8 * i);
	return 0;
}

/* Find (or make) the accounts array through the root object. */
static int setup(pstm_tx *tx, void *arg)
{
	struct bank *b = arg;
	pstm_off root = pstm_root(tx, 16);
	b->accounts = pstm_load64(tx, root);
	if (!b->accounts) {
		b->accounts = pstm_alloc(tx, 8 * b->n);
		pstm_store64(tx, root, b->accounts);
		pstm_store64(tx, root + 8, b->n);
	}
	b->n = pstm_load64(tx, root + 8);
	return 0;
}

struct fill {
	struct bank *b;
	uint64_t from, to;
};

static int fill(pstm_tx *tx, void *arg)
{
	struct fill *f = arg;
	for (uint64_t i = f->from; i < f->to; i++)
		pstm_store64(tx, f->b->accounts + 8 * i, 1000);
	return 0;
}

static int die(const char *what, int rc)
{
	fprintf(stderr, "bank: %s: %s\n", what, pstm_strerror(rc));
	return 1;
}

static int worker(const char *uri, int id, int threads, double secs,
		  struct stats *st)
{
	enum { BATCH = 4096 };
	static struct transfer batch[BATCH];
	struct bank b = {0, 0};
	pstm_region *r;
	uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
	int rc = pstm_open(uri, &r);
	if (rc)
		return die("open", rc);
	if ((rc = pstm_atomic(r, setup, &b)))
		return die("setup", rc);
	double end = now_s() + secs;
	while (now_s() < end) {
		for (int i = 0; i < BATCH; i++) {
			batch[i] = (struct transfer){&b, rnd(&seed) % b.n,
						     rnd(&seed) % b.n,
						     rnd(&seed) % 100};
			if ((rc = pstm_add(r, transfer, &batch[i])))
				return die("add", rc);
		}
		if ((rc = pstm_run(r, threads)))
			return die("run", rc);
		st->commits[id] += BATCH;
	}
	pstm_stats_get(r, &st->tx[id]);
	pstm_close(r);
	return 0;
}

static int auditor(const char *uri, double secs, struct stats *st)
{
	struct bank b = {0, 0};
	pstm_region *r;
	int rc = pstm_open(uri, &r);
	if (rc)
		return die("open", rc);
	if ((rc = pstm_atomic(r, setup, &b)))
		return die("setup", rc);
	struct sum s = {&b, 0};
	double end = now_s() + secs;
	while (now_s() < end) {
		if ((rc = pstm_atomic(r, sum_all, &s)))
			return die("audit", rc);
		st->audits++;
		if (s.total != b.n * 1000)
			st->wrong++;
	}
	pstm_close(r);
	return 0;
}

int main(int argc, char **argv)
{
	int procs = 4, threads = 2, c;
	uint64_t n = 1024;
	double secs = 2;
	const char *uri = "shm:pstm-bank";

	while ((c = getopt(argc, argv, "p:t:a:s:h")) != -1) {
		switch (c) {
		case 'p': procs = atoi(optarg); break;
		case 't': threads = atoi(optarg); break;
		case 'a': n = strtoull(optarg, NULL, 0); break;
		case 's': secs = atof(optarg); break;
		default:
			fprintf(stderr, "usage: bank [-p PROCS] [-t THREADS] "
					"[-a ACCOUNTS] [-s SECONDS] [URI]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind < argc)
		uri = argv[optind];
	if (procs < 1 || procs > 64 || threads < 1 || n < 2 || secs <= 0) {
		fprintf(stderr, "bank: bad arguments\n");
		return 2;
	}

	struct pstm_create_opts o = {.size_bytes = 64ull << 20, .replace = 1};
	if (n * 8 > (32ull << 20))
		o.size_bytes = n * 16 + (64ull << 20);
	pstm_region *r;
	int rc = pstm_create(uri, &o, &r);
	if (rc)
		return die("create", rc);
	struct bank b = {0, n};
	if ((rc = pstm_atomic(r, setup, &b)))
		return die("setup", rc);
	for (uint64_t i = 0; i < n; i += 2000) {
		struct fill f = {&b, i, i + 2000 < n ? i + 2000 : n};
		if ((rc = pstm_atomic(r, fill, &f)))
			return die("fill", rc);
	}
	printf("region %s: %llu accounts of 1000, %d processes x %d threads, "
	       "%.1f s\n", uri, (unsigned long long)n, procs, threads, secs);

	struct stats *st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st == MAP_FAILED)
		return 1;
	memset(st, 0, sizeof(*st));
	fflush(stdout);
	double t0 = now_s();
	for (int p = 0; p <= procs; p++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(p == procs ? auditor(uri, secs, st)
					 : worker(uri, p, threads, secs, st));
	}
	int failed = 0, status;
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status);
	double el = now_s() - t0;

	struct sum s = {&b, 0};
	if ((rc = pstm_atomic(r, sum_all, &s)))
		return die("sum", rc);
	uint64_t total = 0;
	for (int p = 0; p < procs; p++) {
		struct pstm_stats *x = &st->tx[p];
		printf("  process %d: %llu transfers; aborts: %llu read, %llu lock, "
		       "%llu validation; %llu escalations\n", p,
		       (unsigned long long)st->commits[p],
		       (unsigned long long)x->aborts_read,
		       (unsigned long long)x->aborts_lock,
		       (unsigned long long)x->aborts_validate,
		       (unsigned long long)x->escalations);
		total += st->commits[p];
	}
	printf("transfers:  %llu in %.2f s = %.0f tx/s\n",
	       (unsigned long long)total, el, (double)total / el);
	printf("audits:     %llu full-table sums inside transactions, %llu wrong\n",
	       (unsigned long long)st->audits, (unsigned long long)st->wrong);
	printf("final total %llu (expected %llu): %s\n",
	       (unsigned long long)s.total, (unsigned long long)(n * 1000),
	       s.total == n * 1000 && !st->wrong && !failed ? "OK" : "WRONG");
	pstm_close(r);
	return s.total == n * 1000 && !st->wrong && !failed ? 0 : 1;
}
