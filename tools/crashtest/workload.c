/*
 * workload.c - what pstm-crashtest runs: the built-in bank (money moves
 * between accounts, the total constant), or the workload object named by
 * --workload (include/pstm_crashtest.h), loaded here.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "crashtest.h"

enum { BANK_ACCOUNTS = 64, BANK_START = 1000 };

static int bank_init(pstm_tx *tx, pstm_off s)
{
	for (uint64_t i = 0; i < BANK_ACCOUNTS; i++)
		pstm_store64(tx, s + 8 * i, BANK_START);
	return 0;
}

static int bank_step(pstm_tx *tx, pstm_off s, uint64_t rnd)
{
	pstm_off from = s + 8 * (rnd % BANK_ACCOUNTS);
	pstm_off to = s + 8 * ((rnd >> 8) % BANK_ACCOUNTS);
	uint64_t amount = (rnd >> 16) % 100, have = pstm_load64(tx, from);
	if (from == to || have < amount)
		return 0;
	pstm_store64(tx, from, have - amount);
	pstm_store64(tx, to, pstm_load64(tx, to) + amount);
	return 0;
}

static int bank_check(pstm_tx *tx, pstm_off s, char *why, size_t n)
{
	uint64_t total = 0;
	for (uint64_t i = 0; i < BANK_ACCOUNTS; i++)
		total += pstm_load64(tx, s + 8 * i);
	if (total == (uint64_t)BANK_ACCOUNTS * BANK_START)
		return 0;
	snprintf(why, n, "bank total %llu, expected %llu", (unsigned long long)total,
		 (unsigned long long)BANK_ACCOUNTS * BANK_START);
	return 1;
}

static const struct pstm_crashtest_workload bank = {
	.name = "bank",
	.state_bytes = 8 * BANK_ACCOUNTS,
	.init = bank_init,
	.step = bank_step,
	.check = bank_check,
};

/* Set c->wl and c->wl_name from --workload (c->lib), or the bank. */
int workload_load(struct ct *c)
{
	char path[4096];
	if (!c->lib) {
		c->wl = &bank;
		c->wl_name = "bank (built-in)";
		return 0;
	}
	/* a bare file name means the current directory, not the library path */
	snprintf(path, sizeof(path), "%s%s", strchr(c->lib, '/') ? "" : "./", c->lib);
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "%s: cannot load workload: %s\n", PROG, dlerror());
		return -1;
	}
	const struct pstm_crashtest_workload *(*get)(void) =
		(const struct pstm_crashtest_workload *(*)(void))dlsym(h, PSTM_CRASHTEST_SYMBOL);
	if (!get) {
		fprintf(stderr, "%s: %s does not define %s()\n", PROG, c->lib,
			PSTM_CRASHTEST_SYMBOL);
		return -1;
	}
	const struct pstm_crashtest_workload *wl = get();
	/* as many bytes as its header had (pstm_crashtest.h): the fields up
	 * to check, the first release's struct, unless it says more */
	const size_t v0 = offsetof(struct pstm_crashtest_workload, check) +
			  sizeof(wl->check);
	const size_t *szp = (const size_t *)dlsym(h, PSTM_CRASHTEST_SIZE_SYMBOL);
	size_t size = szp ? *szp : v0, known = sizeof(c->wl_copy);
	if (!wl) {
		fprintf(stderr, "%s: %s: %s() returned NULL\n", PROG, c->lib,
			PSTM_CRASHTEST_SYMBOL);
		return -1;
	}
	if (size < v0 || size > 4096) {
		fprintf(stderr, "%s: %s: %s is %zu bytes, not a struct "
			"pstm_crashtest_workload (%zu..4096)\n", PROG, c->lib,
			PSTM_CRASHTEST_SIZE_SYMBOL, size, v0);
		return -1;
	}
	memset(&c->wl_copy, 0, known);
	memcpy(&c->wl_copy, wl, size < known ? size : known);
	for (size_t i = known; i < size; i++)
		if (((const unsigned char *)wl)[i]) {
			fprintf(stderr, "%s: %s: the workload sets fields this "
				"pstm-crashtest does not know (built with a "
				"newer pstm_crashtest.h?)\n", PROG, c->lib);
			return -1;
		}
	c->wl = &c->wl_copy;
	if (!c->wl->step || !c->wl->check || !c->wl->state_bytes) {
		fprintf(stderr, "%s: %s: %s() must return a workload with step, check "
			"and state_bytes > 0\n", PROG, c->lib, PSTM_CRASHTEST_SYMBOL);
		return -1;
	}
	const char *base = strrchr(c->lib, '/');
	c->wl_name = c->wl->name ? c->wl->name : base ? base + 1 : c->lib;
	return 0;
}
