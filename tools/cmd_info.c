/*
 * cmd_info.c - pstm info: a region's superblock, layout, attached
 * processes with their statistics, and heap use, read from the region
 * once (collect) and then printed as text or as JSON.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc_check.h"
#include "cli.h"
#include "emit.h"
#include "proc.h"
#include "region.h"
#include "stm.h"

/* the text's labels, "durability" the longest */
enum { LABEL_WIDTH = 11 };

/* An attached process, the statistics of its active slots folded in. */
struct proc_row {
	uint32_t entry;
	uint64_t pid;
	bool recovering;         /* else alive */
	unsigned slots;          /* active transaction slots */
	uint64_t st[ST_COUNT];
};

/* What pstm info prints. */
struct info {
	const char *uri;
	struct pstm_region_info in;
	char uuid[37];
	char created[64];        /* UTC, ISO 8601 */
	const char *durability;
	const char *wc_path;     /* relaxed: the working copy (the handle's) */
	uint64_t rt_off, rt_bytes, log_off;
	bool rt_inside;          /* the runtime is in the region, not companion shm */
	uint64_t clock;
	struct proc_row *procs;
	uint32_t nprocs;
	/* a walk of the heap: best effort while other processes allocate */
	struct alloc_report heap;
};

static void uuid_str(const uint8_t u[16], char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
		 u[11], u[12], u[13], u[14], u[15]);
}

/* Fill @i from the open region @r (live: other processes may be running).
 * i->procs is allocated; 0 or PSTM_ENOMEM. */
static int collect(pstm_region *r, const char *uri, struct info *i)
{
	memset(i, 0, sizeof(*i));
	i->uri = uri;
	pstm_region_info(r, &i->in);
	uuid_str(i->in.uuid, i->uuid);
	time_t ct = (time_t)(i->in.created_ns / 1000000000ull);
	strftime(i->created, sizeof(i->created), "%Y-%m-%dT%H:%M:%SZ", gmtime(&ct));
	i->durability = i->in.durability == PSTM_DURABLE   ? "durable"
			: i->in.durability == PSTM_RELAXED ? "relaxed"
							   : "volatile";
	i->wc_path = r->wc_path;
	i->rt_off = r->sb.rt_off;
	i->rt_bytes = r->sb.rt_bytes;
	i->rt_inside = r->sb.rt_inside;
	i->log_off = r->sb.log_off;
	i->clock = atomic_load(&r->rt->clock);

	i->procs = calloc(r->sb.max_procs, sizeof(*i->procs));
	if (!i->procs)
		return PSTM_ENOMEM;
	for (uint32_t p = 0; p < r->sb.max_procs; p++) {
		uint64_t ps = atomic_load(&r->procs[p].state);
		if (PROC_ST(ps) == PROC_FREE)
			continue;
		struct proc_row *row = &i->procs[i->nprocs++];
		row->entry = p;
		row->pid = atomic_load(&r->procs[p].pid);
		row->recovering = PROC_ST(ps) != PROC_ALIVE;
		for (int k = 0; k < ST_COUNT; k++)
			row->st[k] = atomic_load(&r->procs[p].stats[k]);
		for (uint32_t s = 0; s < r->sb.max_slots; s++) {
			uint64_t ss = atomic_load(&r->slots[s].state);
			if (SLOT_ST(ss) == SLOT_ACTIVE && SLOT_PROC(ss) == p) {
				row->slots++;
				for (int k = 0; k < ST_COUNT; k++)
					row->st[k] += atomic_load(&r->slots[s].stats[k]);
			}
		}
	}
	alloc_check(r, &i->heap);
	return 0;
}

/* Heap size classes with no block are left out of both outputs. */
static bool class_is_empty(const struct alloc_class_stat *k)
{
	return !k->used && !k->free;
}

static void print_text(const struct info *i)
{
	const struct pstm_region_info *in = &i->in;
	const struct alloc_report *h = &i->heap;
	char flush[192] = "";

	emit_line(stdout, LABEL_WIDTH, "region", "%s", i->uri);
	emit_line(stdout, LABEL_WIDTH, "uuid", "%s", i->uuid);
	emit_line(stdout, LABEL_WIDTH, "format", "%u", in->format_version);
	emit_line(stdout, LABEL_WIDTH, "size", "%llu bytes",
		  (unsigned long long)in->size_bytes);
	if (in->durability == PSTM_RELAXED)
		snprintf(flush, sizeof(flush), ", flushed to the file every %u ms "
			 "(working copy %s)", in->flush_ms, i->wc_path);
	emit_line(stdout, LABEL_WIDTH, "durability", "%s%s%s", i->durability,
		  in->is_pmem ? " (pmem)" : "", flush);
	emit_line(stdout, LABEL_WIDTH, "created", "%s", i->created);
	emit_line(stdout, LABEL_WIDTH, "limits", "%u processes, %u threads, %u-byte "
		  "redo logs, %llu orecs", in->max_procs, in->max_threads,
		  in->log_bytes, 1ull << in->orecs_log2);
	emit_line(stdout, LABEL_WIDTH, "layout", "runtime %s@%llu+%llu, logs @%llu, "
		  "heap @%llu+%llu", i->rt_inside ? "" : "(companion shm) ",
		  (unsigned long long)i->rt_off, (unsigned long long)i->rt_bytes,
		  (unsigned long long)i->log_off, (unsigned long long)in->heap_off,
		  (unsigned long long)in->heap_bytes);
	emit_line(stdout, LABEL_WIDTH, "clock", "%llu", (unsigned long long)i->clock);
	emit_line(stdout, LABEL_WIDTH, "processes", "(this pstm command is one of them)");
	printf("  %5s %8s %10s %10s %10s %10s %6s\n", "entry", "pid",
	       "commits", "ro", "aborts", "user-ab", "slots");
	for (uint32_t n = 0; n < i->nprocs; n++) {
		const struct proc_row *p = &i->procs[n];
		uint64_t aborts = p->st[ST_AB_READ] + p->st[ST_AB_LOCK] +
				  p->st[ST_AB_VALIDATE];
		printf("  %5u %8llu %10llu %10llu %10llu %10llu %6u %s\n", p->entry,
		       (unsigned long long)p->pid, (unsigned long long)p->st[ST_COMMITS],
		       (unsigned long long)p->st[ST_COMMITS_RO],
		       (unsigned long long)aborts, (unsigned long long)p->st[ST_AB_USER],
		       p->slots, p->recovering ? "recovering" : "");
	}

	emit_line(stdout, LABEL_WIDTH, "heap", "%llu of %llu bytes carved: %llu in "
		  "%llu blocks used, %llu free, %llu in slot chunks, %llu allocator "
		  "metadata%s", (unsigned long long)h->carved_bytes,
		  (unsigned long long)h->heap_bytes, (unsigned long long)h->used_bytes,
		  (unsigned long long)h->used_blocks, (unsigned long long)h->free_bytes,
		  (unsigned long long)h->chunk_bytes, (unsigned long long)h->meta_bytes,
		  h->problems ? " (inconsistent: see pstm check)" : "");
	printf("  %8s %10s %12s %10s %12s\n", "class", "used", "used-bytes",
	       "free", "free-bytes");
	for (int c = 0; c <= ALLOC_NCLASS; c++) {
		const struct alloc_class_stat *k = &h->cls[c];
		char size[24] = "large";
		if (class_is_empty(k))
			continue;
		if (c < ALLOC_NCLASS)
			snprintf(size, sizeof(size), "%llu", (unsigned long long)k->bytes);
		printf("  %8s %10llu %12llu %10llu %12llu\n", size,
		       (unsigned long long)k->used, (unsigned long long)k->used_bytes,
		       (unsigned long long)k->free, (unsigned long long)k->free_bytes);
	}
}

static void print_json(const struct info *i)
{
	const struct pstm_region_info *in = &i->in;
	const struct alloc_report *h = &i->heap;
	struct emit e;

	emit_to_file(&e, stdout);
	emit_object(&e, NULL);
	emit_str(&e, "uri", i->uri);
	emit_str(&e, "uuid", i->uuid);
	emit_u64(&e, "format_version", in->format_version);
	emit_u64(&e, "size_bytes", in->size_bytes);
	emit_str(&e, "durability", i->durability);
	emit_u64(&e, "flush_ms", in->flush_ms);
	emit_bool(&e, "is_pmem", in->is_pmem);
	emit_str(&e, "created", i->created);
	emit_u64(&e, "max_procs", in->max_procs);
	emit_u64(&e, "max_threads", in->max_threads);
	emit_u64(&e, "log_bytes", in->log_bytes);
	emit_u64(&e, "orecs", 1ull << in->orecs_log2);
	emit_object(&e, "layout");
	emit_u64(&e, "runtime_off", i->rt_off);
	emit_u64(&e, "runtime_bytes", i->rt_bytes);
	emit_bool(&e, "runtime_inside", i->rt_inside);
	emit_u64(&e, "log_off", i->log_off);
	emit_u64(&e, "heap_off", in->heap_off);
	emit_u64(&e, "heap_bytes", in->heap_bytes);
	emit_close(&e);
	emit_u64(&e, "clock", i->clock);

	emit_array(&e, "processes");
	for (uint32_t n = 0; n < i->nprocs; n++) {
		const struct proc_row *p = &i->procs[n];
		emit_object(&e, NULL);
		emit_u64(&e, "entry", p->entry);
		emit_u64(&e, "pid", p->pid);
		emit_str(&e, "state", p->recovering ? "recovering" : "alive");
		emit_u64(&e, "slots", p->slots);
		emit_u64(&e, "commits", p->st[ST_COMMITS]);
		emit_u64(&e, "commits_ro", p->st[ST_COMMITS_RO]);
		emit_u64(&e, "aborts_read", p->st[ST_AB_READ]);
		emit_u64(&e, "aborts_lock", p->st[ST_AB_LOCK]);
		emit_u64(&e, "aborts_validate", p->st[ST_AB_VALIDATE]);
		emit_u64(&e, "aborts_user", p->st[ST_AB_USER]);
		emit_u64(&e, "escalations", p->st[ST_ESCALATIONS]);
		emit_u64(&e, "recoveries", p->st[ST_RECOVERIES]);
		emit_close(&e);
	}
	emit_close(&e);

	emit_object(&e, "heap");
	emit_u64(&e, "heap_bytes", h->heap_bytes);
	emit_u64(&e, "carved_bytes", h->carved_bytes);
	emit_u64(&e, "used_blocks", h->used_blocks);
	emit_u64(&e, "used_bytes", h->used_bytes);
	emit_u64(&e, "free_blocks", h->free_blocks);
	emit_u64(&e, "free_bytes", h->free_bytes);
	emit_u64(&e, "meta_bytes", h->meta_bytes);
	emit_u64(&e, "chunk_bytes", h->chunk_bytes);
	emit_u64(&e, "slot_caches", h->caches);
	emit_u64(&e, "problems", h->problems);
	emit_array(&e, "classes");
	for (int c = 0; c <= ALLOC_NCLASS; c++) {
		const struct alloc_class_stat *k = &h->cls[c];
		if (class_is_empty(k))
			continue;
		emit_object(&e, NULL);
		if (c < ALLOC_NCLASS)
			emit_u64(&e, "size", k->bytes);
		else
			emit_str(&e, "size", "large");
		emit_u64(&e, "used", k->used);
		emit_u64(&e, "used_bytes", k->used_bytes);
		emit_u64(&e, "free", k->free);
		emit_u64(&e, "free_bytes", k->free_bytes);
		emit_close(&e);
	}
	emit_close(&e);
	emit_close(&e);
	emit_close(&e);
}

int cmd_info(int argc, char **argv)
{
	bool json = false;
	const char *uri;
	struct info i;
	int rc = cli_uri_args(argc, argv, "info", "usage: pstm info URI [--json]\n"
			      "Show the superblock, layout, attached processes and their\n"
			      "transaction statistics.\n", &json, &uri);
	if (rc >= 0)
		return rc;
	pstm_region *r;
	rc = pstm_open(uri, &r);
	if (rc)
		return cli_fail("cannot open", uri, rc);
	rc = collect(r, uri, &i);
	if (rc == 0) {
		if (json)
			print_json(&i);
		else
			print_text(&i);
	}
	free(i.procs);
	pstm_close(r); /* after printing: i.wc_path is the handle's */
	return rc ? cli_fail("cannot read", uri, rc) : 0;
}
