/*
 * cli_util.c - small helpers shared by the command-line tools (pstm,
 * pstm-crashtest): JSON strings and number arguments.
 */
#include <errno.h>
#include <stdlib.h>

#include "cli.h"

void cli_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

int cli_parse_u64(const char *s, uint64_t *out, bool units)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || s[0] == '-')
		return -1;
	unsigned shift = 0;
	if (units) {
		switch (*end) {
		case 'k': case 'K': shift = 10; end++; break;
		case 'm': case 'M': shift = 20; end++; break;
		case 'g': case 'G': shift = 30; end++; break;
		default: break;
		}
		if (shift && *end == 'i')
			end++;
		if (*end == 'B')
			end++;
	}
	if (*end || (shift && v > (~0ull >> shift)))
		return -1; /* trailing junk, or it would overflow */
	*out = (uint64_t)v << shift;
	return 0;
}
