/*
 * mapping.c - mapping a region into this process: the file with libpmem
 * (or shm with mmap), the fields that follow from its superblock, the
 * read-only mapping pstm check inspects, and one unmap for both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libpmem.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "companion.h"
#include "error.h"
#include "mapping.h"
#include "runtime.h"
#include "superblock.h"
#include "uri.h"

/* Fields that follow from the validated superblock. */
void region_derive(struct pstm_region *r)
{
	r->durable = r->sb.durability != PSTM_VOLATILE;
	r->relaxed = r->sb.durability == PSTM_RELAXED;
	r->heap_lo = r->sb.heap_off + HEAP_HDR_BYTES;
	r->heap_hi = r->sb.size_bytes;
	r->ring_bytes = r->sb.log_bytes - sizeof(struct log_header);
	r->log_cap = (uint32_t)((r->ring_bytes - sizeof(struct log_record)) /
				sizeof(struct log_entry));
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

/*
 * Map a region read-only for inspection (pstm check): validated
 * superblock, PROT_READ mapping, runtime pointers if a runtime exists
 * (r->rt_base NULL otherwise).  Never writes, never attaches.
 */
int region_map_readonly(const char *uri, struct pstm_region *r)
{
	int rc;
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	rc = uri_parse(uri, r->path, sizeof(r->path), &r->is_shm);
	if (rc)
		return rc;
	r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return errno_to_pstm(errno);
	rc = superblock_read(r->fd, &r->sb);
	if (rc)
		goto fail;
	r->base = mmap(NULL, r->sb.size_bytes, PROT_READ, MAP_SHARED, r->fd, 0);
	if (r->base == MAP_FAILED) {
		r->base = NULL;
		rc = errno_to_pstm(errno);
		goto fail;
	}
	r->map_len = r->sb.size_bytes;
	region_derive(r);
	if (r->sb.rt_inside) {
		r->rt_base = r->base + r->sb.rt_off;
		runtime_set_pointers(r);
	} else {
		companion_path(r->sb.uuid, COMPANION_RUNTIME, r->rt_path,
			       sizeof(r->rt_path));
		r->rt_base = companion_map_ro(r->rt_path, r->sb.rt_bytes);
		if (r->rt_base) {
			r->rt_map_len = r->sb.rt_bytes;
			runtime_set_pointers(r);
		}
	}
	if (r->relaxed) {
		/* the live state is the working copy, when there is one */
		companion_path(r->sb.uuid, COMPANION_WORKCOPY, r->wc_path,
			       sizeof(r->wc_path));
		uint8_t *wc = r->rt_base ? companion_map_ro(r->wc_path, r->sb.size_bytes)
					 : NULL;
		if (wc) {
			r->fbase = r->base;
			r->base = wc;
		}
	}
	return 0;
fail:
	close(r->fd);
	r->fd = -1;
	return rc;
}

void region_unmap_readonly(struct pstm_region *r)
{
	region_unmap(r);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}
