use std::process::Command;

use sydra_engine::{Engine, Error};

use super::common::open;

#[test]
fn a_second_open_of_a_locked_directory_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let err = Engine::open(dir.path(), Default::default()).unwrap_err();
    assert!(
        matches!(err, Error::Locked { pid: Some(p), .. } if p == std::process::id()),
        "{err}"
    );
    assert!(
        err.to_string().contains("locked by another process"),
        "{err}"
    );
    drop(e);
    Engine::open(dir.path(), Default::default()).unwrap();
}

#[test]
fn a_second_writer_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _e = open(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_sydra"))
        .args(["--dir", dir.path().to_str().unwrap(), "checkpoint"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("locked by another process")
            && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
}
