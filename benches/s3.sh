#!/usr/bin/env bash
# Issue 16's goals for S3 remotes, measured against moto (a local S3
# server, started here on a free loopback port) beside plain object_store
# requests of the same bytes in the same run (benches/src/bin/s3_bench.rs;
# results in docs/BENCHMARKS-S3.md):
#
#     bash benches/s3.sh                  # full size: a ~1 GB store (about 10 minutes)
#     bash benches/s3.sh --quick          # smoke run: a ~100 MB store (under 2 minutes)
#     bash benches/s3.sh --mb 256 --reps 5 --only push,clone
#     bash benches/s3.sh --only slowlink  # pushes over a paced 1 MB/s link (about 6 minutes)
#     bash benches/s3.sh --only replica   # one series over one day from a read replica
#
# Options (full size in brackets; --quick in parentheses):
#   --series N    series of the stores [1000] (1000)
#   --mb N        size of the store pushed and cloned, packs plus WAL, in MB
#                 [1024] (100)
#   --reps N      repetitions of the timed comparisons [3] (1)
#   --stages N    pushes of the staged remote (several packs) [6] (3)
#   --only LIST   comma-separated modes: requests,push,stage,clone,replica
#                 (the default), slowlink (not in the default: minutes of
#                 waiting)
#   --slow-mb-per-s N  the paced link of slowlink, MB/s each way [1]
# Environment:
#   CARGO_TARGET_DIR        target dir (default: <repo>/target)
#   SYDRA_BENCH_TMP         scratch directory on a real disk (default: a fresh
#                           directory under /var/tmp, removed at exit)
#   SYDRA_S3_FIXTURES       where the generated stores are kept between runs
#                           (default: under the scratch directory); a store
#                           is reused when its built.json is there
#   SYDRA_MOTO_VENV         moto's venv (default: $CARGO_TARGET_DIR/moto-venv,
#                           as .ci/run; created with pip when missing)
#   SYDRA_MOTO_TMP          where moto spills the objects it holds (default:
#                           a directory on /dev/shm when there is one, so
#                           the server's storage does not share the client's
#                           disk; else under the scratch directory)
#   SYDRA_BENCH_MAX_LOAD    before each mode, wait (30 s polls, at most 15
#                           minutes) until the 1-minute load is at most this
#                           [1.5]; the load measured is printed and kept
# moto listens on 127.0.0.1 only and nothing else is contacted (pip only
# when the venv is missing). Each mode prints one JSON line; all of them are
# gathered in $CARGO_TARGET_DIR/sydra-bench-results/s3.jsonl and summarised
# at the end against the goals.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

series=1000 mb=1024 reps=3 stages=6 slow=1
only=requests,push,stage,clone,replica
cmd="bash benches/s3.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) mb=100 reps=1 stages=3 ;;
        --series) series=$2; shift ;;
        --mb) mb=$2; shift ;;
        --reps) reps=$2; shift ;;
        --stages) stages=$2; shift ;;
        --only) only=$2; shift ;;
        --slow-mb-per-s) slow=$2; shift ;;
        *) echo "unknown option $1 (see the head of $0)" >&2; exit 2 ;;
    esac
    shift
done
max_load=${SYDRA_BENCH_MAX_LOAD:-1.5}

for tool in curl python3; do
    command -v "$tool" >/dev/null || { echo "s3.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done

echo "== building (release): sydra, remote_bench (the store), s3_bench" >&2
cargo build --release -p sydra-engine --bin sydra
cargo build --release -p sydra-benches --bin remote_bench --bin s3_bench
export SYDRA_BIN=$CARGO_TARGET_DIR/release/sydra
build=$CARGO_TARGET_DIR/release/remote_bench
bench=$CARGO_TARGET_DIR/release/s3_bench

venv=${SYDRA_MOTO_VENV:-$CARGO_TARGET_DIR/moto-venv}
if [[ ! -x $venv/bin/moto_server ]]; then
    echo "== installing moto into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "moto[server]>=5.1,<6"
fi
moto_version=$("$venv/bin/python" -c 'import moto; print(moto.__version__)')

cleanup=()
moto_pid=
finish() {
    if [[ -n $moto_pid ]]; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
    if [[ ${#cleanup[@]} -gt 0 ]]; then
        rm -rf "${cleanup[@]}"
    fi
}
trap finish EXIT

if [[ -z ${SYDRA_BENCH_TMP:-} ]]; then
    SYDRA_BENCH_TMP=$(mktemp -d /var/tmp/sydra-s3.XXXXXX)
    cleanup+=("$SYDRA_BENCH_TMP")
fi
export SYDRA_BENCH_TMP
mkdir -p "$SYDRA_BENCH_TMP"
fixtures=${SYDRA_S3_FIXTURES:-$SYDRA_BENCH_TMP/fixtures}
mkdir -p "$fixtures"
if [[ -n ${SYDRA_MOTO_TMP:-} ]]; then
    moto_tmp=$SYDRA_MOTO_TMP
    mkdir -p "$moto_tmp"
elif [[ -d /dev/shm && -w /dev/shm ]]; then
    moto_tmp=$(mktemp -d /dev/shm/sydra-s3-moto.XXXXXX)
    cleanup+=("$moto_tmp")
else
    moto_tmp=$SYDRA_BENCH_TMP/moto-tmp
    mkdir -p "$moto_tmp"
fi

results=$CARGO_TARGET_DIR/sydra-bench-results
mkdir -p "$results"
rm -f "$results"/s3_*.json "$results/s3.jsonl"

# moto on a free loopback port; its access log counts requests.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_log=$SYDRA_BENCH_TMP/moto.log
TMPDIR=$moto_tmp "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 600); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then break; fi
    kill -0 "$moto_pid" 2>/dev/null || { echo "moto_server exited:" >&2; cat "$moto_log" >&2; exit 1; }
    sleep 0.1
done
bucket=sydra-bench
# A bucket is made outside Sydra, as an operator would: an unsigned PUT
# without a Content-Length (moto answers 411 to an empty one otherwise).
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Length:' "http://127.0.0.1:$port/$bucket")
[[ $code == 200 ]] || { echo "cannot create the bucket: HTTP $code" >&2; exit 1; }
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ALLOW_HTTP=true \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
server=(--moto-pid "$moto_pid" --moto-log "$moto_log")

{
    echo "command: $cmd"
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' plus uncommitted changes')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "cores: $(nproc)"
    echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel: $(uname -r)"
    echo "scratch: $SYDRA_BENCH_TMP ($(df -T "$SYDRA_BENCH_TMP" | awk 'NR==2 {print $2}'))"
    echo "moto: $moto_version ($("$venv/bin/python" --version)), pid $moto_pid, 127.0.0.1:$port, objects spilled to $moto_tmp ($(df -T "$moto_tmp" | awk 'NR==2 {print $2}'))"
    echo "rustc: $(rustc --version)"
    echo "curl: $(curl --version | head -1 | cut -d' ' -f1-2)"
    echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$results/s3_machine.txt" >&2

want() { [[ ",$only," == *",$1,"* ]]; }

# Wait for a quiet machine: other work on the 2 cores and the one disk
# would pollute the timings.
quiet() {
    local waited=0 load
    while :; do
        load=$(cut -d' ' -f1 /proc/loadavg)
        if python3 -c "import sys; sys.exit(0 if $load <= $max_load else 1)"; then break; fi
        if (( waited >= 900 )); then
            echo "   load $load still above $max_load after 15 minutes: measuring anyway" >&2
            break
        fi
        echo "   load $load > $max_load: waiting 30 s" >&2
        sleep 30
        waited=$((waited + 30))
    done
    echo "load before $1: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results/s3_machine.txt" >&2
}

emit() {
    tee -a "$results/s3.jsonl"
}

big=$fixtures/store-s$series-mb$mb
if want push || want stage || want clone; then
    echo "== build: $series series, $mb MB (remote_bench build)" >&2
    "$build" build --dir "$big" --series "$series" --mb "$mb" | emit
fi
small=$fixtures/store-s$series-h4-requests
if want requests; then
    rm -rf "$small"
    echo "== build: $series series, 4 hours (remote_bench build)" >&2
    "$build" build --dir "$small" --series "$series" --hours 4 | emit
    quiet requests
    echo "== requests: a named remote, its first push, then one compaction per push" >&2
    "$bench" requests --store "$small" --bucket "$bucket" --prefix requests --reps "$((reps < 3 ? 3 : reps))" "${server[@]}" | emit
fi
if want push; then
    quiet push
    echo "== push: the whole store in one push, beside a plain multipart upload" >&2
    "$bench" push --store "$big" --bucket "$bucket" --prefix one --reps "$reps" "${server[@]}" | emit
fi
if want stage; then
    quiet stage
    echo "== stage: the store pushed in $stages pushes (several packs)" >&2
    "$bench" stage --store "$big" --bucket "$bucket" --prefix staged --stages "$stages" "${server[@]}" | emit
fi
if want clone; then
    if ! want push; then
        "$bench" push --store "$big" --bucket "$bucket" --prefix one --reps 1 "${server[@]}" >/dev/null
    fi
    quiet clone
    echo "== clone of the one-pack remote, beside plain GETs and curl" >&2
    "$bench" clone --bucket "$bucket" --prefix one --label one-pack --scratch "$SYDRA_BENCH_TMP/clone" --reps "$reps" "${server[@]}" | emit
    if want stage; then
        quiet clone-staged
        echo "== clone of the staged remote ($stages packs)" >&2
        "$bench" clone --bucket "$bucket" --prefix staged --label staged --scratch "$SYDRA_BENCH_TMP/clone" --reps "$reps" "${server[@]}" | emit
    fi
fi
if want slowlink; then
    # A fresh 4-hour store: its whole push is one PUT of ~38 MB, which takes
    # ~38 s at 1 MB/s, longer than object_store's default 30 s timeout.
    slowstore=$fixtures/store-s$series-h4-slowlink
    rm -rf "$slowstore"
    "$build" build --dir "$slowstore" --series "$series" --hours 4 | emit
    echo "== slowlink: a push over a $slow MB/s link, object_store's default timeout" >&2
    "$bench" slowlink --store "$slowstore" --bucket "$bucket" --prefix slow-default --label default-timeout --mb-per-s "$slow" "${server[@]}" | emit
    echo "== slowlink: the same in 16 MiB parts (SYDRA_S3_MULTIPART_OVER=1000000), default timeout" >&2
    "$bench" slowlink --store "$slowstore" --bucket "$bucket" --prefix slow-multipart --label multipart-default-timeout --multipart-over 1000000 --mb-per-s "$slow" "${server[@]}" | emit
    echo "== slowlink: the same with AWS_TIMEOUT=600s" >&2
    "$bench" slowlink --store "$slowstore" --bucket "$bucket" --prefix slow-600s --label timeout-600s --aws-timeout 600s --mb-per-s "$slow" "${server[@]}" | emit
fi
if want replica; then
    daystore=$fixtures/store-s$series-h26-replica
    if [[ ! -f $daystore/built.json ]]; then
        rm -rf "$daystore"
        echo "== build: $series series, 26 hours (remote_bench build)" >&2
        "$build" build --dir "$daystore" --series "$series" --hours 26 | emit
    fi
    quiet replica
    echo "== replica: one series over one day through query --remote, cold then warm, beside the local store" >&2
    "$bench" replica --store "$daystore" --bucket "$bucket" --prefix replica --scratch "$SYDRA_BENCH_TMP/replica" --reps "$((reps < 5 ? 5 : reps))" "${server[@]}" | emit
fi
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results/s3_machine.txt" >&2
echo "moto peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$moto_pid/status" 2>/dev/null)" | tee -a "$results/s3_machine.txt" >&2

echo "== summary (issue 16's goals)" >&2
python3 - "$results/s3.jsonl" <<'EOF'
import json, os, re, sys

rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line:
        d = json.loads(line)
        key = d["mode"] + ("_" + d["label"] if d.get("label") else "")
        rows[key] = d

def verdict(ok):
    return "met" if ok else "NOT met"

out = ["| goal | measured | verdict |", "|---|---|---|"]
r = rows.get("requests")
if r:
    first = r["rows"][0]
    kinds = ", ".join(f"{k} ×{v}" for k, v in first["server_requests_by_kind"].items())
    out.append(f"| first push with a named remote (probe included) | {first['sydra_requests']} requests "
               f"(moto logged {first['server_requests']}: {kinds}) | – |")
    later = r["rows"][1:]
    desc = ", ".join(f"{x['sydra_requests']} ({x['pack_bytes'] / 1e6:.1f} MB, {x['push_s'] * 1e3:.0f} ms)" for x in later)
    out.append(f"| a push of one compaction: ≤ 4 requests plus multipart parts | {desc}; moto logged at most "
               f"{r['later_push_server_requests_max']}; the same 4 requests with plain object_store "
               f"{r['later_plain_median_s'] * 1e3:.0f} ms median | {verdict(r['later_push_requests_max'] <= 4 and r['later_push_server_requests_max'] <= 4)} |")
p = rows.get("push")
if p:
    x = p["rows"][-1]
    out.append(f"| (push of the whole {p['pack_bytes'] / 1e6:.0f} MB store, multipart) | {p['push_mb_per_s']:.0f} MB/s "
               f"({p['push_median_s']:.2f} s, of which `send` alone {p['send_alone_median_s']:.2f} s; {x['sydra_requests']} requests) vs plain "
               f"multipart put {p['plain_put_mb_per_s']:.0f} MB/s ({p['plain_put_median_s']:.2f} s): "
               f"{1 / p['push_over_plain']:.2f}× | – |")
s = rows.get("stage")
if s:
    out.append(f"| (staged remote) | {s['packs']} packs, {s['pack_bytes'] / 1e6:.0f} MB in {s['stages']} pushes | – |")
for label in ("one-pack", "staged"):
    c = rows.get("clone_" + label)
    if not c:
        continue
    ok = c["checked"]["fsck_ok"] and c["checked"]["refs_equal_manifest"]
    out.append(f"| clone of {c['pack_bytes'] / 1e6:.0f} MB ({label}, {c['packs']} pack(s)) ≥ 100 MB/s, verified | "
               f"{c['clone_mb_per_s']:.0f} MB/s ({c['clone_median_s']:.2f} s median; fsck "
               f"{'clean' if ok else 'FAILED'}) | {verdict(c['clone_mb_per_s'] >= 100 and ok)} |")
    # The ceiling is the faster of the two plain object_store downloads of
    # the same bytes in this run: a GET into a file can be the slower one
    # on a VM whose fresh page cache is slow, and must not flatter the
    # clone then.
    ceiling = max(c['get_to_file_mb_per_s'], c['get_to_memory_mb_per_s'])
    ratio = c['clone_mb_per_s'] / ceiling
    out.append(f"| clone ≥ 0.7× the server's ceiling ({label}) | **{ratio:.2f}×** the faster plain GET ({ceiling:.0f} MB/s); "
               f"{c['clone_over_get_to_file']:.2f}× plain GETs into a file "
               f"({c['get_to_file_mb_per_s']:.0f} MB/s; {c['get_to_file_synced_mb_per_s']:.0f} MB/s with an fsync of the files); "
               f"{c['clone_over_get_to_memory']:.2f}× into memory "
               f"({c['get_to_memory_mb_per_s']:.0f} MB/s); curl {c['curl_to_file_mb_per_s']:.0f} MB/s to a file, "
               f"{c['curl_to_null_mb_per_s']:.0f} MB/s to /dev/null | {verdict(ratio >= 0.7)} |")
    out.append(f"| ({label}: where the time goes) | clone CPU {c['clone_client_cpu_median_s']:.2f} s, moto CPU "
               f"{c['clone_server_cpu_median_s']:.2f} s during it; the download alone (plain GETs into a file) "
               f"{c['get_to_file_median_s']:.2f} s; `remote::receive` of the downloaded packs alone "
               f"{c['receive_alone_median_s']:.2f} s ({c['receive_alone_mb_per_s']:.0f} MB/s) | – |")
    if c["packs"] == 1:
        # An estimate of what this machine allows: until moto's first
        # byte (as the run's curl GETs saw it) only moto works (it reads
        # the object whole first); from then on the clone's CPU and
        # moto's share the cores os.cpu_count() reports, none idle.
        # Several packs hide the later first bytes (DECISIONS 75), so
        # only a one-pack remote is estimated this simply.
        first = sorted(x["curl_to_null"]["first_byte_s_sum"] for x in c["rows"])[len(c["rows"]) // 2]
        cpu = c["clone_client_cpu_median_s"] + c["clone_server_cpu_median_s"]
        cores = os.cpu_count() or 1
        floor = first + max(cpu - first, 0) / cores
        ceiling_s = c["pack_bytes"] / 1e6 / ceiling
        out.append(f"| ({label}: the machine's bound, estimated) | moto's first byte after {first:.2f} s, then the clone's and moto's "
                   f"{cpu:.2f} s of CPU on {cores} cores with none idle: {floor:.2f} s at best, "
                   f"{ceiling_s / floor:.2f}× the faster plain GET; the clone took {c['clone_median_s']:.2f} s "
                   f"(the best is {floor / c['clone_median_s']:.0%} of it) | – |")
for label in ("default-timeout", "multipart-default-timeout", "timeout-600s"):
    d = rows.get("slowlink_" + label)
    if d:
        err = d["error"].splitlines()[-1] if d["error"] else ""
        # object_store's message: "… Error performing PUT <url> in 30.0s - HTTP error: …"
        m = re.search(r"Error performing (\w+) \S+ in ([0-9.]+)s(.*)$", err)
        if m:
            err = f"{m.group(1)} failed in {float(m.group(2)):.1f} s{m.group(3)}"
        how = "succeeded" if d["succeeded"] else "FAILED: " + err[-200:]
        out.append(f"| (push of {d['transfer_bytes'] / 1e6:.0f} MB over a {d['link_mb_per_s']} MB/s link, {label}) | "
                   f"{how} after {d['push_s']:.0f} s; moto saw {d['server_requests']} requests | – |")
q = rows.get("replica")
if q:
    c = q["cold"]
    out.append(f"| one series over one day from the S3 replica, warm: ≤ 2× the local query | {q['warm_median_s'] * 1e3:.0f} ms "
               f"({q['rows']} points; {q['warm_requests'][0]} request(s): the manifest) vs the local store {q['local_live_median_s'] * 1e3:.0f} ms live, "
               f"{q['local_asof_median_s'] * 1e3:.0f} ms as of main: {q['warm_over_local_live']:.2f}× / {q['warm_over_local_asof']:.2f}× | "
               f"{verdict(q['warm_over_local_live'] <= 2 and q['warm_over_local_asof'] <= 2)} |")
    out.append(f"| the same, cold: at most one ranged GET per segment read; bytes reported | {c['requests']} requests "
               f"(moto logged {c['server_requests']}) for {c['segments_decoded']} segments decoded: {c['objects']} objects, "
               f"{c['wal_ranges']} WAL ranges, {c['bytes'] / 1e6:.2f} MB; {c['s'] * 1e3:.0f} ms | see BENCHMARKS-S3.md |")
print("\n".join(out))
EOF
