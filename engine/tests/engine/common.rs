use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options, Replay};

pub fn opts(sync: SyncMode, segment_size: u64) -> Options {
    Options {
        wal: WalOptions {
            sync,
            segment_size,
            max_record: 4096.min(segment_size as usize / 2),
            ..WalOptions::default()
        },
        ..Options::default()
    }
}

pub fn open(dir: &Path) -> Engine {
    Engine::create(dir, opts(SyncMode::Never, 64 << 20)).unwrap()
}

pub fn collect(mut r: Replay) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(x) = r.next_record() {
        let (s, d) = x.unwrap();
        out.push((s, d.to_vec()));
    }
    out
}

pub fn payload(i: u64) -> Vec<u8> {
    format!("record-{i}-{}", "x".repeat((i % 37) as usize)).into_bytes()
}

/// `sydra --dir DIR ARGS...` with `stdin` fed from a thread (so a large
/// input never deadlocks against a full stdout pipe) and its output.
pub fn sydra_with_input(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sydra"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    // A child that refuses early closes its end: ignore EPIPE.
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}
