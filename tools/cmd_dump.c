/*
 * cmd_dump.c - pstm dump: the root object, and the contents of every map
 * and queue (pstm_ds.h) that the root itself is or that one of its words
 * points to.  Read in one read-only transaction, so the dump is a
 * consistent snapshot even while other processes write.  To run it, dump
 * attaches (unlike info and check), but as an observer
 * (PSTM_OPEN_OBSERVE): it recovers no dead process, never escalates and
 * never waits for a transaction that did, so it stalls no writer; it
 * reads words a stopped or dead process's commit holds as they were
 * before it or, past its commit point, through its record; an attempt
 * that keeps conflicting (writers changing what it reads, or such locks
 * where neither applies) is given up after --timeout-ms.
 *
 * The JSON form is what pstm load reads back (cmd_load.c): every key,
 * value and item is a byte string written so that it round-trips exactly,
 * text as text and anything else as base64 (see put_bytes).  The text
 * form is for people only.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bytes.h"
#include "cli.h"
#include "emit.h"
#include "pstm_ds.h"
#include "stm.h"

#define ROOT_WORDS_SHOWN 64
#define DEFAULT_TIMEOUT_MS 10000

/*
 * The text (or JSON document) being built.  Owned by cmd_dump, outside
 * the transaction, and emptied at the start of each attempt: an attempt
 * that is rolled back and re-run leaks nothing and leaves nothing behind
 * (the JSON document hangs together from its first value, so emit_free
 * releases what an unwound attempt built).  Out of memory, it stops
 * growing and the attempt ends with PSTM_ENOMEM (rather than unwinding
 * from inside the emitter).
 */
struct out {
	char *p;
	size_t n, cap;
	bool failed;         /* a realloc failed: p holds a cut-short text */
	bool json;
	const char *uri;
	struct emit e;       /* the JSON document, quoted bytes: written
				through vput */
};

static void vput(void *arg, const char *fmt, va_list ap)
{
	struct out *o = arg;
	while (!o->failed) {
		size_t room = o->cap - o->n;
		va_list aq;
		va_copy(aq, ap);
		int k = vsnprintf(o->p + o->n, room, fmt, aq);
		va_end(aq);
		if (k < 0)
			return;
		if ((size_t)k < room) {
			o->n += (size_t)k;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)k;
		char *p = realloc(o->p, cap);
		if (!p) {
			o->failed = true;
			return;
		}
		o->p = p;
		o->cap = cap;
	}
}

__attribute__((format(printf, 2, 3)))
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vput(o, fmt, ap);
	va_end(ap);
}



/*
 * A key, value or item into the JSON document under @key (NULL in an
 * array): text (is_text) as a JSON string of that text, any other bytes
 * as {"base64": "..."}.  Out of memory, the document is marked failed.
 */
static void put_bytes(struct out *o, const char *key, const void *b, size_t n)
{
	bool text = bytes_are_text(b, n);
	size_t need = text ? n + 1 : 4 * ((n + 2) / 3) + 1;
	char small[256], *s = need <= sizeof(small) ? small : malloc(need);
	if (!s) {
		o->failed = true;
		return;
	}
	if (text) {
		memcpy(s, b, n);
		s[n] = 0;
		emit_str(&o->e, key, s);
	} else {
		b64_encode(s, b, n);
		emit_object(&o->e, key);
		emit_str(&o->e, "base64", s);
		emit_close(&o->e);
	}
	if (s != small)
		free(s);
}

struct walk {
	struct out *o;
	uint64_t n;
};

static int entry_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct walk *w = arg;
	struct out *o = w->o;
	if (o->json) {
		emit_object(&o->e, NULL);
		put_bytes(o, "key", k, kl);
		put_bytes(o, "value", v, vl);
		emit_close(&o->e);
	} else {
		put(o, "    ");
		emit_c_bytes(&o->e, k, kl);
		put(o, " = ");
		emit_c_bytes(&o->e, v, vl);
		put(o, "\n");
	}
	w->n++;
	return 0;
}

static int item_cb(const void *item, size_t len, void *arg)
{
	struct walk *w = arg;
	struct out *o = w->o;
	if (o->json) {
		put_bytes(o, NULL, item, len);
	} else {
		put(o, "    [%llu] ", (unsigned long long)w->n);
		emit_c_bytes(&o->e, item, len);
		put(o, "\n");
	}
	w->n++;
	return 0;
}

/* One map or queue at @off, found as root word @word (-1: the root). */
static void dump_object(pstm_tx *tx, struct out *o, int word, pstm_off off, int kind)
{
	struct walk w = {o, 0};
	const char *name = kind == PSTM_DS_MAP ? "map" : "queue";
	if (o->json) {
		emit_object(&o->e, NULL);
		emit_int(&o->e, "root_word", word);
		emit_u64(&o->e, "off", off);
		emit_str(&o->e, "type", name);
		if (kind == PSTM_DS_MAP) {
			emit_u64(&o->e, "count", pstm_map_count(tx, off));
			emit_array(&o->e, "entries");
			pstm_map_iter(tx, off, entry_cb, &w);
		} else {
			emit_array(&o->e, "items");
			pstm_queue_iter(tx, off, item_cb, &w);
		}
		emit_close(&o->e);
		emit_close(&o->e);
		return;
	}
	if (word < 0)
		put(o, "root is a %s\n", name);
	if (kind == PSTM_DS_MAP) {
		put(o, "  map @%llu, %llu entries:\n", (unsigned long long)off,
		    (unsigned long long)pstm_map_count(tx, off));
		pstm_map_iter(tx, off, entry_cb, &w);
	} else {
		put(o, "  queue @%llu:\n", (unsigned long long)off);
		pstm_queue_iter(tx, off, item_cb, &w);
		put(o, "    (%llu items)\n", (unsigned long long)w.n);
	}
}

/* The root and what it holds; JSON: the whole document. */
static void dump_root(pstm_tx *tx, struct out *o, uint64_t root, uint64_t bytes)
{
	uint64_t words = bytes / 8 < ROOT_WORDS_SHOWN ? bytes / 8 : ROOT_WORDS_SHOWN;
	if (o->json) {
		emit_object(&o->e, "root");
		emit_u64(&o->e, "off", root);
		emit_u64(&o->e, "bytes", bytes);
		emit_array(&o->e, "words");
		for (uint64_t i = 0; i < words; i++)
			emit_u64(&o->e, NULL, pstm_load64(tx, root + 8 * i));
		emit_close(&o->e);
		emit_close(&o->e);
		emit_array(&o->e, "objects");
	} else {
		char b[EMIT_SIZE_LEN];
		put(o, "root @%llu, %s\n", (unsigned long long)root,
		    emit_size(b, bytes));
	}
	int kind = pstm_ds_type(tx, root);
	if (kind != PSTM_DS_NONE)
		dump_object(tx, o, -1, root, kind);
	for (uint64_t i = 0; i < words; i++) {
		uint64_t v = pstm_load64(tx, root + 8 * i);
		kind = pstm_ds_type(tx, v);
		if (!o->json)
			put(o, "  word %llu: %llu (0x%llx)%s\n", (unsigned long long)i,
			    (unsigned long long)v, (unsigned long long)v,
			    kind == PSTM_DS_MAP ? " -> map" : kind == PSTM_DS_QUEUE ? " -> queue" : "");
		if (kind != PSTM_DS_NONE)
			dump_object(tx, o, (int)i, v, kind);
	}
	if (!o->json && bytes / 8 > words)
		put(o, "  (%llu more words)\n", (unsigned long long)(bytes / 8 - words));
	if (o->json)
		emit_close(&o->e);
}

static int dump_fn(pstm_tx *tx, void *arg)
{
	struct out *o = arg;
	struct pstm_region *r = tx->r;
	uint64_t hh = r->sb.heap_off;
	o->n = 0;
	o->p[0] = 0;
	o->failed = false;
	emit_free(&o->e); /* what a rolled-back attempt left */
	emit_to(&o->e, vput, o);
	uint64_t root = stm_load(tx, hh + offsetof(struct heap_header, root_off), hh);
	uint64_t bytes = stm_load(tx, hh + offsetof(struct heap_header, root_bytes), hh);
	if (root && (root < r->heap_lo || bytes > r->heap_hi - root))
		return PSTM_ECORRUPT;
	if (o->json) {
		emit_object(&o->e, NULL);
		emit_str(&o->e, "uri", o->uri);
	}
	if (root) {
		dump_root(tx, o, root, bytes);
	} else if (o->json) {
		emit_null(&o->e, "root");
		emit_array(&o->e, "objects");
		emit_close(&o->e);
	} else {
		put(o, "no root object\n");
	}
	if (o->json)
		emit_close(&o->e); /* written into o->p */
	return o->failed || o->e.failed ? PSTM_ENOMEM : 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The snapshot: one read-only attempt after another (pstm_tx_begin, which
 * backs off between them) until one commits, or PSTM_EBUSY once
 * @timeout_ms have passed (0: no limit).
 */
static int snapshot(pstm_region *r, struct out *o, uint64_t timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		pstm_tx *tx;
		int rc = pstm_tx_begin(r, PSTM_TX_READ_ONLY, &tx);
		if (rc)
			return rc;
		rc = pstm_tx_call(tx, dump_fn, o);
		if (rc == 0)
			rc = pstm_tx_commit(tx);
		else
			pstm_tx_end(tx);
		if (rc != PSTM_ECONFLICT)
			return rc;
		if (timeout_ms && now_ms() >= deadline)
			return PSTM_EBUSY;
	}
}

static const struct cli_num opt_timeout = {"--timeout-ms", 0, 86400000, 0};

int cmd_dump(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, 0, 'j'},
					   {"pretty", no_argument, 0, 'P'},
					   {"timeout-ms", required_argument, 0, 't'},
					   {"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	struct out o = {.cap = 4096};
	uint64_t timeout_ms = DEFAULT_TIMEOUT_MS;
	char help[1600];
	int c, rc;
	snprintf(help, sizeof(help),
		 "usage: pstm dump URI [--timeout-ms N] [--json|--pretty]\n"
		 "Print the root object (its first %d words) and the contents\n"
		 "of every map and queue (pstm_ds.h) it is or points to, as\n"
		 "one consistent snapshot: one read-only transaction.  dump\n"
		 "attaches as an observer: it recovers no dead process, never\n"
		 "stops or waits for writers; a snapshot that keeps conflicting\n"
		 "(busy writers, or locks of a stopped or dead process) is given\n"
		 "up after --timeout-ms (default %d; 0: never).\n"
		 "Text: keys, values and items in double quotes, \\\" \\\\ and\n"
		 "\\xNN (two hex digits) for bytes that are not printable ASCII;\n"
		 "for people, not for pstm load.  JSON (what pstm load reads):\n"
		 "a key, value or item that is UTF-8 text without NUL is a\n"
		 "string of that text, any other bytes {\"base64\": \"...\"}.\n",
		 ROOT_WORDS_SHOWN, DEFAULT_TIMEOUT_MS);
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'j':
		case 'P':
			o.json = true;
			cli_set_json(c == 'P');
			break;
		case 't':
			if ((rc = cli_parse_option(&opt_timeout, optarg, &timeout_ms)))
				return rc;
			break;
		case 'h':
			fputs(help, stdout);
			return 0;
		default:
			return 2; /* getopt said why */
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("dump needs exactly one URI");
	o.uri = argv[optind];
	pstm_region *r;
	rc = pstm_open_opts(o.uri, PSTM_OPEN_OBSERVE, &r);
	if (rc == PSTM_ERUNTIME)
		return cli_failf("cannot open", o.uri, rc, "no runtime of this "
				 "region (not opened since a reboot, or a copy not "
				 "opened yet): dump never builds one; any open with "
				 "write permission does (pstm recover)");
	if (rc)
		return cli_fail("cannot open", o.uri, rc);
	o.p = malloc(o.cap);
	if (!o.p) {
		pstm_close(r);
		return cli_fail("cannot dump", o.uri, PSTM_ENOMEM);
	}
	rc = snapshot(r, &o, timeout_ms);
	emit_free(&o.e); /* an attempt that ended in an error */
	pstm_close(r);
	if (rc == 0)
		fputs(o.p, stdout);
	free(o.p);
	if (rc == PSTM_EBUSY)
		return cli_failf("cannot dump", o.uri, rc, "no consistent snapshot "
				 "in %llu ms: what it reads kept changing, or is locked "
				 "by a commit of a stopped or dead process past its "
				 "commit point (pstm recover settles the dead)",
				 (unsigned long long)timeout_ms);
	return rc ? cli_fail("cannot dump", o.uri, rc) : 0;
}
