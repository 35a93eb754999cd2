/*
 * report.c - what pstm-crashtest says: the first violation, as it happens
 * (stderr, and kept for the summary), and the summary at the end, as text
 * or as one JSON object (--json; docs/crashtest.md names its keys).
 */
#include <stdarg.h>
#include <stdio.h>

#include "crashtest.h"
#include "emit.h"

/* the text summary's labels, two columns in, "relaxed region" the longest */
enum { LABEL_WIDTH = 18 };

/* Record the first violation (later ones are consequences); returns -1. */
int report_violation(struct ct *c, const char *fmt, ...)
{
	va_list ap;
	if (c->violated)
		return -1;
	c->violated = true;
	va_start(ap, fmt);
	vsnprintf(c->violation, sizeof(c->violation), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: VIOLATION: %s\n", PROG, c->violation);
	return -1;
}

/* What a transaction's non-zero result means. */
const char *report_tx_error(int rc, char *buf, size_t n)
{
	if (rc <= PSTM_EINVAL && rc >= PSTM_ERR_LAST)
		return pstm_strerror(rc);
	snprintf(buf, n, "the workload returned %d", rc);
	return buf;
}

/* What both forms of the summary print besides struct ct's own fields. */
struct totals {
	uint64_t commits, worst_ns;
	const char *persistence, *durability;
};

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static void summary_json(const struct ct *c, const struct totals *t)
{
	struct emit e;
	emit_to_file(&e, stdout);
	emit_object(&e, NULL);
	emit_bool(&e, "ok", !c->violated);
	emit_str(&e, "uri", c->uri);
	emit_str(&e, "workload", c->wl_name);
	emit_int(&e, "procs", c->procs);
	emit_u64(&e, "seed", c->seed);
	emit_str(&e, "persistence", t->persistence);
	emit_int(&e, "random_kills", c->kill_rounds);
	emit_int(&e, "crash_point_victims", c->point_victims);
	emit_int(&e, "recovery_point_victims", c->recovery_victims);
	emit_int(&e, "powerfail_images", c->pf_images);
	emit_int(&e, "crashes", c->crashes);
	emit_int(&e, "checks", c->checks);
	emit_u64(&e, "commits", t->commits);
	emit_fixed(&e, "worst_tx_ms", ms(t->worst_ns), 3);
	emit_str(&e, "durability", t->durability);
	if (c->relaxed) {
		emit_u64(&e, "flush_ms", c->region_flush_ms);
		emit_int(&e, "sync_every", SYNC_EVERY);
		emit_int(&e, "flush_point_victims", c->flush_victims);
		emit_u64(&e, "powerfail_lost_acked", c->pf_lost_acked);
		emit_int(&e, "powerfail_lossy_images", c->pf_lossy);
		emit_u64(&e, "powerfail_lost_synced", c->pf_lost_synced);
	}
	if (c->gap_n) {
		emit_object(&e, "kill_to_commit_ms");
		emit_fixed(&e, "max", ms(c->gap_max_ns), 3);
		emit_fixed(&e, "mean", ms(c->gap_sum_ns / c->gap_n), 3);
		emit_u64(&e, "samples", c->gap_n);
		emit_close(&e);
	} else {
		emit_null(&e, "kill_to_commit_ms");
	}
	emit_array(&e, "violations");
	if (c->violated)
		emit_str(&e, NULL, c->violation);
	emit_close(&e);
	if (c->violated || c->keep)
		emit_str(&e, "kept", c->violated ? c->inspect : c->uri);
	else
		emit_null(&e, "kept");
	emit_close(&e);
}

static void summary_text(const struct ct *c, const struct totals *t)
{
	printf("%s: workload %s on %s, %d workers, seed %llu\n", PROG, c->wl_name,
	       c->uri, c->procs, (unsigned long long)c->seed);
	if (c->relaxed)
		emit_line(stdout, LABEL_WIDTH, "  relaxed region", "flushed every %u ms; "
			  "workers pstm_sync every %d steps", c->region_flush_ms,
			  SYNC_EVERY);
	emit_line(stdout, LABEL_WIDTH, "  random kills", "%ld rounds", c->kill_rounds);
	if (c->relaxed)
		emit_line(stdout, LABEL_WIDTH, "  crash points", "%ld victims at commit "
			  "points, %ld at the flusher's points, %ld openers killed "
			  "while recovering", c->point_victims, c->flush_victims,
			  c->recovery_victims);
	else
		emit_line(stdout, LABEL_WIDTH, "  crash points", "%ld victims at commit "
			  "points, %ld openers killed while recovering",
			  c->point_victims, c->recovery_victims);
	if (c->is_file)
		emit_line(stdout, LABEL_WIDTH, "  power failures", "%ld images (%s)",
			  c->pf_images, t->persistence);
	else
		emit_line(stdout, LABEL_WIDTH, "  power failures",
			  "none (shm: does not survive them)");
	if (c->relaxed && (c->pf_images || c->pf_lost_synced))
		emit_line(stdout, LABEL_WIDTH, "  relaxed losses", "%llu acknowledged "
			  "commits lost in %ld of %ld power failures (allowed: not yet "
			  "synced); synced commits lost: %llu%s",
			  (unsigned long long)c->pf_lost_acked, c->pf_lossy, c->pf_images,
			  (unsigned long long)c->pf_lost_synced,
			  c->pf_lost_synced ? " (a violation)" : "");
	emit_line(stdout, LABEL_WIDTH, "  crashes", "%ld (each followed by a check; "
		  "%ld checks)", c->crashes, c->checks);
	emit_line(stdout, LABEL_WIDTH, "  commits", "%llu acknowledged",
		  (unsigned long long)t->commits);
	emit_line(stdout, LABEL_WIDTH, "  worst stall", "%.3f ms (longest single "
		  "transaction of a worker)", ms(t->worst_ns));
	if (c->gap_n)
		emit_line(stdout, LABEL_WIDTH, "  kill to commit", "max %.3f ms, mean "
			  "%.3f ms (first survivor commit after a kill)",
			  ms(c->gap_max_ns), ms(c->gap_sum_ns / c->gap_n));
	if (c->violated) {
		emit_line(stdout, LABEL_WIDTH, "  violations", "1: %s", c->violation);
		printf("FAILED (kept for inspection: pstm check %s)\n", c->inspect);
	} else {
		emit_line(stdout, LABEL_WIDTH, "  violations", "0");
		printf("OK\n");
	}
}

/* The summary on stdout, after the run. */
void report_summary(const struct ct *c)
{
	struct totals t = {
		.commits = atomic_load(&c->sh->commits),
		.worst_ns = atomic_load(&c->sh->worst_ns),
		.persistence = !c->is_file ? "none (shm)"
			       : c->is_pmem ? "pmem flush+drain" : "msync",
		.durability = c->relaxed   ? "relaxed"
			      : c->is_file ? "durable" : "volatile",
	};
	if (c->json)
		summary_json(c, &t);
	else
		summary_text(c, &t);
}
