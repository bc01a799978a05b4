//! The rule for suites that need root, a loop device or a tool (STYLE.md
//! 12): by hand, SKIPPED with the reason and a pass; under `CI=true`, a
//! failure with the reason. Shown on a child run of this binary, so the
//! parent controls `CI` without touching its own environment.

use std::process::{Command, Output};

use crate::capability;

const CHILD_ENV: &str = "SYDRA_CAPABILITY_CHILD";

#[test]
fn capability_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    assert!(capability::runs("present", Ok(())));
    if capability::runs("absent", Err("frobnicator not on PATH".into())) {
        panic!("a missing capability was reported as present");
    }
}

fn child(ci: Option<&str>) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "skips::capability_child", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env_remove("CI");
    if let Some(v) = ci {
        cmd.env("CI", v);
    }
    cmd.output().unwrap()
}

#[test]
fn a_missing_capability_skips_by_hand_and_fails_under_ci() {
    let by_hand = child(None);
    let err = String::from_utf8_lossy(&by_hand.stderr);
    assert!(by_hand.status.success(), "{err}");
    assert!(
        err.contains("SKIPPED absent: frobnicator not on PATH"),
        "{err}"
    );
    assert!(!err.contains("SKIPPED present"), "{err}");

    for ci in ["true", "1"] {
        let under_ci = child(Some(ci));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&under_ci.stdout),
            String::from_utf8_lossy(&under_ci.stderr)
        );
        assert!(!under_ci.status.success(), "CI={ci} passed: {all}");
        assert!(
            all.contains("absent cannot run here") && all.contains("frobnicator not on PATH"),
            "CI={ci}: {all}"
        );
    }
}
