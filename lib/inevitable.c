/*
 * inevitable.c - inevitable transactions (pstm_tx_inevitable): the one
 * transaction of a region that will not abort, because it locks every
 * word it touches; docs/design.md section 3 says why this and not
 * running alone.
 */
#include <sched.h>
#include <stdlib.h>

#include "recovery.h"
#include "stm.h"
#include "testing.h"

void stm_grow_locks(pstm_tx *t)
{
	uint32_t nc = t->locks_cap * 2;
	uint64_t *n = nc > t->locks_cap ? realloc(t->locks, sizeof(*n) * nc) : NULL;
	if (!n)
		stm_fail(t, PSTM_ENOMEM);
	t->locks = n;
	t->locks_cap = nc;
}

/*
 * An inevitable transaction locks orec @idx for itself when it first
 * touches it, and never gives up: the holder is a committer (it finishes
 * or aborts: committers never wait for a lock while holding theirs for
 * long) or a dead slot (recovered here).
 */
void stm_inevitable_lock(pstm_tx *t, uint64_t idx)
{
	struct pstm_region *r = t->r;
	_Atomic uint64_t *o = &r->orecs[idx];
	const uint64_t mine = ((uint64_t)t->slot << 1) | OREC_LOCK;
	uint64_t v = atomic_load_explicit(o, memory_order_acquire);
	for (unsigned n = 1;; n++) {
		if (!orec_is_locked(v)) {
			if (atomic_compare_exchange_weak_explicit(
				    o, &v, orec_make_locked(v, t->slot),
				    memory_order_acquire, memory_order_acquire)) {
				stm_note_lock(t, idx);
				return;
			}
			continue;
		}
		if ((v & ((1ull << OREC_VSHIFT) - 1)) == mine)
			return;
		if (n % LOCK_SPINS == 0) {
			if (slot_owner_dead_recover(r, orec_owner(v)) &&
			    atomic_load_explicit(o, memory_order_acquire) == v &&
			    stm_orphan_lock(r, o, v))
				stm_fail(t, PSTM_ECORRUPT);
			sched_yield();
		} else {
			cpu_relax();
		}
		v = atomic_load_explicit(o, memory_order_acquire);
	}
}

/* Before becoming inevitable: lock @idx unless another slot holds it
 * past a short spin (then false: the caller re-runs the attempt). */
static bool try_lock(pstm_tx *t, uint64_t idx)
{
	_Atomic uint64_t *o = &t->r->orecs[idx];
	const uint64_t mine = ((uint64_t)t->slot << 1) | OREC_LOCK;
	uint64_t v = atomic_load_explicit(o, memory_order_acquire);
	for (int i = 0; i < LOCK_SPINS; i++) {
		if (!orec_is_locked(v)) {
			if (atomic_compare_exchange_weak_explicit(
				    o, &v, orec_make_locked(v, t->slot),
				    memory_order_acquire, memory_order_acquire)) {
				stm_note_lock(t, idx);
				return true;
			}
			continue;
		}
		if ((v & ((1ull << OREC_VSHIFT) - 1)) == mine)
			return true;
		cpu_relax();
		v = atomic_load_explicit(o, memory_order_acquire);
	}
	return false;
}

/*
 * Locks first, role second: a process dying in between leaves no lock of
 * its slot outside the role, so its recoverer (which releases every orec
 * of a dead inevitable slot, and only those of its redo record otherwise)
 * frees them all.  The other order left orphan locks.
 */
static void give_up_inevitable(pstm_tx *t, int cause)
{
	if (t->nlocks)
		stm_release_unchanged(t); /* what try_lock took */
	atomic_store_explicit(&t->r->rt->inevitable, 0, memory_order_release);
	stm_abort(t, cause);
}

static int become_inevitable(pstm_tx *t, void *arg);

int pstm_tx_inevitable(pstm_tx *t)
{
	if (!t || t != stm_current())
		return PSTM_EINVAL;
	if (t->inevitable)
		return 0;
	if (t->explicit_tx && !t->guard) /* it may re-run the attempt */
		return stm_guarded(t, become_inevitable, NULL);
	return become_inevitable(t, NULL);
}

static int become_inevitable(pstm_tx *t, void *arg)
{
	(void)arg;
	if (t->read_only)
		stm_fail(t, PSTM_EINVAL);
	struct pstm_region *r = t->r;
	const uint64_t me = t->slot + 1;
	unsigned n = 0;
	for (;;) {
		uint64_t cur = 0;
		if (atomic_compare_exchange_strong_explicit(
			    &r->rt->inevitable, &cur, me, memory_order_acq_rel,
			    memory_order_acquire))
			break;
		/* another transaction is inevitable: wait for it (we hold no
		 * lock it could need) and recover it if it died */
		if (++n % 64 == 0) {
			if (n % 4096 == 0)
				slot_owner_dead_recover(r, (uint32_t)(cur - 1));
			sched_yield();
		} else {
			cpu_relax();
		}
	}
	/* what we read and wrote so far: locked, and still as we saw it */
	for (uint32_t i = 0; i < t->nrs; i++)
		if (!try_lock(t, t->rs[i].idx))
			give_up_inevitable(t, ST_AB_LOCK);
	for (uint32_t i = 0; i < t->nws; i++)
		if (!try_lock(t, region_orec_idx(r, t->ws[i].off)))
			give_up_inevitable(t, ST_AB_LOCK);
	if (!TESTING_NO_VALIDATE(r) && !stm_validate(t))
		give_up_inevitable(t, ST_AB_VALIDATE);
	t->inevitable = true;
	/* every load and store now takes the slow path, which locks */
	t->wbloom = ~0ull;
	return 0;
}
