//! The child appends records with `SyncMode::Always` from several threads
//! and prints `seq thread counter` for each acknowledged append; the parent
//! SIGKILLs it at a random moment, reopens, and checks that every
//! acknowledged record replays with its exact bytes and seqs are contiguous.
//!
//! `SYDRA_CRASH_CYCLES=N cargo test -p sydra-engine --test engine crash`
//! runs N cycles (default 20).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sydra_engine::Engine;
use sydra_engine::wal::SyncMode;

use super::common::{collect, opts};

const CHILD_ENV: &str = "SYDRA_CRASH_CHILD_DIR";

fn payload(thread: u64, counter: u64) -> Vec<u8> {
    format!(
        "t{thread}:c{counter}:{}",
        "p".repeat((counter % 53) as usize)
    )
    .into_bytes()
}

/// Runs only as the child (the parent re-executes this test binary).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let e = Arc::new(Engine::create(&dir, opts(SyncMode::Always, 8192)).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                for c in 0.. {
                    let seq = e.append(&payload(t, c)).unwrap();
                    // Printed only after the append returned: acknowledged.
                    println!("{seq} {t} {c}");
                    if t == 0 && c % 97 == 96 {
                        let applied = e.wal().durable_seq() / 2;
                        let _ = e.checkpoint(Some(applied.max(e.head_applied())), "crash test");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

trait HeadApplied {
    fn head_applied(&self) -> u64;
}

impl HeadApplied for Engine {
    fn head_applied(&self) -> u64 {
        let Ok(Some(h)) = self.head() else { return 0 };
        self.repo()
            .objects()
            .get(&h)
            .ok()
            .and_then(|o| o.commit().ok().and_then(|c| c.meta_u64("wal.applied_seq")))
            .unwrap_or(0)
    }
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let cycles: u64 = std::env::var("SYDRA_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for cycle in 0..cycles {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let run_for = Duration::from_millis(50 + rng % 400);
        let stdout = child.stdout.take().unwrap();
        let start = Instant::now();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Vec<u64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
                if v.len() == 3 {
                    got.push((v[0], payload(v[1], v[2])));
                }
            }
            got
        });
        while start.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for (seq, p) in reader.join().unwrap() {
            acked.insert(seq, p);
        }
        // Reopen as the parent and check every acknowledged record. Records
        // already applied by a checkpoint are not replayed from the head, so
        // read from the first commit ever made (or from scratch).
        let e = Engine::open(dir.path(), opts(SyncMode::Always, 8192)).unwrap();
        let head_applied = e.head_applied();
        let replayed: BTreeMap<u64, Vec<u8>> =
            collect(e.replay_head().unwrap()).into_iter().collect();
        let seqs: Vec<u64> = replayed.keys().copied().collect();
        if let (Some(first), Some(last)) = (seqs.first(), seqs.last()) {
            assert_eq!(
                *first,
                head_applied + 1,
                "cycle {cycle}: replay must start after the applied seq"
            );
            assert_eq!(
                seqs.len() as u64,
                last - first + 1,
                "cycle {cycle}: seqs not contiguous"
            );
        }
        for (seq, p) in acked.range(head_applied + 1..) {
            assert_eq!(
                replayed.get(seq),
                Some(p),
                "cycle {cycle}: acknowledged seq {seq} lost or changed"
            );
        }
        let max_acked = acked.keys().next_back().copied().unwrap_or(0);
        assert!(
            e.wal().next_seq() > max_acked,
            "cycle {cycle}: acknowledged seq {max_acked} beyond the log end"
        );
    }
    eprintln!(
        "crash test: {cycles} SIGKILL cycles, {} acknowledged appends verified",
        acked.len()
    );
    assert!(!acked.is_empty());
}
