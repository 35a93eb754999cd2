/*
 * driver.h - the one benchmark driver every system shares: workloads,
 * operation generation, process spawning, timing, invariant checks, CSV.
 *
 * The driver decides every operation (kind, accounts, keys, amounts) from
 * its own PRNG and hands it to the system under test, so all systems run
 * exactly the same operation stream; a system only says how to execute one
 * operation as one transaction.
 */
#ifndef BENCH_DRIVER_H
#define BENCH_DRIVER_H

#include <stddef.h>
#include <stdint.h>

enum bench_workload {
	WL_BANK,       /* transfer between two random accounts */
	WL_READMOSTLY, /* 90% read 8 accounts and sum, 10% transfer */
	WL_INTSET,     /* hash set of keys in [0,size): 80% lookup, 20% update */
};

#define BENCH_INIT_BALANCE 1000 /* every account starts with this */
#define BENCH_READ_N 8          /* accounts read by a read-only op */

/*
 * Integer-set layout shared by the systems that build it themselves:
 * key k lives in bucket k % nbuckets, chains sorted by key, no duplicates.
 * Initially key k is present iff bench_key_initially_present(k).
 */
static inline uint64_t bench_nbuckets(uint64_t range)
{
	return range / 4 ? range / 4 : 1;
}

struct bench_cfg {
	enum bench_workload workload;
	uint64_t size; /* accounts (bank, readmostly) or key range (intset) */
	int procs;
	const char *system; /* variant name, e.g. "lmdb-shm" */
};

enum bench_op_kind { OP_TRANSFER, OP_READ, OP_LOOKUP, OP_INSERT, OP_DELETE };

struct bench_op {
	enum bench_op_kind kind;
	uint64_t from, to;                   /* OP_TRANSFER: distinct accounts */
	int64_t amount;                      /* OP_TRANSFER: 1..100 */
	uint64_t accounts[BENCH_READ_N];     /* OP_READ (may repeat) */
	uint64_t key;                        /* OP_LOOKUP/INSERT/DELETE */
};

/* What a system's check found in a quiescent store. */
struct bench_state {
	int64_t total;  /* bank/readmostly: sum of all balances */
	uint64_t count; /* intset: keys present */
};

/*
 * A system under test.  setup/teardown run in the driver's process;
 * attach, exec, check and detach run in a forked worker (never use a
 * handle across fork).  All return 0 on success, non-zero on failure
 * (with a message on stderr).
 */
struct bench_system {
	const char *name;
	int max_procs; /* 1 for systems without multi-process sharing */
	/* create and populate the store for cfg (size, workload) */
	int (*setup)(const struct bench_cfg *cfg);
	/* in a worker, before timing: open the store */
	int (*attach)(const struct bench_cfg *cfg);
	/*
	 * Run op as one transaction.  *result: OP_READ the sum read,
	 * OP_LOOKUP 1 if found, OP_INSERT/OP_DELETE 1 if the set changed.
	 */
	int (*exec)(const struct bench_op *op, int64_t *result);
	/* quiescent: verify the structure, report total/count */
	int (*check)(const struct bench_cfg *cfg, struct bench_state *st);
	void (*detach)(void);
	void (*teardown)(const struct bench_cfg *cfg);
};

/* One system of a program whose functions are PREFIX_setup ... PREFIX_teardown
 * (several names share one implementation that looks at cfg->system). */
#define BENCH_SYSTEM(var, str, prefix)                                     \
	static const struct bench_system var = {                           \
		.name = str,                                               \
		.max_procs = 64,                                           \
		.setup = prefix##_setup,                                   \
		.attach = prefix##_attach,                                 \
		.exec = prefix##_exec,                                     \
		.check = prefix##_check,                                   \
		.detach = prefix##_detach,                                 \
		.teardown = prefix##_teardown,                             \
	}

/* Each system program defines this NULL-terminated list. */
extern const struct bench_system *const bench_systems[];

/* splitmix64: a stateless mix used for seeding and the initial set */
static inline uint64_t bench_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline int bench_key_initially_present(uint64_t k)
{
	return (int)(bench_mix64(k ^ 0x5eedull) & 1);
}

/* Path for a system's files: "<dir>/pstm-bench-<system>-<uid><suffix>". */
void bench_path(char *buf, size_t n, const char *dir, const char *system,
		const char *suffix);

/* Report helper: print "system: what: detail" to stderr, return -1. */
int bench_fail(const char *what, const char *detail);

#endif /* BENCH_DRIVER_H */
