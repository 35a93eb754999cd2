/*
 * taskq_worker.c - the transactions of pstm_queue_run's workers on the
 * region's task queue: bind a lane, take and run the own top, scan for
 * and steal tasks, record a failure, the idle check.  lib/taskq.c owns
 * the format and describes the design; lib/taskrun.c runs the loop.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "taskq.h"
#include "taskq_lane.h"
#include "taskq_layout.h"
#include "tx.h"

#define ALIVE_RECHECK_NS 10000000ull /* owner liveness: look again after */
#define STEAL_MAX 16       /* tasks one steal moves */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int taskq_worker_init(struct taskq_worker *w, pstm_region *r, const struct taskq_geo *g)
{
	memset(w, 0, sizeof(*w));
	w->r = r;
	w->s = taskq_state(r);
	w->g = *g;
	w->cap = 256;
	w->buf = malloc(w->cap);
	w->rot_first = calloc(g->nlanes, sizeof(*w->rot_first));
	w->rng = (now_ns() ^ (uint64_t)(uintptr_t)w) | 1;
	if (!w->s || !w->buf || !w->rot_first) {
		taskq_worker_fini(w);
		return PSTM_ENOMEM;
	}
	return 0;
}

void taskq_worker_fini(struct taskq_worker *w)
{
	free(w->buf);
	free(w->rot_first);
	w->buf = NULL;
	w->rot_first = NULL;
}

static int bind_fn(pstm_tx *tx, void *arg)
{
	struct taskq_worker *w = arg;
	struct tx_info ti;
	tx_info(tx, &ti);
	uint64_t lw = lane_at(&w->g, ti.slot);
	w->lane = ti.slot;
	w->tag = tx_proc_tag(tx);
	if (w->phase) { /* bind */
		S(tx, lw + TQL(owner), w->tag);
		S(tx, lw + TQL(mask), w->bound_mask);
		taskq_note_lane(tx, w->s, &w->g, ti.slot);
	} else {
		S(tx, lw + TQL(owner), 0);
		S(tx, lw + TQL(mask), 0);
	}
	return 0;
}

int taskq_bind(struct taskq_worker *w, bool bind)
{
	w->phase = bind;
	w->bound_mask = bind ? taskq_mask(w->s) : 0;
	int rc = pstm_atomic(w->r, bind_fn, w);
	w->phase = TASKQ_PH_TAKE;
	return rc;
}

/* Whether the process tag @tag is dead; answers are kept for 10 ms. */
static bool owner_dead(pstm_tx *tx, struct taskq_worker *w, uint64_t tag)
{
	if (tag == w->tag)
		return false;
	uint64_t now = now_ns();
	for (unsigned i = 0; i < TASKQ_TAGS; i++)
		if (w->alive[i].tag == tag && now - w->alive[i].at_ns < ALIVE_RECHECK_NS)
			return w->alive[i].dead;
	bool dead = tx_proc_tag_dead(tx, tag);
	unsigned i = w->alive_next++ % TASKQ_TAGS;
	w->alive[i].tag = tag;
	w->alive[i].at_ns = now;
	w->alive[i].dead = dead;
	return dead;
}

static uint8_t *arg_buf(struct taskq_worker *w, uint64_t len)
{
	if (len > w->cap) {
		size_t cap = len > 2 * w->cap ? (size_t)len : 2 * w->cap;
		uint8_t *p = realloc(w->buf, cap);
		if (!p)
			return NULL;
		w->buf = p;
		w->cap = cap;
	}
	return w->buf;
}

/*
 * Run task @n, the top of the own lane (meta @m, id @id, the task below
 * it @down), in the running transaction: copy its argument, unlink and
 * free it, count it, call its function.  Returns the function's value.
 * Tasks run only from the own top: a thief moves what it steals there
 * first (steal_fn).
 */
static int run_task(pstm_tx *tx, struct taskq_worker *w, const struct tx_info *ti,
		    uint64_t n, uint64_t m, uint64_t id, uint64_t down)
{
	uint64_t own = lane_at(&w->g, ti->slot);
	uint64_t type = taskq_meta_type(m), len = taskq_meta_len(m);
	pstm_task_fn fn = taskq_fn_of(w->s, type);
	uint8_t *buf = arg_buf(w, len);
	if (!buf)
		return PSTM_ENOMEM; /* before the task: the run's error, not its */
	if (len)
		pstm_read(tx, n + TASKQ_NODE_HDR, buf, len);
	unlink_node(tx, own, 0, down);
	pstm_free(tx, n);
	if (w->last_id == id) {
		w->attempts++;
	} else {
		w->last_id = id;
		w->attempts = 1;
	}
	count_add(tx, &w->g, ti, type, TQC(pending), (uint64_t)-1);
	count_add(tx, &w->g, ti, type, TQC(executed), 1);
	if (w->attempts > 1)
		count_add(tx, &w->g, ti, type, TQC(aborts), w->attempts - 1);
	uint64_t top0 = L(tx, own + TQL(top)); /* = down: its own write */
	w->t_lane = ti->slot;
	w->t_node = n;
	w->t_id = id;
	w->t_type = type;
	w->phase = TASKQ_PH_RUN;
	int rc = fn(tx, buf, (size_t)len);
	if (rc)
		return rc;
	/* pushes since top0 are this attempt's own words: reading them
	 * adds nothing another worker writes to the read set */
	uint64_t top1 = L(tx, own + TQL(top));
	w->stealable = top1 != top0 && top1 && L(tx, top1 + TQN(down));
	w->outcome = TASKQ_RAN;
	return 0;
}

static void attempt_begin(struct taskq_worker *w)
{
	w->phase = TASKQ_PH_TAKE;
	w->outcome = TASKQ_EMPTY;
	w->stealable = false;
}

/* The own top's type has no function here: move it to the shared lane. */
static void move_to_shared(pstm_tx *tx, struct taskq_worker *w, const struct tx_info *ti,
			   uint64_t lw, uint64_t n, uint64_t up, uint64_t down)
{
	unlink_node(tx, lw, up, down);
	link_top(tx, ti, lane_at(&w->g, shared_lane(&w->g)), n);
	w->outcome = TASKQ_MOVED;
}

static int take_own_fn(pstm_tx *tx, void *arg)
{
	struct taskq_worker *w = arg;
	struct tx_info ti;
	attempt_begin(w);
	tx_info(tx, &ti);
	uint64_t lw = lane_at(&w->g, ti.slot);
	uint64_t n = link(tx, &ti, lw + TQL(top));
	if (!n)
		return 0;
	uint64_t m = node_meta(tx, &ti, n);
	uint64_t down = link(tx, &ti, n + TQN(down));
	if (!taskq_fn_of(w->s, taskq_meta_type(m))) {
		move_to_shared(tx, w, &ti, lw, n, 0, down);
		return 0;
	}
	return run_task(tx, w, &ti, n, m, L(tx, n + TQN(id)), down);
}

int taskq_take_own(struct taskq_worker *w)
{
	int rc = pstm_atomic(w->r, take_own_fn, w);
	w->last_id = 0;
	return rc;
}

struct scan_arg {
	struct taskq_worker *w;
	struct taskq_cand *c;
};

static int scan_fn(pstm_tx *tx, void *arg)
{
	struct scan_arg *a = arg;
	struct taskq_worker *w = a->w;
	struct taskq_cand *c = a->c;
	struct tx_info ti;
	*c = (struct taskq_cand){.kind = TASKQ_NONE};
	if (w->reruns++) { /* a commit changed what we read: not idle */
		c->busy = true;
		return 0;
	}
	tx_info(tx, &ti);
	uint64_t used = L(tx, w->g.hdr + TQH(lanes_used));
	if (used > shared_lane(&w->g))
		tx_fail(tx, PSTM_ECORRUPT);
	/* lanes 0 .. used-1, then the shared one, from a random start */
	uint64_t k = used + 1, start = xorshift64(&w->rng) % k;
	for (uint64_t i = 0; i < k; i++) {
		uint64_t j = (start + i) % k;
		uint32_t l = j == used ? shared_lane(&w->g) : (uint32_t)j;
		if (l == w->lane)
			continue;
		uint64_t lw = lane_at(&w->g, l);
		uint64_t b = link(tx, &ti, lw + TQL(bottom));
		if (!b)
			continue;
		uint64_t m = node_meta(tx, &ti, b);
		uint64_t up = link(tx, &ti, b + TQN(up));
		uint64_t owner = L(tx, lw + TQL(owner));
		bool owned = owner && !owner_dead(tx, w, owner);
		uint64_t id = L(tx, b + TQN(id));
		if (taskq_fn_of(w->s, taskq_meta_type(m))) {
			if (up || !owned) { /* a live owner runs its last one */
				*c = (struct taskq_cand){TASKQ_STEAL, false, l, b, id};
				return 0;
			}
		} else if (!owned && up && c->kind == TASKQ_NONE && w->rot_first[l] != id) {
			*c = (struct taskq_cand){TASKQ_ROTATE, false, l, b, id};
		}
	}
	return 0;
}

int taskq_scan(struct taskq_worker *w, struct taskq_cand *c)
{
	struct scan_arg a = {w, c};
	w->reruns = 0;
	return pstm_atomic_ro(w->r, scan_fn, &a);
}

/*
 * Steal: move up to STEAL_MAX tasks from the bottom of lane c->lane to
 * the top of the own lane, in one short transaction (no task runs in
 * it, so thieves of the same lane conflict only briefly; the worker then
 * takes them from its own lane).  The tasks are only moved: they stay in
 * the queue, and one killed after the move is stolen back from the dead
 * worker's lane.  Of a lane whose owner is alive, the top is never
 * taken, and at most half when the lane is short.  Moves only tasks
 * this process can run, from the bottom up to the first it cannot.
 */
static int steal_fn(pstm_tx *tx, void *arg)
{
	struct scan_arg *a = arg;
	struct taskq_worker *w = a->w;
	const struct taskq_cand *c = a->c;
	struct tx_info ti;
	attempt_begin(w);
	tx_info(tx, &ti);
	uint64_t lw = lane_at(&w->g, c->lane);
	uint64_t b = link(tx, &ti, lw + TQL(bottom));
	if (b != c->node || !b)
		return 0;
	uint64_t m = node_meta(tx, &ti, b);
	if (L(tx, b + TQN(id)) != c->id)
		return 0; /* another task in the same block */
	uint64_t up = link(tx, &ti, b + TQN(up));
	uint64_t owner = L(tx, lw + TQL(owner));
	bool owned = owner && !owner_dead(tx, w, owner);
	if (c->kind == TASKQ_ROTATE) {
		if (!up || owned)
			return 0;
		unlink_node(tx, lw, up, 0);
		link_top(tx, &ti, lw, b);
		w->outcome = TASKQ_MOVED;
		return 0;
	}
	if ((!up && owned) || !taskq_fn_of(w->s, taskq_meta_type(m)))
		return 0;
	/* the segment seg[0..k): from the bottom up, runnable here; of a
	 * live owner's lane not its top, and at most half */
	uint64_t seg[STEAL_MAX], k = 1, next = up;
	bool at_top = false;
	seg[0] = b;
	while (next && k < STEAL_MAX) {
		uint64_t nm = node_meta(tx, &ti, next);
		uint64_t nup = link(tx, &ti, next + TQN(up));
		if (!taskq_fn_of(w->s, taskq_meta_type(nm)))
			break;
		if (owned && !nup) {
			at_top = true;
			break;
		}
		seg[k++] = next;
		next = nup;
	}
	if (at_top) /* the lane holds k + 1 tasks */
		k = (k + 1) / 2 ? (k + 1) / 2 : 1;
	uint64_t last = seg[k - 1];
	next = link(tx, &ti, last + TQN(up));
	/* out of lane c->lane */
	if (next)
		S(tx, next + TQN(down), 0);
	else
		S(tx, lw + TQL(top), 0);
	S(tx, lw + TQL(bottom), next);
	/* onto the own lane's top */
	uint64_t own = lane_at(&w->g, ti.slot);
	uint64_t t = link(tx, &ti, own + TQL(top));
	S(tx, b + TQN(down), t);
	if (t)
		S(tx, t + TQN(up), b);
	else
		S(tx, own + TQL(bottom), b);
	S(tx, last + TQN(up), 0);
	S(tx, own + TQL(top), last);
	w->stealable = k > 1 || t;
	w->outcome = TASKQ_MOVED;
	return 0;
}

int taskq_take(struct taskq_worker *w, const struct taskq_cand *c)
{
	struct scan_arg a = {w, (struct taskq_cand *)c};
	int rc = pstm_atomic(w->r, steal_fn, &a);
	if (!rc && c->kind == TASKQ_ROTATE && w->outcome == TASKQ_MOVED &&
	    !w->rot_first[c->lane])
		w->rot_first[c->lane] = c->id;
	return rc;
}

struct fail_arg {
	struct taskq_worker *w;
	int err;
	bool recorded;
};

static int fail_fn(pstm_tx *tx, void *arg)
{
	struct fail_arg *a = arg;
	struct taskq_worker *w = a->w;
	struct tx_info ti;
	a->recorded = false;
	tx_info(tx, &ti);
	uint64_t lw = lane_at(&w->g, w->t_lane);
	uint64_t n = link(tx, &ti, lw + TQL(top));
	if (n != w->t_node || !n)
		return 0; /* taken meanwhile, by a worker that saw it commit */
	uint64_t m = node_meta(tx, &ti, n);
	if (L(tx, n + TQN(id)) != w->t_id)
		return 0;
	uint64_t up = link(tx, &ti, n + TQN(up)), down = link(tx, &ti, n + TQN(down));
	unlink_node(tx, lw, up, down);
	uint64_t h = w->g.hdr;
	S(tx, n + TQN(up), (uint64_t)(int64_t)a->err);
	S(tx, n + TQN(down), link(tx, &ti, h + TQH(failed_head)));
	S(tx, h + TQH(failed_head), n);
	uint64_t fc = L(tx, h + TQH(failed_count));
	if (!fc)
		S(tx, h + TQH(first_err), (uint64_t)(int64_t)a->err);
	S(tx, h + TQH(failed_count), fc + 1);
	uint64_t type = taskq_meta_type(m);
	count_add(tx, &w->g, &ti, type, TQC(pending), (uint64_t)-1);
	count_add(tx, &w->g, &ti, type, TQC(failed), 1);
	if (w->attempts > 1)
		count_add(tx, &w->g, &ti, type, TQC(aborts), w->attempts - 1);
	a->recorded = true;
	return 0;
}

int taskq_fail(struct taskq_worker *w, int err, bool *recorded)
{
	struct fail_arg a = {w, err, false};
	int rc = pstm_atomic(w->r, fail_fn, &a);
	*recorded = !rc && a.recorded;
	return rc;
}

struct failed_arg {
	struct taskq_worker *w;
	int err;
};

static int failed_fn(pstm_tx *tx, void *arg)
{
	struct failed_arg *a = arg;
	a->err = 0;
	if (L(tx, a->w->g.hdr + TQH(failed_count))) {
		a->err = (int)(int64_t)L(tx, a->w->g.hdr + TQH(first_err));
		if (a->err == 0)
			a->err = PSTM_ECORRUPT;
	}
	return 0;
}

int taskq_failed(struct taskq_worker *w, int *first_err)
{
	struct failed_arg a = {w, 0};
	int rc = pstm_atomic_ro(w->r, failed_fn, &a);
	*first_err = a.err;
	return rc;
}

struct idle_arg {
	struct taskq_worker *w;
	struct taskq_idle *o;
};

static int idle_fn(pstm_tx *tx, void *arg)
{
	struct idle_arg *a = arg;
	struct taskq_worker *w = a->w;
	struct taskq_idle *o = a->o;
	const struct taskq_geo *g = &w->g;
	*o = (struct taskq_idle){0};
	if (w->reruns++) {
		o->busy = true;
		return 0;
	}
	o->failed = L(tx, g->hdr + TQH(failed_count));
	if (o->failed) {
		o->first_err = (int)(int64_t)L(tx, g->hdr + TQH(first_err));
		return 0;
	}
	uint64_t used = L(tx, g->hdr + TQH(lanes_used));
	uint64_t nt = L(tx, g->hdr + TQH(ntypes));
	if (used > shared_lane(g) || nt > PSTM_TASK_TYPES_MAX)
		tx_fail(tx, PSTM_ECORRUPT);
	uint64_t live = 0, mine = taskq_mask(w->s);
	for (uint64_t l = 0; l <= used; l++) {
		uint64_t lw = lane_at(g, l == used ? shared_lane(g) : (uint32_t)l);
		uint64_t owner = L(tx, lw + TQL(owner));
		if (owner && !owner_dead(tx, w, owner))
			live |= L(tx, lw + TQL(mask));
	}
	for (uint64_t t = 0; t < nt; t++) {
		uint64_t p = 0;
		for (uint64_t s = 0; s < TASKQ_STRIPES; s++)
			p += L(tx, taskq_count_word(g->stats, s, t, TQC(pending)));
		o->total += p;
		if (mine >> t & 1)
			o->mine += p;
		else if (live >> t & 1)
			o->others += p;
	}
	return 0;
}

int taskq_idle(struct taskq_worker *w, struct taskq_idle *out)
{
	struct idle_arg a = {w, out};
	w->reruns = 0;
	return pstm_atomic_ro(w->r, idle_fn, &a);
}

