/*
 * error.h - mapping system errors onto the PSTM_E* codes (lib/error.c;
 * pstm_strerror is public).
 */
#ifndef PSTM_ERROR_H
#define PSTM_ERROR_H

#include "pstm.h"
#include "util.h"

/* The name of PSTM_E* code @err ("PSTM_ENOENT"; the tools' JSON errors),
 * NULL for a value that is none. */
HIDDEN const char *error_name(int err);

/* The PSTM_E* code for errno value @e (PSTM_EIO when nothing fits). */
HIDDEN int errno_to_pstm(int e);

#endif /* PSTM_ERROR_H */
