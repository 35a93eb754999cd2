/*
 * alloc_check.c - the offline heap check (alloc_check): walks every block,
 * slot cache and free list of a quiescent heap, reading the mapping
 * directly.  An inspection tool, not transactional; lib/alloc.c owns the
 * format it checks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_check.h"
#include "region.h"

/*
 * What the check reads: the mapping and the heap's geometry, taken from
 * the region once in alloc_check; nothing below looks at the region.
 */
struct chk {
	const uint8_t *base;  /* the mapping of the whole region */
	uint64_t hh;          /* heap header offset */
	uint64_t lo, hi;      /* user heap [lo, hi) */
	uint32_t max_slots;
	struct alloc_report *rep;
	uint64_t top;
	uint8_t *start, *free, *listed; /* bitmaps over 16-byte granules */
};

struct arena {
	uint64_t cur, end;
};

static uint64_t rd(struct chk *k, uint64_t off)
{
	return __atomic_load_n((const uint64_t *)(k->base + off),
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

/* Count a block of @total bytes in @blocks and @bytes. */
static void tally(uint64_t *blocks, uint64_t *bytes, uint64_t total)
{
	(*blocks)++;
	*bytes += total;
}

/* A block start below top? */
static bool is_start(struct chk *k, uint64_t b)
{
	return b >= k->lo && b < k->top && !(b & 15) && bit(k->start, gran(k, b));
}

static struct alloc_class_stat *stat_for(struct alloc_report *rep, uint64_t T)
{
	return &rep->cls[T > ALLOC_SMALL_MAX ? ALLOC_NCLASS : alloc_class_floor(T)];
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
		if (cls >= 0 && (T > ALLOC_SMALL_MAX || alloc_class_floor(T) != cls))
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
	struct chk k = {.base = r->base, .hh = r->sb.heap_off, .lo = r->heap_lo,
			.hi = r->heap_hi, .max_slots = r->sb.max_slots, .rep = rep};
	const uint64_t hh = k.hh;
	struct arena *ar = NULL;
	uint64_t na = 0, caches[HEAP_DIR_PAGES * HEAP_DIR_PAGE_SLOTS];
	uint64_t pages[HEAP_DIR_PAGES];
	char name[64];

	memset(rep, 0, sizeof(*rep));
	for (int c = 0; c < ALLOC_NCLASS; c++)
		rep->cls[c].bytes = alloc_class_bytes(c);
	rep->heap_bytes = k.hi - k.lo;
	if (rd(&k, hh) != PSTM_HEAP_MAGIC) {
		problem(&k, "heap header magic invalid");
		return 1;
	}
	k.top = rd(&k, hh + HEAP_FIELD(top));
	if (k.top < k.lo || k.top > k.hi || (k.top & 15)) {
		problem(&k, "heap top %llu outside the heap", (unsigned long long)k.top);
		return 1;
	}
	rep->carved_bytes = k.top - k.lo;
	uint64_t ng = (k.top - k.lo) / 16 + 1, nbytes = ng / 8 + 1;
	k.start = calloc(nbytes, 1);
	k.free = calloc(nbytes, 1);
	k.listed = calloc(nbytes, 1);
	ar = calloc(k.max_slots + 1, sizeof(*ar));
	if (!k.start || !k.free || !k.listed || !ar) {
		problem(&k, "out of memory for the check");
		goto out;
	}

	/* 1. directory and caches; their chunks, which the walk skips */
	memset(caches, 0, sizeof(caches));
	for (uint32_t p = 0; p < HEAP_DIR_PAGES; p++) {
		pages[p] = rd(&k, hh + HEAP_FIELD(cache_dir) + 8 * p);
		if (!pages[p])
			continue;
		if ((uint64_t)p * HEAP_DIR_PAGE_SLOTS >= k.max_slots ||
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
			if (s >= k.max_slots || !meta_ok(&k, c, CACHE_BYTES) ||
			    rd(&k, c) != (CACHE_MAGIC | s)) {
				problem(&k, "slot %u: cache at %llu invalid", s,
					(unsigned long long)c);
				continue;
			}
			caches[s] = c;
			rep->caches++;
			uint64_t cur = rd(&k, c + CACHE_FIELD(cur)),
				 end = rd(&k, c + CACHE_FIELD(end));
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
			if (p + BLOCK_HDR != rd(&k, hh + HEAP_FIELD(root_off)))
				problem(&k, "root block %llu is not the root", (unsigned long long)p);
			/* fall through */
		case BLOCK_USED:
			tally(&rep->used_blocks, &rep->used_bytes, T);
			tally(&stat_for(rep, T)->used, &stat_for(rep, T)->used_bytes, T);
			break;
		case BLOCK_FREE:
			set_bit(k.free, gran(&k, p));
			tally(&rep->free_blocks, &rep->free_bytes, T);
			tally(&stat_for(rep, T)->free, &stat_for(rep, T)->free_bytes, T);
			break;
		case BLOCK_META:
			tally(&rep->meta_blocks, &rep->meta_bytes, T);
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
	uint64_t root = rd(&k, hh + HEAP_FIELD(root_off));
	if (root && (!is_start(&k, root - BLOCK_HDR) ||
		     rd(&k, root - 8) != (BLOCK_MAGIC | BLOCK_ROOT)))
		problem(&k, "root %llu is not a live block", (unsigned long long)root);

	/* 4. free lists: shared, large, each cache's own */
	for (int c = 0; c < HEAP_CLASSES; c++) {
		uint64_t h = rd(&k, hh + HEAP_FIELD(free_head) + 8 * (uint64_t)c);
		if (c >= ALLOC_NCLASS) {
			if (h)
				problem(&k, "unused shared list %d not empty", c);
			continue;
		}
		snprintf(name, sizeof(name), "shared list %d", c);
		check_list(&k, h, c, name);
	}
	check_list(&k, rd(&k, hh + HEAP_FIELD(large_head)), -1, "large list");
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
			uint64_t v = rd(&k, cache_head_word(c, cl));
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
