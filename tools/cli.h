/*
 * cli.h - what the command-line tools share (the pstm CLI and its command
 * files, pstm-crashtest): error messages (text and JSON), number
 * arguments, the command line of a command that takes one URI.
 * Exit status of every command: 0 success, 1 failed (or damage found),
 * 2 usage error.
 */
#ifndef PSTM_CLI_H
#define PSTM_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct emit;

/* the tool's name in its messages: defined by each tool's main file */
extern const char *cli_prog;

/*
 * The running command's output: JSON (--json or --pretty) or text.  Set
 * while its command line is parsed, by cli_uri_args or, for a command
 * with a getopt loop of its own, by cli_set_json; cli_fail reads it.
 */
extern bool cli_json;
/* --json (@pretty false) or --pretty (true: --json, indented) */
void cli_set_json(bool pretty);

/* print "PROG: MSG (try 'PROG --help')" and return 2.  Usage errors are
 * text on stderr even under --json: the command line is the caller's. */
int cli_usage_error(const char *msg);
__attribute__((format(printf, 1, 2)))
int cli_usage_errorf(const char *fmt, ...);

/*
 * An operation failed: print "PROG: WHAT URI: <pstm_strerror(rc)>" on
 * stderr and, under --json, the error document on stdout:
 *   {"uri": URI, "error": {"code": "PSTM_E...", "message": "WHAT URI: ..."}}
 * Returns 1, the exit status.
 */
int cli_fail(const char *what, const char *uri, int rc);

/* pstmd's view of @uri's processes (pstm procs, pstm top): 0 when it
 * serves the region; PSTM_ENOENT when no pstmd does (or PSTM_DAEMON=off:
 * read the region instead), another PSTM_E* code if its answer failed */
struct member_procs;
int cli_ask_pstmd(const char *uri, struct member_procs *mp);
/* The same with a message of one's own instead of pstm_strerror's. */
__attribute__((format(printf, 4, 5)))
int cli_failf(const char *what, const char *uri, int rc, const char *fmt, ...);

/*
 * A command's JSON document on stdout, begun with the key every one has:
 * {"uri": URI, ...}.  cli_json_end closes it; 0, or cli_fail's 1 when
 * json-c ran out of memory (nothing was printed).
 */
void cli_json_begin(struct emit *e, const char *uri);
int cli_json_end(struct emit *e, const char *uri);

/*
 * A non-negative integer in [@lo, @hi]: decimal, 0x hex or 0 octal (with
 * CLI_OCTAL always octal); with CLI_UNITS a K, M, G or T suffix, powers
 * of 1024 (KiB, MiB ... and KB, MB ... read the same).  It must start
 * with a digit.  -1 on junk, overflow or out of range; *out is then
 * untouched.
 */
enum { CLI_UNITS = 1, CLI_OCTAL = 2 };
int cli_parse_u64(const char *s, unsigned flags, uint64_t lo, uint64_t hi,
		  uint64_t *out);

/* A numeric option: its name ("--max-procs"), range and CLI_* flags. */
struct cli_num {
	const char *name;
	uint64_t lo, hi;
	unsigned flags;
};
/*
 * Option @n's argument @arg into *out: 0, or 2 after a usage error that
 * names the option, the value and the limit ("--max-procs 5000: at most
 * 1023"; sizes in KiB, MiB ...).
 */
int cli_parse_option(const struct cli_num *n, const char *arg, uint64_t *out);

/* The options every command takes: --help, and with @json not NULL
 * --json and --pretty (stored there and in cli_json).  -1 to go on
 * (operands from optind), else the exit status (0 after --help). */
int cli_opts(int argc, char **argv, const char *help, bool *json);

/*
 * The command line of a pstm command that takes --help, with @json not
 * NULL also --json and --pretty (stored there and in cli_json), and
 * exactly one URI (stored in *uri; argv[0] is the command's name for
 * getopt).  Returns -1 to go on, else the exit status: 0 after printing
 * @help for --help, 2 after a message naming @cmd.
 */
int cli_uri_args(int argc, char **argv, const char *cmd, const char *help,
		 bool *json, const char **uri);

/* A uuid as text, 8-4-4-4-12 lowercase hex digits (tools/cmd_info.c). */
void cli_uuid_text(const uint8_t u[16], char out[37]);

/* The superblock's facts as JSON fields (uuid, sizes, durability,
 * limits, creation time): the keys pstm create and pstm info share. */
struct pstm_region_info;
void cli_emit_region(struct emit *e, const struct pstm_region_info *in);

/* commands living in their own files */
int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_conflicts(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_procs(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_copy(int argc, char **argv);
int cmd_top(int argc, char **argv);

#endif
