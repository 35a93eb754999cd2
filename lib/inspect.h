/*
 * inspect.h - what pstm info shows of a region, read through a read-only
 * mapping (lib/inspect.c): never attaches, never recovers, never writes.
 */
#ifndef PSTM_INSPECT_H
#define PSTM_INSPECT_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc_check.h"
#include "pstm.h"
#include "taskq_inspect.h"
#include "util.h"

/* A process entry's state: attached and running, gone without detaching
 * (the next open or a blocked transaction recovers it), being recovered */
enum { INSPECT_ALIVE, INSPECT_DEAD, INSPECT_RECOVERING };

struct inspect_proc {
	uint32_t entry;            /* index in the process table */
	uint64_t pid;
	int state;                 /* INSPECT_* */
	unsigned slots;            /* transaction slots it holds */
	struct pstm_stats st;      /* its entry's totals plus its live slots' */
};

/* The runtime (process and slot tables, version clock): */
enum {
	INSPECT_RT_FOUND,          /* this region's, in use or idle */
	INSPECT_RT_MISSING,        /* none: the next open builds it */
	INSPECT_RT_STALE,          /* a segment of another boot or region:
				      the next open rebuilds it */
};

struct inspect_report {
	struct pstm_region_info info; /* is_pmem: the file is on DAX */
	uint64_t rt_off, rt_bytes, log_off;
	bool rt_inside;            /* the runtime is in the region (shm:) */
	int runtime;               /* INSPECT_RT_* */
	char rt_path[96];          /* the companion segment ("" if inside) */
	char wc_path[96];          /* relaxed: the working copy's path */
	bool wc_found;             /* ... and it is there */
	uint64_t clock;            /* the version clock (runtime found) */
	struct inspect_proc *procs;
	uint32_t nprocs;           /* entries in use */
	/* a walk of the heap, when its header is sound: a best effort while
	 * other processes allocate */
	bool heap_valid;
	struct alloc_report heap;
	/* the task queue, when the heap header is sound */
	struct taskq_inspect tasks;
};

/*
 * Read region @uri for pstm info: superblock, layout, runtime header,
 * process table with statistics, heap.  Works with read permission only
 * and on a full process table.  0, or the PSTM_E* code of why the region
 * could not be read (rep then holds nothing to free).
 */
HIDDEN int region_inspect(const char *uri, struct inspect_report *rep);
/* The same without the walk of the heap (heap_valid false): what pstm
 * top reads at every refresh. */
HIDDEN int region_inspect_procs(const char *uri, struct inspect_report *rep);
HIDDEN void inspect_report_free(struct inspect_report *rep);

/* One row of that table: process entry @p of @r, whose state word was
 * @ps (not FREE), with the statistics of its live slots added; @row must
 * be zeroed.  Also on an attached handle (pstmd's). */
struct pstm_region;
HIDDEN void inspect_proc_row(struct pstm_region *r, uint32_t p, uint64_t ps,
			     struct inspect_proc *row);

#endif /* PSTM_INSPECT_H */
