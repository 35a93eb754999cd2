/*
 * uri.h - region names: "shm:NAME" (POSIX shared memory) or a file path.
 */
#ifndef PSTM_URI_H
#define PSTM_URI_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/*
 * The file behind @uri into @path (@n bytes): /dev/shm/NAME for
 * "shm:NAME" (*is_shm true), else the path itself.  PSTM_EINVAL for an
 * empty or malformed name (a '/' or leading '.' in NAME, too long).
 */
HIDDEN int uri_parse(const char *uri, char *path, size_t n, bool *is_shm);

/* The directory part of @path ("." if none) into @out. */
HIDDEN void uri_dir_of(const char *path, char *out, size_t n);

#endif /* PSTM_URI_H */
