/*
 * bytes.h - byte strings in JSON (tools/bytes.c).
 */
#ifndef PSTM_TOOLS_BYTES_H
#define PSTM_TOOLS_BYTES_H

#include <stdbool.h>
#include <stddef.h>

/* Valid UTF-8 without NUL (overlong forms, surrogates and code points
 * above U+10FFFF are not). */
bool bytes_are_text(const unsigned char *p, size_t n);
/* base64 of @n bytes into @dst (4 * ((n + 2) / 3) + 1 bytes, NUL-ended) */
void b64_encode(char *dst, const unsigned char *p, size_t n);
int b64_decode(const char *s, size_t n, unsigned char **out, size_t *len,
	       char *why, size_t whylen);

#endif
