/*
 * recovery.h - recovering dead processes (lib/recovery.c).
 */
#ifndef PSTM_RECOVERY_H
#define PSTM_RECOVERY_H

#include "region.h"

/*
 * Is the process owning slot @s dead?  If so, recover it (exactly one
 * recoverer wins) and return true: the caller should retry what it was
 * doing.  Cheap when the slot is free; reads /proc otherwise.
 */
HIDDEN bool slot_owner_dead_recover(struct pstm_region *r, uint32_t s);

/* If process entry @p is dead (or its recoverer is), recover it (pstmd,
 * told by a pidfd).  True if the entry changed (freed by us or another),
 * false if it is free already or its owner is alive. */
HIDDEN bool proc_recover_entry(struct pstm_region *r, uint32_t p);

/* Recover every dead process in the table; returns how many entries
 * changed.  Through an observing handle (r->observe, PSTM_OPEN_OBSERVE)
 * both recover nothing: the dead stay for the next ordinary process,
 * and slot_owner_dead_recover says false (treat the owner as alive). */
HIDDEN int proc_recover_all_dead(struct pstm_region *r);

#endif /* PSTM_RECOVERY_H */
