#!/bin/sh
# The demo: several processes share one region in /dev/shm and move money
# between accounts; an auditor sums all accounts inside transactions the
# whole time; the total must be unchanged at the end.
set -e
cd "$(dirname "$0")/.."
B=${B:-build}
URI=shm:pstm-demo
echo "== pstm demo: 4 processes x 2 threads, 1024 accounts, region $URI"
"$B/examples/bank" -p 4 -t 2 -a 1024 -s 3 "$URI" &
bank=$!
sleep 1.5
echo
echo "== pstm info $URI (while they run)"
"$B/pstm" info "$URI"
echo
wait $bank
"$B/pstm" rm "$URI"
