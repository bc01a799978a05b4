use std::fs;

use sydra_objects::{Entry, Error, Kind, ObjectId, Tree};

use super::common::store;

/// The verdict of `get` and of a `Reader` on the same object, as strings
/// (errors name the object and what failed, so equal strings mean equal
/// verdicts).
fn verdicts(s: &sydra_objects::Store, id: &ObjectId) -> (String, String) {
    let get = match s.get_verified(id) {
        Ok(o) => format!("ok {} {:?}", o.kind, &o.data[..]),
        Err(e) => format!("err {e}"),
    };
    let mut r = s.reader();
    let read = match r.read(id, true) {
        Ok(p) => format!("ok {} {:?}", p.kind(), &p[..]),
        Err(e) => format!("err {e}"),
    };
    (get, read)
}

#[test]
fn a_reader_gives_the_same_verdicts_as_get() {
    let (d, s) = store();
    let small = s.put(Kind::Blob, b"small").unwrap();
    let big_payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let big = s.put(Kind::Blob, &big_payload).unwrap();
    let flipped = s.put(Kind::Blob, b"to be flipped").unwrap();
    let mut bytes = fs::read(s.path_of(&flipped)).unwrap();
    let at = bytes.len() - 6;
    bytes[at] ^= 1;
    fs::write(s.path_of(&flipped), bytes).unwrap();
    let short = s.put(Kind::Blob, b"to be cut short").unwrap();
    fs::write(s.path_of(&short), b"SYD").unwrap();
    let missing = ObjectId::compute(Kind::Blob, b"never written");
    let linked = ObjectId::compute(Kind::Blob, b"a symlink");
    fs::create_dir_all(s.path_of(&linked).parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(s.path_of(&small), s.path_of(&linked)).unwrap();
    let dir_obj = ObjectId::compute(Kind::Blob, b"a directory");
    fs::create_dir_all(s.path_of(&dir_obj)).unwrap();

    for id in [small, big, flipped, short, missing, linked, dir_obj] {
        let (get, read) = verdicts(&s, &id);
        assert_eq!(get, read, "object {id}");
    }
    let mut r = s.reader();
    assert!(matches!(r.read(&missing, false), Err(Error::NotFound(_))));
    assert!(matches!(r.file_len(&missing), Err(Error::NotFound(_))));
    // lstat semantics: the link itself is found, and it is no object file.
    assert!(
        r.file_len(&linked)
            .unwrap_err()
            .to_string()
            .contains("not a regular file")
    );
    assert!(
        r.file_len(&dir_obj)
            .unwrap_err()
            .to_string()
            .contains("not a regular file")
    );
    assert_eq!(
        r.file_len(&small).unwrap(),
        fs::metadata(s.path_of(&small)).unwrap().len()
    );
    drop(d);
}

#[test]
fn a_reader_survives_its_shard_directory_being_removed_and_created_again() {
    let (_d, s) = store();
    let id = s.put(Kind::Blob, b"first").unwrap();
    let mut r = s.reader();
    r.read(&id, true).unwrap();
    // A GC removes the emptied shard; a writer creates it again.
    let shard = s.path_of(&id).parent().unwrap().to_path_buf();
    fs::remove_file(s.path_of(&id)).unwrap();
    fs::remove_dir(&shard).unwrap();
    assert!(matches!(r.read(&id, true), Err(Error::NotFound(_))));
    s.put(Kind::Blob, b"first").unwrap();
    let p = r.read(&id, true).unwrap();
    assert_eq!(&p[..], b"first");
    r.recycle(p);
    assert!(r.file_len(&id).unwrap() > 5);
}

#[test]
fn payloads_decode_trees_and_refuse_the_wrong_kind() {
    let (_d, s) = store();
    let blob = s.put(Kind::Blob, b"leaf").unwrap();
    let t = Tree::from_entries(vec![Entry {
        name: "leaf".into(),
        kind: Kind::Blob,
        id: blob,
    }])
    .unwrap();
    let tree = s.put(Kind::Tree, &t.encode()).unwrap();
    let mut r = s.reader();
    let p = r.read(&tree, false).unwrap();
    assert_eq!(p.tree().unwrap().entries.len(), 1);
    let err = p.commit().unwrap_err();
    assert!(matches!(err, Error::WrongKind { .. }), "{err}");
}
