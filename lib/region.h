/*
 * region.h - the process-local handle of an open region, and the helpers
 * every module uses to reach the parts of the mapping.
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
struct powerfail;
struct flusher;

struct pstm_region {
	char path[PATH_MAX];     /* file path, or /dev/shm/NAME */
	char rt_path[96];        /* companion runtime path ("" if inside) */
	bool is_shm;
	int fd;                  /* region file, kept open (flock) */
	uint8_t *base;           /* mapping of the whole region */
	size_t map_len;
	bool map_by_pmem;        /* mapped with pmem_map_file */
	bool is_pmem;            /* flush+fence persistence */
	bool durable;            /* redo records with seqs (durable, relaxed) */
	bool relaxed;            /* PSTM_RELAXED: base is the working copy */
	uint8_t *fbase;          /* relaxed: mapping of the file, once base
				    is the working copy; NULL otherwise */
	char wc_path[96];        /* relaxed: /dev/shm/pstm.wc.<uuid> */
	struct flusher *flusher; /* relaxed: this process's flush thread */
	struct superblock sb;    /* validated copy */

	uint8_t *rt_base;        /* runtime (inside base, or companion map) */
	size_t rt_map_len;       /* companion mapping length, 0 if inside */
	struct rt_header *rt;
	struct proc_entry *procs;
	struct slot *slots;
	_Atomic uint64_t *orecs;
	uint64_t orec_mask;

	uint64_t heap_lo, heap_hi; /* user-addressable [lo, hi) */
	uint32_t log_cap;          /* entries per redo record (transaction) */
	uint64_t ring_bytes;       /* redo ring per slot */

	uint32_t proc_idx;       /* our entry in the process table */
	uint64_t proc_state;     /* its ALIVE state word */
	uint64_t open_id;        /* unique per open in this process */

	pthread_key_t key;       /* thread -> struct txd */
	pthread_mutex_t lock;    /* guards txds list */
	struct pstm_tx *txds;    /* all descriptors of this handle */

	struct run_state *run;   /* add/run pending set */

	struct powerfail *powerfail; /* PSTM_TEST_POWERFAIL: tests only */
	bool test_no_validate;   /* PSTM_TEST_BREAK_VALIDATION=1: tests only */
	pid_t owner_pid;         /* process that opened it (fork children
				    must not use it) */
	bool closing;
	bool in_open;            /* inside pstm_open, holding the flock */
	uint64_t open_recoveries;/* dead processes recovered during open */
	uint64_t open_replayed;  /* logs replayed rebuilding the runtime */
	bool rt_rebuilt;         /* this open rebuilt the runtime */
};

/* Persist [p, p+n) if the region is durable (pmem flush or msync).  On a
 * relaxed region only the file is persisted: addresses in the working
 * copy are ignored. */
HIDDEN int region_persist(struct pstm_region *r, const void *p, size_t n);
/* Flush without draining (pmem); msync on plain files. Pair with drain.
 * Both return -1 if an msync failed (the data may not be durable). */
HIDDEN int region_flush(struct pstm_region *r, const void *p, size_t n);
HIDDEN void region_drain(struct pstm_region *r);

static inline struct log_header *region_log(struct pstm_region *r, uint32_t s)
{
	return (struct log_header *)(r->base + r->sb.log_off +
				     (uint64_t)s * r->sb.log_bytes);
}

/* The record at @off of slot @s's ring. */
static inline struct log_record *region_record(struct pstm_region *r,
					       uint32_t s, uint64_t off)
{
	return (struct log_record *)((uint8_t *)(region_log(r, s) + 1) + off);
}

static inline struct log_entry *record_entries(struct log_record *rec)
{
	return (struct log_entry *)(rec + 1);
}

/* Bytes a record of @n entries takes in the ring (cache-line aligned). */
static inline uint64_t record_bytes(uint64_t n)
{
	return (sizeof(struct log_record) + n * sizeof(struct log_entry) +
		CACHELINE - 1) & ~(uint64_t)(CACHELINE - 1);
}

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

static inline uint64_t *region_word(struct pstm_region *r, uint64_t off)
{
	return (uint64_t *)(r->base + off);
}

/* Read-only inspection mapping (check.c); no attach, no writes. */
HIDDEN int region_map_readonly(const char *uri, struct pstm_region *r);
HIDDEN void region_unmap_readonly(struct pstm_region *r);
/* Remove the /dev/shm runtime and working copy of the file region at
 * @path (what a power failure does to them); nothing if none. */
HIDDEN void region_forget_volatile(const char *path);

/* Layout computed from the creation parameters (also used to validate). */
HIDDEN int layout_compute(struct superblock *sb);
HIDDEN uint64_t rt_bytes_for(uint32_t max_procs, uint32_t max_slots,
			     uint32_t orecs_log2);

#endif /* PSTM_REGION_H */
