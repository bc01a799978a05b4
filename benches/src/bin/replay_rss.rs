//! Peak resident memory of one replay, measured in a process of its own so
//! the figure is not inflated by criterion or by other benches.
//!
//! Builds the same log as the `wal/replay` bench (`$SYDRA_BENCH_REPLAY_MB`
//! MiB of `$SYDRA_BENCH_REPLAY_RECORD`-byte records, checkpointed), resets
//! the kernel's peak-RSS counter (`VmHWM`) through `/proc/self/clear_refs`,
//! replays everything from the head, and prints one JSON object (also
//! written to `<target dir>/sydra-bench-results/wal_replay_rss.json`).
//! Mapped segment pages count towards RSS, so the peak includes the one
//! segment replay keeps mapped at a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use sydra_benches::{
    build_replay_fixture, proc_status_kib, replay_all, replay_mb, replay_record_len,
    reset_peak_rss, write_result,
};

fn main() {
    let mb = replay_mb();
    let record = replay_record_len();
    let fx = build_replay_fixture(mb, record);
    let peak_build = proc_status_kib("VmHWM").unwrap_or(0);
    let reset = reset_peak_rss();
    let rss_before = proc_status_kib("VmRSS").unwrap_or(0);
    let start = Instant::now();
    let (records, bytes) = replay_all(&fx.engine);
    let seconds = start.elapsed().as_secs_f64();
    let peak_replay = proc_status_kib("VmHWM").unwrap_or(0);
    assert_eq!((records, bytes), (fx.records, fx.payload_bytes));
    let json = format!(
        "{{\"mib\": {mb}, \"record_bytes\": {record}, \"records\": {records}, \
         \"framed_bytes\": {}, \"segments\": {}, \"rss_before_kib\": {rss_before}, \
         \"peak_rss_build_kib\": {peak_build}, \"peak_rss_replay_kib\": {peak_replay}, \
         \"peak_reset\": {reset}, \"replay_seconds\": {seconds:.4}}}",
        fx.framed_bytes,
        fx.segments.len()
    );
    println!("{json}");
    write_result("wal_replay_rss", &format!("{json}\n"));
}
