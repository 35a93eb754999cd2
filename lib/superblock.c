/*
 * superblock.c - the region's superblock: the layout computed from the
 * creation parameters, building a superblock from pstm_create_opts, and
 * validating one read from a file before anything is mapped.
 *
 * Validation order: magic (PSTM_EBADMAGIC), crc (PSTM_ECORRUPT), version
 * (PSTM_EVERSION -- after the crc, so a flipped bit reads as corruption,
 * not as a future version; formats PSTM_FORMAT_MIN to PSTM_FORMAT_VERSION
 * open, each with its own layout), parameter ranges and a recomputed layout
 * (PSTM_ECORRUPT), file size (PSTM_ETRUNC, PSTM_EEMPTY).
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "superblock.h"
#include "testing.h"

uint64_t rt_orecs_end(uint32_t max_procs, uint32_t max_slots,
		      uint32_t orecs_log2)
{
	uint64_t n = sizeof(struct rt_header);
	n += (uint64_t)max_procs * sizeof(struct proc_entry);
	n += (uint64_t)max_slots * sizeof(struct slot);
	n = align_up(n, CACHELINE);
	return n + ((uint64_t)8 << orecs_log2);
}

uint64_t rt_bytes_for(const struct superblock *sb)
{
	uint64_t n = rt_orecs_end(sb->max_procs, sb->max_slots, sb->orecs_log2);
	/* format 2: the conflict tables after the orecs (format 1 regions
	 * keep the size they were made with) */
	if (sb->version >= PSTM_FORMAT_CONFLICTS)
		n += (uint64_t)sb->max_slots *
		     conflict_slot_bytes(conflict_entries_for(sb->size_bytes,
							      sb->max_slots));
	return align_up(n, PAGE);
}

/* Fill the layout fields of @sb from its parameters; PSTM_ETOOSMALL if the
 * heap would be too small.  Also the open-time consistency check. */
int layout_compute(struct superblock *sb)
{
	uint64_t off = PAGE;
	sb->rt_bytes = rt_bytes_for(sb);
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
	/* older formats this library still opens as they are */
	if (sb->version < PSTM_FORMAT_MIN)
		return PSTM_ECORRUPT;
	if (sb->durability != PSTM_VOLATILE && sb->durability != PSTM_DURABLE &&
	    sb->durability != PSTM_RELAXED)
		return PSTM_ECORRUPT;
	if (sb->durability == PSTM_RELAXED
		    ? sb->flush_ms < 1 || sb->flush_ms > SB_MAX_FLUSH_MS || sb->rt_inside
		    : sb->flush_ms != 0)
		return PSTM_ECORRUPT;
	if (sb->max_procs < 1 || sb->max_procs > SB_MAX_PROCS || sb->max_slots < 1 ||
	    sb->max_slots > SB_MAX_THREADS || sb->log_bytes < SB_MIN_LOG_BYTES ||
	    sb->log_bytes > SB_MAX_LOG_BYTES || sb->log_bytes % CACHELINE ||
	    sb->orecs_log2 < SB_MIN_ORECS_LOG2 || sb->orecs_log2 > SB_MAX_ORECS_LOG2 ||
	    sb->rt_inside > 1 ||
	    sb->size_bytes < SB_MIN_SIZE || sb->size_bytes > SB_MAX_SIZE ||
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

int superblock_read(int fd, struct superblock *sb)
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

int superblock_from_opts(const struct pstm_create_opts *o, bool is_shm,
		      struct superblock *sb)
{
	struct pstm_create_opts d = {0};
	struct timespec ts;

	if (o)
		d = *o;
	memset(sb, 0, sizeof(*sb));
	memcpy(sb->magic, PSTM_MAGIC, 8);
	sb->version = TESTING_FORMAT_VERSION(PSTM_FORMAT_VERSION);
	sb->sb_bytes = sizeof(*sb);
	sb->size_bytes = d.size_bytes ? d.size_bytes : SB_DEF_SIZE;
	if (sb->size_bytes < SB_MIN_SIZE)
		return PSTM_ETOOSMALL;
	if (sb->size_bytes > SB_MAX_SIZE)
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
		sb->flush_ms = d.flush_ms ? d.flush_ms : SB_DEF_FLUSH_MS;
		if (sb->flush_ms > SB_MAX_FLUSH_MS)
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
	uint64_t lb = sb->size_bytes >= SB_DEF_SIZE
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
	if (sb->max_procs > SB_MAX_PROCS || sb->max_slots > SB_MAX_THREADS ||
	    sb->log_bytes < SB_MIN_LOG_BYTES || sb->log_bytes > SB_MAX_LOG_BYTES ||
	    sb->orecs_log2 < SB_MIN_ORECS_LOG2 || sb->orecs_log2 > SB_MAX_ORECS_LOG2)
		return PSTM_EINVAL;
	sb->log_bytes = (uint32_t)align_up(sb->log_bytes, CACHELINE);
	if (sb->max_slots < sb->max_procs)
		sb->max_slots = sb->max_procs;
	if (sb->max_slots > SB_MAX_THREADS)
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
