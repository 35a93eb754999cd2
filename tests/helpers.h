/*
 * helpers.h - shared bits of the cmocka test programs: unique region
 * names, forking workers and waiting for them, memory shared with
 * children, the crash tests' bank, power-failure campaigns.
 */
#ifndef PSTM_TEST_HELPERS_H
#define PSTM_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

#include <cmocka.h>

#include "pstm.h"

/* "shm:pstm-test-<prog>-<pid>-<n>" (unique per call) */
const char *test_shm_uri(const char *tag);
/* "/tmp/pstm-test-<prog>-<pid>-<n>.region" */
const char *test_file_uri(const char *tag);

/* fork; the child runs fn(arg, i) and _exit()s with its return value */
pid_t test_spawn(int (*fn)(void *arg, int i), void *arg, int i);
/* wait for pid; returns its exit status, or 128+signal */
int test_wait(pid_t pid);
/* fork n children running fn(arg, 0) .. fn(arg, n - 1); each must exit 0 */
void test_run_procs(int n, int (*fn)(void *arg, int i), void *arg);
/* fork victim(arg, 0), which must die of SIGKILL (at its crash point),
 * and survivors running survivor(arg, 1) .. survivor(arg, n) beside it,
 * which must each exit 0 */
void test_run_victim(int (*victim)(void *arg, int i),
		     int (*survivor)(void *arg, int i), void *arg, int n);

/* the environment variable name as a number, or dflt where it is unset
 * (PSTM_KILL_ROUNDS, PSTM_POWERFAIL_IMAGES: make torture raises them) */
int test_env_int(const char *name, int dflt);
/* this program's path, to re-execute it */
const char *test_self(void);
/* size bytes shared with children: in the file path, so that a
 * re-executed child can map them too, or anonymous if path is NULL;
 * NULL if that fails */
void *test_map_shared(const char *path, size_t size);
/* the file behind @uri into @out: /dev/shm/NAME for "shm:NAME", else the
 * URI itself (asserts it fits) */
const char *test_path_of(const char *uri, char *out, size_t n);
/* copy the file @from to @to as cp does: @to is truncated and rewritten
 * in place if it exists, a new file otherwise */
void test_copy_file(const char *from, const char *to);
/* region_check finds no damage in uri (the findings printed if it does) */
void test_assert_clean(const char *uri);

/* assert a pstm call returned 0, printing pstm_strerror otherwise */
#define assert_pstm_ok(expr)                                                  \
	do {                                                                  \
		int rc_ = (expr);                                             \
		if (rc_ != 0)                                                 \
			print_error("%s -> %d (%s)\n", #expr, rc_,            \
				    pstm_strerror(rc_));                      \
		assert_int_equal(rc_, 0);                                     \
	} while (0)

/* run the group with TAP output */
/* TAP output; PSTM_TEST_ONLY=PATTERN runs only the tests it matches
 * (cmocka's filter: * and ? wildcards), for looping one test. */
#define TEST_OUTPUT()                                                         \
	do {                                                                  \
		cmocka_set_message_output(CM_OUTPUT_TAP);                     \
		if (getenv("PSTM_TEST_ONLY"))                                 \
			cmocka_set_test_filter(getenv("PSTM_TEST_ONLY"));     \
	} while (0)

#define TEST_MAIN(tests)                                                      \
	int main(void)                                                        \
	{                                                                     \
		TEST_OUTPUT();                                                \
		return cmocka_run_group_tests(tests, NULL, NULL);             \
	}

uint64_t test_now_ns(void);

/*
 * In a child: open uri, run fn(arg) once (claiming the thread's slot),
 * then make the whole mapping PROT_READ and run it n more times, with
 * pstm_atomic_ro if ro, else pstm_atomic: any store to the region (data;
 * orecs, clock, slot, statistics of a shm region) is a SIGSEGV.  *st gets
 * the statistics after.  0, or the number of the step that failed.
 */
int test_ro_mapping_run(const char *uri, pstm_fn fn, void *arg, int n,
			int ro, struct pstm_stats *st);

/*
 * The crash tests' bank: n accounts of 1000 in an array reached through
 * the root object, followed by one word counting the commits of "counted"
 * transfers, so a test can tell whether an interrupted one took effect.
 */
struct test_bank {
	pstm_off base;   /* filled by test_bank_setup */
	uint64_t n;      /* accounts */
};
struct test_xfer {
	const struct test_bank *bank;
	uint64_t from, to, amount;
	int counted;     /* also bump the commit counter */
};
struct test_bank_state {
	const struct test_bank *bank; /* set by the caller */
	uint64_t total, count;        /* filled by test_bank_read */
};
int test_bank_setup(pstm_tx *tx, void *bank);        /* struct test_bank */
int test_bank_transfer(pstm_tx *tx, void *xfer);     /* struct test_xfer */
int test_bank_read(pstm_tx *tx, void *state);        /* struct test_bank_state */

/*
 * A power-failure campaign: a child runs on a copy (work) of a region set
 * up once (base) with the simulator armed until the power fails, leaving
 * a crash image (image) that the parent opens as after a reboot.  The
 * child is this program re-executed as
 *   SELF --child WORK IMAGE SEED SHARED
 * which its main() hands to its workload (with test_powerfail_arm); the
 * pmem half needs the re-execution, as libpmem reads PMEM_IS_PMEM_FORCE
 * when it starts.  SHARED is a file for test_map_shared.
 */
struct test_powerfail {
	char base[128], work[128], image[128], shared[128];
};
/* /dev/shm/pstm-test-TAG-<pid>-<pmem>.{base,work,image}, ...-<pid>.shared */
void test_powerfail_files(struct test_powerfail *pf, const char *tag, int pmem);
/* in the child: at each flush or drain, the power fails with chance 1/one_in */
void test_powerfail_arm(const char *image, unsigned seed, unsigned one_in);
/* copy base to work and run the child (PMEM_IS_PMEM_FORCE=1 if pmem)
 * until its power fails: it must exit 0, leaving the image to open */
void test_powerfail_image(const struct test_powerfail *pf, unsigned seed, int pmem);
/* after the test's own checks: no damage in the image; remove it */
void test_powerfail_image_done(const struct test_powerfail *pf);
/* remove base, work and the shared file */
void test_powerfail_remove(const struct test_powerfail *pf);

#endif
