/*
 * conn.c - connections (see conn.h).  Every byte a client sends goes
 * through resp_parse, which bounds each length; here the whole request is
 * bounded (CONN_QUERY_LIMIT), and a client whose replies pile up
 * (CONN_OUT_SOFT) is not read until it takes them, so one client's memory
 * stays bounded and a slow or stuck client only ever waits for itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"

#define READ_CHUNK (64u * 1024)
/* an idle client keeps at most this much buffer memory */
#define IDLE_KEEP (64u * 1024)

/* a command queued by MULTI: its arguments in c->qargs */
struct queued {
	const struct kv_command *cmd;
	size_t first, argc;
};

struct kv_client {
	struct kv_watch w;
	struct kv_server *srv;
	struct kv_client *prev, *next;  /* srv->clients */
	struct kv_buf in;
	size_t in_start;                /* start of the unparsed request */
	struct resp_parser parser;
	struct kv_buf out;
	size_t out_sent;
	int closing;                    /* close once out is sent */
	int dead;
	int in_multi, multi_dirty;
	struct queued *queue;
	size_t nqueued, qcap;
	struct resp_arg *qargs;         /* offsets into qdata */
	size_t nqargs, qargcap;
	struct kv_buf qdata;
};

static void client_close(struct kv_client *c)
{
	if (c->dead)
		return;
	struct kv_server *s = c->srv;
	loop_del(&s->loop, &c->w);
	close(c->w.fd);
	c->dead = 1;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = s->dead;
	s->dead = c;
	s->info.clients--;
}

static void client_free(struct kv_client *c)
{
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->qdata);
	resp_free(&c->parser);
	free(c->queue);
	free(c->qargs);
	free(c);
}

static void free_dead(void *arg)
{
	struct kv_server *s = arg;
	while (s->dead) {
		struct kv_client *c = s->dead;
		s->dead = c->next;
		client_free(c);
	}
}

static size_t out_pending(const struct kv_client *c)
{
	return c->out.len - c->out_sent;
}

/* ask the loop for what the client can take now */
static void client_watch(struct kv_client *c)
{
	uint32_t ev = 0;
	if (!c->closing && out_pending(c) <= CONN_OUT_SOFT)
		ev |= EPOLLIN;
	if (out_pending(c))
		ev |= EPOLLOUT;
	if (loop_set(&c->srv->loop, &c->w, ev))
		client_close(c);
}

static void client_write(struct kv_client *c)
{
	while (out_pending(c)) {
		ssize_t n = send(c->w.fd, c->out.p + c->out_sent, out_pending(c),
				 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			client_close(c);
			return;
		}
		c->out_sent += (size_t)n;
	}
	c->out.len = c->out_sent = 0;
	if (c->out.cap > IDLE_KEEP)
		buf_free(&c->out);
	if (c->closing)
		client_close(c);
}

/* an error line that stays one line whatever the client sent */
static void reply_named(struct kv_buf *b, const char *pre, const char *what,
			size_t n, const char *post)
{
	char name[68], msg[200];
	size_t m = n < 64 ? n : 64;
	for (size_t i = 0; i < m; i++)
		name[i] = what[i] >= 32 && what[i] < 127 ? what[i] : '?';
	name[m] = '\0';
	snprintf(msg, sizeof msg, "%s%s%s", pre, name, post);
	reply_error(b, msg);
}

static void multi_clear(struct kv_client *c)
{
	c->in_multi = c->multi_dirty = 0;
	c->nqueued = c->nqargs = 0;
	c->qdata.len = 0;
	c->qdata.overflow = 0;
	if (c->qdata.cap > IDLE_KEEP) {
		buf_free(&c->qdata);
		free(c->queue);
		free(c->qargs);
		c->queue = NULL;
		c->qargs = NULL;
		c->qcap = c->qargcap = 0;
	}
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * size);
	if (!q)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

static int multi_queue(struct kv_client *c, const struct kv_command *cmd,
		       int argc, const struct kv_arg *argv)
{
	if (c->nqueued >= CONN_MULTI_CMDS)
		return -1;
	if (grow((void **)&c->queue, &c->qcap, c->nqueued + 1, sizeof *c->queue) ||
	    grow((void **)&c->qargs, &c->qargcap, c->nqargs + (size_t)argc,
		 sizeof *c->qargs))
		return -1;
	c->qdata.limit = CONN_MULTI_BYTES;
	struct queued *q = &c->queue[c->nqueued];
	q->cmd = cmd;
	q->first = c->nqargs;
	q->argc = (size_t)argc;
	for (int i = 0; i < argc; i++) {
		c->qargs[c->nqargs + (size_t)i].off = c->qdata.len;
		c->qargs[c->nqargs + (size_t)i].len = argv[i].n;
		buf_append(&c->qdata, argv[i].p, argv[i].n);
	}
	if (c->qdata.overflow)
		return -1;
	c->nqargs += (size_t)argc;
	c->nqueued++;
	return 0;
}

static void multi_exec(struct kv_client *c)
{
	struct kv_server *s = c->srv;
	struct kv_call *calls = calloc(c->nqueued ? c->nqueued : 1, sizeof *calls);
	struct kv_arg *args = calloc(c->nqargs ? c->nqargs : 1, sizeof *args);
	if (!calls || !args) {
		reply_error(&c->out, "ERR out of memory");
		goto out;
	}
	for (size_t i = 0; i < c->nqargs; i++) {
		args[i].p = c->qdata.p + c->qargs[i].off;
		args[i].n = c->qargs[i].len;
	}
	for (size_t i = 0; i < c->nqueued; i++) {
		calls[i].cmd = c->queue[i].cmd;
		calls[i].argc = (int)c->queue[i].argc;
		calls[i].argv = args + c->queue[i].first;
	}
	command_run(&s->exec, calls, (int)c->nqueued, 1, &c->out);
out:
	free(calls);
	free(args);
	multi_clear(c);
}

static void dispatch(struct kv_client *c, int argc, const struct kv_arg *argv)
{
	const struct kv_command *cmd = command_lookup(argv[0].p, argv[0].n);
	if (!cmd) {
		reply_named(&c->out, "ERR unknown command '", argv[0].p,
			    argv[0].n, "'");
		c->multi_dirty |= c->in_multi;
		return;
	}
	if (!command_arity_ok(cmd, argc)) {
		reply_named(&c->out, "ERR wrong number of arguments for '",
			    cmd->name, strlen(cmd->name), "' command");
		c->multi_dirty |= c->in_multi;
		return;
	}
	if (cmd->flags & CMD_CONTROL) {
		if (!strcmp(cmd->name, "quit")) {
			reply_status(&c->out, "OK");
			c->closing = 1;
		} else if (!strcmp(cmd->name, "multi")) {
			if (c->in_multi) {
				reply_error(&c->out, "ERR MULTI calls can not be nested");
			} else {
				c->in_multi = 1;
				reply_status(&c->out, "OK");
			}
		} else if (!c->in_multi) {
			reply_error(&c->out, !strcmp(cmd->name, "exec")
						    ? "ERR EXEC without MULTI"
						    : "ERR DISCARD without MULTI");
		} else if (!strcmp(cmd->name, "discard")) {
			multi_clear(c);
			reply_status(&c->out, "OK");
		} else if (c->multi_dirty) {
			multi_clear(c);
			reply_error(&c->out, "EXECABORT Transaction discarded because of previous errors.");
		} else {
			multi_exec(c);
		}
		return;
	}
	if (c->in_multi) {
		if (multi_queue(c, cmd, argc, argv)) {
			c->multi_dirty = 1;
			reply_error(&c->out, "ERR MULTI queue too long (10000 commands, 4 MiB)");
		} else {
			reply_status(&c->out, "QUEUED");
		}
		return;
	}
	struct kv_call call = { cmd, argc, argv };
	command_run(&c->srv->exec, &call, 1, 0, &c->out);
}

/* run every complete request in the input, while the client takes replies */
static void client_process(struct kv_client *c)
{
	struct kv_server *s = c->srv;
	while (!c->dead && !c->closing && out_pending(c) <= CONN_OUT_SOFT) {
		const char *base = c->in.p + c->in_start;
		size_t avail = c->in.len - c->in_start;
		const char *err = "";
		int rc = resp_parse(&c->parser, base, avail, &err);
		if (rc == RESP_MORE) {
			if (avail >= CONN_QUERY_LIMIT) {
				reply_error(&c->out, "ERR Protocol error: request longer than 4 MiB");
				c->closing = 1;
			}
			break;
		}
		if (rc == RESP_ERROR) {
			char msg[120];
			snprintf(msg, sizeof msg, "ERR Protocol error: %s", err);
			reply_error(&c->out, msg);
			c->closing = 1;
			break;
		}
		if (rc == RESP_DONE) {
			size_t argc = c->parser.argc;
			if (grow((void **)&s->argv, &s->argcap, argc, sizeof *s->argv)) {
				client_close(c);
				return;
			}
			for (size_t i = 0; i < argc; i++) {
				s->argv[i].p = base + c->parser.argv[i].off;
				s->argv[i].n = c->parser.argv[i].len;
			}
			dispatch(c, (int)argc, s->argv);
		}
		c->in_start += c->parser.pos;
		resp_reset(&c->parser);
	}
	if (c->in_start == c->in.len) {
		c->in.len = c->in_start = 0;
		if (c->in.cap > IDLE_KEEP)
			buf_free(&c->in);
	}
}

static void client_read(struct kv_client *c)
{
	/* move the unparsed request to the front before growing */
	if (c->in_start) {
		memmove(c->in.p, c->in.p + c->in_start, c->in.len - c->in_start);
		c->in.len -= c->in_start;
		c->in_start = 0;
	}
	if (buf_reserve(&c->in, READ_CHUNK)) {
		client_close(c);
		return;
	}
	ssize_t n = recv(c->w.fd, c->in.p + c->in.len, READ_CHUNK, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR &&
		       errno != EWOULDBLOCK)) {
		client_close(c);
		return;
	}
	if (n > 0) {
		c->in.len += (size_t)n;
		client_process(c);
	}
}

static void client_ready(struct kv_watch *w, uint32_t events)
{
	struct kv_client *c = (struct kv_client *)((char *)w - offsetof(struct kv_client, w));
	if (c->dead)
		return;
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		client_close(c);
		return;
	}
	if (events & EPOLLOUT) {
		client_write(c);
		/* replies taken: requests held back may run now */
		if (!c->dead && out_pending(c) <= CONN_OUT_SOFT)
			client_process(c);
	}
	if (!c->dead && events & EPOLLIN)
		client_read(c);
	if (!c->dead)
		client_write(c);
	if (!c->dead)
		client_watch(c);
}

static void accept_ready(struct kv_watch *w, uint32_t events)
{
	struct kv_server *s = (struct kv_server *)((char *)w - offsetof(struct kv_server, listener));
	(void)events;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "pstm-kv[%ld]: accept: %s\n",
					(long)s->info.pid, strerror(errno));
			return;
		}
		if (s->info.clients >= s->max_clients) {
			static const char full[] = "-ERR max number of clients reached\r\n";
			ssize_t ignored = send(fd, full, sizeof full - 1,
					       MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)ignored;
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct kv_client *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = s;
		c->w.fd = fd;
		c->w.ready = client_ready;
		resp_init(&c->parser);
		c->in.limit = CONN_QUERY_LIMIT + READ_CHUNK;
		if (loop_add(&s->loop, &c->w, EPOLLIN)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->clients;
		if (s->clients)
			s->clients->prev = c;
		s->clients = c;
		s->info.clients++;
	}
}

int conn_server_init(struct kv_server *s, int listen_fd)
{
	if (loop_init(&s->loop))
		return -1;
	s->loop.after_batch = free_dead;
	s->loop.arg = s;
	s->listener.fd = listen_fd;
	s->listener.ready = accept_ready;
	if (s->max_clients <= 0)
		s->max_clients = CONN_DEFAULT_MAX_CLIENTS;
	return loop_add(&s->loop, &s->listener, EPOLLIN);
}

void conn_server_free(struct kv_server *s)
{
	while (s->clients)
		client_close(s->clients);
	free_dead(s);
	loop_del(&s->loop, &s->listener);
	loop_free(&s->loop);
	free(s->argv);
	s->argv = NULL;
}
