/*
 * region.h - the process-local handle of an open region (struct
 * pstm_region), and the helpers every module uses to reach the parts of
 * the mapping.  The lifecycle that fills it is lib/region.c.
 */
#ifndef PSTM_REGION_H
#define PSTM_REGION_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>

#include "pstm.h"
#include "layout.h"
#include "util.h"

struct pstm_tx;
struct run_state;
struct taskq_state;
struct powerfail;
struct flusher;
struct daemon_link;

struct pstm_region {
	char path[PATH_MAX];     /* file path, or /dev/shm/NAME */
	char rt_path[COMPANION_PATH_MAX]; /* companion runtime ("" if inside) */
	struct file_id file;     /* identity of the file fd is open on */
	bool is_shm;
	int fd;                  /* region file, kept open (flock) */
	uint8_t *base;           /* mapping of the whole region */
	size_t map_len;
	bool map_by_pmem;        /* mapped with pmem_map_file */
	bool is_pmem;            /* flush+fence persistence */
	bool durable;            /* redo records with seqs (durable, relaxed) */
	bool relaxed;            /* PSTM_RELAXED: base is the working copy */
	bool read_only;          /* a read-only grant of pstmd: data, logs
				    (and working copy) mapped PROT_READ,
				    every transaction read-only, no
				    recovery of others (their data cannot
				    be written here; pstmd does it) */
	uint8_t *fbase;          /* relaxed: mapping of the file, once base
				    is the working copy; NULL otherwise */
	char wc_path[COMPANION_PATH_MAX]; /* relaxed: /dev/shm/pstm.wc.<...> */
	struct flusher *flusher; /* relaxed: this process's flush thread */
	struct superblock sb;    /* validated copy */

	uint8_t *rt_base;        /* runtime (inside base, or companion map) */
	size_t rt_map_len;       /* companion mapping length, 0 if inside */
	struct rt_header *rt;
	struct proc_entry *procs;
	struct slot *slots;
	_Atomic uint64_t *orecs;
	uint64_t orec_mask;
	uint8_t *conflicts;      /* per slot tables; NULL: format 1 */
	uint32_t conflict_entries; /* entries per slot's table */

	uint64_t heap_lo, heap_hi; /* user-addressable [lo, hi) */
	uint64_t heap_wspan;       /* (heap_hi - heap_lo - 8) / 8: the last
				      user word's index (lib/stm.c) */
	uint32_t log_cap;          /* entries per redo record (transaction) */
	uint64_t ring_bytes;       /* redo ring per slot */
	bool ovf_ok;               /* format 2: overflow extents (large
				      transactions) */

	uint32_t proc_idx;       /* our entry in the process table */
	uint64_t proc_state;     /* its ALIVE state word */
	uint64_t open_id;        /* unique per open in this process */

	pthread_key_t key;       /* thread -> its struct pstm_tx */
	pthread_mutex_t lock;    /* guards txds list */
	struct pstm_tx *txds;    /* all descriptors of this handle */

	struct run_state *run;   /* add/run pending set */
	struct taskq_state *taskq; /* the task queue's registry (lib/taskq.c):
				    made on first use (CAS), freed at close */

	/*
	 * Settle the redo log of dead slot @s (lib/replay.c).  Recovery of
	 * dead processes (lib/recovery.c) lies below the logs and reaches
	 * up through this pointer, set at open.
	 */
	void (*settle_slot)(struct pstm_region *r, uint32_t s);
	/*
	 * Overflow extents (lib/extent.c, the allocator's layer), which
	 * the commit of a large transaction (lib/overflow.c) takes and
	 * gives back in transactions of their own: set at open.
	 */
	uint64_t (*ovf_take)(struct pstm_tx *tx, uint64_t cap, uint64_t old,
			     uint32_t slot, uint64_t owner);
	void (*ovf_give)(struct pstm_tx *tx, uint64_t off);

	/*
	 * pstmd (lib/member.c): this handle's registration connection, NULL
	 * if there is none.  Relaxed regions (set before the flush thread
	 * starts): the flush thread polls flush_daemon_fd (-1: none, or
	 * pstmd is gone) and, when it is readable, asks flush_delegated
	 * whether pstmd's flusher does the timed flushes now (it reads what
	 * pstmd sent, never waits, and sets flush_daemon_fd to -1 once the
	 * connection ended).  The flush thread is the only one that touches
	 * the link until pstm_close has joined it.
	 */
	struct daemon_link *daemon;
	int flush_daemon_fd;
	bool (*flush_delegated)(struct pstm_region *r);
	/*
	 * The flush thread's request to hear of this process's next commit
	 * (lib/flush.c, FLUSH_WATCH_*): NULL without a flush thread.  Its
	 * own cache line in struct flusher; committers load it (seq_cst,
	 * after taking their seq) and only when it is set exchange it.
	 */
	_Atomic int *flush_watch;

	/* the test build's hooks (lib/testing.h): never set otherwise */
	struct powerfail *powerfail; /* PSTM_TEST_POWERFAIL */
	bool test_no_validate;   /* PSTM_TEST_BREAK_VALIDATION=1 */
	pid_t owner_pid;         /* process that opened it (fork children
				    must not use it) */
	bool closing;
	bool in_open;            /* inside pstm_open, holding the flock */
	/* PSTM_OPEN_OBSERVE: read-only transactions only, and no recovery of
	 * dead processes through this handle (lib/recovery.c asks) */
	bool observe;
	/*
	 * Attaches nothing (observers, read-only grants): the region, its
	 * runtime and a relaxed region's working copy are mapped PROT_READ
	 * from descriptors opened (or, from pstmd, passed) read-only; no
	 * process entry, no slot (descriptors carry TXD_NO_SLOT, lib/stm.h),
	 * every transaction read-only, no recovery, no store to any shared
	 * word.  ro_stats: the statistics of this handle's descriptors that
	 * are gone (a slotless descriptor keeps its own; pstm_stats_get adds
	 * them up), relaxed atomics, any thread of this process.
	 */
	bool rt_readonly;
	_Atomic uint64_t ro_stats[ST_COUNT];
	uint64_t open_recoveries;/* dead processes recovered during open */
	uint64_t open_replayed;  /* logs replayed rebuilding the runtime */
	bool rt_rebuilt;         /* this open rebuilt the runtime */
	bool rt_foreign;         /* region_map_readonly: the runtime found
				    belongs to another file (a copy's
				    original); rt_base is NULL then */
};

static inline struct durable_state *region_dstate(struct pstm_region *r)
{
	return (struct durable_state *)(r->base + DURABLE_STATE_OFF);
}

static inline uint64_t region_orec_idx(struct pstm_region *r, uint64_t off)
{
	return (off >> OREC_SHIFT) & r->orec_mask;
}

static inline _Atomic uint64_t *region_orec(struct pstm_region *r,
					    uint64_t off)
{
	return &r->orecs[region_orec_idx(r, off)];
}

/* slot @s's conflict table (format 2: r->conflicts not NULL) */
static inline struct conflict_slot *region_conflict_slot(struct pstm_region *r,
							 uint32_t s)
{
	return (struct conflict_slot *)(r->conflicts +
					(uint64_t)s * conflict_slot_bytes(
							      r->conflict_entries));
}

static inline uint64_t *region_word(struct pstm_region *r, uint64_t off)
{
	return (uint64_t *)(r->base + off);
}

/*
 * Make the region file of @uri with options @o, in format @version (0:
 * this library's; lib/region.c; pstm_create is this, then pstm_open):
 * built under a temporary name in the same
 * directory, then linked into place (PSTM_EEXIST if the name exists,
 * unless o->replace), so nobody sees it half-made.  @fill, if not NULL,
 * writes the heap into the writable mapping @base of the new file once
 * its superblock, durable state, heap header and (shm) runtime are in,
 * before anything is made durable; it may lower *size (a multiple of
 * PAGE at which the heap stays where it is, else PSTM_EINVAL) to have the
 * file cut to it.  Its
 * non-zero return (a PSTM_E* code) ends the creation and is returned,
 * the temporary file removed.  *sb_out (if not NULL): the superblock.
 */
typedef int (*region_fill_fn)(uint8_t *base, const struct superblock *sb,
			      void *arg, uint64_t *size);
HIDDEN int region_create_file(const char *uri, const struct pstm_create_opts *o,
			      uint32_t version, region_fill_fn fill, void *arg,
			      struct superblock *sb_out);

/* What the last pstm_open of @r did while recovering (pstm recover). */
struct open_recovery {
	uint64_t procs_recovered;  /* dead processes settled */
	uint64_t logs_replayed;    /* after a reboot: committed logs replayed */
	bool runtime_rebuilt;
};
HIDDEN void region_open_recovery(pstm_region *r, struct open_recovery *out);

#endif /* PSTM_REGION_H */
