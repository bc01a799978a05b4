use std::fs;

use sydra_engine::Repository;
use sydra_engine::wal::record::segment_file_name;

use super::common::{collect, eager, fsck, open, payload, segments};

#[test]
fn a_chunk_whose_segment_bytes_changed_is_reported_with_its_reach_path() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), 64 << 10);
    for i in 1..=50 {
        e.append(&payload(i)).unwrap();
    }
    let cp = e.checkpoint(Some(10), "cp").unwrap();
    drop(e);
    let seg = dir.path().join("wal").join(segment_file_name(1));
    let mut bytes = fs::read(&seg).unwrap();
    bytes[40] ^= 0x01;
    fs::write(&seg, bytes).unwrap();
    let r = fsck(&Repository::open(dir.path()).unwrap());
    let p = r
        .problems
        .iter()
        .find(|p| p.check == "wal")
        .expect("a wal problem");
    let chunk = p.id.unwrap();
    assert_eq!(
        p.path.as_deref(),
        Some(
            format!(
                "refs/heads/main -> commit {} -> tree wal/index/00000000000000000001 -> blob {chunk}",
                cp.commit
            )
            .as_str()
        )
    );
    assert!(p.message.contains("does not match"), "{}", p.message);
}

#[test]
fn a_missing_segment_a_reachable_commit_needs_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), 1024);
    for i in 1..=60 {
        e.append(&payload(i)).unwrap();
    }
    e.checkpoint(Some(5), "cp").unwrap();
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    drop(e);
    fs::remove_file(dir.path().join("wal").join(segment_file_name(segs[1]))).unwrap();
    let r = fsck(&Repository::open(dir.path()).unwrap());
    assert!(
        r.problems.iter().any(|p| p.check == "wal"
            && p.message.contains("is missing")
            && p.message.contains("needs records")),
        "{:#?}",
        r.problems
    );
}

#[test]
fn a_segment_swept_after_being_wholly_applied_is_only_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), 1024);
    let mut seq = 0;
    for _ in 0..30 {
        seq = e.append(&payload(seq + 1)).unwrap();
    }
    // Applies everything: keeps the then-newest segment in its index with
    // chunks it does not need.
    let c1 = e.checkpoint(Some(seq), "c1").unwrap();
    let newest_then = *segments(dir.path()).last().unwrap();
    for _ in 0..30 {
        seq = e.append(&payload(seq + 1)).unwrap();
    }
    e.checkpoint(Some(seq), "c2").unwrap();
    assert_ne!(*segments(dir.path()).last().unwrap(), newest_then);
    let s = e.gc(&eager()).unwrap();
    assert!(s.wal.deleted.contains(&newest_then), "{:?}", s.wal);
    let r = fsck(e.repo());
    assert!(r.is_clean(), "{:#?}", r.problems);
    assert!(
        r.notes
            .iter()
            .any(|n| n.check == "wal" && n.message.contains("wholly applied")),
        "{:#?}",
        r.notes
    );
    // The commit that still names it replays (nothing: it applied all).
    assert!(collect(e.replay(&c1.commit.to_hex()).unwrap()).is_empty());
    assert!(collect(e.replay_head().unwrap()).is_empty());
}
