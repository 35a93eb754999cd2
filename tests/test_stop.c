/*
 * test_stop.c - a stopped process does not block the others (issue 16;
 * docs/design.md, "Stopped processes").  Three processes transfer money
 * between the same two accounts; one of them SIGSTOPs itself at a commit
 * point (PSTM_CRASH_AT=NAME:N:stop) or right after taking the escalation
 * token, and stays stopped for STOP_MS while the parent counts the other
 * two's commits.
 *
 * Before the commit point (commit.locking, commit.locked) the others
 * abort the stopped commit once it has held its locks for STOPPED_NS and
 * take them; a stopped holder of the serial token loses it after
 * SERIAL_REVOKE_NS.  From the commit point on (durable: SEALING, then
 * COMMITTED; volatile: COMMITTED) the stopped commit's remaining work is
 * a handful of stores (seal, write-back, release) that nobody else may
 * do for it, so transactions on its words wait until it runs again: the
 * test checks they make no commit then, and that all of them finish once
 * it is continued.  A fourth process runs read-only transactions over
 * both accounts: it never waits, at any point: past the commit point it
 * reads through the stopped commit's redo record, before it (a durable
 * commit in SEALING, which nobody may abort) it reads the values from
 * before that commit; it always sees the exact total.  The bank's total
 * is exact at the end and pstm check finds nothing.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "stm.h"

enum { ACCOUNTS = 2, STOP_MS = 300 };

struct shared {
	_Atomic uint64_t commits; /* by the two workers */
	_Atomic int done;
	_Atomic uint64_t victim_steps;
	_Atomic uint64_t reads;   /* the auditor's read-only transactions */
	_Atomic int bad_total;    /* the auditor saw a wrong total */
};
static struct shared *SH;
static struct test_bank BANK = {0, ACCOUNTS};
static const char *URI;

static int worker(void *arg, int i)
{
	(void)arg;
	pstm_region *r;
	if (pstm_open(URI, &r) || pstm_atomic(r, test_bank_setup, &BANK))
		return 2;
	uint64_t s = 88172645463325252ull ^ (uint64_t)(i + 1) << 20;
	while (!atomic_load(&SH->done)) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		struct test_xfer x = {&BANK, s & 1, !(s & 1), (s >> 8) % 7 + 1, 0};
		if (pstm_atomic(r, test_bank_transfer, &x))
			return 3;
		atomic_fetch_add(&SH->commits, 1);
	}
	pstm_close(r);
	return 0;
}

/* Read-only transactions over both accounts: they never wait for the
 * stopped commit once it is past its commit point (they read through its
 * redo record), and always see the exact total. */
static int auditor(void *arg, int i)
{
	(void)arg;
	(void)i;
	pstm_region *r;
	if (pstm_open(URI, &r) || pstm_atomic(r, test_bank_setup, &BANK))
		return 2;
	struct test_bank_state bs = {.bank = &BANK};
	while (!atomic_load(&SH->done)) {
		if (pstm_atomic_ro(r, test_bank_read, &bs))
			return 3;
		if (bs.total != ACCOUNTS * 1000)
			atomic_store(&SH->bad_total, 1);
		atomic_fetch_add(&SH->reads, 1);
	}
	pstm_close(r);
	return 0;
}

/* A transfer that reads account 0, waits for the workers to commit a
 * transfer after that read (their counter lags their commits by at most
 * one each: the third increment is of a later commit), then reads
 * account 1: every attempt conflicts, so it escalates after
 * ESCALATE_AFTER.  Once it holds the token (or a worker does, whose
 * commits go on) it does not wait: escalated, it runs alone and commits.
 * (It used to spin a fixed count instead: on a loaded machine that often
 * passed with no commit in between, the attempt committed and the count
 * of aborts started again, and the victim took minutes to escalate.) */
static int starving(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_region *r = pstm_tx_region(tx);
	uint64_t a = pstm_load64(tx, BANK.base);
	uint64_t c = atomic_load(&SH->commits);
	while (atomic_load(&SH->commits) < c + 3 &&
	       atomic_load_explicit(&r->rt->serial, memory_order_relaxed) == 0 &&
	       !atomic_load(&SH->done))
		;
	uint64_t b = pstm_load64(tx, BANK.base + 8);
	pstm_store64(tx, BANK.base, a);
	pstm_store64(tx, BANK.base + 8, b);
	return 0;
}

static int victim(void *arg, int i)
{
	const char *at = arg;
	(void)i;
	pstm_region *r;
	setenv("PSTM_CRASH_AT", at, 1);
	if (pstm_open(URI, &r) || pstm_atomic(r, test_bank_setup, &BANK))
		return 2;
	bool escalate = strncmp(at, "escalate", 8) == 0;
	for (uint64_t k = 0; !atomic_load(&SH->done); k++) {
		struct test_xfer x = {&BANK, k & 1, !(k & 1), 3, 0};
		if (pstm_atomic(r, escalate ? starving : test_bank_transfer, &x))
			return 3;
		atomic_fetch_add(&SH->victim_steps, 1);
	}
	pstm_close(r);
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* The bank's total is exact, pstm check finds nothing; the region goes. */
static void bank_exact_and_remove(void)
{
	pstm_region *r;
	struct test_bank_state bs = {.bank = &BANK};
	assert_pstm_ok(pstm_open(URI, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_setup, &BANK));
	assert_pstm_ok(pstm_atomic(r, test_bank_read, &bs));
	pstm_close(r);
	assert_int_equal(bs.total, ACCOUNTS * 1000);
	test_assert_clean(URI);
	assert_pstm_ok(pstm_unlink(URI));
}

/* Run the three and the auditor; returns the workers' commits while the
 * victim was stopped, and the auditor's in *reads. */
static uint64_t one(const char *at, int durability, uint64_t *reads)
{
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 4 << 20, .durability = durability,
				     .replace = 1};
	URI = durability == PSTM_DURABLE ? test_file_uri("stop") : test_shm_uri("stop");
	assert_pstm_ok(pstm_create(URI, &o, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_setup, &BANK));
	pstm_close(r);
	memset(SH, 0, sizeof(*SH));

	pid_t w[2] = {test_spawn(worker, NULL, 0), test_spawn(worker, NULL, 1)};
	pid_t a = test_spawn(auditor, NULL, 0);
	while (atomic_load(&SH->commits) < 100 || atomic_load(&SH->reads) < 100)
		sleep_ms(1);
	pid_t v = test_spawn(victim, (void *)at, 0);
	int st;
	assert_int_equal(waitpid(v, &st, WUNTRACED), v);
	assert_true(WIFSTOPPED(st)); /* at its point, maybe holding locks */
	uint64_t c0 = atomic_load(&SH->commits), r0 = atomic_load(&SH->reads);
	sleep_ms(STOP_MS);
	uint64_t during = atomic_load(&SH->commits) - c0;
	*reads = atomic_load(&SH->reads) - r0;
	kill(v, SIGCONT);
	uint64_t c1 = atomic_load(&SH->commits);
	for (int k = 0; k < 5000 && atomic_load(&SH->commits) < c1 + 100; k++)
		sleep_ms(1);
	assert_true(atomic_load(&SH->commits) >= c1 + 100); /* all run again */
	atomic_store(&SH->done, 1);
	assert_int_equal(test_wait(v), 0);
	assert_int_equal(test_wait(w[0]), 0);
	assert_int_equal(test_wait(w[1]), 0);
	assert_int_equal(test_wait(a), 0);
	assert_int_equal(atomic_load(&SH->bad_total), 0);

	bank_exact_and_remove();
	return during;
}

static const struct {
	const char *at;
	int frees; /* the others must commit while it is stopped */
} POINTS[] = {
	{"commit.locking:50:stop", 1},  {"commit.locked:50:stop", 1},
	{"commit.sealed:50:stop", 0},   {"commit.logged:50:stop", 0},
	{"commit.written:50:stop", 0},  {"commit.retired:50:stop", 0},
	{"commit.released:50:stop", 0}, {"escalate.taken:1:stop", 1},
};

static void run_points(int durability)
{
	for (size_t i = 0; i < sizeof(POINTS) / sizeof(*POINTS); i++) {
		/* volatile regions seal nothing: commit.sealed is still
		 * before their commit point (LOCKING) */
		int frees = POINTS[i].frees ||
			    (durability != PSTM_DURABLE &&
			     strncmp(POINTS[i].at, "commit.sealed", 13) == 0);
		uint64_t reads;
		uint64_t during = one(POINTS[i].at, durability, &reads);
		print_message("# %s %s: %llu commits by the others, %llu read-only "
			      "ones, in %d ms stopped\n",
			      durability == PSTM_DURABLE ? "file" : "shm", POINTS[i].at,
			      (unsigned long long)during, (unsigned long long)reads,
			      STOP_MS);
		/* readers never wait: not even for a durable commit stopped
		 * in SEALING (before its commit point, and no waiter may
		 * abort it): they read the values from before it */
		assert_true(reads > 2);
		/* a worker may count a commit it finished just before the
		 * stop: at most one each */
		if (frees)
			assert_true(during > 2);
		else
			assert_true(during <= 2);
	}
}

static void test_stop_points_shm(void **s)
{
	(void)s;
	run_points(PSTM_DEFAULT);
}

static void test_stop_points_file(void **s)
{
	(void)s;
	run_points(PSTM_DURABLE);
}

/*
 * A stopped recoverer: D dies holding both accounts (commit.locked); V
 * opens the region, claims D to recover it (recover.claimed) and stops
 * there.  D's entry stays RECOVERING by a live process, so nobody else
 * may settle D's slot (two recoverers would replay over each other), and
 * transfers wait for V: the same bounded window as after a commit point
 * (V's settle is a handful of stores and releases).  Once V runs again
 * everything goes on.
 */
static int dier(void *arg, int i)
{
	(void)arg;
	(void)i;
	pstm_region *r;
	setenv("PSTM_CRASH_AT", "commit.locked:2", 1);
	if (pstm_open(URI, &r) || pstm_atomic(r, test_bank_setup, &BANK))
		return 2;
	struct test_xfer x = {&BANK, 0, 1, 5, 0};
	pstm_atomic(r, test_bank_transfer, &x);
	pstm_atomic(r, test_bank_transfer, &x);
	return 4; /* not killed */
}

static int opener(void *arg, int i)
{
	(void)i;
	pstm_region *r;
	setenv("PSTM_CRASH_AT", arg, 1);
	if (pstm_open(URI, &r)) /* recovers D, stopping at the point */
		return 2;
	pstm_close(r);
	return 0;
}

static void test_stopped_recoverer(void **s)
{
	(void)s;
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 4 << 20, .replace = 1};
	URI = test_shm_uri("stoprec");
	assert_pstm_ok(pstm_create(URI, &o, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_setup, &BANK));
	pstm_close(r);
	memset(SH, 0, sizeof(*SH));
	assert_int_equal(test_wait(test_spawn(dier, NULL, 0)), 128 + SIGKILL);
	pid_t v = test_spawn(opener, (void *)"recover.claimed:1:stop", 0);
	int st;
	assert_int_equal(waitpid(v, &st, WUNTRACED), v);
	assert_true(WIFSTOPPED(st));
	pid_t w[2] = {test_spawn(worker, NULL, 0), test_spawn(worker, NULL, 1)};
	sleep_ms(STOP_MS);
	uint64_t during = atomic_load(&SH->commits);
	print_message("# a recoverer stopped at recover.claimed: %llu commits by "
		      "the others in %d ms\n", (unsigned long long)during, STOP_MS);
	assert_int_equal(during, 0); /* they wait: the window above */
	kill(v, SIGCONT);
	assert_int_equal(test_wait(v), 0);
	for (int k = 0; k < 5000 && atomic_load(&SH->commits) < 100; k++)
		sleep_ms(1);
	assert_true(atomic_load(&SH->commits) >= 100);
	atomic_store(&SH->done, 1);
	assert_int_equal(test_wait(w[0]), 0);
	assert_int_equal(test_wait(w[1]), 0);
	bank_exact_and_remove();
}

static pid_t stopped_victim; /* killed by kill_victim if a test fails */

static int kill_victim(void **s)
{
	(void)s;
	if (stopped_victim > 0) {
		kill(stopped_victim, SIGKILL);
		waitpid(stopped_victim, NULL, 0);
	}
	stopped_victim = 0;
	return 0;
}

/*
 * Readers leave a commit stopped before its commit point alone: a
 * victim locks both accounts for a transfer and stops (commit.locked:1);
 * read-only transactions meanwhile read the balances from before it, at
 * once, and do not abort it (they used to, after STOPPED_NS: it then ran
 * its transfer a second time).  Once continued, its one attempt commits.
 * Shm and durable file.
 */
static _Atomic int attempts; /* the victim's, in the victim */

static int counted_transfer(pstm_tx *tx, void *arg)
{
	atomic_fetch_add(&attempts, 1);
	return test_bank_transfer(tx, arg);
}

static int lone_victim(void *arg, int i)
{
	(void)arg;
	(void)i;
	pstm_region *r;
	setenv("PSTM_CRASH_AT", "commit.locked:1:stop", 1);
	if (pstm_open(URI, &r) || pstm_atomic(r, test_bank_setup, &BANK))
		return 2;
	struct test_xfer x = {&BANK, 0, 1, 7, 0};
	if (pstm_atomic(r, counted_transfer, &x))
		return 3;
	pstm_close(r);
	return atomic_load(&attempts) == 1 ? 0 : 10 + atomic_load(&attempts);
}

static int balances(pstm_tx *tx, void *arg)
{
	uint64_t *b = arg;
	b[0] = pstm_load64(tx, BANK.base);
	b[1] = pstm_load64(tx, BANK.base + 8);
	return 0;
}

static void readers_before(int durability)
{
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 4 << 20, .durability = durability,
				     .replace = 1};
	URI = durability == PSTM_DURABLE ? test_file_uri("before") : test_shm_uri("before");
	assert_pstm_ok(pstm_create(URI, &o, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_setup, &BANK));
	uint64_t b[2];
	/* meets the setup's versions: raises the clock past them, as any
	 * reader does (a commit's old values are read only if the clock
	 * had passed them when it began) */
	assert_pstm_ok(pstm_atomic_ro(r, balances, b));
	pid_t v = stopped_victim = test_spawn(lone_victim, NULL, 0);
	int st;
	assert_int_equal(waitpid(v, &st, WUNTRACED), v);
	assert_true(WIFSTOPPED(st)); /* both accounts locked */
	struct pstm_stats s0, s1;
	assert_pstm_ok(pstm_stats_get(r, &s0));
	uint64_t n = 0, t0 = test_now_ns();
	while (test_now_ns() - t0 < 50000000ull) { /* 50 ms, 50 STOPPED_NS */
		assert_pstm_ok(pstm_atomic_ro(r, balances, b));
		assert_int_equal(b[0], 1000); /* from before the transfer */
		assert_int_equal(b[1], 1000);
		n++;
	}
	assert_pstm_ok(pstm_stats_get(r, &s1));
	print_message("# %s: %llu read-only transactions beside a commit stopped "
		      "at commit.locked, %llu aborts\n",
		      durability == PSTM_DURABLE ? "file" : "shm", (unsigned long long)n,
		      (unsigned long long)(s1.aborts_read + s1.aborts_lock -
					   s0.aborts_read - s0.aborts_lock));
	assert_true(n > 100);
	kill(v, SIGCONT);
	stopped_victim = 0;
	assert_int_equal(test_wait(v), 0); /* one attempt: nobody aborted it */
	assert_pstm_ok(pstm_atomic_ro(r, balances, b));
	assert_int_equal(b[0], 993);
	assert_int_equal(b[1], 1007);
	pstm_close(r);
	test_assert_clean(URI);
	assert_pstm_ok(pstm_unlink(URI));
}

static void test_readers_before_commit_point(void **s)
{
	(void)s;
	readers_before(PSTM_DEFAULT);
	readers_before(PSTM_DURABLE);
}

/*
 * The same for a commit that aborts itself and stops while it still holds
 * its locks (abort.rollback:1): the victim reads account 0, waits until
 * the parent has changed it, writes account 1; its commit locks account
 * 1, fails validation, enters ROLLBACK and stops.  Read-only transactions
 * of an ordinary handle and of an observer read account 1 as it was, at
 * once, and abort nothing; continued, the victim runs again and commits.
 */
static int rolling_transfer(pstm_tx *tx, void *arg)
{
	(void)arg;
	atomic_fetch_add(&attempts, 1);
	uint64_t a = pstm_load64(tx, BANK.base);
	atomic_store(&SH->victim_steps, 1); /* read it */
	while (!atomic_load(&SH->done))
		;
	pstm_store64(tx, BANK.base + 8, pstm_load64(tx, BANK.base + 8) + a % 7 + 1);
	return 0;
}

static int rolling_victim(void *arg, int i)
{
	(void)i;
	pstm_region *r;
	setenv("PSTM_CRASH_AT", arg ? arg : "abort.rollback:1:stop", 1);
	if (pstm_open(URI, &r) || pstm_atomic(r, test_bank_setup, &BANK) ||
	    pstm_atomic(r, rolling_transfer, NULL))
		return 2;
	pstm_close(r);
	return atomic_load(&attempts) == 2 ? 0 : 10 + atomic_load(&attempts);
}

static int add_to_first(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_store64(tx, BANK.base, pstm_load64(tx, BANK.base) + 1);
	return 0;
}

static void readers_beside_rollback(int durability)
{
	pstm_region *r, *obs;
	struct pstm_create_opts o = {.size_bytes = 4 << 20, .durability = durability,
				     .replace = 1};
	URI = durability == PSTM_DURABLE ? test_file_uri("rollback")
					 : test_shm_uri("rollback");
	assert_pstm_ok(pstm_create(URI, &o, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_setup, &BANK));
	memset(SH, 0, sizeof(*SH));
	pid_t v = stopped_victim = test_spawn(rolling_victim, NULL, 0);
	while (!atomic_load(&SH->victim_steps))
		sleep_ms(1);
	assert_pstm_ok(pstm_atomic(r, add_to_first, NULL)); /* 1001 */
	atomic_store(&SH->done, 1);
	int st;
	assert_int_equal(waitpid(v, &st, WUNTRACED), v);
	assert_true(WIFSTOPPED(st)); /* in ROLLBACK, account 1 locked */
	assert_pstm_ok(pstm_open_opts(URI, PSTM_OPEN_OBSERVE, &obs));
	uint64_t t0 = test_now_ns(), n = 0;
	while (test_now_ns() - t0 < 20000000ull) { /* 20 STOPPED_NS */
		for (int k = 0; k < 2; k++) {
			uint64_t b[2] = {0, 0};
			pstm_tx *tx;
			assert_pstm_ok(pstm_tx_begin(k ? obs : r, PSTM_TX_READ_ONLY, &tx));
			assert_pstm_ok(pstm_tx_call(tx, balances, b));
			assert_pstm_ok(pstm_tx_commit(tx));
			assert_int_equal(b[0], 1001);
			assert_int_equal(b[1], 1000);
		}
		n++;
	}
	print_message("# %s: %llu pairs of read-only transactions beside a commit "
		      "stopped in ROLLBACK\n", durability == PSTM_DURABLE ? "file" : "shm",
		      (unsigned long long)n);
	assert_pstm_ok(pstm_close(obs));
	kill(v, SIGCONT);
	stopped_victim = 0;
	assert_int_equal(test_wait(v), 0); /* aborted once, then committed */
	uint64_t b[2];
	assert_pstm_ok(pstm_atomic_ro(r, balances, b));
	assert_int_equal(b[0], 1001);
	assert_int_equal(b[1], 1000 + 1001 % 7 + 1);
	pstm_close(r);
	test_assert_clean(URI);
	assert_pstm_ok(pstm_unlink(URI));
}

/* Killed there instead: its locks stay until it is recovered; readers
 * read the old value meanwhile, and the first transaction that needs the
 * word recovers it (locks dropped, nothing written). */
static void killed_in_rollback(int durability)
{
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 4 << 20, .durability = durability,
				     .replace = 1};
	URI = durability == PSTM_DURABLE ? test_file_uri("rbkill") : test_shm_uri("rbkill");
	assert_pstm_ok(pstm_create(URI, &o, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_setup, &BANK));
	memset(SH, 0, sizeof(*SH));
	pid_t v = test_spawn(rolling_victim, (void *)"abort.rollback:1", 0);
	while (!atomic_load(&SH->victim_steps))
		sleep_ms(1);
	assert_pstm_ok(pstm_atomic(r, add_to_first, NULL)); /* 1001 */
	atomic_store(&SH->done, 1);
	assert_int_equal(test_wait(v), 128 + SIGKILL);
	uint64_t b[2] = {0, 0};
	pstm_tx *tx;
	assert_pstm_ok(pstm_tx_begin(r, PSTM_TX_READ_ONLY, &tx));
	assert_pstm_ok(pstm_tx_call(tx, balances, b)); /* the old value, at once */
	assert_pstm_ok(pstm_tx_commit(tx));
	assert_int_equal(b[0], 1001);
	assert_int_equal(b[1], 1000);
	struct test_xfer x = {&BANK, 1, 0, 10, 0};
	assert_pstm_ok(pstm_atomic(r, test_bank_transfer, &x)); /* recovers it */
	assert_pstm_ok(pstm_atomic_ro(r, balances, b));
	assert_int_equal(b[0], 1011);
	assert_int_equal(b[1], 990);
	pstm_close(r);
	test_assert_clean(URI);
	assert_pstm_ok(pstm_unlink(URI));
}

static void test_readers_beside_rollback(void **s)
{
	(void)s;
	readers_beside_rollback(PSTM_DEFAULT);
	readers_beside_rollback(PSTM_DURABLE);
	killed_in_rollback(PSTM_DEFAULT);
	killed_in_rollback(PSTM_DURABLE);
}

int main(void)
{
	SH = test_map_shared(NULL, sizeof(*SH));
	if (!SH)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stop_points_shm),
		cmocka_unit_test(test_stop_points_file),
		cmocka_unit_test(test_stopped_recoverer),
		cmocka_unit_test_teardown(test_readers_before_commit_point, kill_victim),
		cmocka_unit_test_teardown(test_readers_beside_rollback, kill_victim),
	};
	TEST_OUTPUT();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
