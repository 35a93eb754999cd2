/*
 * test_companion.c - a region's /dev/shm companions (runtime segment,
 * relaxed working copy) and a shm region's runtime belong to its file, not
 * to its uuid: a copy (cp) of a shm, durable or relaxed region, made while
 * it is idle or while processes are attached, is a region of its own; a
 * region moved with mv keeps working for the processes attached to it and
 * for new openers; a backup restored after the original was deleted does
 * not pick up the original's companions; an older copy restored over
 * the region in place (cp X A: same inode) makes the next opener rebuild
 * the companions from it, or refuse while processes are attached.  Real
 * processes on real regions.
 * With --hold URI it is the attached process of tests/cli.t.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "companion.h"
#include "helpers.h"
#include "region.h"

enum kind { SHM, DURABLE, RELAXED };

/* ------------------------------------------------- cleanup registry */

#define MAX_TRACKED 8
static char tracked[MAX_TRACKED][256];
static int ntracked;
static uint8_t uuids[MAX_TRACKED][16];
static int nuuids;
static pid_t kids[MAX_TRACKED];
static int nkids;

static const char *track(const char *uri)
{
	assert_true(ntracked < MAX_TRACKED);
	snprintf(tracked[ntracked], sizeof(tracked[0]), "%s", uri);
	return tracked[ntracked++];
}

/*
 * Companions in /dev/shm named after @uuid (pstm.rt.<hex>..., pstm.wc.
 * <hex>...): how many there are; with @remove, unlink them.  A copy has
 * its original's uuid, so this finds both regions' companions.
 */
static int companions_of_uuid(const uint8_t uuid[16], bool remove)
{
	char hex[33], rt[64], wc[64];
	int n = 0;
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
	snprintf(rt, sizeof(rt), "pstm.rt.%s", hex);
	snprintf(wc, sizeof(wc), "pstm.wc.%s", hex);
	DIR *d = opendir("/dev/shm");
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, rt, strlen(rt)) && strncmp(e->d_name, wc, strlen(wc)))
			continue;
		n++;
		if (remove) {
			char p[300];
			snprintf(p, sizeof(p), "/dev/shm/%s", e->d_name);
			unlink(p);
		}
	}
	closedir(d);
	return n;
}

static int teardown(void **state)
{
	char p[300];
	(void)state;
	for (int i = 0; i < nkids; i++)
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			test_wait(kids[i]);
		}
	nkids = 0;
	for (int i = 0; i < ntracked; i++)
		unlink(test_path_of(tracked[i], p, sizeof(p)));
	ntracked = 0;
	for (int i = 0; i < nuuids; i++)
		companions_of_uuid(uuids[i], true);
	nuuids = 0;
	return 0;
}

/* ------------------------------------------------------ the one word */

static int tx_add(pstm_tx *tx, void *arg)
{
	uint64_t *v = arg;
	pstm_off root = pstm_root(tx, 8);
	uint64_t now = pstm_load64(tx, root) + *v;
	pstm_store64(tx, root, now);
	*v = now;
	return 0;
}

static int tx_get(pstm_tx *tx, void *arg)
{
	*(uint64_t *)arg = pstm_load64(tx, pstm_root(tx, 8));
	return 0;
}

static int tx_set(pstm_tx *tx, void *arg)
{
	pstm_store64(tx, pstm_root(tx, 8), *(uint64_t *)arg);
	return 0;
}

static uint64_t word_add(pstm_region *r, uint64_t d)
{
	assert_pstm_ok(pstm_atomic(r, tx_add, &d));
	return d;
}

static void word_set(pstm_region *r, uint64_t v)
{
	assert_pstm_ok(pstm_atomic(r, tx_set, &v));
	assert_pstm_ok(pstm_sync(r)); /* relaxed: in the file too */
}

/* open @uri, read the word, close */
static uint64_t word_of(const char *uri)
{
	pstm_region *r;
	assert_pstm_ok(pstm_open(uri, &r));
	uint64_t v = word_add(r, 0);
	assert_pstm_ok(pstm_close(r));
	return v;
}

static const char *create(enum kind k, const char *tag, uint64_t v)
{
	const char *uri = track(k == SHM ? test_shm_uri(tag) : test_file_uri(tag));
	struct pstm_create_opts o = {.size_bytes = 2 << 20};
	if (k == RELAXED)
		o.durability = PSTM_RELAXED;
	pstm_region *r;
	assert_pstm_ok(pstm_create(uri, &o, &r));
	struct pstm_region_info in;
	assert_pstm_ok(pstm_region_info(r, &in));
	assert_true(nuuids < MAX_TRACKED);
	memcpy(uuids[nuuids++], in.uuid, 16);
	word_set(r, v);
	assert_pstm_ok(pstm_close(r));
	return uri;
}

/* the URI of a new name beside @uri: shm:NAME-SUFFIX or PATH-SUFFIX */
static const char *sibling(const char *uri, const char *suffix)
{
	static char buf[4][256];
	static int k;
	char *b = buf[k++ % 4];
	int w = snprintf(b, 256, "%s-%s", uri, suffix);
	assert_true(w > 0 && w < 256);
	return track(b);
}

/* cp A B, B a new name: a new file with the same bytes */
static void copy_region(const char *from_uri, const char *to_uri)
{
	char from[300], to[300];
	struct stat st;
	test_path_of(to_uri, to, sizeof(to));
	assert_int_not_equal(stat(to, &st), 0);
	test_copy_file(test_path_of(from_uri, from, sizeof(from)), to);
}

static void move_region(const char *from_uri, const char *to_uri)
{
	char from[300], to[300];
	assert_int_equal(rename(test_path_of(from_uri, from, sizeof(from)),
				test_path_of(to_uri, to, sizeof(to))), 0);
}

/* entries of @uri's process table held by live process @pid (read-only
 * look: no attach) */
static int member_entries(const char *uri, pid_t pid)
{
	struct pstm_region ro;
	int n = 0;
	assert_int_equal(region_map_readonly(uri, &ro), 0);
	if (ro.rt_base && atomic_load(&ro.rt->magic) == PSTM_RT_MAGIC)
		for (uint32_t p = 0; p < ro.sb.max_procs; p++) {
			uint64_t st = atomic_load(&ro.procs[p].state);
			if (PROC_ST(st) == PROC_ALIVE &&
			    atomic_load(&ro.procs[p].pid) == (uint64_t)pid)
				n++;
		}
	region_unmap_readonly(&ro);
	return n;
}

/* does pstm check of @uri say @text (in one of its findings)? */
static bool check_says(const char *uri, const char *text)
{
	struct check_report rep;
	bool found = false;
	assert_int_equal(region_check(uri, &rep), 0);
	for (unsigned i = 0; i < rep.n; i++)
		found |= strstr(rep.f[i].text, text) != NULL;
	check_report_free(&rep);
	return found;
}

/* the runtime segment a read-only look at @uri finds ("" if inside) */
static void runtime_path(const char *uri, char *out, size_t n)
{
	struct pstm_region ro;
	assert_int_equal(region_map_readonly(uri, &ro), 0);
	snprintf(out, n, "%s", ro.sb.rt_inside ? "" : ro.rt_path);
	region_unmap_readonly(&ro);
}

/* ------------------------------------------- a process holding a region */

struct holder {
	const char *uri;
	int cmd[2], rep[2];
	pid_t pid;
};

/* Child: attach, say 'R', then serve 'i' (add 1, sync, reply the value),
 * 'g' (reply the value), 'c' (add 1, reply the value: no sync), 'n' (add
 * 1 up to 100,000 times, reply the first error or 0), 'v' (reply the
 * value, read-only), 's' (reply
 * pstm_sync's result), 'q' (close, exit 0). */
static int holder_child(void *arg, int i)
{
	struct holder *h = arg;
	pstm_region *r;
	char c;
	(void)i;
	close(h->cmd[1]);
	close(h->rep[0]);
	if (pstm_open(h->uri, &r) != 0)
		return 3;
	c = 'R';
	if (write(h->rep[1], &c, 1) != 1)
		return 4;
	while (read(h->cmd[0], &c, 1) == 1) {
		uint64_t d = c == 'i' || c == 'c' ? 1 : 0;
		if (c == 'q')
			return pstm_close(r) ? 5 : 0;
		if (c == 'n') {
			int rc = 0;
			for (int k = 0; k < 100000 && !rc; k++) {
				d = 1;
				rc = pstm_atomic(r, tx_add, &d);
			}
			d = (uint64_t)(int64_t)rc;
			if (write(h->rep[1], &d, 8) != 8)
				return 7;
			continue;
		}
		if (c == 'v') {
			if (pstm_atomic_ro(r, tx_get, &d) || write(h->rep[1], &d, 8) != 8)
				return 9;
			continue;
		}
		if (c == 's') {
			d = (uint64_t)(int64_t)pstm_sync(r);
			if (write(h->rep[1], &d, 8) != 8)
				return 7;
			continue;
		}
		if (c == 'c') {
			if (pstm_atomic(r, tx_add, &d) || write(h->rep[1], &d, 8) != 8)
				return 8;
			continue;
		}
		if (pstm_atomic(r, tx_add, &d) || pstm_sync(r))
			return 6;
		if (write(h->rep[1], &d, 8) != 8)
			return 7;
	}
	_exit(0); /* parent gone: no clean close */
}

static void holder_start(struct holder *h, const char *uri)
{
	char c;
	h->uri = uri;
	assert_int_equal(pipe(h->cmd), 0);
	assert_int_equal(pipe(h->rep), 0);
	h->pid = test_spawn(holder_child, h, 0);
	assert_true(h->pid > 0 && nkids < MAX_TRACKED);
	kids[nkids++] = h->pid;
	close(h->cmd[0]);
	close(h->rep[1]);
	assert_int_equal(read(h->rep[0], &c, 1), 1);
	assert_int_equal(c, 'R');
}

static uint64_t holder_ask(struct holder *h, char c)
{
	uint64_t v;
	assert_int_equal(write(h->cmd[1], &c, 1), 1);
	assert_int_equal(read(h->rep[0], &v, 8), 8);
	return v;
}

static void holder_end(struct holder *h, bool kill_it)
{
	char c = 'q';
	if (kill_it)
		kill(h->pid, SIGKILL);
	else
		assert_int_equal(write(h->cmd[1], &c, 1), 1);
	assert_int_equal(test_wait(h->pid), kill_it ? 128 + SIGKILL : 0);
	for (int i = 0; i < nkids; i++)
		if (kids[i] == h->pid)
			kids[i] = 0;
	close(h->cmd[1]);
	close(h->rep[0]);
}

static struct open_recovery reopen_recovery(const char *uri)
{
	pstm_region *r;
	struct open_recovery o;
	assert_pstm_ok(pstm_open(uri, &r));
	region_open_recovery(r, &o);
	assert_pstm_ok(pstm_close(r));
	return o;
}

/* -------------------------------------------------------------- copies */

/* cp A B of an idle region: B is a region of its own. */
static void copy_idle(enum kind k)
{
	char rta[128], rtb[128];
	const char *a = create(k, "cpi", 1);
	const char *b = sibling(a, "copy");
	copy_region(a, b);
	pstm_region *rb;
	assert_pstm_ok(pstm_open(b, &rb));
	assert_int_equal(word_add(rb, 0), 1);
	word_set(rb, 2);
	assert_int_equal(word_of(a), 1); /* writes to B never show in A */
	pstm_region *ra;
	assert_pstm_ok(pstm_open(a, &ra));
	word_set(ra, 3);
	assert_int_equal(word_add(rb, 0), 2); /* nor writes to A in B */
	/* neither is a member of the other */
	assert_int_equal(member_entries(a, getpid()), 1);
	assert_int_equal(member_entries(b, getpid()), 1);
	assert_pstm_ok(pstm_close(ra));
	assert_int_equal(member_entries(b, getpid()), 1);
	assert_int_equal(member_entries(a, getpid()), 0);
	assert_pstm_ok(pstm_close(rb));
	assert_int_equal(word_of(a), 3);
	assert_int_equal(word_of(b), 2);
	if (k != SHM) {
		runtime_path(a, rta, sizeof(rta));
		runtime_path(b, rtb, sizeof(rtb));
		assert_string_not_equal(rta, rtb);
	}
	test_assert_clean(a);
	test_assert_clean(b);
}

static void test_copy_idle_shm(void **s) { (void)s; copy_idle(SHM); }
static void test_copy_idle_durable(void **s) { (void)s; copy_idle(DURABLE); }
static void test_copy_idle_relaxed(void **s) { (void)s; copy_idle(RELAXED); }

/*
 * cp A B while a process is attached to A (and idle between its
 * transactions): that process is no member of B, B's writes stay in B,
 * its death is recovered in A and never in B.
 */
static void copy_attached(enum kind k)
{
	struct holder h;
	const char *a = create(k, "cpa", 1);
	holder_start(&h, a);
	assert_int_equal(holder_ask(&h, 'i'), 2);
	const char *b = sibling(a, "copy");
	copy_region(a, b);
	/* before anyone opened B, a look at it shows no member of A, and
	 * pstm check says whose runtime a shm copy carries */
	assert_int_equal(member_entries(b, h.pid), 0);
	if (k == SHM)
		assert_true(check_says(b, "copied with the region from another file"));
	test_assert_clean(b);
	pstm_region *rb;
	assert_pstm_ok(pstm_open(b, &rb));
	assert_int_equal(member_entries(b, h.pid), 0);
	assert_int_equal(member_entries(a, h.pid), 1);
	assert_int_equal(member_entries(b, getpid()), 1);
	assert_int_equal(member_entries(a, getpid()), 0);
	assert_int_equal(word_add(rb, 0), 2);
	word_set(rb, 100);
	assert_int_equal(holder_ask(&h, 'g'), 2);   /* A did not see it */
	assert_int_equal(holder_ask(&h, 'i'), 3);
	assert_int_equal(word_add(rb, 0), 100);     /* B did not see A's */
	test_assert_clean(a);
	test_assert_clean(b);
	/* the holder dies attached to A: A recovers it, B has nothing to */
	holder_end(&h, true);
	assert_pstm_ok(pstm_close(rb));
	struct open_recovery ob = reopen_recovery(b);
	assert_int_equal(ob.procs_recovered, 0);
	struct open_recovery oa = reopen_recovery(a);
	assert_int_equal(oa.procs_recovered, 1);
	assert_int_equal(word_of(a), 3);
	assert_int_equal(word_of(b), 100);
	test_assert_clean(a);
	test_assert_clean(b);
}

static void test_copy_attached_shm(void **s) { (void)s; copy_attached(SHM); }
static void test_copy_attached_durable(void **s) { (void)s; copy_attached(DURABLE); }
static void test_copy_attached_relaxed(void **s) { (void)s; copy_attached(RELAXED); }

/*
 * A child dies at its commit point on shm region A (record COMMITTED, data
 * not yet written back; PSTM_CRASH_AT), and A is copied before anyone
 * recovers it.  The copy's first open settles the copied log (the commit
 * happened: it is replayed) without taking the dead process for one of
 * its own; A recovers its dead process as always.
 */
static int commit_and_die(void *arg, int i)
{
	pstm_region *r;
	uint64_t v = 41;
	(void)i;
	setenv("PSTM_CRASH_AT", "commit.logged:1", 1);
	if (pstm_open(arg, &r) != 0)
		return 3;
	pstm_atomic(r, tx_add, &v); /* killed at its commit point */
	return 4;
}

static void test_copy_after_crash_shm(void **s)
{
	(void)s;
	const char *a = create(SHM, "cpc", 1);
	pid_t kid = test_spawn(commit_and_die, (void *)a, 0);
	assert_int_equal(test_wait(kid), 128 + SIGKILL);
	const char *b = sibling(a, "copy");
	copy_region(a, b);
	struct open_recovery ob = reopen_recovery(b);
	assert_int_equal(ob.procs_recovered, 0);
	assert_true(ob.runtime_rebuilt);
	assert_int_equal(word_of(b), 42);
	test_assert_clean(b);
	struct open_recovery oa = reopen_recovery(a);
	assert_int_equal(oa.procs_recovered, 1);
	assert_int_equal(word_of(a), 42);
	test_assert_clean(a);
}

/* ----------------------------------------------------------------- mv */

/*
 * mv A C under an attached process: it keeps working, and a new opener
 * of C joins it (same runtime: sees its commits, is in its table).
 */
static void move_attached(enum kind k)
{
	struct holder h;
	const char *a = create(k, "mv", 1);
	holder_start(&h, a);
	const char *c = sibling(a, "moved");
	move_region(a, c);
	assert_int_equal(holder_ask(&h, 'i'), 2);
	pstm_region *rc;
	assert_pstm_ok(pstm_open(c, &rc));
	struct open_recovery o;
	region_open_recovery(rc, &o);
	assert_false(o.runtime_rebuilt);
	assert_int_equal(member_entries(c, h.pid), 1);
	assert_int_equal(member_entries(c, getpid()), 1);
	assert_int_equal(word_add(rc, 0), 2);
	word_set(rc, 10);
	assert_int_equal(holder_ask(&h, 'g'), 10);
	assert_int_equal(holder_ask(&h, 'i'), 11);
	assert_int_equal(word_add(rc, 0), 11);
	test_assert_clean(c);
	holder_end(&h, false);
	assert_pstm_ok(pstm_close(rc));
	o = reopen_recovery(c);
	assert_false(o.runtime_rebuilt);
	assert_int_equal(word_of(c), 11);
	test_assert_clean(c);
}

static void test_move_attached_shm(void **s) { (void)s; move_attached(SHM); }
static void test_move_attached_durable(void **s) { (void)s; move_attached(DURABLE); }
static void test_move_attached_relaxed(void **s) { (void)s; move_attached(RELAXED); }

/* ------------------------------------------------------------- restore */

/*
 * A backup restored under the original's name after the original was
 * deleted with a plain rm (its companions left in /dev/shm): the restored
 * file is a new file, so it starts from its own bytes, as after a reboot.
 */
static void restore_backup(enum kind k)
{
	const char *a = create(k, "bak", 1);
	const char *bak = sibling(a, "backup");
	copy_region(a, bak);
	pstm_region *r;
	assert_pstm_ok(pstm_open(a, &r));
	word_set(r, 2);
	assert_pstm_ok(pstm_close(r));
	char p[300];
	assert_int_equal(unlink(test_path_of(a, p, sizeof(p))), 0);
	copy_region(bak, a);
	assert_pstm_ok(pstm_open(a, &r));
	assert_int_equal(word_add(r, 0), 1);
	struct open_recovery o;
	region_open_recovery(r, &o);
	assert_true(o.runtime_rebuilt);
	assert_pstm_ok(pstm_close(r));
	test_assert_clean(a);
}

static void test_restore_backup_durable(void **s) { (void)s; restore_backup(DURABLE); }
static void test_restore_backup_relaxed(void **s) { (void)s; restore_backup(RELAXED); }

/*
 * cp X A, X an older copy of A, over A itself: A keeps its inode (and
 * birth time), so its companions keep their names, but they belong to
 * the bytes that were there before.  The opener must notice and rebuild
 * them from the restored file when nobody is attached, and refuse while
 * someone is.
 */
/*
 * With @use_cp, cp(1) itself: it opens the target with O_TRUNC, so for a
 * moment the file is shorter than the mappings of processes attached to
 * it, which die of SIGBUS if they touch it then (a relaxed region's
 * flush thread may): so only over an idle region.  Otherwise write()
 * over the bytes in place, without truncating (dd conv=notrunc).
 */
static void restore_over(const char *x_uri, const char *a_uri, bool use_cp)
{
	char x[300], a[300], cmd[700];
	struct stat before, after;
	assert_int_equal(stat(test_path_of(a_uri, a, sizeof(a)), &before), 0);
	test_path_of(x_uri, x, sizeof(x));
	if (use_cp) {
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", x, a);
		assert_int_equal(system(cmd), 0);
	} else {
		int in = open(x, O_RDONLY), out = open(a, O_WRONLY);
		char chunk[65536];
		ssize_t n;
		assert_true(in >= 0 && out >= 0);
		while ((n = read(in, chunk, sizeof(chunk))) > 0)
			assert_int_equal(write(out, chunk, (size_t)n), n);
		assert_int_equal(n, 0);
		close(in);
		close(out);
	}
	assert_int_equal(stat(a, &after), 0);
	assert_true(before.st_ino == after.st_ino); /* in place */
	assert_true(before.st_size == after.st_size);
}

/* after the restore: rebuilt from the file (it holds @want), and the
 * region works on from there: commits land, in the file too, and the
 * next open does not rebuild again */
static void assert_restored(const char *a, uint64_t want)
{
	pstm_region *r;
	struct open_recovery o;
	assert_pstm_ok(pstm_open(a, &r));
	region_open_recovery(r, &o);
	assert_true(o.runtime_rebuilt);
	assert_int_equal(word_add(r, 0), want);
	assert_int_equal(word_add(r, 5), want + 5);
	assert_pstm_ok(pstm_close(r));
	assert_false(reopen_recovery(a).runtime_rebuilt);
	test_assert_clean(a);
	/* a power failure: what the file holds, replayed */
	char p[300];
	region_forget_volatile(test_path_of(a, p, sizeof(p)));
	assert_int_equal(word_of(a), want + 5);
	test_assert_clean(a);
}

/* pstm check on a file restored in place: one pending finding that
 * says so (@what in its text), no damage */
static void assert_check_says_replaced(const char *a, const char *what)
{
	struct check_report rep;
	assert_pstm_ok(region_check(a, &rep));
	int found = 0;
	for (unsigned i = 0; i < rep.n; i++)
		if (strstr(rep.f[i].text, "overwritten in place") &&
		    strstr(rep.f[i].text, what)) {
			assert_int_equal(rep.f[i].severity, CHECK_PENDING);
			found++;
		}
	assert_int_equal(found, 1);
	assert_int_equal(rep.damage, 0);
	check_report_free(&rep);
}

/* idle: A was opened and written after the copy was taken */
static void restore_in_place_idle(enum kind k)
{
	const char *a = create(k, "rpi", 1);
	const char *x = sibling(a, "old");
	copy_region(a, x);
	pstm_region *r;
	assert_pstm_ok(pstm_open(a, &r));
	word_set(r, 2);
	assert_pstm_ok(pstm_close(r));
	restore_over(x, a, true);
	assert_check_says_replaced(a, "the next open rebuilds");
	assert_restored(a, 1);
}

/* a process attached (since after the copy) when the copy is restored:
 * every open refuses until it is gone; then the file is the region */
static void restore_in_place_attached(enum kind k)
{
	const char *a = create(k, "rpa", 1);
	const char *x = sibling(a, "old");
	struct holder h;
	pstm_region *r;
	copy_region(a, x);
	holder_start(&h, a);
	assert_int_equal(holder_ask(&h, 'i'), 2);
	restore_over(x, a, false);
	for (int i = 0; i < 2; i++) {
		r = (pstm_region *)1;
		assert_int_equal(pstm_open(a, &r), PSTM_EREPLACED);
		assert_null(r);
	}
	assert_int_equal(member_entries(a, h.pid), 1); /* left alone */
	assert_check_says_replaced(a, "while processes were attached");
	holder_end(&h, true);
	assert_restored(a, 1);
}

/* the copy taken while a process was attached and committing, restored
 * after it closed: its close stamped the file anew */
static void restore_in_place_after_close(enum kind k)
{
	const char *a = create(k, "rpc", 1);
	const char *x = sibling(a, "old");
	struct holder h;
	holder_start(&h, a);
	assert_int_equal(holder_ask(&h, 'i'), 2);
	copy_region(a, x);
	assert_int_equal(holder_ask(&h, 'i'), 3);
	holder_end(&h, false);
	restore_over(x, a, true);
	assert_restored(a, 2);
}

/*
 * relaxed: the copy taken while a process stays attached, with no open
 * or close since (the stamps agree); the flushes after it raised the
 * runtime's flushed mark above the copy's.  The process is stopped
 * (SIGSTOP) before the restore, then killed: a running one's flush
 * thread would raise the file's mark again within flush_ms (lib/flush.c
 * writes it on every pass), hiding the restore from this check.
 */
static void test_restore_in_place_flushed_relaxed(void **s)
{
	(void)s;
	const char *a = create(RELAXED, "rpf", 1);
	const char *x = sibling(a, "old");
	struct holder h;
	pstm_region *r;
	int st;
	holder_start(&h, a);
	assert_int_equal(holder_ask(&h, 'i'), 2);
	copy_region(a, x);
	assert_int_equal(holder_ask(&h, 'i'), 3);
	assert_int_equal(kill(h.pid, SIGSTOP), 0);
	assert_int_equal(waitpid(h.pid, &st, WUNTRACED), h.pid);
	assert_true(WIFSTOPPED(st));
	restore_over(x, a, false);
	assert_int_equal(pstm_open(a, &r), PSTM_EREPLACED);
	holder_end(&h, true);
	assert_restored(a, 2);
}

/*
 * relaxed, the copy restored under a running process (its flush thread
 * too): its flusher stops instead of copying its records into a file
 * they do not follow and raising the file's mark (which would hide the
 * restore, above); its commits go on in the working copy, its pstm_sync
 * says PSTM_EREPLACED, opens keep refusing, and the file stays the copy.
 */
static void test_restore_in_place_running_relaxed(void **s)
{
	(void)s;
	const char *a = create(RELAXED, "rpr", 1);
	const char *x = sibling(a, "old");
	struct holder h;
	pstm_region *r;
	holder_start(&h, a);
	assert_int_equal(holder_ask(&h, 'i'), 2);
	copy_region(a, x);
	assert_int_equal(holder_ask(&h, 'i'), 3);
	restore_over(x, a, false);
	assert_int_equal(holder_ask(&h, 'c'), 4);
	usleep(100000); /* flush_ms 10: several passes */
	assert_int_equal((int64_t)holder_ask(&h, 's'), PSTM_EREPLACED);
	assert_int_equal(pstm_open(a, &r), PSTM_EREPLACED);
	holder_end(&h, true);
	assert_restored(a, 2);
}

/*
 * The same on a durable region: its commits persist into the restored
 * file, with ring heads and sequence numbers of the logs the runtime
 * knew.  The first checkpoint (a ring full) finds the restore: the
 * commit fails with PSTM_EREPLACED instead of reusing ring space the
 * file's records still hold, and so does every later one that needs
 * one; opens refuse; once the holder is gone the next open rebuilds.
 */
static void test_restore_in_place_running_durable(void **s)
{
	(void)s;
	const char *a = create(DURABLE, "rpd", 1);
	const char *x = sibling(a, "old");
	struct holder h;
	pstm_region *r;
	copy_region(a, x); /* then the holder's open stamps the file anew */
	holder_start(&h, a);
	assert_int_equal(holder_ask(&h, 'i'), 2);
	restore_over(x, a, false);
	assert_int_equal((int64_t)holder_ask(&h, 'n'), PSTM_EREPLACED);
	assert_int_equal((int64_t)holder_ask(&h, 'n'), PSTM_EREPLACED);
	uint64_t v = holder_ask(&h, 'v');
	print_message("# durable holder: %llu commits after the restore before "
		      "its first checkpoint refused\n", (unsigned long long)(v - 1));
	assert_true(v > 1);
	assert_int_equal(pstm_open(a, &r), PSTM_EREPLACED);
	holder_end(&h, true);
	assert_check_says_replaced(a, "the next open rebuilds");
	/* what it committed was persisted into the file: kept */
	assert_restored(a, v);
}

static void test_restore_in_place_idle_durable(void **s) { (void)s; restore_in_place_idle(DURABLE); }
static void test_restore_in_place_idle_relaxed(void **s) { (void)s; restore_in_place_idle(RELAXED); }
static void test_restore_in_place_attached_durable(void **s) { (void)s; restore_in_place_attached(DURABLE); }
static void test_restore_in_place_attached_relaxed(void **s) { (void)s; restore_in_place_attached(RELAXED); }
static void test_restore_in_place_after_close_durable(void **s) { (void)s; restore_in_place_after_close(DURABLE); }
static void test_restore_in_place_after_close_relaxed(void **s) { (void)s; restore_in_place_after_close(RELAXED); }

/* A child that opens args[0] with PSTM_CRASH_AT=args[1]: it dies there
 * (SIGKILL), inside its open's stamp of the file. */
static int open_dies(void *arg, int i)
{
	(void)i;
	const char **args = arg;
	pstm_region *r;
	setenv("PSTM_CRASH_AT", args[1], 1);
	int rc = pstm_open(args[0], &r);
	fprintf(stderr, "open_dies: %s passed (%s)\n", args[1], pstm_strerror(rc));
	return 3;
}

/*
 * Two openers die in the file stamp one after the other (lib/runtime.c),
 * while a process stays attached (so the runtime is kept): the first
 * after writing its stamp into the file, before taking it as the
 * runtime's own; the second after noting its next stamp, before writing
 * it.  The file then held a stamp the runtime named neither as its own
 * nor as the next, and the region read as overwritten in place: every
 * open and flush refused (PSTM_EREPLACED) until all its processes were
 * gone (pstm-crashtest's relaxed campaign met it about once in a
 * hundred runs).  Now opens, commits and syncs go on.
 */
static void stamp_two_deaths(enum kind k)
{
	const char *a = create(k, "st2", 1);
	struct holder h;
	pstm_region *r;
	holder_start(&h, a);
	assert_int_equal(holder_ask(&h, 'i'), 2);
	const char *at[2] = {"stamp.written:1", "stamp.next:1"};
	for (int i = 0; i < 2; i++) {
		const char *args[2] = {a, at[i]};
		pid_t p = test_spawn(open_dies, args, 0);
		assert_true(p > 0);
		assert_int_equal(test_wait(p), 128 + SIGKILL);
	}
	assert_pstm_ok(pstm_open(a, &r));
	assert_int_equal(word_add(r, 1), 3);
	assert_pstm_ok(pstm_sync(r));
	assert_int_equal(holder_ask(&h, 'i'), 4); /* a commit and a sync */
	assert_pstm_ok(pstm_close(r));
	holder_end(&h, false);
	assert_pstm_ok(pstm_open(a, &r));
	assert_int_equal(word_add(r, 0), 4);
	assert_pstm_ok(pstm_close(r));
	test_assert_clean(a);
}

static void test_stamp_two_deaths_durable(void **s) { (void)s; stamp_two_deaths(DURABLE); }
static void test_stamp_two_deaths_relaxed(void **s) { (void)s; stamp_two_deaths(RELAXED); }

/*
 * test_companion --hold URI: open URI, print "attached", stay attached
 * until stdin ends, then close.  tests/cli.t's process attached to a
 * region (pstm rm, ls, gc).
 */
static int hold(const char *uri)
{
	pstm_region *r;
	char buf[64];
	int rc = pstm_open(uri, &r);
	if (rc) {
		fprintf(stderr, "--hold %s: %s\n", uri, pstm_strerror(rc));
		return 1;
	}
	printf("attached\n");
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return pstm_close(r) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--hold"))
		return hold(argv[2]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_copy_idle_shm, teardown),
		cmocka_unit_test_teardown(test_copy_idle_durable, teardown),
		cmocka_unit_test_teardown(test_copy_idle_relaxed, teardown),
		cmocka_unit_test_teardown(test_copy_attached_shm, teardown),
		cmocka_unit_test_teardown(test_copy_attached_durable, teardown),
		cmocka_unit_test_teardown(test_copy_attached_relaxed, teardown),
		cmocka_unit_test_teardown(test_copy_after_crash_shm, teardown),
		cmocka_unit_test_teardown(test_move_attached_shm, teardown),
		cmocka_unit_test_teardown(test_move_attached_durable, teardown),
		cmocka_unit_test_teardown(test_move_attached_relaxed, teardown),
		cmocka_unit_test_teardown(test_restore_backup_durable, teardown),
		cmocka_unit_test_teardown(test_restore_backup_relaxed, teardown),
		cmocka_unit_test_teardown(test_restore_in_place_running_durable, teardown),
		cmocka_unit_test_teardown(test_restore_in_place_idle_durable, teardown),
		cmocka_unit_test_teardown(test_restore_in_place_idle_relaxed, teardown),
		cmocka_unit_test_teardown(test_restore_in_place_attached_durable, teardown),
		cmocka_unit_test_teardown(test_restore_in_place_attached_relaxed, teardown),
		cmocka_unit_test_teardown(test_restore_in_place_after_close_durable, teardown),
		cmocka_unit_test_teardown(test_restore_in_place_after_close_relaxed, teardown),
		cmocka_unit_test_teardown(test_restore_in_place_flushed_relaxed, teardown),
		cmocka_unit_test_teardown(test_restore_in_place_running_relaxed, teardown),
		cmocka_unit_test_teardown(test_stamp_two_deaths_durable, teardown),
		cmocka_unit_test_teardown(test_stamp_two_deaths_relaxed, teardown),
	};
	TEST_OUTPUT();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
