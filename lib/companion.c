/*
 * companion.c - the /dev/shm companions of a file region: its runtime
 * segment and, for relaxed regions, its working copy.  Naming, opening
 * with the region file's owner and permissions, the runtime's tail (whose
 * companion it is), read-only mapping for inspection, and removal.
 *
 * A companion is named after the region's uuid *and the identity of the
 * region file* (st_dev, st_ino and, where the filesystem keeps one, the
 * birth time): /dev/shm/pstm.rt.<uuid>.<dev>.<ino>.<btime>.  A copy of a
 * region file (cp, a restored backup, rsync, a VM image) has the same
 * uuid but is another file, so it gets companions of its own and starts
 * from its own bytes, as after a reboot; a region moved with mv stays the
 * same file and keeps its companions, also while processes are attached.
 * Named by the uuid alone, a copy shared its original's locks, process
 * table and (relaxed) working copy: writes to one showed in the other.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "companion.h"

static const char *const kinds[] = {[COMPANION_RUNTIME] = "rt",
				    [COMPANION_WORKCOPY] = "wc"};

int file_identity(int fd, struct file_id *out)
{
	struct statx sx;
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &sx) == 0) {
		out->dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
		out->ino = sx.stx_ino;
		if ((sx.stx_mask & STATX_BTIME) && sx.stx_btime.tv_sec >= 0)
			out->btime_ns = (uint64_t)sx.stx_btime.tv_sec * 1000000000ull +
					sx.stx_btime.tv_nsec;
		return 0;
	}
	if (fstat(fd, &st) != 0)
		return -1;
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	return 0;
}

bool file_id_equal(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->btime_ns == b->btime_ns;
}

void companion_path(const uint8_t uuid[16], const struct file_id *id,
		    enum companion_kind kind, char *out, size_t n)
{
	char hex[33];
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
	snprintf(out, n, "/dev/shm/pstm.%s.%s.%llx.%llx.%llx", kinds[kind], hex,
		 (unsigned long long)id->dev, (unsigned long long)id->ino,
		 (unsigned long long)id->btime_ns);
}

int companion_paths_of(const char *path, char rt[COMPANION_PATH_MAX],
		       char wc[COMPANION_PATH_MAX])
{
	struct superblock sb;
	struct file_id id;
	int rc = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* only magic, uuid and rt_inside are needed: works on a damaged or
	 * truncated region too */
	memset(&sb, 0, sizeof(sb));
	if (pread(fd, &sb, sizeof(sb), 0) >= (ssize_t)offsetof(struct superblock, rt_off) &&
	    memcmp(sb.magic, PSTM_MAGIC, 8) == 0 && sb.rt_inside == 0 &&
	    file_identity(fd, &id) == 0) {
		companion_path(sb.uuid, &id, COMPANION_RUNTIME, rt, COMPANION_PATH_MAX);
		companion_path(sb.uuid, &id, COMPANION_WORKCOPY, wc, COMPANION_PATH_MAX);
		rc = 0;
	}
	close(fd);
	return rc;
}

int companion_open(int region_fd, const char *path, bool create)
{
	struct stat st, now;

	/* a few rounds: each lost one means gc removed the file between our
	 * open and our lock, and the next open makes a new one */
	for (int round = 0; round < 8; round++) {
		int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
		if (fd < 0)
			return -1;
		if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (st.st_nlink > 0 && stat(path, &now) == 0 &&
		    now.st_ino == st.st_ino && now.st_dev == st.st_dev) {
			/* same owner and permissions as the region file */
			if (create && fstat(region_fd, &st) == 0) {
				(void)fchmod(fd, st.st_mode & 0777);
				(void)fchown(fd, st.st_uid, st.st_gid);
			}
			return fd;
		}
		close(fd);
		if (!create) {
			errno = ENOENT;
			return -1;
		}
	}
	errno = EAGAIN;
	return -1;
}

void companion_close(int fd)
{
	flock(fd, LOCK_UN);
	close(fd);
}

void companion_tail_update(int fd, uint64_t off, const struct superblock *sb,
			   const struct file_id *id, const char *region_path)
{
	struct companion_tail *t = calloc(1, sizeof(*t)), *old = malloc(sizeof(*old));
	char abs[PATH_MAX];

	if (!t || !old)
		goto out;
	t->magic = COMPANION_TAIL_MAGIC;
	t->file = *id;
	t->sb = *sb;
	if (!realpath(region_path, abs))
		snprintf(abs, sizeof(abs), "%s", region_path);
	size_t len = strlen(abs);
	if (abs[0] == '/' && len < sizeof(t->path)) {
		memcpy(t->path, abs, len);
		t->path_len = (uint32_t)len;
	}
	if (pread(fd, old, sizeof(*old), (off_t)off) == (ssize_t)sizeof(*old) &&
	    memcmp(old, t, sizeof(*t)) == 0)
		goto out; /* already says so: no write */
	(void)!pwrite(fd, t, sizeof(*t), (off_t)off);
out:
	free(t);
	free(old);
}

int companion_tail_read(int fd, struct companion_tail *t)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size < (off_t)COMPANION_TAIL_BYTES ||
	    pread(fd, t, sizeof(*t), st.st_size - (off_t)COMPANION_TAIL_BYTES) !=
		    (ssize_t)sizeof(*t) ||
	    t->magic != COMPANION_TAIL_MAGIC || t->path_len >= sizeof(t->path))
		return -1;
	t->path[t->path_len] = 0;
	return 0;
}

void *companion_map_ro(const char *path, uint64_t file_bytes, uint64_t map_bytes)
{
	struct stat st;
	void *m = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == file_bytes &&
	    map_bytes <= file_bytes) {
		m = mmap(NULL, map_bytes, PROT_READ, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			m = NULL;
	}
	close(fd);
	return m;
}

void region_forget_volatile(const char *path)
{
	char rt[COMPANION_PATH_MAX], wc[COMPANION_PATH_MAX];
	if (companion_paths_of(path, rt, wc) != 0)
		return;
	unlink(rt);
	unlink(wc);
}
