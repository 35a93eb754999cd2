/*
 * inventory.c - what regions and companions there are: the regions in a
 * directory (pstm ls), the companions in /dev/shm and whose they are, and
 * removing those nobody can use any more (pstm gc).  Everything here is a
 * read-only look (files opened O_RDONLY, mapped PROT_READ, never
 * attached) except the unlink()s of inventory_gc.
 *
 * Whose a companion is: a runtime segment's tail (lib/layout.h, struct
 * companion_tail) records its region's superblock, the identity of the
 * region file and the absolute path it was last opened by; a working copy
 * belongs to the runtime with the same name suffix.  A region is "gone"
 * when no file at that path has that identity and uuid: deleted, or
 * replaced by another file (a restored backup is another file).  Who uses
 * it: the live processes in the runtime's process table (pid and start
 * time, lib/proc.c), which is what tells even when the region file is gone
 * and its OFD attach lock with it.  A runtime without a live process whose
 * region is gone can serve nobody: an opener of the same file under a
 * name gc does not know (moved after its last open) would find the
 * runtime missing and rebuild it, as after a reboot.
 *
 * Against an open in progress: openers hold a companion's flock while
 * they create, rebuild or re-tail it (lib/companion.c), and check after
 * taking it that the name still leads to it; gc removes a companion only
 * under that flock, taken without waiting, and after looking again.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "inventory.h"
#include "proc.h"
#include "runtime.h"

#define SHM_DIR "/dev/shm"

static void uuid_text(const uint8_t u[16], char out[37])
{
	char *p = out;
	for (int i = 0; i < 16; i++) {
		p += sprintf(p, "%02x", u[i]);
		if (i == 3 || i == 5 || i == 7 || i == 9)
			*p++ = '-';
	}
	*p = 0;
}

static const char *durability_name(uint32_t d)
{
	return d == PSTM_DURABLE ? "durable" : d == PSTM_RELAXED ? "relaxed"
					     : "volatile";
}

/* Live processes in the table of the runtime @ro (read-only mapping). */
static unsigned live_procs(struct pstm_region *ro)
{
	unsigned n = 0;
	if (atomic_load(&ro->rt->magic) != PSTM_RT_MAGIC)
		return 0;
	for (uint32_t p = 0; p < ro->sb.max_procs; p++) {
		uint64_t ps = atomic_load(&ro->procs[p].state);
		/* ro is no attached handle: "our own entry" matches nothing */
		if (PROC_ST(ps) == PROC_ALIVE && proc_entry_alive(ro, p, ps))
			n++;
	}
	return n;
}

/* grow *v (of *cap elements of @size) to hold @n + 1 */
static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 16;
	void *nv = realloc(*v, nc * size);
	if (!nv)
		return -1;
	*v = nv;
	*cap = nc;
	return 0;
}

/* --------------------------------------------------------------- regions */

/* Has the regular file @path the region magic?  (Never blocks, never
 * follows a symbolic link.) */
static bool has_magic(const char *path, struct superblock *sb)
{
	struct stat st;
	bool yes = false;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false;
	memset(sb, 0, sizeof(*sb));
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    pread(fd, sb, sizeof(*sb), 0) >= 8 && memcmp(sb->magic, PSTM_MAGIC, 8) == 0)
		yes = true;
	close(fd);
	return yes;
}

static void look_at_region(const char *path, const struct superblock *raw,
			   struct inv_region *g)
{
	struct pstm_region ro;
	memset(g, 0, sizeof(*g));
	snprintf(g->path, sizeof(g->path), "%s", path);
	g->durability = "";
	g->error = region_map_readonly(path, &ro);
	if (g->error) {
		/* damaged: what the raw superblock still says */
		uuid_text(raw->uuid, g->uuid);
		g->is_shm = raw->rt_inside == 1;
		if (companion_paths_of(path, g->rt, g->wc) != 0)
			g->rt[0] = g->wc[0] = 0;
	} else {
		uuid_text(ro.sb.uuid, g->uuid);
		g->is_shm = ro.sb.rt_inside;
		g->durability = durability_name(ro.sb.durability);
		g->size_bytes = ro.sb.size_bytes;
		if (!ro.sb.rt_inside) {
			snprintf(g->rt, sizeof(g->rt), "%s", ro.rt_path);
			if (ro.relaxed)
				snprintf(g->wc, sizeof(g->wc), "%s", ro.wc_path);
		}
		if (ro.rt_base && atomic_load(&ro.rt->magic) == PSTM_RT_MAGIC) {
			g->runtime_found = true;
			g->procs = live_procs(&ro);
		}
		region_unmap_readonly(&ro);
	}
	g->rt_exists = g->rt[0] && access(g->rt, F_OK) == 0;
	g->wc_exists = g->wc[0] && access(g->wc, F_OK) == 0;
}

static bool is_companion_name(const char *name)
{
	return !strncmp(name, "pstm.rt.", 8) || !strncmp(name, "pstm.wc.", 8);
}

static int by_region_path(const void *a, const void *b)
{
	return strcmp(((const struct inv_region *)a)->path,
		      ((const struct inv_region *)b)->path);
}

int inventory_regions(const char *dir, struct inv_region **out, size_t *n)
{
	struct inv_region *v = NULL;
	size_t cap = 0, k = 0;
	struct superblock sb;
	char path[PATH_MAX];
	struct dirent *e;
	int rc = 0;

	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return errno_to_pstm(errno);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    is_companion_name(e->d_name))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >=
		    sizeof(path))
			continue;
		if (!has_magic(path, &sb))
			continue;
		if (grow((void **)&v, &cap, k, sizeof(*v)) != 0) {
			rc = PSTM_ENOMEM;
			break;
		}
		look_at_region(path, &sb, &v[k++]);
	}
	closedir(d);
	if (rc) {
		free(v);
		return rc;
	}
	if (k)
		qsort(v, k, sizeof(*v), by_region_path);
	*out = v;
	*n = k;
	return 0;
}

/* ------------------------------------------------------------ companions */

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * "pstm.rt.<32 hex>[.<dev>.<ino>.<btime>]": the kind, the uuid, whether
 * it is a legacy name (uuid alone); false if it is none of ours.
 */
static bool parse_name(const char *name, enum companion_kind *kind,
		       uint8_t uuid[16], bool *legacy)
{
	unsigned long long a, b, c;
	char tail;
	if (!is_companion_name(name))
		return false;
	*kind = name[5] == 'r' ? COMPANION_RUNTIME : COMPANION_WORKCOPY;
	const char *h = name + 8;
	for (int i = 0; i < 16; i++) {
		int hi = hex_digit(h[2 * i]), lo = hi < 0 ? -1 : hex_digit(h[2 * i + 1]);
		if (lo < 0)
			return false;
		uuid[i] = (uint8_t)(hi << 4 | lo);
	}
	h += 32;
	*legacy = *h == 0;
	return *legacy ||
	       sscanf(h, ".%llx.%llx.%llx%c", &a, &b, &c, &tail) == 3;
}

/* Is the file at @path the region of uuid @uuid and identity @id? */
static bool region_is_there(const char *path, const struct file_id *id,
			    const uint8_t uuid[16])
{
	struct superblock sb;
	struct file_id now;
	bool yes = false;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (file_identity(fd, &now) == 0 && file_id_equal(&now, id) &&
	    pread(fd, &sb, sizeof(sb), 0) == (ssize_t)sizeof(sb) &&
	    memcmp(sb.magic, PSTM_MAGIC, 8) == 0 && memcmp(sb.uuid, uuid, 16) == 0)
		yes = true;
	close(fd);
	return yes;
}

/*
 * A runtime companion: its region (from the tail) and the live processes
 * of its table.  Without a tail (a legacy name, or one made by another
 * build) the process table is read where it always starts, after the
 * header, as far as the file goes: entries beyond the real table are
 * slots, whose words never pass for a live pid with its start time.
 */
static void look_at_runtime(int fd, const uint8_t uuid[16], struct inv_companion *c)
{
	struct companion_tail *t = malloc(sizeof(*t));
	struct pstm_region ro;
	struct stat st;
	uint64_t map_len;

	memset(&ro, 0, sizeof(ro));
	if (!t || fstat(fd, &st) != 0)
		goto out;
	if (companion_tail_read(fd, t) == 0 && !c->legacy &&
	    t->sb.rt_bytes + COMPANION_TAIL_BYTES == (uint64_t)st.st_size &&
	    t->sb.max_procs <= 1023) {
		ro.sb = t->sb;
		map_len = t->sb.rt_bytes;
		snprintf(c->region, sizeof(c->region), "%s", t->path);
		c->region_present = t->path_len && region_is_there(t->path, &t->file, uuid);
	} else {
		uint64_t room = (uint64_t)st.st_size > sizeof(struct rt_header)
					? (uint64_t)st.st_size - sizeof(struct rt_header)
					: 0;
		uint64_t np = room / sizeof(struct proc_entry);
		ro.sb.max_procs = (uint32_t)(np > 1023 ? 1023 : np);
		map_len = (uint64_t)st.st_size;
	}
	if (map_len < sizeof(struct rt_header) +
			      (uint64_t)ro.sb.max_procs * sizeof(struct proc_entry))
		goto out;
	void *m = mmap(NULL, map_len, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		goto out;
	ro.rt_base = m;
	ro.sb.max_slots = 0; /* only the process table is read */
	ro.sb.orecs_log2 = 0;
	runtime_set_pointers(&ro);
	c->procs = live_procs(&ro);
	munmap(m, map_len);
out:
	free(t);
}

/* the whole look at one companion named @name; false if none of ours */
static bool look_at_companion(const char *name, struct inv_companion *c)
{
	uint8_t uuid[16];
	struct stat st;
	memset(c, 0, sizeof(*c));
	if (!parse_name(name, &c->kind, uuid, &c->legacy))
		return false;
	snprintf(c->path, sizeof(c->path), SHM_DIR "/%s", name);
	uuid_text(uuid, c->uuid);
	int fd = open(c->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false; /* gone meanwhile */
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return false;
	}
	c->size_bytes = (uint64_t)st.st_size;
	if (c->kind == COMPANION_RUNTIME) {
		look_at_runtime(fd, uuid, c);
		c->orphan = !c->region_present && c->procs == 0;
	}
	close(fd);
	return true;
}

/* the runtime with the same name suffix as working copy @wc, if any */
static const struct inv_companion *runtime_of(const struct inv_companion *v,
					      size_t n, const struct inv_companion *wc)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].kind == COMPANION_RUNTIME &&
		    !strcmp(v[i].path + sizeof(SHM_DIR "/pstm.rt.") - 1,
			    wc->path + sizeof(SHM_DIR "/pstm.wc.") - 1))
			return &v[i];
	return NULL;
}

static int by_companion_path(const void *a, const void *b)
{
	return strcmp(((const struct inv_companion *)a)->path,
		      ((const struct inv_companion *)b)->path);
}

int inventory_companions(struct inv_companion **out, size_t *n)
{
	struct inv_companion *v = NULL;
	size_t cap = 0, k = 0;
	struct dirent *e;
	int rc = 0;

	*out = NULL;
	*n = 0;
	DIR *d = opendir(SHM_DIR);
	if (!d)
		return errno == ENOENT ? 0 : errno_to_pstm(errno);
	while ((e = readdir(d))) {
		if (grow((void **)&v, &cap, k, sizeof(*v)) != 0) {
			rc = PSTM_ENOMEM;
			break;
		}
		if (look_at_companion(e->d_name, &v[k]))
			k++;
	}
	closedir(d);
	if (rc) {
		free(v);
		return rc;
	}
	/* a working copy is its runtime's; without one, the next open
	 * rebuilds both from the file: nothing in it can be used */
	for (size_t i = 0; i < k; i++) {
		if (v[i].kind != COMPANION_WORKCOPY)
			continue;
		const struct inv_companion *rt = runtime_of(v, k, &v[i]);
		if (rt) {
			snprintf(v[i].region, sizeof(v[i].region), "%s", rt->region);
			v[i].region_present = rt->region_present;
			v[i].procs = rt->procs;
			v[i].orphan = rt->orphan;
		} else {
			v[i].orphan = true;
		}
	}
	if (k)
		qsort(v, k, sizeof(*v), by_companion_path);
	*out = v;
	*n = k;
	return 0;
}

/* ------------------------------------------------------------------- gc */

/*
 * Remove companion @c if, under its flock, it still is an orphan: a
 * runtime looked at again, a working copy whose runtime is gone (runtimes
 * go first).  true if it was removed.
 */
static bool remove_orphan(const struct inv_companion *c)
{
	struct inv_companion now;
	char rt[sizeof(c->path)];
	bool removed = false;
	int fd = open(c->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
		goto out; /* an open is building or updating it right now */
	if (c->kind == COMPANION_RUNTIME) {
		if (!look_at_companion(c->path + sizeof(SHM_DIR), &now) || !now.orphan)
			goto out;
	} else {
		snprintf(rt, sizeof(rt), "%s", c->path);
		memcpy(rt + sizeof(SHM_DIR "/pstm.") - 1, "rt", 2);
		if (access(rt, F_OK) == 0)
			goto out; /* its runtime stays, so does it */
	}
	removed = unlink(c->path) == 0;
out:
	close(fd); /* drops the flock: nothing maps fd */
	return removed;
}

int inventory_gc(bool dry_run, struct inv_companion **out, size_t *n, size_t *kept)
{
	struct inv_companion *v, *gone;
	size_t k, done = 0;
	int rc = inventory_companions(&v, &k);

	*out = NULL;
	*n = 0;
	*kept = 0;
	if (rc)
		return rc;
	gone = malloc((k ? k : 1) * sizeof(*gone));
	if (!gone) {
		free(v);
		return PSTM_ENOMEM;
	}
	/* runtimes first: a working copy goes once its runtime has */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < k; i++) {
			const struct inv_companion *c = &v[i];
			if ((c->kind == COMPANION_RUNTIME) != (pass == 0) || !c->orphan)
				continue;
			if (dry_run || remove_orphan(c))
				gone[done++] = *c;
		}
	free(v);
	*kept = k - done;
	if (done)
		qsort(gone, done, sizeof(*gone), by_companion_path);
	*out = gone;
	*n = done;
	return 0;
}
