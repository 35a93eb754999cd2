/*
 * test_region.c - region lifecycle: create/open/close/unlink for shm: and
 * file URIs, creation options, persistence across reopen and processes,
 * every documented way an open or create can fail, and what pstm_unlink
 * refuses to remove.  A failed open must
 * never modify the region, so each failure case compares the file's bytes
 * and mtime before and after.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "companion.h"
#include "helpers.h"

#define MiB (1ull << 20)
#define SMALL (2 * MiB)

/* on-disk superblock facts, written out here rather than taken from
 * lib/layout.h so the test pins the documented format */
#define SB_BYTES 160
#define SB_CRC_OFF 152
#define SB_VERSION_OFF 8
#define NOBODY 65534

/* ------------------------------------------------- cleanup registry */

/*
 * Everything a test creates is registered here and removed by teardown(),
 * which also runs when an assertion fails half-way through a test.
 */
#define MAX_TRACKED 16
static char tracked[MAX_TRACKED][256];
static int ntracked;
static char companions[MAX_TRACKED][COMPANION_PATH_MAX];
static int ncompanions;
static pid_t kids[8];
static int nkids;

static const char *track(const char *uri)
{
	assert_true(ntracked < MAX_TRACKED);
	snprintf(tracked[ntracked], sizeof(tracked[0]), "%s", uri);
	return tracked[ntracked++];
}

static void track_kid(pid_t p)
{
	assert_true(p > 0);
	if (nkids < 8)
		kids[nkids++] = p;
}

static void forget_kid(pid_t p)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i] == p)
			kids[i] = 0;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* the runtime companion of the file region at @uri ("" for shm: and
 * anything that is no file region) */
static const char *companion_of(const char *uri, char buf[COMPANION_PATH_MAX])
{
	char p[300], wc[COMPANION_PATH_MAX];
	if (companion_paths_of(test_path_of(uri, p, sizeof(p)), buf, wc) != 0)
		buf[0] = 0;
	return buf;
}

/*
 * Remember the companion runtime segment of a file region: once a test has
 * damaged the superblock, pstm_unlink can no longer find it.
 */
static void track_companion(const char *uri)
{
	if (ncompanions < MAX_TRACKED)
		companion_of(uri, companions[ncompanions++]);
}

static int teardown(void **state)
{
	char p[300];
	(void)state;
	for (int i = 0; i < nkids; i++) {
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			test_wait(kids[i]);
		}
	}
	nkids = 0;
	for (int i = 0; i < ntracked; i++) {
		(void)pstm_unlink(tracked[i]); /* also drops a companion */
		(void)unlink(test_path_of(tracked[i], p, sizeof(p)));
	}
	ntracked = 0;
	for (int i = 0; i < ncompanions; i++)
		(void)unlink(companions[i]);
	ncompanions = 0;
	return 0;
}

/* ------------------------------------------------------- small helpers */

static pstm_region *create_small(const char *uri)
{
	struct pstm_create_opts o = {0};
	pstm_region *r = NULL;
	o.size_bytes = SMALL;
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_non_null(r);
	track_companion(uri);
	return r;
}

static void info_of(pstm_region *r, struct pstm_region_info *in)
{
	assert_pstm_ok(pstm_region_info(r, in));
}

static void check_info_sane(const struct pstm_region_info *in, uint64_t size)
{
	static const uint8_t zero[16];
	struct timespec now;

	assert_int_equal(in->size_bytes, size);
	assert_int_equal(in->format_version, 2);
	assert_true(in->heap_off >= 4096);
	assert_true(in->heap_bytes > 0);
	assert_true(in->heap_off + in->heap_bytes <= in->size_bytes);
	assert_true(in->max_procs >= 1 && in->max_procs <= 1023);
	assert_true(in->max_threads >= 1);
	assert_true(in->log_bytes >= 4096);
	assert_true(in->orecs_log2 >= 10 && in->orecs_log2 <= 26);
	assert_memory_not_equal(in->uuid, zero, 16);
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	assert_true(in->created_ns <= now_ns);
	assert_true(now_ns - in->created_ns < 600ull * 1000000000ull);
}

struct root_io {
	uint64_t idx;  /* word index in the root object */
	uint64_t val;  /* value to store, or value loaded */
};

#define ROOT_BYTES 64

static int tx_store(pstm_tx *tx, void *arg)
{
	struct root_io *io = arg;
	pstm_off root = pstm_root(tx, ROOT_BYTES);
	pstm_store64(tx, root + 8 * io->idx, io->val);
	return 0;
}

static int tx_load(pstm_tx *tx, void *arg)
{
	struct root_io *io = arg;
	pstm_off root = pstm_root(tx, ROOT_BYTES);
	io->val = pstm_load64(tx, root + 8 * io->idx);
	return 0;
}

static void store_word(pstm_region *r, uint64_t idx, uint64_t v)
{
	struct root_io io = {idx, v};
	assert_pstm_ok(pstm_atomic(r, tx_store, &io));
}

static uint64_t load_word(pstm_region *r, uint64_t idx)
{
	struct root_io io = {idx, 0};
	assert_pstm_ok(pstm_atomic(r, tx_load, &io));
	return io.val;
}

/* ----------------------------------------- file snapshots (unchanged?) */

struct snap {
	unsigned char *data;
	size_t len;
	struct timespec mtime;
};

static void snap_take(const char *path, struct snap *s)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	s->len = (size_t)st.st_size;
	s->mtime = st.st_mtim;
	s->data = malloc(s->len ? s->len : 1);
	assert_non_null(s->data);
	assert_int_equal(pread(fd, s->data, s->len, 0), (ssize_t)s->len);
	close(fd);
}

/* assert @path still has the bytes and mtime of @s; frees @s */
static void snap_check(const char *path, struct snap *s)
{
	struct snap now;
	snap_take(path, &now);
	bool same_len = now.len == s->len;
	bool same_data = same_len && memcmp(now.data, s->data, s->len) == 0;
	bool same_mtime = now.mtime.tv_sec == s->mtime.tv_sec &&
			  now.mtime.tv_nsec == s->mtime.tv_nsec;
	free(now.data);
	free(s->data);
	s->data = NULL;
	if (!same_len || !same_data || !same_mtime)
		print_error("%s modified by a failed open (len %d data %d mtime %d)\n",
			    path, same_len, same_data, same_mtime);
	assert_true(same_len);
	assert_true(same_data);
	assert_true(same_mtime);
}

/* pstm_open must fail with @want and leave the file untouched */
static void expect_open_fails(const char *uri, int want)
{
	char p[300];
	struct snap s;
	pstm_region *r = (pstm_region *)&s; /* must be reset to NULL */

	test_path_of(uri, p, sizeof(p));
	snap_take(p, &s);
	int rc = pstm_open(uri, &r);
	if (rc != want)
		print_error("pstm_open(%s) -> %d (%s), want %d (%s)\n", uri, rc,
			    pstm_strerror(rc), want, pstm_strerror(want));
	if (rc == 0)
		pstm_close(r);
	assert_int_equal(rc, want);
	assert_null(r);
	snap_check(p, &s);
}

static void write_file(const char *path, const void *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

static void pwrite_at(const char *path, const void *data, size_t n, off_t off)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, n, off), (ssize_t)n);
	close(fd);
}

static void pread_at(const char *path, void *data, size_t n, off_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, data, n, off), (ssize_t)n);
	close(fd);
}

/* ------------------------------------------------------ lifecycle */

static void lifecycle(const char *uri, bool is_shm)
{
	struct pstm_region_info in, in2;
	pstm_region *r = NULL;
	char p[300], comp[COMPANION_PATH_MAX];
	struct stat st;
	uint64_t size = is_shm ? 64 * MiB : SMALL;
	struct pstm_create_opts o = {0};

	test_path_of(uri, p, sizeof(p));
	assert_false(exists(p));
	if (is_shm) {
		/* NULL options: every default */
		assert_pstm_ok(pstm_create(uri, NULL, &r));
	} else {
		o.size_bytes = size;
		assert_pstm_ok(pstm_create(uri, &o, &r));
	}
	assert_non_null(r);
	info_of(r, &in);
	check_info_sane(&in, size);
	assert_int_equal(in.durability, is_shm ? PSTM_VOLATILE : PSTM_DURABLE);
	if (is_shm)
		assert_int_equal(in.max_procs, 64); /* documented default */

	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600); /* default mode */
	assert_int_equal((uint64_t)st.st_size, size);
	companion_of(uri, comp);
	assert_int_equal(exists(comp), !is_shm); /* files keep the runtime aside */

	assert_pstm_ok(pstm_close(r));
	assert_true(exists(p));
	r = NULL;
	assert_pstm_ok(pstm_open(uri, &r));
	assert_non_null(r);
	info_of(r, &in2);
	assert_memory_equal(in.uuid, in2.uuid, 16);
	assert_int_equal(in2.size_bytes, in.size_bytes);
	assert_int_equal(in2.heap_off, in.heap_off);
	assert_int_equal(in2.heap_bytes, in.heap_bytes);
	assert_int_equal(in2.durability, in.durability);
	assert_int_equal(in2.max_procs, in.max_procs);
	assert_int_equal(in2.max_threads, in.max_threads);
	assert_int_equal(in2.log_bytes, in.log_bytes);
	assert_int_equal(in2.orecs_log2, in.orecs_log2);
	assert_int_equal(in2.created_ns, in.created_ns);
	assert_pstm_ok(pstm_close(r));

	assert_pstm_ok(pstm_unlink(uri));
	assert_false(exists(p));
	assert_false(exists(comp));
	r = (pstm_region *)&in;
	assert_int_equal(pstm_open(uri, &r), PSTM_ENOENT);
	assert_null(r);
	assert_int_equal(pstm_unlink(uri), PSTM_ENOENT);
}

static void test_lifecycle_shm(void **state)
{
	(void)state;
	lifecycle(track(test_shm_uri("life")), true);
}

static void test_lifecycle_file(void **state)
{
	(void)state;
	lifecycle(track(test_file_uri("life")), false);
}

static void test_create_options(void **state)
{
	struct pstm_create_opts o = {0};
	struct pstm_region_info in;
	pstm_region *r;
	struct stat st;
	char p[300];
	(void)state;

	/* shm: size, mode, limits */
	const char *a = track(test_shm_uri("opts"));
	o.size_bytes = 3 * MiB;
	/* setuid, setgid, sticky: refused, nothing created */
	static const mode_t bad[] = {04600, 02600, 01600, 0100000};
	for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
		o.mode = bad[k];
		assert_int_equal(pstm_create(a, &o, &r), PSTM_EINVAL);
		assert_int_equal(stat(test_path_of(a, p, sizeof(p)), &st), -1);
	}
	o.mode = 0640;
	o.max_procs = 5;
	o.max_threads = 9;
	o.log_bytes = 8192;
	o.orecs_log2 = 12;
	assert_pstm_ok(pstm_create(a, &o, &r));
	info_of(r, &in);
	check_info_sane(&in, 3 * MiB);
	assert_int_equal(in.durability, PSTM_VOLATILE);
	assert_int_equal(in.max_procs, 5);
	assert_int_equal(in.max_threads, 9);
	assert_int_equal(in.log_bytes, 8192);
	assert_int_equal(in.orecs_log2, 12);
	assert_int_equal(stat(test_path_of(a, p, sizeof(p)), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal((uint64_t)st.st_size, 3 * MiB);
	assert_pstm_ok(pstm_close(r));
	/* the options are in the region, not in the handle */
	assert_pstm_ok(pstm_open(a, &r));
	info_of(r, &in);
	assert_int_equal(in.max_procs, 5);
	assert_int_equal(in.max_threads, 9);
	assert_int_equal(in.log_bytes, 8192);
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(a));

	/* file: durability overridden to volatile, another mode */
	const char *b = track(test_file_uri("opts"));
	memset(&o, 0, sizeof(o));
	o.size_bytes = SMALL;
	o.mode = 0604;
	o.durability = PSTM_VOLATILE;
	o.max_procs = 3;
	assert_pstm_ok(pstm_create(b, &o, &r));
	info_of(r, &in);
	check_info_sane(&in, SMALL);
	assert_int_equal(in.durability, PSTM_VOLATILE);
	assert_int_equal(in.max_procs, 3);
	assert_int_equal(stat(b, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0604);
	assert_int_equal((uint64_t)st.st_size, SMALL);
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(b));

	/* file: explicit PSTM_DURABLE */
	const char *c = track(test_file_uri("opts"));
	memset(&o, 0, sizeof(o));
	o.size_bytes = SMALL;
	o.durability = PSTM_DURABLE;
	assert_pstm_ok(pstm_create(c, &o, &r));
	info_of(r, &in);
	assert_int_equal(in.durability, PSTM_DURABLE);
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(c));

	/* documented limits: max_procs <= 1023, max_threads <= 2047 */
	const char *d = track(test_shm_uri("opts"));
	memset(&o, 0, sizeof(o));
	o.size_bytes = SMALL;
	o.max_procs = 1024;
	r = (pstm_region *)&o;
	assert_int_equal(pstm_create(d, &o, &r), PSTM_EINVAL);
	assert_null(r);
	o.max_procs = 0;
	o.max_threads = 2048;
	assert_int_equal(pstm_create(d, &o, &r), PSTM_EINVAL);
	assert_false(exists(test_path_of(d, p, sizeof(p))));
}

static void create_exists(const char *uri, bool is_shm)
{
	struct pstm_create_opts o = {0};
	struct pstm_region_info in1, in2;
	pstm_region *r;
	char p[300], comp1[COMPANION_PATH_MAX], comp2[COMPANION_PATH_MAX];
	struct snap s;

	r = create_small(uri);
	info_of(r, &in1);
	store_word(r, 0, 0xabcdef);
	assert_pstm_ok(pstm_close(r));
	test_path_of(uri, p, sizeof(p));
	companion_of(uri, comp1);

	/* without replace: EEXIST, and the old region is untouched */
	o.size_bytes = SMALL;
	snap_take(p, &s);
	r = (pstm_region *)&s;
	assert_int_equal(pstm_create(uri, &o, &r), PSTM_EEXIST);
	assert_null(r);
	snap_check(p, &s);
	o.size_bytes = 4 * MiB; /* other options make no difference */
	assert_int_equal(pstm_create(uri, &o, &r), PSTM_EEXIST);
	assert_pstm_ok(pstm_open(uri, &r));
	info_of(r, &in2);
	assert_memory_equal(in1.uuid, in2.uuid, 16);
	assert_int_equal(load_word(r, 0), 0xabcdef);
	assert_pstm_ok(pstm_close(r));

	/* with replace: a brand-new region */
	o.replace = 1;
	assert_pstm_ok(pstm_create(uri, &o, &r));
	info_of(r, &in2);
	assert_memory_not_equal(in1.uuid, in2.uuid, 16);
	assert_int_equal(in2.size_bytes, 4 * MiB);
	assert_int_equal(load_word(r, 0), 0);
	assert_pstm_ok(pstm_close(r));
	if (!is_shm) {
		/* the old region's runtime segment went with it */
		assert_false(exists(comp1));
		assert_true(exists(companion_of(uri, comp2)));
	}
	/* replace also works when nothing is there */
	assert_pstm_ok(pstm_unlink(uri));
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(uri));
	assert_false(exists(p));
}

static void test_create_exists_shm(void **state)
{
	(void)state;
	create_exists(track(test_shm_uri("exist")), true);
}

static void test_create_exists_file(void **state)
{
	(void)state;
	create_exists(track(test_file_uri("exist")), false);
}

/* ---------------------------------------------- data across processes */

#define V0 0x1122334455667788ull
#define V1 0x0102030405060708ull
#define VCHILD 0xfeedfacecafebeefull

/* child: open the region itself, check what the parent wrote, write back */
static int child_reader(void *arg, int i)
{
	const char *uri = arg;
	pstm_region *r;
	struct root_io a = {0, 0}, b = {1, 0}, c = {2, VCHILD};
	(void)i;

	if (pstm_open(uri, &r) != 0)
		return 10;
	if (pstm_atomic(r, tx_load, &a) != 0 || pstm_atomic(r, tx_load, &b) != 0)
		return 11;
	if (a.val != V0 || b.val != V1)
		return 12;
	if (pstm_atomic(r, tx_store, &c) != 0)
		return 13;
	if (pstm_close(r) != 0)
		return 14;
	return 0;
}

static void data_persists(const char *uri)
{
	pstm_region *r = create_small(uri);

	store_word(r, 0, V0);
	store_word(r, 1, V1);
	assert_int_equal(load_word(r, 0), V0);
	assert_pstm_ok(pstm_close(r));

	assert_pstm_ok(pstm_open(uri, &r));
	assert_int_equal(load_word(r, 0), V0);
	assert_int_equal(load_word(r, 1), V1);
	assert_int_equal(load_word(r, 2), 0);

	/* the child opens its own handle; ours stays open meanwhile */
	pid_t pid = test_spawn(child_reader, (void *)uri, 0);
	track_kid(pid);
	int st = test_wait(pid);
	forget_kid(pid);
	assert_int_equal(st, 0);
	assert_int_equal(load_word(r, 2), VCHILD);
	assert_pstm_ok(pstm_close(r));

	/* and after everyone closed */
	assert_pstm_ok(pstm_open(uri, &r));
	assert_int_equal(load_word(r, 0), V0);
	assert_int_equal(load_word(r, 2), VCHILD);
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(uri));
}

static void test_data_shm(void **state)
{
	(void)state;
	data_persists(track(test_shm_uri("data")));
}

static void test_data_file(void **state)
{
	(void)state;
	data_persists(track(test_file_uri("data")));
}

/* ---------------------------------------------------- bad input */

static void test_open_missing(void **state)
{
	pstm_region *r;
	(void)state;
	const char *a = test_shm_uri("missing");
	const char *b = test_file_uri("missing");
	r = (pstm_region *)&r;
	assert_int_equal(pstm_open(a, &r), PSTM_ENOENT);
	assert_null(r);
	r = (pstm_region *)&r;
	assert_int_equal(pstm_open(b, &r), PSTM_ENOENT);
	assert_null(r);
	assert_int_equal(pstm_open("/nonexistent-dir-pstm/x.region", &r),
			 PSTM_ENOENT);
	assert_false(exists(b));
}

static void test_open_bad_magic(void **state)
{
	static unsigned char junk[65536];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	char p[300];
	(void)state;

	for (size_t i = 0; i < sizeof(junk); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		junk[i] = (unsigned char)x;
	}
	const char *f = track(test_file_uri("magic"));
	write_file(f, junk, sizeof(junk));
	expect_open_fails(f, PSTM_EBADMAGIC);
	/* a short file of text: not ours either */
	write_file(f, "hello\n", 6);
	expect_open_fails(f, PSTM_EBADMAGIC);

	const char *s = track(test_shm_uri("magic"));
	write_file(test_path_of(s, p, sizeof(p)), junk, sizeof(junk));
	expect_open_fails(s, PSTM_EBADMAGIC);
}

static void truncated(const char *uri)
{
	char p[300];
	pstm_region *r = create_small(uri);
	assert_pstm_ok(pstm_close(r));
	test_path_of(uri, p, sizeof(p));

	assert_int_equal(truncate(p, SMALL / 2), 0);
	expect_open_fails(uri, PSTM_ETRUNC);
	assert_int_equal(truncate(p, SMALL - 4096), 0); /* one page short */
	expect_open_fails(uri, PSTM_ETRUNC);
	assert_int_equal(truncate(p, 100), 0); /* not even a superblock */
	expect_open_fails(uri, PSTM_ETRUNC);
	assert_pstm_ok(pstm_unlink(uri));
}

static void test_open_truncated_file(void **state)
{
	(void)state;
	truncated(track(test_file_uri("trunc")));
}

static void test_open_truncated_shm(void **state)
{
	(void)state;
	truncated(track(test_shm_uri("trunc")));
}

static void test_open_empty(void **state)
{
	char p[300];
	(void)state;
	const char *f = track(test_file_uri("empty"));
	write_file(f, "", 0);
	expect_open_fails(f, PSTM_EEMPTY);
	const char *s = track(test_shm_uri("empty"));
	write_file(test_path_of(s, p, sizeof(p)), "", 0);
	expect_open_fails(s, PSTM_EEMPTY);
	/* an emptied region (truncated to 0) */
	const char *g = track(test_file_uri("empty"));
	pstm_region *r = create_small(g);
	assert_pstm_ok(pstm_close(r));
	assert_int_equal(truncate(g, 0), 0);
	expect_open_fails(g, PSTM_EEMPTY);
}

/*
 * Flip each superblock byte in turn (and restore it): the magic bytes give
 * PSTM_EBADMAGIC, every other byte of the 160-byte superblock
 * PSTM_ECORRUPT, and nothing is ever written by the failing open.
 */
static void flipped_bytes(const char *uri)
{
	char p[300];
	int bad = 0;
	pstm_region *r = create_small(uri);
	assert_pstm_ok(pstm_close(r));
	test_path_of(uri, p, sizeof(p));

	for (int off = 0; off < SB_BYTES; off++) {
		unsigned char orig, flip;
		int want = off < 8 ? PSTM_EBADMAGIC : PSTM_ECORRUPT;
		struct snap s;

		pread_at(p, &orig, 1, off);
		flip = orig ^ 0xff;
		pwrite_at(p, &flip, 1, off);
		snap_take(p, &s);
		r = NULL;
		int rc = pstm_open(uri, &r);
		if (rc == 0)
			pstm_close(r);
		if (rc != want) {
			print_error("%s: byte %d flipped: open -> %d (%s), want %d\n",
				    uri, off, rc, pstm_strerror(rc), want);
			bad++;
		}
		if (rc != 0)
			snap_check(p, &s); /* a failed open writes nothing */
		else
			free(s.data); /* a (wrong) success may attach */
		pwrite_at(p, &orig, 1, off);
	}
	assert_int_equal(bad, 0);
	/* restored: it opens again */
	assert_pstm_ok(pstm_open(uri, &r));
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(uri));
}

static void test_open_flipped_file(void **state)
{
	(void)state;
	flipped_bytes(track(test_file_uri("flip")));
}

static void test_open_flipped_shm(void **state)
{
	(void)state;
	flipped_bytes(track(test_shm_uri("flip")));
}

/* version 3 with a valid checksum: a newer format, not corruption */
static void newer_version(const char *uri)
{
	unsigned char orig[SB_BYTES], sb[SB_BYTES];
	char p[300];
	pstm_region *r = create_small(uri);
	assert_pstm_ok(pstm_close(r));
	test_path_of(uri, p, sizeof(p));

	pread_at(p, orig, sizeof(orig), 0);
	/* the stored crc is zlib crc32 of [0,152), little-endian at 152 */
	uint32_t crc = (uint32_t)crc32(0, orig, SB_CRC_OFF);
	assert_int_equal(crc, orig[152] | orig[153] << 8 | orig[154] << 16 |
				      (uint32_t)orig[155] << 24);
	assert_int_equal(orig[SB_VERSION_OFF], 2);

	memcpy(sb, orig, sizeof(sb));
	sb[SB_VERSION_OFF] = 3; /* uint32 3, little-endian */
	sb[SB_VERSION_OFF + 1] = sb[SB_VERSION_OFF + 2] = sb[SB_VERSION_OFF + 3] = 0;
	crc = (uint32_t)crc32(0, sb, SB_CRC_OFF);
	for (int k = 0; k < 4; k++)
		sb[SB_CRC_OFF + k] = (unsigned char)(crc >> (8 * k));
	pwrite_at(p, sb, sizeof(sb), 0);
	expect_open_fails(uri, PSTM_EVERSION);

	/* version 3 under the old checksum is plain corruption */
	memcpy(sb + SB_CRC_OFF, orig + SB_CRC_OFF, 4);
	pwrite_at(p, sb, sizeof(sb), 0);
	expect_open_fails(uri, PSTM_ECORRUPT);

	pwrite_at(p, orig, sizeof(orig), 0);
	assert_pstm_ok(pstm_open(uri, &r));
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(uri));
}

static void test_open_newer_version(void **state)
{
	(void)state;
	newer_version(track(test_file_uri("version")));
	newer_version(track(test_shm_uri("version")));
}

/* no leftover temporary ".pstm-new.<ourpid>.*" in @dir */
static void assert_no_temp_in(const char *dir)
{
	char prefix[64];
	struct dirent *e;
	DIR *d = opendir(dir);
	assert_non_null(d);
	snprintf(prefix, sizeof(prefix), ".pstm-new.%d.", (int)getpid());
	int found = 0;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			print_error("leftover %s/%s\n", dir, e->d_name);
			found++;
		}
	closedir(d);
	assert_int_equal(found, 0);
}

static void test_create_too_small(void **state)
{
	struct pstm_create_opts o = {0};
	pstm_region *r;
	char p[300];
	(void)state;

	const char *uris[2] = {track(test_shm_uri("small")),
			       track(test_file_uri("small"))};
	o.size_bytes = 4096;
	for (int i = 0; i < 2; i++) {
		r = (pstm_region *)&o;
		assert_int_equal(pstm_create(uris[i], &o, &r), PSTM_ETOOSMALL);
		assert_null(r);
		assert_false(exists(test_path_of(uris[i], p, sizeof(p))));
	}
	o.size_bytes = 1; /* non-zero: not the default */
	assert_int_equal(pstm_create(uris[0], &o, &r), PSTM_ETOOSMALL);
	o.size_bytes = MiB - 4096; /* just below the documented minimum */
	assert_int_equal(pstm_create(uris[0], &o, &r), PSTM_ETOOSMALL);
	/* big enough in itself, but not for 1023 processes' redo logs */
	o.size_bytes = MiB;
	o.max_procs = 1023;
	assert_int_equal(pstm_create(uris[0], &o, &r), PSTM_ETOOSMALL);
	assert_false(exists(test_path_of(uris[0], p, sizeof(p))));
	/* the minimum itself is fine */
	o.max_procs = 0;
	assert_pstm_ok(pstm_create(uris[0], &o, &r));
	struct pstm_region_info in;
	info_of(r, &in);
	check_info_sane(&in, MiB);
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(uris[0]));
	assert_no_temp_in("/dev/shm");
	assert_no_temp_in("/tmp");
}

static void test_invalid_uri(void **state)
{
	static const char *bad[] = {"", "shm:", "shm:a/b", NULL};
	struct pstm_create_opts o = {0};
	pstm_region *r;
	(void)state;

	o.size_bytes = SMALL;
	for (int i = 0; i < 4; i++) {
		r = (pstm_region *)&o;
		assert_int_equal(pstm_create(bad[i], &o, &r), PSTM_EINVAL);
		assert_null(r);
		r = (pstm_region *)&o;
		assert_int_equal(pstm_open(bad[i], &r), PSTM_EINVAL);
		assert_null(r);
		assert_int_equal(pstm_unlink(bad[i]), PSTM_EINVAL);
	}
	/* no out pointer */
	const char *u = track(test_shm_uri("inval"));
	assert_int_equal(pstm_create(u, &o, NULL), PSTM_EINVAL);
	assert_int_equal(pstm_open(u, NULL), PSTM_EINVAL);
	assert_false(exists("/dev/shm/a"));
	assert_int_equal(pstm_region_info(NULL, NULL), PSTM_EINVAL);
	assert_int_equal(pstm_close(NULL), PSTM_EINVAL);
}

/* child: become nobody, then try to open */
static int child_open_as_nobody(void *arg, int i)
{
	const char *uri = arg;
	pstm_region *r;
	(void)i;
	if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
		return 100;
	if (geteuid() != NOBODY)
		return 101;
	int rc = pstm_open(uri, &r);
	if (rc == 0) {
		pstm_close(r);
		return 102;
	}
	return rc == PSTM_EACCES ? 0 : 103;
}

/* child: become nobody, then try to create a region in a root-only dir */
static int child_create_as_nobody(void *arg, int i)
{
	char uri[256];
	struct pstm_create_opts o = {0};
	pstm_region *r;
	(void)i;
	if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
		return 100;
	snprintf(uri, sizeof(uri), "%s/r.region", (const char *)arg);
	o.size_bytes = SMALL;
	int rc = pstm_create(uri, &o, &r);
	if (rc == 0) {
		pstm_close(r);
		pstm_unlink(uri);
		return 102;
	}
	return rc == PSTM_EACCES ? 0 : 103;
}

static void test_permission_denied(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("# not root: cannot switch users\n");
		skip();
	}
	const char *uris[2] = {track(test_shm_uri("acces")),
			       track(test_file_uri("acces"))};
	for (int i = 0; i < 2; i++) {
		char p[300];
		struct snap s;
		pstm_region *r = create_small(uris[i]); /* mode 0600 */
		assert_pstm_ok(pstm_close(r));
		test_path_of(uris[i], p, sizeof(p));
		snap_take(p, &s);
		pid_t pid = test_spawn(child_open_as_nobody, (void *)uris[i], 0);
		track_kid(pid);
		int st = test_wait(pid);
		forget_kid(pid);
		if (st != 0)
			print_error("%s: child as uid %d: status %d\n", uris[i],
				    NOBODY, st);
		assert_int_equal(st, 0);
		snap_check(p, &s);
		/* the owner still opens it */
		assert_pstm_ok(pstm_open(uris[i], &r));
		assert_pstm_ok(pstm_close(r));
		assert_pstm_ok(pstm_unlink(uris[i]));
	}

	/* creating where one may not write: PSTM_EACCES, nothing left */
	char dir[] = "/tmp/pstm-test-region-acces-XXXXXX";
	assert_non_null(mkdtemp(dir)); /* mode 0700, owned by root */
	pid_t pid = test_spawn(child_create_as_nobody, dir, 0);
	track_kid(pid);
	int st = test_wait(pid);
	forget_kid(pid);
	DIR *d = opendir(dir);
	int entries = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		entries += e->d_name[0] != '.' || strncmp(e->d_name, ".pstm", 5) == 0;
	if (d)
		closedir(d);
	rmdir(dir);
	if (st != 0)
		print_error("create as uid %d in %s: child status %d\n", NOBODY,
			    dir, st);
	assert_int_equal(st, 0);
	assert_int_equal(entries, 0);
}

/*
 * Child holding an attachment: opens, reports on @ready, waits for EOF or
 * a byte on @go, then closes (or just exits without closing if i == 1).
 */
struct holder {
	const char *uri;
	int ready[2], go[2];
};

static int child_hold(void *arg, int i)
{
	struct holder *h = arg;
	pstm_region *r;
	char c;
	close(h->ready[0]);
	close(h->go[1]);
	int rc = pstm_open(h->uri, &r);
	c = rc == 0 ? 'y' : 'n';
	if (write(h->ready[1], &c, 1) != 1 || rc != 0)
		return 1;
	(void)!read(h->go[0], &c, 1);
	if (i == 0)
		pstm_close(r);
	return 0;
}

static pid_t spawn_holder(struct holder *h, int i)
{
	char c = 0;
	assert_int_equal(pipe(h->ready), 0);
	assert_int_equal(pipe(h->go), 0);
	pid_t pid = test_spawn(child_hold, h, i);
	track_kid(pid);
	close(h->ready[1]);
	close(h->go[0]);
	assert_int_equal(read(h->ready[0], &c, 1), 1);
	close(h->ready[0]);
	assert_int_equal(c, 'y');
	return pid;
}

static void test_proc_full(void **state)
{
	struct pstm_create_opts o = {0};
	struct holder h[2];
	pstm_region *r, *r2;
	(void)state;

	const char *uri = track(test_shm_uri("procfull"));
	o.size_bytes = SMALL;
	o.max_procs = 2;
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_close(r));

	for (int i = 0; i < 2; i++)
		h[i].uri = uri;
	pid_t p0 = spawn_holder(&h[0], 0);
	pid_t p1 = spawn_holder(&h[1], 1);

	r = (pstm_region *)&o;
	assert_int_equal(pstm_open(uri, &r), PSTM_EPROCFULL);
	assert_null(r);
	assert_int_equal(pstm_open(uri, &r), PSTM_EPROCFULL); /* still */

	/* child 0 closes and exits: its entry is free again */
	assert_int_equal(write(h[0].go[1], "x", 1), 1);
	close(h[0].go[1]);
	assert_int_equal(test_wait(p0), 0);
	forget_kid(p0);
	assert_pstm_ok(pstm_open(uri, &r));
	r2 = (pstm_region *)&o;
	assert_int_equal(pstm_open(uri, &r2), PSTM_EPROCFULL);
	assert_null(r2);

	/* child 1 dies without closing: its entry is recovered on open */
	kill(p1, SIGKILL);
	close(h[1].go[1]);
	assert_int_equal(test_wait(p1), 128 + SIGKILL);
	forget_kid(p1);
	assert_pstm_ok(pstm_open(uri, &r2));
	assert_pstm_ok(pstm_close(r2));
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(uri));
}

/*
 * pstm_open recovers the slots of dead processes, and counts that in the
 * opener's statistics.  The victim commits a transaction (so it holds a
 * slot) and is killed; a fresh process then opens the region.  The second
 * round's opener first used and closed another region in the same thread,
 * so any per-thread state left from that handle is in play.
 */
struct recovery {
	const char *uri, *other;
	int ready[2];
};

#define VVICTIM 0x7777777777777777ull

static int child_victim(void *arg, int i)
{
	struct recovery *rc = arg;
	pstm_region *r;
	struct root_io io = {3, VVICTIM + (uint64_t)i};
	char c;
	close(rc->ready[0]);
	int ok = pstm_open(rc->uri, &r) == 0 && pstm_atomic(r, tx_store, &io) == 0;
	c = ok ? 'y' : 'n';
	if (write(rc->ready[1], &c, 1) != 1 || !ok)
		return 1;
	for (;;)
		pause(); /* killed here, slot still claimed */
}

static int child_recoverer(void *arg, int i)
{
	struct recovery *rc = arg;
	struct pstm_stats st;
	struct root_io io = {3, 0};
	pstm_region *r;

	if (i == 1) {
		struct root_io w = {0, 1};
		if (pstm_open(rc->other, &r) != 0 ||
		    pstm_atomic(r, tx_store, &w) != 0 || pstm_close(r) != 0)
			return 30;
	}
	if (pstm_open(rc->uri, &r) != 0)
		return 10;
	if (pstm_stats_get(r, &st) != 0)
		return 11;
	if (st.recoveries < 1) {
		fprintf(stderr, "# recoverer %d: recoveries = %llu after "
				"recovering a dead process\n",
			i, (unsigned long long)st.recoveries);
		return 20;
	}
	if (pstm_atomic(r, tx_load, &io) != 0 || io.val != VVICTIM + (uint64_t)i)
		return 21;
	io.val = 0;
	if (pstm_atomic(r, tx_store, &io) != 0 || pstm_close(r) != 0)
		return 22;
	return 0;
}

static void test_open_recovers_dead(void **state)
{
	struct recovery rc;
	char c = 0;
	pstm_region *r;
	(void)state;

	rc.uri = track(test_shm_uri("recover"));
	rc.other = track(test_shm_uri("recover-other"));
	r = create_small(rc.uri);
	assert_pstm_ok(pstm_close(r));
	r = create_small(rc.other);
	assert_pstm_ok(pstm_close(r));

	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe(rc.ready), 0);
		pid_t v = test_spawn(child_victim, &rc, i);
		track_kid(v);
		close(rc.ready[1]);
		assert_int_equal(read(rc.ready[0], &c, 1), 1);
		close(rc.ready[0]);
		assert_int_equal(c, 'y');
		kill(v, SIGKILL);
		assert_int_equal(test_wait(v), 128 + SIGKILL);
		forget_kid(v);

		pid_t p = test_spawn(child_recoverer, &rc, i);
		track_kid(p);
		int st = test_wait(p);
		forget_kid(p);
		if (st != 0)
			print_error("recoverer %d: status %d\n", i, st);
		assert_int_equal(st, 0);
	}
	assert_pstm_ok(pstm_unlink(rc.uri));
	assert_pstm_ok(pstm_unlink(rc.other));
}

/* ------------------------------------------------------------- unlink */

/* pstm_unlink of @path fails with @want and leaves it as it was */
static void expect_unlink_fails(const char *uri, int want)
{
	char p[300];
	struct snap s;
	snap_take(test_path_of(uri, p, sizeof(p)), &s);
	assert_int_equal(pstm_unlink(uri), want);
	snap_check(p, &s);
}

/*
 * pstm_unlink removes regions only: a file without the magic, an empty
 * one, a directory, a FIFO (without blocking on it) or a symbolic link to
 * a region are refused and left alone.  (It used to unlink whatever the
 * URI named: `pstm rm /tmp/random.bin` removed it and exited 0.)
 */
static void test_unlink_not_a_region(void **state)
{
	char p[300], link[256];
	struct stat st;
	(void)state;

	const char *f = track(test_file_uri("rmjunk"));
	write_file(f, "hello, not a region\n", 20);
	expect_unlink_fails(f, PSTM_EBADMAGIC);
	write_file(f, "PSTM", 4); /* the magic's first half */
	expect_unlink_fails(f, PSTM_EBADMAGIC);
	write_file(f, "", 0);
	expect_unlink_fails(f, PSTM_EBADMAGIC);
	const char *s = track(test_shm_uri("rmjunk"));
	write_file(test_path_of(s, p, sizeof(p)), "junk", 4);
	expect_unlink_fails(s, PSTM_EBADMAGIC);

	const char *d = track(test_file_uri("rmdir"));
	assert_int_equal(mkdir(d, 0700), 0);
	assert_int_equal(pstm_unlink(d), PSTM_EBADMAGIC);
	assert_int_equal(stat(d, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(rmdir(d), 0);

	const char *q = track(test_file_uri("rmfifo"));
	assert_int_equal(mkfifo(q, 0600), 0);
	assert_int_equal(pstm_unlink(q), PSTM_EBADMAGIC);
	assert_true(exists(q));

	/* a link to a region: name the region itself */
	const char *g = track(test_file_uri("rmtarget"));
	assert_pstm_ok(pstm_close(create_small(g)));
	assert_true(snprintf(link, sizeof(link), "%.240s.link", g) < (int)sizeof(link));
	track(link);
	assert_int_equal(symlink(g, link), 0);
	assert_int_equal(pstm_unlink(link), PSTM_EINVAL);
	assert_true(exists(link) && exists(g));

	assert_int_equal(pstm_unlink(test_file_uri("rmmissing")), PSTM_ENOENT);
	assert_int_equal(pstm_unlink(NULL), PSTM_EINVAL);
	assert_pstm_ok(pstm_unlink(g));
	assert_false(exists(g));
}

/*
 * A region that processes are attached to is not removed: another
 * process's handle or this process's own.  A process that died attached
 * does not count.
 */
static void unlink_attached(const char *uri)
{
	struct holder h;
	char p[300], comp[COMPANION_PATH_MAX];
	pstm_region *r;

	assert_pstm_ok(pstm_close(create_small(uri)));
	companion_of(uri, comp);
	test_path_of(uri, p, sizeof(p));
	h.uri = uri;
	pid_t kid = spawn_holder(&h, 0);
	assert_int_equal(pstm_unlink(uri), PSTM_EBUSY);
	assert_true(exists(p));
	assert_true(!comp[0] || exists(comp));
	assert_pstm_ok(pstm_open(uri, &r)); /* still a working region */
	assert_int_equal(write(h.go[1], "x", 1), 1); /* the child closes */
	close(h.go[1]);
	assert_int_equal(test_wait(kid), 0);
	forget_kid(kid);
	assert_int_equal(pstm_unlink(uri), PSTM_EBUSY); /* our own handle */
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(uri));
	assert_false(exists(p));
	assert_true(!comp[0] || !exists(comp));

	/* dead, never recovered: not attached */
	assert_pstm_ok(pstm_close(create_small(uri)));
	kid = spawn_holder(&h, 1);
	kill(kid, SIGKILL);
	close(h.go[1]);
	assert_int_equal(test_wait(kid), 128 + SIGKILL);
	forget_kid(kid);
	assert_pstm_ok(pstm_unlink(uri));
	assert_false(exists(p));
}

static void test_unlink_attached_shm(void **state)
{
	(void)state;
	unlink_attached(track(test_shm_uri("rmbusy")));
}

static void test_unlink_attached_file(void **state)
{
	(void)state;
	unlink_attached(track(test_file_uri("rmbusy")));
}

/* PSTM_UNLINK_FORCE removes it under its attached processes, which go
 * on running on the file nobody can open any more. */
static void test_unlink_force(void **state)
{
	struct holder h;
	char p[300], comp[COMPANION_PATH_MAX];
	(void)state;
	const char *uri = track(test_file_uri("rmforce"));
	assert_pstm_ok(pstm_close(create_small(uri)));
	companion_of(uri, comp);
	assert_true(exists(comp));
	h.uri = uri;
	pid_t kid = spawn_holder(&h, 0);
	assert_int_equal(pstm_unlink_opts(uri, 2), PSTM_EINVAL); /* no such flag */
	assert_int_equal(pstm_unlink_opts(uri, 0), PSTM_EBUSY);
	assert_pstm_ok(pstm_unlink_opts(uri, PSTM_UNLINK_FORCE));
	assert_false(exists(test_path_of(uri, p, sizeof(p))));
	assert_false(exists(comp));
	assert_int_equal(write(h.go[1], "x", 1), 1);
	close(h.go[1]);
	assert_int_equal(test_wait(kid), 0); /* its close still works */
	forget_kid(kid);
	assert_int_equal(pstm_unlink_opts(uri, PSTM_UNLINK_FORCE), PSTM_ENOENT);
}

/* A relaxed region's runtime and working copy go with it. */
static void test_unlink_companions(void **state)
{
	char rt[COMPANION_PATH_MAX], wc[COMPANION_PATH_MAX];
	struct pstm_create_opts o = {.size_bytes = SMALL, .durability = PSTM_RELAXED};
	pstm_region *r;
	(void)state;
	const char *uri = track(test_file_uri("rmrelaxed"));
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_close(r));
	assert_int_equal(companion_paths_of(uri, rt, wc), 0);
	assert_true(exists(rt) && exists(wc));
	assert_pstm_ok(pstm_unlink(uri));
	assert_false(exists(uri) || exists(rt) || exists(wc));
}

/* ----------------------------------------------------------- strerror */

static void test_strerror(void **state)
{
	(void)state;
	const char *unknown = pstm_strerror(PSTM_ERR_LAST - 1);
	const char *ok = pstm_strerror(PSTM_OK);
	assert_non_null(unknown);
	assert_non_null(ok);
	for (int e = PSTM_EINVAL; e >= PSTM_ERR_LAST; e--) {
		const char *t = pstm_strerror(e);
		assert_non_null(t);
		if (!*t || strcmp(t, unknown) == 0 || strcmp(t, ok) == 0)
			print_error("code %d has no text of its own: '%s'\n", e, t);
		assert_true(*t);
		assert_string_not_equal(t, unknown);
		assert_string_not_equal(t, ok);
		for (int f = PSTM_EINVAL; f > e; f--)
			if (strcmp(t, pstm_strerror(f)) == 0) {
				print_error("codes %d and %d share '%s'\n", e, f, t);
				fail();
			}
	}
	/* positive values are errno */
	assert_string_equal(pstm_strerror(ENOENT), strerror(ENOENT));
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test_teardown(test_lifecycle_shm, teardown),
	cmocka_unit_test_teardown(test_lifecycle_file, teardown),
	cmocka_unit_test_teardown(test_create_options, teardown),
	cmocka_unit_test_teardown(test_create_exists_shm, teardown),
	cmocka_unit_test_teardown(test_create_exists_file, teardown),
	cmocka_unit_test_teardown(test_data_shm, teardown),
	cmocka_unit_test_teardown(test_data_file, teardown),
	cmocka_unit_test_teardown(test_open_missing, teardown),
	cmocka_unit_test_teardown(test_open_bad_magic, teardown),
	cmocka_unit_test_teardown(test_open_truncated_file, teardown),
	cmocka_unit_test_teardown(test_open_truncated_shm, teardown),
	cmocka_unit_test_teardown(test_open_empty, teardown),
	cmocka_unit_test_teardown(test_open_flipped_file, teardown),
	cmocka_unit_test_teardown(test_open_flipped_shm, teardown),
	cmocka_unit_test_teardown(test_open_newer_version, teardown),
	cmocka_unit_test_teardown(test_create_too_small, teardown),
	cmocka_unit_test_teardown(test_invalid_uri, teardown),
	cmocka_unit_test_teardown(test_permission_denied, teardown),
	cmocka_unit_test_teardown(test_proc_full, teardown),
	cmocka_unit_test_teardown(test_open_recovers_dead, teardown),
	cmocka_unit_test_teardown(test_unlink_not_a_region, teardown),
	cmocka_unit_test_teardown(test_unlink_attached_shm, teardown),
	cmocka_unit_test_teardown(test_unlink_attached_file, teardown),
	cmocka_unit_test_teardown(test_unlink_force, teardown),
	cmocka_unit_test_teardown(test_unlink_companions, teardown),
	cmocka_unit_test_teardown(test_strerror, teardown),
};

TEST_MAIN(tests)
