/*
 * test_grant.c - pstm_open("pstmd:NAME"): regions in a directory only
 * root can enter, opened for children that setuid to other users.  A
 * grant line gives one uid read-write and another read-only; a uid with
 * no grant is denied; without grant lines the file's mode decides; names
 * with '/', a leading '.' or a symbolic link are refused.  A read-only
 * grant maps the region PROT_READ (a store through the mapping is a
 * SIGSEGV), refuses stores in transactions, and waits for pstmd to
 * recover a dead writer instead of writing the data itself.  It maps
 * the runtime read-only too (a store to it is a SIGSEGV) and attaches
 * nothing, and still reads consistently while a writer commits.  A
 * relaxed region granted read-write flushes to the file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "companion.h"
#include "helpers.h"
#include "pstmd_util.h"
#include "region.h"

#define UID_RW 65534   /* nobody: read-write by a grant line */
#define UID_RO 4242    /* read-only by a grant line */
#define UID_NONE 4343  /* no grant */

static struct test_pstmd D;
static char dir[128];
static struct shared {
	_Atomic int attempts;
	_Atomic int go, go_writer, ready, reader_ready;
	_Atomic uint64_t writes;
	uint64_t base; /* word 0 before busy_writer */
} *sh;

static char path_of[4][192];
enum { R_ACL, R_OPEN, R_SECRET, R_RELAXED };
static const char *const names[] = {"acl", "open", "secret", "relaxed"};

static int init_words(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_off root = pstm_root(tx, 64);
	for (int i = 0; i < 8; i++)
		pstm_store64(tx, root + 8 * (pstm_off)i, 100);
	return 0;
}

static int group_setup(void **s)
{
	(void)s;
	setenv("PSTM_DAEMON", "off", 1); /* this process; children turn it on */
	snprintf(dir, sizeof(dir), "/tmp/pstm-test-grant-%d", (int)getpid());
	if (mkdir(dir, 0700) != 0)
		return -1;
	for (int i = 0; i < 4; i++) {
		struct pstm_create_opts o = {.size_bytes = 4 << 20,
					     .mode = i == R_OPEN ? 0644 : 0600,
					     .durability = i == R_RELAXED ? PSTM_RELAXED : 0};
		pstm_region *r;
		snprintf(path_of[i], sizeof(path_of[i]), "%s/%s", dir, names[i]);
		if (pstm_create(path_of[i], &o, &r) || pstm_atomic(r, init_words, NULL) ||
		    pstm_close(r))
			return -1;
	}
	/* a symbolic link in the directory to a region outside it */
	char link[256];
	snprintf(link, sizeof(link), "%s/link", dir);
	if (symlink(path_of[R_OPEN], link) != 0)
		return -1;
	test_pstmd_names(&D);
	snprintf(D.config, sizeof(D.config), "/tmp/pstm-test-grant-%d.conf", (int)getpid());
	FILE *f = fopen(D.config, "w");
	if (!f)
		return -1;
	fprintf(f, "directory = %s\ngrant acl %d rw\ngrant acl %d ro\n"
		   "grant relaxed * rw\n", dir, UID_RW, UID_RO);
	fclose(f);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		  -1, 0);
	return sh == MAP_FAILED ? -1 : 0;
}

static int group_teardown(void **s)
{
	(void)s;
	char link[256];
	test_pstmd_remove(&D);
	for (int i = 0; i < 4; i++)
		pstm_unlink_opts(path_of[i], PSTM_UNLINK_FORCE);
	snprintf(link, sizeof(link), "%s/link", dir);
	unlink(link);
	rmdir(dir);
	return 0;
}

static int setup(void **s)
{
	(void)s;
	test_pstmd_start(&D, NULL);
	return 0;
}

static int teardown(void **s)
{
	(void)s;
	if (D.pid > 0) {
		kill(D.pid, SIGCONT);
		test_pstmd_stop(&D);
	}
	return 0;
}

/* In a child: become @uid (group @uid, no others), talk to our pstmd. */
static void become(uid_t uid)
{
	if (setgroups(0, NULL) != 0 || setgid(uid) != 0 || setuid(uid) != 0)
		_exit(90);
	setenv("PSTM_DAEMON_SOCKET", D.sock, 1);
	unsetenv("PSTM_DAEMON");
}

static int sum_words(pstm_tx *tx, void *arg)
{
	pstm_off root = pstm_root(tx, 64);
	uint64_t s = 0;
	for (int i = 0; i < 8; i++)
		s += pstm_load64(tx, root + 8 * (pstm_off)i);
	*(uint64_t *)arg = s;
	return 0;
}

static int word0(pstm_tx *tx, void *arg)
{
	*(uint64_t *)arg = pstm_load64(tx, pstm_root(tx, 64));
	return 0;
}

/* the first word of region @i, read by this (root) process */
static uint64_t first_word(int i)
{
	pstm_region *r;
	uint64_t v = 0;
	assert_pstm_ok(pstm_open(path_of[i], &r));
	assert_pstm_ok(pstm_atomic(r, word0, &v));
	assert_pstm_ok(pstm_close(r));
	return v;
}

/* move 10 from word 0 to word 1 */
static int move(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_off root = pstm_root(tx, 64);
	pstm_store64(tx, root, pstm_load64(tx, root) - 10);
	pstm_store64(tx, root + 8, pstm_load64(tx, root + 8) + 10);
	return 0;
}

/* exit codes: 0 all as expected; 10 + step otherwise */
static int rw_child(void *arg, int id)
{
	(void)arg;
	(void)id;
	pstm_region *r;
	struct pstm_region_info in;
	uint64_t s;
	become(UID_RW);
	if (open(path_of[R_ACL], O_RDONLY) >= 0 || errno != EACCES)
		return 10; /* the directory keeps it out */
	if (pstm_open(path_of[R_ACL], &r) != PSTM_EACCES)
		return 11;
	if (pstm_open("pstmd:acl", &r))
		return 12;
	if (pstm_region_info(r, &in) || in.read_only)
		return 13;
	if (pstm_atomic(r, move, NULL) || pstm_atomic(r, sum_words, &s) || s != 800)
		return 14;
	return pstm_close(r) ? 15 : 0;
}

static int write_mapping(void *arg, int id)
{
	(void)id;
	pstm_region *r = arg;
	r->base[r->heap_lo] = 1; /* PROT_READ: SIGSEGV */
	return 0;
}

static int ro_child(void *arg, int id)
{
	(void)arg;
	(void)id;
	pstm_region *r;
	struct pstm_region_info in;
	uint64_t s;
	become(UID_RO);
	if (pstm_open("pstmd:acl", &r))
		return 10;
	if (pstm_region_info(r, &in) || !in.read_only)
		return 11;
	if (pstm_atomic(r, sum_words, &s) || s != 800) /* reads work */
		return 12;
	if (pstm_atomic(r, move, NULL) != PSTM_EINVAL) /* stores do not */
		return 13;
	pstm_tx *tx;
	if (pstm_tx_begin(r, 0, &tx) || pstm_tx_store64(tx, in.heap_off + 512, 1) !=
						PSTM_EINVAL)
		return 14;
	pstm_tx_end(tx);
	if (test_wait(test_spawn(write_mapping, r, 0)) != 128 + SIGSEGV)
		return 15;
	if (pstm_atomic(r, sum_words, &s) || s != 800)
		return 16;
	return pstm_close(r) ? 17 : 0;
}

static int denied_child(void *arg, int id)
{
	(void)arg;
	(void)id;
	pstm_region *r;
	become(UID_NONE);
	if (pstm_open("pstmd:acl", &r) != PSTM_EACCES)
		return 10;
	/* no grant line names "open": its mode, 0644, lets anyone read */
	if (pstm_open("pstmd:open", &r))
		return 11;
	struct pstm_region_info in;
	if (pstm_region_info(r, &in) || !in.read_only || pstm_close(r))
		return 12;
	if (pstm_open("pstmd:secret", &r) != PSTM_EACCES) /* 0600, root's */
		return 13;
	static const char *const bad[] = {"pstmd:../etc/passwd", "pstmd:.hidden",
					  "pstmd:a/b", "pstmd:", "pstmd:.."};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (pstm_open(bad[i], &r) != PSTM_EINVAL)
			return 20 + (int)i;
	if (pstm_open("pstmd:missing", &r) != PSTM_ENOENT)
		return 14;
	if (pstm_open("pstmd:link", &r) != PSTM_ENOENT) /* not followed */
		return 15;
	struct pstm_create_opts o = {0};
	if (pstm_create("pstmd:new", &o, &r) != PSTM_EINVAL)
		return 16;
	return 0;
}

static void test_grants(void **s)
{
	(void)s;
	assert_int_equal(test_wait(test_spawn(rw_child, NULL, 0)), 0);
	assert_int_equal(test_wait(test_spawn(ro_child, NULL, 0)), 0);
	assert_int_equal(test_wait(test_spawn(denied_child, NULL, 0)), 0);
	/* the read-write child's transfer is in the file, the read-only
	 * one's attempts are not */
	assert_int_equal(first_word(R_ACL), 90);
	assert_true(test_pstmd_wait(D.sock, 0, 0, 3000));
}

/* A read-only reader meets the locks of a writer that died past its
 * commit point: it cannot replay the writer's log into a read-only
 * mapping, and need not: it reads the committed values through the dead
 * commit's redo record (issue 16), without waiting for pstmd's recovery.
 * pstmd is stopped (SIGSTOP) from before the writer dies until the
 * reader is done. */
static int dying_writer(void *arg, int id)
{
	(void)arg;
	(void)id;
	pstm_region *r;
	become(UID_RW);
	setenv("PSTM_CRASH_AT", "commit.logged:1", 1);
	if (pstm_open("pstmd:acl", &r))
		return 10;
	atomic_store(&sh->ready, 1);
	while (!atomic_load(&sh->go_writer))
		usleep(200);
	pstm_atomic(r, move, NULL);
	return 11; /* not killed at its commit point */
}

static int counting_sum(pstm_tx *tx, void *arg)
{
	atomic_fetch_add(&sh->attempts, 1);
	return sum_words(tx, arg);
}

static int waiting_reader(void *arg, int id)
{
	(void)arg;
	(void)id;
	pstm_region *r;
	uint64_t s;
	become(UID_RO);
	if (pstm_open("pstmd:acl", &r))
		return 10;
	atomic_store(&sh->reader_ready, 1);
	while (!atomic_load(&sh->go))
		usleep(200);
	if (pstm_atomic(r, counting_sum, &s) || s != 800)
		return 11;
	return pstm_close(r) ? 12 : 0;
}

static void test_read_only_reads_through(void **s)
{
	(void)s;
	uint64_t before = first_word(R_ACL);
	memset(sh, 0, sizeof(*sh));
	pid_t rd = test_spawn(waiting_reader, NULL, 0);
	pid_t w = test_spawn(dying_writer, NULL, 0);
	/* the writer watched; the reader, attached to nothing, is not */
	assert_true(test_pstmd_wait(D.sock, 1, 1, 5000));
	for (int i = 0; i < 25000 && !atomic_load(&sh->reader_ready); i++)
		usleep(200);
	assert_true(atomic_load(&sh->reader_ready));
	kill(D.pid, SIGSTOP);
	atomic_store(&sh->go_writer, 1);
	assert_int_equal(test_wait(w), 128 + SIGKILL);
	atomic_store(&sh->go, 1);
	/* the reader's sum is exact (800) while pstmd stays stopped (10 s
	 * at most: a reader that waits for the recovery fails the test) */
	int st = -1;
	for (int k = 0; k < 10000 && waitpid(rd, &st, WNOHANG) == 0; k++)
		usleep(1000);
	bool done = WIFEXITED(st);
	kill(D.pid, SIGCONT);
	if (!done)
		st = test_wait(rd) == 0 ? -1 : -2;
	assert_true(done);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(atomic_load(&sh->attempts) >= 1);
	assert_true(test_pstmd_wait(D.sock, 0, 0, 5000)); /* both gone: recovered */
	assert_int_equal(first_word(R_ACL), before - 10); /* it had committed */
}

/* A relaxed region granted read-write: its commits reach the file. */
static int relaxed_child(void *arg, int id)
{
	(void)arg;
	(void)id;
	pstm_region *r;
	become(UID_RW);
	if (pstm_open("pstmd:relaxed", &r))
		return 10;
	for (int i = 0; i < 5; i++)
		if (pstm_atomic(r, move, NULL))
			return 11;
	if (pstm_sync(r))
		return 12;
	return pstm_close(r) ? 13 : 0;
}

static void test_relaxed_grant(void **s)
{
	(void)s;
	assert_int_equal(test_wait(test_spawn(relaxed_child, NULL, 0)), 0);
	assert_true(test_pstmd_wait(D.sock, 0, 0, 3000)); /* pstmd let go */
	/* what the file holds, read as after a power failure: working copy
	 * and runtime gone */
	region_forget_volatile(path_of[R_RELAXED]);
	assert_int_equal(first_word(R_RELAXED), 50);
}

/* A read-only grant's runtime is read-only too; it reads consistently
 * beside a read-write grant's writer. */
static int move_back(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_off root = pstm_root(tx, 64);
	pstm_store64(tx, root + 8, pstm_load64(tx, root + 8) - 10);
	pstm_store64(tx, root, pstm_load64(tx, root) + 10);
	return 0;
}

static int busy_writer(void *arg, int id)
{
	(void)arg;
	(void)id;
	pstm_region *r;
	become(UID_RW);
	if (pstm_open("pstmd:acl", &r))
		return 10;
	for (uint64_t i = 0; !atomic_load(&sh->go); i++) {
		if (pstm_atomic(r, i & 1 ? move_back : move, NULL))
			return 11;
		atomic_fetch_add(&sh->writes, 1);
	}
	return pstm_close(r) ? 12 : 0;
}

static int store_runtime(void *arg, int id)
{
	(void)id;
	pstm_region *r = arg;
	atomic_store(&r->rt->clock, 1); /* PROT_READ: SIGSEGV */
	return 0;
}

/* The permissions of this process's mappings of /dev/shm/pstm.rt.*:
 * how many, and how many of them writable. */
static void runtime_maps(int *n, int *writable)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	*n = *writable = 0;
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "/dev/shm/pstm.rt.")) {
			char perms[8] = "";
			sscanf(line, "%*s %7s", perms);
			(*n)++;
			*writable += perms[1] == 'w';
		}
	if (f)
		fclose(f);
}

static int ro_runtime_child(void *arg, int id)
{
	(void)arg;
	(void)id;
	pstm_region *r;
	int n, w;
	become(UID_RO);
	if (pstm_open("pstmd:acl", &r))
		return 10;
	runtime_maps(&n, &w);
	if (n != 1 || w != 0)
		return 11;
	if (test_wait(test_spawn(store_runtime, r, 0)) != 128 + SIGSEGV)
		return 12;
	/* no process entry of its own */
	for (uint32_t p = 0; p < r->sb.max_procs; p++)
		if (atomic_load(&r->procs[p].pid) == (uint64_t)getpid())
			return 13;
	/* at least 200 of the writer's commits fall between the first read
	 * and the last (whether a read meets word 0 between two of them
	 * depends on scheduling: a durable commit holds its locks while it
	 * syncs) */
	uint64_t w0 = atomic_load(&sh->writes), reads = 0;
	while (reads < 1000 || atomic_load(&sh->writes) < w0 + 200) {
		uint64_t s, v;
		if (pstm_atomic(r, sum_words, &s) || s != 800)
			return 14;
		if (pstm_atomic(r, word0, &v) || (v != sh->base && v != sh->base - 10))
			return 15; /* moves of 10 back and forth */
		reads += 2;
		if (reads > 10000000)
			return 16; /* the writer made no progress */
	}
	struct pstm_stats st;
	if (pstm_stats_get(r, &st) || st.commits_ro != reads)
		return 17;
	atomic_store(&sh->go, 1);
	return pstm_close(r) ? 18 : 0;
}

static void test_read_only_runtime(void **s)
{
	(void)s;
	memset(sh, 0, sizeof(*sh));
	sh->base = first_word(R_ACL);
	pid_t w = test_spawn(busy_writer, NULL, 0);
	while (atomic_load(&sh->writes) < 10)
		usleep(1000);
	int rc = test_wait(test_spawn(ro_runtime_child, NULL, 0));
	atomic_store(&sh->go, 1);
	assert_int_equal(test_wait(w), 0);
	assert_int_equal(rc, 0);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test_setup_teardown(test_grants, setup, teardown),
	cmocka_unit_test_setup_teardown(test_read_only_reads_through, setup, teardown),
	cmocka_unit_test_setup_teardown(test_relaxed_grant, setup, teardown),
	cmocka_unit_test_setup_teardown(test_read_only_runtime, setup, teardown),
};

int main(void)
{
	TEST_OUTPUT();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
