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

/* /dev/shm/pstm.<kind>.<uuid hex> into @out. */
HIDDEN void companion_path(const uint8_t uuid[16], enum companion_kind kind,
			   char *out, size_t n);

/* Open companion @path read-write (creating it if @create, then with the
 * owner and permissions of the region file @region_fd); -1 and errno. */
HIDDEN int companion_open(int region_fd, const char *path, bool create);

/* Map companion @path read-only if it exists with exactly @size bytes;
 * NULL otherwise. */
HIDDEN void *companion_map_ro(const char *path, uint64_t size);

/* Remove the companions of the file region at @path, if any: what a
 * power failure does to them.  Works on damaged or truncated regions. */
HIDDEN void region_forget_volatile(const char *path);

#endif /* PSTM_COMPANION_H */
