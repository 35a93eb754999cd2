/*
 * runtime.c - the runtime part of a region: header, process table, slot
 * table and orecs, never persisted.  Inside shm regions at rt_off; for
 * file regions in the companion /dev/shm/pstm.rt.<uuid>.<file identity>
 * (lib/companion.c), so that lock and clock traffic never costs
 * persistence.  A runtime from another boot
 * (/proc/sys/kernel/random/boot_id) is stale: that is the "after power
 * failure or reboot" case, and the opener rebuilds it (lib/region.c).  So
 * is one built for another file (rt_header.file): a copy of the region.
 *
 * Byte 1 of a region file carries an OFD lock: every attached process
 * holds a read lock on it for as long as it is attached (the kernel drops
 * it when the process dies), so an opener that must build a new runtime
 * first takes a write lock there.  If it cannot, processes are attached
 * to a runtime segment that has gone missing (someone removed it from
 * /dev/shm): building a second one would let two groups of processes run
 * without seeing each other's locks, so the open fails instead.  Shm
 * regions carry the same lock: the first opener of a copy resets the
 * runtime it carries under the write lock, and pstm_unlink asks the lock
 * whether anyone is attached (lib/region.c).
 *
 * A file overwritten in place (cp of an older copy over it: same inode,
 * same companions) is told by its stamp: a random word in page 0 of the
 * file that every open and close of the region rewrites, and mirrors in
 * rt_header.file_stamp, under the flock.  An older copy has an older
 * stamp (or, relaxed, a flushed mark below the runtime's, which the
 * flusher raises in the file first).  The file's mtime or ctime would not
 * do: every commit moves them (stores through the mapping, the flusher's
 * writes), so no value recorded at open still holds at the next.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "companion.h"
#include "crash.h"
#include "error.h"
#include "runtime.h"

static void read_boot_id(char out[40])
{
	memset(out, 0, 40);
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	if (!f)
		return;
	if (!fgets(out, 40, f))
		memset(out, 0, 40);
	fclose(f);
	out[strcspn(out, "\n")] = 0;
}

void runtime_set_pointers(struct pstm_region *r)
{
	uint8_t *p = r->rt_base;
	r->rt = (struct rt_header *)p;
	p += sizeof(struct rt_header);
	r->procs = (struct proc_entry *)p;
	p += (size_t)r->sb.max_procs * sizeof(struct proc_entry);
	r->slots = (struct slot *)p;
	p += (size_t)r->sb.max_slots * sizeof(struct slot);
	p = (uint8_t *)align_up((uintptr_t)p, CACHELINE);
	r->orecs = (_Atomic uint64_t *)p;
	r->orec_mask = (1ull << r->sb.orecs_log2) - 1;
	p += (size_t)8 << r->sb.orecs_log2;
	/* format 2: the conflict tables follow (rt_bytes_for) */
	r->conflicts = r->sb.version >= PSTM_FORMAT_CONFLICTS ? p : NULL;
	r->conflict_entries = conflict_entries_for(r->sb.size_bytes, r->sb.max_slots);
}

void runtime_init(struct pstm_region *r)
{
	struct rt_header *h = r->rt;
	memcpy(h->uuid, r->sb.uuid, 16);
	h->file = r->file;
	read_boot_id(h->boot_id);
	atomic_store_explicit(&h->clock, 0, memory_order_relaxed);
	atomic_store_explicit(&h->serial, 0, memory_order_relaxed);
	/* sequence numbers continue above everything already durable */
	atomic_store_explicit(&h->dseq, r->base ? atomic_load(&region_dstate(r)->horizon) : 1,
			      memory_order_relaxed);
	atomic_store_explicit(&h->flushed, atomic_load(&h->dseq),
			      memory_order_relaxed);
	atomic_store_explicit(&h->magic, PSTM_RT_MAGIC, memory_order_release);
}

bool runtime_is_valid(struct pstm_region *r, bool check_boot)
{
	char boot[40];
	if (atomic_load_explicit(&r->rt->magic, memory_order_acquire) !=
	    PSTM_RT_MAGIC)
		return false;
	if (memcmp(r->rt->uuid, r->sb.uuid, 16) != 0)
		return false;
	if (!runtime_is_this_files(r))
		return false;
	if (check_boot) {
		read_boot_id(boot);
		if (strncmp(boot, r->rt->boot_id, 40) != 0)
			return false;
	}
	return true;
}

bool runtime_is_this_files(struct pstm_region *r)
{
	static const struct file_id none;
	/* a runtime built before identities were recorded (all zero) is
	 * taken for the file's own: its processes may still be attached */
	return file_id_equal(&r->rt->file, &r->file) ||
	       file_id_equal(&r->rt->file, &none);
}

/* a word of the region file, by pread (r->base may be the working
 * copy); 0 if it cannot be read */
static uint64_t file_word(struct pstm_region *r, off_t off)
{
	uint64_t v;
	return pread(r->fd, &v, sizeof(v), off) == (ssize_t)sizeof(v) ? v : 0;
}

/*
 * Callers hold no flock: a stamper (runtime_stamp) may move the two
 * words while we read the file.  The file holds one of them at every
 * instant, so a verdict counts only when neither moved across the read;
 * otherwise look again (a few times: stamps that keep moving are opens
 * and closes of the file itself, and the next look judges it).
 */
bool runtime_file_replaced(struct pstm_region *r)
{
	for (int tries = 0;; tries++) {
		uint64_t mine = atomic_load_explicit(&r->rt->file_stamp, memory_order_acquire);
		uint64_t next = atomic_load_explicit(&r->rt->file_stamp_next,
						     memory_order_acquire);
		if (!mine)
			return false; /* never stamped: an older library's runtime */
		uint64_t f = file_word(r, FILE_STAMP_OFF);
		if (f == mine || f == next)
			break;
		if (mine == atomic_load_explicit(&r->rt->file_stamp, memory_order_acquire) &&
		    next == atomic_load_explicit(&r->rt->file_stamp_next, memory_order_acquire))
			return true; /* neither word moved: the file holds neither */
		if (tries == 8)
			return false;
	}
	if (r->sb.durability == PSTM_RELAXED) {
		/* the runtime's mark first: the flusher raises the file's
		 * before it, so the file's read after is never below it
		 * unless the file went back */
		uint64_t seen = atomic_load_explicit(&r->rt->flushed, memory_order_acquire);
		if (file_word(r, DURABLE_STATE_OFF +
				     offsetof(struct durable_state, flushed)) < seen)
			return true;
	}
	return false;
}

/*
 * A new stamp, under the flock (opens and closes of file regions).
 * Invariant at entry and at every step: the file holds the runtime's
 * stamp or its next one.  Next, file, stamp: a process killed anywhere
 * between leaves the file with the old stamp or the next one.  One
 * killed after writing the file and before taking the stamp as its own
 * leaves file == next != stamp; the next stamper adopts it first, so
 * that its own next (which replaces that one) keeps the invariant even
 * if it dies too (without this, two such deaths in a row made the
 * region read as overwritten in place: every open and flush refused,
 * PSTM_EREPLACED, until all its processes were gone).
 */
void runtime_stamp(struct pstm_region *r)
{
	uint64_t s = 0;
	if (runtime_file_replaced(r))
		return; /* the next opener with nobody attached rebuilds */
	uint64_t f = file_word(r, FILE_STAMP_OFF);
	if (f && f == atomic_load_explicit(&r->rt->file_stamp_next, memory_order_relaxed))
		atomic_store_explicit(&r->rt->file_stamp, f, memory_order_relaxed);
	while (!s)
		if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
			s = mono_ns() ^ ((uint64_t)getpid() << 32);
	atomic_store_explicit(&r->rt->file_stamp_next, s, memory_order_relaxed);
	CRASH_POINT(CP_STAMP_NEXT);
	if (pwrite(r->fd, &s, sizeof(s), FILE_STAMP_OFF) == (ssize_t)sizeof(s)) {
		CRASH_POINT(CP_STAMP_WRITTEN);
		atomic_store_explicit(&r->rt->file_stamp, s, memory_order_relaxed);
	}
}

int attach_lock(int fd, short type)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET,
			   .l_start = ATTACH_LOCK_BYTE, .l_len = 1};
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0 || errno == EINVAL)
		return 0; /* EINVAL: no OFD locks here; no guard */
	return -1;
}

int runtime_map_companion(struct pstm_region *r, bool *stale)
{
	int fd, rc = 0;
	struct stat st;

	*stale = false;
	companion_path(r->sb.uuid, &r->file, COMPANION_RUNTIME, r->rt_path,
		       sizeof(r->rt_path));
	fd = companion_open(r->fd, r->rt_path, true);
	if (fd < 0)
		return errno_to_pstm(errno);
	if (fstat(fd, &st) != 0) {
		rc = PSTM_EIO;
		goto out;
	}
	if ((uint64_t)st.st_size != r->sb.rt_bytes + COMPANION_TAIL_BYTES) {
		/* new or foreign: start from zero, unless someone is
		 * attached to the segment this one replaced */
		if (attach_lock(r->fd, F_WRLCK) != 0) {
			rc = PSTM_ERUNTIME;
			goto out;
		}
		if (ftruncate(fd, 0) != 0 ||
		    posix_fallocate(fd, 0, (off_t)(r->sb.rt_bytes +
						   COMPANION_TAIL_BYTES)) != 0) {
			rc = PSTM_EIO;
			goto out;
		}
		*stale = true;
	}
	/* whose it is, for pstm ls and gc (the path changes with mv) */
	companion_tail_update(fd, r->sb.rt_bytes, &r->sb, &r->file, r->path);
	r->rt_map_len = r->sb.rt_bytes;
	r->rt_base = mmap(NULL, r->rt_map_len, PROT_READ | PROT_WRITE,
			  MAP_SHARED, fd, 0);
	if (r->rt_base == MAP_FAILED) {
		r->rt_base = NULL;
		rc = PSTM_EIO;
		goto out;
	}
	runtime_set_pointers(r);
	if (!runtime_is_valid(r, true))
		*stale = true;
out:
	companion_close(fd);
	return rc;
}
