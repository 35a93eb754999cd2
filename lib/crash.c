/*
 * crash.c - fault injection: PSTM_CRASH_AT=NAME:N (see crash.h).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash.h"

_Atomic int crash_armed;
static _Atomic long countdown;
static _Atomic int crash_stop;

static const char *const names[CP_COUNT] = {
	[CP_COMMIT_LOCKING] = "commit.locking",
	[CP_COMMIT_LOCKED] = "commit.locked",
	[CP_COMMIT_SEALED] = "commit.sealed",
	[CP_COMMIT_LOGGED] = "commit.logged",
	[CP_COMMIT_WRITTEN] = "commit.written",
	[CP_COMMIT_RETIRED] = "commit.retired",
	[CP_COMMIT_RELEASED] = "commit.released",
	[CP_RECOVER_CLAIMED] = "recover.claimed",
	[CP_RECOVER_REPLAYED] = "recover.replayed",
	[CP_FLUSH_COPIED] = "flush.copied",
	[CP_CKPT_APPLIED] = "checkpoint.applied",
	[CP_OVF_TAKEN] = "overflow.taken",
	[CP_ESCALATED] = "escalate.taken",
	[CP_ABORT_ROLLBACK] = "abort.rollback",
	[CP_STAMP_NEXT] = "stamp.next",
	[CP_STAMP_WRITTEN] = "stamp.written",
};

const char *crash_point_name(int p)
{
	return p >= 0 && p < CP_COUNT ? names[p] : "?";
}

void crash_arm_from_env(void)
{
	const char *v = secure_getenv("PSTM_CRASH_AT");
	atomic_store(&crash_armed, 0);
	if (!v || !*v)
		return;
	const char *colon = strchr(v, ':');
	size_t len = colon ? (size_t)(colon - v) : strlen(v);
	char *end = NULL;
	long n = colon ? strtol(colon + 1, &end, 10) : 1;
	/* NAME:N:stop stops the process there (SIGSTOP) instead */
	atomic_store(&crash_stop, end && strcmp(end, ":stop") == 0);
	for (int p = 0; p < CP_COUNT; p++)
		if (strlen(names[p]) == len && strncmp(names[p], v, len) == 0) {
			atomic_store(&countdown, n > 0 ? n : 1);
			atomic_store(&crash_armed, p + 1);
		}
}

void crash_hit(int p)
{
	if (atomic_load(&crash_armed) == p + 1 && atomic_fetch_sub(&countdown, 1) == 1)
		kill(getpid(), atomic_load(&crash_stop) ? SIGSTOP : SIGKILL);
}
