//! The appender and the head: commits land in the head in log order, the
//! head is rebuilt from the WAL at open, types are fixed per series.

use std::sync::Arc;

use sydra_engine::series::{SeriesKey, Value};
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options};

fn opts() -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Always,
            segment_size: 64 << 10,
            max_record: 8 << 10,
            ..WalOptions::default()
        },
        ..Options::default()
    }
}

fn key(m: &str, host: &str, f: &str) -> SeriesKey {
    SeriesKey::new(m, [("host".to_string(), host.to_string())], f).unwrap()
}

/// Every series' head points, by key.
fn snapshot(e: &Engine) -> Vec<(SeriesKey, Vec<(i64, Value)>)> {
    e.head_series()
        .unwrap()
        .into_iter()
        .map(|(k, r, _, _)| (k, e.head_points(r).unwrap()))
        .collect()
}

#[test]
fn committed_points_are_in_the_head_and_rebuilt_at_open() {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::create(d.path(), opts()).unwrap();
    let a = e.series(&key("cpu", "a", "usage")).unwrap();
    let b = e.series(&key("cpu", "a", "count")).unwrap();
    let c = e.series(&key("up", "a", "ok")).unwrap();
    assert_eq!(
        e.series(&key("cpu", "a", "usage")).unwrap(),
        a,
        "same key, same ref"
    );
    let mut app = e.appender();
    for t in (0..500).rev() {
        app.append(a, t, Value::F64(t as f64 / 4.0)).unwrap();
    }
    app.append(a, 10, Value::F64(-1.0)).unwrap(); // a later write of t = 10
    app.append(b, 1, Value::I64(i64::MIN)).unwrap();
    app.append(c, 1, Value::Bool(true)).unwrap();
    let done = app.commit().unwrap();
    assert_eq!((done.points, done.new_series), (503, 3));
    let mut app = e.appender();
    app.append(a, 10, Value::F64(-2.0)).unwrap(); // and a later commit's
    app.append(c, 0, Value::Bool(false)).unwrap();
    assert_eq!(app.commit().unwrap().new_series, 0);
    let live = snapshot(&e);
    let usage = &live.iter().find(|(k, _)| k.field() == "usage").unwrap().1;
    assert_eq!(usage.len(), 500);
    assert_eq!(usage[10], (10, Value::F64(-2.0)));
    assert!(usage.windows(2).all(|w| w[0].0 < w[1].0));
    drop(e);

    let e = Engine::open(d.path(), opts()).unwrap();
    assert_eq!(e.open_report().head_series, 3);
    assert_eq!(e.open_report().head_points, 505);
    assert_eq!(snapshot(&e), live);
    // Refs continue after the log's: a new series gets a new number.
    let n = e.series(&key("mem", "a", "free")).unwrap();
    assert!(n.id() > a.id().max(b.id()).max(c.id()));
}

#[test]
fn types_are_fixed_per_series_and_strings_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::create(d.path(), opts()).unwrap();
    let s = e.series(&key("m", "a", "f")).unwrap();
    let mut app = e.appender();
    app.append(s, 1, Value::F64(1.0)).unwrap();
    let err = app.append(s, 2, Value::I64(2)).unwrap_err().to_string();
    assert!(err.contains("integer") && err.contains("float"), "{err}");
    app.commit().unwrap();
    let next = e.wal().next_seq();
    let mut app = e.appender();
    let err = app.append(s, 3, Value::Bool(true)).unwrap_err().to_string();
    assert!(
        err.contains("m,host=a f") && err.contains("boolean"),
        "{err}"
    );
    let err = app
        .append(s, 3, Value::Str("x".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("string"), "{err}");
    assert_eq!(app.commit().unwrap().points, 0);
    assert_eq!(e.wal().next_seq(), next, "a refused point logs nothing");
}

#[test]
fn concurrent_commits_agree_with_the_log_on_the_last_write() {
    let d = tempfile::tempdir().unwrap();
    let e = Arc::new(Engine::create(d.path(), opts()).unwrap());
    let keys: Vec<SeriesKey> = (0..3).map(|i| key("race", &i.to_string(), "v")).collect();
    let threads: Vec<_> = (0..4i64)
        .map(|t| {
            let e = Arc::clone(&e);
            let keys = keys.clone();
            std::thread::spawn(move || {
                for i in 0..150i64 {
                    let mut app = e.appender();
                    for k in &keys {
                        let r = e.series(k).unwrap();
                        // Every thread writes the same timestamps: which
                        // write is last is decided by the log's order.
                        app.append(r, i % 20, Value::I64(t * 1000 + i)).unwrap();
                    }
                    app.commit().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let live = snapshot(&e);
    assert_eq!(live.len(), 3);
    assert!(live.iter().all(|(_, p)| p.len() == 20));
    drop(e);
    let e = Engine::open(d.path(), opts()).unwrap();
    assert_eq!(e.open_report().head_points, 4 * 150 * 3);
    assert_eq!(
        snapshot(&e),
        live,
        "the rebuilt head disagrees with the live one"
    );
}

#[test]
fn checkpoints_and_raw_records_between_commits_lose_nothing() {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::create(d.path(), opts()).unwrap();
    let s = e.series(&key("m", "a", "f")).unwrap();
    for round in 0..6i64 {
        let mut app = e.appender();
        for t in 0..100 {
            app.append(s, round * 100 + t, Value::I64(round)).unwrap();
        }
        app.commit().unwrap();
        e.append(format!("raw record {round}").as_bytes()).unwrap();
        if round % 2 == 1 {
            // Commits the WAL so far as chunks: the head is then rebuilt
            // through them, not only from the live tail.
            e.checkpoint(None, "between commits").unwrap();
        }
    }
    drop(e);
    let e = Engine::open(d.path(), opts()).unwrap();
    let p = e
        .head_points(e.find_series(&key("m", "a", "f")).unwrap().unwrap())
        .unwrap();
    assert_eq!(p.len(), 600);
    assert!(p.iter().all(|(t, v)| *v == Value::I64(t / 100)));
    // The raw records are still replayed as they were.
    let raw: Vec<Vec<u8>> = e
        .replay_head()
        .unwrap()
        .map(|r| r.unwrap().data.to_vec())
        .filter(|d| d.starts_with(b"raw"))
        .collect();
    assert_eq!(raw.len(), 6);
}

#[test]
fn a_head_that_cannot_be_rebuilt_refuses_series_operations_but_the_engine_opens() {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::create(d.path(), opts()).unwrap();
    let mut r = sydra_engine::series::record::SamplesRecord::new();
    r.push(
        42,
        &[1],
        sydra_engine::series::record::ValuesRef::F64(&[1.0]),
    )
    .unwrap();
    // Planted below the engine's check (its raw appends refuse the magic).
    let seq = e.wal().append(&r.finish()).unwrap();
    drop(e);
    // Open still works (fsck, gc and the WAL repair need it) ...
    let e = Engine::open(d.path(), opts()).unwrap();
    let why = e.open_report().head_error.clone().unwrap();
    assert!(
        why.contains(&format!("record {seq}")) && why.contains("42"),
        "{why}"
    );
    // ... but nothing reads or writes over a head that lacks points.
    let err = e.series(&key("m", "a", "f")).unwrap_err().to_string();
    assert!(
        err.contains("could not be rebuilt") && err.contains("42"),
        "{err}"
    );
    assert!(e.head_series().is_err());
    // Raw records still work.
    e.append(b"raw").unwrap();
}

#[test]
fn no_checkpoint_may_apply_series_records_the_head_still_needs() {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::create(d.path(), opts()).unwrap();
    let raw = e.append(b"raw before any series").unwrap();
    // Applying raw records before the first series record is fine.
    e.checkpoint(Some(raw), "raw only").unwrap();
    let s = e.series(&key("m", "a", "f")).unwrap();
    let mut app = e.appender();
    app.append(s, 1, Value::F64(1.0)).unwrap();
    let seqs = app.commit().unwrap().seqs.unwrap();
    let after = e.append(b"raw after").unwrap();
    for applied in [*seqs.start(), *seqs.end(), after] {
        let err = e
            .checkpoint(Some(applied), "too far")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not compacted"), "{err}");
    }
    e.checkpoint(None, "keeps the applied seq").unwrap();
    drop(e);
    // And after a reopen (the floor comes from the rebuild).
    let e = Engine::open(d.path(), opts()).unwrap();
    assert!(e.checkpoint(Some(after), "too far").is_err());
    assert_eq!(
        e.head_points(e.find_series(&key("m", "a", "f")).unwrap().unwrap())
            .unwrap(),
        vec![(1, Value::F64(1.0))]
    );
}

#[test]
fn raw_records_may_not_look_like_series_records() {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::create(d.path(), opts()).unwrap();
    let next = e.wal().next_seq();
    let err = e.append(b"\xffSYT\x01\x02junk").unwrap_err().to_string();
    assert!(err.contains("FF 53 59 54"), "{err}");
    assert!(e.append_batch(&[&b"ok"[..], b"\xffSYTx"]).is_err());
    assert_eq!(e.wal().next_seq(), next, "nothing was appended");
    // Through the CLI too.
    drop(e);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sydra"))
        .arg("--dir")
        .arg(d.path())
        .args(["wal", "append"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"\xffSYT\x01\x02junk\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = Engine::open(d.path(), opts()).unwrap();
    assert!(e.open_report().head_error.is_none());
}

#[test]
fn many_new_series_in_one_commit_are_defined_across_records() {
    let d = tempfile::tempdir().unwrap();
    let small = Options {
        wal: WalOptions {
            max_record: 600,
            ..opts().wal
        },
        ..Options::default()
    };
    let e = Engine::create(d.path(), small.clone()).unwrap();
    let mut app = e.appender();
    for i in 0..50 {
        let s = e
            .series(&key(
                "long_measurement_name",
                &format!("host-{i:04}-{}", "x".repeat(60)),
                "value",
            ))
            .unwrap();
        app.append(s, i, Value::I64(i)).unwrap();
    }
    let done = app.commit().unwrap();
    assert_eq!(done.new_series, 50);
    let seqs = done.seqs.unwrap();
    assert!(
        seqs.end() - seqs.start() >= 5,
        "definitions split: {seqs:?}"
    );
    drop(e);
    let e = Engine::open(d.path(), small).unwrap();
    assert_eq!(e.open_report().head_series, 50);
}

#[test]
fn a_deferred_head_is_rebuilt_before_anything_reads_or_applies_it() {
    let d = tempfile::tempdir().unwrap();
    let e = Engine::create(d.path(), opts()).unwrap();
    let a = e.series(&key("cpu", "a", "usage")).unwrap();
    let mut app = e.appender();
    for t in 0..300 {
        app.append(a, t, Value::F64(t as f64)).unwrap();
    }
    app.commit().unwrap();
    e.checkpoint(None, "the points stay in the head").unwrap();
    e.snapshot(Some("before")).unwrap();
    let live = snapshot(&e);
    let last = e.sync().unwrap();
    drop(e);

    let deferred = Options {
        defer_head: true,
        ..opts()
    };
    // A checkpoint that would apply the series records is refused: the
    // floor it checks is the rebuilt head's, not the empty one of open.
    let e = Engine::open(d.path(), deferred.clone()).unwrap();
    assert_eq!(e.open_report().head_points, 0, "nothing rebuilt at open");
    let err = e.checkpoint(Some(last), "apply everything").unwrap_err();
    assert!(err.to_string().contains("not compacted"), "{err}");
    assert_eq!(snapshot(&e), live);
    drop(e);

    // An as-of read needs no live head; the first write builds it, and
    // the points before it are all still there.
    let e = Engine::open(d.path(), deferred).unwrap();
    let sel = sydra_engine::series::Selector::all();
    let points = |v: &sydra_engine::series::View<'_>| -> usize {
        v.query(&sel, i64::MIN, i64::MAX)
            .unwrap()
            .map(|b| b.unwrap().points.len())
            .sum()
    };
    assert_eq!(points(&e.view(Some("snapshots/before")).unwrap()), 300);
    let mut app = e.appender();
    app.append(a, 1_000, Value::F64(-1.0)).unwrap();
    app.commit().unwrap();
    assert_eq!(points(&e.view(None).unwrap()), 301);
    assert_eq!(e.head_stats().1, 301);
}
