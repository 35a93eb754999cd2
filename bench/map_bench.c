/*
 * map_bench.c - pstm's hash map (pstm_ds.h) beside LMDB, and the
 * allocator under concurrency.
 *
 *   map_bench [map] [-n KEYS] [-t SECONDS] [-r RUNS]
 *       put (overwrite a random existing key), get (a random key) and a
 *       50/50 mix, each operation one transaction, with 1 and 2
 *       processes; pstm on a shm region, LMDB in /dev/shm with
 *       MDB_NOSYNC | MDB_WRITEMAP (neither flushes).  Same keys (16
 *       bytes) and values (32 bytes), same random sequence.  Prints the
 *       median of RUNS runs and the ratio pstm / LMDB.
 *   map_bench alloc [-t SECONDS] [-r RUNS]
 *       transactions that free one of the process's blocks and allocate
 *       another (16..256 bytes), with 1 and 2 processes: throughput and
 *       aborts per commit.
 *
 * Exit status 1 if a worker failed or a final check (every key present,
 * count exact) did not hold.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "pstm.h"
#include "pstm_ds.h"

#define KEY_BYTES 16
#define VAL_BYTES 32
#define MAX_PROCS 8

enum workload { W_PUT, W_GET, W_MIX };
static const char *const wname[] = {"put", "get", "mix 50/50"};

static uint64_t nkeys = 100000;
static double seconds = 0.5;
static int runs = 3;

struct shared {
	_Atomic int ready;
	_Atomic int go;
	uint64_t ops[MAX_PROCS];
	double secs[MAX_PROCS];
	double aborts[MAX_PROCS];
};
static struct shared *sh;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void key_of(uint64_t k, char *key)
{
	char tmp[32];
	snprintf(tmp, sizeof(tmp), "key-%012llu", (unsigned long long)(k % 1000000000000ull));
	memcpy(key, tmp, KEY_BYTES);
}

static void val_of(uint64_t k, uint64_t stamp, uint8_t *v)
{
	for (int i = 0; i < VAL_BYTES; i += 8) {
		uint64_t w = k * 0x9E3779B97F4A7C15ull + stamp + (uint64_t)i;
		memcpy(v + i, &w, 8);
	}
}

/* ------------------------------------------------------------- pstm */

static const char *pstm_uri = "shm:pstm-map-bench";
static pstm_region *pr;
static pstm_off pmap;

struct pop {
	char key[KEY_BYTES];
	uint8_t val[VAL_BYTES];
	uint64_t k, stamp;
	int found;
};

static int p_root(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_off root = pstm_root(tx, 8);
	pmap = pstm_load64(tx, root);
	if (!pmap) {
		pmap = pstm_map_create(tx, 1024);
		pstm_store64(tx, root, pmap);
	}
	return 0;
}

static int p_put(pstm_tx *tx, void *arg)
{
	struct pop *o = arg;
	return pstm_map_put(tx, pmap, o->key, KEY_BYTES, o->val, VAL_BYTES);
}

static int p_get(pstm_tx *tx, void *arg)
{
	struct pop *o = arg;
	size_t vl;
	int rc = pstm_map_get(tx, pmap, o->key, KEY_BYTES, o->val, VAL_BYTES, &vl);
	o->found = rc == 0 && vl == VAL_BYTES;
	return rc == PSTM_ENOENT ? 0 : rc;
}

struct pfill {
	uint64_t from, to;
};

static int p_fill(pstm_tx *tx, void *arg)
{
	struct pfill *f = arg;
	struct pop o;
	for (uint64_t k = f->from; k < f->to; k++) {
		key_of(k, o.key);
		val_of(k, 0, o.val);
		int rc = p_put(tx, &o);
		if (rc)
			return rc;
	}
	return 0;
}

static int pstm_setup(void)
{
	struct pstm_create_opts o = {.size_bytes = 256ull << 20, .replace = 1};
	int rc = pstm_create(pstm_uri, &o, &pr);
	if (!rc)
		rc = pstm_atomic(pr, p_root, NULL);
	for (uint64_t k = 0; !rc && k < nkeys; k += 50) {
		struct pfill f = {k, k + 50 < nkeys ? k + 50 : nkeys};
		rc = pstm_atomic(pr, p_fill, &f);
	}
	if (pr)
		pstm_close(pr);
	if (rc)
		fprintf(stderr, "pstm setup: %s\n", pstm_strerror(rc));
	return rc;
}

static int pstm_attach(void)
{
	int rc = pstm_open(pstm_uri, &pr);
	if (!rc)
		rc = pstm_atomic(pr, p_root, NULL);
	return rc;
}

static int pstm_op(int put, uint64_t k, uint64_t stamp)
{
	struct pop o;
	key_of(k, o.key);
	if (put) {
		val_of(k, stamp, o.val);
		return pstm_atomic(pr, p_put, &o);
	}
	int rc = pstm_atomic(pr, p_get, &o);
	return rc ? rc : !o.found;
}

static int p_count(pstm_tx *tx, void *arg)
{
	*(uint64_t *)arg = pstm_map_count(tx, pmap);
	return 0;
}

static int pstm_check(void)
{
	uint64_t n = 0;
	int rc = pstm_attach();
	if (!rc)
		rc = pstm_atomic(pr, p_count, &n);
	pstm_close(pr);
	pstm_unlink(pstm_uri);
	return rc || n != nkeys;
}

static double pstm_aborts(void)
{
	struct pstm_stats st;
	pstm_stats_get(pr, &st);
	return st.commits ? (double)(st.aborts_read + st.aborts_lock + st.aborts_validate) /
				    (double)(st.commits + st.commits_ro)
			  : 0;
}

/* ------------------------------------------------------------- LMDB */

static const char *lmdb_path = "/dev/shm/pstm-map-bench.mdb";
static MDB_env *env;
static MDB_dbi dbi;
static MDB_txn *rtxn;

static int l_open(void)
{
	MDB_txn *t;
	int rc = mdb_env_create(&env);
	if (!rc)
		rc = mdb_env_set_mapsize(env, 1ull << 30);
	if (!rc)
		rc = mdb_env_set_maxreaders(env, 126);
	if (!rc)
		rc = mdb_env_open(env, lmdb_path, MDB_NOSUBDIR | MDB_NOSYNC | MDB_WRITEMAP, 0600);
	if (!rc)
		rc = mdb_txn_begin(env, NULL, 0, &t);
	if (!rc) {
		rc = mdb_dbi_open(t, NULL, 0, &dbi);
		rc = rc ? (mdb_txn_abort(t), rc) : mdb_txn_commit(t);
	}
	if (rc)
		fprintf(stderr, "lmdb: %s\n", mdb_strerror(rc));
	return rc;
}

static void l_remove(void)
{
	char lock[300];
	snprintf(lock, sizeof(lock), "%s-lock", lmdb_path);
	unlink(lmdb_path);
	unlink(lock);
}

static int lmdb_setup(void)
{
	MDB_txn *t;
	char key[KEY_BYTES];
	uint8_t val[VAL_BYTES];
	l_remove();
	int rc = l_open();
	if (!rc)
		rc = mdb_txn_begin(env, NULL, 0, &t);
	for (uint64_t k = 0; !rc && k < nkeys; k++) {
		key_of(k, key);
		val_of(k, 0, val);
		MDB_val mk = {KEY_BYTES, key}, mv = {VAL_BYTES, val};
		rc = mdb_put(t, dbi, &mk, &mv, 0);
	}
	if (!rc)
		rc = mdb_txn_commit(t);
	mdb_env_close(env);
	return rc;
}

static int lmdb_attach(void)
{
	int rc = l_open();
	if (!rc)
		rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &rtxn);
	if (!rc)
		mdb_txn_reset(rtxn);
	return rc;
}

static int lmdb_op(int put, uint64_t k, uint64_t stamp)
{
	char key[KEY_BYTES];
	uint8_t val[VAL_BYTES];
	MDB_val mk = {KEY_BYTES, key}, mv;
	MDB_txn *t;
	int rc;
	key_of(k, key);
	if (put) {
		val_of(k, stamp, val);
		mv = (MDB_val){VAL_BYTES, val};
		if ((rc = mdb_txn_begin(env, NULL, 0, &t)))
			return rc;
		if ((rc = mdb_put(t, dbi, &mk, &mv, 0))) {
			mdb_txn_abort(t);
			return rc;
		}
		return mdb_txn_commit(t);
	}
	if ((rc = mdb_txn_renew(rtxn)))
		return rc;
	rc = mdb_get(rtxn, dbi, &mk, &mv);
	if (!rc) /* copy it out, as pstm does */
		memcpy(val, mv.mv_data, mv.mv_size < VAL_BYTES ? mv.mv_size : VAL_BYTES);
	mdb_txn_reset(rtxn);
	return rc;
}

static int lmdb_check(void)
{
	MDB_stat st;
	MDB_txn *t;
	int rc = l_open();
	if (!rc)
		rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &t);
	if (!rc) {
		rc = mdb_stat(t, dbi, &st);
		mdb_txn_abort(t);
	}
	mdb_env_close(env);
	l_remove();
	return rc || st.ms_entries != nkeys;
}

/* ----------------------------------------------------------- driver */

struct sys {
	const char *name;
	int (*setup)(void);
	int (*attach)(void);
	int (*op)(int put, uint64_t k, uint64_t stamp);
	int (*check)(void);
};

static const struct sys systems[] = {
	{"pstm", pstm_setup, pstm_attach, pstm_op, pstm_check},
	{"lmdb", lmdb_setup, lmdb_attach, lmdb_op, lmdb_check},
};

static int worker(const struct sys *s, enum workload w, int id, int procs)
{
	uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1), n = 0;
	if (s->attach())
		return 2;
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->go))
		;
	double t0 = now_s(), t;
	do {
		for (int i = 0; i < 64; i++) {
			uint64_t x = rnd(&seed);
			int put = w == W_PUT || (w == W_MIX && (x & 1));
			int rc = s->op(put, (x >> 8) % nkeys, x);
			if (rc) {
				fprintf(stderr, "%s worker: error %d\n", s->name, rc);
				return 3;
			}
		}
		n += 64;
	} while ((t = now_s() - t0) < seconds);
	sh->ops[id] = n;
	sh->secs[id] = t;
	sh->aborts[id] = s == &systems[0] ? pstm_aborts() : 0;
	(void)procs;
	return 0;
}

/* One timed run: total operations per second. */
static double run_once(const struct sys *s, enum workload w, int procs, int *bad)
{
	pid_t pids[MAX_PROCS];
	memset(sh, 0, sizeof(*sh));
	for (int p = 0; p < procs; p++) {
		fflush(stdout);
		if ((pids[p] = fork()) == 0)
			_exit(worker(s, w, p, procs));
	}
	while (atomic_load(&sh->ready) < procs)
		usleep(100);
	atomic_store(&sh->go, 1);
	double total = 0;
	for (int p = 0; p < procs; p++) {
		int st;
		if (waitpid(pids[p], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			*bad = 1;
		total += (double)sh->ops[p] / (sh->secs[p] > 0 ? sh->secs[p] : 1);
	}
	return total;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const struct sys *s, enum workload w, int procs, int *bad,
		     double *aborts)
{
	double r[16];
	*aborts = 0;
	for (int i = 0; i < runs; i++) {
		r[i] = run_once(s, w, procs, bad);
		for (int p = 0; p < procs; p++)
			*aborts += sh->aborts[p] / procs / runs;
	}
	qsort(r, (size_t)runs, sizeof(double), cmp_d);
	return r[runs / 2];
}

static int bench_map(void)
{
	static const struct {
		enum workload w;
		int procs;
	} cfg[] = {{W_PUT, 1}, {W_PUT, 2}, {W_GET, 1}, {W_GET, 2}, {W_MIX, 1}, {W_MIX, 2}};
	enum { NCFG = sizeof(cfg) / sizeof(cfg[0]) };
	double res[2][NCFG], ab[2][NCFG];
	int bad = 0;

	for (int s = 0; s < 2; s++) {
		if (systems[s].setup()) {
			fprintf(stderr, "%s: setup failed\n", systems[s].name);
			return 1;
		}
		for (int c = 0; c < NCFG; c++)
			res[s][c] = median(&systems[s], cfg[c].w, cfg[c].procs, &bad, &ab[s][c]);
		if (systems[s].check()) {
			fprintf(stderr, "%s: final check failed\n", systems[s].name);
			bad = 1;
		}
	}
	printf("map_bench: %llu keys of %d bytes, values of %d bytes; one operation per\n"
	       "transaction; median of %d runs of %.2f s; ops/s summed over processes\n\n",
	       (unsigned long long)nkeys, KEY_BYTES, VAL_BYTES, runs, seconds);
	printf("%-10s %5s %14s %14s %8s %14s\n", "workload", "procs", "pstm", "lmdb-shm",
	       "ratio", "pstm aborts/tx");
	for (int c = 0; c < NCFG; c++)
		printf("%-10s %5d %14.0f %14.0f %7.2fx %14.4f\n", wname[cfg[c].w], cfg[c].procs,
		       res[0][c], res[1][c], res[0][c] / res[1][c], ab[0][c]);
	if (bad)
		printf("\nFAILED: a worker failed or a final check did not hold\n");
	return bad;
}

/* --------------------------------------------------------- allocator */

struct ring_op {
	pstm_off old;
	size_t n;
	pstm_off got;
};

static int ring_fn(pstm_tx *tx, void *arg)
{
	struct ring_op *a = arg;
	if (a->old)
		pstm_free(tx, a->old);
	a->got = pstm_alloc(tx, a->n);
	pstm_store64(tx, a->got, a->n);
	return 0;
}

static pstm_off ring[64];
static uint64_t ring_seed;
static int ring_i;

static int alloc_setup(void)
{
	struct pstm_create_opts o = {.size_bytes = 256ull << 20, .replace = 1};
	int rc = pstm_create(pstm_uri, &o, &pr);
	if (!rc)
		pstm_close(pr);
	return rc;
}

static int alloc_attach(void)
{
	memset(ring, 0, sizeof(ring));
	ring_seed = 88172645463325252ull ^ (uint64_t)getpid();
	return pstm_open(pstm_uri, &pr);
}

static int alloc_op(int put, uint64_t k, uint64_t stamp)
{
	(void)put, (void)k, (void)stamp;
	struct ring_op a = {ring[ring_i], 16 + rnd(&ring_seed) % 241, 0};
	int rc = pstm_atomic(pr, ring_fn, &a);
	if (!rc)
		ring[ring_i] = a.got;
	ring_i = (ring_i + 1) % 64;
	return rc;
}

static int alloc_check_none(void)
{
	pstm_unlink(pstm_uri);
	return 0;
}

static int bench_alloc(void)
{
	const struct sys s = {"pstm-alloc", alloc_setup, alloc_attach, alloc_op, alloc_check_none};
	int bad = 0;
	if (s.setup())
		return 1;
	printf("alloc: transactions of pstm_free + pstm_alloc (16..256 bytes); median of %d "
	       "runs of %.2f s\n\n%5s %14s %14s\n", runs, seconds, "procs", "tx/s", "aborts/tx");
	for (int procs = 1; procs <= 2; procs++) {
		double ab, r = median(&s, W_PUT, procs, &bad, &ab);
		printf("%5d %14.0f %14.4f\n", procs, r, ab);
	}
	s.check();
	return bad;
}

int main(int argc, char **argv)
{
	int alloc = 0, c;
	if (argc > 1 && argv[1][0] != '-') {
		alloc = !strcmp(argv[1], "alloc");
		if (!alloc && strcmp(argv[1], "map")) {
			fprintf(stderr, "usage: map_bench [map|alloc] [-n KEYS] [-t SECONDS] [-r RUNS]\n");
			return 2;
		}
		optind = 2;
	}
	while ((c = getopt(argc, argv, "n:t:r:")) != -1) {
		if (c == 'n')
			nkeys = strtoull(optarg, NULL, 0);
		else if (c == 't')
			seconds = atof(optarg);
		else if (c == 'r')
			runs = atoi(optarg);
		else
			return 2;
	}
	if (!nkeys || seconds <= 0 || runs < 1 || runs > 15) {
		fprintf(stderr, "map_bench: bad -n, -t or -r (1..15)\n");
		return 2;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	return alloc ? bench_alloc() : bench_map();
}
