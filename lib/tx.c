/*
 * tx.c - the transaction boundary (lib/tx.h): the private calls, beside
 * the public transactional API, that the layers above transactions use.
 */
#include <stdint.h>
#include <stdlib.h>

#include "stm.h"
#include "tx.h"

void tx_info(pstm_tx *t, struct tx_info *o)
{
	struct pstm_region *r = t->r;
	o->meta_lo = r->sb.heap_off;
	o->heap_lo = r->heap_lo;
	o->heap_hi = r->heap_hi;
	o->slot = t->slot;
	o->max_slots = r->sb.max_slots;
	o->write_cap = t->ws_cap;
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

void tx_on_commit(pstm_tx *t, tx_hook_fn fn, void *a, void *b)
{
	struct tx_hook *h = malloc(sizeof(*h));
	if (!h)
		stm_fail(t, PSTM_ENOMEM);
	*h = (struct tx_hook){fn, a, b, t->hooks};
	t->hooks = h;
}

/* A scratch buffer rides on a hook node that does nothing: the hook list
 * frees it when the attempt commits (run_hooks) or ends otherwise
 * (drop_hooks). */
static void scratch_done(pstm_region *r, void *a, void *b)
{
	(void)r;
	(void)a;
	(void)b;
}

void *tx_scratch(pstm_tx *t, size_t n)
{
	struct tx_hook *h = n <= SIZE_MAX - sizeof(*h) ? malloc(sizeof(*h) + n) : NULL;
	if (!h)
		stm_fail(t, PSTM_ENOMEM);
	*h = (struct tx_hook){scratch_done, NULL, NULL, t->hooks};
	t->hooks = h;
	return h + 1;
}

