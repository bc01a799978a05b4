//! The child ingests points through the appender (`SyncMode::Always`) from
//! three threads, one series each, and prints `thread last-timestamp` after
//! every commit returns (acknowledged). The parent SIGKILLs it at a random
//! moment, reopens, and checks that the head rebuilt from the WAL holds
//! every acknowledged point exactly once with its exact value, and nothing
//! that was never written. Each cycle's child resumes each series after the
//! last point the log kept, so no timestamp is ever written twice and a
//! point replayed twice would show as a raw count above the distinct one.
//! Thread 0 checkpoints and compacts (blocks of a minute, the timestamps
//! one second apart) now and then, so the rebuild also reads through
//! committed chunks and compaction cuts, and kills land mid-compaction;
//! the check reads segments and head together.
//!
//! `SYDRA_CRASH_CYCLES=N cargo test -p sydra-engine --test series crash`
//! runs N cycles (default 20).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sydra_engine::series::{SeriesKey, Value};
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options};

const CHILD_ENV: &str = "SYDRA_SERIES_CRASH_CHILD_DIR";
const THREADS: u64 = 3;

fn opts() -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Always,
            segment_size: 32 << 10,
            max_record: 4 << 10,
            ..WalOptions::default()
        },
        series_block_ns: 60_000_000_000,
        ..Options::default()
    }
}

const SECOND: i64 = 1_000_000_000;

fn key(t: u64) -> SeriesKey {
    SeriesKey::new("crash", [("thread".to_string(), t.to_string())], "v").unwrap()
}

/// The value written at timestamp `ts` (of any series).
fn value(ts: i64) -> Value {
    Value::F64(ts as f64 * 0.5 - 3.0)
}

/// Runs only as the child (the parent re-executes this test binary).
#[test]
fn series_crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let e = Arc::new(Engine::create(&dir, opts()).unwrap());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                let s = e.series(&key(t)).unwrap();
                let view = e.view(None).unwrap();
                let mut next = view
                    .points(&key(t))
                    .unwrap()
                    .last()
                    .map_or(0, |p| p.0 + SECOND);
                for round in 0u64.. {
                    let mut app = e.appender();
                    for _ in 0..(1 + round % 7) {
                        app.append(s, next, value(next)).unwrap();
                        next += SECOND;
                    }
                    app.commit().unwrap();
                    // Printed only after the commit returned: acknowledged.
                    println!("{t} {}", next - SECOND);
                    if t == 0 && round % 50 == 49 {
                        let _ = e.checkpoint(None, "series crash test");
                    }
                    if t == 1 && round % 40 == 39 {
                        let all = round % 120 == 119;
                        e.compact(sydra_engine::series::CompactOptions {
                            all,
                            ..Default::default()
                        })
                        .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn acknowledged_points_survive_sigkill_exactly_once() {
    let cycles: u64 = std::env::var("SYDRA_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeMap<u64, i64> = BTreeMap::new();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut segments_seen = false;
    for cycle in 0..cycles {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::series_crash_child",
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
        let run_for = Duration::from_millis(80 + rng % 400);
        let stdout = child.stdout.take().unwrap();
        let start = Instant::now();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Vec<i64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
                if v.len() == 2 {
                    got.push((v[0] as u64, v[1]));
                }
            }
            got
        });
        while start.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for (t, last) in reader.join().unwrap() {
            let e = acked.entry(t).or_insert(-1);
            *e = (*e).max(last);
        }
        let e = Engine::open(dir.path(), opts()).unwrap();
        let view = e.view(None).unwrap();
        let mut distinct = 0u64;
        let mut all_points = 0u64;
        for t in 0..THREADS {
            let want = acked.get(&t).copied().unwrap_or(-1);
            let Some(s) = e.find_series(&key(t)).unwrap() else {
                assert_eq!(want, -1, "cycle {cycle}: series {t} lost");
                continue;
            };
            distinct += e.head_points(s).unwrap().len() as u64;
            let points = view.points(&key(t)).unwrap();
            all_points += points.len() as u64;
            let have = points.last().map_or(-1, |p| p.0);
            assert!(
                have >= want,
                "cycle {cycle}: thread {t} acknowledged up to {want}, the head ends at {have}"
            );
            for (i, (ts, v)) in points.iter().enumerate() {
                assert_eq!(
                    *ts,
                    i as i64 * SECOND,
                    "cycle {cycle}: thread {t}: a hole or a stray point"
                );
                assert_eq!(*v, value(*ts), "cycle {cycle}: thread {t} ts {ts}");
            }
        }
        // The query path over every series returns the same points, and an
        // aggregate (answered from segment headers where it can) counts
        // them all.
        let every = sydra_engine::series::Selector::all();
        let queried: u64 = view
            .query(&every, i64::MIN, i64::MAX)
            .unwrap()
            .map(|b| b.unwrap().points.len() as u64)
            .sum();
        assert_eq!(queried, all_points, "cycle {cycle}: query after the crash");
        let counted: i64 = view
            .aggregate(
                &every,
                i64::MIN,
                i64::MAX,
                sydra_engine::series::WHOLE_RANGE,
                sydra_engine::series::Agg::Count,
            )
            .unwrap()
            .map(|r| match r.unwrap().1[..] {
                [(_, sydra_engine::series::Value::I64(n))] => n,
                ref other => panic!("cycle {cycle}: count {other:?}"),
            })
            .sum();
        assert_eq!(
            counted as u64, all_points,
            "cycle {cycle}: count after the crash"
        );
        let (_, raw, _) = e.head_stats();
        segments_seen |= all_points > distinct;
        assert_eq!(
            raw, distinct,
            "cycle {cycle}: a point was applied twice (raw {raw}, distinct {distinct})"
        );
    }
    assert!(
        segments_seen,
        "no cycle read points from segments: compaction never ran"
    );
    let total: i64 = acked.values().map(|v| v / SECOND + 1).sum();
    eprintln!("series crash test: {cycles} SIGKILL cycles, {total} acknowledged points verified");
    assert!(total > 0);
}
