/*
 * cmd_info.c - pstm info: a region's superblock, layout, runtime,
 * attached processes with their statistics, and heap use, read once
 * through a read-only mapping (region_inspect: no attaching, no
 * recovery) and then printed as text or as JSON.
 */
#define _GNU_SOURCE
#include <string.h>
#include <time.h>

#include "cli.h"
#include "emit.h"
#include "inspect.h"

/* the text's labels, "durability" the longest */
enum { LABEL_WIDTH = 11 };

static const char *proc_state[] = {
	[INSPECT_ALIVE] = "alive",
	[INSPECT_DEAD] = "dead",
	[INSPECT_RECOVERING] = "recovering",
};
static const char *rt_state[] = {
	[INSPECT_RT_FOUND] = "found",
	[INSPECT_RT_MISSING] = "missing",
	[INSPECT_RT_STALE] = "stale",
};

static void uuid_str(const uint8_t u[16], char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
		 u[11], u[12], u[13], u[14], u[15]);
}

/* UTC, ISO 8601 */
static void created_str(uint64_t ns, char out[64])
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(out, 64, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 64, "?");
}

static const char *durability_name(int d)
{
	return d == PSTM_DURABLE ? "durable" : d == PSTM_RELAXED ? "relaxed" : "volatile";
}

void cli_emit_region(struct emit *e, const struct pstm_region_info *in)
{
	char uuid[37], created[64];
	uuid_str(in->uuid, uuid);
	created_str(in->created_ns, created);
	emit_str(e, "uuid", uuid);
	emit_u64(e, "format_version", in->format_version);
	emit_u64(e, "size_bytes", in->size_bytes);
	emit_str(e, "durability", durability_name(in->durability));
	emit_u64(e, "flush_ms", in->flush_ms);
	emit_bool(e, "is_pmem", in->is_pmem);
	emit_str(e, "created", created);
	emit_u64(e, "max_procs", in->max_procs);
	emit_u64(e, "max_threads", in->max_threads);
	emit_u64(e, "log_bytes", in->log_bytes);
	emit_u64(e, "orecs", 1ull << in->orecs_log2);
}

/* Heap size classes with no block are left out of both outputs. */
static bool class_is_empty(const struct alloc_class_stat *k)
{
	return !k->used && !k->free;
}

static uint64_t aborts(const struct pstm_stats *s)
{
	return s->aborts_read + s->aborts_lock + s->aborts_validate;
}

static void text_runtime(const struct inspect_report *i)
{
	char where[128];
	if (i->rt_inside)
		snprintf(where, sizeof(where), "in the region");
	else
		snprintf(where, sizeof(where), "%s", i->rt_path);
	if (i->runtime == INSPECT_RT_FOUND)
		emit_line(stdout, LABEL_WIDTH, "runtime", "%s, clock %llu", where,
			  (unsigned long long)i->clock);
	else if (i->runtime == INSPECT_RT_MISSING)
		emit_line(stdout, LABEL_WIDTH, "runtime", "none (%s): the next open "
			  "builds it and replays committed logs", where);
	else
		emit_line(stdout, LABEL_WIDTH, "runtime", "stale (%s, of another boot "
			  "or region): the next open rebuilds it", where);
}

static void text_procs(const struct inspect_report *i)
{
	char attached[64] = "";
	if (i->runtime != INSPECT_RT_FOUND)
		return;
	snprintf(attached, sizeof(attached), "%u of %u entries in use", i->nprocs,
		 i->info.max_procs);
	emit_line(stdout, LABEL_WIDTH, "processes", "%s", attached);
	if (!i->nprocs)
		return;
	printf("  %5s %8s %10s %10s %10s %10s %6s\n", "entry", "pid",
	       "commits", "ro", "aborts", "user-ab", "slots");
	for (uint32_t n = 0; n < i->nprocs; n++) {
		const struct inspect_proc *p = &i->procs[n];
		printf("  %5u %8llu %10llu %10llu %10llu %10llu %6u %s\n", p->entry,
		       (unsigned long long)p->pid, (unsigned long long)p->st.commits,
		       (unsigned long long)p->st.commits_ro,
		       (unsigned long long)aborts(&p->st),
		       (unsigned long long)p->st.aborts_user, p->slots,
		       p->state == INSPECT_ALIVE ? "" : proc_state[p->state]);
	}
}

static void text_heap(const struct inspect_report *i)
{
	const struct alloc_report *h = &i->heap;
	char b[6][EMIT_SIZE_LEN];
	if (!i->heap_valid) {
		emit_line(stdout, LABEL_WIDTH, "heap", "header invalid: see pstm check");
		return;
	}
	emit_line(stdout, LABEL_WIDTH, "heap", "%s of %s carved: %s in %llu blocks "
		  "used, %s free, %s in slot chunks, %s allocator metadata%s",
		  emit_size(b[0], h->carved_bytes), emit_size(b[1], h->heap_bytes),
		  emit_size(b[2], h->used_bytes), (unsigned long long)h->used_blocks,
		  emit_size(b[3], h->free_bytes), emit_size(b[4], h->chunk_bytes),
		  emit_size(b[5], h->meta_bytes),
		  h->problems ? " (inconsistent: see pstm check)" : "");
	bool header = false;
	for (int c = 0; c <= ALLOC_NCLASS; c++) {
		const struct alloc_class_stat *k = &h->cls[c];
		if (class_is_empty(k))
			continue;
		if (!header)
			printf("  %10s %10s %12s %10s %12s\n", "class", "used",
			       "used-bytes", "free", "free-bytes");
		header = true;
		/* a class is named by its exact block size */
		snprintf(b[0], sizeof(b[0]), "%llu", (unsigned long long)k->bytes);
		printf("  %10s %10llu %12s %10llu %12s\n",
		       c < ALLOC_NCLASS ? b[0] : "large",
		       (unsigned long long)k->used, emit_size(b[1], k->used_bytes),
		       (unsigned long long)k->free, emit_size(b[2], k->free_bytes));
	}
}

/* The task queue: per type, the counters of pstm queue. */
static void text_tasks(const struct inspect_report *i)
{
	const struct taskq_inspect *q = &i->tasks;
	if (!i->heap_valid || !q->present)
		return;
	if (!q->valid) {
		emit_line(stdout, LABEL_WIDTH, "tasks", "queue header invalid or being "
			  "made: see pstm check, pstm queue");
		return;
	}
	emit_line(stdout, LABEL_WIDTH, "tasks", "%u types, %llu pending, %llu failed%s",
		  q->ntypes, (unsigned long long)q->pending,
		  (unsigned long long)q->failed_count,
		  q->failed_count ? " (the queue is stopped: pstm queue)" : "");
	if (q->ntypes)
		printf("  %-24s %10s %10s %8s %8s\n", "type", "pending", "executed",
		       "failed", "aborts");
	for (uint32_t t = 0; t < q->ntypes; t++)
		printf("  %-24s %10llu %10llu %8llu %8llu\n", q->types[t].name,
		       (unsigned long long)q->types[t].pending,
		       (unsigned long long)q->types[t].executed,
		       (unsigned long long)q->types[t].failed,
		       (unsigned long long)q->types[t].aborts);
}

static void print_text(const char *uri, const struct inspect_report *i)
{
	const struct pstm_region_info *in = &i->info;
	char uuid[37], created[64], flush[192] = "", b[4][EMIT_SIZE_LEN];

	uuid_str(in->uuid, uuid);
	created_str(in->created_ns, created);
	emit_line(stdout, LABEL_WIDTH, "region", "%s", uri);
	emit_line(stdout, LABEL_WIDTH, "uuid", "%s", uuid);
	emit_line(stdout, LABEL_WIDTH, "format", "%u", in->format_version);
	emit_line(stdout, LABEL_WIDTH, "size", "%s", emit_size(b[0], in->size_bytes));
	if (in->durability == PSTM_RELAXED)
		snprintf(flush, sizeof(flush), ", flushed to the file every %u ms "
			 "(working copy %s%s)", in->flush_ms, i->wc_path,
			 i->wc_found ? "" : ": none");
	emit_line(stdout, LABEL_WIDTH, "durability", "%s%s%s",
		  durability_name(in->durability), in->is_pmem ? " (DAX: pmem)" : "",
		  flush);
	emit_line(stdout, LABEL_WIDTH, "created", "%s", created);
	emit_line(stdout, LABEL_WIDTH, "limits", "%u processes, %u threads, %s "
		  "redo logs, %llu orecs", in->max_procs, in->max_threads,
		  emit_size(b[0], in->log_bytes), 1ull << in->orecs_log2);
	emit_line(stdout, LABEL_WIDTH, "layout", "runtime %s@%llu+%s, logs @%llu, "
		  "heap @%llu+%s", i->rt_inside ? "" : "(companion shm) ",
		  (unsigned long long)i->rt_off, emit_size(b[1], i->rt_bytes),
		  (unsigned long long)i->log_off, (unsigned long long)in->heap_off,
		  emit_size(b[2], in->heap_bytes));
	text_runtime(i);
	text_procs(i);
	text_heap(i);
	text_tasks(i);
}

static void json_procs(struct emit *e, const struct inspect_report *i)
{
	emit_array(e, "processes");
	for (uint32_t n = 0; n < i->nprocs; n++) {
		const struct inspect_proc *p = &i->procs[n];
		emit_object(e, NULL);
		emit_u64(e, "entry", p->entry);
		emit_u64(e, "pid", p->pid);
		emit_str(e, "state", proc_state[p->state]);
		emit_u64(e, "slots", p->slots);
		emit_u64(e, "commits", p->st.commits);
		emit_u64(e, "commits_ro", p->st.commits_ro);
		emit_u64(e, "aborts_read", p->st.aborts_read);
		emit_u64(e, "aborts_lock", p->st.aborts_lock);
		emit_u64(e, "aborts_validate", p->st.aborts_validate);
		emit_u64(e, "aborts_user", p->st.aborts_user);
		emit_u64(e, "escalations", p->st.escalations);
		emit_u64(e, "recoveries", p->st.recoveries);
		emit_close(e);
	}
	emit_close(e);
}

static void json_heap(struct emit *e, const struct inspect_report *i)
{
	const struct alloc_report *h = &i->heap;
	if (!i->heap_valid) {
		emit_null(e, "heap");
		return;
	}
	emit_object(e, "heap");
	emit_u64(e, "heap_bytes", h->heap_bytes);
	emit_u64(e, "carved_bytes", h->carved_bytes);
	emit_u64(e, "used_blocks", h->used_blocks);
	emit_u64(e, "used_bytes", h->used_bytes);
	emit_u64(e, "free_blocks", h->free_blocks);
	emit_u64(e, "free_bytes", h->free_bytes);
	emit_u64(e, "meta_bytes", h->meta_bytes);
	emit_u64(e, "chunk_bytes", h->chunk_bytes);
	emit_u64(e, "slot_caches", h->caches);
	emit_u64(e, "problems", h->problems);
	emit_array(e, "classes");
	for (int c = 0; c <= ALLOC_NCLASS; c++) {
		const struct alloc_class_stat *k = &h->cls[c];
		if (class_is_empty(k))
			continue;
		emit_object(e, NULL);
		if (c < ALLOC_NCLASS)
			emit_u64(e, "size", k->bytes);
		else
			emit_str(e, "size", "large");
		emit_u64(e, "used", k->used);
		emit_u64(e, "used_bytes", k->used_bytes);
		emit_u64(e, "free", k->free);
		emit_u64(e, "free_bytes", k->free_bytes);
		emit_close(e);
	}
	emit_close(e);
	emit_close(e);
}

static void json_tasks(struct emit *e, const struct inspect_report *i)
{
	const struct taskq_inspect *q = &i->tasks;
	if (!i->heap_valid || !q->present) {
		emit_null(e, "tasks");
		return;
	}
	emit_object(e, "tasks");
	emit_bool(e, "valid", q->valid);
	emit_u64(e, "pending", q->pending);
	emit_u64(e, "failed_count", q->failed_count);
	emit_array(e, "types");
	for (uint32_t t = 0; t < q->ntypes; t++) {
		emit_object(e, NULL);
		emit_str(e, "name", q->types[t].name);
		emit_u64(e, "pending", q->types[t].pending);
		emit_u64(e, "executed", q->types[t].executed);
		emit_u64(e, "failed", q->types[t].failed);
		emit_u64(e, "aborts", q->types[t].aborts);
		emit_close(e);
	}
	emit_close(e);
	emit_close(e);
}

static int print_json(const char *uri, const struct inspect_report *i)
{
	const struct pstm_region_info *in = &i->info;
	struct emit e;

	cli_json_begin(&e, uri);
	cli_emit_region(&e, in);
	emit_object(&e, "layout");
	emit_u64(&e, "runtime_off", i->rt_off);
	emit_u64(&e, "runtime_bytes", i->rt_bytes);
	emit_bool(&e, "runtime_inside", i->rt_inside);
	emit_u64(&e, "log_off", i->log_off);
	emit_u64(&e, "heap_off", in->heap_off);
	emit_u64(&e, "heap_bytes", in->heap_bytes);
	emit_close(&e);

	emit_object(&e, "runtime");
	emit_bool(&e, "found", i->runtime == INSPECT_RT_FOUND);
	emit_str(&e, "state", rt_state[i->runtime]);
	if (i->rt_inside)
		emit_null(&e, "path");
	else
		emit_str(&e, "path", i->rt_path);
	if (i->runtime == INSPECT_RT_FOUND)
		emit_u64(&e, "clock", i->clock);
	else
		emit_null(&e, "clock");
	emit_close(&e);
	if (in->durability == PSTM_RELAXED) {
		emit_object(&e, "working_copy");
		emit_str(&e, "path", i->wc_path);
		emit_bool(&e, "found", i->wc_found);
		emit_close(&e);
	} else {
		emit_null(&e, "working_copy");
	}
	json_procs(&e, i);
	json_heap(&e, i);
	json_tasks(&e, i);
	return cli_json_end(&e, uri);
}

int cmd_info(int argc, char **argv)
{
	bool json = false;
	const char *uri;
	struct inspect_report i;
	int rc = cli_uri_args(argc, argv, "info",
			      "usage: pstm info URI [--json|--pretty]\n"
			      "Show the superblock, layout, runtime, attached processes\n"
			      "with their transaction statistics, heap use, and the task\n"
			      "queue's statistics per task type.  Reads\n"
			      "the region without attaching to it or recovering anything:\n"
			      "read permission is enough, and a full process table is no\n"
			      "obstacle.\n", &json, &uri);
	if (rc >= 0)
		return rc;
	rc = region_inspect(uri, &i);
	if (rc)
		return cli_fail("cannot read", uri, rc);
	if (json) {
		rc = print_json(uri, &i);
	} else {
		print_text(uri, &i);
		rc = 0;
	}
	inspect_report_free(&i);
	return rc;
}
