//! Range queries and aggregates against a brute-force model: random writes
//! (late and overwriting ones included), compactions, snapshots and
//! reopens; then random selectors, ranges, as-of revisions and aggregates,
//! each compared with the model as it was at that revision.

use std::collections::BTreeMap;

use super::common::{MINUTE, Rng, SECOND, compact_all, opts};
use sydra_engine::series::{Agg, CompactOptions, Selector, SeriesKey, Value, bucket_of};
use sydra_engine::{Engine, Options};

/// Series `i` of 12: measurement, optional host tag, field; its type
/// follows from the field and measurement.
fn parts(i: u64) -> (&'static str, Option<&'static str>, &'static str) {
    let m = if i.is_multiple_of(2) { "cpu" } else { "mem" };
    let host = [Some("a"), Some("b"), Some("c"), None][(i / 2 % 4) as usize];
    let f = if i / 8 == 0 { "v" } else { "w" };
    (m, host, f)
}

fn key(i: u64) -> SeriesKey {
    let (m, host, f) = parts(i);
    SeriesKey::new(m, host.map(|h| ("host".to_string(), h.to_string())), f).unwrap()
}

fn value(i: u64, r: u64) -> Value {
    match parts(i) {
        (_, _, "v") => Value::F64((r % 1000) as f64 / 8.0 - 20.0),
        ("cpu", _, _) => Value::I64((r % 100) as i64 - 50),
        _ => Value::Bool(r.is_multiple_of(2)),
    }
}

type Model = BTreeMap<u64, BTreeMap<i64, Value>>;

/// Selectors, each with what it means written out by hand.
type Pick = fn(&str, Option<&str>, &str) -> bool;
const SELECTORS: &[(&str, Pick)] = &[
    ("{}", |_, _, _| true),
    ("cpu", |m, _, _| m == "cpu"),
    (r#"mem{host="a"}"#, |m, h, _| m == "mem" && h == Some("a")),
    (r#"{host!="b"}"#, |_, h, _| h != Some("b")),
    (r#"{host=~"a|c"}"#, |_, h, _| matches!(h, Some("a" | "c"))),
    (r#"{host!~"a"}"#, |_, h, _| h != Some("a")),
    (r#"{host=""}"#, |_, h, _| h.is_none()),
    (r#"{_field="w"}"#, |_, _, f| f == "w"),
    (r#"cpu{_field=~"v|w", host!="c"}"#, |m, h, _| {
        m == "cpu" && h != Some("c")
    }),
    (r#"{__name__=~"m.*", host=~".+"}"#, |m, h, _| {
        m == "mem" && h.is_some()
    }),
];

const AGGS: [Agg; 7] = [
    Agg::Count,
    Agg::Sum,
    Agg::Min,
    Agg::Max,
    Agg::Mean,
    Agg::First,
    Agg::Last,
];

/// The aggregate of `points` (in time order) as the definition says.
fn brute(points: &[(i64, Value)], step: i64, agg: Agg) -> Vec<(i64, Value)> {
    let mut buckets: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for (t, v) in points {
        buckets
            .entry(bucket_of(*t, step))
            .or_default()
            .push(v.clone());
    }
    buckets
        .into_iter()
        .map(|(b, vs)| {
            let f = |v: &Value| match v {
                Value::F64(x) => *x,
                Value::I64(x) => *x as f64,
                Value::Bool(x) => f64::from(u8::from(*x)),
                _ => f64::NAN,
            };
            let v = match agg {
                Agg::Count => Value::I64(vs.len() as i64),
                Agg::First => vs[0].clone(),
                Agg::Last => vs[vs.len() - 1].clone(),
                Agg::Mean => Value::F64(vs.iter().map(f).sum::<f64>() / vs.len() as f64),
                Agg::Sum => match &vs[0] {
                    Value::F64(_) => Value::F64(vs.iter().map(f).sum()),
                    _ => Value::I64(vs.iter().map(f).sum::<f64>() as i64),
                },
                Agg::Min | Agg::Max => {
                    let mut best = vs[0].clone();
                    for v in &vs[1..] {
                        let better = match agg {
                            Agg::Min => f(v) < f(&best),
                            _ => f(v) > f(&best),
                        };
                        if better {
                            best = v.clone();
                        }
                    }
                    best
                }
            };
            (b, v)
        })
        .collect()
}

/// Equal, with float sums and means allowed rounding differences (the
/// engine adds per-segment partial sums).
fn same(a: &Value, b: &Value, agg: Agg) -> bool {
    match (a, b) {
        (Value::F64(x), Value::F64(y)) if matches!(agg, Agg::Sum | Agg::Mean) => {
            (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs()))
        }
        (a, b) => a == b,
    }
}

/// Random queries at `as_of` against `model`.
fn check(e: &Engine, as_of: Option<&str>, model: &Model, rng: &mut Rng, end: i64, what: &str) {
    let view = e.view(as_of).unwrap();
    for q in 0..12 {
        let (sel_text, pick) = SELECTORS[(rng.next() % SELECTORS.len() as u64) as usize];
        let sel = Selector::parse(sel_text).unwrap();
        let (from, to) = match rng.next() % 4 {
            0 => (i64::MIN, i64::MAX),
            _ => {
                let a = (rng.next() % (end as u64 + 1)) as i64;
                let b = (rng.next() % (end as u64 + 1)) as i64;
                (a.min(b), a.max(b))
            }
        };
        let what = format!("{what} query {q}: {sel_text} [{from}, {to}]");
        let want: BTreeMap<SeriesKey, Vec<(i64, Value)>> = model
            .iter()
            .filter(|(i, _)| {
                let (m, h, f) = parts(**i);
                pick(m, h, f)
            })
            .map(|(i, pts)| {
                let p: Vec<_> = pts.range(from..=to).map(|(t, v)| (*t, v.clone())).collect();
                (key(*i), p)
            })
            .filter(|(_, p)| !p.is_empty())
            .collect();
        // Points, reassembled from batches.
        let mut got: BTreeMap<SeriesKey, Vec<(i64, Value)>> = BTreeMap::new();
        let mut last_key: Option<SeriesKey> = None;
        for b in view.query(&sel, from, to).unwrap() {
            let b = b.unwrap();
            assert!(!b.points.is_empty(), "{what}: an empty batch");
            let k = (*b.key).clone();
            if last_key.as_ref() != Some(&k) {
                assert!(
                    last_key.as_ref().is_none_or(|l| *l < k),
                    "{what}: series out of order"
                );
                assert!(!got.contains_key(&k), "{what}: {k} came back twice");
            }
            let pts = got.entry(k.clone()).or_default();
            if let (Some(l), Some(f)) = (pts.last(), b.points.first()) {
                assert!(l.0 < f.0, "{what}: batches of {k} overlap");
            }
            pts.extend(b.points);
            last_key = Some(k);
        }
        assert_eq!(got, want, "{what}");
        // One aggregate per query.
        let agg = AGGS[(rng.next() % 7) as usize];
        let step =
            [SECOND, 7 * SECOND, MINUTE, 150 * SECOND, 3600 * SECOND][(rng.next() % 5) as usize];
        let got: Vec<_> = view
            .aggregate(&sel, from, to, step, agg)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(got.len(), want.len(), "{what}: {agg:?} per {step}");
        for ((k, buckets), (wk, pts)) in got.iter().zip(&want) {
            assert_eq!(**k, *wk, "{what}");
            let w = brute(pts, step, agg);
            assert_eq!(buckets.len(), w.len(), "{what}: {agg:?} per {step} of {k}");
            for (g, w) in buckets.iter().zip(&w) {
                assert!(
                    g.0 == w.0 && same(&g.1, &w.1, agg),
                    "{what}: {agg:?} per {step} of {k}: got {g:?}, want {w:?}"
                );
            }
        }
    }
}

#[test]
fn queries_and_aggregates_match_a_model_at_the_head_and_as_of_every_snapshot() {
    for seed in 1..=3u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Engine::create(dir.path(), opts()).unwrap();
        let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ seed);
        let mut model: Model = BTreeMap::new();
        let mut now = 10 * MINUTE;
        let mut snaps: Vec<(String, Model)> = Vec::new();
        for step in 0..90 {
            match rng.next() % 12 {
                0 | 1 => {
                    let all = rng.next().is_multiple_of(3);
                    e.compact(CompactOptions {
                        all,
                        ..Default::default()
                    })
                    .unwrap();
                }
                2 => {
                    drop(e);
                    e = Engine::open(dir.path(), opts()).unwrap();
                }
                3 => {
                    let name = format!("s{step}");
                    e.checkpoint(None, "test").unwrap();
                    e.snapshot(Some(&name)).unwrap();
                    snaps.push((format!("snapshots/{name}"), model.clone()));
                }
                _ => {
                    let mut app = e.appender();
                    for _ in 0..(1 + rng.next() % 30) {
                        let s = rng.next() % 12;
                        let t = if rng.next().is_multiple_of(6) {
                            // Late, often on a timestamp already written: into an
                            // older (maybe compacted) block.
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
            if step % 6 == 5 {
                check(
                    &e,
                    None,
                    &model,
                    &mut rng,
                    now,
                    &format!("seed {seed} step {step}"),
                );
            }
        }
        check(&e, None, &model, &mut rng, now, &format!("seed {seed} end"));
        assert!(snaps.len() >= 3, "seed {seed}: too few snapshots");
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

#[test]
fn whole_segments_in_one_bucket_are_answered_from_their_headers() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts()).unwrap();
    let r = e.series(&key(0)).unwrap();
    let mut app = e.appender();
    for i in 0..600 {
        app.append(r, i * SECOND, Value::F64(i as f64)).unwrap();
    }
    app.commit().unwrap();
    compact_all(&e);
    let view = e.view(None).unwrap();
    let sel = Selector::parse("cpu").unwrap();
    // Ten one-minute segments; an hour bucket holds them whole.
    let mut b = view
        .aggregate(&sel, i64::MIN, i64::MAX, 3600 * SECOND, Agg::Count)
        .unwrap();
    let (_, got) = b.next().unwrap().unwrap();
    assert_eq!(got, vec![(0, Value::I64(600))]);
    let st = b.stats();
    assert_eq!((st.segments_from_stats, st.segments_decoded), (10, 0));
    // A range cutting two segments: those two are decoded, the rest not.
    let mut b = view
        .aggregate(&sel, 30 * SECOND, 569 * SECOND, 3600 * SECOND, Agg::Sum)
        .unwrap();
    let (_, got) = b.next().unwrap().unwrap();
    assert_eq!(
        got,
        vec![(0, Value::F64((30..=569).map(|i| i as f64).sum()))]
    );
    let st = b.stats();
    assert_eq!((st.segments_from_stats, st.segments_decoded), (8, 2));
    // A point query prunes every segment but one by its block.
    let mut q = view.query(&sel, 125 * SECOND, 125 * SECOND).unwrap();
    let got = q.next().unwrap().unwrap();
    assert_eq!(got.points, vec![(125 * SECOND, Value::F64(125.0))]);
    assert!(q.next().is_none());
    let st = q.stats();
    assert_eq!((st.segments_decoded, st.segments_pruned), (1, 9));
}

/// Rollups: hour blocks of random data (several points a minute, gaps,
/// late overwrites), aggregated at steps that are whole minutes (answered
/// from rollups) and steps that are not, over ranges that straddle block
/// and bucket boundaries, also after a delete cut into an hour, equal the
/// same aggregates over the raw points.
#[test]
fn rollup_aggregates_equal_raw_aggregates() {
    const HOUR: i64 = 60 * MINUTE;
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(
        dir.path(),
        Options {
            series_block_ns: HOUR,
            ..opts()
        },
    )
    .unwrap();
    let mut rng = Rng(0xA076_1D64_78BD_642F);
    let mut model: Model = BTreeMap::new();
    let end = 5 * HOUR;
    for s in [0u64, 8, 9] {
        // Float, integer and boolean series.
        let r = e.series(&key(s)).unwrap();
        let mut app = e.appender();
        let mut t = 0;
        while t < end {
            t += SECOND * (1 + (rng.next() % 20) as i64);
            if rng.next().is_multiple_of(50) {
                t += 10 * MINUTE; // a gap
            }
            let v = value(s, rng.next());
            app.append(r, t, v.clone()).unwrap();
            model.entry(s).or_default().insert(t, v);
        }
        app.commit().unwrap();
    }
    compact_all(&e);
    // Late overwrites in an old hour: its segment and rollup are rewritten.
    let mut app = e.appender();
    for s in [0u64, 8, 9] {
        let r = e.series(&key(s)).unwrap();
        let old: Vec<i64> = model[&s]
            .range(HOUR..2 * HOUR)
            .map(|p| *p.0)
            .take(5)
            .collect();
        for t in old {
            let v = value(s, rng.next());
            app.append(r, t, v.clone()).unwrap();
            model.entry(s).or_default().insert(t, v);
        }
    }
    app.commit().unwrap();
    e.compact(CompactOptions::default()).unwrap();
    // A delete cutting into an hour: its segments and rollups rewritten.
    let (a, b) = (2 * HOUR + 10 * MINUTE + 5 * SECOND, 2 * HOUR + 40 * MINUTE);
    let r = e
        .delete(&Selector::parse(r#"cpu{host="a"}"#).unwrap(), a, b)
        .unwrap();
    assert!(r.segments_rewritten >= 2, "{r:?}");
    for s in [0u64, 8] {
        let m = model.get_mut(&s).unwrap();
        let gone: Vec<i64> = m.range(a..=b).map(|p| *p.0).collect();
        for t in gone {
            m.remove(&t);
        }
    }
    let view = e.view(None).unwrap();
    let sel = Selector::parse("{}").unwrap();
    let mut from_rollups = 0;
    for q in 0..60 {
        let step = [
            MINUTE,
            5 * MINUTE,
            7 * MINUTE,
            HOUR,
            90 * MINUTE,
            24 * HOUR,
            45 * SECOND,
            100 * SECOND,
        ][(rng.next() % 8) as usize];
        let (from, to) = if q % 3 == 0 {
            (i64::MIN, i64::MAX)
        } else {
            let a = (rng.next() % end as u64) as i64;
            let b = (rng.next() % end as u64) as i64;
            (a.min(b), a.max(b))
        };
        for agg in AGGS {
            let mut it = view.aggregate(&sel, from, to, step, agg).unwrap();
            let got: Vec<_> = it.by_ref().map(|r| r.unwrap()).collect();
            from_rollups += it.stats().segments_from_rollups;
            let want: Vec<_> = model
                .iter()
                .map(|(s, pts)| {
                    let p: Vec<_> = pts.range(from..=to).map(|(t, v)| (*t, v.clone())).collect();
                    (key(*s), brute(&p, step, agg))
                })
                .filter(|(_, b)| !b.is_empty())
                .collect();
            assert_eq!(
                got.len(),
                want.len(),
                "{agg:?} per {step} in [{from}, {to}]"
            );
            for ((k, g), (wk, w)) in got.iter().zip(&want) {
                assert_eq!(**k, *wk);
                assert_eq!(
                    g.len(),
                    w.len(),
                    "{agg:?} per {step} of {k} in [{from}, {to}]"
                );
                for (g, w) in g.iter().zip(w) {
                    assert!(
                        g.0 == w.0 && same(&g.1, &w.1, agg),
                        "{agg:?} per {step} of {k} in [{from}, {to}]: got {g:?}, want {w:?}"
                    );
                }
            }
        }
    }
    assert!(
        from_rollups > 100,
        "rollups answered only {from_rollups} segments"
    );
}

/// The ends of time: points at the earliest and latest timestamps accepted
/// are compacted, queried and aggregated at any step without overflow;
/// points beyond them are refused by the appender.
#[test]
fn timestamps_at_the_ends_of_i64_neither_panic_nor_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts()).unwrap();
    let r = e.series(&key(0)).unwrap();
    let earliest = sydra_engine::series::segment::EARLIEST_TIMESTAMP;
    let mut app = e.appender();
    assert!(app.append(r, earliest - 1, Value::F64(0.0)).is_err());
    assert!(app.append(r, i64::MIN, Value::F64(0.0)).is_err());
    let latest = sydra_engine::series::segment::LATEST_TIMESTAMP;
    assert!(app.append(r, latest + 1, Value::F64(0.0)).is_err());
    assert!(app.append(r, i64::MAX, Value::F64(0.0)).is_err());
    for t in [earliest, 0, latest] {
        app.append(r, t, Value::F64(1.0)).unwrap();
    }
    app.commit().unwrap();
    compact_all(&e);
    let view = e.view(None).unwrap();
    let sel = Selector::parse("cpu").unwrap();
    let pts: Vec<i64> = view
        .query(&sel, i64::MIN, i64::MAX)
        .unwrap()
        .flat_map(|b| b.unwrap().points)
        .map(|p| p.0)
        .collect();
    assert_eq!(pts, [earliest, 0, latest]);
    for step in [1, 3, 7 * SECOND, MINUTE, 1 << 62, i64::MAX - 1] {
        let n: i64 = view
            .aggregate(&sel, i64::MIN, i64::MAX, step, Agg::Count)
            .unwrap()
            .flat_map(|r| r.unwrap().1)
            .map(|b| match b.1 {
                Value::I64(n) => n,
                _ => 0,
            })
            .sum();
        assert_eq!(n, 3, "step {step}");
    }
}

#[test]
fn an_empty_range_reads_nothing_and_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts()).unwrap();
    let r = e.series(&key(0)).unwrap();
    let mut app = e.appender();
    for t in [10, 20, 30] {
        app.append(r, t * SECOND, Value::F64(t as f64)).unwrap();
    }
    app.commit().unwrap();
    let sel = Selector::parse("cpu").unwrap();
    // In the head, then compacted into a segment that holds a point
    // strictly between the two ends.
    for compacted in [false, true] {
        if compacted {
            compact_all(&e);
        }
        let view = e.view(None).unwrap();
        let (from, to) = (25 * SECOND, 15 * SECOND);
        assert_eq!(
            view.query(&sel, from, to).unwrap().count(),
            0,
            "compacted: {compacted}"
        );
        let mut it = view.query(&sel, from, to).unwrap();
        assert!(it.next_columns().is_none());
        assert_eq!(
            view.aggregate(&sel, from, to, MINUTE, Agg::Count)
                .unwrap()
                .count(),
            0
        );
        // The same range the right way round holds the point at 20 s.
        let n: usize = view
            .query(&sel, to, from)
            .unwrap()
            .map(|b| b.unwrap().points.len())
            .sum();
        assert_eq!(n, 1);
    }
}

/// A repeated query over compacted data reads its segments from the
/// engine's cache of decoded segments, with the same answer; an as-of
/// read of an older commit whose segment differs is not answered from
/// the newer one; and a cache of 0 bytes decodes every time.
#[test]
fn a_repeated_query_reads_decoded_segments_from_the_cache() {
    for cache in [64 << 20, 0] {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::create(
            dir.path(),
            Options {
                segment_cache_bytes: cache,
                ..opts()
            },
        )
        .unwrap();
        let r = e.series(&key(0)).unwrap();
        let mut app = e.appender();
        for i in 0..300 {
            app.append(r, i * SECOND, Value::F64(i as f64)).unwrap();
        }
        app.commit().unwrap();
        compact_all(&e);
        let first = e.head().unwrap().unwrap();
        let sel = Selector::parse("cpu").unwrap();
        let read = |rev: Option<&str>| {
            let view = e.view(rev).unwrap();
            let mut q = view.query(&sel, 0, 299 * SECOND).unwrap();
            let mut pts = Vec::new();
            for b in q.by_ref() {
                pts.extend(b.unwrap().points);
            }
            (pts, q.stats())
        };
        let (a, st) = read(None);
        assert_eq!(a.len(), 300);
        assert_eq!((st.segments_decoded, st.segments_cached), (5, 0));
        let (b, st) = read(None);
        assert_eq!(b, a);
        let want = if cache > 0 { (0, 5) } else { (5, 0) };
        assert_eq!((st.segments_decoded, st.segments_cached), want);
        // Overwrite one minute's points and compact again: that segment's
        // blobs change, and both versions read back as they were.
        let mut app = e.appender();
        for i in 60..120 {
            app.append(r, i * SECOND, Value::F64(-1.0)).unwrap();
        }
        app.commit().unwrap();
        compact_all(&e);
        let (now, st) = read(None);
        assert!(now[60..120].iter().all(|p| p.1 == Value::F64(-1.0)));
        assert_eq!(now[..60], a[..60]);
        if cache > 0 {
            assert_eq!((st.segments_decoded, st.segments_cached), (1, 4));
        }
        let (then, _) = read(Some(&first.to_hex()));
        assert_eq!(then, a);
    }
}

/// Selection through the tag index: for selectors with equality matchers
/// (one or several, a value no series has, the empty value that selects
/// series without the tag, mixed with regexes and negations, across
/// measurements), the series a view selects are exactly those of all its
/// series the selector matches, live and as of a commit.
#[test]
fn selection_by_tag_values_equals_matching_every_series() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts()).unwrap();
    let mut app = e.appender();
    let mut n = 0;
    for m in ["cpu", "mem", "disk"] {
        for host in ["a", "b", "c", ""] {
            for dc in ["x", "y", ""] {
                let mut tags = Vec::new();
                if !host.is_empty() {
                    tags.push(("host".to_string(), host.to_string()));
                }
                if !dc.is_empty() {
                    tags.push(("dc".to_string(), dc.to_string()));
                }
                let k = SeriesKey::new(m, tags, "v").unwrap();
                let r = e.series(&k).unwrap();
                app.append(r, n * SECOND, Value::F64(n as f64)).unwrap();
                n += 1;
            }
        }
    }
    app.commit().unwrap();
    compact_all(&e);
    let first = e.head().unwrap().unwrap().to_hex();
    // The measurement's tag index is built by this read, and must take in
    // the series made after it.
    let cpu_a_y = Selector::parse(r#"cpu{host="a",dc="y"}"#).unwrap();
    assert_eq!(e.view(None).unwrap().select(&cpu_a_y).unwrap().len(), 1);
    // One more series after that commit, in the head only.
    let k = SeriesKey::new(
        "cpu",
        [
            ("host".to_string(), "a".to_string()),
            ("dc".to_string(), "y".to_string()),
        ],
        "w",
    )
    .unwrap();
    let r = e.series(&k).unwrap();
    let mut app = e.appender();
    app.append(r, 0, Value::F64(1.0)).unwrap();
    app.commit().unwrap();
    let selectors = [
        r#"cpu{host="a"}"#,
        r#"{host="a"}"#,
        r#"{host="a",dc="y"}"#,
        r#"mem{host="b",dc=""}"#,
        r#"{host=""}"#,
        r#"{host="zzz"}"#,
        r#"disk{host="c",dc!="x"}"#,
        r#"{dc="x",host=~"a|b"}"#,
        r#"cpu{host!="a",dc="y"}"#,
        r#"{host="a",host="b"}"#,
    ];
    for (rev, count) in [(None, 37), (Some(first.as_str()), 36)] {
        let view = e.view(rev).unwrap();
        let all = view.series().unwrap();
        assert_eq!(all.len(), count);
        for text in selectors {
            let sel = Selector::parse(text).unwrap();
            let mut want: Vec<SeriesKey> = all
                .iter()
                .filter(|(k, _)| sel.matches(k))
                .map(|(k, _)| k.clone())
                .collect();
            want.sort();
            let got: Vec<SeriesKey> = view
                .select(&sel)
                .unwrap()
                .into_iter()
                .map(|(k, _)| (*k).clone())
                .collect();
            assert_eq!(got, want, "{text} as of {rev:?}");
        }
    }
    // Some selectors pick something, so the comparison is not of empties.
    let view = e.view(None).unwrap();
    let sel = Selector::parse(r#"{host="a",dc="y"}"#).unwrap();
    assert_eq!(view.select(&sel).unwrap().len(), 4);
    assert_eq!(view.select(&cpu_a_y).unwrap().len(), 2);
}
