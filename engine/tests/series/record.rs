//! Series WAL records: any definitions and sample groups round-trip
//! through the builders and the decoder, byte for byte.

use proptest::prelude::*;
use sydra_engine::series::record::{self, Record, SamplesRecord, SeriesRecord, Values, ValuesRef};
use sydra_engine::series::{SeriesKey, ValueType};

fn values() -> impl Strategy<Value = (Vec<i64>, Values)> {
    (1usize..20).prop_flat_map(|n| {
        (
            proptest::collection::vec(any::<i64>(), n),
            prop_oneof![
                proptest::collection::vec(any::<u64>().prop_map(f64::from_bits), n)
                    .prop_map(Values::F64),
                proptest::collection::vec(any::<i64>(), n).prop_map(Values::I64),
                proptest::collection::vec(any::<bool>(), n).prop_map(Values::Bool),
                proptest::collection::vec(".{0,6}", n).prop_map(Values::Str),
            ],
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn sample_groups_round_trip(groups in proptest::collection::vec((any::<u64>(), values()), 1..6)) {
        let mut r = SamplesRecord::new();
        for (series, (ts, v)) in &groups {
            let v = match v {
                Values::F64(x) => ValuesRef::F64(x),
                Values::I64(x) => ValuesRef::I64(x),
                Values::Bool(x) => ValuesRef::Bool(x),
                Values::Str(x) => ValuesRef::Str(x),
                _ => unreachable!(),
            };
            r.push(*series, ts, v).unwrap();
        }
        let payload = r.finish();
        let Ok(Record::Samples(back)) = record::decode(&payload) else {
            return Err(TestCaseError::fail("does not decode"));
        };
        prop_assert_eq!(back.len(), groups.len());
        for (g, (series, (ts, v))) in back.iter().zip(&groups) {
            prop_assert_eq!(g.series, *series);
            prop_assert_eq!(&g.timestamps, ts);
            match (&g.values, v) {
                (Values::F64(a), Values::F64(b)) => {
                    prop_assert!(a.iter().map(|x| x.to_bits()).eq(b.iter().map(|x| x.to_bits())));
                }
                (a, b) => prop_assert_eq!(a, b),
            }
        }
        prop_assert_eq!(record::encode(&Record::Samples(back)).unwrap(), payload);
    }

    #[test]
    fn series_definitions_round_trip(
        defs in proptest::collection::vec((any::<u64>(), "[a-z ,=\\\\]{1,5}", proptest::collection::btree_map("[a-z]{1,3}", "[^\n\r\0]{1,4}", 0..4), "[a-z]{1,4}"), 1..5)
    ) {
        let mut r = SeriesRecord::new();
        let mut keys = Vec::new();
        for (series, m, tags, f) in &defs {
            let Ok(key) = SeriesKey::new(m.clone(), tags.clone(), f.clone()) else { continue };
            r.push(*series, ValueType::Integer, &key);
            keys.push((*series, key));
        }
        if keys.is_empty() {
            return Ok(());
        }
        let payload = r.finish();
        let Ok(Record::Series(back)) = record::decode(&payload) else {
            return Err(TestCaseError::fail("does not decode"));
        };
        prop_assert_eq!(back.len(), keys.len());
        for (d, (series, key)) in back.iter().zip(&keys) {
            prop_assert_eq!(d.series, *series);
            prop_assert_eq!(&d.key, key);
            prop_assert_eq!(d.value_type, ValueType::Integer);
        }
    }
}
