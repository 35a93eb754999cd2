/*
 * sys_mutex.c - the lock baselines: the plain data structures in a
 * MAP_SHARED mapping of a /dev/shm file, guarded by process-shared robust
 * pthread mutexes.  mutex-global has one mutex for everything;
 * mutex-striped one per stripe of accounts (or hash buckets), taken in
 * address order so transfers cannot deadlock.  A lock whose owner died
 * (EOWNERDEAD) is made consistent and taken over: what a real user of a
 * robust mutex must do, although nobody dies here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "driver.h"
#include "plain.h"

#define STRIPES 1024

struct padded_lock {
	_Alignas(64) pthread_mutex_t m; /* one lock per cache line */
};

static struct plain_store st;
static struct padded_lock *locks;
static void *map;
static size_t map_bytes;
static uint64_t nstripes;
static char path[256];

static uint64_t stripes_for(const char *name)
{
	return strcmp(name, "mutex-global") == 0 ? 1 : STRIPES;
}

static size_t bytes_for(const struct bench_cfg *c)
{
	return sizeof(struct padded_lock) * nstripes + plain_bytes(c, nstripes);
}

static int map_store(const struct bench_cfg *c, int create)
{
	int fd;

	nstripes = stripes_for(c->system);
	bench_path(path, sizeof(path), "/dev/shm", c->system, "");
	map_bytes = bytes_for(c);
	fd = open(path, create ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR, 0600);
	if (fd < 0)
		return bench_fail(path, strerror(errno));
	if (create && ftruncate(fd, (off_t)map_bytes) != 0) {
		close(fd);
		return bench_fail("ftruncate", strerror(errno));
	}
	map = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		map = NULL;
		return bench_fail("mmap", strerror(errno));
	}
	locks = map;
	plain_layout(&st, c, nstripes, locks + nstripes);
	return 0;
}

static void unmap_store(void)
{
	if (map)
		munmap(map, map_bytes);
	map = NULL;
}

static int mutex_setup(const struct bench_cfg *c)
{
	pthread_mutexattr_t a;
	int rc = 0;

	if (map_store(c, 1) != 0)
		return -1;
	pthread_mutexattr_init(&a);
	if (pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0)
		rc = bench_fail("mutexattr", "unsupported");
	for (uint64_t i = 0; rc == 0 && i < nstripes; i++)
		if (pthread_mutex_init(&locks[i].m, &a) != 0)
			rc = bench_fail("pthread_mutex_init", "failed");
	pthread_mutexattr_destroy(&a);
	if (rc == 0)
		rc = plain_init(&st);
	unmap_store();
	return rc;
}

static int mutex_attach(const struct bench_cfg *c)
{
	return map_store(c, 0);
}

static int lock(uint64_t i)
{
	int rc = pthread_mutex_lock(&locks[i].m);

	if (rc == EOWNERDEAD)
		rc = pthread_mutex_consistent(&locks[i].m);
	if (rc != 0)
		return bench_fail("pthread_mutex_lock", strerror(rc));
	return 0;
}

static void unlock(uint64_t i)
{
	pthread_mutex_unlock(&locks[i].m);
}

/* the stripes an operation touches, ascending, without duplicates */
static int stripes_of(const struct bench_op *op, uint64_t *out)
{
	uint64_t tmp[BENCH_READ_N];
	int n = 0;

	switch (op->kind) {
	case OP_TRANSFER:
		tmp[n++] = plain_stripe(&st, op->from);
		tmp[n++] = plain_stripe(&st, op->to);
		break;
	case OP_READ:
		for (int i = 0; i < BENCH_READ_N; i++)
			tmp[n++] = plain_stripe(&st, op->accounts[i]);
		break;
	default:
		out[0] = plain_stripe(&st, op->key);
		return 1;
	}
	/* insertion sort, dropping duplicates */
	int m = 0;
	for (int i = 0; i < n; i++) {
		int j = m;
		while (j > 0 && out[j - 1] > tmp[i])
			j--;
		if (j > 0 && out[j - 1] == tmp[i])
			continue;
		memmove(&out[j + 1], &out[j], sizeof(out[0]) * (size_t)(m - j));
		out[j] = tmp[i];
		m++;
	}
	return m;
}

static int mutex_exec(const struct bench_op *op, int64_t *result)
{
	uint64_t s[BENCH_READ_N];
	int n, rc;

	if (nstripes == 1) {
		if (lock(0) != 0)
			return -1;
		rc = plain_exec(&st, op, result);
		unlock(0);
		return rc;
	}
	n = stripes_of(op, s);
	for (int i = 0; i < n; i++)
		if (lock(s[i]) != 0) {
			while (i-- > 0)
				unlock(s[i]);
			return -1;
		}
	rc = plain_exec(&st, op, result);
	for (int i = n; i-- > 0;)
		unlock(s[i]);
	return rc;
}

static int mutex_check(const struct bench_cfg *c, struct bench_state *s)
{
	(void)c;
	return plain_check(&st, s); /* quiescent: no locks needed */
}

static void mutex_detach(void)
{
	unmap_store();
}

static void mutex_teardown(const struct bench_cfg *c)
{
	bench_path(path, sizeof(path), "/dev/shm", c->system, "");
	unlink(path);
}

BENCH_SYSTEM(mutex_global, "mutex-global", mutex);
BENCH_SYSTEM(mutex_striped, "mutex-striped", mutex);

const struct bench_system *const bench_systems[] = { &mutex_global,
						     &mutex_striped, NULL };
