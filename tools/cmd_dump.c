/*
 * cmd_dump.c - pstm dump: the root object, and the contents of every map
 * and queue (pstm_ds.h) that the root itself is or that one of its words
 * points to.  Read in one read-only transaction, so the dump is a
 * consistent snapshot even while other processes write.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cli.h"
#include "pstm_ds.h"
#include "stm.h"

int cmd_dump(int argc, char **argv);

#define ROOT_WORDS_SHOWN 64

/*
 * The text being built.  Owned by cmd_dump, outside the transaction, and
 * emptied at the start of each attempt: an attempt that is rolled back
 * and re-run leaks nothing and leaves nothing behind.
 */
struct out {
	char *p;
	size_t n, cap;
	int json;
	int first;  /* no element written yet in the current JSON array */
};

static void put(pstm_tx *tx, struct out *o, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		size_t room = o->cap - o->n;
		va_start(ap, fmt);
		int k = vsnprintf(o->p + o->n, room, fmt, ap);
		va_end(ap);
		if (k < 0)
			return;
		if ((size_t)k < room) {
			o->n += (size_t)k;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)k;
		char *p = realloc(o->p, cap);
		if (!p)
			stm_fail(tx, PSTM_ENOMEM);
		o->p = p;
		o->cap = cap;
	}
}

/* Bytes as a JSON string (\u00XX for control and non-ASCII bytes) or as
 * a C-style quoted string. */
static void put_bytes(pstm_tx *tx, struct out *o, const uint8_t *b, size_t n)
{
	put(tx, o, "\"");
	for (size_t i = 0; i < n; i++) {
		uint8_t c = b[i];
		if (c == '"' || c == '\\')
			put(tx, o, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			put(tx, o, "%c", c);
		else if (o->json)
			put(tx, o, "\\u%04x", c);
		else
			put(tx, o, "\\x%02x", c);
	}
	put(tx, o, "\"");
}

struct walk {
	pstm_tx *tx;
	struct out *o;
	uint64_t n;
};

static int entry_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct walk *w = arg;
	struct out *o = w->o;
	if (o->json) {
		put(w->tx, o, "%s{\"key\":", w->n ? "," : "");
		put_bytes(w->tx, o, k, kl);
		put(w->tx, o, ",\"value\":");
		put_bytes(w->tx, o, v, vl);
		put(w->tx, o, "}");
	} else {
		put(w->tx, o, "    ");
		put_bytes(w->tx, o, k, kl);
		put(w->tx, o, " = ");
		put_bytes(w->tx, o, v, vl);
		put(w->tx, o, "\n");
	}
	w->n++;
	return 0;
}

static int item_cb(const void *item, size_t len, void *arg)
{
	struct walk *w = arg;
	struct out *o = w->o;
	if (o->json) {
		put(w->tx, o, "%s", w->n ? "," : "");
	} else {
		put(w->tx, o, "    [%llu] ", (unsigned long long)w->n);
	}
	put_bytes(w->tx, o, item, len);
	if (!o->json)
		put(w->tx, o, "\n");
	w->n++;
	return 0;
}

/* One map or queue at @off, found as root word @word (-1: the root). */
static void dump_object(pstm_tx *tx, struct out *o, int word, pstm_off off, int kind)
{
	struct walk w = {tx, o, 0};
	const char *name = kind == PSTM_DS_MAP ? "map" : "queue";
	if (o->json) {
		put(tx, o, "%s{\"root_word\":%d,\"off\":%llu,\"type\":\"%s\",", o->first ? "" : ",",
		    word, (unsigned long long)off, name);
		o->first = 0;
		if (kind == PSTM_DS_MAP) {
			put(tx, o, "\"count\":%llu,\"entries\":[",
			    (unsigned long long)pstm_map_count(tx, off));
			pstm_map_iter(tx, off, entry_cb, &w);
		} else {
			put(tx, o, "\"items\":[");
			pstm_queue_iter(tx, off, item_cb, &w);
		}
		put(tx, o, "]}");
		return;
	}
	if (word < 0)
		put(tx, o, "root is a %s\n", name);
	if (kind == PSTM_DS_MAP) {
		put(tx, o, "  map @%llu, %llu entries:\n", (unsigned long long)off,
		    (unsigned long long)pstm_map_count(tx, off));
		pstm_map_iter(tx, off, entry_cb, &w);
	} else {
		put(tx, o, "  queue @%llu:\n", (unsigned long long)off);
		pstm_queue_iter(tx, off, item_cb, &w);
		put(tx, o, "    (%llu items)\n", (unsigned long long)w.n);
	}
}

static int dump_fn(pstm_tx *tx, void *arg)
{
	struct out *o = arg;
	struct pstm_region *r = tx->r;
	uint64_t hh = r->sb.heap_off;
	o->n = 0;
	o->p[0] = 0;
	o->first = 1;
	uint64_t root = stm_load(tx, hh + offsetof(struct heap_header, root_off), hh);
	uint64_t bytes = stm_load(tx, hh + offsetof(struct heap_header, root_bytes), hh);
	if (!root) {
		put(tx, o, o->json ? "\"root\":null,\"objects\":[]" : "no root object\n");
		return 0;
	}
	if (root < r->heap_lo || bytes > r->heap_hi - root)
		return PSTM_ECORRUPT;
	uint64_t words = bytes / 8 < ROOT_WORDS_SHOWN ? bytes / 8 : ROOT_WORDS_SHOWN;
	if (o->json) {
		put(tx, o, "\"root\":{\"off\":%llu,\"bytes\":%llu,\"words\":[",
		    (unsigned long long)root, (unsigned long long)bytes);
		for (uint64_t i = 0; i < words; i++)
			put(tx, o, "%s%llu", i ? "," : "",
			    (unsigned long long)pstm_load64(tx, root + 8 * i));
		put(tx, o, "]},\"objects\":[");
	} else {
		put(tx, o, "root @%llu, %llu bytes\n", (unsigned long long)root,
		    (unsigned long long)bytes);
	}
	int kind = pstm_ds_type(tx, root);
	if (kind != PSTM_DS_NONE)
		dump_object(tx, o, -1, root, kind);
	for (uint64_t i = 0; i < words; i++) {
		uint64_t v = pstm_load64(tx, root + 8 * i);
		kind = pstm_ds_type(tx, v);
		if (!o->json)
			put(tx, o, "  word %llu: %llu (0x%llx)%s\n", (unsigned long long)i,
			    (unsigned long long)v, (unsigned long long)v,
			    kind == PSTM_DS_MAP ? " -> map" : kind == PSTM_DS_QUEUE ? " -> queue" : "");
		if (kind != PSTM_DS_NONE)
			dump_object(tx, o, (int)i, v, kind);
	}
	if (!o->json && bytes / 8 > words)
		put(tx, o, "  (%llu more words)\n", (unsigned long long)(bytes / 8 - words));
	if (o->json)
		put(tx, o, "]");
	return 0;
}

int cmd_dump(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, 0, 'j'},
					   {"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	struct out o = {.cap = 4096};
	int c;

	while ((c = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
		if (c == 'j') {
			o.json = 1;
		} else if (c == 'h') {
			printf("usage: pstm dump URI [--json]\n"
			       "Print the root object (its first %d words) and the contents\n"
			       "of every map and queue (pstm_ds.h) it is or points to, as\n"
			       "one consistent snapshot.  Keys, values and items are shown\n"
			       "as strings, with \\xNN (\\u00NN in JSON) for other bytes.\n",
			       ROOT_WORDS_SHOWN);
			return 0;
		} else {
			return 2;
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("dump needs exactly one URI");
	const char *uri = argv[optind];
	pstm_region *r;
	int rc = pstm_open(uri, &r);
	if (rc)
		return cli_fail("cannot open", uri, rc);
	o.p = malloc(o.cap);
	if (!o.p) {
		pstm_close(r);
		return cli_fail("cannot dump", uri, PSTM_ENOMEM);
	}
	rc = pstm_atomic(r, dump_fn, &o);
	pstm_close(r);
	if (rc) {
		free(o.p);
		return cli_fail("cannot dump", uri, rc);
	}
	if (o.json) {
		printf("{\"uri\":");
		cli_json_string(stdout, uri);
		printf(",%s}\n", o.p);
	} else {
		fputs(o.p, stdout);
	}
	free(o.p);
	return 0;
}
