#!/usr/bin/env bash
# The packs issue's goals, each beside a baseline measured in the same run
# (benches/src/bin/pack_bench.rs; results in docs/BENCHMARKS-PACKS.md):
#
#     bash benches/packs.sh                # full size (about 10 minutes)
#     bash benches/packs.sh --quick        # smoke run (about 2 minutes)
#     bash benches/packs.sh --objects 300000 --reps 3 --only lookup,mark
#
# Options (full size in brackets; --quick in parentheses):
#   --objects N   objects for lookup, mark and repack [1000000] (100000)
#   --batch N     objects in one batch [10000] (1000)
#   --each N      one-by-one Each puts timed per repetition [250] (50)
#   --files N     files for hash-object [3000] (300)
#   --size B      payload bytes for batch and hash-object [1024]
#   --reps N      repetitions of the timed comparisons [5] (2)
#   --only LIST   comma-separated modes: batch,cli,lookup,mark,demo,repack
# Environment:
#   CARGO_TARGET_DIR  target dir (default: <repo>/target)
#   SYDRA_BENCH_TMP   scratch directory on a real disk for the durable
#                     modes (default: a fresh directory under /var/tmp,
#                     removed at exit); lookup, mark and repack use tmpfs
#                     (/dev/shm) as benches/benches/gc.rs does
# Each mode prints one JSON line; all of them are gathered in
# $CARGO_TARGET_DIR/sydra-bench-results/packs.jsonl and summarised at the
# end against the goals.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

objects=1000000 batch=10000 each=250 files=3000 size=1024 reps=5
only=batch,cli,lookup,mark,demo,repack
cmd="bash benches/packs.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) objects=100000 batch=1000 each=50 files=300 reps=2 ;;
        --objects) objects=$2; shift ;;
        --batch) batch=$2; shift ;;
        --each) each=$2; shift ;;
        --files) files=$2; shift ;;
        --size) size=$2; shift ;;
        --reps) reps=$2; shift ;;
        --only) only=$2; shift ;;
        *) echo "unknown option $1 (see the head of $0)" >&2; exit 2 ;;
    esac
    shift
done

echo "== building (release): sydra, pack_bench" >&2
cargo build --release -p sydra-engine --bin sydra
cargo build --release -p sydra-benches --bin pack_bench
export SYDRA_BIN=$CARGO_TARGET_DIR/release/sydra
bench=$CARGO_TARGET_DIR/release/pack_bench

cleanup=()
if [[ -z ${SYDRA_BENCH_TMP:-} ]]; then
    SYDRA_BENCH_TMP=$(mktemp -d /var/tmp/sydra-packs.XXXXXX)
    cleanup+=("$SYDRA_BENCH_TMP")
fi
export SYDRA_BENCH_TMP
shm=/dev/shm
[[ -d $shm && -w $shm ]] || shm=$SYDRA_BENCH_TMP
SYDRA_BENCH_FIXTURES=$(mktemp -d "$shm/sydra-packs-fixtures.XXXXXX")
export SYDRA_BENCH_FIXTURES
cleanup+=("$SYDRA_BENCH_FIXTURES")
trap 'rm -rf "${cleanup[@]}"' EXIT

results=$CARGO_TARGET_DIR/sydra-bench-results
mkdir -p "$results"
rm -f "$results"/packs_*.json "$results/packs.jsonl"

{
    echo "command: $cmd"
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' plus uncommitted changes')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "cores: $(nproc)"
    echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel: $(uname -r)"
    echo "scratch: $SYDRA_BENCH_TMP ($(stat -f -c %T "$SYDRA_BENCH_TMP"); $(df -T "$SYDRA_BENCH_TMP" | awk 'NR==2 {print $2}'))"
    echo "tmpfs: $SYDRA_BENCH_FIXTURES ($(stat -f -c %T "$SYDRA_BENCH_FIXTURES"))"
    echo "rustc: $(rustc --version)"
    echo "git: $(git --version)"
    echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$results/packs_machine.txt" >&2

run() {
    local mode=$1
    shift
    if [[ ",$only," != *",$mode,"* ]]; then
        return
    fi
    echo "== $mode" >&2
    "$bench" "$mode" "$@" | tee -a "$results/packs.jsonl"
}

run batch --objects "$batch" --size "$size" --each "$each" --reps "$reps"
run cli --files "$files" --size "$size" --reps "$reps"
run lookup --objects "$objects" --lookups "$objects"
run mark --objects "$objects" --reps "$reps"
run demo
run repack --objects "$objects"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results/packs_machine.txt" >&2

echo "== summary (goals of the packs issue)" >&2
python3 - "$results/packs.jsonl" <<'EOF'
import json, sys

rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if line:
        d = json.loads(line)
        rows[d["mode"]] = d

def verdict(ok):
    return "met" if ok else "NOT met"

out = ["| goal | measured | verdict |", "|---|---|---|"]
b = rows.get("batch")
if b:
    out.append(f"| batch ≥ 50× faster per object than `Each` | {b['each_over_batch_mean']:.0f}× "
               f"({b['sydra_batch_per_object_mean_us']:.1f} µs vs {b['sydra_each_per_object_mean_us']:.0f} µs) "
               f"| {verdict(b['each_over_batch_mean'] >= 50)} |")
    out.append(f"| batch ≥ 10× faster than the old loose batch | {b['loose_over_batch_mean']:.1f}× "
               f"({b['raw_loose_batch_per_object_mean_us']:.1f} µs) | {verdict(b['loose_over_batch_mean'] >= 10)} |")
c = rows.get("cli")
if c:
    out.append(f"| hash-object ≤ 0.25× git (batch fsync) | {c['sydra_over_git_mean']:.3f}× "
               f"({c['sydra_hash_object_mean_s']:.3f} s vs {c['git_batch_fsync_mean_s']:.3f} s) "
               f"| {verdict(c['sydra_over_git_mean'] <= 0.25)} |")
l = rows.get("lookup")
if l:
    out.append(f"| `contains_packed` hit ≤ 1 µs ({l['objects']} objects, one pack) | "
               f"{l['one_contains_packed_hit_ns']:.0f} ns (raw search {l['one_raw_hit_ns']:.0f} ns) "
               f"| {verdict(l['one_contains_packed_hit_ns'] <= 1000)} |")
    out.append(f"| `contains_packed` miss ≤ 300 ns | {l['one_contains_packed_miss_ns']:.0f} ns "
               f"(raw search {l['one_raw_miss_ns']:.0f} ns) | {verdict(l['one_contains_packed_miss_ns'] <= 300)} |")
    out.append(f"| (`contains` hit / miss, one pack) | {l['one_contains_hit_ns']:.0f} ns / "
               f"{l['one_contains_miss_ns']:.0f} ns | – |")
    out.append(f"| (`contains_packed` hit / miss over {l['batches_packs']} packs from batches of 1,000) | "
               f"{l['batches_contains_packed_hit_ns']:.0f} ns / {l['batches_contains_packed_miss_ns']:.0f} ns | – |")
m = rows.get("mark")
if m:
    if "git_over_sydra_mean" in m:
        out.append(f"| mark ≥ 3× faster than `git rev-list --objects --all` | {m['git_over_sydra_mean']:.2f}× "
                   f"({m['sydra_mark_mean_s']:.3f} s vs {m['git_rev_list_mean_s']:.3f} s) "
                   f"| {verdict(m['git_over_sydra_mean'] >= 3)} |")
    r = m["rss"]
    out.append(f"| mark memory ≤ 64 B/object | {r['bytes_per_object']:.1f} B/object whole process "
               f"({r['anon_bytes_per_object']:.1f} anonymous + {r['mapped_bytes_per_object']:.1f} mapped pack pages) "
               f"| anonymous: {verdict(r['anon_bytes_per_object'] <= 64)}; whole: {verdict(r['bytes_per_object'] <= 64)} |")
d = rows.get("demo")
if d:
    if "du_over_apparent_files" in d:
        out.append(f"| demo: du ≤ 1.2× apparent | {d['du_over_apparent_files']:.3f}× "
                   f"({d['du_sk']} KiB vs {d['apparent_file_bytes'] / 1024:.0f} KiB) "
                   f"| {verdict(d['du_over_apparent_files'] <= 1.2)} |")
        out.append(f"| demo: < 100 files under objects/ | {d['files']} | {verdict(d['files'] < 100)} |")
    if d.get("exit_code") != 0:
        out.append(f"| demo | FAILED, exit {d.get('exit_code')} | NOT met |")
r = rows.get("repack")
if r:
    ch = r["child"]
    out.append(f"| repack of {r['objects']} loose objects: ≤ 64 B/object beyond mapped files | "
               f"{ch['anon_growth_bytes_per_object']:.0f} B/object anonymous "
               f"({ch['hwm_growth_bytes_per_object']:.0f} with mapped pages), {ch['repack_s']:.1f} s "
               f"| {verdict(ch['anon_growth_bytes_per_object'] <= 64)} |")
print("\n".join(out))
EOF
