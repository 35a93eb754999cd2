/*
 * test_run.c - the add/run model: transactions that add children run
 * exactly once across threads and processes, an aborted transaction's
 * adds never run, an error cancels the pending set and comes back from
 * pstm_run, and misuse is refused.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

enum { N = 10000 };

struct tree {
	pstm_off base; /* N counters, then one hot counter */
	uint64_t n;
};

struct node {
	struct tree *t;
	uint64_t id;
};

static struct node nodes[N];

/* Node i bumps its own counter and a hot shared one (forcing conflicts
 * and re-execution), then adds children 2i+1 and 2i+2. */
static int tree_fn(pstm_tx *tx, void *arg)
{
	struct node *n = arg;
	pstm_off mine = n->t->base + 8 * n->id;
	pstm_off hot = n->t->base + 8 * N;
	pstm_store64(tx, mine, pstm_load64(tx, mine) + 1);
	pstm_store64(tx, hot, pstm_load64(tx, hot) + 1);
	for (uint64_t c = 2 * n->id + 1; c <= 2 * n->id + 2; c++)
		if (c < n->t->n)
			pstm_tx_add(tx, tree_fn, &nodes[c]);
	return 0;
}

static int alloc_fn(pstm_tx *tx, void *arg)
{
	pstm_off *out = arg;
	pstm_off root = pstm_root(tx, 64);
	pstm_off b = pstm_load64(tx, root);
	if (!b) {
		b = pstm_alloc(tx, 8 * (2 * N + 2));
		pstm_store64(tx, root, b);
	}
	*out = b;
	return 0;
}

struct fill {
	pstm_off base;
	uint64_t from, to;
};

static int zero_fn(pstm_tx *tx, void *arg)
{
	struct fill *f = arg;
	for (uint64_t i = f->from; i < f->to; i++)
		pstm_store64(tx, f->base + 8 * i, 0);
	return 0;
}

static const char *setup(pstm_off *base)
{
	const char *uri = strdup(test_shm_uri("run"));
	pstm_region *r;
	assert_pstm_ok(pstm_create(uri, NULL, &r));
	assert_pstm_ok(pstm_atomic(r, alloc_fn, base));
	for (uint64_t i = 0; i < 2 * N + 2; i += 2000) {
		struct fill f = {*base, i, i + 2000 < 2 * N + 2 ? i + 2000 : 2 * N + 2};
		assert_pstm_ok(pstm_atomic(r, zero_fn, &f));
	}
	pstm_close(r);
	return uri;
}

struct child_arg {
	const char *uri;
	pstm_off base;
};

/* Each process runs its own tree of N nodes on 3 threads; process p's
 * counters live at base + p * 8 * (N + 1). */
static int tree_child(void *arg, int p)
{
	struct child_arg *a = arg;
	pstm_region *r;
	struct tree t = {a->base + (uint64_t)p * 8 * (N + 1), N};
	if (pstm_open(a->uri, &r))
		return 2;
	for (uint64_t i = 0; i < N; i++)
		nodes[i] = (struct node){&t, i};
	if (pstm_add(r, tree_fn, &nodes[0]))
		return 3;
	int rc = pstm_run(r, 3);
	if (rc) {
		fprintf(stderr, "run: %s\n", pstm_strerror(rc));
		return 4;
	}
	pstm_close(r);
	return 0;
}

struct check {
	pstm_off base;
	uint64_t bad, hot0, hot1;
};

static int check_fn(pstm_tx *tx, void *arg)
{
	struct check *c = arg;
	c->bad = 0;
	for (int p = 0; p < 2; p++)
		for (uint64_t i = 0; i < N; i++)
			if (pstm_load64(tx, c->base + (uint64_t)p * 8 * (N + 1) + 8 * i) != 1)
				c->bad++;
	c->hot0 = pstm_load64(tx, c->base + 8 * N);
	c->hot1 = pstm_load64(tx, c->base + 8 * (N + 1) + 8 * N);
	return 0;
}

static void test_tree_exactly_once(void **s)
{
	(void)s;
	struct child_arg a;
	a.uri = setup(&a.base);
	test_run_procs(2, tree_child, &a);
	pstm_region *r;
	assert_pstm_ok(pstm_open(a.uri, &r));
	struct check c = {a.base, 0, 0, 0};
	assert_pstm_ok(pstm_atomic(r, check_fn, &c));
	assert_int_equal(c.bad, 0);
	assert_int_equal(c.hot0, N);
	assert_int_equal(c.hot1, N);
	pstm_close(r);
	pstm_unlink(a.uri);
	free((void *)a.uri);
}

/* ------------------------------------------- aborts, errors, misuse */

static atomic_int ran_child, ran_total;

static int child_fn(pstm_tx *tx, void *arg)
{
	(void)tx;
	(void)arg;
	atomic_fetch_add(&ran_child, 1);
	return 0;
}

static int add_then_fail(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_tx_add(tx, child_fn, NULL);
	return 17;
}

static int add_then_bad_offset(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_tx_add(tx, child_fn, NULL);
	pstm_store64(tx, 0, 1); /* ends the transaction: PSTM_ERANGE */
	return 0;
}

struct cnt_arg {
	pstm_off base;
	int fail_at;
	int id;
};

static int counted(pstm_tx *tx, void *arg)
{
	struct cnt_arg *c = arg;
	if (c->id == c->fail_at) {
		pstm_store64(tx, c->base, 999); /* must not become visible */
		return 99;
	}
	pstm_store64(tx, c->base + 8, pstm_load64(tx, c->base + 8) + 1);
	atomic_fetch_add(&ran_total, 1);
	return 0;
}

static int run_inside(pstm_tx *tx, void *arg)
{
	(void)arg;
	return pstm_run(pstm_tx_region(tx), 1) == PSTM_EINTX &&
			       pstm_add(pstm_tx_region(tx), child_fn, NULL) ==
				       PSTM_EINTX
		       ? 0
		       : 1;
}

static int read2(pstm_tx *tx, void *arg)
{
	uint64_t *o = arg;
	o[1] = pstm_load64(tx, o[0]);
	o[2] = pstm_load64(tx, o[0] + 8);
	return 0;
}

struct busy {
	pstm_region *r;
	atomic_int go, done;
	int rc;
};

static int slow_fn(pstm_tx *tx, void *arg)
{
	(void)tx;
	struct busy *b = arg;
	atomic_store(&b->go, 1);
	while (!atomic_load(&b->done))
		usleep(1000);
	return 0;
}

static void *second_run(void *arg)
{
	struct busy *b = arg;
	while (!atomic_load(&b->go))
		usleep(1000);
	b->rc = pstm_run(b->r, 1);
	atomic_store(&b->done, 1);
	return NULL;
}

static void test_abort_error_cancel_misuse(void **s)
{
	(void)s;
	pstm_off base;
	const char *uri = setup(&base);
	pstm_region *r;
	assert_pstm_ok(pstm_open(uri, &r));

	/* a failed transaction's pstm_tx_add never runs */
	atomic_store(&ran_child, 0);
	assert_int_equal(pstm_atomic(r, add_then_fail, NULL), 17);
	assert_int_equal(pstm_atomic(r, add_then_bad_offset, NULL), PSTM_ERANGE);
	assert_pstm_ok(pstm_run(r, 2));
	assert_int_equal(atomic_load(&ran_child), 0);
	assert_pstm_ok(pstm_add(r, add_then_fail, NULL));
	assert_int_equal(pstm_run(r, 2), 17);
	assert_int_equal(atomic_load(&ran_child), 0);

	/* an error cancels the pending ones and comes back from pstm_run */
	static struct cnt_arg cs[1000];
	atomic_store(&ran_total, 0);
	for (int i = 0; i < 1000; i++) {
		cs[i] = (struct cnt_arg){base, 500, i};
		assert_pstm_ok(pstm_add(r, counted, &cs[i]));
	}
	assert_int_equal(pstm_run(r, 1), 99);
	int ran = atomic_load(&ran_total);
	assert_int_equal(ran, 500); /* one worker, FIFO: the 500 before it */
	uint64_t o[3] = {base, 0, 0};
	assert_pstm_ok(pstm_atomic(r, read2, o));
	assert_int_not_equal(o[1], 999);
	assert_int_equal(o[2], (uint64_t)ran);
	/* the rest were cancelled: nothing is pending any more */
	assert_pstm_ok(pstm_run(r, 2));
	assert_int_equal(atomic_load(&ran_total), ran);

	/* misuse */
	assert_int_equal(pstm_run(r, 0), PSTM_EINVAL);
	assert_pstm_ok(pstm_atomic(r, run_inside, NULL));
	struct busy b = {.r = r};
	pthread_t th;
	pthread_create(&th, NULL, second_run, &b);
	assert_pstm_ok(pstm_add(r, slow_fn, &b));
	assert_pstm_ok(pstm_run(r, 1));
	pthread_join(th, NULL);
	assert_int_equal(b.rc, PSTM_EBUSY);

	pstm_close(r);
	pstm_unlink(uri);
	free((void *)uri);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_tree_exactly_once),
	cmocka_unit_test(test_abort_error_cancel_misuse),
};

TEST_MAIN(tests)
