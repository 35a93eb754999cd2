/*
 * test_recovery.c - processes killed with SIGKILL, at every named crash
 * point of the commit and recovery paths and at random moments, on shm
 * and file regions.  After each: the bank total is exact (no committed
 * transfer lost or half-applied), no orec is left locked, no dead process
 * is left in the table, and the survivors kept going (their longest
 * single transaction, i.e. how long a death blocked them, is reported and
 * asserted under a generous bound).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "helpers.h"
#include "layout.h"
#include "redo_log.h"
#include "region.h"

enum { ACCOUNTS = 64, MAXW = 8 };

struct shared {            /* MAP_SHARED with the children */
	_Atomic uint64_t worst_ns;  /* longest pstm_atomic of a survivor */
	_Atomic uint64_t commits;
	_Atomic uint64_t victim_acked; /* victim commits that returned */
	_Atomic int stop;
};

struct ctx {
	const char *uri;
	struct test_bank bank;  /* ACCOUNTS accounts + the victim's counter */
	struct shared *sh;
	const char *crash_at;   /* for the victim */
	long survivor_txs;
};

static struct ctx C;

/* The victim's transfers are "counted" (helpers.h): after its death the
 * counter says whether its last transaction, the one the crash point
 * interrupted, took effect.  Nobody else counts. */

/* Transfers until stopped (victims, random rounds) or for n (survivors). */
static int worker(long n, int id, int is_victim)
{
	pstm_region *r;
	uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 7) ^ (uint64_t)getpid();
	int rc = pstm_open(C.uri, &r);
	if (rc) {
		fprintf(stderr, "worker open: %s\n", pstm_strerror(rc));
		return 2;
	}
	for (long i = 0; n < 0 || i < n; i++) {
		if (n < 0 && atomic_load(&C.sh->stop))
			break;
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		struct test_xfer x = {&C.bank, s % ACCOUNTS, (s >> 20) % ACCOUNTS,
				      (s >> 40) % 100, is_victim};
		uint64_t t0 = test_now_ns();
		if ((rc = pstm_atomic(r, test_bank_transfer, &x))) {
			fprintf(stderr, "worker tx: %s\n", pstm_strerror(rc));
			return 3;
		}
		uint64_t d = test_now_ns() - t0, w = atomic_load(&C.sh->worst_ns);
		while (d > w && !atomic_compare_exchange_weak(&C.sh->worst_ns, &w, d))
			;
		atomic_fetch_add(&C.sh->commits, 1);
		if (is_victim)
			atomic_fetch_add(&C.sh->victim_acked, 1);
	}
	pstm_close(r);
	return 0;
}

static int victim_child(void *arg, int id)
{
	(void)arg;
	setenv("PSTM_CRASH_AT", C.crash_at, 1);
	worker(2000000, id, 1);
	return 9; /* never reached its crash point */
}

static int survivor_child(void *arg, int id)
{
	(void)arg;
	return worker(C.survivor_txs, id, 0);
}

static int opener_child(void *arg, int id)
{
	(void)arg;
	(void)id;
	pstm_region *r;
	setenv("PSTM_CRASH_AT", C.crash_at, 1);
	if (pstm_open(C.uri, &r))
		return 2;
	return 9; /* recovery did not reach the crash point */
}

static int loop_child(void *arg, int id)
{
	(void)arg;
	return worker(-1, id, 0);
}

static void start(const char *uri_kind)
{
	struct pstm_create_opts o = {.size_bytes = 8 << 20};
	pstm_region *r;
	C.uri = strdup(strcmp(uri_kind, "shm") == 0 ? test_shm_uri("rec")
						   : test_file_uri("rec"));
	C.sh = mmap(NULL, sizeof(*C.sh), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(C.sh != MAP_FAILED);
	memset(C.sh, 0, sizeof(*C.sh));
	assert_pstm_ok(pstm_create(C.uri, &o, &r));
	C.bank.n = ACCOUNTS;
	assert_pstm_ok(pstm_atomic(r, test_bank_setup, &C.bank));
	pstm_close(r);
}

/* Open (which recovers the dead), then check everything is settled. */
/* @in_flight_applied: -1 no victim, 0/1 whether the victim's interrupted
 * transaction must be visible (it passed the commit point or not). */
static void verify(const char *what, int in_flight_applied)
{
	pstm_region *r;
	struct test_bank_state bs = {.bank = &C.bank};
	assert_pstm_ok(pstm_open(C.uri, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_read, &bs));
	uint64_t total = bs.total, vc = bs.count;
	if (in_flight_applied >= 0) {
		uint64_t want = atomic_load(&C.sh->victim_acked) +
				(uint64_t)in_flight_applied;
		if (vc != want)
			print_error("%s: victim count %llu, expected %llu\n", what,
				    (unsigned long long)vc, (unsigned long long)want);
		assert_int_equal(vc, want);
	}
	if (total != ACCOUNTS * 1000)
		print_error("%s: total %llu\n", what, (unsigned long long)total);
	assert_int_equal(total, ACCOUNTS * 1000);
	for (uint64_t i = 0; i <= r->orec_mask; i++)
		assert_false(orec_is_locked(atomic_load(&r->orecs[i])));
	for (uint32_t p = 0; p < r->sb.max_procs; p++) {
		uint64_t ps = atomic_load(&r->procs[p].state);
		if (p != r->proc_idx)
			assert_int_equal(PROC_ST(ps), PROC_FREE);
	}
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		uint64_t st = atomic_load(&r->slots[s].state);
		if (SLOT_ST(st) == SLOT_ACTIVE)
			assert_int_equal(SLOT_PROC(st), r->proc_idx);
		assert_int_equal(atomic_load(&region_log(r, s)->state), LOG_IDLE);
	}
	assert_int_equal(atomic_load(&r->rt->serial), 0);
	pstm_close(r);
}

static void finish(void)
{
	pstm_unlink(C.uri);
	free((void *)C.uri);
	munmap(C.sh, sizeof(*C.sh));
}

static const char *const commit_points[] = {
	"commit.locking", "commit.locked",  "commit.sealed", "commit.logged",
	"commit.written", "commit.retired", "commit.released",
};
/* whether a death at each point leaves the transaction committed */
static const int past_commit_point[] = {0, 0, 0, 1, 1, 1, 1};

/* A victim dies at the point while two survivors work on the same
 * accounts: they must notice, recover and finish. */
static void every_commit_point(const char *kind, long survivor_txs)
{
	uint64_t worst = 0;
	for (size_t i = 0; i < sizeof(commit_points) / sizeof(*commit_points); i++) {
		char at[64];
		start(kind);
		snprintf(at, sizeof(at), "%s:%d", commit_points[i], 1 + (int)(i * 7) % 20);
		C.crash_at = at;
		C.survivor_txs = survivor_txs;
		test_run_victim(victim_child, survivor_child, NULL, 2);
		verify(at, past_commit_point[i]);
		/* the victim may die while the survivors had not started: a
		 * lone death is settled by verify()'s open */
		if (atomic_load(&C.sh->worst_ns) > worst)
			worst = atomic_load(&C.sh->worst_ns);
		finish();
	}
	print_message("# %s: worst survivor transaction across crash points: %.3f ms\n",
		      kind, (double)worst / 1e6);
	assert_true(worst < 2000000000ull);
}

static void test_commit_points_shm(void **s) { (void)s; every_commit_point("shm", 20000); }
static void test_commit_points_file(void **s) { (void)s; every_commit_point("file", 300); }

/* A victim dies after its commit point; then an opener dies while
 * recovering it (at each recovery point); the next opener must finish
 * the job. */
static void recovery_points(const char *kind)
{
	static const char *const pts[] = {"recover.claimed:1", "recover.replayed:1"};
	for (size_t i = 0; i < 2; i++) {
		start(kind);
		C.crash_at = "commit.logged:5";
		pid_t v = test_spawn(victim_child, NULL, 0);
		assert_int_equal(test_wait(v), 128 + SIGKILL);
		C.crash_at = pts[i];
		pid_t o = test_spawn(opener_child, NULL, 1);
		assert_int_equal(test_wait(o), 128 + SIGKILL);
		C.survivor_txs = 1000;
		pid_t s1 = test_spawn(survivor_child, NULL, 2);
		assert_int_equal(test_wait(s1), 0);
		verify(pts[i], 1);
		finish();
	}
}

static void test_recovery_points_shm(void **s) { (void)s; recovery_points("shm"); }
static void test_recovery_points_file(void **s) { (void)s; recovery_points("file"); }

/* Random kills: three workers; each round one is SIGKILLed at a random
 * moment and replaced. */
static void random_kills(const char *kind, int rounds)
{
	pid_t w[3];
	uint64_t seed = 12345;
	start(kind);
	for (int i = 0; i < 3; i++)
		w[i] = test_spawn(loop_child, NULL, i);
	for (int k = 0; k < rounds; k++) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		usleep((useconds_t)(500 + seed % 3000));
		int i = (int)((seed >> 32) % 3);
		kill(w[i], SIGKILL);
		assert_int_equal(test_wait(w[i]), 128 + SIGKILL);
		w[i] = test_spawn(loop_child, NULL, i + 3 * (k + 1));
	}
	atomic_store(&C.sh->stop, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(test_wait(w[i]), 0);
	print_message("# %s: %d random kills, %llu commits, worst survivor "
		      "transaction %.3f ms\n",
		      kind, rounds, (unsigned long long)atomic_load(&C.sh->commits),
		      (double)atomic_load(&C.sh->worst_ns) / 1e6);
	assert_true(atomic_load(&C.sh->commits) > (uint64_t)rounds);
	assert_true(atomic_load(&C.sh->worst_ns) < 2000000000ull);
	verify("random kills", -1);
	finish();
}

static int kill_rounds(void)
{
	return test_env_int("PSTM_KILL_ROUNDS", 200);
}

static void test_random_kills_shm(void **s) { (void)s; random_kills("shm", kill_rounds()); }
static void test_random_kills_file(void **s) { (void)s; random_kills("file", kill_rounds()); }

/* pstm check sees a dead committer as pending (not damage); recovery
 * settles it; damage in a log or the heap header is reported. */
static void check_and_recover(const char *kind)
{
	struct check_report rep;
	start(kind);
	assert_pstm_ok(region_check(C.uri, &rep));
	assert_int_equal(rep.damage, 0);
	assert_int_equal(rep.pending, 0);
	check_report_free(&rep);

	C.crash_at = "commit.logged:3";
	pid_t v = test_spawn(victim_child, NULL, 0);
	assert_int_equal(test_wait(v), 128 + SIGKILL);
	assert_pstm_ok(region_check(C.uri, &rep));
	assert_int_equal(rep.damage, 0);
	assert_int_equal(rep.logs_committed, 1);
	assert_int_equal(rep.procs_dead, 1);
	assert_true(rep.orecs_locked >= 1);
	check_report_free(&rep);

	pstm_region *r;
	struct open_recovery rec;
	assert_pstm_ok(pstm_open(C.uri, &r));
	region_open_recovery(r, &rec);
	assert_int_equal(rec.procs_recovered, 1);
	pstm_close(r);
	assert_pstm_ok(region_check(C.uri, &rep));
	assert_int_equal(rep.damage + rep.pending + rep.orecs_locked, 0);
	check_report_free(&rep);
	verify("check", 1);

	/* damage: an impossible log state, a bad heap header */
	assert_pstm_ok(pstm_open(C.uri, &r));
	uint64_t log_off = r->sb.log_off, heap_off = r->sb.heap_off;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", r->path);
	pstm_close(r);
	FILE *f = fopen(path, "r+");
	assert_non_null(f);
	uint64_t bad = 77;
	assert_int_equal(fseek(f, (long)log_off, SEEK_SET), 0);
	assert_int_equal(fwrite(&bad, 8, 1, f), 1);
	assert_int_equal(fseek(f, (long)heap_off, SEEK_SET), 0);
	assert_int_equal(fwrite(&bad, 8, 1, f), 1);
	fclose(f);
	assert_pstm_ok(region_check(C.uri, &rep));
	assert_int_equal(rep.damage, 2);
	check_report_free(&rep);
	/* a damaged heap header keeps the region from opening */
	assert_int_equal(pstm_open(C.uri, &r), PSTM_ECORRUPT);
	finish();
}

static void test_check_recover_shm(void **s) { (void)s; check_and_recover("shm"); }
static void test_check_recover_file(void **s) { (void)s; check_and_recover("file"); }

/* Removing a file region's runtime segment under attached processes must
 * not create a second runtime: the open fails until they are gone (or
 * dead), then rebuilds it. */
static int holder_child(void *arg, int id)
{
	int *fds = arg;
	pstm_region *r;
	char c;
	(void)id;
	if (pstm_open(C.uri, &r))
		return 2;
	if (write(fds[1], "a", 1) != 1 || read(fds[2], &c, 1) != 1)
		return 3;
	if (c == 'k')
		pause(); /* wait to be killed, attached */
	pstm_close(r);
	return 0;
}

static void test_runtime_removed_while_attached(void **s)
{
	(void)s;
	int up[2], down[2];
	char c;
	pstm_region *r;
	struct pstm_region ro;
	start("file");
	assert_int_equal(region_map_readonly(C.uri, &ro), 0);
	char rt[sizeof(ro.rt_path)];
	snprintf(rt, sizeof(rt), "%s", ro.rt_path);
	region_unmap_readonly(&ro);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(pipe(up), 0);
		assert_int_equal(pipe(down), 0);
		int fds[3] = {up[0], up[1], down[0]};
		pid_t h = test_spawn(holder_child, fds, 0);
		assert_int_equal(read(up[0], &c, 1), 1);
		assert_int_equal(unlink(rt), 0);
		assert_int_equal(pstm_open(C.uri, &r), PSTM_ERUNTIME);
		if (round == 0) { /* a clean close */
			assert_int_equal(write(down[1], "c", 1), 1);
			assert_int_equal(test_wait(h), 0);
		} else { /* or death */
			assert_int_equal(write(down[1], "k", 1), 1);
			usleep(10000);
			kill(h, SIGKILL);
			assert_int_equal(test_wait(h), 128 + SIGKILL);
		}
		assert_pstm_ok(pstm_open(C.uri, &r));
		pstm_close(r);
		verify("runtime rebuilt", -1);
		close(up[0]), close(up[1]), close(down[0]), close(down[1]);
	}
	finish();
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_commit_points_shm),
	cmocka_unit_test(test_commit_points_file),
	cmocka_unit_test(test_recovery_points_shm),
	cmocka_unit_test(test_recovery_points_file),
	cmocka_unit_test(test_random_kills_shm),
	cmocka_unit_test(test_random_kills_file),
	cmocka_unit_test(test_check_recover_shm),
	cmocka_unit_test(test_check_recover_file),
	cmocka_unit_test(test_runtime_removed_while_attached),
};

TEST_MAIN(tests)
