/*
 * cli_util.c - small helpers shared by the command-line tools (pstm,
 * pstm-crashtest): error messages in text and JSON, the one number
 * parser, and the command line of the pstm commands that take a URI.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>

#include "cli.h"
#include "emit.h"
#include "error.h"
#include "member.h"
#include "uri.h"
#include "pstm.h"

bool cli_json;

void cli_set_json(bool pretty)
{
	cli_json = true;
	if (pretty)
		emit_set_pretty(true);
}

int cli_usage_error(const char *msg)
{
	fprintf(stderr, "%s: %s (try '%s --help')\n", cli_prog, msg, cli_prog);
	return 2;
}

int cli_usage_errorf(const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cli_usage_error(msg);
}

void cli_json_begin(struct emit *e, const char *uri)
{
	emit_to_file(e, stdout);
	emit_object(e, NULL);
	emit_str(e, "uri", uri);
}

int cli_json_end(struct emit *e, const char *uri)
{
	emit_close(e);
	return e->failed ? cli_fail("cannot print", uri, PSTM_ENOMEM) : 0;
}

static int vfail(const char *what, const char *uri, int rc, const char *fmt,
		 va_list ap)
{
	char msg[512];
	int k = snprintf(msg, sizeof(msg), "%s %s: ", what, uri);
	if (k < 0 || (size_t)k >= sizeof(msg))
		k = 0;
	vsnprintf(msg + k, sizeof(msg) - (size_t)k, fmt, ap);
	fprintf(stderr, "%s: %s\n", cli_prog, msg);
	if (cli_json) {
		struct emit e;
		const char *code = error_name(rc);
		cli_json_begin(&e, uri);
		emit_object(&e, "error");
		emit_str(&e, "code", code ? code : "PSTM_EIO");
		emit_str(&e, "message", msg);
		emit_close(&e);
		emit_close(&e); /* out of memory too: the text above said it */
	}
	return 1;
}

int cli_fail(const char *what, const char *uri, int rc)
{
	return cli_failf(what, uri, rc, "%s", pstm_strerror(rc));
}

int cli_failf(const char *what, const char *uri, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int out = vfail(what, uri, rc, fmt, ap);
	va_end(ap);
	return out;
}

/* How a number failed to read. */
enum { NUM_OK, NUM_JUNK, NUM_TOO_LARGE };

static int parse_num(const char *s, unsigned flags, uint64_t *out)
{
	char *end;
	/* strtoull would skip blanks and take a sign: " -5" is 2^64 - 5 */
	if (*s < '0' || *s > '9')
		return NUM_JUNK;
	errno = 0;
	unsigned long long v = strtoull(s, &end, flags & CLI_OCTAL ? 8 : 0);
	if (errno == ERANGE)
		return NUM_TOO_LARGE;
	if (errno || end == s)
		return NUM_JUNK;
	unsigned shift = 0;
	if (flags & CLI_UNITS) {
		switch (*end) {
		case 'k': case 'K': shift = 10; end++; break;
		case 'm': case 'M': shift = 20; end++; break;
		case 'g': case 'G': shift = 30; end++; break;
		case 't': case 'T': shift = 40; end++; break;
		default: break;
		}
		if (shift && *end == 'i')
			end++;
		if (*end == 'B')
			end++;
	}
	if (*end)
		return NUM_JUNK;
	if (shift && v > (~0ull >> shift))
		return NUM_TOO_LARGE; /* it would wrap around */
	*out = v << shift;
	return NUM_OK;
}

int cli_parse_u64(const char *s, unsigned flags, uint64_t lo, uint64_t hi,
		  uint64_t *out)
{
	uint64_t v;
	if (parse_num(s, flags, &v) != NUM_OK || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* A limit as the option reads it: a size, an octal mode, a number. */
static const char *limit(const struct cli_num *n, uint64_t v, char out[EMIT_SIZE_LEN])
{
	if (n->flags & CLI_UNITS)
		return emit_size(out, v);
	snprintf(out, EMIT_SIZE_LEN, n->flags & CLI_OCTAL ? "0%llo" : "%llu",
		 (unsigned long long)v);
	return out;
}

int cli_parse_option(const struct cli_num *n, const char *arg, uint64_t *out)
{
	char l[EMIT_SIZE_LEN];
	uint64_t v;
	switch (parse_num(arg, n->flags, &v)) {
	case NUM_JUNK:
		return cli_usage_errorf("%s %s: %s", n->name, arg,
					n->flags & CLI_UNITS ? "not a size (a number with "
					"an optional K, M, G or T: powers of 1024)"
					: n->flags & CLI_OCTAL ? "not an octal mode"
							       : "not a number");
	case NUM_TOO_LARGE:
		return cli_usage_errorf("%s %s: too large (at most %s)", n->name, arg,
					limit(n, n->hi, l));
	default:
		break;
	}
	if (v > n->hi)
		return cli_usage_errorf("%s %s: at most %s", n->name, arg,
					limit(n, n->hi, l));
	if (v < n->lo)
		return cli_usage_errorf("%s %s: at least %s", n->name, arg,
					limit(n, n->lo, l));
	*out = v;
	return 0;
}

int cli_opts(int argc, char **argv, const char *help, bool *json)
{
	static const struct option lo[] = {{"json", no_argument, 0, 'j'},
					   {"pretty", no_argument, 0, 'P'},
					   {"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	int c;

	/* without @json, --json is no option at all: getopt refuses it */
	while ((c = getopt_long(argc, argv, json ? "jh" : "h", json ? lo : lo + 2,
				NULL)) != -1) {
		if (c == 'j' || c == 'P') {
			*json = true;
			cli_set_json(c == 'P');
		} else if (c == 'h') {
			fputs(help, stdout);
			return 0;
		} else {
			return 2; /* getopt said why */
		}
	}
	return -1;
}

int cli_uri_args(int argc, char **argv, const char *cmd, const char *help,
		 bool *json, const char **uri)
{
	int rc = cli_opts(argc, argv, help, json);
	if (rc >= 0)
		return rc;
	if (optind != argc - 1) {
		char msg[64];
		snprintf(msg, sizeof(msg), "%s needs exactly one URI", cmd);
		return cli_usage_error(msg);
	}
	*uri = argv[optind];
	return -1;
}

int cli_ask_pstmd(const char *uri, struct member_procs *mp)
{
	const char *off = getenv("PSTM_DAEMON");
	if (off && (!strcmp(off, "off") || !strcmp(off, "0") || !strcmp(off, "no")))
		return PSTM_ENOENT;
	char path[PATH_MAX];
	bool is_shm;
	if (uri_parse(uri, path, sizeof(path), &is_shm) != 0)
		return PSTM_ENOENT;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return PSTM_ENOENT;
	int rc = member_procs(fd, mp);
	close(fd);
	return rc;
}
