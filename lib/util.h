/*
 * util.h - small helpers every layer of the library may use: symbol
 * visibility, alignment, a pause for spin loops, a fast PRNG, a CAS-max
 * and the monotonic clock.  Nothing here knows about regions.
 */
#ifndef PSTM_UTIL_H
#define PSTM_UTIL_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* Private cross-file functions: not exported from libpstm.so. */
#define HIDDEN __attribute__((visibility("hidden")))

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
