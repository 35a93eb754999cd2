/*
 * commands.h - the Redis string commands of pstm-kv, each a function run
 * inside a pstm transaction, and command_run, which runs one request (or
 * a MULTI/EXEC block) as one transaction and appends its reply only once
 * that transaction has committed.
 */
#ifndef KV_COMMANDS_H
#define KV_COMMANDS_H

#include <stddef.h>
#include <sys/types.h>

#include <pstm.h>

#include "resp.h"
#include "store.h"

/* the most bytes one reply may have (KEYS, MGET); more: an error */
#define KV_MAX_REPLY (64u * 1024 * 1024)
/* the longest value SET or APPEND may make */
#define KV_MAX_VALUE RESP_MAX_BULK

struct kv_arg {
	const char *p;
	size_t n;
};

/* What a worker process knows, for INFO. */
struct kv_server_info {
	pid_t pid;
	int port;
	int index;           /* which worker process, from 0 */
	const char *uri;
	long long clients;   /* connected now */
};

/* The state command functions share: one per worker process. */
struct kv_exec {
	struct kv_store *st;
	struct kv_buf out;   /* the reply of the running attempt */
	struct kv_buf tmp;   /* scratch of a command (APPEND, KEYS) */
	struct kv_server_info *info;
};

enum {
	CMD_WRITE = 1,     /* writes the store: an update transaction */
	CMD_NOSTORE = 2,   /* never touches the store (PING, ECHO) */
	CMD_CONTROL = 4,   /* handled by the connection (MULTI, EXEC, QUIT) */
};

typedef int (*kv_cmd_fn)(pstm_tx *tx, struct kv_exec *e, int argc,
			 const struct kv_arg *argv);

struct kv_command {
	const char *name;  /* lower case */
	int arity;         /* exact argc (> 0) or at least -arity (< 0) */
	unsigned flags;
	kv_cmd_fn fn;
};

/* the command named @name (@n bytes, any case), or NULL */
const struct kv_command *command_lookup(const char *name, size_t n);
int command_arity_ok(const struct kv_command *c, int argc);

struct kv_call {
	const struct kv_command *cmd;
	int argc;
	const struct kv_arg *argv;
};

/*
 * command_run - run @n calls as one transaction (read-only unless one of
 * them writes) and append the reply to @reply: one reply, or with @multi
 * an array of @n.  A transaction that fails (too large for the redo log,
 * heap full, reply too long) is rolled back and answered with one error.
 * Nothing reaches @reply from an attempt that was rolled back.
 */
void command_run(struct kv_exec *e, const struct kv_call *calls, int n,
		 int multi, struct kv_buf *reply);

int exec_init(struct kv_exec *e, struct kv_store *st,
	      struct kv_server_info *info);
void exec_free(struct kv_exec *e);

#endif
