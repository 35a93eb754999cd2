/*
 * test_conflict.c - conflict reports (lib/conflict.c, pstm conflicts):
 * two processes run conflicting transactions on the same accounts, a
 * transfer and an audit, made to lose in one way each (a lock held, a
 * read that meets a newer version, a failed validation); pstm conflicts
 * --json must then name both sides with their pids, the cause, the
 * account and a time lost, while the processes run and after they have
 * exited.  A run without conflicts reports none, a format 1 region has
 * no tables (and its orecs name no writer), and functions without a
 * name are found in the test program's symbol table.
 */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "helpers.h"

static const char *region;
static pid_t kids[2];  /* T and A while they run */
/* A's attempts of the running audit, shared (MAP_SHARED, made by
 * start()): T's hold waits for them, so that a descheduled A still loses
 * against the lock */
static _Atomic int *seen_attempts;

/* a failed assertion leaves the two processes behind: they go too */
static int teardown(void **s)
{
	(void)s;
	alarm(0);
	for (int i = 0; i < 2; i++)
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
	if (region)
		pstm_unlink(region);
	region = NULL;
	unsetenv("PSTM_TEST_FORMAT");
	return 0;
}

/* in T and A: die with the test program, close the pipe ends @fds */
static void child_fds(const int *fds, int n)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* ------------------------------------------------------ the accounts */

#define NACC 4
static pstm_off base;                /* accounts, then the audit word */
static pstm_off acc(int i) { return base + 8 * (pstm_off)i; }
#define AUDIT_WORD (base + 8 * NACC)

static int setup(pstm_tx *tx, void *arg)
{
	(void)arg;
	base = pstm_root(tx, 8 * (NACC + 1));
	for (int i = 0; i < NACC; i++)
		pstm_store64(tx, acc(i), 100);
	return 0;
}

static void make_region(const char *uri)
{
	pstm_region *r;
	region = uri;
	assert_pstm_ok(pstm_create(uri, NULL, &r));
	assert_pstm_ok(pstm_atomic(r, setup, NULL));
	assert_pstm_ok(pstm_close(r));
}

/* ------------------------------------------- the transfer process (T) */

static int cmd_fd[2], reply_fd[2]; /* to T, from T */
static int go_fd[2], done_fd[2];   /* to A, from A */

static void put(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		_exit(90);
}

static char get(int fd)
{
	char c;
	if (read(fd, &c, 1) != 1)
		_exit(91);
	return c;
}

struct hold {
	int from, to;
	int named;      /* pstm_tx_name it */
	int sleep_ms;   /* inevitable: hold the lock on @from this long */
};

static int transfer(pstm_tx *tx, void *arg)
{
	struct hold *h = arg;
	if (h->named)
		pstm_tx_name(tx, "transfer");
	uint64_t a = pstm_load64(tx, acc(h->from)), b = pstm_load64(tx, acc(h->to));
	pstm_store64(tx, acc(h->from), a - 1);
	pstm_store64(tx, acc(h->to), b + 1);
	return 0;
}

/* a transfer between accounts 2 and 3 that reads account 0 first: it
 * meets the version 't' gave account 0 and raises the clock, so its
 * commit version differs (committers do not advance the clock) */
static int elsewhere(pstm_tx *tx, void *arg)
{
	(void)pstm_load64(tx, acc(0));
	return transfer(tx, arg);
}

/* the same with a lock held for a while: inevitable, it locks what it
 * touches */
static int unnamed_hold(pstm_tx *tx, void *arg)
{
	struct hold *h = arg;
	if (h->named)
		pstm_tx_name(tx, "transfer");
	if (h->sleep_ms) {
		assert_pstm_ok(pstm_tx_inevitable(tx));
		pstm_store64(tx, acc(h->from), pstm_load64(tx, acc(h->from)) - 1);
		put(reply_fd[1], 'l');
		/* from A's first attempt on, sleep_ms, and until its second
		 * (at most 10 s each way) */
		struct timespec ms = {0, 1000000L}, ts = {0, h->sleep_ms * 1000000L};
		for (int k = 0; k < 10000 && atomic_load(seen_attempts) < 1; k++)
			nanosleep(&ms, NULL);
		nanosleep(&ts, NULL);
		for (int k = 0; k < 10000 && atomic_load(seen_attempts) < 2; k++)
			nanosleep(&ms, NULL);
		pstm_store64(tx, acc(h->to), pstm_load64(tx, acc(h->to)) + 1);
		return 0;
	}
	return transfer(tx, arg);
}

/* T: run the commands of cmd_fd until 'q'; each answered on reply_fd */
static int transfer_proc(void *arg, int i)
{
	(void)arg;
	(void)i;
	pstm_region *r;
	int drop[] = {cmd_fd[1], reply_fd[0], go_fd[0], go_fd[1], done_fd[0], done_fd[1]};
	child_fds(drop, 6);
	if (pstm_open(region, &r))
		return 1;
	for (;;) {
		char c = get(cmd_fd[0]);
		struct hold h = {0, 1, 1, 0};
		int rc = 0;
		switch (c) {
		case 't': rc = pstm_atomic(r, transfer, &h); break;           /* named */
		case 'o': h.from = 2; h.to = 3; rc = pstm_atomic(r, elsewhere, &h); break;
		case 'w': h.named = 0; rc = pstm_atomic(r, unnamed_hold, &h); break;
		case 'L': h.sleep_ms = 40; rc = pstm_atomic(r, unnamed_hold, &h); break;
		case 'U': h.named = 0; h.sleep_ms = 40;
			  rc = pstm_atomic(r, unnamed_hold, &h); break;
		case 'q': pstm_close(r); return 0;
		default: return 2;
		}
		if (rc)
			return 3;
		put(reply_fd[1], 'd');
	}
}

/* ---------------------------------------------- the audit process (A) */

static int attempts;   /* of the running audit, in A */
static int mode;       /* what A does: the scenario */
enum { AUDIT_RO, AUDIT_NEWER, AUDIT_VALIDATE, AUDIT_UNNAMED, AUDIT_WRITE };

static int audit(pstm_tx *tx, void *arg)
{
	(void)arg;
	uint64_t sum = 0;
	if (mode != AUDIT_UNNAMED)
		pstm_tx_name(tx, "audit");
	atomic_store(seen_attempts, attempts + 1);
	if (++attempts == 1 && (mode == AUDIT_NEWER || mode == AUDIT_VALIDATE)) {
		/* read account 0, let T move money from it, go on: the
		 * first attempt cannot commit */
		sum = pstm_load64(tx, acc(0));
		put(cmd_fd[1], 't');
		if (get(reply_fd[0]) != 'd')
			_exit(92);
		if (mode == AUDIT_NEWER) {
			/* and another, elsewhere: T's log forgets the first
			 * one (its records and commit version), the orec of
			 * account 0 still names T */
			put(cmd_fd[1], 'o');
			if (get(reply_fd[0]) != 'd')
				_exit(92);
		}
		if (mode == AUDIT_VALIDATE) {
			pstm_store64(tx, AUDIT_WORD, sum);
			return 0; /* validation at commit fails */
		}
		for (int i = 1; i < NACC; i++) /* meets T's version of 1 */
			sum += pstm_load64(tx, acc(i));
		return 0;
	}
	for (int i = 0; i < NACC; i++)
		sum += pstm_load64(tx, acc(i));
	if (mode == AUDIT_VALIDATE || mode == AUDIT_WRITE)
		pstm_store64(tx, AUDIT_WORD, sum);
	return 0;
}

static int unnamed_audit(pstm_tx *tx, void *arg)
{
	return audit(tx, arg);
}

/* A: on each 'a' from go_fd, one audit; answers with its attempts */
static int audit_proc(void *arg, int i)
{
	(void)arg;
	(void)i;
	pstm_region *r;
	/* the handshake with T keeps cmd_fd[1] and reply_fd[0] */
	int drop[] = {go_fd[1], done_fd[0], cmd_fd[0], reply_fd[1]};
	child_fds(drop, 4);
	if (pstm_open(region, &r))
		return 1;
	for (;;) {
		char c = get(go_fd[0]);
		if (c == 'q')
			break;
		mode = c - '0';
		attempts = 0;
		int rc = mode == AUDIT_RO	? pstm_atomic_ro(r, audit, NULL)
			 : mode == AUDIT_UNNAMED ? pstm_atomic_ro(r, unnamed_audit, NULL)
						 : pstm_atomic(r, audit, NULL);
		if (rc)
			return 3;
		if (write(done_fd[1], &attempts, sizeof(attempts)) != sizeof(attempts))
			return 4;
	}
	pstm_close(r);
	return 0;
}

struct procs {
	pid_t t, a;
};

static void start(struct procs *p)
{
	if (!seen_attempts) {
		seen_attempts = mmap(NULL, sizeof(*seen_attempts), PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		assert_true(seen_attempts != MAP_FAILED);
	}
	atomic_store(seen_attempts, 0);
	assert_int_equal(pipe(cmd_fd), 0);
	assert_int_equal(pipe(reply_fd), 0);
	assert_int_equal(pipe(go_fd), 0);
	assert_int_equal(pipe(done_fd), 0);
	alarm(60); /* a hung process ends the test program */
	kids[0] = p->t = test_spawn(transfer_proc, NULL, 0);
	kids[1] = p->a = test_spawn(audit_proc, NULL, 0);
	close(cmd_fd[0]);
	close(reply_fd[1]);
	close(go_fd[0]);
	close(done_fd[1]);
}

/* one audit of @m in A; returns its attempts */
static int run_audit(int m)
{
	int n;
	put(go_fd[1], (char)('0' + m));
	assert_int_equal(read(done_fd[0], &n, sizeof(n)), sizeof(n));
	return n;
}

static void stop(struct procs *p)
{
	put(cmd_fd[1], 'q');
	put(go_fd[1], 'q');
	int st_t = test_wait(p->t), st_a = test_wait(p->a);
	kids[0] = kids[1] = 0;
	assert_int_equal(st_t, 0);
	assert_int_equal(st_a, 0);
	int fds[] = {cmd_fd[1], reply_fd[0], go_fd[1], done_fd[0]};
	for (size_t k = 0; k < sizeof(fds) / sizeof(fds[0]); k++)
		close(fds[k]);
}

/* --------------------------------------------------- pstm conflicts */

/* Run "$PSTM_BIN/pstm conflicts [--json] URI" into @out; its status. */
static int conflicts_cli(const char *uri, bool json, char *out, size_t n)
{
	char cmd[512];
	const char *bin = getenv("PSTM_BIN");
	snprintf(cmd, sizeof(cmd), "%s/pstm conflicts %s%s 2>&1", bin ? bin : "build",
		 json ? "--json " : "", uri);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	size_t k = fread(out, 1, n - 1, f);
	out[k] = 0;
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static json_object *conflicts_json(const char *uri)
{
	static char out[1 << 16];
	assert_int_equal(conflicts_cli(uri, true, out, sizeof(out)), 0);
	json_object *j = json_tokener_parse(out);
	if (!j)
		print_error("not JSON: %s\n", out);
	assert_non_null(j);
	return j;
}

static json_object *get_key(json_object *o, const char *k)
{
	json_object *v = NULL;
	if (!json_object_object_get_ex(o, k, &v))
		print_error("no \"%s\" in %s\n", k, json_object_to_json_string(o));
	assert_non_null(v);
	return v;
}

static const char *str_of(json_object *o, const char *k)
{
	return json_object_get_string(get_key(o, k));
}

static uint64_t u64_of(json_object *o, const char *k)
{
	return (uint64_t)json_object_get_int64(get_key(o, k));
}

/* the conflict that process @pid lost under name @name, or NULL */
static json_object *row_of(json_object *j, const char *name, pid_t pid)
{
	json_object *rows = get_key(j, "conflicts");
	for (size_t i = 0; i < json_object_array_length(rows); i++) {
		json_object *r = json_object_array_get_idx(rows, i);
		json_object *p = get_key(r, "process");
		if (!strcmp(str_of(p, "name"), name) && u64_of(p, "pid") == (uint64_t)pid)
			return r;
	}
	print_error("no conflict lost by %s (pid %d) in %s\n", name, (int)pid,
		    json_object_to_json_string(j));
	return NULL;
}

/* the row says: @mine (A) lost against @other (T), @cause, at account
 * 0, found by the transaction (@inferred 0) or by the reader as the one
 * word of its orec in use (1; -1: either), at least @min_lost_ns lost */
static json_object *expect_row(json_object *j, const struct procs *p,
			       const char *mine, const char *other,
			       const char *cause, uint64_t min_lost_ns, int inferred)
{
	json_object *r = row_of(j, mine, p->a);
	assert_non_null(r);
	json_object *o = get_key(r, "other");
	assert_string_equal(str_of(o, "name"), other);
	assert_int_equal(u64_of(o, "pid"), p->t);
	assert_string_equal(str_of(r, "cause"), cause);
	assert_true(u64_of(r, "aborts") >= 1);
	uint64_t lost = u64_of(r, "lost_ns");
	if (lost < min_lost_ns || lost > 10000000000ull)
		print_error("lost_ns %llu, expected at least %llu\n",
			    (unsigned long long)lost, (unsigned long long)min_lost_ns);
	assert_true(lost >= min_lost_ns && lost <= 10000000000ull);
	json_object *pl = json_object_array_get_idx(get_key(r, "places"), 0);
	assert_non_null(pl);
	assert_int_equal(u64_of(pl, "offset"), acc(0));
	if (inferred >= 0)
		assert_int_equal(json_object_get_boolean(get_key(pl, "offset_inferred")),
				 inferred);
	return r;
}

/* ------------------------------------------------------------- tests */

/* T holds account 0's lock (inevitable, 40 ms) while A audits: A loses
 * until T commits.  Reported while both run, and the same after. */
static void lock_held(const char *uri, bool named)
{
	struct procs p;
	char c;
	make_region(uri);
	start(&p);
	put(cmd_fd[1], 'w'); /* T publishes unnamed_hold's name */
	assert_int_equal(get(reply_fd[0]), 'd');
	put(cmd_fd[1], named ? 'L' : 'U');
	assert_int_equal(get(reply_fd[0]), 'l'); /* holds the lock now */
	int n = run_audit(named ? AUDIT_RO : AUDIT_UNNAMED);
	assert_true(n >= 2);
	assert_int_equal(read(reply_fd[0], &c, 1), 1);
	assert_int_equal(c, 'd');

	const char *mine = named ? "audit" : "unnamed_audit";
	const char *other = named ? "transfer" : "unnamed_hold";
	json_object *j = conflicts_json(uri);
	json_object *r = expect_row(j, &p, mine, other, "lock_held", 10000000ull, 0);
	uint64_t aborts = u64_of(r, "aborts");
	assert_true(aborts <= (uint64_t)n - 1);
	assert_string_equal(str_of(get_key(r, "process"), "source"),
			    named ? "pstm_tx_name" : "symbol_table");
	json_object_put(j);

	stop(&p);
	/* the processes are gone; the runtime keeps their report */
	j = conflicts_json(uri);
	r = expect_row(j, &p, mine, other, "lock_held", 10000000ull, 0);
	assert_int_equal(u64_of(r, "aborts"), aborts);
	json_object_put(j);

	char out[4096], want[256];
	assert_int_equal(conflicts_cli(uri, false, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "aborts: %s (pid %d) vs %s (pid %d), lock held, at heap+",
		 mine, (int)p.a, other, (int)p.t);
	if (!strstr(out, want))
		print_error("no \"%s\" in:\n%s", want, out);
	assert_non_null(strstr(out, want));
}

static void test_lock_held_shm(void **s)
{
	(void)s;
	lock_held(test_shm_uri("lock"), true);
}

static void test_lock_held_file(void **s)
{
	(void)s;
	lock_held(test_file_uri("lock"), true);
}

/* no pstm_tx_name: both sides are named from the symbol table */
static void test_unnamed_functions(void **s)
{
	(void)s;
	lock_held(test_shm_uri("unnamed"), false);
}

/* A reads account 0, T commits a transfer from it, A reads account 1:
 * a newer version, and extending the snapshot fails on account 0 */
static void test_newer_version(void **s)
{
	(void)s;
	struct procs p;
	make_region(test_shm_uri("newer"));
	start(&p);
	assert_int_equal(run_audit(AUDIT_NEWER), 2);
	stop(&p);
	json_object *j = conflicts_json(region);
	json_object *r = expect_row(j, &p, "audit", "transfer", "newer_version", 1, 1);
	assert_int_equal(u64_of(r, "aborts"), 1);
	assert_int_equal(json_object_array_length(get_key(j, "conflicts")), 1);
	json_object_put(j);
}

/* the same with an audit that writes: its commit fails validation */
static void test_validation_failed(void **s)
{
	(void)s;
	struct procs p;
	make_region(test_file_uri("validate"));
	start(&p);
	assert_int_equal(run_audit(AUDIT_VALIDATE), 2);
	stop(&p);
	json_object *j = conflicts_json(region);
#ifdef __SANITIZE_THREAD__
	int inferred = 1; /* T's redo record is not read there */
#else
	int inferred = 0; /* account 0 is in T's redo record */
#endif
	json_object *r = expect_row(j, &p, "audit", "transfer", "validation_failed", 1,
				    inferred);
	assert_int_equal(u64_of(r, "aborts"), 1);
	json_object_put(j);
}

/* the same processes, one after the other: nothing to report */
static void test_no_conflicts(void **s)
{
	(void)s;
	struct procs p;
	char out[4096];
	make_region(test_shm_uri("none"));
	start(&p);
	for (int i = 0; i < 20; i++) {
		put(cmd_fd[1], 't');
		assert_int_equal(get(reply_fd[0]), 'd');
		assert_int_equal(run_audit(i % 2 ? AUDIT_RO : AUDIT_WRITE), 1);
	}
	stop(&p);
	json_object *j = conflicts_json(region);
	assert_true(json_object_get_boolean(get_key(j, "tables")));
	assert_int_equal(json_object_array_length(get_key(j, "conflicts")), 0);
	json_object_put(j);
	assert_int_equal(conflicts_cli(region, false, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "no conflicts recorded"));
}

/* Orec of account 0 as the runtime holds it (read-only mapping). */
static uint64_t orec_of_acc0(const char *uri)
{
	struct pstm_region r;
	assert_pstm_ok(region_map_readonly(uri, &r));
	uint64_t o = atomic_load(region_orec(&r, acc(0)));
	region_unmap_readonly(&r);
	return o;
}

/* A region made by the previous library (format 1) opens and works as
 * it did: no tables, and its orecs keep the format 1 encoding (a format
 * 1 library attached to it compares them with version << 12). */
static void test_format1(void **s)
{
	(void)s;
	struct procs p;
	char out[4096];
	setenv("PSTM_TEST_FORMAT", "1", 1);
	make_region(test_shm_uri("v1"));
	unsetenv("PSTM_TEST_FORMAT");
	start(&p);
	assert_int_equal(run_audit(AUDIT_NEWER), 2);
	stop(&p);
	assert_int_equal(orec_of_acc0(region) & ((1u << 12) - 1), 0);
	json_object *j = conflicts_json(region);
	assert_int_equal(u64_of(j, "format_version"), 1);
	assert_false(json_object_get_boolean(get_key(j, "tables")));
	assert_int_equal(json_object_array_length(get_key(j, "conflicts")), 0);
	json_object_put(j);
	assert_int_equal(conflicts_cli(region, false, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "no conflict table (format 1)"));
	test_assert_clean(region);

	/* format 2: the orec names the slot that wrote it last */
	pstm_unlink(region);
	make_region(test_shm_uri("v2"));
	start(&p);
	assert_int_equal(run_audit(AUDIT_NEWER), 2);
	stop(&p);
	uint64_t o = orec_of_acc0(region);
	assert_false(o & 1);
	assert_true(((o >> 1) & 2047) != 0);
	test_assert_clean(region);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test_teardown(test_lock_held_shm, teardown),
	cmocka_unit_test_teardown(test_lock_held_file, teardown),
	cmocka_unit_test_teardown(test_unnamed_functions, teardown),
	cmocka_unit_test_teardown(test_newer_version, teardown),
	cmocka_unit_test_teardown(test_validation_failed, teardown),
	cmocka_unit_test_teardown(test_no_conflicts, teardown),
	cmocka_unit_test_teardown(test_format1, teardown),
};

TEST_MAIN(tests)
