/*
 * test_observe.c - a handle opened with PSTM_OPEN_OBSERVE (what pstm dump
 * uses) attaches nothing and reads without side effects on the other
 * processes: no process entry, no slot, no store to the region or its
 * runtime (both mapped PROT_READ), so it works on a full process table
 * and for a user with only read permission, and leaves both tables byte
 * for byte as they were; it recovers no dead process (at open, or at a
 * lock one left), aborts nobody's commit (not even a stopped one's:
 * before its commit point it reads the values from before it, past it
 * through its record), never builds a missing runtime, and its read-only
 * transactions neither wait for a transaction that holds the serial
 * token (even of a stopped process) nor take it.  `pstm dump` of a bank
 * that two processes keep changing is exact, and a dump stopped in the
 * middle of its snapshot holds nobody up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "companion.h"
#include "helpers.h"
#include "inspect.h"
#include "stm.h"

static const char *region;
static pid_t stopped_child; /* a test's stopped process: killed if it fails */

static int teardown(void **s)
{
	(void)s;
	if (stopped_child > 0) {
		kill(stopped_child, SIGKILL);
		waitpid(stopped_child, NULL, 0);
	}
	stopped_child = 0;
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
	/* nor allocates (no slot: no allocator cache of its own) */
	pstm_off off;
	assert_pstm_ok(pstm_tx_begin(r, 0, &tx));
	assert_int_equal(pstm_tx_alloc(tx, 64, &off), PSTM_EINVAL);
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

/*
 * An observer cannot raise the clock, so a blind commit (one that reads
 * nothing) can give an orec a version the observer already read above
 * its snapshot (GV5 reuses a version nobody read): such reads are
 * validated by value too.  A and B are written together by blind
 * commits of another thread (A == B always); the observer reads A, a
 * blind commit rewrites both (the same version again), then it reads B:
 * the attempt must conflict, never return A != B.
 */
struct ab {
	pstm_region *w;
	pstm_off root;
	uint64_t val;
};

static int ab_write(pstm_tx *tx, void *arg)
{
	struct ab *x = arg;
	x->root = pstm_root(tx, 16);
	pstm_store64(tx, x->root, x->val);
	pstm_store64(tx, x->root + 8, x->val);
	return 0;
}

static void *ab_writer(void *arg)
{
	return (void *)(intptr_t)pstm_atomic(((struct ab *)arg)->w, ab_write, arg);
}

static void test_reused_version_conflicts(void **s)
{
	(void)s;
	struct pstm_create_opts o = {.size_bytes = 2 << 20, .replace = 1};
	region = test_shm_uri("observe");
	struct ab x = {.val = 1};
	pstm_region *obs;
	assert_pstm_ok(pstm_create(region, &o, &x.w));
	assert_pstm_ok(pstm_atomic(x.w, ab_write, &x)); /* A = B = 1 */
	assert_pstm_ok(pstm_open_opts(region, PSTM_OPEN_OBSERVE, &obs));
	int conflicts = 0, rounds = 0;
	for (uint64_t k = 2; k < 50; k++, rounds++) {
		pstm_tx *tx;
		uint64_t a = 0, b = 0;
		assert_pstm_ok(pstm_tx_begin(obs, PSTM_TX_READ_ONLY, &tx));
		int rc = pstm_tx_load64(tx, x.root, &a);
		pthread_t th;
		x.val = k; /* a blind commit between the two loads */
		assert_int_equal(pthread_create(&th, NULL, ab_writer, &x), 0);
		void *wrc;
		pthread_join(th, &wrc);
		assert_int_equal((intptr_t)wrc, 0);
		if (rc == 0)
			rc = pstm_tx_load64(tx, x.root + 8, &b);
		if (rc == 0) {
			assert_pstm_ok(pstm_tx_commit(tx));
			assert_int_equal(a, b); /* one snapshot */
		} else {
			assert_int_equal(rc, PSTM_ECONFLICT);
			assert_pstm_ok(pstm_tx_end(tx));
			conflicts++;
		}
	}
	print_message("# %d of %d observer attempts met a rewrite between their loads\n",
		      conflicts, rounds);
	assert_true(conflicts > 0); /* the rewrite was seen, not missed */
	assert_pstm_ok(pstm_close(obs));
	assert_pstm_ok(pstm_close(x.w));
}

/* ------------------------------------------------ attaching nothing */

enum { ACC = 16, ACC_START = 1000 };
#define BANK_TOTAL ((uint64_t)ACC * ACC_START)

/* Run "$PSTM_BIN/pstm ARGS" into @out (stdout and stderr); its status. */
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
	if (!f)
		return 127;
	size_t k = fread(out, 1, n - 1, f);
	out[k] = 0;
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The sum of the root words 0 .. ACC-1 that `pstm dump` printed; -1 if
 * it did not print them all. */
static int64_t dump_sum(const char *out)
{
	int64_t sum = 0;
	int seen = 0;
	for (const char *p = strstr(out, "  word "); p; p = strstr(p + 1, "  word ")) {
		unsigned i;
		unsigned long long v;
		if (sscanf(p, "  word %u: %llu", &i, &v) == 2 && i < ACC) {
			sum += (int64_t)v;
			seen++;
		}
	}
	return seen == ACC ? sum : -1;
}

static int bank_init(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_off root = pstm_root(tx, 64 * 8);
	for (int i = 0; i < ACC; i++)
		pstm_store64(tx, root + 8 * (pstm_off)i, ACC_START);
	return 0;
}

static int bank_sum(pstm_tx *tx, void *arg)
{
	pstm_off root = pstm_root(tx, 64 * 8);
	uint64_t s = 0;
	for (int i = 0; i < ACC; i++)
		s += pstm_load64(tx, root + 8 * (pstm_off)i);
	*(uint64_t *)arg = s;
	return 0;
}

static void bank_create(const char *uri, uint32_t max_procs, mode_t mode)
{
	struct pstm_create_opts o = {.size_bytes = 2 << 20, .replace = 1,
				     .max_procs = max_procs, .mode = mode};
	pstm_region *r;
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, bank_init, NULL));
	assert_pstm_ok(pstm_close(r));
}

/* Everything an observer might store to: the region file and the runtime
 * (process table, slots, orecs, clock, tokens, conflict tables), read
 * through a read-only mapping. */
struct image {
	uint8_t *file, *rt;
	size_t file_bytes, rt_bytes;
};

static void image_take(const char *uri, struct image *im)
{
	struct pstm_region ro;
	assert_pstm_ok(region_map_readonly(uri, &ro));
	assert_non_null(ro.rt_base);
	im->file_bytes = ro.sb.size_bytes;
	im->rt_bytes = ro.sb.rt_bytes;
	im->file = malloc(im->file_bytes);
	im->rt = malloc(im->rt_bytes);
	assert_non_null(im->file);
	assert_non_null(im->rt);
	memcpy(im->file, ro.fbase ? ro.fbase : ro.base, im->file_bytes);
	memcpy(im->rt, ro.rt_base, im->rt_bytes);
	region_unmap_readonly(&ro);
}

static void image_same(const struct image *a, const struct image *b)
{
	assert_int_equal(a->file_bytes, b->file_bytes);
	assert_int_equal(a->rt_bytes, b->rt_bytes);
	assert_memory_equal(a->file, b->file, a->file_bytes);
	assert_memory_equal(a->rt, b->rt, a->rt_bytes);
}

static void image_free(struct image *im)
{
	free(im->file);
	free(im->rt);
}

/* A child attached to @uri, asleep until its pipe closes. */
struct sleeper {
	pid_t pid;
	int release;
};

static void sleeper_start(const char *uri, struct sleeper *h)
{
	int ready[2], go[2];
	char c = 0;
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	fflush(stdout);
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
		(void)!read(go[0], &c, 1);
		_exit(pstm_close(r) ? 1 : 0);
	}
	close(ready[1]);
	close(go[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	h->release = go[1];
}

/* (a later sleeper holds an earlier one's pipe too: SIGKILL it; before
 * the close, or the last one, woken by it, may exit first: seen once
 * beside CPU hogs) */
static void sleeper_stop(struct sleeper *h)
{
	kill(h->pid, SIGKILL);
	close(h->release);
	assert_int_equal(test_wait(h->pid), 128 + SIGKILL);
}

/* (a), (d): a full process table; dump works, and leaves the region and
 * its runtime (process table, slot table and all) byte for byte as they
 * were; so does an observing handle's transactions. */
static void test_full_process_table(void **s)
{
	(void)s;
	struct sleeper h[2];
	struct image before, after;
	char out[16384];
	pstm_region *r;
	region = test_file_uri("observe-full");
	bank_create(region, 2, 0);
	sleeper_start(region, &h[0]);
	sleeper_start(region, &h[1]);
	assert_int_equal(pstm_open(region, &r), PSTM_EPROCFULL);
	image_take(region, &before);

	int rc = run_cli(out, sizeof(out), "dump %s", region);
	if (rc)
		print_error("%s", out);
	assert_int_equal(rc, 0);
	assert_int_equal(dump_sum(out), BANK_TOTAL);

	uint64_t sum = 0;
	struct pstm_stats st;
	assert_pstm_ok(pstm_open_opts(region, PSTM_OPEN_OBSERVE, &r));
	for (int i = 0; i < 100; i++) {
		assert_pstm_ok(pstm_atomic_ro(r, bank_sum, &sum));
		assert_int_equal(sum, BANK_TOTAL);
	}
	/* the statistics stay in the handle */
	assert_pstm_ok(pstm_stats_get(r, &st));
	assert_int_equal(st.commits_ro, 100);
	image_take(region, &after);
	image_same(&before, &after);
	image_free(&after);
	assert_pstm_ok(pstm_close(r));

	image_take(region, &after);
	image_same(&before, &after);
	image_free(&before);
	image_free(&after);
	sleeper_stop(&h[0]);
	sleeper_stop(&h[1]);
}

/* (b): a user with read permission only (the file 0644, root's), in a
 * child that setuids to nobody; and the runtime gone (as after a reboot):
 * the observer does not build it, for nobody and for root alike. */
static int read_only_user(void *arg, int i)
{
	const char *uri = arg;
	char out[16384];
	pstm_region *r;
	uint64_t sum = 0;
	if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
		return 90;
	if (open(uri, O_RDWR) >= 0 || errno != EACCES)
		return 10; /* it may read the file, not write it */
	if (i == 0) {
		if (pstm_open(uri, &r) != PSTM_EACCES)
			return 11;
		if (pstm_open_opts(uri, PSTM_OPEN_OBSERVE, &r))
			return 12;
		if (pstm_atomic_ro(r, bank_sum, &sum) || sum != BANK_TOTAL)
			return 13;
		if (pstm_close(r))
			return 14;
		if (run_cli(out, sizeof(out), "dump %s", uri) != 0 ||
		    dump_sum(out) != (int64_t)BANK_TOTAL)
			return 15;
		return 0;
	}
	/* no runtime */
	if (pstm_open_opts(uri, PSTM_OPEN_OBSERVE, &r) != PSTM_ERUNTIME)
		return 20;
	if (run_cli(out, sizeof(out), "dump %s", uri) != 1 ||
	    !strstr(out, "no runtime"))
		return 21;
	return 0;
}

static char ro_dir[128];

static int ro_teardown(void **s)
{
	teardown(s);
	if (ro_dir[0])
		rmdir(ro_dir);
	ro_dir[0] = 0;
	return 0;
}

static void test_read_permission_only(void **s)
{
	(void)s;
	static char path[192];
	char rt[COMPANION_PATH_MAX], wc[COMPANION_PATH_MAX];
	struct stat st;
	pstm_region *r;
	snprintf(ro_dir, sizeof(ro_dir), "/tmp/pstm-test-observe-%d", (int)getpid());
	assert_int_equal(mkdir(ro_dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/bank", ro_dir);
	region = path;
	bank_create(path, 0, 0644);
	assert_int_equal(test_wait(test_spawn(read_only_user, path, 0)), 0);

	/* as after a reboot: no runtime, nobody attached */
	assert_int_equal(companion_paths_of(path, rt, wc), 0);
	assert_int_equal(stat(rt, &st), 0);
	assert_int_equal(unlink(rt), 0);
	assert_int_equal(test_wait(test_spawn(read_only_user, path, 1)), 0);
	assert_int_equal(pstm_open_opts(path, PSTM_OPEN_OBSERVE, &r), PSTM_ERUNTIME);
	assert_int_equal(stat(rt, &st), -1); /* never built */
	assert_int_equal(errno, ENOENT);
	/* an ordinary open builds it; observers work again */
	assert_pstm_ok(pstm_open(path, &r));
	assert_pstm_ok(pstm_close(r));
	assert_int_equal(test_wait(test_spawn(read_only_user, path, 0)), 0);
}

/* (c): two writers transfer money; dumps are exact; a dump stopped in
 * the middle of its snapshot holds neither writer up. */
static struct bank_shared {
	_Atomic uint64_t commits[2];
	_Atomic int stop;
} *BS;

static int xfer(pstm_tx *tx, void *arg)
{
	uint64_t *x = arg;
	pstm_off root = pstm_root(tx, 64 * 8);
	pstm_off a = root + 8 * (x[0] % ACC), b = root + 8 * (x[1] % ACC);
	uint64_t va = pstm_load64(tx, a);
	if (a == b || va < x[2])
		return 0;
	pstm_store64(tx, a, va - x[2]);
	pstm_store64(tx, b, pstm_load64(tx, b) + x[2]);
	return 0;
}

static int writer(void *arg, int i)
{
	pstm_region *r;
	uint64_t seed = (uint64_t)getpid() * 2654435761u + 1;
	if (pstm_open(arg, &r))
		return 1;
	while (!atomic_load(&BS->stop)) {
		uint64_t x[3] = {xorshift64(&seed), xorshift64(&seed), xorshift64(&seed) % 50};
		if (pstm_atomic(r, xfer, x))
			return 2;
		atomic_fetch_add(&BS->commits[i], 1);
	}
	return pstm_close(r) ? 3 : 0;
}

/* An observer that reads half the bank, stops itself, then reads the
 * rest: it must see the exact total (retrying until its snapshot holds). */
static int stopped_observer(void *arg, int i)
{
	(void)i;
	int *fd = arg;
	pstm_region *r;
	pstm_off root = 0;
	bool stopped = false;
	if (pstm_open_opts(region, PSTM_OPEN_OBSERVE, &r))
		return 1;
	for (int round = 0; round < 100000; round++) {
		pstm_tx *tx;
		uint64_t v, sum = 0;
		int rc = pstm_tx_begin(r, PSTM_TX_READ_ONLY, &tx);
		if (rc)
			return 2;
		rc = pstm_tx_root(tx, 64 * 8, &root);
		for (int k = 0; !rc && k < ACC; k++) {
			if (k == ACC / 2 && !stopped) {
				stopped = true;
				if (write(fd[1], "s", 1) != 1)
					return 3;
				raise(SIGSTOP);
			}
			rc = pstm_tx_load64(tx, root + 8 * (pstm_off)k, &v);
			sum += v;
		}
		if (!rc)
			rc = pstm_tx_commit(tx);
		else
			pstm_tx_end(tx);
		if (rc == PSTM_ECONFLICT)
			continue;
		if (rc)
			return 4;
		return sum == BANK_TOTAL && pstm_close(r) == 0 ? 0 : 5;
	}
	return 6;
}

static uint64_t commits_of(int i) { return atomic_load(&BS->commits[i]); }

static void wait_commits(uint64_t n)
{
	uint64_t t0 = test_now_ns();
	while ((commits_of(0) < n || commits_of(1) < n) &&
	       test_now_ns() - t0 < 10000000000ull)
		usleep(1000);
	assert_true(commits_of(0) >= n && commits_of(1) >= n);
}

static void test_dump_beside_writers(void **s)
{
	(void)s;
	char out[16384];
	pid_t w[2];
	region = test_shm_uri("observe-bank");
	bank_create(region, 0, 0);
	BS = mmap(NULL, sizeof(*BS), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		  -1, 0);
	assert_true(BS != MAP_FAILED);
	memset(BS, 0, sizeof(*BS));
	for (int i = 0; i < 2; i++)
		w[i] = test_spawn(writer, (void *)region, i);
	wait_commits(100);
	for (int k = 0; k < 10; k++) {
		uint64_t c0 = commits_of(0), c1 = commits_of(1);
		int rc = run_cli(out, sizeof(out), "dump %s", region);
		if (rc)
			print_error("%s", out);
		assert_int_equal(rc, 0);
		assert_int_equal(dump_sum(out), BANK_TOTAL);
		if (k == 9) /* the writers went on meanwhile */
			assert_true(commits_of(0) > c0 || commits_of(1) > c1);
	}

	int fd[2];
	char c;
	assert_int_equal(pipe(fd), 0);
	pid_t o = test_spawn(stopped_observer, fd, 0);
	assert_int_equal(read(fd[0], &c, 1), 1);
	int st;
	assert_int_equal(waitpid(o, &st, WUNTRACED), o);
	assert_true(WIFSTOPPED(st));
	/* both writers commit while the observer sits in its snapshot */
	uint64_t c0 = commits_of(0), c1 = commits_of(1);
	wait_commits((c0 > c1 ? c0 : c1) + 200);
	kill(o, SIGCONT);
	assert_int_equal(test_wait(o), 0);
	close(fd[0]);
	close(fd[1]);

	atomic_store(&BS->stop, 1);
	for (int i = 0; i < 2; i++)
		assert_int_equal(test_wait(w[i]), 0);
	pstm_region *r;
	uint64_t sum = 0;
	assert_pstm_ok(pstm_open(region, &r));
	assert_pstm_ok(pstm_atomic_ro(r, bank_sum, &sum));
	assert_int_equal(sum, BANK_TOTAL);
	assert_pstm_ok(pstm_close(r));
	munmap(BS, sizeof(*BS));
}

/* A writer stopped in its commit before the commit point (LOCKING, its
 * locks held): an observer aborts nobody's commit, and does not wait
 * either: it reads the value from before that commit (lib/lockwait.c,
 * read_before_slotless), in the explicit form and in pstm_atomic_ro, at
 * once; the writer, continued, commits on its first attempt, and the
 * observer's next read sees its value. */
static int stopped_writer(void *arg, int i)
{
	(void)i;
	pstm_region *r;
	uint64_t v[2] = {0, 8};
	struct pstm_stats st;
	setenv("PSTM_CRASH_AT", "commit.locked:1:stop", 1);
	if (pstm_open(arg, &r) || pstm_atomic(r, word_fn, v))
		return 1;
	if (pstm_stats_get(r, &st))
		return 2;
	/* nobody aborted it: one commit, no abort */
	if (st.commits != 1 || st.aborts_lock || st.aborts_validate || st.aborts_read)
		return 10 + (int)st.aborts_lock;
	return pstm_close(r) ? 3 : 0;
}

static int reading_observer(void *arg, int i)
{
	(void)i;
	pstm_region *r;
	uint64_t v = 0;
	uint64_t t0 = test_now_ns();
	if (pstm_open_opts(arg, PSTM_OPEN_OBSERVE, &r) || pstm_atomic_ro(r, read_fn, &v))
		return 1;
	if (v != 7)
		return 2;
	/* at once: no wait for the stopped writer (it waited, sleeping,
	 * until the writer went on, before read_before_slotless) */
	if (test_now_ns() - t0 > 100000000ull)
		return 3;
	return pstm_close(r) ? 4 : 0;
}

static void test_stopped_commit_not_aborted(void **s)
{
	(void)s;
	const char *uri = setup(7);
	pstm_region *r;
	uint64_t v = 0;
	int st;
	pid_t w = stopped_child = test_spawn(stopped_writer, (void *)uri, 0);
	assert_int_equal(waitpid(w, &st, WUNTRACED), w);
	assert_true(WIFSTOPPED(st));
	assert_pstm_ok(pstm_open_opts(uri, PSTM_OPEN_OBSERVE, &r));
	uint64_t t0 = test_now_ns();
	/* 20 ms of attempts, well past STOPPED_NS: each reads the old value */
	for (int i = 0; i < 3 || test_now_ns() - t0 < 20000000ull; i++) {
		pstm_tx *tx;
		v = 0;
		assert_pstm_ok(pstm_tx_begin(r, PSTM_TX_READ_ONLY, &tx));
		assert_pstm_ok(pstm_tx_call(tx, read_fn, &v));
		assert_pstm_ok(pstm_tx_commit(tx));
		assert_int_equal(v, 7);
	}
	assert_int_equal(test_wait(test_spawn(reading_observer, (void *)uri, 0)), 0);
	kill(w, SIGCONT);
	assert_int_equal(test_wait(w), 0);
	stopped_child = 0;
	assert_pstm_ok(pstm_atomic_ro(r, read_fn, &v));
	assert_int_equal(v, 8);
	assert_pstm_ok(pstm_close(r));
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test_teardown(test_dead_member_left, teardown),
	cmocka_unit_test_teardown(test_no_store, teardown),
	cmocka_unit_test_teardown(test_token_of_stopped_process, teardown),
	cmocka_unit_test_teardown(test_dead_lock_read_through, teardown),
	cmocka_unit_test_teardown(test_reused_version_conflicts, teardown),
	cmocka_unit_test_teardown(test_full_process_table, teardown),
	cmocka_unit_test_teardown(test_read_permission_only, ro_teardown),
	cmocka_unit_test_teardown(test_dump_beside_writers, teardown),
	cmocka_unit_test_teardown(test_stopped_commit_not_aborted, teardown),
};

TEST_MAIN(tests)
