/*
 * resp.h - the RESP2 wire format: an incremental request parser that
 * treats every byte as hostile (every length is checked against a limit
 * before it is trusted), and the reply encoders.  No sockets, no store.
 */
#ifndef KV_RESP_H
#define KV_RESP_H

#include <stddef.h>
#include <stdint.h>

/* Limits on what one request may be (documented in pstm-kv(1)). */
#define RESP_MAX_BULK (512u * 1024)      /* one argument: 512 KiB */
#define RESP_MAX_ARGS (1024 * 1024)      /* arguments of one request */
#define RESP_MAX_INLINE (64u * 1024)     /* one inline (telnet) line */
#define RESP_MAX_LENLINE 32              /* "*123\r\n", "$45\r\n" */

/* A growable byte buffer with a hard cap: appends past it set overflow. */
struct kv_buf {
	char *p;
	size_t len, cap;
	size_t limit;  /* most bytes it may hold (0: unlimited) */
	int overflow;  /* an append did not fit the limit (or malloc failed) */
};

void buf_free(struct kv_buf *b);
/* room for @n more bytes; 0, or -1 (overflow set) */
int buf_reserve(struct kv_buf *b, size_t n);
void buf_append(struct kv_buf *b, const void *src, size_t n);

/* Reply encoders (RESP2). */
void reply_status(struct kv_buf *b, const char *s);   /* +s */
void reply_error(struct kv_buf *b, const char *s);    /* -s (no CR/LF in s) */
void reply_int(struct kv_buf *b, long long v);        /* :v */
void reply_bulk(struct kv_buf *b, const void *p, size_t n);
void reply_nil(struct kv_buf *b);                     /* $-1 */
void reply_array(struct kv_buf *b, long long n);      /* *n, then n replies */

/* One argument of a parsed request: an offset into the input. */
struct resp_arg {
	size_t off, len;
};

/*
 * The parser's state across reads.  resp_parse looks at the bytes from
 * the start of the current request; it remembers how far it got (pos,
 * the arguments found so far), so a request that arrives a byte at a
 * time is scanned once, not once per read.  Offsets (not pointers) let
 * the caller move or grow the buffer between calls.
 */
struct resp_parser {
	size_t pos;          /* bytes of the request scanned */
	long long want;      /* arguments announced by '*', -1 before it */
	long long bulk;      /* length announced by the pending '$', or -1 */
	size_t argc, argcap;
	struct resp_arg *argv;
	int is_inline;
};

enum resp_result {
	RESP_MORE = 0,   /* incomplete: read more, call again */
	RESP_DONE = 1,   /* a request: argc/argv, pos bytes long */
	RESP_EMPTY = 2,  /* pos bytes of nothing (blank line, "*0"): skip */
	RESP_ERROR = -1, /* protocol error: *err says what; close the client */
};

void resp_init(struct resp_parser *p);
/* after a DONE/EMPTY request was consumed: ready for the next one */
void resp_reset(struct resp_parser *p);
void resp_free(struct resp_parser *p);
int resp_parse(struct resp_parser *p, const char *buf, size_t len,
	       const char **err);

/* strict decimal integer of exactly @n bytes (Redis's string2ll rules) */
int resp_parse_ll(const char *s, size_t n, long long *out);

#endif
