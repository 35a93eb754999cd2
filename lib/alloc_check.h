/*
 * alloc_check.h - the offline heap check: every block, slot cache and
 * free list of a quiescent region's heap, read from the mapping.
 */
#ifndef PSTM_ALLOC_CHECK_H
#define PSTM_ALLOC_CHECK_H

#include <stdint.h>

#include "alloc.h" /* ALLOC_NCLASS */

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

#endif /* PSTM_ALLOC_CHECK_H */
