/*
 * runtime.h - the runtime part of a region (lib/runtime.c).
 */
#ifndef PSTM_RUNTIME_H
#define PSTM_RUNTIME_H

#include "region.h"

/* r->rt, procs, slots, orecs from r->rt_base. */
HIDDEN void runtime_set_pointers(struct pstm_region *r);
/* Initialise a zeroed runtime (clock 0, dseq from the durable horizon);
 * its magic is published last (release). */
HIDDEN void runtime_init(struct pstm_region *r);
/* Initialised, this region's, built for this file (r->file), and
 * (@check_boot) from this boot? */
HIDDEN bool runtime_is_valid(struct pstm_region *r, bool check_boot);
/* Was the runtime built for this file (r->file), and not for the file
 * this one was copied from?  (Magic and uuid not looked at.) */
HIDDEN bool runtime_is_this_files(struct pstm_region *r);

/* OFD lock on the attach byte of the region file @fd: F_RDLCK while
 * attached, F_WRLCK to rebuild; -1 if another process holds it. */
#define ATTACH_LOCK_BYTE 1
HIDDEN int attach_lock(int fd, short type);

/*
 * Map the runtime segment of a file region (under the region flock),
 * creating it when missing, named after the uuid and r->file, and record
 * the region's path in its tail.  *stale: it is new, mis-sized, from
 * another boot or half-initialised, and must be rebuilt (after replaying
 * the logs) before anyone uses it.  PSTM_ERUNTIME if it must be replaced
 * while processes are attached to a vanished one.
 */
HIDDEN int runtime_map_companion(struct pstm_region *r, bool *stale);

/*
 * The file stamp (layout.h FILE_STAMP_OFF, rt_header.file_stamp) of a
 * file region with a companion runtime.  runtime_file_replaced: was the
 * file overwritten in place since this runtime last stamped it (its
 * stamp differs; relaxed: its flushed mark is below the runtime's)?
 * False for a runtime that never stamped.  runtime_stamp: a new stamp
 * into the file, then the runtime; unless the file was replaced (a close
 * must not make a replaced file look like the runtime's own).  Both
 * under the region flock.
 */
HIDDEN bool runtime_file_replaced(struct pstm_region *r);
HIDDEN void runtime_stamp(struct pstm_region *r);

#endif /* PSTM_RUNTIME_H */
