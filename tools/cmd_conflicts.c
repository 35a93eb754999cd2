/*
 * cmd_conflicts.c - pstm conflicts: where transactions lose time, from
 * the conflict tables every slot keeps in the runtime (format 2
 * regions), read once through a read-only mapping (region_conflicts: no
 * attaching, no recovery) and printed as text or JSON, the conflict that
 * cost most first.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "conflict_report.h"
#include "emit.h"

static const char *side_source[] = {
	[SIDE_UNKNOWN] = "unknown", [SIDE_GIVEN] = "pstm_tx_name",
	[SIDE_SYMBOL] = "symbol",   [SIDE_SYMTAB] = "symbol_table",
	[SIDE_ADDRESS] = "address", [SIDE_UNNAMED] = "unnamed",
};

/* 1234567 -> "1,234,567" */
static const char *grouped(char out[32], uint64_t v)
{
	char d[24];
	int n = snprintf(d, sizeof(d), "%llu", (unsigned long long)v), k = 0;
	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			out[k++] = ',';
		out[k++] = d[i];
	}
	out[k] = 0;
	return out;
}

static const char *duration(char out[32], uint64_t ns)
{
	if (ns >= 1000000000ull)
		snprintf(out, 32, "%.2f s", ns / 1e9);
	else if (ns >= 1000000ull)
		snprintf(out, 32, "%.1f ms", ns / 1e6);
	else
		snprintf(out, 32, "%.1f us", ns / 1e3);
	return out;
}

/* "heap+0x1a40" (from the start of the user heap), "allocator
 * metadata+0x40", or "orec 123" where no word of it was found */
static const char *place_text(char out[64], const struct conflict_report *c,
			      const struct conflict_place *p)
{
	if (!p->off)
		snprintf(out, 64, "orec %llu", (unsigned long long)p->orec);
	else if (p->off >= c->heap_lo)
		snprintf(out, 64, "heap+0x%llx", (unsigned long long)(p->off - c->heap_lo));
	else
		snprintf(out, 64, "allocator metadata+0x%llx",
			 (unsigned long long)(p->off - c->heap_off));
	return out;
}

static void side_text(char out[200], const struct conflict_side *s)
{
	if (s->pid)
		snprintf(out, 200, "%s (pid %llu)", s->name, (unsigned long long)s->pid);
	else
		snprintf(out, 200, "%s", s->name);
}

static void print_text(const char *uri, const struct conflict_report *c)
{
	char a[32], b[32], at[64], mine[200], other[200];
	if (!c->has_tables) {
		printf("%s: no conflict table (format %u)\n", uri, c->format);
		return;
	}
	if (c->runtime == CONFLICTS_RT_MISSING) {
		printf("%s: no runtime (the next open builds it): no conflicts "
		       "recorded\n", uri);
		return;
	}
	if (c->runtime == CONFLICTS_RT_STALE) {
		printf("%s: stale runtime (of another boot or region): no "
		       "conflicts recorded\n", uri);
		return;
	}
	if (!c->nrows)
		printf("%s: no conflicts recorded\n", uri);
	for (uint32_t i = 0; i < c->nrows; i++) {
		const struct conflict_row *r = &c->rows[i];
		side_text(mine, &r->mine);
		side_text(other, &r->other);
		printf("%s lost in %s abort%s: %s vs %s, %s", duration(a, r->lost_ns),
		       grouped(b, r->aborts), r->aborts == 1 ? "" : "s", mine, other,
		       conflict_cause_text(r->cause));
		for (unsigned k = 0; k < r->nplaces; k++)
			printf("%s%s", k ? ", " : ", at ", place_text(at, c, &r->place[k]));
		printf("\n");
	}
	if (c->torn)
		printf("(%u entries were being written and are left out)\n", c->torn);
}

static void json_side(struct emit *e, const char *key, const struct conflict_side *s)
{
	emit_object(e, key);
	if (s->pid)
		emit_u64(e, "pid", s->pid);
	else
		emit_null(e, "pid");
	emit_str(e, "name", s->name);
	emit_str(e, "source", side_source[s->source]);
	if (s->source == SIDE_SYMTAB || s->source == SIDE_ADDRESS) {
		emit_str(e, "module", s->module);
		emit_u64(e, "module_offset", s->addr);
	}
	emit_close(e);
}

static int print_json(const char *uri, const struct conflict_report *c)
{
	static const char *rt[] = {[CONFLICTS_RT_FOUND] = "found",
				   [CONFLICTS_RT_MISSING] = "missing",
				   [CONFLICTS_RT_STALE] = "stale"};
	struct emit e;
	cli_json_begin(&e, uri);
	emit_u64(&e, "format_version", c->format);
	emit_bool(&e, "tables", c->has_tables);
	emit_str(&e, "runtime", rt[c->runtime]);
	emit_u64(&e, "torn", c->torn);
	emit_array(&e, "conflicts");
	for (uint32_t i = 0; i < c->nrows; i++) {
		const struct conflict_row *r = &c->rows[i];
		emit_object(&e, NULL);
		emit_str(&e, "cause", conflict_cause_key(r->cause));
		emit_u64(&e, "aborts", r->aborts);
		emit_u64(&e, "lost_ns", r->lost_ns);
		emit_fixed(&e, "lost_ms", r->lost_ns / 1e6, 3);
		emit_fixed(&e, "last_ago_s",
			   c->now_ns > r->last_ns ? (c->now_ns - r->last_ns) / 1e9 : 0, 3);
		json_side(&e, "process", &r->mine);
		json_side(&e, "other", &r->other);
		if (r->other_slot)
			emit_u64(&e, "other_slot", r->other_slot - 1);
		else
			emit_null(&e, "other_slot");
		emit_array(&e, "places");
		for (unsigned k = 0; k < r->nplaces; k++) {
			const struct conflict_place *p = &r->place[k];
			emit_object(&e, NULL);
			emit_bool(&e, "offset_inferred", p->inferred);
			if (p->off) {
				emit_u64(&e, "offset", p->off);
				if (p->off >= c->heap_lo)
					emit_u64(&e, "heap_offset", p->off - c->heap_lo);
				else
					emit_null(&e, "heap_offset");
			} else {
				emit_null(&e, "offset");
				emit_null(&e, "heap_offset");
			}
			emit_u64(&e, "orec", p->orec);
			emit_u64(&e, "hits", p->hits);
			emit_close(&e);
		}
		emit_close(&e);
		emit_close(&e);
	}
	emit_close(&e);
	return cli_json_end(&e, uri);
}

int cmd_conflicts(int argc, char **argv)
{
	bool json = false;
	const char *uri;
	struct conflict_report c;
	int rc = cli_uri_args(argc, argv, "conflicts",
			      "usage: pstm conflicts URI [--json|--pretty]\n"
			      "Where transactions lose time: the conflicts recorded by every\n"
			      "process, the costliest first: time lost in aborted attempts and\n"
			      "the waits after them, aborts, the transaction that lost and its\n"
			      "opponent (pstm_tx_name's name, else the function's), the cause\n"
			      "(read met a newer version, lock held, validation failed) and the\n"
			      "hottest places (heap+OFFSET from the start of the user heap).\n"
			      "Reads the region without attaching to it: works while processes\n"
			      "run and after they exit, until the runtime is rebuilt.  Regions\n"
			      "of format 1 have no conflict tables.\n",
			      &json, &uri);
	if (rc >= 0)
		return rc;
	rc = region_conflicts(uri, &c);
	if (rc)
		return cli_fail("cannot read", uri, rc);
	if (json) {
		rc = print_json(uri, &c);
	} else {
		print_text(uri, &c);
		rc = 0;
	}
	conflict_report_free(&c);
	return rc;
}
