/*
 * layout.h - the byte layout of a region, shared by every process that maps
 * it.  Other processes (and other builds of the library) depend on these
 * structures byte for byte: change them only with PSTM_FORMAT_VERSION.
 *
 *   [0, 4096)            superblock (persistent, checksummed)
 *   [rt_off, +rt_bytes)  runtime (shm regions only; file regions keep it in
 *                        the companion segment /dev/shm/pstm.rt.<uuid>):
 *                        header, process table, slot table, orec table
 *   [log_off, +..)       one redo log per slot (persistent)
 *   [heap_off, size)     heap: heap header, then user data
 */
#ifndef PSTM_LAYOUT_H
#define PSTM_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PSTM_MAGIC "PSTMREG1"
#define PSTM_FORMAT_VERSION 1u
#define PSTM_RT_MAGIC 0x70737403746d7274ull
#define PSTM_HEAP_MAGIC 0x7073746d68656170ull
#define CACHELINE 64
#define PAGE 4096u

#define ALIGNED_LINE __attribute__((aligned(CACHELINE)))

/*
 * Superblock.  Written once at creation (before the region becomes visible
 * under its name), then only read: validated on every open.
 */
struct superblock {
	char magic[8];           /* PSTM_MAGIC */
	uint32_t version;        /* PSTM_FORMAT_VERSION */
	uint32_t sb_bytes;       /* sizeof(struct superblock) */
	uint8_t uuid[16];
	uint64_t size_bytes;     /* whole region */
	uint32_t durability;     /* PSTM_VOLATILE / PSTM_DURABLE */
	uint32_t max_procs;
	uint32_t max_slots;      /* transacting threads, all processes */
	uint32_t log_bytes;      /* per slot */
	uint32_t orecs_log2;
	uint32_t rt_inside;      /* 1: runtime at rt_off; 0: companion shm */
	uint64_t rt_off, rt_bytes;
	uint64_t log_off;
	uint64_t heap_off, heap_bytes;
	uint64_t created_ns;
	uint32_t reserved[10];
	uint32_t crc;            /* crc32 of all bytes above */
	uint32_t pad;
};
_Static_assert(sizeof(struct superblock) == 160, "superblock layout");
_Static_assert(offsetof(struct superblock, crc) == 152, "crc position");

/*
 * Runtime header.  Never flushed; rebuilt when missing (file regions after
 * a reboot).  magic is stored last with release order by whoever
 * initialises the runtime (under flock of the region file), so a reader
 * that sees it sees an initialised runtime.
 */
struct rt_header {
	_Atomic uint64_t magic;  /* PSTM_RT_MAGIC once initialised */
	uint8_t uuid[16];        /* region uuid (companion sanity check) */
	char boot_id[40];        /* /proc/sys/kernel/random/boot_id at init */
	/*
	 * Global version clock.  Written only by fetch_add (acq_rel) of an
	 * update transaction at commit, after it locked its write set; read
	 * (acquire) at transaction begin and on snapshot extension.  Own line:
	 * the hottest shared word.
	 */
	ALIGNED_LINE _Atomic uint64_t clock;
	/*
	 * Escalation token: 0, or slot index + 1 of the one transaction that
	 * runs alone after losing too often.  CAS 0 -> s+1 by the escalating
	 * thread, store 0 (release) when it ends; recovery of a dead owner
	 * stores 0.  Read (acquire) at every transaction begin.
	 */
	ALIGNED_LINE _Atomic uint64_t serial;
	ALIGNED_LINE uint64_t pad1[8];
};
_Static_assert(sizeof(struct rt_header) == 256, "rt header layout");

/*
 * Process table entry, one per attached process.
 * state packs gen (bits 32..63), st (bits 0..7) and, in RECOVERING, the
 * recoverer's process index + 1 (bits 8..23).  Transitions, all by CAS:
 *   FREE(g)  -> ALIVE(g+1)        attach, under the region flock, after
 *                                 pid/start_ticks are written
 *   ALIVE(g) -> FREE(g)           detach by the process itself
 *   ALIVE(g) -> RECOVERING(g, R)  a process R found this one dead
 *   RECOVERING(g, R) -> RECOVERING(g, R2)  R itself died
 *   RECOVERING(g, R) -> FREE(g)   recovery of all its slots done
 * pid/start_ticks are written only while the entry is FREE and owned by the
 * attaching process (it holds the flock), read by anyone checking liveness.
 */
enum { PROC_FREE = 0, PROC_ALIVE = 1, PROC_RECOVERING = 2 };
struct proc_entry {
	_Atomic uint64_t state;
	_Atomic uint64_t pid;
	_Atomic uint64_t start_ticks; /* /proc/PID/stat field 22 */
	_Atomic uint64_t attach_ns;
	/* stats folded in from this process's released slots (owner only) */
	_Atomic uint64_t stats[8];
} ALIGNED_LINE;
_Static_assert(sizeof(struct proc_entry) == 128, "proc entry layout");

/*
 * Slot: one per transacting thread; owns redo log number (index).
 * state packs owner process index (bits 48..63), gen (8..47), st (0..7).
 *   FREE(g) -> ACTIVE(g+1, p)   claimed by a thread of process p (CAS)
 *   ACTIVE -> FREE              released by its thread, or by the
 *                               recoverer of p once its log is settled
 * Orecs name the slot; the slot names the process; the process entry
 * tells whether its owner is alive.
 */
enum { SLOT_FREE = 0, SLOT_ACTIVE = 1 };
struct slot {
	_Atomic uint64_t state;
	/* statistics, written (relaxed) only by the owning thread */
	_Atomic uint64_t stats[8];
	uint64_t pad[7];
} ALIGNED_LINE;
_Static_assert(sizeof(struct slot) == 128, "slot layout");

static inline uint64_t slot_pack(uint64_t proc, uint64_t gen, uint64_t st)
{
	return (proc << 48) | ((gen & 0xffffffffffull) << 8) | st;
}
#define SLOT_ST(s) ((s) & 0xff)
#define SLOT_GEN(s) (((s) >> 8) & 0xffffffffffull)
#define SLOT_PROC(s) ((s) >> 48)

static inline uint64_t proc_pack(uint64_t gen, uint64_t rec, uint64_t st)
{
	return (gen << 32) | (rec << 8) | st;
}
#define PROC_ST(s) ((s) & 0xff)
#define PROC_REC(s) (((s) >> 8) & 0xffff)
#define PROC_GEN(s) ((s) >> 32)

/*
 * Redo log, one per slot, in the persistent part.
 * state (only the slot owner or the recoverer of a dead owner writes it):
 *   IDLE       entries meaningless; the slot holds no orec
 *   LOCKING    entries/count complete; orecs of the entries may be locked by
 *              the slot with their old versions (commit in progress)
 *   COMMITTED  wv and crc set and (durable mode) persisted: the commit
 *              point.  Data may be partly written back.
 *   RELEASING  data written back (and persisted); orecs being released to
 *              version wv.  Never replayed.
 * Crash of the owner: the recoverer replays COMMITTED logs, then releases
 * each entry's orec still locked by the slot (to wv, or to its old version
 * if the log was LOCKING).  Power failure: COMMITTED logs whose crc matches
 * are replayed in wv order; the rest are ignored.
 */
enum { LOG_IDLE = 0, LOG_LOCKING = 1, LOG_COMMITTED = 2, LOG_RELEASING = 3 };
struct log_entry {
	uint64_t off;  /* 8-byte aligned region offset */
	uint64_t val;
};
struct log_header {
	_Atomic uint64_t state;
	uint64_t count;   /* entries that follow */
	uint64_t wv;      /* commit version */
	uint32_t crc;     /* crc32 of count, wv and entries */
	uint32_t pad0;
	uint64_t pad[4];
};
_Static_assert(sizeof(struct log_header) == 64, "log header layout");

/*
 * Heap header at heap_off (accessed transactionally like user data).  The
 * user range starts at heap_off + HEAP_HDR_BYTES.
 */
#define HEAP_CLASSES 32
#define HEAP_HDR_BYTES 512u
struct heap_header {
	uint64_t magic;
	uint64_t root_off;     /* 0 until pstm_root's first use */
	uint64_t root_bytes;
	uint64_t top;          /* first never-allocated byte */
	uint64_t free_head[HEAP_CLASSES]; /* per size class free lists */
	uint64_t large_head;   /* first-fit list of freed large blocks */
	uint64_t reserved[27];
};
_Static_assert(sizeof(struct heap_header) == HEAP_HDR_BYTES, "heap header");

/*
 * Orec: one 64-bit word per stripe of data words.
 *   unlocked: version << 12
 *   locked:   version << 12 | slot << 1 | 1   (version kept while locked)
 * Written by CAS (acquire) to lock at commit, by store (release) to unlock;
 * read (acquire) before and (relaxed, after an acquire fence) after each
 * transactional data load, as a sequence lock.
 */
#define OREC_SHIFT 3 /* one orec per data word (index = off >> 3 & mask);
			measured: 4..6 (coarser stripes) no faster */
#define OREC_LOCK 1ull
#define OREC_SLOT_BITS 11
#define OREC_VSHIFT 12
#define OREC_MAX_SLOTS ((1u << OREC_SLOT_BITS) - 1)
#define OREC_VMAX ((1ull << (64 - OREC_VSHIFT)) - (1ull << 20))
static inline int orec_is_locked(uint64_t o) { return (int)(o & OREC_LOCK); }
static inline uint64_t orec_version(uint64_t o) { return o >> OREC_VSHIFT; }
static inline uint32_t orec_owner(uint64_t o)
{
	return (uint32_t)((o >> 1) & OREC_MAX_SLOTS);
}
static inline uint64_t orec_make_locked(uint64_t o, uint32_t slot)
{
	return (o & ~((1ull << OREC_VSHIFT) - 1)) | ((uint64_t)slot << 1) | 1;
}
static inline uint64_t orec_make(uint64_t version)
{
	return version << OREC_VSHIFT;
}

#endif /* PSTM_LAYOUT_H */
