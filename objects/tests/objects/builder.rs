use std::collections::BTreeMap;

use proptest::prelude::*;
use sydra_objects::{Bump, Durability, Kind, ObjectId, Store, TreeBuilder};

use super::common::{count, store};

fn blob(s: &Store, x: &str) -> ObjectId {
    s.put(Kind::Blob, x.as_bytes()).unwrap()
}

fn build(s: &Store, base: Option<ObjectId>, f: impl FnOnce(&mut TreeBuilder<'_>)) -> ObjectId {
    let arena = Bump::new();
    let mut b = TreeBuilder::new(s, &arena, base).unwrap();
    f(&mut b);
    b.write_durable(Durability::None).unwrap().0
}

/// Flatten a tree into path -> blob id.
fn flatten(s: &Store, tree: ObjectId, prefix: &str, out: &mut BTreeMap<String, ObjectId>) {
    let obj = s.get(&tree).unwrap();
    for e in obj.tree().unwrap().entries {
        let p = if prefix.is_empty() {
            e.name.to_owned()
        } else {
            format!("{prefix}/{}", e.name)
        };
        match e.kind {
            Kind::Tree => flatten(s, e.id, &p, out),
            _ => {
                out.insert(p, e.id);
            }
        }
    }
}

fn subtree(s: &Store, tree: ObjectId, name: &str) -> Option<ObjectId> {
    s.get(&tree)
        .unwrap()
        .tree()
        .unwrap()
        .find(name)
        .map(|e| e.id)
}

#[test]
fn untouched_subtrees_keep_their_ids_and_only_the_path_is_written() {
    let (_d, s) = store();
    let x = blob(&s, "x");
    let base = build(&s, None, |b| {
        for series in 0..20 {
            for seg in 0..20 {
                b.upsert(&format!("series/{series}/raw/{seg}"), Kind::Blob, x)
                    .unwrap();
            }
        }
    });
    let before = count(&s);
    let y = blob(&s, "y");
    let new = build(&s, Some(base), |b| {
        b.upsert("series/7/raw/3", Kind::Blob, y).unwrap()
    });
    // New objects: the blob y, plus one tree per level: root, series, series/7, series/7/raw.
    assert_eq!(count(&s) - before, 1 + 4);
    let (bs, ns) = (
        subtree(&s, base, "series").unwrap(),
        subtree(&s, new, "series").unwrap(),
    );
    for series in 0..20 {
        let (a, b) = (
            subtree(&s, bs, &series.to_string()),
            subtree(&s, ns, &series.to_string()),
        );
        if series == 7 {
            assert_ne!(a, b)
        } else {
            assert_eq!(a, b)
        }
    }
}

#[test]
fn removing_the_last_entry_removes_the_subtree() {
    let (_d, s) = store();
    let x = blob(&s, "x");
    let base = build(&s, None, |b| {
        b.upsert("a/b/c", Kind::Blob, x).unwrap();
        b.upsert("keep", Kind::Blob, x).unwrap();
    });
    let new = build(&s, Some(base), |b| {
        assert!(b.remove("a/b/c").unwrap());
        assert!(!b.remove("a/b/nothing").unwrap());
        assert!(!b.remove("zzz/y").unwrap());
    });
    let mut flat = BTreeMap::new();
    flatten(&s, new, "", &mut flat);
    assert_eq!(flat.keys().collect::<Vec<_>>(), vec!["keep"]);
    assert!(subtree(&s, new, "a").is_none());
    // Removing everything leaves the empty tree at the root.
    let empty = build(&s, Some(new), |b| assert!(b.remove("keep").unwrap()));
    assert_eq!(&*s.get(&empty).unwrap().data, &0u32.to_le_bytes());
}

#[test]
fn abort_writes_nothing_and_noop_keeps_the_id() {
    let (_d, s) = store();
    let x = blob(&s, "x");
    let base = build(&s, None, |b| b.upsert("a/b", Kind::Blob, x).unwrap());
    let before = count(&s);
    {
        let arena = Bump::new();
        let mut b = TreeBuilder::new(&s, &arena, Some(base)).unwrap();
        b.upsert("a/c", Kind::Blob, x).unwrap();
        b.remove("a/b").unwrap();
        // dropped without write
    }
    assert_eq!(count(&s), before);
    let same = build(&s, Some(base), |b| {
        b.upsert("a/b", Kind::Blob, x).unwrap();
        assert!(!b.remove("nope").unwrap());
    });
    assert_eq!(same, base);
    assert_eq!(count(&s), before);
}

#[test]
fn bad_paths_are_refused() {
    let (_d, s) = store();
    let x = blob(&s, "x");
    let arena = Bump::new();
    let mut b = TreeBuilder::new(&s, &arena, None).unwrap();
    for p in ["", "/a", "a/", "a//b", "a/../b", "./a", "a/\0"] {
        assert!(b.upsert(p, Kind::Blob, x).is_err(), "{p:?} accepted");
    }
    b.upsert("f", Kind::Blob, x).unwrap();
    let err = b.upsert("f/g", Kind::Blob, x).unwrap_err().to_string();
    assert!(err.contains("is a blob"), "{err}");
    assert!(b.upsert("c", Kind::Commit, x).is_err());
    let deep = vec!["d"; 300].join("/");
    assert!(b.upsert(&deep, Kind::Blob, x).is_err());
}

#[derive(Debug, Clone)]
enum Op {
    Put(String, u8),
    Del(String),
}

fn path() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 1..4)
        .prop_map(|v| v.join("/"))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (path(), any::<u8>()).prop_map(|(p, v)| Op::Put(p, v)),
        path().prop_map(Op::Del)
    ]
}

/// Apply `ops` to a flat model with the same rules (a blob blocks a deeper
/// path; a put replaces a subtree).
fn model_apply(m: &mut BTreeMap<String, u8>, op: &Op) -> bool {
    match op {
        Op::Put(p, v) => {
            let blocked = m.keys().any(|k| p.starts_with(&format!("{k}/")));
            if blocked {
                return false;
            }
            m.retain(|k, _| !k.starts_with(&format!("{p}/")));
            m.insert(p.clone(), *v);
            true
        }
        Op::Del(p) => {
            m.remove(p);
            m.retain(|k, _| !k.starts_with(&format!("{p}/")));
            true
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn builder_matches_a_flat_model(first in proptest::collection::vec(op(), 0..12), second in proptest::collection::vec(op(), 0..12)) {
        let (_d, s) = store();
        let mut model = BTreeMap::new();
        let mut base = None;
        for ops in [first, second] {
            let arena = Bump::new();
            let mut b = TreeBuilder::new(&s, &arena, base).unwrap();
            for o in &ops {
                let ok = model_apply(&mut model, o);
                let r = match o {
                    Op::Put(p, v) => b.upsert(p, Kind::Blob, ObjectId::compute(Kind::Blob, &[*v])).map(|_| ()),
                    Op::Del(p) => b.remove(p).map(|_| ()),
                };
                prop_assert_eq!(r.is_ok(), ok, "op {:?}", o);
            }
            base = Some(b.write_durable(Durability::None).unwrap().0);
            let mut flat = BTreeMap::new();
            flatten(&s, base.unwrap(), "", &mut flat);
            let want: BTreeMap<String, ObjectId> = model.iter().map(|(k, v)| (k.clone(), ObjectId::compute(Kind::Blob, &[*v]))).collect();
            prop_assert_eq!(flat, want);
        }
    }
}
