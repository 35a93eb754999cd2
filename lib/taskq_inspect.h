/*
 * taskq_inspect.h - what pstm info shows of the region's task queue, read
 * from a read-only mapping (lib/taskq_inspect.c): per task type the tasks
 * pending, executed and failed and the attempts rolled back.
 */
#ifndef PSTM_TASKQ_INSPECT_H
#define PSTM_TASKQ_INSPECT_H

#include <stdbool.h>
#include <stdint.h>

#include "pstm.h"
#include "util.h"

struct pstm_region;

struct taskq_inspect_type {
	char name[PSTM_TASK_NAME_MAX + 1];
	uint64_t pending, executed, failed, aborts;
};

struct taskq_inspect {
	bool present;        /* the region has a task queue */
	bool valid;          /* ... whose header is sound and complete */
	uint32_t ntypes;
	struct taskq_inspect_type types[PSTM_TASK_TYPES_MAX];
	uint64_t pending;    /* the sum over the types */
	uint64_t failed_count; /* tasks on the failed list */
	int first_err;       /* the oldest one's error */
};

/*
 * Read the queue of @r, mapped read-only with a sound heap header (see
 * check_heap_header_valid).  Word by word, while other processes may
 * write: each counter is exact, their sums a moment's.
 */
HIDDEN void taskq_inspect(struct pstm_region *r, struct taskq_inspect *out);

#endif /* PSTM_TASKQ_INSPECT_H */
