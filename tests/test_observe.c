/*
 * test_observe.c - a handle opened with PSTM_OPEN_OBSERVE (what pstm dump
 * uses) reads without side effects on the other processes: it recovers no
 * dead process (at open, or at a lock one left), it stores nothing, and
 * its read-only transactions neither wait for a transaction that holds
 * the serial token (even of a stopped process) nor take it.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "inspect.h"
#include "stm.h"

static const char *region;

static int teardown(void **s)
{
	(void)s;
	if (region)
		pstm_unlink_opts(region, PSTM_UNLINK_FORCE);
	region = NULL;
	return 0;
}

/* entries of the process table in @state (INSPECT_*), read offline */
static unsigned procs_in(const char *uri, int state)
{
	struct inspect_report rep;
	unsigned n = 0;
	assert_pstm_ok(region_inspect(uri, &rep));
	for (uint32_t i = 0; i < rep.nprocs; i++)
		n += rep.procs[i].state == state;
	inspect_report_free(&rep);
	return n;
}

static int word_fn(pstm_tx *tx, void *arg)
{
	uint64_t *v = arg;
	pstm_off root = pstm_root(tx, 64);
	if (v[1])
		pstm_store64(tx, root, v[1]);
	v[0] = pstm_load64(tx, root);
	return 0;
}

/* the root word, read-only */
static int read_fn(pstm_tx *tx, void *arg)
{
	uint64_t *v = arg;
	*v = pstm_load64(tx, pstm_root(tx, 64));
	return 0;
}

static const char *setup(uint64_t value)
{
	struct pstm_create_opts o = {.size_bytes = 2 << 20, .replace = 1};
	pstm_region *r;
	uint64_t v[2] = {0, value};
	region = test_shm_uri("observe");
	assert_pstm_ok(pstm_create(region, &o, &r));
	assert_pstm_ok(pstm_atomic(r, word_fn, v));
	assert_pstm_ok(pstm_close(r));
	return region;
}

static int attach_and_die(void *arg, int i)
{
	pstm_region *r;
	(void)i;
	if (pstm_open(arg, &r) != 0)
		return 1;
	raise(SIGKILL);
	return 1;
}

/* A dead member stays dead through an observer's open, reads and close;
 * the next ordinary open recovers it. */
static void test_dead_member_left(void **s)
{
	(void)s;
	const char *uri = setup(7);
	pstm_region *r;
	uint64_t v = 0;
	assert_int_equal(test_wait(test_spawn(attach_and_die, (void *)uri, 0)),
			 128 + SIGKILL);
	assert_int_equal(procs_in(uri, INSPECT_DEAD), 1);
	assert_pstm_ok(pstm_open_opts(uri, PSTM_OPEN_OBSERVE, &r));
	assert_pstm_ok(pstm_atomic_ro(r, read_fn, &v));
	assert_int_equal(v, 7);
	assert_int_equal(procs_in(uri, INSPECT_DEAD), 1);
	assert_pstm_ok(pstm_close(r));
	assert_int_equal(procs_in(uri, INSPECT_DEAD), 1);
	assert_pstm_ok(pstm_open(uri, &r));
	assert_int_equal(procs_in(uri, INSPECT_DEAD), 0);
	assert_pstm_ok(pstm_close(r));
}

/* An observer stores nothing: pstm_atomic runs read-only on it. */
static void test_no_store(void **s)
{
	(void)s;
	const char *uri = setup(7);
	pstm_region *r;
	uint64_t v[2] = {0, 9};
	assert_int_equal(pstm_open_opts(uri, 2, &r), PSTM_EINVAL);
	assert_pstm_ok(pstm_open_opts(uri, PSTM_OPEN_OBSERVE, &r));
	assert_int_equal(pstm_atomic(r, word_fn, v), PSTM_EINVAL);
	struct pstm_region_info in;
	pstm_tx *tx;
	assert_pstm_ok(pstm_region_info(r, &in));
	assert_pstm_ok(pstm_tx_begin(r, 0, &tx));
	assert_int_equal(pstm_tx_store64(tx, in.heap_off, 1), PSTM_EINVAL);
	assert_pstm_ok(pstm_tx_end(tx));
	v[1] = 0;
	assert_pstm_ok(pstm_atomic(r, word_fn, v));
	assert_int_equal(v[0], 7);
	assert_pstm_ok(pstm_close(r));
}

/* A child that holds the serial token, then stops itself. */
static int hold_token(void *arg, int i)
{
	int *fd = arg;
	pstm_region *r;
	(void)i;
	if (pstm_open(region, &r) != 0 || stm_serial_hold(r) != 0)
		return 1;
	if (write(fd[1], "h", 1) != 1)
		return 1;
	raise(SIGSTOP);
	stm_serial_release(r);
	pstm_close(r);
	return 0;
}

static pid_t holder; /* killed by on_alarm: it would stay stopped */

static void on_alarm(int sig)
{
	(void)sig;
	kill(holder, SIGKILL);
	if (region)
		pstm_unlink_opts(region, PSTM_UNLINK_FORCE);
	static const char msg[] = "# a read-only transaction waited for the token\n";
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(3);
}

/* Read-only transactions run while a stopped process holds the token
 * that makes everybody else's wait: ordinary and observing handles. */
static void test_token_of_stopped_process(void **s)
{
	(void)s;
	const char *uri = setup(5);
	int fd[2];
	char c;
	uint64_t v = 0;
	pstm_region *r, *o;
	assert_int_equal(pipe(fd), 0);
	pid_t pid = holder = test_spawn(hold_token, fd, 0);
	int st;
	assert_int_equal(read(fd[0], &c, 1), 1);
	/* stopped, with the token (SIGCONT before its SIGSTOP would be lost) */
	assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
	assert_true(WIFSTOPPED(st));
	assert_pstm_ok(pstm_open(uri, &r));
	assert_true(atomic_load(&r->rt->serial) != 0);
	assert_pstm_ok(pstm_open_opts(uri, PSTM_OPEN_OBSERVE, &o));
	signal(SIGALRM, on_alarm);
	alarm(10);
	assert_pstm_ok(pstm_atomic_ro(r, read_fn, &v));
	assert_int_equal(v, 5);
	v = 0;
	assert_pstm_ok(pstm_atomic(o, read_fn, &v));
	assert_int_equal(v, 5);
	pstm_tx *tx;
	assert_pstm_ok(pstm_tx_begin(o, PSTM_TX_READ_ONLY, &tx));
	assert_pstm_ok(pstm_tx_call(tx, read_fn, &v));
	assert_pstm_ok(pstm_tx_commit(tx));
	alarm(0);
	assert_true(atomic_load(&r->rt->serial) != 0); /* still the child's */
	kill(pid, SIGCONT);
	assert_int_equal(test_wait(pid), 0);
	assert_int_equal(atomic_load(&r->rt->serial), 0);
	assert_pstm_ok(pstm_close(o));
	assert_pstm_ok(pstm_close(r));
	close(fd[0]);
	close(fd[1]);
}

/* Killed past its commit point, the root word still locked: only a
 * recovery (replaying its record) frees it. */
static int die_locked(void *arg, int i)
{
	pstm_region *r;
	uint64_t v[2] = {0, 99};
	(void)i;
	setenv("PSTM_CRASH_AT", "commit.logged:1", 1);
	if (pstm_open(arg, &r) != 0)
		return 1;
	pstm_atomic(r, word_fn, v);
	return 2; /* the crash point did not fire */
}

/* A word a dead process locked past its commit point: an observer reads
 * its committed value through the dead commit's redo record (issue 16:
 * readers never wait past a commit point), and recovers nobody: the dead
 * process stays for recovery; an ordinary open recovers it. */
static void test_dead_lock_read_through(void **s)
{
	(void)s;
	const char *uri = setup(7);
	pstm_region *r;
	uint64_t v = 0;
	assert_int_equal(test_wait(test_spawn(die_locked, (void *)uri, 0)),
			 128 + SIGKILL);
	assert_pstm_ok(pstm_open_opts(uri, PSTM_OPEN_OBSERVE, &r));
	uint64_t t0 = test_now_ns();
	/* 20 ms of transactions, each reading the committed 99 */
	for (int i = 0; i < 3 || test_now_ns() - t0 < 20000000ull; i++) {
		pstm_tx *tx;
		v = 0;
		assert_pstm_ok(pstm_tx_begin(r, PSTM_TX_READ_ONLY, &tx));
		assert_pstm_ok(pstm_tx_call(tx, read_fn, &v));
		assert_pstm_ok(pstm_tx_commit(tx));
		assert_int_equal(v, 99);
	}
	assert_int_equal(procs_in(uri, INSPECT_DEAD), 1); /* not recovered */
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_open(uri, &r)); /* recovers the dead writer */
	assert_pstm_ok(pstm_atomic_ro(r, read_fn, &v));
	assert_int_equal(v, 99); /* it had committed: replayed */
	assert_int_equal(procs_in(uri, INSPECT_DEAD), 0);
	assert_pstm_ok(pstm_close(r));
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test_teardown(test_dead_member_left, teardown),
	cmocka_unit_test_teardown(test_no_store, teardown),
	cmocka_unit_test_teardown(test_token_of_stopped_process, teardown),
	cmocka_unit_test_teardown(test_dead_lock_read_through, teardown),
};

TEST_MAIN(tests)
