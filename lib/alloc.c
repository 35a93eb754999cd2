/*
 * alloc.c - the transactional allocator: pstm_alloc, pstm_free,
 * pstm_root, alloc_is_block.  Written only against the transaction calls
 * (pstm.h, tx.h); the offline heap check is lib/alloc_check.c.  About
 * 600 lines: a third is the design below, and the small, large and
 * stealing paths share the cache helpers, so they stay one file.
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
 * attempt (tx_attempt: slot + 1 and a count new at each begin), in
 * the same header word that says FREE.  A block is handed out only if its
 * tag is not the running attempt's, so a transaction never gets back a
 * block it freed itself; no other transaction sees it free before the
 * commit, because the free was written through the transaction.  A tag
 * collision (another attempt with the same hash) only delays reuse.
 */
#include "alloc.h"

#define CHUNK_MIN (16u << 10)
#define CHUNK_MAX (256u << 10)

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

int alloc_class_floor(uint64_t total)
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

struct ctx {
	pstm_tx *t;
	struct tx_info ti;  /* the heap: header at meta_lo, [heap_lo, heap_hi) */
	uint64_t hh;        /* heap header offset (ti.meta_lo) */
	uint64_t cache;     /* this slot's cache (first word), 0 until known */
	uint64_t tag;       /* this attempt (tx_attempt); never 0 */
	uint64_t free_word; /* state word of a block this attempt frees */
};

static uint64_t chunk_bytes(const struct ctx *x)
{
	uint64_t c = ((x->ti.heap_hi - x->ti.heap_lo) / 256) & ~15ull;
	return c < CHUNK_MIN ? CHUNK_MIN : c > CHUNK_MAX ? CHUNK_MAX : c;
}

/*
 * This thread's slot cache offset, so that the common path skips the
 * directory.  Caches are never freed and directory entries never change
 * once committed, so a confirmed offset stays right for the whole open.
 * One found by the attempt that created it is unconfirmed (the attempt
 * may abort): it is used by that attempt only, then looked up again.
 */
static __thread struct {
	uint64_t handle_id;
	uint32_t slot;
	uint64_t cache;
	uint64_t made_by;  /* tag of the creating attempt; 0 once confirmed */
} tl_cache;

/* Every word here is allocator metadata: [meta_lo, heap_hi). */
static uint64_t L(struct ctx *x, uint64_t off) { return tx_load_meta(x->t, off); }
static void S(struct ctx *x, uint64_t off, uint64_t v) { tx_store_meta(x->t, off, v); }

static _Noreturn void corrupt(struct ctx *x) { tx_fail(x->t, PSTM_ECORRUPT); }

static void ctx_init(struct ctx *x, pstm_tx *t)
{
	x->t = t;
	tx_info(t, &x->ti);
	x->hh = x->ti.meta_lo;
	x->cache = 0;
	x->tag = tx_attempt(t);
	uint64_t h16 = ((x->tag * 0x9E3779B97F4A7C15ull) >> 48) | 1; /* never 0 */
	x->free_word = BLOCK_MAGIC | h16 << 8 | BLOCK_FREE;
}

static uint64_t shared_list(struct ctx *x, int c)
{
	return x->hh + HEAP_FIELD(free_head) + 8 * (uint64_t)c;
}

static bool block_off_ok(const struct ctx *x, uint64_t b)
{
	return b >= x->ti.heap_lo && b < x->ti.heap_hi && !(b & 15);
}

/* Validate the header of free block @b; its total.  *mine: freed by this
 * attempt (not reusable yet). */
static uint64_t free_total(struct ctx *x, uint64_t b, bool *mine)
{
	if (!block_off_ok(x, b))
		corrupt(x);
	uint64_t T = L(x, b), s = L(x, b + 8);
	if ((s & BLOCK_MAGIC_MASK) != BLOCK_MAGIC || (s & BLOCK_STATE_MASK) != BLOCK_FREE ||
	    T < 32 || (T & 15) || T > x->ti.heap_hi - b)
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
		if (!block_off_ok(x, p))
			corrupt(x); /* shorter than its count */
	}
	uint64_t rest = L(x, p + 16), gw = shared_list(x, c);
	S(x, p + 16, L(x, gw));
	S(x, gw, head);
	S(x, cache_head_word(x->cache, c), head_make(rest, n - B));
}

/* Push free block @b (header already FREE) on the own list of its class. */
static void push_own(struct ctx *x, uint64_t b, uint64_t total)
{
	int c = alloc_class_floor(total);
	uint64_t hw = cache_head_word(x->cache, c), v = L(x, hw);
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
		if (!block_off_ok(x, nx))
			corrupt(x);
		p = nx;
	}
	S(x, gw, L(x, p + 16));
	uint64_t hw = cache_head_word(x->cache, c), v = L(x, hw);
	S(x, p + 16, HEAD_OFF(v));
	S(x, hw, head_make(g, HEAD_COUNT(v) + n));
	return true;
}

/* A block of class >= c from the own list of class k, refilled from the
 * shared list if need be; 0 if none. */
static uint64_t take_class(struct ctx *x, int k, int c)
{
	uint64_t b = pop_head(x, cache_head_word(x->cache, k), c);
	if (!b && L(x, shared_list(x, k)) && refill(x, k))
		b = pop_head(x, cache_head_word(x->cache, k), c);
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
	const uint64_t lo = x->ti.heap_lo, hi = x->ti.heap_hi;
	uint64_t prevw = x->hh + HEAP_FIELD(large_head), b = L(x, prevw), prev = 0;
	uint64_t tw = x->hh + HEAP_FIELD(top), top = L(x, tw);

	if (top < lo || top > hi || (top & 15))
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
		    need <= T + (hi - top)) {
			S(x, prevw, 0); /* the last block and top together */
			top = b;
			break;
		}
		prev = b;
		prevw = b + 16;
		b = next;
	}
	if (need > hi - top)
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
	uint64_t prevw = x->hh + HEAP_FIELD(large_head), p = L(x, prevw), prev = 0;
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

/* Allocator metadata of @n bytes (never freed, not zeroed): user offset;
 * 0 if the heap has no room and @may_fail, else PSTM_EHEAPFULL. */
static uint64_t meta_alloc(struct ctx *x, uint64_t n, bool may_fail)
{
	uint64_t got, b = pool_take(x, (n + BLOCK_HDR + 15) & ~15ull, &got);
	if (!b && may_fail)
		return 0;
	if (!b)
		tx_fail(x->t, PSTM_EHEAPFULL);
	set_header(x, b, got, BLOCK_META);
	return b + BLOCK_HDR;
}

static bool cache_off_ok(const struct ctx *x, uint64_t c)
{
	return block_off_ok(x, c) && CACHE_BYTES <= x->ti.heap_hi - c;
}

/* The heap header word naming the directory page of slot @s. */
static uint64_t dir_page_word(const struct ctx *x, uint32_t s)
{
	return x->hh + HEAP_FIELD(cache_dir) + 8 * (uint64_t)(s / HEAP_DIR_PAGE_SLOTS);
}

/* Cache of slot @s from the directory, validated; 0 if it has none. */
static uint64_t cache_lookup(struct ctx *x, uint32_t s, uint64_t *entry)
{
	uint64_t page = L(x, dir_page_word(x, s));
	*entry = 0;
	if (!page)
		return 0;
	if (!block_off_ok(x, page) || 8 * HEAP_DIR_PAGE_SLOTS > x->ti.heap_hi - page)
		corrupt(x);
	*entry = page + 8 * (uint64_t)(s % HEAP_DIR_PAGE_SLOTS);
	uint64_t c = L(x, *entry);
	if (c && (!cache_off_ok(x, c) || L(x, c) != (CACHE_MAGIC | s)))
		corrupt(x);
	return c;
}

/* Use cache @c, and remember it for this thread (made_by: see tl_cache). */
static void cache_use(struct ctx *x, uint64_t c, uint64_t made_by)
{
	tl_cache.handle_id = x->ti.handle_id;
	tl_cache.slot = x->ti.slot;
	tl_cache.cache = c;
	tl_cache.made_by = made_by;
	x->cache = c;
}

/* This slot's cache, created on first use.  With @may_fail, false
 * instead of PSTM_EHEAPFULL when the heap has no room for it. */
static bool cache_make(struct ctx *x, bool may_fail)
{
	const uint32_t s = x->ti.slot;
	uint64_t entry;

	if (tl_cache.handle_id == x->ti.handle_id && tl_cache.slot == s &&
	    tl_cache.cache && (!tl_cache.made_by || tl_cache.made_by == x->tag)) {
		x->cache = tl_cache.cache;
		return true;
	}
	uint64_t c = cache_lookup(x, s, &entry);
	if (c) {
		cache_use(x, c, 0); /* read, so committed */
		return true;
	}
	if (!entry) {
		uint64_t page = meta_alloc(x, 8 * HEAP_DIR_PAGE_SLOTS, may_fail);
		if (!page)
			return false;
		for (uint64_t i = 0; i < HEAP_DIR_PAGE_SLOTS; i++)
			S(x, page + 8 * i, 0);
		S(x, dir_page_word(x, s), page);
		entry = page + 8 * (uint64_t)(s % HEAP_DIR_PAGE_SLOTS);
	}
	c = meta_alloc(x, CACHE_BYTES, may_fail);
	if (!c)
		return false;
	S(x, c, CACHE_MAGIC | s);
	for (uint64_t w = 8; w < CACHE_BYTES; w += 8)
		S(x, c + w, 0);
	S(x, entry, c);
	cache_use(x, c, x->tag);
	return true;
}

static void cache_get(struct ctx *x) { (void)cache_make(x, false); }

/* Cut @need bytes from the chunk of cache @c; 0 if it is too short. */
static uint64_t chunk_cut(struct ctx *x, uint64_t c, uint64_t need)
{
	uint64_t cur = L(x, c + CACHE_FIELD(cur)), end = L(x, c + CACHE_FIELD(end));
	if (cur > end || (cur & 15) || (end & 15) ||
	    (cur && (cur < x->ti.heap_lo || end > x->ti.heap_hi)))
		corrupt(x);
	if (end - cur < need)
		return 0;
	S(x, c + CACHE_FIELD(cur), cur + need);
	return cur;
}

/* Turn the rest of the own chunk into a free block (or a filler). */
static void chunk_retire(struct ctx *x)
{
	uint64_t cur = L(x, x->cache + CACHE_FIELD(cur));
	uint64_t end = L(x, x->cache + CACHE_FIELD(end));
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
	for (uint32_t s = 0; s < x->ti.max_slots; s++) {
		uint64_t entry, cc = cache_lookup(x, s, &entry), b = 0;
		if (!entry) {
			s |= HEAP_DIR_PAGE_SLOTS - 1; /* no page: skip it */
			continue;
		}
		if (!cc)
			continue;
		for (int k = c; k >= 0 && k < ALLOC_NCLASS && !b; k++)
			b = pop_head(x, cache_head_word(cc, k), c);
		if (b) {
			*got = L(x, b);
			return b;
		}
		if ((b = chunk_cut(x, cc, need))) {
			*got = need;
			uint64_t end = L(x, cc + CACHE_FIELD(end));
			if (end - (b + need) == 16) { /* no chunk of 16 bytes */
				*got += 16;
				S(x, cc + CACHE_FIELD(cur), end);
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
	if (need * 4 <= chunk_bytes(x)) {
		if ((b = chunk_cut(x, x->cache, need)))
			goto fresh;
		uint64_t cg, ch = pool_take(x, chunk_bytes(x), &cg);
		if (ch) {
			chunk_retire(x);
			S(x, x->cache + CACHE_FIELD(cur), ch + need);
			S(x, x->cache + CACHE_FIELD(end), ch + cg);
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
	tx_fail(x->t, PSTM_EHEAPFULL);
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
		tx_fail(x->t, PSTM_EHEAPFULL);
	set_header(x, b, got, BLOCK_USED);
	return b;
}

/* Whether @off may be the user start of a block: in the heap, aligned. */
static bool user_off_ok(const struct ctx *x, uint64_t off)
{
	return off >= x->ti.heap_lo + BLOCK_HDR && off < x->ti.heap_hi && !(off & 15);
}

/* The total of the block at @b if its header says live with state @st
 * (or also ROOT when @or_root), else 0. */
static inline uint64_t live_total(struct ctx *x, uint64_t b, unsigned st, bool or_root)
{
	uint64_t T = L(x, b), s = L(x, b + 8);
	if ((s != (BLOCK_MAGIC | st) && !(or_root && s == (BLOCK_MAGIC | BLOCK_ROOT))) ||
	    T < 32 || (T & 15) || T > x->ti.heap_hi - b)
		return 0;
	return T;
}

pstm_off pstm_alloc(pstm_tx *t, size_t n)
{
	struct ctx x;

	if (n == 0)
		tx_fail(t, PSTM_EINVAL);
	ctx_init(&x, t);
	if (n > x.ti.heap_hi - x.ti.heap_lo)
		tx_fail(t, PSTM_EHEAPFULL);
	uint64_t need = (n + BLOCK_HDR + 15) & ~15ull;
	cache_get(&x);
	uint64_t b = need <= ALLOC_SMALL_MAX ? alloc_small(&x, class_ceil(need))
					     : alloc_large(&x, need);
	return b + BLOCK_HDR;
}

void pstm_free(pstm_tx *t, pstm_off off)
{
	struct ctx x;

	if (off == 0)
		return;
	ctx_init(&x, t);
	if (!user_off_ok(&x, off))
		tx_fail(t, PSTM_ERANGE);
	uint64_t b = off - BLOCK_HDR, T = live_total(&x, b, BLOCK_USED, false);
	if (!T)
		tx_fail(t, PSTM_EINVAL); /* not a live block (the root is not) */
	S(&x, b + 8, x.free_word); /* free, but not for this attempt */
	if (T > ALLOC_SMALL_MAX) {
		pool_give(&x, b, T);
		return;
	}
	if (!cache_make(&x, true)) {
		/* a slot without a cache in a full heap: freeing must not
		 * need memory, so the block goes to its class's shared list */
		uint64_t gw = shared_list(&x, alloc_class_floor(T));
		S(&x, b + 16, L(&x, gw));
		S(&x, gw, b);
		return;
	}
	push_own(&x, b, T);
}

pstm_off pstm_root(pstm_tx *t, size_t n)
{
	struct ctx x;
	ctx_init(&x, t);
	uint64_t root = L(&x, x.hh + HEAP_FIELD(root_off));

	if (root) {
		if (n > L(&x, x.hh + HEAP_FIELD(root_bytes)))
			tx_fail(t, PSTM_EINVAL);
		return root;
	}
	if (n == 0)
		tx_fail(t, PSTM_EINVAL);
	root = pstm_alloc(t, n);
	S(&x, root - 8, BLOCK_MAGIC | BLOCK_ROOT); /* never freed */
	for (uint64_t i = 0; i < n; i += 8)
		S(&x, root + i, 0);
	S(&x, x.hh + HEAP_FIELD(root_off), root);
	S(&x, x.hh + HEAP_FIELD(root_bytes), n);
	return root;
}

bool alloc_is_block(pstm_tx *t, uint64_t off, uint64_t *bytes)
{
	struct ctx x = {.t = t}; /* reads only: no cache, no tag needed */
	tx_info(t, &x.ti);
	if (!user_off_ok(&x, off))
		return false;
	uint64_t T = live_total(&x, off - BLOCK_HDR, BLOCK_USED, true);
	if (T && bytes)
		*bytes = T - BLOCK_HDR;
	return T != 0;
}
