/*
 * main.c - pstm-crashtest's entry: the command line (options, their
 * checks, --help), then the run in order: set-up, the kill and crash-point
 * campaigns, settling, the power failures, the summary.  The tool as a
 * whole is described in crashtest.h; the user's guide is docs/crashtest.md.
 * Exit status: 0 every check passed, 1 a violation (or the run could not
 * be set up), 2 usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"
#include "crashtest.h"

const char *cli_prog = PROG;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [options] URI\n"
		"\n"
		"Run a workload in several processes on region URI (shm:NAME or a\n"
		"file path; created, replacing what is there), crash them, and check\n"
		"after every crash that the workload's invariant holds and that every\n"
		"transaction acknowledged as committed is present.\n"
		"\n"
		"  --workload LIB.so  the workload (include/pstm_crashtest.h);\n"
		"                     default: a built-in bank (64 accounts)\n"
		"  --procs N          worker processes (default 3, max %d)\n"
		"  --rounds N         random kills (default 200)\n"
		"  --point-rounds N   passes over the crash points (default 3)\n"
		"  --points LIST      only these crash points (comma-separated;\n"
		"                     default all: commit.locking, commit.locked,\n"
		"                     commit.sealed, commit.logged, commit.written,\n"
		"                     commit.retired, commit.released,\n"
		"                     recover.claimed, recover.replayed, and with\n"
		"                     --relaxed flush.copied, checkpoint.applied)\n"
		"  --no-kills         skip the random kills\n"
		"  --no-points        skip the crash points\n"
		"  --powerfail N      simulated power failures (file regions only;\n"
		"                     default 200 for files, 0 for shm:)\n"
		"  --pmem             run as on real pmem (PMEM_IS_PMEM_FORCE=1):\n"
		"                     persistence by flush+drain instead of msync\n"
		"  --relaxed          create a relaxed region (file only): workers\n"
		"                     pstm_sync every %d steps; a power failure may\n"
		"                     lose acknowledged steps, never synced ones\n"
		"  --flush-ms N       with --relaxed: the flush interval (1..60000)\n"
		"  --size N[K|M|G|T]  region size (default 8M)\n"
		"  --seed S           random seed (default: from the clock; printed)\n"
		"  --keep             keep the region afterwards (always kept on failure)\n"
		"  --json             print the summary as one JSON object\n"
		"  --pretty           the same, indented\n"
		"  --help, --version  this text, the release\n"
		"\n"
		"Exit status: 0 all checks passed, 1 a violation or a failure to run,\n"
		"2 usage error.  See docs/crashtest.md.\n",
		MAX_PROCS, SYNC_EVERY);
}

static int parse_args(struct ct *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{"workload", required_argument, 0, 'w'},
		{"procs", required_argument, 0, 'p'},
		{"rounds", required_argument, 0, 'r'},
		{"point-rounds", required_argument, 0, 'P'},
		{"points", required_argument, 0, 'L'},
		{"no-kills", no_argument, 0, 'K'},
		{"no-points", no_argument, 0, 'N'},
		{"powerfail", required_argument, 0, 'f'},
		{"pmem", no_argument, 0, 'm'},
		{"relaxed", no_argument, 0, 'R'},
		{"flush-ms", required_argument, 0, 'F'},
		{"size", required_argument, 0, 's'},
		{"seed", required_argument, 0, 'S'},
		{"keep", no_argument, 0, 'k'},
		{"json", no_argument, 0, 'j'},
		{"pretty", no_argument, 0, 'J'},
		{"help", no_argument, 0, 'h'},
		{"version", no_argument, 0, 'V'},
		{0, 0, 0, 0}};
	uint64_t v;
	int opt;
	bool seeded = false;
	c->procs = 3;
	c->rounds = 200;
	c->point_rounds = 3;
	c->powerfail = -1;
	c->kills = c->points = true;
	c->size_bytes = 8 << 20;
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'w': c->lib = optarg; break;
		case 'p':
			if (cli_parse_u64(optarg, 0, 1, MAX_PROCS, &v))
				return cli_usage_error("bad --procs (1..64)");
			c->procs = (int)v;
			break;
		case 'r':
			if (cli_parse_u64(optarg, 0, 0, 100000000, &v))
				return cli_usage_error("bad --rounds");
			c->rounds = (int)v;
			break;
		case 'P':
			if (cli_parse_u64(optarg, 0, 0, 1000000, &v))
				return cli_usage_error("bad --point-rounds");
			c->point_rounds = (int)v;
			break;
		case 'L':
			c->point_list = optarg;
			if (!campaign_points_selected(c, true))
				return cli_usage_error("bad --points (names: commit.locking, "
						       "commit.locked, commit.sealed, "
						       "commit.logged, commit.written, "
						       "commit.retired, commit.released, "
						       "recover.claimed, recover.replayed, "
						       "flush.copied, checkpoint.applied)");
			break;
		case 'K': c->kills = false; break;
		case 'N': c->points = false; break;
		case 'f':
			if (cli_parse_u64(optarg, 0, 0, 100000000, &v))
				return cli_usage_error("bad --powerfail");
			c->powerfail = (int)v;
			break;
		case 'm': c->pmem = true; break;
		case 'R': c->relaxed_opt = true; break;
		case 'F':
			if (cli_parse_u64(optarg, 0, 1, 60000, &v))
				return cli_usage_error("bad --flush-ms (1..60000)");
			c->flush_ms = (uint32_t)v;
			break;
		case 's':
			if (cli_parse_u64(optarg, CLI_UNITS, 1, UINT64_MAX, &c->size_bytes))
				return cli_usage_error("bad --size");
			break;
		case 'S':
			if (cli_parse_u64(optarg, 0, 0, UINT64_MAX, &c->seed))
				return cli_usage_error("bad --seed");
			seeded = true;
			break;
		case 'k': c->keep = true; break;
		case 'j':
		case 'J':
			c->json = true;
			cli_set_json(opt == 'J');
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(PROG " %s\n", pstm_version()); return 0;
		default: return 2; /* getopt printed why */
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("exactly one URI is needed");
	c->uri = argv[optind];
	c->is_file = strncmp(c->uri, "shm:", 4) != 0;
	if (c->powerfail < 0)
		c->powerfail = c->is_file ? 200 : 0;
	if (c->powerfail > 0 && !c->is_file)
		return cli_usage_error("--powerfail needs a file region (shm: does not "
				       "survive power failure)");
	if (c->pmem && !c->is_file)
		return cli_usage_error("--pmem needs a file region");
	if (c->relaxed_opt && !c->is_file)
		return cli_usage_error("--relaxed needs a file region (shm: has no "
				       "file to flush to)");
	if (c->flush_ms && !c->relaxed_opt)
		return cli_usage_error("--flush-ms needs --relaxed");
	if (c->point_list && !c->relaxed_opt && !campaign_points_selected(c, false))
		return cli_usage_error("flush.copied and checkpoint.applied need "
				       "--relaxed (only a relaxed region flushes)");
	if (!c->kills)
		c->rounds = 0;
	if (!c->points)
		c->point_rounds = 0;
	if (!c->rounds && !c->point_rounds && !c->powerfail)
		return cli_usage_error("nothing to do (no kills, no crash points, no "
				       "power failures)");
	if (!seeded)
		c->seed = now_ns() ^ ((uint64_t)getpid() << 40);
	return -1; /* go on */
}

int main(int argc, char **argv)
{
	static struct ct c;
	int rc = parse_args(&c, argc, argv);
	if (rc >= 0)
		return rc;
	/* libpmem decides whether to force pmem when it starts: start again
	 * (getopt has only reordered argv) */
	if (c.pmem && !(getenv("PMEM_IS_PMEM_FORCE") &&
			!strcmp(getenv("PMEM_IS_PMEM_FORCE"), "1"))) {
		setenv("PMEM_IS_PMEM_FORCE", "1", 1);
		execv("/proc/self/exe", argv);
		fprintf(stderr, "%s: re-executing with PMEM_IS_PMEM_FORCE=1: %s\n",
			PROG, strerror(errno));
		return 1;
	}
	/* only the victims we start may crash */
	unsetenv("PSTM_CRASH_AT");
	unsetenv("PSTM_TEST_POWERFAIL");
	c.rng = c.seed ? c.seed : 1;
	c.inspect = c.uri;
	if (workload_load(&c))
		return 1;
	c.sh = mmap(NULL, sizeof(*c.sh), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c.sh == MAP_FAILED) {
		fprintf(stderr, "%s: mmap: %s\n", PROG, strerror(errno));
		return 1;
	}
	if (setup_region(&c))
		return 1;
	uint64_t cnt[MAX_PROCS];
	if (check_after(&c, c.r, "after init", cnt) == 0 && (c.rounds || c.point_rounds)) {
		for (int w = 0; w < c.procs && !c.violated; w++)
			worker_start(&c, w);
		if (!c.violated && campaign_kills(&c) == 0 && campaign_points(&c) == 0)
			campaign_settle(&c);
	}
	if (c.r && !c.violated && c.rounds == 0 && c.point_rounds == 0) {
		pstm_close(c.r);
		c.r = NULL;
	}
	if (!c.violated && c.powerfail)
		campaign_powerfail(&c);
	if (c.violated)
		workers_kill_all(&c);
	if (c.r)
		pstm_close(c.r);
	report_summary(&c);
	if (!c.violated && !c.keep)
		pstm_unlink(c.uri);
	return c.violated ? 1 : 0;
}
