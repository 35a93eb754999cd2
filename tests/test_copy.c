/*
 * test_copy.c - pstm_copy (lib/copy.c): a copy taken while other
 * processes move money between accounts spread over the heap holds
 * exactly the total, as one moment of the source would; it has a new
 * uuid, the source's layout (stored offsets stay valid) and passes pstm
 * check; --compact and larger sizes; every refusal leaves nothing behind.
 *
 * As a helper of tests/cli.t:
 *   test_copy --writer URI   set up the ledger, print "ready", move money
 *                            until stdin closes, print the transfers; a
 *                            byte on stdin pauses it between transactions
 *                            ("paused"), the next one resumes it
 *   test_copy --sum URI      print the ledger's total and account count
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "region.h"
#include "stm.h"
#include "superblock.h"

/* accounts two to a 4 KiB chunk, over 1 MiB: a transfer changes two
 * chunks far apart, so a copy that read them at different moments would
 * be off by the amount */
#define ACCOUNTS 512
#define STRIDE 2048
#define START 1000

static int ledger_setup(pstm_tx *tx, void *arg)
{
	pstm_off *base = arg;
	pstm_off root = pstm_root(tx, 64);
	*base = pstm_load64(tx, root);
	if (!*base) {
		*base = pstm_alloc(tx, (size_t)ACCOUNTS * STRIDE);
		for (int i = 0; i < ACCOUNTS; i++)
			pstm_store64(tx, *base + (uint64_t)i * STRIDE, START);
		pstm_store64(tx, root, *base);
	}
	return 0;
}

struct move {
	pstm_off base;
	uint64_t from, to, amount;
};

static int transfer(pstm_tx *tx, void *arg)
{
	struct move *m = arg;
	pstm_off a = m->base + m->from * STRIDE, b = m->base + m->to * STRIDE;
	uint64_t va = pstm_load64(tx, a);
	if (va < m->amount || a == b)
		return 0;
	pstm_store64(tx, a, va - m->amount);
	pstm_store64(tx, b, pstm_load64(tx, b) + m->amount);
	return 0;
}

struct sum {
	pstm_off base;
	uint64_t total;
};

static int sum_all(pstm_tx *tx, void *arg)
{
	struct sum *s = arg;
	s->base = pstm_load64(tx, pstm_root(tx, 64));
	s->total = 0;
	for (int i = 0; s->base && i < ACCOUNTS; i++)
		s->total += pstm_load64(tx, s->base + (uint64_t)i * STRIDE);
	return 0;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ------------------------------------------------------------ writers */

struct shared {
	volatile int stop;
	volatile int ready;
	volatile int copies; /* test_growing_heap's copies so far */
	uint64_t moves[4];
};

static const char *region_uri;
static struct shared *sh;

static int writer(void *arg, int id)
{
	pstm_region *r;
	struct move m = {0, 0, 0, 0};
	uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
	(void)arg;
	if (pstm_open(region_uri, &r) != 0 || pstm_atomic(r, ledger_setup, &m.base))
		return 1;
	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
	while (!sh->stop) {
		m.from = rnd(&seed) % ACCOUNTS;
		m.to = rnd(&seed) % ACCOUNTS;
		m.amount = rnd(&seed) % 100;
		if (pstm_atomic(r, transfer, &m))
			return 2;
		sh->moves[id]++;
	}
	return pstm_close(r) ? 3 : 0;
}

/* Receipts: a list from root word 2, its length in root word 3; each
 * transaction allocates one (the heap's top moves up meanwhile). */
#define RECEIPTS 30000

static int add_receipt(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_off root = pstm_root(tx, 64);
	pstm_off b = pstm_alloc(tx, 200);
	pstm_store64(tx, b, pstm_load64(tx, root + 16));
	pstm_store64(tx, root + 16, b);
	pstm_store64(tx, root + 24, pstm_load64(tx, root + 24) + 1);
	return 0;
}

struct receipts {
	uint64_t count, listed;
};

static int count_receipts(pstm_tx *tx, void *arg)
{
	struct receipts *c = arg;
	pstm_off root = pstm_root(tx, 64);
	c->count = pstm_load64(tx, root + 24);
	c->listed = 0;
	for (pstm_off b = pstm_load64(tx, root + 16); b && c->listed <= RECEIPTS;
	     b = pstm_load64(tx, b))
		c->listed++;
	return 0;
}

static int allocator(void *arg, int id)
{
	pstm_region *r;
	(void)arg;
	if (pstm_open(region_uri, &r) != 0)
		return 1;
	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
	while (!sh->stop && sh->moves[id] < RECEIPTS) {
		if (pstm_atomic(r, add_receipt, NULL))
			return 2;
		/* grow over several copies, whatever a copy takes (under
		 * TSan and load one outlasted the whole growth, when this
		 * only slept 20 us every 8 receipts): an eighth, then wait
		 * for the next copy to end, 2 s at most */
		if (++sh->moves[id] % (RECEIPTS / 8) == 0) {
			int c = sh->copies;
			for (int k = 0; k < 2000 && !sh->stop && sh->copies == c; k++)
				usleep(1000);
		}
	}
	return pstm_close(r) ? 3 : 0;
}

static pid_t kids[4];
static int nkids;

/* @n transfer writers, and an allocating one too if @alloc */
static void start_writers(int n, bool alloc)
{
	sh->stop = 0;
	sh->ready = 0;
	for (nkids = 0; nkids < n; nkids++)
		kids[nkids] = test_spawn(writer, NULL, nkids);
	if (alloc)
		kids[nkids] = test_spawn(allocator, NULL, nkids), n = ++nkids;
	/* a writer that dies before it is ready fails the test, not hangs it */
	while (sh->ready < n) {
		for (int i = 0; i < nkids; i++)
			assert_int_equal(waitpid(kids[i], NULL, WNOHANG), 0);
		usleep(1000);
	}
}

static uint64_t stop_writers(void)
{
	uint64_t moves = 0;
	sh->stop = 1;
	for (int i = 0; i < nkids; i++) {
		assert_int_equal(test_wait(kids[i]), 0);
		moves += sh->moves[i];
		sh->moves[i] = 0;
	}
	nkids = 0;
	return moves;
}

/* ------------------------------------------------------------ helpers */

static const char *dst_uri;

/* test_shm_uri's names live in rotating buffers: the test's own copies */
static char region_buf[256], dst_buf[256];
static const char *keep(char *buf, const char *uri)
{
	if (uri != buf)
		snprintf(buf, 256, "%s", uri);
	return buf;
}

static int teardown(void **s)
{
	(void)s;
	if (nkids) {
		sh->stop = 1;
		for (int i = 0; i < nkids; i++)
			test_wait(kids[i]);
		nkids = 0;
	}
	if (region_uri)
		pstm_unlink_opts(region_uri, PSTM_UNLINK_FORCE);
	if (dst_uri)
		pstm_unlink_opts(dst_uri, PSTM_UNLINK_FORCE);
	region_uri = dst_uri = NULL;
	return 0;
}

static pstm_region *make_source(const char *uri, int durability, uint64_t size)
{
	struct pstm_create_opts o = {.size_bytes = size, .durability = durability,
				     .log_bytes = 64 << 10, .replace = 1};
	pstm_region *r;
	pstm_off base;
	region_uri = uri = keep(region_buf, uri);
	assert_pstm_ok(pstm_create(uri, &o, &r));
	assert_pstm_ok(pstm_atomic(r, ledger_setup, &base));
	return r;
}

/* The copy at @uri: the ledger's exact total, the source's offsets and
 * layout, a uuid of its own, clean; returns its info. */
static void assert_copy(pstm_region *src, const char *uri, pstm_off base,
			struct pstm_region_info *out)
{
	struct pstm_region_info a, b;
	struct sum s = {0, 0};
	pstm_region *r;
	test_assert_clean(uri);
	assert_pstm_ok(pstm_open(uri, &r));
	assert_pstm_ok(pstm_atomic_ro(r, sum_all, &s));
	assert_int_equal(s.total, (uint64_t)ACCOUNTS * START);
	assert_int_equal(s.base, base);
	assert_pstm_ok(pstm_region_info(src, &a));
	assert_pstm_ok(pstm_region_info(r, &b));
	assert_memory_not_equal(a.uuid, b.uuid, 16);
	assert_int_equal(a.heap_off, b.heap_off);
	assert_int_equal(a.max_procs, b.max_procs);
	assert_int_equal(a.max_threads, b.max_threads);
	assert_int_equal(a.log_bytes, b.log_bytes);
	assert_int_equal(a.orecs_log2, b.orecs_log2);
	/* and it is a region to use: a transfer commits there */
	struct move m = {base, 1, 2, 5};
	assert_pstm_ok(pstm_atomic(r, transfer, &m));
	assert_pstm_ok(pstm_atomic_ro(r, sum_all, &s));
	assert_int_equal(s.total, (uint64_t)ACCOUNTS * START);
	if (out)
		*out = b;
	assert_pstm_ok(pstm_close(r));
}

static pstm_off base_of(pstm_region *r)
{
	struct sum s = {0, 0};
	assert_pstm_ok(pstm_atomic_ro(r, sum_all, &s));
	return s.base;
}

/* -------------------------------------------------------------- tests */

/* Nobody writes: one pass, nobody held back, the source's size. */
static void test_quiet(void **s)
{
	(void)s;
	pstm_region *r = make_source(test_shm_uri("copy"), 0, 8 << 20);
	struct pstm_copy_info ci;
	struct pstm_region_info di;
	dst_uri = keep(dst_buf, test_shm_uri("copy"));
	assert_pstm_ok(pstm_copy(r, dst_uri, NULL, &ci));
	assert_int_equal(ci.passes, 1);
	assert_int_equal(ci.holds, 0);
	assert_int_equal(ci.size_bytes, 8 << 20);
	assert_true(ci.heap_bytes >= (uint64_t)ACCOUNTS * STRIDE);
	assert_copy(r, dst_uri, base_of(r), &di);
	assert_memory_equal(ci.uuid, di.uuid, 16);
	assert_int_equal(di.size_bytes, 8 << 20);
	assert_pstm_ok(pstm_close(r));
}

/* Copies while two processes keep moving money: each one exact. */
static void under_writers(const char *src, int durability, const char *dst_tag,
			  bool file)
{
	pstm_region *r = make_source(src, durability, 8 << 20);
	pstm_off base = base_of(r);
	uint32_t holds = 0, passes = 0;
	uint64_t t0 = test_now_ns();
	/* the writers forked with the region closed: a relaxed handle's
	 * flush thread must not be forked (ThreadSanitizer refuses it) */
	assert_pstm_ok(pstm_close(r));
	start_writers(2, false);
	assert_pstm_ok(pstm_open(src, &r));
	/* until one copy had to hold the writers back (a single pass, and
	 * they committed meanwhile), and at least 4 copies; 3 s at most */
	for (int round = 0; round < 4 || (!holds && test_now_ns() - t0 < 3000000000ull);
	     round++) {
		struct pstm_copy_opts o = {.passes = round % 2 ? 1 : 0};
		struct pstm_copy_info ci;
		dst_uri = keep(dst_buf, file ? test_file_uri(dst_tag) : test_shm_uri(dst_tag));
		assert_pstm_ok(pstm_copy(r, dst_uri, &o, &ci));
		holds += ci.holds;
		passes += ci.passes;
		assert_true(ci.holds == 0 || ci.hold_ns > 0);
		assert_true(ci.passes >= 1 && ci.chunks >= ci.passes);
		assert_copy(r, dst_uri, base, NULL);
		assert_pstm_ok(pstm_unlink(dst_uri));
		dst_uri = NULL;
	}
	uint64_t moves = stop_writers();
	print_message("# %s: %llu transfers meanwhile, %u passes, %u holds\n", src,
		      (unsigned long long)moves, passes, holds);
	assert_true(moves > 0);
	assert_true(holds > 0);
	struct sum sm;
	assert_pstm_ok(pstm_atomic_ro(r, sum_all, &sm));
	assert_int_equal(sm.total, (uint64_t)ACCOUNTS * START);
	assert_pstm_ok(pstm_close(r));
}

static void test_writers_shm(void **s)
{
	(void)s;
	under_writers(test_shm_uri("copy"), 0, "copy", false);
}

static void test_writers_durable(void **s)
{
	(void)s;
	under_writers(test_file_uri("copy"), PSTM_DURABLE, "copy", true);
}

static void test_writers_relaxed(void **s)
{
	(void)s;
	under_writers(test_file_uri("copy"), PSTM_RELAXED, "copy", true);
}

/* A process allocating meanwhile: the heap's top moves up during the
 * copy, which must reach it (compact copies: grow to it). */
static void test_growing_heap(void **s)
{
	(void)s;
	pstm_region *r = make_source(test_shm_uri("copy"), 0, 32 << 20);
	pstm_off base = base_of(r);
	struct receipts rc = {0, 0};
	int copies = 0, midway = 0;
	sh->copies = 0;
	start_writers(1, true);
	/* copies while it allocates (at least 2, at most 20) */
	for (; copies < 2 || (copies < 20 && sh->moves[1] < RECEIPTS); copies++) {
		struct pstm_copy_opts o = {.flags = copies % 2 ? PSTM_COPY_COMPACT : 0};
		pstm_region *c;
		dst_uri = keep(dst_buf, test_shm_uri("copy"));
		assert_pstm_ok(pstm_copy(r, dst_uri, &o, NULL));
		assert_copy(r, dst_uri, base, NULL);
		assert_pstm_ok(pstm_open(dst_uri, &c));
		assert_pstm_ok(pstm_atomic_ro(c, count_receipts, &rc));
		assert_int_equal(rc.listed, rc.count);
		midway += rc.count > 0 && rc.count < RECEIPTS;
		assert_pstm_ok(pstm_close(c));
		assert_pstm_ok(pstm_unlink(dst_uri));
		dst_uri = NULL;
		sh->copies++;
	}
	stop_writers();
	print_message("# %d copies, %d of them while the heap grew\n", copies, midway);
	assert_true(midway >= 2);
	assert_pstm_ok(pstm_close(r));
}

/* Reports 'r' after a read-only transaction, 'w' after an update one. */
static int read_then_write(void *arg, int i)
{
	int *fd = arg;
	pstm_region *r;
	struct sum sm;
	struct move m = {0, 3, 4, 1};
	(void)i;
	if (pstm_open(region_uri, &r) != 0 || pstm_atomic_ro(r, sum_all, &sm) != 0 ||
	    write(fd[1], "r", 1) != 1)
		return 1;
	m.base = sm.base;
	uint64_t t0 = test_now_ns();
	if (pstm_atomic(r, transfer, &m) != 0)
		return 2;
	/* how long it was held back, measured here: the parent may be
	 * descheduled between our two bytes on a loaded machine */
	uint64_t held = test_now_ns() - t0;
	if (write(fd[1], "w", 1) != 1 || write(fd[1], &held, sizeof(held)) != sizeof(held))
		return 2;
	return pstm_close(r) ? 3 : 0;
}

/* the next byte from @fd within @ms, or 0 */
static char byte_within(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c = 0;
	if (poll(&p, 1, ms) == 1 && read(fd, &c, 1) != 1)
		c = 0;
	return c;
}

/* The copy's last pass holds writers back with the serial token: another
 * process's update transaction waits, until the holder lets go or, after
 * 1 s without a beat (10 ms if the holder is stopped), revokes the token
 * (lib/driver.c); a read-only one runs. */
static void test_hold(void **s)
{
	(void)s;
	pstm_region *r = make_source(test_shm_uri("copy"), 0, 4 << 20);
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	assert_pstm_ok(stm_serial_hold(r));
	pid_t pid = test_spawn(read_then_write, fd, 0);
	assert_int_equal(byte_within(fd[0], 5000), 'r');
	assert_int_equal(byte_within(fd[0], 5000), 'w');
	uint64_t held = 0;
	assert_int_equal(read(fd[0], &held, sizeof(held)), sizeof(held));
	/* held back until the revocation (1 s after it first waited: this
	 * holder is not stopped, it sleeps in poll) */
	assert_true(held >= 500000000ull);
	assert_int_equal(atomic_load(&r->rt->serial), 0); /* revoked */
	stm_serial_release(r); /* no longer ours: changes nothing */
	assert_int_equal(test_wait(pid), 0);
	close(fd[0]);
	close(fd[1]);
	assert_pstm_ok(pstm_close(r));
}

static int leftovers(const char *dir);

static int nothing(pstm_tx *tx, void *arg)
{
	(void)tx;
	(void)arg;
	return 0;
}

/* A word locked by a live transaction that does not finish (a stopped
 * process's, played here by a second handle of this one): the copy waits,
 * and gives up at its timeout leaving nothing; unlocked, it completes. */
static void test_timeout(void **s)
{
	(void)s;
	pstm_region *r = make_source(test_shm_uri("copy"), 0, 4 << 20), *h;
	pstm_off base = base_of(r);
	int err = 0;
	assert_pstm_ok(pstm_open(region_uri, &h));
	assert_pstm_ok(pstm_atomic(h, nothing, NULL)); /* h's slot */
	pstm_tx *t = txd_get(h, &err);
	assert_non_null(t);
	_Atomic uint64_t *o = region_orec(r, base + 7 * STRIDE);
	uint64_t was = atomic_load(o);
	atomic_store(o, orec_make_locked(was, t->slot));

	struct pstm_copy_opts opt = {.passes = 1, .timeout_ms = 200};
	char path[256];
	uint64_t t0 = test_now_ns();
	dst_uri = keep(dst_buf, test_shm_uri("copy"));
	assert_int_equal(pstm_copy(r, dst_uri, &opt, NULL), PSTM_EBUSY);
	assert_true(test_now_ns() - t0 < 5000000000ull);
	assert_false(access(test_path_of(dst_uri, path, sizeof(path)), F_OK) == 0);
	assert_int_equal(leftovers("/dev/shm"), 0); /* its temporary file went */
	atomic_store(o, was);
	assert_pstm_ok(pstm_copy(r, dst_uri, &opt, NULL));
	assert_copy(r, dst_uri, base, NULL);
	assert_pstm_ok(pstm_close(h));
	assert_pstm_ok(pstm_close(r));
}

/* A durable source copied to a relaxed and to a volatile file. */
static void test_durability(void **s)
{
	(void)s;
	pstm_region *r = make_source(test_file_uri("copy"), PSTM_DURABLE, 4 << 20);
	pstm_off base = base_of(r);
	for (int d = PSTM_VOLATILE; d <= PSTM_RELAXED; d++) {
		struct pstm_copy_opts o = {.durability = d};
		struct pstm_region_info di;
		dst_uri = keep(dst_buf, test_file_uri("copy"));
		assert_pstm_ok(pstm_copy(r, dst_uri, &o, NULL));
		assert_copy(r, dst_uri, base, &di);
		assert_int_equal(di.durability, d);
		assert_pstm_ok(pstm_unlink(dst_uri));
		dst_uri = NULL;
	}
	assert_pstm_ok(pstm_close(r));
}

static int fill_heap(pstm_tx *tx, void *arg)
{
	pstm_off *p = arg;
	*p = pstm_alloc(tx, 64);
	return 0;
}

static int alloc_big(pstm_tx *tx, void *arg)
{
	uint64_t *b = arg;
	b[1] = pstm_alloc(tx, b[0]);
	return 0;
}

/* --compact: as large as the heap's top (whole pages; a shm region: its
 * runtime, before the heap, keeps its size); full at once.  A larger
 * size: the same offsets, room to grow. */
static void compact_and_larger(const char *src, int durability, bool shm)
{
	pstm_region *r = make_source(src, durability, 32 << 20);
	pstm_off base = base_of(r);
	struct pstm_copy_opts o = {.flags = PSTM_COPY_COMPACT};
	struct pstm_copy_info ci;
	struct pstm_region_info si;
	pstm_region *c;
	pstm_off p;
	dst_uri = keep(dst_buf, shm ? test_shm_uri("copy") : test_file_uri("copy"));
	assert_pstm_ok(pstm_copy(r, dst_uri, &o, &ci));
	assert_pstm_ok(pstm_region_info(r, &si));
	uint64_t top = si.heap_off - HEAP_HDR_BYTES + ci.heap_bytes;
	uint64_t pages = (top + PAGE - 1) / PAGE * PAGE;
	if (!shm) {
		assert_int_equal(ci.size_bytes, pages);
	} else {
		/* the least size whose runtime is as large as the source's */
		struct superblock sb = r->sb;
		assert_true(ci.size_bytes >= pages && ci.size_bytes < si.size_bytes);
		assert_pstm_ok(superblock_reshape(&sb, sb.version, ci.size_bytes));
		assert_int_equal(sb.heap_off, r->sb.heap_off);
		assert_pstm_ok(superblock_reshape(&sb, sb.version, ci.size_bytes - PAGE));
		assert_true(sb.heap_off < r->sb.heap_off);
	}
	assert_copy(r, dst_uri, base, NULL);
	assert_pstm_ok(pstm_open(dst_uri, &c));
	int rc = 0;
	for (int i = 0; i < 1000000 && rc == 0; i++)
		rc = pstm_atomic(c, fill_heap, &p);
	assert_int_equal(rc, PSTM_EHEAPFULL);
	assert_pstm_ok(pstm_close(c));
	assert_pstm_ok(pstm_unlink(dst_uri));

	/* a copy larger than its source */
	o = (struct pstm_copy_opts){.size_bytes = 64 << 20};
	assert_pstm_ok(pstm_copy(r, dst_uri, &o, &ci));
	assert_int_equal(ci.size_bytes, 64 << 20);
	assert_copy(r, dst_uri, base, NULL);
	assert_pstm_ok(pstm_open(dst_uri, &c));
	uint64_t big[2] = {40 << 20, 0}; /* more than the whole source */
	assert_int_equal(pstm_atomic(r, alloc_big, big), PSTM_EHEAPFULL);
	assert_pstm_ok(pstm_atomic(c, alloc_big, big));
	assert_true(big[1] != 0);
	assert_pstm_ok(pstm_close(c));
	assert_pstm_ok(pstm_close(r));
}

static void test_compact_and_larger_file(void **s)
{
	(void)s;
	compact_and_larger(test_file_uri("copy"), PSTM_VOLATILE, false);
}

static void test_compact_and_larger_shm(void **s)
{
	(void)s;
	compact_and_larger(test_shm_uri("copy"), 0, true);
}

/* A small shm region (one conflict table entry a slot): a copy of
 * another size would move its heap, and is refused; and a copy of a
 * format 1 region is a format 1 region, its heap where the source's is. */
static void test_shm_size_and_format(void **s)
{
	(void)s;
	struct pstm_create_opts co = {.size_bytes = 4 << 20, .replace = 1};
	struct pstm_copy_opts o = {.size_bytes = 64 << 20};
	struct pstm_region_info si, di;
	struct pstm_copy_info ci;
	pstm_region *r, *c;
	region_uri = keep(region_buf, test_shm_uri("copy"));
	dst_uri = keep(dst_buf, test_shm_uri("copy"));
	assert_pstm_ok(pstm_create(region_uri, &co, &r));
	assert_int_equal(pstm_copy(r, dst_uri, &o, NULL), PSTM_EINVAL);
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(region_uri));

	setenv("PSTM_TEST_FORMAT", "1", 1);
	r = make_source(region_uri, 0, 8 << 20);
	unsetenv("PSTM_TEST_FORMAT");
	pstm_off base = base_of(r);
	assert_pstm_ok(pstm_region_info(r, &si));
	assert_int_equal(si.format_version, 1);
	o = (struct pstm_copy_opts){.flags = PSTM_COPY_COMPACT};
	assert_pstm_ok(pstm_copy(r, dst_uri, &o, &ci));
	assert_copy(r, dst_uri, base, &di);
	assert_int_equal(di.format_version, 1);
	assert_pstm_ok(pstm_open(dst_uri, &c));
	assert_pstm_ok(pstm_close(c));
	assert_pstm_ok(pstm_close(r));
}

/* temporary files a failed copy of this process left in @dir
 * (.pstm-new.<pid>.<uuid>, lib/region.c) */
static int leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char mine[64];
	int n = 0;
	assert_non_null(d);
	snprintf(mine, sizeof(mine), ".pstm-new.%d.", (int)getpid());
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, mine, strlen(mine));
	closedir(d);
	return n;
}

static int copy_in_tx(pstm_tx *tx, void *arg)
{
	return pstm_copy(pstm_tx_region(tx), arg, NULL, NULL);
}

/* Every refusal: its code, and nothing made. */
static void test_refusals(void **s)
{
	(void)s;
	pstm_region *r = make_source(test_shm_uri("copy"), 0, 8 << 20), *o;
	char path[256];
	int shm_before = leftovers("/dev/shm"), tmp_before = leftovers("/tmp");
	assert_int_equal(shm_before + tmp_before, 0);
	struct pstm_copy_opts small = {.size_bytes = 1 << 20}, bad = {.flags = 2};

	dst_uri = keep(dst_buf, test_shm_uri("copy"));
	assert_int_equal(pstm_copy(r, region_uri, NULL, NULL), PSTM_EEXIST);
	assert_int_equal(pstm_copy(NULL, dst_uri, NULL, NULL), PSTM_EINVAL);
	assert_int_equal(pstm_copy(r, NULL, NULL, NULL), PSTM_EINVAL);
	assert_int_equal(pstm_copy(r, dst_uri, &bad, NULL), PSTM_EINVAL);
	assert_int_equal(pstm_copy(r, test_file_uri("copy"), NULL, NULL), PSTM_EINVAL);
	assert_int_equal(pstm_copy(r, dst_uri, &small, NULL), PSTM_ETOOSMALL);
	struct pstm_copy_opts durable = {.durability = PSTM_DURABLE};
	assert_int_equal(pstm_copy(r, dst_uri, &durable, NULL), PSTM_EINVAL);
	assert_int_equal(pstm_atomic(r, copy_in_tx, (void *)dst_uri), PSTM_EINTX);
	assert_pstm_ok(pstm_open_opts(region_uri, PSTM_OPEN_OBSERVE, &o));
	assert_int_equal(pstm_copy(o, dst_uri, NULL, NULL), PSTM_EINVAL);
	assert_pstm_ok(pstm_close(o));
	assert_int_equal(pstm_copy(r, "/tmp/p12-no/such/dir/x.region", NULL, NULL) != 0, 1);
	assert_false(access(test_path_of(dst_uri, path, sizeof(path)), F_OK) == 0);
	assert_int_equal(leftovers("/dev/shm"), shm_before);
	assert_int_equal(leftovers("/tmp"), tmp_before);
	assert_pstm_ok(pstm_close(r));
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test_teardown(test_quiet, teardown),
	cmocka_unit_test_teardown(test_writers_shm, teardown),
	cmocka_unit_test_teardown(test_writers_durable, teardown),
	cmocka_unit_test_teardown(test_writers_relaxed, teardown),
	cmocka_unit_test_teardown(test_growing_heap, teardown),
	cmocka_unit_test_teardown(test_hold, teardown),
	cmocka_unit_test_teardown(test_timeout, teardown),
	cmocka_unit_test_teardown(test_durability, teardown),
	cmocka_unit_test_teardown(test_compact_and_larger_file, teardown),
	cmocka_unit_test_teardown(test_compact_and_larger_shm, teardown),
	cmocka_unit_test_teardown(test_shm_size_and_format, teardown),
	cmocka_unit_test_teardown(test_refusals, teardown),
};

/* ---------------------------------------------- helpers for tests/cli.t */

static int cli_writer(const char *uri)
{
	pstm_region *r;
	struct move m = {0, 0, 0, 0};
	uint64_t seed = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull | 1, n = 0;
	struct pollfd p = {.fd = 0, .events = POLLIN};
	if (pstm_open(uri, &r) != 0 || pstm_atomic(r, ledger_setup, &m.base) != 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		m.from = rnd(&seed) % ACCOUNTS;
		m.to = rnd(&seed) % ACCOUNTS;
		m.amount = rnd(&seed) % 100;
		if (pstm_atomic(r, transfer, &m) != 0)
			return 2;
		if (++n % 64 || poll(&p, 1, 0) == 0)
			continue;
		/* 'p': pause between transactions until the next byte; EOF:
		 * stop */
		char c;
		if (read(0, &c, 1) != 1)
			break;
		printf("paused\n");
		fflush(stdout);
		if (read(0, &c, 1) != 1)
			break;
	}
	printf("%llu\n", (unsigned long long)n);
	return pstm_close(r) ? 3 : 0;
}

static int cli_sum(const char *uri)
{
	pstm_region *r;
	struct sum s = {0, 0};
	if (pstm_open(uri, &r) != 0 || pstm_atomic_ro(r, sum_all, &s) != 0)
		return 1;
	printf("%llu %d\n", (unsigned long long)s.total, ACCOUNTS);
	return pstm_close(r) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--writer"))
		return cli_writer(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "--sum"))
		return cli_sum(argv[2]);
	sh = test_map_shared(NULL, sizeof(*sh));
	if (!sh)
		return 1;
	TEST_OUTPUT();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
