//! Real power cuts: a small ext4 (and XFS) filesystem on a loop device, a
//! child process that acknowledges WAL appends (`SyncMode::Always`),
//! checkpoints, compaction commits, snapshots and time-series points
//! (through the appender) on it, while it also publishes packs (every
//! checkpoint and compaction is one), fetches from a data directory the
//! parent grows between cycles (a pack and WAL ranges received, a remote
//! ref moved), repacks and collects garbage, and a parent that
//! cuts the power at a random moment with the filesystem shutdown ioctl
//! without log flush (`xfs_io -x -c shutdown`, as fstests does), kills the
//! child, remounts (journal replay), and checks that every acknowledged item
//! survived and the store verifies.
//!
//! Needs root, loop devices (losetup), mkfs.ext4 (e2fsprogs), mkfs.xfs and
//! xfs_io (xfsprogs). Without them it prints why it is skipped, and fails
//! under `CI=true` (`support/capability.rs`). Counts:
//! `SYDRA_POWERCUT_CYCLES=N` (per filesystem, default 3),
//! `SYDRA_POWERCUT_FS=ext4,xfs` (default both).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod child;
mod harness;
#[path = "../support/mod.rs"]
mod support;
mod verify;

#[test]
fn power_cut_child() {
    child::run_if_child();
}

#[test]
fn acknowledged_writes_survive_power_cuts() {
    let cycles: u32 = std::env::var("SYDRA_POWERCUT_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let fss = std::env::var("SYDRA_POWERCUT_FS").unwrap_or_else(|_| "ext4,xfs".into());
    if !support::capability::runs(
        "acknowledged_writes_survive_power_cuts",
        harness::prerequisites(&fss),
    ) {
        return;
    }
    for fs in fss.split(',').filter(|s| !s.is_empty()) {
        let totals = harness::run(fs, cycles);
        eprintln!(
            "power cuts on {fs}: {} cycles, {} acknowledged records, {} commits, {} snapshots, {} appender points, {} fetches verified",
            totals.cycles,
            totals.records,
            totals.commits,
            totals.snapshots,
            totals.points,
            totals.fetches
        );
        assert_eq!(totals.cycles, cycles);
    }
}
