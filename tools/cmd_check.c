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

/* check --json: the report */
static int print_json(const char *uri, const struct check_report *rep)
{
	struct emit e;
	cli_json_begin(&e, uri);
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
	return cli_json_end(&e, uri);
}

int cmd_check(int argc, char **argv)
{
	bool json = false;
	const char *uri;
	int rc = cli_uri_args(argc, argv, "check", "usage: pstm check URI [--json|--pretty]\n"
			      "Verify a region without modifying it: superblock and its\n"
			      "checksum, redo logs and their checksums, process and slot\n"
			      "tables, orecs, heap header.  Read permission is enough; it\n"
			      "never attaches or recovers.  Exit 0 if clean (recovery may\n"
			      "be pending: see 'pstm recover'), 1 if damaged or unreadable,\n"
			      "2 on a usage error.\n", &json, &uri);
	if (rc >= 0)
		return rc;
	struct check_report rep;
	rc = region_check(uri, &rep);
	if (rc)
		return cli_fail("cannot check", uri, rc);
	int out = rep.damage ? 1 : 0;
	if (json) {
		if (print_json(uri, &rep))
			out = 1;
	} else {
		for (unsigned i = 0; i < rep.n; i++)
			printf("%-8s %s\n", sev_name[rep.f[i].severity], rep.f[i].text);
		printf("%s: %s (%u damaged, %u pending recovery)\n", uri,
		       rep.damage ? "DAMAGED" : "clean", rep.damage, rep.pending);
	}
	check_report_free(&rep);
	return out;
}

int cmd_recover(int argc, char **argv)
{
	bool json = false;
	const char *uri;
	int rc = cli_uri_args(argc, argv, "recover", "usage: pstm recover URI [--json|--pretty]\n"
			      "Run recovery now: settle the slots of dead processes (replay\n"
			      "their committed transactions, release their locks) and,\n"
			      "after a reboot or power failure, replay every committed redo\n"
			      "log.  Prints what was done.  Every pstm_open does the same.\n",
			      &json, &uri);
	if (rc >= 0)
		return rc;
	pstm_region *r;
	rc = pstm_open(uri, &r);
	if (rc)
		return cli_fail("cannot recover", uri, rc);
	struct open_recovery rec;
	region_open_recovery(r, &rec);
	if (json) {
		struct emit e;
		cli_json_begin(&e, uri);
		emit_u64(&e, "processes_recovered", rec.procs_recovered);
		emit_u64(&e, "logs_replayed", rec.logs_replayed);
		emit_bool(&e, "runtime_rebuilt", rec.runtime_rebuilt);
		rc = cli_json_end(&e, uri);
	} else {
		printf("%s: %llu dead process(es) recovered, %llu committed log(s) "
		       "replayed%s\n",
		       uri, (unsigned long long)rec.procs_recovered,
		       (unsigned long long)rec.logs_replayed,
		       rec.runtime_rebuilt ? ", runtime rebuilt" : "");
	}
	pstm_close(r);
	return rc;
}
