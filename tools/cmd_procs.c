/*
 * cmd_procs.c - pstm procs: the processes attached to a region and
 * their transaction statistics.  Asked of pstmd when it serves the
 * region (it also says which processes it watches with a pidfd, and how
 * many dead ones it recovered), read from the region's process table
 * through a read-only mapping otherwise (as pstm info does: no
 * attaching, no recovery).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "emit.h"
#include "inspect.h"
#include "member.h"
#include "uri.h"

static const char *proc_state[] = {
	[INSPECT_ALIVE] = "alive",
	[INSPECT_DEAD] = "dead",
	[INSPECT_RECOVERING] = "recovering",
};

struct view {
	bool from_pstmd;
	struct inspect_proc *procs;
	const int *watched;      /* from pstmd only */
	uint32_t n, members;
	uint64_t recoveries;
};

static uint64_t aborts(const struct pstm_stats *s)
{
	return s->aborts_read + s->aborts_lock + s->aborts_validate;
}

static void text(const char *uri, const struct view *v)
{
	emit_line(stdout, 9, "region", "%s", uri);
	if (v->from_pstmd)
		emit_line(stdout, 9, "source", "pstmd (watching %u processes, %llu "
			  "recovered)", v->members, (unsigned long long)v->recoveries);
	else
		emit_line(stdout, 9, "source", "the region's process table (pstmd does "
			  "not serve it)");
	if (!v->n)
		return;
	printf("  %5s %8s %10s %10s %10s %10s %6s %s\n", "entry", "pid", "commits", "ro",
	       "aborts", "user-ab", "slots", v->from_pstmd ? "state/watched" : "state");
	for (uint32_t i = 0; i < v->n; i++) {
		const struct inspect_proc *p = &v->procs[i];
		const char *w = !v->from_pstmd     ? ""
				: v->watched[i] == 2 ? " pstmd"
				: v->watched[i]      ? " watched"
						     : "";
		printf("  %5u %8llu %10llu %10llu %10llu %10llu %6u %s%s\n", p->entry,
		       (unsigned long long)p->pid, (unsigned long long)p->st.commits,
		       (unsigned long long)p->st.commits_ro,
		       (unsigned long long)aborts(&p->st),
		       (unsigned long long)p->st.aborts_user, p->slots,
		       proc_state[p->state], w);
	}
}

static int json(const char *uri, const struct view *v)
{
	struct emit e;
	cli_json_begin(&e, uri);
	emit_str(&e, "source", v->from_pstmd ? "pstmd" : "region");
	if (v->from_pstmd) {
		emit_u64(&e, "pstmd_members", v->members);
		emit_u64(&e, "pstmd_recoveries", v->recoveries);
	}
	emit_array(&e, "processes");
	for (uint32_t i = 0; i < v->n; i++) {
		const struct inspect_proc *p = &v->procs[i];
		emit_object(&e, NULL);
		emit_u64(&e, "entry", p->entry);
		emit_u64(&e, "pid", p->pid);
		emit_str(&e, "state", proc_state[p->state]);
		emit_u64(&e, "slots", p->slots);
		emit_u64(&e, "commits", p->st.commits);
		emit_u64(&e, "commits_ro", p->st.commits_ro);
		emit_u64(&e, "aborts_read", p->st.aborts_read);
		emit_u64(&e, "aborts_lock", p->st.aborts_lock);
		emit_u64(&e, "aborts_validate", p->st.aborts_validate);
		emit_u64(&e, "aborts_user", p->st.aborts_user);
		emit_u64(&e, "escalations", p->st.escalations);
		emit_u64(&e, "recoveries", p->st.recoveries);
		if (v->from_pstmd) {
			emit_bool(&e, "watched", v->watched[i] == 1);
			emit_bool(&e, "pstmd", v->watched[i] == 2);
		}
		emit_close(&e);
	}
	emit_close(&e);
	return cli_json_end(&e, uri);
}

int cmd_procs(int argc, char **argv)
{
	bool as_json = false;
	const char *uri;
	struct member_procs mp;
	struct inspect_report ir;
	struct view v = {0};
	int rc = cli_uri_args(argc, argv, "procs",
			      "usage: pstm procs URI [--json|--pretty]\n"
			      "The processes attached to a region and their transaction\n"
			      "statistics.  Asks pstmd when it serves the region (it also\n"
			      "says which processes it watches); reads the region's process\n"
			      "table otherwise, without attaching ($PSTM_DAEMON_SOCKET names\n"
			      "pstmd's socket; PSTM_DAEMON=off does not ask).\n",
			      &as_json, &uri);
	if (rc >= 0)
		return rc;
	rc = cli_ask_pstmd(uri, &mp);
	bool asked = rc == 0;
	if (rc && rc != PSTM_ENOENT)
		return cli_fail("pstmd's answer for", uri, rc);
	if (asked) {
		v = (struct view){true, mp.procs, mp.watched, mp.n, mp.members, mp.recoveries};
	} else {
		rc = region_inspect(uri, &ir);
		if (rc)
			return cli_fail("cannot read", uri, rc);
		if (ir.runtime != INSPECT_RT_FOUND) {
			inspect_report_free(&ir);
			ir.nprocs = 0;
		}
		v = (struct view){false, ir.procs, NULL, ir.nprocs, 0, 0};
	}
	if (as_json) {
		rc = json(uri, &v);
	} else {
		text(uri, &v);
		rc = 0;
	}
	if (asked)
		member_procs_free(&mp);
	else
		inspect_report_free(&ir);
	return rc;
}
