/*
 * testing.c - what the test build of the library reads from the
 * environment at pstm_open (lib/testing.h).  Never in the shipped
 * library.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "powerfail.h"
#include "testing.h"

void testing_open(struct pstm_region *r)
{
	const char *brk = secure_getenv("PSTM_TEST_BREAK_VALIDATION");
	r->test_no_validate = brk && strcmp(brk, "1") == 0;
	powerfail_arm(r, secure_getenv("PSTM_TEST_POWERFAIL"));
}

void testing_close(struct pstm_region *r)
{
	powerfail_free(r);
}

uint32_t testing_format_version(uint32_t dflt)
{
	const char *f = secure_getenv("PSTM_TEST_FORMAT");
	return f && strcmp(f, "1") == 0 ? 1 : dflt;
}
