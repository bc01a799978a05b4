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

const REF_WRITER_ENV: &str = "SYDRA_REF_WRITER";

/// Run by `opening_the_engine_keeps_the_ref_lock_of_a_live_writer` in a
/// child process: a lock-less ref writer (what `sydra update-ref` and
/// sections do) that takes `refs/heads/cas`'s lock and pauses before
/// writing the new value until stdin closes. Env: `dir new old`.
#[test]
#[ignore = "helper run in a child process"]
fn pause_a_ref_update_holding_its_lock() {
    use std::io::{BufRead, Write};

    use sydra_engine::objects::ObjectId;
    use sydra_engine::objects::fault::{self, Fault};
    use sydra_engine::refs::{PreviousValue, RefName};

    let Ok(args) = std::env::var(REF_WRITER_ENV) else {
        return;
    };
    let mut args = args.split(' ');
    let dir = args.next().unwrap().to_owned();
    let new = args.next().unwrap().parse::<ObjectId>().unwrap();
    let old = args.next().unwrap().parse::<ObjectId>().unwrap();
    let repo = sydra_engine::Repository::open(&dir).unwrap();
    fault::arm("refs.lock.write", Fault::Pause);
    let writer = std::thread::spawn(move || {
        repo.refs().update(
            &RefName::new("refs/heads/cas").unwrap(),
            new,
            PreviousValue::MustExistAndMatch(old),
            "child",
        )
    });
    fault::wait_paused("refs.lock.write");
    println!("locked");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    fault::resume("refs.lock.write");
    match writer.join().unwrap() {
        Ok(()) => println!("updated"),
        Err(e) => println!("failed: {e}"),
    }
}

#[test]
fn opening_the_engine_keeps_the_ref_lock_of_a_live_writer() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    use sydra_engine::refs::{PreviousValue, RefName};

    let dir = tempfile::tempdir().unwrap();
    let cas = RefName::new("refs/heads/cas").unwrap();
    let (c1, c2, c3) = {
        let e = open(dir.path());
        let mut ids = Vec::new();
        for i in 0..3 {
            e.append(b"r").unwrap();
            ids.push(e.checkpoint(None, &format!("c{i}")).unwrap().commit);
        }
        e.repo()
            .refs()
            .update(&cas, ids[0], PreviousValue::MustNotExist, "start")
            .unwrap();
        (ids[0], ids[1], ids[2])
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock::pause_a_ref_update_holding_its_lock",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            REF_WRITER_ENV,
            format!("{} {c2} {c1}", dir.path().to_str().unwrap()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().trim().ends_with("locked")));
    let lock = dir.path().join("refs/heads/cas.lock");
    assert!(lock.exists());

    // The writer is mid-transaction: its lock is live, not stale.
    let e = open(dir.path());
    assert!(
        lock.exists(),
        "open removed the lock of a live writer: {:?}",
        e.open_report().stale_locks_removed
    );
    assert!(e.open_report().stale_locks_removed.is_empty());
    assert!(e.open_report().ref_writers_active);
    // So a second compare-and-swap from the same old value is refused...
    let second = e
        .repo()
        .refs()
        .update(&cas, c3, PreviousValue::MustExistAndMatch(c1), "parent");
    assert!(
        matches!(second, Err(sydra_engine::refs::Error::Locked { .. })),
        "{second:?}"
    );
    // ...and the first one lands.
    drop(child.stdin.take());
    assert!(lines.any(|l| l.unwrap().trim().ends_with("updated")));
    assert!(child.wait().unwrap().success());
    assert_eq!(e.repo().refs().resolve(&cas).unwrap(), Some(c2));
    assert!(!lock.exists());
    drop(e);
    // With no writer left, open finds nothing to remove and nothing active.
    let e = open(dir.path());
    assert!(!e.open_report().ref_writers_active);
}
