/*
 * wire.c - the pstmd message protocol (wire.h): the strict parser,
 * building messages, and sending and receiving them with descriptors.
 *
 * The parser is the daemon's first line against hostile peers (any local
 * user may connect) and the fuzz target's subject (tests/fuzz/
 * fuzz_wire.c): it reads every byte through bounds-checked loads, keeps
 * no state between calls and allocates nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"

/* ------------------------------------------------------------ schema */

#define K_NONE WK_NONE
#define K_U32 WK_U32
#define K_U64 WK_U64
#define K_STR WK_STR
#define K_BYTES WK_BYTES

static const struct {
	uint8_t kind;
	uint8_t bytes; /* K_BYTES: exact size */
} tags[WT_COUNT] = {
	[WT_PATH] = {K_STR, 0},        [WT_FILE_ID] = {K_BYTES, 24},
	[WT_PROC_IDX] = {K_U32, 0},    [WT_PROC_STATE] = {K_U64, 0},
	[WT_NAME] = {K_STR, 0},        [WT_WRITE] = {K_U32, 0},
	[WT_CODE] = {K_U32, 0},        [WT_TEXT] = {K_STR, 0},
	[WT_PID] = {K_U64, 0},         [WT_STATE] = {K_U32, 0},
	[WT_SLOTS] = {K_U32, 0},       [WT_STATS] = {K_BYTES, 64},
	[WT_WATCHED] = {K_U32, 0},     [WT_VERSION] = {K_STR, 0},
	[WT_REGIONS] = {K_U32, 0},     [WT_MEMBERS] = {K_U32, 0},
	[WT_RECOVERIES] = {K_U64, 0},  [WT_ENTRY] = {K_U32, 0},
	[WT_ROOM] = {K_U32, 0},
};

#define B(t) (1ull << (t))
static const struct {
	bool known;
	uint64_t need, allow; /* allow includes need */
	uint8_t min_fds, max_fds;
} types[WIRE_TYPE_LAST + 1] = {
	[WIRE_PING] = {true, 0, 0, 0, 0},
	[WIRE_REGISTER] = {true,
			   B(WT_PATH) | B(WT_FILE_ID) | B(WT_PROC_IDX) | B(WT_PROC_STATE),
			   B(WT_PATH) | B(WT_FILE_ID) | B(WT_PROC_IDX) | B(WT_PROC_STATE),
			   1, 1},
	[WIRE_PROCS] = {true, 0, B(WT_PATH), 1, 1},
	[WIRE_OPEN] = {true, B(WT_NAME) | B(WT_WRITE), B(WT_NAME) | B(WT_WRITE), 0, 0},
	[WIRE_RELEASE] = {true, 0, B(WT_PATH) | B(WT_ROOM), 1, 1},
	[WIRE_OK] = {true, 0, B(WT_TEXT), 0, 0},
	[WIRE_ERROR] = {true, B(WT_CODE) | B(WT_TEXT), B(WT_CODE) | B(WT_TEXT), 0, 0},
	[WIRE_STATUS] = {true,
			 B(WT_VERSION) | B(WT_REGIONS) | B(WT_MEMBERS) | B(WT_RECOVERIES),
			 B(WT_VERSION) | B(WT_REGIONS) | B(WT_MEMBERS) | B(WT_RECOVERIES),
			 0, 0},
	[WIRE_PROC] = {true,
		       B(WT_ENTRY) | B(WT_PID) | B(WT_STATE) | B(WT_SLOTS) |
			       B(WT_STATS) | B(WT_WATCHED),
		       B(WT_ENTRY) | B(WT_PID) | B(WT_STATE) | B(WT_SLOTS) |
			       B(WT_STATS) | B(WT_WATCHED),
		       0, 0},
	[WIRE_END] = {true, 0, B(WT_RECOVERIES) | B(WT_MEMBERS), 0, 0},
	[WIRE_GRANT] = {true, B(WT_WRITE) | B(WT_PATH), B(WT_WRITE) | B(WT_PATH), 1,
			WIRE_MAX_FDS},
	[WIRE_FLUSHER] = {true, 0, 0, 0, 0},
};

enum wire_kind wire_tag_kind(int tag, size_t *bytes)
{
	if (tag <= 0 || tag >= WT_COUNT)
		return WK_NONE;
	*bytes = tags[tag].bytes;
	return (enum wire_kind)tags[tag].kind;
}

const char *wire_strerror(int e)
{
	switch (e) {
	case 0: return "ok";
	case WIRE_ESHORT: return "message shorter than its header";
	case WIRE_EMAGIC: return "not a pstmd message (bad magic)";
	case WIRE_EVERSION: return "unsupported protocol version";
	case WIRE_ELENGTH: return "length field does not match the message";
	case WIRE_EBIG: return "message too long";
	case WIRE_ETYPE: return "unknown message type";
	case WIRE_ETAG: return "unknown field, or one this message does not take";
	case WIRE_EFIELD: return "field runs past the end or has the wrong size";
	case WIRE_EDUP: return "field given twice";
	case WIRE_EMISSING: return "required field missing";
	case WIRE_ESTRING: return "string field empty, unterminated or with a NUL inside";
	case WIRE_EFDS: return "wrong number of file descriptors for this message";
	case WIRE_EMANY: return "too many fields";
	}
	return "unknown protocol error";
}

/* ------------------------------------------------------------ parser */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

int wire_parse(const void *buf, size_t n, int nfds, struct wire_msg *m)
{
	const uint8_t *p = buf;
	size_t at = WIRE_HDR_BYTES;
	unsigned fields = 0;

	memset(m, 0, sizeof(*m));
	if (n < WIRE_HDR_BYTES)
		return WIRE_ESHORT;
	if (get32(p) != WIRE_MAGIC)
		return WIRE_EMAGIC;
	if (get16(p + 4) != WIRE_VERSION)
		return WIRE_EVERSION;
	if (n > WIRE_MAX_BYTES)
		return WIRE_EBIG;
	if (get32(p + 8) != n)
		return WIRE_ELENGTH;
	uint16_t type = get16(p + 6);
	if (type > WIRE_TYPE_LAST || !types[type].known)
		return WIRE_ETYPE;
	m->type = type;
	m->id = get32(p + 12);
	while (at < n) {
		if (n - at < 4)
			return WIRE_EFIELD;
		uint16_t tag = get16(p + at), len = get16(p + at + 2);
		at += 4;
		if (len > n - at)
			return WIRE_EFIELD;
		if (++fields > WIRE_MAX_FIELDS)
			return WIRE_EMANY;
		if (tag >= WT_COUNT || tags[tag].kind == K_NONE ||
		    !(types[type].allow & B(tag)))
			return WIRE_ETAG;
		if (m->has & B(tag))
			return WIRE_EDUP;
		const uint8_t *v = p + at;
		switch (tags[tag].kind) {
		case K_U32:
			if (len != 4)
				return WIRE_EFIELD;
			m->u[tag] = get32(v);
			break;
		case K_U64:
			if (len != 8)
				return WIRE_EFIELD;
			m->u[tag] = get64(v);
			break;
		case K_STR:
			/* one NUL, the last byte: a C string in place */
			if (len < 2 || len > WIRE_MAX_STR || v[len - 1] != 0 ||
			    memchr(v, 0, len - 1u) != NULL)
				return WIRE_ESTRING;
			m->s[tag] = (const char *)v;
			break;
		default: /* K_BYTES */
			if (len != tags[tag].bytes)
				return WIRE_EFIELD;
			m->b[tag] = v;
			break;
		}
		m->has |= B(tag);
		at += len;
	}
	if ((m->has & types[type].need) != types[type].need)
		return WIRE_EMISSING;
	if (nfds < types[type].min_fds || nfds > types[type].max_fds)
		return WIRE_EFDS;
	return 0;
}

/* ----------------------------------------------------------- builder */

static void put(struct wire_buf *w, const void *v, size_t n)
{
	if (w->bad || n > sizeof(w->b) - w->n) {
		w->bad = true;
		return;
	}
	memcpy(w->b + w->n, v, n);
	w->n += n;
}

static void put16(struct wire_buf *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	put(w, b, 2);
}

static void put32(struct wire_buf *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			(uint8_t)(v >> 24)};
	put(w, b, 4);
}

static void put64(struct wire_buf *w, uint64_t v)
{
	put32(w, (uint32_t)v);
	put32(w, (uint32_t)(v >> 32));
}

void wire_begin(struct wire_buf *w, int type, uint32_t id)
{
	w->n = 0;
	w->fields = 0;
	w->bad = false;
	put32(w, WIRE_MAGIC);
	put16(w, WIRE_VERSION);
	put16(w, (uint16_t)type);
	put32(w, 0); /* length, by wire_end */
	put32(w, id);
}

static void field(struct wire_buf *w, int tag, size_t len)
{
	if (len > 0xffff || ++w->fields > WIRE_MAX_FIELDS)
		w->bad = true;
	put16(w, (uint16_t)tag);
	put16(w, (uint16_t)len);
}

void wire_u32(struct wire_buf *w, int tag, uint32_t v)
{
	field(w, tag, 4);
	put32(w, v);
}

void wire_u64(struct wire_buf *w, int tag, uint64_t v)
{
	field(w, tag, 8);
	put64(w, v);
}

void wire_str(struct wire_buf *w, int tag, const char *s)
{
	size_t len = strlen(s) + 1;
	if (len < 2 || len > WIRE_MAX_STR) {
		w->bad = true;
		return;
	}
	field(w, tag, len);
	put(w, s, len);
}

void wire_bytes(struct wire_buf *w, int tag, const void *p, size_t n)
{
	field(w, tag, n);
	put(w, p, n);
}

int wire_end(struct wire_buf *w)
{
	if (w->bad || w->n < WIRE_HDR_BYTES)
		return -1;
	uint32_t n = (uint32_t)w->n;
	uint8_t b[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16),
			(uint8_t)(n >> 24)};
	memcpy(w->b + 8, b, 4);
	return (int)n;
}

/* ---------------------------------------------------------- transport */

int wire_send(int fd, const struct wire_buf *w, const int *fds, int nfds,
	      bool nonblock)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * WIRE_MAX_FDS)];
	} ctl;
	struct iovec iov = {.iov_base = (void *)w->b, .iov_len = w->n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (w->bad || nfds < 0 || nfds > WIRE_MAX_FDS)
		return -EINVAL;
	if (nfds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	for (;;) {
		ssize_t k = sendmsg(fd, &mh, MSG_NOSIGNAL | (nonblock ? MSG_DONTWAIT : 0));
		if (k == (ssize_t)w->n)
			return 0;
		if (k >= 0)
			return -EMSGSIZE; /* a seqpacket record goes whole */
		if (errno != EINTR)
			return -errno;
	}
}

void wire_close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

ssize_t wire_recv(int fd, uint8_t *buf, int *fds, int *nfds, bool nonblock)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * WIRE_MAX_FDS)];
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = WIRE_MAX_BYTES};
	struct msghdr mh;
	ssize_t k;

	*nfds = 0;
	for (;;) {
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | (nonblock ? MSG_DONTWAIT : 0));
		if (k >= 0)
			break;
		if (errno != EINTR)
			return -errno;
	}
	/* whatever descriptors came, take them, so that none leaks */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t bytes = c->cmsg_len - CMSG_LEN(0);
		const unsigned char *d = CMSG_DATA(c);
		for (size_t i = 0; i + sizeof(int) <= bytes; i += sizeof(int)) {
			int got;
			memcpy(&got, d + i, sizeof(int));
			if (*nfds < WIRE_MAX_FDS)
				fds[(*nfds)++] = got;
			else
				close(got);
		}
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		wire_close_fds(fds, *nfds);
		*nfds = 0;
		return -EMSGSIZE;
	}
	return k;
}

int wire_default_socket(char *out, size_t n)
{
	const char *xdg = geteuid() == 0 ? NULL : secure_getenv("XDG_RUNTIME_DIR");
	int w = xdg && *xdg ? snprintf(out, n, "%s/pstmd.sock", xdg)
			    : snprintf(out, n, "%s", WIRE_SYSTEM_SOCKET);
	return w > 0 && (size_t)w < n ? 0 : -1;
}
