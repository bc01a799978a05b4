use proptest::prelude::*;
use sydra_engine::codec::{decode_f64, decode_timestamps, encode_f64, encode_timestamps};

proptest! {
    #[test]
    fn timestamps_round_trip(ts in proptest::collection::vec(any::<i64>(), 0..200)) {
        prop_assert_eq!(decode_timestamps(&encode_timestamps(&ts)).unwrap(), ts);
    }

    #[test]
    fn floats_round_trip_bit_exactly(v in proptest::collection::vec(any::<f64>(), 0..200)) {
        let d = decode_f64(&encode_f64(&v)).unwrap();
        prop_assert_eq!(d.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    }

    #[test]
    fn slowly_varying_floats_round_trip(start in -1e6f64..1e6, steps in proptest::collection::vec(-3i32..3, 0..300)) {
        let mut x = start;
        let v: Vec<f64> = steps.iter().map(|s| { x += f64::from(*s) * 0.25; x }).collect();
        prop_assert_eq!(decode_f64(&encode_f64(&v)).unwrap(), v);
    }

    /// Whatever the decoders accept re-encodes to exactly the same bytes.
    #[test]
    fn accepted_inputs_are_canonical(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(ts) = decode_timestamps(&b) { prop_assert_eq!(encode_timestamps(&ts), b.clone()); }
        if let Ok(v) = decode_f64(&b) { prop_assert_eq!(encode_f64(&v), b); }
    }
}
