//! Compaction from the head: segments hold exactly what was ingested, late
//! points replace a compacted block's segment while history keeps the old
//! one, and the head rebuilt after a reopen holds the rest, once.

use std::collections::BTreeMap;

use sydra_engine::series::{CompactOptions, SeriesKey, Value};
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options};

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;

fn opts() -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Never,
            segment_size: 64 << 10,
            max_record: 16 << 10,
            ..WalOptions::default()
        },
        series_block_ns: MINUTE,
        ..Options::default()
    }
}

fn key(i: u64) -> SeriesKey {
    SeriesKey::new("m", [("s".to_string(), i.to_string())], "v").unwrap()
}

type Model = BTreeMap<u64, BTreeMap<i64, Value>>;

fn check(e: &Engine, model: &Model, what: &str) {
    let view = e.view(None).unwrap();
    for (s, points) in model {
        let got = view.points(&key(*s)).unwrap();
        let want: Vec<(i64, Value)> = points.iter().map(|(t, v)| (*t, v.clone())).collect();
        assert_eq!(got, want, "{what}: series {s}");
    }
    assert_eq!(view.series().unwrap().len(), model.len(), "{what}");
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Random appends (in order, late, overwriting, of three types), compactions
/// (to the block boundary and `--all`), checkpoints and reopens, checked
/// against a model after every step; then every compaction commit read
/// `--as-of` against the model as it was when that commit was made.
#[test]
fn compaction_matches_a_model_through_reopens_and_as_of_every_commit() {
    for seed in 1..=4u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Engine::create(dir.path(), opts()).unwrap();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
        let mut model: Model = BTreeMap::new();
        let mut now = 0i64;
        let mut history: Vec<(sydra_engine::objects::ObjectId, Model)> = Vec::new();
        for step in 0..120 {
            match rng.next() % 10 {
                0 => {
                    let all = rng.next().is_multiple_of(3);
                    let r = e
                        .compact(CompactOptions {
                            all,
                            ..Default::default()
                        })
                        .unwrap();
                    if let Some(c) = r.commit {
                        history.push((c, model.clone()));
                    }
                    if all {
                        assert_eq!(r.head_points, 0, "seed {seed} step {step}");
                    }
                }
                1 => {
                    // The rebuild holds exactly the points (as appended,
                    // overwrites included) the head held: none replayed
                    // from segments, none lost.
                    let raw = e.head_stats().1;
                    drop(e);
                    e = Engine::open(dir.path(), opts()).unwrap();
                    assert!(e.open_report().head_error.is_none());
                    assert_eq!(
                        e.head_stats().1,
                        raw,
                        "seed {seed} step {step}: head after reopen"
                    );
                }
                2 => {
                    e.checkpoint(None, "test").unwrap();
                }
                _ => {
                    let mut app = e.appender();
                    for _ in 0..(1 + rng.next() % 40) {
                        let s = rng.next() % 5;
                        let late = rng.next().is_multiple_of(8);
                        let t = if late {
                            now - (rng.next() % 5) as i64 * MINUTE
                                - (rng.next() % 60) as i64 * SECOND
                        } else {
                            now += SECOND * (1 + (rng.next() % 3) as i64);
                            now
                        };
                        let v = match s {
                            0..=2 => Value::F64((rng.next() % 1000) as f64 / 8.0),
                            3 => Value::I64((rng.next() % 100) as i64 - 50),
                            _ => Value::Bool(rng.next().is_multiple_of(2)),
                        };
                        let r = e.series(&key(s)).unwrap();
                        app.append(r, t, v.clone()).unwrap();
                        model.entry(s).or_default().insert(t, v);
                    }
                    app.commit().unwrap();
                }
            }
            check(&e, &model, &format!("seed {seed} step {step}"));
        }
        let r = e
            .compact(CompactOptions {
                all: true,
                ..Default::default()
            })
            .unwrap();
        if let Some(c) = r.commit {
            history.push((c, model.clone()));
        }
        drop(e);
        let e = Engine::open(dir.path(), opts()).unwrap();
        check(&e, &model, &format!("seed {seed} final"));
        let (_, head_points, _) = e.head_stats();
        assert_eq!(head_points, 0, "seed {seed}: --all left points in the head");
        assert!(history.len() > 2, "seed {seed}: too few compactions");
        for (i, (commit, then)) in history.iter().enumerate() {
            let view = e.view(Some(&commit.to_string())).unwrap();
            for (s, points) in then {
                let got = view.points(&key(*s)).unwrap();
                let want: Vec<(i64, Value)> = points.iter().map(|(t, v)| (*t, v.clone())).collect();
                assert_eq!(got, want, "seed {seed}: as of compaction {i}, series {s}");
            }
        }
    }
}

#[test]
fn a_late_point_replaces_its_segment_and_history_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts()).unwrap();
    let s = e.series(&key(1)).unwrap();
    let mut app = e.appender();
    for i in 0..180 {
        app.append(s, i * SECOND, Value::F64(i as f64)).unwrap();
    }
    app.commit().unwrap();
    let first = e.compact(CompactOptions::default()).unwrap();
    assert_eq!(first.points, 120, "two whole minutes move, the third stays");
    assert_eq!(first.segments_added, 2);
    assert_eq!(first.cut, Some(2 * MINUTE));
    let c1 = first.commit.unwrap();

    let mut app = e.appender();
    app.append(s, 30 * SECOND, Value::F64(-1.0)).unwrap();
    app.commit().unwrap();
    let view = e.view(None).unwrap();
    assert_eq!(
        view.points(&key(1)).unwrap()[30],
        (30 * SECOND, Value::F64(-1.0))
    );

    let second = e.compact(CompactOptions::default()).unwrap();
    assert_eq!((second.points, second.segments_replaced), (1, 1));
    let now = e.view(None).unwrap().points(&key(1)).unwrap();
    assert_eq!(now.len(), 180);
    assert_eq!(now[30], (30 * SECOND, Value::F64(-1.0)));
    let then = e
        .view(Some(&c1.to_string()))
        .unwrap()
        .points(&key(1))
        .unwrap();
    assert_eq!(then.len(), 180);
    assert_eq!(then[30], (30 * SECOND, Value::F64(30.0)));
    let segs = e.segments(second.commit.unwrap(), &key(1)).unwrap();
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0].stats.min, Value::F64(-1.0));
    assert_eq!(segs[0].stats.count, 60);
}

#[test]
fn a_checkpoint_after_a_compaction_keeps_its_cut() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts()).unwrap();
    let s = e.series(&key(1)).unwrap();
    let mut app = e.appender();
    for i in 0..150 {
        app.append(s, i * SECOND, Value::I64(i)).unwrap();
    }
    app.commit().unwrap();
    e.compact(CompactOptions::default()).unwrap();
    e.checkpoint(None, "after").unwrap();
    drop(e);
    let e = Engine::open(dir.path(), opts()).unwrap();
    let (_, head_points, _) = e.head_stats();
    assert_eq!(
        head_points, 30,
        "the rebuild replays only what is not in segments"
    );
    assert_eq!(e.view(None).unwrap().points(&key(1)).unwrap().len(), 150);
}

#[test]
fn a_block_that_is_not_whole_seconds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.series_block_ns = 1_500;
    let e = Engine::create(dir.path(), o).unwrap();
    let s = e.series(&key(1)).unwrap();
    let mut app = e.appender();
    app.append(s, 1, Value::I64(1)).unwrap();
    app.commit().unwrap();
    let err = e
        .compact(CompactOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("whole number of seconds"), "{err}");
}

/// The raw records a replay from the head yields.
fn raw_records(e: &Engine) -> Vec<Vec<u8>> {
    let mut replay = e.replay_head().unwrap();
    let mut seen = Vec::new();
    while let Some(rec) = replay.next_record() {
        let (_, p) = rec.unwrap();
        if p.starts_with(b"raw") {
            seen.push(p.to_vec());
        }
    }
    seen
}

/// Raw records (`Engine::append`) the caller has not applied by its own
/// checkpoint stay after the applied seq a compaction writes, so replay
/// from the head still yields them — also after a reopen.
#[test]
fn a_compaction_never_applies_raw_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::create(dir.path(), opts()).unwrap();
    let s = e.series(&key(1)).unwrap();
    let raw = e.append(b"raw one").unwrap();
    let mut app = e.appender();
    for i in 0..150 {
        app.append(s, i * SECOND, Value::I64(i)).unwrap();
    }
    app.commit().unwrap();
    e.append(b"raw two").unwrap();
    for round in 0..2 {
        let r = e
            .compact(CompactOptions {
                all: true,
                ..Default::default()
            })
            .unwrap();
        assert!(
            r.applied_seq < raw,
            "round {round}: applied {} covers raw record {raw}",
            r.applied_seq
        );
        assert_eq!(
            raw_records(&e),
            vec![b"raw one".to_vec(), b"raw two".to_vec()]
        );
        drop(e);
        e = Engine::open(dir.path(), opts()).unwrap();
        let mut app = e.appender();
        let s = e.series(&key(1)).unwrap();
        app.append(s, 1000 * SECOND, Value::I64(-1)).unwrap();
        app.commit().unwrap();
    }
    // Once the caller applies the first, the next compaction moves past it
    // (and stops before the second).
    e.checkpoint(Some(raw), "applied raw one").unwrap();
    let r = e
        .compact(CompactOptions {
            all: true,
            ..Default::default()
        })
        .unwrap();
    assert!(r.applied_seq >= raw, "{}", r.applied_seq);
    assert_eq!(raw_records(&e), vec![b"raw two".to_vec()]);
}

/// `maintain` compacts once a block boundary is crossed, not before, not
/// twice; and everything once the head passes its memory bound.
#[test]
fn maintain_compacts_at_block_boundaries_and_at_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts()).unwrap();
    let s = e.series(&key(1)).unwrap();
    let write = |from: i64, to: i64| {
        let mut app = e.appender();
        for i in from..to {
            app.append(s, i * SECOND, Value::I64(i)).unwrap();
        }
        app.commit().unwrap();
    };
    write(0, 50);
    // The first call sets the cut (and indexes the series); it moves nothing.
    assert_eq!(e.maintain().unwrap().map_or(0, |r| r.points), 0);
    assert!(
        e.maintain().unwrap().is_none(),
        "one block: nothing to move"
    );
    write(50, 70);
    let r = e.maintain().unwrap().expect("a block boundary was crossed");
    assert_eq!((r.points, r.cut), (60, Some(MINUTE)));
    assert!(
        e.maintain().unwrap().is_none(),
        "nothing new before the newest block"
    );
    drop(e);

    let mut o = opts();
    o.series_head_max_bytes = 500;
    let e = Engine::open(dir.path(), o).unwrap();
    assert!(
        e.maintain().unwrap().is_none(),
        "the cut is read back at open"
    );
    let s = e.series(&key(1)).unwrap();
    let mut app = e.appender();
    for i in 70..100 {
        app.append(s, i * SECOND, Value::I64(i)).unwrap();
    }
    app.commit().unwrap();
    assert!(e.head_bytes() > 500, "{}", e.head_bytes());
    let r = e.maintain().unwrap().expect("over the bound");
    assert_eq!((r.cut, r.head_points), (None, 0));
    assert_eq!(e.view(None).unwrap().points(&key(1)).unwrap().len(), 100);
}

/// Retention by data time drops the segments of blocks wholly before the
/// horizon and the head's points before it; the commit before still has
/// them.
#[test]
fn retention_removes_old_blocks_and_history_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts()).unwrap();
    let s = e.series(&key(1)).unwrap();
    let mut app = e.appender();
    for i in 0..240 {
        app.append(s, i * SECOND, Value::I64(i)).unwrap();
    }
    app.commit().unwrap();
    let first = e.compact(CompactOptions::default()).unwrap();
    assert_eq!(first.segments_added, 3);
    // A late point in the first minute, still in the head.
    let mut app = e.appender();
    app.append(s, 5 * SECOND, Value::I64(-5)).unwrap();
    app.commit().unwrap();
    let r = e
        .compact(CompactOptions {
            all: false,
            retention_before: Some(2 * MINUTE),
        })
        .unwrap();
    assert_eq!((r.segments_expired, r.points_expired), (2, 1));
    let now = e.view(None).unwrap().points(&key(1)).unwrap();
    assert_eq!(now.len(), 120);
    assert_eq!(now[0].0, 2 * MINUTE);
    let then = e
        .view(Some(&first.commit.unwrap().to_string()))
        .unwrap()
        .points(&key(1))
        .unwrap();
    assert_eq!(then.len(), 240);
}

/// The series index is one blob (`index/series/all`) while a store has at
/// most 4,096 series, and fans out into `index/series/<aa>` in the
/// compaction that crosses that; every version reads back its own series.
#[test]
fn the_index_is_one_blob_until_it_fans_out() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts()).unwrap();
    let add = |from: u64, to: u64| {
        let mut app = e.appender();
        for i in from..to {
            let r = e.series(&key(i)).unwrap();
            app.append(r, i as i64, Value::F64(i as f64)).unwrap();
        }
        app.commit().unwrap();
        e.compact(CompactOptions {
            all: true,
            ..Default::default()
        })
        .unwrap()
        .commit
        .unwrap()
    };
    let names = |c: sydra_engine::objects::ObjectId| -> Vec<String> {
        let repo = e.repo();
        let t = repo.resolve(&format!("{c}:index/series")).unwrap();
        let obj = repo.objects().get(&t).unwrap();
        obj.tree()
            .unwrap()
            .entries
            .iter()
            .map(|x| x.name.to_string())
            .collect()
    };
    let first = add(0, 3000);
    assert_eq!(names(first), ["all"]);
    let second = add(3000, 4000);
    assert_eq!(names(second), ["all"]);
    let third = add(4000, 5000);
    let n = names(third);
    assert!(n.len() > 200 && !n.contains(&"all".to_string()), "{n:?}");
    let fourth = add(5000, 5001);
    assert!(!names(fourth).contains(&"all".to_string()));
    drop(e);
    let e = Engine::open(dir.path(), opts()).unwrap();
    assert_eq!(e.view(None).unwrap().series().unwrap().len(), 5001);
    for (c, want) in [(first, 3000), (second, 4000), (third, 5000)] {
        let v = e.view(Some(&c.to_string())).unwrap();
        assert_eq!(v.series().unwrap().len(), want);
        assert_eq!(v.indexed_series().unwrap().len(), want);
    }
}
