//! Series diff between versions against a model: random writes (late
//! overwrites on whole seconds, so they collide), compactions, retention,
//! reopens and snapshots, the model recorded at each snapshot; then the
//! diff of random pairs of snapshots compared with the model's, exactly.
//! Plus the pruning (segments decoded only where the versions differ) and
//! `sydra diff --series` end to end.

use std::collections::{BTreeMap, BTreeSet};

use super::common::{MINUTE, Rng, SECOND, compact_all, opts};
use sydra_engine::Engine;
use sydra_engine::series::{CompactOptions, DiffStats, Selector, SeriesDiff, SeriesKey, Value};

use super::cli::sydra;

/// Series `i` of 8: `cpu` or `mem`, host a–d, a float, integer or boolean
/// field.
fn key(i: u64) -> SeriesKey {
    let m = if i.is_multiple_of(2) { "cpu" } else { "mem" };
    let host = ["a", "b", "c", "d"][(i / 2) as usize];
    let f = ["f", "n", "b"][(i % 3) as usize];
    SeriesKey::new(m, [("host".to_string(), host.to_string())], f).unwrap()
}

/// Few distinct values, so a rewrite often keeps the value it overwrites.
fn value(i: u64, r: u64) -> Value {
    match i % 3 {
        0 => Value::F64((r % 5) as f64 / 4.0 - 0.5),
        1 => Value::I64((r % 5) as i64 - 2),
        _ => Value::Bool(r.is_multiple_of(2)),
    }
}

type Model = BTreeMap<u64, BTreeMap<i64, Value>>;

/// What a selector picks, written out by hand.
type Pick = fn(&SeriesKey) -> bool;

const SELECTORS: &[(&str, Pick)] = &[
    ("{}", |_| true),
    ("cpu", |k| k.measurement() == "cpu"),
    (r#"{host=~"a|c"}"#, |k| {
        matches!(k.tag("host"), Some("a" | "c"))
    }),
    (r#"mem{_field!="b"}"#, |k| {
        k.measurement() == "mem" && k.field() != "b"
    }),
];

/// The diff of two models, as the definition says.
fn model_diff(a: &Model, b: &Model, pick: Pick) -> Vec<SeriesDiff> {
    let empty = BTreeMap::new();
    let mut by_key: BTreeMap<SeriesKey, SeriesDiff> = BTreeMap::new();
    let ids: BTreeSet<u64> = a.keys().chain(b.keys()).copied().collect();
    for i in ids {
        let k = key(i);
        if !pick(&k) {
            continue;
        }
        let (pa, pb) = (a.get(&i).unwrap_or(&empty), b.get(&i).unwrap_or(&empty));
        let d = SeriesDiff {
            key: k.clone().into(),
            added: pb
                .iter()
                .filter(|(t, _)| !pa.contains_key(t))
                .map(|(t, v)| (*t, v.clone()))
                .collect(),
            changed: pa
                .iter()
                .filter_map(|(t, v)| {
                    let w = pb.get(t)?;
                    (!v.same_bits(w)).then(|| (*t, v.clone(), w.clone()))
                })
                .collect(),
            removed: pa
                .iter()
                .filter(|(t, _)| !pb.contains_key(t))
                .map(|(t, v)| (*t, v.clone()))
                .collect(),
        };
        if !d.is_empty() {
            by_key.insert(k, d);
        }
    }
    by_key.into_values().collect()
}

fn diff(e: &Engine, a: &str, b: &str, sel: &str) -> (Vec<SeriesDiff>, DiffStats) {
    let sel = Selector::parse(sel).unwrap();
    let mut it = e.diff_series(a, b, &sel).unwrap();
    let got: Vec<_> = it.by_ref().map(|d| d.unwrap()).collect();
    (got, it.stats())
}

#[test]
fn series_diffs_between_random_snapshots_match_the_model_exactly() {
    for seed in 1..=3u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Engine::create(dir.path(), opts()).unwrap();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
        let mut model: Model = BTreeMap::new();
        let mut now = 10 * MINUTE;
        let mut snaps: Vec<(String, Model)> = Vec::new();
        let mut retained = false;
        for step in 0..120 {
            match rng.next() % 16 {
                0..=2 => {
                    e.compact(CompactOptions {
                        all: rng.next().is_multiple_of(2),
                        ..Default::default()
                    })
                    .unwrap();
                }
                3 => {
                    // Retention at a block boundary a few minutes back:
                    // every point before it goes, later ones stay.
                    let h = (now / MINUTE - 3 - (rng.next() % 4) as i64) * MINUTE;
                    e.compact(CompactOptions {
                        all: true,
                        retention_before: Some(h),
                    })
                    .unwrap();
                    for pts in model.values_mut() {
                        pts.retain(|t, _| *t >= h);
                    }
                    retained = true;
                }
                4 => {
                    drop(e);
                    e = Engine::open(dir.path(), opts()).unwrap();
                }
                5 | 6 => {
                    let name = format!("s{step}");
                    e.checkpoint(None, "test").unwrap();
                    e.snapshot(Some(&name)).unwrap();
                    snaps.push((format!("snapshots/{name}"), model.clone()));
                }
                _ => {
                    let mut app = e.appender();
                    for _ in 0..(1 + rng.next() % 20) {
                        let s = rng.next() % 8;
                        let t = if rng.next().is_multiple_of(4) {
                            // Late, on whole seconds: often a timestamp
                            // already written, maybe in a compacted block.
                            now - (rng.next() % 300) as i64 * SECOND
                        } else {
                            now += SECOND * (1 + (rng.next() % 3) as i64);
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
        }
        assert!(snaps.len() >= 6, "seed {seed}: too few snapshots");
        assert!(retained, "seed {seed}: no retention ran");
        // What the rounds covered: changed, added and removed points, and
        // both kinds of pruning.
        let (mut changed, mut added, mut removed) = (0, 0, 0);
        let (mut series_skipped, mut segments_skipped) = (0, 0);
        for round in 0..40 {
            let (ra, ma) = &snaps[(rng.next() % snaps.len() as u64) as usize];
            let (rb, mb) = &snaps[(rng.next() % snaps.len() as u64) as usize];
            let (sel, pick) = SELECTORS[(rng.next() % SELECTORS.len() as u64) as usize];
            let what = format!("seed {seed} round {round}: {ra} → {rb} {sel}");
            let (got, stats) = diff(&e, ra, rb, sel);
            let want = model_diff(ma, mb, pick);
            assert_eq!(got, want, "{what}");
            for d in &got {
                changed += d.changed.len();
                added += d.added.len();
                removed += d.removed.len();
            }
            series_skipped += stats.series_skipped;
            segments_skipped += stats.segments_skipped;
            if ra == rb {
                assert!(got.is_empty(), "{what}");
            }
            assert!(stats.series >= got.len() as u64, "{what}: {stats:?}");
        }
        assert!(
            changed > 0 && added > 0 && removed > 0 && series_skipped > 0 && segments_skipped > 0,
            "seed {seed}: {changed} changed, {added} added, {removed} removed, \
             {series_skipped} series and {segments_skipped} segments skipped"
        );
        // The live view as the new side: the points since the last snapshot.
        let (ra, ma) = snaps.last().unwrap();
        let got: Vec<_> = e
            .view(Some(ra))
            .unwrap()
            .diff(e.view(None).unwrap(), &Selector::all())
            .unwrap()
            .map(|d| d.unwrap())
            .collect();
        assert_eq!(got, model_diff(ma, &model, |_| true), "seed {seed}: live");
    }
}

/// Four series of ten one-minute segments each, compacted: snapshot `a`.
fn ten_blocks_of_four_series(e: &Engine) {
    let mut app = e.appender();
    for s in 0..4 {
        let r = e.series(&key(s)).unwrap();
        for i in 0..600 {
            app.append(r, i * SECOND, value(s, i as u64)).unwrap();
        }
    }
    app.commit().unwrap();
    compact_all(e);
    e.snapshot(Some("a")).unwrap();
}

#[test]
fn a_diff_decodes_only_the_segments_that_differ() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts()).unwrap();
    ten_blocks_of_four_series(&e);
    // b: one late correction of series 0, compacted into its block 2.
    let mut app = e.appender();
    app.append(e.series(&key(0)).unwrap(), 125 * SECOND, Value::F64(9.5))
        .unwrap();
    app.commit().unwrap();
    compact_all(&e);
    e.snapshot(Some("b")).unwrap();
    let (got, st) = diff(&e, "snapshots/a", "snapshots/b", "{}");
    assert_eq!(got.len(), 1);
    assert_eq!(*got[0].key, key(0));
    assert_eq!(
        got[0].changed,
        vec![(125 * SECOND, value(0, 125), Value::F64(9.5))]
    );
    assert!(got[0].added.is_empty() && got[0].removed.is_empty());
    let want = DiffStats {
        series: 4,
        series_skipped: 3,
        segments_skipped: 9,
        segments_decoded: 2,
        head_points: 0,
    };
    assert_eq!(st, want);
    // c: points in the as-of head only (checkpointed, not compacted): a new
    // block of series 1 decodes nothing; a correction of series 2's first
    // block decodes that block on both sides.
    let mut app = e.appender();
    app.append(e.series(&key(1)).unwrap(), 700 * SECOND, value(1, 1))
        .unwrap();
    app.append(e.series(&key(2)).unwrap(), 30 * SECOND, Value::Bool(false))
        .unwrap();
    app.commit().unwrap();
    e.checkpoint(None, "test").unwrap();
    e.snapshot(Some("c")).unwrap();
    let (got, st) = diff(&e, "snapshots/b", "snapshots/c", "{}");
    let summary: Vec<_> = got
        .iter()
        .map(|d| ((*d.key).clone(), d.added.len(), d.changed.len()))
        .collect();
    // Series 2's point at 30 s was `value(2, 30)`, true.
    assert_eq!(summary, vec![(key(2), 0, 1), (key(1), 1, 0)]); // in key order
    let want = DiffStats {
        series: 4,
        series_skipped: 2,
        segments_skipped: 19,
        segments_decoded: 2,
        head_points: 2,
    };
    assert_eq!(st, want);
    // The same commit on both sides: nothing read but the series lists.
    let (got, st) = diff(&e, "snapshots/a", "snapshots/a", "{}");
    assert!(got.is_empty());
    assert_eq!((st.series_skipped, st.segments_decoded), (4, 0));
}

#[test]
fn sydra_diff_series_lists_added_changed_and_removed_points() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("d");
    let ok = |args: &[&str], stdin: Option<&[u8]>| {
        let out = sydra(&data, args, stdin);
        assert!(
            out.status.success(),
            "sydra {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(&["init"], None);
    let one = "cpu,host=a usage=1.5 60\ncpu,host=a usage=2 120\nmem,host=a used=7i 60\n";
    ok(&["write", "--precision", "s", "-"], Some(one.as_bytes()));
    ok(&["compact", "--all"], None);
    ok(&["snapshot", "one"], None);
    // A correction, a new point, a new series.
    let two = "cpu,host=a usage=2.5 120\ncpu,host=a usage=3 180\ndisk,host=a free=t 60\n";
    ok(&["write", "--precision", "s", "-"], Some(two.as_bytes()));
    ok(&["compact", "--all"], None);
    ok(&["snapshot", "two"], None);
    let table = ok(
        &["diff", "snapshots/one", "snapshots/two", "--series"],
        None,
    );
    assert_eq!(
        table,
        "cpu,host=a usage\n\
         ~ 1970-01-01T00:02:00.000000000Z  2 -> 2.5\n\
         + 1970-01-01T00:03:00.000000000Z  3\n\
         disk,host=a free\n\
         + 1970-01-01T00:01:00.000000000Z  true\n"
    );
    // Backwards, with a selector: the new point is removed.
    let table = ok(
        &["diff", "snapshots/two", "snapshots/one", "--series", "cpu"],
        None,
    );
    assert_eq!(
        table,
        "cpu,host=a usage\n\
         ~ 1970-01-01T00:02:00.000000000Z  2.5 -> 2\n\
         - 1970-01-01T00:03:00.000000000Z  3\n"
    );
    let json = ok(
        &[
            "diff",
            "snapshots/one",
            "snapshots/two",
            "--series",
            "{host=\"a\"}",
            "--format",
            "json",
        ],
        None,
    );
    let objs: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        objs,
        vec![
            serde_json::json!({
                "series": "cpu,host=a", "field": "usage",
                "added": [[180_000_000_000i64, 3.0]],
                "changed": [[120_000_000_000i64, 2.0, 2.5]],
                "removed": [],
            }),
            serde_json::json!({
                "series": "disk,host=a", "field": "free",
                "added": [[60_000_000_000i64, true]],
                "changed": [],
                "removed": [],
            }),
        ]
    );
    // --stats on stderr: only the changed segments are decoded.
    let out = sydra(
        &data,
        &[
            "diff",
            "snapshots/one",
            "snapshots/two",
            "--series",
            "--stats",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    // mem is skipped unread; cpu's one-hour block is decoded on both
    // sides, disk's on the new one.
    assert_eq!(
        err.trim_end(),
        "sydra: 2 of 3 series differ (1 skipped by directory id); \
         segments: 3 decoded, 0 skipped by blob ids; 0 head point(s)"
    );
    // Without --series: the tree diff, as before.
    let tree = ok(&["diff", "snapshots/one", "snapshots/two"], None);
    assert!(
        tree.lines()
            .any(|l| l.starts_with("M ") && l.ends_with("00Z.v")),
        "{tree}"
    );
    // A bad selector is a usage error naming the column.
    let out = sydra(
        &data,
        &["diff", "snapshots/one", "snapshots/two", "--series", "cpu{"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("column"));
}
