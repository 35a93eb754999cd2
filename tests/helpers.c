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
