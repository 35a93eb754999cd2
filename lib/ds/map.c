/*
 * map.c - the transactional hash map of byte strings (pstm_map_*), and
 * pstm_ds_type.  Built only on the transaction calls (pstm.h, tx.h: the
 * slot for the counter stripe, tx_fail for damage) and the allocator;
 * its layout is struct map_obj and struct map_entry_hdr in ds_layout.h.
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
 * either still live (its chain in the old table) or MAP_MOVED: its entries
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
#include <string.h>

#include "alloc.h"
#include "ds.h"
#include "ds_layout.h"
#include "pstm_ds.h"

#define GROW_CHAIN 6    /* chain length that makes a put look at the count */
#define SWEEP 2         /* old buckets swept per put/delete while growing */
#define MIN_BUCKETS 8
#define MAX_INITIAL 1024

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
	if (magic == PSTM_QUEUE_MAGIC && bytes >= QUEUE_BYTES)
		return PSTM_DS_QUEUE;
	return PSTM_DS_NONE;
}

/* ------------------------------------------------------------ header */

struct mapv {
	struct tx_info ti;
	pstm_off m;
	uint64_t tab, nb, old, old_nb;
	uint64_t chain_max; /* longer chains are cycles: damage */
};

/* Read and validate the header of map @m; PSTM_EINVAL if not a map. */
static int map_open(pstm_tx *tx, pstm_off m, struct mapv *v)
{
	if (!tx)
		return PSTM_EINVAL;
	tx_info(tx, &v->ti);
	if (!ds_is_object(tx, &v->ti, m, MAP_BYTES, PSTM_MAP_MAGIC))
		return PSTM_EINVAL;
	v->m = m;
	v->tab = L(tx, m + MAP_FIELD(tab));
	v->nb = L(tx, m + MAP_FIELD(nb));
	v->old = L(tx, m + MAP_FIELD(old));
	v->old_nb = v->old ? L(tx, m + MAP_FIELD(old_nb)) : 0;
	if (v->nb < MIN_BUCKETS || (v->nb & (v->nb - 1)) || v->nb > (1ull << 40) ||
	    !ds_in_heap(&v->ti, v->tab, 8 * v->nb) ||
	    (v->old && (v->old_nb * 2 != v->nb ||
			!ds_in_heap(&v->ti, v->old, 8 * v->old_nb))))
		tx_fail(tx, PSTM_ECORRUPT);
	v->chain_max = (v->ti.heap_hi - v->ti.heap_lo) / 48;
	return 0;
}

static uint64_t count_all(pstm_tx *tx, pstm_off m)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < MAP_STRIPES; i++)
		n += L(tx, map_count_word(m, i)); /* stripes wrap; the sum does not */
	return n;
}

/* Add @d (1 or -1) to this slot's count stripe. */
static void count_add(pstm_tx *tx, const struct mapv *v, uint64_t d)
{
	uint64_t cw = map_count_word(v->m, v->ti.slot % MAP_STRIPES);
	S(tx, cw, L(tx, cw) + d);
}

/* The head word of hash @h's bucket in the (new) table. */
static uint64_t bucket_word(const struct mapv *v, uint64_t h)
{
	return v->tab + 8 * (h & (v->nb - 1));
}

/* ----------------------------------------------------------- entries */

/* Entry @e, the *@n-th of a chain walk: 8-aligned, its header in the
 * heap, and no more entries than the heap holds (else a cycle). */
static inline void chain_check(pstm_tx *tx, const struct mapv *v, uint64_t e,
			       uint64_t *n)
{
	if (++*n > v->chain_max || (e & 7) || !ds_in_heap(&v->ti, e, ENTRY_HDR))
		tx_fail(tx, PSTM_ECORRUPT);
}

/* Validate entry @e (its lengths word @lens): key and value in the heap. */
static void entry_check(pstm_tx *tx, const struct mapv *v, uint64_t e, uint64_t lens)
{
	if (!ds_in_heap(&v->ti, e + ENTRY_HDR, pad8(lens & 0xffffffffu) + (lens >> 32)))
		tx_fail(tx, PSTM_ECORRUPT);
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
		chain_check(tx, v, e, &n);
		if (L(tx, e + ENTRY_FIELD(hash)) == h) {
			uint64_t lens = L(tx, e + ENTRY_FIELD(lens));
			if ((lens & 0xffffffffu) == klen) {
				entry_check(tx, v, e, lens);
				if (key_equal(tx, e + ENTRY_HDR, key, klen)) {
					*out = (struct hit){link, e, n, klen, lens >> 32};
					return true;
				}
			}
		}
		link = e + ENTRY_FIELD(next);
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
		if (L(tx, ow) != MAP_MOVED)
			return ow;
	}
	return bucket_word(v, h);
}

static uint64_t new_entry(pstm_tx *tx, uint64_t h, const void *key, uint64_t klen,
			  const void *val, uint64_t vlen)
{
	uint64_t e = pstm_alloc(tx, ENTRY_HDR + pad8(klen) + (vlen ? vlen : 1));
	S(tx, e + ENTRY_FIELD(hash), h);
	S(tx, e + ENTRY_FIELD(lens), klen | vlen << 32);
	if (klen)
		pstm_write(tx, e + ENTRY_HDR, key, klen);
	if (vlen)
		pstm_write(tx, e + ENTRY_HDR + pad8(klen), val, vlen);
	return e;
}

/* ------------------------------------------------------------ growth */

/* Move old bucket @i to new buckets i and i + old_nb (if not done). */
static void migrate(pstm_tx *tx, const struct mapv *v, uint64_t i)
{
	uint64_t ow = v->old + 8 * i, e = L(tx, ow), lo = 0, hi = 0, n = 0;
	if (e == MAP_MOVED)
		return;
	while (e) {
		chain_check(tx, v, e, &n);
		uint64_t next = L(tx, e + ENTRY_FIELD(next));
		if (L(tx, e + ENTRY_FIELD(hash)) & v->old_nb) {
			S(tx, e + ENTRY_FIELD(next), hi);
			hi = e;
		} else {
			S(tx, e + ENTRY_FIELD(next), lo);
			lo = e;
		}
		e = next;
	}
	S(tx, v->tab + 8 * i, lo);
	S(tx, v->tab + 8 * (i + v->old_nb), hi);
	S(tx, ow, MAP_MOVED);
}

/* Before a put or delete of hash @h: move its old bucket, and SWEEP more;
 * the step that moves the last frees the old table. */
static void migrate_step(pstm_tx *tx, struct mapv *v, uint64_t h)
{
	if (!v->old)
		return;
	migrate(tx, v, h & (v->old_nb - 1));
	uint64_t cur = L(tx, v->m + MAP_FIELD(mig));
	if (cur > v->old_nb)
		tx_fail(tx, PSTM_ECORRUPT);
	uint64_t end = cur + SWEEP < v->old_nb ? cur + SWEEP : v->old_nb;
	for (uint64_t i = cur; i < end; i++)
		migrate(tx, v, i);
	if (end < v->old_nb) {
		S(tx, v->m + MAP_FIELD(mig), end);
		return;
	}
	pstm_free(tx, v->old);
	S(tx, v->m + MAP_FIELD(old), 0);
	S(tx, v->m + MAP_FIELD(old_nb), 0);
	S(tx, v->m + MAP_FIELD(mig), 0);
	v->old = v->old_nb = 0;
}

static void grow(pstm_tx *tx, struct mapv *v)
{
	uint64_t nt = pstm_alloc(tx, 16 * v->nb); /* 2 * nb words, unwritten */
	S(tx, v->m + MAP_FIELD(old), v->tab);
	S(tx, v->m + MAP_FIELD(old_nb), v->nb);
	S(tx, v->m + MAP_FIELD(tab), nt);
	S(tx, v->m + MAP_FIELD(nb), 2 * v->nb);
	S(tx, v->m + MAP_FIELD(mig), 0);
}

/* ---------------------------------------------------------------- API */

pstm_off pstm_map_create(pstm_tx *tx, size_t initial_buckets)
{
	struct tx_info ti;
	uint64_t cap = MAX_INITIAL, nb = MIN_BUCKETS;
	tx_info(tx, &ti);
	while (cap > MIN_BUCKETS && cap > ti.write_cap / 4)
		cap >>= 1;
	while (nb < initial_buckets && nb < cap)
		nb <<= 1;
	pstm_off m = pstm_alloc(tx, MAP_BYTES);
	uint64_t tab = pstm_alloc(tx, 8 * nb);
	for (uint64_t i = 0; i < nb; i++)
		S(tx, tab + 8 * i, 0);
	S(tx, m + MAP_FIELD(tab), tab);
	S(tx, m + MAP_FIELD(nb), nb);
	S(tx, m + MAP_FIELD(old), 0);
	S(tx, m + MAP_FIELD(old_nb), 0);
	S(tx, m + MAP_FIELD(mig), 0);
	for (uint64_t i = 0; i < MAP_STRIPES; i++)
		S(tx, map_count_word(m, i), 0);
	S(tx, m + MAP_FIELD(magic), PSTM_MAP_MAGIC);
	return m;
}

/* Start an operation on @key (and a value buffer @val of @vlen bytes):
 * check the arguments, open the map into @v, hash the key into *h. */
static inline int op_start(pstm_tx *tx, pstm_off map, const void *key, size_t klen,
			   const void *val, size_t vlen, struct mapv *v, uint64_t *h)
{
	if ((klen && !key) || (vlen && !val) || klen > 0xffffffffu ||
	    vlen > 0xffffffffu)
		return PSTM_EINVAL;
	int rc = map_open(tx, map, v);
	if (rc)
		return rc;
	*h = hash_bytes(key, klen);
	return 0;
}

int pstm_map_get(pstm_tx *tx, pstm_off map, const void *key, size_t klen,
		 void *val, size_t vcap, size_t *vlen)
{
	struct mapv v;
	struct hit hit;
	uint64_t h;
	int rc = op_start(tx, map, key, klen, val, vcap, &v, &h);
	if (rc)
		return rc;
	if (!lookup(tx, &v, chain_of(tx, &v, h), key, klen, h, &hit))
		return PSTM_ENOENT;
	uint64_t vl = hit.vlen;
	if (vcap && vl)
		pstm_read(tx, hit.e + ENTRY_HDR + pad8(klen), val, vl < vcap ? vl : vcap);
	if (vlen)
		*vlen = vl;
	return 0;
}

int pstm_map_put(pstm_tx *tx, pstm_off map, const void *key, size_t klen,
		 const void *val, size_t vlen)
{
	struct mapv v;
	struct hit hit;
	uint64_t h;
	int rc = op_start(tx, map, key, klen, val, vlen, &v, &h);
	if (rc)
		return rc;
	migrate_step(tx, &v, h);
	uint64_t hw = bucket_word(&v, h);
	if (lookup(tx, &v, hw, key, klen, h, &hit)) {
		uint64_t bytes = 0;
		if (!alloc_is_block(tx, hit.e, &bytes))
			tx_fail(tx, PSTM_ECORRUPT);
		if (ENTRY_HDR + pad8(klen) + vlen <= bytes) { /* fits in place */
			if (vlen)
				pstm_write(tx, hit.e + ENTRY_HDR + pad8(klen), val, vlen);
			if (vlen != hit.vlen)
				S(tx, hit.e + ENTRY_FIELD(lens), klen | (uint64_t)vlen << 32);
			return 0;
		}
		uint64_t ne = new_entry(tx, h, key, klen, val, vlen);
		S(tx, ne + ENTRY_FIELD(next), L(tx, hit.e + ENTRY_FIELD(next)));
		S(tx, hit.link, ne);
		pstm_free(tx, hit.e);
		return 0;
	}
	uint64_t ne = new_entry(tx, h, key, klen, val, vlen);
	S(tx, ne + ENTRY_FIELD(next), L(tx, hw));
	S(tx, hw, ne);
	count_add(tx, &v, 1);
	if (!v.old && hit.n + 1 >= GROW_CHAIN && count_all(tx, map) > 2 * v.nb)
		grow(tx, &v);
	return 0;
}

int pstm_map_del(pstm_tx *tx, pstm_off map, const void *key, size_t klen)
{
	struct mapv v;
	struct hit hit;
	uint64_t h;
	int rc = op_start(tx, map, key, klen, NULL, 0, &v, &h);
	if (rc)
		return rc;
	migrate_step(tx, &v, h);
	if (!lookup(tx, &v, bucket_word(&v, h), key, klen, h, &hit))
		return PSTM_ENOENT;
	S(tx, hit.link, L(tx, hit.e + ENTRY_FIELD(next)));
	pstm_free(tx, hit.e);
	count_add(tx, &v, (uint64_t)-1);
	return 0;
}

uint64_t pstm_map_count(pstm_tx *tx, pstm_off map)
{
	struct mapv v;
	if (map_open(tx, map, &v))
		return 0;
	return count_all(tx, map);
}

static int iter_chain(pstm_tx *tx, const struct mapv *v, struct ds_copy *copy,
		      uint64_t e, pstm_map_cb cb, void *arg)
{
	uint64_t n = 0;
	for (; e; e = L(tx, e + ENTRY_FIELD(next))) {
		chain_check(tx, v, e, &n);
		uint64_t lens = L(tx, e + ENTRY_FIELD(lens));
		entry_check(tx, v, e, lens);
		uint64_t kl = lens & 0xffffffffu, vl = lens >> 32;
		uint8_t *b = ds_copy_buf(tx, copy, kl + vl + 1);
		pstm_read(tx, e + ENTRY_HDR, b, kl);
		pstm_read(tx, e + ENTRY_HDR + pad8(kl), b + kl, vl);
		int rc = cb(b, kl, b + kl, vl, arg);
		if (rc)
			return rc;
	}
	return 0;
}

int pstm_map_iter(pstm_tx *tx, pstm_off map, pstm_map_cb cb, void *arg)
{
	struct mapv v;
	struct ds_copy copy;
	int rc;
	if (!cb)
		return PSTM_EINVAL;
	if ((rc = map_open(tx, map, &v)))
		return rc;
	ds_copy_init(&copy);
	if (!v.old) {
		for (uint64_t i = 0; i < v.nb; i++)
			if ((rc = iter_chain(tx, &v, &copy, L(tx, v.tab + 8 * i), cb, arg)))
				return rc;
		return 0;
	}
	for (uint64_t i = 0; i < v.old_nb; i++) {
		uint64_t ob = L(tx, v.old + 8 * i), hi = v.tab + 8 * (i + v.old_nb);
		if (ob != MAP_MOVED)
			rc = iter_chain(tx, &v, &copy, ob, cb, arg);
		else if (!(rc = iter_chain(tx, &v, &copy, L(tx, v.tab + 8 * i), cb, arg)))
			rc = iter_chain(tx, &v, &copy, L(tx, hi), cb, arg);
		if (rc)
			return rc;
	}
	return 0;
}
