/*
 * test_history.c - serializability checked, not assumed (list-append, as
 * in Jepsen's Elle).  Processes run transactions that read some keys'
 * lists and append unique values to others; every committed
 * transaction's observations are recorded.  The checker derives the
 * dependency graph:
 *   ww  T1 -> T2  T2's append follows T1's in the key's final list
 *   wr  T1 -> T2  T2 read a list whose last element T1 appended
 *   rw  T1 -> T2  T1 read a list of length n; T2 appended element n+1
 * and asserts it is acyclic, that every read is a prefix of the final
 * list, and that no committed append is lost.  The checker is shown to
 * fail: with PSTM_TEST_BREAK_VALIDATION=1 (reads unvalidated) it must
 * find a cycle.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"

enum { KEYS = 6, CAP = 4000, PROCS = 4, TXS = 1500, MAXR = 3, MAXA = 2 };

struct rec {             /* one committed transaction */
	uint32_t nr, na;
	uint32_t rkey[MAXR];
	uint32_t rlen[MAXR];
	uint64_t rsum[MAXR]; /* hash of the list read */
	uint32_t akey[MAXA];
	uint64_t aval[MAXA];
};

struct hist {            /* MAP_SHARED between parent and children */
	struct rec recs[PROCS][TXS];
};

struct ctx {
	const char *uri;
	struct hist *h;
	pstm_off base;
};

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static pstm_off key_off(struct ctx *c, uint32_t k)
{
	return c->base + (uint64_t)k * (CAP + 1) * 8;
}

struct txarg {
	struct ctx *c;
	struct rec plan; /* keys and values chosen up front */
	struct rec got;  /* observations of the attempt that commits */
};

static int la_fn(pstm_tx *tx, void *arg)
{
	struct txarg *a = arg;
	struct rec *g = &a->got;
	*g = a->plan; /* every attempt starts afresh */
	for (uint32_t i = 0; i < g->nr; i++) {
		pstm_off k = key_off(a->c, g->rkey[i]);
		uint64_t len = pstm_load64(tx, k), h = 0;
		if (len > CAP)
			return 90; /* impossible in a serial execution */
		for (uint64_t j = 0; j < len; j++)
			h = mix(h, pstm_load64(tx, k + 8 * (j + 1)));
		g->rlen[i] = (uint32_t)len;
		g->rsum[i] = h;
	}
	for (uint32_t i = 0; i < g->na; i++) {
		pstm_off k = key_off(a->c, g->akey[i]);
		uint64_t len = pstm_load64(tx, k);
		if (len >= CAP)
			return 91;
		pstm_store64(tx, k + 8 * (len + 1), g->aval[i]);
		pstm_store64(tx, k, len + 1);
	}
	return 0;
}

static int la_child(void *arg, int p)
{
	struct ctx *c = arg;
	pstm_region *r;
	uint64_t s = 0x1234567ull * (uint64_t)(p + 1);
	if (pstm_open(c->uri, &r))
		return 2;
	for (int t = 0; t < TXS; t++) {
		struct txarg a = {.c = c};
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		a.plan.nr = 1 + (uint32_t)(s % MAXR);
		a.plan.na = 1 + (uint32_t)((s >> 8) % MAXA);
		for (uint32_t i = 0; i < a.plan.nr; i++)
			a.plan.rkey[i] = (uint32_t)((s >> (16 + 4 * i)) % KEYS);
		for (uint32_t i = 0; i < a.plan.na; i++) {
			a.plan.akey[i] = (uint32_t)((s >> (40 + 4 * i)) % KEYS);
			/* unique: process, transaction, index; never 0 */
			a.plan.aval[i] = ((uint64_t)(p + 1) << 32) |
					 ((uint64_t)t << 4) | i;
		}
		if (a.plan.na == 2 && a.plan.akey[0] == a.plan.akey[1])
			a.plan.na = 1;
		int rc = pstm_atomic(r, la_fn, &a);
		if (rc)
			return 3;
		c->h->recs[p][t] = a.got;
	}
	pstm_close(r);
	return 0;
}

static int root_fn(pstm_tx *tx, void *arg)
{
	struct ctx *c = arg;
	pstm_off root = pstm_root(tx, 64);
	pstm_off b = pstm_load64(tx, root);
	if (!b) {
		b = pstm_alloc(tx, (uint64_t)KEYS * (CAP + 1) * 8);
		for (uint32_t k = 0; k < KEYS; k++)
			pstm_store64(tx, b + (uint64_t)k * (CAP + 1) * 8, 0);
		pstm_store64(tx, root, b);
	}
	c->base = b;
	return 0;
}

struct final {
	uint64_t len[KEYS];
	uint64_t v[KEYS][CAP];
};

static int final_fn(pstm_tx *tx, void *arg)
{
	void **a = arg;
	struct ctx *c = a[0];
	struct final *f = a[1];
	for (uint32_t k = 0; k < KEYS; k++) {
		f->len[k] = pstm_load64(tx, key_off(c, k));
		for (uint64_t j = 0; j < f->len[k] && j < CAP; j++)
			f->v[k][j] = pstm_load64(tx, key_off(c, k) + 8 * (j + 1));
	}
	return 0;
}

/* ---------------------------------------------------------- checker */

struct result {
	int cycles;   /* 1 if the graph has a cycle */
	int lost;     /* committed appends missing from the final lists */
	int nonprefix;/* reads that are not a prefix of the final list */
};

#define NTX (PROCS * TXS)

static int tx_of_val(uint64_t v)
{
	int p = (int)(v >> 32) - 1, t = (int)((v >> 4) & 0x0fffffff);
	if (p < 0 || p >= PROCS || t >= TXS)
		return -1;
	return p * TXS + t;
}

struct graph {
	int *from, *to;
	int n, cap;
};

static void add_edge(struct graph *g, int from, int to)
{
	if (from < 0 || to < 0 || from == to)
		return;
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 1024;
		g->from = realloc(g->from, sizeof(int) * (size_t)g->cap);
		g->to = realloc(g->to, sizeof(int) * (size_t)g->cap);
	}
	g->from[g->n] = from;
	g->to[g->n++] = to;
}

/* Kahn's algorithm: a cycle leaves nodes that never reach in-degree 0. */
static int has_cycle(struct graph *g)
{
	int *indeg = calloc(NTX, sizeof(int));
	int *start = calloc(NTX + 1, sizeof(int));
	int *succ = calloc((size_t)g->n + 1, sizeof(int));
	int *queue = calloc(NTX, sizeof(int));
	int qh = 0, qt = 0, seen = 0;

	for (int e = 0; e < g->n; e++) {
		start[g->from[e] + 1]++;
		indeg[g->to[e]]++;
	}
	for (int u = 0; u < NTX; u++)
		start[u + 1] += start[u];
	int *fill = calloc(NTX, sizeof(int));
	for (int e = 0; e < g->n; e++)
		succ[start[g->from[e]] + fill[g->from[e]]++] = g->to[e];
	for (int u = 0; u < NTX; u++)
		if (!indeg[u])
			queue[qt++] = u;
	while (qh < qt) {
		int u = queue[qh++];
		seen++;
		for (int i = start[u]; i < start[u + 1]; i++)
			if (--indeg[succ[i]] == 0)
				queue[qt++] = succ[i];
	}
	free(indeg);
	free(start);
	free(succ);
	free(queue);
	free(fill);
	return seen != NTX;
}

static struct result check(struct hist *h, struct final *f)
{
	struct result res = {0, 0, 0};
	struct graph g = {0};
	uint64_t *prefix = calloc(CAP + 1, sizeof(uint64_t));

	/* every committed append is in its final list exactly once */
	for (int p = 0; p < PROCS; p++)
		for (int t = 0; t < TXS; t++) {
			struct rec *r = &h->recs[p][t];
			for (uint32_t i = 0; i < r->na; i++) {
				uint32_t k = r->akey[i], n = 0;
				for (uint64_t j = 0; j < f->len[k]; j++)
					n += f->v[k][j] == r->aval[i];
				if (n != 1)
					res.lost++;
			}
		}
	for (uint32_t k = 0; k < KEYS; k++) {
		/* ww along the final list */
		for (uint64_t j = 1; j < f->len[k]; j++)
			add_edge(&g, tx_of_val(f->v[k][j - 1]),
				 tx_of_val(f->v[k][j]));
		prefix[0] = 0;
		for (uint64_t j = 0; j < f->len[k]; j++)
			prefix[j + 1] = mix(prefix[j], f->v[k][j]);
		for (int p = 0; p < PROCS; p++)
			for (int t = 0; t < TXS; t++) {
				struct rec *r = &h->recs[p][t];
				int me = p * TXS + t;
				for (uint32_t i = 0; i < r->nr; i++) {
					if (r->rkey[i] != k)
						continue;
					uint32_t n = r->rlen[i];
					if (n > f->len[k] || prefix[n] != r->rsum[i]) {
						res.nonprefix++;
						continue;
					}
					if (n > 0) /* wr */
						add_edge(&g, tx_of_val(f->v[k][n - 1]), me);
					if (n < f->len[k]) /* rw */
						add_edge(&g, me, tx_of_val(f->v[k][n]));
				}
			}
	}
	res.cycles = has_cycle(&g);
	free(g.from);
	free(g.to);
	free(prefix);
	return res;
}

static struct result run_history(void)
{
	struct ctx c;
	pstm_region *r;
	c.uri = test_shm_uri("hist");
	c.h = mmap(NULL, sizeof(struct hist), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(c.h != MAP_FAILED);
	assert_pstm_ok(pstm_create(c.uri, NULL, &r));
	assert_pstm_ok(pstm_atomic(r, root_fn, &c));
	test_run_procs(PROCS, la_child, &c);
	struct final *f = calloc(1, sizeof(*f));
	void *a[2] = {&c, f};
	assert_pstm_ok(pstm_atomic(r, final_fn, a));
	struct result res = check(c.h, f);
	free(f);
	munmap(c.h, sizeof(struct hist));
	pstm_close(r);
	pstm_unlink(c.uri);
	return res;
}

static void test_history_serializable(void **s)
{
	(void)s;
	unsetenv("PSTM_TEST_BREAK_VALIDATION");
	for (int round = 0; round < 3; round++) {
		struct result res = run_history();
		if (res.cycles || res.lost || res.nonprefix)
			print_error("round %d: cycle %d lost %d nonprefix %d\n",
				    round, res.cycles, res.lost, res.nonprefix);
		assert_int_equal(res.cycles, 0);
		assert_int_equal(res.lost, 0);
		assert_int_equal(res.nonprefix, 0);
	}
}

/* The checker can fail: break read validation and it must see a cycle. */
static void test_checker_catches_broken_validation(void **s)
{
	(void)s;
	int cycles = 0;
	setenv("PSTM_TEST_BREAK_VALIDATION", "1", 1);
	for (int round = 0; round < 10 && !cycles; round++)
		cycles += run_history().cycles;
	unsetenv("PSTM_TEST_BREAK_VALIDATION");
	assert_true(cycles > 0);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_history_serializable),
	cmocka_unit_test(test_checker_catches_broken_validation),
};

TEST_MAIN(tests)
