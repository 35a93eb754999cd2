/*
 * extent.h - overflow extents in the heap (lib/extent.c): taking and
 * giving back the blocks that hold large transactions' redo records.
 * Reached from the transaction layer through struct pstm_region's
 * ovf_take / ovf_give, set at open.
 */
#ifndef PSTM_EXTENT_H
#define PSTM_EXTENT_H

#include <stdint.h>

#include "tx.h"

/*
 * In the running transaction: free extent @old (0: none) and every
 * orphan, then take a new extent of @cap entries owned by slot @slot in
 * state @owner, linked into the heap's list.  Returns its offset (the
 * user offset of its block).  Unwinds with PSTM_EHEAPFULL if the heap
 * cannot hold it, PSTM_ECORRUPT if the list is damaged.
 */
HIDDEN uint64_t extent_take(pstm_tx *tx, uint64_t cap, uint64_t old,
			    uint32_t slot, uint64_t owner);
/* In the running transaction: unlink and free extent @off, if listed. */
HIDDEN void extent_give(pstm_tx *tx, uint64_t off);

#endif /* PSTM_EXTENT_H */
