/*
 * alloc.c - the transactional allocator: pstm_alloc, pstm_free,
 * pstm_root, and the offline heap check.
 *
 * Every metadata word (heap header, slot caches, block headers, list
 * links) is read and written through the calling transaction.  So an
 * allocation by a transaction that aborts, fails or dies never happened,
 * and a block freed by a transaction is seen free only once it commits;
 * nothing here needs its own recovery.
 *
 * Blocks.  A 16-byte header {total bytes, BLOCK_MAGIC | state} precedes
 * the user bytes; totals are multiples of 16, so every block and every
 * user offset is 16-aligned.  From the heap start to `top`, blocks lie end
 * to end (alloc_check walks them by their headers), except the unused
 * rest [cur, end) of each slot's chunk, which its cache describes.  A free
 * block links its list through its first user word, and its state word
 * carries a 16-bit hash of the transaction attempt that freed it.
 *
 * Size classes.  Small blocks (total <= 8 KiB) come in 31 classes: 32 to
 * 128 bytes in steps of 16, then four per doubling, so at most ~25% is
 * lost to rounding.  A free block is filed under the largest class it can
 * serve (its total may exceed the class size when a leftover too small to
 * be a block of its own was absorbed); small blocks are not coalesced.
 * Larger blocks (and chunks) come from the large list, K&R style: free
 * blocks in address order, first fit, cut from the back (so the free rest
 * keeps its place), merged with free neighbours when freed; or from top.
 *
 * Concurrency: per-slot caches.  A transaction runs in a slot (one per
 * thread), and each slot owns a cache in the heap, reached through the
 * heap header's two-level directory (cache_dir[slot / 128][slot % 128];
 * the thread also remembers it).  A cache holds, per class, a LIFO list
 * of free blocks with its length packed into the head word, and a chunk
 * [cur, end) of fresh space cut from the shared pool, 1/256 of the heap
 * (16..256 KiB).  The common path -- pop from the own list, push onto it,
 * bump the own chunk -- reads and writes only words of the own cache and
 * of the block, which no other slot touches, so allocating transactions
 * of different threads and processes do not conflict.  Shared words are
 * touched in batches: a cache whose list grows past 2*B (B = 4 KiB of
 * blocks, 1..32) moves B blocks to the class's shared list
 * (heap_header.free_head[c]); an empty or blocked one takes up to B from
 * it; a new chunk comes from the large list or top.  When the shared pool
 * is exhausted an allocation uses a larger class, then takes blocks and
 * chunk space from other slots' caches (transactionally, so that is safe,
 * just a conflict with their owner), and only then fails with
 * PSTM_EHEAPFULL, which rolls back everything the transaction did.
 *
 * Freed blocks.  pstm_free pushes the block onto the own list of its
 * class (or gives it to the large list) and tags it with a hash of the
 * attempt (slot + 1 and the descriptor's epoch, new at each begin), in
 * the same header word that says FREE.  A block is handed out only if its
 * tag is not the running attempt's, so a transaction never gets back a
 * block it freed itself; no other transaction sees it free before the
 * commit, because the free was written through the transaction.  A tag
 * collision (another attempt with the same hash) only delays reuse.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "stm.h"

#define HF(field) (offsetof(struct heap_header, field))
#define CACHE_MAGIC 0x736c6f7463000000ull /* "slotc" | slot index */
#define CHUNK_MIN (16u << 10)
#define CHUNK_MAX (256u << 10)

/*
 * A slot cache, in words after its block header: CACHE_MAGIC | slot, the
 * chunk [cur, end) (both 0 when none), and per class the head word of the
 * own free list: the first block's offset in bits 0..47, the list's
 * length in bits 48..63.
 */
enum { C_MAGIC, C_CUR, C_END, C_HEAD };
#define CACHE_WORDS (C_HEAD + ALLOC_NCLASS)
_Static_assert(ALLOC_NCLASS <= HEAP_CLASSES, "shared lists in the header");

static const uint16_t class_bytes[ALLOC_NCLASS] = {
	32,   48,   64,   80,   96,   112,  128,  160,  192,  224,  256,
	320,  384,  448,  512,  640,  768,  896,  1024, 1280, 1536, 1792,
	2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192};

uint64_t alloc_class_bytes(int c) { return class_bytes[c]; }

/* Smallest class that holds @total (32 <= total <= ALLOC_SMALL_MAX). */
static int class_ceil(uint64_t total)
{
	if (total <= 128)
		return (int)(total - 32) / 16;
	int k = 63 - __builtin_clzll(total - 1); /* 2^k < total <= 2^(k+1) */
	uint64_t step = 1ull << (k - 2);
	return 7 + 4 * (k - 7) + (int)((total - (1ull << k) + step - 1) / step) - 1;
}

/* Largest class a free block of @total bytes (>= 32) can serve. */
static int class_floor(uint64_t total)
{
	if (total >= ALLOC_SMALL_MAX)
		return ALLOC_NCLASS - 1;
	int c = class_ceil(total);
	return class_bytes[c] > total ? c - 1 : c;
}

/* Blocks moved between a cache and the shared list at once. */
static uint64_t batch(int c)
{
	uint64_t b = 4096u / class_bytes[c];
	return b < 1 ? 1 : b > 32 ? 32 : b;
}

static uint64_t chunk_bytes(struct pstm_region *r)
{
	uint64_t c = ((r->heap_hi - r->heap_lo) / 256) & ~15ull;
	return c < CHUNK_MIN ? CHUNK_MIN : c > CHUNK_MAX ? CHUNK_MAX : c;
}

/* ------------------------------------------------- transactional part */

struct ctx {
	pstm_tx *t;
	struct pstm_region *r;
	uint64_t hh;     /* heap header offset */
	uint64_t cache;  /* this slot's cache (first word), 0 until known */
	uint64_t tag;    /* this attempt: slot + 1 and epoch; never 0 */
	uint64_t free_word; /* state word of a block this attempt frees */
};

/*
 * This thread's slot cache offset, so that the common path skips the
 * directory.  Caches are never freed and directory entries never change
 * once committed, so a confirmed offset stays right for the whole open.
 * One found by the attempt that created it is unconfirmed (the attempt
 * may abort): it is used by that attempt only, then looked up again.
 */
static __thread struct {
	uint64_t open_id;
	uint32_t slot;
	uint64_t cache;
	uint64_t made_by;  /* tag of the creating attempt; 0 once confirmed */
} tl_cache;

static uint64_t L(struct ctx *x, uint64_t off) { return stm_load(x->t, off, x->hh); }
static void S(struct ctx *x, uint64_t off, uint64_t v) { stm_store(x->t, off, v, x->hh); }

static _Noreturn void corrupt(struct ctx *x) { stm_fail(x->t, PSTM_ECORRUPT); }

static void ctx_init(struct ctx *x, pstm_tx *t)
{
	x->t = t;
	x->r = t->r;
	x->hh = t->r->sb.heap_off;
	x->cache = 0;
	x->tag = ((uint64_t)(t->slot + 1) << 32) | t->epoch;
	uint64_t h16 = ((x->tag * 0x9E3779B97F4A7C15ull) >> 48) | 1; /* never 0 */
	x->free_word = BLOCK_MAGIC | h16 << 8 | BLOCK_FREE;
}

/* A list head word of a cache: block offset and list length. */
#define HEAD_OFF(v) ((v) & ((1ull << 48) - 1))
#define HEAD_COUNT(v) ((v) >> 48)
static uint64_t head_make(uint64_t off, uint64_t n) { return off | n << 48; }
_Static_assert((1ull << 46) <= (1ull << 48), "offsets fit a head word");

static uint64_t head_word(uint64_t cache, int c)
{
	return cache + 8 * (uint64_t)(C_HEAD + c);
}
static uint64_t shared_list(struct ctx *x, int c)
{
	return x->hh + HF(free_head) + 8 * (uint64_t)c;
}

static bool block_off_ok(struct pstm_region *r, uint64_t b)
{
	return b >= r->heap_lo && b < r->heap_hi && !(b & 15);
}

/* Validate the header of free block @b; its total.  *mine: freed by this
 * attempt (not reusable yet). */
static uint64_t free_total(struct ctx *x, uint64_t b, bool *mine)
{
	if (!block_off_ok(x->r, b))
		corrupt(x);
	uint64_t T = L(x, b), s = L(x, b + 8);
	if ((s & BLOCK_MAGIC_MASK) != BLOCK_MAGIC || (s & BLOCK_STATE_MASK) != BLOCK_FREE ||
	    T < 32 || (T & 15) || T > x->r->heap_hi - b)
		corrupt(x);
	if (mine)
		*mine = s == x->free_word;
	return T;
}

static void set_header(struct ctx *x, uint64_t b, uint64_t total, unsigned st)
{
	S(x, b, total);
	S(x, b + 8, BLOCK_MAGIC | st);
}

/*
 * The own list of class c was just made @v: if it holds more than 2*B
 * blocks, move the first B to the class's shared list.
 */
static void flush_maybe(struct ctx *x, int c, uint64_t v)
{
	uint64_t B = batch(c), n = HEAD_COUNT(v);
	if (n <= 2 * B)
		return;
	uint64_t head = HEAD_OFF(v), p = head;
	for (uint64_t i = 1; i < B; i++) {
		p = L(x, p + 16);
		if (!block_off_ok(x->r, p))
			corrupt(x); /* shorter than its count */
	}
	uint64_t rest = L(x, p + 16), gw = shared_list(x, c);
	S(x, p + 16, L(x, gw));
	S(x, gw, head);
	S(x, head_word(x->cache, c), head_make(rest, n - B));
}

/* Push free block @b (header already FREE) on the own list of its class. */
static void push_own(struct ctx *x, uint64_t b, uint64_t total)
{
	int c = class_floor(total);
	uint64_t hw = head_word(x->cache, c), v = L(x, hw);
	S(x, b + 16, HEAD_OFF(v));
	v = head_make(b, HEAD_COUNT(v) + 1);
	S(x, hw, v);
	flush_maybe(x, c, v);
}

/*
 * Pop the first block of the list at head word @hw (of any cache) for
 * class c; 0 if the list is empty or its first block was freed by this
 * very attempt (not reusable before it commits).
 */
static uint64_t pop_head(struct ctx *x, uint64_t hw, int c)
{
	uint64_t v = L(x, hw), b = HEAD_OFF(v);
	bool mine;
	if (!b)
		return 0;
	if (free_total(x, b, &mine) < class_bytes[c] || !HEAD_COUNT(v))
		corrupt(x);
	if (mine)
		return 0;
	S(x, hw, head_make(L(x, b + 16), HEAD_COUNT(v) - 1));
	return b;
}

/* Move up to B blocks from the shared list of class c to the front of
 * the own list.  Returns whether it got any. */
static bool refill(struct ctx *x, int c)
{
	uint64_t gw = shared_list(x, c), g = L(x, gw), p = g, n = 1;
	if (!g)
		return false;
	for (uint64_t nx; n < batch(c) && (nx = L(x, p + 16)); n++) {
		if (!block_off_ok(x->r, nx))
			corrupt(x);
		p = nx;
	}
	S(x, gw, L(x, p + 16));
	uint64_t hw = head_word(x->cache, c), v = L(x, hw);
	S(x, p + 16, HEAD_OFF(v));
	S(x, hw, head_make(g, HEAD_COUNT(v) + n));
	return true;
}

/* A block of class >= c from the own list of class k, refilled from the
 * shared list if need be; 0 if none. */
static uint64_t take_class(struct ctx *x, int k, int c)
{
	uint64_t b = pop_head(x, head_word(x->cache, k), c);
	if (!b && L(x, shared_list(x, k)) && refill(x, k))
		b = pop_head(x, head_word(x->cache, k), c);
	return b;
}

/*
 * Take @need bytes of the shared pool: first fit over the large list
 * (address order; blocks this attempt freed are skipped), else from top
 * (together with the last free block if it ends there).  Returns the
 * start (header not written) and its size in *got: need, or up to 16
 * more when the rest would be too small for a block.  0 if nothing fits.
 */
static uint64_t pool_take(struct ctx *x, uint64_t need, uint64_t *got)
{
	struct pstm_region *r = x->r;
	uint64_t prevw = x->hh + HF(large_head), b = L(x, prevw), prev = 0;
	uint64_t tw = x->hh + HF(top), top = L(x, tw);

	if (top < r->heap_lo || top > r->heap_hi || (top & 15))
		corrupt(x);
	while (b) {
		bool mine;
		uint64_t T = free_total(x, b, &mine), next = L(x, b + 16);
		if (b <= prev || (next && next < b + T))
			corrupt(x); /* out of order: a cycle or an overlap */
		if (T >= need && !mine) {
			uint64_t rest = T - need;
			if (rest >= 32) { /* cut from the back */
				S(x, b, rest);
				*got = need;
				return b + rest;
			}
			S(x, prevw, next);
			*got = T;
			return b;
		}
		if (!next && b + T == top && !mine &&
		    need <= T + (r->heap_hi - top)) {
			S(x, prevw, 0); /* the last block and top together */
			top = b;
			break;
		}
		prev = b;
		prevw = b + 16;
		b = next;
	}
	if (need > r->heap_hi - top)
		return 0;
	S(x, tw, top + need);
	*got = need;
	return top;
}

/*
 * Give back free block @b of @total bytes (state word FREE, tagged) to the
 * large list, in address order, merged with a free neighbour on either
 * side.  A merged block keeps this attempt's tag.
 */
static void pool_give(struct ctx *x, uint64_t b, uint64_t total)
{
	uint64_t prevw = x->hh + HF(large_head), p = L(x, prevw), prev = 0;
	uint64_t prev_total = 0;

	while (p && p < b) {
		uint64_t T = free_total(x, p, NULL);
		if (p + T > b || p <= prev)
			corrupt(x); /* overlaps the freed block, or a cycle */
		prev = p;
		prev_total = T;
		prevw = p + 16;
		p = L(x, p + 16);
	}
	if (p && p < b + total)
		corrupt(x);
	if (p == b + total) { /* merge the next one in */
		total += free_total(x, p, NULL);
		p = L(x, p + 16);
		S(x, b, total);
	}
	if (prev && prev + prev_total == b) { /* merge into the previous */
		S(x, prev, prev_total + total);
		S(x, prev + 8, x->free_word); /* partly ours now */
		S(x, prev + 16, p);
		return;
	}
	S(x, b + 16, p);
	S(x, prevw, b);
}

/* Allocator metadata of @n bytes (never freed, not zeroed): user offset. */
static uint64_t meta_alloc(struct ctx *x, uint64_t n)
{
	uint64_t got, b = pool_take(x, (n + BLOCK_HDR + 15) & ~15ull, &got);
	if (!b)
		stm_fail(x->t, PSTM_EHEAPFULL);
	set_header(x, b, got, BLOCK_META);
	return b + BLOCK_HDR;
}

static bool cache_off_ok(struct pstm_region *r, uint64_t c)
{
	return block_off_ok(r, c) && 8 * CACHE_WORDS <= r->heap_hi - c;
}

/* Cache of slot @s from the directory, validated; 0 if it has none. */
static uint64_t cache_lookup(struct ctx *x, uint32_t s, uint64_t *entry)
{
	struct pstm_region *r = x->r;
	uint64_t pw = x->hh + HF(cache_dir) + 8 * (uint64_t)(s / HEAP_DIR_PAGE_SLOTS);
	uint64_t page = L(x, pw);
	*entry = 0;
	if (!page)
		return 0;
	if (!block_off_ok(r, page) || 8 * HEAP_DIR_PAGE_SLOTS > r->heap_hi - page)
		corrupt(x);
	*entry = page + 8 * (uint64_t)(s % HEAP_DIR_PAGE_SLOTS);
	uint64_t c = L(x, *entry);
	if (c && (!cache_off_ok(r, c) || L(x, c) != (CACHE_MAGIC | s)))
		corrupt(x);
	return c;
}

/* This slot's cache, created on first use. */
static void cache_get(struct ctx *x)
{
	struct pstm_region *r = x->r;
	uint32_t s = x->t->slot;
	uint64_t entry;

	if (tl_cache.open_id == r->open_id && tl_cache.slot == s &&
	    tl_cache.cache && (!tl_cache.made_by || tl_cache.made_by == x->tag)) {
		x->cache = tl_cache.cache;
		return;
	}
	uint64_t c = cache_lookup(x, s, &entry);
	if (c) {
		tl_cache.open_id = r->open_id;
		tl_cache.slot = s;
		tl_cache.cache = c;
		tl_cache.made_by = 0; /* read, so committed */
		x->cache = c;
		return;
	}
	if (!entry) {
		uint64_t pw = x->hh + HF(cache_dir) +
			      8 * (uint64_t)(s / HEAP_DIR_PAGE_SLOTS);
		uint64_t page = meta_alloc(x, 8 * HEAP_DIR_PAGE_SLOTS);
		for (uint64_t i = 0; i < HEAP_DIR_PAGE_SLOTS; i++)
			S(x, page + 8 * i, 0);
		S(x, pw, page);
		entry = page + 8 * (uint64_t)(s % HEAP_DIR_PAGE_SLOTS);
	}
	c = meta_alloc(x, 8 * CACHE_WORDS);
	S(x, c, CACHE_MAGIC | s);
	for (int w = 1; w < CACHE_WORDS; w++)
		S(x, c + 8 * (uint64_t)w, 0);
	S(x, entry, c);
	tl_cache.open_id = r->open_id;
	tl_cache.slot = s;
	tl_cache.cache = c;
	tl_cache.made_by = x->tag;
	x->cache = c;
}

/* Cut @need bytes from the chunk of cache @c; 0 if it is too short. */
static uint64_t chunk_cut(struct ctx *x, uint64_t c, uint64_t need)
{
	uint64_t cur = L(x, c + 8 * C_CUR), end = L(x, c + 8 * C_END);
	if (cur > end || (cur & 15) || (end & 15) ||
	    (cur && (cur < x->r->heap_lo || end > x->r->heap_hi)))
		corrupt(x);
	if (end - cur < need)
		return 0;
	S(x, c + 8 * C_CUR, cur + need);
	return cur;
}

/* Turn the rest of the own chunk into a free block (or a filler). */
static void chunk_retire(struct ctx *x)
{
	uint64_t cur = L(x, x->cache + 8 * C_CUR), end = L(x, x->cache + 8 * C_END);
	uint64_t rest = end - cur;
	if (rest >= 32) {
		set_header(x, cur, rest, BLOCK_FREE);
		push_own(x, cur, rest);
	} else if (rest == 16) {
		set_header(x, cur, 16, BLOCK_PAD);
	}
}

/*
 * Last resort: take a block of class >= c (c < 0: none) or @need bytes of
 * chunk space from any slot's cache.  Returns the block start with its
 * total in *got, or 0.
 */
static uint64_t steal(struct ctx *x, int c, uint64_t need, uint64_t *got)
{
	for (uint32_t s = 0; s < x->r->sb.max_slots; s++) {
		uint64_t entry, cc = cache_lookup(x, s, &entry), b = 0;
		if (!entry) {
			s |= HEAP_DIR_PAGE_SLOTS - 1; /* no page: skip it */
			continue;
		}
		if (!cc)
			continue;
		for (int k = c; k >= 0 && k < ALLOC_NCLASS && !b; k++)
			b = pop_head(x, head_word(cc, k), c);
		if (b) {
			*got = L(x, b);
			return b;
		}
		if ((b = chunk_cut(x, cc, need))) {
			*got = need;
			uint64_t end = L(x, cc + 8 * C_END);
			if (end - (b + need) == 16) { /* no chunk of 16 bytes */
				*got += 16;
				S(x, cc + 8 * C_CUR, end);
			}
			return b;
		}
	}
	return 0;
}

/* A block of class c: own list (refilled from the shared one), own chunk,
 * new chunk, the pool, larger classes, other caches.  Returns the block
 * start, its header written USED. */
static uint64_t alloc_small(struct ctx *x, int c)
{
	uint64_t need = class_bytes[c], got = need, b;

	if ((b = take_class(x, c, c)))
		goto used;
	if (need * 4 <= chunk_bytes(x->r)) {
		if ((b = chunk_cut(x, x->cache, need)))
			goto fresh;
		uint64_t cg, ch = pool_take(x, chunk_bytes(x->r), &cg);
		if (ch) {
			chunk_retire(x);
			S(x, x->cache + 8 * C_CUR, ch + need);
			S(x, x->cache + 8 * C_END, ch + cg);
			b = ch;
			goto fresh;
		}
	}
	if ((b = pool_take(x, need, &got)))
		goto fresh;
	/* the pool is exhausted: a larger block, then other slots' caches */
	for (int k = c + 1; k < ALLOC_NCLASS; k++)
		if ((b = take_class(x, k, c)))
			goto used;
	if ((b = steal(x, c, need, &got)))
		goto fresh;
	stm_fail(x->t, PSTM_EHEAPFULL);
used:
	S(x, b + 8, BLOCK_MAGIC | BLOCK_USED);
	return b;
fresh:
	set_header(x, b, got, BLOCK_USED);
	return b;
}

static uint64_t alloc_large(struct ctx *x, uint64_t need)
{
	uint64_t got, b = pool_take(x, need, &got);
	if (!b && !(b = steal(x, -1, need, &got)))
		stm_fail(x->t, PSTM_EHEAPFULL);
	set_header(x, b, got, BLOCK_USED);
	return b;
}

pstm_off pstm_alloc(pstm_tx *t, size_t n)
{
	struct pstm_region *r = t->r;
	struct ctx x;

	if (n == 0)
		stm_fail(t, PSTM_EINVAL);
	if (n > r->heap_hi - r->heap_lo)
		stm_fail(t, PSTM_EHEAPFULL);
	uint64_t need = (n + BLOCK_HDR + 15) & ~15ull;
	ctx_init(&x, t);
	cache_get(&x);
	uint64_t b = need <= ALLOC_SMALL_MAX ? alloc_small(&x, class_ceil(need))
					     : alloc_large(&x, need);
	return b + BLOCK_HDR;
}

void pstm_free(pstm_tx *t, pstm_off off)
{
	struct pstm_region *r = t->r;
	struct ctx x;

	if (off == 0)
		return;
	if (off < r->heap_lo + BLOCK_HDR || off >= r->heap_hi || (off & 15))
		stm_fail(t, PSTM_ERANGE);
	ctx_init(&x, t);
	uint64_t b = off - BLOCK_HDR, T = L(&x, b);
	if (L(&x, b + 8) != (BLOCK_MAGIC | BLOCK_USED) || T < 32 || (T & 15) ||
	    T > r->heap_hi - b)
		stm_fail(t, PSTM_EINVAL); /* not a live block (the root is not) */
	S(&x, b + 8, x.free_word); /* free, but not for this attempt */
	if (T > ALLOC_SMALL_MAX) {
		pool_give(&x, b, T);
		return;
	}
	cache_get(&x);
	push_own(&x, b, T);
}

pstm_off pstm_root(pstm_tx *t, size_t n)
{
	struct ctx x;
	ctx_init(&x, t);
	uint64_t root = L(&x, x.hh + HF(root_off));

	if (root) {
		if (n > L(&x, x.hh + HF(root_bytes)))
			stm_fail(t, PSTM_EINVAL);
		return root;
	}
	if (n == 0)
		stm_fail(t, PSTM_EINVAL);
	root = pstm_alloc(t, n);
	S(&x, root - 8, BLOCK_MAGIC | BLOCK_ROOT); /* never freed */
	for (uint64_t i = 0; i < n; i += 8)
		S(&x, root + i, 0);
	S(&x, x.hh + HF(root_off), root);
	S(&x, x.hh + HF(root_bytes), n);
	return root;
}

bool alloc_is_block(struct pstm_tx *t, uint64_t off, uint64_t *bytes)
{
	struct pstm_region *r = t->r;
	if (off < r->heap_lo + BLOCK_HDR || off >= r->heap_hi || (off & 15))
		return false;
	uint64_t b = off - BLOCK_HDR;
	uint64_t T = stm_load(t, b, r->sb.heap_off);
	uint64_t s = stm_load(t, b + 8, r->sb.heap_off);
	if ((s != (BLOCK_MAGIC | BLOCK_USED) && s != (BLOCK_MAGIC | BLOCK_ROOT)) ||
	    T < 32 || (T & 15) || T > r->heap_hi - b)
		return false;
	if (bytes)
		*bytes = T - BLOCK_HDR;
	return true;
}

/* ------------------------------------------------------ offline check */

struct chk {
	struct pstm_region *r;
	struct alloc_report *rep;
	uint64_t lo, top;
	uint8_t *start, *free, *listed; /* bitmaps over 16-byte granules */
};

struct arena {
	uint64_t cur, end;
};

static uint64_t rd(struct chk *k, uint64_t off)
{
	return __atomic_load_n((const uint64_t *)(k->r->base + off),
			       __ATOMIC_RELAXED);
}

static __attribute__((format(printf, 2, 3))) void problem(struct chk *k,
							  const char *fmt, ...)
{
	struct alloc_report *rep = k->rep;
	if (rep->problems++ < 4) {
		size_t n = strlen(rep->first);
		va_list ap;
		if (n && n + 2 < sizeof(rep->first)) {
			strcat(rep->first, "; ");
			n += 2;
		}
		va_start(ap, fmt);
		vsnprintf(rep->first + n, sizeof(rep->first) - n, fmt, ap);
		va_end(ap);
	}
}

static uint64_t gran(struct chk *k, uint64_t off) { return (off - k->lo) / 16; }
static bool bit(const uint8_t *m, uint64_t i) { return m[i / 8] >> (i % 8) & 1; }
static void set_bit(uint8_t *m, uint64_t i) { m[i / 8] |= (uint8_t)(1u << (i % 8)); }

/* A block start below top? */
static bool is_start(struct chk *k, uint64_t b)
{
	return b >= k->lo && b < k->top && !(b & 15) && bit(k->start, gran(k, b));
}

static struct alloc_class_stat *stat_for(struct alloc_report *rep, uint64_t T)
{
	return &rep->cls[T > ALLOC_SMALL_MAX ? ALLOC_NCLASS : class_floor(T)];
}

/* Walk a free list; each block must be free, of class @cls (-1: any), on
 * no other list; the large list in address order.  Returns its length. */
static uint64_t check_list(struct chk *k, uint64_t b, int cls, const char *name)
{
	uint64_t n = 0, prev = 0;
	for (; b; b = rd(k, b + 16)) {
		if (!is_start(k, b)) {
			problem(k, "%s: %llu is not a block", name, (unsigned long long)b);
			break;
		}
		if (!bit(k->free, gran(k, b))) {
			problem(k, "%s: block %llu is not free", name, (unsigned long long)b);
			break;
		}
		uint64_t T = rd(k, b);
		if (cls >= 0 && (T > ALLOC_SMALL_MAX || class_floor(T) != cls))
			problem(k, "%s: block %llu of %llu bytes in the wrong class",
				name, (unsigned long long)b, (unsigned long long)T);
		if (cls < 0 && b <= prev) {
			problem(k, "%s: block %llu out of address order", name,
				(unsigned long long)b);
			break;
		}
		prev = b;
		if (bit(k->listed, gran(k, b))) {
			problem(k, "%s: block %llu on two lists (or a cycle)", name,
				(unsigned long long)b);
			break;
		}
		set_bit(k->listed, gran(k, b));
		n++;
	}
	return n;
}

static int cmp_arena(const void *a, const void *b)
{
	const struct arena *x = a, *y = b;
	return x->cur < y->cur ? -1 : x->cur > y->cur;
}

/* An offset read from the heap that should name a META block of @bytes. */
static bool meta_ok(struct chk *k, uint64_t off, uint64_t bytes)
{
	return off >= k->lo + BLOCK_HDR && off < k->top && !(off & 15) &&
	       bytes <= k->top - off;
}

int alloc_check(struct pstm_region *r, struct alloc_report *rep)
{
	struct chk k = {.r = r, .rep = rep, .lo = r->heap_lo};
	const uint64_t hh = r->sb.heap_off;
	struct arena *ar = NULL;
	uint64_t na = 0, caches[HEAP_DIR_PAGES * HEAP_DIR_PAGE_SLOTS];
	uint64_t pages[HEAP_DIR_PAGES];
	char name[64];

	memset(rep, 0, sizeof(*rep));
	for (int c = 0; c < ALLOC_NCLASS; c++)
		rep->cls[c].bytes = class_bytes[c];
	rep->heap_bytes = r->heap_hi - r->heap_lo;
	if (rd(&k, hh) != PSTM_HEAP_MAGIC) {
		problem(&k, "heap header magic invalid");
		return 1;
	}
	k.top = rd(&k, hh + HF(top));
	if (k.top < k.lo || k.top > r->heap_hi || (k.top & 15)) {
		problem(&k, "heap top %llu outside the heap", (unsigned long long)k.top);
		return 1;
	}
	rep->carved_bytes = k.top - k.lo;
	uint64_t ng = (k.top - k.lo) / 16 + 1, nbytes = ng / 8 + 1;
	k.start = calloc(nbytes, 1);
	k.free = calloc(nbytes, 1);
	k.listed = calloc(nbytes, 1);
	ar = calloc(r->sb.max_slots + 1, sizeof(*ar));
	if (!k.start || !k.free || !k.listed || !ar) {
		problem(&k, "out of memory for the check");
		goto out;
	}

	/* 1. directory and caches; their chunks, which the walk skips */
	memset(caches, 0, sizeof(caches));
	for (uint32_t p = 0; p < HEAP_DIR_PAGES; p++) {
		pages[p] = rd(&k, hh + HF(cache_dir) + 8 * p);
		if (!pages[p])
			continue;
		if ((uint64_t)p * HEAP_DIR_PAGE_SLOTS >= r->sb.max_slots ||
		    !meta_ok(&k, pages[p], 8 * HEAP_DIR_PAGE_SLOTS)) {
			problem(&k, "cache directory page %u at %llu invalid", p,
				(unsigned long long)pages[p]);
			pages[p] = 0;
			continue;
		}
		for (uint32_t i = 0; i < HEAP_DIR_PAGE_SLOTS; i++) {
			uint32_t s = p * HEAP_DIR_PAGE_SLOTS + i;
			uint64_t c = rd(&k, pages[p] + 8 * i);
			if (!c)
				continue;
			if (s >= r->sb.max_slots || !meta_ok(&k, c, 8 * CACHE_WORDS) ||
			    rd(&k, c) != (CACHE_MAGIC | s)) {
				problem(&k, "slot %u: cache at %llu invalid", s,
					(unsigned long long)c);
				continue;
			}
			caches[s] = c;
			rep->caches++;
			uint64_t cur = rd(&k, c + 8 * C_CUR), end = rd(&k, c + 8 * C_END);
			if (cur == end)
				continue;
			if (cur > end || cur < k.lo || end > k.top || (cur & 15) ||
			    (end & 15)) {
				problem(&k, "slot %u: chunk [%llu, %llu) invalid", s,
					(unsigned long long)cur, (unsigned long long)end);
				continue;
			}
			ar[na++] = (struct arena){cur, end};
		}
	}
	qsort(ar, na, sizeof(*ar), cmp_arena);

	/* 2. every block from the heap start to top */
	uint64_t p = k.lo, ai = 0;
	while (p < k.top) {
		if (ai < na && ar[ai].cur < p) {
			problem(&k, "chunk at %llu overlaps a block",
				(unsigned long long)ar[ai].cur);
			ai++;
			continue;
		}
		if (ai < na && ar[ai].cur == p) {
			rep->chunk_bytes += ar[ai].end - p;
			p = ar[ai++].end;
			continue;
		}
		uint64_t T = rd(&k, p), s = rd(&k, p + 8), st = s & BLOCK_STATE_MASK;
		bool ok = (s & BLOCK_MAGIC_MASK) == BLOCK_MAGIC && !(T & 15) &&
			  T >= 16 && T <= k.top - p &&
			  (st == BLOCK_FREE || s == (BLOCK_MAGIC | st)) && /* tag: free only */
			  (st == BLOCK_PAD ? T == 16
					   : T >= 32 && st >= BLOCK_USED && st <= BLOCK_ROOT &&
						     st != BLOCK_PAD);
		if (!ok) {
			problem(&k, "bad block header at %llu", (unsigned long long)p);
			break;
		}
		if (ai < na && ar[ai].cur < p + T) {
			problem(&k, "chunk at %llu overlaps block %llu",
				(unsigned long long)ar[ai].cur, (unsigned long long)p);
			break;
		}
		set_bit(k.start, gran(&k, p));
		switch (st) {
		case BLOCK_ROOT:
			if (p + BLOCK_HDR != rd(&k, hh + HF(root_off)))
				problem(&k, "root block %llu is not the root", (unsigned long long)p);
			/* fall through */
		case BLOCK_USED:
			rep->used_blocks++;
			rep->used_bytes += T;
			stat_for(rep, T)->used++;
			stat_for(rep, T)->used_bytes += T;
			break;
		case BLOCK_FREE:
			set_bit(k.free, gran(&k, p));
			rep->free_blocks++;
			rep->free_bytes += T;
			stat_for(rep, T)->free++;
			stat_for(rep, T)->free_bytes += T;
			break;
		case BLOCK_META:
			rep->meta_blocks++;
			rep->meta_bytes += T;
			break;
		default:
			rep->pad_blocks++;
			break;
		}
		p += T;
	}
	if (p != k.top)
		goto out; /* the walk broke: lists cannot be checked */

	/* 3. metadata blocks are what the directory says */
	for (uint32_t pg = 0; pg < HEAP_DIR_PAGES; pg++)
		if (pages[pg] && (!is_start(&k, pages[pg] - BLOCK_HDR) ||
				  rd(&k, pages[pg] - 8) != (BLOCK_MAGIC | BLOCK_META)))
			problem(&k, "directory page %llu is not a metadata block",
				(unsigned long long)pages[pg]);
	uint64_t root = rd(&k, hh + HF(root_off));
	if (root && (!is_start(&k, root - BLOCK_HDR) ||
		     rd(&k, root - 8) != (BLOCK_MAGIC | BLOCK_ROOT)))
		problem(&k, "root %llu is not a live block", (unsigned long long)root);

	/* 4. free lists: shared, large, each cache's own */
	for (int c = 0; c < HEAP_CLASSES; c++) {
		uint64_t h = rd(&k, hh + HF(free_head) + 8 * (uint64_t)c);
		if (c >= ALLOC_NCLASS) {
			if (h)
				problem(&k, "unused shared list %d not empty", c);
			continue;
		}
		snprintf(name, sizeof(name), "shared list %d", c);
		check_list(&k, h, c, name);
	}
	check_list(&k, rd(&k, hh + HF(large_head)), -1, "large list");
	for (uint32_t s = 0; s < HEAP_DIR_PAGES * HEAP_DIR_PAGE_SLOTS; s++) {
		uint64_t c = caches[s];
		if (!c)
			continue;
		if (!is_start(&k, c - BLOCK_HDR) ||
		    rd(&k, c - 8) != (BLOCK_MAGIC | BLOCK_META)) {
			problem(&k, "slot %u: cache is not a metadata block", s);
			continue;
		}
		for (int cl = 0; cl < ALLOC_NCLASS; cl++) {
			uint64_t v = rd(&k, c + 8 * (uint64_t)(C_HEAD + cl));
			snprintf(name, sizeof(name), "slot %u class %d", s, cl);
			uint64_t n = check_list(&k, HEAD_OFF(v), cl, name);
			if (n != HEAD_COUNT(v))
				problem(&k, "%s: %llu blocks, count says %llu", name,
					(unsigned long long)n,
					(unsigned long long)HEAD_COUNT(v));
		}
	}

	/* 5. every free block is on a list */
	for (uint64_t g = 0; g < ng; g++)
		if (bit(k.free, g) && !bit(k.listed, g))
			problem(&k, "free block %llu on no list (leaked)",
				(unsigned long long)(k.lo + 16 * g));
out:
	free(k.start);
	free(k.free);
	free(k.listed);
	free(ar);
	return rep->problems ? 1 : 0;
}
