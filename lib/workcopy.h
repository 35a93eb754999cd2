/*
 * workcopy.h - the working copy of a relaxed region (lib/workcopy.c).
 */
#ifndef PSTM_WORKCOPY_H
#define PSTM_WORKCOPY_H

#include "region.h"

/*
 * Map the working copy.  @build: make it now from the file (the runtime
 * is being rebuilt, nobody is attached); /dev/shm too small gives
 * PSTM_EHEAPFULL.  Without @build, a missing, mis-sized or foreign copy
 * gives PSTM_ERUNTIME.  On success r->base is the copy and r->fbase the
 * file.
 */
HIDDEN int workcopy_attach(struct pstm_region *r, bool build);

#endif /* PSTM_WORKCOPY_H */
