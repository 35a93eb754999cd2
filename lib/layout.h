/*
 * layout.h - the byte layout of a region, shared by every process that maps
 * it.  Other processes (and other builds of the library) depend on these
 * structures byte for byte: change them only with PSTM_FORMAT_VERSION.
 *
 *   [0, 4096)            superblock (persistent, checksummed)
 *   [rt_off, +rt_bytes)  runtime (shm regions only; file regions keep it in
 *                        the companion segment /dev/shm/pstm.rt.<uuid>.<file
 *                        identity>, followed there by a struct
 *                        companion_tail): header, process table, slot
 *                        table, orec table, and from format 2 on the
 *                        conflict tables (one struct conflict_slot per slot)
 *   [log_off, +..)       one redo log per slot (persistent)
 *   [heap_off, size)     heap: heap header, then user data
 */
#ifndef PSTM_LAYOUT_H
#define PSTM_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PSTM_MAGIC "PSTMREG1"
/* 2: redo records may continue in an overflow extent (LOG_REC_MAGIC_EXT),
 * the runtime ends with the conflict tables, and orecs released by a
 * commit name the slot that wrote them (see the orec section below).  A
 * library of format 2 opens format 1 regions as they are (no large
 * transactions, no tables, no writer in the orecs) and creates format 2. */
#define PSTM_FORMAT_VERSION 2u
#define PSTM_FORMAT_MIN 1u
#define PSTM_FORMAT_CONFLICTS 2u /* first format with conflict tables */
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
	uint32_t durability;     /* PSTM_VOLATILE / _DURABLE / _RELAXED */
	uint32_t max_procs;
	uint32_t max_slots;      /* transacting threads, all processes */
	uint32_t log_bytes;      /* per slot */
	uint32_t orecs_log2;
	uint32_t rt_inside;      /* 1: runtime at rt_off; 0: companion shm */
	uint64_t rt_off, rt_bytes;
	uint64_t log_off;
	uint64_t heap_off, heap_bytes;
	uint64_t created_ns;
	uint32_t flush_ms;       /* PSTM_RELAXED: flush interval; else 0 */
	uint32_t reserved[9];
	uint32_t crc;            /* crc32 of all bytes above */
	uint32_t pad;
};
_Static_assert(sizeof(struct superblock) == 160, "superblock layout");
_Static_assert(offsetof(struct superblock, crc) == 152, "crc position");

/*
 * The identity of a region file: which file a runtime (and a relaxed
 * region's working copy) belongs to.  A copy is a new file (new inode,
 * new birth time) even though it has the same uuid; mv keeps the file.
 * The birth time tells a file apart from an older one that had the same
 * inode number before it was deleted (a backup restored under the old
 * name); 0 where the filesystem keeps none (lib/companion.c).
 */
struct file_id {
	uint64_t dev;       /* st_dev */
	uint64_t ino;       /* st_ino */
	uint64_t btime_ns;  /* statx birth time, ns since the epoch; 0: none */
};
_Static_assert(sizeof(struct file_id) == 24, "file identity layout");

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
	 * Global version clock.  Committers only read it (acquire, after
	 * locking: wv = clock + 1, TL2's GV5); a transaction that meets a
	 * version above it raises it by CAS-max (acq_rel) while extending
	 * its snapshot.  Read (acquire) at transaction begin.  Own line: the
	 * hottest shared word, kept read-mostly.
	 */
	ALIGNED_LINE _Atomic uint64_t clock;
	/*
	 * Escalation token: 0, or slot index + 1 of the one transaction that
	 * runs alone after losing too often.  CAS 0 -> s+1 by the escalating
	 * thread, store 0 (release) when it ends; recovery of a dead owner
	 * stores 0.  Read (acquire) at every transaction begin.
	 */
	ALIGNED_LINE _Atomic uint64_t serial;
	/*
	 * The region file this runtime was built for (file regions: also
	 * in the companion's name).  Written by whoever initialises the
	 * runtime (under the region flock, before magic, nobody attached),
	 * read by openers under the flock and by pstm check: a shm region
	 * copied with cp carries its original's runtime, process table and
	 * orecs, and the first opener of the copy finds another file's
	 * identity here and resets them.  Read-only while anyone is
	 * attached, so it shares serial's line without costing it anything.
	 */
	struct file_id file;
	/*
	 * file_stamp: the stamp this runtime last wrote into its region
	 * file (FILE_STAMP_OFF), a random non-zero word; 0: none yet (a
	 * runtime of an older library, where this was padding).  Written
	 * (relaxed) by every open and close, under the region flock, after
	 * the file's; read by openers under the flock.  A file whose stamp
	 * differs was overwritten in place since (lib/runtime.c).  Written
	 * twice per process lifetime, so it shares serial's line too.
	 * file_stamp_next: the stamp being written, stored before the
	 * file's: a process killed between the two left the file with this
	 * one, which is then no sign of a replaced file.
	 */
	_Atomic uint64_t file_stamp;
	_Atomic uint64_t file_stamp_next;
	/*
	 * Durable regions only.  dseq: next commit sequence number, taken by
	 * fetch_add (seq_cst) after a committer has published a lower bound
	 * in its slot's inflight word; orders the redo records of commits
	 * that wrote the same word (the second locks after the first
	 * released).  Initialised from the durable horizon when the runtime
	 * is built.
	 */
	ALIGNED_LINE _Atomic uint64_t dseq;
	/*
	 * Group commit of msync'ed (non-pmem) durable regions: a committer
	 * needs one msync of the log area that *started* after its record was
	 * written.  sync_owner: slot + 1 of the process running one (CAS
	 * 0 -> s+1, store 0 after; cleared by the recoverer of a dead owner);
	 * sync_started / sync_finished count them (the owner increments
	 * started before msync and stores finished after, release).
	 */
	ALIGNED_LINE _Atomic uint64_t sync_owner;
	_Atomic uint64_t sync_started;
	_Atomic uint64_t sync_finished;
	/*
	 * Relaxed regions (lib/flush.c).  flush_owner: 0, or the tag
	 * (gen << 16 | index + 1) of the process whose thread is copying
	 * records to the file or checkpointing it (CAS 0 -> tag, store 0
	 * after, release; CAS from a dead owner's tag by a taker-over).
	 * flushed: every commit with seq below it is durable in the file's
	 * log (stored, release, by the owner after the file's
	 * durable_state.flushed is persisted); pstm_sync waits on it.
	 * flush_err: a PSTM_E* code, sticky, when writing the file failed.
	 */
	_Atomic uint64_t flush_owner;
	_Atomic uint64_t flushed;
	_Atomic int64_t flush_err;
	/*
	 * Inevitable transaction (pstm_tx_inevitable): 0, or slot + 1 of
	 * the one transaction that will not abort.  CAS 0 -> s+1 (acq_rel)
	 * by the transaction, store 0 (release) when it ends, CAS s+1 -> 0
	 * by the recoverer of a dead holder after it has released every orec
	 * the slot held (an inevitable transaction locks what it touches, so
	 * its locks are not all named by a redo record).  Unlike serial it
	 * stops no other transaction from beginning.
	 */
	_Atomic uint64_t inevitable;
	/*
	 * serial_beat: bumped (relaxed) by a serial-token holder that shows
	 * it is making progress (each attempt of an escalated transaction,
	 * pstm copy's held passes).  A waiter revokes the token only from a
	 * holder whose token and beat both stayed the same for
	 * SERIAL_REVOKE_NS and whose process is stopped, or for
	 * SERIAL_IDLE_NS (lib/driver.c).  0 in a runtime built by an older
	 * library (it was padding).
	 */
	_Atomic uint64_t serial_beat;
};
_Static_assert(sizeof(struct rt_header) == 320, "rt header layout");
_Static_assert(offsetof(struct rt_header, file_stamp_next) + 8 <=
		       offsetof(struct rt_header, dseq),
	       "file identity and stamp within serial's line");

/*
 * The last page of a file region's runtime companion, after the runtime
 * (rt_bytes): what `pstm ls` and `pstm gc` need to tell whose companion it
 * is once its region may be gone.  Written with pwrite by an opener that
 * holds the region's flock and the companion's flock (lib/runtime.c),
 * when the segment is built and whenever the region's path changed (mv);
 * read with pread by gc under the companion's flock.  Never mapped.
 */
/* /dev/shm/pstm.rt.<32 hex>.<dev>.<ino>.<btime>: at most 100 bytes */
#define COMPANION_PATH_MAX 128
#define COMPANION_TAIL_BYTES PAGE
#define COMPANION_TAIL_MAGIC 0x7073746d7461696cull
struct companion_tail {
	uint64_t magic;          /* COMPANION_TAIL_MAGIC */
	uint32_t path_len;       /* strlen(path), 0 if it did not fit */
	uint32_t pad;
	struct file_id file;     /* the region file's identity */
	struct superblock sb;    /* the region's superblock (table sizes) */
	char path[COMPANION_TAIL_BYTES - 16 - sizeof(struct file_id) -
		  sizeof(struct superblock)]; /* absolute, at the last open */
};
_Static_assert(sizeof(struct companion_tail) == COMPANION_TAIL_BYTES,
	       "companion tail layout");

/*
 * Process table entry, one per attached process.
 * state packs gen (bits 32..63), st (bits 0..7) and, in RECOVERING, a tag
 * naming the recoverer (bits 8..31: its entry index, 10 bits, and the low
 * 14 bits of that entry's gen; see proc.c).  Transitions, all by CAS:
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
/* statistics, indexes of slot.stats[] and proc_entry.stats[] */
enum { ST_COMMITS, ST_COMMITS_RO, ST_AB_READ, ST_AB_LOCK, ST_AB_VALIDATE,
       ST_AB_USER, ST_ESCALATIONS, ST_RECOVERIES, ST_COUNT };
struct slot {
	_Atomic uint64_t state;
	/* statistics, written (relaxed) only by the owning thread */
	_Atomic uint64_t stats[8];
	/*
	 * Durable regions: inflight is 0, or a lower bound of the sequence
	 * number of this slot's commit whose data is not yet written back
	 * (and, on pmem, flushed).  Written by the owner (seq_cst) or by the
	 * recoverer of a dead owner; read by checkpoints to compute the
	 * durable horizon.  ring_head: where the next redo record goes in the
	 * slot's ring (owner only; kept across owners so unretired records
	 * are never overwritten).
	 */
	_Atomic uint64_t inflight;
	_Atomic uint64_t ring_head;
	/*
	 * Relaxed regions.  wrap: how many times the slot's ring started
	 * again at 0 (owner only).  pub: (wrap << 32 | end offset) of the
	 * last record that passed its commit point, stored (release) by the
	 * owner after the COMMITTED state or by the recoverer of a dead
	 * owner before it clears inflight; only grows.  fcur: same packing,
	 * how far the flusher has copied the ring to the file (flush token
	 * holder only).
	 */
	_Atomic uint64_t wrap;
	_Atomic uint64_t pub;
	_Atomic uint64_t fcur;
	uint64_t pad[2];
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
	return (gen << 32) | ((rec & 0xffffff) << 8) | st;
}
#define PROC_ST(s) ((s) & 0xff)
#define PROC_REC(s) (((s) >> 8) & 0xffffff)
#define PROC_GEN(s) ((s) >> 32)
/* the recoverer tag field must hold all 24 bits proc.c puts there: a
 * truncated tag made live recoverers look dead (double recovery) */
_Static_assert(PROC_REC(0xffffffull << 8) == 0xffffff, "recoverer tag width");

/*
 * Redo log area, one per slot, in the persistent part: a 64-byte header
 * (the slot's commit state) followed by a ring of redo records.
 *
 * header.state (only the slot owner or the recoverer of a dead owner
 * writes it; what a *process* crash leaves behind):
 *   IDLE       no commit in progress; the slot holds no orec
 *   LOCKING    the record at rec_off holds the write set; orecs of its
 *              entries may be locked by the slot with their old versions
 *   COMMITTED  commit point passed (durable: record persisted); data may
 *              be partly written back
 *   RELEASING  data written back; orecs being released to version wv
 * Crash of the owner: the recoverer replays a COMMITTED record, then
 * releases each entry's orec still locked by the slot (to wv, or to its
 * old version if LOCKING).
 *
 * Records (what a *power failure* leaves behind, durable regions): each
 * commit appends {magic, seq, count, crc, entries} to its slot's ring,
 * 64-byte aligned, and persists it: the commit point.  Data is written
 * back without waiting; a checkpoint later makes it durable and raises
 * the durable horizon (struct durable_state) past it.  After a power
 * failure every record with a valid crc and seq >= horizon is replayed
 * in seq order.  Volatile regions always use the record at offset 0.
 */
enum { LOG_IDLE = 0, LOG_LOCKING = 1, LOG_COMMITTED = 2, LOG_RELEASING = 3,
       LOG_SEALING = 4, LOG_ABORTED = 5, LOG_ROLLBACK = 6 };
/*
 * Every state but IDLE carries the commit's attempt number in bits 8..63
 * (log_state), so that a waiter's CAS LOCKING(k) -> ABORTED(k) cannot hit
 * a later commit of the slot.  Stopped owners (docs/design.md, "Stopped
 * processes"):
 *   LOCKING(k)  -> SEALING(k)    owner, CAS (durable: the commit point
 *                                 against waiters; then seq, crc)
 *   LOCKING(k)  -> COMMITTED(k)  owner, CAS (volatile: the commit point)
 *   SEALING(k)  -> COMMITTED(k)  owner, store (record sealed)
 *   LOCKING(k)  -> ABORTED(k)    a waiter that saw it stuck, CAS: every
 *                                 lock of the slot is free to take (with
 *                                 its version + 1); the owner loses its
 *                                 CAS above and rolls back
 *   LOCKING(k)  -> ROLLBACK(k)   owner aborting itself, CAS: no waiter
 *                                 may take its locks; it releases them
 *   ABORTED, ROLLBACK -> IDLE    owner once its locks are released
 */
#define LOG_ST(s) ((s) & 0xff)
static inline uint64_t log_state(uint64_t attempt, uint64_t st)
{
	return attempt << 8 | st;
}
struct log_entry {
	uint64_t off;  /* 8-byte aligned region offset */
	uint64_t val;
};
struct log_header {
	_Atomic uint64_t state;
	uint64_t count;   /* entries of the current record */
	uint64_t wv;      /* commit version (orecs) */
	uint64_t rec_off; /* current record, from the start of the ring */
	uint64_t wrap;    /* relaxed: the slot's wrap count for rec_off */
	/* clock + 1 read before LOCKING(k): the current commit's wv will
	 * be at least this (the clock only grows); readers that meet its
	 * locks before its commit point read the old values if their rv is
	 * below it (lib/lockwait.c, read_before).  0 from older libraries,
	 * which had padding here: no reader then reads before them. */
	uint64_t wv_floor;
	uint64_t pad[2];
};
#define LOG_REC_MAGIC 0x7073746d72656331ull
#define LOG_REC_MAGIC_EXT 0x7073746d72656378ull
struct log_record {
	uint64_t magic;   /* LOG_REC_MAGIC, or LOG_REC_MAGIC_EXT */
	uint64_t seq;     /* commit sequence number (durable regions) */
	uint64_t count;   /* entries (inline, or in the extent) */
	uint32_t crc;     /* crc32 of seq, count, [the extent descriptor,]
			     and the entries */
	uint32_t pad;
};
_Static_assert(sizeof(struct log_record) == 32, "log record layout");

/*
 * Large transactions (format 2).  A write set that does not fit the ring
 * (more than log_cap entries) is logged in an overflow extent: a heap
 * block owned by the committing slot.  Its ring record has magic
 * LOG_REC_MAGIC_EXT and is followed by one descriptor {off, cap}; the
 * record's count entries lie at off + OVF_HDR_BYTES in the extent, and
 * the crc covers them.  The extent is a pstm_alloc block whose first 64
 * bytes (struct ovf_header, read and written transactionally) link it
 * into the heap's list of extents (heap_header.ovf_head) and name its
 * owner; the entries after it are written only by the owner, at commit,
 * outside any transaction (lib/overflow.c has the protocol).
 */
struct log_ext {
	uint64_t off;     /* the extent: user offset of its pstm_alloc block */
	uint64_t cap;     /* entries it holds */
};
_Static_assert(sizeof(struct log_ext) == 16, "extent descriptor layout");
#define OVF_MAGIC 0x7073746d6f766631ull
#define OVF_HDR_BYTES 64u
struct ovf_header {
	uint64_t magic;   /* OVF_MAGIC */
	uint64_t next;    /* next extent of the list, 0 at the end */
	uint64_t slot;    /* owner: slot index ... */
	uint64_t owner;   /* ... and that slot's state word when it took it
			     (a slot that is freed or claimed again no
			     longer owns it: the extent is an orphan) */
	uint64_t cap;     /* entries after the header */
	uint64_t pad[3];
};
_Static_assert(sizeof(struct ovf_header) == OVF_HDR_BYTES, "extent header");

/*
 * Durable state, in the superblock page after the superblock (not covered
 * by its crc: it changes).  horizon: every commit with seq < horizon is
 * in the data; written (CAS max, then persisted) by checkpoints, and by
 * recovery after replaying.  flushed (relaxed regions; 0 otherwise):
 * every commit with seq < flushed has its record durable in the file's
 * rings; persisted by the flusher after those records, so recovery
 * replays exactly the records with horizon <= seq < flushed: a prefix of
 * the commit order.  In a relaxed region's working copy both words
 * mirror the file's (horizon frees ring space only once the file's has
 * passed).
 */
#define DURABLE_STATE_OFF 2048
/* The file's stamp (a random 64-bit word, 0: never stamped), rewritten
 * by each open and close of a file region and mirrored in the runtime's
 * file_stamp: a file overwritten in place by an older copy of itself has
 * an older stamp (lib/runtime.c).  Page 0, outside the superblock's crc
 * and the durable state; not persisted on purpose (after a power failure
 * the runtime is rebuilt anyway). */
#define FILE_STAMP_OFF (DURABLE_STATE_OFF + 64)
#define DURABLE_MAGIC 0x7073746d64757261ull
struct durable_state {
	uint64_t magic;
	_Atomic uint64_t horizon;
	_Atomic uint64_t flushed;
};
_Static_assert(sizeof(struct log_header) == 64, "log header layout");

/*
 * Heap header at heap_off (accessed transactionally like user data).  The
 * user range starts at heap_off + HEAP_HDR_BYTES.  lib/alloc.c describes
 * the allocator that owns every word here but magic.
 */
#define HEAP_CLASSES 32
#define HEAP_HDR_BYTES 512u
#define HEAP_DIR_PAGES 16       /* pages of per-slot cache offsets */
#define HEAP_DIR_PAGE_SLOTS 128 /* slots per page */
struct heap_header {
	uint64_t magic;
	uint64_t root_off;     /* 0 until pstm_root's first use */
	uint64_t root_bytes;
	uint64_t top;          /* first never-allocated byte */
	uint64_t free_head[HEAP_CLASSES]; /* shared per size class free lists */
	uint64_t large_head;   /* first-fit list of other free blocks */
	uint64_t cache_dir[HEAP_DIR_PAGES]; /* 0, or a page of slot caches */
	uint64_t ovf_head;     /* first overflow extent (format 2), 0 if none */
	uint64_t taskq;        /* 0 until the task queue's first use, then
				  its header (lib/taskq_layout.h) */
	uint64_t reserved[9];
};
_Static_assert(sizeof(struct heap_header) == HEAP_HDR_BYTES, "heap header");
_Static_assert(offsetof(struct heap_header, top) == 24, "heap top position");
_Static_assert(HEAP_DIR_PAGES * HEAP_DIR_PAGE_SLOTS >= ((1u << 11) - 1),
	       "cache directory covers every slot");

/*
 * Orec: one 64-bit word per stripe of data words.
 *   unlocked: version << 12 | writer << 1
 *   locked:   version << 12 | slot << 1 | 1   (version kept while locked)
 * writer: format 2, slot + 1 of the commit that released the orec with
 * this version (0: unknown, e.g. released by a recoverer or unchanged
 * after an abort); always 0 in format 1, whose processes may run an older
 * library that compares unlocked orecs with version << 12.  An orec's
 * version only grows while anyone has read it (GV5, docs/design.md), so
 * validation compares versions and ignores the writer.
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
/* the writer field of a released orec of slot @slot (format 2) */
static inline uint64_t orec_writer_tag(uint32_t slot)
{
	return (uint64_t)(slot + 1) << 1;
}
/* slot that released unlocked orec @o, or -1 if it does not say */
static inline int64_t orec_writer(uint64_t o)
{
	return (int64_t)((o >> 1) & OREC_MAX_SLOTS) - 1;
}

/*
 * Conflict tables (format 2), after the orec table, one struct
 * conflict_slot per slot (lib/conflict.c writes them, lib/conflict_report.c
 * and pstm conflicts read them).  Diagnostics only: nothing in the
 * library depends on what they hold, and a reader must expect any value.
 *
 * pub: the name of the transaction the slot last committed, or is
 * committing (with its pid), so that a transaction that loses against
 * this slot can name its opponent.  Written by the slot's owner thread
 * only, on the slow path: when the name differs from the last one
 * published (a commit of another function, pstm_tx_name with another
 * name).  Kept when the slot is released: an opponent that exited is
 * still named.
 *
 * entries: conflicts this slot lost, one per (cause, own pid and name,
 * other pid and name), with counters; written by the slot's owner thread
 * only, at aborts.  Kept across owners (each entry names its pid) until
 * the runtime is rebuilt.
 *
 * Both are sequence-locked: the writer stores seq odd (relaxed), a
 * release fence, the words (relaxed), then seq even (release); a reader
 * loads seq (acquire), the words (relaxed), an acquire fence, seq again,
 * and retries while they differ or seq is odd.  A writer that died in the
 * middle leaves seq odd: readers give up after a few tries and report
 * the entry torn; its next writer makes seq even again.
 */
#define CONFLICT_ENTRIES_MAX 8
#define CONFLICT_SPOTS 3
#define CONFLICT_TEXT 112       /* bytes of a name, NUL included */
enum { CONFLICT_NONE = 0, CONFLICT_NEWER = 1, CONFLICT_LOCKED = 2,
       CONFLICT_VALIDATE = 3 };
/* kinds of names: given with pstm_tx_name; the function's dynamic symbol
 * (dladdr, in the transacting process); the function as an offset in the
 * module at path text (not exported: the reader looks the symbol up in
 * the module's symbol table); an explicit transaction without a name */
enum { CNAME_NONE = 0, CNAME_GIVEN = 1, CNAME_SYMBOL = 2, CNAME_ADDR = 3,
       CNAME_UNNAMED = 4 };
struct conflict_name {
	_Atomic uint64_t kind;          /* CNAME_* */
	_Atomic uint64_t addr;          /* CNAME_ADDR: offset in the module */
	_Atomic uint64_t text[CONFLICT_TEXT / 8]; /* NUL-terminated */
};
_Static_assert(sizeof(struct conflict_name) == 128, "conflict name layout");

struct conflict_entry {
	_Atomic uint64_t seq;           /* sequence lock, odd while written */
	_Atomic uint64_t aborts;        /* 0: the entry is empty */
	_Atomic uint64_t lost_ns;       /* aborted attempts and the waits after */
	_Atomic uint64_t last_ns;       /* CLOCK_MONOTONIC of the latest abort */
	_Atomic uint64_t pid;           /* the process that lost */
	_Atomic uint64_t other_pid;     /* its opponent's, 0 if unknown */
	_Atomic uint64_t cause;         /* CONFLICT_* */
	_Atomic uint64_t other_slot;    /* slot + 1 of the opponent, 0 if unknown */
	/* the hottest places of this conflict (space-saving counts): a word
	 * offset, or orec index << 1 | 1 where no word was found */
	struct {
		_Atomic uint64_t where;
		_Atomic uint64_t hits;
	} spot[CONFLICT_SPOTS];
	uint64_t pad[2];
	struct conflict_name mine, other;
};
_Static_assert(sizeof(struct conflict_entry) == 384, "conflict entry layout");

/* a slot's table: this header, then conflict_entries_for() entries */
struct conflict_slot {
	_Atomic uint64_t pub_seq;       /* sequence lock of pub and pub_pid */
	_Atomic uint64_t pub_pid;
	uint64_t pad[6];
	struct conflict_name pub;
	struct conflict_entry e[];
} ALIGNED_LINE;
_Static_assert(sizeof(struct conflict_slot) == 192, "conflict slot layout");

/*
 * Entries per slot: the tables take at most 1/64 of the region (at
 * least one entry per slot, at most CONFLICT_ENTRIES_MAX): a 64 MiB
 * region with 128 slots has 8 (408 KiB), a 2 MiB one with 128 slots 1.
 * A function of the superblock, so every process agrees.
 */
static inline uint32_t conflict_entries_for(uint64_t size_bytes,
					    uint32_t max_slots)
{
	uint64_t per_slot = size_bytes / 64 / (max_slots ? max_slots : 1);
	uint64_t n = per_slot > sizeof(struct conflict_slot)
			     ? (per_slot - sizeof(struct conflict_slot)) /
				       sizeof(struct conflict_entry)
			     : 0;
	return n < 1 ? 1 : n > CONFLICT_ENTRIES_MAX ? CONFLICT_ENTRIES_MAX : (uint32_t)n;
}
static inline uint64_t conflict_slot_bytes(uint32_t entries)
{
	return sizeof(struct conflict_slot) +
	       (uint64_t)entries * sizeof(struct conflict_entry);
}

#endif /* PSTM_LAYOUT_H */
