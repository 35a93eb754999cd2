/*
 * crash.h - named crash points for fault injection.
 *
 * PSTM_CRASH_AT=NAME:N in the environment (read at pstm_open) makes the
 * process SIGKILL itself the Nth time it passes crash point NAME;
 * NAME:N:stop makes it SIGSTOP itself there instead (a stopped process
 * must not block the others: docs/design.md, "Stopped processes").  Present
 * in every build; unarmed, a point costs one predictable branch on a
 * process-global word.  docs/design.md lists the points.
 */
#ifndef PSTM_CRASH_H
#define PSTM_CRASH_H

#include <stdatomic.h>

#include "util.h"

enum crash_point {
	CP_COMMIT_LOCKING,   /* log holds the write set; no orec locked yet */
	CP_COMMIT_LOCKED,    /* write set locked, before the commit version */
	CP_COMMIT_SEALED,    /* record has its seq and crc; still LOCKING */
	CP_COMMIT_LOGGED,    /* commit point passed: log COMMITTED (durable) */
	CP_COMMIT_WRITTEN,   /* data written back (and persisted) */
	CP_COMMIT_RETIRED,   /* log RELEASING, orecs still locked */
	CP_COMMIT_RELEASED,  /* half of the orecs released */
	CP_RECOVER_CLAIMED,  /* recoverer won the CAS on the dead process */
	CP_RECOVER_REPLAYED, /* dead slot's log replayed, orecs still held */
	CP_FLUSH_COPIED,     /* relaxed: records copied to the file, flushed
				mark not yet persisted (token held) */
	CP_CKPT_APPLIED,     /* relaxed: file data updated, horizon not yet */
	CP_OVF_TAKEN,        /* large commit: a new extent taken (its side
				transaction committed), not yet used */
	CP_ESCALATED,        /* the escalation (serial) token just taken */
	CP_ABORT_ROLLBACK,   /* an aborting commit in ROLLBACK, its locks
				still held (data untouched) */
	CP_STAMP_NEXT,       /* file stamp: the next one noted in the
				runtime, not yet written to the file */
	CP_STAMP_WRITTEN,    /* file stamp: written to the file, not yet
				the runtime's own */
	CP_COUNT
};

extern HIDDEN _Atomic int crash_armed; /* point + 1, or 0 */
HIDDEN void crash_arm_from_env(void);
HIDDEN void crash_hit(int point);
HIDDEN const char *crash_point_name(int point);

#define CRASH_POINT(p)                                                       \
	do {                                                                 \
		if (__builtin_expect(atomic_load_explicit(&crash_armed,   \
				memory_order_relaxed) != 0, 0))                   \
			crash_hit(p);                                        \
	} while (0)

#endif /* PSTM_CRASH_H */
