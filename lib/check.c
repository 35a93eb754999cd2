/*
 * check.c - offline verification of a region (pstm check).  Read-only:
 * the file is opened O_RDONLY and mapped PROT_READ, so checking can never
 * damage anything.  Every field read from the region is treated as hostile
 * input.  Findings are damage (exit 1 from the CLI), pending recovery (a
 * dead process or a committed log that the next open will settle), or
 * information.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc_check.h"
#include "check.h"
#include "companion.h"
#include "error.h"
#include "mapping.h"
#include "proc.h"
#include "redo_log.h"
#include "runtime.h"
#include "superblock.h"
#include "uri.h"

static void add(struct check_report *rep, int sev, const char *fmt, ...)
{
	if (sev == CHECK_DAMAGE)
		rep->damage++;
	else if (sev == CHECK_PENDING)
		rep->pending++;
	if (rep->n == rep->cap) {
		unsigned nc = rep->cap ? rep->cap * 2 : 16;
		struct check_finding *nf = realloc(rep->f, nc * sizeof(*nf));
		if (!nf)
			return; /* counted, not described */
		rep->f = nf;
		rep->cap = nc;
	}
	struct check_finding *f = &rep->f[rep->n++];
	f->severity = sev;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->text, sizeof(f->text), fmt, ap);
	va_end(ap);
}

void check_report_free(struct check_report *rep)
{
	free(rep->f);
	memset(rep, 0, sizeof(*rep));
}

static void check_logs(struct pstm_region *r, struct check_report *rep)
{
	struct durable_state *ds = region_dstate(r);
	if (ds->magic != DURABLE_MAGIC) {
		add(rep, CHECK_DAMAGE, "durable state magic invalid");
		return;
	}
	uint64_t horizon = atomic_load(&ds->horizon), above = 0;
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		/* records a power failure would replay: count and verify them */
		for (uint64_t off = 0; r->durable &&
		     off + sizeof(struct log_record) <= r->ring_bytes;) {
			struct log_record *rec = region_record(r, s, off);
			if (!redo_log_record_valid(r, r->base, rec, off))
				break;
			if (rec->seq >= horizon)
				above++;
			off += record_ring_bytes(rec);
		}
		struct log_header *h = region_log(r, s);
		uint64_t st = LOG_ST(atomic_load_explicit(&h->state, memory_order_acquire));
		if (st == LOG_IDLE)
			continue;
		if (st > LOG_ROLLBACK) {
			add(rep, CHECK_DAMAGE, "log %u: invalid state %llu", s,
			    (unsigned long long)st);
			continue;
		}
		struct log_entry *e = NULL;
		if (!(h->rec_off & (CACHELINE - 1)) &&
		    h->rec_off + sizeof(struct log_record) <= r->ring_bytes) {
			struct log_record *rec = region_record(r, s, h->rec_off);
			if (rec->count == h->count)
				e = record_entries_at(r, r->base, rec, h->rec_off);
		}
		if (!e) {
			add(rep, CHECK_DAMAGE, "log %u: record %llu+%llu entries does "
			    "not fit its ring (or its extent)", s,
			    (unsigned long long)h->rec_off,
			    (unsigned long long)h->count);
			continue;
		}
		uint64_t bad = 0;
		for (uint64_t i = 0; i < h->count; i++)
			if ((e[i].off & 7) || e[i].off < r->sb.heap_off ||
			    e[i].off > r->heap_hi - 8)
				bad++;
		if (bad)
			add(rep, CHECK_DAMAGE, "log %u: %llu entries outside the heap",
			    s, (unsigned long long)bad);
		if (st == LOG_COMMITTED) {
			rep->logs_committed++;
			add(rep, CHECK_PENDING,
			    "log %u: committed transaction (version %llu, %llu "
			    "words) not yet fully applied: recovery replays it",
			    s, (unsigned long long)h->wv, (unsigned long long)h->count);
		} else {
			add(rep, CHECK_PENDING,
			    "log %u: commit in progress (%s): recovery settles it", s,
			    st == LOG_LOCKING	? "locking"
			    : st == LOG_SEALING ? "sealing"
			    : st == LOG_ABORTED ? "aborted by a waiter"
			    : st == LOG_ROLLBACK ? "rolling back"
						: "releasing");
		}
	}
	if (r->durable && !r->relaxed)
		add(rep, CHECK_INFO, "durable horizon %llu; %llu redo records above "
		    "it (replayed if the runtime is lost)",
		    (unsigned long long)horizon, (unsigned long long)above);
}

/* Relaxed regions: the file's own durable state and the records a power
 * failure would replay from it ([horizon, flushed), all intact). */
static void check_relaxed_file(struct pstm_region *r, struct check_report *rep)
{
	uint8_t *file = r->fbase ? r->fbase : r->base;
	struct durable_state *ds = (struct durable_state *)(file + DURABLE_STATE_OFF);
	if (ds->magic != DURABLE_MAGIC) {
		add(rep, CHECK_DAMAGE, "file: durable state magic invalid");
		return;
	}
	uint64_t h = atomic_load(&ds->horizon), fl = atomic_load(&ds->flushed);
	if (fl < h) {
		add(rep, CHECK_DAMAGE, "file: flushed mark %llu below its horizon %llu",
		    (unsigned long long)fl, (unsigned long long)h);
		return;
	}
	uint64_t found = 0;
	for (uint32_t s = 0; s < r->sb.max_slots; s++)
		for (uint64_t off = 0; off + sizeof(struct log_record) <= r->ring_bytes;) {
			struct log_record *rec = (struct log_record *)(
				(uint8_t *)region_record(r, s, off) - r->base + file);
			if (!redo_log_record_valid(r, file, rec, off))
				break;
			if (rec->seq >= h && rec->seq < fl)
				found++;
			off += record_ring_bytes(rec);
		}
	add(rep, CHECK_INFO, "relaxed, flush every %u ms: file horizon %llu, "
	    "flushed up to %llu (%llu records replayed after a power failure)",
	    r->sb.flush_ms, (unsigned long long)h, (unsigned long long)fl,
	    (unsigned long long)found);
	if (r->fbase && r->rt_base)
		add(rep, CHECK_INFO, "working copy %s: %llu newer commits not yet "
		    "in the file", r->wc_path,
		    (unsigned long long)(atomic_load(&r->rt->dseq) > fl
					 ? atomic_load(&r->rt->dseq) - fl : 0));
}

/* A token naming a slot (slot + 1, 0 if free) must name an owned one. */
static void check_token(struct pstm_region *r, struct check_report *rep,
			uint64_t tok, const char *what)
{
	if (tok && (tok > r->sb.max_slots ||
		    SLOT_ST(atomic_load(&r->slots[tok - 1].state)) != SLOT_ACTIVE))
		add(rep, CHECK_DAMAGE, "%s held by free slot %llu", what,
		    (unsigned long long)(tok - 1));
}

static void check_runtime(struct pstm_region *r, struct check_report *rep)
{
	if (r->rt_foreign) {
		add(rep, CHECK_INFO, "the runtime was copied with the region from "
		    "another file: the next open resets it");
		return;
	}
	if (!r->rt_base) {
		add(rep, CHECK_INFO, "no runtime segment (%s): the next open "
		    "rebuilds it and replays committed logs", r->rt_path);
		return;
	}
	if (!check_runtime_valid(r)) {
		if (r->sb.rt_inside)
			add(rep, CHECK_DAMAGE, "runtime header invalid (magic/uuid)");
		else
			add(rep, CHECK_INFO, "runtime segment stale or foreign: "
			    "the next open rebuilds it");
		return;
	}
	unsigned live0 = rep->procs_attached - rep->procs_dead;
	for (uint32_t p = 0; p < r->sb.max_procs; p++) {
		uint64_t ps = atomic_load(&r->procs[p].state);
		if (PROC_ST(ps) == PROC_FREE)
			continue;
		if (PROC_ST(ps) > PROC_RECOVERING) {
			add(rep, CHECK_DAMAGE, "process entry %u: invalid state", p);
			continue;
		}
		rep->procs_attached++;
		bool zombie;
		uint64_t pid = atomic_load(&r->procs[p].pid);
		uint64_t st = proc_start_ticks((pid_t)pid, &zombie);
		if (PROC_ST(ps) == PROC_RECOVERING ||
		    st != atomic_load(&r->procs[p].start_ticks) || zombie) {
			rep->procs_dead++;
			add(rep, CHECK_PENDING, "process entry %u (pid %llu) is dead%s: "
			    "recovery settles its slots", p, (unsigned long long)pid,
			    PROC_ST(ps) == PROC_RECOVERING ? " (recovery interrupted)" : "");
		} else {
			add(rep, CHECK_INFO, "process entry %u: pid %llu attached", p,
			    (unsigned long long)pid);
		}
	}
	/* an older copy of the file written over it (runtime.c); findings
	 * hold 160 characters */
	if (runtime_file_replaced(r)) {
		if (rep->procs_attached - rep->procs_dead > live0)
			add(rep, CHECK_PENDING, "file overwritten in place by an older "
			    "copy while processes were attached: opens fail until they "
			    "are gone, then the runtime is rebuilt");
		else
			add(rep, CHECK_PENDING, "file overwritten in place by an older "
			    "copy since its runtime was built: the next open rebuilds "
			    "the runtime from the file");
	}
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		uint64_t st = atomic_load(&r->slots[s].state);
		if (SLOT_ST(st) == SLOT_FREE)
			continue;
		if (SLOT_ST(st) != SLOT_ACTIVE || SLOT_PROC(st) >= r->sb.max_procs) {
			add(rep, CHECK_DAMAGE, "slot %u: invalid state", s);
			continue;
		}
		uint64_t ps = atomic_load(&r->procs[SLOT_PROC(st)].state);
		if (PROC_ST(ps) == PROC_FREE)
			add(rep, CHECK_DAMAGE, "slot %u: owned by free process entry "
			    "%llu", s, (unsigned long long)SLOT_PROC(st));
	}
	uint64_t orphan = 0;
	for (uint64_t i = 0; i <= r->orec_mask; i++) {
		uint64_t o = atomic_load(&r->orecs[i]);
		if (!orec_is_locked(o))
			continue;
		rep->orecs_locked++;
		uint32_t s = orec_owner(o);
		if (s >= r->sb.max_slots ||
		    SLOT_ST(atomic_load(&r->slots[s].state)) != SLOT_ACTIVE)
			orphan++;
	}
	if (orphan)
		add(rep, CHECK_DAMAGE, "%llu orecs locked by slots nobody owns",
		    (unsigned long long)orphan);
	check_token(r, rep, atomic_load(&r->rt->serial), "escalation token");
	check_token(r, rep, atomic_load(&r->rt->inevitable), "inevitable role");
}

bool check_runtime_valid(const struct pstm_region *r)
{
	return r->rt_base && atomic_load(&r->rt->magic) == PSTM_RT_MAGIC &&
	       memcmp(r->rt->uuid, r->sb.uuid, 16) == 0;
}

/* The heap header's problems, each a finding when @rep is not NULL. */
static unsigned heap_header_problems(const struct pstm_region *r,
				     struct check_report *rep)
{
	const struct heap_header *hh =
		(const struct heap_header *)(r->base + r->sb.heap_off);
	unsigned n = 0;
	if (hh->magic != PSTM_HEAP_MAGIC) {
		if (rep)
			add(rep, CHECK_DAMAGE, "heap header magic invalid");
		return 1;
	}
	if (hh->top < r->heap_lo || hh->top > r->heap_hi) {
		n++;
		if (rep)
			add(rep, CHECK_DAMAGE, "heap top %llu outside [%llu, %llu]",
			    (unsigned long long)hh->top,
			    (unsigned long long)r->heap_lo,
			    (unsigned long long)r->heap_hi);
	}
	if (hh->root_off && (hh->root_off < r->heap_lo || hh->root_off >= r->heap_hi ||
			     hh->root_bytes > r->heap_hi - hh->root_off)) {
		n++;
		if (rep)
			add(rep, CHECK_DAMAGE, "root object %llu+%llu outside the heap",
			    (unsigned long long)hh->root_off,
			    (unsigned long long)hh->root_bytes);
	}
	return n;
}

bool check_heap_header_valid(const struct pstm_region *r)
{
	return heap_header_problems(r, NULL) == 0;
}

/*
 * The overflow extents of large transactions (lib/extent.c): a list from
 * the heap header, each a block owned by a slot.  One whose slot no
 * longer has the owner's state is an orphan (its thread exited without
 * giving it back, or its process died): reserved, not leaked, and freed
 * by the next large commit of any thread.
 */
static void check_extents(struct pstm_region *r, struct check_report *rep)
{
	uint64_t x = *(const uint64_t *)(r->base + r->sb.heap_off +
					 offsetof(struct heap_header, ovf_head));
	uint64_t n = 0, orphans = 0, bytes = 0;
	while (x) {
		const struct ovf_header *o = (const struct ovf_header *)(r->base + x);
		if (x < r->heap_lo || x > r->heap_hi - OVF_HDR_BYTES || (x & 15) ||
		    o->magic != OVF_MAGIC || ++n > 4ull * r->sb.max_slots ||
		    o->cap > (r->heap_hi - x - OVF_HDR_BYTES) / sizeof(struct log_entry)) {
			add(rep, CHECK_DAMAGE, "overflow extent list: entry %llu at "
			    "heap+0x%llx is not an extent (or the list loops)",
			    (unsigned long long)n,
			    (unsigned long long)(x - r->sb.heap_off));
			return;
		}
		bytes += OVF_HDR_BYTES + o->cap * sizeof(struct log_entry);
		/* no runtime (or another file's): every slot will be new */
		if (!r->rt_base || r->rt_foreign || o->slot >= r->sb.max_slots ||
		    atomic_load(&r->slots[o->slot].state) != o->owner)
			orphans++;
		x = o->next;
	}
	if (n)
		add(rep, CHECK_INFO, "overflow extents: %llu (%llu bytes), %llu of "
		    "them orphaned (freed by the next large transaction)",
		    (unsigned long long)n, (unsigned long long)bytes,
		    (unsigned long long)orphans);
}

static void check_heap(struct pstm_region *r, struct check_report *rep)
{
	if (heap_header_problems(r, rep) || rep->damage)
		return; /* the walk below trusts the header */
	struct alloc_report *ar = calloc(1, sizeof(*ar));
	if (!ar)
		return;
	if (alloc_check(r, ar) != 0)
		add(rep, CHECK_DAMAGE, "heap: %llu problem(s): %s",
		    (unsigned long long)ar->problems, ar->first);
	else
		add(rep, CHECK_INFO, "heap: %llu blocks in use (%llu bytes), %llu "
		    "free (%llu bytes)", (unsigned long long)ar->used_blocks,
		    (unsigned long long)ar->used_bytes,
		    (unsigned long long)ar->free_blocks,
		    (unsigned long long)ar->free_bytes);
	free(ar);
	check_extents(r, rep);
}


/* ------------------------------------------------ read-only mapping */

/*
 * Map a region read-only for inspection (pstm check, pstm info): validated
 * superblock, PROT_READ mapping, runtime pointers if a runtime of this
 * file exists (r->rt_base NULL otherwise; r->rt_foreign if the one found
 * was built for another file, the original of this copy).  Never
 * writes, never attaches.
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
	if (file_identity(r->fd, &r->file) != 0) {
		rc = PSTM_EIO;
		goto fail;
	}
	if (r->sb.rt_inside) {
		r->rt_base = r->base + r->sb.rt_off;
		runtime_set_pointers(r);
	} else {
		companion_path(r->sb.uuid, &r->file, COMPANION_RUNTIME, r->rt_path,
			       sizeof(r->rt_path));
		r->rt_base = companion_map_ro(r->rt_path,
					      r->sb.rt_bytes + COMPANION_TAIL_BYTES,
					      r->sb.rt_bytes);
		if (r->rt_base) {
			r->rt_map_len = r->sb.rt_bytes;
			runtime_set_pointers(r);
		}
	}
	if (r->rt_base && !runtime_is_this_files(r)) {
		/* a shm region's copy carries its original's runtime: none
		 * of that is this region's (the next open resets it) */
		if (r->rt_map_len)
			munmap(r->rt_base, r->rt_map_len);
		r->rt_base = NULL;
		r->rt_map_len = 0;
		r->rt = NULL;
		r->rt_foreign = true;
	}
	if (r->relaxed) {
		/* the live state is the working copy, when there is one */
		companion_path(r->sb.uuid, &r->file, COMPANION_WORKCOPY, r->wc_path,
			       sizeof(r->wc_path));
		uint8_t *wc = r->rt_base ? companion_map_ro(r->wc_path, r->sb.size_bytes,
							    r->sb.size_bytes)
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

int region_check(const char *uri, struct check_report *rep)
{
	struct pstm_region r;
	memset(rep, 0, sizeof(*rep));
	int rc = region_map_readonly(uri, &r);
	if (rc) {
		rep->open_error = rc;
		return rc;
	}
	add(rep, CHECK_INFO, "superblock valid: format %u, %llu bytes, %s",
	    r.sb.version, (unsigned long long)r.sb.size_bytes,
	    r.relaxed ? "relaxed" : r.durable ? "durable" : "volatile");
	check_logs(&r, rep);
	if (r.relaxed)
		check_relaxed_file(&r, rep);
	check_runtime(&r, rep);
	check_heap(&r, rep);
	region_unmap_readonly(&r);
	return 0;
}
