/*
 * cmd_rm.c - pstm rm: remove a region and its /dev/shm companions.  What
 * is not a region is refused and left alone, and so, without --force, is
 * a region that processes are attached to (pstm_unlink_opts).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "emit.h"
#include "pstm.h"

static const char help[] =
	"usage: pstm rm [--force] [--json|--pretty] URI\n"
	"Remove a region and its companions in /dev/shm (runtime segment,\n"
	"relaxed working copy).  Refuses a file that is not a region (exit 1,\n"
	"the file untouched) and a region that processes are attached to;\n"
	"--force removes it anyway: they keep running on a file nobody can\n"
	"open any more, and what they commit is lost when they close it.\n";

int cmd_rm(int argc, char **argv)
{
	static const struct option lo[] = {{"force", no_argument, 0, 'f'},
					   {"json", no_argument, 0, 'j'},
					   {"pretty", no_argument, 0, 'p'},
					   {"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	unsigned flags = 0;
	int c;

	while ((c = getopt_long(argc, argv, "fh", lo, NULL)) != -1) {
		switch (c) {
		case 'f': flags |= PSTM_UNLINK_FORCE; break;
		case 'j': cli_set_json(false); break;
		case 'p': cli_set_json(true); break;
		case 'h': fputs(help, stdout); return 0;
		default: return 2; /* getopt said why */
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("rm needs exactly one URI");
	const char *uri = argv[optind];
	int rc = pstm_unlink_opts(uri, flags);
	if (rc == PSTM_EBUSY)
		return cli_failf("cannot remove", uri, rc, "processes are attached "
				 "(--force removes it anyway)");
	if (rc)
		return cli_fail("cannot remove", uri, rc);
	if (cli_json) {
		struct emit e;
		cli_json_begin(&e, uri);
		emit_bool(&e, "removed", true);
		return cli_json_end(&e, uri);
	}
	return 0;
}
