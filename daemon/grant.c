/*
 * grant.c - opening a region of pstmd's directory for a client:
 * pstm_open("pstmd:NAME").
 *
 * The directory (cfg.directory, e.g. /var/lib/pstm, mode 0700) may be
 * one only pstmd can enter.  A client names a region; pstmd decides from
 * the peer's SO_PEERCRED uid and groups (SO_PEERGROUPS) what it may do:
 *
 *  - root: read-write;
 *  - if grant lines of the configuration name this region (or "*"),
 *    they alone decide: the best grant among those matching the uid,
 *    one of the groups, or anyone;
 *  - otherwise the file's owner, group and mode, as open(2) would.
 *
 * The grant is the lesser of that and what the client asked for.  pstmd
 * serves the region (opens and attaches to it, so its runtime is there;
 * in a thread of its own, daemon/opening.c, when it does not serve it
 * yet: grant_done replies once that is done), then passes, with
 * SCM_RIGHTS, the region file opened read-write or read-only, its
 * runtime companion and a relaxed region's working copy (each like the
 * file).  A read-only client maps all three PROT_READ, attaches nothing
 * (no process entry, no slot) and runs only read-only transactions that
 * store no shared word (docs/design.md, "pstmd").
 *
 * A name is one path component: no '/', no leading '.', so no "..", no
 * hidden file, nothing outside the directory; and the file is opened
 * without following a symbolic link.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pstmd.h"
#include "region.h"

#define MAX_GROUPS 256

bool grant_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 200 || name[0] == '.' || strchr(name, '/'))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

static bool in_groups(const gid_t *g, int n, uint32_t id)
{
	for (int i = 0; i < n; i++)
		if (g[i] == id)
			return true;
	return false;
}

/* What the configuration's grants allow: -1 none of them names @name;
 * else 0 nothing, 1 read, 2 read-write. */
static int by_rules(const struct pstmd_config *cfg, const char *name, uid_t uid,
		    const gid_t *g, int ng)
{
	int best = -1;
	for (unsigned i = 0; i < cfg->ngrants; i++) {
		const struct grant_rule *r = &cfg->grants[i];
		if (strcmp(r->name, "*") != 0 && strcmp(r->name, name) != 0)
			continue;
		if (best < 0)
			best = 0;
		bool match = r->any || (r->is_group ? in_groups(g, ng, r->id) : r->id == uid);
		if (match && (r->write ? 2 : 1) > best)
			best = r->write ? 2 : 1;
	}
	return best;
}

/* What the file's owner, group and mode allow: 0, 1 read, 2 read-write. */
static int by_mode(const struct stat *st, uid_t uid, const gid_t *g, int ng)
{
	unsigned bits = st->st_uid == uid               ? (st->st_mode >> 6) & 7
			: in_groups(g, ng, st->st_gid) ? (st->st_mode >> 3) & 7
						       : st->st_mode & 7;
	return (bits & 6) == 6 ? 2 : (bits & 4) ? 1 : 0;
}

void grant_open(struct pstmd *d, struct conn *c, const struct wire_msg *m)
{
	const char *name = m->s[WT_NAME];
	char path[PATH_MAX];
	gid_t groups[MAX_GROUPS];
	struct stat st;
	uid_t uid;

	if (!grant_name_ok(name)) {
		conn_error(c, m->id, PSTM_EINVAL, "open: '%s' is no region name "
			   "(one file name: no '/', no leading '.')", name);
		return;
	}
	if (!d->cfg.directory[0]) {
		conn_error(c, m->id, PSTM_ENOENT, "open: pstmd has no region directory");
		return;
	}
	int w = snprintf(path, sizeof(path), "%s/%s", d->cfg.directory, name);
	if (w < 0 || (size_t)w >= sizeof(path)) {
		conn_error(c, m->id, PSTM_EINVAL, "open: name too long");
		return;
	}
	conn_peer(c, NULL, &uid, NULL);
	int ng = conn_peer_groups(c, groups, MAX_GROUPS);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		conn_error(c, m->id, PSTM_ENOENT, "open: no region '%s'", name);
		return;
	}
	close(fd);
	int may = uid == 0 ? 2 : by_rules(&d->cfg, name, uid, groups, ng);
	if (may < 0)
		may = by_mode(&st, uid, groups, ng);
	int want = m->u[WT_WRITE] ? 2 : 1;
	int got = may < want ? may : want;
	if (got == 0) {
		pstmd_log("open %s: uid %u denied", name, (unsigned)uid);
		conn_error(c, m->id, PSTM_EACCES, "open: '%s': permission denied", name);
		return;
	}
	struct grant_req q = {.id = m->id, .got = got, .uid = uid};
	snprintf(q.name, sizeof(q.name), "%s", name);
	snprintf(q.path, sizeof(q.path), "%s", path);
	registry_serve_path(d, c, &q);
}

void grant_done(struct pstmd *d, struct conn *c, const struct grant_req *q,
		struct pstm_region *r, int err)
{
	int fds[WIRE_MAX_FDS] = {-1, -1, -1}, nfds = 0;
	(void)d;
	if (!r) {
		if (err == PSTM_EBUSY)
			conn_error(c, q->id, err, "open: '%s': pstmd could not open it within "
				   "2 s (another process holds its runtime's lock)", q->name);
		else
			conn_error(c, q->id, err, "open: '%s': %s", q->name, pstm_strerror(err));
		return;
	}
	if (r->sb.rt_inside) { /* not a file region: nothing to grant apart */
		conn_error(c, q->id, PSTM_EINVAL, "open: '%s' is not a file region", q->name);
		return;
	}
	int mode = (q->got == 2 ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC;
	fds[nfds++] = open(q->path, mode);
	fds[nfds++] = open(r->rt_path, mode); /* read-only grants: too */
	if (r->relaxed)
		fds[nfds++] = open(r->wc_path, mode);
	for (int i = 0; i < nfds; i++)
		if (fds[i] < 0) {
			err = errno;
			wire_close_fds(fds, nfds);
			conn_error(c, q->id, PSTM_EIO, "open: '%s': %s", q->name, strerror(err));
			return;
		}
	struct wire_buf wb;
	wire_begin(&wb, WIRE_GRANT, q->id);
	wire_u32(&wb, WT_WRITE, q->got == 2);
	wire_str(&wb, WT_PATH, q->path);
	conn_send(c, &wb, fds, nfds);
	wire_close_fds(fds, nfds);
	pstmd_log("open %s: uid %u granted %s", q->name, (unsigned)q->uid,
		  q->got == 2 ? "read-write" : "read-only");
}
