/*
 * crash_workload.c - an example workload for pstm-crashtest: a linked
 * stack of nodes made with pstm_alloc and released with pstm_free, with
 * its length and the sum of its values kept beside it.
 *
 *   make build/examples/crash_workload.so
 *   build/pstm-crashtest --workload build/examples/crash_workload.so shm:ct
 *
 * A step pushes a node or pops one (the stack stays under MAX_NODES).  The
 * invariant: walking the list from the head meets exactly `count` nodes
 * whose values add up to `sum`.  A crash that left a push or a pop half
 * done (head moved but count not, a node linked twice, a freed node still
 * linked) breaks it.  Build your own the same way (include/pstm_crashtest.h).
 */
#include <stdio.h>

#include "pstm_crashtest.h"

enum { MAX_NODES = 48 };

/* The state object (offsets from the state's start). */
enum { HEAD = 0, COUNT = 8, SUM = 16, STATE_BYTES = 24 };
/* A node: {next, value}. */
enum { NEXT = 0, VALUE = 8, NODE_BYTES = 16 };

static int step(pstm_tx *tx, pstm_off s, uint64_t rnd)
{
	uint64_t count = pstm_load64(tx, s + COUNT);
	pstm_off head = pstm_load64(tx, s + HEAD);
	int push = count == 0 || (count < MAX_NODES && (rnd & 1));

	if (push) {
		uint64_t v = (rnd >> 1) % 1000;
		pstm_off n = pstm_alloc(tx, NODE_BYTES);
		pstm_store64(tx, n + NEXT, head);
		pstm_store64(tx, n + VALUE, v);
		pstm_store64(tx, s + HEAD, n);
		pstm_store64(tx, s + COUNT, count + 1);
		pstm_store64(tx, s + SUM, pstm_load64(tx, s + SUM) + v);
	} else {
		pstm_store64(tx, s + HEAD, pstm_load64(tx, head + NEXT));
		pstm_store64(tx, s + COUNT, count - 1);
		pstm_store64(tx, s + SUM,
			     pstm_load64(tx, s + SUM) - pstm_load64(tx, head + VALUE));
		pstm_free(tx, head);
	}
	return 0;
}

static int check(pstm_tx *tx, pstm_off s, char *why, size_t whylen)
{
	uint64_t count = pstm_load64(tx, s + COUNT), sum = pstm_load64(tx, s + SUM);
	uint64_t n = 0, total = 0;

	/* a cycle would make the walk endless: stop past count */
	for (pstm_off p = pstm_load64(tx, s + HEAD); p; p = pstm_load64(tx, p + NEXT)) {
		if (++n > count) {
			snprintf(why, whylen, "list longer than its count %llu",
				 (unsigned long long)count);
			return 1;
		}
		total += pstm_load64(tx, p + VALUE);
	}
	if (n != count || total != sum) {
		snprintf(why, whylen, "list has %llu nodes summing to %llu; "
			 "count says %llu, sum says %llu", (unsigned long long)n,
			 (unsigned long long)total, (unsigned long long)count,
			 (unsigned long long)sum);
		return 1;
	}
	return 0;
}

static const struct pstm_crashtest_workload workload = {
	.name = "stack",
	.state_bytes = STATE_BYTES,
	.init = NULL, /* the zeroed state is an empty stack */
	.step = step,
	.check = check,
};

/* the size of the struct this file was built with (pstm_crashtest.h) */
PSTM_CRASHTEST_WORKLOAD_SIZE;

const struct pstm_crashtest_workload *pstm_crashtest_workload(void)
{
	return &workload;
}
