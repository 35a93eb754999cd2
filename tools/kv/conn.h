/*
 * conn.h - the connections of one worker process (Redis's networking.c):
 * accepting, per-client input and output buffers with their limits,
 * feeding the parser, MULTI queues, and handing requests to command_run.
 */
#ifndef KV_CONN_H
#define KV_CONN_H

#include <stddef.h>

#include "commands.h"
#include "loop.h"

/* Per-client limits (documented in pstm-kv(1)). */
#define CONN_QUERY_LIMIT (4u * 1024 * 1024)  /* one request, unparsed */
#define CONN_OUT_SOFT (1u * 1024 * 1024)     /* stop reading above this */
#define CONN_MULTI_BYTES (4u * 1024 * 1024)  /* arguments queued by MULTI */
#define CONN_MULTI_CMDS 10000                /* commands queued by MULTI */
#define CONN_DEFAULT_MAX_CLIENTS 1024        /* per process */

struct kv_client;

struct kv_server {
	struct kv_loop loop;
	struct kv_watch listener;
	struct kv_exec exec;
	struct kv_server_info info;
	long max_clients;
	struct kv_client *clients;   /* all open ones */
	struct kv_client *dead;      /* closed, freed after the batch */
	struct kv_arg *argv;         /* the request being run */
	size_t argcap;
};

/* @listen_fd: a listening, non-blocking socket */
int conn_server_init(struct kv_server *s, int listen_fd);
/* close every client, free everything (the listener is the caller's) */
void conn_server_free(struct kv_server *s);

#endif
