use std::collections::BTreeMap;

use proptest::prelude::*;
use sydra_objects::{Commit, CommitRef, Entry, Kind, ObjectId, Tree, TreeRef};

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._é-]{1,20}".prop_filter("not . or ..", |s| s != "." && s != "..")
}

fn id() -> impl Strategy<Value = ObjectId> {
    any::<[u8; 32]>().prop_map(ObjectId::from_bytes)
}

fn tree() -> impl Strategy<Value = Tree> {
    proptest::collection::btree_map(
        name(),
        (prop_oneof![Just(Kind::Blob), Just(Kind::Tree)], id()),
        0..20,
    )
    .prop_map(|m| {
        Tree::from_entries(
            m.into_iter()
                .map(|(name, (kind, id))| Entry { kind, name, id })
                .collect(),
        )
        .unwrap()
    })
}

fn commit() -> impl Strategy<Value = Commit> {
    (
        id(),
        proptest::collection::vec(id(), 0..4),
        any::<i64>(),
        ".{0,20}",
        ".{0,40}",
        ".{0,10}",
        proptest::collection::btree_map(
            ".{0,10}",
            proptest::collection::vec(any::<u8>(), 0..16),
            0..5,
        ),
    )
        .prop_map(
            |(tree, parents, timestamp, author, message, branch, meta)| Commit {
                tree,
                parents,
                timestamp,
                author,
                message,
                branch,
                meta: meta.into_iter().collect::<BTreeMap<_, _>>(),
            },
        )
}

proptest! {
    #[test]
    fn tree_round_trips(t in tree()) {
        let bytes = t.encode();
        let d = TreeRef::decode(&bytes).unwrap();
        prop_assert_eq!(d.encode(), bytes.clone());
        prop_assert_eq!(d.to_owned(), t);
    }

    #[test]
    fn commit_round_trips(c in commit()) {
        let bytes = c.encode().unwrap();
        let d = CommitRef::decode(&bytes).unwrap();
        prop_assert_eq!(d.encode(), bytes.clone());
        prop_assert_eq!(d.to_owned(), c);
    }

    /// Any input the decoders accept re-encodes to exactly itself, and no input panics.
    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(t) = TreeRef::decode(&bytes) {
            prop_assert_eq!(t.encode(), bytes.clone());
        }
        if let Ok(c) = CommitRef::decode(&bytes) {
            prop_assert_eq!(c.encode(), bytes.clone());
        }
        let _ = sydra_objects::store::header::parse_file(&bytes, None);
    }

    /// Mutating one byte of a valid tree either fails to decode or decodes to
    /// something that re-encodes to the mutated bytes (never a silent
    /// normalisation).
    #[test]
    fn mutated_trees_are_rejected_or_canonical(t in tree(), pos in any::<prop::sample::Index>(), x in 1u8..=255) {
        let mut bytes = t.encode();
        let i = pos.index(bytes.len());
        bytes[i] ^= x;
        if let Ok(d) = TreeRef::decode(&bytes) {
            prop_assert_eq!(d.encode(), bytes.clone());
        }
    }
}

#[test]
fn non_canonical_inputs_are_rejected() {
    // An empty tree is just a zero count.
    assert!(TreeRef::decode(&0u32.to_le_bytes()).is_ok());
    // A count larger than the entries present.
    assert!(TreeRef::decode(&1u32.to_le_bytes()).is_err());
    // Entry named "..".
    let mut b = 1u32.to_le_bytes().to_vec();
    b.extend_from_slice(&[1, 2, b'.', b'.']);
    b.extend_from_slice(&[0; 32]);
    assert!(TreeRef::decode(&b).is_err());
    // Entry name containing '/'.
    let mut b = 1u32.to_le_bytes().to_vec();
    b.extend_from_slice(&[1, 3, b'a', b'/', b'b']);
    b.extend_from_slice(&[0; 32]);
    assert!(TreeRef::decode(&b).is_err());
    // Zero-length name.
    let mut b = 1u32.to_le_bytes().to_vec();
    b.extend_from_slice(&[1, 0]);
    b.extend_from_slice(&[0; 32]);
    assert!(TreeRef::decode(&b).is_err());
    // Commit with invalid UTF-8 author.
    let mut c = Commit {
        author: "ab".into(),
        ..Commit::default()
    }
    .encode()
    .unwrap();
    let pos = 32 + 4 + 8 + 4;
    c[pos] = 0xff;
    let err = CommitRef::decode(&c).unwrap_err();
    assert!(err.to_string().contains("author"), "{err}");
}
