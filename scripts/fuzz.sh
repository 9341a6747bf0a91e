#!/usr/bin/env bash
# Runs every cargo-fuzz target against the real driver under kshost for a bounded time.
#
#   scripts/fuzz.sh            60 s per target (what CI runs)
#   scripts/fuzz.sh 600        ten minutes per target
#   scripts/fuzz.sh 60 sequence  one target
#
# Each run starts from the committed seeds (fuzz/corpus/<target>/) and writes what it discovers
# to a scratch corpus, so the committed corpus stays the seeds. A crash stops the script with the
# input in fuzz/artifacts/<target>/: fix the bug, then move the input to
# fuzz/regressions/<target>/ so `cargo test -p ksfuzz` replays it from then on.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pin_create property stream_headers sequence)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$root/fuzz"
for t in "${targets[@]}"; do
    echo "==> fuzzing $t for ${seconds}s"
    mkdir -p "$scratch/$t"
    # -print_final_stats: executions and coverage for the record.
    rc=0
    cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=20 >"$scratch/$t.log" 2>&1 || rc=$?
    grep -E "DONE|stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|panicked|Test unit written" "$scratch/$t.log" || true
    if [ "$rc" -ne 0 ]; then
        tail -n 40 "$scratch/$t.log" >&2
        echo "fuzz: $t found a failure (input in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
done
echo "==> no failures"
