/*
 * driver.c - the shared benchmark driver: for each configuration it sets
 * the system up once, then per run forks P workers that attach, wait at a
 * barrier, run driver-generated operations until told to stop, and report
 * counts; worker 0 checks the workload's invariant before and after.
 *
 * Timing: the parent releases the barrier at t0, sleeps the run's
 * duration, raises the stop flag, and divides all completed transactions
 * by (last worker's finish - t0), so an operation in flight at the stop
 * is counted together with the time it took.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

#define MAX_PROCS 16
#define MAX_RUNS 15
#define MAX_LIST 8
#define READY_TIMEOUT_S 300 /* attach + pre-check of a big store */
#define EXIT_TIMEOUT_S 60   /* stop flag to exit, incl. post-check */

/* Per worker results; written by that worker only, read by the parent
 * after the worker exited (waitpid orders the accesses). */
struct worker_result {
	_Alignas(64) uint64_t txs; /* completed operations (own line) */
	int64_t set_delta; /* intset: successful inserts - deletes */
	uint64_t end_ns;   /* CLOCK_MONOTONIC after its last operation */
	int failed;        /* an operation returned an error */
};

/* The control block, MAP_SHARED|MAP_ANONYMOUS, created per run. */
struct control {
	_Atomic int ready; /* workers attached (worker 0 also pre-checked) */
	_Atomic int go;    /* parent: barrier released */
	_Atomic int stop;  /* parent: stop issuing operations */
	_Atomic int done;  /* workers finished issuing */
	struct bench_state pre, post; /* worker 0's checks */
	int pre_ok, post_ok;
	struct worker_result w[MAX_PROCS];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull),
			       (long)(ns % 1000000000ull) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static const char *workload_name(enum bench_workload w)
{
	switch (w) {
	case WL_BANK:
		return "bank";
	case WL_READMOSTLY:
		return "readmostly";
	case WL_INTSET:
		return "intset";
	}
	return "?";
}

static int workload_parse(const char *s, enum bench_workload *w)
{
	if (strcmp(s, "bank") == 0)
		*w = WL_BANK;
	else if (strcmp(s, "readmostly") == 0)
		*w = WL_READMOSTLY;
	else if (strcmp(s, "intset") == 0)
		*w = WL_INTSET;
	else
		return -1;
	return 0;
}

static const char *cur_system = "bench";

int bench_fail(const char *what, const char *detail)
{
	fprintf(stderr, "%s: %s: %s\n", cur_system, what, detail ? detail : "");
	return -1;
}

void bench_path(char *buf, size_t n, const char *dir, const char *system,
		const char *suffix)
{
	snprintf(buf, n, "%s/pstm-bench-%s-%u%s", dir, system,
		 (unsigned)getuid(), suffix);
}

/* ---- operation stream -------------------------------------------- */

/* xorshift64*: fast, good enough to pick accounts and keys */
struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

/* uniform in [0, n) (Lemire's multiply-shift; bias negligible here) */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

static void transfer_op(struct rng *r, uint64_t n, struct bench_op *op)
{
	op->kind = OP_TRANSFER;
	op->from = rng_below(r, n);
	do
		op->to = rng_below(r, n);
	while (op->to == op->from && n > 1);
	op->amount = (int64_t)rng_below(r, 100) + 1;
}

static void next_op(const struct bench_cfg *c, struct rng *r,
		    struct bench_op *op)
{
	uint64_t d;

	switch (c->workload) {
	case WL_BANK:
		transfer_op(r, c->size, op);
		break;
	case WL_READMOSTLY:
		if (rng_below(r, 10) == 0) {
			transfer_op(r, c->size, op);
			break;
		}
		op->kind = OP_READ;
		for (int i = 0; i < BENCH_READ_N; i++)
			op->accounts[i] = rng_below(r, c->size);
		break;
	case WL_INTSET:
		d = rng_below(r, 10);
		op->kind = d == 0 ? OP_INSERT : d == 1 ? OP_DELETE : OP_LOOKUP;
		op->key = rng_below(r, c->size);
		break;
	}
}

/* ---- one run ------------------------------------------------------- */

static int check_state(const struct bench_cfg *c, const struct bench_state *st)
{
	if (c->workload == WL_INTSET)
		return 0; /* count is compared against the deltas */
	return st->total == (int64_t)c->size * BENCH_INIT_BALANCE ? 0 : -1;
}

static void worker(const struct bench_system *sys, const struct bench_cfg *c,
		   struct control *ctl, int id, uint64_t seed)
{
	struct worker_result *me = &ctl->w[id];
	struct rng rng = { bench_mix64(seed) | 1 };
	struct bench_op op;
	int64_t res;
	int rc = 0;

	if (sys->attach(c) != 0)
		_exit(2);
	if (id == 0) {
		ctl->pre_ok = sys->check(c, &ctl->pre) == 0 &&
			      check_state(c, &ctl->pre) == 0;
	}
	atomic_fetch_add_explicit(&ctl->ready, 1, memory_order_release);
	while (!atomic_load_explicit(&ctl->go, memory_order_acquire))
		sleep_ns(20000);

	/* the stop flag is read relaxed: a late stop only costs one op */
	while (!atomic_load_explicit(&ctl->stop, memory_order_relaxed)) {
		next_op(c, &rng, &op);
		res = 0;
		if (sys->exec(&op, &res) != 0) {
			me->failed = 1;
			rc = 1;
			break;
		}
		me->txs++;
		if (op.kind == OP_INSERT && res)
			me->set_delta++;
		else if (op.kind == OP_DELETE && res)
			me->set_delta--;
	}
	me->end_ns = now_ns();
	atomic_fetch_add_explicit(&ctl->done, 1, memory_order_acq_rel);

	if (id == 0) {
		while (atomic_load_explicit(&ctl->done, memory_order_acquire) <
		       c->procs)
			sleep_ns(100000);
		ctl->post_ok = sys->check(c, &ctl->post) == 0 &&
			       check_state(c, &ctl->post) == 0;
	}
	sys->detach();
	_exit(rc);
}

static void kill_all(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
}

/* Wait for all workers until deadline; 0 if all exited with status 0. */
static int reap(pid_t *pids, int n, uint64_t deadline)
{
	int bad = 0, left = 0, st;

	for (int i = 0; i < n; i++)
		left += pids[i] > 0;
	while (left > 0) {
		for (int i = 0; i < n; i++) {
			if (pids[i] <= 0)
				continue;
			pid_t p = waitpid(pids[i], &st, WNOHANG);
			if (p == 0)
				continue;
			if (p < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				if (p > 0 && WIFSIGNALED(st))
					fprintf(stderr, "%s: worker %d killed "
						"by signal %d\n", cur_system, i,
						WTERMSIG(st));
				else if (p > 0)
					fprintf(stderr, "%s: worker %d exit "
						"%d\n", cur_system, i,
						WEXITSTATUS(st));
				bad = 1;
			}
			pids[i] = 0;
			left--;
		}
		if (left > 0 && now_ns() > deadline) {
			fprintf(stderr, "%s: %d worker(s) hung; killing\n",
				cur_system, left);
			kill_all(pids, n);
			deadline = UINT64_MAX;
			bad = 1;
		}
		if (left > 0)
			sleep_ns(1000000);
	}
	return bad ? -1 : 0;
}

/* One timed run: returns tx/s; *ok = 0 if the invariant broke or a
 * worker failed (the rate is still reported, flagged). */
static double run_once(const struct bench_system *sys,
		       const struct bench_cfg *c, double duration_s,
		       uint64_t seed, int *run_ok)
{
	struct control *ctl;
	pid_t pids[MAX_PROCS] = { 0 };
	uint64_t t0, end = 0, txs = 0;
	int64_t delta = 0;
	int ok = 1;
	double txps;

	*run_ok = 0;
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED) {
		bench_fail("mmap", strerror(errno));
		return -1;
	}
	memset(ctl, 0, sizeof(*ctl));
	fflush(NULL);
	for (int i = 0; i < c->procs; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			worker(sys, c, ctl, i, seed * 1000003u + (uint64_t)i);
		if (pids[i] < 0) {
			bench_fail("fork", strerror(errno));
			kill_all(pids, i);
			reap(pids, i, 0);
			munmap(ctl, sizeof(*ctl));
			return -1;
		}
	}

	/* barrier: all attached, or one died */
	uint64_t deadline = now_ns() + READY_TIMEOUT_S * 1000000000ull;
	while (atomic_load_explicit(&ctl->ready, memory_order_acquire) <
	       c->procs) {
		int st;
		for (int i = 0; i < c->procs; i++)
			if (pids[i] > 0 && waitpid(pids[i], &st, WNOHANG) > 0) {
				fprintf(stderr, "%s: worker %d died before "
					"start\n", cur_system, i);
				pids[i] = 0;
				ok = 0;
			}
		if (!ok || now_ns() > deadline) {
			atomic_store(&ctl->go, 1);
			atomic_store(&ctl->stop, 1);
			ok = 0;
			break;
		}
		sleep_ns(200000);
	}

	t0 = now_ns();
	atomic_store_explicit(&ctl->go, 1, memory_order_release);
	sleep_ns((uint64_t)(duration_s * 1e9));
	atomic_store_explicit(&ctl->stop, 1, memory_order_relaxed);
	if (reap(pids, c->procs, now_ns() + EXIT_TIMEOUT_S * 1000000000ull))
		ok = 0;

	for (int i = 0; i < c->procs; i++) {
		txs += ctl->w[i].txs;
		delta += ctl->w[i].set_delta;
		if (ctl->w[i].end_ns > end)
			end = ctl->w[i].end_ns;
		if (ctl->w[i].failed)
			ok = 0;
	}
	if (!ctl->pre_ok || !ctl->post_ok) {
		fprintf(stderr, "%s: %s invariant check failed %s the run\n",
			cur_system, workload_name(c->workload),
			ctl->pre_ok ? "after" : "before");
		ok = 0;
	} else if (c->workload == WL_INTSET &&
		   (int64_t)ctl->post.count != (int64_t)ctl->pre.count + delta) {
		fprintf(stderr, "%s: intset count %llu, expected %llu%+lld\n",
			cur_system, (unsigned long long)ctl->post.count,
			(unsigned long long)ctl->pre.count, (long long)delta);
		ok = 0;
	}
	txps = end > t0 ? (double)txs * 1e9 / (double)(end - t0) : 0;
	munmap(ctl, sizeof(*ctl));
	*run_ok = ok;
	return txps;
}

/* ---- configurations --------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int parse_list(char *s, char **out, int max)
{
	int n = 0;
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
		if (n < max)
			out[n++] = tok;
	return n;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s -s SYSTEM[,..] [-w bank,readmostly,intset]\n"
		"       [-n SIZE,..] [-p PROCS,..] [-r RUNS] [-d SECONDS]\n"
		"       [-o results.csv]\n"
		"systems in this program:",
		argv0);
	for (int i = 0; bench_systems[i]; i++)
		fprintf(stderr, " %s", bench_systems[i]->name);
	fprintf(stderr, "\n");
	exit(2);
}

static const struct bench_system *find_system(const char *name)
{
	for (int i = 0; bench_systems[i]; i++)
		if (strcmp(bench_systems[i]->name, name) == 0)
			return bench_systems[i];
	return NULL;
}

/* All proc counts of one (system, workload, size) share one setup. */
static int bench_config(const struct bench_system *sys, struct bench_cfg *c,
			char **procs, int nprocs, int runs, double dur,
			FILE *csv)
{
	int failures = 0;
	uint64_t t = now_ns();

	if (sys->setup(c) != 0) {
		bench_fail("setup failed", workload_name(c->workload));
		sys->teardown(c);
		for (int p = 0; p < nprocs; p++) {
			fprintf(csv, "%s,%s,%llu,%s,0,0,0,FAIL\n",
				workload_name(c->workload), sys->name,
				(unsigned long long)c->size, procs[p]);
		}
		fflush(csv);
		return nprocs;
	}
	double setup_s = (double)(now_ns() - t) / 1e9;

	for (int p = 0; p < nprocs; p++) {
		double v[MAX_RUNS];
		int ok = 1;

		c->procs = atoi(procs[p]);
		if (c->procs < 1 || c->procs > MAX_PROCS)
			usage("bench");
		if (c->procs > sys->max_procs)
			continue;
		for (int r = 0; r < runs; r++) {
			uint64_t seed = (uint64_t)c->workload * 7919 +
					c->size * 31 + (uint64_t)c->procs * 13 +
					(uint64_t)r;
			int run_ok;
			v[r] = run_once(sys, c, dur, seed, &run_ok);
			if (v[r] < 0 || !run_ok)
				ok = 0;
			if (v[r] < 0)
				v[r] = 0;
		}
		qsort(v, (size_t)runs, sizeof(v[0]), cmp_double);
		double med = runs % 2 ? v[runs / 2]
				      : (v[runs / 2 - 1] + v[runs / 2]) / 2;
		fprintf(csv, "%s,%s,%llu,%d,%.0f,%.0f,%.0f,%s\n",
			workload_name(c->workload), sys->name,
			(unsigned long long)c->size, c->procs, med, v[0],
			v[runs - 1], ok ? "ok" : "FAIL");
		fflush(csv);
		printf("%-10s %-13s %8llu  P=%d  %12.0f tx/s  [%.0f .. %.0f]"
		       "  setup %.1fs  %s\n",
		       workload_name(c->workload), sys->name,
		       (unsigned long long)c->size, c->procs, med, v[0],
		       v[runs - 1], setup_s, ok ? "ok" : "INVARIANT FAILED");
		fflush(stdout);
		setup_s = 0;
		failures += !ok;
	}
	sys->teardown(c);
	return failures;
}

int main(int argc, char **argv)
{
	char *systems[MAX_LIST], *wls[MAX_LIST], *sizes[MAX_LIST],
		*procs[MAX_LIST];
	char wl_default[] = "bank,readmostly,intset", size_default[] = "1024",
	     procs_default[] = "1,2";
	int nsys = 0, nwl, nsize, nprocs, runs = 3, opt, failures = 0;
	double dur = 0.5;
	const char *out = NULL;
	char *wl_arg = wl_default, *size_arg = size_default,
	     *procs_arg = procs_default;
	FILE *csv = stdout;

	while ((opt = getopt(argc, argv, "s:w:n:p:r:d:o:h")) != -1) {
		switch (opt) {
		case 's':
			nsys = parse_list(optarg, systems, MAX_LIST);
			break;
		case 'w':
			wl_arg = optarg;
			break;
		case 'n':
			size_arg = optarg;
			break;
		case 'p':
			procs_arg = optarg;
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'd':
			dur = strtod(optarg, NULL);
			break;
		case 'o':
			out = optarg;
			break;
		default:
			usage(argv[0]);
		}
	}
	nwl = parse_list(wl_arg, wls, MAX_LIST);
	nsize = parse_list(size_arg, sizes, MAX_LIST);
	nprocs = parse_list(procs_arg, procs, MAX_LIST);
	if (nsys == 0 || runs < 1 || runs > MAX_RUNS || dur <= 0 ||
	    dur > 60)
		usage(argv[0]);
	if (out) {
		csv = fopen(out, "a");
		if (!csv) {
			perror(out);
			return 2;
		}
		if (fseek(csv, 0, SEEK_END) == 0 && ftell(csv) == 0)
			fprintf(csv, "workload,system,size,procs,txps_median,"
				     "txps_min,txps_max,invariant\n");
	}

	for (int s = 0; s < nsys; s++)
		if (!find_system(systems[s]))
			usage(argv[0]);
	/*
	 * Each system runs in its own child process: libraries keep
	 * process-wide state (libpmem reads PMEM_IS_PMEM_FORCE once), so
	 * one system's settings must not leak into the next.
	 */
	for (int s = 0; s < nsys; s++) {
		const struct bench_system *sys = find_system(systems[s]);
		int st;

		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid > 0) {
			if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
			    WEXITSTATUS(st) != 0)
				failures++;
			continue;
		}
		cur_system = sys->name;
		for (int w = 0; w < nwl; w++) {
			struct bench_cfg c = { .system = sys->name };
			if (workload_parse(wls[w], &c.workload) != 0)
				usage(argv[0]);
			for (int n = 0; n < nsize; n++) {
				c.size = strtoull(sizes[n], NULL, 10);
				if (c.size < 2)
					usage(argv[0]);
				failures += bench_config(sys, &c, procs,
							 nprocs, runs, dur,
							 csv);
			}
		}
		fflush(NULL);
		_exit(failures ? 1 : 0);
	}
	if (csv != stdout)
		fclose(csv);
	return failures ? 1 : 0;
}
