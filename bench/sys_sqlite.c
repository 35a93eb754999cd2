/*
 * sys_sqlite.c - SQLite baselines in WAL mode, one connection per process,
 * prepared statements, BEGIN IMMEDIATE for updates (so writers queue on
 * the busy timeout instead of failing at commit), BEGIN (deferred) for
 * multi-statement reads, a single autocommit SELECT for a set lookup.
 *   sqlite-shm     synchronous=OFF, database in /dev/shm
 *   sqlite-disk    synchronous=FULL, database in /tmp
 *   sqlite-normal  synchronous=NORMAL, database in /tmp: relaxed
 *                  durability, a baseline for pstm-relaxed.  WAL commits
 *                  are appended without fsync; checkpoints (automatic,
 *                  every ~1000 WAL pages) fsync the WAL, then the
 *                  database.  On power failure a suffix of commits may be
 *                  lost, in order (checksummed WAL frames), but the window
 *                  is not bounded in time as pstm-relaxed's flush_ms is:
 *                  it lasts until the next checkpoint or the kernel's
 *                  writeback (~30 s).  The check (worker 0, before and
 *                  after each timed run, outside the timed window) runs
 *                  PRAGMA wal_checkpoint(FULL), so the measured work is
 *                  durable before the driver reports.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "driver.h"

enum {
	S_BEGIN_W, S_BEGIN_R, S_COMMIT, S_ROLLBACK,
	S_GET, S_ADD, S_LOOKUP, S_INSERT, S_DELETE, S_N
};

static const char *const sql_text[S_N] = {
	[S_BEGIN_W] = "BEGIN IMMEDIATE",
	[S_BEGIN_R] = "BEGIN",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_GET] = "SELECT bal FROM acct WHERE id = ?1",
	[S_ADD] = "UPDATE acct SET bal = bal + ?2 WHERE id = ?1",
	[S_LOOKUP] = "SELECT 1 FROM kset WHERE k = ?1",
	[S_INSERT] = "INSERT OR IGNORE INTO kset(k) VALUES (?1)",
	[S_DELETE] = "DELETE FROM kset WHERE k = ?1",
};

static sqlite3 *db;
static sqlite3_stmt *stmt[S_N];
static char path[256];

static int is_shm(const struct bench_cfg *c)
{
	return strcmp(c->system, "sqlite-shm") == 0;
}

static const char *sync_pragma(const struct bench_cfg *c)
{
	if (is_shm(c))
		return "PRAGMA synchronous=OFF";
	if (strcmp(c->system, "sqlite-normal") == 0)
		return "PRAGMA synchronous=NORMAL";
	return "PRAGMA synchronous=FULL";
}

static int fail(const char *what)
{
	return bench_fail(what, db ? sqlite3_errmsg(db) : "no connection");
}

static void remove_files(const struct bench_cfg *c)
{
	char aux[300];

	bench_path(path, sizeof(path), is_shm(c) ? "/dev/shm" : "/tmp",
		   c->system, ".db");
	unlink(path);
	snprintf(aux, sizeof(aux), "%s-wal", path);
	unlink(aux);
	snprintf(aux, sizeof(aux), "%s-shm", path);
	unlink(aux);
}

static int exec_sql(const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return fail(sql);
	return 0;
}

static int db_open(const struct bench_cfg *c)
{
	bench_path(path, sizeof(path), is_shm(c) ? "/dev/shm" : "/tmp",
		   c->system, ".db");
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
			    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		return fail(path);
	sqlite3_busy_timeout(db, 10000);
	if (exec_sql("PRAGMA journal_mode=WAL") || exec_sql(sync_pragma(c)))
		return -1;
	return 0;
}

static void db_close(void)
{
	for (int i = 0; i < S_N; i++) {
		sqlite3_finalize(stmt[i]);
		stmt[i] = NULL;
	}
	sqlite3_close(db);
	db = NULL;
}

/* Step a statement to completion, retrying on a busy database. */
static int run(sqlite3_stmt *s)
{
	int rc;

	for (int tries = 0;; tries++) {
		rc = sqlite3_step(s);
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || tries > 100)
			break;
		sqlite3_reset(s);
		usleep(100);
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : fail(sqlite3_sql(s));
}

static int sqlite_setup(const struct bench_cfg *c)
{
	sqlite3_stmt *ins = NULL;
	int rc = -1;

	remove_files(c);
	if (db_open(c) != 0)
		goto out;
	if (exec_sql(c->workload == WL_INTSET
			     ? "CREATE TABLE kset(k INTEGER PRIMARY KEY)"
			     : "CREATE TABLE acct(id INTEGER PRIMARY KEY, "
			       "bal INTEGER NOT NULL)") ||
	    exec_sql("BEGIN"))
		goto out;
	if (sqlite3_prepare_v2(db, c->workload == WL_INTSET
				       ? "INSERT INTO kset(k) VALUES (?1)"
				       : "INSERT INTO acct(id, bal) "
					 "VALUES (?1, ?2)",
			       -1, &ins, NULL) != SQLITE_OK) {
		fail("prepare");
		goto out;
	}
	for (uint64_t k = 0; k < c->size; k++) {
		if (c->workload == WL_INTSET && !bench_key_initially_present(k))
			continue;
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)k);
		if (c->workload != WL_INTSET)
			sqlite3_bind_int64(ins, 2, BENCH_INIT_BALANCE);
		if (run(ins) != 0)
			goto out;
	}
	if (exec_sql("COMMIT") == 0)
		rc = 0;
out:
	sqlite3_finalize(ins);
	db_close();
	return rc;
}

static int sqlite_attach(const struct bench_cfg *c)
{
	if (db_open(c) != 0)
		return -1;
	for (int i = 0; i < S_N; i++) {
		int is_bank_stmt = i == S_GET || i == S_ADD;
		int is_set_stmt = i >= S_LOOKUP;
		if ((c->workload == WL_INTSET && is_bank_stmt) ||
		    (c->workload != WL_INTSET && is_set_stmt))
			continue; /* that table does not exist */
		if (sqlite3_prepare_v2(db, sql_text[i], -1, &stmt[i], NULL) !=
		    SQLITE_OK)
			return fail(sql_text[i]);
	}
	return 0;
}

static int add(uint64_t id, int64_t amount)
{
	sqlite3_bind_int64(stmt[S_ADD], 1, (sqlite3_int64)id);
	sqlite3_bind_int64(stmt[S_ADD], 2, amount);
	if (run(stmt[S_ADD]) != 0)
		return -1;
	return sqlite3_changes(db) == 1 ? 0 : bench_fail("update", "no row");
}

static int read_accounts(const struct bench_op *op, int64_t *result)
{
	sqlite3_stmt *g = stmt[S_GET];
	int64_t sum = 0;
	int rc = 0;

	if (run(stmt[S_BEGIN_R]) != 0)
		return -1;
	for (int i = 0; i < BENCH_READ_N && rc == 0; i++) {
		sqlite3_bind_int64(g, 1, (sqlite3_int64)op->accounts[i]);
		if (sqlite3_step(g) == SQLITE_ROW)
			sum += sqlite3_column_int64(g, 0);
		else
			rc = fail("read");
		sqlite3_reset(g);
	}
	*result = sum;
	return run(stmt[rc ? S_ROLLBACK : S_COMMIT]) || rc ? -1 : 0;
}

static int sqlite_exec(const struct bench_op *op, int64_t *result)
{
	sqlite3_stmt *s;
	int rc;

	switch (op->kind) {
	case OP_READ:
		return read_accounts(op, result);
	case OP_LOOKUP:
		s = stmt[S_LOOKUP];
		sqlite3_bind_int64(s, 1, (sqlite3_int64)op->key);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		*result = rc == SQLITE_ROW;
		return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail("lookup");
	default:
		break;
	}
	if (run(stmt[S_BEGIN_W]) != 0)
		return -1;
	if (op->kind == OP_TRANSFER) {
		rc = add(op->from, -op->amount) || add(op->to, op->amount);
	} else {
		s = stmt[op->kind == OP_INSERT ? S_INSERT : S_DELETE];
		sqlite3_bind_int64(s, 1, (sqlite3_int64)op->key);
		rc = run(s);
		*result = sqlite3_changes(db) == 1;
	}
	if (rc != 0) {
		run(stmt[S_ROLLBACK]);
		return -1;
	}
	return run(stmt[S_COMMIT]);
}

static int sqlite_check(const struct bench_cfg *c, struct bench_state *st)
{
	sqlite3_stmt *s;
	const char *q = c->workload == WL_INTSET
				? "SELECT count(*), 0, min(k), max(k) FROM kset"
				: "SELECT count(*), sum(bal), min(id), max(id) "
				  "FROM acct";
	int rc = -1;

	/* sqlite-normal: fsync every commit so far (quiescent, not timed) */
	if (strcmp(c->system, "sqlite-normal") == 0 &&
	    exec_sql("PRAGMA wal_checkpoint(FULL)"))
		return -1;
	if (sqlite3_prepare_v2(db, q, -1, &s, NULL) != SQLITE_OK)
		return fail(q);
	if (sqlite3_step(s) == SQLITE_ROW) {
		int64_t n = sqlite3_column_int64(s, 0),
			lo = sqlite3_column_int64(s, 2),
			hi = sqlite3_column_int64(s, 3);
		st->count = (uint64_t)n;
		st->total = sqlite3_column_int64(s, 1);
		rc = 0;
		if (n > 0 && (lo < 0 || hi >= (int64_t)c->size))
			rc = bench_fail("check", "key out of range");
		if (c->workload != WL_INTSET &&
		    (n != (int64_t)c->size || lo != 0))
			rc = bench_fail("check", "accounts missing");
	} else {
		fail(q);
	}
	sqlite3_finalize(s);
	return rc;
}

static void sqlite_detach(void)
{
	db_close();
}

static void sqlite_teardown(const struct bench_cfg *c)
{
	remove_files(c);
}

BENCH_SYSTEM(sqlite_shm, "sqlite-shm", sqlite);
BENCH_SYSTEM(sqlite_disk, "sqlite-disk", sqlite);
BENCH_SYSTEM(sqlite_normal, "sqlite-normal", sqlite);

const struct bench_system *const bench_systems[] = { &sqlite_shm,
						     &sqlite_disk,
						     &sqlite_normal, NULL };
