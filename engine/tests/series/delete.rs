//! Deletes: a model through random writes (late ones included),
//! compactions, deletes of random selectors and ranges, snapshots and
//! reopens, read live and as of every snapshot; the segments a delete
//! rewrites and removes; no deleted point comes back at a reopen; `sydra
//! delete` end to end.

use std::collections::BTreeMap;

use super::cli::sydra;
use super::common::{MINUTE, Rng, SECOND, opts};
use sydra_engine::Engine;
use sydra_engine::series::{CompactOptions, Selector, SeriesKey, Value};

/// Series `i` of 8: measurement, optional host tag; field `v`.
fn parts(i: u64) -> (&'static str, Option<&'static str>) {
    let m = if i.is_multiple_of(2) { "cpu" } else { "mem" };
    let host = [Some("a"), Some("b"), Some("c"), None][(i / 2 % 4) as usize];
    (m, host)
}

fn key(i: u64) -> SeriesKey {
    let (m, host) = parts(i);
    SeriesKey::new(m, host.map(|h| ("host".to_string(), h.to_string())), "v").unwrap()
}

fn value(i: u64, r: u64) -> Value {
    match parts(i).0 {
        "cpu" => Value::F64((r % 1000) as f64 / 8.0),
        _ => Value::I64((r % 100) as i64 - 50),
    }
}

type Model = BTreeMap<u64, BTreeMap<i64, Value>>;

/// Selectors, each with what it means written out by hand.
type Pick = fn(&str, Option<&str>) -> bool;
const SELECTORS: &[(&str, Pick)] = &[
    ("{}", |_, _| true),
    ("cpu", |m, _| m == "cpu"),
    (r#"mem{host="a"}"#, |m, h| m == "mem" && h == Some("a")),
    (r#"{host!="b"}"#, |_, h| h != Some("b")),
    (r#"{host=~"a|c"}"#, |_, h| matches!(h, Some("a" | "c"))),
    (r#"{host=""}"#, |_, h| h.is_none()),
    (r#"nothing"#, |_, _| false),
];

/// Every series' points, and one random range query, against `model`.
fn check(e: &Engine, as_of: Option<&str>, model: &Model, rng: &mut Rng, end: i64, what: &str) {
    let view = e.view(as_of).unwrap();
    for i in 0..8 {
        let want: Vec<(i64, Value)> = model
            .get(&i)
            .map(|p| p.iter().map(|(t, v)| (*t, v.clone())).collect())
            .unwrap_or_default();
        assert_eq!(view.points(&key(i)).unwrap(), want, "{what}: series {i}");
    }
    let (text, pick) = SELECTORS[(rng.next() % SELECTORS.len() as u64) as usize];
    let a = (rng.next() % (end as u64 + 1)) as i64;
    let b = (rng.next() % (end as u64 + 1)) as i64;
    let (from, to) = (a.min(b), a.max(b));
    let want: BTreeMap<SeriesKey, Vec<(i64, Value)>> = model
        .iter()
        .filter(|(i, _)| {
            let (m, h) = parts(**i);
            pick(m, h)
        })
        .map(|(i, p)| {
            let p: Vec<_> = p.range(from..=to).map(|(t, v)| (*t, v.clone())).collect();
            (key(*i), p)
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let mut got: BTreeMap<SeriesKey, Vec<(i64, Value)>> = BTreeMap::new();
    for b in view
        .query(&Selector::parse(text).unwrap(), from, to)
        .unwrap()
    {
        let b = b.unwrap();
        got.entry((*b.key).clone()).or_default().extend(b.points);
    }
    assert_eq!(got, want, "{what}: query {text} [{from}, {to}]");
}

/// Random appends (late ones into compacted blocks, overwrites),
/// compactions, deletes of random selectors and ranges (whole segments,
/// parts of them, head points, nothing), snapshots and reopens, each step
/// checked against a model; every delete's report checked against what the
/// model lost; at the end every snapshot and every delete commit read
/// `--as-of` against the model as it was then.
#[test]
fn deletes_match_a_model_through_compactions_reopens_and_as_of_every_snapshot() {
    for seed in 1..=4u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Engine::create(dir.path(), opts()).unwrap();
        let mut rng = Rng(0xA076_1D64_78BD_642F ^ seed);
        let mut model: Model = BTreeMap::new();
        let mut now = 10 * MINUTE;
        let mut snaps: Vec<(String, Model)> = Vec::new();
        let mut deletes = 0;
        for step in 0..100 {
            match rng.next() % 12 {
                0 => {
                    let all = rng.next().is_multiple_of(3);
                    e.compact(CompactOptions {
                        all,
                        ..Default::default()
                    })
                    .unwrap();
                }
                1 => {
                    drop(e);
                    e = Engine::open(dir.path(), opts()).unwrap();
                    assert!(e.open_report().head_error.is_none());
                }
                2 => {
                    let name = format!("s{step}");
                    e.checkpoint(None, "test").unwrap();
                    e.snapshot(Some(&name)).unwrap();
                    snaps.push((format!("snapshots/{name}"), model.clone()));
                }
                3..=5 => {
                    let (text, pick) = SELECTORS[(rng.next() % SELECTORS.len() as u64) as usize];
                    let (from, to) = match rng.next() % 5 {
                        0 => (i64::MIN, i64::MAX),
                        1 => (i64::MIN, (rng.next() % now as u64) as i64),
                        _ => {
                            // Often a few seconds, sometimes minutes: parts
                            // of segments, whole ones, head points.
                            let a = (rng.next() % now as u64) as i64;
                            let len = if rng.next().is_multiple_of(2) {
                                (rng.next() % 20) as i64 * SECOND
                            } else {
                                (rng.next() % 4) as i64 * MINUTE
                            };
                            (a, a.saturating_add(len))
                        }
                    };
                    let mut gone = 0u64;
                    let mut affected = 0u64;
                    let mut matched = 0u64;
                    for (i, points) in model.iter_mut() {
                        let (m, h) = parts(*i);
                        if !pick(m, h) {
                            continue;
                        }
                        matched += 1;
                        let before = points.len();
                        points.retain(|t, _| *t < from || *t > to);
                        let n = (before - points.len()) as u64;
                        gone += n;
                        affected += u64::from(n > 0);
                    }
                    let what = format!("seed {seed} step {step}: delete {text} [{from}, {to}]");
                    let r = e.delete(&Selector::parse(text).unwrap(), from, to).unwrap();
                    assert_eq!(r.points_deleted, gone, "{what}");
                    assert_eq!(r.series_affected, affected, "{what}");
                    assert_eq!(r.series_matched, matched, "{what}");
                    assert_eq!(r.commit.is_some(), gone > 0, "{what}");
                    if let Some(c) = r.commit {
                        deletes += 1;
                        assert_eq!(r.compaction.head_points, 0, "{what}");
                        snaps.push((c.to_string(), model.clone()));
                    }
                }
                _ => {
                    let mut app = e.appender();
                    for _ in 0..(1 + rng.next() % 30) {
                        let s = rng.next() % 8;
                        let t = if rng.next().is_multiple_of(5) {
                            now - (rng.next() % 480) as i64 * SECOND
                        } else {
                            now += SECOND * (1 + (rng.next() % 4) as i64);
                            now
                        };
                        let v = value(s, rng.next());
                        let r = e.series(&key(s)).unwrap();
                        app.append(r, t, v.clone()).unwrap();
                        model.entry(s).or_default().insert(t, v);
                    }
                    app.commit().unwrap();
                }
            }
            check(
                &e,
                None,
                &model,
                &mut rng,
                now,
                &format!("seed {seed} step {step}"),
            );
        }
        drop(e);
        let e = Engine::open(dir.path(), opts()).unwrap();
        check(&e, None, &model, &mut rng, now, &format!("seed {seed} end"));
        assert!(deletes >= 4, "seed {seed}: too few deletes ({deletes})");
        assert!(snaps.len() >= 8, "seed {seed}: too few snapshots");
        for (rev, m) in &snaps {
            check(
                &e,
                Some(rev),
                m,
                &mut rng,
                now,
                &format!("seed {seed} as of {rev}"),
            );
        }
    }
}

/// Ten one-minute segments; a delete of 0:30–2:29 rewrites the first and
/// third, removes the second (both blobs), and leaves the others as they
/// were; the commit before it still holds every point.
#[test]
fn a_delete_rewrites_the_segments_it_cuts_and_removes_those_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts()).unwrap();
    let s = e.series(&key(0)).unwrap();
    let other = e.series(&key(2)).unwrap();
    let mut app = e.appender();
    for i in 0..600 {
        app.append(s, i * SECOND, Value::F64(i as f64)).unwrap();
        app.append(other, i * SECOND, Value::F64(i as f64)).unwrap();
    }
    app.commit().unwrap();
    let before = e
        .compact(CompactOptions {
            all: true,
            ..Default::default()
        })
        .unwrap()
        .commit
        .unwrap();
    let old = e.segments(before, &key(0)).unwrap();

    let sel = Selector::parse(r#"cpu{host="a"}"#).unwrap();
    let r = e.delete(&sel, 30 * SECOND, 149 * SECOND).unwrap();
    assert_eq!(r.points_deleted, 120);
    assert_eq!((r.series_matched, r.series_affected), (1, 1));
    assert_eq!((r.segments_rewritten, r.segments_removed), (2, 1));
    assert_eq!(r.compaction.points, 0, "the head was empty");
    let c = r.commit.unwrap();

    let segs = e.segments(c, &key(0)).unwrap();
    assert_eq!(segs.len(), 9);
    assert_eq!(
        segs[0].timestamps,
        (0..30).map(|i| i * SECOND).collect::<Vec<_>>()
    );
    assert_eq!(segs[0].stats.max, Value::F64(29.0));
    assert_eq!(segs[1].stats.min_ts, 150 * SECOND);
    assert_eq!(segs[1].stats.count, 30);
    let same = |v: &[sydra_engine::series::segment::Segment]| {
        v.iter()
            .map(|s| (s.timestamps.clone(), s.stats.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        same(&segs[2..]),
        same(&old[3..]),
        "segments outside the range are kept"
    );
    let tree = |path: &str| {
        e.repo()
            .resolve(&format!("{c}:{path}"))
            .map(|_| ())
            .map_err(|_| ())
    };
    let dir0 = sydra_engine::series::segment::series_dir(&key(0).id());
    assert!(tree(&format!("{dir0}/19700101T000100Z.t")).is_err());
    assert!(tree(&format!("{dir0}/19700101T000100Z.v")).is_err());
    assert!(tree(&format!("{dir0}/19700101T000200Z.v")).is_ok());

    let view = e.view(None).unwrap();
    assert_eq!(view.points(&key(0)).unwrap().len(), 480);
    assert_eq!(view.points(&key(2)).unwrap().len(), 600, "not selected");
    let then = e.view(Some(&before.to_string())).unwrap();
    assert_eq!(
        then.points(&key(0)).unwrap().len(),
        600,
        "history keeps them"
    );

    // The commit says what was deleted; a plain checkpoint after it does not
    // carry that on.
    let meta = |id: sydra_engine::objects::ObjectId| {
        let obj = e.repo().objects().get(&id).unwrap();
        let c = obj.commit().unwrap();
        let m: Vec<(String, String)> = c
            .meta
            .iter()
            .filter(|(k, _)| k.starts_with("delete."))
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        (c.message.to_string(), m)
    };
    let (message, m) = meta(c);
    assert_eq!(
        message,
        r#"delete {__name__="cpu", host="a"} from 1970-01-01T00:00:30.000000000Z to 1970-01-01T00:02:29.000000000Z"#
    );
    assert_eq!(
        m,
        [
            ("delete.from".to_string(), (30 * SECOND).to_string()),
            (
                "delete.selector".to_string(),
                r#"{__name__="cpu", host="a"}"#.to_string()
            ),
            ("delete.to".to_string(), (149 * SECOND).to_string()),
        ]
    );
    let next = e.checkpoint(None, "after").unwrap().commit;
    assert!(meta(next).1.is_empty());

    // Deleting what is already gone changes nothing.
    let again = e.delete(&sel, 30 * SECOND, 149 * SECOND).unwrap();
    assert_eq!((again.commit, again.points_deleted), (None, 0));
    assert_eq!(e.head().unwrap(), Some(next));
    // A series left without points keeps its place (and type).
    let r = e.delete(&sel, i64::MIN, i64::MAX).unwrap();
    assert_eq!((r.points_deleted, r.segments_removed), (480, 9));
    let view = e.view(None).unwrap();
    assert!(view.points(&key(0)).unwrap().is_empty());
    assert!(view.series().unwrap().iter().any(|(k, _)| *k == key(0)));
    assert!(e.delete(&sel, 2, 1).is_err(), "from after to");
}

/// Head points (moved by the delete's compaction) and segment points both
/// go; a reopen rebuilds the head from the log and brings none back — also
/// when a raw record nobody applied holds `wal.applied_seq` below the
/// delete's records, so the rebuild replays them.
#[test]
fn deleted_points_do_not_come_back_at_a_reopen() {
    for raw in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Engine::create(dir.path(), opts()).unwrap();
        if raw {
            e.append(b"not a series record").unwrap();
        }
        let s = e.series(&key(1)).unwrap();
        let mut app = e.appender();
        for i in 0..150 {
            app.append(s, i * SECOND, Value::I64(i)).unwrap();
        }
        app.commit().unwrap();
        // The first two minutes into segments, the third stays in the head.
        e.compact(CompactOptions::default()).unwrap();
        let mut app = e.appender();
        app.append(s, 10 * SECOND, Value::I64(-10)).unwrap(); // late
        app.commit().unwrap();
        let r = e
            .delete(&Selector::parse("mem").unwrap(), 5 * SECOND, 139 * SECOND)
            .unwrap();
        assert_eq!(r.points_deleted, 135, "raw {raw}");
        let want: Vec<(i64, Value)> = (0..5)
            .chain(140..150)
            .map(|i| (i * SECOND, Value::I64(i)))
            .collect();
        assert_eq!(e.view(None).unwrap().points(&key(1)).unwrap(), want);
        for _ in 0..2 {
            drop(e);
            e = Engine::open(dir.path(), opts()).unwrap();
            assert!(e.open_report().head_error.is_none());
            assert_eq!(
                e.view(None).unwrap().points(&key(1)).unwrap(),
                want,
                "raw {raw}: after a reopen"
            );
            // A later point in the deleted range is a new write: it stays.
            let mut app = e.appender();
            app.append(s, 100 * SECOND, Value::I64(100)).unwrap();
            app.commit().unwrap();
            e.compact(CompactOptions::default()).unwrap();
            let mut w = want.clone();
            w.insert(5, (100 * SECOND, Value::I64(100)));
            assert_eq!(e.view(None).unwrap().points(&key(1)).unwrap(), w);
            e.delete(&Selector::parse("mem").unwrap(), 100 * SECOND, 100 * SECOND)
                .unwrap();
        }
    }
}

/// `sydra delete` end to end: a range of one host's points goes (compacted
/// and head points alike), the other host and the earlier revision keep
/// theirs; `--json`; `{}` without a range needs `--yes`; a bad selector
/// names its column and `--from` after `--to` is refused, both exit 2.
#[test]
fn sydra_delete_removes_a_range_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let mut lp = String::new();
    for i in 0..10 {
        lp.push_str(&format!("cpu,host=a u={i} {i}\ncpu,host=b u={i} {i}\n"));
    }
    ok(sydra(d, &["init"], None));
    ok(sydra(
        d,
        &["write", "--precision", "s"],
        Some(lp.as_bytes()),
    ));
    ok(sydra(d, &["compact", "--all"], None));
    ok(sydra(d, &["snapshot", "before"], None));
    ok(sydra(
        d,
        &["write", "--precision", "s"],
        Some(b"cpu,host=a u=-1 5\ncpu,host=a u=20 20\n"),
    ));

    let out = ok(sydra(
        d,
        &["delete", r#"cpu{host="a"}"#, "--from", "3", "--to", "6"],
        None,
    ));
    assert!(
        out.starts_with("deleted 4 point(s) of 1 series (1 matched)"),
        "{out}"
    );
    let export = |args: &[&str]| ok(sydra(d, &[&["export"], args].concat(), None));
    let a: String = [0, 1, 2, 7, 8, 9]
        .iter()
        .map(|i| format!("cpu,host=a u={i} {}\n", i * SECOND))
        .collect();
    let b: String = (0..10)
        .map(|i| format!("cpu,host=b u={i} {}\n", i * SECOND))
        .collect();
    assert_eq!(export(&[]), format!("{a}cpu,host=a u=20 20000000000\n{b}"));
    let then = export(&[r#"{host="a"}"#, "--as-of", "snapshots/before"]);
    assert_eq!(then.lines().count(), 10, "{then}");
    assert!(then.contains("u=5 5000000000"), "{then}");
    let log = ok(sydra(d, &["log", "-n", "1", "--json"], None));
    let v: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(
        v["meta"]["delete.selector"],
        r#"{__name__="cpu", host="a"}"#
    );
    assert_eq!(v["meta"]["delete.from"], "3000000000");

    let json = ok(sydra(d, &["delete", "cpu", "--from", "20", "--json"], None));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["points_deleted"], 1);
    assert_eq!(v["series_matched"], 2);
    assert_eq!(v["to"], i64::MAX);
    let none = ok(sydra(d, &["delete", "mem"], None));
    assert!(
        none.starts_with("nothing to delete: 0 series matched"),
        "{none}"
    );

    let refused = sydra(d, &["delete", "{}"], None);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--yes"), "{err}");
    let bad = sydra(d, &["delete", "cpu{host=a}"], None);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("column 10"), "{err}");
    let bad = sydra(d, &["delete", "cpu", "--from", "5", "--to", "4"], None);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--from is after --to"), "{err}");
    assert_eq!(export(&[]).lines().count(), 16, "refusals changed nothing");

    ok(sydra(d, &["delete", "{}", "--yes"], None));
    assert_eq!(export(&[]), "");
    let series = ok(sydra(d, &["series"], None));
    assert_eq!(series.lines().count(), 2, "{series}");
}
