/*
 * persist.h - persistence of region stores (lib/persist.c).
 */
#ifndef PSTM_PERSIST_H
#define PSTM_PERSIST_H

#include "region.h"

/* Persist [p, p+n) if the region is durable (pmem flush or msync).  On a
 * relaxed region only the file is persisted: addresses in the working
 * copy are ignored.  Returns -1 if an msync failed (the data may not be
 * durable), else 0. */
HIDDEN int region_persist(struct pstm_region *r, const void *p, size_t n);
/* Flush without draining (pmem); msync on plain files.  Pair with
 * region_drain. */
HIDDEN int region_flush(struct pstm_region *r, const void *p, size_t n);
HIDDEN void region_drain(struct pstm_region *r);

#endif /* PSTM_PERSIST_H */
