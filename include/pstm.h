/*
 * pstm.h - persistent software transactional memory shared by processes.
 *
 * This header is the manual.  A region is a block of shared memory (POSIX
 * shm, volatile) or a file mapped with libpmem (durable) that several
 * processes map at once.  Code runs against it in transactions that behave
 * as if all transactions of all processes ran one after another (strict
 * serializability), and a running transaction never sees a state that no
 * such serial order could produce (opacity), even one that will abort.
 *
 * References inside a region are byte offsets from its start (pstm_off,
 * 0 = null), so each process may map the region at a different address.
 *
 * Conventions:
 *  - Functions returning int return 0 on success or a negative PSTM_E*
 *    code; pstm_strerror() gives its text.  A user transaction function's
 *    own non-zero return value is passed back unchanged (use positive values
 *    or values below PSTM_ERR_LAST to keep them apart from ours).
 *  - "May unwind": the call may not return to the transaction function; the
 *    transaction is rolled back and re-executed (conflict) or ended with an
 *    error (bad offset, full log).  Code inside a transaction must not own
 *    outside resources (heap memory, locks, fds) across such calls; it must
 *    be safe to re-run from the start.
 *  - A pstm_region handle may be used by any number of threads of the
 *    process that opened it; it must not be used in a forked child (open the
 *    region again there; a relaxed region's handle also runs a flush
 *    thread, which a child does not inherit).
 */
/*
 * ABI policy.  The shared library's soname is libpstm.so.0 (every symbol
 * carries the version node PSTM_0, lib/libpstm.map); only pstm_* symbols
 * are exported.  The soname's number moves only with an incompatible
 * change, and then the old number is never reused for another ABI.
 *
 * Allowed without a soname bump (a MINOR release):
 *  - new functions, new types, new macros;
 *  - new PSTM_E* codes and new enumerators (callers must treat an unknown
 *    error code as an error and pass it to pstm_strerror());
 *  - new fields at the END of a public struct (pstm_create_opts,
 *    pstm_region_info, pstm_stats, pstm_copy_opts, pstm_copy_info,
 *    pstm_crashtest_workload), whose zero value keeps the old behaviour
 *    (see "Structs that grow" below: a binary built with the smaller
 *    struct keeps working);
 *  - new flag bits whose absence keeps the old behaviour.
 * Needing a soname bump (never in a MINOR or PATCH release): removing or
 * renaming a symbol, changing a function's parameters or return type,
 * reordering, resizing, retyping or removing a struct field, changing an
 * existing enumerator's or macro's value, or changing documented
 * behaviour a caller may rely on.  The region format is versioned apart
 * from the ABI (PSTM_EVERSION).
 *
 * Structs that grow.  The option, info and stats structs
 * (pstm_create_opts, pstm_region_info, pstm_stats, pstm_copy_opts,
 * pstm_copy_info, pstm_failed_task) travel with their size: each call
 * that takes one has a sized entry point (pstm_create_sz,
 * pstm_region_info_sz, pstm_stats_get_sz, pstm_copy_sz,
 * pstm_queue_failed_sz) taking the caller's sizeof, and the
 * old names are function-like macros below that pass it, so source that
 * calls pstm_create(uri, &o, &r) compiles unchanged and records, in the
 * binary, the size of the struct its header had.  The library reads only
 * that many bytes of an options struct (the fields beyond it take their
 * zero default) and writes only that many bytes of an info or stats
 * struct; a caller's struct larger than the library's (a newer header,
 * an older library) is accepted when its unknown tail is all zero
 * (options; else PSTM_EINVAL: the caller asked for something this
 * library cannot do) and has that tail zeroed (info and stats).  A size
 * below the struct of the first release (0.1), or above 4096, is
 * PSTM_EINVAL.  The symbols of the old names (pstm_create, ...; call
 * them as (pstm_create)(...)) stay, for binaries built before the sized
 * calls, and use the first release's sizes.
 *
 * Callers zero-initialise every option and info struct they hand the
 * library (`struct pstm_create_opts o = {0};`, or memset) and set only
 * the fields they know, so a field added later reads as zero: its
 * default.  A workload of pstm-crashtest says the size of its
 * pstm_crashtest_workload the same way (PSTM_CRASHTEST_WORKLOAD_SIZE,
 * pstm_crashtest.h).  Opaque types (pstm_region, pstm_tx) have no layout
 * callers may rely on.
 *
 * `make abi-check` compares the built library with abi/libpstm.abi, the
 * ABI of the last release (abidiff; README, "ABI").
 */
#ifndef PSTM_H
#define PSTM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PSTM_API __attribute__((visibility("default")))

/*
 * The release, MAJOR.MINOR.PATCH: the one source of the version (the
 * Makefile reads it from here for the soname's file, pstm.pc and the
 * tools).  pstm_version() is the release of the library actually linked,
 * "0.1.0" for these numbers: compare it with the macros to tell a program
 * built against other headers.
 */
#define PSTM_VERSION_MAJOR 0
#define PSTM_VERSION_MINOR 1
#define PSTM_VERSION_PATCH 0
PSTM_API const char *pstm_version(void);

/* Offset of a byte in a region, from the region's start.  0 is null. */
typedef uint64_t pstm_off;

typedef struct pstm_region pstm_region; /* an open region (per process) */
typedef struct pstm_tx pstm_tx;         /* a running transaction */

/*
 * A transaction body.  Return 0 to commit; any other value rolls the
 * transaction back (nothing it wrote becomes visible) and is returned by
 * pstm_atomic()/pstm_run() unchanged.  May be executed several times.
 */
typedef int (*pstm_fn)(pstm_tx *tx, void *arg);

/* ------------------------------------------------------------------ */
/* Errors                                                              */

enum pstm_error {
	PSTM_OK = 0,
	PSTM_EINVAL = -1001,    /* invalid argument (NULL, bad option, bad URI) */
	PSTM_ENOENT = -1002,    /* region does not exist */
	PSTM_EEXIST = -1003,    /* region exists (create without replace) */
	PSTM_EACCES = -1004,    /* permission denied on the region */
	PSTM_EIO = -1005,       /* system call failed (see errno) */
	PSTM_ENOMEM = -1006,    /* out of process memory */
	PSTM_EBADMAGIC = -1007, /* not a pstm region (wrong magic) */
	PSTM_EVERSION = -1008,  /* region format newer than this library */
	PSTM_ECORRUPT = -1009,  /* superblock checksum or fields invalid */
	PSTM_ETRUNC = -1010,    /* file shorter than its superblock says */
	PSTM_ETOOSMALL = -1011, /* requested size too small for the layout */
	PSTM_EPROCFULL = -1012, /* process table full */
	PSTM_ESLOTFULL = -1013, /* no free transaction slot (threads) */
	PSTM_ERANGE = -1014,    /* offset/length outside the region heap */
	PSTM_ELOGFULL = -1015,  /* transaction's redo record does not fit (the heap) */
	PSTM_EHEAPFULL = -1016, /* region heap exhausted */
	PSTM_EINTX = -1017,     /* call not allowed inside a transaction */
	PSTM_EBUSY = -1018,     /* busy: pstm_run already active in this
	                           process; pstm_unlink: processes are
	                           attached to the region */
	PSTM_ECANCELED = -1019, /* transaction cancelled (a sibling failed) */
	PSTM_ENOTX = -1020,     /* call only allowed inside a transaction */
	PSTM_ECLOCK = -1021,    /* version clock exhausted; reopen with no users */
	PSTM_EEMPTY = -1022,    /* region file is empty (0 bytes) */
	PSTM_ERUNTIME = -1023,  /* runtime segment of a file region vanished
	                           while processes are attached */
	PSTM_ECONFLICT = -1024, /* pstm_tx_*: the attempt lost a conflict and
	                           was rolled back; run it again */
	PSTM_EUNREGISTERED = -1025, /* pstm_queue_run: the tasks left are of
	                           types no process running the queue has
	                           registered a function for */
	PSTM_ETYPESFULL = -1026, /* pstm_register: the region already has
	                           PSTM_TASK_TYPES_MAX task types */
	PSTM_EREPLACED = -1027, /* pstm_open: the region file was overwritten
	                           in place (an older copy restored over it)
	                           while processes are attached; pstm_sync
	                           of such a process's relaxed region: its
	                           commits no longer reach the file; a
	                           commit of such a process on a durable
	                           region that needs a checkpoint (its redo
	                           ring full) */
	PSTM_ERR_LAST = -1027
};

/* Text for a PSTM_E* code (or strerror text for a positive errno). */
PSTM_API const char *pstm_strerror(int err);

/* ------------------------------------------------------------------ */
/* Regions                                                             */

enum pstm_durability {
	PSTM_DEFAULT = 0,  /* volatile for shm:, durable for files */
	PSTM_VOLATILE = 1, /* no flushing: survives process crashes only */
	PSTM_DURABLE = 2,  /* committed transactions survive power failure */
	PSTM_RELAXED = 3,  /* files only: transactions run on a /dev/shm working
	                      copy; committed ones reach the file within
	                      flush_ms, in commit order.  After a power failure
	                      the file holds a prefix of the commit order (the
	                      newest ~flush_ms may be lost; pstm_sync waits for
	                      them); a process crash loses nothing */
};

/*
 * Options for pstm_create.  Zero-initialise and set what you need; zero
 * fields take the documented default.
 */
struct pstm_create_opts {
	uint64_t size_bytes;   /* whole region; default 64 MiB, min 1 MiB */
	mode_t mode;           /* permission bits (0777 at most, else
	                          PSTM_EINVAL); default 0600 */
	int durability;        /* enum pstm_durability; default PSTM_DEFAULT */
	uint32_t max_procs;    /* attached processes; default 64 (fewer for
	                          small regions), max 1023 */
	uint32_t max_threads;  /* transacting threads (all processes);
	                          default 128 (fewer for small regions), max 2047 */
	uint32_t log_bytes;    /* redo log per thread; default 64 KiB (relaxed:
	                          256 KiB), or size/1024 below 64 MiB
	                          (4 KiB..16 MiB) */
	uint32_t orecs_log2;   /* log2 of ownership records (8 bytes each);
	                          default 16, fewer below 4 MiB; range 10..26.
	                          More: fewer false conflicts; fewer: fewer
	                          cache misses */
	int replace;           /* non-zero: replace an existing region */
	uint32_t flush_ms;     /* PSTM_RELAXED: the longest a commit waits to
	                          reach the file; default 10, range 1..60000 */
};

/*
 * pstm_create - create a region and open it.
 * @uri: "shm:NAME" for POSIX shared memory (/dev/shm/NAME), anything else is
 *       a file path (mapped with libpmem; DAX detected automatically).
 * @o: options, or NULL for defaults.
 * @out: receives the handle.
 * Creation is atomic: other processes see either no region or a complete
 * one.  Errors: PSTM_EINVAL, PSTM_EEXIST, PSTM_EACCES, PSTM_ETOOSMALL,
 * PSTM_EIO, PSTM_ENOMEM.
 *
 * pstm_create is a macro for pstm_create_sz with @o_size the caller's
 * sizeof(struct pstm_create_opts) (the ABI policy above, "Structs that
 * grow"; @o_size is ignored when @o is NULL): PSTM_EINVAL for a size the
 * library cannot take.
 */
PSTM_API int pstm_create_sz(const char *uri, const struct pstm_create_opts *o,
			    size_t o_size, pstm_region **out);
PSTM_API int(pstm_create)(const char *uri, const struct pstm_create_opts *o,
			  pstm_region **out);
#define pstm_create(uri, o, out) \
	pstm_create_sz((uri), (o), sizeof(struct pstm_create_opts), (out))

/*
 * pstm_open - open an existing region and attach this process to it.
 * Validates the superblock (magic, version, checksum, sizes, layout) before
 * mapping, so a failed open never modifies the region.  Recovers slots of
 * dead processes, and after a reboot or power failure replays committed
 * redo logs.  Errors: PSTM_EINVAL, PSTM_ENOENT, PSTM_EACCES,
 * PSTM_EBADMAGIC, PSTM_EVERSION, PSTM_ECORRUPT, PSTM_ETRUNC, PSTM_EEMPTY,
 * PSTM_EPROCFULL, PSTM_ERUNTIME (file region whose /dev/shm runtime
 * segment was removed while processes are attached: close them first),
 * PSTM_EREPLACED (see below), PSTM_EIO, PSTM_ENOMEM.
 *
 * A file region overwritten in place (`cp backup A`, a restore that
 * keeps A's inode, so its /dev/shm companions still carry A's name): the
 * runtime and a relaxed region's working copy belong to the bytes that
 * were there before.  Every open and every close of a file region (but
 * an observing one's or a read-only grant's) writes a new random stamp
 * into the file (page 0, beside the durable state) and into its
 * runtime, under the region's flock; an open that finds
 * them different, or (relaxed) the file's flushed mark below the one the
 * runtime has seen, knows the file was replaced since.  With no process
 * attached it rebuilds the runtime (and working copy) from the file, as
 * after a reboot, replaying its committed logs: the restored bytes are
 * the region.  With processes attached it fails with PSTM_EREPLACED, and
 * so does every open until they have all closed or died (they go on
 * running on a runtime that does not match the file, and may write over
 * the restore: on a durable region until a commit of theirs needs a
 * checkpoint, which fails with PSTM_EREPLACED from then on instead of
 * reusing ring space the restored file's records hold, as pstm_sync of
 * a relaxed one does; cp truncates the file first, so a process touching its
 * mapping meanwhile dies of SIGBUS: stop them before restoring).  Not
 * detected: a restore of a copy taken while processes stayed attached,
 * if no open or close happened between the copy and the restore (on a
 * relaxed region a flush in between is seen, until a live attached
 * process's next flush raises the file's mark again); shm: regions carry
 * their runtime inside and are restored with it.
 */
PSTM_API int pstm_open(const char *uri, pstm_region **out);

/* Flags of pstm_open_opts. */
enum pstm_open_flags {
	/*
	 * Read only, attaching nothing, with no side effect on the other
	 * processes: the handle takes no process entry and no slot, opens
	 * the region file and its runtime (and a relaxed region's working
	 * copy) read-only and maps them PROT_READ, and stores to none of
	 * them.  So read permission to the file is enough, a full process
	 * table does not matter, and the process and slot tables, the
	 * clock, the locks and the logs are byte for byte as they were.  It
	 * runs read-only transactions only (pstm_atomic and pstm_tx_begin run
	 * as pstm_atomic_ro and PSTM_TX_READ_ONLY do: a store ends the
	 * transaction with PSTM_EINVAL), opaque as every transaction is;
	 * they never escalate, never wait for an escalated transaction, and
	 * never abort, recover or otherwise settle another process's
	 * commit: a word locked by a commit before its commit point (owner
	 * slow, stopped or dead) is read as it was before that commit, past
	 * it through that commit's redo record, as every read-only reader
	 * does.  Where neither applies (the region's clock has moved past
	 * the commit's since it began, as other readers move it in a busy
	 * region, where an ordinary transaction soon aborts a stopped
	 * commit anyway) the attempt conflicts and
	 * pstm_atomic_ro retries, sleeping up to 1 ms between attempts,
	 * until the owner goes on or another process settles it (use
	 * pstm_tx_begin to be able to give up).  Statistics
	 * (pstm_stats_get) are the handle's own.  A relaxed region gets no
	 * flush thread from it, pstm_copy refuses it (PSTM_EINVAL).  The
	 * runtime must exist: one missing or from another boot (after a
	 * reboot, nobody attached since) or a copied shm region's is not
	 * built here (that writes), the open fails with PSTM_ERUNTIME, and
	 * any ordinary open (pstm recover) builds it.  While open, the
	 * handle holds the region's attach lock (a kernel lock), so a
	 * pstm_unlink without PSTM_UNLINK_FORCE is PSTM_EBUSY meanwhile.
	 * Errors as pstm_open's but PSTM_EPROCFULL, and PSTM_ERUNTIME as
	 * said.  `pstm dump` opens this way.
	 */
	PSTM_OPEN_OBSERVE = 1,
};

/*
 * pstm_open_opts - pstm_open with @flags (enum pstm_open_flags; 0 is
 * pstm_open itself).  PSTM_EINVAL for an unknown flag; otherwise the
 * errors of pstm_open.
 */
PSTM_API int pstm_open_opts(const char *uri, unsigned flags,
			    pstm_region **out);

/*
 * pstm_open("pstmd:NAME", &r) asks pstmd, the coordinator daemon
 * (pstmd(8); $PSTM_DAEMON_SOCKET or its default socket), to open the
 * file region NAME of its directory for the caller, who need not have
 * any access to the directory.  pstmd decides from the caller's uid and
 * groups (its grant lines, else the file's owner, group and mode) and
 * passes the descriptors; the handle is then like any other, but for a
 * read-only grant (pstm_region_info's read_only): the region is mapped
 * read-only and every transaction runs as with pstm_atomic_ro (a store
 * ends it with PSTM_EINVAL); pstm_sync returns 0 (its flushes are
 * others'); it attaches nothing, its runtime mapped read-only as well,
 * as with PSTM_OPEN_OBSERVE.  NAME is one file name (no '/', no leading '.').  Errors, as
 * well as those of pstm_open: PSTM_EACCES (no grant), PSTM_ENOENT (no
 * such region, or no pstmd to ask), PSTM_EINVAL (a bad name, not a file
 * region), PSTM_EBUSY (pstmd could not open the region within 2 s:
 * another process holds its runtime's lock), PSTM_EIO (pstmd did not
 * answer within 5 s).  pstm_create,
 * pstm_unlink and the other calls that take a URI refuse it
 * (PSTM_EINVAL).
 */
#define PSTM_DAEMON_PREFIX "pstmd:"

/*
 * pstm_close - detach and unmap.  All threads must have finished their
 * transactions on @r; not allowed inside a transaction (PSTM_EINTX).  On
 * a relaxed region it first makes every commit durable (see pstm_sync;
 * returns PSTM_EIO if the file could not be written).  In a forked child,
 * on a handle inherited from the parent, it only unmaps: the process
 * entry and the flush thread are the parent's.
 */
PSTM_API int pstm_close(pstm_region *r);

/*
 * pstm_sync - make every transaction that committed before this call (in
 * any process) durable.  On a PSTM_RELAXED region it flushes the working
 * copy's committed records to the file (or waits for the process doing
 * it); on PSTM_DURABLE and volatile regions it returns 0 at once (commits
 * are already as durable as the region gets).  Not inside a transaction
 * (PSTM_EINTX); not on a handle inherited across fork (PSTM_EINVAL).
 * PSTM_EIO if writing the file failed (sticky until every process has
 * closed the region).
 */
PSTM_API int pstm_sync(pstm_region *r);

/*
 * pstm_unlink - remove a region by URI (no handle needed), with its
 * companions in /dev/shm (the runtime segment of a file region, a relaxed
 * region's working copy).  Refuses what is not a region: a file without
 * the region magic, a directory, a device, a symbolic link (name the
 * region file itself), and never touches it.  Refuses a region that
 * processes are attached to (this one included, through any handle);
 * a process that died attached does not count.  Waits for an open of the
 * region that is in progress.  Errors: PSTM_EINVAL (bad URI, a symbolic
 * link), PSTM_ENOENT, PSTM_EBADMAGIC (not a region), PSTM_EBUSY
 * (processes are attached), PSTM_EACCES, PSTM_EIO.
 */
PSTM_API int pstm_unlink(const char *uri);

/* Flags of pstm_unlink_opts. */
enum pstm_unlink_flags {
	/* remove the region even while processes are attached: they keep
	 * their mappings and go on running on a file nobody can open any
	 * more; what they commit is lost when the last one closes it */
	PSTM_UNLINK_FORCE = 1,
};

/*
 * pstm_unlink_opts - pstm_unlink with @flags (enum pstm_unlink_flags; 0
 * is pstm_unlink itself).  PSTM_EINVAL for an unknown flag; otherwise
 * the errors of pstm_unlink (PSTM_EBUSY only without PSTM_UNLINK_FORCE).
 */
PSTM_API int pstm_unlink_opts(const char *uri, unsigned flags);

/* Flags of pstm_copy_opts. */
enum pstm_copy_flags {
	/* the copy only as large as the heap in use: see pstm_copy */
	PSTM_COPY_COMPACT = 1,
};

/* Options for pstm_copy.  Zero-initialise; zero fields take the default. */
struct pstm_copy_opts {
	uint64_t size_bytes;  /* the copy's size; default the source's, or
	                         with PSTM_COPY_COMPACT the least that holds
	                         its heap.  Too small for the heap (now, or at
	                         the snapshot): PSTM_ETOOSMALL */
	int durability;       /* file copies: PSTM_VOLATILE, _DURABLE or
	                         _RELAXED; default (PSTM_DEFAULT) the
	                         source's.  shm: copies are volatile */
	uint32_t flush_ms;    /* a relaxed copy's; default the source's if
	                         relaxed, else 10 */
	mode_t mode;          /* permission bits; default the source file's */
	unsigned flags;       /* enum pstm_copy_flags */
	uint32_t passes;      /* passes over the heap that leave writers alone
	                         before the copy holds them back to finish;
	                         default 4, at least 1 */
	uint32_t timeout_ms;  /* give up with PSTM_EBUSY after this long;
	                         default 0: never */
};

/* What pstm_copy did. */
struct pstm_copy_info {
	uint64_t size_bytes;  /* the copy's size */
	uint64_t heap_bytes;  /* bytes of heap copied: up to its top */
	uint32_t passes;      /* passes: copying what changed, then checking */
	uint32_t holds;       /* times writers were held back (0: never) */
	uint64_t chunks;      /* chunks copied, copies again included */
	uint64_t chunk_bytes; /* their size */
	uint64_t hold_ns;     /* how long writers were held back in all */
	uint8_t uuid[16];     /* the copy's (a new one) */
};

/*
 * pstm_copy - write a consistent copy of the open region @r, a snapshot
 * of one moment, to a new region @dst, while other threads and processes
 * keep committing.  The copy has a new uuid and the same layout: the same
 * limits (processes, threads, redo log, orecs) and the heap at the same
 * offset, so every offset stored in the heap stays valid; @dst must be
 * the same kind as the source (both shm: or both files: a shm: region
 * keeps its runtime before its heap, a file region does not), else
 * PSTM_EINVAL.  Like pstm_create it is built under a temporary name and
 * linked into place when complete and durable; it starts with no process
 * attached and empty redo logs.
 *
 * How: the heap (its header, the allocator's metadata and every byte up
 * to its top: what was ever allocated) is read in chunks, each in a
 * read-only transaction of its own, so no transaction holds back a
 * writer; then the orecs show which chunks changed since they were read,
 * and those are read again, pass after pass.  When a check finds nothing
 * changed, the copy is the heap as it was at that check.  If o->passes
 * passes did not get there (busy writers), the copy takes the serial
 * token that an escalating transaction takes: update transactions of
 * other threads and processes do not begin until it is done (read-only
 * ones run on), and it copies the last changes and checks again, as long
 * as that takes; held back longer than about 8 ms, it lets them go for
 * a while and starts again (so writers are held back at most for one
 * check of the orecs plus a few chunks at a time).
 *
 * The copy is in the source's format (version), whose layout it keeps.
 *
 * PSTM_COPY_COMPACT (without o->size_bytes): the copy's size is the
 * least that holds the snapshot's heap up to its top (whole pages, at
 * least 1 MiB and the layout's minimum; a shm: copy no less than keeps
 * its runtime, which lies before the heap and grows with the region's
 * size, as large as the source's), not the source's: the same
 * offsets, free blocks below the top kept, but no room beyond it (an
 * allocation that needs new space ends with PSTM_EHEAPFULL).  It is
 * written at the source's size and cut at the end, so it needs that much
 * space meanwhile.  o->size_bytes gives any other size (larger than the
 * source's too: a copy that can grow) that holds the heap and, for a
 * shm: copy, keeps the heap where it is (else PSTM_EINVAL).
 *
 * The thread uses its slot of @r (claiming one: PSTM_ESLOTFULL); not
 * inside a transaction (PSTM_EINTX); not on an observing handle
 * (PSTM_EINVAL).  Holding writers back, it first waits, as they do, for
 * a transaction that escalated to end.  Errors: PSTM_EINVAL (NULL, bad
 * options, another kind), PSTM_EEXIST (@dst exists), PSTM_ETOOSMALL
 * (o->size_bytes below what the heap needs), PSTM_ECORRUPT (the source
 * heap's header), PSTM_EBUSY (o->timeout_ms passed; nothing is left
 * behind), and those of pstm_create (PSTM_EACCES,
 * PSTM_ENOENT for a missing directory, PSTM_EHEAPFULL when the file
 * system is full, PSTM_EIO, PSTM_ENOMEM).  @out (may be NULL): what it
 * did.  Thread-safe.
 *
 * pstm_copy is a macro for pstm_copy_sz with the caller's sizes of both
 * structs (the ABI policy above, "Structs that grow"; a size is ignored
 * when its pointer is NULL).
 */
PSTM_API int pstm_copy_sz(pstm_region *r, const char *dst,
			  const struct pstm_copy_opts *o, size_t o_size,
			  struct pstm_copy_info *out, size_t out_size);
PSTM_API int(pstm_copy)(pstm_region *r, const char *dst,
			const struct pstm_copy_opts *o,
			struct pstm_copy_info *out);
#define pstm_copy(r, dst, o, out) \
	pstm_copy_sz((r), (dst), (o), sizeof(struct pstm_copy_opts), (out), \
		     sizeof(struct pstm_copy_info))

/* Fixed facts about an open region, for tools and tests. */
struct pstm_region_info {
	uint64_t size_bytes;
	uint64_t heap_off, heap_bytes; /* user-addressable range */
	int durability;                /* PSTM_VOLATILE, _DURABLE, _RELAXED */
	uint32_t flush_ms;             /* PSTM_RELAXED: flush interval */
	int is_pmem;                   /* mapped on real (or forced) pmem */
	uint32_t max_procs, max_threads, log_bytes, orecs_log2;
	uint32_t format_version;
	uint8_t uuid[16];
	uint64_t created_ns;           /* CLOCK_REALTIME at creation */
	int read_only;                 /* opened with a read-only grant of
					  pstmd (pstm_open "pstmd:NAME") */
};
/*
 * pstm_region_info - fill @out.  A macro for pstm_region_info_sz with
 * the caller's sizeof(struct pstm_region_info) (the ABI policy above):
 * only @out_size bytes are written.  PSTM_EINVAL: @r or @out NULL, or a
 * size the library cannot take.
 */
PSTM_API int pstm_region_info_sz(pstm_region *r, struct pstm_region_info *out,
				 size_t out_size);
PSTM_API int(pstm_region_info)(pstm_region *r, struct pstm_region_info *out);
#define pstm_region_info(r, out) \
	pstm_region_info_sz((r), (out), sizeof(struct pstm_region_info))

/* ------------------------------------------------------------------ */
/* Transactions                                                        */

/*
 * pstm_atomic - run @fn(tx, arg) as one transaction.
 * Re-executes fn after conflicts until it commits (returns 0), or until fn
 * returns non-zero (rolled back; that value is returned) or a pstm_* call
 * inside it fails (rolled back; the PSTM_E* code is returned).  Nested
 * calls are flattened into the outer transaction; a non-zero return from
 * a nested body aborts the outer transaction with that value.
 * Thread-safe; serializes with all transactions of all processes.
 */
PSTM_API int pstm_atomic(pstm_region *r, pstm_fn fn, void *arg);

/*
 * Transactional access.  All may unwind.  @off must lie in the heap
 * (pstm_region_info.heap_off .. + heap_bytes); otherwise the transaction
 * ends with PSTM_ERANGE.  load64/store64 accept any alignment; aligned
 * words are the fast path.  Writes are buffered until commit and seen by
 * later reads of the same transaction.  Transactions have no size limit
 * of their own: one that writes more words than its thread's redo log
 * holds (log_bytes / 16, about 4,000 by default) logs them in an overflow
 * extent taken from the heap for the commit (16 bytes a word, kept by the
 * thread for its next large transaction and given back when the thread
 * exits or the region is closed), and reads are limited by process
 * memory only.  PSTM_ELOGFULL ends a transaction whose record does not
 * fit in the heap's free space, an inevitable one that outgrows the
 * extent its thread already has (see pstm_tx_inevitable), and any larger
 * than the redo log on a region of format 1 (created by pstm 0.x before
 * large transactions).  A word locked by a
 * transaction slot that nobody owns (a damaged runtime; `pstm check`
 * reports it) ends the transaction with PSTM_ECORRUPT.
 */
PSTM_API uint64_t pstm_load64(pstm_tx *tx, pstm_off off);
PSTM_API void pstm_store64(pstm_tx *tx, pstm_off off, uint64_t v);
PSTM_API void pstm_read(pstm_tx *tx, pstm_off off, void *dst, size_t n);
PSTM_API void pstm_write(pstm_tx *tx, pstm_off off, const void *src, size_t n);

/*
 * pstm_root - offset of the region's root object of @n bytes, allocated and
 * zeroed on first use.  Later calls with n <= the first size return the
 * same offset; a larger n ends the transaction with PSTM_EINVAL.
 */
PSTM_API pstm_off pstm_root(pstm_tx *tx, size_t n);

/*
 * pstm_alloc - allocate @n bytes (16-byte aligned) as part of @tx: if the
 * transaction aborts the block is returned.  Heap exhausted: the
 * transaction ends with PSTM_EHEAPFULL.  pstm_free releases a block
 * obtained from pstm_alloc; it becomes reusable once @tx commits.
 */
PSTM_API pstm_off pstm_alloc(pstm_tx *tx, size_t n);
PSTM_API void pstm_free(pstm_tx *tx, pstm_off off);

/* The region a transaction runs on. */
PSTM_API pstm_region *pstm_tx_region(pstm_tx *tx);

/* Whether the calling thread is inside a transaction (of any region). */
PSTM_API bool pstm_in_tx(void);

/*
 * pstm_atomic_ro - run @fn(tx, arg) as a read-only transaction: like
 * pstm_atomic, but it never escalates (never stops other transactions),
 * never waits for a transaction that did (one that runs alone after
 * losing too often, even if its process is stopped), and never writes
 * shared memory, not even statistics.  A store
 * (pstm_store64, pstm_write, pstm_alloc, pstm_free, a first pstm_root)
 * ends it with PSTM_EINVAL.  Nested in another transaction it runs as
 * part of that one (flattened), read-only or not.
 */
PSTM_API int pstm_atomic_ro(pstm_region *r, pstm_fn fn, void *arg);

/*
 * Hooks for I/O and outside resources.  A transaction body may run
 * several times and be unwound at any pstm_* call, so it must not own
 * anything outside the region across such calls; register what to do
 * instead:
 *
 * pstm_tx_on_commit - run @fn(@arg) once @tx has committed, after its
 * locks are released, outside any transaction (I/O and free() allowed;
 * it may start new transactions).  Dropped if the attempt rolls back.
 *
 * pstm_tx_on_abort - run @fn(@arg) each time the attempt that registered
 * it is rolled back (a conflict, before it re-runs; or a failure, before
 * pstm_atomic returns), outside any transaction.  Dropped if it commits.
 *
 * Both keep the order of registration (commit hooks together with the
 * children of pstm_tx_add).  PSTM_EINVAL if @tx or @fn is NULL; may
 * unwind with PSTM_ENOMEM.
 */
typedef void (*pstm_hook_fn)(void *arg);
PSTM_API int pstm_tx_on_commit(pstm_tx *tx, pstm_hook_fn fn, void *arg);
PSTM_API int pstm_tx_on_abort(pstm_tx *tx, pstm_hook_fn fn, void *arg);

/*
 * pstm_tx_inevitable - after this returns 0, @tx will not abort or run
 * again: it may do I/O.  The attempt first becomes the region's one
 * inevitable transaction (all processes; another one waits), locks every
 * word it has read or written so far and checks they are unchanged (if
 * not, it re-runs from the start, as after any conflict: so call it
 * before the I/O).  From then on each word it reads or writes is locked
 * when first touched, so no transaction can commit a change under it;
 * transactions that touch other words keep committing, and one that
 * touches its words waits or re-runs, never seeing its uncommitted
 * writes.  Errors still roll it back (a non-zero return of the body,
 * PSTM_ELOGFULL, PSTM_ERANGE, ...): the region is then unchanged, but
 * I/O already done cannot be undone.  An inevitable transaction cannot
 * take an overflow extent (its locks may cover what taking one needs):
 * beyond what its thread's redo log holds it may write only as many
 * words as the extent its thread already has from an earlier large
 * transaction, else PSTM_ELOGFULL.  Not allowed in pstm_atomic_ro
 * (PSTM_EINVAL, unwinds).  A process killed inside an inevitable
 * transaction is recovered like any other: its writes vanish unless it
 * passed its commit point, its locks and the inevitable role are freed.
 * Returns 0 (also when already inevitable); may unwind.
 */
PSTM_API int pstm_tx_inevitable(pstm_tx *tx);

/*
 * pstm_tx_name - name the running transaction @tx for conflict reports
 * (`pstm conflicts`): "transfer lost 32 ms against audit".  Call it in
 * the body, before anything that may conflict (a re-run body calls it
 * again).  Without a name a transaction is named after its pstm_atomic
 * function: its dynamic symbol where the program exports it (dladdr;
 * link with -rdynamic), else its offset in its executable or library,
 * which pstm conflicts looks up in that file's symbol table (so a
 * stripped or rebuilt file shows an offset, or the wrong name).  An
 * explicit transaction (pstm_tx_begin) without a name shows as unnamed.
 * @name is copied (at most 111 bytes) when the transaction aborts or
 * publishes it, so it must stay valid until the transaction ends (a
 * string literal is the usual choice); NULL removes the name.  A name
 * stays published for the other transactions of its thread that lose
 * against this one, until the thread commits an update of another
 * function or gives another name: a thread that commits the same
 * function under two names is reported under the first until then.
 * Only regions of format 2 keep conflict reports; on others this does
 * nothing.  Returns 0, or PSTM_EINVAL if @tx is not this thread's
 * running transaction.  Never unwinds; costs nothing shared when the
 * name is the one the thread published last.
 */
PSTM_API int pstm_tx_name(pstm_tx *tx, const char *name);

/* ------------------------------------------------------------------ */
/* Transactions that never unwind (for C++, Python, Rust, ...)         */

/*
 * pstm_atomic unwinds a conflicted attempt with siglongjmp, which must
 * not cross frames of C++ (destructors), an interpreter or Rust.  This
 * form never unwinds the caller; the caller runs the loop:
 *
 *	for (;;) {
 *		pstm_tx *tx;
 *		int rc = pstm_tx_begin(r, 0, &tx);
 *		if (rc) return rc;
 *		uint64_t v;
 *		if ((rc = pstm_tx_load64(tx, off, &v)) == 0)
 *			rc = pstm_tx_store64(tx, off, v + 1);
 *		if (rc == 0)
 *			rc = pstm_tx_commit(tx);    (ends the attempt)
 *		else
 *			pstm_tx_end(tx);           (ends it, rolled back)
 *		if (rc != PSTM_ECONFLICT) return rc;
 *	}
 *
 * pstm_tx_begin - start an attempt on this thread (PSTM_TX_READ_ONLY:
 * as pstm_atomic_ro).  After an attempt that ended in PSTM_ECONFLICT the
 * next begin on the thread backs off first (and escalates, as
 * pstm_atomic does, after many).  Errors: PSTM_EINVAL, PSTM_EINTX (the
 * thread is in a transaction already), PSTM_ESLOTFULL, PSTM_ENOMEM.
 *
 * The calls below return 0 or a PSTM_E* code and never unwind:
 * PSTM_ECONFLICT when the attempt lost a conflict (it has been rolled
 * back: every later call on it returns PSTM_ECONFLICT at once, and no
 * call ever returns a value from an inconsistent state), or the error
 * that ended it (PSTM_ERANGE, PSTM_ELOGFULL, PSTM_EHEAPFULL, ...; the
 * attempt is rolled back and later calls return it too).
 *
 * pstm_tx_commit - commit; 0, PSTM_ECONFLICT (run the body again from
 * pstm_tx_begin) or the attempt's error.  pstm_tx_end - end the attempt
 * without committing (rolled back; abort hooks run).  Exactly one of the
 * two ends every attempt that began.
 *
 * pstm_tx_call - run @fn(tx, arg), code written for pstm_atomic (the
 * data structures of pstm_ds.h, pstm_tx_inevitable, ...), inside the
 * attempt: its unwinding stops here.  Returns fn's value, or
 * PSTM_ECONFLICT / the error if it was unwound.
 *
 * Inside an attempt begun with pstm_tx_begin use only these calls (and
 * the hook registrations); the unwinding ones (pstm_load64, ...) only
 * through pstm_tx_call.
 *
 * In the body of a pstm_atomic attempt (a pstm_task_fn's included) the
 * calls above other than pstm_tx_begin, pstm_tx_commit and pstm_tx_end
 * work too, for bodies that must not be unwound (a binding's task
 * bodies): they stop the unwinding in the call and return
 * PSTM_ECONFLICT or the error, the attempt being rolled back; the body
 * must then return (any value; without other pstm_* calls but these,
 * which return the same code), and pstm_atomic re-runs it after a
 * conflict, or ends with the error, as if it had been unwound.
 * pstm_tx_inevitable and the hook registrations unwind there as in any
 * pstm_atomic body: call them through pstm_tx_call.
 */
#define PSTM_TX_READ_ONLY 1u
PSTM_API int pstm_tx_begin(pstm_region *r, unsigned flags, pstm_tx **out);
PSTM_API int pstm_tx_commit(pstm_tx *tx);
PSTM_API int pstm_tx_end(pstm_tx *tx);
PSTM_API int pstm_tx_load64(pstm_tx *tx, pstm_off off, uint64_t *out);
PSTM_API int pstm_tx_store64(pstm_tx *tx, pstm_off off, uint64_t v);
PSTM_API int pstm_tx_read(pstm_tx *tx, pstm_off off, void *dst, size_t n);
PSTM_API int pstm_tx_write(pstm_tx *tx, pstm_off off, const void *src,
			   size_t n);
PSTM_API int pstm_tx_alloc(pstm_tx *tx, size_t n, pstm_off *out);
PSTM_API int pstm_tx_free(pstm_tx *tx, pstm_off off);
PSTM_API int pstm_tx_root(pstm_tx *tx, size_t n, pstm_off *out);
PSTM_API int pstm_tx_call(pstm_tx *tx, pstm_fn fn, void *arg);

/* ------------------------------------------------------------------ */
/* add / run (after PyPy's transaction module)                         */

/*
 * pstm_add - outside a transaction: put fn(arg) in this process's pending
 * set, to be run by the next (or the active) pstm_run.  Errors:
 * PSTM_EINTX (use pstm_tx_add), PSTM_ENOMEM.
 */
PSTM_API int pstm_add(pstm_region *r, pstm_fn fn, void *arg);

/*
 * pstm_tx_add - inside a transaction: schedule fn(arg) to be added to the
 * pending set if and when @tx commits.  Dropped if tx aborts.  May unwind
 * only on PSTM_ENOMEM.
 */
PSTM_API int pstm_tx_add(pstm_tx *tx, pstm_fn fn, void *arg);

/*
 * pstm_run - run every pending transaction, and all they add, on @nthreads
 * worker threads, each as by pstm_atomic, in no guaranteed order, until
 * none is left.  Returns 0; or, if a transaction fails (non-zero return or
 * pstm error), that first failure once the running ones finish; the
 * pending ones are then cancelled (discarded, not run).  Errors without
 * running anything: PSTM_EINVAL (nthreads < 1), PSTM_EINTX (called inside
 * a transaction), PSTM_EBUSY (a run of this process is already active).
 */
PSTM_API int pstm_run(pstm_region *r, int nthreads);

/*
 * Events in the run loop.  pstm_watch_fd - while a pstm_run of this
 * process is active, when @fd is ready for @events (EPOLLIN, EPOLLOUT,
 * EPOLLPRI, EPOLLRDHUP of <sys/epoll.h>), run @fn(r, fd, revents, arg)
 * on one of its worker threads, outside any transaction: it may read a
 * request, run transactions (pstm_atomic) or add them (pstm_add), and
 * write replies from pstm_tx_on_commit hooks so that only committed
 * transactions are answered.  One handler at a time per fd (the fd is
 * re-armed when the handler returns); level-triggered.  Unwatch an fd
 * (from its handler too) before closing it.  Watches are this process's
 * and outlive a run.  Errors: PSTM_EINVAL, PSTM_EEXIST (fd watched
 * already), PSTM_ENOMEM.  pstm_unwatch_fd: PSTM_ENOENT if not watched.
 *
 * A pstm_run with watched fds keeps running until none is watched and no
 * transaction is pending, or until pstm_run_stop(r) (from a handler, a
 * transaction's hook or another thread; PSTM_EINVAL if no run is active)
 * makes its workers return once they finish what they run: pending
 * transactions then stay for the next pstm_run.  A failing transaction
 * stops the run as well, cancelling the pending ones.  Idle workers sleep
 * in epoll_wait; they do not spin.
 */
typedef void (*pstm_fd_fn)(pstm_region *r, int fd, uint32_t revents,
			   void *arg);
PSTM_API int pstm_watch_fd(pstm_region *r, int fd, uint32_t events,
			   pstm_fd_fn fn, void *arg);
PSTM_API int pstm_unwatch_fd(pstm_region *r, int fd);
PSTM_API int pstm_run_stop(pstm_region *r);

/* ------------------------------------------------------------------ */
/* The region's task queue                                             */

/*
 * pstm_add/pstm_run above are this process's: what it adds only it
 * runs, and what it has not run when it dies is lost.  The task queue
 * is the region's.  Its tasks live in the region; every process that
 * runs the queue runs what any process enqueued; and a task runs
 * exactly once even if the process running it is killed at any
 * instruction, because taking a task, running it and enqueueing the
 * tasks it adds are one transaction: a worker that dies rolls back, and
 * the task is still there for the next one.  On a durable region the
 * queue survives power failure in the same way (a task reported done
 * is done once; the queue holds exactly the others).
 *
 * A task is a type name and argument bytes.  Each process that runs
 * tasks registers, by name, the function it runs them with; the name is
 * what is stored with the task, so any process may run it.  Names are 1
 * to PSTM_TASK_NAME_MAX bytes of printable ASCII (0x21-0x7e: no spaces);
 * a region holds at most PSTM_TASK_TYPES_MAX of them, forever (names are
 * never removed).  Argument bytes are copied into the region; up to
 * PSTM_TASK_ARG_MAX bytes each.  A large argument makes its enqueue (and
 * the task that enqueues it) a large transaction, logged in an overflow
 * extent taken from the heap (about 2 bytes of heap per byte written,
 * while it commits): PSTM_EHEAPFULL or PSTM_ELOGFULL if the heap cannot
 * hold both.
 *
 * `pstm queue URI` lists the queue (pending tasks per type, failed
 * tasks with their errors) and retries or drops failed tasks; `pstm
 * info` shows per type the tasks executed, failed and the attempts
 * rolled back by conflicts.  docs/design.md describes the layout.
 */
#define PSTM_TASK_NAME_MAX 63        /* bytes of a task type's name */
#define PSTM_TASK_TYPES_MAX 64       /* task types one region can hold */
#define PSTM_TASK_ARG_MAX (1u << 20) /* bytes of one task's argument */

/*
 * A task body: runs inside the transaction that takes the task, with
 * @arg, a copy of the task's @len argument bytes (valid during the call
 * only; not NULL, even when len is 0).  Return 0 to commit: the task is
 * then done, and its writes and the tasks it enqueued with
 * pstm_tx_enqueue become visible together.  Any other value (or a
 * pstm_* call that ends the transaction with an error) rolls all of
 * that back, and the task goes to the queue's failed list with that
 * value as its error.  Like any transaction body it may be executed
 * several times (after conflicts) and unwound at any pstm_* call.
 */
typedef int (*pstm_task_fn)(pstm_tx *tx, const void *arg, size_t len);

/*
 * pstm_register - this process runs tasks of type @name with @fn.  Adds
 * the name to the region's table of types if it is new there (one small
 * transaction; the queue's first use also allocates its ~50 KiB in the
 * heap).  @fn NULL only declares the type: this process may enqueue it
 * but does not run it.  Registering a name again with the same function
 * (or NULL) does nothing.  Thread-safe.  Register before pstm_queue_run:
 * a type registered while a run is active is seen by it within
 * milliseconds.  Errors: PSTM_EINVAL (@r NULL, @name NULL, empty,
 * longer than PSTM_TASK_NAME_MAX or not printable ASCII), PSTM_EINTX
 * (inside a transaction), PSTM_EEXIST (this process registered @name
 * with another function), PSTM_ETYPESFULL, PSTM_EHEAPFULL, PSTM_ENOMEM,
 * PSTM_ECORRUPT (the queue's structures in the region are damaged), and
 * those of pstm_atomic.
 */
PSTM_API int pstm_register(pstm_region *r, const char *name, pstm_task_fn fn);

/*
 * pstm_enqueue - outside a transaction: add a task of type @name with
 * a copy of @arg (@len bytes; @arg may be NULL only if len is 0), in
 * its own transaction; it is in the queue when this returns 0.  Any
 * process may run it.  Errors (nothing is enqueued): PSTM_EINVAL (@r
 * NULL, a bad name as for pstm_register, @arg NULL with len > 0, len >
 * PSTM_TASK_ARG_MAX), PSTM_ENOENT (no process has registered @name in
 * this region), PSTM_EINTX (use pstm_tx_enqueue), PSTM_EHEAPFULL,
 * PSTM_ELOGFULL (the heap has no room for the transaction's record),
 * PSTM_ENOMEM, PSTM_ECORRUPT, and those of pstm_atomic.  Thread- and
 * process-safe; enqueues of different threads do not conflict (each
 * thread's transaction slot has its own lane).
 */
PSTM_API int pstm_enqueue(pstm_region *r, const char *name, const void *arg,
			  size_t len);

/*
 * pstm_tx_enqueue - inside transaction @tx (a task's or any other):
 * the same, as part of @tx: the task exists if and when @tx commits,
 * and never if it rolls back.  Returns 0, or without ending @tx
 * PSTM_EINVAL (@tx NULL, bad name, arguments as above) or PSTM_ENOENT
 * (unknown name).  May unwind: PSTM_EHEAPFULL, PSTM_ELOGFULL, conflicts;
 * in a read-only transaction (pstm_atomic_ro) it ends @tx with
 * PSTM_EINVAL.  The name's lookup is cached per handle, so only the
 * first enqueue of a name in a process reads the region's table.
 */
PSTM_API int pstm_tx_enqueue(pstm_tx *tx, const char *name, const void *arg,
			     size_t len);

/*
 * pstm_queue_run - run the region's tasks on @nthreads new threads of
 * this process, together with every other process running the queue,
 * in no guaranteed order (each worker takes the newest task of its own
 * lane, else steals the oldest of another's), until the queue is empty
 * in every process: it returns 0 only when no task is left and none is
 * running anywhere (a running task is still in the queue until it
 * commits, and may add more).  Tasks of types this process has not
 * registered are left to processes that have.  Returns:
 *  - 0: the queue is empty;
 *  - PSTM_EUNREGISTERED: the tasks left are all of types that no
 *    process now running the queue has a function for (they stay
 *    queued for a process that registers them);
 *  - a task's error: a task failed (here or in another process) and is
 *    on the failed list; every process's pstm_queue_run returns it once
 *    the tasks it is running have finished, and the tasks pending stay
 *    queued.  While the failed list is not empty, pstm_queue_run
 *    returns its oldest task's error at once, without running anything,
 *    until the failed tasks are retried or dropped (`pstm queue URI
 *    --retry-failed | --drop-failed`);
 *  - without running anything: PSTM_EINVAL (@r NULL, nthreads < 1 or
 *    > 1024), PSTM_EINTX (inside a transaction), PSTM_EBUSY (a
 *    pstm_queue_run of this handle is active), PSTM_ENOMEM;
 *  - PSTM_ECORRUPT (damaged queue structures), PSTM_ESLOTFULL and other
 *    errors of pstm_atomic, from the workers.
 * Idle workers sleep (a bounded backoff, 50 us doubling to 1 ms, woken
 * at once when another worker of this process adds stealable tasks): no
 * busy spinning, and a task enqueued by another process waits at most
 * about a millisecond.  A killed worker's running task is rolled back
 * and taken by another worker (its own tasks are stolen as soon as its
 * death is seen).  Task bodies may call pstm_tx_enqueue, pstm_atomic
 * (flattened) and the hooks; pstm_enqueue and pstm_queue_run inside
 * them return PSTM_EINTX.  Any number of processes may run the queue
 * at once (one run per handle at a time); a task runs in the worker's
 * transaction slot, which each worker thread takes for its life.
 */
PSTM_API int pstm_queue_run(pstm_region *r, int nthreads);

/*
 * The failed list (what `pstm queue URI` shows and --retry-failed /
 * --drop-failed empty), for programs and bindings.  A failed task keeps
 * its id, type and argument until it is retried or dropped.
 */
struct pstm_failed_task {
	uint64_t id;       /* unique in the region; kept when retried */
	uint64_t arg_len;  /* bytes of its argument */
	int err;           /* what it failed with: its body's non-zero
	                      return value, or the PSTM_E* code that ended
	                      its transaction */
	char type[PSTM_TASK_NAME_MAX + 1]; /* its type's name */
};

/*
 * pstm_queue_failed - the failed tasks, newest first, read in one
 * read-only transaction: up to @max of them into @out (@out may be NULL
 * when max is 0), and into *@count how many there are in all (0 for a
 * region without a queue).  A macro for pstm_queue_failed_sz with the
 * caller's sizeof(struct pstm_failed_task) as @elem_size, the stride of
 * @out (the ABI policy above, "Structs that grow").  Errors: PSTM_EINVAL
 * (@r or @count NULL, @out NULL with max > 0, a bad @elem_size),
 * PSTM_EINTX, PSTM_ENOMEM, PSTM_ECORRUPT (damaged queue structures),
 * and those of pstm_atomic_ro.  Thread- and process-safe.
 *
 * pstm_queue_failed_arg - the argument of the failed task @id: its first
 * min(@cap, length) bytes into @buf (may be NULL when cap is 0) and its
 * length into *@len.  PSTM_ENOENT if no failed task has that id (it was
 * retried, dropped, or never failed); otherwise as above.
 *
 * pstm_queue_retry_failed - put every failed task back in the queue (the
 * calling thread's lane), to run again; pstm_queue_drop_failed - delete
 * them (their arguments are freed).  Either way pstm_queue_run runs
 * again once the list is empty.  Outside a transaction (PSTM_EINTX), in
 * transactions of a bounded size, so a long list is moved in several:
 * a concurrent call or a task failing meanwhile may see part of it
 * moved.  *@n (may be NULL): how many were moved.  Errors: PSTM_EINVAL,
 * PSTM_EINTX, PSTM_ECORRUPT, PSTM_EHEAPFULL, PSTM_ELOGFULL and those of
 * pstm_atomic; 0 with *n = 0 for a region without a queue.
 */
PSTM_API int pstm_queue_failed_sz(pstm_region *r, struct pstm_failed_task *out,
				  size_t max, size_t elem_size, size_t *count);
#define pstm_queue_failed(r, out, max, count) \
	pstm_queue_failed_sz((r), (out), (max), sizeof(struct pstm_failed_task), \
			     (count))
PSTM_API int pstm_queue_failed_arg(pstm_region *r, uint64_t id, void *buf,
				   size_t cap, size_t *len);
PSTM_API int pstm_queue_retry_failed(pstm_region *r, uint64_t *n);
PSTM_API int pstm_queue_drop_failed(pstm_region *r, uint64_t *n);

/* ------------------------------------------------------------------ */
/* Statistics                                                          */

struct pstm_stats {
	uint64_t commits;        /* committed update transactions */
	uint64_t commits_ro;     /* committed read-only transactions */
	uint64_t aborts_read;    /* read found a newer or locked word */
	uint64_t aborts_lock;    /* commit could not lock its write set */
	uint64_t aborts_validate;/* commit-time read-set validation failed */
	uint64_t aborts_user;    /* body returned non-zero or pstm error */
	uint64_t escalations;    /* transactions that had to run alone */
	uint64_t recoveries;     /* dead slots this process recovered */
};

/*
 * Totals for this process (all its threads), flushed up to now.
 * pstm_stats_get is a macro for pstm_stats_get_sz with the caller's
 * sizeof(struct pstm_stats) (the ABI policy above): only @out_size bytes
 * are written.  PSTM_EINVAL: @r or @out NULL, or a size the library
 * cannot take.
 */
PSTM_API int pstm_stats_get_sz(pstm_region *r, struct pstm_stats *out,
			       size_t out_size);
PSTM_API int(pstm_stats_get)(pstm_region *r, struct pstm_stats *out);
#define pstm_stats_get(r, out) \
	pstm_stats_get_sz((r), (out), sizeof(struct pstm_stats))

#ifdef __cplusplus
}
#endif
#endif /* PSTM_H */
