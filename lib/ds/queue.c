/*
 * queue.c - the transactional FIFO queue of byte strings (pstm_queue_*).
 *
 * Object (Q_BYTES): magic; head (line 1); tail (line 2).  A singly linked
 * list of nodes {next, len, bytes...}: pop takes head, push links after
 * tail.  head and tail sit on their own lines, so with two or more items
 * a push (tail, the last node's next) and a pop (head, the first node's
 * next) touch different words and do not conflict; pushes conflict with
 * each other on tail, pops on head.  Nodes come from pstm_alloc and go
 * back with pstm_free, so a popped item's memory is reusable once the
 * pop commits.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pstm_ds.h"
#include "stm.h"

#define Q_MAGIC 0
#define Q_HEAD 64
#define Q_TAIL 128
#define Q_BYTES 136
#define N_NEXT 0
#define N_LEN 8
#define N_DATA 16

static uint64_t L(pstm_tx *tx, uint64_t off) { return pstm_load64(tx, off); }
static void S(pstm_tx *tx, uint64_t off, uint64_t v) { pstm_store64(tx, off, v); }

static bool in_heap(pstm_tx *tx, uint64_t off, uint64_t n)
{
	struct pstm_region *r = tx->r;
	return off >= r->heap_lo && off <= r->heap_hi && n <= r->heap_hi - off;
}

static bool is_queue(pstm_tx *tx, pstm_off q)
{
	return tx && !(q & 15) && in_heap(tx, q, Q_BYTES) &&
	       L(tx, q + Q_MAGIC) == PSTM_QUEUE_MAGIC;
}

/* Validate node @n; its length. */
static uint64_t node_len(pstm_tx *tx, uint64_t n)
{
	if ((n & 15) || !in_heap(tx, n, N_DATA))
		stm_fail(tx, PSTM_ECORRUPT);
	uint64_t len = L(tx, n + N_LEN);
	if (!in_heap(tx, n + N_DATA, len))
		stm_fail(tx, PSTM_ECORRUPT);
	return len;
}

pstm_off pstm_queue_create(pstm_tx *tx)
{
	pstm_off q = pstm_alloc(tx, Q_BYTES);
	S(tx, q + Q_HEAD, 0);
	S(tx, q + Q_TAIL, 0);
	S(tx, q + Q_MAGIC, PSTM_QUEUE_MAGIC);
	return q;
}

int pstm_queue_push(pstm_tx *tx, pstm_off q, const void *item, size_t len)
{
	if ((len && !item) || !is_queue(tx, q))
		return PSTM_EINVAL;
	pstm_off n = pstm_alloc(tx, N_DATA + (len ? len : 1));
	S(tx, n + N_NEXT, 0);
	S(tx, n + N_LEN, len);
	if (len)
		pstm_write(tx, n + N_DATA, item, len);
	uint64_t t = L(tx, q + Q_TAIL);
	if (t) {
		node_len(tx, t);
		S(tx, t + N_NEXT, n);
	} else {
		S(tx, q + Q_HEAD, n);
	}
	S(tx, q + Q_TAIL, n);
	return 0;
}

int pstm_queue_pop(pstm_tx *tx, pstm_off q, void *buf, size_t cap, size_t *len)
{
	if ((cap && !buf) || !is_queue(tx, q))
		return PSTM_EINVAL;
	uint64_t h = L(tx, q + Q_HEAD);
	if (!h)
		return PSTM_ENOENT;
	uint64_t n = node_len(tx, h);
	if (len)
		*len = n;
	if (n > cap)
		return PSTM_EINVAL;
	uint64_t next = L(tx, h + N_NEXT);
	S(tx, q + Q_HEAD, next);
	if (!next)
		S(tx, q + Q_TAIL, 0);
	if (n)
		pstm_read(tx, h + N_DATA, buf, n);
	pstm_free(tx, h);
	return 0;
}

/* Copies of items longer than the stack buffer: this thread's buffer,
 * kept (a callback may unwind, which must not leak) and only grown. */
static __thread struct {
	uint8_t *p;
	size_t cap;
} tl_buf;

int pstm_queue_iter(pstm_tx *tx, pstm_off q, pstm_queue_cb cb, void *arg)
{
	uint8_t stack[2048];
	if (!cb || !is_queue(tx, q))
		return PSTM_EINVAL;
	uint64_t limit = (tx->r->heap_hi - tx->r->heap_lo) / 32;
	for (uint64_t n = L(tx, q + Q_HEAD); n; n = L(tx, n + N_NEXT)) {
		if (!limit--)
			stm_fail(tx, PSTM_ECORRUPT); /* a cycle */
		uint64_t len = node_len(tx, n);
		uint8_t *b = stack;
		if (len > sizeof(stack)) {
			if (len > tl_buf.cap) {
				uint8_t *p = realloc(tl_buf.p, len);
				if (!p)
					stm_fail(tx, PSTM_ENOMEM);
				tl_buf.p = p;
				tl_buf.cap = len;
			}
			b = tl_buf.p;
		}
		pstm_read(tx, n + N_DATA, b, len);
		int rc = cb(b, len, arg);
		if (rc)
			return rc;
	}
	return 0;
}
