# bench/bench.mk - benchmark programs and the bench / bench-quick targets,
# included by the top-level Makefile (uses its B, CC, ALLCFLAGS, LIBDEPS).
# One program per system family, all built from the one shared driver.
# See docs/benchmarks.md.

BENCH_B    = $(B)/bench
BENCH_SYS  = floor mutex lmdb sqlite pmemobj pstm
BENCH_BINS = $(BENCH_SYS:%=$(BENCH_B)/bench_%)
BENCH_HDR  = $(wildcard bench/*.h)

$(BENCH_B)/bench_lmdb:    BENCH_LIBS = -llmdb
$(BENCH_B)/bench_sqlite:  BENCH_LIBS = -lsqlite3
$(BENCH_B)/bench_pmemobj: BENCH_LIBS = -lpmemobj -lpmem
$(BENCH_B)/bench_pstm:    BENCH_LIBS = $(B)/libpstm.a $(LIBDEPS)
$(BENCH_B)/bench_pstm:    $(B)/libpstm.a

$(BENCH_B)/bench_%: bench/sys_%.c bench/driver.c $(BENCH_HDR)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Ibench bench/driver.c $< -o $@ $(BENCH_LIBS)

bench-bins: $(BENCH_BINS)

# full: ~8 minutes on 2 cores; quick: < 1 minute smoke check.  Both exit
# non-zero if any run broke its workload's invariant.
bench: $(BENCH_BINS) python
	BENCH_B=$(BENCH_B) sh bench/run.sh full
	$(MAKE) bench-python

bench-quick: $(BENCH_BINS)
	BENCH_B=$(BENCH_B) sh bench/run.sh quick

.PHONY: bench-bins

# bench-python: the bank workload in Python (python/bench/bank.py): pstm
# (shm, map, durable file) against multiprocessing.Manager, sqlite3 and a
# shared_memory array under a Lock, 1 and 2 processes, medians of 5
# interleaved rounds; about a minute.  Exits non-zero if a total broke.
bench-python: python
	PYTHONPATH=$(B)/python $(PYTHON) python/bench/bank.py --markdown

.PHONY: bench-python

# bench-map: pstm's hash map beside LMDB (put, get, 50/50 mix; 1 and 2
# processes; median of 3) and the allocator under 1 and 2 processes.
$(BENCH_B)/map_bench: bench/map_bench.c $(B)/libpstm.a include/pstm_ds.h
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $< -o $@ $(B)/libpstm.a $(LIBDEPS) -llmdb

bench-map: $(BENCH_B)/map_bench
	$(BENCH_B)/map_bench map
	$(BENCH_B)/map_bench alloc

.PHONY: bench-map

# bench-pstmd: from a member's SIGKILL to pstmd having freed its entry,
# slot and locks, with no other process transacting (median of 50 kills)
$(BENCH_B)/pstmd_recovery: bench/pstmd_recovery.c $(B)/libpstm.a lib/wire.h
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $< -o $@ $(B)/libpstm.a $(LIBDEPS)

bench-pstmd: $(BENCH_B)/pstmd_recovery $(B)/pstmd
	$(BENCH_B)/pstmd_recovery --pstmd $(B)/pstmd --kills 50

.PHONY: bench-pstmd
# bench-stop: random SIGSTOPs of one of three processes sharing two
# accounts; how often the others are blocked (issue 16)
$(BENCH_B)/stop_bench: bench/stop_bench.c $(B)/libpstm.a include/pstm.h
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $< -o $@ $(B)/libpstm.a $(LIBDEPS)

bench-stop: $(BENCH_B)/stop_bench
	$(BENCH_B)/stop_bench 200 100

# taskq_bench: the task tree on pstm_queue_run, pstm_run and a SQLite job
# queue (make bench runs it; docs/benchmarks.md)
$(BENCH_B)/taskq_bench: bench/taskq_bench.c $(B)/libpstm.a include/pstm.h
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $< -o $@ $(B)/libpstm.a $(LIBDEPS) -lsqlite3
bench-bins: $(BENCH_B)/taskq_bench
bench bench-quick: $(BENCH_B)/taskq_bench
