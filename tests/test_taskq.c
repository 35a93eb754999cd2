/*
 * test_taskq.c - the region's task queue (pstm_register, pstm_enqueue,
 * pstm_tx_enqueue, pstm_queue_run), with real processes: a tree of tasks
 * runs exactly once while one of three processes is SIGKILLed and
 * restarted again and again (shm and durable file regions) and across
 * simulated power failures; a failing task stops every runner and waits
 * on the failed list (pstm queue lists, drops and retries it); two
 * processes wait for each other without returning early or spinning;
 * tasks of types only another process runs; and bad input.
 * TQ_ONLY=PATTERN runs only the tests whose names match (cmocka's
 * filter); PSTM_KILL_ROUNDS and PSTM_POWERFAIL_IMAGES scale the
 * campaigns (make torture).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "taskq.h"

/* ------------------------------------------------------------ the tree */

/*
 * Node i of a complete binary tree of T.n nodes: adds 1 to its counter,
 * works T.spin_ns, enqueues nodes 2i+1 and 2i+2.  The counters are an
 * array reached through the root object, followed by a flag word: while
 * it is 0, node T.fail_at fails with FAIL_RC.
 */
enum { FAIL_RC = 42 };

struct tree {
	pstm_off base;      /* n counters, then the flag */
	uint64_t n;
	uint64_t spin_ns;
	uint64_t fail_at;   /* UINT64_MAX: none */
	uint64_t *acked;    /* shared with the parent: ids seen committed */
};
static struct tree T;

static void spin(uint64_t ns)
{
	uint64_t end = test_now_ns() + ns;
	while (ns && test_now_ns() < end)
		;
}

static void ack_hook(void *arg)
{
	uint64_t i = (uint64_t)(uintptr_t)arg;
	__atomic_fetch_or(&T.acked[i / 64], 1ull << (i % 64), __ATOMIC_RELAXED);
}

static int node_fn(pstm_tx *tx, const void *arg, size_t len)
{
	uint64_t i;
	if (len != 8)
		return 90;
	memcpy(&i, arg, 8);
	if (i >= T.n)
		return 91;
	if (i == T.fail_at && pstm_load64(tx, T.base + 8 * T.n) == 0)
		return FAIL_RC;
	spin(T.spin_ns);
	pstm_off c = T.base + 8 * i;
	pstm_store64(tx, c, pstm_load64(tx, c) + 1);
	for (uint64_t k = 2 * i + 1; k <= 2 * i + 2 && k < T.n; k++) {
		int rc = pstm_tx_enqueue(tx, "node", &k, sizeof(k));
		if (rc)
			return rc;
	}
	if (T.acked)
		pstm_tx_on_commit(tx, ack_hook, (void *)(uintptr_t)i);
	return 0;
}

static int tree_alloc(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_off root = pstm_root(tx, 16);
	T.base = pstm_load64(tx, root);
	if (!T.base) {
		T.base = pstm_alloc(tx, 8 * (T.n + 1));
		pstm_store64(tx, root, T.base);
	}
	return 0;
}

static int tree_zero(pstm_tx *tx, void *arg)
{
	uint64_t *from = arg;
	for (uint64_t i = *from; i <= T.n && i < *from + 200; i++)
		pstm_store64(tx, T.base + 8 * i, 0);
	return 0;
}

static int set_flag(pstm_tx *tx, void *arg)
{
	pstm_store64(tx, T.base + 8 * T.n, (uint64_t)(uintptr_t)arg);
	return 0;
}

/* A region with the tree's counters at 0 and its root task queued. */
static void tree_setup(const char *uri, const struct pstm_create_opts *o, uint64_t n)
{
	pstm_region *r;
	T = (struct tree){.n = n, .fail_at = UINT64_MAX};
	assert_pstm_ok(pstm_create(uri, o, &r));
	assert_pstm_ok(pstm_atomic(r, tree_alloc, NULL));
	for (uint64_t i = 0; i <= n; i += 200)
		assert_pstm_ok(pstm_atomic(r, tree_zero, &i));
	assert_pstm_ok(pstm_register(r, "node", node_fn));
	uint64_t zero = 0;
	assert_pstm_ok(pstm_enqueue(r, "node", &zero, sizeof(zero)));
	assert_pstm_ok(pstm_close(r));
}

struct census {
	uint64_t zero, one, more;
};

static int count_fn(pstm_tx *tx, void *arg)
{
	struct census *c = arg;
	*c = (struct census){0};
	for (uint64_t i = 0; i < T.n; i++) {
		uint64_t v = pstm_load64(tx, T.base + 8 * i);
		if (v == 0)
			c->zero++;
		else if (v == 1)
			c->one++;
		else
			c->more++;
	}
	return 0;
}

/* The queue's counters and a walk of its lanes, which must agree. */
static void queue_state(pstm_region *r, uint64_t *pending, uint64_t *failed)
{
	struct taskq_listing l;
	assert_pstm_ok(taskq_list(r, &l));
	assert_int_equal(l.pending, l.in_lanes);
	*pending = l.pending;
	*failed = l.failed_count;
	taskq_listing_free(&l);
}

/* Every node done once, nothing queued, nothing failed, no damage. */
static void assert_tree_done(const char *uri)
{
	pstm_region *r;
	struct census c;
	uint64_t pending, failed;
	assert_pstm_ok(pstm_open(uri, &r));
	assert_pstm_ok(pstm_atomic_ro(r, count_fn, &c));
	queue_state(r, &pending, &failed);
	if (c.one != T.n)
		print_error("%s: %llu nodes at 0, %llu at 1, %llu above\n", uri,
			    (unsigned long long)c.zero, (unsigned long long)c.one,
			    (unsigned long long)c.more);
	assert_int_equal(c.one, T.n);
	assert_int_equal(pending, 0);
	assert_int_equal(failed, 0);
	assert_pstm_ok(pstm_close(r));
	test_assert_clean(uri);
}

/* A process running the queue with 2 threads until it is empty. */
static int runner(void *arg, int i)
{
	const char *uri = arg;
	pstm_region *r;
	(void)i;
	if (pstm_open(uri, &r))
		return 2;
	if (pstm_register(r, "node", node_fn))
		return 3;
	int rc = pstm_queue_run(r, 2);
	if (rc)
		fprintf(stderr, "pstm_queue_run: %d (%s)\n", rc, pstm_strerror(rc));
	pstm_close(r);
	return rc ? 4 : 0;
}

static const char *const crash_points[] = {
	"commit.locking", "commit.locked", "commit.sealed", "commit.logged",
	"commit.written", "commit.retired", "commit.released",
};

/* The victim: as runner, but killed by the parent or at a crash point. */
static int victim(void *arg, int round)
{
	if (round % 2) {
		char at[64];
		snprintf(at, sizeof(at), "%s:%d",
			 crash_points[(round / 2) % (sizeof(crash_points) / sizeof(*crash_points))],
			 1 + round % 23);
		setenv("PSTM_CRASH_AT", at, 1);
	}
	return runner(arg, 0);
}

/*
 * Three processes run the tree; the third is killed (SIGKILL from here
 * at a random moment, or at a crash point inside its commit) and
 * restarted @kills times.  Returns how many died running (the caller
 * checks the tree first: a lost task makes the tree finish early).
 */
static int kill_campaign(const char *uri, int kills)
{
	pid_t s1 = test_spawn(runner, (void *)uri, 1);
	pid_t s2 = test_spawn(runner, (void *)uri, 2);
	pid_t v = test_spawn(victim, (void *)uri, 0);
	uint64_t seed = test_now_ns() | 1;
	int killed = 0;
	for (int k = 1; k <= kills; k++) {
		usleep(2000 + (unsigned)(xorshift64(&seed) % 12000));
		kill(v, SIGKILL);
		int st = test_wait(v);
		assert_true(st == 0 || st == 128 + SIGKILL);
		killed += st != 0;
		v = test_spawn(victim, (void *)uri, k);
		if (st == 0)
			break; /* it found the queue empty: the tree is done */
	}
	kill(v, SIGKILL); /* the last one may be parked at a crash point */
	int st = test_wait(v);
	assert_true(st == 0 || st == 128 + SIGKILL);
	assert_int_equal(test_wait(s1), 0);
	assert_int_equal(test_wait(s2), 0);
	/* a victim killed last may have left tasks: a last clean run */
	assert_int_equal(runner((void *)uri, 0), 0);
	print_message("# %s: %d of %d victims died running\n", uri, killed, kills);
	return killed;
}

/* PSTM_KILL_ROUNDS / @per kills, never fewer than the 3 the tests
 * require: make valgrind's 30 rounds gave the file test 1 kill, and an
 * assertion that could not hold. */
static int kill_rounds(int per)
{
	int k = test_env_int("PSTM_KILL_ROUNDS", 200) / per;
	return k < 3 ? 3 : k;
}

/* A tree big enough for @kills kills (make torture raises them). */
static uint64_t tree_for(int kills, uint64_t min)
{
	uint64_t n = min;
	while (n < (uint64_t)kills * 400)
		n = 2 * n + 1;
	return n;
}

static void test_exactly_once_kill_shm(void **s)
{
	(void)s;
	const char *uri = strdup(test_shm_uri("taskq"));
	struct pstm_create_opts o = {.size_bytes = 64 << 20};
	int kills = kill_rounds(10);
	tree_setup(uri, &o, tree_for(kills, 8191));
	T.spin_ns = 20000;
	int killed = kill_campaign(uri, kills);
	assert_tree_done(uri);
	assert_true(killed >= 3); /* victims died in the middle */
	pstm_unlink(uri);
	free((void *)uri);
}

static void test_exactly_once_kill_file(void **s)
{
	(void)s;
	char uri[128];
	snprintf(uri, sizeof(uri), "/dev/shm/pstm-test-taskq-%d.region", (int)getpid());
	struct pstm_create_opts o = {.size_bytes = 64 << 20, .durability = PSTM_DURABLE};
	int kills = kill_rounds(20);
	tree_setup(uri, &o, tree_for(kills, 16383)); /* enough work for 3 kills under load */
	T.spin_ns = 20000;
	int killed = kill_campaign(uri, kills);
	assert_tree_done(uri);
	assert_true(killed >= 3); /* victims died in the middle */
	pstm_unlink(uri);
}

/* ------------------------------------------------------ power failure */

static struct test_powerfail PF;
enum { PF_NODES = 1023 };

/* In the re-executed child: run the tree until the power fails. */
static int powerfail_child(const char *work, const char *image, unsigned seed)
{
	pstm_region *r;
	test_powerfail_arm(image, seed, 100);
	if (pstm_open(work, &r))
		return 5;
	T.n = PF_NODES;
	T.fail_at = UINT64_MAX;
	if (pstm_atomic(r, tree_alloc, NULL) || pstm_register(r, "node", node_fn))
		return 6;
	pstm_queue_run(r, 1); /* the simulator follows one thread's flushes */
	return 9; /* the power never failed */
}

struct ack_check {
	uint64_t acked, bad;
};

/* Acknowledged nodes are at 1, none above. */
static int ack_fn(pstm_tx *tx, void *arg)
{
	struct ack_check *a = arg;
	*a = (struct ack_check){0};
	for (uint64_t i = 0; i < T.n; i++) {
		uint64_t v = pstm_load64(tx, T.base + 8 * i);
		bool acked = T.acked[i / 64] >> (i % 64) & 1;
		a->acked += acked;
		a->bad += v > 1 || (acked && v != 1);
		if (v > 1 || (acked && v != 1))
			fprintf(stderr, "node %llu: %llu acked %d\n", (unsigned long long)i, (unsigned long long)v, acked);
	}
	return 0;
}

/* Tasks acknowledged committed survive it, once; the queue holds exactly
 * the others: running it to the end does every node once. */
static void test_powerfail(void **s)
{
	(void)s;
	size_t bytes = (PF_NODES + 63) / 64 * 8;
	test_powerfail_files(&PF, "taskq", 0);
	T.acked = test_map_shared(PF.shared, bytes);
	assert_non_null(T.acked);
	uint64_t *acked = T.acked;
	struct pstm_create_opts o = {.size_bytes = 8 << 20, .durability = PSTM_DURABLE,
				     .replace = 1};
	tree_setup(PF.base, &o, PF_NODES);
	int n = test_env_int("PSTM_POWERFAIL_IMAGES", 500) / 50;
	uint64_t acked_total = 0;
	for (int k = 0; k < n; k++) {
		pstm_region *r;
		struct ack_check ac;
		memset(acked, 0, bytes);
		test_powerfail_image(&PF, (unsigned)k + 1, 0);
		assert_pstm_ok(pstm_open(PF.image, &r));
		assert_pstm_ok(pstm_atomic(r, tree_alloc, NULL));
		T.acked = acked;
		assert_pstm_ok(pstm_atomic_ro(r, ack_fn, &ac));
		assert_int_equal(ac.bad, 0);
		acked_total += ac.acked;
		T.acked = NULL;
		assert_pstm_ok(pstm_register(r, "node", node_fn));
		assert_pstm_ok(pstm_queue_run(r, 2));
		assert_pstm_ok(pstm_close(r));
		assert_tree_done(PF.image);
		test_powerfail_image_done(&PF);
	}
	print_message("# %d power failures, %llu acknowledged tasks survived once\n", n,
		      (unsigned long long)acked_total);
	assert_true(acked_total > 0);
	munmap(acked, bytes);
	test_powerfail_remove(&PF);
}

/* ------------------------------------------------------------ failure */

enum { JOBS = 2000, JOB_FAILS = 100 };

/* job i: counter i + 1 (the tree's counters), job JOB_FAILS fails while
 * the flag is 0 */
static int job_fn(pstm_tx *tx, const void *arg, size_t len)
{
	uint64_t i;
	if (len != 8)
		return 90;
	memcpy(&i, arg, 8);
	if (i == JOB_FAILS && pstm_load64(tx, T.base + 8 * T.n) == 0)
		return FAIL_RC;
	spin(T.spin_ns);
	pstm_store64(tx, T.base + 8 * i, pstm_load64(tx, T.base + 8 * i) + 1);
	return 0;
}

static int job_runner(void *arg, int i)
{
	const char *uri = arg;
	pstm_region *r;
	(void)i;
	if (pstm_open(uri, &r) || pstm_register(r, "job", job_fn))
		return 2;
	int rc = pstm_queue_run(r, 2);
	pstm_close(r);
	if (rc != FAIL_RC)
		fprintf(stderr, "pstm_queue_run: %d, not %d\n", rc, FAIL_RC);
	return rc == FAIL_RC ? 0 : 3;
}

/* `pstm CMD URI ARGS` from the build; its stdout into @out
 * (NUL-terminated); its exit status. */
static int pstm_cmd(char *out, size_t cap, const char *cmd_name, const char *args,
		    const char *uri)
{
	char cmd[512];
	const char *bin = getenv("PSTM_BIN") ? getenv("PSTM_BIN") : "build";
	snprintf(cmd, sizeof(cmd), "%s/pstm %s %s %s", bin, cmd_name, uri, args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int cli(char *out, size_t cap, const char *args, const char *uri)
{
	return pstm_cmd(out, cap, "queue", args, uri);
}

/* pstm queue's listing attaches nothing: it works on a region whose
 * process table is full (this process holds its one entry) */
static void test_listing_attaches_nothing(void **s)
{
	(void)s;
	const char *uri = strdup(test_shm_uri("taskq-ls"));
	struct pstm_create_opts o = {.size_bytes = 8 << 20, .max_procs = 1};
	pstm_region *r, *r2;
	char out[8192];
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_register(r, "job", job_fn));
	uint64_t i = 7;
	assert_pstm_ok(pstm_enqueue(r, "job", &i, sizeof(i)));
	assert_int_equal(pstm_open(uri, &r2), PSTM_EPROCFULL); /* full */
	assert_int_equal(cli(out, sizeof(out), "--json", uri), 0);
	assert_non_null(strstr(out, "\"pending\":1"));
	/* retrying or dropping writes, so it attaches: refused here */
	assert_int_equal(cli(out, sizeof(out), "--drop-failed", uri), 1);
	assert_pstm_ok(pstm_close(r));
	pstm_unlink(uri);
	free((void *)uri);
}

static void test_failure_stops_every_runner(void **s)
{
	(void)s;
	const char *uri = strdup(test_shm_uri("taskq-fail"));
	struct pstm_create_opts o = {.size_bytes = 16 << 20};
	pstm_region *r;
	T = (struct tree){.n = JOBS, .fail_at = UINT64_MAX};
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, tree_alloc, NULL));
	for (uint64_t i = 0; i <= JOBS; i += 200)
		assert_pstm_ok(pstm_atomic(r, tree_zero, &i));
	assert_pstm_ok(pstm_register(r, "job", job_fn));
	for (uint64_t i = 0; i < JOBS; i++)
		assert_pstm_ok(pstm_enqueue(r, "job", &i, sizeof(i)));
	T.spin_ns = 20000;

	/* two processes of two workers: both return the task's error */
	test_run_procs(2, job_runner, (void *)uri);
	struct census c;
	uint64_t pending, failed;
	assert_pstm_ok(pstm_atomic_ro(r, count_fn, &c));
	queue_state(r, &pending, &failed);
	assert_int_equal(c.more, 0);
	assert_int_equal(failed, 1);
	assert_int_equal(c.one + pending + failed, JOBS); /* nothing lost */
	assert_true(pending > JOBS / 2);                   /* the rest wait */
	print_message("# failure: %llu done, %llu pending, 1 failed\n",
		      (unsigned long long)c.one, (unsigned long long)pending);

	/* a stopped queue stays stopped */
	assert_int_equal(pstm_queue_run(r, 1), FAIL_RC);
	struct census c2;
	assert_pstm_ok(pstm_atomic_ro(r, count_fn, &c2));
	assert_int_equal(c2.one, c.one);

	/* pstm queue lists it (exit 1: tasks failed), drops it */
	char out[8192];
	assert_int_equal(cli(out, sizeof(out), "", uri), 1);
	assert_non_null(strstr(out, "job"));
	assert_non_null(strstr(out, "error 42"));
	assert_int_equal(cli(out, sizeof(out), "--json", uri), 1);
	assert_non_null(strstr(out, "\"failed_count\":1"));
	assert_int_equal(cli(out, sizeof(out), "--drop-failed", uri), 0);
	assert_non_null(strstr(out, "dropped 1"));

	/* a new run finishes the rest, the dropped task never ran */
	T.spin_ns = 0;
	assert_pstm_ok(pstm_queue_run(r, 2));
	assert_pstm_ok(pstm_atomic_ro(r, count_fn, &c));
	queue_state(r, &pending, &failed);
	assert_int_equal(c.one, JOBS - 1);
	assert_int_equal(c.zero, 1);
	assert_int_equal(pending + failed, 0);
	/* pstm info: per type, executed, failed (ever) and aborts */
	assert_int_equal(pstm_cmd(out, sizeof(out), "info", "--json", uri), 0);
	char want[128];
	snprintf(want, sizeof(want), "{\"name\":\"job\",\"pending\":0,\"executed\":%d,"
		 "\"failed\":1,\"aborts\":", JOBS - 1);
	if (!strstr(out, want))
		print_error("pstm info --json: %s\n", out);
	assert_non_null(strstr(out, want));

	/* --retry-failed: the task fails again, then runs once it can */
	assert_pstm_ok(pstm_enqueue(r, "job", &(uint64_t){JOB_FAILS}, 8));
	assert_int_equal(pstm_queue_run(r, 1), FAIL_RC);
	assert_pstm_ok(pstm_atomic(r, set_flag, (void *)1));
	assert_int_equal(cli(out, sizeof(out), "--retry-failed", uri), 0);
	assert_non_null(strstr(out, "retried 1"));
	assert_pstm_ok(pstm_queue_run(r, 1));
	assert_pstm_ok(pstm_atomic_ro(r, count_fn, &c));
	assert_int_equal(c.one, JOBS);
	assert_int_equal(cli(out, sizeof(out), "", uri), 0);
	assert_pstm_ok(pstm_close(r));
	test_assert_clean(uri);
	pstm_unlink(uri);
	free((void *)uri);
}

/* ------------------------------------- the failed list's public calls */

static _Atomic uint64_t picky_ran; /* commits of picky tasks, this process */
static uint64_t picky_flag;        /* the region word that lets them pass */

static void picky_committed(void *unused)
{
	(void)unused;
	atomic_fetch_add(&picky_ran, 1);
}

/* fails with 7 until the flag is set */
static int picky_fn(pstm_tx *tx, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	if (!pstm_load64(tx, picky_flag))
		return 7;
	pstm_tx_on_commit(tx, picky_committed, NULL);
	return 0;
}

static int root_word(pstm_tx *tx, void *arg)
{
	*(uint64_t *)arg = pstm_root(tx, 8);
	return 0;
}

static int store_flag(pstm_tx *tx, void *arg)
{
	pstm_store64(tx, picky_flag, (uint64_t)(uintptr_t)arg);
	return 0;
}

static int in_tx_calls(pstm_tx *tx, void *arg)
{
	pstm_region *r = pstm_tx_region(tx);
	size_t n, len;
	uint64_t k;
	*(int *)arg = pstm_queue_failed(r, NULL, 0, &n) == PSTM_EINTX &&
		      pstm_queue_failed_arg(r, 1, NULL, 0, &len) == PSTM_EINTX &&
		      pstm_queue_retry_failed(r, &k) == PSTM_EINTX &&
		      pstm_queue_drop_failed(r, &k) == PSTM_EINTX;
	return 0;
}

/* pstm_queue_failed, _failed_arg, _retry_failed, _drop_failed */
static void test_failed_list_api(void **s)
{
	(void)s;
	const char *uri = test_shm_uri("taskq-failapi");
	struct pstm_create_opts o = {.size_bytes = 4 << 20};
	pstm_region *r;
	size_t n = 99, len = 99;
	uint64_t moved = 99;
	char buf[8];
	pstm_unlink(uri);
	assert_pstm_ok(pstm_create(uri, &o, &r));

	/* no queue yet: nothing failed */
	assert_pstm_ok(pstm_queue_failed(r, NULL, 0, &n));
	assert_int_equal(n, 0);
	assert_pstm_ok(pstm_queue_retry_failed(r, &moved));
	assert_int_equal(moved, 0);
	assert_int_equal(pstm_queue_failed_arg(r, 1, NULL, 0, &len), PSTM_ENOENT);

	assert_pstm_ok(pstm_atomic(r, root_word, &picky_flag));
	assert_pstm_ok(pstm_register(r, "picky", picky_fn));
	assert_pstm_ok(pstm_enqueue(r, "picky", "bb", 2));
	assert_int_equal(pstm_queue_run(r, 1), 7);

	/* listed: its id, type, argument and error; into a larger struct
	 * (a newer header's) only its size, the tail zeroed */
	struct {
		struct pstm_failed_task t;
		unsigned char newer[16];
	} big[2];
	memset(big, 0xa5, sizeof(big));
	assert_pstm_ok(pstm_queue_failed_sz(r, &big[0].t, 2, sizeof(big[0]), &n));
	assert_int_equal(n, 1);
	assert_string_equal(big[0].t.type, "picky");
	assert_int_equal(big[0].t.arg_len, 2);
	assert_int_equal(big[0].t.err, 7);
	for (size_t i = 0; i < sizeof(big[0].newer); i++)
		assert_int_equal(big[0].newer[i], 0);
	for (size_t i = 0; i < sizeof(big[1]); i++) /* one task: one entry */
		assert_int_equal(((unsigned char *)&big[1])[i], 0xa5);
	uint64_t id = big[0].t.id;
	struct pstm_failed_task one;
	assert_pstm_ok(pstm_queue_failed(r, &one, 1, &n));
	assert_int_equal(one.id, id);
	assert_pstm_ok(pstm_queue_failed_arg(r, id, buf, sizeof(buf), &len));
	assert_int_equal(len, 2);
	assert_memory_equal(buf, "bb", 2);
	memset(buf, 0, sizeof(buf));
	assert_pstm_ok(pstm_queue_failed_arg(r, id, buf, 1, &len));
	assert_int_equal(len, 2);
	assert_int_equal(buf[0], 'b');
	assert_int_equal(buf[1], 0);
	assert_int_equal(pstm_queue_failed_arg(r, id + 1, buf, 8, &len), PSTM_ENOENT);

	/* bad input, calls inside a transaction */
	assert_int_equal(pstm_queue_failed(r, NULL, 1, &n), PSTM_EINVAL);
	assert_int_equal(pstm_queue_failed(NULL, NULL, 0, &n), PSTM_EINVAL);
	assert_int_equal(pstm_queue_failed(r, NULL, 0, NULL), PSTM_EINVAL);
	assert_int_equal(pstm_queue_failed_sz(r, &one, 1, 8, &n), PSTM_EINVAL);
	assert_int_equal(pstm_queue_failed_arg(r, id, NULL, 4, &len), PSTM_EINVAL);
	assert_int_equal(pstm_queue_retry_failed(NULL, &moved), PSTM_EINVAL);
	int all_eintx = 0;
	assert_pstm_ok(pstm_atomic(r, in_tx_calls, &all_eintx));
	assert_true(all_eintx);

	/* retried: it runs again (and fails again, keeping its id) */
	assert_pstm_ok(pstm_queue_retry_failed(r, &moved));
	assert_int_equal(moved, 1);
	assert_pstm_ok(pstm_queue_failed(r, NULL, 0, &n));
	assert_int_equal(n, 0);
	assert_int_equal(pstm_queue_run(r, 1), 7);
	assert_pstm_ok(pstm_queue_failed(r, &one, 1, &n));
	assert_int_equal(n, 1);
	assert_int_equal(one.id, id);
	/* now it can pass: retried, it runs once */
	assert_pstm_ok(pstm_atomic(r, store_flag, (void *)1));
	assert_pstm_ok(pstm_queue_retry_failed(r, NULL));
	assert_pstm_ok(pstm_queue_run(r, 1));
	assert_int_equal(atomic_load(&picky_ran), 1);

	/* dropped: gone, never run, the queue runs on */
	assert_pstm_ok(pstm_atomic(r, store_flag, (void *)0));
	assert_pstm_ok(pstm_enqueue(r, "picky", "x", 1));
	assert_int_equal(pstm_queue_run(r, 1), 7);
	assert_pstm_ok(pstm_queue_drop_failed(r, &moved));
	assert_int_equal(moved, 1);
	assert_pstm_ok(pstm_queue_failed(r, NULL, 0, &n));
	assert_int_equal(n, 0);
	assert_pstm_ok(pstm_atomic(r, store_flag, (void *)1));
	assert_pstm_ok(pstm_queue_run(r, 1));
	assert_int_equal(atomic_load(&picky_ran), 1);
	uint64_t pending, failed;
	queue_state(r, &pending, &failed);
	assert_int_equal(pending + failed, 0);

	assert_pstm_ok(pstm_close(r));
	test_assert_clean(uri);
	pstm_unlink(uri);
}

/* -------------------------------------------------------- termination */

enum { BURST = 1000, SLOW_MS = 300 };

struct term {
	_Atomic uint64_t last_commit_ns; /* of the burst's tasks */
	struct {
		int rc;
		uint64_t start_ns, end_ns, cpu_ns, done_seen;
	} p[2];
};
static struct term *TM;

static void burst_committed(void *arg)
{
	(void)arg;
	uint64_t now = test_now_ns(), cur = atomic_load(&TM->last_commit_ns);
	while (cur < now && !atomic_compare_exchange_weak(&TM->last_commit_ns, &cur, now))
		;
}

/* the one slow task: sleeps, then adds the burst */
static int slow_fn(pstm_tx *tx, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	usleep(SLOW_MS * 1000);
	pstm_store64(tx, T.base, pstm_load64(tx, T.base) + 1);
	for (uint64_t i = 1; i <= BURST; i++) {
		int rc = pstm_tx_enqueue(tx, "quick", &i, sizeof(i));
		if (rc)
			return rc;
	}
	return 0;
}

static int quick_fn(pstm_tx *tx, const void *arg, size_t len)
{
	uint64_t i;
	if (len != 8)
		return 90;
	memcpy(&i, arg, 8);
	spin(5000);
	pstm_store64(tx, T.base + 8 * i, pstm_load64(tx, T.base + 8 * i) + 1);
	pstm_tx_on_commit(tx, burst_committed, NULL);
	return 0;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static int term_child(void *arg, int i)
{
	pstm_region *r;
	struct census c;
	if (pstm_open(arg, &r) || pstm_register(r, "slow", slow_fn) ||
	    pstm_register(r, "quick", quick_fn))
		return 2;
	uint64_t cpu0 = cpu_ns();
	TM->p[i].start_ns = test_now_ns();
	TM->p[i].rc = pstm_queue_run(r, 1);
	TM->p[i].end_ns = test_now_ns();
	TM->p[i].cpu_ns = cpu_ns() - cpu0;
	if (pstm_atomic_ro(r, count_fn, &c))
		return 3;
	TM->p[i].done_seen = c.one;
	pstm_close(r);
	return 0;
}

/* Two processes: one runs the slow task while the other waits for it;
 * the slow task adds a burst both then run.  Neither returns before the
 * last task of the burst, both return soon after it, and the waiting
 * did not cost a busy CPU. */
static void test_termination_waits_without_spinning(void **s)
{
	(void)s;
	const char *uri = strdup(test_shm_uri("taskq-term"));
	/* a redo log that holds the burst's ~10 words per task */
	struct pstm_create_opts o = {.size_bytes = 16 << 20, .log_bytes = 1 << 20};
	pstm_region *r;
	TM = test_map_shared(NULL, sizeof(*TM));
	assert_non_null(TM);
	T = (struct tree){.n = BURST + 1, .fail_at = UINT64_MAX};
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, tree_alloc, NULL));
	for (uint64_t i = 0; i <= T.n; i += 200)
		assert_pstm_ok(pstm_atomic(r, tree_zero, &i));
	assert_pstm_ok(pstm_register(r, "slow", slow_fn));
	assert_pstm_ok(pstm_register(r, "quick", quick_fn));
	assert_pstm_ok(pstm_enqueue(r, "slow", NULL, 0));
	assert_pstm_ok(pstm_close(r));

	test_run_procs(2, term_child, (void *)uri);
	uint64_t last = atomic_load(&TM->last_commit_ns);
	for (int i = 0; i < 2; i++) {
		uint64_t wall = TM->p[i].end_ns - TM->p[i].start_ns;
		print_message("# process %d: rc %d, %.1f ms, cpu %.1f ms, returned %.2f ms "
			      "after the last commit\n", i, TM->p[i].rc, wall / 1e6,
			      TM->p[i].cpu_ns / 1e6, (TM->p[i].end_ns - last) / 1e6);
		assert_int_equal(TM->p[i].rc, 0);
		assert_int_equal(TM->p[i].done_seen, BURST + 1); /* not early */
		assert_true(TM->p[i].end_ns >= last);
		assert_true(TM->p[i].end_ns - last < 200000000ull); /* promptly */
		assert_true(wall >= SLOW_MS * 1000000ull);
		/* both waited SLOW_MS (sleeping in the slow task, or idle):
		 * a spinning waiter would use all of it */
		assert_true(TM->p[i].cpu_ns < SLOW_MS * 1000000ull / 3);
	}
	munmap(TM, sizeof(*TM));
	pstm_unlink(uri);
	free((void *)uri);
}

/* ------------------------------------------------------ unregistered */

enum { CHAIN = 200 };

/* ping(i) and pong(i) count i and enqueue the other for i + 1; pong of
 * HOLD first sleeps, then enqueues ping(0) */
#define HOLD UINT64_MAX
static int chain_step(pstm_tx *tx, const void *arg, size_t len, const char *next)
{
	uint64_t i;
	if (len != 8)
		return 90;
	memcpy(&i, arg, 8);
	if (i == HOLD) {
		usleep(300000);
		i = 0;
		return pstm_tx_enqueue(tx, next, &i, sizeof(i));
	}
	pstm_store64(tx, T.base + 8 * i, pstm_load64(tx, T.base + 8 * i) + 1);
	if (++i < CHAIN)
		return pstm_tx_enqueue(tx, next, &i, sizeof(i));
	return 0;
}
static int ping_fn(pstm_tx *tx, const void *arg, size_t len)
{
	return chain_step(tx, arg, len, "pong");
}
static int pong_fn(pstm_tx *tx, const void *arg, size_t len)
{
	return chain_step(tx, arg, len, "ping");
}

/* process 0 runs ping only, process 1 pong only (it starts first and
 * runs the HOLD task, so that both are running when the chain starts) */
static int chain_child(void *arg, int i)
{
	pstm_region *r;
	if (!i)
		usleep(100000);
	if (pstm_open(arg, &r) || pstm_register(r, "ping", i ? NULL : ping_fn) ||
	    pstm_register(r, "pong", i ? pong_fn : NULL))
		return 2;
	int rc = pstm_queue_run(r, 1);
	pstm_close(r);
	if (rc)
		fprintf(stderr, "chain %d: %d\n", i, rc);
	return rc ? 3 : 0;
}

/* A task of a type this process cannot run waits for one that can; a
 * process returns PSTM_EUNREGISTERED only when no live worker can run
 * what is left. */
static void test_unregistered_types(void **s)
{
	(void)s;
	const char *uri = strdup(test_shm_uri("taskq-unreg"));
	struct pstm_create_opts o = {.size_bytes = 16 << 20};
	pstm_region *r;
	struct census c;
	uint64_t pending, failed;
	T = (struct tree){.n = CHAIN, .fail_at = UINT64_MAX};
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, tree_alloc, NULL));
	assert_pstm_ok(pstm_atomic(r, tree_zero, &(uint64_t){0}));
	assert_pstm_ok(pstm_register(r, "ping", NULL)); /* declared only */
	assert_pstm_ok(pstm_register(r, "pong", NULL));

	/* this process runs neither: the task stays */
	assert_pstm_ok(pstm_enqueue(r, "pong", &(uint64_t){HOLD}, 8));
	assert_int_equal(pstm_queue_run(r, 2), PSTM_EUNREGISTERED);
	queue_state(r, &pending, &failed);
	assert_int_equal(pending, 1);

	/* ping here and pong there: each waits while the other works */
	test_run_procs(2, chain_child, (void *)uri);
	assert_pstm_ok(pstm_atomic_ro(r, count_fn, &c));
	assert_int_equal(c.one, CHAIN);
	queue_state(r, &pending, &failed);
	assert_int_equal(pending, 0);

	/* a function registered later runs what waited */
	assert_pstm_ok(pstm_atomic(r, tree_zero, &(uint64_t){0}));
	assert_pstm_ok(pstm_enqueue(r, "pong", &(uint64_t){CHAIN - 1}, 8));
	assert_pstm_ok(pstm_register(r, "ping", ping_fn));
	assert_int_equal(pstm_queue_run(r, 1), PSTM_EUNREGISTERED);
	assert_pstm_ok(pstm_register(r, "pong", pong_fn));
	assert_pstm_ok(pstm_queue_run(r, 1));
	assert_pstm_ok(pstm_atomic_ro(r, count_fn, &c));
	assert_int_equal(c.one, 1);
	assert_pstm_ok(pstm_close(r));
	pstm_unlink(uri);
	free((void *)uri);
}

/* ---------------------------------------------------------- bad input */

struct argcheck {
	_Atomic uint64_t seen, bytes; /* of committed tasks */
};
static struct argcheck AC;

static void arg_committed(void *len)
{
	atomic_fetch_add(&AC.seen, 1);
	atomic_fetch_add(&AC.bytes, (uint64_t)(uintptr_t)len);
}

/* checks that its argument is the pattern of its length */
static int pattern_fn(pstm_tx *tx, const void *arg, size_t len)
{
	const uint8_t *p = arg;
	if (!p)
		return 90;
	for (size_t k = 0; k < len; k++)
		if (p[k] != (uint8_t)(k * 7 + len))
			return 91;
	pstm_tx_on_commit(tx, arg_committed, (void *)(uintptr_t)len);
	return 0;
}

static uint8_t *pattern(size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	for (size_t k = 0; k < len; k++)
		p[k] = (uint8_t)(k * 7 + len);
	return p;
}

struct in_tx {
	int enq, reg, run, txenq;
};

static int inside_fn(pstm_tx *tx, void *arg)
{
	struct in_tx *o = arg;
	pstm_region *r = pstm_tx_region(tx);
	o->enq = pstm_enqueue(r, "pat", NULL, 0);
	o->reg = pstm_register(r, "pat", pattern_fn);
	o->run = pstm_queue_run(r, 1);
	o->txenq = pstm_tx_enqueue(tx, "nope", NULL, 0);
	return 0;
}

static int ro_enqueue(pstm_tx *tx, void *arg)
{
	(void)arg;
	return pstm_tx_enqueue(tx, "pat", NULL, 0);
}

static int other_fn(pstm_tx *tx, const void *arg, size_t len)
{
	(void)tx;
	(void)arg;
	(void)len;
	return 0;
}

static _Atomic int sleepy_started; /* the run is in a task now */

static int sleepy_fn(pstm_tx *tx, const void *arg, size_t len)
{
	(void)tx;
	(void)arg;
	(void)len;
	atomic_store(&sleepy_started, 1);
	usleep(200000);
	return 0;
}

static void *run_thread(void *r)
{
	return (void *)(intptr_t)pstm_queue_run(r, 1);
}

static uint64_t pending_of(pstm_region *r)
{
	uint64_t pending, failed;
	queue_state(r, &pending, &failed);
	return pending;
}

static void test_bad_input(void **s)
{
	(void)s;
	const char *uri = strdup(test_shm_uri("taskq-bad"));
	struct pstm_create_opts o = {.size_bytes = 16 << 20, .log_bytes = 64 << 10};
	pstm_region *r;
	char name[80];
	assert_pstm_ok(pstm_create(uri, &o, &r));

	/* nothing registered yet: no queue; runs return at once */
	assert_int_equal(pstm_enqueue(r, "pat", NULL, 0), PSTM_ENOENT);
	assert_pstm_ok(pstm_queue_run(r, 1));

	assert_pstm_ok(pstm_register(r, "pat", pattern_fn));
	assert_pstm_ok(pstm_register(r, "pat", pattern_fn)); /* again: fine */
	assert_int_equal(pstm_register(r, "pat", other_fn), PSTM_EEXIST);
	assert_int_equal(pstm_register(NULL, "pat", pattern_fn), PSTM_EINVAL);
	/* names: unknown, empty, NULL, too long, not printable */
	assert_int_equal(pstm_enqueue(r, "unknown", NULL, 0), PSTM_ENOENT);
	assert_int_equal(pstm_enqueue(r, "", NULL, 0), PSTM_EINVAL);
	assert_int_equal(pstm_register(r, "", pattern_fn), PSTM_EINVAL);
	assert_int_equal(pstm_enqueue(r, NULL, NULL, 0), PSTM_EINVAL);
	assert_int_equal(pstm_register(r, NULL, pattern_fn), PSTM_EINVAL);
	memset(name, 'n', sizeof(name));
	name[PSTM_TASK_NAME_MAX + 1] = 0;
	assert_int_equal(pstm_register(r, name, pattern_fn), PSTM_EINVAL);
	assert_int_equal(pstm_enqueue(r, name, NULL, 0), PSTM_EINVAL);
	name[PSTM_TASK_NAME_MAX] = 0; /* the longest: fine */
	assert_pstm_ok(pstm_register(r, name, pattern_fn));
	assert_pstm_ok(pstm_enqueue(r, name, NULL, 0));
	assert_int_equal(pstm_register(r, "with space", pattern_fn), PSTM_EINVAL);
	assert_int_equal(pstm_register(r, "tab\t", pattern_fn), PSTM_EINVAL);
	/* arguments */
	assert_int_equal(pstm_enqueue(r, "pat", NULL, 1), PSTM_EINVAL);
	assert_int_equal(pstm_enqueue(r, "pat", "x", PSTM_TASK_ARG_MAX + 1), PSTM_EINVAL);
	assert_int_equal(pstm_tx_enqueue(NULL, "pat", NULL, 0), PSTM_EINVAL);
	/* inside a transaction */
	struct in_tx it;
	assert_pstm_ok(pstm_atomic(r, inside_fn, &it));
	assert_int_equal(it.enq, PSTM_EINTX);
	assert_int_equal(it.reg, PSTM_EINTX);
	assert_int_equal(it.run, PSTM_EINTX);
	assert_int_equal(it.txenq, PSTM_ENOENT);
	assert_int_equal(pstm_queue_run(r, 0), PSTM_EINVAL);
	assert_int_equal(pstm_queue_run(NULL, 1), PSTM_EINVAL);
	/* read-only: a read-only transaction cannot enqueue (there is no
	 * read-only handle: pstm_open attaches with write access) */
	assert_int_equal(pstm_atomic_ro(r, ro_enqueue, NULL), PSTM_EINVAL);
	pstm_tx *tx;
	assert_pstm_ok(pstm_tx_begin(r, PSTM_TX_READ_ONLY, &tx));
	assert_int_equal(pstm_tx_call(tx, ro_enqueue, NULL), PSTM_EINVAL);
	pstm_tx_end(tx);
	assert_int_equal(pending_of(r), 1);

	/* arguments are copied in and out, up to PSTM_TASK_ARG_MAX (beyond
	 * the 64 KiB redo log: large transactions) */
	static const size_t lens[] = {0, 1, 7, 8, 100, 4096, 16384, 65536,
				      PSTM_TASK_ARG_MAX};
	for (size_t k = 0; k < sizeof(lens) / sizeof(*lens); k++) {
		uint8_t *p = pattern(lens[k]);
		assert_pstm_ok(pstm_enqueue(r, "pat", p, lens[k]));
		free(p);
	}
	atomic_store(&AC.seen, 0);
	atomic_store(&AC.bytes, 0);
	assert_pstm_ok(pstm_queue_run(r, 2));
	assert_int_equal(AC.seen, 1 + sizeof(lens) / sizeof(*lens));
	assert_int_equal(AC.bytes, 0 + 1 + 7 + 8 + 100 + 4096 + 16384 + 65536 +
					   PSTM_TASK_ARG_MAX);
	assert_int_equal(pending_of(r), 0);

	/* one run per handle at a time */
	assert_pstm_ok(pstm_register(r, "sleepy", sleepy_fn));
	assert_pstm_ok(pstm_enqueue(r, "sleepy", NULL, 0));
	pthread_t th;
	void *ret;
	atomic_store(&sleepy_started, 0);
	assert_int_equal(pthread_create(&th, NULL, run_thread, r), 0);
	/* until it runs the task (a loaded machine may take a while) */
	for (int k = 0; k < 10000 && !atomic_load(&sleepy_started); k++)
		usleep(1000);
	assert_int_equal(pstm_queue_run(r, 1), PSTM_EBUSY);
	pthread_join(th, &ret);
	assert_int_equal((intptr_t)ret, 0);

	/* at most PSTM_TASK_TYPES_MAX types; registered names are kept */
	int k = 0, rc = 0;
	while (rc == 0 && k < 2 * PSTM_TASK_TYPES_MAX) {
		snprintf(name, sizeof(name), "type-%d", k++);
		rc = pstm_register(r, name, other_fn);
	}
	assert_int_equal(rc, PSTM_ETYPESFULL);
	assert_int_equal(k, PSTM_TASK_TYPES_MAX - 3 + 1); /* pat, the long one, sleepy */
	assert_pstm_ok(pstm_enqueue(r, "type-0", NULL, 0));
	assert_pstm_ok(pstm_queue_run(r, 1));
	assert_pstm_ok(pstm_close(r));
	test_assert_clean(uri);
	pstm_unlink(uri);
	free((void *)uri);
}

/* A region full of tasks: the enqueue that does not fit fails with
 * PSTM_EHEAPFULL and changes nothing; every task before it runs, on
 * threads whose slots have no allocator cache yet (freeing a task's
 * block must not need memory). */
static void test_heap_full(void **s)
{
	(void)s;
	const char *uri = strdup(test_shm_uri("taskq-full"));
	struct pstm_create_opts o = {.size_bytes = 1 << 20};
	pstm_region *r;
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_register(r, "pat", pattern_fn));
	uint8_t *p = pattern(1000);
	uint64_t n = 0;
	int rc;

	while ((rc = pstm_enqueue(r, "pat", p, 1000)) == 0)
		n++;
	assert_int_equal(rc, PSTM_EHEAPFULL);
	assert_true(n > 100);
	assert_int_equal(pending_of(r), n);
	assert_int_equal(pstm_enqueue(r, "pat", p, 1000), PSTM_EHEAPFULL);
	assert_int_equal(pending_of(r), n);
	atomic_store(&AC.seen, 0);
	atomic_store(&AC.bytes, 0);
	assert_pstm_ok(pstm_queue_run(r, 2));
	assert_int_equal(AC.seen, n);
	assert_int_equal(pending_of(r), 0);
	assert_pstm_ok(pstm_enqueue(r, "pat", p, 1000)); /* room again */
	free(p);
	assert_pstm_ok(pstm_close(r));
	test_assert_clean(uri);
	pstm_unlink(uri);
	free((void *)uri);
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "--child") == 0) {
		T.acked = test_map_shared(argv[5], (PF_NODES + 63) / 64 * 8);
		return T.acked ? powerfail_child(argv[2], argv[3], (unsigned)atoi(argv[4])) : 10;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_heap_full),
		cmocka_unit_test(test_unregistered_types),
		cmocka_unit_test(test_termination_waits_without_spinning),
		cmocka_unit_test(test_failure_stops_every_runner),
		cmocka_unit_test(test_listing_attaches_nothing),
		cmocka_unit_test(test_failed_list_api),
		cmocka_unit_test(test_exactly_once_kill_shm),
		cmocka_unit_test(test_exactly_once_kill_file),
		cmocka_unit_test(test_powerfail),
	};
	TEST_OUTPUT();
	if (getenv("TQ_ONLY"))
		cmocka_set_test_filter(getenv("TQ_ONLY"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
