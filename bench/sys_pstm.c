/*
 * sys_pstm.c - pstm itself: each operation is one pstm_atomic transaction
 * on a region created once by the driver and opened by every worker.
 *   pstm-shm   "shm:NAME", volatile
 *   pstm-file  a durable file in /tmp (msync-backed: slow by design)
 *   pstm-pmem  a durable file in /dev/shm with PMEM_IS_PMEM_FORCE=1, so
 *              flushes are cache-line writebacks as on real pmem
 *   pstm-relaxed  a PSTM_RELAXED file in /tmp, flush_ms = 10: transactions
 *              run on a /dev/shm working copy and each process's flusher
 *              thread writes committed ones to the file within 10 ms, in
 *              commit order.  Workers call nothing extra per operation;
 *              the check (worker 0, before and after each timed run) calls
 *              pstm_sync first, so every measured commit is durable before
 *              the driver reports.  That final sync is outside the timed
 *              window (the workers' clocks stop before the check).
 *              Baselines with the same promise: lmdb-nosync, sqlite-normal.
 *
 * Region layout: the 64-byte root holds {data, n, nbuckets}.  data is an
 * int64 array of n balances, or nbuckets chain heads (node offsets, 0 =
 * empty) of the integer set; a node is 16 bytes {key, next} from
 * pstm_alloc, chains sorted by key.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "pstm.h"

#define REGION_BYTES (128ull << 20)
#define ROOT_BYTES 64
#define INIT_WORDS 1000 /* stores per setup transaction (log: ~4000) */
#define INIT_KEYS 128   /* inserts per setup transaction */
#define CHECK_WORDS 4096
#define RELAXED_FLUSH_MS 10

static pstm_region *r;
static pstm_off data;
static uint64_t n, nbuckets;
static char uri[256];

static int fail(const char *what, int rc)
{
	return bench_fail(what, pstm_strerror(rc));
}

static int wants_pmem(const struct bench_cfg *c)
{
	return strcmp(c->system, "pstm-pmem") == 0;
}

static int is_relaxed(const struct bench_cfg *c)
{
	return strcmp(c->system, "pstm-relaxed") == 0;
}

/* the durability pstm_region_info must report for the variant */
static int expected_durability(const struct bench_cfg *c)
{
	if (strcmp(c->system, "pstm-shm") == 0)
		return PSTM_VOLATILE;
	return is_relaxed(c) ? PSTM_RELAXED : PSTM_DURABLE;
}

/*
 * libpmem decides pmem-ness when a file is mapped, from the environment:
 * pstm-pmem sets PMEM_IS_PMEM_FORCE, the others clear it (run each system
 * in its own process anyway; attach verifies what the region got).
 */
static void set_uri(const struct bench_cfg *c)
{
	if (wants_pmem(c))
		setenv("PMEM_IS_PMEM_FORCE", "1", 1);
	else
		unsetenv("PMEM_IS_PMEM_FORCE");
	if (strcmp(c->system, "pstm-shm") == 0) {
		char name[200];
		bench_path(name, sizeof(name), "", c->system, "");
		snprintf(uri, sizeof(uri), "shm:%s", name + 1); /* drop '/' */
	} else if (strcmp(c->system, "pstm-file") == 0 || is_relaxed(c)) {
		bench_path(uri, sizeof(uri), "/tmp", c->system, ".region");
	} else {
		bench_path(uri, sizeof(uri), "/dev/shm", c->system, ".region");
	}
}

/* ---- transaction bodies ------------------------------------------- */

struct op_ctx {
	const struct bench_op *op;
	int64_t result;
};

static int transfer_fn(pstm_tx *tx, void *arg)
{
	struct op_ctx *x = arg;
	pstm_off a = data + 8 * x->op->from, b = data + 8 * x->op->to;
	int64_t va = (int64_t)pstm_load64(tx, a), vb = (int64_t)pstm_load64(tx, b);

	pstm_store64(tx, a, (uint64_t)(va - x->op->amount));
	pstm_store64(tx, b, (uint64_t)(vb + x->op->amount));
	return 0;
}

static int read_fn(pstm_tx *tx, void *arg)
{
	struct op_ctx *x = arg;
	int64_t sum = 0;

	for (int i = 0; i < BENCH_READ_N; i++)
		sum += (int64_t)pstm_load64(tx, data + 8 * x->op->accounts[i]);
	x->result = sum;
	return 0;
}

/* Offset of the link word where key k is or would be; *cur its target. */
static pstm_off find(pstm_tx *tx, uint64_t k, pstm_off *cur)
{
	pstm_off link = data + 8 * (k % nbuckets), nd;

	while ((nd = pstm_load64(tx, link)) != 0 && pstm_load64(tx, nd) < k)
		link = nd + 8;
	*cur = nd;
	return link;
}

static int lookup_fn(pstm_tx *tx, void *arg)
{
	struct op_ctx *x = arg;
	pstm_off nd;

	find(tx, x->op->key, &nd);
	x->result = nd && pstm_load64(tx, nd) == x->op->key;
	return 0;
}

static int insert_key(pstm_tx *tx, uint64_t k)
{
	pstm_off nd, link = find(tx, k, &nd);

	if (nd && pstm_load64(tx, nd) == k)
		return 0;
	pstm_off fresh = pstm_alloc(tx, 16);
	pstm_store64(tx, fresh, k);
	pstm_store64(tx, fresh + 8, nd);
	pstm_store64(tx, link, fresh);
	return 1;
}

static int insert_fn(pstm_tx *tx, void *arg)
{
	struct op_ctx *x = arg;

	x->result = insert_key(tx, x->op->key);
	return 0;
}

static int delete_fn(pstm_tx *tx, void *arg)
{
	struct op_ctx *x = arg;
	pstm_off nd, link = find(tx, x->op->key, &nd);

	x->result = 0;
	if (!nd || pstm_load64(tx, nd) != x->op->key)
		return 0;
	pstm_store64(tx, link, pstm_load64(tx, nd + 8));
	pstm_free(tx, nd);
	x->result = 1;
	return 0;
}

/* ---- setup ---------------------------------------------------------- */

struct init_ctx {
	const struct bench_cfg *c;
	uint64_t from, to; /* words or keys [from, to) */
};

static int init_root_fn(pstm_tx *tx, void *arg)
{
	struct init_ctx *x = arg;
	pstm_off root = pstm_root(tx, ROOT_BYTES);
	uint64_t nb = bench_nbuckets(x->c->size);
	uint64_t words = x->c->workload == WL_INTSET ? nb : x->c->size;

	pstm_store64(tx, root, pstm_alloc(tx, words * 8));
	pstm_store64(tx, root + 8, x->c->size);
	pstm_store64(tx, root + 16, nb);
	return 0;
}

static int load_root_fn(pstm_tx *tx, void *arg)
{
	pstm_off root = pstm_root(tx, ROOT_BYTES);

	(void)arg;
	data = pstm_load64(tx, root);
	n = pstm_load64(tx, root + 8);
	nbuckets = pstm_load64(tx, root + 16);
	return 0;
}

static int init_words_fn(pstm_tx *tx, void *arg)
{
	struct init_ctx *x = arg;
	uint64_t v = x->c->workload == WL_INTSET ? 0 : BENCH_INIT_BALANCE;

	for (uint64_t i = x->from; i < x->to; i++)
		pstm_store64(tx, data + 8 * i, v);
	return 0;
}

static int init_keys_fn(pstm_tx *tx, void *arg)
{
	struct init_ctx *x = arg;

	for (uint64_t k = x->from; k < x->to; k++)
		if (bench_key_initially_present(k))
			insert_key(tx, k);
	return 0;
}

static int pstm_setup(const struct bench_cfg *c)
{
	struct pstm_create_opts o = { .size_bytes = REGION_BYTES, .replace = 1 };
	struct init_ctx x = { .c = c };
	uint64_t words;
	int rc;

	if (is_relaxed(c)) {
		o.durability = PSTM_RELAXED;
		o.flush_ms = RELAXED_FLUSH_MS;
	}
	set_uri(c);
	if ((rc = pstm_create(uri, &o, &r)) != 0)
		return fail(uri, rc);
	if ((rc = pstm_atomic(r, init_root_fn, &x)) != 0 ||
	    (rc = pstm_atomic(r, load_root_fn, NULL)) != 0)
		goto out;
	words = c->workload == WL_INTSET ? nbuckets : n;
	for (x.from = 0; x.from < words && rc == 0; x.from = x.to) {
		x.to = x.from + INIT_WORDS < words ? x.from + INIT_WORDS : words;
		rc = pstm_atomic(r, init_words_fn, &x);
	}
	for (x.from = 0; c->workload == WL_INTSET && x.from < n && rc == 0;
	     x.from = x.to) {
		x.to = x.from + INIT_KEYS < n ? x.from + INIT_KEYS : n;
		rc = pstm_atomic(r, init_keys_fn, &x);
	}
	if (rc == 0 && is_relaxed(c))
		rc = pstm_sync(r);
out:
	if (rc != 0)
		fail("populate", rc);
	pstm_close(r);
	r = NULL;
	return rc ? -1 : 0;
}

static int pstm_attach(const struct bench_cfg *c)
{
	struct pstm_region_info info;
	int rc;

	set_uri(c);
	if ((rc = pstm_open(uri, &r)) != 0)
		return fail(uri, rc);
	if ((rc = pstm_atomic(r, load_root_fn, NULL)) != 0)
		return fail("root", rc);
	if (n != c->size)
		return bench_fail("attach", "region holds another size");
	if ((rc = pstm_region_info(r, &info)) != 0)
		return fail("pstm_region_info", rc);
	if (info.is_pmem != wants_pmem(c) ||
	    info.durability != expected_durability(c) ||
	    (is_relaxed(c) && info.flush_ms != RELAXED_FLUSH_MS))
		return bench_fail("attach", "region has the wrong durability, "
				  "flush_ms or pmem mode (PMEM_IS_PMEM_FORCE?)");
	return 0;
}

static int pstm_exec(const struct bench_op *op, int64_t *result)
{
	static const pstm_fn fns[] = {
		[OP_TRANSFER] = transfer_fn, [OP_READ] = read_fn,
		[OP_LOOKUP] = lookup_fn,     [OP_INSERT] = insert_fn,
		[OP_DELETE] = delete_fn,
	};
	struct op_ctx x = { .op = op };
	int rc = pstm_atomic(r, fns[op->kind], &x);

	if (rc != 0)
		return fail("pstm_atomic", rc);
	*result = x.result;
	return 0;
}

/* ---- check ------------------------------------------------------------ */

struct check_ctx {
	uint64_t from, to;  /* words or buckets [from, to) */
	int64_t total;
	uint64_t count;
	int bad;
};

static int sum_fn(pstm_tx *tx, void *arg)
{
	struct check_ctx *x = arg;

	x->total = 0;
	for (uint64_t i = x->from; i < x->to; i++)
		x->total += (int64_t)pstm_load64(tx, data + 8 * i);
	return 0;
}

static int chains_fn(pstm_tx *tx, void *arg)
{
	struct check_ctx *x = arg;

	x->count = 0;
	x->bad = 0;
	for (uint64_t b = x->from; b < x->to; b++) {
		uint64_t prev = 0, steps = 0;
		for (pstm_off nd = pstm_load64(tx, data + 8 * b); nd;
		     nd = pstm_load64(tx, nd + 8)) {
			uint64_t k = pstm_load64(tx, nd);
			if (k >= n || k % nbuckets != b ||
			    (steps++ > 0 && k <= prev) || steps > n) {
				x->bad = 1;
				return 0;
			}
			prev = k;
			x->count++;
		}
	}
	return 0;
}

static int pstm_check(const struct bench_cfg *c, struct bench_state *st)
{
	int intset = c->workload == WL_INTSET;
	uint64_t words = intset ? nbuckets : n, step = intset ? 256 : CHECK_WORDS;
	struct check_ctx x;
	int rc;

	st->total = 0;
	st->count = 0;
	/* pstm-relaxed: make all commits durable before reporting (not timed) */
	if (is_relaxed(c) && (rc = pstm_sync(r)) != 0)
		return fail("pstm_sync", rc);
	for (x.from = 0; x.from < words; x.from = x.to) {
		x.to = x.from + step < words ? x.from + step : words;
		rc = pstm_atomic(r, intset ? chains_fn : sum_fn, &x);
		if (rc != 0)
			return fail("check", rc);
		if (intset && x.bad)
			return bench_fail("intset", "corrupt chain");
		st->total += intset ? 0 : x.total;
		st->count += intset ? x.count : 0;
	}
	return 0;
}

static void pstm_detach(void)
{
	if (r)
		pstm_close(r);
	r = NULL;
}

static void pstm_teardown(const struct bench_cfg *c)
{
	set_uri(c);
	pstm_unlink(uri);
}

BENCH_SYSTEM(pstm_shm, "pstm-shm", pstm);
BENCH_SYSTEM(pstm_file, "pstm-file", pstm);
BENCH_SYSTEM(pstm_pmem, "pstm-pmem", pstm);
BENCH_SYSTEM(pstm_relaxed, "pstm-relaxed", pstm);

const struct bench_system *const bench_systems[] = {
	&pstm_shm, &pstm_file, &pstm_pmem, &pstm_relaxed, NULL
};
