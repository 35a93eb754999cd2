/*
 * conflict.c - conflict reports, the writing side: each slot's table of
 * the conflicts its transactions lost (format 2 regions; layout.h), and
 * the name each slot publishes so that those who lose against it can
 * name it.  Nothing here runs on the path of a transaction that does not
 * conflict, but one compare at update commits (conflict_before_commit,
 * stm.h) and the writer tag OR-ed into released orecs (commit.c).
 *
 * Who beat us.  A lock names its holder's slot; an orec released by a
 * commit names the slot that wrote its version (format 2: orec_writer);
 * the slot's pub record gives that slot's process and the name of the
 * transaction it last committed.  The name is the one it publishes when
 * it is looked at: if the slot has since committed another kind of
 * transaction, that one is named.
 *
 * Names.  pstm_tx_name's text; else the transaction function's dynamic
 * symbol, which only the process that runs the function can look up
 * (dladdr: the pointer means nothing in another address space); else,
 * for a function that is not exported (static, or an executable linked
 * without -rdynamic), its module's path and its offset in the module,
 * which the reader (pstm conflicts) resolves from the module's symbol
 * table (lib/elf_sym.c): reading an ELF file is no work for an abort
 * path, and the path and offset still mean the same after the process
 * has exited.  Each descriptor caches the names of its last functions,
 * so dladdr runs once per function.
 *
 * Time lost.  The clock is never read when a transaction begins.  An
 * abort reads it (abort_ns), and so does the retry after the backoff
 * (start_ns): a retried attempt's length is measured, and so is every
 * wait between attempts.  A first attempt has no start time: its length
 * is taken to be the next attempt's (same function, same arguments),
 * added when that one ends: at its abort, or by a commit hook that
 * reads the clock if it commits.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conflict.h"
#include "redo_log.h"
#include "stm.h"

/* the pub_fn of a descriptor that has published nothing yet, or whose
 * pstm_tx_name published a name whose function is not known yet */
static int never_published(pstm_tx *tx, void *arg)
{
	(void)tx;
	(void)arg;
	return 0;
}

void conflict_txd_init(pstm_tx *t)
{
	struct conflict_state *c = &t->cf;
	struct pstm_region *r = t->r;
	memset(c, 0, sizeof(*c));
	c->pub_fn = never_published;
	c->entry = c->pend = -1;
	/* slotless (r->rt_readonly): no table to write; its aborts are
	 * counted in the descriptor only */
	if (r->conflicts && t->slot != TXD_NO_SLOT) {
		c->area = region_conflict_slot(r, t->slot);
		c->nentries = r->conflict_entries;
		c->orec_tag = orec_writer_tag(t->slot);
	}
}

/* ------------------------------------------------- sequence locks */

static uint64_t seq_begin(_Atomic uint64_t *seq)
{
	/* odd; a writer that died here left it odd already */
	uint64_t s = atomic_load_explicit(seq, memory_order_relaxed) | 1;
	atomic_store_explicit(seq, s, memory_order_relaxed);
	cf_fence_release();
	return s;
}

static void seq_end(_Atomic uint64_t *seq, uint64_t s)
{
	atomic_store_explicit(seq, s + 1, memory_order_release);
}

#define ST(p, v) atomic_store_explicit((p), (v), CF_WORD_STORE)
#define LD(p) atomic_load_explicit((p), CF_WORD_LOAD)

static void name_store(struct conflict_name *s, const struct cname *n)
{
	ST(&s->kind, n->kind);
	ST(&s->addr, n->addr);
	for (size_t i = 0; i < CONFLICT_TEXT / 8; i++)
		ST(&s->text[i], n->text[i]);
}

void conflict_name_load(const struct conflict_name *s, struct cname *n)
{
	n->kind = LD(&s->kind);
	n->addr = LD(&s->addr);
	for (size_t i = 0; i < CONFLICT_TEXT / 8; i++)
		n->text[i] = LD(&s->text[i]);
	((char *)n->text)[CONFLICT_TEXT - 1] = 0;
}

static bool name_equal(const struct conflict_name *s, const struct cname *n)
{
	if (LD(&s->kind) != n->kind || LD(&s->addr) != n->addr)
		return false;
	for (size_t i = 0; i < CONFLICT_TEXT / 8; i++)
		if (LD(&s->text[i]) != n->text[i])
			return false;
	return true;
}

bool conflict_pub_read(const struct conflict_slot *cs, uint64_t *pid,
		       struct cname *n)
{
	for (int tries = 0; tries < 8; tries++) {
		uint64_t s1 = atomic_load_explicit(&cs->pub_seq, memory_order_acquire);
		*pid = LD(&cs->pub_pid);
		conflict_name_load(&cs->pub, n);
		cf_fence_acquire();
		uint64_t s2 = atomic_load_explicit(&cs->pub_seq, memory_order_relaxed);
		if (s1 == s2 && !(s1 & 1))
			return true;
		cpu_relax();
	}
	return false;
}

/* ------------------------------------------------------------- names */

static void name_set(struct cname *n, uint64_t kind, uint64_t addr,
		     const char *text)
{
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->addr = addr;
	if (text) {
		size_t k = strnlen(text, CONFLICT_TEXT - 1);
		memcpy(n->text, text, k);
	}
}

/* What dladdr can say about @fn in this process (see the top). */
static void fn_resolve(pstm_fn fn, struct cname *n)
{
	const void *p = (const void *)(uintptr_t)fn;
	Dl_info di;
	char exe[CONFLICT_TEXT + 1];

	if (!dladdr(p, &di) || !di.dli_fbase) {
		name_set(n, CNAME_ADDR, (uint64_t)(uintptr_t)p, NULL);
		return;
	}
	if (di.dli_sname && di.dli_saddr == p) {
		name_set(n, CNAME_SYMBOL, 0, di.dli_sname);
		return;
	}
	const char *mod = di.dli_fname ? di.dli_fname : "";
	if (mod[0] != '/') {
		/* the main program is named as it was started (argv[0]) */
		ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[k > 0 ? k : 0] = 0;
		mod = exe;
	}
	if (strlen(mod) >= CONFLICT_TEXT) {
		/* the reader cannot open a path cut short: the file name
		 * still tells the user where to look */
		const char *b = strrchr(mod, '/');
		mod = b ? b + 1 : mod;
	}
	name_set(n, CNAME_ADDR, (uint64_t)((uintptr_t)p - (uintptr_t)di.dli_fbase),
		 mod);
}

static void fn_name(struct conflict_state *c, pstm_fn fn, struct cname *n)
{
	if (!fn) {
		name_set(n, CNAME_UNNAMED, 0, NULL);
		return;
	}
	for (int i = 0; i < CONFLICT_FN_CACHE; i++)
		if (c->cache[i].fn == fn) {
			*n = c->cache[i].n;
			return;
		}
	fn_resolve(fn, n);
	uint32_t k = c->cache_next++ % CONFLICT_FN_CACHE;
	c->cache[k].fn = fn;
	c->cache[k].n = *n;
}

/* the attempt's own name: pstm_tx_name's, else its function's */
static void own_name(pstm_tx *t, pstm_fn fn, struct cname *n)
{
	struct conflict_state *c = &t->cf;
	if (c->named && c->name_epoch == t->epoch)
		name_set(n, CNAME_GIVEN, 0, c->name);
	else
		fn_name(c, fn, n);
}

static void publish(pstm_tx *t, const struct cname *n)
{
	struct conflict_slot *cs = t->cf.area;
	uint64_t s = seq_begin(&cs->pub_seq);
	ST(&cs->pub_pid, (uint64_t)t->r->owner_pid);
	name_store(&cs->pub, n);
	seq_end(&cs->pub_seq, s);
}

void conflict_publish(pstm_tx *t, pstm_fn fn)
{
	struct conflict_state *c = &t->cf;
	c->pub_fn = fn;
	if (!c->area || (c->named && c->name_epoch == t->epoch))
		return; /* format 1; or pstm_tx_name published it */
	struct cname n;
	fn_name(c, fn, &n);
	publish(t, &n);
	c->pub_name = NULL;
}

int pstm_tx_name(pstm_tx *tx, const char *name)
{
	if (!tx || tx != stm_current())
		return PSTM_EINVAL;
	struct conflict_state *c = &tx->cf;
	c->name = name;
	c->name_epoch = tx->epoch;
	c->named = name != NULL;
	/* a read-only transaction never beats anyone (and writes nothing
	 * shared); the same name as last time is published already */
	if (!name || !c->area || tx->read_only || name == c->pub_name)
		return 0;
	struct cname n, cur;
	name_set(&n, CNAME_GIVEN, 0, name);
	conflict_name_load(&c->area->pub, &cur); /* ours: nobody else writes it */
	if (memcmp(&n, &cur, sizeof(n)) != 0 ||
	    LD(&c->area->pub_pid) != (uint64_t)tx->r->owner_pid)
		publish(tx, &n);
	c->pub_name = name;
	/* the commit then only records which function this name is for */
	c->pub_fn = never_published;
	return 0;
}

/* ------------------------------------------------------------ capture */

/* Has read entry @e changed since it was read? */
static bool read_changed(pstm_tx *t, const struct rentry *e, uint64_t cur)
{
	uint64_t mine = ((uint64_t)t->slot << 1) | OREC_LOCK;
	if (cur == e->o)
		return false;
	if (orec_version(cur) != orec_version(e->o))
		return true;
	/* same version: unchanged, unless another slot holds the lock */
	return orec_is_locked(cur) && (cur & ((1ull << OREC_VSHIFT) - 1)) != mine;
}

/* The first read whose orec changed: that is what beat a validation. */
static bool find_changed(pstm_tx *t, uint64_t *idx, uint64_t *cur)
{
	for (uint32_t i = 0; i < t->nrs; i++) {
		uint64_t v = atomic_load_explicit(&t->r->orecs[t->rs[i].idx],
						  memory_order_acquire);
		if (read_changed(t, &t->rs[i], v)) {
			*idx = t->rs[i].idx;
			*cur = v;
			return true;
		}
	}
	return false;
}

static bool word_of(struct pstm_region *r, uint64_t off, uint64_t idx)
{
	return off && !(off & 7) && off >= r->sb.heap_off && off <= r->heap_hi - 8 &&
	       region_orec_idx(r, off) == idx;
}

/*
 * A word behind orec @idx: the one being loaded, one we write, or one in
 * the redo record of slot @s (the opponent: it holds the lock, or wrote
 * the version last; read while its owner may rewrite it, so each offset
 * is checked against the orec).  0 if none.  The record is not read in
 * ThreadSanitizer builds: its owner writes it with plain stores.
 */
static uint64_t find_word(pstm_tx *t, uint64_t idx, int64_t s)
{
	struct pstm_region *r = t->r;
	if (word_of(r, t->cf.hint_off, idx))
		return t->cf.hint_off;
	for (uint32_t i = 0; i < t->nws; i++)
		if (region_orec_idx(r, t->ws[i].off) == idx)
			return t->ws[i].off;
#ifndef __SANITIZE_THREAD__
	if (s < 0 || s >= r->sb.max_slots)
		return 0;
	struct log_header *h = region_log(r, (uint32_t)s);
	uint64_t n = __atomic_load_n(&h->count, __ATOMIC_RELAXED);
	uint64_t pos = __atomic_load_n(&h->rec_off, __ATOMIC_RELAXED);
	if (n > r->log_cap || pos > r->ring_bytes || (pos & (CACHELINE - 1)) ||
	    record_bytes(n) > r->ring_bytes - pos)
		return 0;
	struct log_entry *e = record_entries(region_record(r, (uint32_t)s, pos));
	for (uint64_t i = 0; i < n; i++) {
		uint64_t off = __atomic_load_n(&e[i].off, __ATOMIC_RELAXED);
		if (word_of(r, off, idx))
			return off;
	}
#else
	(void)s;
#endif
	return 0;
}

/*
 * The slot whose last commit gave orec version @version, when the orec
 * no longer says (our own lock replaced the writer field, or a format 1
 * orec): a commit's log header keeps its wv until the slot's next
 * commit.  -1 if none does (it has committed again since).  Not in
 * ThreadSanitizer builds (plain stores, as above).
 */
static int64_t writer_by_version(pstm_tx *t, uint64_t version)
{
#ifndef __SANITIZE_THREAD__
	struct pstm_region *r = t->r;
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		if (s == t->slot)
			continue;
		uint64_t st = atomic_load_explicit(&r->slots[s].state,
						   memory_order_relaxed);
		if (SLOT_ST(st) == SLOT_ACTIVE &&
		    __atomic_load_n(&region_log(r, s)->wv, __ATOMIC_RELAXED) == version)
			return s;
	}
#else
	(void)t;
	(void)version;
#endif
	return -1;
}

void conflict_note_lock(pstm_tx *t, uint64_t idx, uint64_t v)
{
	struct conflict_state *c = &t->cf;
	c->noted = true;
	c->cause = CONFLICT_LOCKED;
	c->idx = idx;
	c->orec = v;
}

void conflict_capture(pstm_tx *t, int cause)
{
	struct conflict_state *c = &t->cf;
	struct pstm_region *r = t->r;
	if (!c->area) {
		c->noted = false;
		return;
	}
	c->abort_ns = mono_ns();
	if (c->noted) {
		c->noted = false;
	} else {
		c->cause = cause == ST_AB_VALIDATE ? CONFLICT_VALIDATE
			   : cause == ST_AB_LOCK   ? CONFLICT_LOCKED
						   : CONFLICT_NEWER;
		if (!find_changed(t, &c->idx, &c->orec)) {
			/* a lock that went away unchanged (its commit
			 * aborted): the word being read if any, else
			 * nowhere in particular */
			c->idx = c->hint_off ? region_orec_idx(r, c->hint_off)
					     : UINT64_MAX;
			c->orec = c->hint_off ? atomic_load_explicit(
							&r->orecs[c->idx],
							memory_order_acquire)
					      : 0;
		}
	}
	int64_t s = c->idx == UINT64_MAX     ? -1
		    : orec_is_locked(c->orec) ? (int64_t)orec_owner(c->orec)
					      : orec_writer(c->orec);
	if (s == (int64_t)t->slot || s >= (int64_t)r->sb.max_slots)
		s = -1;
	if (s < 0 && c->idx != UINT64_MAX && orec_version(c->orec))
		s = writer_by_version(t, orec_version(c->orec));
	c->off = c->idx == UINT64_MAX ? 0 : find_word(t, c->idx, s);
	c->hint_off = 0;
	c->other_slot = s < 0 ? 0 : (uint32_t)s + 1;
	c->other_pid = 0;
	memset(&c->other, 0, sizeof(c->other));
	if (s >= 0 && !conflict_pub_read(region_conflict_slot(r, (uint32_t)s),
					 &c->other_pid, &c->other)) {
		c->other_pid = 0;
		memset(&c->other, 0, sizeof(c->other));
	}
}

/* ------------------------------------------------------------ record */

static void add_lost(struct conflict_entry *e, uint64_t ns)
{
	uint64_t s = seq_begin(&e->seq);
	ST(&e->lost_ns, LD(&e->lost_ns) + ns);
	seq_end(&e->seq, s);
}

/* The entry of this conflict in our table: the same one again, an empty
 * one, or the one that lost least time so far (replaced). */
static int entry_for(struct conflict_state *c, uint64_t pid,
		     const struct cname *mine, bool *fresh)
{
	struct conflict_entry *e = c->area->e;
	int victim = 0;
	for (int i = 0; i < (int)c->nentries; i++) {
		if (!LD(&e[i].aborts)) {
			*fresh = true;
			return i;
		}
		if (LD(&e[i].cause) == (uint64_t)c->cause && LD(&e[i].pid) == pid &&
		    LD(&e[i].other_pid) == c->other_pid &&
		    name_equal(&e[i].mine, mine) && name_equal(&e[i].other, &c->other)) {
			*fresh = false;
			return i;
		}
		if (LD(&e[i].lost_ns) < LD(&e[victim].lost_ns))
			victim = i;
	}
	*fresh = true;
	return victim;
}

/* Count a hit of @where (space-saving: a new place takes the place of
 * the least hit one, with its count plus one). */
static void spot_hit(struct conflict_entry *e, uint64_t where)
{
	int low = 0;
	for (int i = 0; i < CONFLICT_SPOTS; i++) {
		uint64_t w = LD(&e->spot[i].where), h = LD(&e->spot[i].hits);
		if (w == where || !h) {
			ST(&e->spot[i].where, where);
			ST(&e->spot[i].hits, h + 1);
			return;
		}
		if (h < LD(&e->spot[low].hits))
			low = i;
	}
	ST(&e->spot[low].where, where);
	ST(&e->spot[low].hits, LD(&e->spot[low].hits) + 1);
}

void conflict_aborted(pstm_tx *t, pstm_fn fn)
{
	struct conflict_state *c = &t->cf;
	if (!c->area || !c->cause)
		return;
	struct cname mine;
	own_name(t, fn, &mine);
	uint64_t pid = (uint64_t)t->r->owner_pid;
	bool first = t->retries == 0, fresh;
	uint64_t attempt_ns = !first && c->abort_ns > c->start_ns
				      ? c->abort_ns - c->start_ns
				      : 0;
	int i = entry_for(c, pid, &mine, &fresh);
	struct conflict_entry *e = &c->area->e[i];
	if (fresh && c->pend == i)
		c->pend = -1; /* replaced: its estimate has nowhere to go */

	uint64_t s = seq_begin(&e->seq);
	if (fresh) {
		ST(&e->aborts, 0);
		ST(&e->lost_ns, 0);
		ST(&e->pid, pid);
		ST(&e->other_pid, c->other_pid);
		ST(&e->cause, (uint64_t)c->cause);
		for (int k = 0; k < CONFLICT_SPOTS; k++) {
			ST(&e->spot[k].where, 0);
			ST(&e->spot[k].hits, 0);
		}
		name_store(&e->mine, &mine);
		name_store(&e->other, &c->other);
	}
	ST(&e->aborts, LD(&e->aborts) + 1);
	ST(&e->lost_ns, LD(&e->lost_ns) + attempt_ns);
	ST(&e->last_ns, c->abort_ns);
	ST(&e->other_slot, c->other_slot);
	if (c->off || c->idx != UINT64_MAX)
		spot_hit(e, c->off ? c->off : c->idx << 1 | 1);
	seq_end(&e->seq, s);

	if (first) {
		c->pend = i;
	} else if (c->pend >= 0) {
		/* the first attempt is estimated by this one */
		add_lost(&c->area->e[c->pend], attempt_ns);
		c->pend = -1;
	}
	c->entry = i;
	c->cause = 0;
}

/* Commit hook of a retry that follows a first attempt's abort: its
 * length is that attempt's estimate. */
static void retry_committed(pstm_region *r, void *a, void *b)
{
	pstm_tx *t = a;
	struct conflict_state *c = &t->cf;
	(void)r;
	(void)b;
	if (c->pend < 0)
		return;
	uint64_t now = mono_ns();
	add_lost(&c->area->e[c->pend], now > c->start_ns ? now - c->start_ns : 0);
	c->pend = -1;
}

void conflict_retrying(pstm_tx *t)
{
	struct conflict_state *c = &t->cf;
	if (c->entry < 0)
		return;
	uint64_t now = mono_ns();
	/* the abort hooks, the backoff, an escalation: all lost */
	add_lost(&c->area->e[c->entry], now > c->abort_ns ? now - c->abort_ns : 0);
	c->start_ns = now;
	c->entry = -1;
	if (c->pend < 0)
		return;
	/* between attempts: the hook list is empty and ours; no memory, no
	 * estimate (a diagnostic never fails a transaction) */
	struct tx_hook *h = malloc(sizeof(*h));
	if (!h)
		return;
	*h = (struct tx_hook){retry_committed, t, NULL, t->hooks};
	t->hooks = h;
}
