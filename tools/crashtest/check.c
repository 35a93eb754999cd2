/*
 * check.c - what pstm-crashtest verifies after every crash: in one
 * transaction the workload's invariant and each worker's counter against
 * the steps acknowledged to it; offline, pstm check's verdict.
 */
#include "check.h"
#include "crashtest.h"

enum { SNAP_CHECK_FAILED = 1 };

struct snapshot {
	const struct pstm_crashtest_workload *wl;
	pstm_off root, state;
	int procs;
	uint64_t counter[MAX_PROCS];
	int check_rc;
	char why[256];
};

/* Counters and the invariant, in one read-only transaction: a consistent
 * snapshot even while workers run.  Meeting a dead worker's locks here
 * recovers it. */
static int snapshot_fn(pstm_tx *tx, void *arg)
{
	struct snapshot *s = arg;
	for (int w = 0; w < s->procs; w++)
		s->counter[w] = pstm_load64(tx, counter_off(s->root, w));
	s->why[0] = '\0';
	s->check_rc = s->wl->check(tx, s->state, s->why, sizeof(s->why));
	s->why[sizeof(s->why) - 1] = '\0';
	return s->check_rc ? SNAP_CHECK_FAILED : 0;
}

/*
 * Check region @r after a crash (@what names it): the invariant holds, and
 * each worker slot's counter covers every step acknowledged before the
 * check began and at most one more than was acknowledged after it (the
 * step in flight).  A slot without a live worker has a fixed count, so
 * this is exact up to its one interrupted step.  Counters go to @out.
 * With @synced (a relaxed region after a power failure) the lower bound
 * is the synced count instead: acknowledged but unsynced steps may be
 * lost, synced ones may not.
 */
int check_after_floor(struct ct *c, pstm_region *r, const char *what,
		      const uint64_t *synced, uint64_t out[MAX_PROCS])
{
	struct snapshot s = {.wl = c->wl, .root = c->root, .state = c->state,
			     .procs = c->procs};
	uint64_t before[MAX_PROCS], after[MAX_PROCS];
	char buf[64];

	for (int w = 0; w < c->procs; w++)
		before[w] = atomic_load_explicit(&c->sh->acked[w], memory_order_acquire);
	int rc = pstm_atomic(r, snapshot_fn, &s);
	for (int w = 0; w < c->procs; w++)
		after[w] = atomic_load_explicit(&c->sh->acked[w], memory_order_acquire);
	c->checks++;
	if (rc == SNAP_CHECK_FAILED)
		return report_violation(c, "%s: the workload's invariant does not hold: "
					"%s (check returned %d)", what,
					s.why[0] ? s.why : "no reason given", s.check_rc);
	if (rc)
		return report_violation(c, "%s: the check transaction failed: %s", what,
					report_tx_error(rc, buf, sizeof(buf)));
	/* the steps that must be present: acknowledged, or (@synced) synced */
	const uint64_t *must = synced ? synced : before;
	const char *how = synced ? "synced (pstm_sync returned)"
				 : "acknowledged as committed";
	const char *lost = synced ? "synced" : "acknowledged";
	for (int w = 0; w < c->procs; w++) {
		if (s.counter[w] < must[w]) {
			if (synced)
				c->pf_lost_synced = synced[w] - s.counter[w];
			return report_violation(c, "%s: worker slot %d: %llu steps were "
						"%s but only %llu are present (%s "
						"transactions lost)", what, w,
						(unsigned long long)must[w], how,
						(unsigned long long)s.counter[w], lost);
		}
		if (s.counter[w] > after[w] + 1)
			return report_violation(c, "%s: worker slot %d: %llu steps are "
						"present but only %llu were acknowledged "
						"(at most one may be in flight)", what, w,
						(unsigned long long)s.counter[w],
						(unsigned long long)after[w]);
		out[w] = s.counter[w];
	}
	return 0;
}

int check_after(struct ct *c, pstm_region *r, const char *what,
		uint64_t out[MAX_PROCS])
{
	return check_after_floor(c, r, what, NULL, out);
}

/* pstm check's verdict on @uri: damage is a violation; so is recovery
 * left pending when @settled (everything was recovered by an open). */
int check_offline(struct ct *c, const char *uri, const char *what, bool settled)
{
	struct check_report rep;
	int rc = region_check(uri, &rep);
	if (rc)
		return report_violation(c, "%s: pstm check cannot read %s: %s", what, uri,
					pstm_strerror(rc));
	for (unsigned i = 0; i < rep.n; i++)
		if (rep.f[i].severity == CHECK_DAMAGE ||
		    (settled && rep.f[i].severity == CHECK_PENDING)) {
			report_violation(c, "%s: pstm check: %s: %s", what,
					 rep.f[i].severity == CHECK_DAMAGE
						 ? "damage" : "recovery left pending",
					 rep.f[i].text);
			break;
		}
	check_report_free(&rep);
	return c->violated ? -1 : 0;
}
