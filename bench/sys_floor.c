/*
 * sys_floor.c - the floor: the workloads' plain data structures in private
 * memory of one process, no locks, no transactions.  Nothing can run a
 * workload faster on this machine; every other system is a ratio of it.
 */
#include <stdlib.h>

#include "driver.h"
#include "plain.h"

static struct plain_store st;
static void *mem;

static int floor_setup(const struct bench_cfg *c)
{
	(void)c;
	return 0; /* the store is private: each worker builds its own */
}

static int floor_attach(const struct bench_cfg *c)
{
	mem = malloc(plain_bytes(c, 1));
	if (!mem)
		return bench_fail("malloc", "out of memory");
	plain_layout(&st, c, 1, mem);
	return plain_init(&st);
}

static int floor_exec(const struct bench_op *op, int64_t *result)
{
	return plain_exec(&st, op, result);
}

static int floor_check(const struct bench_cfg *c, struct bench_state *s)
{
	(void)c;
	return plain_check(&st, s);
}

static void floor_detach(void)
{
	free(mem);
	mem = NULL;
}

static void floor_teardown(const struct bench_cfg *c)
{
	(void)c;
}

static const struct bench_system floor_sys = {
	.name = "floor",
	.max_procs = 1,
	.setup = floor_setup,
	.attach = floor_attach,
	.exec = floor_exec,
	.check = floor_check,
	.detach = floor_detach,
	.teardown = floor_teardown,
};

const struct bench_system *const bench_systems[] = { &floor_sys, NULL };
