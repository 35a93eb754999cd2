/*
 * check.h - offline, read-only verification of a region (pstm check), and
 * the read-only mapping that pstm check and pstm info look through.
 */
#ifndef PSTM_CHECK_H
#define PSTM_CHECK_H

#include "region.h"

enum { CHECK_INFO = 0, CHECK_PENDING = 1, CHECK_DAMAGE = 2 };

struct check_finding {
	int severity;      /* CHECK_* */
	char text[160];
};

struct check_report {
	struct check_finding *f;
	unsigned n, cap;
	unsigned damage, pending;
	/* what was looked at */
	unsigned logs_committed, procs_attached, procs_dead, orecs_locked;
	int open_error;    /* superblock could not be validated: PSTM_E* */
};

/*
 * Check the region at @uri without modifying anything (the file is opened
 * read-only and mapped PROT_READ): superblock, redo logs (states, counts,
 * entry offsets, crcs of committed logs), runtime (process and slot
 * tables, orecs locked by slots nobody owns, the escalation token), heap
 * header.  Returns 0 if it could look (see rep->damage), or a PSTM_E*
 * code if the region could not be opened at all.
 */
HIDDEN int region_check(const char *uri, struct check_report *rep);
HIDDEN void check_report_free(struct check_report *rep);

/* Map a region read-only for inspection (pstm check, pstm info): validated
 * superblock, PROT_READ mapping, runtime pointers if a runtime of this
 * file exists (r->rt_base NULL otherwise; r->rt_foreign when the runtime
 * found was copied from another file with a shm region), a relaxed
 * region's working copy as base when there is one.  Never writes, never
 * attaches. */
HIDDEN int region_map_readonly(const char *uri, struct pstm_region *r);
HIDDEN void region_unmap_readonly(struct pstm_region *r);

/* On such a mapping: is there a runtime, and is it this region's (magic,
 * uuid)?  False when none was found, or a stale or foreign one. */
HIDDEN bool check_runtime_valid(const struct pstm_region *r);
/* Is the heap header sound enough to walk the heap (alloc_check): magic,
 * top and root object inside the heap? */
HIDDEN bool check_heap_header_valid(const struct pstm_region *r);

#endif /* PSTM_CHECK_H */
