/*
 * powerfail.c - power-failure simulation for durable regions (testing).
 *
 * Built only into the test library (lib/testing.h).  Armed by
 * PSTM_TEST_POWERFAIL=IMAGE:SEED:ONE_IN at pstm_open of a durable file
 * region (lib/testing/testing.c).  The process then keeps a private "media" copy of the
 * region: what a power failure would certainly leave behind.  It starts
 * as the file content at open (taken as persisted) and changes only the
 * way real media would:
 *   region_flush(p, n)  the lines of [p, p+n) become "in flight"
 *   region_drain()      in-flight lines are copied to the media copy
 *   (on a plain file, pmem_msync is flush and drain at once)
 * At every flush or drain, with probability 1/ONE_IN, the power fails:
 * the crash image is the media copy plus a random half of the cache lines
 * that were written but not yet persisted (they may or may not have
 * reached the media), written to IMAGE; then the process _exit(0)s on the
 * spot, in the middle of whatever it was doing.  Tests open the image,
 * let recovery run, and check their invariant.
 *
 * Unarmed, this costs one predictable branch per persistence call, and
 * only on durable regions of the test build.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "powerfail.h"
#include "testing.h"

/* The image the media copy follows: the file (behind a relaxed region's
 * working copy, whose stores never reach it). */
static uint8_t *file_view(struct pstm_region *r)
{
	return r->fbase ? r->fbase : r->base;
}

struct powerfail {
	uint8_t *media;      /* what has certainly been persisted */
	uint8_t *inflight;   /* one byte per cache line: flushed, not drained */
	size_t len, lines;
	uint64_t rng, one_in;
	char image[256];
};

static uint64_t next(struct powerfail *pf) { return xorshift64(&pf->rng); }

void powerfail_arm(struct pstm_region *r, const char *v)
{
	char img[256];
	unsigned long long seed, one_in;

	if (!v || !r->durable || r->is_shm ||
	    sscanf(v, "%255[^:]:%llu:%llu", img, &seed, &one_in) != 3 || !one_in)
		return;
	struct powerfail *pf = calloc(1, sizeof(*pf));
	if (!pf)
		return;
	pf->len = r->map_len;
	pf->lines = (pf->len + CACHELINE - 1) / CACHELINE;
	pf->media = malloc(pf->len);
	pf->inflight = calloc(pf->lines, 1);
	if (!pf->media || !pf->inflight) {
		free(pf->media);
		free(pf->inflight);
		free(pf);
		return;
	}
	memcpy(pf->media, file_view(r), pf->len);
	pf->rng = seed * 2654435761u + 1;
	pf->one_in = one_in;
	snprintf(pf->image, sizeof(pf->image), "%s", img);
	r->powerfail = pf;
}

static void fail_now(struct pstm_region *r, struct powerfail *pf)
{
	uint8_t *img = malloc(pf->len);
	if (!img)
		_exit(3);
	memcpy(img, pf->media, pf->len);
	for (size_t l = 0; l < pf->lines; l++) {
		size_t off = l * CACHELINE, n = CACHELINE;
		if (off + n > pf->len)
			n = pf->len - off;
		if (memcmp(img + off, file_view(r) + off, n) != 0 && (next(pf) & 1))
			memcpy(img + off, file_view(r) + off, n);
	}
	int fd = open(pf->image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, img, pf->len) != (ssize_t)pf->len)
		_exit(4);
	close(fd);
	_exit(0);
}

static void maybe_fail(struct pstm_region *r, struct powerfail *pf)
{
	if (next(pf) % pf->one_in == 0)
		fail_now(r, pf);
}

void powerfail_flush(struct pstm_region *r, const void *p, size_t n)
{
	struct powerfail *pf = r->powerfail;
	size_t off = (size_t)((const uint8_t *)p - file_view(r));
	if (off >= pf->len)
		return;
	maybe_fail(r, pf);
	size_t end = off + n > pf->len ? pf->len : off + n;
	for (size_t l = off / CACHELINE; l * CACHELINE < end; l++)
		pf->inflight[l] = 1;
}

void powerfail_drain(struct pstm_region *r)
{
	struct powerfail *pf = r->powerfail;
	maybe_fail(r, pf);
	for (size_t l = 0; l < pf->lines; l++) {
		if (!pf->inflight[l])
			continue;
		size_t off = l * CACHELINE, n = CACHELINE;
		if (off + n > pf->len)
			n = pf->len - off;
		memcpy(pf->media + off, file_view(r) + off, n);
		pf->inflight[l] = 0;
	}
}

void powerfail_free(struct pstm_region *r)
{
	struct powerfail *pf = r->powerfail;
	if (!pf)
		return;
	free(pf->media);
	free(pf->inflight);
	free(pf);
	r->powerfail = NULL;
}
