//! Compaction from the head: segments hold exactly what was ingested, late
//! points replace a compacted block's segment while history keeps the old
//! one, and the head rebuilt after a reopen holds the rest, once.

use std::collections::BTreeMap;

use super::common::{MINUTE, Rng, SECOND, opts};
use sydra_engine::series::{CompactOptions, SeriesKey, Value};
use sydra_engine::{Engine, Options};

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

/// Compaction levels: a slow series' hour segments merge into a day
/// segment once the day has closed, and days into a 30-day segment; reads,
/// late points, as-of reads of earlier commits, deletes and retention all
/// see the merged segments exactly as the points they hold.
#[test]
fn slow_series_merge_into_day_and_month_segments() {
    const HOUR: i64 = 3600 * SECOND;
    const DAY: i64 = 24 * HOUR;
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        series_block_ns: HOUR,
        ..opts()
    };
    let e = Engine::create(dir.path(), o.clone()).unwrap();
    let mut model: Model = BTreeMap::new();
    let r = e.series(&key(0)).unwrap();
    let dir_of = |e: &Engine, c: sydra_engine::objects::ObjectId| -> Vec<String> {
        let path = sydra_engine::series::segment::series_dir(&key(0).id());
        let repo = e.repo();
        let Ok(t) = repo.resolve(&format!("{c}:{path}")) else {
            return Vec::new();
        };
        let obj = repo.objects().get(&t).unwrap();
        obj.tree()
            .unwrap()
            .entries
            .iter()
            .filter_map(|x| x.name.strip_suffix(".v").map(str::to_string))
            .collect()
    };
    let mut merged = 0;
    let mut history = Vec::new();
    for day in 0..70i64 {
        let mut app = e.appender();
        for h in 0..24 {
            let t = day * DAY + h * HOUR + 30 * MINUTE;
            let v = Value::F64((day * 24 + h) as f64);
            app.append(r, t, v.clone()).unwrap();
            model.entry(0).or_default().insert(t, v);
        }
        app.commit().unwrap();
        let rep = e.compact(CompactOptions::default()).unwrap();
        merged += rep.segments_merged;
        history.push((rep.commit.unwrap(), model.clone()));
        if day % 10 == 9 {
            check(&e, &model, &format!("day {day}"));
        }
    }
    let head = e.head().unwrap().unwrap();
    let names = dir_of(&e, head);
    // Two closed 30-day windows, then days, then the last two days' hours
    // (a window merges in the compaction after the one that last wrote
    // into it): 57 segments instead of 1,680.
    assert!(merged > 1500, "merged {merged}");
    assert!(names.len() < 60, "{} segments: {names:?}", names.len());
    assert!(names.contains(&"19700131T000000Z".to_string()), "{names:?}");
    assert!(names.contains(&"19700101T000000Z".to_string()), "{names:?}");
    check(&e, &model, "after 70 days");
    // A range inside merged segments: pruning must not drop them.
    let sel = sydra_engine::series::Selector::parse("m").unwrap();
    let view = e.view(None).unwrap();
    for (from, to) in [
        (10 * DAY + 5 * HOUR, 12 * DAY),
        (45 * DAY, 45 * DAY + HOUR),
        (0, 70 * DAY),
    ] {
        let got: Vec<(i64, Value)> = view
            .query(&sel, from, to)
            .unwrap()
            .flat_map(|b| b.unwrap().points)
            .collect();
        let want: Vec<(i64, Value)> = model[&0]
            .range(from..=to)
            .map(|(t, v)| (*t, v.clone()))
            .collect();
        assert_eq!(got, want, "[{from}, {to}]");
    }
    drop(view);
    // A diff across commits whose segments were merged in between shows
    // exactly the points added, nothing changed or removed.
    for w in history.windows(2).skip(25).step_by(11) {
        let (a, b) = (w[0].0.to_string(), w[1].0.to_string());
        let d: Vec<_> = e
            .diff_series(&a, &b, &sel)
            .unwrap()
            .map(|x| x.unwrap())
            .collect();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].added.len(), 24, "{a}..{b}");
        assert!(
            d[0].changed.is_empty() && d[0].removed.is_empty(),
            "{a}..{b}: {:?}",
            d[0]
        );
    }
    // Every earlier commit still reads as it was.
    for (c, m) in history.iter().step_by(7) {
        let v = e.view(Some(&c.to_string())).unwrap();
        let want: Vec<(i64, Value)> = m[&0].iter().map(|(t, v)| (*t, v.clone())).collect();
        assert_eq!(v.points(&key(0)).unwrap(), want, "as of {c}");
    }
    // A late point into the first 30-day segment rewrites it.
    let mut app = e.appender();
    app.append(r, 5 * DAY + 7 * MINUTE, Value::F64(-1.0))
        .unwrap();
    app.append(r, 5 * DAY + 30 * MINUTE, Value::F64(-2.0))
        .unwrap();
    app.commit().unwrap();
    model
        .get_mut(&0)
        .unwrap()
        .insert(5 * DAY + 7 * MINUTE, Value::F64(-1.0));
    model
        .get_mut(&0)
        .unwrap()
        .insert(5 * DAY + 30 * MINUTE, Value::F64(-2.0));
    // Before they are compacted, the live view differs from the head
    // commit by exactly those two points, though they sit inside a merged
    // segment whose blobs are the same on both sides.
    let before = e.view(Some(&head.to_string())).unwrap();
    let d: Vec<_> = before
        .diff(e.view(None).unwrap(), &sel)
        .unwrap()
        .map(|x| x.unwrap())
        .collect();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].added, [(5 * DAY + 7 * MINUTE, Value::F64(-1.0))]);
    assert_eq!(d[0].changed.len(), 1, "{:?}", d[0]);
    let rep = e.compact(CompactOptions::default()).unwrap();
    assert_eq!(rep.segments_replaced, 1, "{rep:?}");
    // (The same compaction also merged the windows that had been waiting.)
    assert!(dir_of(&e, rep.commit.unwrap()).len() <= names.len());
    check(&e, &model, "late point into a merged segment");
    // A delete inside it.
    e.delete(&sel, 3 * DAY, 4 * DAY).unwrap();
    let m = model.get_mut(&0).unwrap();
    let gone: Vec<i64> = m.range(3 * DAY..=4 * DAY).map(|p| *p.0).collect();
    assert_eq!(gone.len(), 24);
    for t in gone {
        m.remove(&t);
    }
    check(&e, &model, "delete inside a merged segment");
    // Retention: a horizon inside the first 30-day window keeps it whole;
    // one at its end drops it.
    let rep = e
        .compact(CompactOptions {
            retention_before: Some(20 * DAY),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rep.segments_expired, 0, "{rep:?}");
    check(&e, &model, "retention inside a merged window");
    let rep = e
        .compact(CompactOptions {
            retention_before: Some(30 * DAY),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rep.segments_expired, 1, "{rep:?}");
    model.get_mut(&0).unwrap().retain(|t, _| *t >= 30 * DAY);
    check(&e, &model, "retention past a merged window");
    drop(e);
    let e = Engine::open(dir.path(), o).unwrap();
    check(&e, &model, "reopened");
}

/// A bulk load of a slow series compacts straight into level segments:
/// closed 30-day windows become one segment each, the rest hours.
#[test]
fn a_bulk_load_compacts_straight_into_levels() {
    const HOUR: i64 = 3600 * SECOND;
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(
        dir.path(),
        Options {
            series_block_ns: HOUR,
            ..opts()
        },
    )
    .unwrap();
    let mut model: Model = BTreeMap::new();
    let (slow, fast) = (e.series(&key(0)).unwrap(), e.series(&key(1)).unwrap());
    let mut app = e.appender();
    for h in 0..(65 * 24) {
        let t = h * HOUR + 17 * SECOND;
        app.append(slow, t, Value::F64(h as f64)).unwrap();
        model.entry(0).or_default().insert(t, Value::F64(h as f64));
    }
    // A fast series (a point a second for two days): too many points for a
    // day segment, so it stays in hours.
    for s in 0..(2 * 86_400) {
        app.append(fast, s * SECOND, Value::I64(s)).unwrap();
        model
            .entry(1)
            .or_default()
            .insert(s * SECOND, Value::I64(s));
    }
    app.commit().unwrap();
    let r = e
        .compact(CompactOptions {
            all: true,
            ..Default::default()
        })
        .unwrap();
    check(&e, &model, "bulk load");
    let head = e.head().unwrap().unwrap();
    let count = |k: u64| {
        let path = sydra_engine::series::segment::series_dir(&key(k).id());
        let t = e.repo().resolve(&format!("{head}:{path}")).unwrap();
        let obj = e.repo().objects().get(&t).unwrap();
        obj.tree()
            .unwrap()
            .entries
            .iter()
            .filter(|x| x.name.ends_with(".v"))
            .count()
    };
    // Two 30-day segments, four day segments, then the last day in hours
    // (its window is not closed: the newest point's block ends it).
    assert_eq!(count(0), 2 + 4 + 24, "{r:?}");
    assert_eq!(count(1), 48);
    assert_eq!(r.segments_added as usize, 2 + 4 + 24 + 48);
}
