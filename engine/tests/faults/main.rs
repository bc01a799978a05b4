//! Fault injection at every I/O site: for each named fault point and each
//! fault (EIO once, EIO persistently, ENOSPC), run a workload that reaches
//! the point, then reopen and check that nothing acknowledged was lost.
//!
//! Checks, per run:
//! - every failing operation returns an error whose message carries the
//!   injected OS error (or says the engine is poisoned);
//! - after a sync failure the engine is poisoned: the next write fails;
//! - after reopening with faults disarmed: every acknowledged WAL record
//!   replays with its bytes, every acknowledged commit is still on main's
//!   first-parent chain, snapshots are unchanged, acknowledged section
//!   values read back, and every object verifies and every reachable object
//!   exists.
//!
//! And overall: every listed fault point was reached with a fault armed (so
//! new I/O without a listed point, or a point no workload reaches, fails
//! this test), and no point outside the lists was reached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;
mod workload;

use std::collections::BTreeSet;

use sydra_engine::objects::fault::{self, Fault};

fn all_points() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    v.extend_from_slice(sydra_engine::objects::fault::POINTS);
    v.extend_from_slice(sydra_engine::refs::FAULT_POINTS);
    v.extend_from_slice(sydra_engine::gc::FAULT_POINTS);
    v.extend_from_slice(sydra_engine::FAULT_POINTS);
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn every_fault_point_fails_cleanly_and_loses_nothing_acknowledged() {
    let points = all_points();
    let mut not_reached = BTreeSet::new();
    let mut runs = 0;
    let mut injected = 0;
    for &point in &points {
        for fault in [Fault::EioOnce, Fault::EioAlways, Fault::Enospc] {
            let report = workload::run(point, fault);
            runs += 1;
            injected += report.injected;
            if report.injected == 0 {
                not_reached.insert(point);
            }
            let unknown: Vec<_> = report.hits.iter().filter(|h| !points.contains(h)).collect();
            assert!(
                unknown.is_empty(),
                "fault points reached but not listed: {unknown:?}"
            );
        }
    }
    fault::reset();
    eprintln!(
        "fault injection: {} points x 3 faults = {runs} runs, {injected} errors injected",
        points.len()
    );
    assert!(
        not_reached.is_empty(),
        "fault points never reached by the workload: {not_reached:?}"
    );
}

#[test]
fn every_fault_point_in_the_source_is_listed() {
    let listed = all_points();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut missing = Vec::new();
    for dir in ["objects/src", "refs/src", "gc/src", "engine/src"] {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                for part in text.split("point(\"").skip(1) {
                    let name = part.split('"').next().unwrap();
                    if !listed.contains(&name) {
                        missing.push(format!("{name} ({})", p.display()));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fault points in the source but not in a POINTS list: {missing:?}"
    );
}
