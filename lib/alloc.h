/*
 * alloc.h - transactional heap allocator, the root object, and the
 * offline heap check.  lib/alloc.c describes the design.
 */
#ifndef PSTM_ALLOC_H
#define PSTM_ALLOC_H

#include "region.h"

/*
 * Block: a 16-byte header {total bytes, state word} before the user bytes.
 * Totals are multiples of 16; a block starts 16-aligned.  State word:
 * BLOCK_MAGIC in bits 24..63, a tag in bits 8..23 (free blocks: a hash of
 * the transaction attempt that freed it, 0 if none), the state in 0..7.
 */
#define BLOCK_HDR 16u
#define BLOCK_MAGIC 0x626c6f636b000000ull /* "block" + tag + state */
#define BLOCK_MAGIC_MASK 0xffffffffff000000ull
#define BLOCK_STATE_MASK 0xffull
#define BLOCK_USED 1u   /* handed out by pstm_alloc */
#define BLOCK_FREE 2u   /* on exactly one free list */
#define BLOCK_META 3u   /* the allocator's own (slot caches, directory) */
#define BLOCK_PAD 4u    /* 16-byte filler, header only, never reused */
#define BLOCK_ROOT 5u   /* the root object (pstm_root): never freed */

#define ALLOC_NCLASS 31          /* small size classes, 32 .. 8192 bytes */
#define ALLOC_SMALL_MAX 8192u    /* largest small block (total bytes) */

/* Block size of small class @c (total bytes, header included). */
HIDDEN uint64_t alloc_class_bytes(int c);

struct alloc_class_stat {
	uint64_t bytes;            /* class block size; 0 for "large" */
	uint64_t used, free;       /* blocks */
	uint64_t used_bytes, free_bytes;
};

/* What alloc_check found.  Byte counts include block headers. */
struct alloc_report {
	uint64_t heap_bytes;       /* the user heap, header excluded */
	uint64_t carved_bytes;     /* below top: cut into blocks or chunks */
	uint64_t used_blocks, used_bytes;   /* pstm_alloc blocks and the root */
	uint64_t free_blocks, free_bytes;   /* on free lists */
	uint64_t meta_blocks, meta_bytes;   /* directory pages, slot caches */
	uint64_t pad_blocks;                /* 16-byte fillers */
	uint64_t chunk_bytes;      /* slot chunks not cut yet (free too) */
	uint64_t caches;           /* slot caches */
	/* [0, ALLOC_NCLASS): by the largest class a block can serve;
	 * [ALLOC_NCLASS]: blocks above ALLOC_SMALL_MAX */
	struct alloc_class_stat cls[ALLOC_NCLASS + 1];
	uint64_t problems;         /* inconsistencies found */
	char first[480];           /* text of the first few, "; "-separated */
};

/*
 * Check the heap of a quiescent region (no transaction running: offline
 * or with every other process stopped), reading the mapping directly and
 * writing nothing, so it works on a read-only mapping: every block from
 * the heap start to top by its header, the slot caches and their chunks,
 * every free list (state, class, cycles, a block on two lists, counts),
 * overlaps and offsets.  Fills @rep; returns 0 if clean, 1 if damaged.
 * On a region in use the counts are a best effort and problems may be
 * transient.
 */
HIDDEN int alloc_check(struct pstm_region *r, struct alloc_report *rep);

/*
 * Inside a transaction: whether @off is the start of a live pstm_alloc
 * block or the root (header valid); *bytes gets its usable size.  Never
 * unwinds on a bad @off (returns false); may unwind on conflicts.
 */
HIDDEN bool alloc_is_block(struct pstm_tx *t, uint64_t off, uint64_t *bytes);

#endif /* PSTM_ALLOC_H */
