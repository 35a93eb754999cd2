/*
 * pstm - admin CLI: create, inspect and remove regions.
 * Exit status: 0 success, 1 operation failed, 2 usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "pstm.h"
#include "region.h"
#include "proc.h"
#include "stm.h"
#include "alloc.h"

const char *cli_prog = "pstm";
#define prog cli_prog

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
		"  rm URI              remove a region\n"
		"  check URI [--json]  verify a region offline (exit 1 if damaged)\n"
		"  recover URI         run recovery now and report what it did\n"
		"  dump URI [--json]   the root object and the maps and queues it holds\n"
		"\n"
		"pstm COMMAND --help for details.\n");
}

int cli_usage_error(const char *msg)
{
	fprintf(stderr, "%s: %s (try 'pstm --help')\n", prog, msg);
	return 2;
}

int cli_fail(const char *what, const char *uri, int rc)
{
	fprintf(stderr, "%s: %s %s: %s\n", prog, what, uri, pstm_strerror(rc));
	return 1;
}

#define die_usage cli_usage_error
#define fail cli_fail

static int parse_u32(const char *s, uint32_t *out, int base)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, base);
	if (errno || end == s || *end || v > 0xffffffffu || s[0] == '-')
		return -1;
	*out = (uint32_t)v;
	return 0;
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
	uint32_t v;
	int c;

	while ((c = getopt_long(argc, argv, "s:m:fh", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			if (cli_parse_u64(optarg, &o.size_bytes, true) || !o.size_bytes)
				return die_usage("bad --size");
			break;
		case 'm':
			if (parse_u32(optarg, &v, 8) || v > 07777)
				return die_usage("bad --mode (octal, e.g. 0640)");
			o.mode = (mode_t)v;
			break;
		case 'D': o.durability = PSTM_DURABLE; break;
		case 'V': o.durability = PSTM_VOLATILE; break;
		case 'R': o.durability = PSTM_RELAXED; break;
		case 'F':
			if (parse_u32(optarg, &o.flush_ms, 0) || !o.flush_ms ||
			    o.flush_ms > 60000)
				return die_usage("bad --flush-ms (1..60000)");
			break;
		case 'p':
			if (parse_u32(optarg, &o.max_procs, 0) || !o.max_procs)
				return die_usage("bad --max-procs");
			break;
		case 't':
			if (parse_u32(optarg, &o.max_threads, 0) || !o.max_threads)
				return die_usage("bad --max-threads");
			break;
		case 'l': {
			uint64_t lb;
			if (cli_parse_u64(optarg, &lb, true) || !lb || lb > 0xffffffffu)
				return die_usage("bad --log-bytes");
			o.log_bytes = (uint32_t)lb;
			break;
		}
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
		return die_usage("create needs exactly one URI");
	if (o.flush_ms && o.durability != PSTM_RELAXED)
		return die_usage("--flush-ms needs --relaxed");
	pstm_region *r;
	int rc = pstm_create(argv[optind], &o, &r);
	if (rc)
		return fail("cannot create", argv[optind], rc);
	pstm_close(r);
	return 0;
}

static void uuid_str(const uint8_t u[16], char out[37])
{
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
		 u[11], u[12], u[13], u[14], u[15]);
}

/* Heap use per size class (a walk of the heap: best effort while other
 * processes allocate).  JSON: closes the processes array, adds "heap". */
static void print_heap(struct pstm_region *r, int json)
{
	struct alloc_report h;
	alloc_check(r, &h);
	if (json) {
		printf("],\"heap\":{\"heap_bytes\":%llu,\"carved_bytes\":%llu,"
		       "\"used_blocks\":%llu,\"used_bytes\":%llu,\"free_blocks\":%llu,"
		       "\"free_bytes\":%llu,\"meta_bytes\":%llu,\"chunk_bytes\":%llu,"
		       "\"slot_caches\":%llu,\"problems\":%llu,\"classes\":[",
		       (unsigned long long)h.heap_bytes, (unsigned long long)h.carved_bytes,
		       (unsigned long long)h.used_blocks, (unsigned long long)h.used_bytes,
		       (unsigned long long)h.free_blocks, (unsigned long long)h.free_bytes,
		       (unsigned long long)h.meta_bytes, (unsigned long long)h.chunk_bytes,
		       (unsigned long long)h.caches, (unsigned long long)h.problems);
	} else {
		printf("heap        %llu of %llu bytes carved: %llu in %llu blocks used, "
		       "%llu free, %llu in slot chunks, %llu allocator metadata%s\n",
		       (unsigned long long)h.carved_bytes, (unsigned long long)h.heap_bytes,
		       (unsigned long long)h.used_bytes, (unsigned long long)h.used_blocks,
		       (unsigned long long)h.free_bytes, (unsigned long long)h.chunk_bytes,
		       (unsigned long long)h.meta_bytes,
		       h.problems ? " (inconsistent: see pstm check)" : "");
		printf("  %8s %10s %12s %10s %12s\n", "class", "used", "used-bytes",
		       "free", "free-bytes");
	}
	int first = 1;
	for (int c = 0; c <= ALLOC_NCLASS; c++) {
		const struct alloc_class_stat *k = &h.cls[c];
		if (!k->used && !k->free)
			continue;
		char size[24];
		if (c < ALLOC_NCLASS)
			snprintf(size, sizeof(size), "%llu", (unsigned long long)k->bytes);
		else
			snprintf(size, sizeof(size), json ? "\"large\"" : "large");
		if (json)
			printf("%s{\"size\":%s,\"used\":%llu,\"used_bytes\":%llu,"
			       "\"free\":%llu,\"free_bytes\":%llu}",
			       first ? "" : ",", size, (unsigned long long)k->used,
			       (unsigned long long)k->used_bytes, (unsigned long long)k->free,
			       (unsigned long long)k->free_bytes);
		else
			printf("  %8s %10llu %12llu %10llu %12llu\n", size,
			       (unsigned long long)k->used, (unsigned long long)k->used_bytes,
			       (unsigned long long)k->free, (unsigned long long)k->free_bytes);
		first = 0;
	}
	if (json)
		printf("]}");
}

static int cmd_info(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, 0, 'j'},
					   {"help", no_argument, 0, 'h'},
					   {0, 0, 0, 0}};
	int json = 0, c;

	while ((c = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
		if (c == 'j')
			json = 1;
		else if (c == 'h') {
			printf("usage: pstm info URI [--json]\n"
			       "Show the superblock, layout, attached processes and their\n"
			       "transaction statistics.\n");
			return 0;
		} else
			return 2;
	}
	if (optind != argc - 1)
		return die_usage("info needs exactly one URI");
	const char *uri = argv[optind];
	pstm_region *r;
	int rc = pstm_open(uri, &r);
	if (rc)
		return fail("cannot open", uri, rc);
	struct pstm_region_info in;
	pstm_region_info(r, &in);
	char uu[37];
	uuid_str(in.uuid, uu);
	time_t ct = (time_t)(in.created_ns / 1000000000ull);
	char tbuf[64];
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%SZ", gmtime(&ct));
	uint64_t clk = atomic_load(&r->rt->clock);
	const char *dur = in.durability == PSTM_DURABLE   ? "durable"
			  : in.durability == PSTM_RELAXED ? "relaxed"
							  : "volatile";

	if (json) {
		printf("{\"uri\":");
		cli_json_string(stdout, uri);
		printf(",\"uuid\":\"%s\",\"format_version\":%u,\"size_bytes\":%llu,"
		       "\"durability\":\"%s\",\"flush_ms\":%u,\"is_pmem\":%s,\"created\":\"%s\","
		       "\"max_procs\":%u,\"max_threads\":%u,\"log_bytes\":%u,"
		       "\"orecs\":%llu,\"layout\":{\"runtime_off\":%llu,"
		       "\"runtime_bytes\":%llu,\"runtime_inside\":%s,\"log_off\":%llu,"
		       "\"heap_off\":%llu,\"heap_bytes\":%llu},\"clock\":%llu,"
		       "\"processes\":[",
		       uu, in.format_version, (unsigned long long)in.size_bytes, dur,
		       in.flush_ms, in.is_pmem ? "true" : "false", tbuf, in.max_procs,
		       in.max_threads, in.log_bytes, 1ull << in.orecs_log2,
		       (unsigned long long)r->sb.rt_off,
		       (unsigned long long)r->sb.rt_bytes,
		       r->sb.rt_inside ? "true" : "false",
		       (unsigned long long)r->sb.log_off,
		       (unsigned long long)in.heap_off,
		       (unsigned long long)in.heap_bytes, (unsigned long long)clk);
	} else {
		printf("region      %s\n", uri);
		printf("uuid        %s\n", uu);
		printf("format      %u\n", in.format_version);
		printf("size        %llu bytes\n", (unsigned long long)in.size_bytes);
		printf("durability  %s%s", dur, in.is_pmem ? " (pmem)" : "");
		if (in.durability == PSTM_RELAXED)
			printf(", flushed to the file every %u ms (working copy %s)",
			       in.flush_ms, r->wc_path);
		printf("\n");
		printf("created     %s\n", tbuf);
		printf("limits      %u processes, %u threads, %u-byte redo logs, "
		       "%llu orecs\n",
		       in.max_procs, in.max_threads, in.log_bytes,
		       1ull << in.orecs_log2);
		printf("layout      runtime %s@%llu+%llu, logs @%llu, heap @%llu+%llu\n",
		       r->sb.rt_inside ? "" : "(companion shm) ",
		       (unsigned long long)r->sb.rt_off,
		       (unsigned long long)r->sb.rt_bytes,
		       (unsigned long long)r->sb.log_off,
		       (unsigned long long)in.heap_off,
		       (unsigned long long)in.heap_bytes);
		printf("clock       %llu\n", (unsigned long long)clk);
		printf("processes   (this pstm command is one of them)\n");
		printf("  %5s %8s %10s %10s %10s %10s %6s\n", "entry", "pid",
		       "commits", "ro", "aborts", "user-ab", "slots");
	}
	int first = 1;
	for (uint32_t p = 0; p < r->sb.max_procs; p++) {
		uint64_t ps = atomic_load(&r->procs[p].state);
		if (PROC_ST(ps) == PROC_FREE)
			continue;
		uint64_t st[ST_COUNT];
		for (int k = 0; k < ST_COUNT; k++)
			st[k] = atomic_load(&r->procs[p].stats[k]);
		unsigned nslots = 0;
		for (uint32_t s = 0; s < r->sb.max_slots; s++) {
			uint64_t ss = atomic_load(&r->slots[s].state);
			if (SLOT_ST(ss) == SLOT_ACTIVE && SLOT_PROC(ss) == p) {
				nslots++;
				for (int k = 0; k < ST_COUNT; k++)
					st[k] += atomic_load(&r->slots[s].stats[k]);
			}
		}
		uint64_t aborts = st[ST_AB_READ] + st[ST_AB_LOCK] + st[ST_AB_VALIDATE];
		unsigned long long pid = atomic_load(&r->procs[p].pid);
		const char *state = PROC_ST(ps) == PROC_ALIVE ? "alive" : "recovering";
		if (json) {
			printf("%s{\"entry\":%u,\"pid\":%llu,\"state\":\"%s\",\"slots\":%u,"
			       "\"commits\":%llu,\"commits_ro\":%llu,\"aborts_read\":%llu,"
			       "\"aborts_lock\":%llu,\"aborts_validate\":%llu,"
			       "\"aborts_user\":%llu,\"escalations\":%llu,"
			       "\"recoveries\":%llu}",
			       first ? "" : ",", p, pid, state, nslots,
			       (unsigned long long)st[ST_COMMITS],
			       (unsigned long long)st[ST_COMMITS_RO],
			       (unsigned long long)st[ST_AB_READ],
			       (unsigned long long)st[ST_AB_LOCK],
			       (unsigned long long)st[ST_AB_VALIDATE],
			       (unsigned long long)st[ST_AB_USER],
			       (unsigned long long)st[ST_ESCALATIONS],
			       (unsigned long long)st[ST_RECOVERIES]);
		} else {
			printf("  %5u %8llu %10llu %10llu %10llu %10llu %6u %s\n", p,
			       pid, (unsigned long long)st[ST_COMMITS],
			       (unsigned long long)st[ST_COMMITS_RO],
			       (unsigned long long)aborts,
			       (unsigned long long)st[ST_AB_USER], nslots,
			       PROC_ST(ps) == PROC_ALIVE ? "" : "recovering");
		}
		first = 0;
	}
	print_heap(r, json);
	if (json)
		printf("}\n");
	pstm_close(r);
	return 0;
}

static int cmd_rm(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: pstm rm URI\nRemove a region (and its companion "
		       "runtime segment).\n");
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-')
		return die_usage("rm needs exactly one URI");
	int rc = pstm_unlink(argv[1]);
	if (rc)
		return fail("cannot remove", argv[1], rc);
	return 0;
}


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
	argv[0] = (char *)prog; /* getopt's messages say "pstm: ..." */
	if (!strcmp(cmd, "create"))
		return cmd_create(argc, argv);
	if (!strcmp(cmd, "info"))
		return cmd_info(argc, argv);
	if (!strcmp(cmd, "rm"))
		return cmd_rm(argc, argv);
	if (!strcmp(cmd, "check"))
		return cmd_check(argc, argv);
	if (!strcmp(cmd, "recover"))
		return cmd_recover(argc, argv);
	if (!strcmp(cmd, "dump"))
		return cmd_dump(argc, argv);
	fprintf(stderr, "%s: unknown command '%s' (try 'pstm --help')\n", prog, cmd);
	return 2;
}
