/*
 * test_abi.c - public structs that grow (the ABI policy in pstm.h,
 * "Structs that grow"): a program built against the first release's
 * header, with its smaller structs, calls the old symbols and the sized
 * ones, and the library reads and writes nothing beyond the size it was
 * told: info and stats structs sit before guard bytes that must come back
 * untouched, options structs at the very end of a readable page.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"

#define MiB (1ull << 20)
#define GUARD 64
#define POISON 0xa5

/*
 * The first release's structs (abi/libpstm.abi), copied here as a
 * program built with that header saw them.  pstm_region_info then ended
 * at created_ns: read_only came later.
 */
struct v0_region_info {
	uint64_t size_bytes;
	uint64_t heap_off, heap_bytes;
	int durability;
	uint32_t flush_ms;
	int is_pmem;
	uint32_t max_procs, max_threads, log_bytes, orecs_log2;
	uint32_t format_version;
	uint8_t uuid[16];
	uint64_t created_ns;
};
_Static_assert(sizeof(struct v0_region_info) == 80, "v0 region info");
_Static_assert(sizeof(struct pstm_region_info) > 80, "it grew since");

struct v0_create_opts {
	uint64_t size_bytes;
	mode_t mode;
	int durability;
	uint32_t max_procs, max_threads, log_bytes, orecs_log2;
	int replace;
	uint32_t flush_ms;
};
_Static_assert(sizeof(struct v0_create_opts) == 40, "v0 create opts");

/* a struct of @n bytes followed by GUARD poisoned bytes */
struct guarded {
	unsigned char b[256 + GUARD];
};

static void poison(struct guarded *g)
{
	memset(g, POISON, sizeof(*g));
}

/* the GUARD bytes after the first @n are still poison */
static void assert_guard(const struct guarded *g, size_t n)
{
	for (size_t i = n; i < n + GUARD; i++)
		if (g->b[i] != POISON) {
			print_error("byte %zu past a %zu-byte struct written\n",
				    i - n, n);
			fail();
		}
}

/* @n bytes at the end of a page whose next page is PROT_NONE: reading
 * one byte more is a SIGSEGV */
static void *at_page_end(size_t n, void **map)
{
	long pg = sysconf(_SC_PAGESIZE);
	unsigned char *p = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	assert_int_equal(mprotect(p + pg, (size_t)pg, PROT_NONE), 0);
	*map = p;
	memset(p + pg - n, 0, n);
	return p + pg - n;
}

static void unmap_page(void *map)
{
	munmap(map, 2 * (size_t)sysconf(_SC_PAGESIZE));
}

/* ------------------------------------------------ info and stats out */

static void test_region_info_sizes(void **state)
{
	(void)state;
	const char *u = test_shm_uri("info");
	struct pstm_create_opts o = {.size_bytes = 2 * MiB};
	pstm_region *r;
	struct guarded g;

	pstm_unlink(u);
	assert_pstm_ok(pstm_create(u, &o, &r));

	/* the old symbol: a v0 binary's 80 bytes, no more */
	poison(&g);
	assert_pstm_ok((pstm_region_info)(r, (struct pstm_region_info *)&g));
	assert_guard(&g, sizeof(struct v0_region_info));
	struct v0_region_info v0;
	memcpy(&v0, &g, sizeof(v0));
	assert_int_equal(v0.size_bytes, 2 * MiB);
	assert_int_equal(v0.max_procs > 0, 1);

	/* the sized call with the v0 size: the same */
	poison(&g);
	assert_pstm_ok(pstm_region_info_sz(r, (struct pstm_region_info *)&g,
					   sizeof(v0)));
	assert_guard(&g, sizeof(v0));
	assert_memory_equal(&g, &v0, sizeof(v0));

	/* this header's size: read_only is written, nothing after it */
	poison(&g);
	assert_pstm_ok(pstm_region_info_sz(r, (struct pstm_region_info *)&g,
					   sizeof(struct pstm_region_info)));
	assert_guard(&g, sizeof(struct pstm_region_info));
	struct pstm_region_info now;
	memcpy(&now, &g, sizeof(now));
	assert_int_equal(now.read_only, 0);
	assert_memory_equal(&now, &v0, sizeof(v0));

	/* a newer header's larger struct: the unknown tail zeroed, the
	 * guard after it untouched */
	size_t big = sizeof(struct pstm_region_info) + 24;
	poison(&g);
	assert_pstm_ok(pstm_region_info_sz(r, (struct pstm_region_info *)&g, big));
	assert_guard(&g, big);
	for (size_t i = sizeof(struct pstm_region_info); i < big; i++)
		assert_int_equal(g.b[i], 0);

	/* the macro passes this header's size */
	assert_pstm_ok(pstm_region_info(r, &now));
	assert_int_equal(now.size_bytes, 2 * MiB);

	/* sizes no release had: refused, nothing written */
	poison(&g);
	assert_int_equal(pstm_region_info_sz(r, (struct pstm_region_info *)&g,
					     sizeof(v0) - 8), PSTM_EINVAL);
	assert_int_equal(pstm_region_info_sz(r, (struct pstm_region_info *)&g,
					     0), PSTM_EINVAL);
	assert_int_equal(pstm_region_info_sz(r, (struct pstm_region_info *)&g,
					     8192), PSTM_EINVAL);
	assert_guard(&g, 0);
	assert_int_equal(pstm_region_info_sz(r, NULL, sizeof(now)), PSTM_EINVAL);

	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(u));
}

static int bump(pstm_tx *tx, void *arg)
{
	pstm_off root = pstm_root(tx, 8);
	pstm_store64(tx, root, pstm_load64(tx, root) + 1);
	(void)arg;
	return 0;
}

static void test_stats_sizes(void **state)
{
	(void)state;
	const char *u = test_shm_uri("stats");
	struct pstm_create_opts o = {.size_bytes = 2 * MiB};
	pstm_region *r;
	struct guarded g;

	pstm_unlink(u);
	assert_pstm_ok(pstm_create(u, &o, &r));
	for (int i = 0; i < 3; i++)
		assert_pstm_ok(pstm_atomic(r, bump, NULL));

	poison(&g);
	assert_pstm_ok((pstm_stats_get)(r, (struct pstm_stats *)&g));
	assert_guard(&g, 64);
	struct pstm_stats st;
	memcpy(&st, &g, sizeof(st));
	assert_true(st.commits >= 3);

	size_t big = sizeof(struct pstm_stats) + 16;
	poison(&g);
	assert_pstm_ok(pstm_stats_get_sz(r, (struct pstm_stats *)&g, big));
	assert_guard(&g, big);
	for (size_t i = sizeof(struct pstm_stats); i < big; i++)
		assert_int_equal(g.b[i], 0);

	poison(&g);
	assert_int_equal(pstm_stats_get_sz(r, (struct pstm_stats *)&g, 56),
			 PSTM_EINVAL);
	assert_guard(&g, 0);
	assert_pstm_ok(pstm_stats_get(r, &st));
	assert_true(st.commits >= 3);

	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(u));
}

/* ------------------------------------------------------- options in */

static void test_create_opts_sizes(void **state)
{
	(void)state;
	const char *u = test_shm_uri("create");
	pstm_region *r;
	struct pstm_region_info info;
	void *map;

	/* a v0 struct at a page's end: the old symbol reads it and no byte
	 * beyond (one more would fault) */
	pstm_unlink(u);
	struct v0_create_opts *v0 = at_page_end(sizeof(*v0), &map);
	v0->size_bytes = 3 * MiB;
	v0->max_procs = 7;
	assert_pstm_ok((pstm_create)(u, (const struct pstm_create_opts *)v0, &r));
	assert_pstm_ok(pstm_region_info(r, &info));
	assert_int_equal(info.size_bytes, 3 * MiB);
	assert_int_equal(info.max_procs, 7);
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(u));

	/* the sized call, the same struct */
	assert_pstm_ok(pstm_create_sz(u, (const struct pstm_create_opts *)v0,
				      sizeof(*v0), &r));
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(u));
	unmap_page(map);

	/* a newer header's larger struct: a zero tail is its defaults, a
	 * non-zero one asks for what this library cannot do */
	struct {
		struct pstm_create_opts o;
		uint64_t newer[3];
	} big;
	memset(&big, 0, sizeof(big));
	big.o.size_bytes = 2 * MiB;
	assert_pstm_ok(pstm_create_sz(u, &big.o, sizeof(big), &r));
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(u));
	big.newer[2] = 1;
	assert_int_equal(pstm_create_sz(u, &big.o, sizeof(big), &r), PSTM_EINVAL);
	assert_null(r);
	assert_int_equal(pstm_unlink(u), PSTM_ENOENT);

	/* too small for any release, or absurd: refused, nothing created */
	assert_int_equal(pstm_create_sz(u, &big.o, 32, &r), PSTM_EINVAL);
	assert_int_equal(pstm_create_sz(u, &big.o, 1u << 20, &r), PSTM_EINVAL);
	assert_int_equal(pstm_unlink(u), PSTM_ENOENT);

	/* NULL options: the size does not matter, through the macro too */
	assert_pstm_ok(pstm_create_sz(u, NULL, 0, &r));
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(u));
	assert_pstm_ok(pstm_create(u, NULL, &r));
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(u));
}

static void test_copy_sizes(void **state)
{
	(void)state;
	const char *u = test_shm_uri("copysrc"), *d = test_shm_uri("copydst");
	struct pstm_create_opts o = {.size_bytes = 2 * MiB};
	pstm_region *r;
	struct guarded g;
	void *map;

	pstm_unlink(u);
	pstm_unlink(d);
	assert_pstm_ok(pstm_create(u, &o, &r));
	assert_pstm_ok(pstm_atomic(r, bump, NULL));

	/* the old symbol: options read up to their end, info written up
	 * to its end */
	struct pstm_copy_opts *co = at_page_end(sizeof(*co), &map);
	co->passes = 2;
	poison(&g);
	assert_pstm_ok((pstm_copy)(r, d, co, (struct pstm_copy_info *)&g));
	assert_guard(&g, sizeof(struct pstm_copy_info));
	struct pstm_copy_info ci;
	memcpy(&ci, &g, sizeof(ci));
	assert_int_equal(ci.size_bytes, 2 * MiB);
	assert_pstm_ok(pstm_unlink(d));

	/* a larger info: tail zeroed; a larger options struct with a
	 * non-zero tail: refused before anything is written */
	size_t big = sizeof(struct pstm_copy_info) + 8;
	poison(&g);
	assert_pstm_ok(pstm_copy_sz(r, d, co, sizeof(*co),
				    (struct pstm_copy_info *)&g, big));
	assert_guard(&g, big);
	for (size_t i = sizeof(struct pstm_copy_info); i < big; i++)
		assert_int_equal(g.b[i], 0);
	assert_pstm_ok(pstm_unlink(d));
	unmap_page(map);

	struct {
		struct pstm_copy_opts o;
		uint32_t newer[2];
	} bo = {.newer = {0, 9}};
	assert_int_equal(pstm_copy_sz(r, d, &bo.o, sizeof(bo), NULL, 0),
			 PSTM_EINVAL);
	poison(&g);
	assert_int_equal(pstm_copy_sz(r, d, NULL, 0, (struct pstm_copy_info *)&g,
				      16), PSTM_EINVAL);
	assert_guard(&g, 0);
	assert_int_equal(pstm_unlink(d), PSTM_ENOENT);
	bo.newer[1] = 0;
	assert_pstm_ok(pstm_copy_sz(r, d, &bo.o, sizeof(bo), NULL, 0));
	assert_pstm_ok(pstm_unlink(d));

	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(u));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_region_info_sizes),
		cmocka_unit_test(test_stats_sizes),
		cmocka_unit_test(test_create_opts_sizes),
		cmocka_unit_test(test_copy_sizes),
	};
	TEST_OUTPUT();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
