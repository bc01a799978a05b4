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
