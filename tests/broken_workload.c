/*
 * broken_workload.c - pstm-crashtest workloads that are wrong on purpose,
 * so that tests/crashtest.t can see the tool catch them (exit 1).  Built
 * by the test with cc -shared.  PSTM_CT_BROKEN picks the fault:
 *   check (default)  the invariant never holds
 *   step             every step after the 100th fails (returns 7)
 * Built with -DBROKEN_SIZE=N it says its struct is N bytes
 * (pstm_crashtest_workload_size), and the 16 bytes after the struct
 * hold a non-zero byte at offset 8: a field of a newer header.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "pstm_crashtest.h"

static int step(pstm_tx *tx, pstm_off s, uint64_t rnd)
{
	uint64_t n = pstm_load64(tx, s);
	const char *mode = getenv("PSTM_CT_BROKEN");
	(void)rnd;
	if (mode && strcmp(mode, "step") == 0 && n >= 100)
		return 7;
	pstm_store64(tx, s, n + 1);
	return 0;
}

static int check(pstm_tx *tx, pstm_off s, char *why, size_t whylen)
{
	const char *mode = getenv("PSTM_CT_BROKEN");
	if (mode && strcmp(mode, "step") == 0)
		return 0;
	snprintf(why, whylen, "deliberately broken (steps so far: %llu)",
		 (unsigned long long)pstm_load64(tx, s));
	return 1;
}

static const struct {
	struct pstm_crashtest_workload w;
	unsigned char newer[16];
} broken = {
	.w = {
		.name = "broken",
		.state_bytes = 8,
		.step = step,
		.check = check,
	},
	.newer = {[8] = 1},
};

#ifdef BROKEN_SIZE
const size_t pstm_crashtest_workload_size = BROKEN_SIZE;
#endif

const struct pstm_crashtest_workload *pstm_crashtest_workload(void)
{
	return &broken.w;
}
