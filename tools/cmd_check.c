/*
 * cmd_check.c - pstm check (offline verification) and pstm recover
 * (explicit recovery, with a report of what it did).
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "check.h"
#include "cli.h"
#include "emit.h"

static const char *sev_name[] = {"info", "pending", "damage"};

/* check --json: the report, or why there is none (@rc) */
static void print_json(const char *uri, int rc, const struct check_report *rep)
{
	struct emit e;
	emit_to_file(&e, stdout);
	emit_object(&e, NULL);
	emit_str(&e, "uri", uri);
	if (rc) {
		emit_bool(&e, "clean", false);
		emit_str(&e, "error", pstm_strerror(rc));
		emit_close(&e);
		return;
	}
	emit_bool(&e, "clean", !rep->damage);
	emit_u64(&e, "damage", rep->damage);
	emit_u64(&e, "pending", rep->pending);
	emit_u64(&e, "committed_logs", rep->logs_committed);
	emit_u64(&e, "processes", rep->procs_attached);
	emit_u64(&e, "dead_processes", rep->procs_dead);
	emit_u64(&e, "locked_orecs", rep->orecs_locked);
	emit_array(&e, "findings");
	for (unsigned i = 0; i < rep->n; i++) {
		emit_object(&e, NULL);
		emit_str(&e, "severity", sev_name[rep->f[i].severity]);
		emit_str(&e, "text", rep->f[i].text);
		emit_close(&e);
	}
	emit_close(&e);
	emit_close(&e);
}

int cmd_check(int argc, char **argv)
{
	bool json = false;
	const char *uri;
	int rc = cli_uri_args(argc, argv, "check", "usage: pstm check URI [--json]\n"
			      "Verify a region without modifying it: superblock and its\n"
			      "checksum, redo logs and their checksums, process and slot\n"
			      "tables, orecs, heap header.  Exit 0 if clean (recovery may\n"
			      "be pending: see 'pstm recover'), 1 if damaged or unreadable,\n"
			      "2 on a usage error.\n", &json, &uri);
	if (rc >= 0)
		return rc;
	struct check_report rep;
	rc = region_check(uri, &rep);
	if (json) {
		print_json(uri, rc, &rep);
		if (rc)
			return 1;
	} else {
		if (rc) {
			fprintf(stderr, "%s: %s: %s\n", cli_prog, uri, pstm_strerror(rc));
			return 1;
		}
		for (unsigned i = 0; i < rep.n; i++)
			printf("%-8s %s\n", sev_name[rep.f[i].severity], rep.f[i].text);
		printf("%s: %s (%u damaged, %u pending recovery)\n", uri,
		       rep.damage ? "DAMAGED" : "clean", rep.damage, rep.pending);
	}
	int out = rep.damage ? 1 : 0;
	check_report_free(&rep);
	return out;
}

int cmd_recover(int argc, char **argv)
{
	const char *uri;
	int rc = cli_uri_args(argc, argv, "recover", "usage: pstm recover URI\n"
			      "Run recovery now: settle the slots of dead processes (replay\n"
			      "their committed transactions, release their locks) and,\n"
			      "after a reboot or power failure, replay every committed redo\n"
			      "log.  Prints what was done.  Every pstm_open does the same.\n",
			      NULL, &uri);
	if (rc >= 0)
		return rc;
	pstm_region *r;
	rc = pstm_open(uri, &r);
	if (rc)
		return cli_fail("cannot recover", uri, rc);
	struct open_recovery rec;
	region_open_recovery(r, &rec);
	printf("%s: %llu dead process(es) recovered, %llu committed log(s) "
	       "replayed%s\n",
	       uri, (unsigned long long)rec.procs_recovered,
	       (unsigned long long)rec.logs_replayed,
	       rec.runtime_rebuilt ? ", runtime rebuilt" : "");
	pstm_close(r);
	return 0;
}
