/*
 * inventory.h - what regions and companions there are (pstm ls, pstm gc;
 * lib/inventory.c).  Read-only looks, except inventory_gc.
 */
#ifndef PSTM_INVENTORY_H
#define PSTM_INVENTORY_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "companion.h"

/* A region file found in a directory. */
struct inv_region {
	char path[PATH_MAX];
	bool is_shm;             /* runtime inside: a shm:NAME region */
	int error;               /* 0, or why it does not validate (PSTM_E*) */
	char uuid[37];           /* "" if not even that could be read */
	const char *durability;  /* "volatile", "durable", "relaxed" ("" on error) */
	uint64_t size_bytes;
	unsigned procs;          /* live processes attached */
	bool runtime_found;      /* a runtime of this file exists */
	char rt[COMPANION_PATH_MAX], wc[COMPANION_PATH_MAX]; /* "" if none */
	bool rt_exists, wc_exists;
};

/* A companion in /dev/shm and whose it is. */
struct inv_companion {
	char path[300];
	enum companion_kind kind;
	bool legacy;             /* named by the uuid alone, as before file
				    identities: this library never uses it */
	char uuid[37];
	uint64_t size_bytes;
	char region[PATH_MAX];   /* its region's path at the last open, "" if
				    unknown */
	bool region_present;     /* that file is still its region */
	unsigned procs;          /* live processes in its runtime's table */
	bool orphan;             /* region gone and nobody uses it */
};

/*
 * The regions in @dir (not its subdirectories): every regular file with
 * the region magic, validated read-only (never opened, never attached).
 * *out is malloc'ed (free it).  A PSTM_E* code if @dir cannot be read.
 */
HIDDEN int inventory_regions(const char *dir, struct inv_region **out,
			     size_t *n);

/*
 * The companions in /dev/shm (pstm.rt.*, pstm.wc.*): whose they are
 * (the runtime's tail names its region's path and file), whether that
 * region is still there, how many live processes its process table holds.
 * A companion is an orphan when its region is gone (no file at the
 * recorded path, or another file there) and no live process is in its
 * table; a working copy is one when its runtime is (or is missing: the
 * next open would rebuild both).  *out is malloc'ed.
 */
HIDDEN int inventory_companions(struct inv_companion **out, size_t *n);

/*
 * Remove the orphaned companions, each only after taking its flock
 * (non-blocking: one being opened right now is skipped) and looking again.
 * @dry_run: remove nothing, say what would go.  *out: what was (would be)
 * removed; *kept: how many companions stay.
 */
HIDDEN int inventory_gc(bool dry_run, struct inv_companion **out, size_t *n,
			size_t *kept);

#endif /* PSTM_INVENTORY_H */
