/*
 * taskq_inspect.c - pstm info's view of the task queue: the header, the
 * names and the statistics stripes (lib/taskq_layout.h), read straight
 * from a read-only mapping, never through a transaction, every offset
 * checked before it is followed.  lib/taskq.c owns the format.
 */
#include <string.h>

#include "region.h"
#include "taskq_inspect.h"
#include "taskq_layout.h"

static uint64_t rd(const struct pstm_region *r, uint64_t off)
{
	return __atomic_load_n((const uint64_t *)(r->base + off), __ATOMIC_RELAXED);
}

static bool in_heap(const struct pstm_region *r, uint64_t off, uint64_t n)
{
	return !(off & 7) && off >= r->heap_lo && off <= r->heap_hi &&
	       n <= r->heap_hi - off;
}

void taskq_inspect(struct pstm_region *r, struct taskq_inspect *out)
{
	memset(out, 0, sizeof(*out));
	uint64_t h = rd(r, r->sb.heap_off + offsetof(struct heap_header, taskq));
	if (!h)
		return;
	out->present = true;
	if (!in_heap(r, h, TASKQ_HDR_BYTES) || rd(r, h + TQH(magic)) != TASKQ_MAGIC)
		return;
	uint64_t nl = rd(r, h + TQH(nlanes)), stats = rd(r, h + TQH(stats));
	uint64_t total = TASKQ_NAMES_WORDS + nl * (TASKQ_LANE_BYTES / 8) +
			 TASKQ_STATS_BYTES / 8;
	uint64_t nt = rd(r, h + TQH(ntypes));
	if (nl != (uint64_t)r->sb.max_slots + 1 || !in_heap(r, stats, TASKQ_STATS_BYTES) ||
	    rd(r, h + TQH(total_words)) != total || rd(r, h + TQH(init_words)) != total ||
	    nt > PSTM_TASK_TYPES_MAX)
		return;
	out->valid = true;
	out->ntypes = (uint32_t)nt;
	for (uint64_t t = 0; t < nt; t++) {
		struct taskq_inspect_type *ty = &out->types[t];
		memcpy(ty->name, r->base + h + TQH(names) + t * TASKQ_NAME_BYTES,
		       PSTM_TASK_NAME_MAX);
		for (uint64_t s = 0; s < TASKQ_STRIPES; s++) {
			ty->pending += rd(r, taskq_count_word(stats, s, t, TQC(pending)));
			ty->executed += rd(r, taskq_count_word(stats, s, t, TQC(executed)));
			ty->failed += rd(r, taskq_count_word(stats, s, t, TQC(failed)));
			ty->aborts += rd(r, taskq_count_word(stats, s, t, TQC(aborts)));
		}
		out->pending += ty->pending;
	}
	out->failed_count = rd(r, h + TQH(failed_count));
	out->first_err = (int)(int64_t)rd(r, h + TQH(first_err));
}
