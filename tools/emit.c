/*
 * emit.c - the tools' JSON writer (objects, arrays, typed values; commas
 * and escaping) and their aligned text lines.  See emit.h.
 */
#include <assert.h>
#include <string.h>

#include "emit.h"

static void file_write(void *arg, const char *fmt, va_list ap)
{
	vfprintf(arg, fmt, ap);
}

void emit_to(struct emit *e, void (*out)(void *arg, const char *fmt, va_list ap),
	     void *arg)
{
	memset(e, 0, sizeof(*e));
	e->write = out;
	e->arg = arg;
}

void emit_to_file(struct emit *e, FILE *f)
{
	emit_to(e, file_write, f);
}

__attribute__((format(printf, 2, 3)))
static void say(struct emit *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	e->write(e->arg, fmt, ap);
	va_end(ap);
}

/* What comes before a value: the comma after its predecessor, its key.
 * Keys are the tools' own literals: nothing to escape. */
static void lead(struct emit *e, const char *key)
{
	if (e->depth) {
		if (e->more[e->depth - 1])
			say(e, ",");
		e->more[e->depth - 1] = true;
	}
	if (key)
		say(e, "\"%s\":", key);
}

static void begin(struct emit *e, const char *key, char left, char right)
{
	assert(e->depth < EMIT_MAX_DEPTH);
	lead(e, key);
	say(e, "%c", left);
	e->closer[e->depth] = right;
	e->more[e->depth] = false;
	e->depth++;
}

void emit_object(struct emit *e, const char *key)
{
	begin(e, key, '{', '}');
}

void emit_array(struct emit *e, const char *key)
{
	begin(e, key, '[', ']');
}

void emit_close(struct emit *e)
{
	assert(e->depth > 0);
	e->depth--;
	say(e, "%c", e->closer[e->depth]);
	if (!e->depth)
		say(e, "\n");
}

/* How quote() writes what it escapes. */
enum quoting {
	JSON_TEXT,   /* UTF-8 text: control bytes \u00XX, the rest as is */
	JSON_BYTES,  /* binary: any byte not printable ASCII \u00XX */
	C_BYTES,     /* binary, C style: \xNN */
};

/* '"' and '\' always escaped; the other bytes as @q says */
static void quote(struct emit *e, const unsigned char *p, size_t n, enum quoting q)
{
	say(e, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned c = p[i];
		if (c == '"' || c == '\\')
			say(e, "\\%c", c);
		else if (c >= 0x20 && (c < 0x7f || q == JSON_TEXT))
			say(e, "%c", c);
		else if (q == C_BYTES)
			say(e, "\\x%02x", c);
		else
			say(e, "\\u%04x", c);
	}
	say(e, "\"");
}

void emit_str(struct emit *e, const char *key, const char *s)
{
	lead(e, key);
	quote(e, (const unsigned char *)s, strlen(s), JSON_TEXT);
}

void emit_bytes(struct emit *e, const char *key, const void *b, size_t n)
{
	lead(e, key);
	quote(e, b, n, JSON_BYTES);
}

void emit_c_bytes(struct emit *e, const void *b, size_t n)
{
	quote(e, b, n, C_BYTES);
}

void emit_u64(struct emit *e, const char *key, uint64_t v)
{
	lead(e, key);
	say(e, "%llu", (unsigned long long)v);
}

void emit_int(struct emit *e, const char *key, long long v)
{
	lead(e, key);
	say(e, "%lld", v);
}

void emit_bool(struct emit *e, const char *key, bool v)
{
	lead(e, key);
	say(e, "%s", v ? "true" : "false");
}

void emit_null(struct emit *e, const char *key)
{
	lead(e, key);
	say(e, "null");
}

void emit_fixed(struct emit *e, const char *key, double v, int decimals)
{
	lead(e, key);
	say(e, "%.*f", decimals, v);
}

void emit_line(FILE *f, int width, const char *label, const char *fmt, ...)
{
	va_list ap;
	fprintf(f, "%-*s ", width, label);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}
