/*
 * mapping.h - mapping a region into this process (lib/mapping.c).
 */
#ifndef PSTM_MAPPING_H
#define PSTM_MAPPING_H

#include "region.h"

/* Fields of @r that follow from its validated superblock. */
HIDDEN void region_derive(struct pstm_region *r);
/* Map r->path read-write (libpmem for files, mmap for shm); sets base,
 * map_len, is_pmem.  PSTM_ETRUNC if the file changed size under us. */
HIDDEN int region_map(struct pstm_region *r);
/* Undo every mapping of @r: working copy, runtime companion, region.
 * Safe on a partly mapped or read-only @r. */
HIDDEN void region_unmap(struct pstm_region *r);

#endif /* PSTM_MAPPING_H */
