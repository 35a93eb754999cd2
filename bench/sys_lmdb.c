/*
 * sys_lmdb.c - LMDB baselines: one write transaction per update, a read
 * transaction (reset/renew, as LMDB recommends) per read-only operation.
 * Accounts and set keys are native 64-bit integer keys (MDB_INTEGERKEY).
 *   lmdb-shm     MDB_NOSYNC | MDB_WRITEMAP in /dev/shm (no durability)
 *   lmdb-disk    default, synchronous commits, in /tmp
 *   lmdb-nosync  relaxed durability, the baseline for pstm-relaxed
 *                (flush_ms = 10): in /tmp, MDB_NOSYNC without
 *                MDB_WRITEMAP, so commits only pwrite() (data pages, then
 *                the meta page) and LMDB keeps its order of writes; each
 *                process calls mdb_env_sync(env, 1) (fdatasync) after an
 *                operation when it committed since its last sync and at
 *                least SYNC_NS (10 ms) have passed, so a process's commits
 *                reach the disk within about 10 ms while it keeps running
 *                operations, and the check (run by worker 0 before and
 *                after each timed run, outside the timed window) syncs
 *                too, so the measured work is durable before the driver
 *                reports.  On power failure a suffix of commits may be
 *                lost, in order, as with pstm-relaxed; LMDB's docs make
 *                that (no corruption, only lost transactions) conditional
 *                on the filesystem preserving write order between syncs.
 *                Unlike pstm-relaxed's background flusher the sync runs
 *                inline in the committing process (one commit in ~10 ms
 *                pays an fdatasync), and a process that stops issuing
 *                operations syncs its tail only at the next check or when
 *                it detaches.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "driver.h"

#define MAP_BYTES (1ull << 30)
#define SYNC_NS 10000000ull /* lmdb-nosync: longest a commit stays unsynced */

static MDB_env *env;
static MDB_dbi dbi;
static MDB_txn *rtxn; /* reset between read-only operations */
static char path[256];
static int nosync;            /* lmdb-nosync: periodic mdb_env_sync */
static int dirty;             /* committed since the last sync */
static uint64_t last_sync_ns; /* CLOCK_MONOTONIC of the last sync */

static int is_shm(const struct bench_cfg *c)
{
	return strcmp(c->system, "lmdb-shm") == 0;
}

static int is_nosync(const struct bench_cfg *c)
{
	return strcmp(c->system, "lmdb-nosync") == 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int fail(const char *what, int rc)
{
	return bench_fail(what, mdb_strerror(rc));
}

static void remove_files(const struct bench_cfg *c)
{
	char lock[300];

	bench_path(path, sizeof(path), is_shm(c) ? "/dev/shm" : "/tmp",
		   c->system, ".mdb");
	snprintf(lock, sizeof(lock), "%s-lock", path);
	unlink(path);
	unlink(lock);
}

static int env_open(const struct bench_cfg *c)
{
	unsigned flags = MDB_NOSUBDIR | (is_shm(c) ? MDB_NOSYNC | MDB_WRITEMAP
				     : is_nosync(c) ? MDB_NOSYNC : 0);
	MDB_txn *t;
	int rc;

	nosync = is_nosync(c);
	dirty = 0;
	last_sync_ns = now_ns();

	bench_path(path, sizeof(path), is_shm(c) ? "/dev/shm" : "/tmp",
		   c->system, ".mdb");
	if ((rc = mdb_env_create(&env)) != 0)
		return fail("mdb_env_create", rc);
	if ((rc = mdb_env_set_mapsize(env, MAP_BYTES)) != 0 ||
	    (rc = mdb_env_set_maxreaders(env, 126)) != 0 ||
	    (rc = mdb_env_open(env, path, flags, 0600)) != 0)
		goto err;
	if ((rc = mdb_txn_begin(env, NULL, 0, &t)) != 0)
		goto err;
	if ((rc = mdb_dbi_open(t, NULL, MDB_INTEGERKEY, &dbi)) != 0) {
		mdb_txn_abort(t);
		goto err;
	}
	if ((rc = mdb_txn_commit(t)) != 0)
		goto err;
	return 0;
err:
	mdb_env_close(env);
	env = NULL;
	return fail(path, rc);
}

static int lmdb_setup(const struct bench_cfg *c)
{
	MDB_txn *t;
	int rc;

	remove_files(c);
	if (env_open(c) != 0)
		return -1;
	if ((rc = mdb_txn_begin(env, NULL, 0, &t)) != 0)
		goto out;
	for (uint64_t k = 0; k < c->size && rc == 0; k++) {
		int64_t bal = BENCH_INIT_BALANCE;
		MDB_val key = { sizeof(k), &k }, val = { 0, NULL };
		if (c->workload != WL_INTSET)
			val = (MDB_val){ sizeof(bal), &bal };
		else if (!bench_key_initially_present(k))
			continue;
		rc = mdb_put(t, dbi, &key, &val, MDB_APPEND);
	}
	if (rc == 0)
		rc = mdb_txn_commit(t);
	else
		mdb_txn_abort(t);
	if (rc == 0 && nosync)
		rc = mdb_env_sync(env, 1);
out:
	mdb_env_close(env);
	env = NULL;
	return rc ? fail("populate", rc) : 0;
}

static int lmdb_attach(const struct bench_cfg *c)
{
	int rc;

	if (env_open(c) != 0)
		return -1;
	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &rtxn)) != 0)
		return fail("mdb_txn_begin", rc);
	mdb_txn_reset(rtxn);
	return 0;
}

static int get_balance(MDB_txn *t, uint64_t k, int64_t *bal)
{
	MDB_val key = { sizeof(k), &k }, val;
	int rc = mdb_get(t, dbi, &key, &val);

	if (rc == 0 && val.mv_size != sizeof(*bal))
		rc = MDB_CORRUPTED;
	if (rc == 0)
		memcpy(bal, val.mv_data, sizeof(*bal));
	return rc;
}

static int put_balance(MDB_txn *t, uint64_t k, int64_t bal)
{
	MDB_val key = { sizeof(k), &k }, val = { sizeof(bal), &bal };
	return mdb_put(t, dbi, &key, &val, 0);
}

static int read_op(const struct bench_op *op, int64_t *result)
{
	int rc = mdb_txn_renew(rtxn);
	int64_t sum = 0, bal = 0;
	MDB_val key = { sizeof(op->key), (void *)&op->key }, val;

	if (rc != 0)
		return fail("mdb_txn_renew", rc);
	if (op->kind == OP_LOOKUP) {
		rc = mdb_get(rtxn, dbi, &key, &val);
		*result = rc == 0;
		if (rc == MDB_NOTFOUND)
			rc = 0;
	} else {
		for (int i = 0; i < BENCH_READ_N && rc == 0; i++) {
			rc = get_balance(rtxn, op->accounts[i], &bal);
			sum += bal;
		}
		*result = sum;
	}
	mdb_txn_reset(rtxn);
	return rc ? fail("read", rc) : 0;
}

static int exec_op(const struct bench_op *op, int64_t *result)
{
	MDB_val key = { sizeof(op->key), (void *)&op->key }, val = { 0, NULL };
	int64_t a, b;
	MDB_txn *t;
	int rc;

	if (op->kind == OP_READ || op->kind == OP_LOOKUP)
		return read_op(op, result);
	if ((rc = mdb_txn_begin(env, NULL, 0, &t)) != 0)
		return fail("mdb_txn_begin", rc);
	switch (op->kind) {
	case OP_TRANSFER:
		if ((rc = get_balance(t, op->from, &a)) == 0 &&
		    (rc = get_balance(t, op->to, &b)) == 0 &&
		    (rc = put_balance(t, op->from, a - op->amount)) == 0)
			rc = put_balance(t, op->to, b + op->amount);
		break;
	case OP_INSERT:
		rc = mdb_put(t, dbi, &key, &val, MDB_NOOVERWRITE);
		break;
	case OP_DELETE:
		rc = mdb_del(t, dbi, &key, NULL);
		break;
	default:
		rc = EINVAL;
	}
	if (rc == MDB_KEYEXIST || rc == MDB_NOTFOUND) {
		mdb_txn_abort(t); /* the set did not change */
		*result = 0;
		return op->kind == OP_TRANSFER ? fail("transfer", rc) : 0;
	}
	if (rc != 0) {
		mdb_txn_abort(t);
		return fail("update", rc);
	}
	*result = 1;
	if ((rc = mdb_txn_commit(t)) != 0)
		return fail("mdb_txn_commit", rc);
	dirty = 1;
	return 0;
}

/* lmdb-nosync: fdatasync if this process committed since its last sync */
static int sync_now(void)
{
	int rc;

	if (!dirty)
		return 0;
	if ((rc = mdb_env_sync(env, 1)) != 0)
		return fail("mdb_env_sync", rc);
	dirty = 0;
	last_sync_ns = now_ns();
	return 0;
}

static int lmdb_exec(const struct bench_op *op, int64_t *result)
{
	int rc = exec_op(op, result);

	if (rc == 0 && nosync && dirty && now_ns() - last_sync_ns >= SYNC_NS)
		rc = sync_now();
	return rc;
}

static int lmdb_check(const struct bench_cfg *c, struct bench_state *st)
{
	MDB_txn *t;
	MDB_cursor *cur;
	MDB_val key, val;
	MDB_stat ms;
	uint64_t n = 0, k;
	int64_t bal = 0;
	int rc, bad = 0;

	st->total = 0;
	st->count = 0;
	/*
	 * lmdb-nosync: make every commit durable before the driver reports
	 * (quiescent, outside the timed window; this fdatasync covers all
	 * processes' pwrite()s to the file)
	 */
	if (nosync && (rc = mdb_env_sync(env, 1)) != 0)
		return fail("mdb_env_sync", rc);
	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &t)) != 0)
		return fail("mdb_txn_begin", rc);
	if ((rc = mdb_cursor_open(t, dbi, &cur)) != 0) {
		mdb_txn_abort(t);
		return fail("mdb_cursor_open", rc);
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		memcpy(&k, key.mv_data, sizeof(k));
		if (k >= c->size)
			bad = 1;
		if (c->workload != WL_INTSET) {
			if (k != n || val.mv_size != sizeof(bal))
				bad = 1;
			else
				memcpy(&bal, val.mv_data, sizeof(bal));
			st->total += bal;
		}
		n++;
	}
	if (rc == MDB_NOTFOUND)
		rc = mdb_stat(t, dbi, &ms);
	mdb_cursor_close(cur);
	mdb_txn_abort(t);
	if (rc != 0)
		return fail("check", rc);
	if (bad || ms.ms_entries != n ||
	    (c->workload != WL_INTSET && n != c->size))
		return bench_fail("check", "bad keys or entry count");
	st->count = n;
	return 0;
}

static void lmdb_detach(void)
{
	if (nosync && env)
		sync_now(); /* mdb_env_close does not sync */
	if (rtxn)
		mdb_txn_abort(rtxn);
	rtxn = NULL;
	if (env)
		mdb_env_close(env);
	env = NULL;
}

static void lmdb_teardown(const struct bench_cfg *c)
{
	remove_files(c);
}

BENCH_SYSTEM(lmdb_shm, "lmdb-shm", lmdb);
BENCH_SYSTEM(lmdb_disk, "lmdb-disk", lmdb);
BENCH_SYSTEM(lmdb_nosync, "lmdb-nosync", lmdb);

const struct bench_system *const bench_systems[] = { &lmdb_shm, &lmdb_disk,
						     &lmdb_nosync, NULL };
