/*
 * overflow.c - large transactions: a write set of more than log_cap
 * entries (what the slot's ring holds) is logged in an overflow extent,
 * a heap block owned by the slot (layout.h; lib/extent.c takes and gives
 * back extents), and its ring record only names the extent.  The commit
 * protocol is otherwise lib/commit.c's, step for step: the entries go to
 * the extent where a small record's go to the ring, the crc covers them,
 * and the commit point persists both (pmem: lines of both, one drain;
 * msync: the extent, then the group-committed log area).
 *
 * Taking an extent.  The attempt that needs one holds no orec yet (commit
 * step 1), so the slot runs a small transaction of its own (stm_run_side)
 * that frees the slot's old extent and every orphan and takes a new one,
 * with 1/8 to spare.  If that transaction changed what the attempt read
 * (the allocator's words), the attempt's validation fails and it runs
 * again, now with a large enough extent.  An inevitable transaction holds
 * locks the side transaction might need: it can only use the extent its
 * slot already has, and fails with PSTM_ELOGFULL beyond it.
 *
 * Durable regions: what may be written into an extent, and when.
 *   (a) Before its first use, the extent's allocation is checkpointed
 *       (the durable horizon passes the side transaction's seq).  So no
 *       record that a power failure would replay writes into its block
 *       (those are all newer than its allocation, and none of them
 *       frees it): replay never overwrites an extent it still has to
 *       read, and a relaxed region's flusher may copy the extent into
 *       the file's heap, where the block is already allocated.
 *   (b) Before an extent is written again (the slot's next large commit),
 *       or freed, the horizon passes the seq of the last record in it: no
 *       replay needs its old entries any more.
 *   (c) An orphan (its slot was freed or claimed again) is freed only
 *       after a checkpoint of everything committed so far.
 * Process crashes: a record in an extent is settled like a small one
 * (lib/replay.c reads its entries from the extent).  A process killed
 * while taking an extent leaves none (the side transaction rolled back)
 * or an extent it owns; once its slot is recovered that extent is an
 * orphan, freed by the next extent_take of any slot.
 */
#include <string.h>

#include "checkpoint.h"
#include "crash.h"
#include "persist.h"
#include "recovery.h"
#include "redo_log.h"
#include "stm.h"

struct take_args {
	pstm_tx *t;
	uint64_t cap, old, got;
};

static int take_fn(pstm_tx *side, void *arg)
{
	struct take_args *a = arg;
	struct pstm_region *r = a->t->r;
	uint64_t owner = atomic_load_explicit(&r->slots[a->t->slot].state,
					      memory_order_relaxed);
	a->got = r->ovf_take(side, a->cap, a->old, a->t->slot, owner);
	return 0;
}

static int give_fn(pstm_tx *side, void *arg)
{
	pstm_tx *t = arg;
	t->r->ovf_give(side, t->ovf_off);
	return 0;
}

/* Durable regions: the horizon passes @past (checkpoints); unwinds. */
static void horizon_past(pstm_tx *t, uint64_t past)
{
	struct pstm_region *r = t->r;
	if (!r->durable || atomic_load(&region_dstate(r)->horizon) > past)
		return;
	int rc = checkpoint_until(r, past);
	if (rc)
		stm_fail(t, rc);
}

void overflow_prepare(pstm_tx *t)
{
	struct pstm_region *r = t->r;

	if (!r->ovf_ok) /* format 1: records must fit the ring */
		stm_fail(t, PSTM_ELOGFULL);
	if (t->ovf_cap < t->nws) {
		if (t->inevitable)
			stm_fail(t, PSTM_ELOGFULL);
		/* dead processes' extents become orphans once their slots
		 * are settled; (b) for the old extent, (c) for orphans */
		proc_recover_all_dead(r);
		horizon_past(t, atomic_load(&r->rt->dseq) - 1);
		struct take_args a = {t, (uint64_t)t->nws + t->nws / 8,
				      t->ovf_off, 0};
		int rc = stm_run_side(t, take_fn, &a);
		if (rc)
			stm_fail(t, rc == PSTM_EHEAPFULL ? PSTM_ELOGFULL : rc);
		t->ovf_off = a.got;
		t->ovf_cap = a.cap;
		t->ovf_seq = 0;
		CRASH_POINT(CP_OVF_TAKEN);
		/* (a): our allocation committed below dseq */
		horizon_past(t, atomic_load(&r->rt->dseq) - 1);
		return;
	}
	if (t->ovf_seq) /* (b) */
		horizon_past(t, t->ovf_seq);
	t->ovf_seq = 0;
}

void overflow_release(pstm_tx *t)
{
	struct pstm_region *r = t->r;
	if (!t->ovf_off)
		return;
	/* (b); a failure leaves an orphan, which is freed later */
	if (r->durable && t->ovf_seq &&
	    atomic_load(&region_dstate(r)->horizon) <= t->ovf_seq &&
	    checkpoint_until(r, t->ovf_seq) != 0)
		return;
	if (stm_run_side(t, give_fn, t) == 0)
		t->ovf_off = t->ovf_cap = t->ovf_seq = 0;
}

void overflow_write(pstm_tx *t, struct log_record *rec)
{
	struct pstm_region *r = t->r;
	struct log_entry *e = (struct log_entry *)(r->base + t->ovf_off + OVF_HDR_BYTES);
	*record_ext(rec) = (struct log_ext){t->ovf_off, t->ovf_cap};
	memcpy(e, t->ws, sizeof(*e) * t->nws);
	/* durable: the extent on its way to the media before we lock (pmem:
	 * drained with the record at the commit point; relaxed: the flusher
	 * copies it with the record) */
	if (r->durable && !r->relaxed)
		region_flush(r, e, sizeof(*e) * t->nws);
	rec->count = t->nws;
	rec->magic = LOG_REC_MAGIC_EXT;
}
