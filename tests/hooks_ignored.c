/*
 * hooks_ignored.c - a program outside the tree (tests/install.t builds it
 * against the installed library, public header only) that loses updates
 * if reads go unvalidated and stops early if a power-failure simulator
 * is armed: run with PSTM_TEST_BREAK_VALIDATION and PSTM_TEST_POWERFAIL
 * set, it shows that the shipped library ignores both.
 *
 * On each region named on the command line, PROCS processes run TXS
 * read-modify-write transactions each: read the counter and two accounts,
 * wait WINDOW_NS, write them back plus one and append the transaction's
 * id at log[counter].  Two transactions that both read counter n and
 * both commit lose an increment, and one id overwrites the other.  The
 * parent then checks the exact totals and that every id is in the log
 * once, and prints one line per region:
 *   URI: counter C of E, accounts A of E (W wrong), log L of E ids
 * Exit 0 if every figure is exact, 1 if not, 2 if a call failed.
 */
#define _GNU_SOURCE
#include <pstm.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { PROCS = 4, TXS = 300, ACCOUNTS = 8, WINDOW_NS = 20000 };
#define TOTAL ((uint64_t)PROCS * TXS)

/* the data block: counter, accounts, log */
#define COUNTER_OFF 0
#define ACCOUNT_OFF(a) (8 * (1 + (uint64_t)(a)))
#define LOG_OFF(n) (8 * (1 + ACCOUNTS + (uint64_t)(n)))
#define BLOCK_BYTES LOG_OFF(TOTAL)

/* transaction t of process p updates accounts first_of and second_of:
 * distinct, and the parent can count them without the children */
static int first_of(int p, int t)
{
	return (p + t) % ACCOUNTS;
}

static int second_of(int p, int t)
{
	return (first_of(p, t) + 1 + t % (ACCOUNTS - 1)) % ACCOUNTS;
}

static uint64_t id_of(int p, int t)
{
	return (uint64_t)(p + 1) << 32 | (uint64_t)(t + 1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* the root object is the data block, zeroed when first asked for */
static int setup(pstm_tx *tx, void *arg)
{
	*(pstm_off *)arg = pstm_root(tx, BLOCK_BYTES);
	return 0;
}

struct step {
	pstm_off block;
	int a, b;
	uint64_t id;
};

static int step(pstm_tx *tx, void *arg)
{
	const struct step *s = arg;
	uint64_t n = pstm_load64(tx, s->block + COUNTER_OFF);
	uint64_t va = pstm_load64(tx, s->block + ACCOUNT_OFF(s->a));
	uint64_t vb = pstm_load64(tx, s->block + ACCOUNT_OFF(s->b));
	if (n >= TOTAL)
		return 90; /* more increments than transactions */
	/* the window in which an unvalidated read goes stale */
	for (uint64_t until = now_ns() + WINDOW_NS; now_ns() < until;)
		;
	pstm_store64(tx, s->block + COUNTER_OFF, n + 1);
	pstm_store64(tx, s->block + ACCOUNT_OFF(s->a), va + 1);
	pstm_store64(tx, s->block + ACCOUNT_OFF(s->b), vb + 1);
	pstm_store64(tx, s->block + LOG_OFF(n), s->id);
	return 0;
}

static int worker(const char *uri, pstm_off block, int p)
{
	pstm_region *r;
	int rc = pstm_open(uri, &r);
	if (!rc) {
		for (int t = 0; !rc && t < TXS; t++) {
			struct step s = {block, first_of(p, t), second_of(p, t),
					 id_of(p, t)};
			rc = pstm_atomic(r, step, &s);
		}
		pstm_close(r);
	}
	if (rc)
		fprintf(stderr, "%s: worker %d: %s\n", uri, p, pstm_strerror(rc));
	return rc ? 2 : 0;
}

struct final {
	pstm_off block;
	uint64_t counter, account[ACCOUNTS], log[TOTAL];
};

static int read_final(pstm_tx *tx, void *arg)
{
	struct final *f = arg;
	f->counter = pstm_load64(tx, f->block + COUNTER_OFF);
	for (int a = 0; a < ACCOUNTS; a++)
		f->account[a] = pstm_load64(tx, f->block + ACCOUNT_OFF(a));
	for (uint64_t n = 0; n < TOTAL; n++)
		f->log[n] = pstm_load64(tx, f->block + LOG_OFF(n));
	return 0;
}

/* ids of the log found once each (a duplicate or a stranger is wrong) */
static uint64_t ids_kept(const uint64_t *log)
{
	static unsigned char seen[PROCS][TXS];
	uint64_t kept = 0;
	memset(seen, 0, sizeof(seen));
	for (uint64_t n = 0; n < TOTAL; n++) {
		uint64_t p = (log[n] >> 32) - 1, t = (log[n] & 0xffffffffu) - 1;
		if (p < PROCS && t < TXS && !seen[p][t]++)
			kept++;
	}
	return kept;
}

/* 0 exact, 1 updates lost, 2 a call failed */
static int run_region(const char *uri)
{
	struct pstm_create_opts o = {.size_bytes = 8 << 20, .log_bytes = 64 << 10,
				      .replace = 1};
	static struct final f;
	pstm_region *r;
	pid_t pid[PROCS];
	int rc, failed = 0;

	rc = pstm_create(uri, &o, &r);
	if (!rc)
		rc = pstm_atomic(r, setup, &f.block);
	if (rc) {
		fprintf(stderr, "%s: %s\n", uri, pstm_strerror(rc));
		return 2;
	}
	fflush(stdout);
	for (int p = 0; p < PROCS; p++) {
		pid[p] = fork();
		if (pid[p] == 0)
			_exit(worker(uri, f.block, p));
	}
	for (int p = 0; p < PROCS; p++) {
		int st;
		if (pid[p] < 0 || waitpid(pid[p], &st, 0) != pid[p] ||
		    !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed = 1;
	}
	rc = pstm_atomic(r, read_final, &f);
	pstm_close(r);
	pstm_unlink(uri);
	if (failed || rc) {
		fprintf(stderr, "%s: a worker or the final read failed\n", uri);
		return 2;
	}

	uint64_t want[ACCOUNTS] = {0}, sum = 0;
	int wrong = 0;
	for (int p = 0; p < PROCS; p++)
		for (int t = 0; t < TXS; t++) {
			want[first_of(p, t)]++;
			want[second_of(p, t)]++;
		}
	for (int a = 0; a < ACCOUNTS; a++) {
		sum += f.account[a];
		wrong += f.account[a] != want[a];
	}
	uint64_t kept = ids_kept(f.log);
	printf("%s: counter %llu of %llu, accounts %llu of %llu (%d wrong), "
	       "log %llu of %llu ids\n", uri, (unsigned long long)f.counter,
	       (unsigned long long)TOTAL, (unsigned long long)sum,
	       (unsigned long long)(2 * TOTAL), wrong,
	       (unsigned long long)kept, (unsigned long long)TOTAL);
	fflush(stdout);
	return f.counter == TOTAL && !wrong && kept == TOTAL ? 0 : 1;
}

int main(int argc, char **argv)
{
	int worst = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: hooks_ignored URI...\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		int rc = run_region(argv[i]);
		worst = rc > worst ? rc : worst;
	}
	return worst;
}
