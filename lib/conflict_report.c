/*
 * conflict_report.c - pstm conflicts: the conflict tables of every slot
 * (format 2 regions; layout.h, written by lib/conflict.c), read once
 * through a read-only mapping (region_map_readonly: no attaching, no
 * recovery, read permission enough), merged across the slots of each
 * process, the names of unexported functions looked up in their
 * modules' symbol tables (lib/elf_sym.c), sorted by the time lost.
 * Entries change while they are read: each one is read whole under its
 * sequence lock or left out (counted as torn).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "conflict.h"
#include "conflict_report.h"
#include "elf_sym.h"

static const char *cause_text[] = {
	[CONFLICT_NONE] = "unknown cause",
	[CONFLICT_NEWER] = "read met a newer version",
	[CONFLICT_LOCKED] = "lock held",
	[CONFLICT_VALIDATE] = "validation failed",
};
static const char *cause_key[] = {
	[CONFLICT_NONE] = "unknown",
	[CONFLICT_NEWER] = "newer_version",
	[CONFLICT_LOCKED] = "lock_held",
	[CONFLICT_VALIDATE] = "validation_failed",
};

const char *conflict_cause_text(int c)
{
	return c > 0 && c <= CONFLICT_VALIDATE ? cause_text[c] : cause_text[0];
}

const char *conflict_cause_key(int c)
{
	return c > 0 && c <= CONFLICT_VALIDATE ? cause_key[c] : cause_key[0];
}

/* one entry as read, before merging */
struct raw {
	uint64_t cause, aborts, lost_ns, last_ns, pid, other_pid, other_slot;
	uint64_t where[CONFLICT_SPOTS], hits[CONFLICT_SPOTS];
	struct cname mine, other;
};

#define LD(p) atomic_load_explicit((p), CF_WORD_LOAD)

/* false if it could not be read whole */
static bool entry_read(const struct conflict_entry *e, struct raw *o)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
		o->aborts = LD(&e->aborts);
		o->lost_ns = LD(&e->lost_ns);
		o->last_ns = LD(&e->last_ns);
		o->pid = LD(&e->pid);
		o->other_pid = LD(&e->other_pid);
		o->cause = LD(&e->cause);
		o->other_slot = LD(&e->other_slot);
		for (int k = 0; k < CONFLICT_SPOTS; k++) {
			o->where[k] = LD(&e->spot[k].where);
			o->hits[k] = LD(&e->spot[k].hits);
		}
		conflict_name_load(&e->mine, &o->mine);
		conflict_name_load(&e->other, &o->other);
		cf_fence_acquire();
		if (!(s1 & 1) &&
		    atomic_load_explicit(&e->seq, memory_order_relaxed) == s1)
			return true;
		cpu_relax();
	}
	return false;
}

/* the rows being merged, with the raw names that key them; places are
 * word offsets (| 2: inferred, see only_word) or orec << 1 | 1 */
struct acc {
	struct conflict_row row;
	struct cname mine, other;
	uint64_t where[CONFLICT_SPOTS * 8], hits[CONFLICT_SPOTS * 8];
	unsigned nwhere;
};

static bool same_key(const struct acc *a, const struct raw *e)
{
	return a->row.cause == (int)e->cause && a->row.mine.pid == e->pid &&
	       a->row.other.pid == e->other_pid &&
	       !memcmp(&a->mine, &e->mine, sizeof(e->mine)) &&
	       !memcmp(&a->other, &e->other, sizeof(e->other));
}

static void add_where(struct acc *a, uint64_t where, uint64_t hits)
{
	for (unsigned i = 0; i < a->nwhere; i++)
		if ((a->where[i] | 2) == (where | 2)) {
			a->where[i] &= where; /* recorded once: not inferred */
			a->hits[i] += hits;
			return;
		}
	unsigned low = 0;
	if (a->nwhere < CONFLICT_SPOTS * 8) {
		low = a->nwhere++;
		a->hits[low] = 0;
	} else {
		for (unsigned i = 1; i < a->nwhere; i++)
			if (a->hits[i] < a->hits[low])
				low = i;
	}
	a->where[low] = where;
	a->hits[low] += hits;
}

static uint64_t only_word(struct pstm_region *r, uint64_t idx);

static void merge(struct pstm_region *r, struct acc *a, const struct raw *e)
{
	a->row.aborts += e->aborts;
	a->row.lost_ns += e->lost_ns;
	a->row.entries++;
	if (e->last_ns >= a->row.last_ns) {
		a->row.last_ns = e->last_ns;
		a->row.other_slot = (uint32_t)e->other_slot;
	}
	for (int k = 0; k < CONFLICT_SPOTS; k++) {
		uint64_t w = e->where[k];
		if (!e->hits[k] || !w)
			continue;
		if (w & 1) {
			uint64_t off = only_word(r, (w >> 1) & r->orec_mask);
			if (off)
				w = off | 2;
		} else {
			w &= ~(uint64_t)7;
		}
		add_where(a, w, e->hits[k]);
	}
}

static const char *base_name(const char *p)
{
	const char *b = strrchr(p, '/');
	return b ? b + 1 : p;
}

/* what to call a recorded name (see lib/conflict.c) */
static void side_name(const struct cname *n, uint64_t pid, struct conflict_side *s)
{
	char sym[128];
	uint64_t delta;
	const char *text = cname_text(n);
	s->pid = pid;
	switch (n->kind) {
	case CNAME_GIVEN:
	case CNAME_SYMBOL:
		s->source = n->kind == CNAME_GIVEN ? SIDE_GIVEN : SIDE_SYMBOL;
		snprintf(s->name, sizeof(s->name), "%s", text);
		return;
	case CNAME_UNNAMED:
		s->source = SIDE_UNNAMED;
		snprintf(s->name, sizeof(s->name), "unnamed");
		return;
	case CNAME_ADDR:
		snprintf(s->module, sizeof(s->module), "%s", text);
		s->addr = n->addr;
		if (text[0] == '/' &&
		    elf_symbol_at(text, n->addr, sym, sizeof(sym), &delta) == 0) {
			s->source = SIDE_SYMTAB;
			if (delta)
				snprintf(s->name, sizeof(s->name), "%s+0x%llx", sym,
					 (unsigned long long)delta);
			else
				snprintf(s->name, sizeof(s->name), "%s", sym);
		} else {
			s->source = SIDE_ADDRESS;
			snprintf(s->name, sizeof(s->name), "%s+0x%llx",
				 text[0] ? base_name(text) : "?",
				 (unsigned long long)n->addr);
		}
		return;
	default:
		s->source = SIDE_UNKNOWN;
		snprintf(s->name, sizeof(s->name), "?");
	}
}

/*
 * The word of orec @idx, if only one word of the heap in use so far
 * (below the heap's top) maps to it: every word anyone wrote is below
 * the top, so that is the word.  0 otherwise.
 */
static uint64_t only_word(struct pstm_region *r, uint64_t idx)
{
	const struct heap_header *hh = (const void *)(r->base + r->sb.heap_off);
	uint64_t top = __atomic_load_n(&hh->top, __ATOMIC_RELAXED);
	uint64_t stride = (r->orec_mask + 1) << OREC_SHIFT;
	if (top <= r->sb.heap_off || top > r->heap_hi)
		return 0; /* damaged: pstm check says so */
	uint64_t off = ((r->sb.heap_off >> OREC_SHIFT) & ~r->orec_mask) | idx;
	off <<= OREC_SHIFT;
	if (off < r->sb.heap_off)
		off += stride;
	return off < top && top - off <= stride ? off : 0;
}

static void finish(struct pstm_region *r, struct acc *a)
{
	struct conflict_row *row = &a->row;
	side_name(&a->mine, row->mine.pid, &row->mine);
	side_name(&a->other, row->other.pid, &row->other);
	/* the hottest places first */
	for (unsigned n = 0; n < CONFLICT_SPOTS && n < a->nwhere; n++) {
		unsigned best = n;
		for (unsigned i = n + 1; i < a->nwhere; i++)
			if (a->hits[i] > a->hits[best])
				best = i;
		uint64_t w = a->where[best], h = a->hits[best];
		a->where[best] = a->where[n];
		a->hits[best] = a->hits[n];
		a->where[n] = w;
		a->hits[n] = h;
		struct conflict_place *p = &row->place[row->nplaces++];
		p->hits = h;
		if (w & 1) {
			p->off = 0;
			p->orec = (w >> 1) & r->orec_mask;
		} else {
			p->off = w & ~(uint64_t)7;
			p->inferred = (w & 2) != 0;
			p->orec = region_orec_idx(r, p->off);
		}
	}
}

static int by_lost(const void *x, const void *y)
{
	const struct conflict_row *a = x, *b = y;
	if (a->lost_ns != b->lost_ns)
		return a->lost_ns < b->lost_ns ? 1 : -1;
	if (a->aborts != b->aborts)
		return a->aborts < b->aborts ? 1 : -1;
	return 0;
}

static int read_tables(struct pstm_region *r, struct conflict_report *rep)
{
	struct acc *acc = NULL;
	uint32_t n = 0, cap = 0;
	for (uint32_t s = 0; s < r->sb.max_slots; s++)
		for (uint32_t i = 0; i < r->conflict_entries; i++) {
			struct raw e;
			if (!entry_read(&region_conflict_slot(r, s)->e[i], &e)) {
				rep->torn++;
				continue;
			}
			if (!e.aborts || e.cause < CONFLICT_NEWER ||
			    e.cause > CONFLICT_VALIDATE)
				continue;
			uint32_t k = 0;
			while (k < n && !same_key(&acc[k], &e))
				k++;
			if (k == n && n == cap) {
				uint32_t nc = cap ? 2 * cap : 16;
				struct acc *na = realloc(acc, nc * sizeof(*acc));
				if (!na) {
					free(acc);
					return PSTM_ENOMEM;
				}
				acc = na;
				cap = nc;
			}
			if (k == n) {
				memset(&acc[n], 0, sizeof(acc[n]));
				acc[n].row.cause = (int)e.cause;
				acc[n].row.mine.pid = e.pid;
				acc[n].row.other.pid = e.other_pid;
				acc[n].mine = e.mine;
				acc[n].other = e.other;
				n++;
			}
			merge(r, &acc[k], &e);
		}
	rep->rows = calloc(n ? n : 1, sizeof(*rep->rows));
	if (!rep->rows) {
		free(acc);
		return PSTM_ENOMEM;
	}
	for (uint32_t k = 0; k < n; k++) {
		finish(r, &acc[k]);
		rep->rows[k] = acc[k].row;
	}
	rep->nrows = n;
	free(acc);
	qsort(rep->rows, n, sizeof(*rep->rows), by_lost);
	return 0;
}

int region_conflicts(const char *uri, struct conflict_report *rep)
{
	struct pstm_region r;
	struct timespec ts;
	memset(rep, 0, sizeof(*rep));
	int rc = region_map_readonly(uri, &r);
	if (rc)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	rep->now_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	rep->format = r.sb.version;
	rep->has_tables = r.sb.version >= PSTM_FORMAT_CONFLICTS;
	rep->heap_off = r.sb.heap_off;
	rep->heap_lo = r.heap_lo;
	rep->runtime = !r.rt_base                 ? CONFLICTS_RT_MISSING
		       : check_runtime_valid(&r) ? CONFLICTS_RT_FOUND
						 : CONFLICTS_RT_STALE;
	if (rep->has_tables && rep->runtime == CONFLICTS_RT_FOUND && r.conflicts)
		rc = read_tables(&r, rep);
	region_unmap_readonly(&r);
	if (rc)
		conflict_report_free(rep);
	return rc;
}

void conflict_report_free(struct conflict_report *rep)
{
	free(rep->rows);
	rep->rows = NULL;
	rep->nrows = 0;
}
