/*
 * cmd_queue.c - pstm queue: the region's task queue (pstm_register,
 * pstm_enqueue, pstm_queue_run): per task type the tasks pending, run,
 * failed and the attempts rolled back, and the failed tasks with their
 * errors; --retry-failed puts the failed tasks back in the queue,
 * --drop-failed deletes them (either lets pstm_queue_run run again).
 * Read in one read-only transaction through a handle that attaches
 * nothing (PSTM_OPEN_OBSERVE, as pstm dump), unless it retries or drops.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "emit.h"
#include "error.h"
#include "pstm.h"
#include "taskq.h"

static const char help[] =
	"usage: pstm queue URI [--retry-failed | --drop-failed] [--json|--pretty]\n"
	"Show the region's task queue: per task type the tasks pending, executed\n"
	"and failed and the attempts rolled back by conflicts; then the failed\n"
	"tasks, newest first, with their errors.  While any task has failed,\n"
	"pstm_queue_run returns the oldest one's error without running\n"
	"anything.  --retry-failed puts the failed tasks back in the queue;\n"
	"--drop-failed deletes them.  Exit status 1 if failed tasks are left\n"
	"(or the queue's counters disagree with its lanes).\n";

/* "PSTM_E... (text)" for a pstm code, "error N (strerror)" for a task's
 * own positive one */
static void error_text(int err, char *out, size_t n)
{
	const char *name = error_name(err);
	if (name)
		snprintf(out, n, "%s (%s)", name, pstm_strerror(err));
	else if (err > 0)
		snprintf(out, n, "error %d (%s)", err, pstm_strerror(err));
	else
		snprintf(out, n, "error %d", err);
}

static const char *type_name(const struct taskq_listing *l, uint32_t t)
{
	return t < l->ntypes ? l->types[t].name : "?";
}

static void print_text(const char *uri, const struct taskq_listing *l)
{
	char err[160];
	emit_line(stdout, 8, "queue", "%s: %u task types, %llu pending, %llu failed",
		  uri, l->ntypes, (unsigned long long)l->pending,
		  (unsigned long long)l->failed_count);
	if (l->pending != l->in_lanes)
		printf("  inconsistent: the counters say %llu pending, the lanes hold %llu\n",
		       (unsigned long long)l->pending, (unsigned long long)l->in_lanes);
	if (l->failed_count) {
		error_text(l->first_err, err, sizeof(err));
		printf("  stopped: every pstm_queue_run returns %s\n"
		       "           until the failed tasks are retried or dropped\n", err);
	}
	if (l->ntypes)
		printf("  %-24s %10s %10s %8s %8s\n", "type", "pending", "executed",
		       "failed", "aborts");
	for (uint32_t t = 0; t < l->ntypes; t++) {
		const struct taskq_type_info *ty = &l->types[t];
		printf("  %-24s %10llu %10llu %8llu %8llu\n", ty->name,
		       (unsigned long long)ty->pending, (unsigned long long)ty->executed,
		       (unsigned long long)ty->failed, (unsigned long long)ty->aborts);
	}
	if (l->nfailed)
		printf("failed tasks (newest first):\n");
	for (uint64_t i = 0; i < l->nfailed; i++) {
		const struct taskq_failed_task *f = &l->failed[i];
		error_text(f->err, err, sizeof(err));
		printf("  id %-16llx %-24s %8llu bytes  %s\n", (unsigned long long)f->id,
		       type_name(l, f->type), (unsigned long long)f->len, err);
	}
}

static void emit_error(struct emit *e, const char *key, int err)
{
	const char *name = error_name(err);
	emit_object(e, key);
	emit_int(e, "code", err);
	if (name)
		emit_str(e, "name", name);
	else
		emit_null(e, "name");
	emit_str(e, "message", pstm_strerror(err));
	emit_close(e);
}

static int print_json(const char *uri, const struct taskq_listing *l, const char *done,
		      uint64_t moved)
{
	struct emit e;
	cli_json_begin(&e, uri);
	if (done)
		emit_u64(&e, done, moved);
	emit_u64(&e, "pending", l->pending);
	emit_u64(&e, "in_lanes", l->in_lanes);
	emit_u64(&e, "failed_count", l->failed_count);
	if (l->failed_count)
		emit_error(&e, "first_error", l->first_err);
	else
		emit_null(&e, "first_error");
	emit_array(&e, "types");
	for (uint32_t t = 0; t < l->ntypes; t++) {
		const struct taskq_type_info *ty = &l->types[t];
		emit_object(&e, NULL);
		emit_str(&e, "name", ty->name);
		emit_u64(&e, "pending", ty->pending);
		emit_u64(&e, "executed", ty->executed);
		emit_u64(&e, "failed", ty->failed);
		emit_u64(&e, "aborts", ty->aborts);
		emit_u64(&e, "failed_now", ty->failed_now);
		emit_close(&e);
	}
	emit_close(&e);
	emit_array(&e, "failed");
	for (uint64_t i = 0; i < l->nfailed; i++) {
		const struct taskq_failed_task *f = &l->failed[i];
		emit_object(&e, NULL);
		emit_u64(&e, "id", f->id);
		emit_str(&e, "type", type_name(l, f->type));
		emit_u64(&e, "bytes", f->len);
		emit_error(&e, "error", f->err);
		emit_close(&e);
	}
	emit_close(&e);
	return cli_json_end(&e, uri);
}

int cmd_queue(int argc, char **argv)
{
	static const struct option lo[] = {{"retry-failed", no_argument, 0, 'r'},
					   {"drop-failed", no_argument, 0, 'd'},
					   {"json", no_argument, 0, 'j'},
					   {"pretty", no_argument, 0, 'p'},
					   {"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	int c, action = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'r':
		case 'd':
			if (action && action != c)
				return cli_usage_error("--retry-failed and --drop-failed "
						       "exclude each other");
			action = c;
			break;
		case 'j': cli_set_json(false); break;
		case 'p': cli_set_json(true); break;
		case 'h': fputs(help, stdout); return 0;
		default: return 2; /* getopt said why */
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("queue needs exactly one URI");
	const char *uri = argv[optind];
	pstm_region *r;
	struct taskq_listing l;
	uint64_t moved = 0;
	const char *done = action == 'r' ? "retried" : action == 'd' ? "dropped" : NULL;
	/* listing only: attach nothing (read permission is enough, a full
	 * process table does not matter, nobody is recovered) */
	int rc = action ? pstm_open(uri, &r) : pstm_open_opts(uri, PSTM_OPEN_OBSERVE, &r);
	if (rc)
		return cli_fail("cannot open", uri, rc);
	if (action == 'r')
		rc = taskq_retry_failed(r, &moved);
	else if (action == 'd')
		rc = taskq_drop_failed(r, &moved);
	if (rc) {
		pstm_close(r);
		return cli_fail(action == 'r' ? "cannot retry the failed tasks of"
					      : "cannot drop the failed tasks of", uri, rc);
	}
	rc = taskq_list(r, &l);
	pstm_close(r);
	if (rc == PSTM_ENOENT) { /* no queue yet: an empty one */
		rc = 0;
		l = (struct taskq_listing){0};
	}
	if (rc)
		return cli_fail("cannot read the queue of", uri, rc);
	if (cli_json) {
		rc = print_json(uri, &l, done, moved);
	} else {
		if (done)
			printf("%s %llu failed task%s\n", done, (unsigned long long)moved,
			       moved == 1 ? "" : "s");
		print_text(uri, &l);
		rc = 0;
	}
	if (!rc && (l.failed_count || l.pending != l.in_lanes))
		rc = 1;
	taskq_listing_free(&l);
	return rc;
}
