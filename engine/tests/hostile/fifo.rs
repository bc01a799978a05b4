//! A FIFO planted under any name the engine reads (object, ref, FORMAT,
//! HEAD, WAL segment, reflog, `shallow`, history index) must make the
//! command fail with an error naming the file, never block in `open`
//! waiting for a writer that never comes.

use std::path::{Path, PathBuf};

use sydra_engine::{Engine, Options};

use super::{run_with_deadline, sydra_cmd};

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

/// A data directory with checkpointed history, a reflog, a history index
/// and records still in the WAL.
fn populated() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::create(d.path(), Options::default()).unwrap();
    e.append(b"one").unwrap();
    e.checkpoint(None, "c1").unwrap();
    e.append(b"two").unwrap();
    e.checkpoint(None, "c2").unwrap();
    e.append(b"three").unwrap();
    drop(e);
    // Builds the history index of refs/heads/main.
    let out = run_with_deadline(sydra_cmd(d.path(), &["log", "main@{2100-01-01T00:00:00Z}"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn head_commit(dir: &Path) -> String {
    let out = run_with_deadline(sydra_cmd(dir, &["show-ref"]));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .find(|l| l.ends_with(" refs/heads/main"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}

fn object_path(dir: &Path, hex: &str) -> PathBuf {
    dir.join("objects").join(&hex[..2]).join(&hex[2..])
}

fn first_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

/// Replace `rel` (relative to the data directory; `None` = computed by
/// `which`) by a FIFO and run each command: each must finish in time,
/// fail, and name the file.
fn fifo_fails(which: impl Fn(&Path) -> PathBuf, commands: &[&[&str]]) {
    fifo_reported(which, commands, true)
}

/// [`fifo_fails`], where `must_fail` false accepts a command that reports
/// the FIFO (naming it) and carries on.
fn fifo_reported(which: impl Fn(&Path) -> PathBuf, commands: &[&[&str]], must_fail: bool) {
    for args in commands {
        let d = populated();
        let path = which(d.path());
        mkfifo(&path);
        let out = run_with_deadline(sydra_cmd(d.path(), args));
        // fsck reports problems on stdout, errors go to stderr.
        let err = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !must_fail || !out.status.success(),
            "{args:?} succeeded with a FIFO at {}",
            path.display()
        );
        // Named by its path inside the data directory, not just "main".
        let name = path.strip_prefix(d.path()).unwrap().to_string_lossy();
        assert!(
            err.contains(name.as_ref()),
            "{args:?}: the error does not name {}: {err}",
            path.display()
        );
    }
}

#[test]
fn fifo_in_place_of_an_object_is_an_error_not_a_hang() {
    // The head commit is packed (a checkpoint writes one pack), so a FIFO
    // under its loose name is a stray file: fsck names it, and nothing
    // that reads the commit opens it (or hangs).
    fifo_fails(|d| object_path(d, &head_commit(d)), &[&["fsck"]]);
    for args in [&["log"][..], &["gc", "--grace", "0"]] {
        let d = populated();
        mkfifo(&object_path(d.path(), &head_commit(d.path())));
        let out = run_with_deadline(sydra_cmd(d.path(), args));
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn fifo_in_place_of_a_ref_is_an_error_not_a_hang() {
    fifo_fails(
        |d| d.join("refs/heads/main"),
        &[&["log"], &["fsck"], &["gc"], &["checkpoint"]],
    );
}

#[test]
fn fifo_in_place_of_format_is_an_error_not_a_hang() {
    fifo_fails(
        |d| d.join("FORMAT"),
        // (`checkpoint` opens the engine, which today initialises a
        // directory whose FORMAT does not read back: that is the open-vs-
        // create question, not a hang.)
        &[&["log"], &["fsck"], &["gc"], &["replay"]],
    );
}

#[test]
fn fifo_in_place_of_head_is_an_error_not_a_hang() {
    fifo_fails(|d| d.join("HEAD"), &[&["log", "HEAD"], &["fsck"], &["gc"]]);
}

#[test]
fn fifo_in_place_of_a_wal_segment_is_an_error_not_a_hang() {
    fifo_fails(
        first_segment,
        &[&["replay"], &["checkpoint"], &["fsck"], &["gc"]],
    );
}

#[test]
fn fifo_in_place_of_a_reflog_is_an_error_not_a_hang() {
    let reflog = |d: &Path| d.join("logs/refs/heads/main");
    fifo_fails(reflog, &[&["checkpoint"]]);
    // fsck reads each ref's reflog to compare its end with the ref (this
    // blocked), and reports the non-file reflog as a note, exit 0; gc
    // lists reflogs by type and passes over a non-file.
    fifo_reported(reflog, &[&["fsck"]], false);
    let d = populated();
    mkfifo(&reflog(d.path()));
    let out = run_with_deadline(sydra_cmd(d.path(), &["gc", "--grace", "0"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn fifo_in_place_of_shallow_is_an_error_not_a_hang() {
    fifo_fails(|d| d.join("shallow"), &[&["gc"], &["fsck"]]);
}

#[test]
fn fifo_in_place_of_a_history_index_is_an_error_not_a_hang() {
    fifo_fails(
        |d| d.join("index/history/refs/heads/main"),
        &[&["log", "main@{2100-01-01T00:00:00Z}"]],
    );
}

#[test]
fn fifo_among_unreachable_objects_is_reported_not_waited_on() {
    // The GC sweep and fsck's object pass open every object file, not only
    // reachable ones.
    for (args, says) in [
        (&["gc", "--grace", "0"][..], "corrupt and were kept"),
        (&["fsck"], "not a regular file"),
    ] {
        let d = populated();
        let path = object_path(d.path(), &"ab".repeat(32));
        mkfifo(&path);
        let out = run_with_deadline(sydra_cmd(d.path(), args));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        assert!(
            text.contains(&"ab".repeat(32)) && text.contains(says),
            "{args:?}: {text}"
        );
        assert!(
            path.exists(),
            "{args:?} removed the FIFO it could not verify"
        );
    }
}
