/*
 * checkpoint.c - checkpoints of durable regions: make written-back data
 * durable (msync of the heap; on pmem, write-back of the lines the
 * records name) and raise the durable horizon, so that ring space may be
 * reused.  Relaxed regions checkpoint their file through the flusher
 * (lib/flush.c).
 */
#include <sched.h>

#include "checkpoint.h"
#include "flush.h"
#include "persist.h"
#include "recovery.h"
#include "redo_log.h"
#include "runtime.h"

/*
 * pmem: write back the data lines of every record in [from, to).  Cache
 * line write-back works on addresses, whoever stored there; every commit
 * below `to` has finished its write-back (its inflight word said so), so
 * its stores are visible here and the flushes carry them to the media.
 */
static void flush_records(struct pstm_region *r, uint64_t from, uint64_t to)
{
	/*
	 * Every 64-byte boundary, as scan_ring (an extra flush is harmless, a
	 * missed one loses a commit), but only below each ring's head: every
	 * commit below @to has finished (its inflight word, read seq_cst by
	 * the caller, was cleared after its ring_head store), and the ring
	 * starts a lap only once everything in it is below the horizon.
	 * Scanning every slot's whole ring made pmem commits 45% slower.
	 */
	for (uint32_t s = 0; s < r->sb.max_slots; s++) {
		uint64_t head = atomic_load(&r->slots[s].ring_head);
		if (head > r->ring_bytes)
			head = r->ring_bytes;
		for (uint64_t off = 0; off + sizeof(struct log_record) <= head;
		     off += CACHELINE) {
			struct log_record *rec = region_record(r, s, off);
			if (!record_magic_ok(rec->magic) || rec->seq < from ||
			    rec->seq >= to)
				continue;
			struct log_entry *e = record_entries_at(r, r->base, rec, off);
			if (!e)
				continue;
			for (uint64_t i = 0; i < rec->count; i++)
				if (redo_log_entry_ok(r, &e[i]))
					region_flush(r, region_word(r, e[i].off), 8);
		}
	}
}

int checkpoint_until(struct pstm_region *r, uint64_t past)
{
	unsigned tries = 0;
	if (r->relaxed)
		return flush_checkpoint(r, past);
	/* an older copy of the file restored over it while we are attached
	 * (lib/runtime.c): our rings and sequence numbers describe other
	 * logs than the file's, so no commit reuses ring space any more (a
	 * pread a checkpoint, which msyncs the heap anyway); opens refuse
	 * too, and once every process is gone the next one rebuilds */
	if (runtime_file_replaced(r))
		return PSTM_EREPLACED;
	while (atomic_load(&region_dstate(r)->horizon) <= past) {
		uint64_t h = redo_log_horizon_now(r);
		if (r->is_pmem) /* commits did not flush their data: we do */
			flush_records(r, atomic_load(&region_dstate(r)->horizon), h);
		else /* msync writes every dirty page of the heap */
			region_flush(r, r->base + r->sb.heap_off, r->sb.heap_bytes);
		region_drain(r);
		redo_log_raise_horizon(r, h);
		if (atomic_load(&region_dstate(r)->horizon) <= past) {
			/* an older commit is still writing back: let it */
			if (++tries % 16 == 0)
				proc_recover_all_dead(r);
			sched_yield();
		}
	}
	return 0;
}
