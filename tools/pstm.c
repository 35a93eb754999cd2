/*
 * pstm - admin CLI: create, inspect and remove regions.  This file has the
 * dispatch and the small command create; the others live in
 * tools/cmd_*.c.
 * Exit status: 0 success, 1 operation failed, 2 usage error.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pstm.h"

const char *cli_prog = "pstm";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pstm COMMAND [options] URI\n"
		"\n"
		"URI is shm:NAME (POSIX shared memory, /dev/shm/NAME) or a file path.\n"
		"\n"
		"commands:\n"
		"  create URI [--size N[K|M|G]] [--mode 0640]\n"
		"             [--durable|--relaxed [--flush-ms N]|--volatile]\n"
		"             [--max-procs N] [--max-threads N] [--log-bytes N] [--force]\n"
		"  info URI [--json]   superblock, layout, attached processes, stats\n"
		"  rm [--force] URI    remove a region and its companions (not while\n"
		"                      processes are attached, without --force)\n"
		"  check URI [--json]  verify a region offline (exit 1 if damaged)\n"
		"  recover URI         run recovery now and report what it did\n"
		"  dump URI [--json]   the root object and the maps and queues it holds\n"
		"  ls [DIR] [--json]   regions in DIR (default .) and /dev/shm, companions\n"
		"  gc [--dry-run]      remove companions whose region is gone and unused\n"
		"\n"
		"pstm COMMAND --help for details.\n");
}

static int cmd_create(int argc, char **argv)
{
	static const struct option lo[] = {
		{"size", required_argument, 0, 's'},
		{"mode", required_argument, 0, 'm'},
		{"durable", no_argument, 0, 'D'},
		{"volatile", no_argument, 0, 'V'},
		{"relaxed", no_argument, 0, 'R'},
		{"flush-ms", required_argument, 0, 'F'},
		{"max-procs", required_argument, 0, 'p'},
		{"max-threads", required_argument, 0, 't'},
		{"log-bytes", required_argument, 0, 'l'},
		{"force", no_argument, 0, 'f'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	struct pstm_create_opts o = {0};
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "s:m:fh", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (cli_parse_u64(optarg, CLI_UNITS, 1, UINT64_MAX, &o.size_bytes))
				return cli_usage_error("bad --size");
			break;
		case 'm':
			if (cli_parse_u64(optarg, CLI_OCTAL, 0, 07777, &v))
				return cli_usage_error("bad --mode (octal, e.g. 0640)");
			o.mode = (mode_t)v;
			break;
		case 'D': o.durability = PSTM_DURABLE; break;
		case 'V': o.durability = PSTM_VOLATILE; break;
		case 'R': o.durability = PSTM_RELAXED; break;
		case 'F':
			if (cli_parse_u64(optarg, 0, 1, 60000, &v))
				return cli_usage_error("bad --flush-ms (1..60000)");
			o.flush_ms = (uint32_t)v;
			break;
		case 'p':
			if (cli_parse_u64(optarg, 0, 1, UINT32_MAX, &v))
				return cli_usage_error("bad --max-procs");
			o.max_procs = (uint32_t)v;
			break;
		case 't':
			if (cli_parse_u64(optarg, 0, 1, UINT32_MAX, &v))
				return cli_usage_error("bad --max-threads");
			o.max_threads = (uint32_t)v;
			break;
		case 'l':
			if (cli_parse_u64(optarg, CLI_UNITS, 1, UINT32_MAX, &v))
				return cli_usage_error("bad --log-bytes");
			o.log_bytes = (uint32_t)v;
			break;
		case 'f': o.replace = 1; break;
		case 'h':
			printf("usage: pstm create URI [--size N[K|M|G]] [--mode 0640]\n"
			       "       [--durable|--relaxed [--flush-ms N]|--volatile]\n"
			       "       [--max-procs N] [--max-threads N] [--log-bytes N] [--force]\n"
			       "Create a region (default 64M, mode 0600, volatile for shm:,\n"
			       "durable for files). --relaxed (files): commits reach the file\n"
			       "within --flush-ms (default 10) in commit order; a power failure\n"
			       "loses at most that suffix. --force replaces an existing region.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("create needs exactly one URI");
	if (o.flush_ms && o.durability != PSTM_RELAXED)
		return cli_usage_error("--flush-ms needs --relaxed");
	pstm_region *r;
	int rc = pstm_create(argv[optind], &o, &r);
	if (rc)
		return cli_fail("cannot create", argv[optind], rc);
	pstm_close(r);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{"create", cmd_create}, {"info", cmd_info},       {"rm", cmd_rm},
	{"check", cmd_check},   {"recover", cmd_recover}, {"dump", cmd_dump},
	{"ls", cmd_ls},         {"gc", cmd_gc},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	argc--;
	argv++;
	argv[0] = (char *)cli_prog; /* getopt's messages say "pstm: ..." */
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].run(argc, argv);
	fprintf(stderr, "%s: unknown command '%s' (try 'pstm --help')\n", cli_prog, cmd);
	return 2;
}
