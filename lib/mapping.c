/*
 * mapping.c - mapping a region into this process: the file with libpmem
 * (or shm with mmap), the fields that follow from its superblock, and
 * one unmap for every kind of mapping (read-only ones too).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libpmem.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "mapping.h"

/* Fields that follow from the validated superblock. */
void region_derive(struct pstm_region *r)
{
	r->durable = r->sb.durability != PSTM_VOLATILE;
	r->relaxed = r->sb.durability == PSTM_RELAXED;
	r->heap_lo = r->sb.heap_off + HEAP_HDR_BYTES;
	r->heap_hi = r->sb.size_bytes;
	/* both 8-aligned (superblock checks), the heap at least a word */
	r->heap_wspan = (r->heap_hi - r->heap_lo - 8) >> 3;
	r->ring_bytes = r->sb.log_bytes - sizeof(struct log_header);
	r->log_cap = (uint32_t)((r->ring_bytes - sizeof(struct log_record)) /
				sizeof(struct log_entry));
	r->ovf_ok = r->sb.version >= 2;
}

int region_map(struct pstm_region *r)
{
	if (r->is_shm) {
		r->base = mmap(NULL, r->sb.size_bytes, PROT_READ | PROT_WRITE,
			       MAP_SHARED, r->fd, 0);
		if (r->base == MAP_FAILED) {
			r->base = NULL;
			return errno_to_pstm(errno);
		}
		r->map_len = r->sb.size_bytes;
		r->is_pmem = false;
		return 0;
	}
	size_t len = 0;
	int is_pmem = 0;
	r->base = pmem_map_file(r->path, 0, 0, 0, &len, &is_pmem);
	if (!r->base)
		return errno_to_pstm(errno);
	r->map_by_pmem = true;
	r->map_len = len;
	r->is_pmem = is_pmem != 0;
	if (len != r->sb.size_bytes)
		return PSTM_ETRUNC; /* file changed under us */
	return 0;
}

void region_unmap(struct pstm_region *r)
{
	if (r->fbase) { /* relaxed: base is the working copy */
		munmap(r->base, r->sb.size_bytes);
		r->base = r->fbase;
		r->fbase = NULL;
	}
	if (r->rt_map_len && r->rt_base)
		munmap(r->rt_base, r->rt_map_len);
	r->rt_base = NULL;
	if (r->base) {
		if (r->map_by_pmem)
			pmem_unmap(r->base, r->map_len);
		else
			munmap(r->base, r->map_len);
	}
	r->base = NULL;
}
