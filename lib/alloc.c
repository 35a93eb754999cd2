/*
 * alloc.c - transactional allocator: every metadata word (the heap
 * header's top and free-list heads, block headers) is read and written
 * through the calling transaction, so an allocation by a transaction that
 * aborts, fails or dies simply never happened, and a freed block is
 * reusable only once the freeing transaction commits.
 *
 * Blocks: a 16-byte header {total bytes, BLOCK_MAGIC | state} before the
 * user bytes, 16-byte aligned.  Small blocks (total <= LARGE_BYTES) come in
 * power-of-two size classes, each with a LIFO free list threaded through
 * the first user word; larger ones go back to one first-fit list.  Fresh
 * space is cut from `top`.
 *
 * Known limit (see the allocator issue): top and the list heads are single
 * words, so concurrent allocating transactions conflict on them.
 */
#include <string.h>

#include "alloc.h"
#include "stm.h"

#define HH(r) ((r)->sb.heap_off)
#define HF(field) (offsetof(struct heap_header, field))

static uint64_t hload(txd *t, uint64_t off) { return stm_load(t, off, HH(t->r)); }
static void hstore(txd *t, uint64_t off, uint64_t v) { stm_store(t, off, v, HH(t->r)); }

static int size_class(uint64_t total)
{
	int c = 0;
	while ((32ull << c) < total)
		c++;
	return c;
}

pstm_off pstm_alloc(pstm_tx *t, size_t n)
{
	struct pstm_region *r = t->r;
	uint64_t hh = HH(r);

	if (n == 0 || n > r->heap_hi - r->heap_lo)
		stm_fail(t, n ? PSTM_EHEAPFULL : PSTM_EINVAL);
	uint64_t total = (n + BLOCK_HDR + 15) & ~15ull;
	if (total <= LARGE_BYTES) {
		int c = size_class(total);
		total = 32ull << c;
		uint64_t head = hload(t, hh + HF(free_head) + 8 * (uint64_t)c);
		if (head) {
			uint64_t next = hload(t, head + BLOCK_HDR);
			hstore(t, hh + HF(free_head) + 8 * (uint64_t)c, next);
			hstore(t, head + 8, BLOCK_MAGIC | BLOCK_USED);
			return head + BLOCK_HDR;
		}
	} else {
		/* first fit over freed large blocks */
		uint64_t prev = hh + HF(large_head);
		uint64_t b = hload(t, prev);
		while (b) {
			uint64_t bsz = hload(t, b);
			uint64_t next = hload(t, b + BLOCK_HDR);
			if (bsz >= total) {
				hstore(t, prev, next);
				hstore(t, b + 8, BLOCK_MAGIC | BLOCK_USED);
				return b + BLOCK_HDR;
			}
			prev = b + BLOCK_HDR;
			b = next;
		}
	}
	uint64_t top = hload(t, hh + HF(top));
	if (top > r->heap_hi || total > r->heap_hi - top)
		stm_fail(t, PSTM_EHEAPFULL);
	hstore(t, hh + HF(top), top + total);
	hstore(t, top, total);
	hstore(t, top + 8, BLOCK_MAGIC | BLOCK_USED);
	return top + BLOCK_HDR;
}

void pstm_free(pstm_tx *t, pstm_off off)
{
	struct pstm_region *r = t->r;
	uint64_t hh = HH(r);

	if (off == 0)
		return;
	if (off < r->heap_lo + BLOCK_HDR || off >= r->heap_hi || (off & 15))
		stm_fail(t, PSTM_ERANGE);
	uint64_t b = off - BLOCK_HDR;
	uint64_t total = hload(t, b);
	if (hload(t, b + 8) != (BLOCK_MAGIC | BLOCK_USED) || total < 32 ||
	    total > r->heap_hi - b)
		stm_fail(t, PSTM_EINVAL); /* not a live block */
	uint64_t list;
	if (total <= LARGE_BYTES)
		list = hh + HF(free_head) + 8 * (uint64_t)size_class(total);
	else
		list = hh + HF(large_head);
	hstore(t, b + 8, BLOCK_MAGIC | BLOCK_FREE);
	hstore(t, off, hload(t, list));
	hstore(t, list, b);
}

pstm_off pstm_root(pstm_tx *t, size_t n)
{
	uint64_t hh = HH(t->r);
	uint64_t root = hload(t, hh + HF(root_off));

	if (root) {
		if (n > hload(t, hh + HF(root_bytes)))
			stm_fail(t, PSTM_EINVAL);
		return root;
	}
	if (n == 0)
		stm_fail(t, PSTM_EINVAL);
	root = pstm_alloc(t, n);
	for (uint64_t i = 0; i < n; i += 8)
		hstore(t, root + i, 0);
	hstore(t, hh + HF(root_off), root);
	hstore(t, hh + HF(root_bytes), n);
	return root;
}
