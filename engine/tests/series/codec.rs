//! Round trips of the series column codecs on any input, and on the shapes
//! real data has (regular intervals with jitter, decimals, counters, runs).

use proptest::prelude::*;
use sydra_engine::series::codec::{
    decode_bool, decode_f64, decode_i64, decode_timestamps, encode_bool, encode_f64, encode_i64,
    encode_timestamps,
};

/// Timestamps: arbitrary, or a regular grid in some unit with jitter.
fn timestamps() -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![
        proptest::collection::vec(any::<i64>(), 0..64),
        (
            any::<i32>(),
            prop_oneof![
                Just(1i64),
                Just(1_000),
                Just(1_000_000),
                Just(1_000_000_000)
            ],
            1i64..100_000,
            proptest::collection::vec(-5i64..5, 0..300),
        )
            .prop_map(|(start, unit, step, jitter)| {
                let mut t = i64::from(start);
                jitter
                    .iter()
                    .map(|j| {
                        t += step;
                        (t + j).saturating_mul(unit)
                    })
                    .collect()
            }),
    ]
}

fn floats() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        proptest::collection::vec(any::<u64>().prop_map(f64::from_bits), 0..64),
        (
            0u32..6,
            proptest::collection::vec(-1_000_000i64..1_000_000, 0..300)
        )
            .prop_map(|(d, ints)| ints
                .iter()
                .map(|&n| n as f64 / 10f64.powi(d as i32))
                .collect()),
        proptest::collection::vec(prop_oneof![Just(0.0), Just(-0.0), Just(1.5)], 0..100),
    ]
}

fn ints() -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![
        proptest::collection::vec(any::<i64>(), 0..64),
        (any::<i64>(), proptest::collection::vec(0i64..1000, 0..300)).prop_map(|(s, incs)| {
            let mut v = s;
            incs.iter()
                .map(|i| {
                    v = v.wrapping_add(*i);
                    v
                })
                .collect()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn timestamps_round_trip(ts in timestamps()) {
        let b = encode_timestamps(&ts);
        prop_assert_eq!(decode_timestamps(&b), Ok(ts));
    }

    #[test]
    fn floats_round_trip_bit_exactly(v in floats()) {
        let b = encode_f64(&v);
        let back = decode_f64(&b).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.len(), v.len());
        for (a, w) in back.iter().zip(&v) {
            prop_assert_eq!(a.to_bits(), w.to_bits());
        }
        // Never worse than the XOR coding alone by more than the mode byte.
        let xor = sydra_engine::codec::encode_f64(&v);
        prop_assert!(b.len() <= xor.len() + 1);
    }

    #[test]
    fn integers_round_trip(v in ints()) {
        let b = encode_i64(&v);
        prop_assert_eq!(decode_i64(&b), Ok(v));
    }

    #[test]
    fn booleans_round_trip(v in proptest::collection::vec(any::<bool>(), 0..200)) {
        let b = encode_bool(&v);
        prop_assert_eq!(decode_bool(&b), Ok(v));
    }

    #[test]
    fn every_strict_prefix_is_an_error(ts in timestamps(), v in floats(), i in ints(), cut in any::<prop::sample::Index>()) {
        let t = encode_timestamps(&ts);
        let n = cut.index(t.len());
        prop_assert!(decode_timestamps(&t[..n]).is_err(), "timestamps cut at {}", n);
        let f = encode_f64(&v);
        let n = cut.index(f.len());
        prop_assert!(decode_f64(&f[..n]).is_err(), "floats cut at {}", n);
        let b = encode_i64(&i);
        let n = cut.index(b.len());
        prop_assert!(decode_i64(&b[..n]).is_err(), "integers cut at {}", n);
    }
}
