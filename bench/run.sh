#!/bin/sh
# bench/run.sh full|quick - run every system on every workload with the
# shared driver, write $BENCH_B/results.csv, print the table, draw plots.
# Exits non-zero if any run broke its workload's invariant (or crashed).
# Relaxed durability (a suffix of commits may be lost on power failure,
# order preserved): pstm-relaxed (flush_ms 10) and its baselines
# lmdb-nosync and sqlite-normal, all in /tmp, run in full; quick runs only
# pstm-relaxed bank, 2 processes, as a smoke check.
set -u
mode=${1:-full}
B=${BENCH_B:-build/bench}
case $mode in
quick) sizes=1024; runs=1; dur=0.1
	lmdb_rx=; sqlite_rx=; pstm_rx= ;;
full) sizes=1024,1000000; runs=3; dur=0.5
	lmdb_rx=,lmdb-nosync; sqlite_rx=,sqlite-normal; pstm_rx=,pstm-relaxed ;;
*) echo "usage: $0 full|quick" >&2; exit 2 ;;
esac

csv=$B/results.csv
mkdir -p "$B"
rm -f "$csv" "$B"/*.png "$B"/*.dat
start=$(date +%s)
fail=0

echo "pstm bench ($mode): sizes $sizes, $runs run(s) of ${dur}s per configuration"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"

# run PROGRAM SYSTEMS PROCS [WORKLOADS]
run() {
	"$B/bench_$1" -s "$2" -p "$3" -w "${4:-bank,readmostly,intset}" \
	    -n "$sizes" -r "$runs" -d "$dur" -o "$csv" || fail=1
}

# one-process systems first; pmemobj and pstm-pmem set PMEM_IS_PMEM_FORCE=1
# themselves before mapping (each system runs in its own process)
run floor floor 1
run mutex mutex-global,mutex-striped 1,2
run lmdb lmdb-shm,lmdb-disk$lmdb_rx 1,2
run sqlite sqlite-shm,sqlite-disk$sqlite_rx 1,2
run pmemobj pmemobj 1
run pstm pstm-shm,pstm-file,pstm-pmem$pstm_rx 1,2
if [ "$mode" = quick ]; then run pstm pstm-relaxed 2 bank; fi
# the task tree: the region's queue, the process-local add/run, a SQLite
# job queue; 2 processes x 2 threads (one SQLite run of 1M: ~40 s)
if [ "$mode" = quick ]; then
	"$B/taskq_bench" -n 20000 -r 1 -o "$csv" || fail=1
else
	"$B/taskq_bench" -n 1000000 -r 3 -s pstm-queue,pstm-run -o "$csv" || fail=1
	"$B/taskq_bench" -n 1000000 -r 1 -s sqlite-queue -o "$csv" || fail=1
fi

echo
sh bench/report.sh "$csv" "$B" || fail=1
end=$(date +%s)
echo "bench $mode: $((end - start)) s"
if grep -q ',FAIL$' "$csv" || [ "$fail" -ne 0 ]; then
	echo "bench $mode: INVARIANT FAILURES (see above)" >&2
	exit 1
fi
