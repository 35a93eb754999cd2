/*
 * persist.c - making stores durable: cache-line flush + drain on pmem,
 * msync on plain files; nothing on volatile regions, nor for addresses
 * in a relaxed region's working copy (which is never persisted).
 */
#include <libpmem.h>

#include "persist.h"
#include "testing.h"

int region_flush(struct pstm_region *r, const void *p, size_t n)
{
	if (!r->durable || n == 0)
		return 0;
	if (r->fbase && ((const uint8_t *)p < r->fbase ||
			 (const uint8_t *)p >= r->fbase + r->map_len))
		return 0; /* relaxed: the working copy is never persisted */
	if (TESTING_POWERFAIL(r)) {
		powerfail_flush(r, p, n);
		if (!r->is_pmem) /* msync: flushed and drained at once */
			powerfail_drain(r);
	}
	if (r->is_pmem) {
		pmem_flush(p, n);
		return 0;
	}
	return pmem_msync(p, n);
}

void region_drain(struct pstm_region *r)
{
	if (r->durable && r->is_pmem) {
		if (TESTING_POWERFAIL(r))
			powerfail_drain(r);
		pmem_drain();
	}
}

int region_persist(struct pstm_region *r, const void *p, size_t n)
{
	int rc = region_flush(r, p, n);
	region_drain(r);
	return rc;
}
