/*
 * taskq.h - the region's task queue: the registry of task types and
 * making the queue (lib/taskq.c), the workers' transactions
 * (lib/taskq_worker.c) and threads (lib/taskrun.c), and what pstm queue
 * lists, retries and drops (lib/taskq.c).
 */
#ifndef PSTM_TASKQ_H
#define PSTM_TASKQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pstm.h"
#include "util.h"

/* Where the queue's blocks are; fixed once the queue is ready. */
struct taskq_geo {
	uint64_t hdr, lanes, stats;
	uint32_t nlanes;  /* slot lanes, then the shared lane */
};

struct taskq_state; /* per handle: registry, geometry (r->taskq) */

/* This handle's state, made on first use; NULL if out of memory. */
HIDDEN struct taskq_state *taskq_state(pstm_region *r);
/* Free it (pstm_close). */
HIDDEN void taskq_fini(pstm_region *r);

/*
 * Outside a transaction: the queue's geometry, making the queue first
 * if @create (else PSTM_ENOENT when the region has none yet) and
 * finishing its staged initialisation if a process died in it.
 */
HIDDEN int taskq_open(pstm_region *r, bool create, struct taskq_geo *out);

/* Types this process has a function for (bit t: type t). */
HIDDEN uint64_t taskq_mask(struct taskq_state *s);

/* One pstm_queue_run per handle at a time: PSTM_EBUSY, PSTM_ENOMEM or
 * 0; taskq_run_end when it returns. */
HIDDEN int taskq_run_begin(pstm_region *r);
HIDDEN void taskq_run_end(pstm_region *r);

/* ------------------------------------------------------------ workers */

#define TASKQ_TAGS 8 /* owner liveness answers a worker remembers */

/* One worker thread of pstm_queue_run (lib/taskrun.c runs the loop;
 * the transactions are lib/taskq_worker.c's). */
struct taskq_worker {
	pstm_region *r;
	struct taskq_state *s;
	struct taskq_geo g;
	uint64_t tag;         /* this handle's process tag */
	uint32_t lane;        /* own lane = this thread's slot (taskq_bind) */
	uint64_t bound_mask;  /* the mask the lane was bound with */
	uint64_t rng;
	uint8_t *buf;         /* argument copies handed to task functions */
	size_t cap;
	uint64_t *rot_first;  /* per lane: the first task this worker moved
				 from bottom to top since it last slept (0:
				 none), to stop when the lane came round */
	/* the attempt in progress (reset at every attempt) */
	int phase;            /* TASKQ_PH_*: whether the task function ran */
	int outcome;          /* TASKQ_* below */
	unsigned reruns;      /* attempts of a scan or idle check */
	bool stealable;       /* the committed task left >= 2 tasks in the
				 own lane: wake a sleeping sibling */
	/* the task taken by the attempt (the own top), for taskq_fail */
	uint32_t t_lane;
	uint64_t t_node, t_id, t_type;
	/* attempts of the current task (by id), for the aborts counter */
	uint64_t last_id;
	unsigned attempts;
	/* owner tags looked up in /proc, and when */
	struct {
		uint64_t tag, at_ns;
		bool dead;
	} alive[TASKQ_TAGS];
	unsigned alive_next;
};

enum { TASKQ_PH_TAKE, TASKQ_PH_RUN };

/* What an attempt did. */
enum {
	TASKQ_EMPTY,   /* nothing there (own lane empty, candidate gone) */
	TASKQ_RAN,     /* a task ran and committed */
	TASKQ_MOVED,   /* a task this process cannot run went to the shared
			  lane, or a lane's bottom went to its top */
};

/* A candidate found by taskq_scan. */
enum { TASKQ_NONE, TASKQ_STEAL, TASKQ_ROTATE };
struct taskq_cand {
	int kind;
	bool busy;      /* the scan was disturbed by commits: look again */
	uint32_t lane;
	uint64_t node, id;
};

/* What taskq_idle saw, in one consistent snapshot. */
struct taskq_idle {
	bool busy;            /* disturbed by commits: not idle */
	uint64_t failed;      /* tasks on the failed list */
	int first_err;
	uint64_t total;       /* tasks in the lanes */
	uint64_t mine;        /* ... of types this process can run */
	uint64_t others;      /* ... of types only other live workers can run */
};

/* Set @w up for pstm_queue_run on @r (0 or PSTM_ENOMEM); free it. */
HIDDEN int taskq_worker_init(struct taskq_worker *w, pstm_region *r,
			     const struct taskq_geo *g);
HIDDEN void taskq_worker_fini(struct taskq_worker *w);
/* Bind this thread's lane to the worker (owner tag, type mask), or
 * unbind it (@bind false).  Sets w->lane. */
HIDDEN int taskq_bind(struct taskq_worker *w, bool bind);
/*
 * Take the top of the own lane and run it, as one transaction.  0 with
 * w->outcome set; or the error pstm_atomic returned: the task's own
 * error when w->phase is TASKQ_PH_RUN (then taskq_fail), else a failure
 * of the queue's transaction itself (damage, no slot, no memory).
 */
HIDDEN int taskq_take_own(struct taskq_worker *w);
/* Find a task to steal (or to move out of the way), in a read-only
 * transaction that reads only the lanes' stealing ends. */
HIDDEN int taskq_scan(struct taskq_worker *w, struct taskq_cand *c);
/* Steal candidate @c and run it (or move it), as taskq_take_own. */
HIDDEN int taskq_take(struct taskq_worker *w, const struct taskq_cand *c);
/* The task of the last attempt failed with @err: move it to the failed
 * list, unless another worker took it meanwhile (*recorded false). */
HIDDEN int taskq_fail(struct taskq_worker *w, int err, bool *recorded);
/* Whether the failed list is not empty: *first_err its error, else 0. */
HIDDEN int taskq_failed(struct taskq_worker *w, int *first_err);
/* The counts that decide whether to sleep or return. */
HIDDEN int taskq_idle(struct taskq_worker *w, struct taskq_idle *out);

/* ------------------------------------------------------------ pstm queue */

struct taskq_type_info {
	char name[PSTM_TASK_NAME_MAX + 1];
	uint64_t pending, executed, failed, aborts;
	uint64_t failed_now;  /* on the failed list now */
	bool registered;      /* this process has a function for it */
};

struct taskq_failed_task {
	uint64_t id;
	uint32_t type;
	int err;
	uint64_t len;
};

struct taskq_listing {
	uint32_t ntypes;
	struct taskq_type_info types[PSTM_TASK_TYPES_MAX];
	uint64_t pending;        /* the counters' sum */
	uint64_t in_lanes;       /* tasks found walking the lanes */
	uint64_t failed_count;
	int first_err;
	struct taskq_failed_task *failed; /* the failed list, newest first */
	uint64_t nfailed;        /* entries in failed */
};

/* One consistent read of the queue; PSTM_ENOENT if the region has none.
 * Free with taskq_listing_free. */
HIDDEN int taskq_list(pstm_region *r, struct taskq_listing *out);
HIDDEN void taskq_listing_free(struct taskq_listing *l);
/* Move every failed task back to a lane (retry) or free it (drop), in
 * transactions of a bounded size; the queue runs again once the failed
 * list is empty.  *n: how many. */
HIDDEN int taskq_retry_failed(pstm_region *r, uint64_t *n);
HIDDEN int taskq_drop_failed(pstm_region *r, uint64_t *n);

#endif /* PSTM_TASKQ_H */
