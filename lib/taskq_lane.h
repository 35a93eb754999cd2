/*
 * taskq_lane.h - what lib/taskq.c and lib/taskq_worker.c share: word
 * access through the transaction, bounds checks of offsets read from the
 * region, and the lane primitives (link a task on top, take it out,
 * count it).  Layout: taskq_layout.h.
 */
#ifndef PSTM_TASKQ_LANE_H
#define PSTM_TASKQ_LANE_H

#include <stdbool.h>
#include <stdint.h>

#include "pstm.h"
#include "taskq.h"
#include "taskq_layout.h"
#include "tx.h"

static inline uint64_t L(pstm_tx *tx, uint64_t off) { return pstm_load64(tx, off); }
static inline void S(pstm_tx *tx, uint64_t off, uint64_t v) { pstm_store64(tx, off, v); }

static inline bool in_heap(const struct tx_info *ti, uint64_t off, uint64_t n)
{
	return off >= ti->heap_lo && off <= ti->heap_hi && n <= ti->heap_hi - off;
}

static inline uint64_t lane_at(const struct taskq_geo *g, uint32_t l)
{
	return g->lanes + (uint64_t)l * TASKQ_LANE_BYTES;
}

static inline uint32_t shared_lane(const struct taskq_geo *g) { return g->nlanes - 1; }

/* Counter @field of type @t in this slot's stripe, plus @d. */
static inline void count_add(pstm_tx *tx, const struct taskq_geo *g,
		      const struct tx_info *ti, uint64_t t, uint64_t field,
		      uint64_t d)
{
	uint64_t cw = taskq_count_word(g->stats, ti->slot % TASKQ_STRIPES, t, field);
	S(tx, cw, L(tx, cw) + d);
}

/* Validate task @n (read from the region); its meta word. */
static inline uint64_t node_meta(pstm_tx *tx, const struct tx_info *ti, uint64_t n)
{
	if ((n & 15) || !in_heap(ti, n, TASKQ_NODE_HDR))
		tx_fail(tx, PSTM_ECORRUPT);
	uint64_t m = L(tx, n + TQN(meta));
	if (taskq_meta_type(m) >= PSTM_TASK_TYPES_MAX ||
	    taskq_meta_len(m) > PSTM_TASK_ARG_MAX ||
	    !in_heap(ti, n + TASKQ_NODE_HDR, taskq_meta_len(m)))
		tx_fail(tx, PSTM_ECORRUPT);
	return m;
}

/* A link word read from the region must name a task (or be 0). */
static inline uint64_t link(pstm_tx *tx, const struct tx_info *ti, uint64_t off)
{
	uint64_t v = L(tx, off);
	if (v && ((v & 15) || !in_heap(ti, v, TASKQ_NODE_HDR)))
		tx_fail(tx, PSTM_ECORRUPT);
	return v;
}

/* Put task @n on top of lane @lw. */
static inline void link_top(pstm_tx *tx, const struct tx_info *ti, uint64_t lw, uint64_t n)
{
	uint64_t t = link(tx, ti, lw + TQL(top));
	S(tx, n + TQN(up), 0);
	S(tx, n + TQN(down), t);
	if (t)
		S(tx, t + TQN(up), n);
	else
		S(tx, lw + TQL(bottom), n);
	S(tx, lw + TQL(top), n);
}

/* Take task @n, whose neighbours are @up and @down, out of lane @lw. */
static inline void unlink_node(pstm_tx *tx, uint64_t lw, uint64_t up, uint64_t down)
{
	if (up)
		S(tx, up + TQN(down), down);
	else
		S(tx, lw + TQL(top), down);
	if (down)
		S(tx, down + TQN(up), up);
	else
		S(tx, lw + TQL(bottom), up);
}

/* The function this process runs tasks of @type with, or NULL. */
HIDDEN pstm_task_fn taskq_fn_of(struct taskq_state *s, uint64_t type);
/* Make sure lane @l is below lanes_used, so that scans look at it. */
HIDDEN void taskq_note_lane(pstm_tx *tx, struct taskq_state *s,
			    const struct taskq_geo *g, uint32_t l);

#endif /* PSTM_TASKQ_LANE_H */
