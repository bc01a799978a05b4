//! Forged objects that reference themselves: a loose file stored (path and
//! header) under id X whose payload names X again, with a valid CRC. Only
//! recomputing BLAKE3 shows the payload does not hash to X. Walkers must
//! stop with an error naming X instead of looping forever.

use std::collections::BTreeMap;
use std::path::Path;

use sydra_engine::Repository;
use sydra_engine::objects::store::header::encode_file;
use sydra_engine::objects::{Commit, Entry, Kind, ObjectId, Tree};
use sydra_engine::refs::{PreviousValue, RefName};

use super::{run_with_deadline, sydra_cmd};

/// Plant `payload` as a `kind` object under the forged id `id`.
fn plant(repo: &Repository, kind: Kind, id: ObjectId, payload: &[u8]) {
    let path = repo.objects().path_of(&id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, encode_file(kind, id, payload)).unwrap();
    // The framing is valid: only a hash check tells it apart.
    assert_eq!(repo.objects().get(&id).unwrap().kind, kind);
    assert!(repo.objects().get_verified(&id).is_err());
}

fn set_main(repo: &Repository, id: ObjectId) {
    repo.refs()
        .update(
            &RefName::new("refs/heads/main").unwrap(),
            id,
            PreviousValue::Any,
            "forged",
        )
        .unwrap();
}

/// A commit whose first parent is its own (forged) id; main points at it.
fn self_parent_commit() -> (tempfile::TempDir, ObjectId) {
    let d = tempfile::tempdir().unwrap();
    let (repo, _) = Repository::init(d.path()).unwrap();
    let tree = repo
        .objects()
        .put(Kind::Tree, &Tree::new().encode())
        .unwrap();
    let forged = ObjectId::compute(Kind::Blob, b"the forged commit id");
    let c = Commit {
        tree,
        parents: vec![forged],
        timestamp: 2_000_000_000_000_000_000,
        author: "x".into(),
        message: "loop".into(),
        branch: String::new(),
        meta: BTreeMap::new(),
    };
    plant(&repo, Kind::Commit, forged, &c.encode().unwrap());
    set_main(&repo, forged);
    (d, forged)
}

/// A tree containing itself under `a`, in a commit main points at.
fn self_containing_tree() -> (tempfile::TempDir, ObjectId) {
    let d = tempfile::tempdir().unwrap();
    let (repo, _) = Repository::init(d.path()).unwrap();
    let forged = ObjectId::compute(Kind::Blob, b"the forged tree id");
    let t = Tree::from_entries(vec![Entry {
        kind: Kind::Tree,
        name: "a".into(),
        id: forged,
    }])
    .unwrap();
    plant(&repo, Kind::Tree, forged, &t.encode());
    let c = Commit {
        tree: forged,
        parents: vec![],
        timestamp: 1,
        author: "x".into(),
        message: "loop".into(),
        branch: String::new(),
        meta: BTreeMap::new(),
    };
    let commit = repo
        .objects()
        .put(Kind::Commit, &c.encode().unwrap())
        .unwrap();
    set_main(&repo, commit);
    (d, forged)
}

/// Run and require a prompt failure whose message names `forged`.
fn fails_naming(dir: &Path, args: &[&str], forged: ObjectId) {
    let out = run_with_deadline(sydra_cmd(dir, args));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        err.contains(&forged.to_hex()),
        "{args:?}: the error does not name {forged}: {err}"
    );
}

#[test]
fn log_of_a_self_parent_commit_stops_with_an_error() {
    let (d, forged) = self_parent_commit();
    fails_naming(d.path(), &["log"], forged);
    fails_naming(d.path(), &["log", "--", "x"], forged);
}

#[test]
fn ancestor_steps_through_a_self_parent_commit_stop_with_an_error() {
    let (d, forged) = self_parent_commit();
    fails_naming(d.path(), &["log", "-n", "1", "main~1000000000000"], forged);
    let hex = forged.to_hex();
    fails_naming(
        d.path(),
        &["log", "-n", "1", &format!("{hex}~1000000000000")],
        forged,
    );
}

#[test]
fn time_steps_through_a_self_parent_commit_stop_with_an_error() {
    let (d, forged) = self_parent_commit();
    // Through the ref's history index, and by walking from an id.
    fails_naming(d.path(), &["log", "-n", "1", "main@{1000000000}"], forged);
    let hex = forged.to_hex();
    fails_naming(
        d.path(),
        &["log", "-n", "1", &format!("{hex}@{{1000000000}}")],
        forged,
    );
}

#[test]
fn ls_tree_r_of_a_self_containing_tree_stops_with_an_error() {
    let (d, forged) = self_containing_tree();
    fails_naming(d.path(), &["ls-tree", "-r", "main"], forged);
    fails_naming(d.path(), &["ls-tree", "-r", &forged.to_hex()], forged);
}

#[test]
fn diff_of_a_self_containing_tree_stops_with_an_error() {
    let (d, forged) = self_containing_tree();
    let repo = Repository::open(d.path()).unwrap();
    let empty = repo
        .objects()
        .put(Kind::Tree, &Tree::new().encode())
        .unwrap();
    fails_naming(d.path(), &["diff", &empty.to_hex(), "main"], forged);
}
