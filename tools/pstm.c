/*
 * pstm - admin CLI: create, inspect and remove regions.  This file has the
 * dispatch, the general help and --version; every command lives in its
 * own tools/cmd_*.c.
 * Exit status: 0 success, 1 operation failed, 2 usage error.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "emit.h"
#include "pstm.h"

const char *cli_prog = "pstm";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pstm COMMAND [options] URI\n"
		"       pstm help COMMAND | pstm COMMAND --help | pstm --version\n"
		"\n"
		"URI is shm:NAME (POSIX shared memory, /dev/shm/NAME) or a file path.\n"
		"\n"
		"commands:\n"
		"  create URI [--size N] [--mode 0640]\n"
		"             [--durable|--relaxed [--flush-ms N]|--volatile]\n"
		"             [--max-procs N] [--max-threads N] [--log-bytes N]\n"
		"             [--orecs-log2 N] [--force]\n"
		"  info URI     superblock, layout, runtime, processes, stats, heap\n"
		"  conflicts URI  where transactions lose time: causes, both sides, places\n"
		"  procs URI    attached processes and their statistics (from pstmd\n"
		"               when it serves the region)\n"
		"  check URI    verify a region offline (exit 1 if damaged)\n"
		"  recover URI  run recovery now and report what it did\n"
		"  dump URI     the root object and the maps and queues it holds\n"
		"  copy SRC DST [--compact]  a consistent copy while writers commit\n"
		"  top URI [--interval MS] [--count N]  processes' commits/s, aborts/s\n"
		"  load URI [FILE]  add a `dump --json`'s maps and queues to URI\n"
		"  queue URI [--retry-failed|--drop-failed]  the task queue: pending\n"
		"               tasks per type, failed tasks and their errors\n"
		"  rm [--force] URI  remove a region and its companions (not while\n"
		"               processes are attached, without --force)\n"
		"  ls [DIR]     regions in DIR (default .) and /dev/shm, companions\n"
		"  gc [--dry-run]  remove companions whose region is gone and unused\n"
		"\n"
		"Every command takes --json (one JSON object on stdout) and --pretty\n"
		"(the same, indented).  Sizes take K, M, G or T (powers of 1024).\n");
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{"create", cmd_create}, {"info", cmd_info},       {"rm", cmd_rm},
	{"check", cmd_check},   {"recover", cmd_recover}, {"dump", cmd_dump},
	{"load", cmd_load},     {"conflicts", cmd_conflicts},
	{"queue", cmd_queue},
	{"copy", cmd_copy},     {"top", cmd_top},
	{"ls", cmd_ls},         {"gc", cmd_gc},
	{"procs", cmd_procs},
};

static int (*find(const char *name))(int, char **)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(name, commands[i].name))
			return commands[i].run;
	return NULL;
}

static int unknown(const char *cmd)
{
	fprintf(stderr, "%s: unknown command '%s' (try 'pstm --help')\n", cli_prog, cmd);
	return 2;
}

/* pstm help [COMMAND]: the general usage, or COMMAND --help */
static int help(int argc, char **argv)
{
	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	if (argc > 2)
		return cli_usage_error("help takes one command");
	int (*run)(int, char **) = find(argv[1]);
	if (!run)
		return unknown(argv[1]);
	char *args[] = {(char *)cli_prog, "--help", NULL};
	return run(2, args);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("pstm %s\n", pstm_version());
		return 0;
	}
	argc--;
	argv++;
	argv[0] = (char *)cli_prog; /* getopt's messages say "pstm: ..." */
	if (!strcmp(cmd, "help"))
		return help(argc, argv);
	int (*run)(int, char **) = find(cmd);
	return run ? run(argc, argv) : unknown(cmd);
}
