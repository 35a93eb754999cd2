/*
 * test_powerfail.c - simulated power failures on durable file regions.
 *
 * A child runs bank transfers on a durable region with the power-failure
 * simulator armed (PSTM_TEST_POWERFAIL, lib/powerfail.c): at a random
 * flush or drain it writes a crash image (what was persisted, plus a
 * random half of what was written but not yet persisted) and dies on the
 * spot.  The parent opens each image as a fresh boot would (no runtime
 * segment), lets recovery replay committed logs, and checks: the bank
 * total is exact, every transfer the child saw acknowledged is there and
 * at most the one in flight besides, and pstm check finds no damage.
 * Both persistence paths are covered: flush + drain (PMEM_IS_PMEM_FORCE=1,
 * as on real pmem; libpmem reads it at start-up, so that half runs in a
 * re-executed child) and msync.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "helpers.h"

enum { ACCOUNTS = 32 };

struct shared {
	_Atomic uint64_t acked;   /* transfers the child saw committed */
};

static struct shared *SH;
/* Every transfer of the child is "counted" (helpers.h): the counter tells
 * whether the transfer in flight at the failure survived. */
static struct test_bank BANK = {0, ACCOUNTS};

/* The workload in the child: transfers until the simulated power fails
 * (the library _exit(0)s inside a persistence call). */
static int child_run(const char *work, const char *image, unsigned seed)
{
	pstm_region *r;
	test_powerfail_arm(image, seed, 300);
	if (pstm_open(work, &r))
		return 5;
	if (pstm_atomic(r, test_bank_setup, &BANK))
		return 6;
	uint64_t s = 0x9E3779B97F4A7C15ull * (seed + 1);
	for (int i = 0; i < 100000; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		struct test_xfer x = {&BANK, s % ACCOUNTS, (s >> 20) % ACCOUNTS,
				      (s >> 40) % 300, 1};
		if (pstm_atomic(r, test_bank_transfer, &x))
			return 7;
		atomic_fetch_add(&SH->acked, 1);
	}
	return 9; /* the power never failed */
}

static struct test_powerfail PF;

static void one_failure(unsigned seed, int pmem)
{
	atomic_store(&SH->acked, 0);
	test_powerfail_image(&PF, seed, pmem);

	/* a fresh boot on the crash image: recovery replays committed logs */
	pstm_region *r;
	struct test_bank_state st = {.bank = &BANK};
	assert_pstm_ok(pstm_open(PF.image, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_setup, &BANK));
	assert_pstm_ok(pstm_atomic(r, test_bank_read, &st));
	pstm_close(r);
	uint64_t acked = atomic_load(&SH->acked);
	if (st.total != ACCOUNTS * 1000 || st.count < acked || st.count > acked + 1)
		print_error("seed %u %s: total %llu, count %llu, acked %llu\n", seed,
			    pmem ? "pmem" : "msync", (unsigned long long)st.total,
			    (unsigned long long)st.count, (unsigned long long)acked);
	assert_int_equal(st.total, ACCOUNTS * 1000);
	assert_true(st.count >= acked && st.count <= acked + 1);
	test_powerfail_image_done(&PF);
}

static void run_failures(int pmem)
{
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 1 << 20, .replace = 1};
	test_powerfail_files(&PF, "pf", pmem);
	SH = test_map_shared(PF.shared, sizeof(*SH));
	assert_non_null(SH);
	assert_pstm_ok(pstm_create(PF.base, &o, &r));
	assert_pstm_ok(pstm_atomic(r, test_bank_setup, &BANK));
	pstm_close(r);
	int n = test_env_int("PSTM_POWERFAIL_IMAGES", 500) / 2;
	for (int i = 0; i < n; i++)
		one_failure((unsigned)(i * 2 + pmem + 1), pmem);
	print_message("# %d simulated power failures (%s), all recovered\n", n,
		      pmem ? "flush+drain, PMEM_IS_PMEM_FORCE=1" : "msync");
	munmap(SH, sizeof(*SH));
	test_powerfail_remove(&PF);
}

static void test_powerfail_pmem(void **s) { (void)s; run_failures(1); }
static void test_powerfail_msync(void **s) { (void)s; run_failures(0); }

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "--child") == 0) {
		SH = test_map_shared(argv[5], sizeof(*SH));
		return SH ? child_run(argv[2], argv[3], (unsigned)atoi(argv[4])) : 10;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_powerfail_pmem),
		cmocka_unit_test(test_powerfail_msync),
	};
	TEST_OUTPUT();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
