/*
 * taskq_bench.c - the task tree on the region's task queue, against the
 * process-local add/run and a SQLite table used as a job queue.
 *
 *   taskq_bench [-n TASKS] [-p PROCS] [-t THREADS] [-r RUNS]
 *               [-s pstm-queue,pstm-run,sqlite-queue] [-o CSV]
 *
 * The tree: task i adds 1 to counter mix(i) % 1024 and adds tasks 2i+1
 * and 2i+2 while they are below TASKS (default 1,000,000), from task 0.
 * PROCS processes (default 2) of THREADS threads (default 2) run it:
 *   pstm-queue    one shm region, pstm_queue_run(r, THREADS) in every
 *                 process: one tree, shared by all of them
 *   pstm-run      the same region and counters, pstm_run(r, THREADS) in
 *                 every process, each on its own part of the tree (the
 *                 subtrees under the first level with PROCS nodes: the
 *                 process-local queue cannot share one tree)
 *   sqlite-queue  a table jobs(id INTEGER PRIMARY KEY, node) in WAL mode,
 *                 synchronous=OFF, in /dev/shm; one connection per
 *                 thread; each task one BEGIN IMMEDIATE transaction that
 *                 selects the oldest job, deletes it, updates the counter
 *                 and inserts the two children
 * Runs are interleaved (run 1 of every system, then run 2, ...); the
 * median, min and max of tasks/s (from the start barrier to the last
 * process's end) are printed with aborts per task (pstm: rolled-back
 * attempts; SQLite: busy retries) and, with -o, appended as CSV rows
 * workload,system,size,procs,txps_median,txps_min,txps_max,invariant
 * (workload "tasktree").  The invariant: the counters sum to TASKS and
 * nothing is left queued.  Exit status 1 if it failed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pstm.h"

#define COUNTERS 1024
#define MAX_PROCS 16
#define MAX_RUNS 15

static uint64_t ntasks = 1000000;
static int nprocs = 2, nthreads = 2, nruns = 3;

struct shared {
	_Atomic int ready, go, failed;
	double start;
	double end[MAX_PROCS];
	uint64_t aborts[MAX_PROCS];
};
static struct shared *sh;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

/* In a worker: wait for the others, then go. */
static void barrier(void)
{
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load(&sh->go))
		usleep(50);
}

/* ------------------------------------------------------------- pstm */

static const char *pstm_uri = "shm:pstm-taskq-bench";
static pstm_off counters;

static int p_setup(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_off root = pstm_root(tx, 8);
	counters = pstm_load64(tx, root);
	if (!counters) {
		counters = pstm_alloc(tx, 8 * COUNTERS);
		pstm_store64(tx, root, counters);
	}
	return 0;
}

static void count(pstm_tx *tx, uint64_t i)
{
	pstm_off c = counters + 8 * (mix(i) % COUNTERS);
	pstm_store64(tx, c, pstm_load64(tx, c) + 1);
}

static int q_task(pstm_tx *tx, const void *arg, size_t len)
{
	uint64_t i;
	if (len != sizeof(i))
		return 1;
	memcpy(&i, arg, sizeof(i));
	count(tx, i);
	for (uint64_t c = 2 * i + 1; c <= 2 * i + 2 && c < ntasks; c++) {
		int rc = pstm_tx_enqueue(tx, "node", &c, sizeof(c));
		if (rc)
			return rc;
	}
	return 0;
}

static int r_task(pstm_tx *tx, void *arg)
{
	uint64_t i = (uint64_t)(uintptr_t)arg;
	count(tx, i);
	for (uint64_t c = 2 * i + 1; c <= 2 * i + 2 && c < ntasks; c++)
		pstm_tx_add(tx, r_task, (void *)(uintptr_t)c);
	return 0;
}

/* run the top levels, above the first with at least PROCS nodes */
static uint64_t top_level(void)
{
	uint64_t first = 0, width = 1;
	while (width < (uint64_t)nprocs) {
		first += width;
		width *= 2;
	}
	return first; /* nodes [first, 2 first] start the subtrees */
}

static int top_task(pstm_tx *tx, void *arg)
{
	uint64_t i = (uint64_t)(uintptr_t)arg;
	count(tx, i);
	return 0;
}

static int pstm_worker(int queue, int p)
{
	pstm_region *r;
	struct pstm_stats st;
	int rc;
	if (pstm_open(pstm_uri, &r) || pstm_atomic(r, p_setup, NULL))
		return 2;
	if (queue && pstm_register(r, "node", q_task))
		return 3;
	if (!queue) {
		uint64_t first = top_level();
		for (uint64_t i = first + (uint64_t)p; i <= 2 * first && i < ntasks;
		     i += (uint64_t)nprocs)
			if (pstm_add(r, r_task, (void *)(uintptr_t)i))
				return 4;
		for (uint64_t i = 0; p == 0 && i < first; i++)
			if (pstm_add(r, top_task, (void *)(uintptr_t)i))
				return 4;
	}
	barrier();
	rc = queue ? pstm_queue_run(r, nthreads) : pstm_run(r, nthreads);
	sh->end[p] = now_s();
	if (rc) {
		fprintf(stderr, "taskq_bench: %s: %s\n", queue ? "pstm_queue_run" : "pstm_run",
			pstm_strerror(rc));
		return 5;
	}
	pstm_stats_get(r, &st);
	sh->aborts[p] = st.aborts_read + st.aborts_lock + st.aborts_validate;
	pstm_close(r);
	return 0;
}

/* p_setup finds the counters (or makes them): zero them once */
static int p_zero(pstm_tx *tx, void *arg)
{
	(void)arg;
	for (int i = 0; i < COUNTERS; i++)
		pstm_store64(tx, counters + 8 * (uint64_t)i, 0);
	return 0;
}

static int p_sum(pstm_tx *tx, void *arg)
{
	uint64_t *sum = arg;
	*sum = 0;
	for (int i = 0; i < COUNTERS; i++)
		*sum += pstm_load64(tx, counters + 8 * (uint64_t)i);
	return 0;
}

static int pstm_prepare(int queue)
{
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 256ull << 20, .replace = 1};
	uint64_t zero = 0;
	if (pstm_create(pstm_uri, &o, &r) || pstm_atomic(r, p_setup, NULL) ||
	    pstm_atomic(r, p_zero, NULL))
		return -1;
	if (queue && (pstm_register(r, "node", q_task) ||
		      pstm_enqueue(r, "node", &zero, sizeof(zero))))
		return -1;
	return pstm_close(r);
}

static int pstm_verify(int queue)
{
	pstm_region *r;
	uint64_t sum = 0;
	int ok;
	if (pstm_open(pstm_uri, &r) || pstm_atomic(r, p_setup, NULL) ||
	    pstm_atomic_ro(r, p_sum, &sum))
		return 0;
	ok = sum == ntasks;
	/* nothing left: a second run finds the queue empty at once */
	if (queue && pstm_queue_run(r, 1) != 0)
		ok = 0;
	pstm_close(r);
	pstm_unlink(pstm_uri);
	if (!ok)
		fprintf(stderr, "taskq_bench: counters sum to %llu, not %llu\n",
			(unsigned long long)sum, (unsigned long long)ntasks);
	return ok;
}

/* ----------------------------------------------------------- sqlite */

static const char *db_path = "/dev/shm/pstm-taskq-bench.db";

static void db_remove(void)
{
	char aux[300];
	unlink(db_path);
	snprintf(aux, sizeof(aux), "%s-wal", db_path);
	unlink(aux);
	snprintf(aux, sizeof(aux), "%s-shm", db_path);
	unlink(aux);
}

static sqlite3 *db_open(void)
{
	sqlite3 *db;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF", NULL,
			 NULL, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

enum { Q_BEGIN, Q_TAKE, Q_DELETE, Q_COUNT, Q_INSERT, Q_COMMIT, Q_N };
static const char *const q_sql[Q_N] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_TAKE] = "SELECT id, node FROM jobs ORDER BY id LIMIT 1",
	[Q_DELETE] = "DELETE FROM jobs WHERE id = ?1",
	[Q_COUNT] = "UPDATE counters SET v = v + 1 WHERE id = ?1",
	[Q_INSERT] = "INSERT INTO jobs(node) VALUES (?1)",
	[Q_COMMIT] = "COMMIT",
};

/* Step @s to its end; retries a busy database (counted). */
static int step(sqlite3_stmt *s, uint64_t *busy, int *row)
{
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		(*busy)++;
		sqlite3_reset(s);
	}
	if (row)
		*row = rc == SQLITE_ROW;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

struct sq_thread {
	uint64_t busy;
	int rc;
};

static void *sqlite_thread(void *arg)
{
	struct sq_thread *t = arg;
	sqlite3 *db = db_open();
	sqlite3_stmt *st[Q_N] = {0};
	t->rc = -1;
	if (!db)
		return NULL;
	for (int i = 0; i < Q_N; i++)
		if (sqlite3_prepare_v2(db, q_sql[i], -1, &st[i], NULL) != SQLITE_OK)
			goto out;
	for (;;) {
		int row;
		if (step(st[Q_BEGIN], &t->busy, NULL) || step(st[Q_TAKE], &t->busy, &row))
			goto out;
		if (!row) { /* empty: every task runs inside its own write
			       transaction, so none is running either */
			sqlite3_reset(st[Q_TAKE]);
			sqlite3_reset(st[Q_BEGIN]);
			if (step(st[Q_COMMIT], &t->busy, NULL))
				goto out;
			sqlite3_reset(st[Q_COMMIT]);
			break;
		}
		sqlite3_int64 id = sqlite3_column_int64(st[Q_TAKE], 0);
		uint64_t i = (uint64_t)sqlite3_column_int64(st[Q_TAKE], 1);
		sqlite3_reset(st[Q_TAKE]);
		sqlite3_bind_int64(st[Q_DELETE], 1, id);
		sqlite3_bind_int64(st[Q_COUNT], 1, (sqlite3_int64)(mix(i) % COUNTERS));
		if (step(st[Q_DELETE], &t->busy, NULL) || step(st[Q_COUNT], &t->busy, NULL))
			goto out;
		sqlite3_reset(st[Q_DELETE]);
		sqlite3_reset(st[Q_COUNT]);
		for (uint64_t c = 2 * i + 1; c <= 2 * i + 2 && c < ntasks; c++) {
			sqlite3_bind_int64(st[Q_INSERT], 1, (sqlite3_int64)c);
			if (step(st[Q_INSERT], &t->busy, NULL))
				goto out;
			sqlite3_reset(st[Q_INSERT]);
		}
		if (step(st[Q_COMMIT], &t->busy, NULL))
			goto out;
		sqlite3_reset(st[Q_BEGIN]);
		sqlite3_reset(st[Q_COMMIT]);
	}
	t->rc = 0;
out:
	if (t->rc)
		fprintf(stderr, "taskq_bench: sqlite: %s\n", sqlite3_errmsg(db));
	for (int i = 0; i < Q_N; i++)
		sqlite3_finalize(st[i]);
	sqlite3_close(db);
	return NULL;
}

static int sqlite_worker(int p)
{
	pthread_t th[64];
	struct sq_thread t[64] = {{0}};
	int n = nthreads < 64 ? nthreads : 64, rc = 0;
	barrier();
	for (int i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, sqlite_thread, &t[i]))
			return 2;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		rc |= t[i].rc;
		sh->aborts[p] += t[i].busy;
	}
	sh->end[p] = now_s();
	return rc ? 3 : 0;
}

static int sqlite_prepare(void)
{
	sqlite3 *db;
	char sql[128];
	db_remove();
	if (!(db = db_open()))
		return -1;
	int rc = sqlite3_exec(db, "CREATE TABLE jobs(id INTEGER PRIMARY KEY, node INTEGER);"
				  "CREATE TABLE counters(id INTEGER PRIMARY KEY, v INTEGER);"
				  "BEGIN", NULL, NULL, NULL);
	for (int i = 0; rc == SQLITE_OK && i < COUNTERS; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO counters VALUES (%d, 0)", i);
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "INSERT INTO jobs(node) VALUES (0); COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int sqlite_verify(void)
{
	sqlite3 *db = db_open();
	sqlite3_stmt *s;
	int ok = 0;
	if (db && sqlite3_prepare_v2(db, "SELECT (SELECT sum(v) FROM counters), "
				     "(SELECT count(*) FROM jobs)", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			ok = (uint64_t)sqlite3_column_int64(s, 0) == ntasks &&
			     sqlite3_column_int64(s, 1) == 0;
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	db_remove();
	if (!ok)
		fprintf(stderr, "taskq_bench: sqlite: counters or jobs wrong\n");
	return ok;
}

/* ------------------------------------------------------------ driver */

enum { SYS_QUEUE, SYS_RUN, SYS_SQLITE, SYS_N };
static const char *const sys_name[SYS_N] = {"pstm-queue", "pstm-run", "sqlite-queue"};

/* One run of system @s: tasks/s, or -1 if it failed; *aborts per task. */
static double run_once(int s, double *aborts, int *ok)
{
	pid_t pid[MAX_PROCS];
	memset(sh, 0, sizeof(*sh));
	*ok = 0;
	*aborts = 0;
	if ((s == SYS_SQLITE ? sqlite_prepare() : pstm_prepare(s == SYS_QUEUE)) != 0)
		return -1;
	fflush(stdout);
	for (int p = 0; p < nprocs; p++) {
		pid[p] = fork();
		if (pid[p] == 0)
			_exit(s == SYS_SQLITE ? sqlite_worker(p) : pstm_worker(s == SYS_QUEUE, p));
	}
	while (atomic_load(&sh->ready) < nprocs)
		usleep(100);
	sh->start = now_s();
	atomic_store(&sh->go, 1);
	int bad = 0;
	for (int p = 0; p < nprocs; p++) {
		int st;
		waitpid(pid[p], &st, 0);
		bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	}
	double end = 0;
	uint64_t ab = 0;
	for (int p = 0; p < nprocs; p++) {
		end = sh->end[p] > end ? sh->end[p] : end;
		ab += sh->aborts[p];
	}
	*aborts = (double)ab / (double)ntasks;
	*ok = !bad && (s == SYS_SQLITE ? sqlite_verify() : pstm_verify(s == SYS_QUEUE));
	return bad ? -1 : (double)ntasks / (end - sh->start);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void usage(void)
{
	fprintf(stderr, "usage: taskq_bench [-n TASKS] [-p PROCS] [-t THREADS] [-r RUNS] "
			"[-s pstm-queue,pstm-run,sqlite-queue] [-o CSV]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *systems = "pstm-queue,pstm-run,sqlite-queue", *csv = NULL;
	int c, want[SYS_N] = {0};
	while ((c = getopt(argc, argv, "n:p:t:r:s:o:h")) != -1) {
		switch (c) {
		case 'n': ntasks = strtoull(optarg, NULL, 0); break;
		case 'p': nprocs = atoi(optarg); break;
		case 't': nthreads = atoi(optarg); break;
		case 'r': nruns = atoi(optarg); break;
		case 's': systems = optarg; break;
		case 'o': csv = optarg; break;
		default: usage();
		}
	}
	if (ntasks < 1 || nprocs < 1 || nprocs > MAX_PROCS || nthreads < 1 ||
	    nthreads > 64 || nruns < 1 || nruns > MAX_RUNS)
		usage();
	for (int s = 0; s < SYS_N; s++)
		want[s] = strstr(systems, sys_name[s]) != NULL;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;

	double rate[SYS_N][MAX_RUNS], ab[SYS_N][MAX_RUNS];
	int ok[SYS_N], fail = 0;
	for (int s = 0; s < SYS_N; s++)
		ok[s] = 1;
	printf("task tree of %llu tasks, %d processes x %d threads, %d interleaved runs "
	       "(%ld cores)\n", (unsigned long long)ntasks, nprocs, nthreads, nruns,
	       sysconf(_SC_NPROCESSORS_ONLN));
	for (int k = 0; k < nruns; k++)
		for (int s = 0; s < SYS_N; s++) {
			if (!want[s])
				continue;
			int good = 0;
			rate[s][k] = run_once(s, &ab[s][k], &good);
			ok[s] &= good && rate[s][k] > 0;
		}
	FILE *out = csv ? fopen(csv, "a") : NULL;
	for (int s = 0; s < SYS_N; s++) {
		if (!want[s])
			continue;
		double sorted[MAX_RUNS], abs_sorted[MAX_RUNS];
		memcpy(sorted, rate[s], sizeof(double) * (size_t)nruns);
		memcpy(abs_sorted, ab[s], sizeof(double) * (size_t)nruns);
		qsort(sorted, (size_t)nruns, sizeof(double), cmp);
		qsort(abs_sorted, (size_t)nruns, sizeof(double), cmp);
		double med = sorted[nruns / 2];
		printf("  %-13s %10.0f tasks/s (min %.0f, max %.0f), %.3f %s per task%s\n",
		       sys_name[s], med, sorted[0], sorted[nruns - 1], abs_sorted[nruns / 2],
		       s == SYS_SQLITE ? "busy retries" : "aborts", ok[s] ? "" : "  INVARIANT FAILED");
		if (out)
			fprintf(out, "tasktree,%s,%llu,%d,%.0f,%.0f,%.0f,%s\n", sys_name[s],
				(unsigned long long)ntasks, nprocs, med, sorted[0],
				sorted[nruns - 1], ok[s] ? "ok" : "FAIL");
		fail |= !ok[s];
	}
	if (want[SYS_QUEUE] && want[SYS_RUN]) {
		double q[MAX_RUNS], r[MAX_RUNS];
		memcpy(q, rate[SYS_QUEUE], sizeof(double) * (size_t)nruns);
		memcpy(r, rate[SYS_RUN], sizeof(double) * (size_t)nruns);
		qsort(q, (size_t)nruns, sizeof(double), cmp);
		qsort(r, (size_t)nruns, sizeof(double), cmp);
		printf("  pstm-queue / pstm-run: %.2fx\n", q[nruns / 2] / r[nruns / 2]);
	}
	if (out)
		fclose(out);
	munmap(sh, sizeof(*sh));
	return fail;
}
