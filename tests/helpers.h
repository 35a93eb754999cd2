/*
 * helpers.h - shared bits of the cmocka test programs: unique region
 * names, forking workers, waiting for them.
 */
#ifndef PSTM_TEST_HELPERS_H
#define PSTM_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
#define TEST_MAIN(tests)                                                      \
	int main(void)                                                        \
	{                                                                     \
		cmocka_set_message_output(CM_OUTPUT_TAP);                     \
		return cmocka_run_group_tests(tests, NULL, NULL);             \
	}

uint64_t test_now_ns(void);

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

#endif
