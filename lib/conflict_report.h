/*
 * conflict_report.h - pstm conflicts' view of a region (lib/conflict_report.c):
 * every slot's conflict table, read through a read-only mapping (never
 * attaches, never recovers, never writes), merged across the slots of
 * each process and sorted by the time lost.
 */
#ifndef PSTM_CONFLICT_REPORT_H
#define PSTM_CONFLICT_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"
#include "util.h"

/* the runtime: as pstm info says it (INSPECT_RT_*) */
enum { CONFLICTS_RT_FOUND, CONFLICTS_RT_MISSING, CONFLICTS_RT_STALE };

/* where a name comes from: CNAME_* as recorded, or how it was resolved */
enum { SIDE_UNKNOWN, SIDE_GIVEN, SIDE_SYMBOL, SIDE_SYMTAB, SIDE_ADDRESS,
       SIDE_UNNAMED };

struct conflict_side {
	uint64_t pid;              /* 0: unknown */
	int source;                /* SIDE_* */
	char name[160];            /* what to show: "transfer", "fn+0x10" */
	char module[CONFLICT_TEXT];/* SIDE_SYMTAB/ADDRESS: the file */
	uint64_t addr;             /* SIDE_SYMTAB/ADDRESS: offset in it */
};

struct conflict_place {
	uint64_t off;              /* region offset of the word; 0: unknown */
	bool inferred;             /* off: not recorded, but the one word of
				      the orec in the heap used so far */
	uint64_t orec;             /* its orec index */
	uint64_t hits;             /* aborts counted here (space-saving:
				      at most this many) */
};

struct conflict_row {
	int cause;                 /* CONFLICT_* */
	uint64_t aborts, lost_ns;
	uint64_t last_ns;          /* CLOCK_MONOTONIC of the latest abort */
	struct conflict_side mine, other;
	uint32_t other_slot;       /* slot + 1 of the opponent, latest; 0: ? */
	unsigned entries;          /* slot table entries merged in */
	struct conflict_place place[CONFLICT_SPOTS]; /* hottest first */
	unsigned nplaces;
};

struct conflict_report {
	uint32_t format;           /* the region's format version */
	bool has_tables;           /* format 2 and later */
	int runtime;               /* CONFLICTS_RT_* */
	uint64_t heap_off, heap_lo;/* allocator metadata, user heap start */
	uint64_t now_ns;           /* CLOCK_MONOTONIC when read */
	struct conflict_row *rows; /* most time lost first */
	uint32_t nrows;
	uint32_t torn;             /* entries being written (or whose writer
				      died writing them): left out */
};

/*
 * Read the conflict tables of region @uri.  Works with read permission
 * only, while processes run and after they exit, until the runtime is
 * rebuilt.  0, or the PSTM_E* code of why the region could not be read
 * (rep then holds nothing to free).  A region without tables (format 1)
 * or without a runtime is no error: has_tables / runtime say so.
 */
HIDDEN int region_conflicts(const char *uri, struct conflict_report *rep);
HIDDEN void conflict_report_free(struct conflict_report *rep);

/* "lock held", ...; "lock_held", ... */
HIDDEN const char *conflict_cause_text(int cause);
HIDDEN const char *conflict_cause_key(int cause);

#endif /* PSTM_CONFLICT_REPORT_H */
