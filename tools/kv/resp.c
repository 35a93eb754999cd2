/*
 * resp.c - the RESP2 request parser and reply encoders.  The parser never
 * trusts a length before checking it against the RESP_MAX_* limits, and
 * never reads past the bytes it was given.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

void buf_free(struct kv_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->overflow = 0;
}

int buf_reserve(struct kv_buf *b, size_t n)
{
	if (b->overflow)
		return -1;
	if (b->limit && (n > b->limit || b->len > b->limit - n)) {
		b->overflow = 1;
		return -1;
	}
	if (b->cap - b->len >= n)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < n)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->overflow = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void buf_append(struct kv_buf *b, const void *src, size_t n)
{
	if (n == 0 || buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void line(struct kv_buf *b, char type, const char *s, size_t n)
{
	if (buf_reserve(b, n + 3))
		return;
	b->p[b->len++] = type;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len++] = '\r';
	b->p[b->len++] = '\n';
}

static void number(struct kv_buf *b, char type, long long v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof tmp, "%lld", v);
	line(b, type, tmp, (size_t)n);
}

void reply_status(struct kv_buf *b, const char *s) { line(b, '+', s, strlen(s)); }
void reply_error(struct kv_buf *b, const char *s) { line(b, '-', s, strlen(s)); }
void reply_int(struct kv_buf *b, long long v) { number(b, ':', v); }
void reply_array(struct kv_buf *b, long long n) { number(b, '*', n); }
void reply_nil(struct kv_buf *b) { buf_append(b, "$-1\r\n", 5); }

void reply_bulk(struct kv_buf *b, const void *p, size_t n)
{
	number(b, '$', (long long)n);
	buf_append(b, p, n);
	buf_append(b, "\r\n", 2);
}

/* ------------------------------------------------------------ parser */

int resp_parse_ll(const char *s, size_t n, long long *out)
{
	size_t i = 0;
	int neg = 0;
	unsigned long long v = 0;
	if (n == 0 || n > 20)
		return -1;
	if (s[0] == '-') {
		neg = 1;
		if (++i == n)
			return -1;
	}
	if (s[i] == '0' && n > i + 1)  /* no leading zeros, as Redis */
		return -1;
	if (neg && s[i] == '0')        /* no "-0" */
		return -1;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (neg) {
		if (v > (unsigned long long)LLONG_MAX + 1)
			return -1;
		*out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN
							     : -(long long)v;
	} else {
		if (v > (unsigned long long)LLONG_MAX)
			return -1;
		*out = (long long)v;
	}
	return 0;
}

void resp_init(struct resp_parser *p)
{
	memset(p, 0, sizeof *p);
	p->want = -1;
	p->bulk = -1;
}

void resp_reset(struct resp_parser *p)
{
	/* a parser that once held a huge request gives the memory back */
	if (p->argcap > 1024) {
		free(p->argv);
		p->argv = NULL;
		p->argcap = 0;
	}
	p->pos = 0;
	p->want = -1;
	p->bulk = -1;
	p->argc = 0;
	p->is_inline = 0;
}

void resp_free(struct resp_parser *p)
{
	free(p->argv);
	resp_init(p);
}

static int push_arg(struct resp_parser *p, size_t off, size_t len)
{
	if (p->argc == p->argcap) {
		size_t cap = p->argcap ? p->argcap * 2 : 16;
		struct resp_arg *a = realloc(p->argv, cap * sizeof *a);
		if (!a)
			return -1;
		p->argv = a;
		p->argcap = cap;
	}
	p->argv[p->argc].off = off;
	p->argv[p->argc].len = len;
	p->argc++;
	return 0;
}

/*
 * A "<type><integer>\r\n" line at p->pos: 1 and *v, 0 incomplete, -1
 * malformed (no CRLF within RESP_MAX_LENLINE bytes, not a number).
 */
static int len_line(const char *buf, size_t len, size_t pos, long long *v,
		    size_t *end)
{
	size_t max = len - pos < RESP_MAX_LENLINE ? len - pos : RESP_MAX_LENLINE;
	const char *nl = memchr(buf + pos, '\n', max);
	if (!nl)
		return len - pos >= RESP_MAX_LENLINE ? -1 : 0;
	size_t e = (size_t)(nl - buf);
	if (e < pos + 2 || buf[e - 1] != '\r')
		return -1;
	if (resp_parse_ll(buf + pos + 1, e - 1 - (pos + 1), v))
		return -1;
	*end = e + 1;
	return 1;
}

static int parse_inline(struct resp_parser *p, const char *buf, size_t len,
			const char **err)
{
	size_t max = len < RESP_MAX_INLINE ? len : RESP_MAX_INLINE;
	const char *nl = memchr(buf, '\n', max);
	if (!nl) {
		if (len >= RESP_MAX_INLINE) {
			*err = "too big inline request";
			return RESP_ERROR;
		}
		return RESP_MORE;
	}
	size_t end = (size_t)(nl - buf);
	size_t stop = end > 0 && buf[end - 1] == '\r' ? end - 1 : end;
	p->argc = 0;
	for (size_t i = 0; i < stop;) {
		while (i < stop && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		size_t s = i;
		while (i < stop && buf[i] != ' ' && buf[i] != '\t')
			i++;
		if (i > s && push_arg(p, s, i - s)) {
			*err = "out of memory";
			return RESP_ERROR;
		}
	}
	p->pos = end + 1;
	return p->argc ? RESP_DONE : RESP_EMPTY;
}

int resp_parse(struct resp_parser *p, const char *buf, size_t len,
	       const char **err)
{
	long long v;
	size_t end;
	int rc;

	if (len == 0)
		return RESP_MORE;
	if (p->want < 0) {
		if (buf[0] != '*') {
			p->is_inline = 1;
			return parse_inline(p, buf, len, err);
		}
		rc = len_line(buf, len, 0, &v, &end);
		if (rc == 0)
			return RESP_MORE;
		if (rc < 0 || v < -1 || v > RESP_MAX_ARGS) {
			*err = "invalid multibulk length";
			return RESP_ERROR;
		}
		p->pos = end;
		if (v <= 0) /* "*0", "*-1": nothing to do, as Redis */
			return RESP_EMPTY;
		p->want = v;
	}
	while ((long long)p->argc < p->want) {
		if (p->bulk < 0) {
			if (p->pos >= len)
				return RESP_MORE;
			if (buf[p->pos] != '$') {
				*err = "expected '$'";
				return RESP_ERROR;
			}
			rc = len_line(buf, len, p->pos, &v, &end);
			if (rc == 0)
				return RESP_MORE;
			if (rc < 0 || v < 0 || v > (long long)RESP_MAX_BULK) {
				*err = "invalid bulk length";
				return RESP_ERROR;
			}
			p->bulk = v;
			p->pos = end;
		}
		size_t n = (size_t)p->bulk;
		if (len - p->pos < n + 2)
			return RESP_MORE;
		if (buf[p->pos + n] != '\r' || buf[p->pos + n + 1] != '\n') {
			*err = "bulk not followed by CRLF";
			return RESP_ERROR;
		}
		if (push_arg(p, p->pos, n)) {
			*err = "out of memory";
			return RESP_ERROR;
		}
		p->pos += n + 2;
		p->bulk = -1;
	}
	return RESP_DONE;
}
