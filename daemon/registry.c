/*
 * registry.c - the regions pstmd serves and their members.  (About 840
 * lines: serving, recovering, re-adopting after a restart and the opens
 * still pending all walk the same region and member records, kept here
 * in one place.)
 *
 * pstmd serves a region while processes are attached to it: it opens it
 * itself (pstm_open, so it is attached too and its process entry keeps
 * the runtime from being rebuilt under it), and holds a pidfd of every
 * live process in its table in the epoll set.  When one dies the pidfd
 * becomes readable and pstmd recovers that process at once
 * (proc_recover_entry, the library's own recovery: one CAS on the entry
 * decides between pstmd and a survivor that met a lock first), so no
 * survivor has to meet the dead process's locks.  A relaxed region's
 * handle runs the library's flush thread: pstmd is then the region's
 * flusher, and says so to each member (WIRE_FLUSHER).
 *
 * Members come from REGISTER (checked against the process table: the
 * peer's pid must own the entry it names, and the region file it sent
 * must be the file the URI names) and from the table itself, looked at
 * when a region is first served and once a second: processes that
 * attached without registering (PSTM_DAEMON=off, or while no pstmd ran)
 * are watched too, and members whose entry changed have left.  When the
 * last one has left pstmd closes the region.
 *
 * pstmd opens a region it does not serve yet in a thread of its own
 * (daemon/opening.c): pstm_open may wait for the region's flock, and the
 * loop must not.  Until it is open the region is pending, with the
 * requests that wait for it (REGISTER, OPEN, an adoption); the loop
 * answers them when the open is done.
 *
 * The registry survives nothing but the list of served regions' URIs in
 * the state file (cfg.state): a restarted pstmd opens those that still
 * have live processes and takes its members from their process tables.
 * Members need not know: they never depend on pstmd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "companion.h"
#include "inspect.h"
#include "proc.h"
#include "pstmd.h"
#include "recovery.h"
#include "region.h"
#include "uri.h"

#define SWEEP_MS 1000        /* look at every process table */
#define RETRY_FAST_MS 1      /* a dead member that still looked alive */
#define RETRY_FAST_TRIES 200
#define RETRY_SLOW_MS 100
#define MAX_REGIONS 1024     /* served and pending */

struct member {
	struct member *next;
	struct dregion *reg;
	uint32_t entry;          /* in the region's process table */
	uint64_t state;          /* the entry's state word while it is this
				    process's */
	pid_t pid;
	int pidfd;
	bool in_loop;            /* pidfd watched (not while a retry waits) */
	struct conn *conn;       /* its registration, or NULL (adopted) */
	uint64_t retry_ms;       /* 0, or when to try recovering again */
	unsigned tries;
};

struct dregion {
	struct dregion *next;
	struct pstmd *d;
	char uri[PATH_MAX];
	struct file_id id;
	pstm_region *r;
	struct member *members;
	unsigned nmembers;
	uint64_t recoveries;     /* by pstmd */
};

/* A request waiting for a pending region. */
enum wait_kind { WAIT_REGISTER, WAIT_GRANT, WAIT_ADOPT };
struct waiter {
	struct waiter *next;
	enum wait_kind kind;
	struct conn *c;          /* NULL once it closed (and for adoption) */
	uint32_t msg_id;         /* REGISTER: the request's id, entry, state */
	uint64_t entry, state;
	struct grant_req q;      /* OPEN */
};

/* A region pstmd is opening (daemon/opening.c). */
struct pending {
	struct pending *next;
	char uri[PATH_MAX];
	struct file_id id;       /* the file it must turn out to be */
	struct waiter *waiters;
};

static uint64_t next_sweep_ms;
static struct pending *pendings;

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static struct dregion *find_region(struct pstmd *d, const struct file_id *id)
{
	for (struct dregion *g = d->regions; g; g = g->next)
		if (file_id_equal(&g->id, id))
			return g;
	return NULL;
}

static struct member *find_member(struct dregion *g, uint32_t entry)
{
	for (struct member *m = g->members; m; m = m->next)
		if (m->entry == entry)
			return m;
	return NULL;
}

/* The list of served regions, for a restarted pstmd: written whole to a
 * temporary file, then renamed over the old one. */
static void save_state(struct pstmd *d)
{
	char tmp[PATH_MAX + 8];
	if (!d->cfg.state[0])
		return;
	snprintf(tmp, sizeof(tmp), "%s.new", d->cfg.state);
	FILE *f = fopen(tmp, "we");
	if (!f) {
		pstmd_log("state file %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f, "# pstmd %s: regions served (dev ino btime uri)\n", pstm_version());
	for (struct dregion *g = d->regions; g; g = g->next)
		fprintf(f, "%" PRIx64 " %" PRIx64 " %" PRIx64 " %s\n", g->id.dev,
			g->id.ino, g->id.btime_ns, g->uri);
	for (struct pending *p = pendings; p; p = p->next) /* being opened */
		fprintf(f, "%" PRIx64 " %" PRIx64 " %" PRIx64 " %s\n", p->id.dev,
			p->id.ino, p->id.btime_ns, p->uri);
	if (fclose(f) != 0 || rename(tmp, d->cfg.state) != 0) {
		pstmd_log("state file %s: %s", d->cfg.state, strerror(errno));
		unlink(tmp);
	}
}

static void on_exit_event(struct loop *l, int fd, uint32_t events, void *arg);

static void untrack(struct pstmd *d, struct member *m)
{
	struct dregion *g = m->reg;
	for (struct member **pp = &g->members; *pp; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	if (m->in_loop)
		loop_del(d->loop, m->pidfd);
	close(m->pidfd);
	if (m->conn)
		conn_set_member(m->conn, NULL);
	g->nmembers--;
	d->nmembers--;
	free(m);
}

static uint64_t own_recoveries(struct pstm_region *r)
{
	return atomic_load_explicit(&r->procs[r->proc_idx].stats[ST_RECOVERIES],
				    memory_order_relaxed);
}

/* proc_recover_entry, counted when it was pstmd that recovered */
static void recover_entry(struct pstmd *d, struct dregion *g, uint32_t entry)
{
	uint64_t before = own_recoveries(g->r);
	proc_recover_entry(g->r, entry);
	uint64_t n = own_recoveries(g->r) - before;
	d->recoveries += n;
	g->recoveries += n;
}

/*
 * Watch process @pid, which owns entry @entry (state word @state) of
 * @g's table.  NULL if it is not (or no longer) so; a process found dead
 * on the way is recovered.
 */
static struct member *track(struct pstmd *d, struct dregion *g, uint32_t entry,
			    uint64_t state, pid_t pid, struct conn *c)
{
	struct pstm_region *r = g->r;
	struct proc_entry *e = &r->procs[entry];
	int fd = pidfd_open_(pid);
	if (fd < 0) {
		if (errno == ESRCH)
			recover_entry(d, g, entry); /* died already */
		return NULL;
	}
	/* the pidfd names whatever process has the pid now: the entry's
	 * only if it started when the entry says (a reused pid did not) */
	bool zombie;
	uint64_t start = proc_start_ticks(pid, &zombie);
	if (atomic_load(&e->state) != state || atomic_load(&e->pid) != (uint64_t)pid ||
	    start != atomic_load(&e->start_ticks)) {
		close(fd);
		if (start == 0 || zombie)
			recover_entry(d, g, entry);
		return NULL;
	}
	struct member *m = calloc(1, sizeof(*m));
	if (!m) {
		close(fd);
		return NULL;
	}
	m->reg = g;
	m->entry = entry;
	m->state = state;
	m->pid = pid;
	m->pidfd = fd;
	m->conn = c;
	if (loop_add(d->loop, fd, EPOLLIN, on_exit_event, m) != 0) {
		close(fd);
		free(m);
		return NULL;
	}
	m->in_loop = true;
	m->next = g->members;
	g->members = m;
	g->nmembers++;
	d->nmembers++;
	return m;
}

static void maybe_drop(struct pstmd *d, struct dregion *g);

/* Member @m's process is dead (its pidfd said so): recover it now. */
static void recover(struct pstmd *d, struct member *m)
{
	struct dregion *g = m->reg;
	struct pstm_region *r = g->r;

	recover_entry(d, g, m->entry);
	if (atomic_load_explicit(&r->procs[m->entry].state, memory_order_acquire) !=
	    m->state) {
		/* freed: by us, or by a survivor that met a lock first */
		untrack(d, m);
		maybe_drop(d, g);
		return;
	}
	/* still looks alive (its last thread not gone yet): soon again */
	if (m->in_loop) {
		loop_del(d->loop, m->pidfd);
		m->in_loop = false;
	}
	m->tries++;
	m->retry_ms = pstmd_now_ms() +
		      (m->tries < RETRY_FAST_TRIES ? RETRY_FAST_MS : RETRY_SLOW_MS);
}

static void on_exit_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	(void)l;
	(void)fd;
	(void)events;
	struct member *m = arg;
	recover(m->reg->d, m);
}

/*
 * Look at @g's process table: watch every live process not watched yet,
 * forget members whose entry changed (they detached, or someone
 * recovered them), take over recoveries whose recoverer died.
 */
static void adopt_entries(struct pstmd *d, struct dregion *g)
{
	struct pstm_region *r = g->r;
	struct member *m = g->members;
	while (m) {
		struct member *n = m->next;
		if (atomic_load(&r->procs[m->entry].state) != m->state)
			untrack(d, m);
		m = n;
	}
	for (uint32_t p = 0; p < r->sb.max_procs; p++) {
		uint64_t ps = atomic_load_explicit(&r->procs[p].state,
						   memory_order_acquire);
		if (p == r->proc_idx || PROC_ST(ps) == PROC_FREE)
			continue;
		if (PROC_ST(ps) == PROC_RECOVERING) {
			recover_entry(d, g, p);
			continue;
		}
		if (PROC_ST(ps) != PROC_ALIVE)
			continue; /* damage: pstm check's to report */
		m = find_member(g, p);
		if (m && m->state == ps)
			continue;
		if (m)
			untrack(d, m);
		track(d, g, p, ps, (pid_t)atomic_load(&r->procs[p].pid), NULL);
	}
}

static void drop_region(struct pstmd *d, struct dregion *g)
{
	while (g->members)
		untrack(d, g->members);
	for (struct dregion **pp = &d->regions; *pp; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	d->nregions--;
	int rc = pstm_close(g->r); /* relaxed: flushes what is left */
	if (rc)
		pstmd_log("%s: close: %s", g->uri, pstm_strerror(rc));
	free(g);
	if (!d->stop) /* stopping: a restart adopts them again */
		save_state(d);
}

/* A region whose last member left: look once more, then let go. */
static void maybe_drop(struct pstmd *d, struct dregion *g)
{
	if (g->nmembers == 0)
		adopt_entries(d, g);
	if (g->nmembers == 0)
		drop_region(d, g);
}

static uint32_t free_entries(struct pstm_region *r)
{
	uint32_t n = 0;
	for (uint32_t p = 0; p < r->sb.max_procs; p++)
		n += PROC_ST(atomic_load(&r->procs[p].state)) == PROC_FREE;
	return n;
}

/* Serve @r, just opened for @uri: its file must be @id.  Never with the
 * last free entry of its process table: that one stays for a process
 * that could have had it without pstmd.  NULL with *err (@r closed). */
static struct dregion *serve(struct pstmd *d, const char *uri, const struct file_id *id,
			     struct pstm_region *r, int *err)
{
	struct dregion *g = calloc(1, sizeof(*g));
	if (!g) {
		pstm_close(r);
		*err = PSTM_ENOMEM;
		return NULL;
	}
	snprintf(g->uri, sizeof(g->uri), "%s", uri);
	g->d = d;
	g->r = r;
	g->id = g->r->file;
	*err = 0;
	if (free_entries(g->r) == 0)
		*err = PSTM_EPROCFULL;
	else if (!file_id_equal(id, &g->id))
		*err = PSTM_ENOENT; /* the name led elsewhere meanwhile */
	else if (find_region(d, id))
		*err = PSTM_EEXIST; /* cannot be: one pending open per file */
	if (*err) {
		pstm_close(g->r);
		free(g);
		return NULL;
	}
	struct open_recovery rec; /* dead processes its open recovered */
	region_open_recovery(g->r, &rec);
	d->recoveries += rec.procs_recovered;
	g->recoveries += rec.procs_recovered;
	g->next = d->regions;
	d->regions = g;
	d->nregions++;
	adopt_entries(d, g);
	return g;
}

static void register_member(struct pstmd *d, struct conn *c, struct dregion *g,
			    uint32_t msg_id, uint64_t entry, uint64_t state);

static struct pending *find_pending(const struct file_id *id)
{
	for (struct pending *p = pendings; p; p = p->next)
		if (file_id_equal(&p->id, id))
			return p;
	return NULL;
}

/* What the waiting requests get: @g served (it may go meanwhile: looked
 * up again by @id), or @err. */
static void answer(struct pstmd *d, struct waiter *w, const char *uri,
		   const struct file_id *id, int err)
{
	struct dregion *g = err ? NULL : find_region(d, id);
	if (!err && !g)
		err = PSTM_ENOENT; /* let go of already */
	if (w->c)
		conn_set_waiting(w->c, false);
	switch (w->kind) {
	case WAIT_REGISTER:
		if (!w->c)
			break;
		if (g)
			register_member(d, w->c, g, w->msg_id, w->entry, w->state);
		else
			conn_error(w->c, w->msg_id, err, "register: %s: %s", uri,
				   pstm_strerror(err));
		break;
	case WAIT_GRANT:
		if (w->c)
			grant_done(d, w->c, &w->q, g ? g->r : NULL, err);
		break;
	case WAIT_ADOPT:
		if (g)
			pstmd_log("adopted %s: %u live processes", uri, g->nmembers);
		else
			pstmd_log("adopting %s: %s", uri, pstm_strerror(err));
		if (g)
			maybe_drop(d, g);
		break;
	}
}

/* opening.c: pstmd's open of pending region @arg is done. */
static void opened(struct pstmd *d, void *arg, struct pstm_region *r, int err)
{
	struct pending *p = arg;
	for (struct pending **pp = &pendings; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	d->npending--;
	if (r && d->stop) { /* stopping: a restart adopts it */
		pstm_close(r);
		r = NULL;
		err = PSTM_ENOENT;
	}
	if (r && serve(d, p->uri, &p->id, r, &err))
		pstmd_log("serving %s", p->uri);
	else
		pstmd_log("cannot serve %s: %s", p->uri, pstm_strerror(err));
	if (!d->stop)
		save_state(d); /* without it, if it failed */
	/* grants first: a register that fails may let go of the region */
	for (int pass = 0; pass < 2; pass++)
		for (struct waiter *w = p->waiters; w; w = w->next)
			if ((w->kind == WAIT_GRANT) == (pass == 0))
				answer(d, w, p->uri, &p->id, err);
	while (p->waiters) {
		struct waiter *w = p->waiters;
		p->waiters = w->next;
		free(w);
	}
	free(p);
}

/*
 * Serve @uri, whose file is @id, for @w (which this takes): at once if
 * pstmd serves it, else once its open in a thread of its own is done
 * (joining an open of it in progress).
 */
static void serve_for(struct pstmd *d, const char *uri, const struct file_id *id,
		      struct waiter *w)
{
	int err = 0;
	if (find_region(d, id)) {
		answer(d, w, uri, id, 0);
		free(w);
		return;
	}
	struct pending *p = find_pending(id);
	if (!p) {
		if (d->nregions + d->npending >= MAX_REGIONS) {
			err = PSTM_EBUSY;
		} else if (!(p = calloc(1, sizeof(*p)))) {
			err = PSTM_ENOMEM;
		} else {
			snprintf(p->uri, sizeof(p->uri), "%s", uri);
			p->id = *id;
			err = opening_start(d, uri, opened, p);
			if (err) {
				free(p);
				p = NULL;
			} else {
				p->next = pendings;
				pendings = p;
				d->npending++;
			}
		}
	}
	if (!p) {
		pstmd_log("cannot serve %s: %s", uri, pstm_strerror(err));
		answer(d, w, uri, id, err);
		free(w);
		return;
	}
	if (w->c)
		conn_set_waiting(w->c, true);
	w->next = p->waiters;
	p->waiters = w;
}

void registry_conn_closed(struct pstmd *d, struct conn *c)
{
	(void)d;
	for (struct pending *p = pendings; p; p = p->next)
		for (struct waiter *w = p->waiters; w; w = w->next)
			if (w->c == c)
				w->c = NULL;
}

/* The identity of the regular file @fd; -1 if it is none. */
static int fd_identity(int fd, struct file_id *id)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return -1;
	return file_identity(fd, id);
}

/* Does @uri name the file @id?  Opened without following a final
 * symbolic link and without blocking on whatever it is. */
static bool uri_names(const char *uri, const struct file_id *id)
{
	char path[PATH_MAX];
	bool is_shm;
	struct file_id got;
	if (uri_parse(uri, path, sizeof(path), &is_shm) != 0 ||
	    (!is_shm && path[0] != '/'))
		return false;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool same = fd_identity(fd, &got) == 0 && file_id_equal(&got, id);
	close(fd);
	return same;
}

void registry_register(struct pstmd *d, struct conn *c, const struct wire_msg *m,
		       int fd)
{
	struct file_id id, claimed;

	memcpy(&claimed, m->b[WT_FILE_ID], sizeof(claimed));
	if (fd_identity(fd, &id) != 0 || !file_id_equal(&id, &claimed)) {
		conn_error(c, m->id, PSTM_EINVAL, "register: the descriptor is not the region file named");
		return;
	}
	if (!find_region(d, &id) && !find_pending(&id) && !uri_names(m->s[WT_PATH], &id)) {
		conn_error(c, m->id, PSTM_EINVAL, "register: %s does not name the file sent",
			   m->s[WT_PATH]);
		return;
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		conn_error(c, m->id, PSTM_ENOMEM, "register: out of memory");
		return;
	}
	w->kind = WAIT_REGISTER;
	w->c = c;
	w->msg_id = m->id;
	w->entry = m->u[WT_PROC_IDX];
	w->state = m->u[WT_PROC_STATE];
	serve_for(d, m->s[WT_PATH], &id, w);
}

/* REGISTER of entry @entry (state word @state) by @c, for served @g. */
static void register_member(struct pstmd *d, struct conn *c, struct dregion *g,
			    uint32_t msg_id, uint64_t entry, uint64_t state)
{
	struct pstm_region *r = g->r;
	pid_t pid;

	conn_peer(c, &pid, NULL, NULL);
	if (entry >= r->sb.max_procs || entry == r->proc_idx) {
		conn_error(c, msg_id, PSTM_EINVAL, "register: no such process entry");
		maybe_drop(d, g);
		return;
	}
	struct member *mb = find_member(g, (uint32_t)entry);
	if (mb && (mb->state != state || mb->conn)) {
		if (mb->state == state) {
			conn_error(c, msg_id, PSTM_EEXIST, "register: registered already");
			return;
		}
		untrack(d, mb);
		mb = NULL;
	}
	if (!mb) {
		struct proc_entry *e = &r->procs[entry];
		if (PROC_ST(state) != PROC_ALIVE || atomic_load(&e->state) != state ||
		    atomic_load(&e->pid) != (uint64_t)pid) {
			/* left or died since (or never was): nothing to watch */
			recover_entry(d, g, (uint32_t)entry);
			conn_error(c, msg_id, PSTM_ENOENT, "register: not attached (any more)");
			maybe_drop(d, g);
			return;
		}
		mb = track(d, g, (uint32_t)entry, state, pid, NULL);
		if (!mb) {
			conn_error(c, msg_id, PSTM_ENOENT, "register: not attached (any more)");
			maybe_drop(d, g);
			return;
		}
	}
	mb->conn = c;
	conn_set_member(c, mb);
	if (r->relaxed) {
		struct wire_buf w;
		wire_begin(&w, WIRE_FLUSHER, msg_id);
		conn_send(c, &w, NULL, 0);
	}
}

void registry_conn_gone(struct pstmd *d, void *arg)
{
	struct member *m = arg;
	struct pstm_region *r = m->reg->r;
	m->conn = NULL;
	if (atomic_load(&r->procs[m->entry].state) != m->state) {
		struct dregion *g = m->reg;
		untrack(d, m); /* detached: pstm_close closes after that */
		maybe_drop(d, g);
		return;
	}
	struct pollfd p = {.fd = m->pidfd, .events = POLLIN};
	if (poll(&p, 1, 0) == 1)
		recover(d, m); /* died: the connection closed with it */
	/* else still attached (it closed our connection some other way): the
	 * pidfd and the sweep keep watching */
}

static struct dregion *region_of_fd(struct pstmd *d, int fd)
{
	struct file_id id;
	return fd_identity(fd, &id) == 0 ? find_region(d, &id) : NULL;
}

void registry_procs(struct pstmd *d, struct conn *c, const struct wire_msg *m, int fd)
{
	struct dregion *g = region_of_fd(d, fd);
	struct wire_buf w;
	if (!g) {
		conn_error(c, m->id, PSTM_ENOENT, "pstmd does not serve this region");
		return;
	}
	struct pstm_region *r = g->r;
	for (uint32_t p = 0; p < r->sb.max_procs; p++) {
		uint64_t ps = atomic_load(&r->procs[p].state);
		if (PROC_ST(ps) == PROC_FREE || PROC_ST(ps) > PROC_RECOVERING)
			continue;
		struct inspect_proc row;
		memset(&row, 0, sizeof(row));
		inspect_proc_row(r, p, ps, &row);
		struct member *mb = find_member(g, p);
		uint64_t st[8] = {row.st.commits,      row.st.commits_ro,
				  row.st.aborts_read,  row.st.aborts_lock,
				  row.st.aborts_validate, row.st.aborts_user,
				  row.st.escalations,  row.st.recoveries};
		wire_begin(&w, WIRE_PROC, m->id);
		wire_u32(&w, WT_ENTRY, p);
		wire_u64(&w, WT_PID, row.pid);
		wire_u32(&w, WT_STATE, (uint32_t)row.state);
		wire_u32(&w, WT_SLOTS, row.slots);
		wire_bytes(&w, WT_STATS, st, sizeof(st));
		/* 2: pstmd itself; 1: watched by a pidfd */
		wire_u32(&w, WT_WATCHED, p == r->proc_idx ? 2 : (mb && mb->state == ps));
		if (conn_send(c, &w, NULL, 0) != 0)
			return;
	}
	wire_begin(&w, WIRE_END, m->id);
	wire_u32(&w, WT_MEMBERS, g->nmembers);
	wire_u64(&w, WT_RECOVERIES, g->recoveries);
	conn_send(c, &w, NULL, 0);
}

void registry_release(struct pstmd *d, struct conn *c, const struct wire_msg *m, int fd)
{
	struct dregion *g = region_of_fd(d, fd);
	struct file_id id;
	struct wire_buf w;
	if (!g && !m->u[WT_ROOM] && fd_identity(fd, &id) == 0 && find_pending(&id)) {
		conn_error(c, m->id, PSTM_EBUSY, "pstmd is opening it");
		return;
	}
	if (g && m->u[WT_ROOM]) {
		/* an opener found the table full: our entry may be the one it
		 * needs.  Let go; without us it has the library's recovery */
		if (free_entries(g->r) == 0) {
			pstmd_log("%s: process table full: letting go of it", g->uri);
			drop_region(d, g);
		}
	} else if (g) {
		adopt_entries(d, g);
		if (g->nmembers) {
			conn_error(c, m->id, PSTM_EBUSY, "processes are attached");
			return;
		}
		drop_region(d, g);
	}
	wire_begin(&w, WIRE_OK, m->id);
	conn_send(c, &w, NULL, 0);
}

void registry_serve_path(struct pstmd *d, struct conn *c, const struct grant_req *q)
{
	int fd = open(q->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct file_id id;
	if (fd < 0) {
		grant_done(d, c, q, NULL, errno == ENOENT ? PSTM_ENOENT : PSTM_EACCES);
		return;
	}
	int ok = fd_identity(fd, &id);
	close(fd);
	if (ok != 0) {
		grant_done(d, c, q, NULL, PSTM_EBADMAGIC);
		return;
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		grant_done(d, c, q, NULL, PSTM_ENOMEM);
		return;
	}
	w->kind = WAIT_GRANT;
	w->c = c;
	w->q = *q;
	serve_for(d, q->path, &id, w);
}

/* Does the region (read-only look, nothing attached) have a live process? */
static bool has_live_process(const char *uri)
{
	struct pstm_region ro;
	bool live = false;
	if (region_map_readonly(uri, &ro) != 0)
		return false;
	if (ro.rt_base && check_runtime_valid(&ro))
		for (uint32_t p = 0; p < ro.sb.max_procs && !live; p++) {
			uint64_t ps = atomic_load(&ro.procs[p].state);
			live = PROC_ST(ps) == PROC_ALIVE && proc_entry_alive(&ro, p, ps);
		}
	region_unmap_readonly(&ro);
	return live;
}

void registry_adopt(struct pstmd *d)
{
	char line[PATH_MAX + 128];
	if (!d->cfg.state[0])
		return;
	FILE *f = fopen(d->cfg.state, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		struct file_id id;
		int at = 0;
		size_t len = strlen(line);
		if (line[0] == '#' || len == 0 || line[len - 1] != '\n')
			continue;
		line[len - 1] = 0;
		if (sscanf(line, "%" SCNx64 " %" SCNx64 " %" SCNx64 " %n", &id.dev, &id.ino,
			   &id.btime_ns, &at) != 3 || at <= 0 || !line[at])
			continue;
		const char *uri = line + at;
		if (find_region(d, &id) || find_pending(&id) || !uri_names(uri, &id) ||
		    !has_live_process(uri))
			continue;
		struct waiter *w = calloc(1, sizeof(*w));
		if (!w)
			continue;
		w->kind = WAIT_ADOPT;
		serve_for(d, uri, &id, w);
	}
	fclose(f);
	save_state(d); /* what is served or being opened */
}

uint64_t registry_tick(struct pstmd *d)
{
	uint64_t now = pstmd_now_ms(), next;
	if (now >= next_sweep_ms) {
		next_sweep_ms = now + SWEEP_MS;
		struct dregion *g = d->regions;
		while (g) {
			struct dregion *n = g->next;
			adopt_entries(d, g);
			maybe_drop(d, g);
			g = n;
		}
	}
	next = next_sweep_ms;
	uint64_t late = opening_tick();
	if (late < next)
		next = late;
	for (struct dregion *g = d->regions, *gn; g; g = gn) {
		gn = g->next;
		for (struct member *m = g->members; m; m = m->next) {
			if (!m->retry_ms)
				continue;
			if (m->retry_ms <= now) {
				m->retry_ms = 0;
				recover(d, m); /* may free m, and g */
				next = now;    /* the rest at the next tick */
				break;
			}
			if (m->retry_ms < next)
				next = m->retry_ms;
		}
	}
	return next;
}

void registry_close_all(struct pstmd *d)
{
	opening_stop_all(d);
	while (d->regions)
		drop_region(d, d->regions);
}

void registry_each(struct pstmd *d,
		   void (*fn)(void *arg, const char *uri, struct pstm_region *r,
			      unsigned members, uint64_t recoveries),
		   void *arg)
{
	for (struct dregion *g = d->regions; g; g = g->next)
		fn(arg, g->uri, g->r, g->nmembers, g->recoveries);
}
