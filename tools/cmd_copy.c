/*
 * cmd_copy.c - pstm copy: a consistent copy of a region, one moment of
 * it, into a new region while the source's processes keep committing
 * (pstm_copy), with the options of pstm_copy_opts and its failures said
 * in the command line's terms.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <limits.h>

#include "cli.h"
#include "emit.h"
#include "superblock.h"
#include "uri.h"

static const char help[] =
	"usage: pstm copy SRC DST [--compact|--size N]\n"
	"       [--durable|--relaxed [--flush-ms N]|--volatile] [--mode OCTAL]\n"
	"       [--passes N] [--timeout-ms N] [--json|--pretty]\n"
	"Write the new region DST, a copy of region SRC as it was at one\n"
	"moment, while SRC's processes keep committing.  DST has a new uuid\n"
	"and SRC's layout (limits, heap offset: stored offsets stay valid);\n"
	"both must be shm: or both files.  It appears under its name only\n"
	"when complete.  The heap is read in chunks, each in a read-only\n"
	"transaction, and what changed meanwhile read again; after --passes\n"
	"passes (default 4) the copy holds update transactions back, at most\n"
	"~8 ms at a time, until it is done.\n"
	"  --compact        DST only as large as SRC's heap in use (no room\n"
	"                   to grow); default: SRC's size\n"
	"  --size N         DST's size (larger: room to grow)\n"
	"  --durable, --relaxed, --volatile\n"
	"                   file copies: default SRC's durability\n"
	"  --flush-ms N     with --relaxed (default SRC's, or 10)\n"
	"  --mode OCTAL     permission bits (default SRC's)\n"
	"  --timeout-ms N   give up after N ms (default 0: never)\n";

static const struct cli_num opt_size = {"--size", SB_MIN_SIZE, SB_MAX_SIZE, CLI_UNITS};
static const struct cli_num opt_mode = {"--mode", 0, 0777, CLI_OCTAL};
static const struct cli_num opt_flush = {"--flush-ms", 1, SB_MAX_FLUSH_MS, 0};
static const struct cli_num opt_passes = {"--passes", 1, 1000, 0};
static const struct cli_num opt_timeout = {"--timeout-ms", 0, 86400000, 0};

/* A failed pstm_copy, in the command line's terms where it can. */
static int copy_failed(const char *src, const char *dst,
		       const struct pstm_copy_opts *o, int rc)
{
	char path[PATH_MAX], sp[PATH_MAX], b[EMIT_SIZE_LEN];
	bool dst_shm = false, src_shm = false;
	if (uri_parse(dst, path, sizeof(path), &dst_shm) != 0)
		return cli_failf("cannot copy", src, rc, "%s: not a region name "
				 "(shm:NAME, NAME without '/', or a file path)", dst);
	switch (rc) {
	case PSTM_EEXIST:
		return cli_failf("cannot copy", src, rc, "%s exists (the copy is "
				 "always a new region)", dst);
	case PSTM_ETOOSMALL:
		return cli_failf("cannot copy", src, rc, "--size %s is too small for "
				 "the heap in use (--compact makes the smallest copy)",
				 emit_size(b, o->size_bytes));
	case PSTM_EBUSY:
		return cli_failf("cannot copy", src, rc, "no consistent copy in %u ms "
				 "(busy writers, or locks of a stopped process)",
				 o->timeout_ms);
	case PSTM_EINVAL:
		if (uri_parse(src, sp, sizeof(sp), &src_shm) == 0 && src_shm != dst_shm)
			return cli_failf("cannot copy", src, rc, "%s is %s: a copy keeps "
					 "the heap at its offset, and a shm: region's runtime "
					 "lies before its heap, a file region's does not (copy "
					 "to the same kind, or use pstm dump and pstm load)",
					 dst, dst_shm ? "a shm: region" : "a file");
		if (dst_shm && o->durability && o->durability != PSTM_VOLATILE)
			return cli_failf("cannot copy", src, rc, "shm: regions are "
					 "volatile: --durable and --relaxed need a file");
		if (dst_shm && o->size_bytes)
			return cli_failf("cannot copy", src, rc, "a shm: copy of %s "
					 "would have its heap elsewhere (a shm: region's "
					 "runtime lies before its heap and grows with its "
					 "size): give another --size, or --compact",
					 emit_size(b, o->size_bytes));
		break;
	case PSTM_ENOENT:
		return cli_failf("cannot copy", src, rc, "cannot create %s: its "
				 "directory does not exist", dst);
	default:
		break;
	}
	return cli_failf("cannot copy", src, rc, "%s: %s", dst, pstm_strerror(rc));
}

static int print(const char *src, const char *dst, const struct pstm_copy_info *ci,
		 bool json)
{
	char uuid[37], b[3][EMIT_SIZE_LEN];
	cli_uuid_text(ci->uuid, uuid);
	if (!json) {
		printf("copied %s to %s: %s, heap %s in use, %u pass%s",
		       src, dst, emit_size(b[0], ci->size_bytes),
		       emit_size(b[1], ci->heap_bytes), ci->passes,
		       ci->passes == 1 ? "" : "es");
		if (ci->holds)
			printf(", writers held back %u time%s for %.1f ms", ci->holds,
			       ci->holds == 1 ? "" : "s", (double)ci->hold_ns / 1e6);
		printf("\n");
		return 0;
	}
	struct emit e;
	cli_json_begin(&e, src);
	emit_str(&e, "dst", dst);
	emit_str(&e, "uuid", uuid);
	emit_u64(&e, "size_bytes", ci->size_bytes);
	emit_u64(&e, "heap_bytes", ci->heap_bytes);
	emit_u64(&e, "passes", ci->passes);
	emit_u64(&e, "chunks", ci->chunks);
	emit_u64(&e, "chunk_bytes", ci->chunk_bytes);
	emit_u64(&e, "holds", ci->holds);
	emit_u64(&e, "hold_ns", ci->hold_ns);
	return cli_json_end(&e, src);
}

int cmd_copy(int argc, char **argv)
{
	static const struct option lo[] = {
		{"compact", no_argument, 0, 'c'},
		{"size", required_argument, 0, 's'},
		{"durable", no_argument, 0, 'D'},
		{"volatile", no_argument, 0, 'V'},
		{"relaxed", no_argument, 0, 'R'},
		{"flush-ms", required_argument, 0, 'F'},
		{"mode", required_argument, 0, 'm'},
		{"passes", required_argument, 0, 'n'},
		{"timeout-ms", required_argument, 0, 't'},
		{"json", no_argument, 0, 'j'},
		{"pretty", no_argument, 0, 'P'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	struct pstm_copy_opts o = {0};
	struct pstm_copy_info ci;
	bool json = false;
	uint64_t v = 0;
	int c, rc = 0;

	while (rc == 0 && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'c': o.flags |= PSTM_COPY_COMPACT; break;
		case 's': rc = cli_parse_option(&opt_size, optarg, &o.size_bytes); break;
		case 'D': o.durability = PSTM_DURABLE; break;
		case 'V': o.durability = PSTM_VOLATILE; break;
		case 'R': o.durability = PSTM_RELAXED; break;
		case 'F':
			rc = cli_parse_option(&opt_flush, optarg, &v);
			o.flush_ms = (uint32_t)v;
			break;
		case 'm':
			rc = cli_parse_option(&opt_mode, optarg, &v);
			if (rc == 0 && (v & 0600) != 0600)
				return cli_usage_errorf("--mode %s: the owner needs read "
							"and write (at least 0600)", optarg);
			o.mode = (mode_t)v;
			break;
		case 'n':
			rc = cli_parse_option(&opt_passes, optarg, &v);
			o.passes = (uint32_t)v;
			break;
		case 't':
			rc = cli_parse_option(&opt_timeout, optarg, &v);
			o.timeout_ms = (uint32_t)v;
			break;
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
	if (optind != argc - 2)
		return cli_usage_error("copy needs SRC and DST");
	if ((o.flags & PSTM_COPY_COMPACT) && o.size_bytes)
		return cli_usage_error("--compact and --size exclude each other");
	if (o.flush_ms && o.durability != PSTM_RELAXED)
		return cli_usage_error("--flush-ms needs --relaxed");
	const char *src = argv[optind], *dst = argv[optind + 1];
	pstm_region *r;
	rc = pstm_open(src, &r);
	if (rc)
		return cli_fail("cannot open", src, rc);
	rc = pstm_copy(r, dst, &o, &ci);
	rc = rc ? copy_failed(src, dst, &o, rc) : print(src, dst, &ci, json);
	pstm_close(r);
	return rc;
}
