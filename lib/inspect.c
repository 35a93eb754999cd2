/*
 * inspect.c - pstm info's view of a region, gathered once from a
 * read-only mapping (region_map_readonly): a process with read
 * permission only, or arriving at a full process table, can look; nothing
 * is written, nobody is recovered.  Everything live (the clock, the
 * process table, the statistics, the heap) may change while it is read:
 * it is a snapshot of each word, not of the whole.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc_check.h"
#include "check.h"
#include "inspect.h"
#include "proc.h"

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000 /* Linux 5.8 */
#endif

void inspect_proc_row(struct pstm_region *r, uint32_t p, uint64_t ps,
		      struct inspect_proc *row)
{
	uint64_t st[ST_COUNT];
	row->entry = p;
	row->pid = atomic_load(&r->procs[p].pid);
	row->state = PROC_ST(ps) == PROC_RECOVERING ? INSPECT_RECOVERING
		     : proc_entry_alive(r, p, ps)   ? INSPECT_ALIVE
						    : INSPECT_DEAD;
	for (int k = 0; k < ST_COUNT; k++)
		st[k] = atomic_load(&r->procs[p].stats[k]);
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		uint64_t ss = atomic_load(&r->slots[s].state);
		if (SLOT_ST(ss) != SLOT_ACTIVE || SLOT_PROC(ss) != p)
			continue;
		row->slots++;
		for (int k = 0; k < ST_COUNT; k++)
			st[k] += atomic_load(&r->slots[s].stats[k]);
	}
	row->st = (struct pstm_stats){
		.commits = st[ST_COMMITS],
		.commits_ro = st[ST_COMMITS_RO],
		.aborts_read = st[ST_AB_READ],
		.aborts_lock = st[ST_AB_LOCK],
		.aborts_validate = st[ST_AB_VALIDATE],
		.aborts_user = st[ST_AB_USER],
		.escalations = st[ST_ESCALATIONS],
		.recoveries = st[ST_RECOVERIES],
	};
}

/* The runtime's clock and process table; PSTM_ENOMEM or 0. */
static int read_runtime(struct pstm_region *r, struct inspect_report *rep)
{
	rep->clock = atomic_load(&r->rt->clock);
	rep->procs = calloc(r->sb.max_procs, sizeof(*rep->procs));
	if (!rep->procs)
		return PSTM_ENOMEM;
	for (uint32_t p = 0; p < r->sb.max_procs; p++) {
		uint64_t ps = atomic_load(&r->procs[p].state);
		/* an invalid state is pstm check's to report */
		if (PROC_ST(ps) == PROC_FREE || PROC_ST(ps) > PROC_RECOVERING)
			continue;
		inspect_proc_row(r, p, ps, &rep->procs[rep->nprocs++]);
	}
	return 0;
}

static int inspect(const char *uri, struct inspect_report *rep, bool heap)
{
	struct pstm_region r;
	struct statx sx;
	memset(rep, 0, sizeof(*rep));
	int rc = region_map_readonly(uri, &r);
	if (rc)
		return rc;
	pstm_region_info(&r, &rep->info);
	rep->info.is_pmem = !r.is_shm &&
			    statx(r.fd, "", AT_EMPTY_PATH, 0, &sx) == 0 &&
			    (sx.stx_attributes & sx.stx_attributes_mask &
			     STATX_ATTR_DAX);
	rep->rt_off = r.sb.rt_off;
	rep->rt_bytes = r.sb.rt_bytes;
	rep->rt_inside = r.sb.rt_inside;
	rep->log_off = r.sb.log_off;
	memcpy(rep->rt_path, r.rt_path, sizeof(rep->rt_path));
	memcpy(rep->wc_path, r.wc_path, sizeof(rep->wc_path));
	rep->wc_found = r.fbase != NULL;
	rep->runtime = !r.rt_base                 ? INSPECT_RT_MISSING
		       : check_runtime_valid(&r) ? INSPECT_RT_FOUND
						 : INSPECT_RT_STALE;
	if (rep->runtime == INSPECT_RT_FOUND)
		rc = read_runtime(&r, rep);
	rep->heap_valid = heap && check_heap_header_valid(&r);
	if (rep->heap_valid) {
		alloc_check(&r, &rep->heap);
		taskq_inspect(&r, &rep->tasks);
	}
	region_unmap_readonly(&r);
	if (rc)
		inspect_report_free(rep);
	return rc;
}

int region_inspect(const char *uri, struct inspect_report *rep)
{
	return inspect(uri, rep, true);
}

int region_inspect_procs(const char *uri, struct inspect_report *rep)
{
	return inspect(uri, rep, false);
}

void inspect_report_free(struct inspect_report *rep)
{
	free(rep->procs);
	rep->procs = NULL;
	rep->nprocs = 0;
}
