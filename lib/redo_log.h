/*
 * redo_log.h - redo records: the commit point, checkpoints, and what
 * recovery does with a log left behind by a dead slot or a power failure.
 */
#ifndef PSTM_REDO_LOG_H
#define PSTM_REDO_LOG_H

#include "region.h"

/* crc over seq, count and the entries of a record. */
HIDDEN uint32_t redo_log_crc(const struct log_record *rec);

/*
 * Durable regions: make the record just written by slot @s durable (pmem:
 * flush + drain; plain file: a group-committed msync of the log area).
 */
HIDDEN void redo_log_persist_record(struct pstm_region *r, uint32_t s,
				    struct log_record *rec, uint64_t bytes);

/*
 * Durable regions: make written-back data durable and raise the durable
 * horizon above @past, so that records up to seq @past may be reused.
 */
HIDDEN int redo_log_checkpoint(struct pstm_region *r, uint64_t past);

/*
 * Settle the log of dead slot @s: replay its record if COMMITTED, then
 * release every orec it still holds.  Idempotent; safe to repeat after the
 * recoverer itself dies at any point.
 */
HIDDEN void redo_log_recover_slot(struct pstm_region *r, uint32_t s);

/*
 * After a reboot or power failure (fresh runtime, nobody attached): replay
 * every record with a valid crc and seq >= the durable horizon (relaxed
 * regions: and < the flushed mark), in seq order, raise the horizon past
 * them and reset the slot states.  Returns the number of records
 * replayed, or -1 if out of memory, -2 if the data could not be made
 * durable (msync failed); the horizon is not raised then.
 */
HIDDEN int redo_log_replay_all(struct pstm_region *r);

/* Smallest seq whose commit may not have written back its data yet. */
HIDDEN uint64_t redo_log_horizon_now(struct pstm_region *r);

/* Relaxed regions: apply the records with lo <= seq < hi found in the
 * file's rings to the file's data, in seq order, durably.  Returns how
 * many, or -1 if out of memory, -2 if the msync failed. */
HIDDEN int redo_log_apply_file(struct pstm_region *r, uint64_t lo, uint64_t hi);

#endif /* PSTM_REDO_LOG_H */
