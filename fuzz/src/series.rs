//! Time-series decoders: segment manifests and the column codecs.

use sydra_engine::codec::{decode_f64, decode_timestamps, encode_f64, encode_timestamps};
use sydra_engine::manifest::SegmentManifest;

/// A segment manifest: accepted input re-encodes to itself and passes
/// the encoder's own validation.
pub fn manifest(data: &[u8]) {
    let Ok(m) = SegmentManifest::decode(data) else {
        return;
    };
    let again = m
        .encode()
        .unwrap_or_else(|e| panic!("decoded manifest does not encode: {e}"));
    assert_eq!(again, data, "manifest round trip");
    assert!(m.min_ts <= m.max_ts);
    for c in &m.columns {
        assert_eq!(c.value_count.checked_add(c.null_count), Some(m.row_count));
    }
}

/// Column codecs: both decoders on the same bytes; accepted input
/// re-encodes to itself.
pub fn codecs(data: &[u8]) {
    if let Ok(ts) = decode_timestamps(data) {
        assert_eq!(encode_timestamps(&ts), data, "delta-of-delta round trip");
    }
    if let Ok(v) = decode_f64(data) {
        assert_eq!(encode_f64(&v), data, "Gorilla round trip");
    }
}

/// The line-protocol parser on any bytes, at every precision: no panic;
/// every point of a line it accepts (with a key the store can hold) is
/// written canonically and reads back to the same key, time and value bits.
pub fn line_protocol(data: &[u8]) {
    use sydra_engine::series::lineproto::{self, Precision};
    let precision = match data.first().map(|b| b % 4) {
        Some(1) => Precision::Microseconds,
        Some(2) => Precision::Milliseconds,
        Some(3) => Precision::Seconds,
        _ => Precision::Nanoseconds,
    };
    // The split a writer's cache relies on: once a series spelling has
    // parsed, parsing only the fields of a later line spelled the same
    // gives exactly what parsing it whole gives, error or not.
    let mut valid = std::collections::HashSet::new();
    let mut raw_lines = lineproto::parse(data, precision);
    while let Some(Ok(raw)) = raw_lines.next_raw() {
        let whole = raw.parse(precision);
        if let Ok(l) = &whole {
            assert_eq!(raw.raw_series(), Some(l.raw_series), "{:?}", raw.text);
            valid.insert(l.raw_series);
        }
        if raw.raw_series().is_some_and(|s| valid.contains(s)) {
            let mut fields = Vec::new();
            let split = raw.fields_into(precision, &mut fields);
            match (&whole, split) {
                (Ok(l), Ok(ts)) => {
                    assert_eq!(l.timestamp, ts, "{:?}", raw.text);
                    assert_eq!(l.fields.len(), fields.len(), "{:?}", raw.text);
                    for ((a, x), (b, y)) in l.fields.iter().zip(&fields) {
                        assert!(a == b && x.same_bits(y), "{:?}", raw.text);
                    }
                }
                (Err(a), Err(b)) => assert_eq!(a, &b, "{:?}", raw.text),
                (a, b) => panic!("{:?}: whole {a:?}, split {b:?}", raw.text),
            }
        }
    }
    for line in lineproto::parse(data, precision) {
        let Ok(line) = line else { continue };
        assert!(
            !line.fields.is_empty(),
            "a line without fields was accepted"
        );
        let Ok(points) = line.points(7) else { continue };
        for p in points {
            let mut text = String::new();
            if lineproto::write_point(&mut text, &p.key, p.timestamp, &p.value).is_err() {
                continue;
            }
            let mut again = lineproto::parse(text.as_bytes(), Precision::Nanoseconds);
            let back = match again.next() {
                Some(Ok(l)) => l,
                other => panic!("canonical line {text:?} does not parse: {other:?}"),
            };
            assert!(
                again.next().is_none(),
                "canonical line {text:?} is two lines"
            );
            let back = back
                .points(0)
                .unwrap_or_else(|e| panic!("canonical line {text:?}: {e}"));
            assert_eq!(back.len(), 1, "{text:?}");
            assert_eq!(back[0].key, p.key, "{text:?}");
            assert_eq!(back[0].timestamp, p.timestamp, "{text:?}");
            assert!(back[0].value.same_bits(&p.value), "{text:?}");
        }
    }
}

/// The series column codecs (`series::codec`): every decoder on the same
/// bytes; what one accepts re-encodes to a column that decodes to the same
/// values (bit for bit for floats); integer columns re-encode no longer
/// (their mode and widths are chosen by size; a timestamp column's nominal
/// interval is the median delta, not the smallest coding, so it may grow).
pub fn series_codecs(data: &[u8]) {
    use sydra_engine::series::codec as c;
    if let Ok(ts) = c::decode_timestamps(data) {
        let again = c::encode_timestamps(&ts);
        assert_eq!(c::decode_timestamps(&again).as_ref(), Ok(&ts));
    }
    if let Ok(v) = c::decode_i64(data) {
        let again = c::encode_i64(&v);
        assert!(again.len() <= data.len(), "integers re-encode longer");
        assert_eq!(c::decode_i64(&again).as_ref(), Ok(&v));
    }
    if let Ok(v) = c::decode_f64(data) {
        let again = c::encode_f64(&v);
        let back = c::decode_f64(&again).unwrap_or_else(|e| panic!("re-encoded floats: {e}"));
        assert!(
            back.iter()
                .map(|f| f.to_bits())
                .eq(v.iter().map(|f| f.to_bits()))
        );
    }
    if let Ok(v) = c::decode_bool(data) {
        let again = c::encode_bool(&v);
        assert_eq!(again, data, "boolean runs are canonical");
    }
}

/// Series WAL records (`series::record`): an accepted payload re-encodes to
/// itself byte for byte.
pub fn series_record(data: &[u8]) {
    use sydra_engine::series::record;
    if let Ok(r) = record::decode(data) {
        let again = record::encode(&r).unwrap_or_else(|e| panic!("decoded record: {e}"));
        assert_eq!(again, data, "series record round trip");
    }
}

/// Compacted series data: the first byte picks a decoder, the rest is its
/// input. 0: a segment (`u16 LE` length of the timestamps blob, the
/// timestamps blob, the value blob); 1: a value blob's header alone and,
/// when it decodes, the rest as that segment's rollup (`u16 LE` length of
/// the value blob first); 2: a series index blob (next byte: its `aa`);
/// 3: a selector. Accepted input must be self-consistent; nothing may
/// panic, hang or allocate without bound.
pub fn series_segment(data: &[u8]) {
    use sydra_engine::series::{Selector, rollup, segment};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let split = |b: &[u8]| -> Option<(Vec<u8>, Vec<u8>)> {
        let n = usize::from(u16::from_le_bytes([*b.first()?, *b.get(1)?]));
        let b = &b[2..];
        (n <= b.len()).then(|| (b[..n].to_vec(), b[n..].to_vec()))
    };
    let block = 1_700_000_000_000_000_000 / 3_600_000_000_000 * 3_600_000_000_000;
    match mode % 4 {
        0 => {
            let Some((t, v)) = split(rest) else { return };
            if let Ok(seg) = segment::decode(block, &t, &v) {
                assert_eq!(seg.timestamps.len() as u64, seg.stats.count);
                assert_eq!(seg.points().len() as u64, seg.stats.count);
                let stats = segment::decode_stats(&v).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(stats.count, seg.stats.count);
            }
        }
        1 => {
            let Some((v, r)) = split(rest) else { return };
            if let Ok(stats) = segment::decode_stats(&v) {
                assert!(stats.min_ts <= stats.max_ts);
                if let Ok(buckets) = rollup::decode(block, &stats, &r) {
                    let n: u64 = buckets.iter().map(|b| b.count).sum();
                    assert_eq!(n, stats.count, "rollup counts");
                }
            }
        }
        2 => {
            let Some((&aa, b)) = rest.split_first() else {
                return;
            };
            if let Ok(defs) = segment::decode_index(aa, b) {
                for d in defs {
                    assert_eq!(d.key.id().0[0], aa, "index entry in the wrong bucket");
                }
            }
            if let Ok(defs) = segment::decode_index_all(b) {
                assert!(defs.len() <= segment::INDEX_ALL_MAX);
                assert!(defs.windows(2).all(|w| w[0].key.id() < w[1].key.id()));
            }
        }
        _ => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(sel) = Selector::parse(s) {
                let shown = sel.to_string();
                let again = Selector::parse(&shown)
                    .unwrap_or_else(|e| panic!("{s:?} shows as {shown:?}, which fails: {e}"));
                assert_eq!(again.to_string(), shown, "selector display round trip");
            }
        }
    }
}
