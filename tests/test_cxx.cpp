// test_cxx.cpp - the non-unwinding transaction API from C++: a body that
// holds RAII objects (a counting guard, std::string, std::vector) runs
// its destructors exactly once per attempt, also when the attempt loses
// a conflict; several processes keep a bank's total exact.  TAP output.
#include <pstm.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures, tests;

static void ok(bool cond, const std::string &name)
{
	tests++;
	if (!cond)
		failures++;
	std::printf("%sok %d - %s\n", cond ? "" : "not ", tests, name.c_str());
	std::fflush(stdout);
}

static int ctors, dtors;

struct Guard {
	std::string name;
	std::vector<int> data;
	Guard() : name("attempt-state-long-enough-to-allocate"), data(64, 1)
	{
		ctors++;
	}
	~Guard() { dtors++; }
	Guard(const Guard &) = delete;
	Guard &operator=(const Guard &) = delete;
};

// A thread that commits word x += 1 (through the explicit API) on request.
struct Poker {
	pstm_region *r;
	pstm_off x;
	std::atomic<int> asked{0}, done{0};
	std::atomic<bool> stop{false};

	void run()
	{
		int seen = 0;
		while (!stop) {
			int a = asked;
			if (a == seen) {
				std::this_thread::yield();
				continue;
			}
			seen = a;
			for (;;) {
				pstm_tx *tx;
				if (pstm_tx_begin(r, 0, &tx))
					std::abort();
				uint64_t v;
				int rc = pstm_tx_load64(tx, x, &v);
				if (!rc)
					rc = pstm_tx_store64(tx, x, v + 1);
				rc = rc ? (pstm_tx_end(tx), rc) : pstm_tx_commit(tx);
				if (rc == 0)
					break;
				if (rc != PSTM_ECONFLICT)
					std::abort();
			}
			done = a;
		}
	}
	void poke()
	{
		int a = ++asked;
		while (done != a)
			std::this_thread::yield();
	}
};

// A pstm_atomic body written with the explicit calls (never unwound).
struct AtomicBody {
	pstm_region *r;
	pstm_off x, y;
	Poker *p;
	int n = 0, conflicts = 0, conflicts_wanted = 0;
	bool commit_refused = false, bad = false;
};

static int atomic_body(pstm_tx *tx, void *arg)
{
	AtomicBody &b = *static_cast<AtomicBody *>(arg);
	Guard g;
	b.n++;
	uint64_t a = 0, c = 0;
	int rc = pstm_tx_load64(tx, b.bad ? 8 : b.x, &a);
	if (!rc && b.n <= b.conflicts_wanted)
		b.p->poke();
	if (!rc)
		rc = pstm_tx_load64(tx, b.x, &c);
	if (!rc)
		rc = pstm_tx_store64(tx, b.y, 1000 + a);
	if (rc == PSTM_ECONFLICT)
		b.conflicts++;
	if (!rc)
		b.commit_refused = pstm_tx_commit(tx) == PSTM_EINVAL;
	return rc; // whatever it is, pstm_atomic decides
}

// One attempt: returns the attempt's result (0 committed, else a code).
static int attempt(pstm_region *r, pstm_off x, pstm_off y, Poker &p,
		   int n, int conflicts_wanted, bool *doomed_ok)
{
	Guard g; // must be destroyed exactly once, whatever happens
	pstm_tx *tx;
	int rc = pstm_tx_begin(r, 0, &tx);
	if (rc)
		return rc;
	uint64_t a = 0, b = 0;
	rc = pstm_tx_load64(tx, x, &a);
	if (!rc && n <= conflicts_wanted)
		p.poke(); // x changes under the attempt
	if (!rc)
		rc = pstm_tx_load64(tx, x, &b); // newer version: conflict
	if (!rc)
		rc = pstm_tx_store64(tx, y, a + 100);
	if (rc) {
		// doomed: every later call says so at once, nothing leaks out
		uint64_t v = 12345;
		*doomed_ok = pstm_tx_load64(tx, y, &v) == rc && v == 12345 &&
			     pstm_tx_store64(tx, y, 7) == rc &&
			     pstm_tx_commit(tx) == rc;
		return rc;
	}
	if (a != b)
		return 99; // opacity: never two values in one attempt
	return pstm_tx_commit(tx);
}

static int root_init(pstm_tx *tx, void *arg)
{
	pstm_off *base = static_cast<pstm_off *>(arg);
	*base = pstm_root(tx, 8 * 16);
	return 0;
}

static uint64_t read_word(pstm_region *r, pstm_off off)
{
	pstm_tx *tx;
	uint64_t v = 0;
	if (pstm_tx_begin(r, PSTM_TX_READ_ONLY, &tx))
		return ~0ull;
	int rc = pstm_tx_load64(tx, off, &v);
	if (rc)
		pstm_tx_end(tx);
	else
		rc = pstm_tx_commit(tx);
	return rc ? ~0ull : v;
}

enum { ACCOUNTS = 8, PROCS = 3, TRANSFERS = 3000 };

static int bank_child(const char *uri, pstm_off base, int seed)
{
	pstm_region *r;
	if (pstm_open(uri, &r))
		return 2;
	unsigned s = 1234567u + (unsigned)seed * 7919u;
	int conflicts = 0;
	for (int i = 0; i < TRANSFERS; i++) {
		s = s * 1103515245u + 12345u;
		int from = (int)(s >> 8) % ACCOUNTS, to = (int)(s >> 16) % ACCOUNTS;
		for (;;) {
			Guard g;
			pstm_tx *tx;
			if (pstm_tx_begin(r, 0, &tx))
				return 3;
			uint64_t fa = 0, ta = 0;
			int rc = pstm_tx_load64(tx, base + 8 * from, &fa);
			if (!rc)
				rc = pstm_tx_load64(tx, base + 8 * to, &ta);
			if (!rc && from != to && fa >= 10) {
				rc = pstm_tx_store64(tx, base + 8 * from, fa - 10);
				if (!rc)
					rc = pstm_tx_store64(tx, base + 8 * to, ta + 10);
			}
			if (rc)
				pstm_tx_end(tx);
			else
				rc = pstm_tx_commit(tx);
			if (rc == 0)
				break;
			if (rc != PSTM_ECONFLICT)
				return 4;
			conflicts++;
		}
	}
	if (ctors != dtors)
		return 5;
	std::printf("# child %d: %d transfers, %d conflicts re-run, %d guards\n",
		    seed, TRANSFERS, conflicts, ctors);
	std::fflush(stdout);
	return pstm_close(r) ? 6 : 0;
}

static int bank_init(pstm_tx *tx, void *arg)
{
	pstm_off base = *static_cast<pstm_off *>(arg);
	for (int i = 0; i < ACCOUNTS; i++)
		pstm_store64(tx, base + 8 * i, 1000);
	return 0;
}

int main()
{
	char uri[64];
	std::snprintf(uri, sizeof(uri), "shm:pstm-test-cxx-%d", (int)getpid());
	pstm_region *r;
	pstm_create_opts o{};
	o.size_bytes = 8 << 20;
	if (pstm_create(uri, &o, &r)) {
		std::printf("Bail out! cannot create %s\n", uri);
		return 1;
	}
	pstm_off base = 0;
	pstm_atomic(r, root_init, &base);
	pstm_off x = base, y = base + 8;

	// 1. conflicts: 5 attempts lose, the 6th commits
	Poker p;
	p.r = r;
	p.x = x;
	std::thread th([&p] { p.run(); });
	int rc, n = 0;
	bool doomed_ok = true, each = true;
	do {
		n++;
		bool d = true;
		rc = attempt(r, x, y, p, n, 5, &d);
		each = each && (rc == 0 || rc == PSTM_ECONFLICT);
		doomed_ok = doomed_ok && d;
	} while (rc == PSTM_ECONFLICT);
	p.stop = true;
	th.join();
	ok(rc == 0 && each, "the body is re-run after PSTM_ECONFLICT until it commits");
	ok(n == 6, "5 deterministic conflicts, then a commit (" + std::to_string(n) + " attempts)");
	ok(ctors == n && dtors == n, "RAII destructors ran exactly once per attempt (" +
	   std::to_string(ctors) + " constructed, " + std::to_string(dtors) + " destroyed)");
	ok(doomed_ok, "after a conflict every call on the attempt returns PSTM_ECONFLICT at once");
	ok(read_word(r, x) == 5 && read_word(r, y) == 105,
	   "only the committed attempt's write is there");

	// 1b. the same calls in a pstm_atomic body (what a binding's task
	// body uses): a lost conflict returns, the body returns, and
	// pstm_atomic re-runs it; an error ends pstm_atomic with it
	{
		AtomicBody b;
		b.r = r;
		b.x = x;
		b.y = base + 16; // x and y stay as section 1 left them
		b.p = &p;
		b.conflicts_wanted = 3;
		std::thread th2([&p] { p.stop = false; p.run(); });
		int c0 = ctors, d0 = dtors;
		int arc = pstm_atomic(r, atomic_body, &b);
		p.stop = true;
		th2.join();
		ok(arc == 0 && b.n == 4 && b.conflicts == 3,
		   "in a pstm_atomic body: 3 calls returned PSTM_ECONFLICT, re-run, then a commit (" +
		   std::to_string(b.n) + " attempts)");
		ok(ctors - c0 == b.n && dtors - d0 == b.n,
		   "in a pstm_atomic body: RAII destructors ran exactly once per attempt");
		ok(b.commit_refused && read_word(r, b.y) == 1000 + read_word(r, x),
		   "pstm_tx_commit is refused there; only the last attempt's write is there");
		b.bad = true;
		ok(pstm_atomic(r, atomic_body, &b) == PSTM_ERANGE &&
		   read_word(r, b.y) == 1000 + read_word(r, x),
		   "in a pstm_atomic body: an error returns, and ends pstm_atomic with it");
	}

	// 2. errors end the attempt too, without unwinding
	pstm_tx *tx;
	uint64_t v = 0;
	ok(pstm_tx_begin(r, 0, &tx) == 0 && pstm_tx_load64(tx, 8, &v) == PSTM_ERANGE &&
	   pstm_tx_store64(tx, y, 1) == PSTM_ERANGE && pstm_tx_commit(tx) == PSTM_ERANGE &&
	   read_word(r, y) == 105, "an error dooms the attempt and rolls it back");
	ok(pstm_tx_begin(r, PSTM_TX_READ_ONLY, &tx) == 0 &&
	   pstm_tx_store64(tx, y, 1) == PSTM_EINVAL && pstm_tx_commit(tx) == PSTM_EINVAL,
	   "a store in a read-only attempt is PSTM_EINVAL");
	pstm_tx *t2;
	ok(pstm_tx_begin(r, 0, &tx) == 0 && pstm_tx_begin(r, 0, &t2) == PSTM_EINTX &&
	   pstm_tx_end(tx) == 0 && pstm_tx_end(tx) == PSTM_EINVAL,
	   "no nested begin; an ended attempt is no longer usable");

	// 3. several processes, RAII in every attempt, exact totals
	if (pstm_atomic(r, bank_init, &base))
		std::printf("Bail out! bank init\n");
	pid_t pid[PROCS];
	for (int i = 0; i < PROCS; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			ctors = dtors = 0;
			_exit(bank_child(uri, base, i));
		}
	}
	bool children = true;
	for (int i = 0; i < PROCS; i++) {
		int st = 0;
		waitpid(pid[i], &st, 0);
		children = children && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	uint64_t total = 0;
	for (int i = 0; i < ACCOUNTS; i++)
		total += read_word(r, base + 8 * i);
	ok(children, "3 processes ran 3000 transfers each, destructors balanced");
	ok(total == 1000ull * ACCOUNTS, "bank total exact (" + std::to_string(total) + ")");

	pstm_close(r);
	pstm_unlink(uri);
	std::printf("1..%d\n", tests);
	return failures ? 1 : 0;
}
