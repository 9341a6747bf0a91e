#!/usr/bin/env bash
# Runs the concurrency-heavy tests — races (cancel/close/STOP/reset against streaming) and the
# three-filter chain with its close orders — under AddressSanitizer (the installed nightly), so
# that a use-after-free in the driver or in kshost fails loudly instead of corrupting the heap
# now and then. Repeated: races depend on timing.
#
#   scripts/asan.sh        3 rounds (what CI runs)
#   scripts/asan.sh 10     ten rounds
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=${1:-3}
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
cd "$root"
export RUSTFLAGS="-Zsanitizer=address"
export ASAN_OPTIONS="detect_leaks=0" # pool leaks are kshost's to find; Rust test harness allocations are not leaks
for ((i = 1; i <= rounds; i++)); do
    echo "==> AddressSanitizer round $i of $rounds"
    cargo +nightly test -q --target "$host" --target-dir target/asan -p ksring-e2e --test races --test graph
done
echo "==> no AddressSanitizer finding in $rounds rounds"
