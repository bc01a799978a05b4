//! Tests that need root, a loop device or a tool (STYLE.md 12): run by
//! hand where the capability is missing, such a test prints `SKIPPED
//! <test>: <reason>` and passes; with `CI=true` in the environment it
//! *fails* with the reason, so CI never passes a suite that did not run.
//!
//! Standalone (std only) so every crate's tests can include it with
//! `#[path]`: the durability suites through `support/mod.rs`, the refs
//! crate's git comparison directly.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Whether this is a CI run (`CI=true`, as CI systems and `.ci/run` set it;
/// `1` counts too).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Decide whether `test` runs: `Ok` runs it; `Err(reason)` prints
/// `SKIPPED <test>: <reason>` on stderr (shown with or without
/// `--nocapture`) and returns `false`, except under CI, where it
/// panics with the reason.
pub fn runs(test: &str, capability: Result<(), String>) -> bool {
    let Err(reason) = capability else {
        return true;
    };
    assert!(
        !in_ci(),
        "{test} cannot run here, and CI=true requires every suite to run: {reason} (.ci/run installs what the suites need; see docs/RELIABILITY.md)"
    );
    // Written to the stderr handle itself, not through `eprintln!`, which
    // the test harness captures and shows only for failing tests: a skip
    // must be seen in an ordinary `cargo test` run.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
    false
}

/// `Ok` when running as root (effective uid 0, from `/proc/self/status`,
/// else `id -u`).
pub fn root() -> Result<(), String> {
    let euid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned))
        })
        .or_else(|| {
            Command::new("id")
                .arg("-u")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        });
    match euid.as_deref() {
        Some("0") => Ok(()),
        Some(uid) => Err(format!("needs root (running as uid {uid})")),
        None => Err("needs root (cannot tell the uid)".into()),
    }
}

/// `Ok` when every tool is an executable file on `PATH`; `hint` names the
/// package that provides them.
pub fn tools(names: &[&str], hint: &str) -> Result<(), String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !std::env::split_paths(&path).any(|dir| executable(&dir.join(name))))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{} not on PATH ({hint})", missing.join(", ")))
    }
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `Ok` when `cmd args` runs and exits 0 (a tool that is present but does
/// not work here, e.g. `unshare` without the privilege to make namespaces).
pub fn works(cmd: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(cmd).args(args).stdin(Stdio::null()).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "`{cmd} {}` failed here: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run {cmd}: {e}")),
    }
}
