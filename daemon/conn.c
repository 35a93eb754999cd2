/*
 * conn.c - pstmd's client connections: accepting within limits, reading
 * records, passing them through the strict parser (lib/wire.c), handing
 * requests to the registry and the grant code, and replies.
 *
 * Every byte a client sends is hostile until wire_parse accepts it.  A
 * record that does not parse, a reply type sent as a request, or any
 * message on a member's registration connection (it is one REGISTER,
 * then silence) gets an ERROR reply and the connection is closed.  A
 * connection that has not registered is closed after idle_ms without a
 * request; their number is bounded in all and per uid.  Replies never
 * block the loop: what the socket does not take at once waits in a queue
 * bounded by QUEUE_MAX bytes, and a client that lets it overflow is
 * dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pstm.h"
#include "pstmd.h"

#define QUEUE_MAX (512u << 10)
#define READS_PER_WAKEUP 16

struct outq {
	struct outq *next;
	size_t n;
	uint8_t b[];
};

struct conn {
	struct conn *next, *prev;
	struct pstmd *d;
	int fd;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint64_t deadline_ms;   /* idle limit; UINT64_MAX for a member */
	void *member;           /* registry's member after REGISTER */
	bool waiting;           /* a request waits for pstmd's open */
	struct outq *qhead, *qtail;
	size_t qbytes;
	bool dead;              /* dropped: closed at the end of the event */
};

static void on_conn(struct loop *l, int fd, uint32_t events, void *arg);

static void conn_free(struct conn *c)
{
	struct pstmd *d = c->d;
	loop_del(d->loop, c->fd);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	d->nconns--;
	while (c->qhead) {
		struct outq *q = c->qhead;
		c->qhead = q->next;
		free(q);
	}
	void *m = c->member;
	if (c->waiting)
		registry_conn_closed(d, c);
	free(c);
	if (m)
		registry_conn_gone(d, m);
}

void conn_peer(const struct conn *c, pid_t *pid, uid_t *uid, gid_t *gid)
{
	if (pid)
		*pid = c->pid;
	if (uid)
		*uid = c->uid;
	if (gid)
		*gid = c->gid;
}

int conn_peer_groups(const struct conn *c, gid_t *g, int max)
{
	socklen_t len = (socklen_t)(sizeof(gid_t) * (size_t)(max - 1));
	int n = 0;
	g[n++] = c->gid;
	if (max > 1 && getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, g + 1, &len) == 0)
		n += (int)(len / sizeof(gid_t));
	return n;
}

void conn_set_member(struct conn *c, void *member)
{
	c->member = member;
	c->deadline_ms = member || c->waiting ? UINT64_MAX
					      : pstmd_now_ms() + c->d->cfg.idle_ms;
}

void conn_set_waiting(struct conn *c, bool waiting)
{
	c->waiting = waiting;
	conn_set_member(c, c->member);
}

/* Write queued records; false if the connection must go. */
static bool flush_queue(struct conn *c)
{
	while (c->qhead) {
		struct outq *q = c->qhead;
		ssize_t k = send(c->fd, q->b, q->n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return loop_mod(c->d->loop, c->fd, EPOLLIN | EPOLLOUT) == 0;
		if (k != (ssize_t)q->n)
			return false;
		c->qhead = q->next;
		if (!c->qhead)
			c->qtail = NULL;
		c->qbytes -= q->n;
		free(q);
	}
	return loop_mod(c->d->loop, c->fd, EPOLLIN) == 0;
}

int conn_send(struct conn *c, struct wire_buf *w, const int *fds, int nfds)
{
	if (c->dead || wire_end(w) < 0) {
		c->dead = true;
		return -1;
	}
	if (!c->qhead) {
		int rc = wire_send(c->fd, w, fds, nfds, true);
		if (rc == 0)
			return 0;
		if (rc != -EAGAIN || nfds > 0) {
			c->dead = true; /* descriptors go at once or never */
			return -1;
		}
	} else if (nfds > 0) {
		c->dead = true;
		return -1;
	}
	if (c->qbytes + w->n > QUEUE_MAX) {
		c->dead = true; /* it does not read its replies */
		return -1;
	}
	struct outq *q = malloc(sizeof(*q) + w->n);
	if (!q) {
		c->dead = true;
		return -1;
	}
	q->next = NULL;
	q->n = w->n;
	memcpy(q->b, w->b, w->n);
	if (c->qtail)
		c->qtail->next = q;
	else
		c->qhead = q;
	c->qtail = q;
	c->qbytes += w->n;
	if (!flush_queue(c))
		c->dead = true;
	return c->dead ? -1 : 0;
}

int conn_error(struct conn *c, uint32_t id, int code, const char *fmt, ...)
{
	struct wire_buf w;
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	wire_begin(&w, WIRE_ERROR, id);
	wire_u32(&w, WT_CODE, (uint32_t)code);
	wire_str(&w, WT_TEXT, text[0] ? text : "error");
	return conn_send(c, &w, NULL, 0);
}

static void status(struct conn *c, uint32_t id)
{
	struct pstmd *d = c->d;
	struct wire_buf w;
	wire_begin(&w, WIRE_STATUS, id);
	wire_str(&w, WT_VERSION, pstm_version());
	wire_u32(&w, WT_REGIONS, d->nregions + d->npending); /* pending: served soon */
	wire_u32(&w, WT_MEMBERS, d->nmembers);
	wire_u64(&w, WT_RECOVERIES, d->recoveries);
	conn_send(c, &w, NULL, 0);
}

/* One record of @n bytes with @nfds descriptors: parse and dispatch. */
static void request(struct conn *c, const uint8_t *buf, ssize_t n, int *fds, int nfds)
{
	struct wire_msg m;
	int rc = wire_parse(buf, (size_t)n, nfds, &m);
	uint32_t id = n >= WIRE_HDR_BYTES ? m.id : 0;

	if (rc) {
		conn_error(c, id, PSTM_EINVAL, "bad message: %s", wire_strerror(rc));
		c->dead = true;
		goto out;
	}
	if (!wire_is_request(m.type)) {
		conn_error(c, m.id, PSTM_EINVAL, "bad message: type %u is not a request",
			   m.type);
		c->dead = true;
		goto out;
	}
	if (c->member) {
		conn_error(c, m.id, PSTM_EINVAL,
			   "out of order: a registration connection takes no more requests");
		c->dead = true;
		goto out;
	}
	if (c->waiting) {
		conn_error(c, m.id, PSTM_EINVAL,
			   "out of order: the previous request is not answered yet");
		c->dead = true;
		goto out;
	}
	c->deadline_ms = pstmd_now_ms() + c->d->cfg.idle_ms;
	switch (m.type) {
	case WIRE_PING:
		status(c, m.id);
		break;
	case WIRE_REGISTER:
		registry_register(c->d, c, &m, fds[0]);
		break;
	case WIRE_PROCS:
		registry_procs(c->d, c, &m, fds[0]);
		break;
	case WIRE_RELEASE:
		registry_release(c->d, c, &m, fds[0]);
		break;
	case WIRE_OPEN:
		grant_open(c->d, c, &m);
		break;
	}
out:
	wire_close_fds(fds, nfds);
}

static void on_conn(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;
	uint8_t buf[WIRE_MAX_BYTES];
	int fds[WIRE_MAX_FDS], nfds;
	(void)l;
	(void)fd;

	if ((events & EPOLLOUT) && !flush_queue(c))
		c->dead = true;
	for (int i = 0; i < READS_PER_WAKEUP && !c->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)); i++) {
		ssize_t k = wire_recv(c->fd, buf, fds, &nfds, true);
		if (k == -EAGAIN || k == -EWOULDBLOCK)
			break;
		if (k == -EMSGSIZE) {
			conn_error(c, 0, PSTM_EINVAL, "bad message: %s", wire_strerror(WIRE_EBIG));
			c->dead = true;
		} else if (k <= 0) {
			c->dead = true; /* end of file, or an error */
			wire_close_fds(fds, nfds);
		} else {
			request(c, buf, k, fds, nfds);
		}
	}
	if (c->dead)
		conn_free(c);
}

static unsigned conns_of(struct pstmd *d, uid_t uid)
{
	unsigned n = 0;
	for (struct conn *c = d->conns; c; c = c->next)
		n += c->uid == uid;
	return n;
}

/* Refuse a connection over the limits: one ERROR record, then close. */
static void refuse(int fd, const char *why)
{
	struct wire_buf w;
	wire_begin(&w, WIRE_ERROR, 0);
	wire_u32(&w, WT_CODE, (uint32_t)PSTM_EBUSY);
	wire_str(&w, WT_TEXT, why);
	if (wire_end(&w) > 0)
		wire_send(fd, &w, NULL, 0, true);
	close(fd);
}

void conn_accept(struct loop *l, int lfd, uint32_t events, void *arg)
{
	struct pstmd *d = arg;
	(void)events;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				pstmd_log("accept: %s", strerror(errno));
			return;
		}
		struct ucred cr;
		socklen_t len = sizeof(cr);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
			close(fd);
			continue;
		}
		if (d->nconns >= d->cfg.max_conns) {
			refuse(fd, "pstmd: too many connections");
			continue;
		}
		if (conns_of(d, cr.uid) >= d->cfg.max_conns_per_uid) {
			refuse(fd, "pstmd: too many connections from this user");
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->d = d;
		c->fd = fd;
		c->pid = cr.pid;
		c->uid = cr.uid;
		c->gid = cr.gid;
		c->deadline_ms = pstmd_now_ms() + d->cfg.idle_ms;
		if (loop_add(l, fd, EPOLLIN, on_conn, c) != 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = d->conns;
		if (d->conns)
			d->conns->prev = c;
		d->conns = c;
		d->nconns++;
	}
}

uint64_t conn_sweep(struct pstmd *d)
{
	uint64_t now = pstmd_now_ms(), next = UINT64_MAX;
	struct conn *c = d->conns;
	while (c) {
		struct conn *n = c->next;
		if (c->deadline_ms <= now)
			conn_free(c);
		else if (c->deadline_ms < next)
			next = c->deadline_ms;
		c = n;
	}
	return next;
}

void conn_close_all(struct pstmd *d)
{
	while (d->conns)
		conn_free(d->conns);
}
