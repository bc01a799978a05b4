use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use sydra_gc::{Error, GcLock, NoProgress, Session, collect};

use super::common::{Fixture, eager};

#[test]
fn a_second_gc_in_the_same_process_is_refused() {
    let f = Fixture::new();
    let s = Session::begin(&f.refs).unwrap();
    let e = Session::begin(&f.refs).unwrap_err();
    assert!(e.is_running(), "{e}");
    assert!(e.to_string().contains("already running"), "{e}");
    assert!(
        matches!(GcLock::acquire(f.dir.path()), Err(Error::Running { pid: Some(p), .. }) if p == std::process::id())
    );
    assert!(matches!(
        collect(&f.refs, &eager(), &NoProgress),
        Err(Error::Running { .. })
    ));
    drop(s);
    collect(&f.refs, &eager(), &NoProgress).unwrap();
}

/// Run by `a_gc_in_another_process_is_refused` in a child process: hold
/// the GC lock of `$SYDRA_GC_LOCK_DIR` until stdin closes.
#[test]
#[ignore = "helper run in a child process"]
fn hold_the_gc_lock_in_a_child() {
    let Ok(dir) = std::env::var("SYDRA_GC_LOCK_DIR") else {
        return;
    };
    let _lock = GcLock::acquire(std::path::Path::new(&dir)).unwrap();
    println!("locked");
    std::io::stdout().flush().unwrap();
    let mut s = String::new();
    let _ = std::io::stdin().read_line(&mut s);
}

#[test]
fn a_gc_in_another_process_is_refused() {
    let f = Fixture::new();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock::hold_the_gc_lock_in_a_child",
            "--ignored",
            "--nocapture",
        ])
        .env("SYDRA_GC_LOCK_DIR", f.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().trim() == "locked"));
    let e = collect(&f.refs, &eager(), &NoProgress).unwrap_err();
    assert!(
        matches!(e, Error::Running { pid: Some(p), .. } if p == child.id()),
        "{e}"
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    collect(&f.refs, &eager(), &NoProgress).unwrap();
}
