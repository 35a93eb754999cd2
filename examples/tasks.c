/*
 * tasks.c - the region's task queue from the shell: run it in several
 * terminals (or kill one with ^C or kill -9 and start it again) and the
 * tasks are shared between them and each runs exactly once.
 *
 *   tasks add N [URI]    enqueue one "split" task for the range [0, N)
 *   tasks run [THREADS] [URI]
 *                        run the queue until it is empty in every
 *                        process, then print the sum of the squares of
 *                        [0, N) that the tasks computed
 *
 * "split" halves its range into two "split" tasks until a range is at
 * most 1000 long; then it adds the squares of its numbers to the total
 * in the root object.  URI defaults to shm:pstm-tasks (made by add when
 * missing).  `pstm queue URI` shows what is pending.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pstm.h"

struct range {
	uint64_t lo, hi;
};

/* root object: the total, then how many numbers went into it */
static int split(pstm_tx *tx, const void *arg, size_t len)
{
	struct range r;
	if (len != sizeof(r))
		return 1; /* a task we did not write: it goes to the failed list */
	memcpy(&r, arg, sizeof(r));
	if (r.hi - r.lo > 1000) {
		uint64_t mid = r.lo + (r.hi - r.lo) / 2;
		struct range a = {r.lo, mid}, b = {mid, r.hi};
		int rc = pstm_tx_enqueue(tx, "split", &a, sizeof(a));
		return rc ? rc : pstm_tx_enqueue(tx, "split", &b, sizeof(b));
	}
	uint64_t sum = 0;
	for (uint64_t i = r.lo; i < r.hi; i++)
		sum += i * i;
	pstm_off root = pstm_root(tx, 16);
	pstm_store64(tx, root, pstm_load64(tx, root) + sum);
	pstm_store64(tx, root + 8, pstm_load64(tx, root + 8) + (r.hi - r.lo));
	return 0;
}

static int read_root(pstm_tx *tx, void *arg)
{
	uint64_t *out = arg;
	pstm_off root = pstm_root(tx, 16);
	out[0] = pstm_load64(tx, root);
	out[1] = pstm_load64(tx, root + 8);
	return 0;
}

int main(int argc, char **argv)
{
	const char *uri = "shm:pstm-tasks";
	pstm_region *r;
	int rc;

	if (argc < 2 || (strcmp(argv[1], "add") && strcmp(argv[1], "run")) ||
	    (!strcmp(argv[1], "add") && argc < 3)) {
		fprintf(stderr, "usage: tasks add N [URI] | tasks run [THREADS] [URI]\n");
		return 2;
	}
	if (argc > 3)
		uri = argv[3];
	rc = pstm_open(uri, &r);
	if (rc == PSTM_ENOENT && !strcmp(argv[1], "add"))
		rc = pstm_create(uri, NULL, &r);
	if (!rc)
		rc = pstm_register(r, "split", split);
	if (rc) {
		fprintf(stderr, "tasks: %s: %s\n", uri, pstm_strerror(rc));
		return 1;
	}
	if (!strcmp(argv[1], "add")) {
		struct range all = {0, strtoull(argv[2], NULL, 0)};
		rc = pstm_enqueue(r, "split", &all, sizeof(all));
	} else {
		uint64_t res[2];
		rc = pstm_queue_run(r, argc > 2 ? atoi(argv[2]) : 2);
		if (!rc)
			rc = pstm_atomic_ro(r, read_root, res);
		if (!rc)
			printf("%llu numbers, sum of squares %llu (mod 2^64)\n",
			       (unsigned long long)res[1], (unsigned long long)res[0]);
	}
	if (rc)
		fprintf(stderr, "tasks: %s\n", pstm_strerror(rc));
	pstm_close(r);
	return rc != 0;
}
