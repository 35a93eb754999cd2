#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "companion.h"
#include "helpers.h"
#include "region.h"

static int counter;
static char buf[8][256];

const char *test_shm_uri(const char *tag)
{
	char *b = buf[counter % 8];
	snprintf(b, 256, "shm:pstm-test-%s-%d-%d", tag, (int)getpid(), counter++);
	return b;
}

const char *test_file_uri(const char *tag)
{
	char *b = buf[counter % 8];
	snprintf(b, 256, "/tmp/pstm-test-%s-%d-%d.region", tag, (int)getpid(),
		 counter++);
	return b;
}

pid_t test_spawn(int (*fn)(void *arg, int i), void *arg, int i)
{
	fflush(stdout);
	fflush(stderr);
	pid_t p = fork();
	if (p == 0) {
		/* cmocka's handlers would resume the test runner in the
		 * child: a child that faults must die of it */
		static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE,
					   SIGABRT, SIGSYS};
		for (size_t k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++)
			signal(sigs[k], SIG_DFL);
		_exit(fn(arg, i));
	}
	return p;
}

int test_wait(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

enum { MAX_PROCS = 64 };

void test_run_procs(int n, int (*fn)(void *arg, int i), void *arg)
{
	pid_t pids[MAX_PROCS];
	assert_true(n >= 0 && n <= MAX_PROCS);
	for (int i = 0; i < n; i++)
		pids[i] = test_spawn(fn, arg, i);
	for (int i = 0; i < n; i++)
		assert_int_equal(test_wait(pids[i]), 0);
}

void test_run_victim(int (*victim)(void *arg, int i),
		     int (*survivor)(void *arg, int i), void *arg, int n)
{
	pid_t pids[MAX_PROCS];
	assert_true(n >= 0 && n < MAX_PROCS);
	pids[0] = test_spawn(victim, arg, 0);
	for (int i = 1; i <= n; i++)
		pids[i] = test_spawn(survivor, arg, i);
	assert_int_equal(test_wait(pids[0]), 128 + SIGKILL);
	for (int i = 1; i <= n; i++)
		assert_int_equal(test_wait(pids[i]), 0);
}

int test_env_int(const char *name, int dflt)
{
	const char *e = getenv(name);
	return e ? atoi(e) : dflt;
}

const char *test_self(void)
{
	static char self[PATH_MAX];
	if (!self[0] && !realpath("/proc/self/exe", self))
		snprintf(self, sizeof(self), "/proc/self/exe");
	return self;
}

void *test_map_shared(const char *path, size_t size)
{
	int fd = path ? open(path, O_RDWR | O_CREAT, 0600) : -1;
	if (path && (fd < 0 || ftruncate(fd, (off_t)size) != 0)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       path ? MAP_SHARED : MAP_SHARED | MAP_ANONYMOUS, fd, 0);
	if (fd >= 0)
		close(fd);
	return p == MAP_FAILED ? NULL : p;
}

void test_assert_clean(const char *uri)
{
	struct check_report rep;
	assert_pstm_ok(region_check(uri, &rep));
	if (rep.damage)
		for (unsigned i = 0; i < rep.n; i++)
			print_error("check %s: %s\n", uri, rep.f[i].text);
	assert_int_equal(rep.damage, 0);
	check_report_free(&rep);
}

void test_powerfail_files(struct test_powerfail *pf, const char *tag, int pmem)
{
	int pid = (int)getpid();
	snprintf(pf->base, sizeof(pf->base), "/dev/shm/pstm-test-%s-%d-%d.base", tag, pid, pmem);
	snprintf(pf->work, sizeof(pf->work), "/dev/shm/pstm-test-%s-%d-%d.work", tag, pid, pmem);
	snprintf(pf->image, sizeof(pf->image), "/dev/shm/pstm-test-%s-%d-%d.image", tag, pid, pmem);
	snprintf(pf->shared, sizeof(pf->shared), "/dev/shm/pstm-test-%s-%d.shared", tag, pid);
}

void test_powerfail_arm(const char *image, unsigned seed, unsigned one_in)
{
	char env[512];
	snprintf(env, sizeof(env), "%s:%u:%u", image, seed, one_in);
	setenv("PSTM_TEST_POWERFAIL", env, 1);
}

const char *test_path_of(const char *uri, char *out, size_t n)
{
	int w;
	if (strncmp(uri, "shm:", 4) == 0)
		w = snprintf(out, n, "/dev/shm/%s", uri + 4);
	else
		w = snprintf(out, n, "%s", uri);
	assert_true(w > 0 && (size_t)w < n);
	return out;
}

void test_copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char chunk[65536];
	ssize_t n;
	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, chunk, sizeof(chunk))) > 0)
		assert_int_equal(write(out, chunk, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

void test_powerfail_image(const struct test_powerfail *pf, unsigned seed, int pmem)
{
	test_copy_file(pf->base, pf->work);
	region_forget_volatile(pf->work);
	unlink(pf->image);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		char sd[32];
		snprintf(sd, sizeof(sd), "%u", seed);
		if (pmem)
			setenv("PMEM_IS_PMEM_FORCE", "1", 1);
		execl(test_self(), test_self(), "--child", pf->work, pf->image, sd,
		      pf->shared, (char *)NULL);
		_exit(8);
	}
	assert_int_equal(test_wait(pid), 0);
	region_forget_volatile(pf->work);
	/* a fresh boot: the volatile runtime did not survive */
	region_forget_volatile(pf->image);
}

void test_powerfail_image_done(const struct test_powerfail *pf)
{
	test_assert_clean(pf->image);
	region_forget_volatile(pf->image);
	unlink(pf->image);
}

void test_powerfail_remove(const struct test_powerfail *pf)
{
	pstm_unlink(pf->base);
	region_forget_volatile(pf->work);
	unlink(pf->work);
	unlink(pf->shared);
}

uint64_t test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int test_bank_setup(pstm_tx *tx, void *arg)
{
	struct test_bank *b = arg;
	pstm_off root = pstm_root(tx, 16);
	pstm_off base = pstm_load64(tx, root);
	if (!base) {
		base = pstm_alloc(tx, 8 * (b->n + 1));
		for (uint64_t i = 0; i < b->n; i++)
			pstm_store64(tx, base + 8 * i, 1000);
		pstm_store64(tx, base + 8 * b->n, 0);
		pstm_store64(tx, root, base);
	}
	b->base = base;
	return 0;
}

int test_bank_transfer(pstm_tx *tx, void *arg)
{
	struct test_xfer *x = arg;
	pstm_off base = x->bank->base;
	pstm_off a = base + 8 * x->from, b = base + 8 * x->to;
	if (x->counted) {
		pstm_off c = base + 8 * x->bank->n;
		pstm_store64(tx, c, pstm_load64(tx, c) + 1);
	}
	uint64_t va = pstm_load64(tx, a);
	if (va < x->amount || x->from == x->to)
		return 0;
	pstm_store64(tx, a, va - x->amount);
	pstm_store64(tx, b, pstm_load64(tx, b) + x->amount);
	return 0;
}

int test_bank_read(pstm_tx *tx, void *arg)
{
	struct test_bank_state *st = arg;
	st->total = 0;
	for (uint64_t i = 0; i < st->bank->n; i++)
		st->total += pstm_load64(tx, st->bank->base + 8 * i);
	st->count = pstm_load64(tx, st->bank->base + 8 * st->bank->n);
	return 0;
}

int test_ro_mapping_run(const char *uri, pstm_fn fn, void *arg, int n,
			int ro, struct pstm_stats *st)
{
	pstm_region *r;
	int (*run)(pstm_region *, pstm_fn, void *) = ro ? pstm_atomic_ro : pstm_atomic;
	if (pstm_open(uri, &r))
		return 2;
	if (run(r, fn, arg)) /* claims the slot */
		return 3;
	if (mprotect(r->base, r->map_len, PROT_READ))
		return 4;
	for (int k = 0; k < n; k++)
		if (run(r, fn, arg))
			return 5;
	if (mprotect(r->base, r->map_len, PROT_READ | PROT_WRITE))
		return 6;
	if (st && pstm_stats_get(r, st))
		return 7;
	return pstm_close(r) ? 8 : 0;
}
