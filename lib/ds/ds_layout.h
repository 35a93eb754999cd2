/*
 * ds_layout.h - the byte layout of the hash map and queue objects in a
 * region.  Part of the region format (docs/datastructures.md): regions
 * made before, and other processes, depend on it byte for byte, so every
 * size and offset is pinned by a static assertion.  The structs are never
 * used through a pointer: lib/ds/ reads and writes the objects word by
 * word through the transaction, at the offsetof() of these fields.
 */
#ifndef PSTM_DS_LAYOUT_H
#define PSTM_DS_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ hash map */

#define MAP_STRIPES 16

/* One entry-count stripe, on its own 64-byte line. */
struct map_stripe {
	uint64_t count;      /* entries put minus deleted by slots = i mod 16
			      * (wraps; only the sum over stripes is exact) */
	uint64_t pad[7];
};

/* The map object (the offset pstm_map_create returns). */
struct map_obj {
	/* line 0: read by every operation; written only when the table
	 * grows or a migration ends */
	uint64_t magic;      /* PSTM_MAP_MAGIC, written last at create */
	uint64_t tab;        /* bucket table: nb words, chain heads (0 = empty) */
	uint64_t nb;         /* buckets: a power of two */
	uint64_t old;        /* while the table grows: the old table, else 0 */
	uint64_t old_nb;     /* its buckets (nb / 2) while growing, else 0 */
	uint64_t pad0[3];
	/* line 1: written by every put and delete while the table grows */
	uint64_t mig;        /* migration cursor: sweeping starts here */
	uint64_t pad1[7];
	/* lines 2..17 */
	struct map_stripe count[MAP_STRIPES];
};

/* An old bucket word whose entries moved to the new table (never a valid
 * entry offset: entries are 16-aligned). */
#define MAP_MOVED 1ull

/* An entry: a pstm_alloc block; the block's size says how long a value
 * fits in place. */
struct map_entry_hdr {
	uint64_t next;       /* next entry of the chain, 0 at its end */
	uint64_t hash;       /* hash of the key (map.c: fixed forever) */
	uint64_t lens;       /* key length | value length << 32 */
	/* then the key, padded to 8 bytes, then the value */
};

#define MAP_FIELD(f) ((uint64_t)offsetof(struct map_obj, f))
#define MAP_BYTES ((uint64_t)sizeof(struct map_obj))
#define ENTRY_FIELD(f) ((uint64_t)offsetof(struct map_entry_hdr, f))
#define ENTRY_HDR ((uint64_t)sizeof(struct map_entry_hdr))

/* The count word of stripe @i of the map at @m. */
static inline uint64_t map_count_word(uint64_t m, uint64_t i)
{
	return m + MAP_FIELD(count) + i * sizeof(struct map_stripe) +
	       offsetof(struct map_stripe, count);
}

_Static_assert(offsetof(struct map_obj, magic) == 0, "map magic");
_Static_assert(offsetof(struct map_obj, tab) == 8, "map tab");
_Static_assert(offsetof(struct map_obj, nb) == 16, "map nb");
_Static_assert(offsetof(struct map_obj, old) == 24, "map old");
_Static_assert(offsetof(struct map_obj, old_nb) == 32, "map old_nb");
_Static_assert(offsetof(struct map_obj, mig) == 64, "map mig: line 1");
_Static_assert(offsetof(struct map_obj, count) == 128, "map count: line 2");
_Static_assert(sizeof(struct map_stripe) == 64, "one stripe per line");
_Static_assert(sizeof(struct map_obj) == 1152, "MAP_BYTES");
_Static_assert(offsetof(struct map_entry_hdr, next) == 0, "entry next");
_Static_assert(offsetof(struct map_entry_hdr, hash) == 8, "entry hash");
_Static_assert(offsetof(struct map_entry_hdr, lens) == 16, "entry lens");
_Static_assert(sizeof(struct map_entry_hdr) == 24, "entry key at 24");

/* --------------------------------------------------------------- queue */

/* The queue object (the offset pstm_queue_create returns). */
struct queue_obj {
	uint64_t magic;      /* PSTM_QUEUE_MAGIC, written last at create */
	uint64_t pad0[7];
	uint64_t head;       /* line 1: oldest node, 0 when empty */
	uint64_t pad1[7];
	uint64_t tail;       /* line 2: newest node, 0 when empty */
};

/* A node: a pstm_alloc block. */
struct queue_node_hdr {
	uint64_t next;       /* the next newer node, 0 for the newest */
	uint64_t len;        /* item bytes */
	/* then the item */
};

#define QUEUE_FIELD(f) ((uint64_t)offsetof(struct queue_obj, f))
#define QUEUE_BYTES ((uint64_t)sizeof(struct queue_obj))
#define NODE_FIELD(f) ((uint64_t)offsetof(struct queue_node_hdr, f))
#define NODE_HDR ((uint64_t)sizeof(struct queue_node_hdr))

_Static_assert(offsetof(struct queue_obj, magic) == 0, "queue magic");
_Static_assert(offsetof(struct queue_obj, head) == 64, "queue head: line 1");
_Static_assert(offsetof(struct queue_obj, tail) == 128, "queue tail: line 2");
_Static_assert(sizeof(struct queue_obj) == 136, "QUEUE_BYTES");
_Static_assert(offsetof(struct queue_node_hdr, next) == 0, "node next");
_Static_assert(offsetof(struct queue_node_hdr, len) == 8, "node len");
_Static_assert(sizeof(struct queue_node_hdr) == 16, "node data at 16");

#endif /* PSTM_DS_LAYOUT_H */
