/*
 * hooks.c - what a transaction leaves for later: commit hooks (the
 * user's, pstm_tx_add's children, scratch buffers: one list, run after
 * the commit in registration order) and abort hooks (run each time an
 * attempt rolls back).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stm.h"

void hooks_free(struct tx_hook **l)
{
	while (*l) {
		struct tx_hook *h = *l;
		*l = h->next;
		free(h);
	}
}

/* The attempt ends without committing: its commit hooks (and scratch
 * buffers) are dropped; its abort hooks stay for the driver to run. */
void hooks_drop(pstm_tx *t) { hooks_free(&t->hooks); }

/* Run (and free) a detached hook list in the order the hooks were added
 * (the list is newest first). */
void hooks_run(struct pstm_region *r, struct tx_hook *h)
{
	struct tx_hook *rev = NULL;
	while (h) {
		struct tx_hook *n = h;
		h = n->next;
		n->next = rev;
		rev = n;
	}
	while (rev) {
		struct tx_hook *n = rev;
		rev = n->next;
		n->fn(r, n->a, n->b);
		free(n);
	}
}

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

/* A user hook through the internal hook list: @a is the function. */
static void call_user_hook(pstm_region *r, void *a, void *b)
{
	pstm_hook_fn f;
	(void)r;
	memcpy(&f, &a, sizeof(f));
	f(b);
}

static struct tx_hook *hook_new(pstm_tx *t, pstm_hook_fn fn, void *arg)
{
	struct tx_hook *h = malloc(sizeof(*h));
	if (!h && t->explicit_tx && !t->guard) {
		stm_doom(t, PSTM_ENOMEM); /* no unwinding point to go to */
		return NULL;
	}
	if (!h)
		stm_fail(t, PSTM_ENOMEM);
	h->fn = call_user_hook;
	memcpy(&h->a, &fn, sizeof(fn));
	h->b = arg;
	return h;
}

static int hook_add(pstm_tx *t, struct tx_hook **list, pstm_hook_fn fn,
		    void *arg)
{
	if (!t || !fn)
		return PSTM_EINVAL;
	if (t->doomed)
		return t->doomed;
	struct tx_hook *h = hook_new(t, fn, arg);
	if (!h)
		return t->doomed;
	h->next = *list;
	*list = h;
	return 0;
}

int pstm_tx_on_commit(pstm_tx *t, pstm_hook_fn fn, void *arg)
{
	return hook_add(t, t ? &t->hooks : NULL, fn, arg);
}

int pstm_tx_on_abort(pstm_tx *t, pstm_hook_fn fn, void *arg)
{
	return hook_add(t, t ? &t->abort_hooks : NULL, fn, arg);
}
