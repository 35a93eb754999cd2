/*
 * txd.c - transaction descriptors: one per (thread, open region), each
 * owning a slot of the region (claimed on first use, released by a
 * thread-exit destructor or at close), and their statistics.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "recovery.h"
#include "redo_log.h"
#include "stm.h"

__thread struct txd_cache tl_txd_cache;
#define tl_cache tl_txd_cache

/* ------------------------------------------------------- statistics */

void txd_stats_flush(pstm_tx *t)
{
	/* a handle that attaches nothing keeps them in the descriptor */
	_Atomic uint64_t *out = t->slot == TXD_NO_SLOT ? t->st_out
						       : t->r->slots[t->slot].stats;
	for (int k = 0; k < ST_COUNT; k++)
		atomic_store_explicit(&out[k], t->st[k], memory_order_relaxed);
}

/* A descriptor goes: its statistics and slot (or, slotless, its totals
 * into the handle's). */
static void txd_retire(struct pstm_region *r, pstm_tx *t)
{
	if (t->slot == TXD_NO_SLOT) {
		for (int k = 0; k < ST_COUNT; k++)
			atomic_fetch_add_explicit(&r->ro_stats[k], t->st[k],
						  memory_order_relaxed);
		return;
	}
	txd_stats_flush(t);
	slot_release(r, t->slot);
}

/* pstm_stats_get of a handle that attaches nothing: the gone descriptors'
 * totals and each live one's last flush.  Under r->lock. */
static void stats_slotless(struct pstm_region *r, uint64_t sum[ST_COUNT])
{
	for (int k = 0; k < ST_COUNT; k++)
		sum[k] = atomic_load_explicit(&r->ro_stats[k], memory_order_relaxed);
	for (pstm_tx *t = r->txds; t; t = t->next)
		for (int k = 0; k < ST_COUNT; k++)
			sum[k] += atomic_load_explicit(&t->st_out[k],
						       memory_order_relaxed);
}


_Static_assert(STATS_V0 == sizeof(struct pstm_stats), "stats v0");

int pstm_stats_get_sz(pstm_region *r, struct pstm_stats *dst, size_t dst_size)
{
	uint64_t sum[ST_COUNT] = {0};
	struct pstm_stats sums = {0}, *out = &sums;

	if (!r || !dst || dst_size < STATS_V0 || dst_size > SIZED_MAX)
		return PSTM_EINVAL;
	pthread_mutex_lock(&r->lock);
	for (pstm_tx *t = r->txds; t; t = t->next)
		if (t == tl_cache.t && t->depth == 0)
			txd_stats_flush(t);
	if (r->rt_readonly)
		stats_slotless(r, sum);
	pthread_mutex_unlock(&r->lock);
	if (r->rt_readonly)
		goto out;
	for (int k = 0; k < ST_COUNT; k++)
		sum[k] = atomic_load_explicit(&r->procs[r->proc_idx].stats[k],
					      memory_order_relaxed);
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		uint64_t st = atomic_load_explicit(&r->slots[s].state,
						   memory_order_acquire);
		if (SLOT_ST(st) != SLOT_ACTIVE || SLOT_PROC(st) != r->proc_idx)
			continue;
		for (int k = 0; k < ST_COUNT; k++)
			sum[k] += atomic_load_explicit(&r->slots[s].stats[k],
						       memory_order_relaxed);
	}
out:
	out->commits = sum[ST_COMMITS];
	out->commits_ro = sum[ST_COMMITS_RO];
	out->aborts_read = sum[ST_AB_READ];
	out->aborts_lock = sum[ST_AB_LOCK];
	out->aborts_validate = sum[ST_AB_VALIDATE];
	out->aborts_user = sum[ST_AB_USER];
	out->escalations = sum[ST_ESCALATIONS];
	out->recoveries = sum[ST_RECOVERIES];
	return sized_out(dst, dst_size, out, sizeof(*out), STATS_V0) ?
		       0 : PSTM_EINVAL;
}

/* the symbol of binaries built before pstm_stats_get_sz: a v0 struct */
int(pstm_stats_get)(pstm_region *r, struct pstm_stats *out)
{
	return pstm_stats_get_sz(r, out, STATS_V0);
}

/* ------------------------------------------------------ descriptors */

static void txd_free(pstm_tx *t)
{
	if (t->side)
		txd_free(t->side);
	free(t->ws);
	free(t->wtab);
	free(t->wtab_epoch);
	free(t->rs);
	free(t->locks);
	free(t->newer);
	free(t);
}

/* A descriptor's memory: sets sized for a transaction that fits the ring
 * (they grow: lib/stm.c). */
static pstm_tx *txd_alloc(struct pstm_region *r)
{
	pstm_tx *t = calloc(1, sizeof(*t));
	uint32_t tab = 16;

	if (!t)
		return NULL;
	t->r = r;
	t->tlc = &tl_cache; /* a descriptor serves the thread that made it */
	t->ws_cap = r->log_cap;
	while (tab < 2 * t->ws_cap)
		tab <<= 1;
	t->wtab_mask = tab - 1;
	t->ws = malloc(sizeof(*t->ws) * t->ws_cap);
	t->wtab = malloc(sizeof(*t->wtab) * tab);
	t->wtab_epoch = calloc(tab, sizeof(*t->wtab_epoch));
	t->ws_limit = t->ws_cap;
	t->locks_cap = t->ws_cap;
	t->locks = malloc(sizeof(*t->locks) * t->locks_cap);
	t->rs_cap = 1024;
	t->rs = malloc(sizeof(*t->rs) * t->rs_cap);
	t->prng = (uint64_t)(uintptr_t)t ^ ((uint64_t)getpid() << 32) ^
		  (uint64_t)clock();
	if (!t->prng)
		t->prng = 88172645463325252ull;
	if (!t->ws || !t->wtab || !t->wtab_epoch || !t->locks || !t->rs) {
		txd_free(t);
		return NULL;
	}
	return t;
}

pstm_tx *txd_side_new(pstm_tx *t)
{
	pstm_tx *s = txd_alloc(t->r);
	if (s) {
		s->slot = t->slot;
		s->log = t->log;
	}
	return s;
}

static pstm_tx *txd_new(struct pstm_region *r)
{
	pstm_tx *t = txd_alloc(r);
	if (!t)
		return NULL;
	/* a handle that attaches nothing claims no slot: its read-only
	 * transactions need none (lib/stm.c) */
	int s = r->rt_readonly ? -2 : slot_claim(r);
	if (s == -1 && proc_recover_all_dead(r) > 0)
		s = slot_claim(r); /* a dead process's slots are free now */
	if (s == -1) {
		txd_free(t);
		return NULL;
	}
	t->slot = s < 0 ? TXD_NO_SLOT : (uint32_t)s;
	t->log = s < 0 ? NULL : region_log(r, t->slot);
	conflict_txd_init(t);
	/* a fresh slot's log must be idle (its previous owner settled it) */
	pthread_mutex_lock(&r->lock);
	t->next = r->txds;
	r->txds = t;
	pthread_mutex_unlock(&r->lock);
	return t;
}

static void txd_unlink(struct pstm_region *r, pstm_tx *t)
{
	for (pstm_tx **p = &r->txds; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			return;
		}
}

void txd_thread_exit(void *p)
{
	pstm_tx *t = p;
	struct pstm_region *r = t->r;

	overflow_release(t);
	pthread_mutex_lock(&r->lock); /* pstm_stats_get sees it once */
	txd_unlink(r, t);
	txd_retire(r, t);
	pthread_mutex_unlock(&r->lock);
	if (tl_cache.t == t)
		tl_cache.open_id = 0;
	txd_free(t);
}

void txd_release_all(struct pstm_region *r)
{
	pthread_mutex_lock(&r->lock);
	while (r->txds) {
		pstm_tx *t = r->txds;
		r->txds = t->next;
		if (t->ovf_off) { /* a transaction: not under the lock */
			pthread_mutex_unlock(&r->lock);
			overflow_release(t);
			pthread_mutex_lock(&r->lock);
		}
		txd_retire(r, t);
		if (tl_cache.t == t)
			tl_cache.open_id = 0;
		txd_free(t);
	}
	pthread_mutex_unlock(&r->lock);
}

/* This thread's descriptor for @r, claiming a slot on first use. */
pstm_tx *txd_get_slow(struct pstm_region *r, int *err)
{
	pstm_tx *t = pthread_getspecific(r->key);
	if (!t) {
		t = txd_new(r);
		if (!t) {
			*err = PSTM_ESLOTFULL;
			return NULL;
		}
		if (pthread_setspecific(r->key, t) != 0) {
			txd_thread_exit(t);
			*err = PSTM_ENOMEM;
			return NULL;
		}
	}
	tl_cache.open_id = r->open_id;
	tl_cache.t = t;
	return t;
}
