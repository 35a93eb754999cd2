/*
 * kv.c - a key-value store shared by processes, on a pstm hash map.
 *
 *   kv put URI KEY VALUE     set KEY (the region is created if missing)
 *   kv get URI KEY           print its value (exit 1 if absent)
 *   kv del URI KEY           remove it (exit 1 if absent)
 *   kv list URI              every key and value, one per line
 *   kv stress URI [-p PROCS] [-n OPS]
 *                            PROCS processes (default 4) doing OPS
 *                            operations each (default 20000): puts, gets
 *                            and deletes of their own keys, and shared
 *                            counters incremented by all; then checks
 *                            that every key and counter is exact
 *
 * The region's root object holds one word: the map's offset.  Try
 * `pstm dump URI` afterwards.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pstm.h>
#include <pstm_ds.h>

static const char *uri;
static pstm_off map;

/* The map named by the root, created on first use. */
static int find_map(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_off root = pstm_root(tx, 8);
	map = pstm_load64(tx, root);
	if (!map) {
		map = pstm_map_create(tx, 1024);
		pstm_store64(tx, root, map);
	}
	return 0;
}

static pstm_region *open_store(int create)
{
	pstm_region *r;
	int rc = pstm_open(uri, &r);
	if (rc == PSTM_ENOENT && create) {
		rc = pstm_create(uri, NULL, &r);
		if (rc == PSTM_EEXIST) /* someone else just made it */
			rc = pstm_open(uri, &r);
	}
	if (rc == 0 && (rc = pstm_atomic(r, find_map, NULL)) != 0)
		pstm_close(r);
	if (rc) {
		fprintf(stderr, "kv: %s: %s\n", uri, pstm_strerror(rc));
		exit(1);
	}
	return r;
}

/* ------------------------------------------------------ one-shot ops */

struct kv {
	const char *key, *val;
	char buf[4096];
	size_t len;
};

static int put_fn(pstm_tx *tx, void *arg)
{
	struct kv *a = arg;
	return pstm_map_put(tx, map, a->key, strlen(a->key), a->val, strlen(a->val));
}

static int get_fn(pstm_tx *tx, void *arg)
{
	struct kv *a = arg;
	return pstm_map_get(tx, map, a->key, strlen(a->key), a->buf, sizeof(a->buf),
			    &a->len);
}

static int del_fn(pstm_tx *tx, void *arg)
{
	struct kv *a = arg;
	return pstm_map_del(tx, map, a->key, strlen(a->key));
}

/*
 * The listing is collected into a buffer owned by main, outside the
 * transaction, and emptied when an attempt starts: a walk that is rolled
 * back and re-run leaks nothing and prints nothing twice.
 */
struct listing {
	char *text;
	size_t len, cap;
};

static int add_line(struct listing *l, const void *k, size_t kl, const void *v,
		    size_t vl)
{
	size_t need = l->len + kl + vl + 3;
	if (need > l->cap) {
		size_t cap = need * 2;
		char *p = realloc(l->text, cap);
		if (!p)
			return PSTM_ENOMEM;
		l->text = p;
		l->cap = cap;
	}
	memcpy(l->text + l->len, k, kl);
	l->text[l->len + kl] = '\t';
	memcpy(l->text + l->len + kl + 1, v, vl);
	l->len += kl + vl + 1;
	l->text[l->len++] = '\n';
	l->text[l->len] = 0;
	return 0;
}

static int list_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	return add_line(arg, k, kl, v, vl);
}

static int list_fn(pstm_tx *tx, void *arg)
{
	struct listing *l = arg;
	l->len = 0;
	return pstm_map_iter(tx, map, list_cb, l);
}

/* ------------------------------------------------------------ stress */

enum { OWN = 1000, COUNTERS = 8, MAXP = 64 };

struct expect {
	uint32_t own[MAXP][OWN];       /* value stamp of each own key, 0: absent */
	uint64_t incs[MAXP][COUNTERS]; /* increments done */
	uint64_t get_wrong[MAXP];
};
static struct expect *X;

struct sop {
	int p, kind, k;
	uint32_t stamp, want;
	int wrong;
};

static int stress_fn(pstm_tx *tx, void *arg)
{
	struct sop *o = arg;
	char key[32], val[32];
	int kl = snprintf(key, sizeof(key), "p%d-%d", o->p, o->k), rc;
	size_t vl;
	o->wrong = 0;
	switch (o->kind) {
	case 0: /* put */
		vl = (size_t)snprintf(val, sizeof(val), "v%u", o->stamp);
		return pstm_map_put(tx, map, key, (size_t)kl, val, vl);
	case 1: /* delete */
		rc = pstm_map_del(tx, map, key, (size_t)kl);
		return rc == PSTM_ENOENT ? 0 : rc;
	case 2: /* get: must match what we last wrote */
		rc = pstm_map_get(tx, map, key, (size_t)kl, val, sizeof(val) - 1, &vl);
		if (rc == PSTM_ENOENT)
			o->wrong = o->want != 0;
		else if (rc)
			return rc;
		else
			o->wrong = !o->want || vl >= sizeof(val) ||
				   (val[vl] = 0, strtoul(val + 1, NULL, 10) != o->want);
		return 0;
	default: { /* a shared counter, and one own key, together */
		uint64_t n = 0;
		kl = snprintf(key, sizeof(key), "counter-%d", o->k % COUNTERS);
		rc = pstm_map_get(tx, map, key, (size_t)kl, &n, sizeof(n), NULL);
		if (rc && rc != PSTM_ENOENT)
			return rc;
		n++;
		return pstm_map_put(tx, map, key, (size_t)kl, &n, sizeof(n));
	}
	}
}

static int stress_child(int p, long ops)
{
	pstm_region *r = open_store(0);
	uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(p + 1);
	for (long i = 0; i < ops; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		struct sop o = {p, (int)(s % 10 < 4 ? 0 : s % 10 < 6 ? 1 : s % 10 < 8 ? 2 : 3),
				(int)((s >> 16) % OWN), (uint32_t)(s >> 32) | 1, 0, 0};
		o.want = X->own[p][o.k];
		int rc = pstm_atomic(r, stress_fn, &o);
		if (rc) {
			fprintf(stderr, "kv stress: %s\n", pstm_strerror(rc));
			return 1;
		}
		if (o.kind == 0)
			X->own[p][o.k] = o.stamp;
		else if (o.kind == 1)
			X->own[p][o.k] = 0;
		else if (o.kind == 2)
			X->get_wrong[p] += (uint64_t)o.wrong;
		else
			X->incs[p][o.k % COUNTERS]++;
	}
	pstm_close(r);
	return 0;
}

struct verdict {
	int procs;
	uint64_t wrong, expected, count, walked;
};

static int walk_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	(void)k, (void)kl, (void)v, (void)vl;
	((struct verdict *)arg)->walked++;
	return 0;
}

static int verify_fn(pstm_tx *tx, void *arg)
{
	struct verdict *d = arg;
	char key[32], val[32];
	size_t vl;
	d->wrong = d->expected = d->walked = 0;
	for (int p = 0; p < d->procs; p++)
		for (int k = 0; k < OWN; k++) {
			int kl = snprintf(key, sizeof(key), "p%d-%d", p, k);
			int rc = pstm_map_get(tx, map, key, (size_t)kl, val, sizeof(val) - 1, &vl);
			uint32_t want = X->own[p][k];
			if (rc == 0 && vl < sizeof(val)) {
				val[vl] = 0;
				d->wrong += !want || strtoul(val + 1, NULL, 10) != want;
			} else {
				d->wrong += want != 0 || rc != PSTM_ENOENT;
			}
			d->expected += want != 0;
		}
	for (int c = 0; c < COUNTERS; c++) {
		uint64_t n = 0, want = 0;
		int kl = snprintf(key, sizeof(key), "counter-%d", c);
		for (int p = 0; p < d->procs; p++)
			want += X->incs[p][c];
		int rc = pstm_map_get(tx, map, key, (size_t)kl, &n, sizeof(n), NULL);
		d->wrong += want ? rc != 0 || n != want : rc != PSTM_ENOENT;
		d->expected += want != 0;
	}
	d->count = pstm_map_count(tx, map);
	return pstm_map_iter(tx, map, walk_cb, d);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int stress(int procs, long ops)
{
	if (procs < 1 || procs > MAXP || ops < 1) {
		fprintf(stderr, "kv stress: -p 1..%d, -n >= 1\n", MAXP);
		return 2;
	}
	/* a fresh store, so that the final check knows every key */
	pstm_unlink(uri);
	pstm_close(open_store(1));
	X = mmap(NULL, sizeof(*X), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		 -1, 0);
	if (X == MAP_FAILED)
		return 1;
	double t0 = now_s();
	for (int p = 0; p < procs; p++)
		if (fork() == 0)
			_exit(stress_child(p, ops));
	int failed = 0, st;
	for (int p = 0; p < procs; p++)
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			failed = 1;
	double dt = now_s() - t0;
	pstm_region *r = open_store(0);
	struct verdict d = {.procs = procs};
	int rc = pstm_atomic(r, verify_fn, &d);
	pstm_close(r);
	uint64_t get_wrong = 0;
	for (int p = 0; p < procs; p++)
		get_wrong += X->get_wrong[p];
	printf("%d processes x %ld operations: %.0f ops/s; %llu entries (count %llu, "
	       "walked %llu); %llu wrong values, %llu wrong reads\n",
	       procs, ops, (double)procs * (double)ops / dt,
	       (unsigned long long)d.expected, (unsigned long long)d.count,
	       (unsigned long long)d.walked, (unsigned long long)d.wrong,
	       (unsigned long long)get_wrong);
	int ok = !failed && !rc && !d.wrong && !get_wrong && d.count == d.expected &&
		 d.walked == d.expected;
	puts(ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: kv put URI KEY VALUE | get URI KEY | del URI KEY | "
			"list URI | stress URI [-p PROCS] [-n OPS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *cmd = argv[1];
	uri = argv[2];
	struct kv a = {0};
	int rc;

	if (!strcmp(cmd, "stress")) {
		int procs = 4, c;
		long ops = 20000;
		optind = 3;
		while ((c = getopt(argc, argv, "p:n:")) != -1) {
			if (c == 'p')
				procs = atoi(optarg);
			else if (c == 'n')
				ops = atol(optarg);
			else
				return usage();
		}
		return stress(procs, ops);
	}
	if (!strcmp(cmd, "put") && argc == 5) {
		pstm_region *r = open_store(1);
		a.key = argv[3];
		a.val = argv[4];
		rc = pstm_atomic(r, put_fn, &a);
		pstm_close(r);
	} else if ((!strcmp(cmd, "get") || !strcmp(cmd, "del")) && argc == 4) {
		pstm_region *r = open_store(0);
		a.key = argv[3];
		rc = pstm_atomic(r, cmd[0] == 'g' ? get_fn : del_fn, &a);
		pstm_close(r);
		if (rc == 0 && cmd[0] == 'g')
			printf("%.*s\n", (int)(a.len < sizeof(a.buf) ? a.len : sizeof(a.buf)),
			       a.buf);
	} else if (!strcmp(cmd, "list") && argc == 3) {
		pstm_region *r = open_store(0);
		struct listing l = {NULL, 0, 0};
		rc = pstm_atomic(r, list_fn, &l);
		pstm_close(r);
		if (rc == 0 && l.len)
			fwrite(l.text, 1, l.len, stdout);
		free(l.text);
	} else {
		return usage();
	}
	if (rc == PSTM_ENOENT) {
		fprintf(stderr, "kv: %s: no such key\n", a.key);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "kv: %s\n", pstm_strerror(rc));
		return 1;
	}
	return 0;
}
