/*
 * redo_log.h - per-slot redo logs: the commit point, and what recovery
 * does with a log left behind by a dead slot or a power failure.
 */
#ifndef PSTM_REDO_LOG_H
#define PSTM_REDO_LOG_H

#include "region.h"

/* crc over count, wv and the entries (durable commit mark). */
HIDDEN uint32_t redo_log_crc(const struct log_header *h);

/*
 * Settle the log of dead slot @s: replay it if COMMITTED, then release
 * every orec it still holds.  Idempotent; safe to repeat after the
 * recoverer itself dies at any point.
 */
HIDDEN void redo_log_recover_slot(struct pstm_region *r, uint32_t s);

/*
 * After a reboot or power failure (fresh runtime, nobody attached): replay
 * every COMMITTED log with a valid crc in commit-version order and reset
 * all logs to IDLE.  Returns the number of logs replayed.
 */
HIDDEN int redo_log_replay_all(struct pstm_region *r);

#endif /* PSTM_REDO_LOG_H */
