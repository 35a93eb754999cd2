/*
 * test_inspect.c - pstm info and pstm check look at a region without
 * attaching to it: they work while its process table is full, and they
 * leave a dead process's entry for recovery instead of recovering it
 * (lib/inspect.c, lib/check.c; tests/cli.t has the rest of the CLI).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* the test's region, removed by teardown even when the test failed */
static const char *region;

static int teardown(void **s)
{
	(void)s;
	if (region)
		pstm_unlink(region);
	region = NULL;
	return 0;
}

/* Run "$PSTM_BIN/pstm ARGS" into @out; returns its exit status. */
__attribute__((format(printf, 3, 4)))
static int run_cli(char *out, size_t n, const char *fmt, ...)
{
	char args[512], cmd[768];
	const char *bin = getenv("PSTM_BIN");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s/pstm %s 2>&1", bin ? bin : "build", args);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	size_t k = fread(out, 1, n - 1, f);
	out[k] = 0;
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* A second process attached to @uri until its pipe is closed. */
struct holder {
	pid_t pid;
	int release;           /* write end: closing it lets the holder go */
};

static void hold(const char *uri, struct holder *h)
{
	int ready[2], go[2];
	char c = 0;
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	h->pid = fork();
	assert_true(h->pid >= 0);
	if (h->pid == 0) {
		pstm_region *r;
		close(ready[0]);
		close(go[1]);
		if (pstm_open(uri, &r) != 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		(void)!read(go[0], &c, 1); /* until the parent closes it */
		pstm_close(r);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	h->release = go[1];
}

static void release(struct holder *h)
{
	close(h->release);
	assert_int_equal(test_wait(h->pid), 0);
}

/* This process and one more fill a two-entry table: info and check still
 * read it and list both; an open is refused. */
static void full_table(const char *uri)
{
	struct pstm_create_opts o = {.size_bytes = 2 << 20, .max_procs = 2, .replace = 1};
	pstm_region *r, *r2;
	struct holder h;
	char out[16384], pid[32];

	region = uri;
	assert_pstm_ok(pstm_create(uri, &o, &r));
	hold(uri, &h);
	assert_int_equal(pstm_open(uri, &r2), PSTM_EPROCFULL);

	assert_int_equal(run_cli(out, sizeof(out), "info --json %s", uri), 0);
	assert_non_null(strstr(out, "\"runtime\":{\"found\":true"));
	snprintf(pid, sizeof(pid), "\"pid\":%d,", (int)getpid());
	assert_non_null(strstr(out, pid));
	snprintf(pid, sizeof(pid), "\"pid\":%d,", (int)h.pid);
	assert_non_null(strstr(out, pid));
	assert_null(strstr(out, "\"dead\""));
	assert_int_equal(run_cli(out, sizeof(out), "info %s", uri), 0);
	assert_non_null(strstr(out, "2 of 2 entries in use"));
	assert_int_equal(run_cli(out, sizeof(out), "check --json %s", uri), 0);
	assert_non_null(strstr(out, "\"processes\":2,"));

	release(&h);
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(uri));
}

static void test_full_table_shm(void **s)
{
	(void)s;
	full_table(test_shm_uri("inspect"));
}

static void test_full_table_file(void **s)
{
	(void)s;
	full_table(test_file_uri("inspect"));
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

/* A process that died attached is shown dead, and stays for recovery:
 * info and check recover nothing, the next open does. */
static void test_dead_left_for_recovery(void **s)
{
	(void)s;
	const char *uri = test_file_uri("inspect");
	struct pstm_create_opts o = {.size_bytes = 2 << 20, .replace = 1};
	pstm_region *r;
	char out[16384];

	region = uri;
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_close(r));
	assert_int_equal(test_wait(test_spawn(attach_and_die, (void *)uri, 0)),
			 128 + SIGKILL);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(run_cli(out, sizeof(out), "info --json %s", uri), 0);
		assert_non_null(strstr(out, "\"state\":\"dead\""));
		assert_int_equal(run_cli(out, sizeof(out), "check --json %s", uri), 0);
		assert_non_null(strstr(out, "\"dead_processes\":1,"));
	}
	assert_int_equal(run_cli(out, sizeof(out), "info %s", uri), 0);
	assert_non_null(strstr(out, " dead\n"));
	assert_pstm_ok(pstm_open(uri, &r)); /* recovers it */
	assert_int_equal(run_cli(out, sizeof(out), "check --json %s", uri), 0);
	assert_non_null(strstr(out, "\"dead_processes\":0,"));
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(uri));
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test_teardown(test_full_table_shm, teardown),
	cmocka_unit_test_teardown(test_full_table_file, teardown),
	cmocka_unit_test_teardown(test_dead_left_for_recovery, teardown),
};

TEST_MAIN(tests)
