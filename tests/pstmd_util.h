/*
 * pstmd_util.h - what the daemon tests share: starting pstmd from the
 * build on a socket of their own, asking it things over the wire, and
 * waiting for a condition with a bound.
 */
#ifndef PSTM_TEST_PSTMD_UTIL_H
#define PSTM_TEST_PSTMD_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct test_pstmd {
	pid_t pid;
	char sock[108];      /* /tmp/pstm-test-pstmd-<pid>-<n>.sock */
	char state[128];     /* its state file */
	char log[128];       /* its stderr */
	char config[128];    /* "" or a config file the test wrote */
};

/* Names for a daemon of this test (not started). */
void test_pstmd_names(struct test_pstmd *d);
/* Start it (build/pstmd, or $PSTM_BIN/pstmd) with @extra arguments
 * (NULL-terminated, may be NULL), wait until it answers a ping (5 s at
 * most); the test fails otherwise.  A config file is passed if set,
 * else --config /dev/null. */
void test_pstmd_start(struct test_pstmd *d, const char *const *extra);
/* Run pstmd with these arguments to completion; its exit status, its
 * stderr in @err (n bytes). */
int test_pstmd_run(const char *const *args, char *err, size_t n);
/* Run build/@prog ($PSTM_BIN) with @args to completion, with @env
 * ("K=V" set, "K" unset; may be NULL) on top of ours: its exit status,
 * its stdout and stderr in @out (n bytes). */
int test_exec(const char *prog, const char *const *args, const char *const *env,
	      char *out, size_t n);
/* SIGTERM and wait (it must exit 0), or SIGKILL and reap. */
void test_pstmd_stop(struct test_pstmd *d);
void test_pstmd_kill(struct test_pstmd *d);
/* Remove its files (socket, lock, state, log, config). */
void test_pstmd_remove(struct test_pstmd *d);

/* A connected seqpacket socket to @sock, or -1. */
int test_pstmd_connect(const char *sock);
struct test_pstmd_status {
	uint32_t regions, members;
	uint64_t recoveries;
};
/* PING: 0 and *st, or -1 if nobody answered within 2 s. */
int test_pstmd_ping(const char *sock, struct test_pstmd_status *st);
/* Wait at most @ms for pstmd's status to satisfy regions == @regions
 * and members == @members; true if it did. */
bool test_pstmd_wait(const char *sock, uint32_t regions, uint32_t members, int ms);

/* Poll @cond(@arg) every 100 us for at most @ms; true once it holds. */
bool test_poll_until(bool (*cond)(void *arg), void *arg, int ms);

#endif
