/*
 * companion.h - the /dev/shm companions of a file region (lib/companion.c).
 */
#ifndef PSTM_COMPANION_H
#define PSTM_COMPANION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "util.h"

enum companion_kind { COMPANION_RUNTIME, COMPANION_WORKCOPY };

/* The identity of the file open at @fd (statx; st_dev and st_ino alone
 * where there is no birth time).  0, or -1 and errno. */
HIDDEN int file_identity(int fd, struct file_id *out);
HIDDEN bool file_id_equal(const struct file_id *a, const struct file_id *b);

/* /dev/shm/pstm.<kind>.<uuid hex>.<dev>.<ino>.<btime> (hex) into @out
 * (COMPANION_PATH_MAX bytes are enough). */
HIDDEN void companion_path(const uint8_t uuid[16], const struct file_id *id,
			   enum companion_kind kind, char *out, size_t n);

/* The companion names of the file region at @path (uuid from its
 * superblock, identity from the file), whether or not they exist; works
 * on damaged or truncated regions (only the magic and the uuid are
 * read).  -1 if @path is no file region (missing, no magic, shm). */
HIDDEN int companion_paths_of(const char *path, char rt[COMPANION_PATH_MAX],
			      char wc[COMPANION_PATH_MAX]);

/*
 * Open companion @path read-write (creating it if @create, then with the
 * owner and permissions of the region file @region_fd) and flock it
 * (LOCK_EX), making sure the name still leads to the file once the lock
 * is held: pstm gc removes a companion only while it holds that lock, so
 * the caller may build or update it undisturbed.  Release it with
 * companion_close (a mapping of the file would keep a plain close()'s
 * lock alive).  -1 and errno.
 */
HIDDEN int companion_open(int region_fd, const char *path, bool create);
HIDDEN void companion_close(int fd);

/* Record @region_path (made absolute), @id and @sb in the tail of the
 * runtime companion @fd at offset @off, unless it holds them already. */
HIDDEN void companion_tail_update(int fd, uint64_t off,
				  const struct superblock *sb,
				  const struct file_id *id,
				  const char *region_path);
/* The tail of the runtime companion @fd (the last COMPANION_TAIL_BYTES of
 * the file); -1 if there is none (too short, bad magic). */
HIDDEN int companion_tail_read(int fd, struct companion_tail *t);

/* Map the first @map_bytes of companion @path read-only if the file has
 * exactly @file_bytes; NULL otherwise. */
HIDDEN void *companion_map_ro(const char *path, uint64_t file_bytes,
			      uint64_t map_bytes);

/* Remove the companions of the file region at @path, if any: what a
 * power failure does to them.  Works on damaged or truncated regions. */
HIDDEN void region_forget_volatile(const char *path);

#endif /* PSTM_COMPANION_H */
