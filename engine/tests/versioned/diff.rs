use std::collections::BTreeMap;

use proptest::prelude::*;
use sydra_engine::diff::{ChangeKind, diff_trees, path_history};
use sydra_engine::objects::{Bump, Durability, Kind, ObjectId, Store, TreeBuilder};

use super::common::{commit, flatten};

fn path() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")],
        1..4,
    )
    .prop_map(|v| v.join("/"))
}

/// Build a tree from `base` applying puts/removes (ignoring refused ops).
fn build(s: &Store, base: Option<ObjectId>, ops: &[(String, Option<u8>)]) -> ObjectId {
    let arena = Bump::new();
    let mut b = TreeBuilder::new(s, &arena, base).unwrap();
    for (p, v) in ops {
        let _ = match v {
            Some(v) => b
                .upsert(p, Kind::Blob, s.put(Kind::Blob, &[*v]).unwrap())
                .map(|_| ()),
            None => b.remove(p).map(|_| ()),
        };
    }
    b.write_durable(Durability::None).unwrap().0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn diff_matches_flatten_and_compare(
        first in proptest::collection::vec((path(), proptest::option::of(0u8..4)), 0..15),
        second in proptest::collection::vec((path(), proptest::option::of(0u8..4)), 0..15),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::create(dir.path().join("objects"), Default::default()).unwrap();
        let a = build(&s, None, &first);
        let b = build(&s, Some(a), &second);
        let (fa, fb) = (flatten(&s, a), flatten(&s, b));
        let mut want = BTreeMap::new();
        for (p, id) in &fa {
            match fb.get(p) {
                None => { want.insert(p.clone(), (ChangeKind::Removed, Some(*id), None)); }
                Some(n) if n != id => { want.insert(p.clone(), (ChangeKind::Modified, Some(*id), Some(*n))); }
                _ => {}
            }
        }
        for (p, id) in &fb {
            if !fa.contains_key(p) { want.insert(p.clone(), (ChangeKind::Added, None, Some(*id))); }
        }
        let got: BTreeMap<_, _> = diff_trees(&s, Some(a), Some(b)).unwrap().into_iter().map(|c| (c.path, (c.kind, c.old, c.new))).collect();
        prop_assert_eq!(got, want);
        prop_assert!(diff_trees(&s, Some(a), Some(a)).unwrap().is_empty());
    }
}

#[test]
fn path_history_lists_the_commits_that_changed_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::create(dir.path().join("objects"), Default::default()).unwrap();
    let t1 = build(&s, None, &[("x/y".into(), Some(1)), ("z".into(), Some(1))]);
    let t2 = build(&s, Some(t1), &[("z".into(), Some(2))]);
    let t3 = build(&s, Some(t2), &[("x/y".into(), Some(3))]);
    let t4 = build(&s, Some(t3), &[("x/y".into(), None)]);
    let t5 = build(&s, Some(t4), &[("x/y".into(), Some(5))]);
    let mut ids = Vec::new();
    for (i, t) in [t1, t2, t3, t4, t5].into_iter().enumerate() {
        ids.push(commit(&s, t, ids.last().copied(), i as i64));
    }
    let h: Vec<ObjectId> = path_history(&s, ids[4], "x/y")
        .unwrap()
        .into_iter()
        .map(|c| c.commit)
        .collect();
    assert_eq!(h, vec![ids[4], ids[3], ids[2], ids[0]]);
    let h: Vec<ObjectId> = path_history(&s, ids[4], "z")
        .unwrap()
        .into_iter()
        .map(|c| c.commit)
        .collect();
    assert_eq!(h, vec![ids[1], ids[0]]);
    assert!(path_history(&s, ids[4], "nope/never").unwrap().is_empty());
}
