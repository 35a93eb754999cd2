/*
 * cmd_check.c - pstm check (offline verification) and pstm recover
 * (explicit recovery, with a report of what it did).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "cli.h"

static const char *sev_name[] = {"info", "pending", "damage"};

int cmd_check(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, 0, 'j'},
					   {"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	int json = 0, c;

	while ((c = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
		if (c == 'j') {
			json = 1;
		} else if (c == 'h') {
			printf("usage: pstm check URI [--json]\n"
			       "Verify a region without modifying it: superblock and its\n"
			       "checksum, redo logs and their checksums, process and slot\n"
			       "tables, orecs, heap header.  Exit 0 if clean (recovery may\n"
			       "be pending: see 'pstm recover'), 1 if damaged or unreadable,\n"
			       "2 on a usage error.\n");
			return 0;
		} else {
			return 2;
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("check needs exactly one URI");
	const char *uri = argv[optind];
	struct check_report rep;
	int rc = region_check(uri, &rep);
	if (json) {
		printf("{\"uri\":");
		cli_json_string(stdout, uri);
		if (rc) {
			printf(",\"clean\":false,\"error\":");
			cli_json_string(stdout, pstm_strerror(rc));
			printf("}\n");
			return 1;
		}
		printf(",\"clean\":%s,\"damage\":%u,\"pending\":%u,"
		       "\"committed_logs\":%u,\"processes\":%u,\"dead_processes\":%u,"
		       "\"locked_orecs\":%u,\"findings\":[",
		       rep.damage ? "false" : "true", rep.damage, rep.pending,
		       rep.logs_committed, rep.procs_attached, rep.procs_dead,
		       rep.orecs_locked);
		for (unsigned i = 0; i < rep.n; i++) {
			printf("%s{\"severity\":\"%s\",\"text\":", i ? "," : "",
			       sev_name[rep.f[i].severity]);
			cli_json_string(stdout, rep.f[i].text);
			printf("}");
		}
		printf("]}\n");
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
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: pstm recover URI\n"
		       "Run recovery now: settle the slots of dead processes (replay\n"
		       "their committed transactions, release their locks) and,\n"
		       "after a reboot or power failure, replay every committed redo\n"
		       "log.  Prints what was done.  Every pstm_open does the same.\n");
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage_error("recover needs exactly one URI");
	pstm_region *r;
	int rc = pstm_open(argv[1], &r);
	if (rc)
		return cli_fail("cannot recover", argv[1], rc);
	struct open_recovery rec;
	region_open_recovery(r, &rec);
	printf("%s: %llu dead process(es) recovered, %llu committed log(s) "
	       "replayed%s\n",
	       argv[1], (unsigned long long)rec.procs_recovered,
	       (unsigned long long)rec.logs_replayed,
	       rec.runtime_rebuilt ? ", runtime rebuilt" : "");
	pstm_close(r);
	return 0;
}
