use std::fs;

use sydra_engine::wal::{SyncMode, list_segments, record::segment_file_name};
use sydra_engine::{Engine, Error};

use super::common::{collect, opts, payload};

/// Write `n` records into small segments, return the segment files.
fn build(dir: &std::path::Path, n: u64, seg: u64) -> Vec<u64> {
    let e = Engine::create(dir, opts(SyncMode::Never, seg)).unwrap();
    for i in 1..=n {
        assert_eq!(e.append(&payload(i)).unwrap(), i);
    }
    e.sync().unwrap();
    drop(e);
    list_segments(&dir.join("wal")).unwrap()
}

#[test]
fn torn_wal_tail_is_truncated_on_open_at_every_offset_of_the_last_record() {
    let base = tempfile::tempdir().unwrap();
    let src = base.path().join("src");
    let segs = build(&src, 30, 1 << 20);
    assert_eq!(segs.len(), 1);
    let seg_path = src.join("wal").join(segment_file_name(segs[0]));
    let full = fs::read(&seg_path).unwrap();
    let last_len = 16 + payload(30).len();
    let cut_start = full.len() - last_len;
    for cut in cut_start..full.len() {
        for garbage in [false, true] {
            let dir = base.path().join(format!("c{cut}-{garbage}"));
            copy_dir(&src, &dir);
            let p = dir.join("wal").join(segment_file_name(segs[0]));
            let mut bytes = full[..cut].to_vec();
            if garbage {
                bytes.extend(std::iter::repeat_n(0xA5u8, full.len() - cut));
            }
            fs::write(&p, &bytes).unwrap();
            let e = Engine::open(&dir, opts(SyncMode::Never, 1 << 20)).unwrap();
            let report = &e.open_report().wal;
            if cut > cut_start || garbage {
                assert_eq!(report.truncated.len(), 1, "cut {cut} garbage {garbage}");
                assert_eq!(report.truncated[0].1 as usize, cut_start);
            }
            assert_eq!(fs::metadata(&p).unwrap().len() as usize, cut_start);
            let got = collect(e.replay_head().unwrap());
            assert_eq!(got.len(), 29, "cut {cut}");
            assert_eq!(got.last().unwrap(), &(29, payload(29)));
            // The log continues at the repaired seq.
            assert_eq!(e.append(b"after").unwrap(), 30);
            fs::remove_dir_all(&dir).unwrap();
        }
    }
}

#[test]
fn a_flipped_byte_in_an_earlier_segment_fails_replay_with_file_and_offset() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("d");
    let segs = build(&dir, 200, 1024);
    assert!(segs.len() > 3, "{segs:?}");
    let victim = dir.join("wal").join(segment_file_name(segs[1]));
    let mut bytes = fs::read(&victim).unwrap();
    let off = 16 + 16 + 3; // inside the first record's payload
    bytes[off] ^= 0x20;
    fs::write(&victim, &bytes).unwrap();
    // Open only scans segments not yet covered by a checkpoint: here all of
    // them, so open itself refuses, naming the file and offset.
    let err = Engine::open(&dir, opts(SyncMode::Never, 1024)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&segment_file_name(segs[1])) && msg.contains("offset 16"),
        "{msg}"
    );
    assert!(matches!(err, Error::Wal(_)));
}

#[test]
fn damage_under_a_checkpoint_is_caught_by_chunk_verification_on_replay() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("d");
    {
        let e = Engine::create(&dir, opts(SyncMode::Never, 1024)).unwrap();
        for i in 1..=200 {
            e.append(&payload(i)).unwrap();
        }
        e.checkpoint(None, "all chunked").unwrap();
    }
    let segs = list_segments(&dir.join("wal")).unwrap();
    let victim = dir.join("wal").join(segment_file_name(segs[1]));
    let mut bytes = fs::read(&victim).unwrap();
    bytes[40] ^= 1;
    fs::write(&victim, &bytes).unwrap();
    let e = Engine::open(&dir, opts(SyncMode::Never, 1024)).unwrap();
    let mut r = e.replay_head().unwrap();
    let mut n = 0;
    let err = loop {
        match r.next_record() {
            Some(Ok(_)) => n += 1,
            Some(Err(e)) => break e,
            None => panic!("replay skipped damaged records"),
        }
    };
    let msg = err.to_string();
    assert!(matches!(err, Error::ChunkMismatch { .. }), "{msg}");
    assert!(msg.contains(&segment_file_name(segs[1])), "{msg}");
    // Nothing from the damaged chunk was yielded, and nothing after it.
    let first_seg_records = segs[1] - 1;
    assert_eq!(n, first_seg_records);
    assert!(r.next_record().is_none());
}

#[test]
fn oversize_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::create(dir.path(), opts(SyncMode::Always, 1 << 20)).unwrap();
    let err = e.append(&vec![0u8; 4097]).unwrap_err().to_string();
    assert!(err.contains("4097") && err.contains("4096"), "{err}");
    assert_eq!(e.append(b"ok").unwrap(), 1);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let t = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &t);
        } else if entry.file_name() != "LOCK" {
            fs::copy(entry.path(), t).unwrap();
        }
    }
}
