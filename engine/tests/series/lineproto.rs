//! The line-protocol parser checked against a reference model: random
//! lines are generated as data (measurement, tags, fields, time), rendered
//! with every spelling the protocol allows (optional escapes, literal
//! backslashes, boolean spellings, float notations, extra spaces, CRLF,
//! comments and blank lines between them), parsed, and compared with the
//! data. A second property reads the canonical writer's output back.

use proptest::prelude::*;
use sydra_engine::series::lineproto::{self, Precision};
use sydra_engine::series::{SeriesKey, Value};

/// Characters identifiers are drawn from: the ones with meaning in line
/// protocol, a multi-byte one, and plain letters.
const ALPHABET: &[char] = &[
    'a', 'b', 'Z', '0', ' ', ',', '=', '\\', '"', '#', '\t', 'é', '_',
];

fn ident(min: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(ALPHABET), min..8)
        .prop_map(|cs| cs.into_iter().collect())
}

#[derive(Clone, Debug)]
struct ModelLine {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, Value)>,
    /// In the precision's unit.
    timestamp: Option<i64>,
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(Value::F64),
        (-1000.0f64..1000.0).prop_map(Value::F64),
        any::<i64>().prop_map(Value::I64),
        any::<bool>().prop_map(Value::Bool),
        proptest::collection::vec(proptest::sample::select(ALPHABET), 0..8)
            .prop_map(|cs| Value::Str(cs.into_iter().collect())),
    ]
}

fn unique_by_key<T>(mut v: Vec<(String, T)>) -> Vec<(String, T)> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|(k, _)| seen.insert(k.clone()));
    v
}

fn model_line() -> impl Strategy<Value = ModelLine> {
    (
        ident(1).prop_filter("no comment or blank start", |m| !m.starts_with(['#', '\t'])),
        proptest::collection::vec((ident(1), ident(1)), 0..4),
        proptest::collection::vec((ident(1), value()), 1..4),
        proptest::option::of(-1_000_000_000i64..1_000_000_000),
    )
        .prop_map(|(measurement, tags, fields, timestamp)| ModelLine {
            measurement,
            tags: unique_by_key(tags),
            fields: unique_by_key(fields),
            timestamp,
        })
}

/// Render an identifier. `must` are the characters that must be escaped
/// here; an `=` in a measurement may be escaped or not; a backslash may
/// stay literal only where the next character is not one an escape takes.
fn render_ident(out: &mut String, s: &str, measurement: bool, coin: &mut impl FnMut() -> bool) {
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next_escapable = chars
            .get(i + 1)
            .is_none_or(|n| matches!(n, ',' | ' ' | '=' | '\\'));
        let escape = match c {
            ',' | ' ' => true,
            '=' => !measurement || coin(),
            '\\' => next_escapable || coin(),
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
}

fn render_value(out: &mut String, v: &Value, coin: &mut impl FnMut() -> bool) {
    match v {
        Value::F64(f) => {
            let s = if coin() {
                format!("{f:e}")
            } else {
                format!("{f:?}")
            };
            out.push_str(&s);
        }
        Value::I64(i) => out.push_str(&format!("{i}i")),
        Value::Bool(b) => {
            let spellings: &[&str] = if *b {
                &["t", "T", "true", "True", "TRUE"]
            } else {
                &["f", "F", "false", "False", "FALSE"]
            };
            let pick = usize::from(coin()) * 2 + usize::from(coin());
            out.push_str(spellings[pick.min(spellings.len() - 1)]);
        }
        Value::Str(s) => {
            out.push('"');
            let chars: Vec<char> = s.chars().collect();
            for (i, &c) in chars.iter().enumerate() {
                let next_special = chars.get(i + 1).is_none_or(|n| matches!(n, '"' | '\\'));
                let escape = match c {
                    '"' => true,
                    '\\' => next_special || coin(),
                    _ => false,
                };
                if escape {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        _ => unreachable!("the model makes no other values"),
    }
}

fn render(lines: &[ModelLine], coins: &[bool]) -> String {
    let mut i = 0usize;
    let mut coin = || {
        i += 1;
        coins[i % coins.len()]
    };
    let mut out = String::new();
    for l in lines {
        if coin() && coin() {
            out.push_str(if coin() { "# a comment, f=1\n" } else { "  \n" });
        }
        if coin() && coin() {
            out.push_str(" \t");
        }
        render_ident(&mut out, &l.measurement, true, &mut coin);
        for (k, v) in &l.tags {
            out.push(',');
            render_ident(&mut out, k, false, &mut coin);
            out.push('=');
            render_ident(&mut out, v, false, &mut coin);
        }
        out.push_str(if coin() { " " } else { "  " });
        for (n, (k, v)) in l.fields.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            render_ident(&mut out, k, false, &mut coin);
            out.push('=');
            render_value(&mut out, v, &mut coin);
        }
        if let Some(ts) = l.timestamp {
            out.push_str(if coin() { " " } else { "   " });
            out.push_str(&ts.to_string());
        }
        if coin() && coin() {
            out.push(' ');
        }
        out.push_str(if coin() { "\r\n" } else { "\n" });
    }
    out
}

fn precision(p: u8) -> Precision {
    match p % 4 {
        0 => Precision::Nanoseconds,
        1 => Precision::Microseconds,
        2 => Precision::Milliseconds,
        _ => Precision::Seconds,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_spelling_parses_to_the_model(
        lines in proptest::collection::vec(model_line(), 1..6),
        coins in proptest::collection::vec(any::<bool>(), 1..64),
        p in any::<u8>(),
    ) {
        let p = precision(p);
        let text = render(&lines, &coins);
        let parsed: Vec<_> = lineproto::parse(text.as_bytes(), p).collect();
        prop_assert_eq!(parsed.len(), lines.len(), "input:\n{}", text);
        for (got, want) in parsed.into_iter().zip(&lines) {
            let got = match got {
                Ok(l) => l,
                Err(e) => return Err(TestCaseError::fail(format!("{e}\ninput:\n{text}"))),
            };
            prop_assert_eq!(&got.measurement, &want.measurement, "input:\n{}", text);
            let tags: Vec<(String, String)> =
                got.tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            prop_assert_eq!(&tags, &want.tags, "input:\n{}", text);
            prop_assert_eq!(got.fields.len(), want.fields.len());
            for ((gk, gv), (wk, wv)) in got.fields.iter().zip(&want.fields) {
                prop_assert_eq!(gk.as_ref(), wk.as_str());
                prop_assert!(gv.same_bits(wv), "{:?} != {:?}; input:\n{}", gv, wv, text);
            }
            prop_assert_eq!(got.timestamp, want.timestamp.map(|t| t * p.factor()));
        }
    }

    #[test]
    fn canonical_output_reads_back(
        line in model_line(),
        ts in any::<i64>(),
    ) {
        let Ok(key) = SeriesKey::new(line.measurement.clone(), line.tags.clone(), line.fields[0].0.clone()) else {
            // The model may make keys the store refuses (a `_field` tag);
            // those are never written.
            return Ok(());
        };
        let value = line.fields[0].1.clone();
        let mut text = String::new();
        lineproto::write_point(&mut text, &key, ts, &value).unwrap();
        let parsed: Vec<_> = lineproto::parse(text.as_bytes(), Precision::Nanoseconds).collect();
        prop_assert_eq!(parsed.len(), 1, "{}", text);
        let points = parsed[0].as_ref().map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?.points(0).unwrap();
        prop_assert_eq!(&points[0].key, &key, "{}", text);
        prop_assert_eq!(points[0].timestamp, ts);
        prop_assert!(points[0].value.same_bits(&value), "{}", text);
    }

    #[test]
    fn a_known_series_spelling_parses_its_fields_alone_as_the_whole_line_does(
        parts in proptest::collection::vec(
            (0usize..6, "[a-c ,=\\\\\"0-9.ie-]{0,12}"),
            1..40,
        ),
        p in any::<u8>(),
    ) {
        // Few series spellings (some invalid) and random tails, so lines
        // often share a spelling that parsed before.
        const SERIES: [&str; 6] = ["m", "m,a=1", "m\\ x,a=b\\,c", "m,a", "m,a=b=c", "m\\\\"];
        let p = precision(p);
        // The first line makes one spelling known in every case.
        let text: String = std::iter::once("m,a=1 f=1\n".to_string())
            .chain(parts.iter().map(|(s, tail)| format!("{} {tail}\n", SERIES[*s])))
            .collect();
        let mut valid = std::collections::HashSet::new();
        let mut lines = lineproto::parse(text.as_bytes(), p);
        let mut checked = 0;
        while let Some(raw) = lines.next_raw() {
            let raw = raw.unwrap();
            let whole = raw.parse(p);
            if let Ok(l) = &whole {
                prop_assert_eq!(raw.raw_series(), Some(l.raw_series));
                valid.insert(l.raw_series);
            }
            if !raw.raw_series().is_some_and(|s| valid.contains(s)) {
                continue;
            }
            checked += 1;
            let mut fields = Vec::new();
            match (whole, raw.fields_into(p, &mut fields)) {
                (Ok(l), Ok(ts)) => {
                    prop_assert_eq!(l.timestamp, ts);
                    prop_assert_eq!(l.fields.len(), fields.len());
                    for ((a, x), (b, y)) in l.fields.iter().zip(&fields) {
                        prop_assert!(a == b && x.same_bits(y), "{}", raw.text);
                    }
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "{:?}: whole {:?}, split {:?}", raw.text, a, b),
            }
        }
        prop_assert!(checked >= 1);
    }
}
