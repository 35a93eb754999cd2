/*
 * redo_log.h - redo records and the durable horizon (lib/redo_log.c);
 * the accessors of the log area every layer above uses.
 */
#ifndef PSTM_REDO_LOG_H
#define PSTM_REDO_LOG_H

#include "region.h"

static inline struct log_header *region_log(struct pstm_region *r, uint32_t s)
{
	return (struct log_header *)(r->base + r->sb.log_off +
				     (uint64_t)s * r->sb.log_bytes);
}

/* The record at @off of slot @s's ring. */
static inline struct log_record *region_record(struct pstm_region *r,
					       uint32_t s, uint64_t off)
{
	return (struct log_record *)((uint8_t *)(region_log(r, s) + 1) + off);
}

static inline struct log_entry *record_entries(struct log_record *rec)
{
	return (struct log_entry *)(rec + 1);
}

/* Bytes a record of @n entries takes in the ring (cache-line aligned). */
static inline uint64_t record_bytes(uint64_t n)
{
	return (sizeof(struct log_record) + n * sizeof(struct log_entry) +
		CACHELINE - 1) & ~(uint64_t)(CACHELINE - 1);
}

/* Entry check: a log is region data and may be damaged. */
static inline bool redo_log_entry_ok(struct pstm_region *r,
				     const struct log_entry *e)
{
	return (e->off & 7) == 0 && e->off >= r->sb.heap_off &&
	       e->off <= r->heap_hi - 8;
}

/* An extent record's descriptor, right after its header. */
static inline struct log_ext *record_ext(struct log_record *rec)
{
	return (struct log_ext *)(rec + 1);
}

/* Bytes record @rec takes in its ring: its entries, or (extent record)
 * its descriptor.  Only for a header with one of the two magics. */
static inline uint64_t record_ring_bytes(const struct log_record *rec)
{
	return rec->magic == LOG_REC_MAGIC_EXT
		       ? record_bytes(1)
		       : record_bytes(rec->count);
}

static inline bool record_magic_ok(uint64_t m)
{
	return m == LOG_REC_MAGIC || m == LOG_REC_MAGIC_EXT;
}

/*
 * The entries of record @rec, a record header at ring offset @ring_off of
 * the image at @base (the mapping, or a relaxed region's file): inline
 * after it, or in its extent.  NULL when the header's shape is
 * implausible (a log is region data and may be damaged): a count above
 * what the ring (or the heap) can hold, a record past the ring's end, an
 * extent outside the heap, or an extent record in a format 1 region.
 */
HIDDEN struct log_entry *record_entries_at(struct pstm_region *r, uint8_t *base,
					   struct log_record *rec,
					   uint64_t ring_off);

/*
 * The version clock is at least @v (CAS-max).  Whoever gives an orec a
 * version no commit gave it (an aborted commit's locks come back with
 * version + 1: lib/stm.c) raises the clock to it first, so that every
 * orec version stays <= clock + 1 and later commits (wv = clock + 1)
 * never move an orec's version backwards.
 */
static inline void clock_raise(struct pstm_region *r, uint64_t v)
{
	_Atomic uint64_t *clk = &r->rt->clock;
	uint64_t now = atomic_load_explicit(clk, memory_order_acquire);
	while (now < v && !atomic_compare_exchange_weak_explicit(
				  clk, &now, v, memory_order_acq_rel,
				  memory_order_acquire))
		;
}

/* crc over seq, count, the descriptor of an extent record, and the
 * entries @e of record @rec. */
HIDDEN uint32_t redo_log_crc_of(const struct log_record *rec,
				const struct log_entry *e);
/* the same for an inline record */
HIDDEN uint32_t redo_log_crc(const struct log_record *rec);
/* whether @rec (at @ring_off in the image at @base) is a complete record:
 * plausible shape and matching crc */
HIDDEN bool redo_log_record_valid(struct pstm_region *r, uint8_t *base,
				  struct log_record *rec, uint64_t ring_off);

/*
 * Durable regions: make the record just written by slot @s durable (pmem:
 * flush + drain; plain file: a group-committed msync of the log area).
 */
HIDDEN void redo_log_persist_record(struct pstm_region *r, uint32_t s,
				    struct log_record *rec, uint64_t bytes);

/* Smallest seq whose commit may not have written back its data yet. */
HIDDEN uint64_t redo_log_horizon_now(struct pstm_region *r);

/* Raise the persisted durable horizon to at least @h (CAS-max, persist). */
HIDDEN void redo_log_raise_horizon(struct pstm_region *r, uint64_t h);

#endif /* PSTM_REDO_LOG_H */
