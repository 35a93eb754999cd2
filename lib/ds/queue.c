/*
 * queue.c - the transactional FIFO queue of byte strings (pstm_queue_*).
 * Built only on the transaction calls (pstm.h, tx.h) and the allocator;
 * its layout is struct queue_obj and struct queue_node_hdr in ds_layout.h.
 *
 * Object (QUEUE_BYTES): magic; head (line 1); tail (line 2).  A singly
 * linked list of nodes {next, len, bytes...}: pop takes head, push links
 * after tail.  head and tail sit on their own lines, so with two or more
 * items a push (tail, the last node's next) and a pop (head, the first
 * node's next) touch different words and do not conflict; pushes
 * conflict with each other on tail, pops on head.  Nodes come from
 * pstm_alloc and go back with pstm_free, so a popped item's memory is
 * reusable once the pop commits.
 */
#include "ds.h"
#include "ds_layout.h"
#include "pstm_ds.h"

/* Whether @q is a queue; fills @ti. */
static bool is_queue(pstm_tx *tx, pstm_off q, struct tx_info *ti)
{
	if (!tx)
		return false;
	tx_info(tx, ti);
	return ds_is_object(tx, ti, q, QUEUE_BYTES, PSTM_QUEUE_MAGIC);
}

/* Validate node @n; its length. */
static uint64_t node_len(pstm_tx *tx, const struct tx_info *ti, uint64_t n)
{
	if ((n & 15) || !ds_in_heap(ti, n, NODE_HDR))
		tx_fail(tx, PSTM_ECORRUPT);
	uint64_t len = L(tx, n + NODE_FIELD(len));
	if (!ds_in_heap(ti, n + NODE_HDR, len))
		tx_fail(tx, PSTM_ECORRUPT);
	return len;
}

pstm_off pstm_queue_create(pstm_tx *tx)
{
	pstm_off q = pstm_alloc(tx, QUEUE_BYTES);
	S(tx, q + QUEUE_FIELD(head), 0);
	S(tx, q + QUEUE_FIELD(tail), 0);
	S(tx, q + QUEUE_FIELD(magic), PSTM_QUEUE_MAGIC);
	return q;
}

int pstm_queue_push(pstm_tx *tx, pstm_off q, const void *item, size_t len)
{
	struct tx_info ti;
	if ((len && !item) || !is_queue(tx, q, &ti))
		return PSTM_EINVAL;
	pstm_off n = pstm_alloc(tx, NODE_HDR + (len ? len : 1));
	S(tx, n + NODE_FIELD(next), 0);
	S(tx, n + NODE_FIELD(len), len);
	if (len)
		pstm_write(tx, n + NODE_HDR, item, len);
	uint64_t t = L(tx, q + QUEUE_FIELD(tail));
	if (t) {
		node_len(tx, &ti, t);
		S(tx, t + NODE_FIELD(next), n);
	} else {
		S(tx, q + QUEUE_FIELD(head), n);
	}
	S(tx, q + QUEUE_FIELD(tail), n);
	return 0;
}

int pstm_queue_pop(pstm_tx *tx, pstm_off q, void *buf, size_t cap, size_t *len)
{
	struct tx_info ti;
	if ((cap && !buf) || !is_queue(tx, q, &ti))
		return PSTM_EINVAL;
	uint64_t h = L(tx, q + QUEUE_FIELD(head));
	if (!h)
		return PSTM_ENOENT;
	uint64_t n = node_len(tx, &ti, h);
	if (len)
		*len = n;
	if (n > cap)
		return PSTM_EINVAL;
	uint64_t next = L(tx, h + NODE_FIELD(next));
	S(tx, q + QUEUE_FIELD(head), next);
	if (!next)
		S(tx, q + QUEUE_FIELD(tail), 0);
	if (n)
		pstm_read(tx, h + NODE_HDR, buf, n);
	pstm_free(tx, h);
	return 0;
}

int pstm_queue_iter(pstm_tx *tx, pstm_off q, pstm_queue_cb cb, void *arg)
{
	struct tx_info ti;
	struct ds_copy copy;
	if (!cb || !is_queue(tx, q, &ti))
		return PSTM_EINVAL;
	ds_copy_init(&copy);
	uint64_t limit = (ti.heap_hi - ti.heap_lo) / 32;
	uint64_t n = L(tx, q + QUEUE_FIELD(head));
	for (; n; n = L(tx, n + NODE_FIELD(next))) {
		if (!limit--)
			tx_fail(tx, PSTM_ECORRUPT); /* a cycle */
		uint64_t len = node_len(tx, &ti, n);
		uint8_t *b = ds_copy_buf(tx, &copy, len);
		pstm_read(tx, n + NODE_HDR, b, len);
		int rc = cb(b, len, arg);
		if (rc)
			return rc;
	}
	return 0;
}
