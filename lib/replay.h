/*
 * replay.h - recovery's use of the logs (lib/replay.c).
 */
#ifndef PSTM_REPLAY_H
#define PSTM_REPLAY_H

#include "region.h"

/*
 * Settle the log of dead slot @s: replay its record if COMMITTED, then
 * release every orec it still holds.  Idempotent; safe to repeat after the
 * recoverer itself dies at any point.  Installed as r->settle_slot.
 */
HIDDEN void replay_settle_slot(struct pstm_region *r, uint32_t s);

/*
 * After a reboot or power failure (fresh runtime, nobody attached): replay
 * every record with a valid crc and seq >= the durable horizon (relaxed
 * regions: and < the flushed mark), in seq order, raise the horizon past
 * them and reset the slot states.  Returns the number of records
 * replayed, or -1 if out of memory, -2 if the data could not be made
 * durable (msync failed); the horizon is not raised then.
 */
HIDDEN int replay_after_reboot(struct pstm_region *r);

/* Relaxed regions: apply the records with lo <= seq < hi found in the
 * file's rings to the file's data, in seq order, durably.  Returns how
 * many, or -1 if out of memory, -2 if the msync failed. */
HIDDEN int replay_apply_file(struct pstm_region *r, uint64_t lo, uint64_t hi);

#endif /* PSTM_REPLAY_H */
