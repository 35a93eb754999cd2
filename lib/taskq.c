/*
 * taskq.c - the region's task queue: its format in the heap
 * (taskq_layout.h), the registry of task types, making the queue,
 * enqueueing, and what pstm queue does (list, retry, drop).  The
 * workers' transactions (take-and-run, steal, fail, the idle check) are
 * lib/taskq_worker.c, their threads lib/taskrun.c.  Written only against
 * the transaction boundary (pstm.h, tx.h) and the heap header's `taskq`
 * word (layout.h); the only process-local state is the handle's
 * registry (r->taskq).  About 670 lines: the format's accessors and
 * the registry are used by both the enqueue path and the operator calls,
 * so they stay in one file with them.
 *
 * Exactly once.  A worker's transaction reads the task, unlinks it,
 * frees its block, counts it, runs the task's function and pushes the
 * tasks that function enqueues; all of that commits or none of it does.
 * A worker killed anywhere before the commit point leaves the task
 * where it was; one killed after it has run it.  There is no claim
 * outside the transaction to clean up after a death.
 *
 * Lanes.  One doubly linked list per transaction slot: whatever a
 * transaction of slot s enqueues goes on lane s's top, and a worker in
 * slot s takes its own top first (LIFO: depth-first on a tree), so its
 * transactions touch its own lane's line 0 and nobody else's.  A worker
 * with an empty lane steals: one short transaction, running no task,
 * moves up to 16 tasks from the bottom of another lane (the oldest:
 * near the root of a tree, much work per steal) to its own top.  With
 * three or more tasks in a lane, a steal (bottom, and the down word of
 * the task above what it takes) and the owner's take and pushes (top,
 * and the up word of the task below the top) write different words, so
 * they do not conflict.  Counters are striped by slot % 16.  So workers
 * of different slots conflict only on a lane of one or two tasks, or on
 * a shared counter stripe (17 or more workers).
 *
 * Binding.  pstm_queue_run's worker writes its process tag and the
 * types it can run into its lane (owner, mask).  A thief does not take
 * the last task of a lane whose owner is alive: that owner is running it
 * (its own top is what it takes), and taking it too would only make one
 * of the two roll back.  Once the owner is dead (tx_proc_tag_dead), any
 * worker takes it.  A worker whose own top is of a type its process
 * cannot run moves it to the shared lane (no owner), so it never blocks
 * its own lane; a thief facing such a task at the bottom of an unowned
 * lane moves it to that lane's top, once round the lane at most per
 * sleep.
 *
 * Termination.  A task being run is still in its lane until its
 * transaction commits, with its children.  So "the pending counters sum
 * to 0" in one consistent snapshot means no task is queued and none is
 * running anywhere that could add more: pstm_queue_run returns 0 only
 * then.  If tasks are left but none of a type that this process or a
 * live bound worker can run, it returns PSTM_EUNREGISTERED.
 *
 * Failure.  A task whose function fails rolls everything back; a second
 * transaction moves it, if still where it was taken from (same id), to
 * the failed list with its error.  Every worker looks at failed_count
 * between tasks and stops while it is not 0.
 */
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "region.h"
#include "taskq.h"
#include "taskq_lane.h"
#include "taskq_layout.h"
#include "tx.h"

#define INIT_STEP_MAX 1024 /* words zeroed per transaction (staged init) */
#define BATCH_MAX 256      /* failed tasks moved per transaction */

/* Process-local: what this handle knows of the region's task types. */
struct reg_entry {
	uint64_t w[TASKQ_NAME_BYTES / 8]; /* the name, NUL-padded */
	uint32_t type;
};

struct taskq_state {
	pthread_mutex_t mu;       /* registrations; entries are appended
				     under it and published by nreg */
	_Atomic uint32_t nreg;    /* entries [0, nreg) are complete (release) */
	struct reg_entry reg[PSTM_TASK_TYPES_MAX];
	_Atomic(pstm_task_fn) fn[PSTM_TASK_TYPES_MAX]; /* by type; NULL: none */
	_Atomic uint64_t mask;    /* types with a function */
	_Atomic int ready;        /* geo is valid (release after writing it) */
	struct taskq_geo geo;
	_Atomic uint32_t used_seen; /* lanes_used seen committed (it only grows) */
	_Atomic int running;      /* a pstm_queue_run of this handle is active */
};

/* ------------------------------------------------------------ state */

struct taskq_state *taskq_state(pstm_region *r)
{
	struct taskq_state *s = __atomic_load_n(&r->taskq, __ATOMIC_ACQUIRE);
	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s || pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return NULL;
	}
	struct taskq_state *none = NULL;
	if (!__atomic_compare_exchange_n(&r->taskq, &none, s, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		return none; /* another thread made it first */
	}
	return s;
}

void taskq_fini(pstm_region *r)
{
	struct taskq_state *s = r->taskq;
	if (!s)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s);
	r->taskq = NULL;
}

uint64_t taskq_mask(struct taskq_state *s)
{
	return atomic_load_explicit(&s->mask, memory_order_acquire);
}

int taskq_run_begin(pstm_region *r)
{
	struct taskq_state *s = taskq_state(r);
	int idle = 0;
	if (!s)
		return PSTM_ENOMEM;
	return atomic_compare_exchange_strong(&s->running, &idle, 1) ? 0 : PSTM_EBUSY;
}

void taskq_run_end(pstm_region *r) { atomic_store(&r->taskq->running, 0); }

pstm_task_fn taskq_fn_of(struct taskq_state *s, uint64_t type)
{
	return atomic_load_explicit(&s->fn[type], memory_order_acquire);
}

/* A name's words (NUL-padded); its length, or PSTM_EINVAL. */
static int name_words(const char *name, uint64_t w[TASKQ_NAME_BYTES / 8])
{
	if (!name)
		return PSTM_EINVAL;
	size_t n = strnlen(name, PSTM_TASK_NAME_MAX + 1);
	if (n == 0 || n > PSTM_TASK_NAME_MAX)
		return PSTM_EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7e)
			return PSTM_EINVAL;
	memset(w, 0, TASKQ_NAME_BYTES);
	memcpy(w, name, n);
	return (int)n;
}

static int local_find(struct taskq_state *s, const uint64_t *w)
{
	uint32_t n = atomic_load_explicit(&s->nreg, memory_order_acquire);
	for (uint32_t i = 0; i < n; i++)
		if (!memcmp(s->reg[i].w, w, TASKQ_NAME_BYTES))
			return (int)s->reg[i].type;
	return -1;
}

/* Remember that @w is type @type in this region (committed, never
 * changes).  Takes the mutex; makes no pstm call while holding it. */
static void local_add(struct taskq_state *s, const uint64_t *w, uint32_t type)
{
	pthread_mutex_lock(&s->mu);
	uint32_t n = atomic_load_explicit(&s->nreg, memory_order_relaxed);
	bool known = false;
	for (uint32_t i = 0; i < n && !known; i++)
		known = s->reg[i].type == type;
	if (!known && n < PSTM_TASK_TYPES_MAX) {
		memcpy(s->reg[n].w, w, TASKQ_NAME_BYTES);
		s->reg[n].type = type;
		atomic_store_explicit(&s->nreg, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------ geometry */

static uint64_t anchor_word(const struct tx_info *ti)
{
	return ti->meta_lo + offsetof(struct heap_header, taskq);
}

static uint64_t total_words(uint64_t nlanes)
{
	return TASKQ_NAMES_WORDS + nlanes * (TASKQ_LANE_BYTES / 8) + TASKQ_STATS_BYTES / 8;
}

/*
 * Read and validate the queue's header: PSTM_ENOENT if there is none;
 * ends the transaction with PSTM_ECORRUPT if it is not sound.  *init
 * gets how far the staged zeroing is.
 */
static int geo_read(pstm_tx *tx, const struct tx_info *ti, struct taskq_geo *g,
		    uint64_t *init)
{
	uint64_t h = tx_load_meta(tx, anchor_word(ti));
	if (!h)
		return PSTM_ENOENT;
	if ((h & 15) || !in_heap(ti, h, TASKQ_HDR_BYTES) || L(tx, h + TQH(magic)) != TASKQ_MAGIC)
		tx_fail(tx, PSTM_ECORRUPT);
	g->hdr = h;
	g->lanes = L(tx, h + TQH(lanes));
	uint64_t nl = L(tx, h + TQH(nlanes));
	g->stats = L(tx, h + TQH(stats));
	*init = L(tx, h + TQH(init_words));
	if (nl != (uint64_t)ti->max_slots + 1 || (g->lanes & 15) || (g->stats & 15) ||
	    !in_heap(ti, g->lanes, nl * TASKQ_LANE_BYTES) ||
	    !in_heap(ti, g->stats, TASKQ_STATS_BYTES) ||
	    L(tx, h + TQH(total_words)) != total_words(nl) || *init > total_words(nl))
		tx_fail(tx, PSTM_ECORRUPT);
	g->nlanes = (uint32_t)nl;
	return 0;
}

/* Inside a transaction: the geometry of a ready queue (cached in @s
 * once seen: it never changes then), or PSTM_ENOENT. */
static int geo_get(pstm_tx *tx, struct taskq_state *s, struct taskq_geo *g)
{
	if (atomic_load_explicit(&s->ready, memory_order_acquire)) {
		*g = s->geo;
		return 0;
	}
	struct tx_info ti;
	uint64_t init;
	tx_info(tx, &ti);
	int rc = geo_read(tx, &ti, g, &init);
	if (rc)
		return rc;
	if (init != total_words(g->nlanes))
		return PSTM_ENOENT; /* still being made */
	pthread_mutex_lock(&s->mu);
	if (!atomic_load_explicit(&s->ready, memory_order_relaxed)) {
		s->geo = *g; /* read in a consistent snapshot: committed */
		atomic_store_explicit(&s->ready, 1, memory_order_release);
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

struct make_arg {
	struct taskq_state *s;
	bool create;
	bool missing;   /* no queue (and !create) */
};

/* One step of making the queue: create the header and its blocks, or
 * zero the next words of names, lanes and statistics, or (when that is
 * done) cache the geometry. */
static int make_step(pstm_tx *tx, void *arg)
{
	struct make_arg *m = arg;
	struct tx_info ti;
	struct taskq_geo g;
	uint64_t init;
	m->missing = false;
	tx_info(tx, &ti);
	int rc = geo_read(tx, &ti, &g, &init);
	if (rc == PSTM_ENOENT) {
		if (!m->create) {
			m->missing = true;
			return 0;
		}
		uint64_t nl = (uint64_t)ti.max_slots + 1;
		uint64_t h = pstm_alloc(tx, TASKQ_HDR_BYTES);
		uint64_t lanes = pstm_alloc(tx, nl * TASKQ_LANE_BYTES);
		uint64_t st = pstm_alloc(tx, TASKQ_STATS_BYTES);
		S(tx, h + TQH(lanes), lanes);
		S(tx, h + TQH(nlanes), nl);
		S(tx, h + TQH(stats), st);
		S(tx, h + TQH(init_words), 0);
		S(tx, h + TQH(total_words), total_words(nl));
		S(tx, h + TQH(ntypes), 0);
		S(tx, h + TQH(failed_count), 0);
		S(tx, h + TQH(failed_head), 0);
		S(tx, h + TQH(first_err), 0);
		S(tx, h + TQH(lanes_used), 0);
		S(tx, h + TQH(magic), TASKQ_MAGIC);
		tx_store_meta(tx, anchor_word(&ti), h);
		return 0;
	}
	uint64_t total = total_words(g.nlanes);
	if (init == total)
		return geo_get(tx, m->s, &g);
	uint64_t step = ti.write_cap / 2;
	step = step < 16 ? 16 : step > INIT_STEP_MAX ? INIT_STEP_MAX : step;
	uint64_t end = init + step < total ? init + step : total;
	uint64_t lane_words = (uint64_t)g.nlanes * (TASKQ_LANE_BYTES / 8);
	for (uint64_t i = init; i < end; i++) {
		uint64_t off;
		if (i < TASKQ_NAMES_WORDS)
			off = g.hdr + TQH(names) + 8 * i;
		else if (i - TASKQ_NAMES_WORDS < lane_words)
			off = g.lanes + 8 * (i - TASKQ_NAMES_WORDS);
		else
			off = g.stats + 8 * (i - TASKQ_NAMES_WORDS - lane_words);
		S(tx, off, 0);
	}
	S(tx, g.hdr + TQH(init_words), end);
	return 0;
}

int taskq_open(pstm_region *r, bool create, struct taskq_geo *out)
{
	struct taskq_state *s = taskq_state(r);
	if (!s)
		return PSTM_ENOMEM;
	if (tx_running())
		return PSTM_EINTX;
	while (!atomic_load_explicit(&s->ready, memory_order_acquire)) {
		struct make_arg m = {.s = s, .create = create};
		int rc = pstm_atomic(r, make_step, &m);
		if (rc)
			return rc;
		if (m.missing)
			return PSTM_ENOENT;
	}
	*out = s->geo;
	return 0;
}

/* ------------------------------------------------------------ types */

/* The type named @w in the region's table, or -1. */
static int type_find(pstm_tx *tx, const struct taskq_geo *g, const uint64_t *w)
{
	uint64_t n = L(tx, g->hdr + TQH(ntypes));
	if (n > PSTM_TASK_TYPES_MAX)
		tx_fail(tx, PSTM_ECORRUPT);
	for (uint64_t t = 0; t < n; t++) {
		uint64_t at = g->hdr + TQH(names) + t * TASKQ_NAME_BYTES;
		uint64_t k = 0;
		while (k < TASKQ_NAME_BYTES / 8 && L(tx, at + 8 * k) == w[k])
			k++;
		if (k == TASKQ_NAME_BYTES / 8)
			return (int)t;
	}
	return -1;
}

struct intern_arg {
	const uint64_t *w;
	struct taskq_geo g;
	uint32_t type;
};

/* The type of name a->w, added to the table if new. */
static int intern(pstm_tx *tx, void *arg)
{
	struct intern_arg *a = arg;
	int t = type_find(tx, &a->g, a->w);
	if (t < 0) {
		uint64_t n = L(tx, a->g.hdr + TQH(ntypes));
		if (n == PSTM_TASK_TYPES_MAX)
			return PSTM_ETYPESFULL;
		uint64_t at = a->g.hdr + TQH(names) + n * TASKQ_NAME_BYTES;
		for (uint64_t k = 0; k < TASKQ_NAME_BYTES / 8; k++)
			S(tx, at + 8 * k, a->w[k]);
		S(tx, a->g.hdr + TQH(ntypes), n + 1);
		t = (int)n;
	}
	a->type = (uint32_t)t;
	return 0;
}

int pstm_register(pstm_region *r, const char *name, pstm_task_fn fn)
{
	uint64_t w[TASKQ_NAME_BYTES / 8];
	if (!r || name_words(name, w) < 0)
		return PSTM_EINVAL;
	if (tx_running())
		return PSTM_EINTX;
	struct taskq_state *s = taskq_state(r);
	if (!s)
		return PSTM_ENOMEM;
	int t = local_find(s, w);
	if (t < 0) {
		struct intern_arg a = {.w = w};
		int rc = taskq_open(r, true, &a.g);
		if (!rc)
			rc = pstm_atomic(r, intern, &a);
		if (rc)
			return rc;
		t = (int)a.type;
		local_add(s, w, a.type);
	}
	if (!fn)
		return 0;
	pstm_task_fn none = NULL;
	if (!atomic_compare_exchange_strong_explicit(&s->fn[t], &none, fn,
						     memory_order_acq_rel,
						     memory_order_acquire) &&
	    none != fn)
		return PSTM_EEXIST;
	atomic_fetch_or_explicit(&s->mask, 1ull << t, memory_order_acq_rel);
	return 0;
}

/* Inside a transaction: the type of name @w, or PSTM_ENOENT. */
static int type_of(pstm_tx *tx, struct taskq_state *s, const uint64_t *w,
		   struct taskq_geo *g)
{
	int rc = geo_get(tx, s, g);
	if (rc)
		return rc;
	int t = local_find(s, w);
	if (t >= 0)
		return t;
	t = type_find(tx, g, w);
	if (t < 0)
		return PSTM_ENOENT;
	local_add(s, w, (uint32_t)t); /* names never leave the table */
	return t;
}

/* ------------------------------------------------------------ lanes */

void taskq_note_lane(pstm_tx *tx, struct taskq_state *s, const struct taskq_geo *g,
		      uint32_t l)
{
	if (l < atomic_load_explicit(&s->used_seen, memory_order_relaxed))
		return;
	uint64_t u = L(tx, g->hdr + TQH(lanes_used));
	if (u > l) {
		/* committed (it only grows): no need to read it again */
		uint32_t cur = atomic_load_explicit(&s->used_seen, memory_order_relaxed);
		while (cur < u && !atomic_compare_exchange_weak(&s->used_seen, &cur, (uint32_t)u))
			;
		return;
	}
	S(tx, g->hdr + TQH(lanes_used), (uint64_t)l + 1);
}

/* Enqueue a task of @type in this slot's lane, as part of @tx. */
static void push(pstm_tx *tx, struct taskq_state *s, const struct taskq_geo *g,
		 uint64_t type, const void *arg, size_t len)
{
	struct tx_info ti;
	tx_info(tx, &ti);
	uint64_t lw = lane_at(g, ti.slot);
	uint64_t n = pstm_alloc(tx, TASKQ_NODE_HDR + len);
	uint64_t seq = L(tx, lw + TQL(seq));
	S(tx, lw + TQL(seq), seq + 1);
	S(tx, n + TQN(id), (uint64_t)ti.slot << TASKQ_ID_SEQ_BITS |
				   (seq & ((1ull << TASKQ_ID_SEQ_BITS) - 1)));
	S(tx, n + TQN(meta), taskq_meta(type, len));
	if (len)
		pstm_write(tx, n + TASKQ_NODE_HDR, arg, len);
	link_top(tx, &ti, lw, n);
	count_add(tx, g, &ti, type, TQC(pending), 1);
	taskq_note_lane(tx, s, g, ti.slot);
}

static int enqueue_args_ok(const char *name, const void *arg, size_t len, uint64_t *w)
{
	if (name_words(name, w) < 0 || (len && !arg) || len > PSTM_TASK_ARG_MAX)
		return PSTM_EINVAL;
	return 0;
}

int pstm_tx_enqueue(pstm_tx *tx, const char *name, const void *arg, size_t len)
{
	uint64_t w[TASKQ_NAME_BYTES / 8];
	struct taskq_geo g;
	if (!tx || enqueue_args_ok(name, arg, len, w))
		return PSTM_EINVAL;
	struct taskq_state *s = taskq_state(pstm_tx_region(tx));
	if (!s)
		tx_fail(tx, PSTM_ENOMEM);
	int t = type_of(tx, s, w, &g);
	if (t < 0)
		return t;
	push(tx, s, &g, (uint64_t)t, arg, len);
	return 0;
}

struct enqueue_arg {
	const char *name;
	const void *arg;
	size_t len;
};

static int enqueue_fn(pstm_tx *tx, void *arg)
{
	struct enqueue_arg *e = arg;
	return pstm_tx_enqueue(tx, e->name, e->arg, e->len);
}

int pstm_enqueue(pstm_region *r, const char *name, const void *arg, size_t len)
{
	uint64_t w[TASKQ_NAME_BYTES / 8];
	if (!r || enqueue_args_ok(name, arg, len, w))
		return PSTM_EINVAL;
	if (tx_running())
		return PSTM_EINTX;
	struct enqueue_arg e = {name, arg, len};
	return pstm_atomic(r, enqueue_fn, &e);
}

/* ------------------------------------------------------------ pstm queue */

struct list_arg {
	struct taskq_state *s;
	struct taskq_geo g;
	struct taskq_listing *l;
	uint64_t cap;     /* entries l->failed has room for */
};

static int list_fn(pstm_tx *tx, void *arg)
{
	struct list_arg *a = arg;
	struct taskq_listing *l = a->l;
	const struct taskq_geo *g = &a->g;
	struct tx_info ti;
	tx_info(tx, &ti);
	struct taskq_failed_task *keep = l->failed;
	memset(l, 0, sizeof(*l));
	l->failed = keep;
	uint64_t nt = L(tx, g->hdr + TQH(ntypes));
	if (nt > PSTM_TASK_TYPES_MAX)
		tx_fail(tx, PSTM_ECORRUPT);
	l->ntypes = (uint32_t)nt;
	uint64_t mask = taskq_mask(a->s);
	for (uint64_t t = 0; t < nt; t++) {
		struct taskq_type_info *ty = &l->types[t];
		pstm_read(tx, g->hdr + TQH(names) + t * TASKQ_NAME_BYTES, ty->name,
			  PSTM_TASK_NAME_MAX);
		ty->name[PSTM_TASK_NAME_MAX] = 0;
		ty->registered = mask >> t & 1;
		for (uint64_t s = 0; s < TASKQ_STRIPES; s++) {
			ty->pending += L(tx, taskq_count_word(g->stats, s, t, TQC(pending)));
			ty->executed += L(tx, taskq_count_word(g->stats, s, t, TQC(executed)));
			ty->failed += L(tx, taskq_count_word(g->stats, s, t, TQC(failed)));
			ty->aborts += L(tx, taskq_count_word(g->stats, s, t, TQC(aborts)));
		}
		l->pending += ty->pending;
	}
	/* every lane, walked: the counters' sum must agree */
	uint64_t limit = (ti.heap_hi - ti.heap_lo) / TASKQ_NODE_HDR;
	for (uint32_t ln = 0; ln < g->nlanes; ln++) {
		uint64_t lw = lane_at(g, ln), prev = 0;
		for (uint64_t n = link(tx, &ti, lw + TQL(bottom)); n;
		     n = link(tx, &ti, n + TQN(up))) {
			node_meta(tx, &ti, n);
			if (!limit-- || link(tx, &ti, n + TQN(down)) != prev)
				tx_fail(tx, PSTM_ECORRUPT); /* a cycle or a bad link */
			l->in_lanes++;
			prev = n;
		}
		if (link(tx, &ti, lw + TQL(top)) != prev)
			tx_fail(tx, PSTM_ECORRUPT);
	}
	l->failed_count = L(tx, g->hdr + TQH(failed_count));
	l->first_err = (int)(int64_t)L(tx, g->hdr + TQH(first_err));
	for (uint64_t n = link(tx, &ti, g->hdr + TQH(failed_head)); n;
	     n = link(tx, &ti, n + TQN(down))) {
		uint64_t m = node_meta(tx, &ti, n);
		if (!limit--)
			tx_fail(tx, PSTM_ECORRUPT);
		if (l->nfailed == a->cap) {
			size_t cap = a->cap ? 2 * a->cap : 64;
			struct taskq_failed_task *p = realloc(l->failed, cap * sizeof(*p));
			if (!p)
				return PSTM_ENOMEM;
			l->failed = p;
			a->cap = cap;
		}
		uint64_t type = taskq_meta_type(m);
		l->failed[l->nfailed++] = (struct taskq_failed_task){
			.id = L(tx, n + TQN(id)),
			.type = (uint32_t)type,
			.err = (int)(int64_t)L(tx, n + TQN(up)),
			.len = taskq_meta_len(m),
		};
		if (type < nt)
			l->types[type].failed_now++;
	}
	if (l->nfailed != l->failed_count)
		tx_fail(tx, PSTM_ECORRUPT);
	return 0;
}

int taskq_list(pstm_region *r, struct taskq_listing *out)
{
	struct list_arg a = {.l = out};
	memset(out, 0, sizeof(*out));
	int rc = taskq_open(r, false, &a.g);
	if (rc)
		return rc;
	a.s = taskq_state(r);
	rc = pstm_atomic_ro(r, list_fn, &a);
	if (rc)
		taskq_listing_free(out);
	return rc;
}

void taskq_listing_free(struct taskq_listing *l)
{
	free(l->failed);
	l->failed = NULL;
	l->nfailed = 0;
}

struct move_arg {
	struct taskq_state *s;
	struct taskq_geo g;
	bool retry;        /* else drop */
	uint64_t moved;    /* by this attempt */
	bool more;
};

/* Move (retry) or free (drop) up to a batch of failed tasks. */
static int move_failed(pstm_tx *tx, void *arg)
{
	struct move_arg *a = arg;
	const struct taskq_geo *g = &a->g;
	struct tx_info ti;
	tx_info(tx, &ti);
	a->moved = 0;
	uint64_t batch = ti.write_cap / 16;
	batch = batch < 1 ? 1 : batch > BATCH_MAX ? BATCH_MAX : batch;
	uint64_t fc = L(tx, g->hdr + TQH(failed_count));
	uint64_t n = link(tx, &ti, g->hdr + TQH(failed_head));
	while (n && a->moved < batch) {
		uint64_t m = node_meta(tx, &ti, n);
		uint64_t next = link(tx, &ti, n + TQN(down));
		if (!fc)
			tx_fail(tx, PSTM_ECORRUPT);
		if (a->retry) {
			link_top(tx, &ti, lane_at(g, ti.slot), n);
			count_add(tx, g, &ti, taskq_meta_type(m), TQC(pending), 1);
		} else {
			pstm_free(tx, n);
		}
		fc--;
		a->moved++;
		n = next;
	}
	if (a->retry && a->moved)
		taskq_note_lane(tx, a->s, g, ti.slot);
	S(tx, g->hdr + TQH(failed_head), n);
	S(tx, g->hdr + TQH(failed_count), fc);
	if (!fc)
		S(tx, g->hdr + TQH(first_err), 0);
	a->more = n != 0;
	return 0;
}

static int move_all(pstm_region *r, bool retry, uint64_t *count)
{
	struct move_arg a = {.retry = retry};
	*count = 0;
	int rc = taskq_open(r, false, &a.g);
	if (rc == PSTM_ENOENT)
		return 0; /* no queue: nothing failed */
	a.s = taskq_state(r);
	do {
		if (!rc)
			rc = pstm_atomic(r, move_failed, &a);
		if (!rc)
			*count += a.moved;
	} while (!rc && a.more);
	return rc;
}

int taskq_retry_failed(pstm_region *r, uint64_t *n) { return move_all(r, true, n); }
int taskq_drop_failed(pstm_region *r, uint64_t *n) { return move_all(r, false, n); }
