#!/usr/bin/env bash
# Regenerate docs/BENCHMARKS-QUERY.md: Sydra's read path beside InfluxDB
# 1.6 on the same real data, in one run, plus rollups vs raw points on a
# synthetic day and the peak memory of a query over everything:
#
#     bash benches/query.sh                 # writes docs/BENCHMARKS-QUERY.md
#     SYDRA_Q_RUNS=5 bash benches/query.sh  # fewer process/HTTP runs per query
#
# Data: benches/data/out/scrape.lp (made by benches/data/scrape.sh; not
# committed). Installs the Debian package influxdb when influxd is missing.
# Nothing but 127.0.0.1 is contacted (apart from apt).
# Environment:
#   CARGO_TARGET_DIR   target dir (default: <repo>/target); scratch lives under it
#   SYDRA_Q_RUNS       runs per process and per InfluxDB query (default 21)
#   SYDRA_Q_SYNTH      synthetic series for the rollup case (default 1000)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
started=$(date -u '+%Y-%m-%d %H:%M UTC')
runs=${SYDRA_Q_RUNS:-21}
synth_series=${SYDRA_Q_SYNTH:-1000}
data=benches/data/out/scrape.lp
py="python3 $root/benches/query.py"
cmd="bash benches/query.sh"
for var in SYDRA_Q_RUNS SYDRA_Q_SYNTH; do
    [[ -n ${!var:-} ]] && cmd="$var=${!var} $cmd"
done

die() {
    echo "query.sh: $*" >&2
    exit 1
}
[[ -s $data ]] || die "$data is missing: make it with bash benches/data/scrape.sh"
command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
if ! command -v influxd >/dev/null; then
    echo "== installing influxdb (Debian package)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb >/dev/null
fi
influx_version=$(influxd version | sed -n 's/^InfluxDB \(v[^ ]*\).*/\1/p')
[[ -x /usr/bin/time ]] || { apt-get update -qq >/dev/null && apt-get install -y -qq time >/dev/null; }

echo "== building sydra and query_lib (release)" >&2
cargo build --release -p sydra-engine --bin sydra
cargo build --release -p sydra-benches --bin query_lib
sydra=$CARGO_TARGET_DIR/release/sydra
qlib=$CARGO_TARGET_DIR/release/query_lib

mkdir -p "$CARGO_TARGET_DIR"
work=$(mktemp -d "$CARGO_TARGET_DIR/sydra-q-bench.XXXXXX")
res=$work/results
mkdir -p "$res"
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
# shellcheck source=benches/influx.sh
source "$root/benches/influx.sh"

# ---------------------------------------------------------------- stores
echo "== Sydra: the data in two halves by time, a snapshot between" >&2
$py split "$data" "$work/first.lp" "$work/second.lp" >"$res/split.json"
store=$work/sydra
"$sydra" --dir "$store" init >/dev/null
"$sydra" --dir "$store" write --precision ms "$work/first.lp"
"$sydra" --dir "$store" compact --all >/dev/null
"$sydra" --dir "$store" checkpoint >/dev/null
"$sydra" --dir "$store" snapshot half >/dev/null
"$sydra" --dir "$store" write --precision ms "$work/second.lp"
"$sydra" --dir "$store" compact --all >/dev/null
lines=$(cat "$work/first.lp" "$work/second.lp" | wc -l)
rm -f "$work/first.lp" "$work/second.lp"

echo "== InfluxDB: the same data" >&2
start_influx "$work/influx"
python3 "$root/benches/timeseries.py" influx-write "$influx_port" bench ms 5000 "$data" >"$res/influx.write.json"
python3 "$root/benches/timeseries.py" influx-settle "$influx_port" 900 >"$res/influx.settle.json"

read -r lo hi < <(python3 -c "import json; d=json.load(open('$res/split.json')); print(d['min_ns'], d['max_ns'])")

# ---------------------------------------------------------------- queries
one='node_load1'
q_one=("$sydra" --dir "$store" query "$one" --format csv)
q_mean=("$sydra" --dir "$store" query "$one" --from "${lo}ns" --to "${hi}ns" --step 1m --agg mean --format csv)
q_count=("$sydra" --dir "$store" query '{}' --agg count --format csv)
q_asof=("$sydra" --dir "$store" query "$one" --as-of snapshots/half --format csv)

echo "== timing" >&2
$py influx "$res/one.influx.json" "$influx_port" bench "$runs" "SELECT \"value\" FROM \"node_load1\""
$py influx "$res/mean1m.influx.json" "$influx_port" bench "$runs" \
    "SELECT mean(\"value\") FROM \"node_load1\" WHERE time >= ${lo} AND time <= ${hi} GROUP BY time(1m)"
$py influx "$res/count.influx.json" "$influx_port" bench "$runs" "SELECT count(\"value\") FROM /.*/ GROUP BY *"
stop_influx

$py proc "$res/one.proc.json" "$runs" -- "${q_one[@]}"
$py proc "$res/mean1m.proc.json" "$runs" -- "${q_mean[@]}"
$py proc "$res/count.proc.json" "$runs" -- "${q_count[@]}"
$py proc "$res/asof.proc.json" "$runs" -- "${q_asof[@]}"
# The floor of any process goal: starting one that does nothing, and
# sydra's own start-up without a store.
$py proc "$res/true.proc.json" "$runs" -- /bin/true
$py proc "$res/version.proc.json" "$runs" -- "$sydra" --version
"$qlib" "$store" points "$one" >"$res/one.lib.json"
"$qlib" "$store" agg "$one" 60000000000 mean >"$res/mean1m.lib.json"
"$qlib" "$store" agg '{}' 9223372036854775807 count >"$res/count.lib.json"
"$qlib" "$store" points "$one" --as-of snapshots/half >"$res/asof.lib.json"
/usr/bin/time -f '{"max_rss_kib": %M}' -o "$res/rss.scrape.json" "$sydra" --dir "$store" query '{}' --format csv >/dev/null

# A day of SERIES series at one point every STEP_S seconds, compacted; the
# mean per minute of every series from rollups and from raw points, and
# the two answers compared.
rollup_case() {
    local name=$1 series=$2 points=$3 step_s=$4
    echo "== rollups ($name): $series series x one day at $step_s s" >&2
    local dir=$work/$name
    $py synth "$work/$name.lp" "$series" "$points" "$step_s"
    "$sydra" --dir "$dir" init >/dev/null
    "$sydra" --dir "$dir" write --precision s "$work/$name.lp"
    rm -f "$work/$name.lp"
    "$sydra" --dir "$dir" compact --all >/dev/null
    echo "{\"series\": $series, \"points\": $points, \"step_s\": $step_s}" >"$res/$name.meta.json"
    "$qlib" "$dir" agg '{}' 60000000000 mean >"$res/$name.rollup.lib.json"
    "$qlib" "$dir" agg '{}' 60000000000 mean --raw >"$res/$name.raw.lib.json"
    # The floor under any per-minute answer: every segment's header, read
    # by a step of an hour (each hour segment answered from its header).
    "$qlib" "$dir" agg '{}' 3600000000000 mean >"$res/$name.headers.lib.json"
    "$sydra" --dir "$dir" query '{}' --step 1m --agg mean --format csv >"$work/a.csv"
    "$sydra" --dir "$dir" query '{}' --step 1m --agg mean --raw --format csv >"$work/b.csv"
    python3 - "$work/a.csv" "$work/b.csv" <<'PY'
import sys
a, b = (open(p).read().splitlines() for p in sys.argv[1:])
assert len(a) == len(b), (len(a), len(b))
for x, y in zip(a, b):
    if x != y:
        # float means may differ in the last bits (partial sums)
        fx, fy = float(x.rsplit(",", 1)[1]), float(y.rsplit(",", 1)[1])
        assert x.rsplit(",", 1)[0] == y.rsplit(",", 1)[0] and abs(fx - fy) <= 1e-9 * max(1, abs(fy)), (x, y)
PY
}
synth=$work/synth
rollup_case synth "$synth_series" 8640 10
# The same number of points, 60 a minute instead of 6.
rollup_case dense $((synth_series / 10)) 86400 1
rm -rf "$work/dense"
/usr/bin/time -f '{"max_rss_kib": %M}' -o "$res/rss.synth.json" "$sydra" --dir "$synth" query '{}' --format csv >/dev/null

# ---------------------------------------------------------------- report
commit=$(git rev-parse --short HEAD)
dirty=""
git diff --quiet HEAD -- . ':!docs/BENCHMARKS-QUERY.md' || dirty=" plus uncommitted changes"
python3 - "$res" <<PY
import json, subprocess, sys
def sh(c):
    return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
mem_kib = int(sh("awk '/^MemTotal/ {print \$2}' /proc/meminfo") or 0)
d = sys.argv[1]
json.dump({"file": "$data", "lines": $lines}, open(d + "/meta.json", "w"))
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
    "influx_version": "$influx_version",
    "sydra_queries": [
        "sydra query $one --format csv",
        "sydra query $one --from ${lo}ns --to ${hi}ns --step 1m --agg mean --format csv",
        "sydra query '{}' --agg count --format csv",
        "sydra query $one --as-of snapshots/half --format csv",
        "sydra query '{}' --step 1m --agg mean [--raw] (synthetic day; library call)",
    ],
}, open(d + "/run.json", "w"))
PY
$py report "$res" docs/BENCHMARKS-QUERY.md
