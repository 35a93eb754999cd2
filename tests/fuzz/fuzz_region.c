/*
 * fuzz_region.c - libFuzzer target for the paths that read a region file:
 * superblock validation, pstm check, and a fresh-boot pstm_open (runtime
 * rebuilt, redo records replayed) followed by a transaction.  Each input
 * is a byte choosing the base image, then a list of patches {u32 offset,
 * u8 length, bytes} applied to it: a durable region, or a relaxed one
 * whose file holds records above its horizon (a process flushed, then
 * died before a checkpoint), both with committed data and redo records.
 * Nothing may crash, hang or touch memory outside the region; errors are
 * fine.
 *   make fuzz FUZZ_SECONDS=300
 */
#include <fcntl.h>
#include <sys/wait.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pstm.h"
#include "companion.h"
#include "region.h"

#define SIZE (1u << 20)
static uint8_t *base_img[2]; /* durable, relaxed */
static char path[64];

static int fill(pstm_tx *tx, void *arg)
{
	(void)arg;
	pstm_off root = pstm_root(tx, 64);
	pstm_off a = pstm_load64(tx, root);
	if (!a) {
		a = pstm_alloc(tx, 8 * 32);
		pstm_store64(tx, root, a);
	}
	for (int i = 0; i < 32; i++)
		pstm_store64(tx, a + 8 * (uint64_t)i, pstm_load64(tx, a + 8 * (uint64_t)i) + 1);
	return 0;
}

static int sum(pstm_tx *tx, void *arg)
{
	pstm_off root = pstm_root(tx, 64);
	pstm_off a = pstm_load64(tx, root);
	uint64_t s = 0;
	uint8_t buf[64];
	for (int i = 0; i < 32 && a; i++)
		s += pstm_load64(tx, a + 8 * (uint64_t)i);
	pstm_read(tx, root, buf, sizeof(buf));
	*(uint64_t *)arg = s;
	return 0;
}

static void cleanup(void)
{
	region_forget_volatile(path);
	unlink(path);
}

static void make_base(int relaxed)
{
	struct pstm_create_opts o = {.size_bytes = SIZE, .replace = 1,
				     .durability = relaxed ? PSTM_RELAXED : 0};
	pstm_region *r;
	snprintf(path, sizeof(path), "/dev/shm/pstm-fuzz-%d.region", (int)getpid());
	/* a child builds it and, on a relaxed region, dies after a flush:
	 * records above the file's horizon, as a power failure finds them */
	pid_t p = fork();
	if (p == 0) {
		if (pstm_create(path, &o, &r))
			_exit(1);
		for (int i = 0; i < 20; i++)
			pstm_atomic(r, fill, NULL);
		if (!relaxed) {
			pstm_close(r);
			_exit(0);
		}
		pstm_sync(r);
		_exit(0);
	}
	int st;
	if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st))
		abort();
	base_img[relaxed] = malloc(SIZE);
	int fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, base_img[relaxed], SIZE) != SIZE)
		abort();
	close(fd);
	region_forget_volatile(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	if (!base_img[0]) {
		make_base(0);
		make_base(1);
		atexit(cleanup);
	}
	uint8_t *img = malloc(SIZE);
	memcpy(img, base_img[n && (data[0] & 1)], SIZE);
	size_t len = SIZE;
	for (size_t i = 1; i + 5 <= n;) {
		uint32_t off;
		memcpy(&off, data + i, 4);
		uint8_t k = data[i + 4];
		i += 5;
		if (off == 0xffffffffu) { /* truncate */
			len = k ? (size_t)k * 4096 : 0;
			continue;
		}
		/* most patches hit the superblock, logs and heap header */
		off = (off & 0x80000000u) ? off % SIZE : off % 65536;
		for (uint8_t j = 0; j < k && i < n; j++, i++)
			if (off + j < SIZE)
				img[off + j] = data[i];
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, img, len) != (ssize_t)len)
		abort();
	close(fd);
	free(img);

	struct check_report rep;
	if (region_check(path, &rep) == 0)
		check_report_free(&rep);
	pstm_region *r;
	if (pstm_open(path, &r) == 0) {
		uint64_t s;
		(void)pstm_atomic(r, sum, &s);
		(void)pstm_atomic(r, fill, NULL);
		pstm_close(r);
	}
	region_forget_volatile(path);
	return 0;
}
