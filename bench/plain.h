/*
 * plain.h - the workloads' data structures in plain memory, with no
 * synchronization: the floor runs them as they are, the mutex baselines
 * run them under their locks.  Both thus execute the same instructions.
 *
 * Integer set: bucket heads and links are node indexes + 1 (0 = none), so
 * the structure is position-independent in a shared mapping.  Node i
 * belongs to stripe plain_stripe(i): a stripe owns exactly as many nodes
 * as keys that can live in its buckets, on its own free list, so a stripe
 * lock also covers allocation.
 */
#ifndef BENCH_PLAIN_H
#define BENCH_PLAIN_H

#include <stdint.h>

#include "driver.h"

struct plain_node {
	uint64_t key;
	uint32_t next; /* index + 1, 0 = end */
	uint32_t used; /* 1 while linked in a bucket */
};

struct plain_store {
	uint64_t n;         /* accounts, or key range */
	uint64_t nbuckets;  /* intset */
	uint64_t nstripes;  /* 1 = global */
	int64_t *acct;      /* [n] bank/readmostly */
	uint32_t *bucket;   /* [nbuckets] intset */
	struct plain_node *node; /* [n] intset */
	uint32_t *free_head;     /* [nstripes] intset */
};

/* Bytes for the arrays of a store (laid out by plain_layout). */
static inline uint64_t plain_bytes(const struct bench_cfg *c,
				   uint64_t nstripes)
{
	if (c->workload != WL_INTSET)
		return c->size * sizeof(int64_t);
	return bench_nbuckets(c->size) * sizeof(uint32_t) +
	       c->size * sizeof(struct plain_node) + nstripes * 4 + 64;
}

/* Point s's arrays into mem (plain_bytes long). */
static inline void plain_layout(struct plain_store *s, const struct bench_cfg *c,
				uint64_t nstripes, void *mem)
{
	char *p = mem;

	s->n = c->size;
	s->nbuckets = bench_nbuckets(c->size);
	s->nstripes = nstripes;
	s->acct = NULL;
	s->bucket = NULL;
	s->node = NULL;
	s->free_head = NULL;
	if (c->workload != WL_INTSET) {
		s->acct = (int64_t *)p;
		return;
	}
	s->node = (struct plain_node *)p;
	p += c->size * sizeof(struct plain_node);
	s->bucket = (uint32_t *)p;
	p += s->nbuckets * sizeof(uint32_t);
	s->free_head = (uint32_t *)p;
}

static inline uint64_t plain_stripe_of_bucket(const struct plain_store *s,
					      uint64_t b)
{
	return b % s->nstripes;
}

/* stripe covering key (or account) k */
static inline uint64_t plain_stripe(const struct plain_store *s, uint64_t k)
{
	if (s->bucket)
		return plain_stripe_of_bucket(s, k % s->nbuckets);
	return k % s->nstripes;
}

static inline int plain_insert(struct plain_store *s, uint64_t k)
{
	uint32_t *link = &s->bucket[k % s->nbuckets];
	uint64_t st = plain_stripe(s, k);

	while (*link && s->node[*link - 1].key < k)
		link = &s->node[*link - 1].next;
	if (*link && s->node[*link - 1].key == k)
		return 0;
	uint32_t i = s->free_head[st];
	if (!i)
		return -1; /* cannot happen: a stripe owns a node per key */
	struct plain_node *nd = &s->node[i - 1];
	s->free_head[st] = nd->next;
	nd->key = k;
	nd->used = 1;
	nd->next = *link;
	*link = i;
	return 1;
}

static inline int plain_delete(struct plain_store *s, uint64_t k)
{
	uint32_t *link = &s->bucket[k % s->nbuckets];
	uint64_t st = plain_stripe(s, k);

	while (*link && s->node[*link - 1].key < k)
		link = &s->node[*link - 1].next;
	if (!*link || s->node[*link - 1].key != k)
		return 0;
	uint32_t i = *link;
	struct plain_node *nd = &s->node[i - 1];
	*link = nd->next;
	nd->used = 0;
	nd->next = s->free_head[st];
	s->free_head[st] = i;
	return 1;
}

static inline int plain_lookup(const struct plain_store *s, uint64_t k)
{
	uint32_t i = s->bucket[k % s->nbuckets];

	while (i && s->node[i - 1].key < k)
		i = s->node[i - 1].next;
	return i && s->node[i - 1].key == k;
}

/* Fill a fresh store: balances, or free lists then the initial keys. */
static inline int plain_init(struct plain_store *s)
{
	if (s->acct) {
		for (uint64_t i = 0; i < s->n; i++)
			s->acct[i] = BENCH_INIT_BALANCE;
		return 0;
	}
	for (uint64_t b = 0; b < s->nbuckets; b++)
		s->bucket[b] = 0;
	for (uint64_t st = 0; st < s->nstripes; st++)
		s->free_head[st] = 0;
	/* node i serves stripe plain_stripe(i); push in reverse so the
	 * lists hand out low indexes first */
	for (uint64_t i = s->n; i-- > 0;) {
		uint64_t st = plain_stripe(s, i);
		s->node[i].key = 0;
		s->node[i].used = 0;
		s->node[i].next = s->free_head[st];
		s->free_head[st] = (uint32_t)(i + 1);
	}
	for (uint64_t k = 0; k < s->n; k++)
		if (bench_key_initially_present(k) && plain_insert(s, k) < 0)
			return -1;
	return 0;
}

/* One transaction's worth of work, with the caller holding its locks. */
static inline int plain_exec(struct plain_store *s, const struct bench_op *op,
			     int64_t *result)
{
	int64_t sum = 0;
	int rc;

	switch (op->kind) {
	case OP_TRANSFER:
		s->acct[op->from] -= op->amount;
		s->acct[op->to] += op->amount;
		return 0;
	case OP_READ:
		for (int i = 0; i < BENCH_READ_N; i++)
			sum += s->acct[op->accounts[i]];
		*result = sum;
		return 0;
	case OP_LOOKUP:
		*result = plain_lookup(s, op->key);
		return 0;
	case OP_INSERT:
		rc = plain_insert(s, op->key);
		*result = rc > 0;
		return rc < 0 ? -1 : 0;
	case OP_DELETE:
		*result = plain_delete(s, op->key);
		return 0;
	}
	return -1;
}

/*
 * Quiescent check: balances sum; or every chain sorted, in its bucket, in
 * range, nodes marked used, and used + free nodes == n per the free lists.
 */
static inline int plain_check(const struct plain_store *s,
			      struct bench_state *st)
{
	uint64_t linked = 0, freed = 0;

	st->total = 0;
	st->count = 0;
	if (s->acct) {
		for (uint64_t i = 0; i < s->n; i++)
			st->total += s->acct[i];
		return 0;
	}
	for (uint64_t b = 0; b < s->nbuckets; b++) {
		uint64_t prev = 0, steps = 0;
		for (uint32_t i = s->bucket[b]; i; i = s->node[i - 1].next) {
			const struct plain_node *nd = &s->node[i - 1];
			if (i > s->n || ++steps > s->n || nd->key >= s->n ||
			    nd->key % s->nbuckets != b || !nd->used ||
			    (steps > 1 && nd->key <= prev))
				return bench_fail("intset", "corrupt chain");
			prev = nd->key;
			linked++;
		}
	}
	for (uint64_t sp = 0; sp < s->nstripes; sp++) {
		uint64_t steps = 0;
		for (uint32_t i = s->free_head[sp]; i; i = s->node[i - 1].next)
			if (i > s->n || ++steps > s->n || s->node[i - 1].used ||
			    plain_stripe(s, i - 1) != sp)
				return bench_fail("intset", "corrupt free list");
		freed += steps;
	}
	if (linked + freed != s->n)
		return bench_fail("intset", "nodes leaked");
	st->count = linked;
	return 0;
}

#endif /* BENCH_PLAIN_H */
