/*
 * companion.c - the /dev/shm companions of a file region: its runtime
 * segment (pstm.rt.<uuid>) and, for relaxed regions, its working copy
 * (pstm.wc.<uuid>).  Naming, opening with the region file's owner and
 * permissions, read-only mapping for inspection, and removal.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "companion.h"

static const char *const kinds[] = {[COMPANION_RUNTIME] = "rt",
				    [COMPANION_WORKCOPY] = "wc"};

void companion_path(const uint8_t uuid[16], enum companion_kind kind,
		    char *out, size_t n)
{
	char hex[33];
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", uuid[i]);
	snprintf(out, n, "/dev/shm/pstm.%s.%s", kinds[kind], hex);
}

int companion_open(int region_fd, const char *path, bool create)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return -1;
	/* same owner and permissions as the region file itself */
	if (create && fstat(region_fd, &st) == 0) {
		(void)fchmod(fd, st.st_mode & 0777);
		(void)fchown(fd, st.st_uid, st.st_gid);
	}
	return fd;
}

void *companion_map_ro(const char *path, uint64_t size)
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
		companion_path(sb.uuid, COMPANION_RUNTIME, rt, sizeof(rt));
		unlink(rt);
		companion_path(sb.uuid, COMPANION_WORKCOPY, rt, sizeof(rt));
		unlink(rt);
	}
	close(fd);
}
