/*
 * cli.h - what the pstm CLI's command files share.
 * Exit status of every command: 0 success, 1 failed (or damage found),
 * 2 usage error.
 */
#ifndef PSTM_CLI_H
#define PSTM_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

extern const char *cli_prog;

/* print "pstm: MSG (try 'pstm --help')" and return 2 */
int cli_usage_error(const char *msg);
/* print "pstm: WHAT URI: <pstm_strerror(rc)>" and return 1 */
int cli_fail(const char *what, const char *uri, int rc);
/* write s as a JSON string literal (with quotes) (cli_util.c) */
void cli_json_string(FILE *f, const char *s);
/* a non-negative integer; with @units a K/M/G suffix (KiB, MB, ... too);
 * -1 on junk or overflow (cli_util.c) */
int cli_parse_u64(const char *s, uint64_t *out, bool units);

/* commands living in their own files */
int cmd_check(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_dump(int argc, char **argv);

#endif
