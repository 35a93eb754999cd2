/*
 * wire.h - the pstmd message protocol (lib/wire.c): the message format,
 * the one strict parser that both the library and pstmd use, building
 * messages, and moving them (with file descriptors) over the daemon's
 * unix SOCK_SEQPACKET socket.
 *
 * A message is one seqpacket record:
 *
 *	u32 magic (WIRE_MAGIC)   u16 version (WIRE_VERSION)   u16 type
 *	u32 length (whole record, header included)   u32 id
 *	fields: { u16 tag, u16 len, len bytes } ...
 *
 * little-endian.  A reply carries the id of its request.  Every message
 * type has a schema (which tags it requires and allows, how many file
 * descriptors may come with it); every tag has a kind (u32, u64, a
 * string that ends in its one NUL, or bytes of a fixed size).  The
 * parser refuses anything else: short or long records, a length that is
 * not the record's, unknown types, tags or versions, a field running
 * past the end, duplicates, missing fields, strings with a NUL inside.
 * Nothing read from a socket is trusted before wire_parse has passed it.
 */
#ifndef PSTM_WIRE_H
#define PSTM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#define WIRE_MAGIC 0x44545350u /* "PSTD" */
#define WIRE_VERSION 1
#define WIRE_HDR_BYTES 16
#define WIRE_MAX_BYTES 8192    /* a whole record */
#define WIRE_MAX_STR 4096      /* a string field, its NUL included */
#define WIRE_MAX_FIELDS 24
#define WIRE_MAX_FDS 3         /* with any one message */

enum wire_type {
	/* requests, client -> pstmd */
	WIRE_PING = 1,     /* -> WIRE_STATUS */
	WIRE_REGISTER = 2, /* a process attached to a region; with the
			      region file's fd -> nothing, or WIRE_ERROR
			      (the library does not wait for either) */
	WIRE_PROCS = 3,    /* with the region file's fd -> WIRE_PROC ...
			      WIRE_END, or WIRE_ERROR */
	WIRE_OPEN = 4,     /* a region of pstmd's directory by name ->
			      WIRE_GRANT with its fds, or WIRE_ERROR */
	WIRE_RELEASE = 5,  /* with the region file's fd: let go of it if no
			      process but pstmd is attached, or (WT_ROOM)
			      if its process table is full -> WIRE_OK */
	WIRE_REQ_LAST = 5,
	/* replies, pstmd -> client */
	WIRE_OK = 64,
	WIRE_ERROR = 65,   /* code, text */
	WIRE_STATUS = 66,  /* version, regions, members, recoveries */
	WIRE_PROC = 67,    /* one process of a region */
	WIRE_END = 68,     /* end of a list of WIRE_PROC */
	WIRE_GRANT = 69,   /* fds: region file [, runtime [, working copy]] */
	WIRE_FLUSHER = 70, /* to a member: pstmd flushes this relaxed region */
	WIRE_TYPE_LAST = 70,
};

enum wire_tag {
	WT_PATH = 1,       /* str: a region's URI: shm:NAME or an absolute path */
	WT_FILE_ID,        /* bytes[24]: struct file_id (dev, ino, btime) */
	WT_PROC_IDX,       /* u32: entry in the region's process table */
	WT_PROC_STATE,     /* u64: that entry's state word */
	WT_NAME,           /* str: a region's name in pstmd's directory */
	WT_WRITE,          /* u32: 1 read-write, 0 read-only */
	WT_CODE,           /* u32: a PSTM_E* code (two's complement) */
	WT_TEXT,           /* str: what went wrong, for people */
	WT_PID,            /* u64 */
	WT_STATE,          /* u32: INSPECT_ALIVE, _DEAD, _RECOVERING */
	WT_SLOTS,          /* u32: transaction slots held */
	WT_STATS,          /* bytes[64]: 8 x u64, the ST_* counters */
	WT_WATCHED,        /* u32: 1 if pstmd holds the process's pidfd */
	WT_VERSION,        /* str: pstmd's release */
	WT_REGIONS,        /* u32 */
	WT_MEMBERS,        /* u32 */
	WT_RECOVERIES,     /* u64: dead processes pstmd recovered */
	WT_ENTRY,          /* u32: process table entry of a WIRE_PROC */
	WT_ROOM,           /* u32: RELEASE because the process table is
			      full: let go even with members */
	WT_COUNT
};
_Static_assert(WT_COUNT <= 64, "field presence is a 64-bit mask");

/* The kind of each tag's value: WK_BYTES has a fixed size (*bytes). */
enum wire_kind { WK_NONE, WK_U32, WK_U64, WK_STR, WK_BYTES };
HIDDEN enum wire_kind wire_tag_kind(int tag, size_t *bytes);

/* What wire_parse refuses, as negative codes (wire_strerror). */
enum wire_error {
	WIRE_ESHORT = -1,    /* shorter than a header */
	WIRE_EMAGIC = -2,    /* not a pstmd message */
	WIRE_EVERSION = -3,  /* another protocol version */
	WIRE_ELENGTH = -4,   /* length field is not the record's length */
	WIRE_EBIG = -5,      /* longer than WIRE_MAX_BYTES */
	WIRE_ETYPE = -6,     /* unknown message type */
	WIRE_ETAG = -7,      /* unknown field, or not allowed in this type */
	WIRE_EFIELD = -8,    /* a field runs past the end, or bad size */
	WIRE_EDUP = -9,      /* a field twice */
	WIRE_EMISSING = -10, /* a required field is missing */
	WIRE_ESTRING = -11,  /* empty, unterminated or NUL inside */
	WIRE_EFDS = -12,     /* file descriptors this type does not take */
	WIRE_EMANY = -13,    /* more than WIRE_MAX_FIELDS fields (a guard:
				a repeat is refused first while no type
				takes that many tags) */
};
HIDDEN const char *wire_strerror(int e);

/* A parsed message.  Strings and byte fields point into the buffer that
 * was parsed (strings are NUL-terminated there). */
struct wire_msg {
	uint16_t type;
	uint32_t id;
	uint64_t has;                  /* bit t: field t is present */
	uint64_t u[WT_COUNT];          /* u32 and u64 fields */
	const char *s[WT_COUNT];       /* string fields */
	const uint8_t *b[WT_COUNT];    /* fixed-size byte fields */
};

static inline bool wire_has(const struct wire_msg *m, int tag)
{
	return (m->has >> tag) & 1;
}

/*
 * Parse the record @buf of @n bytes, which came with @nfds file
 * descriptors, into @m: 0, or a WIRE_E* code.  Checks everything listed
 * at the top, the schema of the type included.
 */
HIDDEN int wire_parse(const void *buf, size_t n, int nfds, struct wire_msg *m);

/* Is @type a request (client -> pstmd)? */
static inline bool wire_is_request(int type)
{
	return type >= WIRE_PING && type <= WIRE_REQ_LAST;
}

/* Building a message: begin, add fields, end.  A field that does not fit
 * makes wire_end fail; nothing overflows. */
struct wire_buf {
	uint8_t b[WIRE_MAX_BYTES];
	size_t n;
	unsigned fields;
	bool bad;
};
HIDDEN void wire_begin(struct wire_buf *w, int type, uint32_t id);
HIDDEN void wire_u32(struct wire_buf *w, int tag, uint32_t v);
HIDDEN void wire_u64(struct wire_buf *w, int tag, uint64_t v);
HIDDEN void wire_str(struct wire_buf *w, int tag, const char *s);
HIDDEN void wire_bytes(struct wire_buf *w, int tag, const void *p, size_t n);
/* The record's length, or -1 if something did not fit. */
HIDDEN int wire_end(struct wire_buf *w);

/*
 * Send the finished record @w with @nfds descriptors (SCM_RIGHTS) on the
 * seqpacket socket @fd (MSG_NOSIGNAL; MSG_DONTWAIT if @nonblock).  0, or
 * -errno.
 */
HIDDEN int wire_send(int fd, const struct wire_buf *w, const int *fds, int nfds,
		     bool nonblock);
/*
 * Receive one record into @buf (WIRE_MAX_BYTES) and at most WIRE_MAX_FDS
 * descriptors into @fds (close-on-exec; *nfds how many).  The record's
 * length; 0 at end of file; -EMSGSIZE for a record longer than
 * WIRE_MAX_BYTES or more descriptors than that (those that came are
 * closed); -errno otherwise (-EAGAIN without a record, with @nonblock).
 */
HIDDEN ssize_t wire_recv(int fd, uint8_t *buf, int *fds, int *nfds,
			 bool nonblock);
/* Close the @n descriptors of @fds. */
HIDDEN void wire_close_fds(const int *fds, int n);

/*
 * Where pstmd listens by default: /run/pstm/pstmd.sock for root,
 * $XDG_RUNTIME_DIR/pstmd.sock for anyone else (the system socket if
 * XDG_RUNTIME_DIR is unset).  0, or -1 if it does not fit @n.
 */
HIDDEN int wire_default_socket(char *out, size_t n);
#define WIRE_SYSTEM_SOCKET "/run/pstm/pstmd.sock"

#endif /* PSTM_WIRE_H */
