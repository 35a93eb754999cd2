#define _GNU_SOURCE
#include <errno.h>
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
	if (p == 0)
		_exit(fn(arg, i));
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
