/*
 * ds.h - what the data structures of lib/ds/ share: word access to user
 * heap words, bounds checks of offsets read from the region, and copy
 * buffers for iteration callbacks.  Only transaction calls (pstm.h,
 * tx.h) underneath.
 */
#ifndef PSTM_DS_DS_H
#define PSTM_DS_DS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pstm.h"
#include "tx.h"

/* A word of the user heap, through the transaction. */
static inline uint64_t L(pstm_tx *tx, uint64_t off) { return pstm_load64(tx, off); }
static inline void S(pstm_tx *tx, uint64_t off, uint64_t v) { pstm_store64(tx, off, v); }

/* Whether [off, off + n) lies in the user heap.  For offsets read from
 * the region, which are validated before they are followed. */
static inline bool ds_in_heap(const struct tx_info *ti, uint64_t off, uint64_t n)
{
	return off >= ti->heap_lo && off <= ti->heap_hi && n <= ti->heap_hi - off;
}

/* Whether @off names an object of @bytes tagged @magic (its first word):
 * 16-aligned, in the heap. */
static inline bool ds_is_object(pstm_tx *tx, const struct tx_info *ti, uint64_t off,
				uint64_t bytes, uint64_t magic)
{
	return !(off & 15) && ds_in_heap(ti, off, bytes) && L(tx, off) == magic;
}

/*
 * Copies handed to an iteration callback: in the walk's own stack buffer
 * when small, else in memory owned by the running attempt (tx_scratch),
 * so that a callback which unwinds leaks nothing.  A walk reuses its
 * buffer for every item (copies are valid during the call only, as
 * pstm_ds.h says) and grows it at least twofold, so it holds at most
 * about four times its largest item, until the transaction ends.
 */
struct ds_copy {
	uint8_t *p;
	size_t cap;
	uint8_t stack[2048];
};

static inline void ds_copy_init(struct ds_copy *c)
{
	c->p = c->stack;
	c->cap = sizeof(c->stack);
}

/* A buffer of at least @n bytes (may unwind with PSTM_ENOMEM). */
static inline uint8_t *ds_copy_buf(pstm_tx *tx, struct ds_copy *c, uint64_t n)
{
	if (n > c->cap) {
		size_t cap = n > 2 * c->cap ? (size_t)n : 2 * c->cap;
		c->p = tx_scratch(tx, cap);
		c->cap = cap;
	}
	return c->p;
}

#endif /* PSTM_DS_DS_H */
