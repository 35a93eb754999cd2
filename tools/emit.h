/*
 * emit.h - how the command-line tools print: JSON built from typed fields
 * (commas, nesting and string escaping done in one place), and the aligned
 * "label   value" lines of their text output.
 */
#ifndef PSTM_EMIT_H
#define PSTM_EMIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EMIT_MAX_DEPTH 8

/*
 * A JSON document being written.  Every value call takes the key it has in
 * the enclosing object; inside an array the key is NULL.  The document is
 * one value (usually emit_object(e, NULL) ... emit_close(e)); closing it
 * ends the line.
 */
struct emit {
	/* where the text goes: a stdio stream (emit_to_file) or a caller's
	 * own writer (emit_to) */
	void (*write)(void *arg, const char *fmt, va_list ap);
	void *arg;
	int depth;                      /* objects and arrays open */
	char closer[EMIT_MAX_DEPTH];    /* '}' or ']' for each */
	bool more[EMIT_MAX_DEPTH];      /* it holds a value: the next needs ',' */
};

void emit_to_file(struct emit *e, FILE *f);
void emit_to(struct emit *e, void (*out)(void *arg, const char *fmt, va_list ap),
	     void *arg);

void emit_object(struct emit *e, const char *key);
void emit_array(struct emit *e, const char *key);
void emit_close(struct emit *e);   /* the innermost object or array */

/* a NUL-terminated string (UTF-8 passes through, control bytes \u00XX) */
void emit_str(struct emit *e, const char *key, const char *s);
/* @n bytes as a string: printable ASCII as is, any other byte \u00XX */
void emit_bytes(struct emit *e, const char *key, const void *b, size_t n);
void emit_u64(struct emit *e, const char *key, uint64_t v);
void emit_int(struct emit *e, const char *key, long long v);
void emit_bool(struct emit *e, const char *key, bool v);
void emit_null(struct emit *e, const char *key);
/* a number with @decimals digits after the point */
void emit_fixed(struct emit *e, const char *key, double v, int decimals);

/* Not JSON: @n bytes as a C string literal, \xNN for any byte that is not
 * printable ASCII (pstm dump's text). */
void emit_c_bytes(struct emit *e, const void *b, size_t n);

/*
 * Text: one line to @f: @label padded to @width columns (an indent is part
 * of the label), a space, the printf-style value, a newline.
 */
__attribute__((format(printf, 4, 5)))
void emit_line(FILE *f, int width, const char *label, const char *fmt, ...);

#endif
