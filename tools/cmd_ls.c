/*
 * cmd_ls.c - pstm ls (the regions in a directory and in /dev/shm, the
 * companions in /dev/shm and whose they are) and pstm gc (remove the
 * companions whose region is gone and that no process uses).  Both read
 * regions and companions without opening or attaching (lib/inventory.c).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "emit.h"
#include "inventory.h"
#include "pstm.h"

#define SHM_DIR "/dev/shm"

static const char ls_help[] =
	"usage: pstm ls [--json|--pretty] [DIR]\n"
	"List the regions in DIR (default .) and in /dev/shm, without opening\n"
	"them: durability, size, processes attached, companions; then the\n"
	"companions in /dev/shm (runtime segments, working copies), each with\n"
	"its region and its state: in use (live processes in its table),\n"
	"kept (its region is there) or orphan (region gone, nobody uses it:\n"
	"'pstm gc' removes it).\n";

static const char gc_help[] =
	"usage: pstm gc [--dry-run] [--json|--pretty]\n"
	"Remove the companions in /dev/shm whose region is gone (no file at\n"
	"the path it was last opened by, or another file there) and that no\n"
	"live process uses.  --dry-run: only say which.\n";

static const char *kind_name(enum companion_kind k)
{
	return k == COMPANION_RUNTIME ? "runtime" : "working copy";
}

static const char *state_name(const struct inv_companion *c)
{
	return c->procs ? "in use" : c->region_present ? "kept" : "orphan";
}

/* the URI a listed region is opened by */
static void region_uri(const struct inv_region *g, char *out, size_t n)
{
	const char *base = strrchr(g->path, '/');
	if (g->is_shm && base && !strncmp(g->path, SHM_DIR "/", sizeof(SHM_DIR)))
		snprintf(out, n, "shm:%s", base + 1);
	else
		snprintf(out, n, "%s", g->path);
}

/* ------------------------------------------------------------ the JSON */

static void emit_region(struct emit *e, const struct inv_region *g)
{
	char uri[PATH_MAX + 8];
	region_uri(g, uri, sizeof(uri));
	emit_object(e, NULL);
	emit_str(e, "uri", uri);
	emit_str(e, "path", g->path);
	emit_str(e, "uuid", g->uuid);
	if (g->error) {
		emit_str(e, "error", pstm_strerror(g->error));
	} else {
		emit_str(e, "durability", g->durability);
		emit_u64(e, "size_bytes", g->size_bytes);
		emit_u64(e, "processes", g->procs);
		emit_bool(e, "runtime_found", g->runtime_found);
	}
	if (g->is_shm) {
		emit_str(e, "runtime", "inside");
	} else {
		if (g->rt[0] && g->rt_exists)
			emit_str(e, "runtime", g->rt);
		else
			emit_null(e, "runtime");
		if (g->wc[0] && g->wc_exists)
			emit_str(e, "working_copy", g->wc);
		else
			emit_null(e, "working_copy");
	}
	emit_close(e);
}

static void emit_companion(struct emit *e, const struct inv_companion *c)
{
	emit_object(e, NULL);
	emit_str(e, "path", c->path);
	emit_str(e, "kind", c->kind == COMPANION_RUNTIME ? "runtime" : "working_copy");
	emit_str(e, "uuid", c->uuid);
	emit_u64(e, "size_bytes", c->size_bytes);
	if (c->region[0])
		emit_str(e, "region", c->region);
	else
		emit_null(e, "region");
	emit_bool(e, "region_present", c->region_present);
	emit_u64(e, "processes", c->procs);
	emit_str(e, "state", state_name(c));
	emit_bool(e, "legacy", c->legacy);
	emit_close(e);
}

/* ------------------------------------------------------------ the text */

static void print_regions(const char *dir, const struct inv_region *v, size_t n)
{
	char uri[PATH_MAX + 8];
	int w = 6;
	for (size_t i = 0; i < n; i++) {
		region_uri(&v[i], uri, sizeof(uri));
		if ((int)strlen(uri) > w)
			w = (int)strlen(uri);
	}
	printf("regions in %s: %zu\n", dir, n);
	if (n)
		printf("  %-*s  %-10s %12s %5s  %s\n", w, "REGION", "DURABILITY",
		       "BYTES", "PROCS", "COMPANIONS");
	for (size_t i = 0; i < n; i++) {
		const struct inv_region *g = &v[i];
		region_uri(g, uri, sizeof(uri));
		if (g->error) {
			printf("  %-*s  unreadable: %s\n", w, uri, pstm_strerror(g->error));
			continue;
		}
		const char *comp = g->is_shm ? "runtime inside"
				   : g->rt_exists && g->wc_exists ? "runtime, working copy"
				   : g->rt_exists ? "runtime"
				   : g->wc_exists ? "working copy (no runtime)"
						  : "none (the next open builds them)";
		printf("  %-*s  %-10s %12llu %5u  %s\n", w, uri, g->durability,
		       (unsigned long long)g->size_bytes, g->procs, comp);
	}
}

static void print_companion(const char *prefix, const struct inv_companion *c)
{
	char region[PATH_MAX + 32];
	if (c->region[0])
		snprintf(region, sizeof(region), "%s%s", c->region,
			 c->region_present ? "" : " (gone)");
	else
		snprintf(region, sizeof(region), "%s", c->legacy
				 ? "unknown (named by the uuid alone)"
				 : "unknown");
	printf("%s%s  %s, %llu bytes, %u process%s, %s; region %s\n", prefix,
	       c->path, kind_name(c->kind), (unsigned long long)c->size_bytes,
	       c->procs, c->procs == 1 ? "" : "es", state_name(c), region);
}

/* ------------------------------------------------------------ commands */

int cmd_ls(int argc, char **argv)
{
	struct inv_region *rv[2] = {NULL, NULL};
	size_t rn[2] = {0, 0};
	struct inv_companion *cv = NULL;
	size_t cn = 0;
	char real[PATH_MAX];
	bool json = false;

	int rc = cli_opts(argc, argv, ls_help, &json);
	if (rc >= 0)
		return rc;
	if (argc - optind > 1)
		return cli_usage_error("ls takes at most one directory");
	const char *dir = optind < argc ? argv[optind] : ".";
	/* /dev/shm is listed anyway: not twice */
	bool dir_is_shm = realpath(dir, real) && !strcmp(real, SHM_DIR);
	rc = inventory_regions(dir, &rv[0], &rn[0]);
	if (rc) /* with --json, the error document names DIR as its uri */
		return cli_fail("cannot list", dir, rc);
	if (!dir_is_shm)
		(void)inventory_regions(SHM_DIR, &rv[1], &rn[1]);
	rc = inventory_companions(&cv, &cn);
	if (json) {
		struct emit e;
		emit_to_file(&e, stdout);
		emit_object(&e, NULL);
		emit_str(&e, "dir", dir);
		emit_array(&e, "regions");
		for (int k = 0; k < 2; k++)
			for (size_t i = 0; i < rn[k]; i++)
				emit_region(&e, &rv[k][i]);
		emit_close(&e);
		emit_array(&e, "companions");
		for (size_t i = 0; i < cn; i++)
			emit_companion(&e, &cv[i]);
		emit_close(&e);
		emit_close(&e);
	} else {
		print_regions(dir, rv[0], rn[0]);
		if (!dir_is_shm)
			print_regions(SHM_DIR, rv[1], rn[1]);
		printf("companions in " SHM_DIR ": %zu\n", cn);
		for (size_t i = 0; i < cn; i++)
			print_companion("  ", &cv[i]);
	}
	free(rv[0]);
	free(rv[1]);
	free(cv);
	if (rc)
		return cli_fail("cannot list the companions in", SHM_DIR, rc);
	return 0;
}

int cmd_gc(int argc, char **argv)
{
	static const struct option lo[] = {{"dry-run", no_argument, 0, 'n'},
					   {"json", no_argument, 0, 'j'},
					   {"pretty", no_argument, 0, 'P'},
					   {"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	struct inv_companion *v;
	size_t n, kept;
	bool json = false, dry = false;
	int c;

	while ((c = getopt_long(argc, argv, "nh", lo, NULL)) != -1) {
		if (c == 'h') {
			fputs(gc_help, stdout);
			return 0;
		}
		if (c == 'j' || c == 'P') {
			json = true;
			cli_set_json(c == 'P');
		} else if (c == 'n') {
			dry = true;
		} else {
			return 2; /* getopt said why */
		}
	}
	if (optind != argc)
		return cli_usage_error("gc takes no arguments");
	int rc = inventory_gc(dry, &v, &n, &kept);
	if (rc)
		return cli_fail("cannot collect the companions in", SHM_DIR, rc);
	uint64_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += v[i].size_bytes;
	if (json) {
		struct emit e;
		emit_to_file(&e, stdout);
		emit_object(&e, NULL);
		emit_bool(&e, "dry_run", dry);
		emit_array(&e, "removed");
		for (size_t i = 0; i < n; i++)
			emit_companion(&e, &v[i]);
		emit_close(&e);
		emit_u64(&e, "removed_bytes", bytes);
		emit_u64(&e, "kept", kept);
		emit_close(&e);
	} else {
		for (size_t i = 0; i < n; i++)
			print_companion(dry ? "would remove " : "removed ", &v[i]);
		printf("gc: %s %zu companion%s (%llu bytes), kept %zu\n",
		       dry ? "would remove" : "removed", n, n == 1 ? "" : "s",
		       (unsigned long long)bytes, kept);
	}
	free(v);
	return 0;
}
