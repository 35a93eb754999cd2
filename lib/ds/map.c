/*
 * map.c - the transactional hash map of byte strings (pstm_map_*), and
 * pstm_ds_type.  Built only on the public transactional API plus the
 * transaction's slot (for the counter stripe) and stm_fail (damage).
 *
 * Object (MAP_BYTES, 64-byte lines):
 *   line 0  magic, tab, nb, old, old_nb   read by every operation,
 *                                         written only when the table
 *                                         grows or a migration ends
 *   line 1  mig                           migration cursor (below)
 *   line 2+ count[16]                     entry count in stripes, one
 *                                         per line, by slot % 16
 * Table: nb words (a power of two), each the head of a chain of entries
 * (0 = empty).  Entry (a pstm_alloc block): {next, hash, klen | vlen << 32},
 * then the key padded to 8 bytes, then the value; the block's size says
 * how long a value fits in place.  Key k lives
 * in bucket hash(k) & (nb - 1); hash is fixed forever (it is part of the
 * format).
 *
 * Concurrency.  An operation on key k reads the header line and k's
 * chain; a put or delete writes k's chain and its own slot's count
 * stripe.  So operations on keys of different buckets, from any number
 * of processes, do not conflict -- except while the table grows.
 *
 * Growth, in bounded steps.  A put that makes a chain of GROW_CHAIN
 * entries sums the stripes; above 2 entries per bucket it doubles the
 * table: allocate 2*nb words (not zeroed: too many for one transaction's
 * log), old = tab, tab = the new one.  From then on each old bucket i is
 * either still live (its chain in the old table) or MOVED: its entries
 * were split between new buckets i and i + old_nb, which the move wrote.
 * A new bucket is read only after its old bucket moved, so no new bucket
 * is ever read unwritten.  Readers look in the old table first; every
 * put and delete first moves its own key's old bucket, then SWEEP more
 * from the cursor `mig`; the one that reaches the end frees the old table
 * and clears `old`.  With SWEEP = 2 the migration ends after old_nb / 2
 * puts and deletes, so the table is at most 1.25 entries per bucket when
 * it ends (it doubled at 2 per old bucket), far from the next doubling.
 * Each step writes at most SWEEP + 1 buckets, their entries' links and
 * the cursor (~15 words), so growth never needs a large redo log.  The
 * price: while a migration runs, puts and deletes all write `mig` and so
 * conflict with each other (about a fifth of all inserts fall in such a
 * phase).  Gets never write and never read `mig`.  The table never
 * shrinks.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pstm_ds.h"
#include "stm.h"

#define MAP_STRIPES 16
#define M_MAGIC 0
#define M_TAB 8
#define M_NB 16
#define M_OLD 24
#define M_OLDNB 32
#define M_MIG 64
#define M_COUNT(i) (128 + 64 * (uint64_t)(i))
#define MAP_BYTES M_COUNT(MAP_STRIPES)

#define E_NEXT 0
#define E_HASH 8
#define E_LENS 16 /* klen | vlen << 32 */
#define E_KEY 24

#define MOVED 1ull      /* an old bucket whose entries moved (not 16-aligned) */
#define GROW_CHAIN 6    /* chain length that makes a put look at the count */
#define SWEEP 2         /* old buckets swept per put/delete while growing */
#define MIN_BUCKETS 8
#define MAX_INITIAL 1024

static uint64_t L(pstm_tx *tx, uint64_t off) { return pstm_load64(tx, off); }
static void S(pstm_tx *tx, uint64_t off, uint64_t v) { pstm_store64(tx, off, v); }
static uint64_t pad8(uint64_t n) { return (n + 7) & ~7ull; }

/* 64-bit hash of a byte string: part of the format, never change it. */
static uint64_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t h = 0x243F6A8885A308D3ull ^ ((uint64_t)n * 0x9E3779B97F4A7C15ull);
	while (n) {
		uint64_t w = 0;
		size_t k = n < 8 ? n : 8;
		memcpy(&w, s, k);
		h = (h ^ w) * 0x9E3779B97F4A7C15ull;
		h ^= h >> 32;
		s += k;
		n -= k;
	}
	h ^= h >> 33; /* murmur3's finaliser */
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

int pstm_ds_type(pstm_tx *tx, pstm_off off)
{
	uint64_t bytes;
	if (!tx || !alloc_is_block(tx, off, &bytes) || bytes < 8)
		return PSTM_DS_NONE;
	uint64_t magic = L(tx, off);
	if (magic == PSTM_MAP_MAGIC && bytes >= MAP_BYTES)
		return PSTM_DS_MAP;
	if (magic == PSTM_QUEUE_MAGIC && bytes >= 136)
		return PSTM_DS_QUEUE;
	return PSTM_DS_NONE;
}

/* ------------------------------------------------------------ header */

struct mapv {
	pstm_off m;
	uint64_t tab, nb, old, old_nb;
	uint64_t chain_max; /* longer chains are cycles: damage */
};

static bool in_heap(pstm_tx *tx, uint64_t off, uint64_t n)
{
	struct pstm_region *r = tx->r;
	return off >= r->heap_lo && off <= r->heap_hi && n <= r->heap_hi - off;
}

/* Read and validate the header of map @m; PSTM_EINVAL if not a map. */
static int map_open(pstm_tx *tx, pstm_off m, struct mapv *v)
{
	if (!tx || (m & 15) || !in_heap(tx, m, MAP_BYTES) ||
	    L(tx, m + M_MAGIC) != PSTM_MAP_MAGIC)
		return PSTM_EINVAL;
	v->m = m;
	v->tab = L(tx, m + M_TAB);
	v->nb = L(tx, m + M_NB);
	v->old = L(tx, m + M_OLD);
	v->old_nb = v->old ? L(tx, m + M_OLDNB) : 0;
	if (v->nb < MIN_BUCKETS || (v->nb & (v->nb - 1)) || v->nb > (1ull << 40) ||
	    !in_heap(tx, v->tab, 8 * v->nb) ||
	    (v->old && (v->old_nb * 2 != v->nb || !in_heap(tx, v->old, 8 * v->old_nb))))
		stm_fail(tx, PSTM_ECORRUPT);
	v->chain_max = (tx->r->heap_hi - tx->r->heap_lo) / 48;
	return 0;
}

static uint64_t stripe_of(pstm_tx *tx) { return tx->slot % MAP_STRIPES; }

static uint64_t count_all(pstm_tx *tx, pstm_off m)
{
	uint64_t n = 0;
	for (int i = 0; i < MAP_STRIPES; i++)
		n += L(tx, m + M_COUNT(i)); /* stripes wrap; the sum does not */
	return n;
}

/* ----------------------------------------------------------- entries */

/* Validate entry @e (its lengths word @lens): key and value in the heap. */
static void entry_check(pstm_tx *tx, uint64_t e, uint64_t lens)
{
	if ((e & 7) || !in_heap(tx, e, E_KEY) ||
	    !in_heap(tx, e + E_KEY, pad8(lens & 0xffffffffu) + (lens >> 32)))
		stm_fail(tx, PSTM_ECORRUPT);
}

static bool key_equal(pstm_tx *tx, uint64_t at, const uint8_t *key, uint64_t n)
{
	uint8_t buf[256];
	while (n) {
		size_t k = n < sizeof(buf) ? (size_t)n : sizeof(buf);
		pstm_read(tx, at, buf, k);
		if (memcmp(buf, key, k) != 0)
			return false;
		at += k;
		key += k;
		n -= k;
	}
	return true;
}

struct hit {
	uint64_t link;  /* the word that points to e (or ends the chain) */
	uint64_t e;     /* the entry, 0 if not found */
	uint64_t n;     /* entries looked at */
	uint64_t klen, vlen;
};

static bool lookup(pstm_tx *tx, const struct mapv *v, uint64_t head_word,
		   const void *key, uint64_t klen, uint64_t h, struct hit *out)
{
	uint64_t link = head_word, e = L(tx, link), n = 0;
	while (e) {
		if (++n > v->chain_max || (e & 7) || !in_heap(tx, e, E_KEY))
			stm_fail(tx, PSTM_ECORRUPT);
		if (L(tx, e + E_HASH) == h) {
			uint64_t lens = L(tx, e + E_LENS);
			if ((lens & 0xffffffffu) == klen) {
				entry_check(tx, e, lens);
				if (key_equal(tx, e + E_KEY, key, klen)) {
					*out = (struct hit){link, e, n, klen, lens >> 32};
					return true;
				}
			}
		}
		link = e + E_NEXT;
		e = L(tx, link);
	}
	*out = (struct hit){link, 0, n, 0, 0};
	return false;
}

/* The word heading the chain of hash @h, for readers: in the old table
 * while that bucket has not moved. */
static uint64_t chain_of(pstm_tx *tx, const struct mapv *v, uint64_t h)
{
	if (v->old) {
		uint64_t ow = v->old + 8 * (h & (v->old_nb - 1));
		if (L(tx, ow) != MOVED)
			return ow;
	}
	return v->tab + 8 * (h & (v->nb - 1));
}

static uint64_t new_entry(pstm_tx *tx, uint64_t h, const void *key, uint64_t klen,
			  const void *val, uint64_t vlen)
{
	uint64_t e = pstm_alloc(tx, E_KEY + pad8(klen) + (vlen ? vlen : 1));
	S(tx, e + E_HASH, h);
	S(tx, e + E_LENS, klen | vlen << 32);
	if (klen)
		pstm_write(tx, e + E_KEY, key, klen);
	if (vlen)
		pstm_write(tx, e + E_KEY + pad8(klen), val, vlen);
	return e;
}

/* ------------------------------------------------------------ growth */

/* Move old bucket @i to new buckets i and i + old_nb (if not done). */
static void migrate(pstm_tx *tx, const struct mapv *v, uint64_t i)
{
	uint64_t ow = v->old + 8 * i, e = L(tx, ow), lo = 0, hi = 0, n = 0;
	if (e == MOVED)
		return;
	while (e) {
		if (++n > v->chain_max || (e & 7) || !in_heap(tx, e, E_KEY))
			stm_fail(tx, PSTM_ECORRUPT);
		uint64_t next = L(tx, e + E_NEXT);
		if (L(tx, e + E_HASH) & v->old_nb) {
			S(tx, e + E_NEXT, hi);
			hi = e;
		} else {
			S(tx, e + E_NEXT, lo);
			lo = e;
		}
		e = next;
	}
	S(tx, v->tab + 8 * i, lo);
	S(tx, v->tab + 8 * (i + v->old_nb), hi);
	S(tx, ow, MOVED);
}

/* Before a put or delete of hash @h: move its old bucket, and SWEEP more;
 * the step that moves the last frees the old table. */
static void migrate_step(pstm_tx *tx, struct mapv *v, uint64_t h)
{
	if (!v->old)
		return;
	migrate(tx, v, h & (v->old_nb - 1));
	uint64_t cur = L(tx, v->m + M_MIG);
	if (cur > v->old_nb)
		stm_fail(tx, PSTM_ECORRUPT);
	uint64_t end = cur + SWEEP < v->old_nb ? cur + SWEEP : v->old_nb;
	for (uint64_t i = cur; i < end; i++)
		migrate(tx, v, i);
	if (end < v->old_nb) {
		S(tx, v->m + M_MIG, end);
		return;
	}
	pstm_free(tx, v->old);
	S(tx, v->m + M_OLD, 0);
	S(tx, v->m + M_OLDNB, 0);
	S(tx, v->m + M_MIG, 0);
	v->old = v->old_nb = 0;
}

static void grow(pstm_tx *tx, struct mapv *v)
{
	uint64_t nt = pstm_alloc(tx, 16 * v->nb); /* 2 * nb words, unwritten */
	S(tx, v->m + M_OLD, v->tab);
	S(tx, v->m + M_OLDNB, v->nb);
	S(tx, v->m + M_TAB, nt);
	S(tx, v->m + M_NB, 2 * v->nb);
	S(tx, v->m + M_MIG, 0);
}

/* ---------------------------------------------------------------- API */

pstm_off pstm_map_create(pstm_tx *tx, size_t initial_buckets)
{
	uint64_t cap = MAX_INITIAL, nb = MIN_BUCKETS;
	while (cap > MIN_BUCKETS && cap > tx->r->log_cap / 4)
		cap >>= 1;
	while (nb < initial_buckets && nb < cap)
		nb <<= 1;
	pstm_off m = pstm_alloc(tx, MAP_BYTES);
	uint64_t tab = pstm_alloc(tx, 8 * nb);
	for (uint64_t i = 0; i < nb; i++)
		S(tx, tab + 8 * i, 0);
	S(tx, m + M_TAB, tab);
	S(tx, m + M_NB, nb);
	S(tx, m + M_OLD, 0);
	S(tx, m + M_OLDNB, 0);
	S(tx, m + M_MIG, 0);
	for (int i = 0; i < MAP_STRIPES; i++)
		S(tx, m + M_COUNT(i), 0);
	S(tx, m + M_MAGIC, PSTM_MAP_MAGIC);
	return m;
}

static int check_kv(const void *key, size_t klen, const void *val, size_t vlen)
{
	if ((klen && !key) || (vlen && !val) || klen > 0xffffffffu ||
	    vlen > 0xffffffffu)
		return PSTM_EINVAL;
	return 0;
}

int pstm_map_get(pstm_tx *tx, pstm_off map, const void *key, size_t klen,
		 void *val, size_t vcap, size_t *vlen)
{
	struct mapv v;
	struct hit hit;
	int rc = check_kv(key, klen, val, vcap);
	if (rc || (rc = map_open(tx, map, &v)))
		return rc;
	uint64_t h = hash_bytes(key, klen);
	if (!lookup(tx, &v, chain_of(tx, &v, h), key, klen, h, &hit))
		return PSTM_ENOENT;
	uint64_t vl = hit.vlen;
	if (vcap && vl)
		pstm_read(tx, hit.e + E_KEY + pad8(klen), val, vl < vcap ? vl : vcap);
	if (vlen)
		*vlen = vl;
	return 0;
}

int pstm_map_put(pstm_tx *tx, pstm_off map, const void *key, size_t klen,
		 const void *val, size_t vlen)
{
	struct mapv v;
	struct hit hit;
	int rc = check_kv(key, klen, val, vlen);
	if (rc || (rc = map_open(tx, map, &v)))
		return rc;
	uint64_t h = hash_bytes(key, klen);
	migrate_step(tx, &v, h);
	uint64_t hw = v.tab + 8 * (h & (v.nb - 1));
	if (lookup(tx, &v, hw, key, klen, h, &hit)) {
		uint64_t bytes = 0;
		if (!alloc_is_block(tx, hit.e, &bytes))
			stm_fail(tx, PSTM_ECORRUPT);
		if (E_KEY + pad8(klen) + vlen <= bytes) { /* fits in place */
			if (vlen)
				pstm_write(tx, hit.e + E_KEY + pad8(klen), val, vlen);
			if (vlen != hit.vlen)
				S(tx, hit.e + E_LENS, klen | (uint64_t)vlen << 32);
			return 0;
		}
		uint64_t ne = new_entry(tx, h, key, klen, val, vlen);
		S(tx, ne + E_NEXT, L(tx, hit.e + E_NEXT));
		S(tx, hit.link, ne);
		pstm_free(tx, hit.e);
		return 0;
	}
	uint64_t ne = new_entry(tx, h, key, klen, val, vlen);
	S(tx, ne + E_NEXT, L(tx, hw));
	S(tx, hw, ne);
	uint64_t cw = map + M_COUNT(stripe_of(tx));
	S(tx, cw, L(tx, cw) + 1);
	if (!v.old && hit.n + 1 >= GROW_CHAIN && count_all(tx, map) > 2 * v.nb)
		grow(tx, &v);
	return 0;
}

int pstm_map_del(pstm_tx *tx, pstm_off map, const void *key, size_t klen)
{
	struct mapv v;
	struct hit hit;
	int rc = check_kv(key, klen, NULL, 0);
	if (rc || (rc = map_open(tx, map, &v)))
		return rc;
	uint64_t h = hash_bytes(key, klen);
	migrate_step(tx, &v, h);
	if (!lookup(tx, &v, v.tab + 8 * (h & (v.nb - 1)), key, klen, h, &hit))
		return PSTM_ENOENT;
	S(tx, hit.link, L(tx, hit.e + E_NEXT));
	pstm_free(tx, hit.e);
	uint64_t cw = map + M_COUNT(stripe_of(tx));
	S(tx, cw, L(tx, cw) - 1);
	return 0;
}

uint64_t pstm_map_count(pstm_tx *tx, pstm_off map)
{
	struct mapv v;
	if (map_open(tx, map, &v))
		return 0;
	return count_all(tx, map);
}

/*
 * Copies handed to an iteration callback: on the stack when small, else
 * in this thread's buffer, which is kept (a callback may unwind, which
 * must not leak) and only grows.  A nested iteration of a large entry
 * reuses it, so such copies are valid during the call only -- as
 * documented.
 */
static __thread struct {
	uint8_t *p;
	size_t cap;
} tl_buf;

static uint8_t *copy_buf(pstm_tx *tx, uint8_t *stack, size_t stack_bytes, size_t n)
{
	if (n <= stack_bytes)
		return stack;
	if (n > tl_buf.cap) {
		uint8_t *p = realloc(tl_buf.p, n);
		if (!p)
			stm_fail(tx, PSTM_ENOMEM);
		tl_buf.p = p;
		tl_buf.cap = n;
	}
	return tl_buf.p;
}

static int iter_chain(pstm_tx *tx, const struct mapv *v, uint64_t e,
		      pstm_map_cb cb, void *arg)
{
	uint8_t stack[2048];
	uint64_t n = 0;
	for (; e; e = L(tx, e + E_NEXT)) {
		if (++n > v->chain_max)
			stm_fail(tx, PSTM_ECORRUPT);
		if ((e & 7) || !in_heap(tx, e, E_KEY))
			stm_fail(tx, PSTM_ECORRUPT);
		uint64_t lens = L(tx, e + E_LENS);
		entry_check(tx, e, lens);
		uint64_t kl = lens & 0xffffffffu, vl = lens >> 32;
		uint8_t *b = copy_buf(tx, stack, sizeof(stack), kl + vl + 1);
		pstm_read(tx, e + E_KEY, b, kl);
		pstm_read(tx, e + E_KEY + pad8(kl), b + kl, vl);
		int rc = cb(b, kl, b + kl, vl, arg);
		if (rc)
			return rc;
	}
	return 0;
}

int pstm_map_iter(pstm_tx *tx, pstm_off map, pstm_map_cb cb, void *arg)
{
	struct mapv v;
	int rc;
	if (!cb)
		return PSTM_EINVAL;
	if ((rc = map_open(tx, map, &v)))
		return rc;
	if (!v.old) {
		for (uint64_t i = 0; i < v.nb; i++)
			if ((rc = iter_chain(tx, &v, L(tx, v.tab + 8 * i), cb, arg)))
				return rc;
		return 0;
	}
	for (uint64_t i = 0; i < v.old_nb; i++) {
		uint64_t ob = L(tx, v.old + 8 * i);
		if (ob != MOVED)
			rc = iter_chain(tx, &v, ob, cb, arg);
		else if (!(rc = iter_chain(tx, &v, L(tx, v.tab + 8 * i), cb, arg)))
			rc = iter_chain(tx, &v, L(tx, v.tab + 8 * (i + v.old_nb)), cb, arg);
		if (rc)
			return rc;
	}
	return 0;
}
