/*
 * util.h - small helpers every layer of the library may use: symbol
 * visibility, alignment, a pause for spin loops, a fast PRNG, a CAS-max
 * and the monotonic clock.  Nothing here knows about regions.
 */
#ifndef PSTM_UTIL_H
#define PSTM_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* Private cross-file functions: not exported from libpstm.so. */
#define HIDDEN __attribute__((visibility("hidden")))

/*
 * Public structs that grow (the ABI policy in pstm.h, "Structs that
 * grow"): the caller says how many bytes its struct has (@size, its
 * header's sizeof), the library knows @known bytes of it, the first
 * release had @v0.  A size below v0 or above this bound is garbage.
 */
#define SIZED_MAX 4096

/* Copy the caller's options @src (@size bytes) into @dst (@known bytes),
 * zero beyond what the caller has.  false: a size out of range, or bytes
 * beyond @known that are not zero (a field this library does not know). */
static inline bool sized_in(void *dst, size_t known, const void *src,
			    size_t size, size_t v0)
{
	if (size < v0 || size > SIZED_MAX)
		return false;
	memset(dst, 0, known);
	memcpy(dst, src, size < known ? size : known);
	for (size_t i = known; i < size; i++)
		if (((const unsigned char *)src)[i])
			return false;
	return true;
}

/* Write the library's @known bytes of @src to the caller's @dst of @size
 * bytes: no byte past @size, and a caller's tail beyond @known zeroed.
 * false (nothing written): a size out of range. */
static inline bool sized_out(void *dst, size_t size, const void *src,
			     size_t known, size_t v0)
{
	if (size < v0 || size > SIZED_MAX)
		return false;
	memcpy(dst, src, size < known ? size : known);
	if (size > known)
		memset((unsigned char *)dst + known, 0, size - known);
	return true;
}

/* The first release's (0.1.0, abi/libpstm.abi) sizes of those structs:
 * what the old entry points (pstm_create, ...) take, and the least a
 * sized one accepts.  lib/region.c checks them against the fields. */
#define CREATE_OPTS_V0 40u
#define REGION_INFO_V0 80u /* up to created_ns; read_only came later */
#define STATS_V0 64u
#define COPY_OPTS_V0 32u
#define COPY_INFO_V0 64u

/* CLOCK_MONOTONIC in ns (waits and bounds, never on the fast path) */
static inline uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* Tell the CPU we are spinning (x86 PAUSE, arm YIELD). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Marsaglia's xorshift64: fast, enough for backoff and fault injection.
 * *s must not be 0. */
static inline uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Raise *w to at least v (seq_cst CAS loop); never lowers it. */
static inline void atomic_store_max(_Atomic uint64_t *w, uint64_t v)
{
	uint64_t cur = atomic_load(w);
	while (cur < v && !atomic_compare_exchange_weak(w, &cur, v))
		;
}

#endif /* PSTM_UTIL_H */
