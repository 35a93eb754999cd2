/*
 * test_stm.c - the STM across real processes: exact counters, the bank
 * invariant seen from inside transactions (opacity), read-only
 * transactions that write nothing shared, bounds and log limits, user
 * errors, nesting.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"
#include "region.h"

/* ------------------------------------------------------------ shared */

struct fix {
	const char *uri;
	pstm_off base;   /* data array */
	uint64_t n;      /* words */
};

static int get_root(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	pstm_off root = pstm_root(tx, 64);
	uint64_t b = pstm_load64(tx, root);
	if (!b) {
		b = pstm_alloc(tx, f->n * 8);
		pstm_store64(tx, root, b);
	}
	f->base = b;
	return 0;
}

struct fill {
	struct fix *f;
	uint64_t from, to, val;
};

static int fill_fn(pstm_tx *tx, void *arg)
{
	struct fill *a = arg;
	for (uint64_t i = a->from; i < a->to; i++)
		pstm_store64(tx, a->f->base + 8 * i, a->val);
	return 0;
}

/* Create a region with an n-word array set to val. */
static pstm_region *setup(struct fix *f, uint64_t n, uint64_t val,
			  uint64_t size)
{
	struct pstm_create_opts o = {.size_bytes = size};
	pstm_region *r;
	f->uri = strdup(test_shm_uri("stm"));
	f->n = n;
	assert_pstm_ok(pstm_create(f->uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, get_root, f));
	for (uint64_t i = 0; i < n; i += 1000) {
		struct fill a = {f, i, i + 1000 < n ? i + 1000 : n, val};
		assert_pstm_ok(pstm_atomic(r, fill_fn, &a));
	}
	return r;
}

static void teardown(struct fix *f, pstm_region *r)
{
	if (r)
		pstm_close(r);
	pstm_unlink(f->uri);
	free((void *)f->uri);
}

/* ----------------------------------------------------------- counter */

struct cnt {
	struct fix *f;
	int words;
	int k;
};

static int inc_fn(pstm_tx *tx, void *arg)
{
	struct cnt *c = arg;
	for (int w = 0; w < c->words; w++) {
		pstm_off o = c->f->base + 8 * (uint64_t)w;
		pstm_store64(tx, o, pstm_load64(tx, o) + 1);
	}
	return 0;
}

static void *inc_thread(void *arg)
{
	struct cnt *c = arg;
	pstm_region *r;
	if (pstm_open(c->f->uri, &r))
		return (void *)1;
	for (int i = 0; i < c->k; i++)
		if (pstm_atomic(r, inc_fn, c))
			return (void *)2;
	pstm_close(r);
	return NULL;
}

static int counter_child(void *arg, int i)
{
	(void)i;
	pthread_t th[2];
	void *res;
	int bad = 0;
	for (int t = 0; t < 2; t++)
		pthread_create(&th[t], NULL, inc_thread, arg);
	for (int t = 0; t < 2; t++) {
		pthread_join(th[t], &res);
		bad |= res != NULL;
	}
	return bad;
}

static int read_words(pstm_tx *tx, void *arg)
{
	struct fix *f = ((void **)arg)[0];
	uint64_t *out = ((void **)arg)[1];
	for (uint64_t i = 0; i < f->n; i++)
		out[i] = pstm_load64(tx, f->base + 8 * i);
	return 0;
}

static void run_counter(int words)
{
	enum { P = 4, T = 2, K = 5000 };
	struct fix f;
	pstm_region *r = setup(&f, 8, 0, 0);
	struct cnt c = {&f, words, K};

	test_run_procs(P, counter_child, &c);
	uint64_t out[8];
	void *a[2] = {&f, out};
	assert_pstm_ok(pstm_atomic(r, read_words, a));
	for (int w = 0; w < 8; w++)
		assert_int_equal(out[w], w < words ? (uint64_t)P * T * K : 0);
	teardown(&f, r);
}

static void test_counter_one_word(void **s) { (void)s; run_counter(1); }
static void test_counter_eight_words(void **s) { (void)s; run_counter(8); }

/* -------------------------------------------------------------- bank */

struct bank {
	struct fix *f;
	uint64_t seed;
	uint64_t from, to, amount;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int transfer(pstm_tx *tx, void *arg)
{
	struct bank *b = arg;
	pstm_off a = b->f->base + 8 * b->from, c = b->f->base + 8 * b->to;
	uint64_t va = pstm_load64(tx, a);
	if (va < b->amount)
		return 0;
	pstm_store64(tx, a, va - b->amount);
	pstm_store64(tx, c, pstm_load64(tx, c) + b->amount);
	return 0;
}

struct audit {
	struct fix *f;
	uint64_t expect;
	uint64_t wrong; /* observations of a wrong total, inside a tx */
};

static int audit_fn(pstm_tx *tx, void *arg)
{
	struct audit *a = arg;
	uint64_t sum = 0;
	for (uint64_t i = 0; i < a->f->n; i++)
		sum += pstm_load64(tx, a->f->base + 8 * i);
	/* opacity: even an attempt that is going to abort must never see
	 * a wrong total, so count it here, before commit */
	if (sum != a->expect)
		a->wrong++;
	return 0;
}

static void *bank_thread(void *arg)
{
	struct bank b = *(struct bank *)arg;
	pstm_region *r;
	if (pstm_open(b.f->uri, &r))
		return (void *)1;
	for (int i = 0; i < 20000; i++) {
		b.from = rnd(&b.seed) % b.f->n;
		b.to = rnd(&b.seed) % b.f->n;
		b.amount = rnd(&b.seed) % 50;
		if (pstm_atomic(r, transfer, &b))
			return (void *)2;
	}
	pstm_close(r);
	return NULL;
}

static int bank_child(void *arg, int i)
{
	pthread_t th[2];
	struct bank b[2];
	void *res;
	int bad = 0;
	for (int t = 0; t < 2; t++) {
		b[t] = *(struct bank *)arg;
		b[t].seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i * 2 + t + 1);
		pthread_create(&th[t], NULL, bank_thread, &b[t]);
	}
	for (int t = 0; t < 2; t++) {
		pthread_join(th[t], &res);
		bad |= res != NULL;
	}
	return bad;
}

struct auditor_arg {
	struct fix *f;
	uint64_t expect;
	int rounds;
};

static int auditor_child(void *arg, int i)
{
	(void)i;
	struct auditor_arg *aa = arg;
	struct audit a = {aa->f, aa->expect, 0};
	pstm_region *r;
	if (pstm_open(aa->f->uri, &r))
		return 10;
	/* every other audit read-only: those read through commits past
	 * their commit point and read the old values before it (lib/
	 * lockwait.c), the others wait; both must see the exact total */
	for (int k = 0; k < aa->rounds; k++)
		if ((k & 1 ? pstm_atomic_ro : pstm_atomic)(r, audit_fn, &a))
			return 11;
	pstm_close(r);
	if (a.wrong) {
		fprintf(stderr, "auditor saw %llu wrong totals\n",
			(unsigned long long)a.wrong);
		return 12;
	}
	return 0;
}

static void run_bank(uint64_t n, int audit_rounds, uint64_t size)
{
	enum { P = 4 };
	struct fix f;
	pstm_region *r = setup(&f, n, 1000, size);
	struct bank b = {.f = &f};
	struct auditor_arg aa = {&f, n * 1000, audit_rounds};
	pid_t pids[P + 1];

	for (int p = 0; p < P; p++)
		pids[p] = test_spawn(bank_child, &b, p);
	pids[P] = test_spawn(auditor_child, &aa, 0);
	for (int p = 0; p <= P; p++)
		assert_int_equal(test_wait(pids[p]), 0);
	struct audit a = {&f, n * 1000, 0};
	assert_pstm_ok(pstm_atomic(r, audit_fn, &a));
	assert_int_equal(a.wrong, 0);
	struct pstm_stats st;
	assert_pstm_ok(pstm_stats_get(r, &st));
	teardown(&f, r);
}

static void test_bank_64(void **s) { (void)s; run_bank(64, 3000, 0); }
static void test_bank_100k(void **s) { (void)s; run_bank(100000, 20, 0); }

/* ---------------------------------------------------- read-only txs */

static int ro_fn(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	uint64_t s = 0;
	for (int i = 0; i < 8; i++)
		s += pstm_load64(tx, f->base + 8 * (uint64_t)i);
	return s == 8 * 7 ? 0 : 5;
}

static int ro_child(void *arg, int i)
{
	(void)i;
	struct fix *f = arg;
	struct pstm_stats st;
	int rc = test_ro_mapping_run(f->uri, ro_fn, f, 10000, 0, &st);
	if (rc)
		return rc;
	return st.commits_ro == 10001 ? 0 : 9;
}

static void test_read_only_writes_nothing(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = setup(&f, 8, 7, 0);
	pid_t p = test_spawn(ro_child, &f, 0);
	assert_int_equal(test_wait(p), 0);
	teardown(&f, r);
}

/* ------------------------------------------------------ bad input */

struct bad {
	int op;
	pstm_off off;
	size_t n;
};

static int bad_fn(pstm_tx *tx, void *arg)
{
	struct bad *b = arg;
	uint8_t buf[64] = {0};
	switch (b->op) {
	case 0: (void)pstm_load64(tx, b->off); break;
	case 1: pstm_store64(tx, b->off, 1); break;
	case 2: pstm_read(tx, b->off, buf, b->n); break;
	case 3: pstm_write(tx, b->off, buf, b->n); break;
	}
	return 0;
}

static void test_out_of_range(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = setup(&f, 8, 0, 0);
	struct pstm_region_info in;
	assert_pstm_ok(pstm_region_info(r, &in));
	pstm_off bads[] = {0, 8, in.heap_off - 8, in.heap_off + in.heap_bytes,
			   in.heap_off + in.heap_bytes - 4, UINT64_MAX - 3,
			   UINT64_MAX};
	for (int op = 0; op < 4; op++)
		for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
			struct bad b = {op, bads[i], 8};
			assert_int_equal(pstm_atomic(r, bad_fn, &b), PSTM_ERANGE);
		}
	/* length that overflows */
	struct bad b = {2, in.heap_off, SIZE_MAX};
	assert_int_equal(pstm_atomic(r, bad_fn, &b), PSTM_ERANGE);
	/* the last word is fine */
	struct bad ok = {1, in.heap_off + in.heap_bytes - 8, 8};
	assert_pstm_ok(pstm_atomic(r, bad_fn, &ok));
	struct bad first = {0, in.heap_off, 8};
	assert_pstm_ok(pstm_atomic(r, bad_fn, &first));
	teardown(&f, r);
}

/* pstm_load64/pstm_store64 at offsets that are not 8-aligned (their one
 * compare sends them the byte-wise way): the bytes of the two words they
 * straddle, in both directions, and the last possible one. */
struct unal {
	pstm_off base, last;
	uint64_t got, got_last;
	int step;
};

static int unal_fn(pstm_tx *tx, void *arg)
{
	struct unal *u = arg;
	if (u->step == 0) {
		pstm_store64(tx, u->base, 0x1122334455667788ull);
		pstm_store64(tx, u->base + 8, 0x99aabbccddeeff00ull);
		pstm_store64(tx, u->base + 19, 0x0102030405060708ull);
		pstm_store64(tx, u->last, 0xa5a5a5a5a5a5a5a5ull);
		/* its own writes, read across a word boundary */
		if (pstm_load64(tx, u->base + 4) != 0xddeeff0011223344ull)
			return PSTM_EINVAL;
	} else {
		u->got = pstm_load64(tx, u->base + 4);
		u->got_last = pstm_load64(tx, u->last);
		uint8_t b[8];
		pstm_read(tx, u->base + 19, b, 8);
		for (int i = 0; i < 8; i++)
			if (b[i] != 8 - i) /* little-endian bytes of the store */
				return PSTM_EINVAL;
	}
	return 0;
}

static void test_unaligned_words(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = setup(&f, 8, 0, 0);
	struct pstm_region_info in;
	assert_pstm_ok(pstm_region_info(r, &in));
	struct unal u = {.base = f.base, .last = in.heap_off + in.heap_bytes - 9};
	assert_pstm_ok(pstm_atomic(r, unal_fn, &u));
	u.step = 1;
	assert_pstm_ok(pstm_atomic(r, unal_fn, &u));
	/* bytes 4..11 of the two words, little-endian */
	assert_true(u.got == 0xddeeff0011223344ull);
	assert_true(u.got_last == 0xa5a5a5a5a5a5a5a5ull);
	/* one byte further and it leaves the heap */
	struct bad b = {0, in.heap_off + in.heap_bytes - 7, 8};
	assert_int_equal(pstm_atomic(r, bad_fn, &b), PSTM_ERANGE);
	b.op = 1;
	assert_int_equal(pstm_atomic(r, bad_fn, &b), PSTM_ERANGE);
	teardown(&f, r);
}

struct big {
	struct fix *f;
	uint64_t words;
};

static int big_fn(pstm_tx *tx, void *arg)
{
	struct big *b = arg;
	for (uint64_t i = 0; i < b->words; i++)
		pstm_store64(tx, b->f->base + 8 * i, 99);
	return 0;
}

/* Read-your-own-writes across the write set's growth from a linear
 * search to its hash table (past 16 entries, lib/stm.c WS_LINEAR), with overwrites in between. */
static int grow_fn(pstm_tx *tx, void *arg)
{
	struct big *b = arg;
	pstm_off base = b->f->base;
	for (uint64_t i = 0; i < b->words; i++) {
		pstm_store64(tx, base + 8 * i, 1000 + i);
		if (i % 3 == 0) /* overwrite an older one */
			pstm_store64(tx, base + 8 * (i / 2), 5000 + i / 2);
		for (uint64_t k = 0; k <= i; k++) {
			uint64_t want = 1000 + k;
			for (uint64_t j = 0; j <= i; j += 3)
				if (j / 2 == k)
					want = 5000 + k;
			if (pstm_load64(tx, base + 8 * k) != want)
				return 7;
		}
	}
	return 0;
}

static void test_write_set_growth(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = setup(&f, 64, 1, 0);
	struct big b = {&f, 40};
	assert_pstm_ok(pstm_atomic(r, grow_fn, &b));
	uint64_t *out = calloc(f.n, 8);
	void *a[2] = {&f, out};
	assert_pstm_ok(pstm_atomic(r, read_words, a));
	for (uint64_t k = 0; k < 40; k++) {
		uint64_t want = 1000 + k;
		for (uint64_t j = 0; j < 40; j += 3)
			if (j / 2 == k)
				want = 5000 + k;
		assert_int_equal(out[k], want);
	}
	free(out);
	teardown(&f, r);
}

/* More words than the 64 KiB redo log holds (~4000): the record goes to
 * an overflow extent (lib/overflow.c); tests/test_large.c has the rest. */
static void test_log_full(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = setup(&f, 20000, 1, 0);
	struct big b = {&f, 20000};
	assert_pstm_ok(pstm_atomic(r, big_fn, &b));
	uint64_t *out = calloc(f.n, 8);
	void *a[2] = {&f, out};
	assert_pstm_ok(pstm_atomic(r, read_words, a));
	for (uint64_t i = 0; i < f.n; i++)
		assert_int_equal(out[i], 99);
	free(out);
	/* a transaction that fits still commits */
	b.words = 3000;
	assert_pstm_ok(pstm_atomic(r, big_fn, &b));
	teardown(&f, r);
}

/* ------------------------------------------- user errors, nesting */

static int write_then_fail(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	pstm_store64(tx, f->base, 12345);
	return 42;
}

static int inner_add(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	pstm_store64(tx, f->base + 8, pstm_load64(tx, f->base + 8) + 1);
	return 0;
}

static int outer(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	pstm_region *r = pstm_tx_region(tx);
	pstm_store64(tx, f->base, 7);
	if (pstm_atomic(r, inner_add, f))
		return 1;
	/* the inner write is visible to the outer transaction */
	return pstm_load64(tx, f->base + 8) == 1 ? 0 : 2;
}

static int outer_inner_fails(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	pstm_store64(tx, f->base + 16, 5);
	pstm_atomic(pstm_tx_region(tx), write_then_fail, f);
	return 0; /* not reached: the inner failure ends the outer */
}

static void test_user_error_and_nesting(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = setup(&f, 8, 0, 0);
	uint64_t out[8];
	void *a[2] = {&f, out};

	assert_int_equal(pstm_atomic(r, write_then_fail, &f), 42);
	assert_pstm_ok(pstm_atomic(r, read_words, a));
	assert_int_equal(out[0], 0);

	assert_pstm_ok(pstm_atomic(r, outer, &f));
	assert_pstm_ok(pstm_atomic(r, read_words, a));
	assert_int_equal(out[0], 7);
	assert_int_equal(out[1], 1);

	assert_int_equal(pstm_atomic(r, outer_inner_fails, &f), 42);
	assert_pstm_ok(pstm_atomic(r, read_words, a));
	assert_int_equal(out[0], 7);
	assert_int_equal(out[2], 0);

	assert_int_equal(pstm_atomic(r, NULL, NULL), PSTM_EINVAL);
	teardown(&f, r);
}

/* unaligned and byte-granular access, read-your-own-writes */
static int bytes_fn(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	char buf[32];
	pstm_write(tx, f->base + 3, "hello, transactional world", 27);
	pstm_read(tx, f->base + 3, buf, 27);
	if (memcmp(buf, "hello, transactional world", 27))
		return 1;
	pstm_store64(tx, f->base + 41, 0x1122334455667788ull);
	if (pstm_load64(tx, f->base + 41) != 0x1122334455667788ull)
		return 2;
	return 0;
}

static int bytes_check(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	char buf[32];
	pstm_read(tx, f->base + 3, buf, 27);
	if (memcmp(buf, "hello, transactional world", 27))
		return 3;
	if (pstm_load64(tx, f->base + 41) != 0x1122334455667788ull)
		return 4;
	/* bytes around the written range are untouched */
	uint8_t b0;
	pstm_read(tx, f->base + 2, &b0, 1);
	return b0 == 0 ? 0 : 5;
}

static void test_bytes_unaligned(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = setup(&f, 16, 0, 0);
	assert_pstm_ok(pstm_atomic(r, bytes_fn, &f));
	assert_pstm_ok(pstm_atomic(r, bytes_check, &f));
	teardown(&f, r);
}

/* ------------------------------------------------ no starvation */

static _Atomic int *hammer_stop;

/* Reads every account slowly, then moves one unit: any transfer that
 * commits meanwhile invalidates it.  Each attempt outlasts a scheduler
 * time slice, so it conflicts even when the machine interleaves the
 * processes rather than running them in parallel. */
static int long_fn(pstm_tx *tx, void *arg)
{
	struct fix *f = arg;
	uint64_t sum = 0;
	for (uint64_t i = 0; i < f->n; i++) {
		sum += pstm_load64(tx, f->base + 8 * i);
		uint64_t until = test_now_ns() + 250000;
		while (test_now_ns() < until)
			;
	}
	if (sum != f->n * 1000)
		return 9; /* opacity violated */
	uint64_t a = pstm_load64(tx, f->base), b = pstm_load64(tx, f->base + 8);
	if (a > 0) {
		pstm_store64(tx, f->base, a - 1);
		pstm_store64(tx, f->base + 8, b + 1);
	}
	return 0;
}

static int hammer_child(void *arg, int i)
{
	struct fix *f = arg;
	pstm_region *r;
	uint64_t s = 77 + (uint64_t)i;
	if (pstm_open(f->uri, &r))
		return 2;
	while (!atomic_load(hammer_stop)) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		struct bank b = {.f = f, .from = s % f->n, .to = (s >> 20) % f->n,
				 .amount = 1};
		if (pstm_atomic(r, transfer, &b))
			return 3;
	}
	pstm_close(r);
	return 0;
}

/* A transaction that loses every race must still commit (escalation),
 * and the others must go on afterwards. */
static void test_long_transaction_not_starved(void **s)
{
	(void)s;
	enum { P = 3, ROUNDS = 3 };
	struct fix f;
	pstm_region *r = setup(&f, 16, 1000, 0);
	hammer_stop = mmap(NULL, sizeof(*hammer_stop), PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(hammer_stop != MAP_FAILED);
	atomic_store(hammer_stop, 0);
	pid_t pids[P];
	for (int p = 0; p < P; p++)
		pids[p] = test_spawn(hammer_child, &f, p);
	usleep(20000);
	uint64_t t0 = test_now_ns(), worst = 0;
	for (int k = 0; k < ROUNDS; k++) {
		uint64_t a = test_now_ns();
		assert_pstm_ok(pstm_atomic(r, long_fn, &f));
		if (test_now_ns() - a > worst)
			worst = test_now_ns() - a;
	}
	atomic_store(hammer_stop, 1);
	struct pstm_stats st;
	assert_pstm_ok(pstm_stats_get(r, &st));
	print_message("# long transaction: %d commits in %.0f ms beside %d "
		      "hammering processes, worst %.0f ms, %llu escalations, "
		      "%llu aborts\n", ROUNDS, (double)(test_now_ns() - t0) / 1e6, P,
		      (double)worst / 1e6, (unsigned long long)st.escalations,
		      (unsigned long long)(st.aborts_read + st.aborts_validate +
					   st.aborts_lock));
	for (int p = 0; p < P; p++)
		assert_int_equal(test_wait(pids[p]), 0);
	assert_true(worst < 20000000000ull);
	struct audit a = {&f, f.n * 1000, 0};
	assert_pstm_ok(pstm_atomic(r, audit_fn, &a));
	assert_int_equal(a.wrong, 0);
	munmap(hammer_stop, sizeof(*hammer_stop));
	teardown(&f, r);
}

/* More transacting threads than slots: a clear error, and a slot is
 * reusable once its thread exits. */
struct slot_arg {
	pstm_region *r;
	struct fix *f;
	int rc;
	pthread_barrier_t *hold;
};

static void *slot_thread(void *arg)
{
	struct slot_arg *a = arg;
	a->rc = pstm_atomic(a->r, ro_fn, a->f);
	pthread_barrier_wait(a->hold); /* keep the slot until all have tried */
	return NULL;
}

static void test_slot_table_full(void **s)
{
	(void)s;
	struct fix f;
	f.uri = strdup(test_shm_uri("slots"));
	f.n = 8;
	struct pstm_create_opts o = {.max_threads = 3, .max_procs = 1};
	pstm_region *r;
	assert_pstm_ok(pstm_create(f.uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, get_root, &f));
	for (uint64_t i = 0; i < 8; i++) {
		struct fill a = {&f, i, i + 1, 7};
		assert_pstm_ok(pstm_atomic(r, fill_fn, &a));
	}
	/* this thread holds one slot; three more threads want the other two */
	pthread_barrier_t hold;
	pthread_barrier_init(&hold, NULL, 4);
	struct slot_arg a[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		a[i] = (struct slot_arg){r, &f, 1, &hold};
		pthread_create(&th[i], NULL, slot_thread, &a[i]);
	}
	pthread_barrier_wait(&hold);
	int ok = 0, full = 0;
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		ok += a[i].rc == 0;
		full += a[i].rc == PSTM_ESLOTFULL;
	}
	assert_int_equal(ok, 2);
	assert_int_equal(full, 1);
	/* the threads have exited: their slots are free again */
	pthread_barrier_destroy(&hold);
	pthread_barrier_init(&hold, NULL, 1);
	for (int i = 0; i < 2; i++) {
		a[i] = (struct slot_arg){r, &f, 1, &hold};
		pthread_create(&th[i], NULL, slot_thread, &a[i]);
		pthread_join(th[i], NULL);
		assert_pstm_ok(a[i].rc);
	}
	pthread_barrier_destroy(&hold);
	teardown(&f, r);
}

/* A lock naming a slot nobody owns (damage) ends the transaction with a
 * clear error instead of a hang; pstm check names it. */
static void test_orphan_lock_is_an_error(void **s)
{
	(void)s;
	struct fix f;
	pstm_region *r = setup(&f, 8, 5, 0);
	_Atomic uint64_t *o = region_orec(r, f.base);
	uint64_t old = atomic_load(o);
	uint32_t free_slot = r->sb.max_slots - 1; /* never claimed here */
	atomic_store(o, orec_make_locked(old, free_slot));
	uint64_t t0 = test_now_ns();
	assert_int_equal(pstm_atomic(r, ro_fn, &f), PSTM_ECORRUPT);
	assert_true(test_now_ns() - t0 < 2000000000ull);
	atomic_store(o, old); /* repair, so teardown can close cleanly */
	teardown(&f, r);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_counter_one_word),
	cmocka_unit_test(test_counter_eight_words),
	cmocka_unit_test(test_bank_64),
	cmocka_unit_test(test_bank_100k),
	cmocka_unit_test(test_read_only_writes_nothing),
	cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_unaligned_words),
	cmocka_unit_test(test_write_set_growth),
	cmocka_unit_test(test_log_full),
	cmocka_unit_test(test_user_error_and_nesting),
	cmocka_unit_test(test_bytes_unaligned),
	cmocka_unit_test(test_slot_table_full),
	cmocka_unit_test(test_long_transaction_not_starved),
	cmocka_unit_test(test_orphan_lock_is_an_error),
};

TEST_MAIN(tests)
