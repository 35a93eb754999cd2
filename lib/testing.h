/*
 * testing.h - hooks that exist only in the test build of the library
 * (-DPSTM_TESTING: build/test/libpstm-testing.a, linked by tests/ and by
 * pstm-crashtest; sources in lib/testing/).  In the library that make
 * install ships they compile to nothing, so no environment variable can
 * turn validation off or make a program write region images.
 */
#ifndef PSTM_TESTING_H
#define PSTM_TESTING_H

#include "region.h"

#ifdef PSTM_TESTING
/* At pstm_open: PSTM_TEST_BREAK_VALIDATION=1 (reads are never
 * validated: the history tests must then find a cycle) and
 * PSTM_TEST_POWERFAIL=IMAGE:SEED:ONE_IN (lib/testing/powerfail.c). */
HIDDEN void testing_open(struct pstm_region *r);
HIDDEN void testing_close(struct pstm_region *r);
HIDDEN void powerfail_flush(struct pstm_region *r, const void *p, size_t n);
HIDDEN void powerfail_drain(struct pstm_region *r);
/* The format of regions created: PSTM_TEST_FORMAT=1 makes format 1
 * regions (as the previous library did), for the compatibility tests;
 * @dflt otherwise. */
HIDDEN uint32_t testing_format_version(uint32_t dflt);
#define TESTING_FORMAT_VERSION(dflt) testing_format_version(dflt)
#define TESTING_NO_VALIDATE(r) __builtin_expect((r)->test_no_validate, 0)
#define TESTING_POWERFAIL(r) __builtin_expect((r)->powerfail != NULL, 0)
#else
static inline void testing_open(struct pstm_region *r) { (void)r; }
static inline void testing_close(struct pstm_region *r) { (void)r; }
#define TESTING_NO_VALIDATE(r) 0
#define TESTING_FORMAT_VERSION(dflt) (dflt)
#define TESTING_POWERFAIL(r) 0
#define powerfail_flush(r, p, n) ((void)0)
#define powerfail_drain(r) ((void)0)
#endif

#endif /* PSTM_TESTING_H */
