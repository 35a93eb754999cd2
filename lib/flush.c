/*
 * flush.c - relaxed durability (PSTM_RELAXED).
 *
 * A relaxed region's transactions run on a working copy in /dev/shm
 * (base): commits write their redo record into their slot's ring there,
 * take a seq, write back and return, exactly as on a volatile region;
 * nothing is persisted on the commit path.  The file behind it (fbase) is
 * written only here, by whoever holds the region's flush token:
 *
 *   flush:      copy every ring's newly published records to the same
 *               place in the file and persist them; then persist
 *               flushed = H, where H is the durable horizon computed
 *               *before* the copy (every commit below H had published
 *               its record, so all of them were copied).
 *   checkpoint: apply the file's records with horizon <= seq < flushed to
 *               the file's data in seq order and persist it; then persist
 *               horizon = flushed, and mirror it into the working copy,
 *               which lets committers reuse their ring space.
 *
 * After a power failure the file holds the data as of its horizon plus
 * the records below flushed: recovery replays exactly [horizon, flushed),
 * the state after a prefix of the commit order (seqs of commits that
 * wrote the same word are ordered; design.md section 4).  What a power
 * failure loses is the commits after the last flush: at most flush_ms
 * plus one flush old.  The data in the file never runs ahead of its
 * records, because it is written only from records already durable:
 * whatever the page cache or the CPU writes back early is a prefix too.
 *
 * Every process runs a flush thread that tries every flush_ms; the token
 * (rt->flush_owner, a process tag) makes one of them do it.  While pstmd
 * flushes the region for us (it said FLUSHER: lib/member.c) the thread
 * has no timer: it sleeps in poll() on the pstmd connection and an
 * eventfd, and wakes only when pstmd's connection ends (its death: it
 * flushes at once and ticks again every flush_ms), on pstm_close, or at
 * this process's first commit after it fell asleep (flush_note_commit).
 * Then it checks every flush_ms/2 that pstmd keeps up: a commit of ours
 * that is not durable 1.5 flush_ms after it while no flusher has made
 * progress for 2 flush_ms (a stopped pstmd) is flushed by us; after
 * three checks without a commit of ours it sleeps again.  So an idle
 * process does no periodic work at all.  A token whose owner died is
 * taken over by CAS; the new owner first persists the whole log area,
 * since the dead one may have copied without persisting.  Committers whose ring is full, pstm_sync and pstm_close
 * take the token too.  Within a process, fl->mu serialises threads
 * (they share the tag).
 *
 * About 610 lines: the flush, the checkpoint and the thread that drives
 * them share the token and fl->mu's invariants; the pstmd watch is the
 * thread's wait, not a separate mechanism.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "flush.h"
#include "persist.h"
#include "proc.h"
#include "recovery.h"
#include "redo_log.h"
#include "replay.h"
#include "runtime.h"
#include "util.h"

#define CKPT_EVERY 8 /* timer flushes per checkpoint (a committer whose
			 ring is full asks for one at once) */

struct flusher {
	/*
	 * FLUSH_WATCH_*: written by the flush thread (seq_cst: store, then
	 * it reads rt->dseq) and by this process's committers (exchange,
	 * after their seq_cst fetch_add of rt->dseq and a seq_cst load), so
	 * that a commit either finds the request or took its seq before the
	 * thread's next read of dseq.  Alone on its cache line: committers
	 * of every thread read it.
	 */
	_Alignas(64) _Atomic int watch;
	_Alignas(64) pthread_t th;
	bool running;
	pthread_mutex_t mu;     /* our threads, one at a time on the token */
	int efd;                /* eventfd: stop requests and commit wake-ups */
	_Atomic bool stop;      /* pstm_close (then a write to efd) */
	unsigned passes;
	uint64_t last_h;        /* horizon at the last flush, and how many */
	unsigned stuck;         /* flushes in a row it has not moved */
};

static struct durable_state *file_dstate(struct pstm_region *r)
{
	return (struct durable_state *)(r->fbase + DURABLE_STATE_OFF);
}

static void set_err(struct pstm_region *r, int err)
{
	int64_t zero = 0;
	atomic_compare_exchange_strong(&r->rt->flush_err, &zero, err);
}

/*
 * Take the flush token.  Returns 1 if taken, 2 if taken from a dead
 * owner, 0 if a live process holds it and !@wait.  Called with fl->mu.
 */
static int token_take(struct pstm_region *r, bool wait)
{
	uint64_t me = proc_my_tag(r);
	unsigned n = 0;
	for (;;) {
		uint64_t cur = 0;
		if (atomic_compare_exchange_strong_explicit(
			    &r->rt->flush_owner, &cur, me, memory_order_acq_rel,
			    memory_order_acquire))
			return 1;
		/* a live owner holds it for one flush: look at /proc only
		 * now and then */
		if ((n % 256 == 0 || !wait) && proc_tag_dead(r, cur) &&
		    atomic_compare_exchange_strong_explicit(
			    &r->rt->flush_owner, &cur, me, memory_order_acq_rel,
			    memory_order_acquire))
			return 2;
		if (!wait)
			return 0;
		n++;
		struct timespec ts = {0, 20000};
		nanosleep(&ts, NULL);
	}
}

static void token_give(struct pstm_region *r)
{
	atomic_store_explicit(&r->rt->flush_owner, 0, memory_order_release);
}

/*
 * A committer that died past its commit point keeps its inflight word,
 * and with it the horizon, until someone recovers it.  Survivors do when
 * they meet its locks, fill their ring or sync, but one that never does
 * would leave the file behind for as long (a reviewer measured 20
 * acknowledged commits lost to a power failure 1.3 s later).  So when the
 * horizon has not moved for two flushes, the flusher looks at whoever
 * holds it back.
 */
static void unstick(struct pstm_region *r, uint64_t h)
{
	struct flusher *fl = r->flusher;
	if (h != fl->last_h || h >= atomic_load(&r->rt->dseq)) {
		fl->last_h = h;
		fl->stuck = 0;
		return;
	}
	if (++fl->stuck < 2)
		return;
	fl->stuck = 0;
	for (uint32_t s = 0; s < r->sb.max_slots; s++)
		if (atomic_load(&r->slots[s].inflight) == h)
			slot_owner_dead_recover(r, s);
}

/*
 * The extents of the extent records in [from, to) of slot @s's ring, to
 * the same offsets of the file's heap, flushed (drained with the ring
 * copy).  Safe to write there: the extent's allocation is in the file's
 * data (its owner checkpointed the file past it before first using it,
 * lib/overflow.c), so nothing the file's replay or checkpoints write
 * lies in it; and the owner does not write it again before this record
 * is below the file's horizon.  Records are 64-byte aligned, and every
 * published one is complete.
 */
static int copy_extents(struct pstm_region *r, uint32_t s, uint64_t from,
			uint64_t to)
{
	int rc = 0;
	for (uint64_t off = from; off + sizeof(struct log_record) <= to;
	     off += CACHELINE) {
		struct log_record *rec = region_record(r, s, off);
		if (rec->magic != LOG_REC_MAGIC_EXT)
			continue;
		struct log_entry *e = record_entries_at(r, r->base, rec, off);
		if (!e)
			continue; /* not a record (a torn one is never published) */
		uint64_t n = rec->count * sizeof(*e);
		uint8_t *d = r->fbase + ((uint8_t *)e - r->base);
		memcpy(d, e, n);
		rc |= region_flush(r, d, n);
	}
	return rc;
}

/* Copy the published, not yet copied records of every ring to the file,
 * persist them, then persist flushed.  Token held. */
static void flush_pass(struct pstm_region *r, bool whole_log)
{
	/* every commit below h has published its record (pub, release,
	 * before it cleared inflight): read h first, pub after */
	uint64_t h = redo_log_horizon_now(r);
	unstick(r, h);
	int rc = 0;

	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		struct slot *sl = &r->slots[s];
		uint64_t p = atomic_load_explicit(&sl->pub, memory_order_acquire);
		uint64_t c = atomic_load_explicit(&sl->fcur, memory_order_relaxed);
		if (p == c)
			continue;
		/* the ring started again: the old round is all checkpointed
		 * (that is what let it start again) */
		uint64_t from = (p >> 32) == (c >> 32) ? (c & 0xffffffffu) : 0;
		uint64_t to = p & 0xffffffffu;
		if (to > r->ring_bytes || from > to) {
			set_err(r, PSTM_ECORRUPT); /* damaged runtime */
			continue;
		}
		const uint8_t *src = (const uint8_t *)region_record(r, s, from);
		uint8_t *dst = r->fbase + (src - r->base);
		if (copy_extents(r, s, from, to) != 0) {
			rc = -1;
			continue;
		}
		memcpy(dst, src, to - from);
		if (region_flush(r, dst, to - from) != 0) {
			rc = -1; /* fcur stays: copy it again next time */
			continue;
		}
		atomic_store_explicit(&sl->fcur, p, memory_order_relaxed);
	}
	if (whole_log)
		rc |= region_flush(r, r->fbase + r->sb.log_off,
				   (uint64_t)r->sb.max_slots * r->sb.log_bytes);
	region_drain(r);
	CRASH_POINT(CP_FLUSH_COPIED);
	if (rc) {
		set_err(r, PSTM_EIO); /* flushed stays where it was */
		return;
	}
	struct durable_state *fds = file_dstate(r);
	if (h > atomic_load(&fds->flushed)) {
		atomic_store(&fds->flushed, h);
		if (region_persist(r, fds, sizeof(*fds)) != 0) {
			set_err(r, PSTM_EIO);
			return;
		}
	}
	atomic_store_max(&region_dstate(r)->flushed, h);
	atomic_store_max(&r->rt->flushed, h);
}

/* Apply the durable records to the file's data and raise its horizon to
 * flushed; mirror the horizon into the working copy.  Token held. */
static void ckpt_pass(struct pstm_region *r)
{
	struct durable_state *fds = file_dstate(r);
	uint64_t lo = atomic_load(&fds->horizon), hi = atomic_load(&fds->flushed);
	if (hi > lo) {
		int k = replay_apply_file(r, lo, hi);
		if (k < 0) {
			set_err(r, k == -1 ? PSTM_ENOMEM : PSTM_EIO);
			return;
		}
		CRASH_POINT(CP_CKPT_APPLIED);
		atomic_store(&fds->horizon, hi);
		if (region_persist(r, fds, sizeof(*fds)) != 0) {
			set_err(r, PSTM_EIO);
			return;
		}
	}
	atomic_store_max(&region_dstate(r)->horizon, atomic_load(&fds->horizon));
}

/* What a caller waits for: nothing, the working copy's horizon above a
 * seq, or the flushed mark at a seq.  Looked at again once the token is
 * ours: whoever held it may have done the work meanwhile. */
enum { NEED_NONE, NEED_HORIZON, NEED_FLUSHED };

static bool needed(struct pstm_region *r, int need, uint64_t seq)
{
	if (need == NEED_HORIZON)
		return atomic_load(&region_dstate(r)->horizon) <= seq;
	if (need == NEED_FLUSHED)
		return atomic_load(&r->rt->flushed) < seq;
	return true;
}

/* One flush (and checkpoint if @ckpt) under the token, unless what the
 * caller needs got done meanwhile; false if a live process held the
 * token and !@wait. */
static bool flush_once(struct pstm_region *r, bool wait, bool ckpt, int need,
		       uint64_t seq)
{
	struct flusher *fl = r->flusher;
	bool done = true;
	pthread_mutex_lock(&fl->mu);
	/* after a write error nothing may raise flushed or the horizon: a
	 * later msync may succeed without the pages that failed */
	if (!needed(r, need, seq) || atomic_load(&r->rt->flush_err))
		goto out;
	int got = token_take(r, wait);
	if (!got) {
		done = false;
		goto out;
	}
	/* a file overwritten in place by an older copy of itself (cp X A
	 * under attached processes): our records do not follow what it
	 * holds now, and copying them in (or raising its flushed mark)
	 * would mix them into it and hide the restore from the next
	 * opener.  Stop for good, as after a write error: pstm_sync and
	 * later checkpoints report it; the file stays the copy. */
	if (runtime_file_replaced(r)) {
		set_err(r, PSTM_EREPLACED);
		token_give(r);
		goto out;
	}
	/* after a takeover always flush: the dead owner's copies may not
	 * be persisted */
	if (got == 2 || needed(r, need, seq)) {
		flush_pass(r, got == 2);
		if (ckpt || ++fl->passes % CKPT_EVERY == 0)
			ckpt_pass(r);
	}
	token_give(r);
out:
	pthread_mutex_unlock(&fl->mu);
	return done;
}

/* A delegated flush thread's checks are flush_ms/2 apart; a commit of
 * ours must be durable CHECK_TICKS checks after the one that saw it. */
#define CHECK_TICKS 3
/* Checks in a row without a flusher's progress that say pstmd stopped:
 * more than its sleep between flushes (flush_ms) spans */
#define STALL_CHECKS 4

/* What woke the flush thread (after at most @timeout_ns, -1 none). */
struct wakeup {
	bool kicked;   /* efd: a commit of ours, or a stop request */
	bool daemon;   /* the pstmd connection: a message, or its end */
};

static struct wakeup wait_for(struct flusher *fl, int dfd, int64_t timeout_ns)
{
	struct pollfd p[2] = {{.fd = fl->efd, .events = POLLIN},
			      {.fd = dfd, .events = POLLIN}};
	struct timespec ts, *tp = NULL;
	struct wakeup w = {false, false};
	if (timeout_ns >= 0) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000);
		ts.tv_nsec = (long)(timeout_ns % 1000000000);
		tp = &ts;
	}
	/* every signal is blocked in this thread: no EINTR to handle */
	if (ppoll(p, dfd >= 0 ? 2 : 1, tp, NULL) <= 0)
		return w;
	if (p[0].revents & POLLIN) {
		uint64_t v;
		(void)!read(fl->efd, &v, sizeof(v));
		w.kicked = true;
	}
	w.daemon = dfd >= 0 && p[1].revents != 0;
	return w;
}

/*
 * The checks of a delegated flush thread.  At each one, k: ask to hear
 * of our next commit (watch = NOTE; what it was says whether one of ours
 * came since check k-1), then read D_k = dseq: a commit of ours that did
 * not find the request took its seq before, so every commit of ours
 * before check k has a seq below D_k.  At check k, everything below
 * D_{k-3} should be durable: pstmd flushes every flush_ms, and 1.5
 * flush_ms is slack for its lateness.  If it is not, and no flusher made
 * progress for STALL_CHECKS checks (the file's flushed mark did not move
 * and nobody held the token when we looked: a checkpoint holds it for
 * long without moving the mark), pstmd is stopped or stuck, and we flush
 * ourselves.  A pstmd that lives but flushes slowly (a long msync, a
 * loaded machine) keeps its work: taking it would only add flushes.  A
 * commit between checks j-1 and j is below D_j, checked at j+3: durable
 * at most 2 flush_ms plus one flush after it when pstmd stopped before
 * it, at most 3 flush_ms when pstmd stopped just after it (the stall
 * must be seen first), against flush_ms plus one flush while pstmd
 * flushes.
 */
struct checks {
	bool armed;                  /* checking; else asleep (no timer) */
	uint64_t seen[CHECK_TICKS];  /* D_{k-1} .. D_{k-CHECK_TICKS} */
	bool ours[CHECK_TICKS];      /* a commit of ours before check k-i */
	uint64_t mark;               /* rt->flushed at the last check */
	unsigned stalled;            /* checks in a row without progress */
};

static void arm(struct checks *c)
{
	memset(c, 0, sizeof(*c));
	c->armed = true;
	c->ours[0] = true; /* the commit that woke us */
}

/* Check k.  False if the thread may sleep until our next commit. */
static bool check_tick(struct pstm_region *r, struct checks *c)
{
	struct flusher *fl = r->flusher;
	bool mine = atomic_exchange(&fl->watch, FLUSH_WATCH_NOTE) == FLUSH_WATCH_OFF;
	uint64_t d = atomic_load(&r->rt->dseq);
	uint64_t mark = atomic_load_explicit(&r->rt->flushed, memory_order_acquire);
	uint64_t due = c->seen[CHECK_TICKS - 1];
	bool quiet = !mine;
	for (int i = CHECK_TICKS - 1; i > 0; i--) {
		c->seen[i] = c->seen[i - 1];
		c->ours[i] = c->ours[i - 1];
	}
	c->seen[0] = d;
	c->ours[0] = mine;
	for (int i = 1; i < CHECK_TICKS; i++)
		quiet = quiet && !c->ours[i];
	if (mark != c->mark || atomic_load(&r->rt->flush_owner) != 0)
		c->stalled = 0; /* someone flushes or checkpoints */
	else
		c->stalled++;
	c->mark = mark;
	bool durable = mark >= due;
	if (!durable && c->stalled >= STALL_CHECKS) {
		/* pstmd stopped: flush ourselves (unless a live process
		 * holds the token: the next check tries again) */
		durable = flush_once(r, false, false, NEED_FLUSHED, due) &&
			  atomic_load(&r->rt->flushed) >= due;
		c->mark = atomic_load(&r->rt->flushed); /* measure from here */
	}
	if (!quiet || !durable)
		return true;
	/* every commit of ours is below due, durable: sleep, unless one came
	 * since the exchange above (it cleared the request) */
	int note = FLUSH_WATCH_NOTE;
	if (atomic_compare_exchange_strong(&fl->watch, &note, FLUSH_WATCH_SLEEP))
		return false;
	c->ours[0] = true;
	return true;
}

static void *flusher_main(void *arg)
{
	struct pstm_region *r = arg;
	struct flusher *fl = r->flusher;
	const uint64_t period = (uint64_t)r->sb.flush_ms * 1000000u;
	const uint64_t tick = period / 2 ? period / 2 : 1;
	uint64_t next = mono_ns() + period; /* the next flush, or check */
	bool delegated = false;             /* pstmd said FLUSHER */
	unsigned soon = 0; /* flushes to retry 1 ms apart: pstmd's death
			      reaches us before /proc says it died, and it
			      may have died holding the token */
	struct checks c = {0};
	sigset_t all;

	/* signals are for the application's threads */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!atomic_load(&fl->stop)) {
		int dfd = r->flush_delegated ? r->flush_daemon_fd : -1;
		uint64_t now = mono_ns();
		int64_t timeout = delegated && !c.armed ? -1
				  : next > now		  ? (int64_t)(next - now)
							  : 0;
		struct wakeup w = wait_for(fl, dfd, timeout);
		if (atomic_load(&fl->stop))
			break;
		if (w.daemon) {
			bool was = delegated;
			delegated = r->flush_delegated(r);
			if (was && !delegated) {
				/* pstmd died or let go: the work is ours again,
				 * from now on */
				atomic_store(&fl->watch, FLUSH_WATCH_OFF);
				c.armed = false;
				soon = flush_once(r, false, false, NEED_NONE, 0) ? 0 : 100;
				next = mono_ns() + (soon ? 1000000u : period);
				continue;
			}
			if (delegated && !was) {
				/* our commits since our last flush are pstmd's
				 * now: checked like any */
				atomic_store(&fl->watch, FLUSH_WATCH_NOTE);
				arm(&c);
				next = mono_ns() + tick;
			}
		}
		if (w.kicked && delegated && !c.armed) {
			arm(&c);
			next = mono_ns() + tick;
			check_tick(r, &c); /* check 0: D_0, the request again */
			continue;
		}
		if (mono_ns() < next)
			continue;
		if (!delegated) {
			bool done = flush_once(r, false, false, NEED_NONE, 0);
			soon = done || !soon ? 0 : soon - 1;
			next = mono_ns() + (soon ? 1000000u : period);
		} else if (c.armed) {
			c.armed = check_tick(r, &c);
			next = mono_ns() + tick;
		}
	}
	return NULL;
}

void flush_commit_seen(struct pstm_region *r)
{
	struct flusher *fl = r->flusher;
	if (atomic_exchange(&fl->watch, FLUSH_WATCH_OFF) == FLUSH_WATCH_SLEEP) {
		uint64_t one = 1;
		(void)!write(fl->efd, &one, sizeof(one));
	}
}

int flush_start(struct pstm_region *r)
{
	struct flusher *fl = aligned_alloc(64, sizeof(*fl));

	if (!fl)
		return PSTM_ENOMEM;
	memset(fl, 0, sizeof(*fl));
	fl->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fl->efd < 0) {
		free(fl);
		return PSTM_ENOMEM;
	}
	pthread_mutex_init(&fl->mu, NULL);
	r->flusher = fl;
	r->flush_watch = &fl->watch;
	if (pthread_create(&fl->th, NULL, flusher_main, r) != 0) {
		r->flusher = NULL;
		r->flush_watch = NULL;
		pthread_mutex_destroy(&fl->mu);
		close(fl->efd);
		free(fl);
		return PSTM_ENOMEM;
	}
	pthread_setname_np(fl->th, "pstm-flush"); /* top -H, /proc comm */
	fl->running = true;
	return 0;
}

/* Flush until every commit with seq < @target is durable. */
static int sync_to(struct pstm_region *r, uint64_t target)
{
	unsigned tries = 0;
	while (atomic_load_explicit(&r->rt->flushed, memory_order_acquire) < target) {
		int64_t e = atomic_load(&r->rt->flush_err);
		if (e)
			return (int)e;
		flush_once(r, true, false, NEED_FLUSHED, target);
		if (atomic_load(&r->rt->flushed) < target) {
			/* a commit below target is still writing back, or
			 * its process died with it */
			if (++tries % 64 == 0)
				proc_recover_all_dead(r);
			sched_yield();
		}
	}
	return (int)atomic_load(&r->rt->flush_err);
}

int flush_stop(struct pstm_region *r)
{
	struct flusher *fl = r->flusher;
	if (!fl)
		return 0;
	if (fl->running) { /* pstm_close: never in a fork child */
		uint64_t one = 1;
		atomic_store(&fl->stop, true);
		(void)!write(fl->efd, &one, sizeof(one));
		pthread_join(fl->th, NULL);
	}
	fl->running = false;
	int rc = sync_to(r, atomic_load(&r->rt->dseq));
	if (!rc)
		flush_once(r, true, true, NEED_NONE, 0); /* leave the file's data current */
	rc = rc ? rc : (int)atomic_load(&r->rt->flush_err);
	r->flusher = NULL;
	r->flush_watch = NULL;
	pthread_mutex_destroy(&fl->mu);
	close(fl->efd);
	free(fl);
	return rc;
}

int flush_checkpoint(struct pstm_region *r, uint64_t past)
{
	unsigned tries = 0;
	while (atomic_load(&region_dstate(r)->horizon) <= past) {
		/* the file cannot be written: no ring space can be freed,
		 * the committer fails with the error (nothing lost: it had
		 * locked nothing; earlier commits stay in the working copy) */
		int64_t e = atomic_load(&r->rt->flush_err);
		if (e)
			return (int)e;
		flush_once(r, true, true, NEED_HORIZON, past);
		if (atomic_load(&region_dstate(r)->horizon) <= past) {
			if (++tries % 16 == 0)
				proc_recover_all_dead(r);
			sched_yield();
		}
	}
	return 0;
}

int flush_sync(struct pstm_region *r)
{
	if (!r->relaxed || !r->flusher)
		return 0;
	return sync_to(r, atomic_load(&r->rt->dseq));
}
