/*
 * sys_pmemobj.c - PMDK libpmemobj baseline (one process: pmemobj has no
 * isolation between processes).  Updates run as pmemobj transactions
 * (undo-logged ranges, transactional alloc/free of set nodes); reads and
 * lookups read the pool directly, which is how a single-process pmemobj
 * user reads.  The pool lives in /dev/shm with PMEM_IS_PMEM_FORCE=1, so
 * flushes are cache-line writebacks rather than msync.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpmemobj.h>

#include "driver.h"

#define POOL_BYTES (256ull << 20)
#define LAYOUT "pstm-bench"
#define TYPE_ACCT 1
#define TYPE_BUCKETS 2
#define TYPE_NODE 3
#define INIT_BATCH 1000

struct root {
	uint64_t n, nbuckets;
	PMEMoid acct;    /* int64_t[n] */
	PMEMoid buckets; /* PMEMoid[nbuckets], chain heads */
};

struct pnode {
	uint64_t key;
	PMEMoid next;
};

static PMEMobjpool *pop;
static struct root *rt;
static int64_t *bal;  /* the accounts */
static PMEMoid *buckets;
static char path[256];

static int fail(const char *what)
{
	return bench_fail(what, pmemobj_errormsg());
}

static void set_path(void)
{
	setenv("PMEM_IS_PMEM_FORCE", "1", 1); /* before the pool is mapped */
	bench_path(path, sizeof(path), "/dev/shm", "pmemobj", ".pool");
}

static struct pnode *node(PMEMoid o)
{
	return pmemobj_direct(o);
}

/* End the current transaction: commit if nothing failed. */
static int tx_finish(int rc)
{
	if (pmemobj_tx_stage() == TX_STAGE_WORK) {
		if (rc)
			pmemobj_tx_abort(ECANCELED);
		else
			pmemobj_tx_commit();
	}
	return pmemobj_tx_end() || rc ? -1 : 0;
}

/* Chain link where k is or would be. */
static PMEMoid *find(uint64_t k)
{
	PMEMoid *link = &buckets[k % rt->nbuckets];

	while (!OID_IS_NULL(*link) && node(*link)->key < k)
		link = &node(*link)->next;
	return link;
}

static int set_insert(uint64_t k, int64_t *result)
{
	PMEMoid *link = find(k), o;
	int rc = 0;

	*result = 0;
	if (!OID_IS_NULL(*link) && node(*link)->key == k)
		return 0;
	if (pmemobj_tx_begin(pop, NULL, TX_PARAM_NONE) != 0)
		return fail("pmemobj_tx_begin");
	o = pmemobj_tx_alloc(sizeof(struct pnode), TYPE_NODE);
	if (OID_IS_NULL(o) || pmemobj_tx_add_range_direct(link, sizeof(*link)))
		rc = -1;
	if (rc == 0) {
		node(o)->key = k; /* fresh in this tx: no snapshot needed */
		node(o)->next = *link;
		*link = o;
	}
	*result = rc == 0;
	return tx_finish(rc) ? fail("insert") : 0;
}

static int set_delete(uint64_t k, int64_t *result)
{
	PMEMoid *link = find(k), o = *link;
	int rc = 0;

	*result = 0;
	if (OID_IS_NULL(o) || node(o)->key != k)
		return 0;
	if (pmemobj_tx_begin(pop, NULL, TX_PARAM_NONE) != 0)
		return fail("pmemobj_tx_begin");
	if (pmemobj_tx_add_range_direct(link, sizeof(*link)) != 0 ||
	    pmemobj_tx_free(o) != 0)
		rc = -1;
	else
		*link = node(o)->next;
	*result = rc == 0;
	return tx_finish(rc) ? fail("delete") : 0;
}

static int acct_ctor(PMEMobjpool *p, void *ptr, void *arg)
{
	uint64_t n = *(uint64_t *)arg;
	int64_t *a = ptr;

	for (uint64_t i = 0; i < n; i++)
		a[i] = BENCH_INIT_BALANCE;
	pmemobj_persist(p, a, n * sizeof(*a));
	return 0;
}

static int map_pool(void)
{
	rt = pmemobj_direct(pmemobj_root(pop, sizeof(struct root)));
	if (!rt)
		return fail("pmemobj_root");
	bal = pmemobj_direct(rt->acct);
	buckets = pmemobj_direct(rt->buckets);
	return 0;
}

static int pobj_setup(const struct bench_cfg *c)
{
	PMEMoid root;
	uint64_t n = c->size;
	int64_t res;
	int rc = 0;

	set_path();
	unlink(path);
	pop = pmemobj_create(path, LAYOUT, POOL_BYTES, 0600);
	if (!pop)
		return fail(path);
	root = pmemobj_root(pop, sizeof(struct root));
	rt = pmemobj_direct(root);
	rt->n = n;
	rt->nbuckets = bench_nbuckets(n);
	pmemobj_persist(pop, rt, sizeof(*rt));
	if (c->workload != WL_INTSET) {
		if (pmemobj_alloc(pop, &rt->acct, n * sizeof(int64_t),
				  TYPE_ACCT, acct_ctor, &n) != 0)
			rc = fail("alloc accounts");
	} else if (pmemobj_zalloc(pop, &rt->buckets,
				  rt->nbuckets * sizeof(PMEMoid),
				  TYPE_BUCKETS) != 0) {
		rc = fail("alloc buckets");
	}
	if (rc == 0 && map_pool() != 0)
		rc = -1;
	/* initial keys, INIT_BATCH inserts per (outer) transaction */
	for (uint64_t k = 0; rc == 0 && c->workload == WL_INTSET && k < n;) {
		if (pmemobj_tx_begin(pop, NULL, TX_PARAM_NONE) != 0)
			return fail("pmemobj_tx_begin");
		for (uint64_t end = k + INIT_BATCH; k < end && k < n; k++)
			if (bench_key_initially_present(k) &&
			    set_insert(k, &res) != 0)
				rc = -1;
		rc = tx_finish(rc);
	}
	pmemobj_close(pop);
	pop = NULL;
	return rc;
}

static int pobj_attach(const struct bench_cfg *c)
{
	(void)c;
	set_path();
	pop = pmemobj_open(path, LAYOUT);
	if (!pop)
		return fail(path);
	return map_pool();
}

static int pobj_exec(const struct bench_op *op, int64_t *result)
{
	PMEMoid *link;
	int64_t sum = 0;
	int rc = 0;

	switch (op->kind) {
	case OP_TRANSFER:
		if (pmemobj_tx_begin(pop, NULL, TX_PARAM_NONE) != 0)
			return fail("pmemobj_tx_begin");
		if (pmemobj_tx_add_range_direct(&bal[op->from], 8) != 0 ||
		    pmemobj_tx_add_range_direct(&bal[op->to], 8) != 0) {
			rc = -1;
		} else {
			bal[op->from] -= op->amount;
			bal[op->to] += op->amount;
		}
		return tx_finish(rc) ? fail("transfer") : 0;
	case OP_READ:
		for (int i = 0; i < BENCH_READ_N; i++)
			sum += bal[op->accounts[i]];
		*result = sum;
		return 0;
	case OP_LOOKUP:
		link = find(op->key);
		*result = !OID_IS_NULL(*link) && node(*link)->key == op->key;
		return 0;
	case OP_INSERT:
		return set_insert(op->key, result);
	case OP_DELETE:
		return set_delete(op->key, result);
	}
	return -1;
}

static int pobj_check(const struct bench_cfg *c, struct bench_state *st)
{
	uint64_t linked = 0, objs = 0;
	PMEMoid o;

	st->total = 0;
	st->count = 0;
	if (rt->n != c->size)
		return bench_fail("check", "wrong pool");
	if (c->workload != WL_INTSET) {
		for (uint64_t i = 0; i < rt->n; i++)
			st->total += bal[i];
		return 0;
	}
	for (uint64_t b = 0; b < rt->nbuckets; b++) {
		uint64_t prev = 0, steps = 0;
		for (o = buckets[b]; !OID_IS_NULL(o); o = node(o)->next) {
			uint64_t k = node(o)->key;
			if (k >= rt->n || k % rt->nbuckets != b ||
			    (steps++ > 0 && k <= prev) || steps > rt->n)
				return bench_fail("intset", "corrupt chain");
			prev = k;
			linked++;
		}
	}
	POBJ_FOREACH(pop, o)
		objs += pmemobj_type_num(o) == TYPE_NODE;
	if (objs != linked)
		return bench_fail("intset", "nodes leaked");
	st->count = linked;
	return 0;
}

static void pobj_detach(void)
{
	if (pop)
		pmemobj_close(pop);
	pop = NULL;
}

static void pobj_teardown(const struct bench_cfg *c)
{
	(void)c;
	set_path();
	unlink(path);
}

static const struct bench_system pmemobj_sys = {
	.name = "pmemobj",
	.max_procs = 1,
	.setup = pobj_setup,
	.attach = pobj_attach,
	.exec = pobj_exec,
	.check = pobj_check,
	.detach = pobj_detach,
	.teardown = pobj_teardown,
};

const struct bench_system *const bench_systems[] = { &pmemobj_sys, NULL };
