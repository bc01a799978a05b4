use std::fs;

use sydra_engine::wal::{SyncMode, list_segments, record::segment_file_name};
use sydra_engine::{Engine, Error};

use super::common::{collect, open, opts, payload};

fn recs(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, Vec<u8>)> {
    range.map(|i| (i, payload(i))).collect()
}

#[test]
fn with_no_checkpoint_replay_from_head_yields_the_whole_wal() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts(SyncMode::Never, 2048)).unwrap();
    for i in 1..=300 {
        e.append(&payload(i)).unwrap();
    }
    assert_eq!(collect(e.replay_head().unwrap()), recs(1..=300));
    assert!(list_segments(&dir.path().join("wal")).unwrap().len() > 3);
    drop(e);
    // And after reopening.
    let e = Engine::open(dir.path(), opts(SyncMode::Never, 2048)).unwrap();
    assert_eq!(collect(e.replay_head().unwrap()), recs(1..=300));
}

#[test]
fn replay_from_a_snapshot_yields_exactly_what_it_committed() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts(SyncMode::Never, 4096)).unwrap();
    for i in 1..=50 {
        e.append(&payload(i)).unwrap();
    }
    let c1 = e.checkpoint(Some(10), "first").unwrap();
    assert_eq!((c1.applied_seq, c1.last_seq), (10, 50));
    e.snapshot(Some("before")).unwrap();
    for i in 51..=120 {
        e.append(&payload(i)).unwrap();
    }
    let c2 = e.checkpoint(Some(100), "second").unwrap();
    for i in 121..=130 {
        e.append(&payload(i)).unwrap();
    }
    // The snapshot: records 11..=50, no more, even though the WAL grew.
    assert_eq!(collect(e.replay("before").unwrap()), recs(11..=50));
    assert_eq!(
        collect(e.replay(&c1.commit.to_hex()).unwrap()),
        recs(11..=50)
    );
    // The second commit: 101..=120.
    assert_eq!(
        collect(e.replay(&c2.commit.to_hex()).unwrap()),
        recs(101..=120)
    );
    // The head plus the live tail.
    assert_eq!(collect(e.replay_head().unwrap()), recs(101..=130));
    // Reopen: same answers.
    drop(e);
    let e = Engine::open(dir.path(), opts(SyncMode::Never, 4096)).unwrap();
    assert_eq!(collect(e.replay("before").unwrap()), recs(11..=50));
    assert_eq!(collect(e.replay_head().unwrap()), recs(101..=130));
    e.append(&payload(131)).unwrap();
    assert_eq!(collect(e.replay_head().unwrap()), recs(101..=131));
}

#[test]
fn index_entries_of_wholly_applied_segments_leave_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts(SyncMode::Never, 1024)).unwrap();
    for i in 1..=100 {
        e.append(&payload(i)).unwrap();
    }
    let c = e.checkpoint(None, "all").unwrap();
    let store = e.repo().objects();
    let tree = store.get(&c.commit).unwrap().commit().unwrap().tree;
    let segs = sydra_engine::index::segments(store, tree).unwrap();
    assert_eq!(segs, list_segments(&dir.path().join("wal")).unwrap());
    let c = e.checkpoint(Some(100), "applied all").unwrap();
    let tree = store.get(&c.commit).unwrap().commit().unwrap().tree;
    let left = sydra_engine::index::segments(store, tree).unwrap();
    assert_eq!(
        left,
        vec![*segs.last().unwrap()],
        "only the newest segment stays indexed"
    );
    assert!(collect(e.replay_head().unwrap()).is_empty());
    e.append(b"next").unwrap();
    assert_eq!(
        collect(e.replay_head().unwrap()),
        vec![(101, b"next".to_vec())]
    );
}

#[test]
fn altered_segment_bytes_fail_chunk_verification() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    for i in 1..=10 {
        e.append(&payload(i)).unwrap();
    }
    e.checkpoint(None, "c").unwrap();
    e.snapshot(Some("s")).unwrap();
    let seg = dir.path().join("wal").join(segment_file_name(1));
    let mut b = fs::read(&seg).unwrap();
    // Change a payload byte and fix the record CRC: only the chunk hashes
    // can tell.
    let rec_off = 16;
    b[rec_off + 16] ^= 0x01;
    let len = u32::from_le_bytes(b[rec_off..rec_off + 4].try_into().unwrap()) as usize;
    let mut h = crc32fast::Hasher::new();
    h.update(&1u64.to_le_bytes());
    h.update(&b[rec_off + 16..rec_off + 16 + len]);
    b[rec_off + 4..rec_off + 8].copy_from_slice(&h.finalize().to_le_bytes());
    fs::write(&seg, &b).unwrap();
    let mut r = e.replay("s").unwrap();
    let err = r.next_record().unwrap().unwrap_err();
    assert!(matches!(err, Error::ChunkMismatch { .. }), "{err}");
    assert!(err.to_string().contains("mismatch"), "{err}");
}

#[test]
fn checkpoint_arguments_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    e.append(b"a").unwrap();
    assert!(matches!(e.snapshot(None), Err(Error::NoHead(_))));
    assert!(matches!(
        e.checkpoint(Some(5), "x"),
        Err(Error::AppliedSeq { .. })
    ));
    // The refused checkpoint's chunks are not lost.
    e.checkpoint(Some(1), "ok").unwrap();
    assert!(matches!(
        e.checkpoint(Some(0), "back"),
        Err(Error::AppliedSeq { .. })
    ));
    let (name, _) = e.snapshot(None).unwrap();
    assert!(name.as_str().starts_with("refs/snapshots/20"), "{name}");
    e.append(b"b").unwrap();
    let c = e.checkpoint(None, "again").unwrap();
    assert_eq!((c.applied_seq, c.last_seq), (1, 2));
    let (b, id) = e.branch("exp", "main").unwrap();
    assert_eq!(b.as_str(), "refs/heads/exp");
    assert_eq!(id, c.commit);
    assert!(e.branch("exp", "main").is_err());
}
