use std::collections::HashSet;

use proptest::prelude::*;
use sydra_gc::IdSet;
use sydra_objects::ObjectId;

/// Ids from a small space with shared prefixes, so home slots and tags
/// collide often.
fn id(seed: u16) -> ObjectId {
    let mut b = [0u8; 32];
    b[0] = (seed % 61) as u8;
    b[8] = (seed % 3) as u8;
    b[31] = (seed >> 8) as u8;
    b[30] = seed as u8;
    ObjectId::from_bytes(b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn the_visited_set_agrees_with_a_hash_set(ops in prop::collection::vec(any::<u16>(), 0..2000)) {
        let mut s = IdSet::new();
        let mut model = HashSet::new();
        for op in &ops {
            let x = id(*op);
            prop_assert_eq!(s.insert(x).unwrap(), model.insert(x));
        }
        prop_assert_eq!(s.len(), model.len());
        for probe in 0..1000u16 {
            prop_assert_eq!(s.contains(&id(probe)), model.contains(&id(probe)));
        }
    }
}
