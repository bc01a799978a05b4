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
