/*
 * replay.c - what recovery does with the logs: settle the log of a dead
 * slot, replay the durable records after a reboot or power failure, and
 * apply a relaxed region's durable records to its file (checkpoints).
 *
 * Process crashes.  While a slot's header is COMMITTED the slot still
 * holds every orec of its record's entries, so nobody else has written
 * those words since; replaying again writes the same values.  Orecs are
 * released only after the header has left COMMITTED, so a second
 * recoverer never replays over newer data.
 *
 * Power failure.  Every record with a valid crc and seq >= horizon is
 * replayed in seq order: two commits that wrote the same word have
 * ordered seqs (the second took its seq after the first released its
 * locks), so the newer value wins.
 */
#include <stdlib.h>
#include <string.h>

#include "crash.h"
#include "persist.h"
#include "redo_log.h"
#include "replay.h"

/* The current record of slot @s and its entries (*e), or NULL if the
 * header or the record is implausible. */
static struct log_record *current_record(struct pstm_region *r, uint32_t s,
					 struct log_entry **e)
{
	struct log_header *h = region_log(r, s);
	if ((h->rec_off & (CACHELINE - 1)) ||
	    h->rec_off + sizeof(struct log_record) > r->ring_bytes)
		return NULL;
	struct log_record *rec = region_record(r, s, h->rec_off);
	/* volatile regions write no magic-less records: the header's count
	 * is the record's (both are written before LOCKING) */
	if (rec->count != h->count)
		return NULL;
	*e = record_entries_at(r, r->base, rec, h->rec_off);
	return *e ? rec : NULL;
}

/* Write every entry's value into the image at @base (the mapping, or a
 * relaxed region's file behind its working copy) and make the data
 * durable: on pmem a flush per line, on a plain file one msync over the
 * span (not one per word). */
static void replay_into(struct pstm_region *r, uint8_t *base,
			const struct log_entry *e, uint64_t n, bool msync)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (!redo_log_entry_ok(r, &e[i]))
			continue;
		uint64_t *w = (uint64_t *)(base + e[i].off);
		__atomic_store_n(w, e[i].val, __ATOMIC_RELAXED);
		if (r->is_pmem)
			region_flush(r, w, 8);
		if (e[i].off < lo)
			lo = e[i].off;
		if (e[i].off + 8 > hi)
			hi = e[i].off + 8;
	}
	if (msync && !r->is_pmem && hi > lo)
		region_flush(r, base + lo, hi - lo);
	if (msync)
		region_drain(r);
}

static void replay(struct pstm_region *r, const struct log_entry *e,
		   uint64_t n)
{
	replay_into(r, r->base, e, n, true);
}

void replay_settle_slot(struct pstm_region *r, uint32_t s)
{
	struct log_header *h = region_log(r, s);
	uint64_t st = LOG_ST(atomic_load_explicit(&h->state, memory_order_acquire));
	struct log_entry *e = NULL;
	struct log_record *rec = current_record(r, s, &e);
	/* aborted by a waiter (lib/stm.c): its locks go with version + 1 */
	const uint64_t bump = st == LOG_ABORTED;
	if (st == LOG_SEALING || st == LOG_ABORTED || st == LOG_ROLLBACK)
		st = LOG_LOCKING; /* not committed: as before the commit point */

	if (st == LOG_LOCKING && rec && r->durable && rec->seq != 0) {
		/*
		 * It may have died after sealing its record (seq, crc) but
		 * before COMMITTED: the transaction did not commit, yet a
		 * msync of the log area by another committer, or page
		 * write-back, may carry the sealed record to the media, and
		 * a later power failure would replay it.  Make it stale
		 * (seq 0 is below every horizon) and persist that before
		 * its locks are released.
		 */
		rec->seq = 0;
		rec->crc = redo_log_crc_of(rec, e);
		region_persist(r, rec, sizeof(*rec));
	}
	if (st != LOG_IDLE && rec) {
		/* past the commit point the record is part of the durable
		 * history: the slot's next owner must append after it, not
		 * overwrite it before a checkpoint covers it */
		if (r->durable && (st == LOG_COMMITTED || st == LOG_RELEASING)) {
			uint64_t end = h->rec_off + record_ring_bytes(rec);
			atomic_store(&r->slots[s].ring_head, end);
			/* relaxed: the flusher must copy it (before inflight
			 * is cleared below, so no flush can pass its seq
			 * without it) */
			if (r->relaxed) {
				_Atomic uint64_t *pub = &r->slots[s].pub;
				uint64_t v = (h->wrap << 32) | end;
				uint64_t cur = atomic_load(pub);
				while (cur < v &&
				       !atomic_compare_exchange_weak(pub, &cur, v))
					;
			}
		}
		if (st == LOG_COMMITTED) {
			replay(r, e, h->count);
			CRASH_POINT(CP_RECOVER_REPLAYED);
			atomic_store_explicit(&h->state, LOG_RELEASING,
					      memory_order_release);
			st = LOG_RELEASING;
		}
		for (uint64_t i = 0; i < h->count; i++) {
			if (!redo_log_entry_ok(r, &e[i]))
				continue;
			_Atomic uint64_t *o = region_orec(r, e[i].off);
			uint64_t v = atomic_load_explicit(o, memory_order_acquire);
			if (!orec_is_locked(v) || orec_owner(v) != s)
				continue;
			if (bump)
				clock_raise(r, orec_version(v) + 1);
			uint64_t nv = st == LOG_RELEASING ? orec_make(h->wv)
							  : orec_make(orec_version(v) + bump);
			atomic_compare_exchange_strong_explicit(o, &v, nv,
								memory_order_release,
								memory_order_relaxed);
		}
	}
	/* its data is written back (and flushed): no longer in flight */
	atomic_store(&r->slots[s].inflight, 0);
	uint64_t owner = (uint64_t)s + 1;
	atomic_compare_exchange_strong(&r->rt->sync_owner, &owner, 0);
	atomic_store_explicit(&h->state, LOG_IDLE, memory_order_release);
}

struct pending {
	uint64_t seq;
	struct log_record *rec;
	struct log_entry *e;
};

static int by_seq(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

struct record_set {
	struct pending *p;
	uint32_t k, cap;
};

static struct log_record *record_in(struct pstm_region *r, uint8_t *base,
				    uint32_t s, uint64_t off)
{
	return (struct log_record *)((uint8_t *)region_record(r, s, off) -
				     r->base + base);
}


/*
 * Valid records of slot @s's ring in the image at @base with
 * lo <= seq < hi, into @set.  Every 64-byte boundary is looked at, not
 * just the chain from the ring's start: a committer that died while
 * writing a record right after its ring wrapped leaves a torn record at
 * offset 0, and the slot's next owner appends where the last complete
 * record ended, behind it (pstm-crashtest found commits lost that way);
 * a relaxed flusher may also have persisted records after a torn one.
 * A record header can only be found where one was written: inside a
 * record, a 64-byte boundary falls on an entry's offset word, which is a
 * heap offset, never a magic (an extent record is one line long).  An
 * extent record's entries are read from its extent in the same image.
 * Returns -1 if out of memory (the caller
 * must not declare anything replayed).
 */
static int scan_ring(struct pstm_region *r, uint8_t *base, uint32_t s,
		     uint64_t lo, uint64_t hi, struct record_set *set)
{
	for (uint64_t off = 0; off + sizeof(struct log_record) <= r->ring_bytes;
	     off += CACHELINE) {
		struct log_record *rec = record_in(r, base, s, off);
		if (!record_magic_ok(rec->magic) || rec->seq < lo || rec->seq >= hi)
			continue;
		struct log_entry *e = record_entries_at(r, base, rec, off);
		if (!e || redo_log_crc_of(rec, e) != rec->crc)
			continue;
		if (set->k == set->cap) {
			uint32_t nc = set->cap ? set->cap * 2 : 64;
			struct pending *np = realloc(set->p, nc * sizeof(*np));
			if (!np)
				return -1;
			set->p = np;
			set->cap = nc;
		}
		set->p[set->k++] = (struct pending){rec->seq, rec, e};
	}
	return 0;
}

/*
 * Apply every record of the image at @base with lo <= seq < hi, in seq
 * order, to the same image, and make the data durable.  Returns how many
 * (>= 0), -1 if out of memory, -2 if the msync failed (nothing declared
 * applied either way).
 */
static int apply_range(struct pstm_region *r, uint8_t *base, uint64_t lo,
		       uint64_t hi, bool used_only)
{
	struct record_set set = {0};
	for (uint32_t s = 0; s < r->sb.max_slots; s++)
		if (!(used_only && !atomic_load(&r->slots[s].pub)) &&
		    scan_ring(r, base, s, lo, hi, &set) != 0) {
			free(set.p);
			return -1;
		}
	if (set.k) {
		qsort(set.p, set.k, sizeof(*set.p), by_seq);
		/* pmem: a flush per line as we go; one drain, or one
		 * msync of the heap, for all of them (an msync per record
		 * made a relaxed checkpoint of 500 records take ~100 ms) */
		for (uint32_t i = 0; i < set.k; i++)
			replay_into(r, base, set.p[i].e, set.p[i].rec->count,
				    false);
		if (region_persist(r, base + r->sb.heap_off, r->sb.heap_bytes)) {
			free(set.p);
			return -2; /* not durable: declare nothing applied */
		}
	}
	free(set.p);
	return (int)set.k;
}

/* Highest seq of any valid record anywhere in the rings of the image at
 * @base (every 64-byte boundary, as scan_ring). */
static uint64_t max_seq_anywhere(struct pstm_region *r, uint8_t *base)
{
	uint64_t m = 0;
	for (uint32_t s = 0; s < r->sb.max_slots; s++)
		for (uint64_t off = 0;
		     off + sizeof(struct log_record) <= r->ring_bytes;
		     off += CACHELINE) {
			struct log_record *rec = record_in(r, base, s, off);
			if (record_magic_ok(rec->magic) && rec->seq > m &&
			    redo_log_record_valid(r, base, rec, off))
				m = rec->seq;
		}
	return m;
}

int replay_after_reboot(struct pstm_region *r)
{
	struct durable_state *ds = region_dstate(r);
	uint64_t horizon = atomic_load(&ds->horizon), max_seq = 0;
	int k = 0;

	if (r->relaxed) {
		/*
		 * Exactly the records the flusher declared durable: a
		 * prefix of the commit order.  Then every record still in
		 * the rings becomes stale: new seqs start above them all.
		 */
		uint64_t fl = atomic_load(&ds->flushed);
		k = apply_range(r, r->base, horizon, fl, false);
		if (k < 0)
			return k;
		uint64_t h = max_seq_anywhere(r, r->base) + 1;
		if (h < fl)
			h = fl;
		if (h > horizon) {
			atomic_store(&ds->horizon, h);
			atomic_store(&ds->flushed, h);
			region_persist(r, ds, sizeof(*ds));
		}
	} else if (r->durable) {
		k = apply_range(r, r->base, horizon, UINT64_MAX, false);
		if (k < 0)
			return k;
		max_seq = max_seq_anywhere(r, r->base);
		/* everything up to max_seq is in the data now */
		if (max_seq + 1 > horizon)
			redo_log_raise_horizon(r, max_seq + 1);
	}
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		struct log_header *h = region_log(r, s);
		if (atomic_load_explicit(&h->state, memory_order_relaxed) != LOG_IDLE)
			atomic_store_explicit(&h->state, LOG_IDLE, memory_order_relaxed);
	}
	return k;
}

int replay_apply_file(struct pstm_region *r, uint64_t lo, uint64_t hi)
{
	/* live runtime: a ring that never published a record (pub 0
	 * since the runtime was built) holds nothing above the horizon */
	return apply_range(r, r->fbase, lo, hi, true);
}
