/*
 * setup.c - pstm-crashtest's region before any crash: created (replacing
 * what is there), the tool's root object (crashtest.h), the workload's
 * zeroed state and its init, each step its own transaction.
 */
#include <stdio.h>

#include "crashtest.h"

struct setup_arg {
	const struct pstm_crashtest_workload *wl;
	int procs;
	pstm_off root, state, zero_from, zero_to;
	int init_rc;
};

static int setup_alloc_fn(pstm_tx *tx, void *arg)
{
	struct setup_arg *s = arg;
	s->root = pstm_root(tx, 8 * (size_t)(ROOT_COUNTERS_W + s->procs));
	s->state = pstm_alloc(tx, s->wl->state_bytes);
	pstm_store64(tx, s->root + 8 * ROOT_STATE_W, s->state);
	pstm_store64(tx, s->root + 8 * ROOT_PROCS_W, (uint64_t)s->procs);
	pstm_store64(tx, s->root + 8 * ROOT_SBYTES_W, s->wl->state_bytes);
	return 0;
}

static int setup_zero_fn(pstm_tx *tx, void *arg)
{
	static const char zero[1024];
	struct setup_arg *s = arg;
	pstm_write(tx, s->zero_from, zero, (size_t)(s->zero_to - s->zero_from));
	return 0;
}

static int setup_init_fn(pstm_tx *tx, void *arg)
{
	struct setup_arg *s = arg;
	s->init_rc = s->wl->init ? s->wl->init(tx, s->state) : 0;
	if (s->init_rc)
		return s->init_rc;
	pstm_store64(tx, s->root + 8 * ROOT_MAGIC_W, ROOT_MAGIC);
	return 0;
}

/* Create the region (replacing it), the root, the zeroed state, init;
 * c->r is then the parent's handle.  0, or -1 after saying why. */
int setup_region(struct ct *c)
{
	struct pstm_create_opts o = {
		.size_bytes = c->size_bytes,
		/* workers, their replacements not yet recovered, openers, us */
		.max_procs = (uint32_t)(2 * c->procs + 8),
		.max_threads = (uint32_t)(2 * c->procs + 8),
		.replace = 1,
		.durability = c->relaxed_opt ? PSTM_RELAXED : PSTM_DEFAULT,
		.flush_ms = c->flush_ms,
	};
	struct setup_arg s = {.wl = c->wl, .procs = c->procs};
	struct pstm_region_info in;
	char buf[64];
	int rc = pstm_create(c->uri, &o, &c->r);
	if (rc) {
		fprintf(stderr, "%s: cannot create %s: %s\n", PROG, c->uri, pstm_strerror(rc));
		return -1;
	}
	pstm_region_info(c->r, &in);
	c->is_pmem = in.is_pmem;
	c->relaxed = in.durability == PSTM_RELAXED;
	c->region_flush_ms = in.flush_ms;
	const char *step = "allocating the root and state";
	if ((rc = pstm_atomic(c->r, setup_alloc_fn, &s)))
		goto fail;
	step = "zeroing the state";
	for (pstm_off off = s.state; off < s.state + c->wl->state_bytes; off += 1024) {
		s.zero_from = off;
		s.zero_to = off + 1024 < s.state + c->wl->state_bytes
				    ? off + 1024 : s.state + c->wl->state_bytes;
		if ((rc = pstm_atomic(c->r, setup_zero_fn, &s)))
			goto fail;
	}
	step = "the workload's init";
	if ((rc = pstm_atomic(c->r, setup_init_fn, &s)))
		goto fail;
	c->root = s.root;
	c->state = s.state;
	return 0;
fail:
	fprintf(stderr, "%s: setting up %s: %s: %s\n", PROG, c->uri, step,
		report_tx_error(rc, buf, sizeof(buf)));
	pstm_close(c->r);
	c->r = NULL;
	return -1;
}
