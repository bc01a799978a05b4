use sydra_engine::objects::{Kind, ObjectId};
use sydra_engine::refs::{PreviousValue, RefName};
use sydra_engine::{Error, Repository};

use super::common::commit;

#[test]
fn ancestors_paths_prefixes_and_short_names() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = Repository::init(dir.path()).unwrap();
    let s = repo.objects();
    let blob = s.put(Kind::Blob, b"hello").unwrap();
    let mut t = sydra_engine::objects::Tree::new();
    t = sydra_engine::objects::Tree::from_entries(vec![sydra_engine::objects::Entry {
        kind: Kind::Blob,
        name: "f".into(),
        id: blob,
    }])
    .unwrap_or(t);
    let tree = s.put(Kind::Tree, &t.encode()).unwrap();
    let c1 = commit(s, tree, None, 1);
    let c2 = commit(s, tree, Some(c1), 2);
    let c3 = commit(s, tree, Some(c2), 3);
    repo.refs()
        .update(&RefName::main_branch(), c3, PreviousValue::Any, "t")
        .unwrap();
    repo.refs()
        .update(
            &RefName::new("refs/snapshots/snap").unwrap(),
            c2,
            PreviousValue::Any,
            "t",
        )
        .unwrap();
    assert_eq!(repo.resolve("main").unwrap(), c3);
    assert_eq!(repo.resolve("HEAD").unwrap(), c3);
    assert_eq!(repo.resolve("main~").unwrap(), c2);
    assert_eq!(repo.resolve("main~2").unwrap(), c1);
    assert_eq!(repo.resolve("main~1~1").unwrap(), c1);
    assert_eq!(repo.resolve("snap").unwrap(), c2);
    assert_eq!(repo.resolve(&c3.to_hex()[..10]).unwrap(), c3);
    assert_eq!(repo.resolve("main:f").unwrap(), blob);
    assert_eq!(repo.resolve("main:").unwrap(), tree);
    assert_eq!(repo.resolve("snap~1:f").unwrap(), blob);
    let err = repo.resolve("main~3").unwrap_err().to_string();
    assert!(err.contains("only 2 ancestor"), "{err}");
    assert!(
        repo.resolve("main:nope")
            .unwrap_err()
            .to_string()
            .contains("does not exist")
    );
    assert!(matches!(
        repo.resolve("nosuchref"),
        Err(Error::Revision { .. })
    ));
    assert!(
        repo.resolve(&format!("{blob}~1"))
            .unwrap_err()
            .to_string()
            .contains("is a blob")
    );
}

#[test]
fn ambiguous_prefixes_list_their_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = Repository::init(dir.path()).unwrap();
    let mut ids: Vec<ObjectId> = (0..2000u32)
        .map(|i| repo.objects().put(Kind::Blob, &i.to_le_bytes()).unwrap())
        .collect();
    ids.sort();
    let (a, b) = ids
        .windows(2)
        .map(|w| (w[0], w[1]))
        .find(|(a, b)| a.to_hex()[..4] == b.to_hex()[..4])
        .unwrap();
    let err = repo.resolve(&a.to_hex()[..4]).unwrap_err().to_string();
    assert!(
        err.contains("ambiguous") && err.contains(&a.to_hex()) && err.contains(&b.to_hex()),
        "{err}"
    );
}
