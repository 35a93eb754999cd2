/*
 * config.c - pstmd's configuration file: one setting per line,
 *
 *	socket = /run/pstm/pstmd.sock
 *	state = /run/pstm/pstmd.regions
 *	directory = /var/lib/pstm
 *	metrics = /run/pstm/pstmd.metrics
 *	max-connections = 256
 *	max-connections-per-uid = 64
 *	idle-timeout-ms = 10000
 *	grant NAME USER|@GROUP|* ro|rw
 *
 * '#' starts a comment.  Anything else (an unknown key, a value out of
 * range, a user that does not exist) is an error naming the line: pstmd
 * does not start on a configuration it does not understand.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pstmd.h"

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static int number(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || end == v || *end || !isdigit((unsigned char)v[0]) || n < lo || n > hi)
		return -1;
	*out = (unsigned)n;
	return 0;
}

static int copy(char *dst, size_t n, const char *v)
{
	if (!*v || strlen(v) >= n)
		return -1;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* "grant NAME WHO MODE" */
static int grant(struct pstmd_config *c, char *rest, char *why, size_t n)
{
	char *name = strtok(rest, " \t"), *who = strtok(NULL, " \t"),
	     *mode = strtok(NULL, " \t");
	struct grant_rule g;
	memset(&g, 0, sizeof(g));
	if (!name || !who || !mode || strtok(NULL, " \t")) {
		snprintf(why, n, "grant takes NAME USER|@GROUP|* ro|rw");
		return -1;
	}
	if (strcmp(name, "*") != 0 && !grant_name_ok(name)) {
		snprintf(why, n, "grant: '%s' is no region name", name);
		return -1;
	}
	snprintf(g.name, sizeof(g.name), "%s", name);
	if (!strcmp(mode, "rw"))
		g.write = true;
	else if (strcmp(mode, "ro") != 0) {
		snprintf(why, n, "grant: mode '%s' is neither ro nor rw", mode);
		return -1;
	}
	if (!strcmp(who, "*")) {
		g.any = true;
	} else if (who[0] == '@') {
		struct group *gr = getgrnam(who + 1);
		unsigned id;
		if (gr)
			g.id = gr->gr_gid;
		else if (number(who + 1, 0, 0xfffffffeu, &id) == 0)
			g.id = id;
		else {
			snprintf(why, n, "grant: no group '%s'", who + 1);
			return -1;
		}
		g.is_group = true;
	} else {
		struct passwd *pw = getpwnam(who);
		unsigned id;
		if (pw)
			g.id = pw->pw_uid;
		else if (number(who, 0, 0xfffffffeu, &id) == 0)
			g.id = id;
		else {
			snprintf(why, n, "grant: no user '%s'", who);
			return -1;
		}
	}
	struct grant_rule *a = realloc(c->grants, (c->ngrants + 1) * sizeof(*a));
	if (!a) {
		snprintf(why, n, "out of memory");
		return -1;
	}
	a[c->ngrants++] = g;
	c->grants = a;
	return 0;
}

static int bad(char *why, size_t n, const char *msg)
{
	snprintf(why, n, "%s", msg);
	return -1;
}

static int setting(struct pstmd_config *c, const char *key, char *v, char *why,
		   size_t n)
{
	if (!strcmp(key, "socket"))
		return copy(c->socket, sizeof(c->socket), v) ? bad(why, n, "socket: empty or too long") : 0;
	if (!strcmp(key, "state"))
		return copy(c->state, sizeof(c->state), v) ? bad(why, n, "state: empty or too long") : 0;
	if (!strcmp(key, "directory"))
		return v[0] != '/' || copy(c->directory, sizeof(c->directory), v)
			       ? bad(why, n, "directory: must be an absolute path")
			       : 0;
	if (!strcmp(key, "metrics"))
		return copy(c->metrics, sizeof(c->metrics), v) ? bad(why, n, "metrics: empty or too long") : 0;
	if (!strcmp(key, "max-connections"))
		return number(v, 1, 65536, &c->max_conns) ? bad(why, n, "max-connections: 1..65536") : 0;
	if (!strcmp(key, "max-connections-per-uid"))
		return number(v, 1, 65536, &c->max_conns_per_uid)
			       ? bad(why, n, "max-connections-per-uid: 1..65536")
			       : 0;
	if (!strcmp(key, "idle-timeout-ms"))
		return number(v, 10, 3600000, &c->idle_ms) ? bad(why, n, "idle-timeout-ms: 10..3600000") : 0;
	snprintf(why, n, "unknown setting '%s'", key);
	return -1;
}

int config_load(struct pstmd_config *c, const char *path, char *err, size_t n)
{
	char line[PATH_MAX + 64], why[256];
	unsigned no = 0;
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, n, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		no++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, n, "%s:%u: line too long", path, no);
			goto fail;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *s = trim(line);
		if (!*s)
			continue;
		int rc;
		if (!strncmp(s, "grant", 5) && isspace((unsigned char)s[5])) {
			rc = grant(c, s + 6, why, sizeof(why));
		} else {
			char *eq = strchr(s, '=');
			if (!eq) {
				snprintf(err, n, "%s:%u: expected KEY = VALUE or grant ...", path, no);
				goto fail;
			}
			*eq = 0;
			rc = setting(c, trim(s), trim(eq + 1), why, sizeof(why));
		}
		if (rc) {
			snprintf(err, n, "%s:%u: %s", path, no, why);
			goto fail;
		}
	}
	fclose(f);
	return 0;
fail:
	fclose(f);
	return -1;
}

void config_free(struct pstmd_config *c)
{
	free(c->grants);
	c->grants = NULL;
	c->ngrants = 0;
}
