/*
 * region.c - a region's lifecycle: pstm_create, pstm_open, pstm_close,
 * pstm_unlink.  The top of the library: it assembles the layers below
 * (mapping, runtime and process table, logs, transactions, add/run) into
 * an open handle, and takes them apart again.
 *
 * Creation builds the whole region under a temporary name and then link()s
 * it into place, so a region is never visible half-made.  Open validates
 * the superblock with pread before mapping anything, so a failed open
 * never modifies the file.  Open, attach and runtime (re)initialisation run
 * under flock(LOCK_EX) of the region file: the kernel drops the lock when
 * its holder dies, so a crash there blocks nobody.  pstm_unlink takes the
 * same lock, so an open either finishes before a removal or sees it.
 *
 * The runtime belongs to the region *file* (lib/companion.c): a copy gets
 * its own, a shm region's copy resets the one it carries.  Every attached
 * process holds an OFD read lock on byte ATTACH_LOCK_BYTE of the file
 * (lib/runtime.c), which is how pstm_unlink and a rebuild know whether
 * anyone is attached.
 *
 * About 820 lines: create, open (with the pstmd:NAME and observing
 * forms) and close share the handle's helpers (handle_new, attach, the
 * runtime checks), and splitting creation off would have to export
 * them; a split along create/open is the next step if it grows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "companion.h"
#include "crash.h"
#include "error.h"
#include "extent.h"
#include "flush.h"
#include "mapping.h"
#include "member.h"
#include "proc.h"
#include "recovery.h"
#include "redo_log.h"
#include "replay.h"
#include "run.h"
#include "runtime.h"
#include "stm.h"
#include "superblock.h"
#include "taskq.h"
#include "testing.h"
#include "uri.h"
#include "wire.h"
#include "workcopy.h"

static _Atomic uint64_t next_open_id = 1;

/* ---------------------------------------------------------- creation */

/* Write the initial contents of a freshly allocated (zeroed) region,
 * then let @fill (if any) write its heap and perhaps ask for a smaller
 * size (*size), to which the file is then cut (the superblock too). */
static int init_contents(int fd, struct superblock *sb, region_fill_fn fill,
			 void *arg)
{
	uint8_t *base;
	uint64_t len = sb->size_bytes;
	int rc = 0;

	base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return errno_to_pstm(errno);
	memcpy(base, sb, sizeof(*sb));
	struct durable_state *ds = (struct durable_state *)(base + DURABLE_STATE_OFF);
	ds->magic = DURABLE_MAGIC;
	atomic_store_explicit(&ds->horizon, 1, memory_order_relaxed);
	atomic_store_explicit(&ds->flushed, sb->durability == PSTM_RELAXED,
			      memory_order_relaxed);
	struct heap_header *hh = (struct heap_header *)(base + sb->heap_off);
	hh->magic = PSTM_HEAP_MAGIC;
	hh->top = sb->heap_off + HEAP_HDR_BYTES;
	if (sb->rt_inside) {
		struct pstm_region tmp;
		memset(&tmp, 0, sizeof(tmp));
		tmp.sb = *sb;
		/* link() and rename() keep the inode: this is the file's
		 * identity under its final name too */
		if (file_identity(fd, &tmp.file) != 0) {
			munmap(base, len);
			return PSTM_EIO;
		}
		tmp.rt_base = base + sb->rt_off;
		runtime_set_pointers(&tmp);
		runtime_init(&tmp);
	}
	if (fill) {
		uint64_t size = len, heap_off = sb->heap_off;
		rc = fill(base, sb, arg, &size);
		if (!rc && size < len &&
		    (rc = superblock_reshape(sb, sb->version, size)) == 0)
			rc = sb->heap_off == heap_off ? 0 : PSTM_EINVAL;
		if (!rc)
			memcpy(base, sb, sizeof(*sb));
	}
	if (!rc && sb->durability != PSTM_VOLATILE &&
	    msync(base, sb->size_bytes, MS_SYNC) != 0)
		rc = PSTM_EIO;
	munmap(base, len);
	if (!rc && sb->size_bytes < len && ftruncate(fd, (off_t)sb->size_bytes) != 0)
		rc = errno_to_pstm(errno);
	return rc;
}

static void fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	uri_dir_of(path, dir, sizeof(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
}

/* the first release's sizes (util.h), pinned to the fields they end at */
_Static_assert(CREATE_OPTS_V0 == offsetof(struct pstm_create_opts, flush_ms) +
				  sizeof(uint32_t), "create opts v0");
_Static_assert(REGION_INFO_V0 == offsetof(struct pstm_region_info, read_only),
	       "region info v0");

int pstm_create_sz(const char *uri, const struct pstm_create_opts *o,
		   size_t o_size, pstm_region **out)
{
	struct pstm_create_opts d;

	if (!out)
		return PSTM_EINVAL;
	*out = NULL;
	if (o) {
		if (!sized_in(&d, sizeof(d), o, o_size, CREATE_OPTS_V0))
			return PSTM_EINVAL;
		o = &d;
	}
	int rc = region_create_file(uri, o, 0, NULL, NULL, NULL);
	return rc ? rc : pstm_open(uri, out);
}

/* the symbol of binaries built before pstm_create_sz: a v0 struct */
int(pstm_create)(const char *uri, const struct pstm_create_opts *o,
		 pstm_region **out)
{
	return pstm_create_sz(uri, o, CREATE_OPTS_V0, out);
}

int region_create_file(const char *uri, const struct pstm_create_opts *o,
		       uint32_t version, region_fill_fn fill, void *arg,
		       struct superblock *sb_out)
{
	char path[PATH_MAX], tmp[PATH_MAX + 64], dir[PATH_MAX];
	struct superblock sb;
	bool is_shm;
	int fd = -1, rc;
	mode_t mode;

	rc = uri_parse(uri, path, sizeof(path), &is_shm);
	if (rc)
		return rc;
	rc = superblock_from_opts(o, is_shm, &sb);
	if (rc == 0 && version && version != sb.version)
		rc = superblock_reshape(&sb, version, sb.size_bytes);
	if (rc)
		return rc;
	/* permission bits only: a region is data, never setuid, setgid or
	 * sticky */
	if (o && (o->mode & ~(mode_t)0777))
		return PSTM_EINVAL;
	mode = (o && o->mode) ? o->mode : 0600;

	uri_dir_of(path, dir, sizeof(dir));
	snprintf(tmp, sizeof(tmp), "%s/.pstm-new.%d.%08x", dir, (int)getpid(),
		 (unsigned)sb.uuid[0] << 24 | sb.uuid[1] << 16 | sb.uuid[2] << 8 |
			 sb.uuid[3]);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno_to_pstm(errno);
	if (fchmod(fd, mode) != 0) {
		rc = errno_to_pstm(errno);
		goto fail;
	}
	/* allocate every block now: a full disk or /dev/shm fails here with
	 * a clear error instead of SIGBUS on first touch later */
	rc = posix_fallocate(fd, 0, (off_t)sb.size_bytes);
	if (rc) {
		rc = rc == ENOSPC ? PSTM_EHEAPFULL : errno_to_pstm(rc);
		goto fail;
	}
	rc = init_contents(fd, &sb, fill, arg);
	if (rc)
		goto fail;
	if (sb.durability != PSTM_VOLATILE && fsync(fd) != 0) {
		rc = PSTM_EIO;
		goto fail;
	}
	close(fd);
	fd = -1;
	if (link(tmp, path) != 0) {
		int e = errno;
		if (e == EEXIST && o && o->replace) {
			region_forget_volatile(path);
			if (rename(tmp, path) != 0) {
				rc = errno_to_pstm(errno);
				goto fail;
			}
		} else {
			rc = errno_to_pstm(e);
			goto fail;
		}
	} else {
		unlink(tmp);
	}
	if (sb.durability != PSTM_VOLATILE)
		fsync_dir(path);
	if (sb_out)
		*sb_out = sb;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

/* --------------------------------------------------------------- open */

/*
 * The runtime of a file region, from its companion segment; rebuilt when
 * missing, stale (another boot) or half-initialised, or when a relaxed
 * region's working copy is gone (like a power failure: start again from
 * the file, if nobody is attached).  Rebuilding replays the committed
 * logs first.  Called under the flock.
 */
static int attach_runtime(struct pstm_region *r)
{
	bool stale;
	int rc = runtime_map_companion(r, &stale);
	if (rc)
		return rc;
	/* overwritten in place by an older copy (runtime.c): the runtime
	 * and working copy are the old bytes', rebuilt if nobody uses them */
	if (!stale && runtime_file_replaced(r)) {
		if (attach_lock(r->fd, F_WRLCK) != 0)
			return PSTM_EREPLACED;
		stale = true;
	}
	if (!stale && r->relaxed) {
		rc = workcopy_attach(r, false);
		if (rc == PSTM_ERUNTIME)
			stale = true;
		else if (rc)
			return rc;
	}
	if (!stale)
		return 0;
	if (attach_lock(r->fd, F_WRLCK) != 0)
		return PSTM_ERUNTIME;
	memset(r->rt_base, 0, r->rt_map_len);
	/* nobody can be attached to a runtime we just rebuilt */
	int k = replay_after_reboot(r);
	if (k < 0)
		return k == -1 ? PSTM_ENOMEM : PSTM_EIO;
	r->open_replayed = (uint64_t)k;
	r->rt_rebuilt = true;
	if (r->relaxed && (rc = workcopy_attach(r, true)) != 0)
		return rc;
	runtime_init(r);
	return 0;
}

/*
 * A shm region copied with cp carries its original's runtime: process
 * table, slots, orecs and tokens, copied while the original's processes
 * may have been attached and even committing.  None of them is attached
 * to this file.  Settle every slot's log as the recovery of a dead
 * process would (a record past its commit point is replayed, any other
 * dropped), then start a fresh runtime, like a file region's after a
 * reboot.  Under the flock; the OFD lock proves nobody is attached.
 */
static int reset_copied_runtime(struct pstm_region *r)
{
	if (attach_lock(r->fd, F_WRLCK) != 0)
		return PSTM_ERUNTIME;
	for (uint32_t s = 0; s < r->sb.max_slots; s++)
		if (atomic_load(&region_log(r, s)->state) != LOG_IDLE)
			r->settle_slot(r, s);
	memset(r->rt_base, 0, r->sb.rt_bytes);
	runtime_init(r);
	r->rt_rebuilt = true;
	return 0;
}

/* Does @path still lead to the file open at @fd? */
static bool path_is_fd(const char *path, int fd)
{
	struct stat a, b;
	return stat(path, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/*
 * Open the region file and take its flock, making sure the name still
 * leads to it once the lock is held: pstm_unlink (or create --force)
 * may have replaced or removed it while we waited.
 */
static int open_locked(struct pstm_region *r)
{
	for (int round = 0; round < 8; round++) {
		r->fd = open(r->path, O_RDWR | O_CLOEXEC);
		if (r->fd < 0)
			return errno_to_pstm(errno);
		int rc = superblock_read(r->fd, &r->sb);
		if (rc)
			return rc;
		if (flock(r->fd, LOCK_EX) != 0)
			return PSTM_EIO;
		if (path_is_fd(r->path, r->fd))
			return file_identity(r->fd, &r->file) == 0 ? 0 : PSTM_EIO;
		close(r->fd); /* drops the flock */
		r->fd = -1;
	}
	return PSTM_EIO;
}

/* What every handle has, whatever mapped it. */
static void handle_init(struct pstm_region *r)
{
	r->owner_pid = getpid();
	r->settle_slot = replay_settle_slot; /* recovery (layer 2) calls up */
	r->ovf_take = extent_take;           /* large commits (layer 4) too */
	r->ovf_give = extent_give;
	r->open_id = atomic_fetch_add(&next_open_id, 1); /* never 0 */
}

static struct pstm_region *handle_new(void)
{
	struct pstm_region *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->fd = -1;
	handle_init(r);
	return r;
}

/* A failed open: undo what the handle holds (mappings, fd, flock). */
static void handle_free(struct pstm_region *r, bool locked)
{
	if (locked)
		flock(r->fd, LOCK_UN);
	region_unmap(r);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

/* The mapping at r->base is the region validated into r->sb. */
static int check_mapped(struct pstm_region *r)
{
	/* the mapped superblock must still be the one we validated */
	if (memcmp(r->base, &r->sb, sizeof(r->sb)) != 0)
		return PSTM_ECORRUPT;
	region_derive(r);
	if (((struct heap_header *)(r->base + r->sb.heap_off))->magic !=
		    PSTM_HEAP_MAGIC ||
	    region_dstate(r)->magic != DURABLE_MAGIC)
		return PSTM_ECORRUPT;
	return 0;
}

/* Give back the process entry (a handle that attaches nothing has none). */
static void detach(struct pstm_region *r)
{
	if (!r->rt_readonly)
		proc_detach(r);
}

/*
 * The mapped, validated region with its runtime: recover the dead,
 * attach, drop the flock (*locked false after), and start what a handle
 * runs.  On failure everything it did is undone but the mappings, the
 * fd and the flock, which the caller's handle_free drops.
 */
static int attach(struct pstm_region *r, bool *locked)
{
	int rc = 0;
	if (!r->rt_readonly) {
		proc_recover_all_dead(r);
		rc = proc_attach(r);
		/* pstmd never keeps an open from getting an entry it would
		 * have had without pstmd: asked, it lets go of a full table */
		if (rc == PSTM_EPROCFULL && member_make_room(r->fd))
			rc = proc_attach(r);
	}
	if (rc)
		return rc;
	/* shm regions too: pstm_unlink asks the lock who is attached.  A
	 * handle that attaches nothing holds it as well: it is a kernel
	 * lock, not a store, and it keeps an opener from rebuilding the
	 * runtime under the handle's reads (lib/runtime.c) */
	if (attach_lock(r->fd, F_RDLCK) != 0) {
		detach(r);
		return PSTM_EIO;
	}
	/* a file region's runtime and file get a new stamp (runtime.c);
	 * an observer and a read-only grant leave the file alone */
	if (!r->sb.rt_inside && !r->rt_readonly)
		runtime_stamp(r);
	r->in_open = false;
	if (!r->rt_readonly)
		atomic_fetch_add_explicit(&r->procs[r->proc_idx].stats[ST_RECOVERIES],
					  r->open_recoveries, memory_order_relaxed);
	flock(r->fd, LOCK_UN);
	*locked = false;

	if (pthread_mutex_init(&r->lock, NULL) != 0 ||
	    pthread_key_create(&r->key, txd_thread_exit) != 0) {
		detach(r);
		return PSTM_ENOMEM;
	}
	rc = run_init(r);
	if (rc) {
		pthread_key_delete(r->key);
		detach(r);
		return rc;
	}
	testing_open(r);
	/* pstmd, if one runs: never fails, never waits.  It watches process
	 * entries; a handle that attaches nothing has none to watch */
	if (!r->rt_readonly)
		member_register(r);
	/* a read-only grant writes no file, an observer nothing of the
	 * others': their flushes are others' */
	if (r->relaxed && !r->rt_readonly && (rc = flush_start(r)) != 0) {
		member_leave(r);
		testing_close(r);
		run_fini(r);
		pthread_key_delete(r->key);
		detach(r);
		return rc;
	}
	return 0;
}

/* Map @n bytes of @fd (@prot) and check the file has exactly @file_bytes:
 * NULL otherwise. */
static uint8_t *map_fd(int fd, uint64_t n, uint64_t file_bytes, int prot)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != file_bytes)
		return NULL;
	void *p = mmap(NULL, n, prot, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/*
 * pstm_open("pstmd:NAME"): pstmd opened the region of its directory for
 * us (lib/member.c) and passed the region file, its runtime companion and
 * a relaxed region's working copy, read-write or, for a read-only grant,
 * all three read-only.  The same open as by path from there on, with
 * mmap of the descriptors in place of the names (the runtime is pstmd's,
 * which is attached: it is never built here).  A read-only grant maps
 * them PROT_READ and attaches nothing (r->rt_readonly), as an observer.
 */
static int open_granted(const char *name, pstm_region **out)
{
	int fds[WIRE_MAX_FDS], nfds = 0, rc;
	bool write = false, locked = false;
	char path[PATH_MAX];
	struct pstm_region *r;

	rc = member_open_named(name, fds, &nfds, &write, path, sizeof(path));
	if (rc)
		return rc;
	r = handle_new();
	if (!r) {
		wire_close_fds(fds, nfds);
		return PSTM_ENOMEM;
	}
	r->fd = fds[0];
	r->read_only = r->rt_readonly = !write;
	snprintf(r->path, sizeof(r->path), "%s", path);
	int prot = PROT_READ | (write ? PROT_WRITE : 0);
	rc = superblock_read(r->fd, &r->sb);
	if (rc)
		goto fail;
	if (r->sb.rt_inside || nfds != (r->sb.durability == PSTM_RELAXED ? 3 : 2)) {
		rc = PSTM_EINVAL;
		goto fail;
	}
	if (flock(r->fd, LOCK_EX) != 0 || file_identity(r->fd, &r->file) != 0) {
		rc = PSTM_EIO;
		goto fail;
	}
	locked = true;
	r->in_open = true;
	crash_arm_from_env();
	r->base = map_fd(r->fd, r->sb.size_bytes, r->sb.size_bytes, prot);
	rc = PSTM_ETRUNC;
	if (!r->base)
		goto fail;
	r->map_len = r->sb.size_bytes;
	if ((rc = check_mapped(r)) != 0)
		goto fail;
	/* a read-only grant gets the runtime read-only too (pstmd passes it
	 * O_RDONLY): it attaches nothing and stores no shared word */
	r->rt_base = map_fd(fds[1], r->sb.rt_bytes, r->sb.rt_bytes + COMPANION_TAIL_BYTES,
			    prot);
	rc = PSTM_ERUNTIME;
	if (!r->rt_base)
		goto fail;
	r->rt_map_len = r->sb.rt_bytes;
	companion_path(r->sb.uuid, &r->file, COMPANION_RUNTIME, r->rt_path,
		       sizeof(r->rt_path));
	runtime_set_pointers(r);
	if (!runtime_is_valid(r, true))
		goto fail;
	rc = PSTM_EREPLACED; /* pstmd keeps it attached: no rebuild here */
	if (runtime_file_replaced(r))
		goto fail;
	rc = PSTM_ERUNTIME;
	if (r->relaxed) {
		uint8_t *wc = map_fd(fds[2], r->sb.size_bytes, r->sb.size_bytes, prot);
		if (!wc)
			goto fail;
		r->fbase = r->base;
		r->base = wc;
		companion_path(r->sb.uuid, &r->file, COMPANION_WORKCOPY, r->wc_path,
			       sizeof(r->wc_path));
		if (memcmp(wc, &r->sb, sizeof(r->sb)) != 0)
			goto fail;
	}
	rc = attach(r, &locked);
	if (rc)
		goto fail;
	wire_close_fds(fds + 1, nfds - 1); /* mapped; the region's fd stays */
	*out = r;
	return 0;
fail:
	wire_close_fds(fds + 1, nfds - 1);
	handle_free(r, locked);
	return rc;
}

/*
 * pstm_open_opts(PSTM_OPEN_OBSERVE): a handle that attaches nothing
 * (r->rt_readonly).  The region, its runtime and a relaxed region's
 * working copy are opened O_RDONLY and mapped PROT_READ, as pstm info
 * and pstm check map them (region_map_readonly), so read permission is
 * enough and a full process table does not matter.  The runtime must be
 * there, valid and this file's: building it (after a reboot) or
 * resetting a copied shm region's would write, so the open fails with
 * PSTM_ERUNTIME instead, and an ordinary open or pstm recover builds it.
 * A shared flock, on a descriptor of its own taken before anything is
 * mapped, waits for an open in progress (which may be building the
 * runtime) and keeps the next from starting until our attach lock is
 * held (attach): from then on nobody rebuilds the runtime under us.
 */
static int open_observing(const char *uri, pstm_region **out)
{
	char path[PATH_MAX];
	bool is_shm, locked = false;
	struct pstm_region *r;
	int rc = uri_parse(uri, path, sizeof(path), &is_shm);
	if (rc)
		return rc;
	/* a FIFO or a device must not block us: no region anyway */
	int lfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (lfd < 0)
		return errno_to_pstm(errno);
	struct stat st;
	if (fstat(lfd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(lfd);
		return PSTM_EBADMAGIC;
	}
	if (flock(lfd, LOCK_SH) != 0) {
		close(lfd);
		return PSTM_EIO;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		close(lfd);
		return PSTM_ENOMEM;
	}
	rc = region_map_readonly(uri, r);
	handle_init(r);
	if (rc)
		goto fail;
	rc = PSTM_EIO;
	struct file_id lid;
	if (file_identity(lfd, &lid) != 0 || !file_id_equal(&lid, &r->file))
		goto fail; /* replaced between the two opens */
	r->observe = r->rt_readonly = true;
	r->in_open = true;
	if ((rc = check_mapped(r)) != 0)
		goto fail;
	rc = PSTM_ERUNTIME;
	if (!r->rt_base || !runtime_is_valid(r, !r->sb.rt_inside) ||
	    (r->relaxed && !r->fbase))
		goto fail;
	rc = attach(r, &locked);
	if (rc)
		goto fail;
	close(lfd);
	*out = r;
	return 0;
fail:
	close(lfd);
	handle_free(r, false);
	return rc;
}

int pstm_open(const char *uri, pstm_region **out)
{
	return pstm_open_opts(uri, 0, out);
}

int pstm_open_opts(const char *uri, unsigned flags, pstm_region **out)
{
	struct pstm_region *r;
	int rc;
	bool locked = false;

	if (!out)
		return PSTM_EINVAL;
	*out = NULL;
	if (flags & ~(unsigned)PSTM_OPEN_OBSERVE)
		return PSTM_EINVAL;
	if (uri && strncmp(uri, PSTM_DAEMON_PREFIX, strlen(PSTM_DAEMON_PREFIX)) == 0) {
		if (flags)
			return PSTM_EINVAL; /* a grant decides what it may do */
		return open_granted(uri + strlen(PSTM_DAEMON_PREFIX), out);
	}
	if (flags & PSTM_OPEN_OBSERVE)
		return open_observing(uri, out);
	r = handle_new();
	if (!r)
		return PSTM_ENOMEM;
	rc = uri_parse(uri, r->path, sizeof(r->path), &r->is_shm);
	if (rc)
		goto fail;
	rc = open_locked(r);
	if (rc)
		goto fail;
	locked = true;
	r->in_open = true;
	crash_arm_from_env();
	rc = region_map(r);
	if (rc)
		goto fail;
	rc = check_mapped(r);
	if (rc)
		goto fail;
	if (r->sb.rt_inside) {
		static const struct file_id none;
		r->rt_base = r->base + r->sb.rt_off;
		runtime_set_pointers(r);
		if (atomic_load(&r->rt->magic) != PSTM_RT_MAGIC ||
		    memcmp(r->rt->uuid, r->sb.uuid, 16) != 0) {
			rc = PSTM_ECORRUPT;
			goto fail;
		}
		if (!runtime_is_this_files(r)) {
			rc = reset_copied_runtime(r);
			if (rc)
				goto fail;
		} else if (file_id_equal(&r->rt->file, &none)) {
			/* made before identities were recorded: it is ours
			 * from now on, so that a copy tells itself apart */
			r->rt->file = r->file;
		}
	} else {
		rc = attach_runtime(r);
		if (rc)
			goto fail;
	}
	rc = attach(r, &locked);
	if (rc)
		goto fail;
	*out = r;
	return 0;
fail:
	handle_free(r, locked);
	return rc;
}

void region_open_recovery(pstm_region *r, struct open_recovery *out)
{
	out->procs_recovered = r->open_recoveries;
	out->logs_replayed = r->open_replayed;
	out->runtime_rebuilt = r->rt_rebuilt;
}

int pstm_close(pstm_region *r)
{
	if (!r)
		return PSTM_EINVAL;
	if (tx_running())
		return PSTM_EINTX;
	if (r->owner_pid != getpid()) {
		/* a handle inherited across fork: its process entry, slots and
		 * flush thread are the parent's; only drop our mappings */
		member_leave(r); /* our copy of the parent's connection */
		region_unmap(r);
		close(r->fd);
		free(r);
		return 0;
	}
	r->closing = true;
	run_fini(r);
	taskq_fini(r);
	txd_release_all(r);
	int rc = flush_stop(r); /* relaxed: everything committed is durable */
	pthread_key_delete(r->key);
	pthread_mutex_destroy(&r->lock);
	/* a new stamp, so that a copy of the file taken while we were
	 * attached is told apart from what it holds now (runtime.c) */
	if (!r->sb.rt_inside && !r->rt_readonly && flock(r->fd, LOCK_EX) == 0) {
		runtime_stamp(r);
		flock(r->fd, LOCK_UN);
	}
	detach(r);
	member_leave(r); /* pstmd sees the connection close, us detached */
	testing_close(r);
	region_unmap(r);
	close(r->fd);
	free(r);
	return rc;
}

/* ------------------------------------------------------------ removal */

/*
 * Is a process attached to the region open at @fd (@uri)?  Attached
 * processes hold an OFD read lock on its attach byte; the process table
 * is asked too (a library too old to take that lock, a filesystem
 * without OFD locks).  A dead process that nobody recovered yet is not
 * attached.
 */
static bool region_in_use(const char *uri, int fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
			   .l_start = ATTACH_LOCK_BYTE, .l_len = 1};
	struct pstm_region ro;
	bool used = false;

	if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		return true;
	if (region_map_readonly(uri, &ro) != 0)
		return false; /* damaged: the lock said no one */
	if (ro.rt_base && atomic_load(&ro.rt->magic) == PSTM_RT_MAGIC)
		for (uint32_t p = 0; p < ro.sb.max_procs && !used; p++) {
			uint64_t ps = atomic_load(&ro.procs[p].state);
			used = PROC_ST(ps) == PROC_ALIVE &&
			       proc_entry_alive(&ro, p, ps);
		}
	region_unmap_readonly(&ro);
	return used;
}

int pstm_unlink(const char *uri)
{
	return pstm_unlink_opts(uri, 0);
}

int pstm_unlink_opts(const char *uri, unsigned flags)
{
	char path[PATH_MAX], rt[COMPANION_PATH_MAX], wc[COMPANION_PATH_MAX];
	char magic[8];
	struct stat st;
	bool is_shm, has_companions = false;
	int fd = -1, rc;

	if (!uri || (flags & ~(unsigned)PSTM_UNLINK_FORCE))
		return PSTM_EINVAL;
	rc = uri_parse(uri, path, sizeof(path), &is_shm);
	if (rc)
		return rc;
	for (int round = 0;; round++) {
		/* the name itself, not what a symbolic link points to; a FIFO
		 * must not block us */
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return errno == ELOOP ? PSTM_EINVAL : errno_to_pstm(errno);
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
		    pread(fd, magic, 8, 0) != 8 || memcmp(magic, PSTM_MAGIC, 8) != 0) {
			rc = PSTM_EBADMAGIC; /* whatever it is, no region */
			goto out;
		}
		/* wait for opens in progress; they see the removal after */
		if (flock(fd, LOCK_EX) != 0) {
			rc = PSTM_EIO;
			goto out;
		}
		if (path_is_fd(path, fd))
			break;
		close(fd);
		fd = -1;
		if (round == 8)
			return PSTM_EIO;
	}
	/* pstmd holding the region for members that have all gone lets go
	 * when asked */
	if (!(flags & PSTM_UNLINK_FORCE) && region_in_use(uri, fd) &&
	    (!member_release(fd) || region_in_use(uri, fd))) {
		rc = PSTM_EBUSY;
		goto out;
	}
	/* the companions' names come from the file: take them before the
	 * name is gone (the file lives on while fd is open) */
	has_companions = companion_paths_of(path, rt, wc) == 0;
	if (unlink(path) != 0) {
		rc = errno_to_pstm(errno);
		goto out;
	}
	if (has_companions) {
		unlink(rt);
		unlink(wc);
	}
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int pstm_region_info_sz(pstm_region *r, struct pstm_region_info *out,
			size_t out_size)
{
	struct pstm_region_info info, *o = &info;

	if (!r || !out)
		return PSTM_EINVAL;
	memset(o, 0, sizeof(*o));
	o->size_bytes = r->sb.size_bytes;
	o->heap_off = r->heap_lo;
	o->heap_bytes = r->heap_hi - r->heap_lo;
	o->durability = (int)r->sb.durability;
	o->flush_ms = r->sb.flush_ms;
	o->is_pmem = r->is_pmem;
	o->max_procs = r->sb.max_procs;
	o->max_threads = r->sb.max_slots;
	o->log_bytes = r->sb.log_bytes;
	o->orecs_log2 = r->sb.orecs_log2;
	o->format_version = r->sb.version;
	memcpy(o->uuid, r->sb.uuid, 16);
	o->created_ns = r->sb.created_ns;
	o->read_only = r->read_only;
	return sized_out(out, out_size, o, sizeof(*o), REGION_INFO_V0) ?
		       0 : PSTM_EINVAL;
}

/* the symbol of binaries built before pstm_region_info_sz: a v0 struct */
int(pstm_region_info)(pstm_region *r, struct pstm_region_info *out)
{
	return pstm_region_info_sz(r, out, REGION_INFO_V0);
}

int pstm_sync(pstm_region *r)
{
	if (!r || r->owner_pid != getpid())
		return PSTM_EINVAL; /* no handle, or one inherited across fork */
	if (tx_running())
		return PSTM_EINTX;
	return flush_sync(r);
}
