/*
 * alloc.h - transactional heap allocator and the root object.
 */
#ifndef PSTM_ALLOC_H
#define PSTM_ALLOC_H

#include "region.h"

#define BLOCK_HDR 16u
#define BLOCK_MAGIC 0x626c6f636b000000ull /* "block" + state byte */
#define BLOCK_USED 1u
#define BLOCK_FREE 2u
#define LARGE_BYTES (1u << 20)           /* blocks above this: first fit */

#endif /* PSTM_ALLOC_H */
