/*
 * proc.h - the process and slot tables: attach/detach, slots, liveness
 * (lib/proc.c).
 */
#ifndef PSTM_PROC_H
#define PSTM_PROC_H

#include "region.h"

/* /proc/PID/stat start time (clock ticks since boot), 0 if no such pid. */
HIDDEN uint64_t proc_start_ticks(pid_t pid, bool *zombie);

/* Attach this process (called under the region flock). */
HIDDEN int proc_attach(struct pstm_region *r);
/* Detach: release our slots and our table entry. */
HIDDEN void proc_detach(struct pstm_region *r);

/* Claim a free slot for a thread of this process; -1 if none (the
 * caller may recover dead processes and try again). */
HIDDEN int slot_claim(struct pstm_region *r);
/* Release a slot whose log is IDLE. Folds its stats into the proc entry. */
HIDDEN void slot_release(struct pstm_region *r, uint32_t s);

/*
 * Process tags for tokens that name a process (the relaxed flush token):
 * gen << 16 | index + 1 of this process's entry.  proc_tag_dead: the
 * process a tag names has detached, died or is being recovered.
 */
HIDDEN uint64_t proc_my_tag(struct pstm_region *r);
HIDDEN bool proc_tag_dead(struct pstm_region *r, uint64_t tag);

/* Is the process of entry @p, whose state word was @ps, alive?  True if
 * the word changed meanwhile (look again) or it is this handle's own. */
HIDDEN bool proc_entry_alive(struct pstm_region *r, uint32_t p, uint64_t ps);

/*
 * Is the process owning slot @s stopped (SIGSTOP, a debugger's stop:
 * /proc/PID/stat state T or t)?  False if it runs, is runnable, sleeps,
 * is dead, is this process, or the slot changed hands meanwhile.  A
 * syscall's worth of cost: for waiters that have already waited long.
 */
HIDDEN bool slot_owner_stopped(struct pstm_region *r, uint32_t s);

#endif /* PSTM_PROC_H */
