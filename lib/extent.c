/*
 * extent.c - overflow extents in the heap: the blocks that hold the redo
 * records of transactions too large for their slot's ring (layout.h, struct
 * ovf_header; the commit protocol that fills them is lib/overflow.c).
 *
 * An extent is a pstm_alloc block, linked from heap_header.ovf_head
 * through its header's next word, and owned by one slot: header.slot and
 * header.owner, that slot's state word when it took the extent.  Every
 * header word and the list are read and written through the calling
 * transaction, so taking or giving back an extent is all-or-nothing like
 * any allocation; the entries after the header are the owner's alone.
 *
 * An extent whose owner no longer holds its slot (the thread exited, the
 * process died and was recovered, the runtime was rebuilt) is an orphan:
 * the next extent_take frees it.  The caller makes sure that no record in
 * an orphan may still be replayed (lib/overflow.c checkpoints first).
 * Layer 6: written only against the transaction boundary.
 */
#include "alloc.h"
#include "extent.h"

#define HDR(field) ((uint64_t)offsetof(struct ovf_header, field))

static uint64_t head_word(pstm_tx *tx)
{
	struct tx_info ti;
	tx_info(tx, &ti);
	return ti.meta_lo + HEAP_FIELD(ovf_head);
}

/* Unlink extent @x (at link word @link) and free it. */
static void unlink_free(pstm_tx *tx, uint64_t link, uint64_t x)
{
	tx_store_meta(tx, link, pstm_load64(tx, x + HDR(next)));
	pstm_store64(tx, x + HDR(magic), 0);
	pstm_free(tx, x);
}

uint64_t extent_take(pstm_tx *tx, uint64_t cap, uint64_t old, uint32_t slot,
		     uint64_t owner)
{
	uint64_t link = head_word(tx);
	struct tx_info ti;
	tx_info(tx, &ti);
	if (cap == 0 ||
	    cap > (ti.heap_hi - ti.heap_lo) / sizeof(struct log_entry))
		tx_fail(tx, PSTM_EHEAPFULL);

	/* give back @old and every orphan */
	for (uint64_t x, n = 0; (x = tx_load_meta(tx, link)) != 0; n++) {
		if (x < ti.heap_lo || x >= ti.heap_hi || (x & 15) ||
		    pstm_load64(tx, x + HDR(magic)) != OVF_MAGIC ||
		    n > ti.max_slots * 4ull)
			tx_fail(tx, PSTM_ECORRUPT);
		uint64_t s = pstm_load64(tx, x + HDR(slot));
		uint64_t o = pstm_load64(tx, x + HDR(owner));
		if (x == old ||
		    (s != slot && !tx_slot_owned(tx, (uint32_t)s, o)) ||
		    (s == slot && o != owner)) {
			unlink_free(tx, link, x);
			continue;
		}
		link = x + HDR(next);
	}

	uint64_t x = pstm_alloc(tx, OVF_HDR_BYTES + cap * sizeof(struct log_entry));
	pstm_store64(tx, x + HDR(magic), OVF_MAGIC);
	pstm_store64(tx, x + HDR(next), tx_load_meta(tx, head_word(tx)));
	pstm_store64(tx, x + HDR(slot), slot);
	pstm_store64(tx, x + HDR(owner), owner);
	pstm_store64(tx, x + HDR(cap), cap);
	tx_store_meta(tx, head_word(tx), x);
	return x;
}

void extent_give(pstm_tx *tx, uint64_t off)
{
	uint64_t link = head_word(tx);
	for (uint64_t x; (x = tx_load_meta(tx, link)) != 0;
	     link = x + HDR(next)) {
		if (pstm_load64(tx, x + HDR(magic)) != OVF_MAGIC)
			tx_fail(tx, PSTM_ECORRUPT);
		if (x == off) {
			unlink_free(tx, link, x);
			return;
		}
	}
}
