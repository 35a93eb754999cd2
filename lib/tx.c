/*
 * tx.c - the transaction boundary (lib/tx.h): the private calls, beside
 * the public transactional API, that the layers above transactions use.
 */
#include <stdint.h>
#include <stdlib.h>

#include "proc.h"
#include "stm.h"
#include "tx.h"

void tx_info(pstm_tx *t, struct tx_info *o)
{
	struct pstm_region *r = t->r;
	o->meta_lo = r->sb.heap_off;
	o->heap_lo = r->heap_lo;
	o->heap_hi = r->heap_hi;
	/* a slotless descriptor (r->rt_readonly) names the one slot number
	 * nobody owns: per-slot structures of the layers above (allocator
	 * caches, task queue lanes: max_slots + 1 of them) read as empty or
	 * shared there, and the store that would follow fails (read-only) */
	o->slot = t->slot == TXD_NO_SLOT ? r->sb.max_slots : t->slot;
	o->max_slots = r->sb.max_slots;
	o->write_cap = r->log_cap;
	o->handle_id = r->open_id;
}

uint64_t tx_attempt(pstm_tx *t)
{
	return ((uint64_t)(t->slot + 1) << 32) | t->epoch;
}

uint64_t tx_load_meta(pstm_tx *t, uint64_t off)
{
	return stm_load(t, off, t->r->sb.heap_off);
}

void tx_store_meta(pstm_tx *t, uint64_t off, uint64_t v)
{
	stm_store(t, off, v, t->r->sb.heap_off);
}

void tx_fail(pstm_tx *t, int err) { stm_fail(t, err); }

bool tx_slot_owned(pstm_tx *t, uint32_t slot, uint64_t state)
{
	struct pstm_region *r = t->r;
	return slot < r->sb.max_slots &&
	       atomic_load_explicit(&r->slots[slot].state, memory_order_acquire) ==
		       state;
}

uint64_t tx_proc_tag(pstm_tx *t) { return proc_my_tag(t->r); }

bool tx_proc_tag_dead(pstm_tx *t, uint64_t tag) { return proc_tag_dead(t->r, tag); }
