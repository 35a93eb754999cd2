/*
 * test_large.c - transactions larger than the redo log (lib/overflow.c):
 * a million words in one transaction on a default 64 MiB region (shm,
 * durable file, pmem-forced file, relaxed file), ten million reads in
 * one transaction, SIGKILL at every crash point of a large commit and at
 * random moments, simulated power failures during large commits (msync
 * and flush+drain), and the limits: a full heap, a format 1 region, an
 * inevitable transaction.  After each, no overflow extent is left behind
 * once its owners are gone and a later large transaction has run.
 *
 * The data: an array of N words reached through the root; a fill writes
 * word i = v << 32 | i for one v, so a torn transaction shows as two v's.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "helpers.h"
#include "region.h"

static uint64_t N; /* words of the array: PSTM_LARGE_WORDS, 1,000,000 */

struct arr {
	pstm_off base;
	uint64_t n, v;
	uint64_t bad, seen_v; /* check_fn: words not v << 32 | i, v of word 0 */
};

static int setup_fn(pstm_tx *tx, void *arg)
{
	struct arr *a = arg;
	pstm_off root = pstm_root(tx, 8);
	a->base = pstm_load64(tx, root);
	if (!a->base) {
		a->base = pstm_alloc(tx, 8 * a->n);
		pstm_store64(tx, root, a->base);
	}
	return 0;
}

static int fill_fn(pstm_tx *tx, void *arg)
{
	struct arr *a = arg;
	for (uint64_t i = 0; i < a->n; i++)
		pstm_store64(tx, a->base + 8 * i, a->v << 32 | i);
	return 0;
}

static int check_fn(pstm_tx *tx, void *arg)
{
	struct arr *a = arg;
	a->bad = 0;
	a->seen_v = pstm_load64(tx, a->base) >> 32;
	for (uint64_t i = 0; i < a->n; i++)
		if (pstm_load64(tx, a->base + 8 * i) != (a->seen_v << 32 | i))
			a->bad++;
	return 0;
}

/* Overflow extents listed in the heap (read on the mapping: nobody else
 * may be transacting). */
static uint64_t extents_listed(pstm_region *r)
{
	uint64_t n = 0;
	uint64_t x = *(uint64_t *)(r->base + r->sb.heap_off +
				   offsetof(struct heap_header, ovf_head));
	while (x && n < 10000) {
		n++;
		x = ((struct ovf_header *)(r->base + x))->next;
	}
	return n;
}

static pstm_region *open_arr(const char *uri, struct arr *a)
{
	pstm_region *r;
	assert_pstm_ok(pstm_open(uri, &r));
	a->n = N;
	assert_pstm_ok(pstm_atomic(r, setup_fn, a));
	return r;
}

/* All-or-nothing: every word carries the same v, one of @v1, @v2. */
static void assert_whole(pstm_region *r, struct arr *a, uint64_t v1, uint64_t v2)
{
	assert_pstm_ok(pstm_atomic_ro(r, check_fn, a));
	if (a->bad || (a->seen_v != v1 && a->seen_v != v2))
		print_error("torn: %llu words not of v %llu (want %llu or %llu)\n",
			    (unsigned long long)a->bad, (unsigned long long)a->seen_v,
			    (unsigned long long)v1, (unsigned long long)v2);
	assert_int_equal(a->bad, 0);
	assert_true(a->seen_v == v1 || a->seen_v == v2);
}

/* ------------------------------------------------- a million words */

static int child_check(void *arg, int v)
{
	struct arr a = {0};
	pstm_region *r;
	if (pstm_open(arg, &r))
		return 2;
	a.n = N;
	if (pstm_atomic(r, setup_fn, &a) || pstm_atomic_ro(r, check_fn, &a))
		return 3;
	pstm_close(r);
	return a.bad == 0 && a.seen_v == (uint64_t)v ? 0 : 4;
}

static int million(const char *uri, int durability)
{
	pstm_region *r;
	struct pstm_create_opts o = {.durability = durability, .replace = 1};
	struct arr a = {.n = N};
	if (pstm_create(uri, &o, &r))
		return 10;
	if (pstm_atomic(r, setup_fn, &a))
		return 11;
	for (uint64_t v = 1; v <= 3; v++) { /* a new extent, then reused */
		a.v = v;
		int rc = pstm_atomic(r, fill_fn, &a);
		if (rc) {
			fprintf(stderr, "# fill %llu words: %s\n",
				(unsigned long long)N, pstm_strerror(rc));
			return 12;
		}
		if (pstm_atomic_ro(r, check_fn, &a) || a.bad || a.seen_v != v)
			return 13;
		if (v == 2) { /* another process sees all of it (forked
			       * without our threads: a relaxed flusher) */
			pstm_close(r);
			if (test_wait(test_spawn(child_check, (void *)uri, 2)) != 0)
				return 14;
			if (pstm_open(uri, &r))
				return 19;
		}
	}
	if (extents_listed(r) != 1)
		return 15;
	pstm_close(r);
	/* the descriptor gave its extent back */
	if (pstm_open(uri, &r))
		return 16;
	if (extents_listed(r) != 0)
		return 17;
	pstm_close(r);
	return test_wait(test_spawn(child_check, (void *)uri, 3)) ? 18 : 0;
}

static void run_million(const char *uri, int durability)
{
	int rc = million(uri, durability);
	if (rc)
		print_error("%s: step %d failed\n", uri, rc);
	assert_int_equal(rc, 0);
	test_assert_clean(uri);
	assert_pstm_ok(pstm_unlink(uri));
}

static void test_million_shm(void **s)
{
	(void)s;
	run_million(test_shm_uri("mil"), PSTM_DEFAULT);
}

static void test_million_file(void **s)
{
	(void)s;
	run_million(test_file_uri("mil"), PSTM_DURABLE);
}

static void test_million_relaxed(void **s)
{
	(void)s;
	run_million(test_file_uri("milr"), PSTM_RELAXED);
}

/* pmem-forced: libpmem reads PMEM_IS_PMEM_FORCE at start, so a
 * re-executed child runs it */
static void test_million_pmem(void **s)
{
	(void)s;
	const char *uri = test_file_uri("milp");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		setenv("PMEM_IS_PMEM_FORCE", "1", 1);
		execl(test_self(), test_self(), "--million", uri, (char *)NULL);
		_exit(8);
	}
	assert_int_equal(test_wait(pid), 0);
	test_assert_clean(uri);
	assert_pstm_ok(pstm_unlink(uri));
}

/* ------------------------------------------------- ten million reads */

struct reads {
	struct arr *a;
	uint64_t passes, sum, store;
};

static int read_passes(pstm_tx *tx, void *arg)
{
	struct reads *x = arg;
	x->sum = 0;
	for (uint64_t p = 0; p < x->passes; p++)
		for (uint64_t i = 0; i < x->a->n; i++)
			x->sum += pstm_load64(tx, x->a->base + 8 * i) & 0xffffffff;
	if (x->store)
		pstm_store64(tx, x->a->base, x->a->v << 32);
	return 0;
}

static void test_ten_million_reads(void **s)
{
	(void)s;
	const char *uri = test_shm_uri("reads");
	pstm_region *r;
	struct pstm_create_opts o = {0};
	struct arr a = {.n = N, .v = 7};
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, setup_fn, &a));
	assert_pstm_ok(pstm_atomic(r, fill_fn, &a));
	struct reads x = {&a, 10, 0, 0};
	uint64_t want = 10 * (N * (N - 1) / 2);
	assert_pstm_ok(pstm_atomic_ro(r, read_passes, &x)); /* 10 N reads */
	assert_int_equal(x.sum, want);
	x.store = 1; /* an update transaction validates all of them */
	assert_pstm_ok(pstm_atomic(r, read_passes, &x));
	assert_int_equal(x.sum, want);
	struct pstm_stats st;
	assert_pstm_ok(pstm_stats_get(r, &st));
	print_message("# %llu reads in one transaction: committed, %llu aborts\n",
		      (unsigned long long)(10 * N),
		      (unsigned long long)(st.aborts_read + st.aborts_validate));
	pstm_close(r);
	assert_pstm_ok(pstm_unlink(uri));
}

/* ------------------------------------------------------------ kills */

enum { KWORDS = 20000 }; /* > log_cap (~4,000), small enough to repeat */

struct kill_arg {
	const char *uri;
	const char *at;  /* PSTM_CRASH_AT, or NULL */
	uint64_t v;      /* first v to write */
	_Atomic uint64_t *acked;
};

/* Fill with v, v+1, ... until killed (at the crash point, or by the
 * parent); *acked is the last v whose fill returned. */
static int victim(void *arg, int i)
{
	(void)i;
	struct kill_arg *k = arg;
	struct arr a = {0};
	pstm_region *r;
	if (k->at)
		setenv("PSTM_CRASH_AT", k->at, 1);
	if (pstm_open(k->uri, &r))
		return 2;
	a.n = KWORDS;
	if (pstm_atomic(r, setup_fn, &a))
		return 3;
	for (a.v = k->v;; a.v++) {
		if (pstm_atomic(r, fill_fn, &a))
			return 4;
		if (k->acked)
			atomic_store(k->acked, a.v);
		if (k->at && a.v > k->v + 3)
			return 5; /* the crash point never fired */
	}
}

/* After a kill: the region opens (recovering the victim), the fill is
 * whole, pstm check is clean, and a large transaction of ours frees the
 * victim's extent, so that none is left once we close. */
static uint64_t after_kill(const char *uri, uint64_t v1, uint64_t v2)
{
	struct arr a = {0};
	pstm_region *r;
	assert_pstm_ok(pstm_open(uri, &r));
	a.n = KWORDS;
	assert_pstm_ok(pstm_atomic(r, setup_fn, &a));
	assert_whole(r, &a, v1, v2);
	pstm_close(r);
	test_assert_clean(uri);
	assert_pstm_ok(pstm_open(uri, &r));
	assert_pstm_ok(pstm_atomic(r, setup_fn, &a));
	uint64_t got = a.seen_v;
	a.v = got + 1000;
	assert_pstm_ok(pstm_atomic(r, fill_fn, &a)); /* sweeps orphans */
	assert_int_equal(extents_listed(r), 1);
	a.v = got;
	assert_pstm_ok(pstm_atomic(r, fill_fn, &a));
	pstm_close(r);
	assert_pstm_ok(pstm_open(uri, &r));
	assert_int_equal(extents_listed(r), 0);
	pstm_close(r);
	return got;
}

static const char *const POINTS[] = {
	"overflow.taken", "commit.locking", "commit.locked", "commit.sealed",
	"commit.logged", "commit.written", "commit.retired", "commit.released",
};
enum { FIRST_COMMITTED = 4 }; /* POINTS from here on are past the commit point */

static void kill_points(const char *uri, int durability)
{
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 8 << 20, .durability = durability,
				     .replace = 1};
	struct arr a = {.n = KWORDS, .v = 1};
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, setup_fn, &a));
	assert_pstm_ok(pstm_atomic(r, fill_fn, &a));
	pstm_close(r);
	uint64_t v = 1, kills = 0;
	for (size_t p = 0; p < sizeof(POINTS) / sizeof(*POINTS); p++)
		/* pass 1 of a commit point is the commit of the side
		 * transaction that takes the extent; pass 2 the large one */
		for (int pass = 1; pass <= (p == 0 ? 1 : 2); pass++) {
			char at[64];
			snprintf(at, sizeof(at), "%s:%d", POINTS[p], pass);
			struct kill_arg k = {uri, at, v + 1, NULL};
			int st = test_wait(test_spawn(victim, &k, 0));
			if (st != 128 + SIGKILL)
				print_error("%s: exit %d\n", at, st);
			assert_int_equal(st, 128 + SIGKILL);
			/* the large commit passed its commit point, or not */
			uint64_t want = p >= FIRST_COMMITTED && pass == 2 ? v + 1 : v;
			v = after_kill(uri, want, want);
			kills++;
		}
	print_message("# %s: %llu kills at every crash point of large commits, "
		      "all whole\n", uri, (unsigned long long)kills);
	assert_pstm_ok(pstm_unlink(uri));
}

static void test_kill_points_shm(void **s)
{
	(void)s;
	kill_points(test_shm_uri("kp"), PSTM_DEFAULT);
}

static void test_kill_points_file(void **s)
{
	(void)s;
	kill_points(test_file_uri("kp"), PSTM_DURABLE);
}

static void kill_random(const char *uri, int durability)
{
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 8 << 20, .durability = durability,
				     .replace = 1};
	struct arr a = {.n = KWORDS, .v = 1};
	_Atomic uint64_t *acked = test_map_shared(NULL, sizeof(*acked));
	assert_non_null(acked);
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, setup_fn, &a));
	assert_pstm_ok(pstm_atomic(r, fill_fn, &a));
	pstm_close(r);
	uint64_t v = 1;
	int rounds = test_env_int("PSTM_KILL_ROUNDS", 200) / 20 + 2;
	srand(getpid());
	for (int i = 0; i < rounds; i++) {
		atomic_store(acked, v);
		struct kill_arg k = {uri, NULL, v + 1, acked};
		pid_t pid = test_spawn(victim, &k, 0);
		struct timespec ts = {0, (rand() % 40 + 2) * 1000000L};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		assert_int_equal(test_wait(pid), 128 + SIGKILL);
		/* the last acknowledged fill, or the one in flight */
		uint64_t ack = atomic_load(acked);
		v = after_kill(uri, ack, ack + 1);
	}
	print_message("# %s: %d random kills during large commits, all whole\n",
		      uri, rounds);
	munmap((void *)acked, sizeof(*acked));
	assert_pstm_ok(pstm_unlink(uri));
}

static void test_kill_random_shm(void **s)
{
	(void)s;
	kill_random(test_shm_uri("kr"), PSTM_DEFAULT);
}

static void test_kill_random_file(void **s)
{
	(void)s;
	kill_random(test_file_uri("kr"), PSTM_DURABLE);
}

/* pstm check names an orphaned extent; the next large transaction frees
 * it; none is listed once every owner is gone. */
static void expect_extents_line(const char *uri, const char *want)
{
	struct check_report rep;
	assert_pstm_ok(region_check(uri, &rep));
	const char *found = NULL;
	for (unsigned i = 0; i < rep.n; i++)
		if (strstr(rep.f[i].text, "overflow extents"))
			found = rep.f[i].text;
	if (want ? !found || !strstr(found, want) : found != NULL)
		print_error("pstm check: %s (want %s)\n", found ? found : "no extents line",
			    want ? want : "none");
	assert_true(want ? found && strstr(found, want) : found == NULL);
	assert_int_equal(rep.damage, 0);
	check_report_free(&rep);
}

static int open_close(void *arg, int i)
{
	(void)i;
	pstm_region *r;
	if (pstm_open(arg, &r)) /* recovers dead processes */
		return 2;
	pstm_close(r);
	return 0;
}

/* @opener: another process opens the region (recovering the victim)
 * before our large transaction; else that transaction recovers it */
static void orphan(int opener)
{
	const char *uri = test_shm_uri("orph");
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 8 << 20};
	struct arr a = {.n = KWORDS, .v = 1};
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, setup_fn, &a)); /* our slot: 0 */
	expect_extents_line(uri, NULL);
	/* the victim (another slot) dies holding an extent */
	struct kill_arg k = {uri, "commit.written:2", 2, NULL};
	assert_int_equal(test_wait(test_spawn(victim, &k, 0)), 128 + SIGKILL);
	/* its slot still names the dead owner: not yet recovered */
	expect_extents_line(uri, "overflow extents: 1 (");
	expect_extents_line(uri, "0 of them orphaned");
	if (opener) {
		assert_int_equal(test_wait(test_spawn(open_close, (void *)uri, 0)), 0);
		expect_extents_line(uri, "1 of them orphaned"); /* recovered */
	}
	/* ours; the orphan goes (taking an extent recovers the dead first) */
	a.v = 3;
	assert_pstm_ok(pstm_atomic(r, fill_fn, &a));
	assert_whole(r, &a, 3, 3);
	expect_extents_line(uri, "overflow extents: 1 (");
	expect_extents_line(uri, "0 of them orphaned");
	pstm_close(r);
	expect_extents_line(uri, NULL);
	assert_pstm_ok(pstm_unlink(uri));
}

static void test_orphan_reported(void **s) { (void)s; orphan(1); }
static void test_orphan_of_the_dead(void **s) { (void)s; orphan(0); }

/* --------------------------------------------------- power failures */

enum { PWORDS = 6000 };

struct pf_shared {
	_Atomic uint64_t acked;   /* last fill that returned */
	_Atomic uint64_t synced;  /* relaxed: last fill pstm_sync made durable */
	int relaxed;
};
static struct pf_shared *SH;

static int pf_child(const char *work, const char *image, unsigned seed, int pmem)
{
	pstm_region *r;
	struct arr a = {0};
	test_powerfail_arm(image, seed, pmem ? 1500 : SH->relaxed ? 40 : 16);
	if (pstm_open(work, &r))
		return 5;
	a.n = PWORDS;
	if (pstm_atomic(r, setup_fn, &a))
		return 6;
	for (a.v = 2; a.v < 100000; a.v++) {
		if (pstm_atomic(r, fill_fn, &a))
			return 7;
		atomic_store(&SH->acked, a.v);
		if (SH->relaxed && a.v % 3 == 0) {
			if (pstm_sync(r))
				return 8;
			atomic_store(&SH->synced, a.v);
		}
	}
	return 9; /* the power never failed */
}

/* Relaxed regions lose up to the last flush: what survives is a prefix
 * (some whole fill at or after the last synced one), never a torn one. */
static void powerfail(int pmem, int relaxed)
{
	static struct test_powerfail pf;
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 4 << 20, .replace = 1,
				     .durability = relaxed ? PSTM_RELAXED
							   : PSTM_DEFAULT};
	struct arr a = {.n = PWORDS, .v = 1};
	test_powerfail_files(&pf, relaxed ? "lpfr" : "lpf", pmem);
	SH = test_map_shared(pf.shared, sizeof(*SH));
	assert_non_null(SH);
	SH->relaxed = relaxed;
	assert_pstm_ok(pstm_create(pf.base, &o, &r));
	assert_pstm_ok(pstm_atomic(r, setup_fn, &a));
	assert_pstm_ok(pstm_atomic(r, fill_fn, &a));
	pstm_close(r);
	int n = test_env_int("PSTM_POWERFAIL_IMAGES", 500) / 25 + 2;
	uint64_t past = 0;
	for (int i = 0; i < n; i++) {
		atomic_store(&SH->acked, 1);
		atomic_store(&SH->synced, 1);
		test_powerfail_image(&pf, (unsigned)(i * 2 + pmem + 1), pmem);
		uint64_t ack = atomic_load(&SH->acked);
		assert_pstm_ok(pstm_open(pf.image, &r));
		a.n = PWORDS;
		assert_pstm_ok(pstm_atomic(r, setup_fn, &a));
		if (relaxed) {
			uint64_t syn = atomic_load(&SH->synced);
			assert_pstm_ok(pstm_atomic_ro(r, check_fn, &a));
			assert_int_equal(a.bad, 0); /* whole */
			if (a.seen_v < syn || a.seen_v > ack + 1)
				print_error("relaxed: v %llu, synced %llu, acked %llu\n",
					    (unsigned long long)a.seen_v,
					    (unsigned long long)syn,
					    (unsigned long long)ack);
			assert_true(a.seen_v >= syn && a.seen_v <= ack + 1);
			past += syn > 1;
		} else {
			assert_whole(r, &a, ack, ack + 1);
			past += ack > 1;
		}
		pstm_close(r);
		test_powerfail_image_done(&pf);
	}
	print_message("# %d power failures during large commits (%s%s; %llu after "
		      "at least one %s), every one whole, none acknowledged lost\n",
		      n, relaxed ? "relaxed, " : "", pmem ? "flush+drain" : "msync",
		      (unsigned long long)past, relaxed ? "sync" : "commit");
	munmap(SH, sizeof(*SH));
	test_powerfail_remove(&pf);
}

static void test_powerfail_msync(void **s) { (void)s; powerfail(0, 0); }
static void test_powerfail_pmem(void **s) { (void)s; powerfail(1, 0); }
static void test_powerfail_relaxed(void **s) { (void)s; powerfail(0, 1); }

/* ------------------------------------------------------------ limits */

/* The heap cannot hold the record: PSTM_ELOGFULL, nothing written. */
static void test_heap_too_full(void **s)
{
	(void)s;
	const char *uri = test_shm_uri("full");
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 4 << 20};
	struct arr a = {.n = 300000, .v = 1}; /* 2.3 MiB of data ... */
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, setup_fn, &a));
	a.n = r->log_cap; /* (fits the ring) */
	assert_pstm_ok(pstm_atomic(r, fill_fn, &a));
	a.n = 300000; /* ... and 4.6 MiB of record: no room */
	a.v = 2;
	assert_int_equal(pstm_atomic(r, fill_fn, &a), PSTM_ELOGFULL);
	a.n = r->log_cap;
	assert_pstm_ok(pstm_atomic_ro(r, check_fn, &a));
	assert_int_equal(a.bad, 0);
	assert_int_equal(a.seen_v, 1);
	assert_int_equal(extents_listed(r), 0);
	pstm_close(r);
	test_assert_clean(uri);
	assert_pstm_ok(pstm_unlink(uri));
}

/* A format 1 region (written by the previous library) opens and works,
 * but has no extents: a large transaction ends with PSTM_ELOGFULL. */
static void test_format1(void **s)
{
	(void)s;
	const char *uri = test_file_uri("v1");
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 4 << 20};
	struct arr a = {.n = 10000, .v = 1};
	setenv("PSTM_TEST_FORMAT", "1", 1); /* what the previous library made */
	int rc = pstm_create(uri, &o, &r);
	unsetenv("PSTM_TEST_FORMAT");
	assert_pstm_ok(rc);
	assert_pstm_ok(pstm_atomic(r, setup_fn, &a));
	pstm_close(r);
	r = open_arr(uri, &a);
	struct pstm_region_info in;
	assert_pstm_ok(pstm_region_info(r, &in));
	assert_int_equal(in.format_version, 1);
	a.n = 10000;
	assert_int_equal(pstm_atomic(r, fill_fn, &a), PSTM_ELOGFULL);
	a.n = r->log_cap;
	assert_pstm_ok(pstm_atomic(r, fill_fn, &a));
	assert_whole(r, &a, 1, 1);
	pstm_close(r);
	test_assert_clean(uri);
	assert_pstm_ok(pstm_unlink(uri));
}

static int inevitable_fill(pstm_tx *tx, void *arg)
{
	int rc = pstm_tx_inevitable(tx);
	if (rc)
		return rc;
	return fill_fn(tx, arg);
}

/* An inevitable transaction cannot take an extent (it holds locks its
 * side transaction may need): beyond the ring it may use only the one its
 * slot has. */
static void test_inevitable_large(void **s)
{
	(void)s;
	const char *uri = test_shm_uri("inev");
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 8 << 20};
	struct arr a = {.n = 20000, .v = 1};
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, setup_fn, &a));
	a.v = 2;
	assert_int_equal(pstm_atomic(r, inevitable_fill, &a), PSTM_ELOGFULL);
	a.v = 3;
	assert_pstm_ok(pstm_atomic(r, fill_fn, &a)); /* takes an extent */
	a.v = 4;
	assert_pstm_ok(pstm_atomic(r, inevitable_fill, &a)); /* fits it */
	assert_whole(r, &a, 4, 4);
	pstm_close(r);
	test_assert_clean(uri);
	assert_pstm_ok(pstm_unlink(uri));
}

/* The explicit API: a large commit returns 0 (or PSTM_ECONFLICT once,
 * when taking the extent changed what the attempt read). */
static void test_explicit_large(void **s)
{
	(void)s;
	const char *uri = test_shm_uri("expl");
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 8 << 20};
	struct arr a = {.n = 20000, .v = 5};
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, setup_fn, &a));
	int rc, tries = 0;
	do {
		pstm_tx *tx;
		assert_pstm_ok(pstm_tx_begin(r, 0, &tx));
		uint64_t w;
		rc = pstm_tx_load64(tx, a.base, &w);
		for (uint64_t i = 0; rc == 0 && i < a.n; i++)
			rc = pstm_tx_store64(tx, a.base + 8 * i, a.v << 32 | i);
		rc = rc ? (pstm_tx_end(tx), rc) : pstm_tx_commit(tx);
	} while (rc == PSTM_ECONFLICT && ++tries < 10);
	assert_pstm_ok(rc);
	assert_whole(r, &a, 5, 5);
	pstm_close(r);
	assert_pstm_ok(pstm_unlink(uri));
}

int main(int argc, char **argv)
{
	N = (uint64_t)test_env_int("PSTM_LARGE_WORDS", 1000000);
	if (argc == 3 && strcmp(argv[1], "--million") == 0)
		return million(argv[2], PSTM_DURABLE);
	if (argc == 6 && strcmp(argv[1], "--child") == 0) {
		SH = test_map_shared(argv[5], sizeof(*SH));
		return SH ? pf_child(argv[2], argv[3], (unsigned)atoi(argv[4]),
				     getenv("PMEM_IS_PMEM_FORCE") != NULL)
			  : 10;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_million_shm),
		cmocka_unit_test(test_million_file),
		cmocka_unit_test(test_million_pmem),
		cmocka_unit_test(test_million_relaxed),
		cmocka_unit_test(test_ten_million_reads),
		cmocka_unit_test(test_kill_points_shm),
		cmocka_unit_test(test_kill_points_file),
		cmocka_unit_test(test_kill_random_shm),
		cmocka_unit_test(test_kill_random_file),
		cmocka_unit_test(test_orphan_reported),
		cmocka_unit_test(test_orphan_of_the_dead),
		cmocka_unit_test(test_powerfail_msync),
		cmocka_unit_test(test_powerfail_pmem),
		cmocka_unit_test(test_powerfail_relaxed),
		cmocka_unit_test(test_heap_too_full),
		cmocka_unit_test(test_format1),
		cmocka_unit_test(test_inevitable_large),
		cmocka_unit_test(test_explicit_large),
	};
	TEST_OUTPUT();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
