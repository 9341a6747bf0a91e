#!/usr/bin/env bash
# Mutation testing of the lines a submission changed: `cargo mutants --in-diff` over the driver's
# decision code (`src/`) and the frame ring (`crates/framering/src/`), with the test sets that
# exercise them (mutants.md has the full per-file measurements). A mutant that no test notices
# fails the step: new decision code has to arrive with a test that sees it decide (or with an
# exclusion in .cargo/mutants.toml that says why the mutant is equivalent).
#
#   scripts/mutants-diff.sh                  the diff CI takes (see "Which diff" below)
#   MUTANTS_BASE=main scripts/mutants-diff.sh   a branch against main (what a developer runs)
#   MUTANTS_BASE=HEAD~3 scripts/mutants-diff.sh the last three commits
#
# Needs cargo-mutants (the script installs it when missing):
#   cargo install cargo-mutants --locked
#
# Which diff. `.ci/mutants-base`, when it names an ancestor of HEAD, is the base: the developer
# writes there the main a submission starts from (the commit CI last passed on), so that every
# change of the submission is in the diff, whatever merges it holds. Without it: CI runs on a
# fresh clone of the submitted main, with no record of the main the submission was built on. Work reaches main as merges of developer branches (`git merge` of
# `mut`, `perf`, ...), sometimes followed by small commits on main itself. So the base is the
# first parent of the newest merge on HEAD's first-parent line: the diff is that merge (the whole
# branch it brought in) and every commit after it. With no merge in the last 50 first-parent
# commits the base is HEAD~1. A submission that merges several branches at once gets only the
# last one checked here; each branch is meant to pass `MUTANTS_BASE=main scripts/mutants-diff.sh`
# before it is merged. MUTANTS_BASE overrides the choice (any commit-ish).
#
# Time budget. MUTANTS_MAX (default 25) mutants per set at most: a larger diff is sampled
# round-robin (every k-th mutant, so every changed function is likely represented) and the script
# says so. The whole run is bounded by MUTANTS_BUDGET seconds (default 480); a run cut short by the
# budget fails only if a mutant it did test survived, and it says what was not reached. Each
# mutant rebuilds the driver and the end-to-end tests unoptimised (2-5 s; the tests behave the
# same) and gets MUTANTS_TIMEOUT_QUICK seconds (default 30) for the quick tests,
# MUTANTS_TIMEOUT_SLOW (240) for the slow ones; a test still running then counts as having noticed
# the mutant (it hangs).
#
# In .ci/run, after the tests:
#   step "mutation testing of the submission's changed lines (cargo-mutants --in-diff, a few minutes)"
#   scripts/mutants-diff.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

max=${MUTANTS_MAX:-25}
budget=${MUTANTS_BUDGET:-480}
timeout_quick=${MUTANTS_TIMEOUT_QUICK:-30}
timeout_slow=${MUTANTS_TIMEOUT_SLOW:-240}

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "==> installing cargo-mutants"
    cargo install cargo-mutants --locked
fi

recorded=""
[ -f .ci/mutants-base ] && recorded=$(grep -v '^#' .ci/mutants-base | head -n1 | tr -d '[:space:]')
if [ -n "${MUTANTS_BASE:-}" ]; then
    base=$(git merge-base "$MUTANTS_BASE" HEAD)
    why="MUTANTS_BASE=$MUTANTS_BASE (merge base $(git rev-parse --short "$base"))"
elif [ -n "$recorded" ] && git merge-base --is-ancestor "$recorded" HEAD 2>/dev/null \
    && [ "$(git rev-parse "$recorded")" != "$(git rev-parse HEAD)" ]; then
    base=$(git rev-parse "$recorded")
    why=".ci/mutants-base (the main this submission was built on)"
else
    merge=$(git rev-list --first-parent --parents -n 50 HEAD | awk 'NF > 2 { print $1; exit }')
    if [ -n "$merge" ]; then
        base=$(git rev-parse "$merge^1")
        why="first parent of the newest merge $(git log -1 --format='%h %s' "$merge" | cut -c1-90)"
    else
        base=$(git rev-parse HEAD~1)
        why="HEAD~1 (no merge in the last 50 first-parent commits)"
    fi
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
git diff "$base" HEAD -- src crates/framering/src >"$scratch/diff"
echo "mutants-diff: base $(git rev-parse --short "$base"): $why"
echo "mutants-diff: changed $(grep -c '^+++ ' "$scratch/diff" || true) file(s) of src/ and crates/framering/src/"
if [ ! -s "$scratch/diff" ]; then
    echo "mutants-diff: the diff touches no mutated code: nothing to test, passing"
    exit 0
fi

# The test sets (mutants.md): the framering crate's own tests; for the driver, its unit tests
# (`--lib`) and the end-to-end tests (the ksring-e2e package, tests/) through ksclient under kshost
# in two stages — the quick ones (a few seconds in all, unoptimised) for every mutant, then the
# slow ones (streaming, graph: ~10 s each) only for the mutants the quick ones missed.
driver_quick=(--lib --test connection --test discovery --test bad_input --test pool_caps --test lifetime
    --test smoke --test kernel_client --test security --test preemption --test sources --test dispatch_time
    --test conformance --test races)
driver_slow=("${driver_quick[@]}" --test graph --test streaming)
# A target directory of its own, not target/: cargo names a workspace crate's artifacts by its path
# *relative to the workspace root*, so the copies cargo-mutants builds land on the same file names
# as the checkout's own build. Shared, target/ was left holding the last mutant's driver, and cargo
# found it fresh (older sources than the artifact): every cargo command after this script — CI's
# main job, soak, a developer's next `cargo test` — ran a mutant (seen: a preemption test failing
# until write.rs was touched). The price: the registry dependencies build once more here.
export CARGO_TARGET_DIR="${MUTANTS_TARGET_DIR:-$root/target/mutants}"
export CARGO_PROFILE_DEV_PACKAGE_KSRING_OPT_LEVEL=0
# The same for the end-to-end tests, which every driver mutant rebuilds (an environment variable
# cannot name a package with a dash in it, hence --config).
e2e_unoptimised=--cargo-arg=--config=profile.dev.package.ksring-e2e.opt-level=0
start=$SECONDS
failed=0

# run_set NAME PACKAGE GLOB TEST_PACKAGES -- QUICK_ARGS... [-- SLOW_ARGS...]
# PACKAGE is mutated; the tests run are those of TEST_PACKAGES (comma-separated), filtered by the
# ARGS. (cargo-mutants' baseline would test PACKAGE alone, where the end-to-end test targets do not
# exist: the baseline is skipped; CI has just run every test on the unmutated tree.)
run_set() {
    local name=$1 package=$2 glob=$3 tests=$4
    shift 5
    local quick=() slow=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do quick+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    slow=("$@")
    local listed
    listed=$(cargo mutants --list --in-diff "$scratch/diff" -p "$package" --file "$glob" 2>/dev/null | wc -l)
    if [ "$listed" -eq 0 ]; then
        echo "mutants-diff: $name: no mutants on the changed lines"
        return 0
    fi
    local shard=()
    if [ "$listed" -gt "$max" ]; then
        local k=$(((listed + max - 1) / max))
        shard=(--shard "0/$k" --sharding round-robin)
        echo "mutants-diff: $name: $listed mutants on the changed lines, over MUTANTS_MAX=$max: testing every ${k}th"
    else
        echo "mutants-diff: $name: $listed mutants on the changed lines"
    fi
    local stage args per_mutant rc=0 only=() out="$scratch/$name"
    for stage in quick slow; do
        if [ "$stage" = quick ]; then
            args=("${quick[@]}") per_mutant=$timeout_quick
        else
            args=("${slow[@]}") per_mutant=$timeout_slow
        fi
        if [ "$stage" = slow ]; then
            # Only what the quick stage missed goes on, with the slow tests added.
            # (Not --iterate: that would also re-run the timeouts, each hanging for the slow timeout.)
            [ ${#slow[@]} -gt 0 ] && [ -s "$out/mutants.out/missed.txt" ] || break
            echo "mutants-diff: $name: $(wc -l <"$out/mutants.out/missed.txt") missed by the quick tests; again with the slow ones"
            while IFS= read -r m; do
                only+=(-F "^$(printf '%s' "$m" | sed 's/[][\\.^$*+?(){}|]/\\&/g')\$")
            done <"$out/mutants.out/missed.txt"
            out="$scratch/$name.slow"
        fi
        local left=$((budget - (SECONDS - start)))
        if [ "$left" -le 30 ]; then
            echo "mutants-diff: $name ($stage): NOT REACHED (time budget of ${budget}s spent)"
            rc=124
            break
        fi
        rc=0
        timeout --signal=INT --kill-after=30 "$left" \
            cargo mutants --in-diff "$scratch/diff" -p "$package" --file "$glob" "${shard[@]}" "${only[@]}" \
            --test-package "$tests" "$e2e_unoptimised" \
            -j 1 --timeout "$per_mutant" --baseline skip --colors never -o "$out" \
            -- "${args[@]}" >"$scratch/$name.$stage.log" 2>&1 || rc=$?
        grep -E '^(MISSED|TIMEOUT|ok |[0-9]+ mutants tested|Found)' "$scratch/$name.$stage.log" || true
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && [ "$rc" -ne 3 ] && [ "$rc" -ne 124 ]; then
            # 2: mutants missed (judged below); 3: only timeouts (a hung test is a failing test).
            tail -n 40 "$scratch/$name.$stage.log" >&2
            echo "mutants-diff: $name: cargo mutants failed (exit $rc)" >&2
            failed=1
            return 0
        fi
        [ "$rc" -eq 124 ] && break
    done
    local missed="$out/mutants.out/missed.txt"
    if [ -s "$missed" ]; then
        echo "mutants-diff: $name: mutants that no test noticed:" >&2
        sed 's/^/    /' "$missed" >&2
        failed=1
    elif [ "$rc" -eq 124 ]; then
        echo "mutants-diff: $name: time budget ran out; every mutant tested was caught, the rest were not reached"
    fi
}

run_set framering framering 'crates/framering/src/**' framering --
run_set driver ksring 'src/**' ksring,ksring-e2e -- "${driver_quick[@]}" -- "${driver_slow[@]}"

if [ "$failed" -ne 0 ]; then
    echo "mutants-diff: FAILED: add a test that notices each mutant above (or argue it equivalent in .cargo/mutants.toml)" >&2
    exit 1
fi
echo "mutants-diff: passed in $((SECONDS - start))s"
