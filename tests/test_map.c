/*
 * test_map.c - the transactional hash map and FIFO queue (pstm_ds.h):
 * 100,000 random operations against a reference model (with aborted
 * transactions and growth), growth to many thousands of keys, four
 * processes on overlapping keys with exact final counts, FIFO order and
 * exactly-once delivery with several producers and consumers, several
 * structures changed atomically in one transaction, type tags, and
 * `pstm dump`.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc_check.h"
#include "helpers.h"
#include "pstm_ds.h"
#include "region.h"

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

struct fix {
	const char *uri;
	pstm_off map, queue;
};
static struct fix F;

/* root: {map, queue} */
static int setup_fn(pstm_tx *tx, void *arg)
{
	size_t *buckets = arg;
	pstm_off root = pstm_root(tx, 16);
	if (!pstm_load64(tx, root)) {
		pstm_store64(tx, root, pstm_map_create(tx, *buckets));
		pstm_store64(tx, root + 8, pstm_queue_create(tx));
	}
	F.map = pstm_load64(tx, root);
	F.queue = pstm_load64(tx, root + 8);
	return 0;
}

static pstm_region *start(uint64_t size, size_t buckets)
{
	struct pstm_create_opts o = {.size_bytes = size};
	pstm_region *r;
	F.uri = strdup(test_shm_uri("map"));
	assert_pstm_ok(pstm_create(F.uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, setup_fn, &buckets));
	return r;
}

static void finish(pstm_region *r)
{
	struct alloc_report rep;
	if (r) {
		int rc = alloc_check(r, &rep);
		if (rc)
			print_error("alloc_check: %s\n", rep.first);
		assert_int_equal(rc, 0);
		pstm_close(r);
	}
	pstm_unlink(F.uri);
	free((void *)F.uri);
}

/* ----------------------------------------------------- model testing */

enum { NKEYS = 3000, MAXV = 300, OPS = 100000 };

struct model {
	bool present[NKEYS];
	uint32_t vseed[NKEYS], vlen[NKEYS];
	uint64_t count;
};
static struct model M;

/* key k's bytes: varied lengths, including empty and long ones */
static size_t key_of(int k, char *buf)
{
	if (k == 0)
		return 0;
	int n = snprintf(buf, 32, "key-%d", k);
	if (k % 97 == 0) { /* a long key */
		memset(buf + n, 'a' + k % 26, 200);
		n += 200;
	}
	return (size_t)n;
}

static void value_of(uint32_t seed, uint32_t len, uint8_t *buf)
{
	uint64_t s = seed | 1ull << 40;
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(rnd(&s) >> 24);
}

struct op {
	int kind; /* 0 put, 1 del, 2 get */
	int k;
	uint32_t vseed, vlen;
};

struct txn {
	struct op ops[8];
	int n;
	int abort;
	/* this attempt's effects, applied to M after commit */
	struct {
		int k;
		bool present;
		uint32_t vseed, vlen;
	} eff[8];
	int neff;
	int bad;
};

/* What the model (plus this transaction's earlier effects) says of k. */
static void expect(const struct txn *t, int k, bool *present, uint32_t *seed,
		   uint32_t *len)
{
	*present = M.present[k];
	*seed = M.vseed[k];
	*len = M.vlen[k];
	for (int i = 0; i < t->neff; i++)
		if (t->eff[i].k == k) {
			*present = t->eff[i].present;
			*seed = t->eff[i].vseed;
			*len = t->eff[i].vlen;
		}
}

static int model_fn(pstm_tx *tx, void *arg)
{
	struct txn *t = arg;
	char key[256];
	uint8_t val[MAXV], want[MAXV];
	t->neff = 0;
	t->bad = 0;
	for (int i = 0; i < t->n; i++) {
		struct op *o = &t->ops[i];
		size_t kl = key_of(o->k, key), vl;
		bool present;
		uint32_t seed, len;
		expect(t, o->k, &present, &seed, &len);
		if (o->kind == 0) {
			value_of(o->vseed, o->vlen, val);
			int rc = pstm_map_put(tx, F.map, key, kl, val, o->vlen);
			if (rc)
				return rc;
			t->eff[t->neff++] = (typeof(t->eff[0])){o->k, true, o->vseed, o->vlen};
		} else if (o->kind == 1) {
			int rc = pstm_map_del(tx, F.map, key, kl);
			if (rc != (present ? 0 : PSTM_ENOENT))
				t->bad++;
			t->eff[t->neff++] = (typeof(t->eff[0])){o->k, false, 0, 0};
		} else {
			/* a short buffer sometimes: the copy is cut, the
			 * length is the whole */
			size_t cap = o->vseed % 5 == 0 ? 7 : MAXV;
			int rc = pstm_map_get(tx, F.map, key, kl, val, cap, &vl);
			if (rc != (present ? 0 : PSTM_ENOENT)) {
				t->bad++;
				continue;
			}
			if (!present)
				continue;
			value_of(seed, len, want);
			if (vl != len || memcmp(val, want, len < cap ? len : cap) != 0)
				t->bad++;
		}
	}
	return t->abort;
}

static void model_apply(const struct txn *t)
{
	for (int i = 0; i < t->neff; i++) {
		int k = t->eff[i].k;
		M.count += (uint64_t)t->eff[i].present - (uint64_t)M.present[k];
		M.present[k] = t->eff[i].present;
		M.vseed[k] = t->eff[i].vseed;
		M.vlen[k] = t->eff[i].vlen;
	}
}

/* Iterate the whole map: every entry is in the model with its value,
 * and the numbers agree. */
struct walk {
	uint64_t seen;
	int bad;
	bool *hit;
};

static int walk_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct walk *w = arg;
	char key[256], ks[256];
	uint8_t want[MAXV];
	int id = 0;
	w->seen++;
	if (kl >= sizeof(ks))
		return w->bad++, 0;
	memcpy(ks, k, kl);
	ks[kl] = 0;
	if (kl > 0 && sscanf(ks, "key-%d", &id) != 1)
		return w->bad++, 0;
	if (id < 0 || id >= NKEYS || !M.present[id] || w->hit[id] ||
	    key_of(id, key) != kl || memcmp(key, k, kl) != 0)
		return w->bad++, 0;
	w->hit[id] = true;
	value_of(M.vseed[id], M.vlen[id], want);
	if (vl != M.vlen[id] || memcmp(v, want, vl) != 0)
		w->bad++;
	return 0;
}

static int whole_fn(pstm_tx *tx, void *arg)
{
	struct walk *w = arg;
	static bool hit[NKEYS];
	memset(hit, 0, sizeof(hit));
	w->seen = 0;
	w->bad = 0;
	w->hit = hit;
	int rc = pstm_map_iter(tx, F.map, walk_cb, w);
	if (rc)
		return rc;
	if (pstm_map_count(tx, F.map) != w->seen)
		w->bad++;
	return 0;
}

static void test_against_model(void **s)
{
	(void)s;
	pstm_region *r = start(64 << 20, 8);
	uint64_t sd = 2024;
	long done = 0, aborted = 0;
	memset(&M, 0, sizeof(M));
	while (done < OPS) {
		struct txn t = {.n = 1 + (int)(rnd(&sd) % 8), .abort = rnd(&sd) % 20 == 0};
		for (int i = 0; i < t.n; i++) {
			uint64_t x = rnd(&sd);
			t.ops[i] = (struct op){x % 100 < 45 ? 0 : x % 100 < 65 ? 1 : 2,
					       (int)((x >> 8) % NKEYS), (uint32_t)(x >> 24),
					       (uint32_t)((x >> 40) % (MAXV + 1))};
		}
		int rc = pstm_atomic(r, model_fn, &t);
		assert_int_equal(t.bad, 0);
		assert_int_equal(rc, t.abort);
		if (rc == 0)
			model_apply(&t);
		else
			aborted++;
		done += t.n;
		if (done / 10000 != (done - t.n) / 10000) {
			struct walk w;
			assert_pstm_ok(pstm_atomic(r, whole_fn, &w));
			assert_int_equal(w.bad, 0);
			assert_int_equal(w.seen, M.count);
		}
	}
	print_message("# %ld operations, %ld transactions rolled back, %llu keys at the end\n",
		      done, aborted, (unsigned long long)M.count);
	finish(r);
}

/* --------------------------------------------------------- growth */

struct bulk {
	int from, to;
	int del;
};

static int bulk_fn(pstm_tx *tx, void *arg)
{
	struct bulk *b = arg;
	char key[32];
	for (int i = b->from; i < b->to; i++) {
		int n = snprintf(key, sizeof(key), "g%d", i);
		uint64_t v = (uint64_t)i * 3;
		int rc = b->del ? pstm_map_del(tx, F.map, key, (size_t)n)
				: pstm_map_put(tx, F.map, key, (size_t)n, &v, 8);
		if (rc)
			return rc; /* never assert inside a transaction */
	}
	return 0;
}

struct probe {
	int n;
	int bad;
	uint64_t count;
};

static int probe_fn(pstm_tx *tx, void *arg)
{
	struct probe *p = arg;
	char key[32];
	p->bad = 0;
	for (int i = 0; i < p->n; i++) {
		int n = snprintf(key, sizeof(key), "g%d", i);
		uint64_t v = 0;
		size_t vl = 0;
		if (pstm_map_get(tx, F.map, key, (size_t)n, &v, 8, &vl) || vl != 8 ||
		    v != (uint64_t)i * 3)
			p->bad++;
	}
	p->count = pstm_map_count(tx, F.map);
	return 0;
}

static int count_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	(void)k, (void)kl, (void)v, (void)vl;
	++*(uint64_t *)arg;
	return 0;
}

static int iter_count_fn(pstm_tx *tx, void *arg)
{
	*(uint64_t *)arg = 0;
	return pstm_map_iter(tx, F.map, count_cb, arg);
}

static void test_growth(void **s)
{
	(void)s;
	enum { N = 40000 };
	pstm_region *r = start(64 << 20, 1);
	for (int i = 0; i < N; i += 100) { /* ~30 log words per put */
		struct bulk b = {i, i + 100, 0};
		assert_pstm_ok(pstm_atomic(r, bulk_fn, &b));
	}
	struct probe p = {N, 0, 0};
	assert_pstm_ok(pstm_atomic(r, probe_fn, &p));
	assert_int_equal(p.bad, 0);
	assert_int_equal(p.count, N);
	uint64_t seen;
	assert_pstm_ok(pstm_atomic(r, iter_count_fn, &seen));
	assert_int_equal(seen, N);
	for (int i = 0; i < N; i += 100) {
		struct bulk b = {i, i + 100, 1};
		assert_pstm_ok(pstm_atomic(r, bulk_fn, &b));
	}
	p.n = 0;
	assert_pstm_ok(pstm_atomic(r, probe_fn, &p));
	assert_int_equal(p.count, 0);
	/* only the root, the map, the queue and at most two tables remain */
	struct alloc_report rep;
	assert_int_equal(alloc_check(r, &rep), 0);
	assert_true(rep.used_blocks <= 5);
	finish(r);
}

/* ------------------------------------------------ four processes */

enum { P = 4, OWN = 300, SHARED = 8, PTX = 2500 };

struct expect_area {
	/* per process: final value (0 = absent) of each own key */
	uint64_t own[P][OWN];
	uint64_t incs[P][SHARED];
};
static struct expect_area *X;

struct conc {
	int p;
	int kind;
	int i, j;
	uint64_t val;
};

/* (runs in the children: errors are returned, not asserted) */
static int conc_fn(pstm_tx *tx, void *arg)
{
	struct conc *c = arg;
	char key[32];
	int n, rc = 0;
	if (c->kind == 0 || c->kind == 2) { /* own key: put */
		n = snprintf(key, sizeof(key), "p%d-%d", c->p, c->i);
		if ((rc = pstm_map_put(tx, F.map, key, (size_t)n, &c->val, 8)))
			return rc;
	}
	if (c->kind == 1) { /* own key: delete (may be absent) */
		n = snprintf(key, sizeof(key), "p%d-%d", c->p, c->i);
		rc = pstm_map_del(tx, F.map, key, (size_t)n);
		if (rc && rc != PSTM_ENOENT)
			return rc;
	}
	if (c->kind >= 2) { /* shared counter += 1 (with the put: atomic) */
		uint64_t v = 0;
		n = snprintf(key, sizeof(key), "ctr-%d", c->j);
		rc = pstm_map_get(tx, F.map, key, (size_t)n, &v, 8, NULL);
		if (rc && rc != PSTM_ENOENT)
			return rc;
		v++;
		return pstm_map_put(tx, F.map, key, (size_t)n, &v, 8);
	}
	return 0;
}

static int conc_child(void *arg, int p)
{
	(void)arg;
	pstm_region *r;
	uint64_t sd = 0x51ed + (uint64_t)p * 7919;
	if (pstm_open(F.uri, &r))
		return 2;
	for (int t = 0; t < PTX; t++) {
		uint64_t x = rnd(&sd);
		struct conc c = {p, (int)(x % 4), (int)((x >> 8) % OWN),
				 (int)((x >> 20) % SHARED), (x >> 24) | 1};
		int rc = pstm_atomic(r, conc_fn, &c);
		if (rc) {
			fprintf(stderr, "conc: %s\n", pstm_strerror(rc));
			return 3;
		}
		if (c.kind == 0 || c.kind == 2)
			X->own[p][c.i] = c.val;
		if (c.kind == 1)
			X->own[p][c.i] = 0;
		if (c.kind >= 2)
			X->incs[p][c.j]++;
	}
	pstm_close(r);
	return 0;
}

struct final {
	int bad;
	uint64_t entries, count;
};

static int final_fn(pstm_tx *tx, void *arg)
{
	struct final *f = arg;
	char key[32];
	f->bad = 0;
	f->entries = 0;
	for (int p = 0; p < P; p++)
		for (int i = 0; i < OWN; i++) {
			int n = snprintf(key, sizeof(key), "p%d-%d", p, i);
			uint64_t v = 0;
			int rc = pstm_map_get(tx, F.map, key, (size_t)n, &v, 8, NULL);
			if (X->own[p][i] ? rc != 0 || v != X->own[p][i] : rc != PSTM_ENOENT)
				f->bad++;
			f->entries += X->own[p][i] != 0;
		}
	for (int j = 0; j < SHARED; j++) {
		int n = snprintf(key, sizeof(key), "ctr-%d", j);
		uint64_t v = 0, want = 0;
		for (int p = 0; p < P; p++)
			want += X->incs[p][j];
		int rc = pstm_map_get(tx, F.map, key, (size_t)n, &v, 8, NULL);
		if (want ? rc != 0 || v != want : rc != PSTM_ENOENT)
			f->bad++;
		f->entries += want != 0;
	}
	f->count = pstm_map_count(tx, F.map);
	return 0;
}

static void test_four_processes(void **s)
{
	(void)s;
	pstm_region *r = start(64 << 20, 16);
	X = mmap(NULL, sizeof(*X), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	assert_true(X != MAP_FAILED);
	memset(X, 0, sizeof(*X));
	test_run_procs(P, conc_child, NULL);
	struct final f;
	assert_pstm_ok(pstm_atomic(r, final_fn, &f));
	assert_int_equal(f.bad, 0);
	assert_int_equal(f.count, f.entries);
	uint64_t seen;
	assert_pstm_ok(pstm_atomic(r, iter_count_fn, &seen));
	assert_int_equal(seen, f.entries);
	struct pstm_stats st;
	pstm_stats_get(r, &st);
	print_message("# %d processes x %d transactions: %llu entries\n", P, PTX,
		      (unsigned long long)f.entries);
	munmap(X, sizeof(*X));
	finish(r);
}

/* ------------------------------------------------------------ queue */

struct qop {
	uint8_t buf[600];
	size_t len, cap;
	int rc;
};

static int push_fn(pstm_tx *tx, void *arg)
{
	struct qop *q = arg;
	return pstm_queue_push(tx, F.queue, q->buf, q->len);
}

static int pop_fn(pstm_tx *tx, void *arg)
{
	struct qop *q = arg;
	q->rc = pstm_queue_pop(tx, F.queue, q->buf, q->cap, &q->len);
	return 0;
}

static void fill_item(int i, uint8_t *b, size_t *len)
{
	*len = (size_t)(i * 37 % 500);
	for (size_t k = 0; k < *len; k++)
		b[k] = (uint8_t)(i + (int)k);
}

static void test_queue_fifo(void **s)
{
	(void)s;
	pstm_region *r = start(16 << 20, 8);
	struct qop q;
	q.cap = sizeof(q.buf);
	assert_pstm_ok(pstm_atomic(r, pop_fn, &q));
	assert_int_equal(q.rc, PSTM_ENOENT);
	for (int i = 0; i < 1000; i++) {
		fill_item(i, q.buf, &q.len);
		assert_pstm_ok(pstm_atomic(r, push_fn, &q));
	}
	for (int i = 0; i < 1000; i++) {
		uint8_t want[600];
		size_t wl;
		fill_item(i, want, &wl);
		if (wl > 0 && i % 10 == 0) { /* too small a buffer: nothing popped */
			q.cap = wl - 1;
			assert_pstm_ok(pstm_atomic(r, pop_fn, &q));
			assert_int_equal(q.rc, PSTM_EINVAL);
			assert_int_equal(q.len, wl);
		}
		q.cap = sizeof(q.buf);
		assert_pstm_ok(pstm_atomic(r, pop_fn, &q));
		assert_int_equal(q.rc, 0);
		assert_int_equal(q.len, wl);
		assert_memory_equal(q.buf, want, wl);
	}
	assert_pstm_ok(pstm_atomic(r, pop_fn, &q));
	assert_int_equal(q.rc, PSTM_ENOENT);
	/* emptied: the next push and pop start afresh */
	for (int k = 0; k < 3; k++) {
		memcpy(q.buf, "again", 5);
		q.len = 5;
		assert_pstm_ok(pstm_atomic(r, push_fn, &q));
		assert_pstm_ok(pstm_atomic(r, pop_fn, &q));
		assert_int_equal(q.rc, 0);
		assert_int_equal(q.len, 5);
		assert_memory_equal(q.buf, "again", 5);
		assert_pstm_ok(pstm_atomic(r, pop_fn, &q));
		assert_int_equal(q.rc, PSTM_ENOENT);
	}
	struct alloc_report rep;
	assert_int_equal(alloc_check(r, &rep), 0);
	assert_int_equal(rep.used_blocks, 4); /* root, map, its table, queue */
	finish(r);
}

enum { PRODUCERS = 2, CONSUMERS = 2, ITEMS = 3000 };

struct qshared {
	_Atomic uint64_t popped;
	_Atomic uint8_t seen[PRODUCERS][ITEMS];
	_Atomic int order_bad;
};
static struct qshared *Q;

static int producer(void *arg, int p)
{
	(void)arg;
	pstm_region *r;
	if (pstm_open(F.uri, &r))
		return 2;
	for (uint32_t i = 0; i < ITEMS; i++) {
		struct qop q;
		uint32_t item[2] = {(uint32_t)p, i};
		memcpy(q.buf, item, 8);
		q.len = 8 + i % 40;
		memset(q.buf + 8, (int)i, q.len - 8);
		int rc = pstm_atomic(r, push_fn, &q);
		if (rc) {
			fprintf(stderr, "producer: %s\n", pstm_strerror(rc));
			return 3;
		}
	}
	pstm_close(r);
	return 0;
}

static int consumer(void *arg, int c)
{
	(void)arg;
	(void)c;
	pstm_region *r;
	int64_t last[PRODUCERS] = {-1, -1};
	uint64_t idle_since = 0;
	if (pstm_open(F.uri, &r))
		return 2;
	while (atomic_load(&Q->popped) < PRODUCERS * ITEMS) {
		struct qop q;
		q.cap = sizeof(q.buf);
		int rc = pstm_atomic(r, pop_fn, &q);
		if (rc) {
			fprintf(stderr, "consumer: %s\n", pstm_strerror(rc));
			return 3;
		}
		if (q.rc == PSTM_ENOENT) { /* give up after 20 s without items */
			if (!idle_since)
				idle_since = test_now_ns();
			else if (test_now_ns() - idle_since > 20000000000ull)
				return 6;
			sched_yield();
			continue;
		}
		idle_since = 0;
		if (q.rc || q.len < 8)
			return 4;
		uint32_t item[2];
		memcpy(item, q.buf, 8);
		if (item[0] >= PRODUCERS || item[1] >= ITEMS || q.len != 8 + item[1] % 40)
			return 5;
		/* FIFO: one consumer sees each producer's items in order */
		if ((int64_t)item[1] <= last[item[0]])
			atomic_fetch_add(&Q->order_bad, 1);
		last[item[0]] = item[1];
		atomic_fetch_add(&Q->seen[item[0]][item[1]], 1);
		atomic_fetch_add(&Q->popped, 1);
	}
	pstm_close(r);
	return 0;
}

static void test_queue_producers_consumers(void **s)
{
	(void)s;
	pstm_region *r = start(32 << 20, 8);
	pid_t pids[PRODUCERS + CONSUMERS];
	Q = mmap(NULL, sizeof(*Q), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	assert_true(Q != MAP_FAILED);
	memset(Q, 0, sizeof(*Q));
	for (int c = 0; c < CONSUMERS; c++)
		pids[PRODUCERS + c] = test_spawn(consumer, NULL, c);
	for (int p = 0; p < PRODUCERS; p++)
		pids[p] = test_spawn(producer, NULL, p);
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
		assert_int_equal(test_wait(pids[i]), 0);
	for (int p = 0; p < PRODUCERS; p++)
		for (int i = 0; i < ITEMS; i++)
			assert_int_equal(Q->seen[p][i], 1); /* exactly once */
	assert_int_equal(Q->order_bad, 0);
	struct qop q;
	q.cap = sizeof(q.buf);
	assert_pstm_ok(pstm_atomic(r, pop_fn, &q));
	assert_int_equal(q.rc, PSTM_ENOENT);
	munmap(Q, sizeof(*Q));
	finish(r);
}

/* ------------------------------------------- composition and types */

struct move {
	int abort;
	int rc_map, rc_q;
};

/* Pop an item from the queue and store it in the map under "moved", all
 * or nothing. */
static int move_fn(pstm_tx *tx, void *arg)
{
	struct move *m = arg;
	uint8_t buf[64];
	size_t len;
	m->rc_q = pstm_queue_pop(tx, F.queue, buf, sizeof(buf), &len);
	if (m->rc_q)
		return 0;
	m->rc_map = pstm_map_put(tx, F.map, "moved", 5, buf, len);
	return m->abort;
}

static int peek_fn(pstm_tx *tx, void *arg)
{
	struct move *m = arg;
	uint8_t buf[64];
	size_t len;
	m->rc_map = pstm_map_get(tx, F.map, "moved", 5, buf, sizeof(buf), &len);
	return 0;
}

static int types_fn(pstm_tx *tx, void *arg)
{
	int *t = arg;
	pstm_off root = pstm_root(tx, 16);
	t[0] = pstm_ds_type(tx, F.map);
	t[1] = pstm_ds_type(tx, F.queue);
	t[2] = pstm_ds_type(tx, root);
	t[3] = pstm_ds_type(tx, F.map + 16);
	t[4] = pstm_ds_type(tx, 8);
	t[5] = pstm_map_put(tx, F.queue, "x", 1, "y", 1);
	t[6] = pstm_queue_push(tx, F.map, "x", 1);
	t[7] = pstm_map_get(tx, root, "x", 1, NULL, 0, NULL);
	return 0;
}

static void test_composition_and_types(void **s)
{
	(void)s;
	pstm_region *r = start(8 << 20, 8);
	struct qop q = {.len = 5};
	memcpy(q.buf, "hello", 5);
	assert_pstm_ok(pstm_atomic(r, push_fn, &q));
	struct move m = {.abort = 1};
	assert_int_equal(pstm_atomic(r, move_fn, &m), 1); /* rolled back */
	assert_pstm_ok(pstm_atomic(r, peek_fn, &m));
	assert_int_equal(m.rc_map, PSTM_ENOENT); /* not in the map ... */
	m.abort = 0;
	assert_pstm_ok(pstm_atomic(r, move_fn, &m)); /* ... still in the queue */
	assert_int_equal(m.rc_q, 0);
	assert_pstm_ok(pstm_atomic(r, peek_fn, &m));
	assert_int_equal(m.rc_map, 0);
	q.cap = sizeof(q.buf);
	assert_pstm_ok(pstm_atomic(r, pop_fn, &q));
	assert_int_equal(q.rc, PSTM_ENOENT);

	int t[8];
	assert_pstm_ok(pstm_atomic(r, types_fn, t));
	assert_int_equal(t[0], PSTM_DS_MAP);
	assert_int_equal(t[1], PSTM_DS_QUEUE);
	assert_int_equal(t[2], PSTM_DS_NONE);
	assert_int_equal(t[3], PSTM_DS_NONE);
	assert_int_equal(t[4], PSTM_DS_NONE);
	assert_int_equal(t[5], PSTM_EINVAL);
	assert_int_equal(t[6], PSTM_EINVAL);
	assert_int_equal(t[7], PSTM_EINVAL);
	finish(r);
}

/* ------------------------------------------------------ pstm dump */

static int fill_fn(pstm_tx *tx, void *arg)
{
	(void)arg;
	int rc = pstm_map_put(tx, F.map, "k1", 2, "v1", 2);
	if (!rc)
		rc = pstm_map_put(tx, F.map, "bin", 3, "\x01\"", 2);
	if (!rc)
		rc = pstm_queue_push(tx, F.queue, "item1", 5);
	return rc;
}

static char *run_dump(const char *opt)
{
	static char out[8192];
	char cmd[512];
	const char *bin = getenv("PSTM_BIN");
	snprintf(cmd, sizeof(cmd), "%s/pstm dump %s %s", bin ? bin : "build", opt, F.uri);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	size_t n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	assert_int_equal(pclose(f), 0);
	return out;
}

static void test_dump(void **s)
{
	(void)s;
	pstm_region *r = start(8 << 20, 8);
	assert_pstm_ok(pstm_atomic(r, fill_fn, NULL));
	char *t = run_dump("");
	assert_non_null(strstr(t, "-> map"));
	assert_non_null(strstr(t, "\"k1\" = \"v1\""));
	assert_non_null(strstr(t, "\"bin\" = \"\\x01\\\"\""));
	assert_non_null(strstr(t, "[0] \"item1\""));
	t = run_dump("--json");
	assert_non_null(strstr(t, "{\"key\":\"k1\",\"value\":\"v1\"}"));
	assert_non_null(strstr(t, "{\"key\":\"bin\",\"value\":\"\\u0001\\\"\"}"));
	assert_non_null(strstr(t, "\"type\":\"queue\",\"items\":[\"item1\"]"));
	assert_non_null(strstr(t, "\"count\":2,"));
	finish(r);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_against_model),
	cmocka_unit_test(test_growth),
	cmocka_unit_test(test_four_processes),
	cmocka_unit_test(test_queue_fifo),
	cmocka_unit_test(test_queue_producers_consumers),
	cmocka_unit_test(test_composition_and_types),
	cmocka_unit_test(test_dump),
};

TEST_MAIN(tests)
