/*
 * keyspace.c - the pstm-kv commands on the whole keyspace: DBSIZE, KEYS,
 * SCAN, FLUSHDB/FLUSHALL, walking the map at the region's root.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "glob.h"

static int count_key(const char *key, size_t klen, void *arg)
{
	(void)key, (void)klen;
	++*(long long *)arg;
	return 0;
}

int kv_cmd_dbsize(pstm_tx *tx, struct kv_exec *e, int argc,
		      const struct kv_arg *argv)
{
	(void)argc, (void)argv;
	long long n = 0;
	TRY(store_each(tx, e->st, 0, count_key, &n));
	reply_int(&e->out, n);
	return 0;
}

/*
 * Keys collected into e->tmp as (size_t length, bytes) records, because
 * a walk's callback must not change the map and a reply needs its count
 * first.
 */
struct collect {
	struct kv_exec *e;
	const struct kv_arg *pattern;  /* NULL: every key */
	long long skip, examine;       /* SCAN: walk positions */
	long long seen, found;
	size_t max;                    /* stop after this many found */
	int none;                      /* SCAN TYPE other than string */
	int stopped;                   /* SCAN: entries left after the last */
};

static int collect_key(const char *key, size_t klen, void *arg)
{
	struct collect *c = arg;
	if (c->seen++ < c->skip)
		return 0;
	if (c->examine >= 0 && c->seen > c->skip + c->examine) {
		c->seen--;
		c->stopped = 1;
		return 1;  /* SCAN: this many examined; the rest next time */
	}
	if (c->none)
		return 0;
	if (c->pattern && !glob_match(c->pattern->p, c->pattern->n, key, klen))
		return 0;
	buf_append(&c->e->tmp, &klen, sizeof klen);
	buf_append(&c->e->tmp, key, klen);
	if (c->e->tmp.overflow)
		return KV_EREPLY;
	c->found++;
	return (size_t)c->found >= c->max ? 1 : 0;
}

static int walk(pstm_tx *tx, struct kv_exec *e, struct collect *c, int all)
{
	e->tmp.len = 0;
	e->tmp.overflow = 0;
	c->e = e;
	c->seen = c->found = 0;
	c->stopped = 0;
	int rc = store_each(tx, e->st, all, collect_key, c);
	return rc == 1 ? 0 : rc;
}

static void reply_collected(struct kv_exec *e, long long n)
{
	reply_array(&e->out, n);
	for (size_t pos = 0; pos < e->tmp.len;) {
		size_t klen;
		memcpy(&klen, e->tmp.p + pos, sizeof klen);
		pos += sizeof klen;
		reply_bulk(&e->out, e->tmp.p + pos, klen);
		pos += klen;
	}
}

int kv_cmd_keys(pstm_tx *tx, struct kv_exec *e, int argc,
		    const struct kv_arg *argv)
{
	(void)argc;
	struct collect c = { .pattern = &argv[1], .examine = -1, .max = SIZE_MAX };
	TRY(walk(tx, e, &c, 0));
	reply_collected(e, c.found);
	return 0;
}

/*
 * SCAN cursor [MATCH pattern] [COUNT n]: the cursor is a position in the
 * map's walk order; each call examines COUNT entries (default 10) from
 * it.  Simple, not Redis's guarantee: keys added or removed during a
 * scan may shift others, which can then be missed or returned twice.
 */
int kv_cmd_scan(pstm_tx *tx, struct kv_exec *e, int argc,
		    const struct kv_arg *argv)
{
	long long cursor, count = 10;
	const struct kv_arg *pattern = NULL;
	int none = 0;
	if (arg_ll(&argv[1], &cursor) || cursor < 0) {
		reply_error(&e->out, "ERR invalid cursor");
		return 0;
	}
	for (int i = 2; i < argc; i += 2) {
		if (i + 1 >= argc) {
			reply_error(&e->out, ERR_SYNTAX);
			return 0;
		} else if (arg_is(&argv[i], "match")) {
			pattern = &argv[i + 1];
		} else if (arg_is(&argv[i], "count")) {
			if (arg_ll(&argv[i + 1], &count) || count < 1) {
				reply_error(&e->out, ERR_SYNTAX);
				return 0;
			}
		} else if (arg_is(&argv[i], "type")) {
			none = !arg_is(&argv[i + 1], "string"); /* all are strings */
		} else {
			reply_error(&e->out, ERR_SYNTAX);
			return 0;
		}
	}
	if (count > LLONG_MAX - cursor)
		count = LLONG_MAX - cursor;
	struct collect c = { .pattern = pattern, .skip = cursor,
			     .examine = count, .max = SIZE_MAX, .none = none };
	TRY(walk(tx, e, &c, 0));
	char tmp[32];
	int len = snprintf(tmp, sizeof tmp, "%lld", c.stopped ? cursor + count : 0);
	reply_array(&e->out, 2);
	reply_bulk(&e->out, tmp, (size_t)len);
	reply_collected(e, c.found);
	return 0;
}

/* delete up to @max entries (expired ones too); *@done: none were left */
int kv_flush_some(pstm_tx *tx, struct kv_exec *e, size_t max, int *done)
{
	struct collect c = { .examine = -1, .max = max };
	TRY(walk(tx, e, &c, 1));
	for (size_t pos = 0; pos < e->tmp.len;) {
		size_t klen;
		memcpy(&klen, e->tmp.p + pos, sizeof klen);
		pos += sizeof klen;
		TRY(store_del(tx, e->st, e->tmp.p + pos, klen));
		pos += klen;
	}
	*done = (size_t)c.found < max;
	return 0;
}

int kv_cmd_flushdb(pstm_tx *tx, struct kv_exec *e, int argc,
		       const struct kv_arg *argv)
{
	if (argc == 2 && !arg_is(&argv[1], "sync") && !arg_is(&argv[1], "async")) {
		reply_error(&e->out, ERR_SYNTAX);
		return 0;
	}
	int done;
	TRY(kv_flush_some(tx, e, SIZE_MAX, &done));
	reply_status(&e->out, "OK");
	return 0;
}

