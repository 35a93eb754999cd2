/*
 * store.h - the keyspace of pstm-kv: one pstm map (pstm_ds.h) named by
 * the region's root object, and the encoding of a value with its expiry
 * time.  Every function but store_attach runs inside a transaction.
 */
#ifndef KV_STORE_H
#define KV_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <pstm.h>

#include "resp.h"

/* How store_attach creates a region that does not exist yet. */
struct store_create {
	uint64_t size_bytes;
	int durability;        /* enum pstm_durability */
	uint32_t log_bytes;
};

struct kv_store {
	pstm_region *r;
	pstm_off map;          /* the map named by word 0 of the root */
	struct kv_buf val;     /* a value read from the map (process-local) */
	struct kv_buf enc;     /* a value being encoded for the map */
};

/*
 * Open @uri (creating it with @c when @c is not NULL and it is missing)
 * and make sure its root names a map.  Returns 0 or a PSTM_E* code.
 */
int store_attach(struct kv_store *st, const char *uri,
		 const struct store_create *c);
void store_detach(struct kv_store *st);

/* wall-clock milliseconds: expiry times are absolute, so they survive restarts */
int64_t store_now_ms(void);

/*
 * store_get - the live value of @key: 1 and *@val / *@vlen pointing into
 * st->val (valid until the next store call), *@expire_ms its expiry (0:
 * none; may be NULL); 0 when absent or expired; PSTM_ENOMEM when the
 * value does not fit process memory.  May unwind.
 */
int store_get(pstm_tx *tx, struct kv_store *st, const void *key, size_t klen,
	      const char **val, size_t *vlen, int64_t *expire_ms);
/* store_put - set @key to @val, expiring at @expire_ms (0: never). */
int store_put(pstm_tx *tx, struct kv_store *st, const void *key, size_t klen,
	      const void *val, size_t vlen, int64_t expire_ms);
/* store_del - remove @key: 1 if it was live, 0 if absent or expired. */
int store_del(pstm_tx *tx, struct kv_store *st, const void *key, size_t klen);

/*
 * store_each - call @cb for every live key (@all: expired ones too), a
 * process-local copy valid during the call, in the map's walk order (the
 * same for an unchanged map); a non-zero return stops the walk and is
 * returned.  The whole map joins the transaction's read set.
 */
typedef int (*store_key_fn)(const char *key, size_t klen, void *arg);
int store_each(pstm_tx *tx, struct kv_store *st, int all, store_key_fn cb,
	       void *arg);

#endif
