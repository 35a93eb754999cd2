/*
 * redo_log.c - redo records: the commit point, checkpoints, and what
 * recovery does with the logs a dead slot or a power failure left behind
 * (layout.h describes the log area, the states and the records).
 *
 * Durability (durable regions).  A commit appends a record {seq, entries,
 * crc} to its slot's ring and persists it: that is the commit point, one
 * persist per commit (on plain files one msync of the log area, shared by
 * every commit that was written before it started: group commit).  The
 * data is written back without waiting for the media.  A checkpoint makes
 * the written-back data durable (msync of the heap; on pmem, write-back of
 * the lines named by the records it covers) and then raises the durable
 * horizon: every
 * commit with seq below it is in the data, so its record may be
 * overwritten and will not be replayed.  The horizon is the smallest seq
 * still in flight (its slot's inflight word), so it never passes a commit
 * whose data is not written back.  After a power failure, every record
 * with a valid crc and seq >= horizon is replayed in seq order: two
 * commits that wrote the same word have ordered seqs (the second took its
 * seq after the first released its locks), so the newer value wins.
 *
 * Process crashes.  While a slot's header is COMMITTED the slot still
 * holds every orec of its record's entries, so nobody else has written
 * those words since; replaying again writes the same values.  Orecs are
 * released only after the header has left COMMITTED, so a second
 * recoverer never replays over newer data.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "crash.h"
#include "proc.h"
#include "redo_log.h"

uint32_t redo_log_crc(const struct log_record *rec)
{
	uLong c = crc32(0, (const Bytef *)&rec->seq, sizeof(rec->seq));
	c = crc32(c, (const Bytef *)&rec->count, sizeof(rec->count));
	c = crc32(c, (const Bytef *)record_entries((struct log_record *)rec),
		  (uInt)(rec->count * sizeof(struct log_entry)));
	return (uint32_t)c;
}

/* Entry checks: a log is region data and may be damaged. */
static bool entry_ok(struct pstm_region *r, const struct log_entry *e)
{
	return (e->off & 7) == 0 && e->off >= r->sb.heap_off &&
	       e->off <= r->heap_hi - 8;
}

/* The current record of slot @s, or NULL if the header is implausible. */
static struct log_record *current_record(struct pstm_region *r, uint32_t s)
{
	struct log_header *h = region_log(r, s);
	if (h->count > r->log_cap || (h->rec_off & (CACHELINE - 1)) ||
	    h->rec_off + record_bytes(h->count) > r->ring_bytes)
		return NULL;
	return region_record(r, s, h->rec_off);
}

/* Write every entry's value and make the data durable: on pmem a flush
 * per line, on a plain file one msync over the span (not one per word). */
static void replay(struct pstm_region *r, const struct log_entry *e,
		   uint64_t n)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (!entry_ok(r, &e[i]))
			continue;
		uint64_t *w = region_word(r, e[i].off);
		__atomic_store_n(w, e[i].val, __ATOMIC_RELAXED);
		if (r->is_pmem)
			region_flush(r, w, 8);
		if (e[i].off < lo)
			lo = e[i].off;
		if (e[i].off + 8 > hi)
			hi = e[i].off + 8;
	}
	if (!r->is_pmem && hi > lo)
		region_flush(r, r->base + lo, hi - lo);
	region_drain(r);
}

/* ------------------------------------------------------- durability */

/* Persist a freshly written record: the commit point. */
void redo_log_persist_record(struct pstm_region *r, uint32_t s,
			     struct log_record *rec, uint64_t bytes)
{
	if (r->is_pmem) {
		region_persist(r, rec, bytes);
		return;
	}
	/*
	 * Group commit: we need an msync of the log area that started after
	 * our record was written.  Syncs are numbered; any sync numbered
	 * above `started` as read now qualifies.
	 */
	struct rt_header *rt = r->rt;
	uint64_t need = atomic_load_explicit(&rt->sync_started,
					     memory_order_acquire) + 1;
	unsigned spins = 0;
	(void)rec;
	while (atomic_load_explicit(&rt->sync_finished, memory_order_acquire) < need) {
		uint64_t zero = 0;
		if (atomic_compare_exchange_strong_explicit(
			    &rt->sync_owner, &zero, (uint64_t)s + 1,
			    memory_order_acq_rel, memory_order_relaxed)) {
			uint64_t k = atomic_fetch_add_explicit(&rt->sync_started, 1,
							       memory_order_acq_rel) + 1;
			region_persist(r, region_log(r, 0),
				       (uint64_t)r->sb.max_slots * r->sb.log_bytes);
			atomic_store_explicit(&rt->sync_finished, k,
					      memory_order_release);
			atomic_store_explicit(&rt->sync_owner, 0,
					      memory_order_release);
			continue;
		}
		if (++spins % 64 == 0) {
			uint64_t o = atomic_load(&rt->sync_owner);
			if (o && spins % 4096 == 0)
				slot_owner_dead_recover(r, (uint32_t)(o - 1));
			sched_yield();
		}
	}
}

/* Smallest seq that may not be in the data yet. */
static uint64_t horizon_now(struct pstm_region *r)
{
	uint64_t h = atomic_load(&r->rt->dseq); /* seq_cst: see commit() */
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		uint64_t v = atomic_load(&r->slots[s].inflight);
		if (v && v < h)
			h = v;
	}
	return h;
}

static void raise_horizon(struct pstm_region *r, uint64_t h)
{
	struct durable_state *ds = region_dstate(r);
	uint64_t cur = atomic_load(&ds->horizon);
	while (cur < h && !atomic_compare_exchange_weak(&ds->horizon, &cur, h))
		;
	region_persist(r, ds, sizeof(*ds));
}

/* Make written-back data durable and raise the horizon until it passes
 * @past (all of the calling slot's records). */
/*
 * pmem: write back the data lines of every record in [from, to).  Cache
 * line write-back works on addresses, whoever stored there; every commit
 * below `to` has finished its write-back (its inflight word said so), so
 * its stores are visible here and the flushes carry them to the media.
 */
static void flush_records(struct pstm_region *r, uint64_t from, uint64_t to)
{
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		uint64_t off = 0;
		while (off + sizeof(struct log_record) <= r->ring_bytes) {
			struct log_record *rec = region_record(r, s, off);
			if (rec->magic != LOG_REC_MAGIC || rec->count > r->log_cap ||
			    off + record_bytes(rec->count) > r->ring_bytes)
				break;
			if (rec->seq >= from && rec->seq < to) {
				struct log_entry *e = record_entries(rec);
				for (uint64_t i = 0; i < rec->count; i++)
					if ((e[i].off & 7) == 0 && e[i].off >= r->sb.heap_off &&
					    e[i].off <= r->heap_hi - 8)
						region_flush(r, region_word(r, e[i].off), 8);
			}
			off += record_bytes(rec->count);
		}
	}
}

void redo_log_checkpoint(struct pstm_region *r, uint64_t past)
{
	unsigned tries = 0;
	while (atomic_load(&region_dstate(r)->horizon) <= past) {
		uint64_t h = horizon_now(r);
		if (r->is_pmem) /* commits did not flush their data: we do */
			flush_records(r, atomic_load(&region_dstate(r)->horizon), h);
		else /* msync writes every dirty page of the heap */
			region_flush(r, r->base + r->sb.heap_off, r->sb.heap_bytes);
		region_drain(r);
		raise_horizon(r, h);
		if (atomic_load(&region_dstate(r)->horizon) <= past) {
			/* an older commit is still writing back: let it */
			if (++tries % 16 == 0)
				proc_recover_all_dead(r);
			sched_yield();
		}
	}
}

/* -------------------------------------------------------- recovery */

void redo_log_recover_slot(struct pstm_region *r, uint32_t s)
{
	struct log_header *h = region_log(r, s);
	uint64_t st = atomic_load_explicit(&h->state, memory_order_acquire);
	struct log_record *rec = current_record(r, s);

	if (st != LOG_IDLE && rec) {
		/* past the commit point the record is part of the durable
		 * history: the slot's next owner must append after it, not
		 * overwrite it before a checkpoint covers it */
		if (r->durable && (st == LOG_COMMITTED || st == LOG_RELEASING))
			atomic_store(&r->slots[s].ring_head,
				     h->rec_off + record_bytes(h->count));
		if (st == LOG_COMMITTED) {
			replay(r, record_entries(rec), h->count);
			CRASH_POINT(CP_RECOVER_REPLAYED);
			atomic_store_explicit(&h->state, LOG_RELEASING,
					      memory_order_release);
			st = LOG_RELEASING;
		}
		struct log_entry *e = record_entries(rec);
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
};

static int by_seq(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Valid records of slot @s's ring with seq >= @horizon, into @p. */
static uint32_t scan_ring(struct pstm_region *r, uint32_t s, uint64_t horizon,
			  struct pending **p, uint32_t *k, uint32_t *cap,
			  uint64_t *max_seq)
{
	uint32_t found = 0;
	uint64_t off = 0;
	while (off + sizeof(struct log_record) <= r->ring_bytes) {
		struct log_record *rec = region_record(r, s, off);
		if (rec->magic != LOG_REC_MAGIC || rec->count > r->log_cap ||
		    off + record_bytes(rec->count) > r->ring_bytes ||
		    redo_log_crc(rec) != rec->crc)
			break; /* end of the written part, or a torn record */
		if (rec->seq >= horizon) {
			if (*k == *cap) {
				uint32_t nc = *cap ? *cap * 2 : 64;
				struct pending *np = realloc(*p, nc * sizeof(*np));
				if (!np)
					break;
				*p = np;
				*cap = nc;
			}
			(*p)[(*k)++] = (struct pending){rec->seq, rec};
			found++;
		}
		if (rec->seq > *max_seq)
			*max_seq = rec->seq;
		off += record_bytes(rec->count);
	}
	return found;
}

int redo_log_replay_all(struct pstm_region *r)
{
	struct durable_state *ds = region_dstate(r);
	uint64_t horizon = atomic_load(&ds->horizon), max_seq = 0;
	struct pending *p = NULL;
	uint32_t k = 0, cap = 0;

	if (r->durable)
		for (uint32_t s = 0; s < r->sb.max_slots; s++)
			scan_ring(r, s, horizon, &p, &k, &cap, &max_seq);
	if (k) {
		qsort(p, k, sizeof(*p), by_seq);
		for (uint32_t i = 0; i < k; i++)
			replay(r, record_entries(p[i].rec), p[i].rec->count);
		if (!r->is_pmem)
			region_persist(r, r->base + r->sb.heap_off, r->sb.heap_bytes);
	}
	free(p);
	/* everything up to max_seq is in the data now */
	if (max_seq + 1 > horizon)
		raise_horizon(r, max_seq + 1);
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		struct log_header *h = region_log(r, s);
		if (atomic_load_explicit(&h->state, memory_order_relaxed) != LOG_IDLE)
			atomic_store_explicit(&h->state, LOG_IDLE, memory_order_relaxed);
	}
	return (int)k;
}
