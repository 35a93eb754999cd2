/*
 * pstm_ds.h - transactional data structures in a pstm region: a hash map
 * of byte strings and a FIFO queue of byte strings.
 *
 * This header is their manual (pstm.h is the manual of regions and
 * transactions).  Every function takes the running transaction: several
 * map and queue operations, and any other pstm reads and writes, made in
 * one transaction take effect together or not at all, and are isolated
 * from all other transactions of all processes.  A map or queue is named
 * by the offset of its object (a pstm_off); keep that offset somewhere
 * reachable, typically in the root object (pstm_root).
 *
 * Conventions (as in pstm.h):
 *  - int functions return 0 or a negative PSTM_E* code.
 *  - All functions "may unwind" (see pstm.h): on conflicts the
 *    transaction is rolled back and re-run; PSTM_EHEAPFULL (no memory),
 *    PSTM_ELOGFULL (the transaction's redo record does not fit the heap)
 *    and PSTM_ECORRUPT (a structure in the region is damaged) end the
 *    transaction with that code.
 *  - Thread- and process-safe: any number of threads and processes may
 *    use the same map or queue at once.
 *  - Keys and values are copied into and out of the region; the caller's
 *    buffers are never retained.  Lengths are limited to 2^32 - 1 bytes
 *    and by the heap: each 8 bytes written costs one redo entry of 16
 *    bytes.  A put writes its key and value plus ~10 words, and while the
 *    table grows each put or delete also moves a few buckets (~15 words).
 *    Up to about 4000 entries (the default 64 KiB redo log) a commit logs
 *    in its slot's ring; beyond, in an overflow extent taken from the
 *    heap (pstm.h), so large values and many puts work, at the cost of
 *    that extent and, on durable regions, a checkpoint when it is taken.
 *
 * The layout of both structures is part of the region format, described
 * in docs/datastructures.md.
 */
#ifndef PSTM_DS_H
#define PSTM_DS_H

#include "pstm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The first word of a map or queue object (its type tag). */
#define PSTM_MAP_MAGIC 0x31504d4d5453504full   /* "OPSTMMP1" */
#define PSTM_QUEUE_MAGIC 0x3155514d5453504full /* "OPSTMQU1" */

/* What pstm_ds_type says an object is. */
enum pstm_ds_kind {
	PSTM_DS_NONE = 0,  /* not a map or queue (or not an allocated block) */
	PSTM_DS_MAP = 1,
	PSTM_DS_QUEUE = 2,
};

/*
 * pstm_ds_type - the kind of object at @off: a live block made by
 * pstm_map_create or pstm_queue_create (tagged by a magic word), else
 * PSTM_DS_NONE.  Never ends the transaction for a bad @off.
 */
PSTM_API int pstm_ds_type(pstm_tx *tx, pstm_off off);

/* ------------------------------------------------------------------ */
/* Hash map                                                            */

/*
 * pstm_map_create - a new, empty map; returns its offset.
 * @initial_buckets: a hint (rounded up to a power of two, at most 1024
 * or a quarter of the redo log); the table grows as entries are added,
 * a few buckets per later put or delete, so no transaction ever rehashes
 * the whole table.  It never shrinks.
 * May unwind (PSTM_EHEAPFULL).
 */
PSTM_API pstm_off pstm_map_create(pstm_tx *tx, size_t initial_buckets);

/*
 * pstm_map_get - look up @key (@klen bytes; may be 0).  If found, copies
 * min(value length, @vcap) bytes to @val (may be NULL when @vcap is 0),
 * sets *@vlen (if not NULL) to the full value length, and returns 0; a
 * *vlen > vcap means the copy was cut short.  Returns PSTM_ENOENT if the
 * key is absent, PSTM_EINVAL if @map is not a map or a pointer is NULL
 * with a non-zero length.  Writes nothing (a read-only transaction stays
 * read-only).  May unwind.
 */
PSTM_API int pstm_map_get(pstm_tx *tx, pstm_off map, const void *key,
			  size_t klen, void *val, size_t vcap, size_t *vlen);

/*
 * pstm_map_put - set @key to the value @val (@vlen bytes; may be 0),
 * inserting it or replacing its value.  Returns 0, or PSTM_EINVAL (not a
 * map, NULL with a non-zero length, a length of 2^32 or more).  May
 * unwind (PSTM_EHEAPFULL, PSTM_ELOGFULL).
 */
PSTM_API int pstm_map_put(pstm_tx *tx, pstm_off map, const void *key,
			  size_t klen, const void *val, size_t vlen);

/*
 * pstm_map_del - remove @key.  Returns 0 if it was there, PSTM_ENOENT if
 * not, PSTM_EINVAL as for get.  Its memory is reusable once the
 * transaction commits.  May unwind.
 */
PSTM_API int pstm_map_del(pstm_tx *tx, pstm_off map, const void *key,
			  size_t klen);

/*
 * pstm_map_count - the number of entries.  Reads one counter per stripe
 * (16 words), so it conflicts with concurrent inserts and deletes: call
 * it in its own transaction when many are running.  May unwind.  Returns
 * 0 for something that is not a map.
 */
PSTM_API uint64_t pstm_map_count(pstm_tx *tx, pstm_off map);

/*
 * pstm_map_iter - call @cb for every entry, in no particular order (the
 * same for an unchanged map), with process-local copies of key and
 * value, valid during the call only.  The callback may read and write
 * through the same transaction but must not change @map.  A non-zero
 * return from @cb stops the walk and is returned.  Returns 0 after the
 * last entry, PSTM_EINVAL if @map is not a map.  The whole map joins the
 * transaction's read set, so a walk of a large map conflicts with every
 * writer of it.  May unwind.
 */
typedef int (*pstm_map_cb)(const void *key, size_t klen, const void *val,
			   size_t vlen, void *arg);
PSTM_API int pstm_map_iter(pstm_tx *tx, pstm_off map, pstm_map_cb cb,
			   void *arg);

/* ------------------------------------------------------------------ */
/* FIFO queue                                                          */

/*
 * pstm_queue_create - a new, empty queue; returns its offset.  May unwind
 * (PSTM_EHEAPFULL).
 */
PSTM_API pstm_off pstm_queue_create(pstm_tx *tx);

/*
 * pstm_queue_push - append a copy of @item (@len bytes; may be 0).
 * Returns 0, or PSTM_EINVAL (not a queue, NULL with a non-zero length).
 * Pushes conflict with each other (one tail); a push and a pop conflict
 * only when the queue holds at most one item.  May unwind.
 */
PSTM_API int pstm_queue_push(pstm_tx *tx, pstm_off q, const void *item,
			     size_t len);

/*
 * pstm_queue_pop - remove the oldest item and copy it to @buf.  Returns 0
 * with *@len set to its length; PSTM_ENOENT if the queue is empty;
 * PSTM_EINVAL if @q is not a queue or the item is longer than @cap: then
 * nothing is removed and *@len (if not NULL) says how long it is.  May
 * unwind.
 */
PSTM_API int pstm_queue_pop(pstm_tx *tx, pstm_off q, void *buf, size_t cap,
			    size_t *len);

/*
 * pstm_queue_iter - call @cb for every item, oldest first, with a
 * process-local copy valid during the call; a non-zero return stops the
 * walk and is returned.  Returns 0, or PSTM_EINVAL if @q is not a queue.
 * May unwind.
 */
typedef int (*pstm_queue_cb)(const void *item, size_t len, void *arg);
PSTM_API int pstm_queue_iter(pstm_tx *tx, pstm_off q, pstm_queue_cb cb,
			     void *arg);

#ifdef __cplusplus
}
#endif
#endif /* PSTM_DS_H */
