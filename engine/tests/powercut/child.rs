//! The child: acknowledges writes on stdout, one line each, only after the
//! operation returned success.

use std::io::Write;
use std::sync::Arc;

use sydra_engine::compaction::{ChangeSet, SegmentChange, SegmentData};
use sydra_engine::objects::ObjectId;
use sydra_engine::series::{SeriesKey, Value};
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options};

pub const CHILD_ENV: &str = "SYDRA_POWERCUT_DIR";
/// A data directory (off the cut filesystem) the child fetches from.
pub const SOURCE_ENV: &str = "SYDRA_POWERCUT_SOURCE";

/// Snapshots the parent adds to the source for each cycle.
pub const SOURCE_STEPS: u64 = 8;

/// The source's snapshot `step` of the cycle with `seed`.
pub fn source_snapshot(seed: u64, step: u64) -> String {
    format!("c{seed}-k{step}")
}

/// One acknowledgment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// A WAL record: seq, writer thread, counter (the payload is derived).
    Record(u64, u64, u64),
    /// A commit now on refs/heads/main.
    Commit(ObjectId),
    /// A snapshot ref and its commit.
    Snapshot(String, ObjectId),
    /// Time-series points through the appender: the cycle's seed and the
    /// last timestamp of a commit that returned (every earlier one too).
    Points(u64, i64),
    /// A fetch from the source returned: the remote-tracking ref it set
    /// and its commit.
    Fetch(String, ObjectId),
    /// Between operations.
    Idle,
}

impl Ack {
    pub fn parse(line: &str) -> Option<Ack> {
        let f: Vec<&str> = line.split(' ').collect();
        match f.as_slice() {
            ["R", s, t, c] => Some(Ack::Record(
                s.parse().ok()?,
                t.parse().ok()?,
                c.parse().ok()?,
            )),
            ["C", id] => Some(Ack::Commit(id.parse().ok()?)),
            ["S", name, id] => Some(Ack::Snapshot((*name).to_owned(), id.parse().ok()?)),
            ["P", seed, ts] => Some(Ack::Points(seed.parse().ok()?, ts.parse().ok()?)),
            ["F", name, id] => Some(Ack::Fetch((*name).to_owned(), id.parse().ok()?)),
            ["I"] => Some(Ack::Idle),
            _ => None,
        }
    }
}

pub fn payload(thread: u64, counter: u64) -> Vec<u8> {
    format!(
        "t{thread}c{counter}:{}",
        "w".repeat((counter * 7 % 300) as usize)
    )
    .into_bytes()
}

/// The series the cycle with `seed` writes (one per cycle, so no
/// timestamp is ever written twice).
pub fn series_key(seed: u64) -> SeriesKey {
    SeriesKey::new("powercut", [("cycle".to_string(), seed.to_string())], "v").unwrap()
}

/// The value written at `ts`.
pub fn point_value(ts: i64) -> Value {
    Value::F64(ts as f64 * 0.25 - 1.0)
}

pub fn options() -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Always,
            segment_size: 256 << 10,
            max_record: 4096,
            ..WalOptions::default()
        },
        // Blocks of one second; the appender's timestamps count ns from 0,
        // so --all moves them (a cut before the newest block, rarely).
        series_block_ns: 1_000_000_000,
        ..Options::default()
    }
}

fn seg(series: u64, version: u64) -> SegmentData {
    let bytes = format!("series {series} version {version}").into_bytes();
    super::support::segment(&format!("s{series}"), "h0", &bytes)
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    // If the parent is gone there is nobody to acknowledge to.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub fn run_if_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::env::var("SYDRA_POWERCUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let engine = Arc::new(Engine::create(&dir, options()).unwrap());
    // Fetches (a pack and WAL ranges received, published and a ref moved)
    // happen among the rest, so cuts land in them too.
    let source = std::env::var(SOURCE_ENV).ok();
    if let Some(src) = &source {
        // Already there from an earlier cycle, or added now.
        let _ = sydra_engine::remote::add_remote(engine.repo(), "origin", src);
    }
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let e = Arc::clone(&engine);
            std::thread::spawn(move || {
                for c in 0.. {
                    let p = payload(t, c + seed * 1_000_000);
                    let Ok(seq) = e.append(&p) else { return };
                    say(format!("R {seq} {t} {}", c + seed * 1_000_000));
                }
            })
        })
        .collect();
    // A third writer ingests points through the appender, four per commit.
    let ingest = {
        let e = Arc::clone(&engine);
        std::thread::spawn(move || {
            let Ok(s) = e.series(&series_key(seed)) else {
                return;
            };
            for round in 0i64.. {
                let mut app = e.appender();
                for ts in round * 4..round * 4 + 4 {
                    if app.append(s, ts, point_value(ts)).is_err() {
                        return;
                    }
                }
                if app.commit().is_err() {
                    return;
                }
                say(format!("P {seed} {}", round * 4 + 3));
            }
        })
    };
    let mut version = 0u64;
    for round in 0.. {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let r = if round % 6 == 4 {
            // A time-series compaction: the points move into segments.
            let all = round % 12 == 10;
            engine
                .compact(sydra_engine::series::CompactOptions {
                    all,
                    ..Default::default()
                })
                .map(|c| c.commit)
                .and_then(|c| match c {
                    Some(c) => Ok(c),
                    None => engine
                        .checkpoint(None, "powercut checkpoint")
                        .map(|c| c.commit),
                })
        } else if round % 3 == 2 {
            version += 1;
            let series = version % 5;
            let exists = engine
                .repo()
                .resolve(&format!("main:series/s{series}/raw/h0"))
                .is_ok();
            let ch = if exists {
                SegmentChange::Replace(seg(series, version))
            } else {
                SegmentChange::Add(seg(series, version))
            };
            let set = ChangeSet {
                changes: vec![ch],
                applied_seq: None,
                message: format!("compaction {version}"),
            };
            engine
                .head()
                .and_then(|h| engine.commit_compaction(h, &set))
                .map(|c| c.checkpoint.commit)
        } else {
            engine
                .checkpoint(None, "powercut checkpoint")
                .map(|c| c.commit)
        };
        let Ok(id) = r else { break };
        say(format!("C {id}"));
        // The source's snapshots of this cycle, one every other round:
        // each brings what the one before did not.
        if source.is_some() && round % 2 == 1 && round / 2 < SOURCE_STEPS {
            let snap = source_snapshot(seed, round / 2);
            if sydra_engine::remote::fetch(
                engine.repo(),
                "origin",
                &[format!("refs/snapshots/{snap}")],
            )
            .is_err()
            {
                break;
            }
            let tracking = format!("refs/remotes/origin/snapshots/{snap}");
            let Ok(id) = engine.repo().resolve(&tracking) else {
                break;
            };
            say(format!("F {tracking} {id}"));
        }
        // Packs: a repack (loose objects and every pack into one) and a
        // zero-grace GC (which rewrites packs) now and then, so cuts also
        // land in the middle of those.
        if round % 5 == 1 {
            let all = round % 10 == 1;
            let opts = sydra_engine::objects::RepackOptions {
                all,
                loose: true,
                wait: true,
                ..Default::default()
            };
            if engine.repo().objects().repack(&opts).is_err() {
                break;
            }
        } else if round % 10 == 8 {
            let opts = sydra_engine::gc::GcOptions {
                grace: std::time::Duration::ZERO,
                ..Default::default()
            };
            if engine.gc(&opts).is_err() {
                break;
            }
        }
        if round % 4 == 3 {
            let Ok((name, id)) = engine.snapshot(Some(&format!("c{seed}-r{round}"))) else {
                break;
            };
            say(format!("S {name} {id}"));
        }
        say("I".into());
    }
    for w in writers {
        let _ = w.join();
    }
    let _ = ingest.join();
}
