/*
 * version.c - pstm_version(): the release this library was built as,
 * from the macros of pstm.h (the one version source).
 */
#include "pstm.h"

#define STR(x) #x
#define VERSION_STR(a, b, c) STR(a) "." STR(b) "." STR(c)

const char *pstm_version(void)
{
	return VERSION_STR(PSTM_VERSION_MAJOR, PSTM_VERSION_MINOR,
			   PSTM_VERSION_PATCH);
}
