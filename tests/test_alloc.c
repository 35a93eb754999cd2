/*
 * test_alloc.c - the allocator: alignment and separation, reuse only after
 * commit, nothing leaked by aborted or failed transactions, exhaustion
 * (PSTM_EHEAPFULL leaves the heap as it was; other slots' cached memory is
 * still found), a 4-process fuzz with stamped blocks, processes killed at
 * every commit crash point in allocation-heavy transactions, and the
 * absence of conflicts between allocating processes.  After each, the
 * offline check (alloc_check) must find the heap clean and account for
 * every block.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc_check.h"
#include "helpers.h"
#include "region.h"

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static pstm_region *make(const char **uri, uint64_t size)
{
	struct pstm_create_opts o = {.size_bytes = size};
	pstm_region *r;
	*uri = strdup(test_shm_uri("alloc"));
	assert_pstm_ok(pstm_create(*uri, &o, &r));
	return r;
}

static void drop(const char *uri, pstm_region *r)
{
	if (r)
		pstm_close(r);
	pstm_unlink(uri);
	free((void *)uri);
}

/* alloc_check must be clean; returns the report. */
static struct alloc_report check_clean(pstm_region *r)
{
	struct alloc_report rep;
	int rc = alloc_check(r, &rep);
	if (rc)
		print_error("alloc_check: %llu problems: %s\n",
			    (unsigned long long)rep.problems, rep.first);
	assert_int_equal(rc, 0);
	assert_int_equal(rep.problems, 0);
	return rep;
}

/* ------------------------------------------------------------ basics */

enum { NB = 400 };
struct many {
	pstm_off off[NB];
	size_t n[NB];
	int count;
};

static size_t basic_size(int i)
{
	return i < 300 ? (size_t)i + 1 : i < 390 ? (size_t)(i - 299) * 97 : (size_t)(i - 389) * 30000;
}

static int alloc_many(pstm_tx *tx, void *arg)
{
	struct many *m = arg;
	for (int i = 0; i < m->count; i++) {
		m->off[i] = pstm_alloc(tx, m->n[i]);
		/* first and last byte are ours */
		uint8_t a = (uint8_t)i;
		pstm_write(tx, m->off[i], &a, 1);
		pstm_write(tx, m->off[i] + m->n[i] - 1, &a, 1);
	}
	return 0;
}

static int free_many(pstm_tx *tx, void *arg)
{
	struct many *m = arg;
	for (int i = 0; i < m->count; i++)
		pstm_free(tx, m->off[i]);
	return 0;
}

static int free_one_fn(pstm_tx *tx, void *arg)
{
	pstm_free(tx, *(pstm_off *)arg);
	return 0;
}

static void free_one(pstm_region *r, pstm_off off)
{
	assert_pstm_ok(pstm_atomic(r, free_one_fn, &off));
}

static int cmp_idx_off(const void *a, const void *b, void *m_)
{
	const struct many *m = m_;
	pstm_off x = m->off[*(const int *)a], y = m->off[*(const int *)b];
	return x < y ? -1 : x > y;
}

static void test_basics(void **s)
{
	(void)s;
	const char *uri;
	pstm_region *r = make(&uri, 32 << 20);
	static struct many m;
	int idx[NB];

	m.count = 0;
	for (int i = 0; i < NB; i++)
		m.n[m.count++] = basic_size(i);
	/* several transactions: the log holds ~4000 words */
	for (int from = 0; from < NB; from += 100) {
		struct many part;
		part.count = 100;
		memcpy(part.n, m.n + from, sizeof(size_t) * 100);
		assert_pstm_ok(pstm_atomic(r, alloc_many, &part));
		memcpy(m.off + from, part.off, sizeof(pstm_off) * 100);
	}
	for (int i = 0; i < NB; i++) {
		assert_int_equal(m.off[i] % 16, 0);
		idx[i] = i;
	}
	qsort_r(idx, NB, sizeof(int), cmp_idx_off, &m);
	for (int i = 0; i + 1 < NB; i++) /* no two blocks overlap */
		assert_true(m.off[idx[i]] + m.n[idx[i]] <= m.off[idx[i + 1]]);
	struct alloc_report rep = check_clean(r);
	assert_int_equal(rep.used_blocks, NB);
	assert_true(rep.caches >= 1);
	uint64_t bytes = 0;
	for (int c = 0; c <= ALLOC_NCLASS; c++)
		bytes += rep.cls[c].used_bytes;
	assert_int_equal(bytes, rep.used_bytes);

	/* pstm_alloc(0) is invalid; freeing twice or a non-block too */
	assert_int_equal(pstm_atomic(r, free_many, &m), 0);
	rep = check_clean(r);
	assert_int_equal(rep.used_blocks, 0);
	assert_int_equal(rep.free_blocks + rep.meta_blocks + rep.pad_blocks > 0, 1);
	m.count = 1;
	assert_int_equal(pstm_atomic(r, free_many, &m), PSTM_EINVAL); /* twice */
	m.off[0] += 16;
	assert_int_equal(pstm_atomic(r, free_many, &m), PSTM_EINVAL);
	m.n[0] = 0;
	assert_int_equal(pstm_atomic(r, alloc_many, &m), PSTM_EINVAL);
	check_clean(r);
	drop(uri, r);
}

/* A block freed by a transaction is not handed out by the same one, but
 * is reused after it commits. */
struct reuse {
	size_t n;
	pstm_off a, b;
};

static int alloc_one(pstm_tx *tx, void *arg)
{
	struct reuse *u = arg;
	u->a = pstm_alloc(tx, u->n);
	return 0;
}

static int free_then_alloc(pstm_tx *tx, void *arg)
{
	struct reuse *u = arg;
	pstm_free(tx, u->a);
	u->b = pstm_alloc(tx, u->n);
	return 0;
}

static void test_reuse_after_commit(void **s)
{
	(void)s;
	const char *uri;
	pstm_region *r = make(&uri, 16 << 20);
	static const size_t sizes[] = {8, 100, 4000, 20000, 300000};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
		struct reuse u = {.n = sizes[i]};
		assert_pstm_ok(pstm_atomic(r, alloc_one, &u));
		pstm_off first = u.a;
		assert_pstm_ok(pstm_atomic(r, free_then_alloc, &u));
		assert_true(u.b != first); /* not within the freeing tx */
		pstm_off second = u.b;
		assert_pstm_ok(pstm_atomic(r, alloc_one, &u));
		assert_int_equal(u.a, first); /* after it committed: yes */
		free_one(r, second);
		free_one(r, first);
	}
	struct alloc_report rep = check_clean(r);
	assert_int_equal(rep.used_blocks, 0);
	drop(uri, r);
}

/* Transactions that abort (user), fail (range error) or run out of heap
 * leave the heap exactly as it was. */
struct churn {
	pstm_off *live;
	int nlive;
	int fail_how; /* 1: user abort, 2: PSTM_ERANGE */
	uint64_t seed;
};

static int churn_fn(pstm_tx *tx, void *arg)
{
	struct churn *c = arg;
	uint64_t sd = c->seed;
	for (int i = 0; i < 60; i++) {
		pstm_off o = pstm_alloc(tx, 1 + rnd(&sd) % 3000);
		pstm_store64(tx, o, o);
	}
	for (int i = 0; i < c->nlive; i += 3)
		pstm_free(tx, c->live[i]);
	pstm_alloc(tx, 50000);
	if (c->fail_how == 2)
		pstm_load64(tx, 8); /* outside the heap */
	return c->fail_how ? 1 : 0;
}

static void test_abort_leaks_nothing(void **s)
{
	(void)s;
	const char *uri;
	pstm_region *r = make(&uri, 16 << 20);
	static struct many m;
	pstm_off live[100];

	m.count = 100;
	for (int i = 0; i < 100; i++)
		m.n[i] = 16 + 37 * (size_t)i;
	assert_pstm_ok(pstm_atomic(r, alloc_many, &m));
	memcpy(live, m.off, sizeof(live));
	struct alloc_report before = check_clean(r);
	for (int k = 0; k < 20; k++) {
		struct churn c = {live, 100, 1 + k % 2, 99 + (uint64_t)k};
		int rc = pstm_atomic(r, churn_fn, &c);
		assert_int_equal(rc, c.fail_how == 1 ? 1 : PSTM_ERANGE);
		struct alloc_report after = check_clean(r);
		assert_memory_equal(&before, &after, sizeof(before));
	}
	drop(uri, r);
}

/* ---------------------------------------------------- out of memory */

struct fill {
	size_t n;
	int per_tx;
	pstm_off got[64];
};

static int fill_fn(pstm_tx *tx, void *arg)
{
	struct fill *f = arg;
	for (int i = 0; i < f->per_tx; i++)
		f->got[i] = pstm_alloc(tx, f->n);
	return 0;
}

/* Allocate blocks of n bytes until the heap is full; their count. */
static long fill_up(pstm_region *r, size_t n, int per_tx)
{
	long count = 0;
	for (;;) {
		struct fill f = {n, per_tx, {0}};
		int rc = pstm_atomic(r, fill_fn, &f);
		if (rc == PSTM_EHEAPFULL)
			return count;
		assert_int_equal(rc, 0);
		count += per_tx;
	}
}

static void test_out_of_memory(void **s)
{
	(void)s;
	const char *uri;
	pstm_region *r = make(&uri, 2 << 20);
	struct pstm_region_info in;
	pstm_region_info(r, &in);

	/* a request larger than the heap */
	struct fill big = {in.heap_bytes + 1, 1, {0}};
	assert_int_equal(pstm_atomic(r, fill_fn, &big), PSTM_EHEAPFULL);
	big.n = (size_t)-1;
	assert_int_equal(pstm_atomic(r, fill_fn, &big), PSTM_EHEAPFULL);

	/* fill with mixed sizes; the failing transaction changes nothing */
	long n1 = fill_up(r, 3000, 8);
	long n2 = fill_up(r, 100, 8);
	long n3 = fill_up(r, 24, 1);
	assert_true(n1 > 0);
	print_message("# 2 MiB region: %ld x 3000 B, then %ld x 100 B, %ld x 24 B\n",
		      n1, n2, n3);
	struct alloc_report before = check_clean(r);
	struct fill one = {24, 1, {0}};
	assert_int_equal(pstm_atomic(r, fill_fn, &one), PSTM_EHEAPFULL);
	struct fill many = {4000, 2, {0}};
	assert_int_equal(pstm_atomic(r, fill_fn, &many), PSTM_EHEAPFULL);
	struct alloc_report after = check_clean(r);
	assert_memory_equal(&before, &after, sizeof(before));
	/* nearly everything handed out: at most one chunk per slot unused */
	assert_true(before.free_bytes + before.chunk_bytes < in.heap_bytes / 10);
	drop(uri, r);
}

/* Memory one process freed (kept in its slot's cache) is found by another
 * when the shared pool is empty. */
struct steal_arg {
	const char *uri;
	size_t n;
};

static int hog_child(void *arg, int i)
{
	(void)i;
	struct steal_arg *a = arg;
	pstm_region *r;
	static struct many m;
	if (pstm_open(a->uri, &r))
		return 2;
	/* allocate all there is, 16 per transaction, then free it all */
	static pstm_off all[100000];
	long n = 0;
	for (;;) {
		struct fill f = {a->n, 16, {0}};
		int rc = pstm_atomic(r, fill_fn, &f);
		if (rc == PSTM_EHEAPFULL)
			break;
		if (rc || n + 16 > 100000)
			return 3;
		memcpy(all + n, f.got, sizeof(f.got[0]) * 16);
		n += 16;
	}
	for (long k = 0; k < n; k += 40) { /* a 4 KiB log: ~250 words */
		m.count = (int)(n - k < 40 ? n - k : 40);
		memcpy(m.off, all + k, sizeof(pstm_off) * (size_t)m.count);
		if (pstm_atomic(r, free_many, &m))
			return 4;
	}
	pstm_close(r);
	return n > 100 ? 0 : 5;
}

static void test_other_slots_memory_is_found(void **s)
{
	(void)s;
	const char *uri;
	pstm_region *r = make(&uri, 2 << 20);
	struct steal_arg a = {uri, 200};
	/* the hog fills the heap and frees everything into its cache */
	assert_int_equal(test_wait(test_spawn(hog_child, &a, 0)), 0);
	struct alloc_report rep = check_clean(r);
	assert_int_equal(rep.used_blocks, 0);
	/* we (another slot) get all of it back */
	long got = fill_up(r, 200, 1);
	struct alloc_report full = check_clean(r);
	print_message("# blocks after the other slot freed them: %ld (free left %llu B)\n",
		      got, (unsigned long long)full.free_bytes);
	assert_int_equal((uint64_t)got, full.used_blocks);
	assert_true(full.free_bytes + full.chunk_bytes < rep.heap_bytes / 100);
	drop(uri, r);
}

/* Freed large blocks merge with their free neighbours, in any order, so a
 * heap cut into pieces can give one big block again. */
static void test_large_blocks_coalesce(void **s)
{
	(void)s;
	const char *uri;
	pstm_region *r = make(&uri, 8 << 20);
	enum { MAXN = 400, SZ = 50000 };
	pstm_off offs[MAXN];
	uint64_t sd = 5;
	int N = 0;

	for (;;) { /* until the heap is full of them */
		struct reuse u = {.n = SZ};
		int rc = pstm_atomic(r, alloc_one, &u);
		if (rc == PSTM_EHEAPFULL)
			break;
		assert_int_equal(rc, 0);
		assert_true(N < MAXN);
		offs[N++] = u.a;
	}
	struct reuse big = {.n = (size_t)SZ * (size_t)N * 9 / 10};
	assert_int_equal(pstm_atomic(r, alloc_one, &big), PSTM_EHEAPFULL);
	for (int i = N - 1; i > 0; i--) { /* free in a random order */
		int j = (int)(rnd(&sd) % (uint64_t)(i + 1));
		pstm_off t = offs[i];
		offs[i] = offs[j];
		offs[j] = t;
	}
	for (int i = 0; i < N; i++)
		free_one(r, offs[i]);
	struct alloc_report rep = check_clean(r);
	assert_int_equal(rep.cls[ALLOC_NCLASS].free, 1); /* one block again */
	assert_pstm_ok(pstm_atomic(r, alloc_one, &big));
	check_clean(r);
	drop(uri, r);
}

/* ------------------------------------------------------ stamped fuzz */

/*
 * Shared fixture of the fuzz and crash tests: the root holds one record
 * table per process: NREC entries {offset, size}.  A block is stamped
 * with (offset ^ owner) in every word of its first and last 64 bytes; a
 * transaction checks the stamp before freeing.
 */
enum { P = 4, NREC = 256 };

struct fz {
	const char *uri;
	pstm_off tables[P];
	long txs;
	int heavy;          /* allocation-heavy transactions */
};
static struct fz F;

static int setup_table(pstm_tx *tx, void *arg)
{
	pstm_off root = pstm_root(tx, 8 * P);
	int p = *(int *)arg;
	{
		pstm_off t = pstm_load64(tx, root + 8 * (uint64_t)p);
		if (!t) {
			t = pstm_alloc(tx, 16 * NREC);
			for (int i = 0; i < 2 * NREC; i++)
				pstm_store64(tx, t + 8 * (uint64_t)i, 0);
			pstm_store64(tx, root + 8 * (uint64_t)p, t);
		}
		F.tables[p] = t;
	}
	return 0;
}

static uint64_t stamp_of(pstm_off o, int owner) { return o ^ ((uint64_t)owner << 56) ^ 0x5a5a; }

static void stamp(pstm_tx *tx, pstm_off o, uint64_t n, int owner)
{
	for (uint64_t i = 0; i + 8 <= n && i < 64; i += 8) {
		pstm_store64(tx, o + i, stamp_of(o, owner));
		pstm_store64(tx, o + (n & ~7ull) - 8 - i, stamp_of(o, owner));
	}
}

static bool stamp_ok(pstm_tx *tx, pstm_off o, uint64_t n, int owner)
{
	for (uint64_t i = 0; i + 8 <= n && i < 64; i += 8)
		if (pstm_load64(tx, o + i) != stamp_of(o, owner) ||
		    pstm_load64(tx, o + (n & ~7ull) - 8 - i) != stamp_of(o, owner))
			return false;
	return true;
}

struct step {
	int owner;
	uint64_t seed;
	int ops;
	int abort;
};

#define STAMP_BAD 77

static int step_fn(pstm_tx *tx, void *arg)
{
	struct step *st = arg;
	uint64_t sd = st->seed;
	pstm_off tab = F.tables[st->owner];
	for (int k = 0; k < st->ops; k++) {
		uint64_t i = rnd(&sd) % NREC;
		pstm_off e = tab + 16 * i;
		pstm_off o = pstm_load64(tx, e);
		if (o) {
			uint64_t n = pstm_load64(tx, e + 8);
			if (!stamp_ok(tx, o, n, st->owner))
				return STAMP_BAD;
			pstm_free(tx, o);
			pstm_store64(tx, e, 0);
		} else {
			uint64_t x = rnd(&sd);
			uint64_t n = 8 + (x % 8 == 0 ? x % 40000 : x % 600);
			o = pstm_alloc(tx, n);
			stamp(tx, o, n, st->owner);
			pstm_store64(tx, e, o);
			pstm_store64(tx, e + 8, n);
		}
	}
	return st->abort;
}

static int fuzz_worker(int owner, long txs, int heavy)
{
	pstm_region *r;
	uint64_t sd = 0x9E3779B97F4A7C15ull * (uint64_t)(owner + 1) ^ (uint64_t)getpid();
	int rc = pstm_open(F.uri, &r);
	if (rc)
		return 2;
	for (long t = 0; txs < 0 || t < txs; t++) {
		struct step st = {owner, rnd(&sd), 1 + (int)(rnd(&sd) % (heavy ? 12 : 4)),
				  rnd(&sd) % 10 == 0};
		rc = pstm_atomic(r, step_fn, &st);
		if (rc == STAMP_BAD)
			return 3;
		if (rc != st.abort) {
			fprintf(stderr, "fuzz worker: %s\n", pstm_strerror(rc));
			return 4;
		}
	}
	pstm_close(r);
	return 0;
}

static int fuzz_child(void *arg, int owner)
{
	(void)arg;
	return fuzz_worker(owner, F.txs, F.heavy);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct audit {
	uint64_t live;
	uint64_t blocks[P * NREC][2];
	int bad;
};

static int audit_fn(pstm_tx *tx, void *arg)
{
	struct audit *a = arg;
	a->live = 0;
	a->bad = 0;
	for (int p = 0; p < P; p++)
		for (uint64_t i = 0; i < NREC; i++) {
			pstm_off o = pstm_load64(tx, F.tables[p] + 16 * i);
			if (!o)
				continue;
			uint64_t n = pstm_load64(tx, F.tables[p] + 16 * i + 8);
			if (!stamp_ok(tx, o, n, p))
				a->bad++;
			a->blocks[a->live][0] = o;
			a->blocks[a->live][1] = n;
			a->live++;
		}
	return 0;
}

/* Every recorded block intact and separate; the heap clean; allocated
 * blocks are exactly the recorded ones, the tables and the root. */
static void audit(const char *what)
{
	static struct audit a;
	pstm_region *r;
	assert_pstm_ok(pstm_open(F.uri, &r));
	assert_pstm_ok(pstm_atomic(r, audit_fn, &a));
	assert_int_equal(a.bad, 0);
	qsort(a.blocks, a.live, sizeof(a.blocks[0]), cmp_u64);
	for (uint64_t i = 0; i + 1 < a.live; i++) /* no double allocation */
		assert_true(a.blocks[i][0] + a.blocks[i][1] <= a.blocks[i + 1][0]);
	struct alloc_report rep = check_clean(r);
	if (rep.used_blocks != a.live + P + 1)
		print_error("%s: %llu blocks allocated, %llu accounted for\n", what,
			    (unsigned long long)rep.used_blocks,
			    (unsigned long long)(a.live + P + 1));
	assert_int_equal(rep.used_blocks, a.live + P + 1);
	pstm_close(r);
}

static void fuzz_start(uint64_t size)
{
	pstm_region *r = make(&F.uri, size);
	for (int p = 0; p < P; p++)
		assert_pstm_ok(pstm_atomic(r, setup_table, &p));
	pstm_close(r);
}

static void test_fuzz_four_processes(void **s)
{
	(void)s;
	fuzz_start(64 << 20);
	F.txs = 6000;
	F.heavy = 0;
	test_run_procs(P, fuzz_child, NULL);
	audit("fuzz");
	drop(F.uri, NULL);
}

/* ---------------------------------------------------------- crashes */

static const char *crash_at;

static int victim_child(void *arg, int owner)
{
	(void)arg;
	setenv("PSTM_CRASH_AT", crash_at, 1);
	fuzz_worker(owner, -1, 1);
	return 9; /* never reached its crash point */
}

static void test_killed_while_allocating(void **s)
{
	(void)s;
	static const char *const points[] = {
		"commit.locking", "commit.locked",  "commit.logged",
		"commit.written", "commit.retired", "commit.released"};
	fuzz_start(16 << 20);
	for (size_t i = 0; i < sizeof(points) / sizeof(*points); i++) {
		char at[64];
		snprintf(at, sizeof(at), "%s:%d", points[i], 5 + 13 * (int)i);
		crash_at = at;
		F.txs = 1500;
		F.heavy = 1;
		/* the victim owns table 0; survivors 1 and 2 run beside it */
		test_run_victim(victim_child, fuzz_child, NULL, 2);
		audit(at);
	}
	/* and at random moments */
	uint64_t sd = 4242;
	for (int k = 0; k < 10; k++) {
		F.txs = -1;
		pid_t v = test_spawn(fuzz_child, NULL, 3);
		usleep((useconds_t)(2000 + rnd(&sd) % 20000));
		kill(v, SIGKILL);
		assert_int_equal(test_wait(v), 128 + SIGKILL);
	}
	audit("random kills");
	drop(F.uri, NULL);
}

/* ------------------------------------------------------- concurrency */

struct ring_arg {
	pstm_off old;
	size_t n;
	pstm_off got;
};

static int ring_fn(pstm_tx *tx, void *arg)
{
	struct ring_arg *a = arg;
	if (a->old)
		pstm_free(tx, a->old);
	a->got = pstm_alloc(tx, a->n);
	pstm_store64(tx, a->got, a->n);
	return 0;
}

static _Atomic uint64_t *conflicts; /* shared: aborts, commits */

static int ring_child(void *arg, int id)
{
	(void)arg;
	pstm_region *r;
	pstm_off ring[32] = {0};
	uint64_t sd = 77 + (uint64_t)id;
	struct pstm_stats st;
	if (pstm_open(F.uri, &r))
		return 2;
	for (int k = 0; k < 40000; k++) {
		struct ring_arg a = {ring[k % 32], 1 + rnd(&sd) % 500, 0};
		if (pstm_atomic(r, ring_fn, &a))
			return 3;
		ring[k % 32] = a.got;
	}
	pstm_stats_get(r, &st);
	atomic_fetch_add(&conflicts[0], st.aborts_read + st.aborts_lock + st.aborts_validate);
	atomic_fetch_add(&conflicts[1], st.commits);
	pstm_close(r);
	return 0;
}

/* Two processes allocating and freeing all the time barely conflict:
 * they work in their own slots' caches. */
static void test_allocators_do_not_conflict(void **s)
{
	(void)s;
	pstm_region *r = make(&F.uri, 64 << 20);
	pstm_close(r);
	conflicts = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(conflicts != MAP_FAILED);
	conflicts[0] = conflicts[1] = 0;
	pid_t a = test_spawn(ring_child, NULL, 0), b = test_spawn(ring_child, NULL, 1);
	assert_int_equal(test_wait(a), 0);
	assert_int_equal(test_wait(b), 0);
	print_message("# 2 processes, alloc+free transactions: %llu aborts in %llu commits\n",
		      (unsigned long long)conflicts[0], (unsigned long long)conflicts[1]);
	assert_true(conflicts[0] * 50 < conflicts[1]); /* under 2% */
	r = NULL;
	assert_pstm_ok(pstm_open(F.uri, &r));
	check_clean(r);
	drop(F.uri, r);
	munmap(conflicts, 4096);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_basics),
	cmocka_unit_test(test_reuse_after_commit),
	cmocka_unit_test(test_abort_leaks_nothing),
	cmocka_unit_test(test_out_of_memory),
	cmocka_unit_test(test_other_slots_memory_is_found),
	cmocka_unit_test(test_large_blocks_coalesce),
	cmocka_unit_test(test_fuzz_four_processes),
	cmocka_unit_test(test_killed_while_allocating),
	cmocka_unit_test(test_allocators_do_not_conflict),
};

TEST_MAIN(tests)
