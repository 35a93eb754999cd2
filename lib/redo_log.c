/*
 * redo_log.c - redo records: their checksum, the commit point's persist
 * (group commit on plain files), and the durable horizon (layout.h
 * describes the log area, the states and the records).
 *
 * Durability (durable regions).  A commit appends a record {seq, entries,
 * crc} to its slot's ring and persists it: that is the commit point, one
 * persist per commit (on plain files one msync of the log area, shared by
 * every commit that was written before it started: group commit).  The
 * data is written back without waiting for the media; a checkpoint
 * (lib/checkpoint.c) later makes it durable and raises the durable
 * horizon: every commit with seq below it is in the data, so its record
 * may be overwritten and will not be replayed (lib/replay.c).  The
 * horizon is the smallest seq still in flight (its slot's inflight
 * word), so it never passes a commit whose data is not written back.
 */
#include <sched.h>
#include <zlib.h>

#include "persist.h"
#include "recovery.h"
#include "redo_log.h"

uint32_t redo_log_crc_of(const struct log_record *rec,
			 const struct log_entry *e)
{
	uLong c = crc32(0, (const Bytef *)&rec->seq, sizeof(rec->seq));
	c = crc32(c, (const Bytef *)&rec->count, sizeof(rec->count));
	if (rec->magic == LOG_REC_MAGIC_EXT)
		c = crc32(c, (const Bytef *)(rec + 1), sizeof(struct log_ext));
	/* crc32's length is 32 bits: a large extent goes in pieces */
	const Bytef *p = (const Bytef *)e;
	uint64_t n = rec->count * sizeof(struct log_entry);
	while (n) {
		uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
		c = crc32(c, p, k);
		p += k;
		n -= k;
	}
	return (uint32_t)c;
}

uint32_t redo_log_crc(const struct log_record *rec)
{
	return redo_log_crc_of(rec, record_entries((struct log_record *)rec));
}

struct log_entry *record_entries_at(struct pstm_region *r, uint8_t *base,
				    struct log_record *rec, uint64_t ring_off)
{
	if (rec->magic == LOG_REC_MAGIC)
		return rec->count <= r->log_cap &&
				       ring_off + record_bytes(rec->count) <= r->ring_bytes
			       ? record_entries(rec)
			       : NULL;
	if (rec->magic != LOG_REC_MAGIC_EXT || !r->ovf_ok ||
	    ring_off + record_bytes(1) > r->ring_bytes)
		return NULL;
	const struct log_ext *x = record_ext(rec);
	uint64_t lo = r->heap_lo, hi = r->heap_hi;
	/* extent and its header inside the heap, count within its cap */
	if (x->off < lo || x->off > hi || (x->off & 15) ||
	    hi - x->off < OVF_HDR_BYTES ||
	    x->cap > (hi - x->off - OVF_HDR_BYTES) / sizeof(struct log_entry) ||
	    rec->count > x->cap)
		return NULL;
	return (struct log_entry *)(base + x->off + OVF_HDR_BYTES);
}

bool redo_log_record_valid(struct pstm_region *r, uint8_t *base,
			   struct log_record *rec, uint64_t ring_off)
{
	struct log_entry *e = record_entries_at(r, base, rec, ring_off);
	return e && redo_log_crc_of(rec, e) == rec->crc;
}

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

uint64_t redo_log_horizon_now(struct pstm_region *r)
{
	uint64_t h = atomic_load(&r->rt->dseq); /* seq_cst: see commit() */
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		uint64_t v = atomic_load(&r->slots[s].inflight);
		if (v && v < h)
			h = v;
	}
	return h;
}

void redo_log_raise_horizon(struct pstm_region *r, uint64_t h)
{
	struct durable_state *ds = region_dstate(r);
	uint64_t cur = atomic_load(&ds->horizon);
	while (cur < h && !atomic_compare_exchange_weak(&ds->horizon, &cur, h))
		;
	region_persist(r, ds, sizeof(*ds));
}
