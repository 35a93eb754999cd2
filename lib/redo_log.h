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

/* crc over seq, count and the entries of a record. */
HIDDEN uint32_t redo_log_crc(const struct log_record *rec);

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
