/*
 * conflict.h - conflict reports, the writing side (lib/conflict.c): what
 * a transaction records in its slot's conflict table when it loses, and
 * the name each slot publishes for the transactions that lose against
 * it.  The tables' layout is in layout.h; lib/conflict_report.c reads
 * them for pstm conflicts.
 */
#ifndef PSTM_CONFLICT_H
#define PSTM_CONFLICT_H

#include "region.h"

/* A name in process memory: the words of a struct conflict_name. */
struct cname {
	uint64_t kind;   /* CNAME_* */
	uint64_t addr;   /* CNAME_ADDR: offset of the function in its module */
	uint64_t text[CONFLICT_TEXT / 8]; /* NUL-terminated */
};
static inline const char *cname_text(const struct cname *n)
{
	return (const char *)n->text;
}

/*
 * The tables' sequence locks (layout.h): the words inside are relaxed
 * atomics ordered by fences.  ThreadSanitizer does not take fences, so
 * its builds order the words themselves (release stores, acquire loads):
 * the same ordering, a little stronger (as DATA_LOAD in stm.h).
 */
#ifdef __SANITIZE_THREAD__
#define CF_WORD_LOAD memory_order_acquire
#define CF_WORD_STORE memory_order_release
#define cf_fence_acquire() ((void)0)
#define cf_fence_release() ((void)0)
#else
#define CF_WORD_LOAD memory_order_relaxed
#define CF_WORD_STORE memory_order_relaxed
#define cf_fence_acquire() atomic_thread_fence(memory_order_acquire)
#define cf_fence_release() atomic_thread_fence(memory_order_release)
#endif

#define CONFLICT_FN_CACHE 4

/*
 * A descriptor's conflict state, private to its thread.  The hot words
 * (pub_fn, compared at every update commit, and orec_tag, OR-ed into the
 * orecs a commit releases) come first.
 */
struct conflict_state {
	pstm_fn pub_fn;               /* the function whose name the slot
					 publishes (set by conflict_publish) */
	uint64_t orec_tag;            /* orec_writer_tag(slot) in format 2, else 0 */
	struct conflict_slot *area;   /* this slot's table; NULL: format 1 */
	uint32_t nentries;            /* its entries */
	const char *name;             /* pstm_tx_name of attempt name_epoch */
	uint32_t name_epoch;
	bool named;
	const char *pub_name;         /* the pointer pstm_tx_name published last */
	/* the abort being recorded, from conflict_capture to conflict_aborted */
	int cause;                    /* CONFLICT_*; 0: nothing captured */
	bool noted;                   /* conflict_note_lock came first */
	uint64_t idx, orec;           /* the orec and the value that beat us */
	uint64_t off;                 /* a word of that orec, 0: none found */
	uint64_t hint_off;            /* the word load_slow was reading */
	uint32_t other_slot;          /* + 1; 0: unknown */
	uint64_t other_pid;
	struct cname other;
	uint64_t abort_ns;            /* CLOCK_MONOTONIC at the abort */
	uint64_t start_ns;            /* ... at the start of the running retry */
	int entry;                    /* the entry whose wait is being timed */
	int pend;                     /* the entry of a first attempt whose
					 length is estimated from the next */
	struct {
		pstm_fn fn;
		struct cname n;
	} cache[CONFLICT_FN_CACHE];   /* names of functions, resolved once */
	uint32_t cache_next;
};

struct pstm_tx;

/* A new descriptor of slot t->slot. */
HIDDEN void conflict_txd_init(struct pstm_tx *t);
/* Publish the name of the update transaction of @fn (NULL: explicit)
 * about to commit: called when it differs from the one published. */
HIDDEN void conflict_publish(struct pstm_tx *t, pstm_fn fn);
/* Before stm_abort: the conflict is orec @idx, locked by another slot
 * (value @v). */
HIDDEN void conflict_note_lock(struct pstm_tx *t, uint64_t idx, uint64_t v);
/* In stm_abort (cause ST_AB_*): what beat the attempt, and by whom. */
HIDDEN void conflict_capture(struct pstm_tx *t, int cause);
/* The driver, after the abort of an attempt of @fn (NULL: explicit):
 * record it in the slot's table ... */
HIDDEN void conflict_aborted(struct pstm_tx *t, pstm_fn fn);
/* ... and after the backoff, as the next attempt starts. */
HIDDEN void conflict_retrying(struct pstm_tx *t);

/* Copy a name out of shared memory (relaxed loads: it may be torn; the
 * caller's sequence lock tells). */
HIDDEN void conflict_name_load(const struct conflict_name *s, struct cname *n);
/* The name and pid slot @cs publishes; false if it could not be read
 * whole (its owner is writing it, or died doing so). */
HIDDEN bool conflict_pub_read(const struct conflict_slot *cs, uint64_t *pid,
			      struct cname *n);

#endif /* PSTM_CONFLICT_H */
