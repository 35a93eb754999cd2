/*
 * member.c - a process's side of pstmd, the coordinator daemon.
 *
 * pstm_open registers the handle with pstmd when one listens: one
 * non-blocking connect and one non-blocking send of a REGISTER record
 * (the region's path, file identity and our process table entry, with
 * the region file's descriptor as proof that we have it open).  Nothing
 * waits for pstmd's answer, so a missing, slow or dead daemon costs an
 * open a failed connect() and nothing else; the commit path never sees
 * the daemon at all.  The connection stays open while the handle does:
 * pstmd learns of a clean close when it closes (after we detached) and
 * of a death from the pidfd it took of us.
 *
 * For a relaxed region pstmd may answer FLUSHER: it runs the timed
 * flushes, and our flush thread runs no timer while the connection
 * lives: it sleeps in poll() on it (lib/flush.c).  When pstmd dies the
 * connection reaches end of file, which wakes the thread: it flushes at
 * once and every flush_ms again.  The flush token keeps every flusher
 * correct whoever holds it.
 *
 * Where: $PSTM_DAEMON_SOCKET, else the default socket (wire.c);
 * PSTM_DAEMON=off (or 0, no) turns it all off.  Both are read with
 * secure_getenv.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "inspect.h"
#include "member.h"
#include "wire.h"

struct daemon_link {
	int fd;
	bool flushes;  /* pstmd said FLUSHER */
	bool gone;     /* the connection ended: pstmd died or let go */
};

static bool daemon_wanted(void)
{
	const char *v = secure_getenv("PSTM_DAEMON");
	return !v || (strcmp(v, "off") != 0 && strcmp(v, "0") != 0 &&
		      strcmp(v, "no") != 0);
}

/* A connected, non-blocking seqpacket socket to pstmd, or -1. */
static int daemon_connect(void)
{
	char paths[2][sizeof(((struct sockaddr_un *)0)->sun_path)];
	int n = 0;
	const char *env = secure_getenv("PSTM_DAEMON_SOCKET");

	if (env && *env) {
		if (strlen(env) >= sizeof(paths[0]))
			return -1;
		snprintf(paths[n++], sizeof(paths[0]), "%s", env);
	} else {
		if (wire_default_socket(paths[0], sizeof(paths[0])) == 0)
			n++;
		if (n == 0 || strcmp(paths[0], WIRE_SYSTEM_SOCKET) != 0)
			snprintf(paths[n++], sizeof(paths[0]), "%s", WIRE_SYSTEM_SOCKET);
	}
	for (int i = 0; i < n; i++) {
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		memcpy(a.sun_path, paths[i], sizeof(a.sun_path));
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		/* a unix connect never blocks: it succeeds, or fails at once
		 * (no socket, nobody listening, a full backlog: EAGAIN) */
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return fd;
		close(fd);
	}
	return -1;
}

/* @path made absolute into @out; false if it does not fit. */
static bool absolute(const char *path, char *out, size_t n)
{
	char cwd[PATH_MAX];
	int w;
	if (path[0] == '/')
		w = snprintf(out, n, "%s", path);
	else if (getcwd(cwd, sizeof(cwd)))
		w = snprintf(out, n, "%s/%s", cwd, path);
	else
		return false;
	return w > 0 && (size_t)w < n;
}

/*
 * The flush thread's question, when the connection is readable: read
 * what pstmd sent since (FLUSHER, or the end of the connection), without
 * waiting.
 */
static bool flush_delegated(struct pstm_region *r)
{
	struct daemon_link *k = r->daemon;
	uint8_t buf[WIRE_MAX_BYTES];
	int fds[WIRE_MAX_FDS], nfds;
	struct wire_msg m;

	if (!k || k->gone)
		return false;
	for (int i = 0; i < 4; i++) {
		ssize_t n = wire_recv(k->fd, buf, fds, &nfds, true);
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			break;
		wire_close_fds(fds, nfds);
		if (n <= 0 || wire_parse(buf, (size_t)n, nfds, &m) != 0 ||
		    m.type == WIRE_ERROR) {
			k->gone = true; /* pstmd died, or will not serve us */
			k->flushes = false;
			r->flush_daemon_fd = -1; /* nothing more to poll */
			break;
		}
		if (m.type == WIRE_FLUSHER)
			k->flushes = true;
	}
	return k->flushes;
}

void member_register(struct pstm_region *r)
{
	char uri[PATH_MAX];
	struct wire_buf *w;
	int fd;

	if (!daemon_wanted())
		return;
	/* the URI pstmd opens it by: shm:NAME, or the file's absolute path */
	if (r->is_shm) {
		const char *name = strrchr(r->path, '/');
		int n = snprintf(uri, sizeof(uri), "shm:%s", name ? name + 1 : r->path);
		if (n < 0 || (size_t)n >= sizeof(uri))
			return;
	} else if (!absolute(r->path, uri, sizeof(uri))) {
		return;
	}
	fd = daemon_connect();
	if (fd < 0)
		return;
	w = malloc(sizeof(*w));
	struct daemon_link *k = calloc(1, sizeof(*k));
	if (!w || !k)
		goto fail;
	wire_begin(w, WIRE_REGISTER, 1);
	wire_str(w, WT_PATH, uri);
	wire_bytes(w, WT_FILE_ID, &r->file, sizeof(r->file));
	wire_u32(w, WT_PROC_IDX, r->proc_idx);
	wire_u64(w, WT_PROC_STATE, r->proc_state);
	if (wire_end(w) < 0 || wire_send(fd, w, &r->fd, 1, true) != 0)
		goto fail;
	free(w);
	k->fd = fd;
	r->daemon = k;
	r->flush_daemon_fd = fd;
	r->flush_delegated = r->relaxed ? flush_delegated : NULL;
	return;
fail:
	free(w);
	free(k);
	close(fd);
}

void member_leave(struct pstm_region *r)
{
	if (!r->daemon)
		return;
	close(r->daemon->fd);
	free(r->daemon);
	r->daemon = NULL;
	r->flush_daemon_fd = -1;
	r->flush_delegated = NULL;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The next message on @fd before @until (now_ms()): its length in @buf
 * (fds in @fds), or PSTM_EIO if none came in time or the connection
 * failed. */
static ssize_t recv_until(int fd, uint8_t *buf, int *fds, int *nfds, uint64_t until)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= until)
			return PSTM_EIO;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int k = poll(&p, 1, (int)(until - now));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return PSTM_EIO;
		ssize_t n = wire_recv(fd, buf, fds, nfds, true);
		if (n == -EAGAIN || n == -EINTR)
			continue;
		return n > 0 ? n : PSTM_EIO;
	}
}

/* Send @w on a fresh connection and wait at most @ms for the reply to
 * it: its length in @buf (fds in @fds), or a PSTM_E* code. */
static int ask(const struct wire_buf *w, const int *send_fds, int nsend, uint8_t *buf,
	       int *fds, int *nfds, int ms)
{
	int fd = daemon_connect(), rc;
	*nfds = 0;
	if (fd < 0)
		return PSTM_ENOENT;
	if (wire_send(fd, w, send_fds, nsend, true) != 0) {
		rc = PSTM_EIO;
		goto out;
	}
	rc = (int)recv_until(fd, buf, fds, nfds, now_ms() + (uint64_t)ms);
out:
	close(fd);
	return rc;
}

int member_open_named(const char *name, int *fds, int *nfds, bool *write, char *path,
		      size_t n)
{
	struct wire_buf *w = malloc(sizeof(*w));
	uint8_t *buf = malloc(WIRE_MAX_BYTES);
	struct wire_msg m;
	int rc = PSTM_ENOMEM;

	*nfds = 0;
	if (!w || !buf)
		goto out;
	rc = PSTM_EINVAL;
	if (!*name || strlen(name) + 1 > WIRE_MAX_STR)
		goto out;
	wire_begin(w, WIRE_OPEN, 1);
	wire_str(w, WT_NAME, name);
	wire_u32(w, WT_WRITE, 1);
	if (wire_end(w) < 0)
		goto out;
	rc = ask(w, NULL, 0, buf, fds, nfds, MEMBER_OPEN_MS);
	if (rc < 0)
		goto out;
	int len = rc;
	rc = PSTM_EIO;
	if (wire_parse(buf, (size_t)len, *nfds, &m) != 0 || m.id != 1)
		goto out;
	if (m.type == WIRE_ERROR) {
		int code = (int)(int32_t)m.u[WT_CODE];
		rc = code < 0 && code >= PSTM_ERR_LAST ? code : PSTM_EIO;
		goto out;
	}
	if (m.type != WIRE_GRANT || strlen(m.s[WT_PATH]) >= n)
		goto out;
	snprintf(path, n, "%s", m.s[WT_PATH]);
	*write = m.u[WT_WRITE] != 0;
	rc = 0;
out:
	if (rc) {
		wire_close_fds(fds, *nfds);
		*nfds = 0;
	}
	free(w);
	free(buf);
	return rc;
}

static bool release(int region_fd, bool room);

bool member_release(int region_fd)
{
	return release(region_fd, false);
}

bool member_make_room(int region_fd)
{
	return release(region_fd, true);
}

static bool release(int region_fd, bool room)
{
	struct wire_buf *w = malloc(sizeof(*w));
	uint8_t *buf = malloc(WIRE_MAX_BYTES);
	int fds[WIRE_MAX_FDS], nfds = 0;
	struct wire_msg m;
	bool released = false;

	if (!w || !buf || !daemon_wanted())
		goto out;
	wire_begin(w, WIRE_RELEASE, 1);
	if (room)
		wire_u32(w, WT_ROOM, 1);
	if (wire_end(w) < 0)
		goto out;
	int len = ask(w, &region_fd, 1, buf, fds, &nfds, MEMBER_RELEASE_MS);
	released = len > 0 && wire_parse(buf, (size_t)len, nfds, &m) == 0 &&
		   m.type == WIRE_OK && m.id == 1;
	wire_close_fds(fds, nfds);
out:
	free(w);
	free(buf);
	return released;
}

/* One record of a PROCS reply into @p: 1 a process, 0 the end, or a
 * PSTM_E* code. */
static int procs_record(const uint8_t *buf, ssize_t len, int nfds, struct member_procs *p)
{
	struct wire_msg m;
	if (len <= 0 || wire_parse(buf, (size_t)len, nfds, &m) != 0 || m.id != 1)
		return PSTM_EIO;
	if (m.type == WIRE_ERROR) {
		int code = (int)(int32_t)m.u[WT_CODE];
		return code < 0 && code >= PSTM_ERR_LAST ? code : PSTM_EIO;
	}
	if (m.type == WIRE_END) {
		p->members = (uint32_t)m.u[WT_MEMBERS];
		p->recoveries = m.u[WT_RECOVERIES];
		return 0;
	}
	if (m.type != WIRE_PROC || p->n >= 65536)
		return PSTM_EIO;
	struct inspect_proc *a = realloc(p->procs, (p->n + 1) * sizeof(*a));
	int *w = realloc(p->watched, (p->n + 1) * sizeof(*w));
	if (a)
		p->procs = a;
	if (w)
		p->watched = w;
	if (!a || !w)
		return PSTM_ENOMEM;
	uint64_t st[8];
	memcpy(st, m.b[WT_STATS], sizeof(st));
	struct inspect_proc *row = &p->procs[p->n];
	memset(row, 0, sizeof(*row));
	row->entry = (uint32_t)m.u[WT_ENTRY];
	row->pid = m.u[WT_PID];
	row->state = m.u[WT_STATE] <= INSPECT_RECOVERING ? (int)m.u[WT_STATE] : INSPECT_DEAD;
	row->slots = (unsigned)m.u[WT_SLOTS];
	row->st = (struct pstm_stats){st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7]};
	p->watched[p->n++] = (int)m.u[WT_WATCHED];
	return 1;
}

int member_procs(int region_fd, struct member_procs *out)
{
	struct wire_buf *w = malloc(sizeof(*w));
	uint8_t *buf = malloc(WIRE_MAX_BYTES);
	int fds[WIRE_MAX_FDS], nfds, rc = PSTM_ENOMEM, fd = -1;

	memset(out, 0, sizeof(*out));
	if (!w || !buf)
		goto out;
	rc = PSTM_ENOENT;
	if ((fd = daemon_connect()) < 0)
		goto out;
	wire_begin(w, WIRE_PROCS, 1);
	rc = PSTM_EIO;
	if (wire_end(w) < 0 || wire_send(fd, w, &region_fd, 1, true) != 0)
		goto out;
	uint64_t until = now_ms() + MEMBER_ASK_MS;
	for (;;) {
		ssize_t n = recv_until(fd, buf, fds, &nfds, until);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		wire_close_fds(fds, nfds);
		rc = procs_record(buf, n, nfds, out);
		if (rc <= 0)
			goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		member_procs_free(out);
	free(w);
	free(buf);
	return rc;
}

void member_procs_free(struct member_procs *p)
{
	free(p->procs);
	free(p->watched);
	memset(p, 0, sizeof(*p));
}
