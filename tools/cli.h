/*
 * cli.h - what the command-line tools share (the pstm CLI and its command
 * files, pstm-crashtest): error messages, number arguments, the command
 * line of a command that takes one URI.
 * Exit status of every command: 0 success, 1 failed (or damage found),
 * 2 usage error.
 */
#ifndef PSTM_CLI_H
#define PSTM_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* the tool's name in its messages: defined by each tool's main file */
extern const char *cli_prog;

/* print "PROG: MSG (try 'PROG --help')" and return 2 */
int cli_usage_error(const char *msg);
/* print "PROG: WHAT URI: <pstm_strerror(rc)>" and return 1 */
int cli_fail(const char *what, const char *uri, int rc);

/*
 * A non-negative integer in [@lo, @hi]: decimal, 0x hex or 0 octal (with
 * CLI_OCTAL always octal); with CLI_UNITS a K/M/G suffix (KiB, MB, ...
 * too).  -1 on junk, overflow or out of range; *out is then untouched.
 */
enum { CLI_UNITS = 1, CLI_OCTAL = 2 };
int cli_parse_u64(const char *s, unsigned flags, uint64_t lo, uint64_t hi,
		  uint64_t *out);

/*
 * The command line of a pstm command that takes --help, with @json not
 * NULL also --json (stored there), and exactly one URI (stored in *uri;
 * argv[0] is the command's name for getopt).  Returns -1 to go on, else
 * the exit status: 0 after printing @help for --help, 2 after a message
 * naming @cmd.
 */
int cli_uri_args(int argc, char **argv, const char *cmd, const char *help,
		 bool *json, const char **uri);

/* commands living in their own files */
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_gc(int argc, char **argv);

#endif
