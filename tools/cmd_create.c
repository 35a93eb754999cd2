/*
 * cmd_create.c - pstm create: the options of pstm_create, each checked
 * against its range with an error that names it, and failures explained
 * in the terms of the command line (the directory, the free space).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <limits.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cli.h"
#include "emit.h"
#include "superblock.h"
#include "uri.h"

static const char help[] =
	"usage: pstm create URI [--size N] [--mode 0640]\n"
	"       [--durable|--relaxed [--flush-ms N]|--volatile]\n"
	"       [--max-procs N] [--max-threads N] [--log-bytes N]\n"
	"       [--orecs-log2 N] [--force] [--json|--pretty]\n"
	"Create a region (default 64 MiB, mode 0600, volatile for shm:,\n"
	"durable for files).  Sizes take K, M, G or T (powers of 1024).\n"
	"  --size N         1 MiB .. 64 TiB\n"
	"  --mode OCTAL     permission bits; the owner needs read and write\n"
	"  --relaxed        (files) commits reach the file within --flush-ms\n"
	"                   (1..60000, default 10) in commit order; a power\n"
	"                   failure loses at most that suffix\n"
	"  --max-procs N    attached processes, 1..1023 (default 64)\n"
	"  --max-threads N  transacting threads, 1..2047 (default 128)\n"
	"  --log-bytes N    redo log per thread, 4 KiB .. 16 MiB\n"
	"  --orecs-log2 N   log2 of the ownership records, 10..26\n"
	"  --force          replace an existing region\n"
	"  --json, --pretty print the new region's parameters as JSON\n";

/* The numeric options, their ranges those of pstm_create (superblock.h). */
static const struct cli_num opt_size = {"--size", SB_MIN_SIZE, SB_MAX_SIZE, CLI_UNITS};
static const struct cli_num opt_mode = {"--mode", 0, 07777, CLI_OCTAL};
static const struct cli_num opt_flush = {"--flush-ms", 1, SB_MAX_FLUSH_MS, 0};
static const struct cli_num opt_procs = {"--max-procs", 1, SB_MAX_PROCS, 0};
static const struct cli_num opt_threads = {"--max-threads", 1, SB_MAX_THREADS, 0};
static const struct cli_num opt_log = {"--log-bytes", SB_MIN_LOG_BYTES,
				       SB_MAX_LOG_BYTES, CLI_UNITS};
static const struct cli_num opt_orecs = {"--orecs-log2", SB_MIN_ORECS_LOG2,
					 SB_MAX_ORECS_LOG2, 0};

/* Bytes free to us in directory @dir; 0 if unknown. */
static uint64_t free_bytes(const char *dir)
{
	struct statvfs v;
	if (statvfs(dir, &v) != 0)
		return 0;
	return (uint64_t)v.f_bavail * v.f_frsize;
}

/* A failed pstm_create, said in the command line's terms where it can. */
static int create_failed(const char *uri, const struct pstm_create_opts *o, int rc)
{
	char path[PATH_MAX], dir[PATH_MAX], need[EMIT_SIZE_LEN], have[EMIT_SIZE_LEN];
	bool is_shm;
	if (uri_parse(uri, path, sizeof(path), &is_shm) != 0)
		return cli_failf("cannot create", uri, rc, "not a region name "
				 "(shm:NAME, NAME without '/', or a file path)");
	uri_dir_of(path, dir, sizeof(dir));
	uint64_t size = o->size_bytes ? o->size_bytes : SB_DEF_SIZE;
	switch (rc) {
	case PSTM_ENOENT:
		if (access(dir, F_OK) != 0)
			return cli_failf("cannot create", uri, rc, "directory %s does "
					 "not exist", dir);
		break;
	case PSTM_EACCES:
		if (access(dir, W_OK | X_OK) != 0)
			return cli_failf("cannot create", uri, rc, "permission denied: "
					 "cannot write in directory %s", dir);
		break;
	case PSTM_EEXIST:
		return cli_failf("cannot create", uri, rc, "%s (--force replaces it)",
				 pstm_strerror(rc));
	case PSTM_EHEAPFULL: {
		/* posix_fallocate said ENOSPC: the region's directory, or for
		 * a relaxed region /dev/shm, which holds its working copy */
		uint64_t here = free_bytes(dir);
		if (o->durability == PSTM_RELAXED && here >= size)
			return cli_failf("cannot create", uri, rc, "no space left on "
					 "device: the working copy needs %s in /dev/shm, "
					 "which has %s free", emit_size(need, size),
					 emit_size(have, free_bytes("/dev/shm")));
		return cli_failf("cannot create", uri, rc, "no space left on device: "
				 "the region needs %s, %s has %s free",
				 emit_size(need, size), dir, emit_size(have, here));
	}
	case PSTM_ETOOSMALL:
		return cli_failf("cannot create", uri, rc, "%s is too small for its "
				 "layout (redo logs, runtime, ownership records): give a "
				 "larger --size, or fewer --max-threads, a smaller "
				 "--log-bytes or --orecs-log2", emit_size(need, size));
	case PSTM_EINVAL:
		if (is_shm && o->durability != PSTM_DEFAULT &&
		    o->durability != PSTM_VOLATILE)
			return cli_failf("cannot create", uri, rc, "shm: regions are "
					 "volatile: --durable and --relaxed need a file");
		break;
	default:
		break;
	}
	return cli_fail("cannot create", uri, rc);
}

/* The new region's parameters: the keys pstm info uses for them. */
static int print_json(const char *uri, pstm_region *r)
{
	struct pstm_region_info in;
	struct emit e;
	pstm_region_info(r, &in);
	cli_json_begin(&e, uri);
	cli_emit_region(&e, &in);
	return cli_json_end(&e, uri);
}

int cmd_create(int argc, char **argv)
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
		{"orecs-log2", required_argument, 0, 'o'},
		{"force", no_argument, 0, 'f'},
		{"json", no_argument, 0, 'j'},
		{"pretty", no_argument, 0, 'P'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	struct pstm_create_opts o = {0};
	bool json = false;
	uint64_t v = 0;
	int c, rc = 0;

	while (rc == 0 && (c = getopt_long(argc, argv, "s:m:fjh", lo, NULL)) != -1) {
		switch (c) {
		case 's': rc = cli_parse_option(&opt_size, optarg, &o.size_bytes); break;
		case 'm':
			rc = cli_parse_option(&opt_mode, optarg, &v);
			/* 0 would read as "the default" to pstm_create */
			if (rc == 0 && (v & 0600) != 0600)
				return cli_usage_errorf("--mode %s: the owner needs read "
							"and write (at least 0600)", optarg);
			o.mode = (mode_t)v;
			break;
		case 'D': o.durability = PSTM_DURABLE; break;
		case 'V': o.durability = PSTM_VOLATILE; break;
		case 'R': o.durability = PSTM_RELAXED; break;
		case 'F':
			rc = cli_parse_option(&opt_flush, optarg, &v);
			o.flush_ms = (uint32_t)v;
			break;
		case 'p':
			rc = cli_parse_option(&opt_procs, optarg, &v);
			o.max_procs = (uint32_t)v;
			break;
		case 't':
			rc = cli_parse_option(&opt_threads, optarg, &v);
			o.max_threads = (uint32_t)v;
			break;
		case 'l':
			rc = cli_parse_option(&opt_log, optarg, &v);
			o.log_bytes = (uint32_t)v;
			break;
		case 'o':
			rc = cli_parse_option(&opt_orecs, optarg, &v);
			o.orecs_log2 = (uint32_t)v;
			break;
		case 'f': o.replace = 1; break;
		case 'j':
		case 'P':
			json = true;
			cli_set_json(c == 'P');
			break;
		case 'h': fputs(help, stdout); return 0;
		default: return 2; /* getopt said why */
		}
	}
	if (rc)
		return rc;
	if (optind != argc - 1)
		return cli_usage_error("create needs exactly one URI");
	if (o.flush_ms && o.durability != PSTM_RELAXED)
		return cli_usage_error("--flush-ms needs --relaxed");
	const char *uri = argv[optind];
	pstm_region *r;
	rc = pstm_create(uri, &o, &r);
	if (rc)
		return create_failed(uri, &o, rc);
	rc = json ? print_json(uri, r) : 0;
	pstm_close(r);
	return rc;
}
