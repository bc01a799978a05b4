#!/usr/bin/env bash
# The protocol goals of issue 17, each beside a baseline measured in the
# same run (benches/src/bin/protocols_bench.rs; results in
# docs/BENCHMARKS-PROTOCOLS.md):
#
#   1. Prometheus remote-write ingest of recorded requests (1,000 series ×
#      100 samples each per request, snappy) into `sydra serve`: ≥ 1M
#      samples/s on 2 cores, every request durable before its 2xx; and ≥ 5×
#      InfluxDB 1.x's `/write` of the same samples. Prometheus itself, as a
#      remote-write receiver, is a third column.
#   2. Remote read of one series over one hour: ≤ 0.5× the time
#      Prometheus's own TSDB takes for `/api/v1/query` of `metric{…}[1h]`
#      on the same data.
#
#     bash benches/protocols.sh              # full (about 2 minutes after the build)
#     bash benches/protocols.sh --quick      # smoke run (about 20 seconds after the build)
#     bash benches/protocols.sh --clients 2 --reps 1 --only read
#
# Options (full size in brackets; --quick in parentheses):
#   --requests N   recorded requests of 1,000 series × 100 samples; 36 is
#                  one hour of 1,000 series at 1 s [36] (6)
#   --clients L    comma-separated concurrencies of the ingest [1,2,4] (1,2)
#   --reps N       repetitions of each ingest, each into a fresh store [3] (1)
#   --read-reps N  timed rounds of the read comparison [30] (10)
#   --only LIST    comma-separated parts: ingest,read,phases [all three]
# Environment:
#   CARGO_TARGET_DIR   target dir (default: <repo>/target)
#   SYDRA_BENCH_TMP    scratch directory on a real disk (default: a fresh
#                      directory under /var/tmp, removed at exit)
#
# Needs Debian's prometheus (2.42), prometheus-node-exporter and influxdb
# (1.6), installed here with apt-get when missing. Every server (node_exporter,
# influxd, prometheus, sydra serve) listens on a free port of 127.0.0.1 and
# is stopped at exit; nothing else is contacted. Each step prints one JSON
# line; all are gathered in $CARGO_TARGET_DIR/sydra-bench-results/protocols.jsonl
# and summarised at the end against the goals.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

requests=36 clients=1,2,4 reps=3 read_reps=30
only=ingest,read,phases
cmd="bash benches/protocols.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) requests=6 clients=1,2 reps=1 read_reps=10 ;;
        --requests) requests=$2; shift ;;
        --clients) clients=$2; shift ;;
        --reps) reps=$2; shift ;;
        --read-reps) read_reps=$2; shift ;;
        --only) only=$2; shift ;;
        *) echo "unknown option $1 (see the head of $0)" >&2; exit 2 ;;
    esac
    shift
done

die() {
    echo "protocols.sh: $*" >&2
    exit 1
}

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [[ ${#need[@]} -gt 0 ]]; then
    echo "== installing ${need[*]}" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "== building (release): protocols_bench" >&2
cargo build --release -p sydra-benches --bin protocols_bench
bench=$CARGO_TARGET_DIR/release/protocols_bench

# The servers this script starts, stopped at exit by their ids.
influx_pid= prom_pid= ne_pid=
cleanup=()
if [[ -z ${SYDRA_BENCH_TMP:-} ]]; then
    SYDRA_BENCH_TMP=$(mktemp -d /var/tmp/sydra-protocols.XXXXXX)
    cleanup+=("$SYDRA_BENCH_TMP")
fi
export SYDRA_BENCH_TMP
mkdir -p "$SYDRA_BENCH_TMP"
tmp=$(mktemp -d "$SYDRA_BENCH_TMP/run.XXXXXX")
cleanup+=("$tmp")
on_exit() {
    local p
    for p in "$ne_pid" "$prom_pid" "$influx_pid"; do
        if [[ -n $p ]]; then
            kill -TERM "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    rm -rf "${cleanup[@]}"
}
trap on_exit EXIT

# free_port, start_influx DIR, stop_influx.
# shellcheck source=benches/influx.sh
source "$root/benches/influx.sh"

wait_http() { # URL WHAT PID
    local _
    for _ in $(seq 1 150); do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        kill -0 "$3" 2>/dev/null || break
        sleep 0.2
    done
    die "$2 did not answer $1"
}

# start_prom DIR OOO: a fresh Prometheus that scrapes nothing and takes
# remote writes, with everything under DIR; with OOO=1 it accepts samples
# out of order within the data's span (concurrent writers of one series'
# consecutive requests need it). Sets prom_pid and prom_port.
start_prom() {
    local dir=$1 ooo=$2
    mkdir -p "$dir"
    prom_port=$(free_port)
    if [[ $ooo == 1 ]]; then
        printf 'storage:\n  tsdb:\n    out_of_order_time_window: %dm\n' \
            "$((requests * 100 / 60 + 60))" >"$dir/prometheus.yml"
    else
        echo 'global: {}' >"$dir/prometheus.yml"
    fi
    prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="127.0.0.1:$prom_port" --web.enable-remote-write-receiver \
        >"$dir/prometheus.log" 2>&1 &
    prom_pid=$!
    wait_http "http://127.0.0.1:$prom_port/-/ready" prometheus "$prom_pid"
}

stop_prom() {
    kill -TERM "$prom_pid"
    wait "$prom_pid" || true
    prom_pid=
}

results=$CARGO_TARGET_DIR/sydra-bench-results
mkdir -p "$results"
rm -f "$results"/protocols_*.json "$results/protocols.jsonl"

{
    echo "command: $cmd"
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' plus uncommitted changes')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "cores: $(nproc)"
    echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel: $(uname -r)"
    echo "scratch: $SYDRA_BENCH_TMP ($(df -T "$SYDRA_BENCH_TMP" | awk 'NR==2 {print $2}'))"
    echo "rustc: $(rustc --version)"
    echo "prometheus: $(prometheus --version 2>&1 | head -1)"
    echo "node_exporter: $(prometheus-node-exporter --version 2>&1 | head -1)"
    echo "influxd: $(influxd version 2>&1 | head -1)"
    echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$results/protocols_machine.txt" >&2

want() { [[ ",$only," == *",$1,"* ]]; }

emit() {
    tee -a "$results/protocols.jsonl"
}

data=$tmp/data
echo "== record: one node_exporter scrape, $requests requests of 1,000 series × 100 samples" >&2
ne_port=$(free_port)
prometheus-node-exporter --web.listen-address="127.0.0.1:$ne_port" >"$tmp/node_exporter.log" 2>&1 &
ne_pid=$!
wait_http "http://127.0.0.1:$ne_port/metrics" node_exporter "$ne_pid"
"$bench" record --node-exporter "127.0.0.1:$ne_port" --out "$data" --requests "$requests" | emit
kill -TERM "$ne_pid"
wait "$ne_pid" || true
ne_pid=

IFS=, read -r -a concurrencies <<<"$clients"
if want ingest; then
    for rep in $(seq 1 "$reps"); do
        for c in "${concurrencies[@]}"; do
            echo "== ingest, repetition $rep, $c client(s): sydra serve" >&2
            "$bench" ingest --data "$data" --system sydra --clients "$c" --label "sydra_c${c}_r$rep" | emit
            echo "== ingest, repetition $rep, $c client(s): InfluxDB /write" >&2
            start_influx "$tmp/influx"
            "$bench" ingest --data "$data" --system influx --addr "127.0.0.1:$influx_port" \
                --pid "$influx_pid" --clients "$c" --label "influx_c${c}_r$rep" | emit
            stop_influx
            rm -rf "$tmp/influx"
            echo "== ingest, repetition $rep, $c client(s): Prometheus /api/v1/write" >&2
            start_prom "$tmp/prom" "$((c > 1 ? 1 : 0))"
            "$bench" ingest --data "$data" --system prometheus --addr "127.0.0.1:$prom_port" \
                --pid "$prom_pid" --clients "$c" --label "prometheus_c${c}_r$rep" | emit
            stop_prom
            rm -rf "$tmp/prom"
        done
    done
fi

if want read; then
    echo "== read: Prometheus loaded by remote write (1 client, in order), then timed beside sydra serve" >&2
    start_prom "$tmp/prom-read" 0
    "$bench" ingest --data "$data" --system prometheus --addr "127.0.0.1:$prom_port" \
        --pid "$prom_pid" --clients 1 --label prometheus_read_load | emit
    "$bench" read --data "$data" --prometheus "127.0.0.1:$prom_port" --reps "$read_reps" | emit
    stop_prom
    rm -rf "$tmp/prom-read"
fi

if want phases; then
    echo "== phases: the remote-write handler's steps in process, no HTTP" >&2
    "$bench" phases --data "$data" --threads 1 --sync always | emit
    "$bench" phases --data "$data" --threads 2 --sync always | emit
    "$bench" phases --data "$data" --threads 1 --sync never | emit
fi
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results/protocols_machine.txt" >&2

echo "== summary (goals of issue 17)" >&2
python3 - "$results/protocols.jsonl" <<'EOF'
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ingest = {}
for d in rows:
    if d["mode"] == "ingest" and not d["label"].endswith("_load"):
        ingest.setdefault((d["system"], d["clients"]), []).append(d)

def med(ds, k):
    return statistics.median(d[k] for d in ds)

def verdict(ok):
    return "met" if ok else "NOT met"

out = []
if ingest:
    out += ["", "Remote-write ingest, samples/s (median of the repetitions; every answer 204 and every sample stored: ok)",
            "| clients | sydra serve | (sydra, its compaction added) | InfluxDB /write | Prometheus | sydra / InfluxDB | sydra / Prometheus | all ok |",
            "|---|---|---|---|---|---|---|---|"]
    goal_abs, goal_rel = [], []
    for c in sorted({c for _, c in ingest}):
        s, i, p = (ingest.get((k, c), []) for k in ("sydra", "influx", "prometheus"))
        sv = med(s, "samples_per_s") if s else float("nan")
        iv = med(i, "samples_per_s") if i else float("nan")
        pv = med(p, "samples_per_s") if p else float("nan")
        ok = all(d["ok"] for d in s + i + p)
        sc = med(s, "samples_per_s_with_compaction") if s else float("nan")
        out.append(f"| {c} | {sv / 1e6:.2f} M | {sc / 1e6:.2f} M | {iv / 1e6:.2f} M | {pv / 1e6:.2f} M | {sv / iv:.1f}× | {sv / pv:.2f}× | {'yes' if ok else 'NO'} |")
        if s:
            goal_abs.append((c, sv, all(d["ok"] for d in s)))
        if s and i:
            goal_rel.append((c, sv / iv))
    best = max(goal_abs, key=lambda x: x[1]) if goal_abs else None
    if best:
        out.append(f"\ngoal 1a, ≥ 1M samples/s durable: best {best[1] / 1e6:.2f} M/s at {best[0]} client(s); "
                   f"lowest {min(x[1] for x in goal_abs) / 1e6:.2f} M/s: "
                   f"{verdict(min(x[1] for x in goal_abs) >= 1e6 and all(x[2] for x in goal_abs))} (at every concurrency)")
    if goal_rel:
        out.append(f"goal 1b, ≥ 5× InfluxDB: " + ", ".join(f"{r:.1f}× at {c}" for c, r in goal_rel)
                   + f": {verdict(min(r for _, r in goal_rel) >= 5)} (at every concurrency)")
r = next((d for d in rows if d["mode"] == "read"), None)
if r:
    out += ["", f"Remote read of one series over 1 h ({r['samples']} samples, median of {r['reps']} rounds, request sent → last byte)",
            "| sydra state | sydra /api/v1/read | Prometheus /api/v1/query [1h] | Prometheus /api/v1/read | sydra / query | goal ≤ 0.5× |",
            "|---|---|---|---|---|---|"]
    for s in r["states"]:
        ratio = s["sydra_over_prometheus_query"]
        out.append(f"| {s['state']} | {s['sydra_read']['median_s'] * 1e3:.3f} ms | {s['prometheus_query']['median_s'] * 1e3:.3f} ms | "
                   f"{s['prometheus_remote_read']['median_s'] * 1e3:.3f} ms | {ratio:.2f}× | {verdict(ratio <= 0.5)} |")
    out += ["", "The same probes in blocks of requests in a row instead of turns (diagnostic: each server's working set stays in the caches)",
            "| sydra state | sydra /api/v1/read | Prometheus /api/v1/query [1h] | sydra / query | GET health: sydra | Prometheus |",
            "|---|---|---|---|---|---|"]
    for s in r["states"]:
        b = s.get("blocked_median_s")
        if b:
            sr, pq = b["sydra /api/v1/read"], b["prometheus /api/v1/query"]
            out.append(f"| {s['state']} | {sr * 1e3:.3f} ms | {pq * 1e3:.3f} ms | {sr / pq:.2f}× | "
                       f"{b['sydra /api/v1/health'] * 1e3:.3f} ms | {b['prometheus /-/healthy'] * 1e3:.3f} ms |")
    s = r["states"][-1]
    ip = s["sydra_in_process"]
    out.append(f"(in process, after compaction: view {ip['view_s'] * 1e3:.3f} ms, query {ip['query_s'] * 1e3:.3f} ms, "
               f"protobuf {ip['encode_s'] * 1e3:.3f} ms, snappy {ip['snappy_s'] * 1e3:.3f} ms; "
               f"GET health: sydra {s['sydra_health']['median_s'] * 1e3:.3f} ms, Prometheus {s['prometheus_health']['median_s'] * 1e3:.3f} ms)")
ph = [d for d in rows if d["mode"] == "phases"]
if ph:
    out += ["", "Remote-write handler steps in process, no HTTP (ms per request of 100,000 samples)",
            "| threads, sync | samples/s | unsnappy | decode | keys | append | commit |", "|---|---|---|---|---|---|---|"]
    for d in ph:
        p = d["per_request_ms"]
        out.append(f"| {d['threads']}, {d['sync']} | {d['samples_per_s'] / 1e6:.2f} M | {p['unsnappy']:.2f} | {p['decode']:.2f} | "
                   f"{p['keys']:.2f} | {p['append']:.2f} | {p['commit']:.2f} |")
print("\n".join(out))
EOF
