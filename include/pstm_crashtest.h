/*
 * pstm_crashtest.h - plug your own workload into pstm-crashtest.
 *
 * pstm-crashtest (docs/crashtest.md) runs a workload in several processes
 * on one region, kills them at random moments, at every named crash point
 * of the commit and recovery paths, and (file regions) simulates power
 * failures; after each crash it checks that every transaction acknowledged
 * as committed is present, that none is half-applied, and how long the
 * survivors were blocked.  Without --workload it runs a built-in bank.
 *
 * A workload is a shared object that exports one function,
 *
 *     const struct pstm_crashtest_workload *pstm_crashtest_workload(void);
 *
 * returning a description that stays valid while the object is loaded.
 * Build it as a shared object; the pstm_* functions it calls are resolved
 * against the tool, so it needs no library on its link line:
 *
 *     cc -shared -fPIC -o my_workload.so my_workload.c $(pkg-config --cflags pstm)
 *     pstm-crashtest --workload ./my_workload.so shm:mytest
 *
 * examples/crash_workload.c is a complete example (a linked list built with
 * pstm_alloc/pstm_free whose length and sum are kept beside it).
 *
 * The tool owns the region's root object (pstm_root): it holds the offset
 * of the workload's state and one commit counter per worker process, which
 * it increments in the same transaction as every step.  That counter is
 * how it knows, after a crash, exactly which acknowledged transactions must
 * be present.  A workload must therefore not call pstm_root; it keeps
 * everything it needs in its state object (which may hold offsets of
 * blocks it allocates).
 *
 * All three functions run inside transactions: the usual pstm.h rules
 * apply (any pstm_* call may unwind; a body may be executed several times;
 * own no outside resources across pstm_* calls; keep no process-local
 * state that the transaction's outcome should change).  Each transaction
 * must fit a redo log (pstm-crashtest --size: 8 KiB logs at the default
 * 8 MiB, about 500 written words); a larger one fails with PSTM_ELOGFULL,
 * which the tool reports.
 */
#ifndef PSTM_CRASHTEST_H
#define PSTM_CRASHTEST_H

#include <stddef.h>
#include <stdint.h>

#include "pstm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Name of the function a workload object exports (for dlsym). */
#define PSTM_CRASHTEST_SYMBOL "pstm_crashtest_workload"

struct pstm_crashtest_workload {
	/* Shown in the summary; NULL: the shared object's file name. */
	const char *name;

	/* Bytes of the state object (> 0).  The tool allocates it with
	 * pstm_alloc once, when it creates the region, and zeroes it. */
	size_t state_bytes;

	/*
	 * init - set up the zeroed state at offset @state.  Runs once, in one
	 * transaction, before any worker starts.  Return 0 to commit; a
	 * non-zero value aborts the run (the tool exits 1).  NULL: the
	 * zeroed state is the initial state.
	 */
	int (*init)(pstm_tx *tx, pstm_off state);

	/*
	 * step - one transaction of the workload (required).  The tool runs
	 * it with pstm_atomic in a loop in every worker process; @rnd is a
	 * random 64-bit value, the same for every re-execution of one
	 * transaction and different for the next.  Return 0 to commit; a
	 * non-zero value (or a pstm error such as PSTM_EHEAPFULL) rolls it
	 * back and is reported as a failure of the workload (exit 1).  To do
	 * nothing in a step, return 0 without writing.
	 */
	int (*step)(pstm_tx *tx, pstm_off state, uint64_t rnd);

	/*
	 * check - the invariant (required).  Read the state and return 0 if
	 * it holds; otherwise write a one-line reason into @why (@whylen
	 * bytes, NUL-terminated) and return non-zero.  Runs in a transaction
	 * of the tool's, after every crash and while other workers keep
	 * running: it sees a consistent snapshot, and the transaction rolls
	 * back whatever it returns, so it must not write.
	 */
	int (*check)(pstm_tx *tx, pstm_off state, char *why, size_t whylen);
};

/* The function a workload object defines (declared here so that its
 * definition is checked against this prototype and exported even when the
 * object is built with -fvisibility=hidden). */
PSTM_API const struct pstm_crashtest_workload *pstm_crashtest_workload(void);

/*
 * The struct may gain fields at its end (the ABI policy in pstm.h), so a
 * workload says which size it was built with: write
 *
 *     PSTM_CRASHTEST_WORKLOAD_SIZE;
 *
 * once at file scope; it defines the exported constant
 * pstm_crashtest_workload_size, sizeof(struct pstm_crashtest_workload) of
 * the header it was compiled with.  The tool reads only that many bytes of
 * the workload's struct (the fields beyond it are zero: their default);
 * without the constant it reads the fields up to @check, the struct of
 * the first release.  A size below that, above 4096, or one with
 * non-zero bytes the tool does not know is refused (exit 1).
 */
#define PSTM_CRASHTEST_SIZE_SYMBOL "pstm_crashtest_workload_size"
PSTM_API extern const size_t pstm_crashtest_workload_size;
#define PSTM_CRASHTEST_WORKLOAD_SIZE                      \
	const size_t pstm_crashtest_workload_size =       \
		sizeof(struct pstm_crashtest_workload)

#ifdef __cplusplus
}
#endif
#endif /* PSTM_CRASHTEST_H */
