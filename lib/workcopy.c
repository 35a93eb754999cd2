/*
 * workcopy.c - a relaxed region's working copy: /dev/shm/pstm.wc.<uuid>.
 * <file identity> (lib/companion.c), a full image of the region on which
 * every transaction runs; the file behind it is written only by the
 * flusher (lib/flush.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "companion.h"
#include "error.h"
#include "workcopy.h"

int workcopy_attach(struct pstm_region *r, bool build)
{
	struct stat st;
	int rc = 0;

	companion_path(r->sb.uuid, &r->file, COMPANION_WORKCOPY, r->wc_path,
		       sizeof(r->wc_path));
	int fd = companion_open(r->fd, r->wc_path, build);
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
	companion_close(fd);
	return rc;
}
