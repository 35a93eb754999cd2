/*
 * member.h - a process's side of pstmd (lib/member.c): registering an
 * open region with the daemon, handing a relaxed region's timed flushes
 * to it, asking it to let go of a region before removal.
 */
#ifndef PSTM_MEMBER_H
#define PSTM_MEMBER_H

#include <stdbool.h>
#include <stddef.h>

#include "region.h"

/*
 * Tell pstmd, if one listens, that this process attached to @r (called
 * by pstm_open once attached, before a relaxed region's flush thread
 * starts).  Never fails and never waits: no daemon, PSTM_DAEMON=off, a
 * full socket or any error leaves @r without a link, as if no daemon ran.
 */
HIDDEN void member_register(struct pstm_region *r);
/* Drop the link (pstm_close, after detaching: pstmd then sees the
 * connection close with the entry freed). */
HIDDEN void member_leave(struct pstm_region *r);
/*
 * pstm_unlink found the region open at @fd in use: ask pstmd to let go
 * of it if it is the only process attached (waits at most
 * MEMBER_RELEASE_MS).  True if pstmd answered that it did.
 */
#define MEMBER_RELEASE_MS 500
HIDDEN bool member_release(int fd);
/*
 * pstm_open found the process table of the region open at @fd full:
 * pstmd's own entry may be the one missing, and it lets go of a region
 * whose table is full when asked (waits at most MEMBER_RELEASE_MS).
 * True if pstmd answered (the caller tries once more).
 */
HIDDEN bool member_make_room(int fd);

/*
 * pstm_open("pstmd:@name"): ask pstmd to open region @name of its
 * directory for us (read-write if it grants that, else read-only).
 * 0 with the descriptors pstmd passed in @fds (*nfds: the region file,
 * its runtime companion, a relaxed region's working copy), *write the
 * grant and @path (@n bytes) the region's path; or a PSTM_E* code:
 * pstmd's answer, PSTM_ENOENT with no pstmd, PSTM_EIO after
 * MEMBER_OPEN_MS without an answer.
 */
#define MEMBER_OPEN_MS 5000
HIDDEN int member_open_named(const char *name, int *fds, int *nfds, bool *write,
			     char *path, size_t n);

/*
 * pstm procs: pstmd's view of the region open at @region_fd (what
 * region_inspect shows of each process, and whether pstmd watches it:
 * watched[i] 1 by a pidfd, 2 for pstmd itself), waiting at most
 * MEMBER_ASK_MS.  0; PSTM_ENOENT when no pstmd answers or it does not
 * serve the region; PSTM_EIO, PSTM_ENOMEM.
 */
#define MEMBER_ASK_MS 2000
struct inspect_proc;
struct member_procs {
	struct inspect_proc *procs;
	int *watched;
	uint32_t n;
	uint32_t members;        /* processes pstmd watches */
	uint64_t recoveries;     /* dead ones it recovered, serving this region */
};
HIDDEN int member_procs(int region_fd, struct member_procs *out);
HIDDEN void member_procs_free(struct member_procs *p);

#endif /* PSTM_MEMBER_H */
