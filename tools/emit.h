/*
 * emit.h - how the command-line tools print: JSON documents built from
 * typed fields on json-c (nesting, escaping and --pretty layout are the
 * library's), human-readable sizes, and the aligned "label   value" lines
 * of their text output.
 */
#ifndef PSTM_EMIT_H
#define PSTM_EMIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EMIT_MAX_DEPTH 8

struct json_object; /* json-c's; only emit.c includes its header */

/*
 * A JSON document being built.  Every value call takes the key it has in
 * the enclosing object; inside an array the key is NULL.  The document is
 * one value (usually emit_object(e, NULL) ... emit_close(e)); closing it
 * writes it, with a newline, and frees it.
 *
 * Every container is linked into the document as soon as it is opened, so
 * a document abandoned half-way (a transaction rolled back from inside a
 * walk) is released whole by emit_free.  When json-c runs out of memory,
 * e->failed is set and closing writes nothing (the calls go on safely):
 * check it after the last close.
 */
struct emit {
	/* where the text goes: a stdio stream (emit_to_file) or a caller's
	 * own writer (emit_to) */
	void (*write)(void *arg, const char *fmt, va_list ap);
	void *arg;
	struct json_object *root;       /* the document; NULL before it */
	struct json_object *open[EMIT_MAX_DEPTH]; /* objects and arrays open */
	int depth;
	bool failed;                    /* out of memory: values were lost */
};

/*
 * The layout of every document written from now on: compact, one line
 * (the default), or indented over several (--pretty).  Process-wide: the
 * running command's option, set while its command line is parsed.
 */
void emit_set_pretty(bool pretty);

void emit_to_file(struct emit *e, FILE *f);
void emit_to(struct emit *e, void (*out)(void *arg, const char *fmt, va_list ap),
	     void *arg);
/* Drop an unfinished document (nothing is written); a no-op after the
 * document was closed or before it was begun. */
void emit_free(struct emit *e);

void emit_object(struct emit *e, const char *key);
void emit_array(struct emit *e, const char *key);
void emit_close(struct emit *e);   /* the innermost object or array */

/* a NUL-terminated UTF-8 string */
void emit_str(struct emit *e, const char *key, const char *s);
/* @n bytes as a string of as many characters, byte b as U+00bb:
 * printable ASCII reads as itself, any other byte as \u00XX or its
 * Latin-1 character (pstm dump's keys and values) */
void emit_bytes(struct emit *e, const char *key, const void *b, size_t n);
void emit_u64(struct emit *e, const char *key, uint64_t v);
void emit_int(struct emit *e, const char *key, long long v);
void emit_bool(struct emit *e, const char *key, bool v);
void emit_null(struct emit *e, const char *key);
/* a number with @decimals digits after the point */
void emit_fixed(struct emit *e, const char *key, double v, int decimals);

/*
 * Not JSON: @n bytes as a C string literal, \xNN for any byte that is not
 * printable ASCII, through @e's writer (pstm dump's text).
 */
void emit_c_bytes(struct emit *e, const void *b, size_t n);

/*
 * Text: @bytes for people, in powers of 1024: "512 B", "64 MiB", "1.5 GiB"
 * (one decimal when not a whole number of the unit).  Returns @out.
 */
enum { EMIT_SIZE_LEN = 24 };
const char *emit_size(char out[EMIT_SIZE_LEN], uint64_t bytes);

/*
 * Text: one line to @f: @label padded to @width columns (an indent is part
 * of the label), a space, the printf-style value, a newline.
 */
__attribute__((format(printf, 4, 5)))
void emit_line(FILE *f, int width, const char *label, const char *fmt, ...);

#endif
