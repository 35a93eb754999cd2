/*
 * test_watch.c - events become transactions: fds watched by pstm_run.
 * Forked clients send requests over socketpairs; the server's handlers
 * run one transaction per request and answer from its commit hook, so
 * only committed transactions are answered, each request exactly once,
 * and no reply shows a state that was rolled back.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

enum { CLIENTS = 2, REQS = 400, FAIL_EVERY = 7, USER_ERR = 42 };

struct req {
	uint32_t id;
	int32_t amount; /* < 0: the transaction fails after its write */
};

struct reply {
	uint32_t id;
	int32_t status; /* 0 committed, else the error */
	uint64_t value; /* the counter right after this transaction */
};

struct server {
	pstm_region *r;
	pstm_off counter;
	_Atomic int handled;
};

struct call {
	struct server *srv;
	int fd;
	struct req q;
	uint64_t value;
};

static void reply(int fd, uint32_t id, int32_t status, uint64_t value)
{
	struct reply p = {id, status, value};
	/* a client that went away is its own business (the test checks
	 * the clients' exit status) */
	(void)!send(fd, &p, sizeof(p), MSG_NOSIGNAL);
}

/* the commit hook: the transaction committed, answer now */
static void answer(void *arg)
{
	struct call *c = arg;
	reply(c->fd, c->q.id, 0, c->value);
	free(c);
}

static int body(pstm_tx *tx, void *arg)
{
	struct call *c = arg;
	struct server *srv = c->srv;
	uint64_t v = pstm_load64(tx, srv->counter) +
		     (uint64_t)(c->q.amount < 0 ? 1000000 : c->q.amount);
	pstm_store64(tx, srv->counter, v);
	c->value = v;
	pstm_tx_on_commit(tx, answer, c);
	return c->q.amount < 0 ? USER_ERR : 0;
}

static void on_request(pstm_region *r, int fd, uint32_t revents, void *arg)
{
	struct server *srv = arg;
	struct req q;
	(void)revents;
	ssize_t n = read(fd, &q, sizeof(q));
	if (n <= 0) { /* the client is gone */
		assert_int_equal(pstm_unwatch_fd(r, fd), 0);
		close(fd);
		return;
	}
	assert_int_equal(n, sizeof(q));
	assert_false(pstm_in_tx());
	struct call *c = malloc(sizeof(*c));
	assert_non_null(c);
	*c = (struct call){.srv = srv, .fd = fd, .q = q};
	int rc = pstm_atomic(r, body, c);
	if (rc != 0) { /* rolled back: the hook was dropped */
		reply(fd, q.id, rc, 0);
		free(c);
	}
	atomic_fetch_add(&srv->handled, 1);
}

struct seen {
	uint64_t value[CLIENTS][REQS];
	int32_t amount[CLIENTS][REQS];
	int32_t status[CLIENTS][REQS];
	int replies[CLIENTS];
};

static int client(struct seen *sh, int k, int fd)
{
	unsigned s = 99u + (unsigned)k;
	for (uint32_t i = 0; i < REQS; i++) {
		s = s * 1103515245u + 12345u;
		struct req q = {i, i % FAIL_EVERY == 3 ? -1 : (int32_t)(1 + (s >> 16) % 9)};
		if (write(fd, &q, sizeof(q)) != (ssize_t)sizeof(q))
			return 2;
		struct reply p;
		if (read(fd, &p, sizeof(p)) != (ssize_t)sizeof(p) || p.id != i)
			return 3; /* one reply per request, in order */
		sh->value[k][i] = p.value;
		sh->amount[k][i] = q.amount;
		sh->status[k][i] = p.status;
		sh->replies[k]++;
	}
	close(fd);
	return 0;
}

static int setup_counter(pstm_tx *tx, void *arg)
{
	struct server *srv = arg;
	srv->counter = pstm_root(tx, 8);
	return 0;
}

static int read_counter(pstm_tx *tx, void *arg)
{
	uint64_t *v = arg;
	*v = pstm_load64(tx, (pstm_off)v[1]);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_requests_become_transactions(void **s)
{
	(void)s;
	const char *uri = test_shm_uri("watch");
	struct server srv = {0};
	struct pstm_create_opts o = {.size_bytes = 8 << 20};
	assert_pstm_ok(pstm_create(uri, &o, &srv.r));
	assert_pstm_ok(pstm_atomic(srv.r, setup_counter, &srv));
	struct seen *sh = test_map_shared(NULL, sizeof(*sh));
	assert_non_null(sh);

	pid_t pid[CLIENTS];
	for (int k = 0; k < CLIENTS; k++) {
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
		pid[k] = fork();
		if (pid[k] == 0) {
			close(sv[0]);
			_exit(client(sh, k, sv[1]));
		}
		close(sv[1]);
		assert_pstm_ok(pstm_watch_fd(srv.r, sv[0], EPOLLIN, on_request, &srv));
		assert_int_equal(pstm_watch_fd(srv.r, sv[0], EPOLLIN, on_request, &srv),
				 PSTM_EEXIST);
	}
	/* runs until both clients hung up and their fds were unwatched */
	assert_pstm_ok(pstm_run(srv.r, 4));
	for (int k = 0; k < CLIENTS; k++)
		assert_int_equal(test_wait(pid[k]), 0);
	assert_int_equal(atomic_load(&srv.handled), CLIENTS * REQS);

	/* committed replies chain into one serial order; failed ones were
	 * answered with their error and left no trace (their +1000000) */
	uint64_t vals[CLIENTS * REQS], sum = 0;
	int nv = 0, failed = 0;
	for (int k = 0; k < CLIENTS; k++) {
		assert_int_equal(sh->replies[k], REQS);
		for (int i = 0; i < REQS; i++) {
			if (sh->amount[k][i] < 0) {
				assert_int_equal(sh->status[k][i], USER_ERR);
				failed++;
				continue;
			}
			assert_int_equal(sh->status[k][i], 0);
			vals[nv++] = sh->value[k][i] << 8 | (uint64_t)sh->amount[k][i];
			sum += (uint64_t)sh->amount[k][i];
		}
	}
	qsort(vals, (size_t)nv, sizeof(vals[0]), cmp_u64);
	uint64_t prev = 0;
	for (int i = 0; i < nv; i++) {
		uint64_t v = vals[i] >> 8, a = vals[i] & 0xff;
		assert_int_equal(v, prev + a); /* the state its transaction made */
		prev = v;
	}
	uint64_t c[2] = {0, srv.counter};
	assert_pstm_ok(pstm_atomic(srv.r, read_counter, c));
	assert_int_equal(c[0], sum);
	assert_int_equal(prev, sum);
	assert_true(failed > 0);
	munmap(sh, sizeof(*sh));
	assert_pstm_ok(pstm_close(srv.r));
	assert_pstm_ok(pstm_unlink(uri));
}

static void *stopper(void *arg)
{
	pstm_region *r = arg;
	usleep(200000);
	if (pstm_run_stop(r) != 0)
		abort();
	return NULL;
}

static void never(pstm_region *r, int fd, uint32_t revents, void *arg)
{
	(void)r, (void)fd, (void)revents, (void)arg;
	abort();
}

static double cpu_s(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 +
	       (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static void test_stop_and_idle(void **s)
{
	(void)s;
	const char *uri = test_shm_uri("watchstop");
	pstm_region *r;
	struct pstm_create_opts o = {.size_bytes = 4 << 20};
	assert_pstm_ok(pstm_create(uri, &o, &r));
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pstm_watch_fd(r, p[0], 0, never, NULL), PSTM_EINVAL);
	assert_int_equal(pstm_watch_fd(r, -1, EPOLLIN, never, NULL), PSTM_EINVAL);
	assert_int_equal(pstm_watch_fd(r, p[0], EPOLLIN, NULL, NULL), PSTM_EINVAL);
	assert_int_equal(pstm_unwatch_fd(r, p[0]), PSTM_ENOENT);
	assert_int_equal(pstm_run_stop(r), PSTM_EINVAL); /* no run active */
	assert_pstm_ok(pstm_watch_fd(r, p[0], EPOLLIN, never, NULL));
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, stopper, r), 0);
	double c0 = cpu_s();
	uint64_t t0 = test_now_ns();
	assert_pstm_ok(pstm_run(r, 4)); /* returns at the stop */
	double wall = (double)(test_now_ns() - t0) / 1e9, cpu = cpu_s() - c0;
	pthread_join(th, NULL);
	printf("# 4 idle workers: %.0f ms of CPU in %.0f ms\n", cpu * 1e3, wall * 1e3);
	assert_true(wall >= 0.15);
	assert_true(cpu < 0.25 * wall); /* they sleep in epoll_wait */
	assert_pstm_ok(pstm_unwatch_fd(r, p[0]));
	/* with nothing watched and nothing pending a run returns at once */
	assert_pstm_ok(pstm_run(r, 2));
	close(p[0]);
	close(p[1]);
	assert_pstm_ok(pstm_close(r));
	assert_pstm_ok(pstm_unlink(uri));
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_requests_become_transactions),
	cmocka_unit_test(test_stop_and_idle),
};
TEST_MAIN(tests)
