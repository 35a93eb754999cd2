/*
 * redo_log.c - what recovery does with a redo log (see layout.h for the
 * log states and stm.c for how a commit moves through them).
 *
 * Idempotence, the property every recovery step relies on: while a log is
 * COMMITTED its slot still holds every orec of its entries, so no other
 * transaction can have written those words since; replaying it again
 * rewrites the same values.  Orecs are released only after the log has
 * left COMMITTED (durably, in durable mode), so a second recoverer never
 * replays over a newer value.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "crash.h"
#include "redo_log.h"

uint32_t redo_log_crc(const struct log_header *h)
{
	uLong c = crc32(0, (const Bytef *)&h->count, sizeof(h->count));
	c = crc32(c, (const Bytef *)&h->wv, sizeof(h->wv));
	c = crc32(c, (const Bytef *)log_entries((struct log_header *)h),
		  (uInt)(h->count * sizeof(struct log_entry)));
	return (uint32_t)c;
}

/* Entry checks: a log is region data and may be damaged. */
static bool entry_ok(struct pstm_region *r, const struct log_entry *e)
{
	return (e->off & 7) == 0 && e->off >= r->sb.heap_off &&
	       e->off <= r->heap_hi - 8;
}

static bool log_plausible(struct pstm_region *r, struct log_header *h)
{
	return h->count <= r->log_cap;
}

/* Write every entry's value and make the data durable. */
static void replay(struct pstm_region *r, struct log_header *h)
{
	struct log_entry *e = log_entries(h);
	for (uint64_t i = 0; i < h->count; i++) {
		if (!entry_ok(r, &e[i]))
			continue;
		uint64_t *w = region_word(r, e[i].off);
		__atomic_store_n(w, e[i].val, __ATOMIC_RELAXED);
		region_flush(r, w, 8);
	}
	region_drain(r);
}

static void set_state(struct pstm_region *r, struct log_header *h, uint64_t st)
{
	atomic_store_explicit(&h->state, st, memory_order_release);
	region_persist(r, h, sizeof(*h));
}

void redo_log_recover_slot(struct pstm_region *r, uint32_t s)
{
	struct log_header *h = region_log(r, s);
	uint64_t st = atomic_load_explicit(&h->state, memory_order_acquire);

	if (st == LOG_IDLE)
		return;
	if (!log_plausible(r, h)) {
		/* cannot name its orecs: nothing was written back from it
		 * (count is set before the state leaves IDLE) */
		set_state(r, h, LOG_IDLE);
		return;
	}
	if (st == LOG_COMMITTED) {
		replay(r, h);
		CRASH_POINT(CP_RECOVER_REPLAYED);
		set_state(r, h, LOG_RELEASING);
		st = LOG_RELEASING;
	}
	struct log_entry *e = log_entries(h);
	for (uint64_t i = 0; i < h->count; i++) {
		if (!entry_ok(r, &e[i]))
			continue;
		_Atomic uint64_t *o = region_orec(r, e[i].off);
		uint64_t v = atomic_load_explicit(o, memory_order_acquire);
		if (!orec_is_locked(v) || orec_owner(v) != s)
			continue;
		uint64_t nv = st == LOG_RELEASING ? orec_make(h->wv)
						  : orec_make(orec_version(v));
		atomic_compare_exchange_strong_explicit(o, &v, nv,
							memory_order_release,
							memory_order_relaxed);
	}
	set_state(r, h, LOG_IDLE);
}

struct pending {
	uint64_t wv;
	uint32_t slot;
};

static int by_wv(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;
	return x->wv < y->wv ? -1 : x->wv > y->wv;
}

int redo_log_replay_all(struct pstm_region *r)
{
	uint32_t n = r->sb.max_slots, k = 0;
	struct pending *p = calloc(n, sizeof(*p));

	for (uint32_t s = 0; s < n; s++) {
		struct log_header *h = region_log(r, s);
		uint64_t st = atomic_load_explicit(&h->state, memory_order_acquire);
		if (st == LOG_COMMITTED && log_plausible(r, h) &&
		    redo_log_crc(h) == h->crc) {
			if (p)
				p[k++] = (struct pending){h->wv, s};
			else /* no memory to sort: one commit per word at
				most is COMMITTED, so any order is right */
				replay(r, h);
		}
	}
	if (p) {
		qsort(p, k, sizeof(*p), by_wv);
		for (uint32_t i = 0; i < k; i++)
			replay(r, region_log(r, p[i].slot));
		free(p);
	}
	for (uint32_t s = 0; s < n; s++) {
		struct log_header *h = region_log(r, s);
		if (atomic_load_explicit(&h->state, memory_order_relaxed) != LOG_IDLE)
			set_state(r, h, LOG_IDLE);
	}
	return (int)k;
}
