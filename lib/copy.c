/*
 * copy.c - pstm_copy: a consistent copy of an open region into a new
 * region file, taken while other threads and processes keep committing.
 * Lifecycle layer: it reads the source through read-only transactions and
 * its orec table, and builds the copy with region_create_file.
 *
 * The snapshot.  The heap, from its header to its top (everything ever
 * allocated; above it every byte is zero in both), is split into chunks of
 * 4 KiB (more for heaps above 4 GiB: at most 2^20 chunks).  Each chunk is
 * read in a read-only transaction of its own, straight into the copy's
 * mapping at the same offset, and remembers rv, the transaction's
 * snapshot version after its last load.  A word of that chunk whose orec
 * is later found unlocked with a version <= rv was not written in
 * between: a commit that locked it after our load reads the clock after
 * locking, and the clock had reached rv before our last load (a reader
 * raises it when it extends) and never goes back, so the commit releases
 * it with a version above rv; one that locked before our load was seen
 * locked (the load waits) or had written its data already.  A check that
 * reads every orec after all the chunks were copied and finds each clean
 * for every chunk it covers therefore proves the copy equal, word for
 * word, to the heap at the moment the check began: a state of the serial
 * order, since a commit half written back then held its orecs locked and
 * would have been found locked or newer.  Chunks it finds changed are
 * read again, and checked again: one pass.
 *
 * The check reads the orec table once (2^16 words by default), marks the
 * orecs that are locked or newer than the oldest chunk's rv, and visits
 * each chunk's orecs only through those marks, so a quiet heap costs one
 * sweep of the table per pass.
 *
 * Progress.  Under writers that keep changing some chunk between its copy
 * and the check, passes need not converge (and a read-only transaction
 * over the whole heap would abort forever, its read set growing without
 * bound).  After o->passes passes the copy takes the serial token, as an
 * escalating transaction does (stm_serial_hold): no update transaction of
 * another thread or process begins while it is held, read-only ones run
 * on.  Those running finish, and it copies the chunks that changed and
 * checks again until a check is clean.  If that takes more than
 * HOLD_MAX_NS, 8 ms (a process stopped with locks held, a long
 * transaction), it lets the writers go, waits, makes a pass, and holds
 * them again, each hold twice as long as the last, up to HOLD_CAP_NS
 * (1 s): so the copy ends even where copying the chunks writers dirty
 * between two holds takes longer than 8 ms (a slow machine, a
 * sanitizer).  Writers are held back 8 ms at a time when it goes well.
 * While it holds the token it beats rt->serial_beat at every chunk, so
 * waiters do not revoke the token from it (they do from a holder that
 * stopped: lib/driver.c).
 *
 * Not copied: the redo logs (the copy holds committed state only: its
 * logs start empty) and the runtime (a new one).  Overflow extents are
 * heap blocks and are copied; their owners are the source's slots, so in
 * the copy they are orphans, freed by its first large transaction (their
 * entries, written outside transactions, may be copied half-written:
 * nothing replays them).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "region.h"
#include "stm.h"
#include "superblock.h"
#include "uri.h"

#define CHUNK_MIN 4096u
#define MAX_CHUNKS (1u << 20)
#define DEFAULT_PASSES 4
/* below the 10 ms after which a waiter revokes the token (driver.c) */
#define HOLD_MAX_NS (8 * 1000000ull)
/* a held window grows to this at most (the holder beats rt->serial_beat
 * while it copies, so waiters do not revoke it meanwhile) */
#define HOLD_CAP_NS (1000 * 1000000ull)
#define TRIES_FREE 4        /* attempts per chunk while writers run */

struct copy {
	struct pstm_region *r;   /* the source */
	uint8_t *dst;            /* the copy's mapping: same offsets */
	uint64_t dst_size;
	uint64_t lo;             /* the heap header (heap_off) */
	uint64_t limit;          /* copy below this: the smaller size */
	uint64_t chunk;          /* bytes, a power of two */
	uint64_t nchunks;        /* chunks covering [lo, top) so far */
	uint64_t max_chunks;     /* covering [lo, limit) */
	uint64_t *rv;            /* per chunk: snapshot version of its copy */
	uint8_t *dirty;          /* per chunk: not copied, or changed since */
	uint64_t *marks;         /* orecs the check looks at (bitmap) */
	uint64_t deadline_ns;    /* 0: no timeout */
	uint32_t passes;         /* passes before holding writers back */
	bool compact;            /* cut the copy to the heap's top */
	struct pstm_copy_info *info;
};

static bool timed_out(const struct copy *c)
{
	return c->deadline_ns && mono_ns() >= c->deadline_ns;
}

/* ------------------------------------------------------------ chunks */

struct job {
	struct copy *c;
	uint64_t from, to;       /* region offsets */
	uint64_t rv;
};

/* The chunk's words into the copy (an attempt that rolls back is
 * overwritten by the next). */
static int read_chunk(pstm_tx *tx, void *arg)
{
	struct job *j = arg;
	uint64_t *d = (uint64_t *)(j->c->dst + j->from);
	for (uint64_t off = j->from; off < j->to; off += 8)
		*d++ = stm_load(tx, off, j->c->lo);
	j->rv = tx->rv; /* after the last load: the snapshot all of it is in */
	return 0;
}

/*
 * Copy chunk @i: 0; PSTM_ECONFLICT when @tries attempts (0: no limit)
 * conflicted or @until_ns (0: none) passed, the chunk staying dirty;
 * PSTM_EBUSY at the deadline; or the error.
 */
static int copy_chunk(struct copy *c, uint64_t i, unsigned tries,
		      uint64_t until_ns)
{
	struct job j = {c, c->lo + i * c->chunk, 0, 0};
	j.to = j.from + c->chunk < c->limit ? j.from + c->chunk : c->limit;
	for (unsigned n = 1;; n++) {
		pstm_tx *tx;
		int rc = pstm_tx_begin(c->r, PSTM_TX_READ_ONLY, &tx);
		if (rc)
			return rc;
		rc = pstm_tx_call(tx, read_chunk, &j);
		if (rc == 0)
			rc = pstm_tx_commit(tx);
		else
			pstm_tx_end(tx);
		if (rc == 0) {
			c->rv[i] = j.rv;
			c->dirty[i] = 0;
			c->info->chunks++;
			return 0;
		}
		if (rc != PSTM_ECONFLICT)
			return rc;
		if (timed_out(c))
			return PSTM_EBUSY;
		if ((tries && n >= tries) || (until_ns && mono_ns() >= until_ns))
			return PSTM_ECONFLICT;
	}
}

/*
 * Cover the heap up to the top named by the copied header (chunk 0,
 * copied): new chunks are dirty.  *added: how many.  PSTM_ECORRUPT for a
 * top outside the heap; PSTM_ETOOSMALL for one beyond the copy's size.
 */
static int cover(struct copy *c, uint64_t *added)
{
	uint64_t top = ((const struct heap_header *)(c->dst + c->lo))->top;
	*added = 0;
	if (top < c->lo + HEAP_HDR_BYTES || top > c->r->sb.size_bytes || (top & 15))
		return PSTM_ECORRUPT;
	if (top > c->dst_size)
		return PSTM_ETOOSMALL;
	uint64_t n = (top - c->lo + c->chunk - 1) / c->chunk;
	if (n > c->max_chunks)
		n = c->max_chunks;
	for (; c->nchunks < n; c->nchunks++, (*added)++)
		c->dirty[c->nchunks] = 1;
	return 0;
}

/* Copy every dirty chunk (the header first: it says how far to go).
 * Chunks that keep conflicting stay dirty.  0, or an error. */
static int copy_dirty(struct copy *c, unsigned tries, uint64_t until_ns)
{
	uint64_t added;
	for (uint64_t i = 0; i < c->nchunks; i++) {
		if (!c->dirty[i])
			continue;
		int rc = copy_chunk(c, i, tries, until_ns);
		if (until_ns) /* holding the token, and getting on */
			atomic_fetch_add_explicit(&c->r->rt->serial_beat, 1,
						  memory_order_relaxed);
		if (rc == PSTM_ECONFLICT)
			continue;
		if (rc == 0 && i == 0)
			rc = cover(c, &added);
		if (rc)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------- check */

/* Mark dirty the copied chunks that a commit may have changed since:
 * a word with its orec locked or newer than the chunk's rv.  Returns how
 * many chunks are dirty. */
static uint64_t check(struct copy *c)
{
	struct pstm_region *r = c->r;
	const uint64_t norecs = r->orec_mask + 1, mask = r->orec_mask;
	uint64_t tmin = UINT64_MAX, ndirty = 0;
	bool any = false;

	/* every orec load below after every chunk's loads (ThreadSanitizer
	 * takes no fences: its builds order the data loads themselves,
	 * lib/stm.h DATA_LOAD) */
#ifndef __SANITIZE_THREAD__
	atomic_thread_fence(memory_order_seq_cst);
#endif
	c->info->passes++;
	for (uint64_t i = 0; i < c->nchunks; i++)
		if (!c->dirty[i] && c->rv[i] < tmin)
			tmin = c->rv[i];
	memset(c->marks, 0, norecs / 8);
	for (uint64_t k = 0; k < norecs; k++) {
		uint64_t o = atomic_load_explicit(&r->orecs[k], memory_order_acquire);
		if (orec_is_locked(o) || orec_version(o) > tmin) {
			c->marks[k >> 6] |= 1ull << (k & 63);
			any = true;
		}
	}
	for (uint64_t i = 0; any && i < c->nchunks; i++) {
		if (c->dirty[i])
			continue;
		uint64_t from = c->lo + i * c->chunk;
		uint64_t to = from + c->chunk < c->limit ? from + c->chunk : c->limit;
		uint64_t words = (to - from) / 8, k0 = (from >> OREC_SHIFT) & mask;
		if (words > norecs)
			words = norecs;
		for (uint64_t n = 0; n < words; n++) {
			uint64_t k = (k0 + n) & mask;
			if (!(k & 63) && !c->marks[k >> 6] && n + 64 <= words) {
				n += 63; /* 64 unmarked orecs */
				continue;
			}
			if (!(c->marks[k >> 6] >> (k & 63) & 1))
				continue;
			uint64_t o = atomic_load_explicit(&r->orecs[k],
							  memory_order_acquire);
			if (orec_is_locked(o) || orec_version(o) > c->rv[i]) {
				c->dirty[i] = 1;
				break;
			}
		}
	}
	for (uint64_t i = 0; i < c->nchunks; i++)
		ndirty += c->dirty[i];
	return ndirty;
}

/* A clean check, and the copied top within what is covered: done. */
static int finished(struct copy *c, bool *done)
{
	uint64_t added = 0;
	*done = false;
	if (check(c) != 0)
		return 0;
	int rc = cover(c, &added);
	*done = rc == 0 && added == 0;
	return rc;
}

/* Writers held back: copy and check until clean, or the window: 8 ms,
 * doubling with each @round that did not finish, up to HOLD_CAP_NS (the
 * chunks the writers dirty between two holds must fit one window: on a
 * slow machine, or under a sanitizer, 8 ms may never do). */
static int held_passes(struct copy *c, unsigned round, bool *done)
{
	int rc = stm_serial_hold(c->r);
	if (rc)
		return rc;
	uint64_t win = HOLD_MAX_NS << (round < 7 ? round : 7);
	if (win > HOLD_CAP_NS)
		win = HOLD_CAP_NS;
	uint64_t t0 = mono_ns(), until = t0 + win;
	c->info->holds++;
	do {
		rc = copy_dirty(c, 0, until);
		if (rc == 0)
			rc = finished(c, done);
	} while (rc == 0 && !*done && mono_ns() < until && !timed_out(c));
	stm_serial_release(c->r);
	c->info->hold_ns += mono_ns() - t0;
	return rc;
}

static int snapshot(struct copy *c)
{
	bool done = false;
	int rc = 0;
	for (uint32_t p = 0; p < c->passes && !done; p++) {
		if (timed_out(c))
			return PSTM_EBUSY;
		rc = copy_dirty(c, TRIES_FREE, 0);
		if (rc == 0)
			rc = finished(c, &done);
		if (rc)
			return rc;
	}
	for (unsigned round = 0; !done; round++) {
		if (timed_out(c))
			return PSTM_EBUSY;
		if (round) {
			/* let them run: what held the check up may finish */
			unsigned ms = round < 7 ? 1u << round : 100;
			struct timespec ts = {0, (long)ms * 1000000};
			nanosleep(&ts, NULL);
			if ((rc = copy_dirty(c, TRIES_FREE, 0)) != 0)
				return rc;
		}
		if ((rc = held_passes(c, round, &done)) != 0)
			return rc;
	}
	return 0;
}

/* Does a copy of @size_bytes keep the heap where @r has it?  A file
 * region's heap offset does not depend on its size; a shm region's runtime
 * lies before its heap and grows with the size (its conflict tables). */
static bool keeps_heap(const struct pstm_region *r, uint64_t size_bytes)
{
	struct superblock sb = r->sb;
	return superblock_reshape(&sb, r->sb.version, size_bytes) == 0 &&
	       sb.heap_off == r->sb.heap_off;
}

/* The least size, in pages, that holds a heap up to @top and keeps the
 * heap where @r has it (at most @r's own size, which does). */
static uint64_t compact_size(const struct pstm_region *r, uint64_t top)
{
	uint64_t lo = align_up(top, PAGE), hi = r->sb.size_bytes;
	uint64_t least = align_up(r->sb.heap_off + HEAP_HDR_BYTES + 64 * 1024, PAGE);
	if (lo < least)
		lo = least;
	if (lo < SB_MIN_SIZE)
		lo = SB_MIN_SIZE;
	if (lo >= hi)
		return hi;
	/* the heap offset only grows with the size: the first that keeps it */
	while (lo < hi) {
		uint64_t mid = align_up(lo + (hi - lo) / 2, PAGE);
		if (mid >= hi)
			mid = hi - PAGE;
		if (mid < lo)
			mid = lo;
		if (keeps_heap(r, mid))
			hi = mid;
		else
			lo = mid + PAGE;
	}
	return hi;
}

/* region_create_file's fill: the snapshot into the new file's mapping;
 * compact, the file cut to the snapshot's top. */
static int copy_fill(uint8_t *base, const struct superblock *sb, void *arg,
		     uint64_t *size)
{
	struct copy *c = arg;
	struct pstm_region *r = c->r;
	int rc = PSTM_ENOMEM;

	if (sb->heap_off != r->sb.heap_off || sb->rt_inside != r->sb.rt_inside)
		return PSTM_EINVAL; /* the layout is not the source's */
	c->dst = base;
	c->dst_size = sb->size_bytes;
	c->lo = sb->heap_off;
	c->limit = sb->size_bytes < r->sb.size_bytes ? sb->size_bytes
						      : r->sb.size_bytes;
	c->chunk = CHUNK_MIN;
	while ((c->limit - c->lo) / c->chunk >= MAX_CHUNKS)
		c->chunk <<= 1;
	c->max_chunks = (c->limit - c->lo + c->chunk - 1) / c->chunk;
	c->nchunks = 1;
	c->rv = calloc(c->max_chunks, sizeof(*c->rv));
	c->dirty = calloc(c->max_chunks, 1);
	c->marks = calloc((r->orec_mask + 1) / 64, sizeof(*c->marks));
	if (c->rv && c->dirty && c->marks) {
		c->dirty[0] = 1;
		c->info->chunk_bytes = c->chunk;
		rc = snapshot(c);
		uint64_t top = ((const struct heap_header *)(base + c->lo))->top;
		c->info->heap_bytes = top - c->lo;
		if (rc == 0 && c->compact)
			*size = compact_size(r, top);
	}
	free(c->rv);
	free(c->dirty);
	free(c->marks);
	return rc;
}

/* --------------------------------------------------------- pstm_copy */

_Static_assert(COPY_OPTS_V0 == sizeof(struct pstm_copy_opts), "copy opts v0");
_Static_assert(COPY_INFO_V0 == sizeof(struct pstm_copy_info), "copy info v0");

int pstm_copy_sz(pstm_region *r, const char *dst, const struct pstm_copy_opts *o,
		 size_t o_size, struct pstm_copy_info *out, size_t out_size)
{
	struct pstm_copy_opts d = {0};
	struct pstm_copy_info info = {0};
	struct superblock sb;
	char path[PATH_MAX];
	struct stat st;
	bool is_shm;

	if (o && !sized_in(&d, sizeof(d), o, o_size, COPY_OPTS_V0))
		return PSTM_EINVAL;
	/* the caller's info size is checked before anything is copied */
	if (out && (out_size < COPY_INFO_V0 || out_size > SIZED_MAX))
		return PSTM_EINVAL;
	if (!r || !dst || (d.flags & ~(unsigned)PSTM_COPY_COMPACT) || r->rt_readonly ||
	    r->owner_pid != getpid())
		return PSTM_EINVAL;
	if (tx_running())
		return PSTM_EINTX;
	int rc = uri_parse(dst, path, sizeof(path), &is_shm);
	if (rc)
		return rc;
	if (is_shm != r->is_shm)
		return PSTM_EINVAL; /* the heap would start elsewhere */
	if (lstat(path, &st) == 0)
		return PSTM_EEXIST;
	if (fstat(r->fd, &st) != 0)
		return PSTM_EIO;
	struct pstm_create_opts co = {
		.mode = d.mode ? d.mode : st.st_mode & 0777,
		.durability = d.durability ? d.durability : (int)r->sb.durability,
		.max_procs = r->sb.max_procs,
		.max_threads = r->sb.max_slots,
		.log_bytes = r->sb.log_bytes,
		.orecs_log2 = r->sb.orecs_log2,
	};
	if (co.durability == PSTM_RELAXED)
		co.flush_ms = d.flush_ms ? d.flush_ms : r->sb.flush_ms;
	else if (d.flush_ms)
		return PSTM_EINVAL;

	/* too small for the heap now: refused before anything is made (the
	 * copy checks again against the top of its snapshot) */
	uint64_t top = __atomic_load_n(region_word(r, r->sb.heap_off +
						      offsetof(struct heap_header, top)),
				       __ATOMIC_RELAXED);
	if (top < r->heap_lo || top > r->sb.size_bytes)
		return PSTM_ECORRUPT;
	if (d.size_bytes && d.size_bytes < compact_size(r, top))
		return PSTM_ETOOSMALL;
	if (d.size_bytes && !keeps_heap(r, align_up(d.size_bytes, PAGE)))
		return PSTM_EINVAL; /* a shm copy of that size: the heap moves */
	/* compact: made at the source's size, then cut to the snapshot's
	 * top, which may be above today's */
	co.size_bytes = d.size_bytes ? d.size_bytes : r->sb.size_bytes;
	struct copy c = {
		.r = r,
		.passes = d.passes ? d.passes : DEFAULT_PASSES,
		.deadline_ns = d.timeout_ms ? mono_ns() + d.timeout_ms * 1000000ull : 0,
		.compact = !d.size_bytes && (d.flags & PSTM_COPY_COMPACT),
		.info = &info,
	};
	/* the source's format too: the layout is the format's */
	rc = region_create_file(dst, &co, r->sb.version, copy_fill, &c, &sb);
	if (rc)
		return rc;
	info.size_bytes = sb.size_bytes;
	memcpy(info.uuid, sb.uuid, sizeof(info.uuid));
	if (out)
		(void)sized_out(out, out_size, &info, sizeof(info), COPY_INFO_V0);
	return 0;
}

/* the symbol of binaries built before pstm_copy_sz: v0 structs */
int(pstm_copy)(pstm_region *r, const char *dst, const struct pstm_copy_opts *o,
	       struct pstm_copy_info *out)
{
	return pstm_copy_sz(r, dst, o, COPY_OPTS_V0, out, COPY_INFO_V0);
}
