/*
 * emit.c - the tools' JSON documents on json-c (a tree built value by
 * value, written when its outermost value closes), sizes for people and
 * aligned text lines.  See emit.h.
 */
#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "emit.h"

/* "/" is not escaped (paths read as paths); --pretty indents by two */
static int json_flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;

void emit_set_pretty(bool pretty)
{
	json_flags = JSON_C_TO_STRING_NOSLASHESCAPE |
		     (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
			     : JSON_C_TO_STRING_PLAIN);
}

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

void emit_free(struct emit *e)
{
	json_object_put(e->root); /* NULL-safe */
	e->root = NULL;
	e->depth = 0;
}

__attribute__((format(printf, 2, 3)))
static void say(struct emit *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	e->write(e->arg, fmt, ap);
	va_end(ap);
}

/* Write the finished document, unless values were lost, and free it. */
static void finish(struct emit *e)
{
	size_t n;
	const char *s = e->failed ? NULL
		: json_object_to_json_string_length(e->root, json_flags, &n);
	if (s)
		say(e, "%.*s\n", (int)n, s);
	else
		e->failed = true;
	emit_free(e);
}

/*
 * Link @v (just made: NULL if json-c ran out of memory) into the open
 * container under @key (copied), or make it the document.  Returns
 * whether @v is in.
 */
static bool put(struct emit *e, const char *key, struct json_object *v)
{
	if (!v) {
		e->failed = true;
		return false;
	}
	if (!e->depth) {
		assert(!e->root); /* one value per document */
		e->root = v;
		return true;
	}
	struct json_object *c = e->open[e->depth - 1];
	int rc = json_object_is_type(c, json_type_array)
			 ? json_object_array_add(c, v)
			 : json_object_object_add(c, key, v);
	if (rc) {
		json_object_put(v);
		e->failed = true;
		return false;
	}
	return true;
}

/* A scalar: a document of its own when nothing is open. */
static void value(struct emit *e, const char *key, struct json_object *v)
{
	if (put(e, key, v) && !e->depth)
		finish(e);
}

/*
 * Open an object or array.  One that could not be made still counts as
 * open (as NULL, its values dropped), so that the closes still match.
 */
static void begin(struct emit *e, const char *key, struct json_object *c)
{
	assert(e->depth < EMIT_MAX_DEPTH);
	bool in = !e->depth || e->open[e->depth - 1];
	if (!in)
		json_object_put(c); /* inside a lost container: lost too */
	e->open[e->depth++] = in && put(e, key, c) ? c : NULL;
}

void emit_object(struct emit *e, const char *key)
{
	begin(e, key, json_object_new_object());
}

void emit_array(struct emit *e, const char *key)
{
	begin(e, key, json_object_new_array());
}

void emit_close(struct emit *e)
{
	assert(e->depth > 0);
	e->depth--;
	if (!e->depth && e->root)
		finish(e);
}

/* A value for the open container, unless it was lost to memory. */
static void add(struct emit *e, const char *key, struct json_object *v)
{
	if (e->depth && !e->open[e->depth - 1]) {
		json_object_put(v);
		return;
	}
	value(e, key, v);
}

void emit_str(struct emit *e, const char *key, const char *s)
{
	add(e, key, json_object_new_string(s));
}

void emit_bytes(struct emit *e, const char *key, const void *b, size_t n)
{
	const unsigned char *p = b;
	/* each byte one code point U+0000..U+00FF: UTF-8, two bytes above 0x7f */
	char small[256] = "", *u = n <= sizeof(small) / 2 ? small
				 : n <= INT_MAX / 2 ? malloc(2 * n) : NULL;
	size_t k = 0;
	if (!u) {
		e->failed = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x80) {
			u[k++] = (char)p[i];
		} else {
			u[k++] = (char)(0xc0 | p[i] >> 6);
			u[k++] = (char)(0x80 | (p[i] & 0x3f));
		}
	}
	add(e, key, json_object_new_string_len(u, (int)k));
	if (u != small)
		free(u);
}

void emit_u64(struct emit *e, const char *key, uint64_t v)
{
	add(e, key, json_object_new_uint64(v));
}

void emit_int(struct emit *e, const char *key, long long v)
{
	add(e, key, json_object_new_int64(v));
}

void emit_bool(struct emit *e, const char *key, bool v)
{
	add(e, key, json_object_new_boolean(v));
}

void emit_null(struct emit *e, const char *key)
{
	/* json-c's null is the NULL object: link it by hand */
	if (!e->depth || !e->open[e->depth - 1])
		return;
	struct json_object *c = e->open[e->depth - 1];
	int rc = json_object_is_type(c, json_type_array)
			 ? json_object_array_add(c, NULL)
			 : json_object_object_add(c, key, NULL);
	if (rc)
		e->failed = true;
}

void emit_fixed(struct emit *e, const char *key, double v, int decimals)
{
	char text[64];
	/* the text given is what json-c writes: exactly @decimals digits */
	snprintf(text, sizeof(text), "%.*f", decimals, v);
	add(e, key, json_object_new_double_s(v, text));
}

void emit_c_bytes(struct emit *e, const void *b, size_t n)
{
	const unsigned char *p = b;
	say(e, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned c = p[i];
		if (c == '"' || c == '\\')
			say(e, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			say(e, "%c", c);
		else
			say(e, "\\x%02x", c);
	}
	say(e, "\"");
}

const char *emit_size(char out[EMIT_SIZE_LEN], uint64_t bytes)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	int u = 0;
	while (u < 6 && bytes >= 1024ull << (10 * u))
		u++;
	uint64_t scale = 1ull << (10 * u);
	double v = (double)bytes / (double)scale;
	if (bytes % scale == 0) {
		snprintf(out, EMIT_SIZE_LEN, "%" PRIu64 " %s", bytes / scale, unit[u]);
	} else {
		if (v >= 1023.95 && u < 6) /* would print as 1024.0 */
			v /= 1024, u++;
		snprintf(out, EMIT_SIZE_LEN, "%.1f %s", v, unit[u]);
	}
	return out;
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
