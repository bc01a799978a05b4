#!/usr/bin/env bash
# The fuzz step of CI (called by .ci/run): build every target once, then
# run each for SYDRA_FUZZ_SECONDS (default 15) from its seeds. Any crash,
# failed assertion, timeout (-timeout), RSS above -rss_limit_mb or single
# allocation above 64 MiB (fuzz/src/alloc_limit.rs) fails the step.
#
# Stable toolchain: no sanitizer (`-s none`). Details and long campaigns:
# docs/RELIABILITY.md, "Fuzzing".
#
#   bash fuzz/ci.sh                       # what CI runs
#   SYDRA_FUZZ_SECONDS=60 bash fuzz/ci.sh # longer
#   bash fuzz/ci.sh wal_recovery chunk    # some targets only
set -euo pipefail
cd "$(dirname "$0")"

secs="${SYDRA_FUZZ_SECONDS:-15}"
flags=(-s none)
libfuzzer=(-max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=512
  -print_final_stats=1)

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# libfuzzer-sys compiles libFuzzer itself, which takes a C++ compiler.
if ! command -v c++ >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq g++ >/dev/null
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz_targets/*.rs; do
    t="${f#fuzz_targets/}"
    targets+=("${t%.rs}")
  done
fi

cargo fuzz build "${flags[@]}"

mkdir -p logs
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="logs/$t.log"
  if cargo fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- "${libfuzzer[@]}" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    printf '%-14s ok   %10s executions in %ss\n' "$t" "${execs:-?}" "$secs"
  else
    printf '%-14s FAILED (log: fuzz/%s; input under fuzz/artifacts/%s/)\n' "$t" "$log" "$t"
    # The panic message (with its assertion text), libFuzzer's verdict and
    # how to reproduce; the whole log stays in fuzz/logs/.
    grep -E -A3 'panicked at|==sydra-fuzz==|ERROR: libFuzzer' "$log" | head -n 40 || true
    grep -E -A2 '^Reproduce with' "$log" || tail -n 20 "$log"
    status=1
  fi
done
exit "$status"
