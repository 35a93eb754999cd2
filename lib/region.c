/*
 * region.c - region lifecycle: URIs, atomic creation, superblock
 * validation, mapping (plain mmap for shm, libpmem for files), the runtime
 * part (inside the region, or a companion shm segment for file regions),
 * and persistence helpers.
 *
 * Creation builds the whole region under a temporary name and then link()s
 * it into place, so a region is never visible half-made.  Open validates
 * the superblock with pread before mapping anything, so a failed open
 * never modifies the file.  Open, attach and runtime (re)initialisation run
 * under flock(LOCK_EX) of the region file: the kernel drops the lock when
 * its holder dies, so a crash there blocks nobody.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libpmem.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "alloc.h"
#include "check.h"
#include "flush.h"
#include "powerfail.h"
#include "crash.h"
#include "proc.h"
#include "redo_log.h"
#include "region.h"
#include "run.h"
#include "stm.h"

#define MIN_SIZE (1ull << 20)
#define DEF_SIZE (64ull << 20)
#define MAX_SIZE (1ull << 46)
#define DEF_FLUSH_MS 10
#define MAX_FLUSH_MS 60000

static _Atomic uint64_t next_open_id = 1;

/* ---------------------------------------------------------------- URIs */

static int parse_uri(const char *uri, char *path, size_t n, bool *is_shm)
{
	if (!uri || !*uri)
		return PSTM_EINVAL;
	if (strncmp(uri, "shm:", 4) == 0) {
		const char *name = uri + 4;
		if (!*name || strchr(name, '/') || strlen(name) > 200 ||
		    name[0] == '.')
			return PSTM_EINVAL;
		snprintf(path, n, "/dev/shm/%s", name);
		*is_shm = true;
		return 0;
	}
	if (strlen(uri) >= n - 32)
		return PSTM_EINVAL;
	snprintf(path, n, "%s", uri);
	*is_shm = false;
	return 0;
}

static int errno_to_pstm(int e)
{
	switch (e) {
	case ENOENT: return PSTM_ENOENT;
	case EEXIST: return PSTM_EEXIST;
	case EACCES:
	case EPERM:
	case EROFS: return PSTM_EACCES;
	case ENOMEM: return PSTM_ENOMEM;
	case ENOSPC: return PSTM_EHEAPFULL;
	case ENAMETOOLONG:
	case EISDIR:
	case ENOTDIR: return PSTM_EINVAL;
	default: return PSTM_EIO;
	}
}

/* ------------------------------------------------------------- layout */


uint64_t rt_bytes_for(uint32_t max_procs, uint32_t max_slots,
		      uint32_t orecs_log2)
{
	uint64_t n = sizeof(struct rt_header);
	n += (uint64_t)max_procs * sizeof(struct proc_entry);
	n += (uint64_t)max_slots * sizeof(struct slot);
	n = align_up(n, CACHELINE);
	n += (uint64_t)8 << orecs_log2;
	return align_up(n, PAGE);
}

/* Fill the layout fields of @sb from its parameters; PSTM_ETOOSMALL if the
 * heap would be too small.  Also the open-time consistency check. */
int layout_compute(struct superblock *sb)
{
	uint64_t off = PAGE;
	sb->rt_bytes = rt_bytes_for(sb->max_procs, sb->max_slots, sb->orecs_log2);
	if (sb->rt_inside) {
		sb->rt_off = off;
		off += sb->rt_bytes;
	} else {
		sb->rt_off = 0;
	}
	sb->log_off = off;
	off += align_up((uint64_t)sb->max_slots * sb->log_bytes, PAGE);
	sb->heap_off = off;
	if (off + HEAP_HDR_BYTES + 64 * 1024 > sb->size_bytes)
		return PSTM_ETOOSMALL;
	sb->heap_bytes = sb->size_bytes - off;
	return 0;
}

static uint32_t sb_crc(const struct superblock *sb)
{
	return (uint32_t)crc32(0, (const Bytef *)sb, sb->sb_bytes - 8);
}

/* Validate a superblock read from a file of @file_size bytes. */
static int sb_validate(const struct superblock *sb, uint64_t file_size)
{
	struct superblock chk;

	if (memcmp(sb->magic, PSTM_MAGIC, 8) != 0)
		return PSTM_EBADMAGIC;
	/* the pad word after the crc is not covered by it: must be zero */
	if (sb->sb_bytes != sizeof(*sb) || sb_crc(sb) != sb->crc || sb->pad)
		return PSTM_ECORRUPT;
	if (sb->version > PSTM_FORMAT_VERSION)
		return PSTM_EVERSION;
	if (sb->version != PSTM_FORMAT_VERSION)
		return PSTM_ECORRUPT;
	if (sb->durability != PSTM_VOLATILE && sb->durability != PSTM_DURABLE &&
	    sb->durability != PSTM_RELAXED)
		return PSTM_ECORRUPT;
	if (sb->durability == PSTM_RELAXED
		    ? sb->flush_ms < 1 || sb->flush_ms > MAX_FLUSH_MS || sb->rt_inside
		    : sb->flush_ms != 0)
		return PSTM_ECORRUPT;
	if (sb->max_procs < 1 || sb->max_procs > 1023 || sb->max_slots < 1 ||
	    sb->max_slots > OREC_MAX_SLOTS || sb->log_bytes < 4096 ||
	    sb->log_bytes > (16u << 20) || sb->log_bytes % CACHELINE ||
	    sb->orecs_log2 < 10 || sb->orecs_log2 > 26 || sb->rt_inside > 1 ||
	    sb->size_bytes < MIN_SIZE || sb->size_bytes > MAX_SIZE ||
	    sb->size_bytes % PAGE)
		return PSTM_ECORRUPT;
	chk = *sb;
	if (layout_compute(&chk) != 0 || chk.rt_off != sb->rt_off ||
	    chk.rt_bytes != sb->rt_bytes || chk.log_off != sb->log_off ||
	    chk.heap_off != sb->heap_off || chk.heap_bytes != sb->heap_bytes)
		return PSTM_ECORRUPT;
	if (file_size < sb->size_bytes)
		return PSTM_ETRUNC;
	if (file_size > sb->size_bytes)
		return PSTM_ECORRUPT;
	return 0;
}

/* -------------------------------------------------------- persistence */

int region_flush(struct pstm_region *r, const void *p, size_t n)
{
	if (!r->durable || n == 0)
		return 0;
	if (r->fbase && ((const uint8_t *)p < r->fbase ||
			 (const uint8_t *)p >= r->fbase + r->map_len))
		return 0; /* relaxed: the working copy is never persisted */
	if (__builtin_expect(r->powerfail != NULL, 0)) {
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
		if (__builtin_expect(r->powerfail != NULL, 0))
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

/* ------------------------------------------------------------ runtime */

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

static void rt_set_pointers(struct pstm_region *r)
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
}

/* Initialise a zeroed runtime; magic is published last. */
static void rt_init(struct pstm_region *r)
{
	struct rt_header *h = r->rt;
	memcpy(h->uuid, r->sb.uuid, 16);
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

static bool rt_is_valid(struct pstm_region *r, bool check_boot)
{
	char boot[40];
	if (atomic_load_explicit(&r->rt->magic, memory_order_acquire) !=
	    PSTM_RT_MAGIC)
		return false;
	if (memcmp(r->rt->uuid, r->sb.uuid, 16) != 0)
		return false;
	if (check_boot) {
		read_boot_id(boot);
		if (strncmp(boot, r->rt->boot_id, 40) != 0)
			return false;
	}
	return true;
}

static void companion_name(const uint8_t uuid[16], const char *kind,
			   char *out, size_t n)
{
	char hex[33];
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
	snprintf(out, n, "/dev/shm/pstm.%s.%s", kind, hex);
}

static void companion_path(const uint8_t uuid[16], char *out, size_t n)
{
	companion_name(uuid, "rt", out, n);
}

/* Open (creating if asked) a /dev/shm companion with the region file's
 * owner and permissions. */
static int companion_open(struct pstm_region *r, const char *path, bool create)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return -1;
	if (create && fstat(r->fd, &st) == 0) {
		(void)fchmod(fd, st.st_mode & 0777);
		(void)fchown(fd, st.st_uid, st.st_gid);
	}
	return fd;
}

/*
 * Relaxed regions: map the working copy /dev/shm/pstm.wc.<uuid>, a full
 * image of the region on which every transaction runs; the file behind
 * it is written only by the flusher (lib/flush.c).  @build: make it now
 * from the file (the runtime is being rebuilt, nobody is attached).
 * Without @build, a missing or mis-sized copy gives PSTM_ERUNTIME.
 * On success base is the copy and fbase the file.
 */
static int wc_attach(struct pstm_region *r, bool build)
{
	struct stat st;
	int rc = 0;

	companion_name(r->sb.uuid, "wc", r->wc_path, sizeof(r->wc_path));
	int fd = companion_open(r, r->wc_path, build);
	if (fd < 0)
		return build ? errno_to_pstm(errno) : PSTM_ERUNTIME;
	if (build) {
		if (ftruncate(fd, 0) != 0) {
			rc = errno_to_pstm(errno);
			goto out;
		}
		int e = posix_fallocate(fd, 0, (off_t)r->sb.size_bytes);
		if (e) { /* /dev/shm too small for the copy */
			rc = e == ENOSPC ? PSTM_EHEAPFULL : errno_to_pstm(e);
			unlink(r->wc_path);
			goto out;
		}
	} else if (fstat(fd, &st) != 0 ||
		   (uint64_t)st.st_size != r->sb.size_bytes) {
		rc = PSTM_ERUNTIME;
		goto out;
	}
	uint8_t *wc = mmap(NULL, r->sb.size_bytes, PROT_READ | PROT_WRITE,
			   MAP_SHARED, fd, 0);
	if (wc == MAP_FAILED) {
		rc = errno_to_pstm(errno);
		goto out;
	}
	if (build)
		memcpy(wc, r->base, r->sb.size_bytes);
	else if (memcmp(wc, &r->sb, sizeof(r->sb)) != 0) {
		munmap(wc, r->sb.size_bytes);
		rc = PSTM_ERUNTIME; /* not this region's copy */
		goto out;
	}
	r->fbase = r->base;
	r->base = wc;
out:
	close(fd);
	return rc;
}

/*
 * Byte 1 of a file region carries an OFD lock: every attached process
 * holds a read lock on it for as long as it is attached (the kernel drops
 * it when the process dies), so an opener that must build a new runtime
 * first takes a write lock there.  If it cannot, processes are attached to
 * a runtime segment that has gone missing (someone removed it from
 * /dev/shm): building a second one would let two groups of processes run
 * without seeing each other's locks, so the open fails instead.
 */
#define ATTACH_LOCK_BYTE 1
static int attach_lock(int fd, short type)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET,
			   .l_start = ATTACH_LOCK_BYTE, .l_len = 1};
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0 || errno == EINVAL)
		return 0; /* EINVAL: no OFD locks here; no guard */
	return -1;
}

/*
 * Map the runtime of a file region from its companion segment, creating
 * and initialising it (after replaying committed logs) when it is missing,
 * stale (other boot) or half-initialised.  Called under the flock.
 */
static int rt_attach_companion(struct pstm_region *r)
{
	int fd, rc = 0;
	bool fresh = false;
	struct stat st;

	companion_path(r->sb.uuid, r->rt_path, sizeof(r->rt_path));
	fd = open(r->rt_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno_to_pstm(errno);
	/* same permissions as the region itself */
	if (fstat(r->fd, &st) == 0) {
		(void)fchmod(fd, st.st_mode & 0777);
		(void)fchown(fd, st.st_uid, st.st_gid);
	}
	if (fstat(fd, &st) != 0) {
		rc = PSTM_EIO;
		goto out;
	}
	if ((uint64_t)st.st_size != r->sb.rt_bytes) {
		/* new or foreign: start from zero */
		if (attach_lock(r->fd, F_WRLCK) != 0) {
			rc = PSTM_ERUNTIME;
			goto out;
		}
		if (ftruncate(fd, 0) != 0 ||
		    posix_fallocate(fd, 0, (off_t)r->sb.rt_bytes) != 0) {
			rc = PSTM_EIO;
			goto out;
		}
		fresh = true;
	}
	r->rt_map_len = r->sb.rt_bytes;
	r->rt_base = mmap(NULL, r->rt_map_len, PROT_READ | PROT_WRITE,
			  MAP_SHARED, fd, 0);
	if (r->rt_base == MAP_FAILED) {
		r->rt_base = NULL;
		rc = PSTM_EIO;
		goto out;
	}
	rt_set_pointers(r);
	bool rebuild = fresh || !rt_is_valid(r, true);
	if (!rebuild && r->relaxed) {
		rc = wc_attach(r, false);
		/* working copy gone (removed from /dev/shm): like a power
		 * failure, start again from the file if nobody is attached */
		if (rc == PSTM_ERUNTIME)
			rebuild = true;
		else if (rc)
			goto out;
		rc = 0;
	}
	if (rebuild) {
		if (attach_lock(r->fd, F_WRLCK) != 0) {
			rc = PSTM_ERUNTIME;
			goto out;
		}
		memset(r->rt_base, 0, r->rt_map_len);
		/* nobody can be attached to a runtime we just rebuilt */
		int k = redo_log_replay_all(r);
		if (k < 0) {
			rc = k == -1 ? PSTM_ENOMEM : PSTM_EIO;
			goto out;
		}
		r->open_replayed = (uint64_t)k;
		r->rt_rebuilt = true;
		if (r->relaxed && (rc = wc_attach(r, true)) != 0)
			goto out;
		rt_init(r);
	}
out:
	close(fd);
	return rc;
}

/* ---------------------------------------------------------- creation */

static void fill_uuid(uint8_t uuid[16])
{
	if (getrandom(uuid, 16, 0) != 16) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t a = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
		uint64_t b = (uint64_t)ts.tv_sec;
		memcpy(uuid, &a, 8);
		memcpy(uuid + 8, &b, 8);
	}
	uuid[6] = (uuid[6] & 0x0f) | 0x40; /* RFC 4122 v4 */
	uuid[8] = (uuid[8] & 0x3f) | 0x80;
}

static int opts_to_sb(const struct pstm_create_opts *o, bool is_shm,
		      struct superblock *sb)
{
	struct pstm_create_opts d = {0};
	struct timespec ts;

	if (o)
		d = *o;
	memset(sb, 0, sizeof(*sb));
	memcpy(sb->magic, PSTM_MAGIC, 8);
	sb->version = PSTM_FORMAT_VERSION;
	sb->sb_bytes = sizeof(*sb);
	sb->size_bytes = d.size_bytes ? d.size_bytes : DEF_SIZE;
	if (sb->size_bytes < MIN_SIZE)
		return PSTM_ETOOSMALL;
	if (sb->size_bytes > MAX_SIZE)
		return PSTM_EINVAL;
	sb->size_bytes = align_up(sb->size_bytes, PAGE);
	if (d.durability == PSTM_DEFAULT)
		d.durability = is_shm ? PSTM_VOLATILE : PSTM_DURABLE;
	if (d.durability != PSTM_VOLATILE && d.durability != PSTM_DURABLE &&
	    d.durability != PSTM_RELAXED)
		return PSTM_EINVAL;
	if (is_shm && d.durability != PSTM_VOLATILE)
		return PSTM_EINVAL; /* shm cannot survive power failure */
	sb->durability = (uint32_t)d.durability;
	if (d.durability == PSTM_RELAXED) {
		sb->flush_ms = d.flush_ms ? d.flush_ms : DEF_FLUSH_MS;
		if (sb->flush_ms > MAX_FLUSH_MS)
			return PSTM_EINVAL;
	} else if (d.flush_ms) {
		return PSTM_EINVAL; /* only relaxed regions flush later */
	}
	/* defaults scale down for small regions: orecs take at most 1/8 of
	 * the size, redo logs about 1/4.  2^16 orecs (512 KiB) by default:
	 * measured faster than 2^20 at 1M accounts, where an 8 MiB table
	 * no longer fits in L2 (docs/design.md) */
	uint32_t ol2 = 10;
	while (ol2 < 16 && (8ull << (ol2 + 1)) <= sb->size_bytes / 8)
		ol2++;
	/* relaxed: a ring holds the commits between two checkpoints of the
	 * file (one sync of its data each), so bigger rings mean fewer
	 * syncs per commit (bank, /tmp: 64 KiB ~1.0M tx/s, 256 KiB ~2.0M,
	 * 1 MiB ~2.7M; docs/design.md) */
	uint64_t lb = sb->size_bytes >= DEF_SIZE
			      ? (d.durability == PSTM_RELAXED ? 256 : 64) * 1024
			      : align_up(sb->size_bytes / 1024, 4096);
	if (d.log_bytes)
		lb = d.log_bytes;
	uint64_t mt = sb->size_bytes / 4 / (lb ? lb : 4096);
	mt = mt > 128 ? 128 : mt < 4 ? 4 : mt;
	sb->max_slots = d.max_threads ? d.max_threads : (uint32_t)mt;
	sb->max_procs = d.max_procs ? d.max_procs
				    : (sb->max_slots < 64 ? sb->max_slots : 64);
	sb->log_bytes = (uint32_t)lb;
	sb->orecs_log2 = d.orecs_log2 ? d.orecs_log2 : ol2;
	if (sb->max_procs > 1023 || sb->max_slots > OREC_MAX_SLOTS ||
	    sb->log_bytes < 4096 || sb->log_bytes > (16u << 20) ||
	    sb->orecs_log2 < 10 || sb->orecs_log2 > 26)
		return PSTM_EINVAL;
	sb->log_bytes = (uint32_t)align_up(sb->log_bytes, CACHELINE);
	if (sb->max_slots < sb->max_procs)
		sb->max_slots = sb->max_procs;
	if (sb->max_slots > OREC_MAX_SLOTS)
		return PSTM_EINVAL;
	sb->rt_inside = is_shm ? 1 : 0;
	fill_uuid(sb->uuid);
	clock_gettime(CLOCK_REALTIME, &ts);
	sb->created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	int rc = layout_compute(sb);
	if (rc)
		return rc;
	sb->crc = sb_crc(sb);
	return 0;
}

/* Write the initial contents of a freshly allocated (zeroed) region. */
static int init_contents(int fd, const struct superblock *sb)
{
	uint8_t *base;
	int rc = 0;

	base = mmap(NULL, sb->size_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
		    fd, 0);
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
		tmp.rt_base = base + sb->rt_off;
		rt_set_pointers(&tmp);
		rt_init(&tmp);
	}
	if (sb->durability != PSTM_VOLATILE &&
	    msync(base, sb->size_bytes, MS_SYNC) != 0)
		rc = PSTM_EIO;
	munmap(base, sb->size_bytes);
	return rc;
}

static void dir_of(const char *path, char *out, size_t n)
{
	snprintf(out, n, "%s", path);
	char *slash = strrchr(out, '/');
	if (!slash)
		snprintf(out, n, ".");
	else if (slash == out)
		out[1] = 0;
	else
		*slash = 0;
}

static void fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	dir_of(path, dir, sizeof(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
}

/* Remove the /dev/shm companions (runtime, relaxed working copy) of the
 * region currently at @path, if any: what a power failure does to them. */
void region_forget_volatile(const char *path)
{
	struct superblock sb;
	char rt[96];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	/* only magic, uuid and rt_inside are needed: works on a damaged or
	 * truncated region too */
	memset(&sb, 0, sizeof(sb));
	if (pread(fd, &sb, sizeof(sb), 0) >= (ssize_t)offsetof(struct superblock, rt_off) &&
	    memcmp(sb.magic, PSTM_MAGIC, 8) == 0 && sb.rt_inside == 0) {
		companion_path(sb.uuid, rt, sizeof(rt));
		unlink(rt);
		companion_name(sb.uuid, "wc", rt, sizeof(rt));
		unlink(rt);
	}
	close(fd);
}

int pstm_create(const char *uri, const struct pstm_create_opts *o,
		pstm_region **out)
{
	char path[PATH_MAX], tmp[PATH_MAX + 64], dir[PATH_MAX];
	struct superblock sb;
	bool is_shm;
	int fd = -1, rc;
	mode_t mode;

	if (!out)
		return PSTM_EINVAL;
	*out = NULL;
	rc = parse_uri(uri, path, sizeof(path), &is_shm);
	if (rc)
		return rc;
	rc = opts_to_sb(o, is_shm, &sb);
	if (rc)
		return rc;
	mode = (o && o->mode) ? (o->mode & 07777) : 0600;

	dir_of(path, dir, sizeof(dir));
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
	rc = init_contents(fd, &sb);
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
	return pstm_open(uri, out);
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

/* --------------------------------------------------------------- open */

/* Fields that follow from the validated superblock. */
static void region_derive(struct pstm_region *r)
{
	r->durable = r->sb.durability != PSTM_VOLATILE;
	r->relaxed = r->sb.durability == PSTM_RELAXED;
	r->heap_lo = r->sb.heap_off + HEAP_HDR_BYTES;
	r->heap_hi = r->sb.size_bytes;
	r->ring_bytes = r->sb.log_bytes - sizeof(struct log_header);
	r->log_cap = (uint32_t)((r->ring_bytes - sizeof(struct log_record)) /
				sizeof(struct log_entry));
}

/* Map companion @path read-only if it exists with exactly @size bytes. */
static void *map_companion_ro(const char *path, uint64_t size)
{
	struct stat st;
	void *m = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == size) {
		m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			m = NULL;
	}
	close(fd);
	return m;
}

static int map_region(struct pstm_region *r)
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

static void unmap_region(struct pstm_region *r)
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

/* Read and validate the superblock of an open fd without modifying it. */
static int read_superblock(int fd, struct superblock *sb)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) != 0)
		return PSTM_EIO;
	if (!S_ISREG(st.st_mode))
		return PSTM_EINVAL;
	if (st.st_size == 0)
		return PSTM_EEMPTY;
	memset(sb, 0, sizeof(*sb));
	n = pread(fd, sb, sizeof(*sb), 0);
	if (n < 0)
		return PSTM_EIO;
	if (n < 8 || memcmp(sb->magic, PSTM_MAGIC, 8) != 0)
		return PSTM_EBADMAGIC;
	if ((size_t)n < sizeof(*sb))
		return PSTM_ETRUNC;
	return sb_validate(sb, (uint64_t)st.st_size);
}

int pstm_open(const char *uri, pstm_region **out)
{
	struct pstm_region *r;
	int rc;
	bool locked = false;

	if (!out)
		return PSTM_EINVAL;
	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return PSTM_ENOMEM;
	r->fd = -1;
	r->owner_pid = getpid();
	r->open_id = atomic_fetch_add(&next_open_id, 1); /* never 0 */
	rc = parse_uri(uri, r->path, sizeof(r->path), &r->is_shm);
	if (rc)
		goto fail;
	r->fd = open(r->path, O_RDWR | O_CLOEXEC);
	if (r->fd < 0) {
		rc = errno_to_pstm(errno);
		goto fail;
	}
	rc = read_superblock(r->fd, &r->sb);
	if (rc)
		goto fail;
	if (flock(r->fd, LOCK_EX) != 0) {
		rc = PSTM_EIO;
		goto fail;
	}
	locked = true;
	r->in_open = true;
	crash_arm_from_env();
	rc = map_region(r);
	if (rc)
		goto fail;
	/* the mapped superblock must still be the one we validated */
	if (memcmp(r->base, &r->sb, sizeof(r->sb)) != 0) {
		rc = PSTM_ECORRUPT;
		goto fail;
	}
	region_derive(r);
	if (((struct heap_header *)(r->base + r->sb.heap_off))->magic !=
		    PSTM_HEAP_MAGIC ||
	    region_dstate(r)->magic != DURABLE_MAGIC) {
		rc = PSTM_ECORRUPT;
		goto fail;
	}
	if (r->sb.rt_inside) {
		r->rt_base = r->base + r->sb.rt_off;
		rt_set_pointers(r);
		if (!rt_is_valid(r, false)) {
			rc = PSTM_ECORRUPT;
			goto fail;
		}
	} else {
		rc = rt_attach_companion(r);
		if (rc)
			goto fail;
	}
	proc_recover_all_dead(r);
	rc = proc_attach(r);
	if (rc)
		goto fail;
	if (!r->sb.rt_inside && attach_lock(r->fd, F_RDLCK) != 0) {
		proc_detach(r);
		rc = PSTM_EIO;
		goto fail;
	}
	r->in_open = false;
	atomic_fetch_add_explicit(&r->procs[r->proc_idx].stats[ST_RECOVERIES],
				  r->open_recoveries, memory_order_relaxed);
	flock(r->fd, LOCK_UN);
	locked = false;

	const char *brk = getenv("PSTM_TEST_BREAK_VALIDATION");
	r->test_no_validate = brk && strcmp(brk, "1") == 0;
	if (pthread_mutex_init(&r->lock, NULL) != 0 ||
	    pthread_key_create(&r->key, stm_thread_exit) != 0) {
		proc_detach(r);
		rc = PSTM_ENOMEM;
		goto fail;
	}
	rc = run_init(r);
	if (rc) {
		pthread_key_delete(r->key);
		proc_detach(r);
		goto fail;
	}
	powerfail_arm(r);
	if (r->relaxed && (rc = flush_start(r)) != 0) {
		powerfail_free(r);
		run_fini(r);
		pthread_key_delete(r->key);
		proc_detach(r);
		goto fail;
	}
	*out = r;
	return 0;
fail:
	if (locked)
		flock(r->fd, LOCK_UN);
	unmap_region(r);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
	return rc;
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
	rc = parse_uri(uri, r->path, sizeof(r->path), &r->is_shm);
	if (rc)
		return rc;
	r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return errno_to_pstm(errno);
	rc = read_superblock(r->fd, &r->sb);
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
		rt_set_pointers(r);
	} else {
		companion_path(r->sb.uuid, r->rt_path, sizeof(r->rt_path));
		r->rt_base = map_companion_ro(r->rt_path, r->sb.rt_bytes);
		if (r->rt_base) {
			r->rt_map_len = r->sb.rt_bytes;
			rt_set_pointers(r);
		}
	}
	if (r->relaxed) {
		/* the live state is the working copy, when there is one */
		companion_name(r->sb.uuid, "wc", r->wc_path, sizeof(r->wc_path));
		uint8_t *wc = r->rt_base ? map_companion_ro(r->wc_path, r->sb.size_bytes)
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
	if (r->fbase) {
		munmap(r->base, r->map_len);
		r->base = r->fbase;
		r->fbase = NULL;
	}
	if (r->rt_map_len && r->rt_base)
		munmap(r->rt_base, r->rt_map_len);
	if (r->base)
		munmap(r->base, r->map_len);
	if (r->fd >= 0)
		close(r->fd);
	r->base = r->rt_base = NULL;
	r->fd = -1;
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
		unmap_region(r);
		close(r->fd);
		free(r);
		return 0;
	}
	r->closing = true;
	run_fini(r);
	stm_release_all(r);
	int rc = flush_stop(r); /* relaxed: everything committed is durable */
	pthread_key_delete(r->key);
	pthread_mutex_destroy(&r->lock);
	proc_detach(r);
	powerfail_free(r);
	unmap_region(r);
	close(r->fd);
	free(r);
	return rc;
}

int pstm_unlink(const char *uri)
{
	char path[PATH_MAX];
	bool is_shm;
	int rc = parse_uri(uri, path, sizeof(path), &is_shm);
	if (rc)
		return rc;
	if (!is_shm)
		region_forget_volatile(path);
	if (unlink(path) != 0)
		return errno_to_pstm(errno);
	return 0;
}

int pstm_region_info(pstm_region *r, struct pstm_region_info *o)
{
	if (!r || !o)
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
	return 0;
}
