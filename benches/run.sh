#!/usr/bin/env bash
# Regenerate docs/BENCHMARKS.md:
#
#     bash benches/run.sh
#
# Builds the release `sydra` binary, runs the four criterion bench files
# (objects, wal, history, gc) with the git peers (`--features peers`),
# measures peak RSS of a replay, of a GC mark and of `sydra demo` in
# processes of their own, and writes the report. Environment:
#   CARGO_TARGET_DIR        target dir (default: <repo>/target); scratch
#                           stores live under it, so durable benches run on
#                           its filesystem
#   SYDRA_BENCH_QUICK=1     short measurements (smoke run)
#   SYDRA_BENCH_REPLAY_MB   size of the replayed log in MiB (default 1024;
#                           64 in quick mode)
#   SYDRA_BENCH_REPLAY_RECORD  record payload bytes for replay (default 100)
#   SYDRA_BENCH_COMMITS     commits for history/at (default 1,000,000;
#                           100,000 in quick mode)
#   SYDRA_BENCH_SEGMENTS    segments for history/compaction_commit and
#                           history/diff (default 100,000; 20,000 quick)
#   SYDRA_BENCH_GC_OBJECTS  objects for gc/mark and mark_rss (default
#                           1,000,000; 100,000 in quick mode)
#   SYDRA_BENCH_SWEEP_OBJECTS  unreachable objects for gc/sweep (default
#                           100,000; 20,000 in quick mode)
#   SYDRA_BENCH_TMP         scratch directory root (default
#                           $CARGO_TARGET_DIR/sydra-bench-tmp)
# Extra arguments are passed to every criterion bench binary (for example a
# filter: `bash benches/run.sh put_durable`).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
started=$(date -u '+%Y-%m-%d %H:%M UTC')

# The command line as a reader would retype it, with the settings in force.
cmd="bash benches/run.sh"
for var in SYDRA_BENCH_QUICK SYDRA_BENCH_REPLAY_MB SYDRA_BENCH_REPLAY_RECORD \
    SYDRA_BENCH_COMMITS SYDRA_BENCH_SEGMENTS SYDRA_BENCH_GC_OBJECTS SYDRA_BENCH_SWEEP_OBJECTS; do
    if [[ -n ${!var:-} ]]; then
        cmd="$var=${!var} $cmd"
    fi
done
if [[ $# -gt 0 ]]; then
    cmd="$cmd $*"
fi

echo "== building the release sydra binary" >&2
cargo build --release -p sydra-engine --bin sydra
export SYDRA_BIN=$CARGO_TARGET_DIR/release/sydra

# Stale results would show up in the report as if measured now.
rm -rf "$CARGO_TARGET_DIR/criterion" "$CARGO_TARGET_DIR/sydra-bench-results"
rm -rf "$CARGO_TARGET_DIR/sydra-bench-tmp"
mkdir -p "$CARGO_TARGET_DIR/sydra-bench-results"
# Other work on the machine shows up as noise; the report prints the load.
cp /proc/loadavg "$CARGO_TARGET_DIR/sydra-bench-results/loadavg_start.txt" 2>/dev/null || true

results=$CARGO_TARGET_DIR/sydra-bench-results

# The git-shaped history of gc/mark is built once and reused by mark_rss
# (a million loose files): on tmpfs when there is one, removed at exit.
shm=/dev/shm
[[ -d $shm && -w $shm ]] || shm=$CARGO_TARGET_DIR
SYDRA_BENCH_FIXTURES=$(mktemp -d "$shm/sydra-bench-fixtures.XXXXXX")
export SYDRA_BENCH_FIXTURES
trap 'rm -rf "$SYDRA_BENCH_FIXTURES"' EXIT

for bench in objects wal history gc; do
    echo "== $bench benches" >&2
    cargo bench -p sydra-benches --features peers --bench "$bench" -- "$@"
done
echo "== replay peak RSS (own process)" >&2
cargo run --release -p sydra-benches --features peers --bin replay_rss
echo "== GC mark peak RSS (own process)" >&2
cargo run --release -p sydra-benches --features peers --bin mark_rss
rm -rf "$SYDRA_BENCH_FIXTURES"

# `sydra demo` end to end: wall time and the peak RSS of the whole process,
# data directory on the target dir's filesystem (durable WAL appends).
echo "== sydra demo (peak RSS, wall time)" >&2
demo_dir=$CARGO_TARGET_DIR/sydra-bench-tmp/demo
rm -rf "$demo_dir"
mkdir -p "$(dirname "$demo_dir")"
if [[ -x /usr/bin/time ]] && /usr/bin/time -f '%M %e' -o "$results/demo_time.txt" \
    "$SYDRA_BIN" --dir "$demo_dir" demo --json >"$results/demo_summary.json"; then
    read -r max_rss_kib wall_seconds <"$results/demo_time.txt"
    printf '{"max_rss_kib": %s, "wall_seconds": %s, "summary": %s}\n' \
        "$max_rss_kib" "$wall_seconds" "$(cat "$results/demo_summary.json")" \
        >"$results/demo_rss.json"
else
    echo "sydra demo not measured (no /usr/bin/time, or the demo failed)" >&2
fi
rm -rf "$demo_dir"

cp /proc/loadavg "$CARGO_TARGET_DIR/sydra-bench-results/loadavg_end.txt" 2>/dev/null || true
python3 benches/report.py \
    --target-dir "$CARGO_TARGET_DIR" \
    --out docs/BENCHMARKS.md \
    --command "$cmd" \
    --started "$started"
rm -rf "$CARGO_TARGET_DIR/sydra-bench-tmp"
