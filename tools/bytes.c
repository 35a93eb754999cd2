/*
 * bytes.c - how pstm dump writes byte strings in JSON and pstm load reads
 * them back: valid UTF-8 text (without NUL) as a string, anything else
 * as RFC 4648 base64.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"

/*
 * Whether @n bytes are text for JSON: well-formed UTF-8 (no overlong
 * forms, no surrogates, nothing above U+10FFFF) without a NUL.  NUL is
 * valid UTF-8 but goes to base64: it is where C strings, shells and many
 * JSON readers cut a string short.
 */
bool bytes_are_text(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = p[i];
		size_t len;
		unsigned lo = 0x80, hi = 0xbf; /* the range of the second byte */
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			if (c == 0xe0)
				lo = 0xa0; /* overlong below U+0800 */
			else if (c == 0xed)
				hi = 0x9f; /* U+D800..U+DFFF: surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			if (c == 0xf0)
				lo = 0x90; /* overlong below U+10000 */
			else if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else {
			return false; /* 0x80..0xc1, 0xf5..0xff: never a lead byte */
		}
		if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t j = 2; j < len; j++)
			if (p[i + j] < 0x80 || p[i + j] > 0xbf)
				return false;
		i += len;
	}
	return true;
}

/* RFC 4648 base64 of @n bytes, '=' padded, into @dst (4 * ((n + 2) / 3) + 1
 * bytes, NUL-terminated). */
void b64_encode(char *dst, const unsigned char *p, size_t n)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i = 0;
	for (; n - i >= 3; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*dst++ = b64[v >> 18];
		*dst++ = b64[v >> 12 & 63];
		*dst++ = b64[v >> 6 & 63];
		*dst++ = b64[v & 63];
	}
	if (n - i) {
		uint32_t v = (uint32_t)p[i] << 16 | (n - i > 1 ? (uint32_t)p[i + 1] << 8 : 0);
		*dst++ = b64[v >> 18];
		*dst++ = b64[v >> 12 & 63];
		*dst++ = n - i > 1 ? b64[v >> 6 & 63] : '=';
		*dst++ = '=';
	}
	*dst = 0;
}

/* The value of an RFC 4648 base64 character, -1 for any other. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* RFC 4648 base64 of @n characters of @s: padded with '=' to a multiple
 * of four, no blanks, unused bits zero.  *out (malloc'd, *len bytes) or
 * -1 with the reason in @why. */
int b64_decode(const char *s, size_t n, unsigned char **out, size_t *len,
	       char *why, size_t whylen)
{
	if (n % 4) {
		snprintf(why, whylen, "not base64: %zu characters, not a multiple of 4", n);
		return -1;
	}
	size_t pad = n && s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
	size_t total = n / 4 * 3 - pad;
	unsigned char *p = malloc(total ? total : 1);
	if (!p) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;
		for (size_t j = 0; j < 4; j++) {
			unsigned char c = (unsigned char)s[i + j];
			int d = b64_value(c);
			if (d < 0 && !(c == '=' && i + j >= n - pad)) {
				free(p);
				if (c == '=')
					snprintf(why, whylen, "not base64: '=' at character %zu, "
						 "before the end", i + j);
				else if (c >= 0x20 && c < 0x7f)
					snprintf(why, whylen, "not base64: '%c' at character %zu",
						 c, i + j);
				else
					snprintf(why, whylen, "not base64: byte 0x%02x at character %zu",
						 c, i + j);
				return -1;
			}
			v = v << 6 | (uint32_t)(d < 0 ? 0 : d);
		}
		unsigned char three[3] = {(unsigned char)(v >> 16), (unsigned char)(v >> 8),
					  (unsigned char)v};
		size_t take = i + 4 < n ? 3 : 3 - pad;
		if ((pad == 1 && i + 4 == n && three[2]) ||
		    (pad == 2 && i + 4 == n && (three[1] || three[2]))) {
			free(p);
			snprintf(why, whylen, "not base64: bits set after the last byte");
			return -1;
		}
		memcpy(p + k, three, take);
		k += take;
	}
	*out = p;
	*len = total;
	return 0;
}
