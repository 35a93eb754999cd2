/*
 * store.c - the keyspace: a pstm map at the region's root.  A value in
 * the map is an 8-byte little-endian expiry time (milliseconds since the
 * epoch, 0 for none) followed by the value's bytes; an expired entry is
 * treated as absent, and replaced or removed by the next write of it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <time.h>

#include <pstm_ds.h>

#include "store.h"

#define EXPIRY_BYTES 8
/* a value read from the map may be at most this long (ours are smaller) */
#define VALUE_READ_LIMIT (64u * 1024 * 1024)

int64_t store_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t get_expiry(const char *p)
{
	uint64_t v = 0;
	for (int i = EXPIRY_BYTES - 1; i >= 0; i--)
		v = v << 8 | (uint8_t)p[i];
	return (int64_t)v;
}

static void set_expiry(char *p, int64_t ms)
{
	uint64_t v = (uint64_t)ms;
	for (int i = 0; i < EXPIRY_BYTES; i++, v >>= 8)
		p[i] = (char)(v & 0xff);
}

static int is_live(const char *enc, size_t len, int64_t now)
{
	if (len < EXPIRY_BYTES)
		return 0;  /* not written by pstm-kv: not one of our strings */
	int64_t e = get_expiry(enc);
	return e == 0 || e > now;
}

/* the root's map, made on first start (by whichever process is first) */
static int find_map(pstm_tx *tx, void *arg)
{
	struct kv_store *st = arg;
	pstm_off root = pstm_root(tx, 8);
	pstm_off map = pstm_load64(tx, root);
	if (!map) {
		map = pstm_map_create(tx, 1024);
		pstm_store64(tx, root, map);
	} else if (pstm_ds_type(tx, map) != PSTM_DS_MAP) {
		return PSTM_EBADMAGIC; /* the root is something else's */
	}
	st->map = map;
	return 0;
}

int store_attach(struct kv_store *st, const char *uri,
		 const struct store_create *c)
{
	memset(st, 0, sizeof *st);
	st->val.limit = VALUE_READ_LIMIT;
	st->enc.limit = VALUE_READ_LIMIT;
	int rc = pstm_open(uri, &st->r);
	if (rc == PSTM_ENOENT && c) {
		struct pstm_create_opts o = {0};
		o.size_bytes = c->size_bytes;
		o.durability = c->durability;
		o.log_bytes = c->log_bytes;
		rc = pstm_create(uri, &o, &st->r);
		if (rc == PSTM_EEXIST)
			rc = pstm_open(uri, &st->r);
	}
	if (rc)
		return rc;
	rc = pstm_atomic(st->r, find_map, st);
	if (rc) {
		pstm_close(st->r);
		st->r = NULL;
	}
	return rc;
}

void store_detach(struct kv_store *st)
{
	if (st->r)
		pstm_close(st->r);
	st->r = NULL;
	buf_free(&st->val);
	buf_free(&st->enc);
}

/* the encoded entry of @key into st->val: its length, or -1 absent */
static long long read_entry(pstm_tx *tx, struct kv_store *st, const void *key,
			    size_t klen)
{
	size_t vlen = 0;
	for (;;) {
		int rc = pstm_map_get(tx, st->map, key, klen, st->val.p,
				      st->val.cap, &vlen);
		if (rc == PSTM_ENOENT)
			return -1;
		if (rc)
			return rc;
		if (vlen <= st->val.cap)
			return (long long)vlen;
		st->val.len = 0;
		st->val.overflow = 0;
		if (buf_reserve(&st->val, vlen))
			return PSTM_ENOMEM;
	}
}

int store_get(pstm_tx *tx, struct kv_store *st, const void *key, size_t klen,
	      const char **val, size_t *vlen, int64_t *expire_ms)
{
	long long n = read_entry(tx, st, key, klen);
	if (n == -1)
		return 0;
	if (n < 0)
		return (int)n;
	if (!is_live(st->val.p, (size_t)n, store_now_ms()))
		return 0;
	*val = st->val.p + EXPIRY_BYTES;
	*vlen = (size_t)n - EXPIRY_BYTES;
	if (expire_ms)
		*expire_ms = get_expiry(st->val.p);
	return 1;
}

int store_put(pstm_tx *tx, struct kv_store *st, const void *key, size_t klen,
	      const void *val, size_t vlen, int64_t expire_ms)
{
	st->enc.len = 0;
	st->enc.overflow = 0;
	if (buf_reserve(&st->enc, vlen + EXPIRY_BYTES))
		return PSTM_ENOMEM;
	set_expiry(st->enc.p, expire_ms);
	if (vlen)
		memmove(st->enc.p + EXPIRY_BYTES, val, vlen);
	return pstm_map_put(tx, st->map, key, klen, st->enc.p,
			    vlen + EXPIRY_BYTES);
}

int store_del(pstm_tx *tx, struct kv_store *st, const void *key, size_t klen)
{
	long long n = read_entry(tx, st, key, klen);
	if (n == -1)
		return 0;
	if (n < 0)
		return (int)n;
	int live = is_live(st->val.p, (size_t)n, store_now_ms());
	int rc = pstm_map_del(tx, st->map, key, klen);
	if (rc && rc != PSTM_ENOENT)
		return rc;
	return live;
}

struct each {
	store_key_fn cb;
	void *arg;
	int64_t now;
	int all;
};

static int each_entry(const void *key, size_t klen, const void *val,
		      size_t vlen, void *arg)
{
	struct each *e = arg;
	if (!e->all && !is_live(val, vlen, e->now))
		return 0;
	return e->cb(key, klen, e->arg);
}

int store_each(pstm_tx *tx, struct kv_store *st, int all, store_key_fn cb,
	       void *arg)
{
	struct each e = { cb, arg, store_now_ms(), all };
	return pstm_map_iter(tx, st->map, each_entry, &e);
}
