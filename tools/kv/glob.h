/* glob.h - Redis-style glob patterns (KEYS, SCAN MATCH) on byte strings. */
#ifndef KV_GLOB_H
#define KV_GLOB_H

#include <stddef.h>

/*
 * glob_match - whether @s matches @pat: '*' any run, '?' any byte,
 * [abc] [a-z] [^x] a class, '\' quotes the next byte.  Backtracks only
 * to the last '*', so any pattern costs at most len(pat) * len(s) steps.
 */
int glob_match(const char *pat, size_t plen, const char *s, size_t slen);

#endif
