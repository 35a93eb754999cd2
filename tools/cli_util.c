/*
 * cli_util.c - small helpers shared by the command-line tools (pstm,
 * pstm-crashtest): error messages, the one number parser, and the command
 * line of the pstm commands that take a URI.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"
#include "pstm.h"

int cli_usage_error(const char *msg)
{
	fprintf(stderr, "%s: %s (try '%s --help')\n", cli_prog, msg, cli_prog);
	return 2;
}

int cli_fail(const char *what, const char *uri, int rc)
{
	fprintf(stderr, "%s: %s %s: %s\n", cli_prog, what, uri, pstm_strerror(rc));
	return 1;
}

int cli_parse_u64(const char *s, unsigned flags, uint64_t lo, uint64_t hi,
		  uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, flags & CLI_OCTAL ? 8 : 0);
	if (errno || end == s || s[0] == '-')
		return -1;
	unsigned shift = 0;
	if (flags & CLI_UNITS) {
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
	v <<= shift;
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int cli_uri_args(int argc, char **argv, const char *cmd, const char *help,
		 bool *json, const char **uri)
{
	static const struct option lo[] = {{"json", no_argument, 0, 'j'},
					   {"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	int c;

	/* without @json, --json is no option at all: getopt refuses it */
	while ((c = getopt_long(argc, argv, json ? "jh" : "h", json ? lo : lo + 1,
				NULL)) != -1) {
		if (c == 'j') {
			*json = true;
		} else if (c == 'h') {
			fputs(help, stdout);
			return 0;
		} else {
			return 2; /* getopt said why */
		}
	}
	if (optind != argc - 1) {
		char msg[64];
		snprintf(msg, sizeof(msg), "%s needs exactly one URI", cmd);
		return cli_usage_error(msg);
	}
	*uri = argv[optind];
	return -1;
}
