/*
 * cmd_load.c - pstm load: the maps and queues of a `pstm dump --json`
 * document into a region's root, creating those it lacks and adding to
 * those it has.  (About 650 lines: checking hostile input and naming the
 * place of every error is two thirds of it, and it belongs to the one
 * command; byte strings are tools/bytes.c.)
 *
 * The whole document is read and checked before the region is touched:
 * bad input (not JSON, cut short, a wrong type, bad base64) is reported
 * with its place and writes nothing.  Then one transaction checks the
 * region's root against the dump (a root word that holds something else
 * refuses the whole load) and creates what is missing; the entries and
 * items follow in batches, each its own transaction, sized to stay well
 * inside the redo log.  A batch that fails (heap full, an entry larger
 * than the log) ends the load; the batches before it stay.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "bytes.h"
#include "cli.h"
#include "emit.h"
#include "pstm_ds.h"
#include "stm.h"

/* the most entries or items one batch carries, whatever their size */
#define BATCH_MAX 1000
/* json_tokener_parse_ex takes an int length: the input goes in chunks */
#define PARSE_CHUNK (1 << 30)
/* the largest root load accepts from a dump (a sanity bound: no
 * transaction could zero more) */
#define ROOT_BYTES_MAX (1ull << 30)

/* A key, value or item: in the JSON tree (text) or decoded (base64). */
struct bytes {
	const void *p;
	size_t n;
	bool owned; /* malloc'd by base64_decode */
};

/* One map or queue of the dump, and where it goes in the region. */
struct object {
	char where[32];   /* "objects[3]", for messages */
	int word;         /* its root word; -1: the root itself */
	int kind;         /* PSTM_DS_MAP or PSTM_DS_QUEUE */
	size_t n;         /* entries or items */
	struct bytes *b;  /* a map's 2n (key, value, ...), a queue's n */
	pstm_off off;     /* in the region: set by plan_fn */
	bool created;     /* plan_fn made it */
	size_t done;      /* entries or items loaded */
};

struct load {
	const char *uri, *input;  /* input: FILE or "stdin" */
	uint64_t root_bytes;      /* the dump's root; 0: it has none */
	struct object *obj;
	size_t nobj;
	bool root_created;        /* plan_fn made the region's root */
	unsigned long long transactions;
	char why[400];            /* what is wrong, for cli_failf */
};

/* plan_fn's refusal (pstm_atomic returns it): l->why says why */
enum { REFUSED = 1 };

__attribute__((format(printf, 2, 3)))
static int bad(struct load *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->why, sizeof(l->why), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *type_of(struct json_object *v)
{
	return json_type_to_name(json_object_get_type(v));
}

static const char *kind_name(int kind)
{
	return kind == PSTM_DS_MAP ? "map" : "queue";
}

/* ------------------------------------------------------------ input */

/* All of @f into *text (NUL-terminated), its length in *len. */
static int read_all(struct load *l, FILE *f, char **text, size_t *len)
{
	size_t n = 0, cap = 1 << 16;
	char *p = malloc(cap);
	while (p) {
		n += fread(p + n, 1, cap - n - 1, f);
		if (ferror(f)) {
			free(p);
			return bad(l, "cannot read it: %s", strerror(errno));
		}
		if (feof(f)) {
			p[n] = 0;
			*text = p;
			*len = n;
			return 0;
		}
		if (cap - n - 1 == 0) {
			char *q = cap < SIZE_MAX / 2 ? realloc(p, cap * 2) : NULL;
			if (!q)
				free(p);
			p = q;
			cap *= 2;
		}
	}
	return bad(l, "out of memory reading it");
}

/* "line L, column C" of byte @pos of @text */
static void place(const char *text, size_t pos, char *out, size_t size)
{
	size_t line = 1, col = 1;
	for (size_t i = 0; i < pos; i++) {
		if (text[i] == '\n')
			line++, col = 1;
		else
			col++;
	}
	snprintf(out, size, "line %zu, column %zu", line, col);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* @text as one strict JSON document (nothing but blanks after it). */
static int parse(struct load *l, const char *text, size_t len, struct json_object **doc)
{
	size_t start = 0;
	char at[64];
	while (start < len && is_blank(text[start]))
		start++;
	if (start == len)
		return bad(l, "empty (expected the JSON document of pstm dump --json)");
	if (!strncmp(text + start, "root @", 6) || !strncmp(text + start, "no root object", 14))
		return bad(l, "this is pstm dump's text output; pstm load reads only "
			   "its JSON form (pstm dump --json)");
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return bad(l, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
				    JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *v = NULL;
	enum json_tokener_error err = json_tokener_continue;
	size_t off = 0, end = len;
	while (off < len) {
		int chunk = len - off > PARSE_CHUNK ? PARSE_CHUNK : (int)(len - off);
		v = json_tokener_parse_ex(tok, text + off, chunk);
		err = json_tokener_get_error(tok);
		if (err != json_tokener_continue) {
			end = off + json_tokener_get_parse_end(tok);
			break;
		}
		off += (size_t)chunk;
	}
	if (err == json_tokener_continue) {
		place(text, len, at, sizeof(at));
		json_tokener_free(tok);
		return bad(l, "%s: the input ends inside the JSON document (cut short?)", at);
	}
	if (err != json_tokener_success) {
		/* the parse end is just past the byte it stopped at */
		place(text, end ? end - 1 : 0, at, sizeof(at));
		bad(l, "%s: not JSON: %s", at, json_tokener_error_desc(err));
		json_tokener_free(tok);
		return -1;
	}
	json_tokener_free(tok);
	while (end < len && is_blank(text[end]))
		end++;
	if (end < len) {
		json_object_put(v);
		place(text, end, at, sizeof(at));
		return bad(l, "%s: more after the JSON document", at);
	}
	*doc = v;
	return 0;
}

/* ------------------------------------------------- the dump's shape */


/*
 * @s (@n characters) as base64 into out: padded with '=' to a multiple
 * of four, no blanks, unused bits zero (what pstm dump writes, and any
 * standard encoder).  @path names the value in messages.
 */
static int base64_decode(struct load *l, const char *path, const char *s, size_t n,
			 struct bytes *out)
{
	char why[96];
	unsigned char *p;
	size_t len;
	if (b64_decode(s, n, &p, &len, why, sizeof(why)) != 0)
		return bad(l, "%s: %s", path, why);
	*out = (struct bytes){p, len, true};
	return 0;
}
/* A key, value or item: a JSON string (its UTF-8 bytes) or {"base64": "..."}. */
static int get_bytes(struct load *l, struct json_object *v, const char *path,
		     struct bytes *out)
{
	struct json_object *s;
	if (json_object_is_type(v, json_type_string)) {
		*out = (struct bytes){json_object_get_string(v),
				      (size_t)json_object_get_string_len(v), false};
		return 0;
	}
	if (json_object_is_type(v, json_type_object) && json_object_object_length(v) == 1 &&
	    json_object_object_get_ex(v, "base64", &s)) {
		char sub[96];
		snprintf(sub, sizeof(sub), "%s.base64", path);
		if (!json_object_is_type(s, json_type_string))
			return bad(l, "%s: a string, not %s", sub, type_of(s));
		return base64_decode(l, sub, json_object_get_string(s),
				     (size_t)json_object_get_string_len(s), out);
	}
	return bad(l, "%s: a string or {\"base64\": \"...\"}, not %s", path,
		   json_object_is_type(v, json_type_object) ? "an object with other keys"
							    : type_of(v));
}

/* @key of object @o (named @path) that must be there, of type @t. */
static int get_field(struct load *l, struct json_object *o, const char *path,
		     const char *key, enum json_type t, struct json_object **out)
{
	if (!json_object_object_get_ex(o, key, out))
		return bad(l, "%s: no \"%s\"", path, key);
	if (!json_object_is_type(*out, t))
		return bad(l, "%s.%s: %s, not %s", path, key,
			   t == json_type_int ? "an integer" : t == json_type_array ? "an array"
			   : t == json_type_object ? "an object" : "a string",
			   type_of(*out));
	return 0;
}

/* One element of "objects" into @o; @words: the root's. */
static int check_object(struct load *l, struct json_object *j, struct object *o,
			uint64_t words)
{
	struct json_object *f, *list;
	char path[96];
	const char *p = o->where;
	if (!json_object_is_type(j, json_type_object))
		return bad(l, "%s: an object, not %s", p, type_of(j));
	if (get_field(l, j, p, "type", json_type_string, &f))
		return -1;
	const char *type = json_object_get_string(f);
	if (!strcmp(type, "map"))
		o->kind = PSTM_DS_MAP;
	else if (!strcmp(type, "queue"))
		o->kind = PSTM_DS_QUEUE;
	else
		return bad(l, "%s.type: \"map\" or \"queue\", not \"%.40s\"", p, type);
	if (get_field(l, j, p, "root_word", json_type_int, &f))
		return -1;
	int64_t w = json_object_get_int64(f);
	if (w < -1 || (w >= 0 && (uint64_t)w >= words))
		return bad(l, "%s.root_word: %lld: -1 (the root) up to %llu (the root's "
			   "last word)", p, (long long)w, (unsigned long long)words - 1);
	o->word = (int)w;
	bool is_map = o->kind == PSTM_DS_MAP;
	if (get_field(l, j, p, is_map ? "entries" : "items", json_type_array, &list))
		return -1;
	o->n = json_object_array_length(list);
	if (is_map && json_object_object_get_ex(j, "count", &f) &&
	    (!json_object_is_type(f, json_type_int) ||
	     json_object_get_uint64(f) != o->n))
		return bad(l, "%s.count: %s, but it has %zu entries", p,
			   json_object_get_string(f), o->n);
	o->b = calloc(o->n ? (is_map ? 2 : 1) * o->n : 1, sizeof(*o->b));
	if (!o->b)
		return bad(l, "%s: out of memory", p);
	for (size_t i = 0; i < o->n; i++) {
		struct json_object *e = json_object_array_get_idx(list, i);
		if (!is_map) {
			snprintf(path, sizeof(path), "%s.items[%zu]", p, i);
			if (get_bytes(l, e, path, &o->b[i]))
				return -1;
			continue;
		}
		snprintf(path, sizeof(path), "%s.entries[%zu]", p, i);
		if (!json_object_is_type(e, json_type_object))
			return bad(l, "%s: an object {\"key\": ..., \"value\": ...}, not %s",
				   path, type_of(e));
		for (int kv = 0; kv < 2; kv++) {
			const char *name = kv ? "value" : "key";
			char sub[112];
			snprintf(sub, sizeof(sub), "%s.%s", path, name);
			if (!json_object_object_get_ex(e, name, &f))
				return bad(l, "%s: no \"%s\"", path, name);
			if (get_bytes(l, f, sub, &o->b[2 * i + (size_t)kv]))
				return -1;
		}
	}
	return 0;
}

/* The document's shape into @l: everything the load needs, checked. */
static int check_doc(struct load *l, struct json_object *doc)
{
	struct json_object *root, *objs, *f;
	uint64_t words = 0;
	if (!json_object_is_type(doc, json_type_object))
		return bad(l, "the document is %s, not an object (pstm dump --json writes one)",
			   type_of(doc));
	if (!json_object_object_get_ex(doc, "root", &root))
		return bad(l, "no \"root\": not a pstm dump --json document");
	if (root) {
		if (!json_object_is_type(root, json_type_object))
			return bad(l, "root: an object or null, not %s", type_of(root));
		if (get_field(l, root, "root", "bytes", json_type_int, &f))
			return -1;
		int64_t b = json_object_get_int64(f);
		if (b < 1 || (uint64_t)b > ROOT_BYTES_MAX)
			return bad(l, "root.bytes: %lld: 1 up to %llu", (long long)b,
				   (unsigned long long)ROOT_BYTES_MAX);
		l->root_bytes = (uint64_t)b;
		words = l->root_bytes / 8;
	}
	if (get_field(l, doc, "the document", "objects", json_type_array, &objs))
		return -1;
	size_t n = json_object_array_length(objs);
	if (n && !root)
		return bad(l, "objects: %zu, but root is null", n);
	l->obj = calloc(n ? n : 1, sizeof(*l->obj));
	if (!l->obj)
		return bad(l, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct object *o = &l->obj[i];
		l->nobj = i + 1;
		snprintf(o->where, sizeof(o->where), "objects[%zu]", i);
		if (check_object(l, json_object_array_get_idx(objs, i), o, words))
			return -1;
		for (size_t k = 0; k < i; k++)
			if (l->obj[k].word == o->word)
				return bad(l, "%s.root_word: %d, as %s's", o->where, o->word,
					   l->obj[k].where);
	}
	return 0;
}

/* ------------------------------------------------------- the region */

/* The region's root, checked against the dump; what is missing, made. */
static int plan_fn(pstm_tx *tx, void *arg)
{
	struct load *l = arg;
	struct pstm_region *r = tx->r;
	uint64_t hh = r->sb.heap_off;
	l->root_created = false;
	for (size_t i = 0; i < l->nobj; i++)
		l->obj[i].off = 0, l->obj[i].created = false;
	if (!l->root_bytes)
		return 0; /* the dump's region had no root: nothing to load */
	uint64_t root = stm_load(tx, hh + offsetof(struct heap_header, root_off), hh);
	uint64_t bytes = stm_load(tx, hh + offsetof(struct heap_header, root_bytes), hh);
	if (root && (root < r->heap_lo || bytes > r->heap_hi - root))
		return PSTM_ECORRUPT;
	if (!root) {
		root = pstm_root(tx, l->root_bytes);
		bytes = l->root_bytes;
		l->root_created = true;
	}
	for (size_t i = 0; i < l->nobj; i++) {
		struct object *o = &l->obj[i];
		const char *want = kind_name(o->kind);
		if (o->word < 0) {
			int kind = pstm_ds_type(tx, root);
			if (kind != o->kind) {
				bad(l, "%s: the dump's root is itself a %s; this region's root "
				    "is %s (load adds to a root that is a %s, it cannot make one)",
				    o->where, want, kind == PSTM_DS_NONE ? "not a map or queue"
				    : kind == PSTM_DS_MAP ? "a map" : "a queue", want);
				return REFUSED;
			}
			o->off = root;
			continue;
		}
		if ((uint64_t)o->word >= bytes / 8) {
			bad(l, "%s: root word %d, but this region's root has %llu words "
			    "(%llu bytes)", o->where, o->word,
			    (unsigned long long)(bytes / 8), (unsigned long long)bytes);
			return REFUSED;
		}
		uint64_t v = pstm_load64(tx, root + 8 * (uint64_t)o->word);
		if (!v) {
			/* a small table: it grows as the batches put */
			o->off = o->kind == PSTM_DS_MAP ? pstm_map_create(tx, 8)
							: pstm_queue_create(tx);
			pstm_store64(tx, root + 8 * (uint64_t)o->word, o->off);
			o->created = true;
			continue;
		}
		int kind = pstm_ds_type(tx, v);
		if (kind != o->kind) {
			if (kind == PSTM_DS_NONE)
				bad(l, "%s: root word %d of this region holds %llu (0x%llx), not a "
				    "map or queue; the dump's is a %s", o->where, o->word,
				    (unsigned long long)v, (unsigned long long)v, want);
			else
				bad(l, "%s: root word %d of this region holds a %s; the dump's "
				    "is a %s", o->where, o->word, kind_name(kind), want);
			return REFUSED;
		}
		o->off = v;
	}
	return 0;
}

struct batch {
	struct object *o;
	size_t from, n;
};

static int batch_fn(pstm_tx *tx, void *arg)
{
	struct batch *b = arg;
	struct object *o = b->o;
	for (size_t i = b->from; i < b->from + b->n; i++) {
		int rc;
		if (o->kind == PSTM_DS_MAP) {
			const struct bytes *k = &o->b[2 * i], *v = k + 1;
			rc = pstm_map_put(tx, o->off, k->p, k->n, v->p, v->n);
		} else {
			rc = pstm_queue_push(tx, o->off, o->b[i].p, o->b[i].n);
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* The redo log words entry @i of @o costs: its bytes plus the map's or
 * queue's own bookkeeping (pstm_ds.h: ~10 words a put, ~15 more while
 * the table grows). */
static uint64_t cost_words(const struct object *o, size_t i)
{
	if (o->kind == PSTM_DS_MAP)
		return (o->b[2 * i].n + o->b[2 * i + 1].n + 7) / 8 + 32;
	return (o->b[i].n + 7) / 8 + 16;
}

/* What was loaded, for a message about a load that stopped at @o. */
static void loaded_before(const struct load *l, const struct object *o, char *out,
			  size_t size)
{
	snprintf(out, size, "loaded before it, and kept: %zu of its %zu %s and every "
		 "object before it, in %llu transactions", o->done, o->n,
		 o->kind == PSTM_DS_MAP ? "entries" : "items", l->transactions);
}

/* @o's entries or items, in batches of at most @words redo log words. */
static int load_object(struct load *l, pstm_region *r, struct object *o, uint64_t words,
		       uint32_t log_bytes)
{
	size_t limit = BATCH_MAX;
	const char *what = o->kind == PSTM_DS_MAP ? "entries" : "items";
	char kept[200];
	while (o->done < o->n) {
		struct batch b = {o, o->done, 0};
		uint64_t sum = 0;
		while (b.from + b.n < o->n && b.n < limit) {
			uint64_t c = cost_words(o, b.from + b.n);
			if (b.n && sum + c > words)
				break;
			sum += c;
			b.n++;
		}
		int rc = pstm_atomic(r, batch_fn, &b);
		if (rc == PSTM_ELOGFULL && b.n > 1) {
			limit = b.n / 2; /* smaller batches, from the same entry */
			continue;
		}
		if (rc) {
			char lb[EMIT_SIZE_LEN];
			loaded_before(l, o, kept, sizeof(kept));
			if (rc == PSTM_ELOGFULL)
				return cli_failf("cannot load", l->uri, rc,
						 "%s.%s[%zu]: more than this region can log "
						 "in one transaction (its heap is too full for "
						 "the record; a format 1 region: more than its "
						 "%s redo log); %s", o->where,
						 what, b.from, emit_size(lb, log_bytes), kept);
			return cli_failf("cannot load", l->uri, rc, "%s.%s[%zu..%zu]: %s; %s",
					 o->where, what, b.from, b.from + b.n - 1,
					 pstm_strerror(rc), kept);
		}
		o->done += b.n;
		l->transactions++;
	}
	return 0;
}

static int report(const struct load *l)
{
	if (cli_json) {
		struct emit e;
		cli_json_begin(&e, l->uri);
		emit_str(&e, "input", l->input);
		emit_bool(&e, "root_created", l->root_created);
		emit_u64(&e, "transactions", l->transactions);
		emit_array(&e, "objects");
		for (size_t i = 0; i < l->nobj; i++) {
			const struct object *o = &l->obj[i];
			emit_object(&e, NULL);
			emit_int(&e, "root_word", o->word);
			emit_u64(&e, "off", o->off);
			emit_str(&e, "type", kind_name(o->kind));
			emit_bool(&e, "created", o->created);
			emit_u64(&e, o->kind == PSTM_DS_MAP ? "entries" : "items", o->done);
			emit_close(&e);
		}
		emit_close(&e);
		return cli_json_end(&e, l->uri);
	}
	for (size_t i = 0; i < l->nobj; i++) {
		const struct object *o = &l->obj[i];
		char w[32] = "the root";
		if (o->word >= 0)
			snprintf(w, sizeof(w), "root word %d", o->word);
		printf("%s: %s @%llu (%s), %zu %s %s\n", w, kind_name(o->kind),
		       (unsigned long long)o->off, o->created ? "created" : "existing",
		       o->done, o->kind == PSTM_DS_MAP ? "entries" : "items",
		       o->kind == PSTM_DS_MAP ? "put" : "appended");
	}
	printf("%zu objects loaded in %llu transactions\n", l->nobj, l->transactions);
	return 0;
}

static const char help[] =
	"usage: pstm load URI [FILE] [--json|--pretty]\n"
	"Read what pstm dump --json (or --pretty) printed, from FILE or\n"
	"standard input, into the region URI: for each map and queue of\n"
	"the dump, the map or queue in the same root word is created if\n"
	"that word is 0 (and the root, if the region has none, with the\n"
	"dump's size), or added to if it is one of the same kind: a key\n"
	"already there gets the dump's value, items go after those there.\n"
	"A root word holding anything else refuses the load, unchanged.\n"
	"Other root words are not copied.  The input is checked whole\n"
	"before anything is written; then the entries go in batches, one\n"
	"transaction each: a load that fails part-way keeps the batches\n"
	"before it.  The text form of pstm dump is not read.\n";

/* The command line: URI and an optional FILE ("-": standard input). */
static int args(int argc, char **argv, const char **uri, const char **file)
{
	bool json = false;
	int rc = cli_opts(argc, argv, help, &json);
	if (rc >= 0)
		return rc;
	if (optind != argc - 1 && optind != argc - 2)
		return cli_usage_error("load needs a URI and at most one FILE");
	*uri = argv[optind];
	*file = optind == argc - 2 ? argv[optind + 1] : NULL;
	return -1;
}

int cmd_load(int argc, char **argv)
{
	struct load l = {.input = "stdin"};
	const char *file = NULL;
	char *text = NULL;
	size_t len = 0;
	struct json_object *doc = NULL;
	pstm_region *r = NULL;
	int rc = args(argc, argv, &l.uri, &file);
	if (rc >= 0)
		return rc;
	FILE *f = stdin;
	if (file && strcmp(file, "-")) {
		l.input = file;
		f = fopen(file, "r");
		if (!f) {
			rc = cli_failf("cannot load", l.uri, PSTM_ENOENT, "cannot open %s: %s",
				       file, strerror(errno));
			goto out;
		}
	}
	rc = read_all(&l, f, &text, &len);
	if (f != stdin)
		fclose(f);
	if (rc || parse(&l, text, len, &doc) || check_doc(&l, doc)) {
		rc = cli_failf("cannot load", l.uri, PSTM_EINVAL, "%s: %s", l.input, l.why);
		goto out;
	}
	rc = pstm_open(l.uri, &r);
	if (rc) {
		rc = cli_fail("cannot open", l.uri, rc);
		goto out;
	}
	struct pstm_region_info info;
	rc = pstm_region_info(r, &info);
	if (rc) {
		rc = cli_fail("cannot load", l.uri, rc);
		goto out;
	}
	rc = pstm_atomic(r, plan_fn, &l);
	if (rc) {
		rc = rc == REFUSED ? cli_failf("cannot load", l.uri, PSTM_EINVAL, "%s", l.why)
				   : cli_fail("cannot load", l.uri, rc);
		goto out;
	}
	l.transactions = 1;
	/* half the log's entries (16 bytes each) per batch: room for the
	 * table growth and allocator words the estimate does not see */
	uint64_t words = info.log_bytes / 16 / 2;
	for (size_t i = 0; i < l.nobj; i++) {
		rc = load_object(&l, r, &l.obj[i], words < 64 ? 64 : words, info.log_bytes);
		if (rc)
			goto out;
	}
	rc = report(&l);
out:
	if (r)
		pstm_close(r);
	for (size_t i = 0; i < l.nobj; i++) {
		struct object *o = &l.obj[i];
		size_t n = o->b ? (o->kind == PSTM_DS_MAP ? 2 : 1) * o->n : 0;
		for (size_t k = 0; k < n; k++)
			if (o->b[k].owned)
				free((void *)o->b[k].p);
		free(o->b);
	}
	free(l.obj);
	json_object_put(doc);
	free(text);
	return rc;
}
