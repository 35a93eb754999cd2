/*
 * error.c - the error codes' texts and names, and the mapping of system
 * errno values onto them.
 */
#include <errno.h>
#include <string.h>

#include "error.h"

const char *pstm_strerror(int err)
{
	switch (err) {
	case PSTM_OK: return "success";
	case PSTM_EINVAL: return "invalid argument";
	case PSTM_ENOENT: return "region does not exist";
	case PSTM_EEXIST: return "region already exists";
	case PSTM_EACCES: return "permission denied on the region";
	case PSTM_EIO: return "system call failed";
	case PSTM_ENOMEM: return "out of memory";
	case PSTM_EBADMAGIC: return "not a pstm region (bad magic)";
	case PSTM_EVERSION: return "region format is newer than this library";
	case PSTM_ECORRUPT: return "region superblock is corrupt (checksum or layout)";
	case PSTM_ETRUNC: return "region file is truncated";
	case PSTM_ETOOSMALL: return "region size too small for its layout";
	case PSTM_EPROCFULL: return "process table is full";
	case PSTM_ESLOTFULL: return "no free transaction slot (too many threads)";
	case PSTM_ERANGE: return "offset outside the region heap";
	case PSTM_ELOGFULL: return "transaction writes more than the region can log (its redo record does not fit in the heap)";
	case PSTM_EHEAPFULL: return "region heap (or device) is full";
	case PSTM_EINTX: return "not allowed inside a transaction";
	case PSTM_EBUSY: return "busy: processes are attached to the region, or a pstm_run is already active in this process";
	case PSTM_ECANCELED: return "transaction cancelled";
	case PSTM_ENOTX: return "only allowed inside a transaction";
	case PSTM_ECLOCK: return "version clock exhausted";
	case PSTM_EEMPTY: return "region file is empty";
	case PSTM_ECONFLICT: return "transaction attempt lost a conflict and was rolled back (run it again)";
	case PSTM_ERUNTIME: return "runtime segment of the region vanished while processes are attached";
	case PSTM_EUNREGISTERED: return "only tasks of types no running process has registered are left";
	case PSTM_ETYPESFULL: return "the region's table of task types is full";
	case PSTM_EREPLACED: return "the region file was overwritten in place (a copy restored over it) while processes are attached: close them, then open it again";
	default:
		if (err > 0)
			return strerror(err);
		return "unknown pstm error";
	}
}

/* a new code needs its text above and its name below */
_Static_assert(PSTM_ERR_LAST == PSTM_EREPLACED, "PSTM_E* codes without text or name");

const char *error_name(int err)
{
#define NAME(code) case code: return #code
	switch (err) {
	NAME(PSTM_OK);
	NAME(PSTM_EINVAL);
	NAME(PSTM_ENOENT);
	NAME(PSTM_EEXIST);
	NAME(PSTM_EACCES);
	NAME(PSTM_EIO);
	NAME(PSTM_ENOMEM);
	NAME(PSTM_EBADMAGIC);
	NAME(PSTM_EVERSION);
	NAME(PSTM_ECORRUPT);
	NAME(PSTM_ETRUNC);
	NAME(PSTM_ETOOSMALL);
	NAME(PSTM_EPROCFULL);
	NAME(PSTM_ESLOTFULL);
	NAME(PSTM_ERANGE);
	NAME(PSTM_ELOGFULL);
	NAME(PSTM_EHEAPFULL);
	NAME(PSTM_EINTX);
	NAME(PSTM_EBUSY);
	NAME(PSTM_ECANCELED);
	NAME(PSTM_ENOTX);
	NAME(PSTM_ECLOCK);
	NAME(PSTM_EEMPTY);
	NAME(PSTM_ERUNTIME);
	NAME(PSTM_ECONFLICT);
	NAME(PSTM_EUNREGISTERED);
	NAME(PSTM_ETYPESFULL);
	NAME(PSTM_EREPLACED);
	default: return NULL;
	}
#undef NAME
}

int errno_to_pstm(int e)
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
