/*
 * superblock.h - the superblock (struct superblock, layout.h): layout,
 * creation from options, validation (lib/superblock.c).
 */
#ifndef PSTM_SUPERBLOCK_H
#define PSTM_SUPERBLOCK_H

#include <stdbool.h>

#include "layout.h"
#include "pstm.h"
#include "util.h"

#define SB_MIN_SIZE (1ull << 20)
#define SB_DEF_SIZE (64ull << 20)
#define SB_MAX_SIZE (1ull << 46)
#define SB_DEF_FLUSH_MS 10
#define SB_MAX_FLUSH_MS 60000
/* the ranges of the other creation options (pstm.h documents them; the
 * CLI names them in its errors) */
#define SB_MAX_PROCS 1023
#define SB_MAX_THREADS OREC_MAX_SLOTS
#define SB_MIN_LOG_BYTES 4096u
#define SB_MAX_LOG_BYTES (16u << 20)
#define SB_MIN_ORECS_LOG2 10
#define SB_MAX_ORECS_LOG2 26

/* Bytes of the runtime of @sb's region (header, process and slot
 * tables, orecs; format 2: the conflict tables), page-aligned. */
HIDDEN uint64_t rt_bytes_for(const struct superblock *sb);
/* Where the orec table ends, from the start of the runtime: the conflict
 * tables of format 2 start there. */
HIDDEN uint64_t rt_orecs_end(uint32_t max_procs, uint32_t max_slots,
			     uint32_t orecs_log2);

/* Fill the layout fields of @sb from its parameters; PSTM_ETOOSMALL if the
 * heap would be too small.  Also the open-time consistency check. */
HIDDEN int layout_compute(struct superblock *sb);

/* A new superblock (fresh uuid, creation time, crc) for a region made
 * with options @o (NULL: defaults) at a shm (@is_shm) or file name;
 * PSTM_EINVAL / PSTM_ETOOSMALL for options out of range. */
HIDDEN int superblock_from_opts(const struct pstm_create_opts *o, bool is_shm,
				struct superblock *sb);

/* Read the superblock of the open region file @fd with pread and
 * validate it against the file's size; writes nothing. */
HIDDEN int superblock_read(int fd, struct superblock *sb);

#endif /* PSTM_SUPERBLOCK_H */
