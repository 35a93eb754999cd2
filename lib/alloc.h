/*
 * alloc.h - the transactional heap allocator (pstm_alloc, pstm_free,
 * pstm_root) and the byte layout of its metadata in the heap: blocks,
 * size classes, slot caches.  lib/alloc.c describes the design.
 */
#ifndef PSTM_ALLOC_H
#define PSTM_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "tx.h"

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
_Static_assert(ALLOC_NCLASS <= HEAP_CLASSES, "shared lists in the header");

/* Block size of small class @c (total bytes, header included). */
HIDDEN uint64_t alloc_class_bytes(int c);
/* Largest class a free block of @total bytes (>= 32) can serve. */
HIDDEN int alloc_class_floor(uint64_t total);

/* Offset of a heap header field, from the heap header (heap_off). */
#define HEAP_FIELD(field) ((uint64_t)offsetof(struct heap_header, field))

/*
 * A slot cache: the user bytes of a BLOCK_META block, reached through
 * heap_header.cache_dir.  Part of the region format; only ever read and
 * written word by word at offsetof() (through the transaction, or by
 * alloc_check on a quiescent mapping), never through a pointer.
 */
#define CACHE_MAGIC 0x736c6f7463000000ull /* "slotc" | slot index */
struct slot_cache {
	uint64_t magic;              /* CACHE_MAGIC | slot */
	uint64_t cur, end;           /* chunk [cur, end); both 0 when none */
	uint64_t head[ALLOC_NCLASS]; /* own free list per class: a head word */
};
#define CACHE_FIELD(field) ((uint64_t)offsetof(struct slot_cache, field))
#define CACHE_BYTES ((uint64_t)sizeof(struct slot_cache))
_Static_assert(offsetof(struct slot_cache, cur) == 8, "slot cache cur");
_Static_assert(offsetof(struct slot_cache, end) == 16, "slot cache end");
_Static_assert(offsetof(struct slot_cache, head) == 24, "slot cache heads");
_Static_assert(sizeof(struct slot_cache) == 8 * (3 + ALLOC_NCLASS), "slot cache");

/* Head word of class @c's own list in the cache at @cache. */
static inline uint64_t cache_head_word(uint64_t cache, int c)
{
	return cache + CACHE_FIELD(head) + 8 * (uint64_t)c;
}

/* A list head word of a cache: the first block's offset in bits 0..47,
 * the list's length in bits 48..63. */
#define HEAD_OFF(v) ((v) & ((1ull << 48) - 1))
#define HEAD_COUNT(v) ((v) >> 48)
static inline uint64_t head_make(uint64_t off, uint64_t n) { return off | n << 48; }

/*
 * Inside a transaction: whether @off is the start of a live pstm_alloc
 * block or the root (header valid); *bytes gets its usable size.  Never
 * unwinds on a bad @off (returns false); may unwind on conflicts.
 */
HIDDEN bool alloc_is_block(pstm_tx *t, uint64_t off, uint64_t *bytes);

#endif /* PSTM_ALLOC_H */
