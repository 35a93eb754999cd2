#!/bin/sh
# bench/kv.sh - make bench-kv: redis-benchmark against pstm-kv (1 and 2
# processes) and against a redis-server this script starts on another
# loopback port, the same commands, clients and pipelining; requests/s,
# median of 3 runs.  Volatile: pstm-kv on shm: vs redis with no
# persistence.  Durable (same promise): pstm-kv relaxed vs redis
# appendfsync everysec, pstm-kv durable vs appendfsync always, on files
# under $KV_BENCH_DIR (default $TMPDIR or /tmp: a real disk, not tmpfs).
# Every server it starts is stopped on exit, also on failure.
#   KV_BENCH_N (100000) KV_BENCH_DURABLE_N (20000) KV_BENCH_CLIENTS (50)
#   KV_BENCH_PIPELINE (16) KV_BENCH_DURABLE=0 skips the durable rows
set -eu
B=${PSTM_BIN:-build}
N=${KV_BENCH_N:-100000}
DN=${KV_BENCH_DURABLE_N:-20000}
C=${KV_BENCH_CLIENTS:-50}
P=${KV_BENCH_PIPELINE:-16}
TESTS=set,get,incr,mset
for t in redis-benchmark redis-server redis-cli; do
	command -v $t >/dev/null || { echo "bench-kv: needs $t (scripts/install-deps.sh)"; exit 1; }
done
[ -x "$B/pstm-kv" ] || { echo "bench-kv: $B/pstm-kv not built"; exit 1; }

shm=pstm-bench-kv-$$
dir=$(mktemp -d "${KV_BENCH_DIR:-${TMPDIR:-/tmp}}/pstm-bench-kv.XXXXXX")
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -f "/dev/shm/$shm"
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() {
	perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(Listen => 1,
	    LocalAddr => "127.0.0.1", LocalPort => 0) or die; print $s->sockport, "\n"'
}

wait_ready() {
	i=0
	until [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "bench-kv: server on port $1 did not start"; exit 1; }
		sleep 0.05
	done
}

# start NAME CMD...: a server in the background, its pid remembered
start() {
	"$@" >"$dir/$port.log" 2>&1 &
	pids="$pids $!"
	last=$!
	wait_ready "$port"
}

stop() {
	kill "$last"
	wait "$last" 2>/dev/null || true
}

# bench LABEL N: median of 3 redis-benchmark runs, one line per command
bench() {
	for run in 1 2 3; do
		redis-cli -p "$port" flushdb >/dev/null
		redis-benchmark -h 127.0.0.1 -p "$port" -t $TESTS -n "$2" -c "$C" \
		    -P "$P" -r 100000 -q --csv >"$dir/run$run.csv"
	done
	cat "$dir"/run[123].csv | awk -F, -v label="$1" '
	    $1 ~ /^"(SET|GET|INCR|MSET)/ {
		gsub(/"/, "", $1); gsub(/"/, "", $2); split($1, w, " ");
		v[w[1]] = v[w[1]] " " $2 }
	    END { printf "%-34s", label;
		  split("SET GET INCR MSET", t, " ");
		  for (i = 1; i <= 4; i++) {
			n = split(v[t[i]], x, " ");
			# median of the (3) runs
			for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++)
				if (x[b] + 0 < x[a] + 0) { s = x[a]; x[a] = x[b]; x[b] = s }
			printf " %10.0f", x[int((n + 1) / 2)] }
		  printf "\n" }' | tee -a "$dir/table"
}

echo "redis-benchmark -t $TESTS -n $N -c $C -P $P -r 100000 (durable rows: -n $DN); requests/s, median of 3"
printf "%-34s %10s %10s %10s %10s\n" "server" SET GET INCR MSET

port=$(free_port)
start "$B/pstm-kv" --region "shm:$shm" --port "$port" --processes 1
bench "pstm-kv shm, 1 process" "$N"
stop
port=$(free_port)
start "$B/pstm-kv" --region "shm:$shm" --port "$port" --processes 2
bench "pstm-kv shm, 2 processes" "$N"
stop
rm -f "/dev/shm/$shm"
port=$(free_port)
start redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --daemonize no
bench "redis-server, no persistence" "$N"
stop

[ "${KV_BENCH_DURABLE:-1}" = 1 ] || exit 0
port=$(free_port)
start "$B/pstm-kv" --region "$dir/relaxed.region" --durability relaxed --port "$port" --processes 2
bench "pstm-kv relaxed file, 2 processes" "$DN"
stop
port=$(free_port)
start redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes \
    --appendfsync everysec --dir "$dir" --appendfilename everysec.aof --daemonize no
bench "redis appendfsync everysec" "$DN"
stop
port=$(free_port)
start "$B/pstm-kv" --region "$dir/durable.region" --durability durable --port "$port" --processes 2
bench "pstm-kv durable file, 2 processes" "$DN"
stop
port=$(free_port)
start redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes \
    --appendfsync always --dir "$dir" --appendfilename always.aof --daemonize no
bench "redis appendfsync always" "$DN"
stop
