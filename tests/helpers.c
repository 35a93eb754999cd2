#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

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
