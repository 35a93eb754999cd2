/*
 * cmd.h - what the command files of pstm-kv (commands.c, keyspace.c)
 * share: argument helpers, error texts, and the keyspace commands.
 */
#ifndef PSTM_KV_CMD_H
#define PSTM_KV_CMD_H

#include <string.h>
#include <strings.h>

#include "commands.h"

/* a body's own reason to roll back: the reply did not fit KV_MAX_REPLY */
#define KV_EREPLY 1

#define ERR_INT "ERR value is not an integer or out of range"
#define ERR_SYNTAX "ERR syntax error"

static inline int arg_is(const struct kv_arg *a, const char *word)
{
	size_t n = strlen(word);
	return a->n == n && strncasecmp(a->p, word, n) == 0;
}

static inline int arg_ll(const struct kv_arg *a, long long *v)
{
	return resp_parse_ll(a->p, a->n, v);
}

/* a failure of a store call ends the attempt with that code */
#define TRY(x) do { int rc_ = (x); if (rc_ < 0) return rc_; } while (0)

/* tools/kv/keyspace.c */
int kv_cmd_dbsize(pstm_tx *tx, struct kv_exec *e, int argc,
		  const struct kv_arg *argv);
int kv_cmd_keys(pstm_tx *tx, struct kv_exec *e, int argc,
		const struct kv_arg *argv);
int kv_cmd_scan(pstm_tx *tx, struct kv_exec *e, int argc,
		const struct kv_arg *argv);
int kv_cmd_flushdb(pstm_tx *tx, struct kv_exec *e, int argc,
		   const struct kv_arg *argv);
/* delete up to @max keys; *done once fewer were left (FLUSHDB in steps) */
int kv_flush_some(pstm_tx *tx, struct kv_exec *e, size_t max, int *done);

#endif
