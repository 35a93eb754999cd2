/*
 * recovery.c - recovering dead processes: whoever meets a dead process's
 * lock (or sweeps the table) settles every slot it owned and frees its
 * entry, so a crash never blocks anyone for long.
 *
 * Recovery of a dead process P is decided by one CAS on P's entry
 * (ALIVE -> RECOVERING naming the recoverer), so exactly one process does
 * it; if that recoverer dies too, anyone may take over with another CAS.
 * Settling a slot's redo log is idempotent (r->settle_slot, lib/replay.c,
 * which lies above this layer and is passed down at open), so a takeover
 * simply starts again.
 */
#define _GNU_SOURCE
#include <sys/file.h>

#include "crash.h"
#include "proc.h"
#include "recovery.h"

/* recoverer tag: process index (10 bits) and low 14 bits of its gen;
 * REC_OPENER: an opener not yet attached, holding the region flock */
#define REC_OPENER 0x3ffu
static uint64_t rec_tag(uint32_t idx, uint64_t state)
{
	return (idx & 0x3ff) | ((PROC_GEN(state) & 0x3fff) << 10);
}

/* A recovery this process did: into its process entry's statistics, or,
 * while it is still opening (not attached), into the handle. */
static void count_recovery(struct pstm_region *r)
{
	if (r->in_open)
		r->open_recoveries++;
	else
		atomic_fetch_add_explicit(&r->procs[r->proc_idx].stats[ST_RECOVERIES],
					  1, memory_order_relaxed);
}

/* Settle every slot of process @p, whose entry we hold in RECOVERING state
 * @ps, then free the entry. */
/*
 * A dead inevitable transaction locked what it read and wrote as it went,
 * so its redo record (settled first) does not name all its locks: free
 * every orec slot @s still holds, versions unchanged (the data under the
 * ones it had not committed was never written).  Runs before the slot and
 * the inevitable role are freed, so no new owner's lock can be taken for
 * its.  One pass over the orec table (2^16 words by default).
 */
static void release_orecs_of(struct pstm_region *r, uint32_t s)
{
	for (uint64_t i = 0; i <= r->orec_mask; i++) {
		_Atomic uint64_t *o = &r->orecs[i];
		uint64_t v = atomic_load_explicit(o, memory_order_acquire);
		if (orec_is_locked(v) && orec_owner(v) == s)
			atomic_compare_exchange_strong_explicit(
				o, &v, orec_make(orec_version(v)),
				memory_order_release, memory_order_relaxed);
	}
}

static void recover_proc(struct pstm_region *r, uint32_t p, uint64_t ps)
{
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		struct slot *sl = &r->slots[s];
		uint64_t st = atomic_load_explicit(&sl->state, memory_order_acquire);
		if (SLOT_ST(st) != SLOT_ACTIVE || SLOT_PROC(st) != p)
			continue;
		r->settle_slot(r, s);
		uint64_t tok = s + 1;
		if (atomic_load_explicit(&r->rt->inevitable,
					 memory_order_acquire) == tok) {
			release_orecs_of(r, s);
			atomic_compare_exchange_strong_explicit(
				&r->rt->inevitable, &tok, 0,
				memory_order_release, memory_order_relaxed);
			tok = s + 1;
		}
		atomic_compare_exchange_strong_explicit(
			&r->rt->serial, &tok, 0, memory_order_release,
			memory_order_relaxed);
		for (int k = 0; k < 8; k++)
			atomic_store_explicit(&sl->stats[k], 0, memory_order_relaxed);
		atomic_compare_exchange_strong_explicit(
			&sl->state, &st, slot_pack(0, SLOT_GEN(st), SLOT_FREE),
			memory_order_release, memory_order_relaxed);
	}
	atomic_compare_exchange_strong_explicit(
		&r->procs[p].state, &ps, proc_pack(PROC_GEN(ps), 0, PROC_FREE),
		memory_order_release, memory_order_relaxed);
	count_recovery(r);
}

/*
 * If process entry @p is dead (or its recoverer is), recover it.  Returns
 * true if the entry changed (the caller should look again), false if its
 * owner is alive (or being recovered by a live process).
 */
static bool proc_dead_recover(struct pstm_region *r, uint32_t p)
{
	struct proc_entry *e = &r->procs[p];
	uint64_t ps = atomic_load_explicit(&e->state, memory_order_acquire);
	uint64_t mine;
	bool took_flock = false;

	/* a handle that attaches nothing cannot write the data or the
	 * runtime: pstmd, or the next ordinary open, recovers it */
	if (r->rt_readonly)
		return false;
	if (p == r->proc_idx && ps == r->proc_state)
		return false;
	switch (PROC_ST(ps)) {
	case PROC_FREE:
		return true;
	case PROC_ALIVE:
		if (proc_entry_alive(r, p, ps))
			return atomic_load_explicit(&e->state,
						    memory_order_relaxed) != ps;
		break;
	case PROC_RECOVERING: {
		uint32_t ri = (uint32_t)(PROC_REC(ps) & 0x3ff);
		uint64_t rgen = PROC_REC(ps) >> 10;
		if (ri == REC_OPENER) {
			/* recovered by an opener holding the region flock:
			 * alive as long as someone holds the flock */
			if (r->in_open)
				break; /* that is us now: the tagger died */
			if (flock(r->fd, LOCK_EX | LOCK_NB) != 0)
				return false;
			took_flock = true;
			break;
		}
		if (ri >= r->sb.max_procs)
			break;
		uint64_t rs = atomic_load_explicit(&r->procs[ri].state,
						   memory_order_acquire);
		if (ri == r->proc_idx && rs == r->proc_state)
			return false; /* we are at it already (re-entry) */
		if (PROC_ST(rs) == PROC_ALIVE &&
		    (PROC_GEN(rs) & 0x3fff) == rgen && proc_entry_alive(r, ri, rs))
			return false; /* a live recoverer is at work */
		break;
	}
	default:
		return false;
	}
	if (r->in_open)
		mine = proc_pack(PROC_GEN(ps), REC_OPENER, PROC_RECOVERING);
	else
		mine = proc_pack(PROC_GEN(ps), rec_tag(r->proc_idx, r->proc_state),
				 PROC_RECOVERING);
	if (atomic_compare_exchange_strong_explicit(&e->state, &ps, mine,
						    memory_order_acq_rel,
						    memory_order_relaxed)) {
		CRASH_POINT(CP_RECOVER_CLAIMED);
		recover_proc(r, p, mine);
	}
	if (took_flock)
		flock(r->fd, LOCK_UN);
	return true;
}

bool slot_owner_dead_recover(struct pstm_region *r, uint32_t s)
{
	if (s >= r->sb.max_slots || r->observe)
		return false;
	uint64_t st = atomic_load_explicit(&r->slots[s].state,
					   memory_order_acquire);
	if (SLOT_ST(st) != SLOT_ACTIVE)
		return true;
	uint32_t p = (uint32_t)SLOT_PROC(st);
	if (p >= r->sb.max_procs)
		return false;
	return proc_dead_recover(r, p);
}

bool proc_recover_entry(struct pstm_region *r, uint32_t p)
{
	if (p >= r->sb.max_procs ||
	    PROC_ST(atomic_load_explicit(&r->procs[p].state,
					 memory_order_acquire)) == PROC_FREE)
		return false;
	return proc_dead_recover(r, p);
}

int proc_recover_all_dead(struct pstm_region *r)
{
	int n = 0;
	if (r->rt_readonly)
		return 0;
	for (uint32_t p = 0; p < r->sb.max_procs; p++) {
		uint64_t ps = atomic_load_explicit(&r->procs[p].state,
						   memory_order_acquire);
		if (PROC_ST(ps) == PROC_FREE)
			continue;
		if (proc_dead_recover(r, p))
			n++;
	}
	return n;
}
