#!/usr/bin/env bash
# The replication issue's goals, each beside a baseline measured in the same
# run (benches/src/bin/remote_bench.rs; results in docs/BENCHMARKS-REMOTE.md):
#
#     bash benches/remote.sh                 # full size (about 10 minutes; git import +1)
#     bash benches/remote.sh --quick         # smoke run (about 1 minute)
#     bash benches/remote.sh --mb 256 --reps 5 --only clone
#
# Options (full size in brackets; --quick in parentheses):
#   --series N    series of both stores [1000] (1000)
#   --hours N     hours of history of the store for incremental and
#                 concurrent (one point per series every 10 s, one
#                 compaction per hour) [24] (4)
#   --mb N        size of the store to clone, packs plus WAL, in MB [1024] (100)
#   --reps N      repetitions of the timed comparisons [3] (1)
#   --clients N   concurrent clients [100] (30)
#   --only LIST   comma-separated modes: incremental,clone,concurrent
# Environment:
#   CARGO_TARGET_DIR        target dir (default: <repo>/target)
#   SYDRA_BENCH_TMP         scratch directory on a real disk (default: a fresh
#                           directory under /var/tmp, removed at exit)
#   SYDRA_REMOTE_FIXTURES   where the generated stores and the git import
#                           are kept between runs (default: under the
#                           scratch directory, removed with it); a store is
#                           reused when its built.json is there, so give a
#                           fresh one after changing --series/--hours/--mb
# Every server is `sydra serve --read-only` on 127.0.0.1; nothing else is
# contacted. Each mode prints one JSON line; all of them are gathered in
# $CARGO_TARGET_DIR/sydra-bench-results/remote.jsonl and summarised at the
# end against the goals.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

series=1000 hours=24 mb=1024 reps=3 clients=100
only=incremental,clone,concurrent
cmd="bash benches/remote.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) hours=4 mb=100 reps=1 clients=30 ;;
        --series) series=$2; shift ;;
        --hours) hours=$2; shift ;;
        --mb) mb=$2; shift ;;
        --reps) reps=$2; shift ;;
        --clients) clients=$2; shift ;;
        --only) only=$2; shift ;;
        *) echo "unknown option $1 (see the head of $0)" >&2; exit 2 ;;
    esac
    shift
done

command -v git >/dev/null || { echo "remote.sh: git is missing (apt-get install git)" >&2; exit 1; }

echo "== building (release): sydra, remote_bench" >&2
cargo build --release -p sydra-engine --bin sydra
cargo build --release -p sydra-benches --bin remote_bench
export SYDRA_BIN=$CARGO_TARGET_DIR/release/sydra
bench=$CARGO_TARGET_DIR/release/remote_bench

cleanup=()
if [[ -z ${SYDRA_BENCH_TMP:-} ]]; then
    SYDRA_BENCH_TMP=$(mktemp -d /var/tmp/sydra-remote.XXXXXX)
    cleanup+=("$SYDRA_BENCH_TMP")
fi
export SYDRA_BENCH_TMP
mkdir -p "$SYDRA_BENCH_TMP"
fixtures=${SYDRA_REMOTE_FIXTURES:-$SYDRA_BENCH_TMP/fixtures}
mkdir -p "$fixtures"
trap 'rm -rf "${cleanup[@]}"' EXIT

results=$CARGO_TARGET_DIR/sydra-bench-results
mkdir -p "$results"
rm -f "$results"/remote_*.json "$results/remote.jsonl"

{
    echo "command: $cmd"
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' plus uncommitted changes')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "cores: $(nproc)"
    echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel: $(uname -r)"
    echo "scratch: $SYDRA_BENCH_TMP ($(df -T "$SYDRA_BENCH_TMP" | awk 'NR==2 {print $2}'))"
    echo "fixtures: $fixtures ($(df -T "$fixtures" | awk 'NR==2 {print $2}'))"
    echo "rustc: $(rustc --version)"
    echo "git: $(git --version)"
    echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$results/remote_machine.txt" >&2

want() { [[ ",$only," == *",$1,"* ]]; }

emit() {
    tee -a "$results/remote.jsonl"
}

small=$fixtures/store-s$series-h$hours
big=$fixtures/store-s$series-mb$mb
if want incremental || want concurrent; then
    echo "== build: $series series, $hours hours" >&2
    "$bench" build --dir "$small" --series "$series" --hours "$hours" | emit
fi
if want incremental; then
    echo "== incremental" >&2
    "$bench" incremental --store "$small" --reps "$reps" | emit
fi
if want concurrent; then
    echo "== concurrent: $clients clients, no retry (the library as it is)" >&2
    "$bench" concurrent --store "$small" --clients "$clients" --retry 0 | emit
    echo "== concurrent: $clients clients, retrying on 503 (in the bench)" >&2
    "$bench" concurrent --store "$small" --clients "$clients" --retry 1 | emit
    # What one request costs the server: as many clones as it serves at
    # once (16) of a 4-hour store.
    "$bench" build --dir "$fixtures/store-s$series-h4" --series "$series" --hours 4 | emit
    echo "== concurrent: 16 clones of the 4-hour store" >&2
    "$bench" concurrent --store "$fixtures/store-s$series-h4" --clients 16 --op clone --retry 1 | emit
fi
if want clone; then
    echo "== build: $series series, $mb MB" >&2
    "$bench" build --dir "$big" --series "$series" --mb "$mb" | emit
    echo "== clone (git import first, if not kept)" >&2
    "$bench" clone --store "$big" --git "$big.git" --reps "$reps" --label as-built | emit
    # The same store after `sydra repack` (one pack, as the git side has):
    # a copy, so the store above stays as the engine left it.
    if [[ ! -e $big-repacked/built.json ]]; then
        rm -rf "$big-repacked"
        cp -a "$big" "$big-repacked"
        echo "== repack of the copy" >&2
        "$SYDRA_BIN" --dir "$big-repacked" repack --json >&2
    fi
    echo "== clone of the repacked copy" >&2
    "$bench" clone --store "$big-repacked" --git "$big.git" --reps "$reps" --label repacked | emit
fi
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results/remote_machine.txt" >&2

echo "== summary (goals of the replication issue)" >&2
python3 - "$results/remote.jsonl" <<'EOF'
import json, sys

rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line:
        d = json.loads(line)
        key = d["mode"]
        if key == "concurrent":
            key += "_%s_retry%d" % (d["op"], d["retry_on_503"])
        if key == "clone" and d.get("label") == "repacked":
            key = "clone_repacked"
        rows[key] = d

def verdict(ok):
    return "met" if ok else "NOT met"

out = ["| goal | measured | verdict |", "|---|---|---|"]
i = rows.get("incremental")
if i:
    r0 = i["rows"]
    worst = max(r["http_bytes_over_new"] for r in r0)
    fixed = max(r["http_bytes_over_new_if_not_resent"] for r in r0)
    out.append(f"| incremental fetch: HTTP bytes ≤ 1.1× the new files (pack + index + ranges) | "
               f"{i['bytes_ratio_median']:.2f}× median, {worst:.2f}× worst "
               f"({r0[0]['http_down_bytes'] + r0[0]['http_up_bytes']:,} B vs {r0[0]['new_bytes']:,} B); "
               f"{fixed:.2f}× without the ranges resent | {verdict(worst <= 1.1)} |")
    out.append(f"| incremental fetch: time ≤ 2× (cp of those files + one round trip) | "
               f"{i['time_ratio_median']:.1f}× median ({i['fetch_median_s'] * 1e3:.0f} ms vs cp "
               f"{i['cp_median_s'] * 1e3:.1f} ms + RTT {i['rtt_s'] * 1e3:.2f} ms) "
               f"| {verdict(i['time_ratio_median'] <= 2)} |")
    out.append(f"| (the floor of a durable, verifying receiver: that cp, then fsync of the copies, "
               f"then BLAKE3 of the bytes, + RTT) | {i['floor_median_s'] * 1e3:.0f} ms median = "
               f"{i['floor_ratio_median']:.1f}× (cp + RTT) by itself; the fetch takes "
               f"{i['fetch_over_floor_median']:.1f}× the floor | – |")
c = rows.get("clone")
if c:
    out.append(f"| clone of {c['transfer_bytes'] / 1e6:.0f} MB over loopback HTTP ≥ 300 MB/s, verified | "
               f"{c['sydra_mb_per_s']:.0f} MB/s ({c['sydra_median_s']:.2f} s median; fsck "
               f"{'clean' if c['fsck_ok'] else 'FAILED'}) | {verdict(c['sydra_mb_per_s'] >= 300 and c['fsck_ok'])} |")
    out.append(f"| clone ≤ 0.5× `git clone --bare file://` of the same bytes | {c['sydra_over_git']:.2f}× "
               f"(git {c['git_median_s']:.2f} s, pack {c['git_pack_bytes'] / 1e6:.0f} MB) "
               f"| {verdict(c['sydra_over_git'] <= 0.5)} |")
    out.append(f"| (the machine: the same bytes written into a new file and fsynced, 1 MiB per write) | "
               f"{c['raw_write_mb_per_s']:.0f} MB/s; the clone takes {c['sydra_over_raw_write']:.2f}× its time | – |")
    out.append(f"| (clone: where the time goes) | server before its first byte {c['download_only_ttfb_s']:.2f} s, "
               f"whole download {c['download_only_s']:.2f} s; `remote::receive` of the downloaded file "
               f"{c['receive_only_s']:.2f} s; server peak RSS {c['server_peak_rss_kib'] / 1024:.0f} MiB (anonymous {c['server_peak_anon_kib_during_clones'] / 1024:.0f} MiB) | – |")
c = rows.get("clone_repacked")
if c:
    out.append(f"| (the same clone from the source repacked into one pack) | {c['sydra_mb_per_s']:.0f} MB/s, "
               f"{c['sydra_over_git']:.2f}× git ({c['sydra_median_s']:.2f} s vs {c['git_median_s']:.2f} s) | – |")
for k, label in (("concurrent_fetch_retry0", "library client as is"), ("concurrent_fetch_retry1", "retrying on 503 in the bench")):
    d = rows.get(k)
    if d:
        out.append(f"| {d['clients']} concurrent fetches, {label}: all succeed | {d['succeeded']}/{d['clients']} "
                   f"succeeded; server peak RSS {d['server_vmhwm_kib'] / 1024:.0f} MiB, anonymous "
                   f"{d['server_peak_anon_sampled_kib'] / 1024:.0f} MiB (idle {d['server_idle_rss_kib'] / 1024:.0f} / "
                   f"{d['server_idle_anon_kib'] / 1024:.0f} MiB) | {verdict(d['failed'] == 0)} |")
d = rows.get("concurrent_clone_retry1")
if d:
    out.append(f"| ({d['clients']} concurrent clones of a {d['store_bytes'] / 1e6:.0f} MB store) | {d['succeeded']}/{d['clients']} "
               f"succeeded; server peak RSS {d['server_vmhwm_kib'] / 1024:.0f} MiB, anonymous "
               f"{d['server_peak_anon_sampled_kib'] / 1024:.0f} MiB; temp files {d['server_peak_tmp_bytes'] / 1e6:.0f} MB | – |")
print("\n".join(out))
EOF
