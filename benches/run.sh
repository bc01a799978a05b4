#!/usr/bin/env bash
# Regenerate docs/BENCHMARKS.md:
#
#     bash benches/run.sh
#
# Builds the release `sydra` binary, runs the criterion benches with the
# git peers (`--features peers`), measures replay peak RSS in a child
# process, and writes the report. Environment:
#   CARGO_TARGET_DIR        target dir (default: <repo>/target); scratch
#                           stores live under it, so durable benches run on
#                           its filesystem
#   SYDRA_BENCH_QUICK=1     short measurements (smoke run)
#   SYDRA_BENCH_REPLAY_MB   size of the replayed log in MiB (default 1024;
#                           64 in quick mode)
#   SYDRA_BENCH_REPLAY_RECORD  record payload bytes for replay (default 100)
#   SYDRA_BENCH_TMP         scratch directory root (default
#                           $CARGO_TARGET_DIR/sydra-bench-tmp)
# Extra arguments are passed to both criterion bench binaries (for example a
# filter: `bash benches/run.sh put_durable`).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
started=$(date -u '+%Y-%m-%d %H:%M UTC')

# The command line as a reader would retype it, with the settings in force.
cmd="bash benches/run.sh"
for var in SYDRA_BENCH_QUICK SYDRA_BENCH_REPLAY_MB SYDRA_BENCH_REPLAY_RECORD; do
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

echo "== objects benches" >&2
cargo bench -p sydra-benches --features peers --bench objects -- "$@"
echo "== wal benches" >&2
cargo bench -p sydra-benches --features peers --bench wal -- "$@"
echo "== replay peak RSS (own process)" >&2
cargo run --release -p sydra-benches --features peers --bin replay_rss

cp /proc/loadavg "$CARGO_TARGET_DIR/sydra-bench-results/loadavg_end.txt" 2>/dev/null || true
python3 benches/report.py \
    --target-dir "$CARGO_TARGET_DIR" \
    --out docs/BENCHMARKS.md \
    --command "$cmd" \
    --started "$started"
rm -rf "$CARGO_TARGET_DIR/sydra-bench-tmp"
