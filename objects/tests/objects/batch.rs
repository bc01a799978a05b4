use sydra_objects::{Durability, Kind, ObjectId};

use super::common::{count, store, tmp_files};

#[test]
fn nothing_is_visible_before_commit() {
    for d in [Durability::None, Durability::Batch, Durability::Each] {
        let (_dir, s) = store();
        let mut b = s.batch(d);
        let ids: Vec<ObjectId> = (0..50)
            .map(|i| b.put(Kind::Blob, &[i as u8; 100]).unwrap())
            .collect();
        assert_eq!(count(&s), 0, "{d:?}: staged objects must not be visible");
        assert_eq!(b.staged(), 50);
        let (pins, stats) = b.commit().unwrap();
        assert_eq!(stats.written, 50);
        assert_eq!(pins.ids().len(), 50);
        assert_eq!(count(&s), 50);
        for id in ids {
            s.get_verified(&id).unwrap();
        }
        assert_eq!(tmp_files(&s), 0);
    }
}

#[test]
fn dropping_a_batch_aborts() {
    let (_dir, s) = store();
    let mut b = s.batch(Durability::Batch);
    for i in 0..10u8 {
        b.put(Kind::Blob, &[i]).unwrap();
    }
    drop(b);
    assert_eq!(count(&s), 0);
    assert_eq!(tmp_files(&s), 0);
}

#[test]
fn batch_dedups_against_store_and_itself() {
    let (_dir, s) = store();
    let existing = s.put(Kind::Blob, b"old").unwrap();
    let mut b = s.batch(Durability::Batch);
    assert_eq!(b.put(Kind::Blob, b"old").unwrap(), existing);
    b.put(Kind::Blob, b"new").unwrap();
    b.put(Kind::Blob, b"new").unwrap();
    b.put_reader(Kind::Blob, 3, &b"new"[..]).unwrap();
    let (_pins, stats) = b.commit().unwrap();
    assert_eq!((stats.written, stats.deduped), (1, 1));
    assert_eq!(count(&s), 2);
}
