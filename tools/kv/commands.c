/*
 * commands.c - the string commands (Redis's t_string.c and friends), each
 * a transaction body writing its reply to e->out, the command table, and
 * command_run, the one place that starts transactions for requests.  The
 * keyspace commands are tools/kv/keyspace.c.
 *
 * Invariant: e->out is reset at the start of every attempt and copied to
 * the client only after pstm_atomic / pstm_atomic_ro returned 0, so no
 * byte of a rolled-back attempt is ever sent.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"

#include "cmd.h"

/* ------------------------------------------------------------ simple */

static int cmd_ping(pstm_tx *tx, struct kv_exec *e, int argc,
		    const struct kv_arg *argv)
{
	(void)tx;
	if (argc > 2)
		reply_error(&e->out, "ERR wrong number of arguments for 'ping' command");
	else if (argc == 2)
		reply_bulk(&e->out, argv[1].p, argv[1].n);
	else
		reply_status(&e->out, "PONG");
	return 0;
}

static int cmd_echo(pstm_tx *tx, struct kv_exec *e, int argc,
		    const struct kv_arg *argv)
{
	(void)tx, (void)argc;
	reply_bulk(&e->out, argv[1].p, argv[1].n);
	return 0;
}

static int cmd_select(pstm_tx *tx, struct kv_exec *e, int argc,
		      const struct kv_arg *argv)
{
	(void)tx, (void)argc;
	if (arg_is(&argv[1], "0"))
		reply_status(&e->out, "OK");
	else
		reply_error(&e->out, "ERR DB index is out of range");
	return 0;
}

/* CONFIG GET name...: each name with an empty value (redis-benchmark asks) */
static int cmd_config(pstm_tx *tx, struct kv_exec *e, int argc,
		      const struct kv_arg *argv)
{
	(void)tx;
	if (!arg_is(&argv[1], "get")) {
		reply_error(&e->out, "ERR CONFIG supports only GET");
		return 0;
	}
	reply_array(&e->out, 2 * (argc - 2));
	for (int i = 2; i < argc; i++) {
		reply_bulk(&e->out, argv[i].p, argv[i].n);
		reply_bulk(&e->out, "", 0);
	}
	return 0;
}

/* COMMAND: an empty answer, enough for redis-cli */
static int cmd_empty(pstm_tx *tx, struct kv_exec *e, int argc,
		     const struct kv_arg *argv)
{
	(void)tx, (void)argc, (void)argv;
	reply_array(&e->out, 0);
	return 0;
}

static int cmd_info(pstm_tx *tx, struct kv_exec *e, int argc,
		    const struct kv_arg *argv)
{
	(void)tx, (void)argc, (void)argv;
	char text[512];
	const struct kv_server_info *i = e->info;
	int n = snprintf(text, sizeof text,
			 "# Server\r\nredis_version:7.0.0\r\n"
			 "server_name:pstm-kv\r\npstm_version:%s\r\n"
			 "process_id:%ld\r\nworker:%d\r\ntcp_port:%d\r\n"
			 "region:%s\r\n# Clients\r\nconnected_clients:%lld\r\n",
			 pstm_version(), (long)i->pid, i->index, i->port,
			 i->uri, i->clients);
	if (n < 0 || (size_t)n >= sizeof text)
		n = (int)strlen(text);
	reply_bulk(&e->out, text, (size_t)n);
	return 0;
}

/* ------------------------------------------------------------ strings */

/* Reply with the value of @key, or nil if there is none. */
static int reply_value(pstm_tx *tx, struct kv_exec *e, const struct kv_arg *key)
{
	const char *v;
	size_t n;
	int rc = store_get(tx, e->st, key->p, key->n, &v, &n, NULL);
	TRY(rc);
	if (rc)
		reply_bulk(&e->out, v, n);
	else
		reply_nil(&e->out);
	return 0;
}

static int cmd_get(pstm_tx *tx, struct kv_exec *e, int argc,
		   const struct kv_arg *argv)
{
	(void)argc;
	return reply_value(tx, e, &argv[1]);
}

/* SET key value [NX|XX] [EX s|PX ms|KEEPTTL] [GET] */
static int cmd_set(pstm_tx *tx, struct kv_exec *e, int argc,
		   const struct kv_arg *argv)
{
	int nx = 0, xx = 0, keepttl = 0, get = 0;
	long long ttl_ms = 0;
	int has_ttl = 0;
	for (int i = 3; i < argc; i++) {
		if (arg_is(&argv[i], "nx") && !xx) {
			nx = 1;
		} else if (arg_is(&argv[i], "xx") && !nx) {
			xx = 1;
		} else if (arg_is(&argv[i], "keepttl") && !has_ttl) {
			keepttl = 1;
		} else if (arg_is(&argv[i], "get")) {
			get = 1;
		} else if ((arg_is(&argv[i], "ex") || arg_is(&argv[i], "px")) &&
			   !has_ttl && !keepttl && i + 1 < argc) {
			long long v;
			int sec = arg_is(&argv[i], "ex");
			if (arg_ll(&argv[i + 1], &v) || v <= 0 ||
			    v > (sec ? LLONG_MAX / 1000 : LLONG_MAX) / 2) {
				reply_error(&e->out, "ERR invalid expire time in 'set' command");
				return 0;
			}
			ttl_ms = sec ? v * 1000 : v;
			has_ttl = 1;
			i++;
		} else {
			reply_error(&e->out, ERR_SYNTAX);
			return 0;
		}
	}
	const char *old;
	size_t oldn;
	int64_t old_exp = 0;
	int rc = store_get(tx, e->st, argv[1].p, argv[1].n, &old, &oldn, &old_exp);
	TRY(rc);
	if (get) {
		if (rc)
			reply_bulk(&e->out, old, oldn);
		else
			reply_nil(&e->out);
	}
	if ((nx && rc) || (xx && !rc)) {
		if (!get)
			reply_nil(&e->out);
		return 0;
	}
	int64_t now = store_now_ms();
	int64_t exp = has_ttl ? (ttl_ms > INT64_MAX - now ? INT64_MAX : now + ttl_ms)
			      : keepttl && rc ? old_exp : 0;
	TRY(store_put(tx, e->st, argv[1].p, argv[1].n, argv[2].p, argv[2].n, exp));
	if (!get)
		reply_status(&e->out, "OK");
	return 0;
}

static int cmd_getset(pstm_tx *tx, struct kv_exec *e, int argc,
		      const struct kv_arg *argv)
{
	(void)argc;
	TRY(reply_value(tx, e, &argv[1]));
	TRY(store_put(tx, e->st, argv[1].p, argv[1].n, argv[2].p, argv[2].n, 0));
	return 0;
}

static int cmd_del(pstm_tx *tx, struct kv_exec *e, int argc,
		   const struct kv_arg *argv)
{
	long long n = 0;
	for (int i = 1; i < argc; i++) {
		int rc = store_del(tx, e->st, argv[i].p, argv[i].n);
		TRY(rc);
		n += rc;
	}
	reply_int(&e->out, n);
	return 0;
}

static int cmd_exists(pstm_tx *tx, struct kv_exec *e, int argc,
		      const struct kv_arg *argv)
{
	long long n = 0;
	for (int i = 1; i < argc; i++) {
		const char *v;
		size_t vn;
		int rc = store_get(tx, e->st, argv[i].p, argv[i].n, &v, &vn, NULL);
		TRY(rc);
		n += rc;
	}
	reply_int(&e->out, n);
	return 0;
}

static int incr_by(pstm_tx *tx, struct kv_exec *e, const struct kv_arg *key,
		   long long by)
{
	const char *v;
	size_t n;
	int64_t exp = 0;
	long long cur = 0;
	int rc = store_get(tx, e->st, key->p, key->n, &v, &n, &exp);
	TRY(rc);
	if (rc && resp_parse_ll(v, n, &cur)) {
		reply_error(&e->out, ERR_INT);
		return 0;
	}
	if ((by > 0 && cur > LLONG_MAX - by) || (by < 0 && cur < LLONG_MIN - by)) {
		reply_error(&e->out, "ERR increment or decrement would overflow");
		return 0;
	}
	cur += by;
	char tmp[32];
	int len = snprintf(tmp, sizeof tmp, "%lld", cur);
	TRY(store_put(tx, e->st, key->p, key->n, tmp, (size_t)len, rc ? exp : 0));
	reply_int(&e->out, cur);
	return 0;
}

static int cmd_incr(pstm_tx *tx, struct kv_exec *e, int argc,
		    const struct kv_arg *argv)
{
	(void)argc;
	return incr_by(tx, e, &argv[1], 1);
}

static int cmd_decr(pstm_tx *tx, struct kv_exec *e, int argc,
		    const struct kv_arg *argv)
{
	(void)argc;
	return incr_by(tx, e, &argv[1], -1);
}

static int cmd_incrby(pstm_tx *tx, struct kv_exec *e, int argc,
		      const struct kv_arg *argv)
{
	(void)argc;
	long long by;
	if (arg_ll(&argv[2], &by)) {
		reply_error(&e->out, ERR_INT);
		return 0;
	}
	return incr_by(tx, e, &argv[1], by);
}

static int cmd_decrby(pstm_tx *tx, struct kv_exec *e, int argc,
		      const struct kv_arg *argv)
{
	(void)argc;
	long long by;
	if (arg_ll(&argv[2], &by)) {
		reply_error(&e->out, ERR_INT);
		return 0;
	}
	if (by == LLONG_MIN) {
		reply_error(&e->out, "ERR decrement would overflow");
		return 0;
	}
	return incr_by(tx, e, &argv[1], -by);
}

static int cmd_append(pstm_tx *tx, struct kv_exec *e, int argc,
		      const struct kv_arg *argv)
{
	(void)argc;
	const char *v;
	size_t n;
	int64_t exp = 0;
	int rc = store_get(tx, e->st, argv[1].p, argv[1].n, &v, &n, &exp);
	TRY(rc);
	if (!rc)
		n = 0;
	if (n + argv[2].n > KV_MAX_VALUE) {
		reply_error(&e->out, "ERR string exceeds maximum allowed size (512 KiB)");
		return 0;
	}
	e->tmp.len = 0;
	e->tmp.overflow = 0;
	buf_append(&e->tmp, v, n);
	buf_append(&e->tmp, argv[2].p, argv[2].n);
	if (e->tmp.overflow)
		return PSTM_ENOMEM;
	TRY(store_put(tx, e->st, argv[1].p, argv[1].n, e->tmp.p, e->tmp.len,
		      rc ? exp : 0));
	reply_int(&e->out, (long long)e->tmp.len);
	return 0;
}

/* Whether @key has a value (1, 0, or a store error < 0); *n its length. */
static int value_len(pstm_tx *tx, struct kv_exec *e, const struct kv_arg *key,
		     size_t *n)
{
	const char *v;
	return store_get(tx, e->st, key->p, key->n, &v, n, NULL);
}

static int cmd_strlen(pstm_tx *tx, struct kv_exec *e, int argc,
		      const struct kv_arg *argv)
{
	(void)argc;
	size_t n;
	int rc = value_len(tx, e, &argv[1], &n);
	TRY(rc);
	reply_int(&e->out, rc ? (long long)n : 0);
	return 0;
}

static int cmd_type(pstm_tx *tx, struct kv_exec *e, int argc,
		    const struct kv_arg *argv)
{
	(void)argc;
	size_t n;
	int rc = value_len(tx, e, &argv[1], &n);
	TRY(rc);
	reply_status(&e->out, rc ? "string" : "none");
	return 0;
}

static int cmd_mget(pstm_tx *tx, struct kv_exec *e, int argc,
		    const struct kv_arg *argv)
{
	reply_array(&e->out, argc - 1);
	for (int i = 1; i < argc && !e->out.overflow; i++) {
		const char *v;
		size_t n;
		int rc = store_get(tx, e->st, argv[i].p, argv[i].n, &v, &n, NULL);
		TRY(rc);
		if (rc)
			reply_bulk(&e->out, v, n);
		else
			reply_nil(&e->out);
	}
	return 0;
}

static int mset(pstm_tx *tx, struct kv_exec *e, int argc,
		const struct kv_arg *argv, int nx)
{
	if (argc % 2 == 0) {
		reply_error(&e->out, nx ? "ERR wrong number of arguments for 'msetnx' command"
					: "ERR wrong number of arguments for 'mset' command");
		return 0;
	}
	if (nx) {
		for (int i = 1; i < argc; i += 2) {
			const char *v;
			size_t n;
			int rc = store_get(tx, e->st, argv[i].p, argv[i].n, &v, &n, NULL);
			TRY(rc);
			if (rc) {
				reply_int(&e->out, 0);
				return 0;
			}
		}
	}
	for (int i = 1; i < argc; i += 2)
		TRY(store_put(tx, e->st, argv[i].p, argv[i].n, argv[i + 1].p,
			      argv[i + 1].n, 0));
	if (nx)
		reply_int(&e->out, 1);
	else
		reply_status(&e->out, "OK");
	return 0;
}

static int cmd_mset(pstm_tx *tx, struct kv_exec *e, int argc,
		    const struct kv_arg *argv)
{
	return mset(tx, e, argc, argv, 0);
}

static int cmd_msetnx(pstm_tx *tx, struct kv_exec *e, int argc,
		      const struct kv_arg *argv)
{
	return mset(tx, e, argc, argv, 1);
}

/* ------------------------------------------------------------ table */

static const struct kv_command commands[] = {
	{ "ping", -1, CMD_NOSTORE, cmd_ping },
	{ "echo", 2, CMD_NOSTORE, cmd_echo },
	{ "select", 2, CMD_NOSTORE, cmd_select },
	{ "config", -2, CMD_NOSTORE, cmd_config },
	{ "command", -1, CMD_NOSTORE, cmd_empty },
	{ "info", -1, CMD_NOSTORE, cmd_info },
	{ "get", 2, 0, cmd_get },
	{ "set", -3, CMD_WRITE, cmd_set },
	{ "getset", 3, CMD_WRITE, cmd_getset },
	{ "del", -2, CMD_WRITE, cmd_del },
	{ "exists", -2, 0, cmd_exists },
	{ "incr", 2, CMD_WRITE, cmd_incr },
	{ "decr", 2, CMD_WRITE, cmd_decr },
	{ "incrby", 3, CMD_WRITE, cmd_incrby },
	{ "decrby", 3, CMD_WRITE, cmd_decrby },
	{ "append", 3, CMD_WRITE, cmd_append },
	{ "strlen", 2, 0, cmd_strlen },
	{ "type", 2, 0, cmd_type },
	{ "mget", -2, 0, cmd_mget },
	{ "mset", -3, CMD_WRITE, cmd_mset },
	{ "msetnx", -3, CMD_WRITE, cmd_msetnx },
	{ "dbsize", 1, 0, kv_cmd_dbsize },
	{ "flushdb", -1, CMD_WRITE, kv_cmd_flushdb },
	{ "flushall", -1, CMD_WRITE, kv_cmd_flushdb },
	{ "keys", 2, 0, kv_cmd_keys },
	{ "scan", -2, 0, kv_cmd_scan },
	{ "multi", 1, CMD_CONTROL, NULL },
	{ "exec", 1, CMD_CONTROL, NULL },
	{ "discard", 1, CMD_CONTROL, NULL },
	{ "quit", -1, CMD_CONTROL, NULL },
};

const struct kv_command *command_lookup(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strlen(commands[i].name) == n &&
		    strncasecmp(commands[i].name, name, n) == 0)
			return &commands[i];
	return NULL;
}

int command_arity_ok(const struct kv_command *c, int argc)
{
	return c->arity > 0 ? argc == c->arity : argc >= -c->arity;
}

/* ------------------------------------------------------------ running */

struct job {
	struct kv_exec *e;
	const struct kv_call *calls;
	int n, multi;
};

static int job_body(pstm_tx *tx, void *arg)
{
	struct job *j = arg;
	struct kv_exec *e = j->e;
	e->out.len = 0;       /* a re-run attempt starts its reply afresh */
	e->out.overflow = 0;
	if (j->multi)
		reply_array(&e->out, j->n);
	for (int i = 0; i < j->n; i++) {
		const struct kv_call *c = &j->calls[i];
		int rc = c->cmd->fn(tx, e, c->argc, c->argv);
		if (rc)
			return rc;
		if (e->out.overflow)
			return KV_EREPLY;
	}
	return 0;
}

/* FLUSHDB outside MULTI: many small transactions, so any size fits */
static int flush_step(pstm_tx *tx, void *arg)
{
	struct job *j = arg;
	int done = 0;
	TRY(kv_flush_some(tx, j->e, 64, &done));
	j->n = done;
	return 0;
}

static void run_error(struct kv_buf *reply, int rc)
{
	char msg[160];
	if (rc == KV_EREPLY)
		snprintf(msg, sizeof msg, "ERR reply longer than %u MiB",
			 KV_MAX_REPLY >> 20);
	else if (rc == PSTM_ELOGFULL)
		snprintf(msg, sizeof msg,
			 "ERR transaction too large for the region's redo log (%s)",
			 pstm_strerror(rc));
	else if (rc == PSTM_EHEAPFULL)
		snprintf(msg, sizeof msg, "OOM region heap full (%s)",
			 pstm_strerror(rc));
	else
		snprintf(msg, sizeof msg, "ERR transaction failed: %s",
			 pstm_strerror(rc));
	reply_error(reply, msg);
}

void command_run(struct kv_exec *e, const struct kv_call *calls, int n,
		 int multi, struct kv_buf *reply)
{
	struct job j = { e, calls, n, multi };
	int rc, writes = 0, store = 0;
	for (int i = 0; i < n; i++) {
		writes |= !!(calls[i].cmd->flags & CMD_WRITE);
		store |= !(calls[i].cmd->flags & CMD_NOSTORE);
	}
	if (!multi && n == 1 && calls[0].cmd->fn == kv_cmd_flushdb) {
		e->out.len = 0;
		if (calls[0].argc == 2 && !arg_is(&calls[0].argv[1], "sync") &&
		    !arg_is(&calls[0].argv[1], "async")) {
			reply_error(reply, ERR_SYNTAX);
			return;
		}
		do {
			j.n = 0;
			rc = pstm_atomic(e->st->r, flush_step, &j);
		} while (rc == 0 && !j.n);
		if (rc)
			run_error(reply, rc);
		else
			reply_status(reply, "OK");
		return;
	}
	if (!store)
		rc = job_body(NULL, &j);
	else if (writes)
		rc = pstm_atomic(e->st->r, job_body, &j);
	else
		rc = pstm_atomic_ro(e->st->r, job_body, &j);
	if (rc == 0)  /* committed: now, and only now, the reply goes out */
		buf_append(reply, e->out.p, e->out.len);
	else
		run_error(reply, rc);
	if (e->out.cap > (1u << 20)) /* a huge reply's memory goes back */
		buf_free(&e->out);
	if (e->tmp.cap > (1u << 20))
		buf_free(&e->tmp);
}

int exec_init(struct kv_exec *e, struct kv_store *st,
	      struct kv_server_info *info)
{
	memset(e, 0, sizeof *e);
	e->st = st;
	e->info = info;
	e->out.limit = KV_MAX_REPLY;
	e->tmp.limit = KV_MAX_REPLY;
	return 0;
}

void exec_free(struct kv_exec *e)
{
	buf_free(&e->out);
	buf_free(&e->tmp);
}
