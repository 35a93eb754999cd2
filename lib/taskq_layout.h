/*
 * taskq_layout.h - the byte layout of the region's task queue
 * (pstm_register, pstm_enqueue, pstm_queue_run).  Part of the region
 * format: other processes and later opens depend on it byte for byte, so
 * every size and offset is pinned by a static assertion.  The structs
 * are never used through a pointer: lib/taskq.c reads and writes them
 * word by word through the transaction at the offsetof() of their
 * fields, and lib/taskq_inspect.c reads a read-only mapping the same
 * way.  docs/design.md ("The task queue") describes who writes what.
 *
 * Reached from the heap header's `taskq` word.  Four blocks of the heap:
 * the header (names, failed list), the lanes (one per transaction slot
 * plus a shared one), the statistics (16 stripes x types), and one
 * block per task.
 */
#ifndef PSTM_TASKQ_LAYOUT_H
#define PSTM_TASKQ_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "pstm.h"

#define TASKQ_MAGIC 0x3151544d5453504full /* "OPSTMTQ1" */
#define TASKQ_NAME_BYTES 64               /* a name, NUL-padded */
#define TASKQ_STRIPES 16                  /* statistics stripes: slot % 16 */
#define TASKQ_ID_SEQ_BITS 40              /* id = lane << 40 | sequence */

_Static_assert(PSTM_TASK_NAME_MAX < TASKQ_NAME_BYTES, "a NUL after every name");
_Static_assert(PSTM_TASK_TYPES_MAX <= 64, "a type mask is one word");

/*
 * The header.  Line 0 is written by the transaction that makes the queue
 * and by the staged zeroing after it (init_words), then never again;
 * every operation reads it (a process caches it once init_words ==
 * total_words).  The other lines are each written by one kind of
 * operation, so that they do not make each other's transactions
 * conflict.
 */
struct taskq_hdr {
	/* line 0 */
	uint64_t magic;       /* TASKQ_MAGIC */
	uint64_t lanes;       /* the lane array: nlanes struct taskq_lane */
	uint64_t nlanes;      /* max_slots + 1: lane s for slot s, then the
				 shared lane */
	uint64_t stats;       /* the statistics: struct taskq_stats */
	uint64_t init_words;  /* words of names, lanes and stats zeroed so
				 far (the staged init); ready when equal to */
	uint64_t total_words; /* ... this */
	uint64_t pad0[2];
	/* line 1: pstm_register of a name the region did not know */
	uint64_t ntypes;      /* names[0 .. ntypes) are in use; never shrinks */
	uint64_t pad1[7];
	/* line 2: a task failing, pstm queue --retry-failed/--drop-failed */
	uint64_t failed_count; /* tasks on the failed list */
	uint64_t failed_head;  /* the newest failed task, 0 if none */
	uint64_t first_err;    /* the error (int64) of the oldest task on the
				  list: what every pstm_queue_run returns
				  while the list is not empty; 0 if empty */
	uint64_t pad2[5];
	/* line 3: a push to a lane above every lane used before */
	uint64_t lanes_used;   /* slot lanes [0, lanes_used) were ever pushed
				  to or bound; only grows */
	uint64_t pad3[7];
	/* type t's name: NUL-padded bytes; written once, by the
	 * registration that sets ntypes above t */
	uint64_t names[PSTM_TASK_TYPES_MAX][TASKQ_NAME_BYTES / 8];
};

/*
 * A lane: a doubly linked list of tasks.  Lane s belongs to transaction
 * slot s: tasks enqueued by a transaction of that slot go on its top,
 * and a worker running in slot s takes its own top (LIFO).  Any other
 * worker may steal the bottom (the oldest).  Line 0 is the owner's end,
 * written at every take and push of slot s; line 1 is the stealing end,
 * written only by steals and by a push to (or take from) a lane of one
 * task, and the binding, written when a worker starts and stops.  The
 * last lane (index nlanes - 1) belongs to no slot: workers move there
 * the tasks of types their process cannot run.
 */
struct taskq_lane {
	/* line 0 */
	uint64_t top;      /* newest task, 0 when the lane is empty */
	uint64_t seq;      /* ids given out by pushes to this lane */
	uint64_t pad0[6];
	/* line 1 */
	uint64_t bottom;   /* oldest task, 0 when the lane is empty */
	uint64_t owner;    /* the process tag (tx_proc_tag) of the worker of
			      pstm_queue_run bound to this slot, 0 if none */
	uint64_t mask;     /* types its process has registered functions for */
	uint64_t pad1[5];
};

/* Statistics of one type in one stripe.  A transaction of slot s writes
 * only stripe s % 16; the sums over the stripes are exact, a single
 * stripe's pending count may wrap below zero. */
struct taskq_count {
	uint64_t pending;  /* tasks in lanes (queued or being run) */
	uint64_t executed; /* tasks run and committed */
	uint64_t failed;   /* tasks moved to the failed list */
	uint64_t aborts;   /* attempts of tasks rolled back by conflicts */
};

struct taskq_stats {
	struct taskq_count c[TASKQ_STRIPES][PSTM_TASK_TYPES_MAX];
};

/*
 * A task: a pstm_alloc block of TASKQ_NODE_HDR + len bytes.  In a lane,
 * up and down link it to its neighbours; on the failed list, up holds
 * the error (int64) and down the next older failed task.  The id is
 * given by the push that enqueued it and kept when the task is moved
 * (to the shared lane, to the failed list and back): no two tasks in
 * the region have the same id, so a worker that lost track of a task
 * can tell it from a new one in the same block.
 */
struct taskq_node {
	uint64_t up;       /* the next newer task of the lane, 0 for the top */
	uint64_t down;     /* the next older task, 0 for the bottom */
	uint64_t id;       /* lane << 40 | that lane's seq at the push */
	uint64_t meta;     /* type | argument length << 8 */
	/* then the argument bytes */
};

#define TQH(f) ((uint64_t)offsetof(struct taskq_hdr, f))
#define TQL(f) ((uint64_t)offsetof(struct taskq_lane, f))
#define TQN(f) ((uint64_t)offsetof(struct taskq_node, f))
#define TASKQ_HDR_BYTES ((uint64_t)sizeof(struct taskq_hdr))
#define TASKQ_LANE_BYTES ((uint64_t)sizeof(struct taskq_lane))
#define TASKQ_STATS_BYTES ((uint64_t)sizeof(struct taskq_stats))
#define TASKQ_NODE_HDR ((uint64_t)sizeof(struct taskq_node))
#define TASKQ_NAMES_WORDS ((uint64_t)PSTM_TASK_TYPES_MAX * TASKQ_NAME_BYTES / 8)

static inline uint64_t taskq_meta(uint64_t type, uint64_t len) { return type | len << 8; }
static inline uint64_t taskq_meta_type(uint64_t m) { return m & 0xff; }
static inline uint64_t taskq_meta_len(uint64_t m) { return m >> 8; }

/* The word of counter @field of type @t in stripe @s. */
static inline uint64_t taskq_count_word(uint64_t stats, uint64_t s, uint64_t t,
					uint64_t field)
{
	return stats + (s * PSTM_TASK_TYPES_MAX + t) * sizeof(struct taskq_count) + field;
}
#define TQC(f) ((uint64_t)offsetof(struct taskq_count, f))

_Static_assert(offsetof(struct taskq_hdr, magic) == 0, "taskq magic");
_Static_assert(offsetof(struct taskq_hdr, init_words) == 32, "taskq init");
_Static_assert(offsetof(struct taskq_hdr, ntypes) == 64, "taskq ntypes: line 1");
_Static_assert(offsetof(struct taskq_hdr, failed_count) == 128, "taskq failed: line 2");
_Static_assert(offsetof(struct taskq_hdr, lanes_used) == 192, "taskq lanes_used: line 3");
_Static_assert(offsetof(struct taskq_hdr, names) == 256, "taskq names");
_Static_assert(sizeof(struct taskq_hdr) == 256 + 64 * 64, "TASKQ_HDR_BYTES");
_Static_assert(offsetof(struct taskq_lane, bottom) == 64, "lane bottom: line 1");
_Static_assert(offsetof(struct taskq_lane, owner) == 72, "lane owner");
_Static_assert(offsetof(struct taskq_lane, mask) == 80, "lane mask");
_Static_assert(sizeof(struct taskq_lane) == 128, "TASKQ_LANE_BYTES");
_Static_assert(sizeof(struct taskq_count) == 32, "taskq count");
_Static_assert(sizeof(struct taskq_stats) == 16 * 64 * 32, "TASKQ_STATS_BYTES");
_Static_assert(offsetof(struct taskq_node, id) == 16, "node id");
_Static_assert(offsetof(struct taskq_node, meta) == 24, "node meta");
_Static_assert(sizeof(struct taskq_node) == 32, "TASKQ_NODE_HDR");

#endif /* PSTM_TASKQ_LAYOUT_H */
