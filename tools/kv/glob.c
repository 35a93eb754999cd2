/* glob.c - glob matching for KEYS and SCAN MATCH (see glob.h). */
#include "glob.h"

/*
 * One pattern element at @pat[*pi] against byte @c: 1 match, 0 not; the
 * element's length in *@elen.
 */
static int elem_match(const char *pat, size_t plen, size_t pi, char c,
		      size_t *elen)
{
	if (pat[pi] == '?') {
		*elen = 1;
		return 1;
	}
	if (pat[pi] == '\\' && pi + 1 < plen) {
		*elen = 2;
		return pat[pi + 1] == c;
	}
	if (pat[pi] != '[') {
		*elen = 1;
		return pat[pi] == c;
	}
	size_t i = pi + 1;
	int neg = 0, hit = 0;
	if (i < plen && pat[i] == '^') {
		neg = 1;
		i++;
	}
	for (; i < plen && pat[i] != ']'; i++) {
		if (pat[i] == '\\' && i + 1 < plen) {
			i++;
			hit |= pat[i] == c;
		} else if (i + 2 < plen && pat[i + 1] == '-' && pat[i + 2] != ']') {
			unsigned char lo = (unsigned char)pat[i];
			unsigned char hi = (unsigned char)pat[i + 2];
			unsigned char u = (unsigned char)c;
			if (lo > hi) {
				unsigned char t = lo;
				lo = hi;
				hi = t;
			}
			hit |= u >= lo && u <= hi;
			i += 2;
		} else {
			hit |= pat[i] == c;
		}
	}
	*elen = (i < plen ? i + 1 : i) - pi; /* an unclosed class runs to the end */
	return neg ? !hit : hit;
}

int glob_match(const char *pat, size_t plen, const char *s, size_t slen)
{
	size_t pi = 0, si = 0;
	size_t star_p = (size_t)-1, star_s = 0;
	while (si < slen) {
		size_t elen;
		if (pi < plen && pat[pi] == '*') {
			star_p = ++pi;
			star_s = si;
			continue;
		}
		if (pi < plen && elem_match(pat, plen, pi, s[si], &elen)) {
			pi += elen;
			si++;
			continue;
		}
		if (star_p == (size_t)-1)
			return 0;
		pi = star_p;      /* the last '*' takes one more byte */
		si = ++star_s;
	}
	while (pi < plen && pat[pi] == '*')
		pi++;
	return pi == plen;
}
