/*
 * taskq_failed.c - the task queue's failed list through the public API
 * (pstm_queue_failed, pstm_queue_failed_arg, pstm_queue_retry_failed,
 * pstm_queue_drop_failed): what `pstm queue` does, for programs and
 * bindings, over lib/taskq.c's listing and moves.
 */
#include <stdio.h>
#include <string.h>

#include "pstm.h"
#include "taskq.h"
#include "taskq_lane.h"
#include "taskq_layout.h"
#include "tx.h"
#include "util.h"

/* the first release that had it */
#define FAILED_TASK_V0 ((size_t)sizeof(struct pstm_failed_task))

int pstm_queue_failed_sz(pstm_region *r, struct pstm_failed_task *out,
			 size_t max, size_t elem_size, size_t *count)
{
	struct taskq_listing l;

	if (!r || !count || (max && !out) ||
	    (max && (elem_size < FAILED_TASK_V0 || elem_size > SIZED_MAX)))
		return PSTM_EINVAL;
	*count = 0;
	if (tx_running())
		return PSTM_EINTX;
	int rc = taskq_list(r, &l);
	if (rc == PSTM_ENOENT)
		return 0; /* no queue: nothing failed */
	if (rc)
		return rc;
	*count = (size_t)l.nfailed;
	for (uint64_t i = 0; i < l.nfailed && i < max; i++) {
		const struct taskq_failed_task *f = &l.failed[i];
		struct pstm_failed_task t;
		memset(&t, 0, sizeof(t));
		t.id = f->id;
		t.arg_len = f->len;
		t.err = f->err;
		snprintf(t.type, sizeof(t.type), "%s",
			 f->type < l.ntypes ? l.types[f->type].name : "?");
		(void)sized_out((unsigned char *)out + i * elem_size, elem_size,
				&t, sizeof(t), FAILED_TASK_V0);
	}
	taskq_listing_free(&l);
	return 0;
}

struct arg_call {
	struct taskq_geo g;
	uint64_t id;
	void *buf;
	size_t cap, len;
	bool found;
};

/* the failed list's task @id: its length, and up to cap bytes */
static int arg_fn(pstm_tx *tx, void *arg)
{
	struct arg_call *a = arg;
	struct tx_info ti;
	tx_info(tx, &ti);
	a->found = false;
	uint64_t limit = (ti.heap_hi - ti.heap_lo) / TASKQ_NODE_HDR;
	for (uint64_t n = link(tx, &ti, a->g.hdr + TQH(failed_head)); n;
	     n = link(tx, &ti, n + TQN(down))) {
		if (!limit--)
			tx_fail(tx, PSTM_ECORRUPT); /* a cycle */
		uint64_t m = node_meta(tx, &ti, n);
		if (L(tx, n + TQN(id)) != a->id)
			continue;
		a->len = (size_t)taskq_meta_len(m);
		if (a->cap)
			pstm_read(tx, n + TASKQ_NODE_HDR, a->buf,
				  a->len < a->cap ? a->len : a->cap);
		a->found = true;
		break;
	}
	return 0;
}

int pstm_queue_failed_arg(pstm_region *r, uint64_t id, void *buf, size_t cap,
			  size_t *len)
{
	struct arg_call a = {.id = id, .buf = buf, .cap = cap};

	if (!r || !len || (cap && !buf))
		return PSTM_EINVAL;
	*len = 0;
	if (tx_running())
		return PSTM_EINTX;
	int rc = taskq_open(r, false, &a.g);
	if (rc)
		return rc; /* PSTM_ENOENT: no queue, so no such task */
	rc = pstm_atomic_ro(r, arg_fn, &a);
	if (rc)
		return rc;
	if (!a.found)
		return PSTM_ENOENT;
	*len = a.len;
	return 0;
}

static int move(pstm_region *r, uint64_t *n,
		int (*how)(pstm_region *, uint64_t *))
{
	uint64_t k = 0;
	if (n)
		*n = 0;
	if (!r)
		return PSTM_EINVAL;
	if (tx_running())
		return PSTM_EINTX;
	int rc = how(r, &k);
	if (n)
		*n = k;
	return rc;
}

int pstm_queue_retry_failed(pstm_region *r, uint64_t *n)
{
	return move(r, n, taskq_retry_failed);
}

int pstm_queue_drop_failed(pstm_region *r, uint64_t *n)
{
	return move(r, n, taskq_drop_failed);
}
