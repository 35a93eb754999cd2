/*
 * test_daemon_open.c - pstmd's own opens of regions run off its event
 * loop.  The test holds the flock of a region's runtime companion (as any
 * process that can read it may), so pstmd's open of that region waits;
 * meanwhile pstmd must answer pings and open another region for another
 * client at once, give the stuck open up after its 2 s, open the region
 * once the flock is free, and stop cleanly (SIGTERM) with an open stuck.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "companion.h"
#include "helpers.h"
#include "pstmd_util.h"

static struct test_pstmd D;
static int lock = -1; /* the flock the test holds (a failed test's too) */
static char dir[128], path_slow[192], path_fast[192];
static struct result {
	_Atomic int rc[4];
	_Atomic uint64_t ns[4];
	_Atomic int started[4];
} *res;

/* A client: pstm_open("pstmd:@name"), its result and time in res[@id]. */
static int client(void *arg, int id)
{
	char uri[64];
	pstm_region *r;
	setenv("PSTM_DAEMON_SOCKET", D.sock, 1);
	unsetenv("PSTM_DAEMON");
	snprintf(uri, sizeof(uri), "pstmd:%s", (const char *)arg);
	atomic_store(&res->started[id], 1);
	uint64_t t0 = test_now_ns();
	int rc = pstm_open(uri, &r);
	atomic_store(&res->ns[id], test_now_ns() - t0);
	atomic_store(&res->rc[id], rc);
	if (!rc)
		pstm_close(r);
	return 0;
}

/* The runtime companion of @path, flocked (as pstm_open would). */
static int hold_flock(const char *path)
{
	char rt[COMPANION_PATH_MAX], wc[COMPANION_PATH_MAX];
	assert_int_equal(companion_paths_of(path, rt, wc), 0);
	int fd = open(rt, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	return fd;
}

static int teardown(void **s)
{
	(void)s;
	if (lock >= 0)
		close(lock);
	lock = -1;
	if (D.pid > 0) {
		kill(D.pid, SIGCONT);
		test_pstmd_kill(&D);
	}
	return 0;
}

static bool started(void *arg)
{
	return atomic_load((_Atomic int *)arg) != 0;
}

static int group_setup(void **s)
{
	(void)s;
	setenv("PSTM_DAEMON", "off", 1); /* this process; clients turn it on */
	snprintf(dir, sizeof(dir), "/tmp/pstm-test-dopen-%d", (int)getpid());
	if (mkdir(dir, 0700) != 0)
		return -1;
	snprintf(path_slow, sizeof(path_slow), "%s/slow", dir);
	snprintf(path_fast, sizeof(path_fast), "%s/fast", dir);
	struct pstm_create_opts o = {.size_bytes = 4 << 20};
	pstm_region *r;
	if (pstm_create(path_slow, &o, &r) || pstm_close(r) ||
	    pstm_create(path_fast, &o, &r) || pstm_close(r))
		return -1;
	test_pstmd_names(&D);
	snprintf(D.config, sizeof(D.config), "/tmp/pstm-test-dopen-%d.conf", (int)getpid());
	FILE *f = fopen(D.config, "w");
	if (!f)
		return -1;
	fprintf(f, "directory = %s\n", dir);
	fclose(f);
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		   -1, 0);
	return res == MAP_FAILED ? -1 : 0;
}

static int group_teardown(void **s)
{
	(void)s;
	test_pstmd_remove(&D);
	pstm_unlink_opts(path_slow, PSTM_UNLINK_FORCE);
	pstm_unlink_opts(path_fast, PSTM_UNLINK_FORCE);
	rmdir(dir);
	return 0;
}

/*
 * One client's open waits for the flock: pings and another client's open
 * of another region are answered meanwhile, within 250 ms each (they
 * waited up to 2 s when the open ran in the loop).
 */
static void test_blocked_open_stalls_nobody(void **s)
{
	(void)s;
	memset(res, 0, sizeof(*res));
	test_pstmd_start(&D, NULL);
	lock = hold_flock(path_slow);
	pid_t slow = test_spawn(client, "slow", 0);
	assert_true(test_poll_until(started, &res->started[0], 5000));
	usleep(100000); /* its OPEN is in pstmd's hands */

	double worst = 0;
	for (int i = 0; i < 10; i++) {
		struct test_pstmd_status st;
		uint64_t t0 = test_now_ns();
		assert_int_equal(test_pstmd_ping(D.sock, &st), 0);
		double ms = (double)(test_now_ns() - t0) / 1e6;
		worst = ms > worst ? ms : worst;
	}
	pid_t fast = test_spawn(client, "fast", 1);
	assert_int_equal(test_wait(fast), 0);
	double fast_ms = (double)atomic_load(&res->ns[1]) / 1e6;
	print_message("# an open blocked on the flock: 10 pings answered in %.2f ms at "
		      "most, another region opened in %.2f ms\n", worst, fast_ms);
	assert_true(worst < 250);
	assert_int_equal(atomic_load(&res->rc[1]), 0);
	assert_true(fast_ms < 250);
	assert_int_equal(atomic_load(&res->rc[0]), 0); /* not answered yet */

	assert_int_equal(test_wait(slow), 0);
	double slow_ms = (double)atomic_load(&res->ns[0]) / 1e6;
	int rc = atomic_load(&res->rc[0]);
	print_message("# the blocked open failed after %.0f ms: %s\n", slow_ms,
		      pstm_strerror(rc));
	assert_true(rc < 0);
	assert_true(slow_ms > 1500 && slow_ms < 4000);

	/* the flock free, the same region opens */
	close(lock);
	lock = -1;
	pid_t again = test_spawn(client, "slow", 2);
	assert_int_equal(test_wait(again), 0);
	assert_int_equal(atomic_load(&res->rc[2]), 0);
	test_pstmd_stop(&D); /* exits 0 */
}

/* SIGTERM while an open waits for the flock: pstmd stops at once and
 * cleanly (the open is interrupted), and the client gets an answer or
 * the end of its connection. */
static void test_stop_with_open_pending(void **s)
{
	(void)s;
	memset(res, 0, sizeof(*res));
	test_pstmd_start(&D, NULL);
	lock = hold_flock(path_slow);
	pid_t slow = test_spawn(client, "slow", 0);
	assert_true(test_poll_until(started, &res->started[0], 5000));
	usleep(100000);
	uint64_t t0 = test_now_ns();
	test_pstmd_stop(&D);
	double ms = (double)(test_now_ns() - t0) / 1e6;
	print_message("# pstmd stopped in %.1f ms with an open pending\n", ms);
	assert_true(ms < 1000);
	assert_int_equal(test_wait(slow), 0);
	assert_true(atomic_load(&res->rc[0]) < 0);
	close(lock);
	lock = -1;
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test_teardown(test_blocked_open_stalls_nobody, teardown),
	cmocka_unit_test_teardown(test_stop_with_open_pending, teardown),
};

int main(void)
{
	TEST_OUTPUT();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
