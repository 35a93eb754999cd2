/*
 * metrics.c - the Prometheus text exposition (format 0.0.4) on a unix
 * stream socket (--metrics PATH): a client connects, gets the page,
 * and the connection is closed.  Per served region: members, commits and
 * aborts by cause of the processes attached now (from the process table,
 * as pstm info shows them), recoveries, and for relaxed regions the flush
 * lag (commits not yet in the file).  Written in one non-blocking send;
 * a reader whose socket would not take it gets what fitted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pstmd.h"
#include "region.h"

struct page {
	char *b;
	size_t n, cap;
	bool bad;
};

__attribute__((format(printf, 2, 3)))
static void out(struct page *p, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int k = vsnprintf(p->b + p->n, p->cap - p->n, fmt, ap);
		va_end(ap);
		if (k < 0) {
			p->bad = true;
			return;
		}
		if ((size_t)k < p->cap - p->n) {
			p->n += (size_t)k;
			return;
		}
		size_t cap = p->cap * 2 + (size_t)k;
		char *b = realloc(p->b, cap);
		if (!b) {
			p->bad = true;
			return;
		}
		p->b = b;
		p->cap = cap;
	}
}

/* a label value: backslash, double quote and newline escaped */
static void label(char *dst, size_t n, const char *s)
{
	size_t j = 0;
	for (; *s && j + 3 < n; s++) {
		if (*s == '\\' || *s == '"') {
			dst[j++] = '\\';
			dst[j++] = *s;
		} else if (*s == '\n') {
			dst[j++] = '\\';
			dst[j++] = 'n';
		} else {
			dst[j++] = *s;
		}
	}
	dst[j] = 0;
}

/* what one region contributes; every metric's lines are gathered per
 * region, so each family's HELP and TYPE come once, before them */
enum { M_MEMBERS, M_COMMITS, M_COMMITS_RO, M_AB_READ, M_AB_LOCK, M_AB_VALIDATE,
       M_AB_USER, M_ESCALATIONS, M_RECOVERIES, M_PSTMD_RECOVERIES, M_FLUSH_LAG,
       M_COUNT };

struct row {
	char region[PATH_MAX * 2];
	uint64_t v[M_COUNT];
	bool relaxed;
};

struct rows {
	struct row *r;
	size_t n;
	bool bad;
};

static void gather(void *arg, const char *uri, struct pstm_region *r,
		   unsigned members, uint64_t recoveries)
{
	struct rows *rs = arg;
	struct row *a = realloc(rs->r, (rs->n + 1) * sizeof(*a));
	if (!a) {
		rs->bad = true;
		return;
	}
	rs->r = a;
	struct row *w = &a[rs->n++];
	memset(w, 0, sizeof(*w));
	label(w->region, sizeof(w->region), uri);
	w->v[M_MEMBERS] = members;
	w->v[M_PSTMD_RECOVERIES] = recoveries;
	static const int map[] = {
		[ST_COMMITS] = M_COMMITS,     [ST_COMMITS_RO] = M_COMMITS_RO,
		[ST_AB_READ] = M_AB_READ,     [ST_AB_LOCK] = M_AB_LOCK,
		[ST_AB_VALIDATE] = M_AB_VALIDATE, [ST_AB_USER] = M_AB_USER,
		[ST_ESCALATIONS] = M_ESCALATIONS, [ST_RECOVERIES] = M_RECOVERIES,
	};
	for (uint32_t p = 0; p < r->sb.max_procs; p++) {
		uint64_t ps = atomic_load(&r->procs[p].state);
		if (PROC_ST(ps) == PROC_FREE)
			continue;
		for (int k = 0; k < ST_COUNT; k++)
			w->v[map[k]] += atomic_load(&r->procs[p].stats[k]);
	}
	for (uint32_t s = 0; s < r->sb.max_slots; s++)
		if (SLOT_ST(atomic_load(&r->slots[s].state)) == SLOT_ACTIVE)
			for (int k = 0; k < ST_COUNT; k++)
				w->v[map[k]] += atomic_load(&r->slots[s].stats[k]);
	if (r->relaxed) {
		uint64_t dseq = atomic_load(&r->rt->dseq), fl = atomic_load(&r->rt->flushed);
		w->relaxed = true;
		w->v[M_FLUSH_LAG] = dseq > fl ? dseq - fl : 0;
	}
}

static void family(struct page *p, const struct rows *rs, int m, const char *name,
		   const char *type, const char *help, const char *extra)
{
	out(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (size_t i = 0; i < rs->n; i++) {
		if (m == M_FLUSH_LAG && !rs->r[i].relaxed)
			continue;
		out(p, "%s{region=\"%s\"%s} %llu\n", name, rs->r[i].region, extra,
		    (unsigned long long)rs->r[i].v[m]);
	}
}

static void render(struct pstmd *d, struct page *p)
{
	struct rows rs = {0};
	registry_each(d, gather, &rs);
	out(p, "# HELP pstmd_regions Regions pstmd serves.\n# TYPE pstmd_regions gauge\n"
	       "pstmd_regions %u\n", d->nregions);
	out(p, "# HELP pstmd_members Processes pstmd watches.\n# TYPE pstmd_members gauge\n"
	       "pstmd_members %u\n", d->nmembers);
	out(p, "# HELP pstmd_connections Open client connections.\n"
	       "# TYPE pstmd_connections gauge\npstmd_connections %u\n", d->nconns);
	out(p, "# HELP pstmd_recoveries_total Dead processes pstmd recovered.\n"
	       "# TYPE pstmd_recoveries_total counter\npstmd_recoveries_total %llu\n",
	    (unsigned long long)d->recoveries);
	out(p, "# HELP pstmd_uptime_seconds Seconds since pstmd started.\n"
	       "# TYPE pstmd_uptime_seconds gauge\npstmd_uptime_seconds %llu\n",
	    (unsigned long long)((pstmd_now_ms() - d->started_ms) / 1000));
	family(p, &rs, M_MEMBERS, "pstm_region_members", "gauge",
	       "Processes attached to the region that pstmd watches.", "");
	family(p, &rs, M_COMMITS, "pstm_region_commits", "gauge",
	       "Update commits of the processes attached now.", "");
	family(p, &rs, M_COMMITS_RO, "pstm_region_commits_ro", "gauge",
	       "Read-only commits of the processes attached now.", "");
	out(p, "# HELP pstm_region_aborts Aborts of the processes attached now, by cause.\n"
	       "# TYPE pstm_region_aborts gauge\n");
	static const struct { int m; const char *cause; } causes[] = {
		{M_AB_READ, "read"}, {M_AB_LOCK, "lock"},
		{M_AB_VALIDATE, "validate"}, {M_AB_USER, "user"},
	};
	for (size_t c = 0; c < sizeof(causes) / sizeof(causes[0]); c++)
		for (size_t i = 0; i < rs.n; i++)
			out(p, "pstm_region_aborts{region=\"%s\",cause=\"%s\"} %llu\n",
			    rs.r[i].region, causes[c].cause,
			    (unsigned long long)rs.r[i].v[causes[c].m]);
	family(p, &rs, M_ESCALATIONS, "pstm_region_escalations", "gauge",
	       "Transactions of the processes attached now that had to run alone.", "");
	family(p, &rs, M_RECOVERIES, "pstm_region_recoveries", "gauge",
	       "Dead processes recovered by the processes attached now.", "");
	family(p, &rs, M_PSTMD_RECOVERIES, "pstmd_region_recoveries_total", "counter",
	       "Dead processes of the region pstmd recovered since it served it.", "");
	family(p, &rs, M_FLUSH_LAG, "pstm_region_flush_lag", "gauge",
	       "Relaxed regions: commits not yet durable in the file.", "");
	free(rs.r);
	if (rs.bad)
		p->bad = true;
}

void metrics_accept(struct loop *l, int lfd, uint32_t events, void *arg)
{
	struct pstmd *d = arg;
	(void)l;
	(void)events;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct page p = {.b = malloc(8192), .cap = 8192};
		if (p.b) {
			p.b[0] = 0;
			render(d, &p);
			if (!p.bad)
				(void)!send(fd, p.b, p.n, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		free(p.b);
		close(fd);
	}
}
