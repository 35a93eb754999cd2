/*
 * tx.h - the transaction boundary.  The layers above transactions (the
 * allocator and root, lib/ds/ map and queue, add/run) are written only
 * against the public transaction calls of pstm.h (pstm_load64,
 * pstm_store64, pstm_read, pstm_write, pstm_atomic, pstm_tx_region) and
 * the few private ones below; they never look inside struct pstm_tx or
 * struct pstm_region.  Another store that offers these calls (e.g. a
 * distributed one) can carry everything above it unchanged.
 */
#ifndef PSTM_TX_H
#define PSTM_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pstm.h"
#include "util.h"

/* What a transaction's region looks like to the layers above. */
struct tx_info {
	uint64_t meta_lo;    /* allocator metadata starts here (heap header) */
	uint64_t heap_lo;    /* user heap [heap_lo, heap_hi) */
	uint64_t heap_hi;
	uint32_t slot;       /* this thread's slot: stripes per-thread state */
	uint32_t max_slots;  /* slots of the region: slot < max_slots, or
				slot == max_slots on a handle that attaches
				nothing (read-only: it stores nothing) */
	uint32_t write_cap;  /* words a transaction writes cheaply (its
				slot's ring; larger ones take an extent) */
	uint64_t handle_id;  /* unique per open handle in this process */
};
HIDDEN void tx_info(pstm_tx *tx, struct tx_info *out);

/* Changes at every attempt (begin) of the transaction; never 0. */
HIDDEN uint64_t tx_attempt(pstm_tx *tx);

/* Transactional word access to the allocator's metadata, which lies
 * below the user heap: [meta_lo, heap_hi), 8-byte aligned. */
HIDDEN uint64_t tx_load_meta(pstm_tx *tx, uint64_t off);
HIDDEN void tx_store_meta(pstm_tx *tx, uint64_t off, uint64_t v);

/* End the running transaction with error @err: it rolls back and
 * pstm_atomic returns @err (unwinds; never returns). */
HIDDEN _Noreturn void tx_fail(pstm_tx *tx, int err);

/*
 * Run @fn(@r, @a, @b) once the running transaction has committed (after
 * its locks are released, outside any transaction), in the order they
 * were added; dropped, never run, if the attempt aborts or fails.
 * Unwinds with PSTM_ENOMEM if it cannot be recorded.
 */
typedef void (*tx_hook_fn)(pstm_region *r, void *a, void *b);
HIDDEN void tx_on_commit(pstm_tx *tx, tx_hook_fn fn, void *a, void *b);

/*
 * @n bytes of process memory owned by the running attempt: freed when it
 * ends (commits, aborts or fails), never before, so that code which may
 * unwind can hold a buffer without leaking it.  Unwinds with PSTM_ENOMEM
 * if there is none.
 */
HIDDEN void *tx_scratch(pstm_tx *tx, size_t n);

/* Whether slot @slot of the transaction's region is in state @state
 * (a word read earlier from the slot table, e.g. by its owner): false
 * once the slot was freed or claimed again. */
HIDDEN bool tx_slot_owned(pstm_tx *tx, uint32_t slot, uint64_t state);

/* Whether this thread is inside a transaction (of any region). */
HIDDEN bool tx_running(void);

/*
 * Process tags, to name the process a transaction runs in (the task
 * queue binds a lane to its worker's process): tx_proc_tag is this
 * handle's, never 0, unique among the region's processes over time;
 * tx_proc_tag_dead tells whether the process a tag names has detached,
 * died or is being recovered (it may read /proc: not for every
 * transaction).
 */
HIDDEN uint64_t tx_proc_tag(pstm_tx *tx);
HIDDEN bool tx_proc_tag_dead(pstm_tx *tx, uint64_t tag);

#endif /* PSTM_TX_H */
