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
    // A repair cuts only the last segment: sealed ones are restored.
    let err = Engine::repair_wal(&dir, None).unwrap_err().to_string();
    assert!(
        err.contains("sealed segment") && err.contains("offset 16"),
        "{err}"
    );
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

/// Offset of record `seq` in a segment whose first record is `first`.
fn record_offset(bytes: &[u8], first: u64, seq: u64) -> usize {
    use sydra_engine::wal::record::{Step, parse_record};
    let mut off = 16;
    for s in first..seq {
        let v = sydra_engine::wal::record::SEGMENT_VERSION;
        let Step::Record(r) = parse_record(bytes, off, Some(s), true, v) else {
            panic!("record {s} at {off} does not parse")
        };
        off = r.end;
    }
    off
}

/// The scenario: 1,100 acknowledged records in one segment, one bit
/// of record 150's stored CRC flipped. The damage is followed by 950 valid
/// records, so it is not a torn tail: open refuses naming the file and the
/// offset, and changes nothing.
#[test]
fn a_bad_record_followed_by_valid_records_in_the_last_segment_is_refused_not_truncated() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("d");
    let segs = build(&dir, 1100, 1 << 20);
    assert_eq!(segs.len(), 1);
    let seg_path = dir.join("wal").join(segment_file_name(segs[0]));
    let mut bytes = fs::read(&seg_path).unwrap();
    let off = record_offset(&bytes, 1, 150);
    bytes[off + 4] ^= 0x01; // the stored CRC
    fs::write(&seg_path, &bytes).unwrap();

    let err = Engine::open(&dir, opts(SyncMode::Never, 1 << 20)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Wal(_)), "{msg}");
    assert!(
        msg.contains(&segment_file_name(segs[0])) && msg.contains(&format!("offset {off}")),
        "{msg}"
    );
    assert!(
        msg.contains("seq 151"),
        "names the valid record after it: {msg}"
    );
    // Nothing changed: every acknowledged byte is still there.
    assert_eq!(fs::read(&seg_path).unwrap(), bytes);
    // A second attempt refuses the same way (nothing was "repaired").
    let again = Engine::open(&dir, opts(SyncMode::Never, 1 << 20)).unwrap_err();
    assert_eq!(again.to_string(), msg);
}

/// The reader without the lock (`sydra replay`'s `Tail::ToEnd`) stops
/// quietly only at a torn tail; the same mid-segment damage is an error
/// after the 149 good records.
#[test]
fn replay_to_end_refuses_a_bad_record_followed_by_valid_records() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("d");
    let segs = build(&dir, 1100, 1 << 20);
    let seg_path = dir.join("wal").join(segment_file_name(segs[0]));
    let mut bytes = fs::read(&seg_path).unwrap();
    let off = record_offset(&bytes, 1, 150);
    bytes[off + 4] ^= 0x01;
    fs::write(&seg_path, &bytes).unwrap();
    let repo = sydra_engine::Repository::open(&dir).unwrap();
    let mut r = sydra_engine::Replay::new(
        repo.objects(),
        dir.join("wal"),
        None,
        sydra_engine::Tail::ToEnd,
    )
    .unwrap();
    let mut n = 0;
    let err = loop {
        match r.next_record() {
            Some(Ok(_)) => n += 1,
            Some(Err(e)) => break e,
            None => panic!("replay stopped quietly after {n} records"),
        }
    };
    assert_eq!(n, 149);
    let msg = err.to_string();
    assert!(
        msg.contains(&segment_file_name(segs[0])) && msg.contains(&format!("offset {off}")),
        "{msg}"
    );
}

/// A torn tail is still a torn tail when it is long: a partial last record
/// followed by zeros (a crash after the file grew but before its pages were
/// written) is cut, not refused.
#[test]
fn a_partial_record_followed_by_zeros_is_a_torn_tail() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("d");
    let segs = build(&dir, 40, 1 << 20);
    let seg_path = dir.join("wal").join(segment_file_name(segs[0]));
    let mut bytes = fs::read(&seg_path).unwrap();
    let off = record_offset(&bytes, 1, 40);
    bytes.truncate(off + 10);
    bytes.extend(std::iter::repeat_n(0u8, 8192));
    fs::write(&seg_path, &bytes).unwrap();
    let e = Engine::open(&dir, opts(SyncMode::Never, 1 << 20)).unwrap();
    assert_eq!(e.open_report().wal.truncated.len(), 1);
    assert_eq!(fs::metadata(&seg_path).unwrap().len() as usize, off);
    assert_eq!(collect(e.replay_head().unwrap()).len(), 39);
}

/// A crash in `Never`/`Interval` mode can leave written but unsynced
/// records; recovery reports them durable (a checkpoint may commit chunks
/// over them at once), so open must fdatasync the kept tail first. Counted
/// in `WalStats::syncs`, which counts every fdatasync of a segment.
#[test]
fn open_fdatasyncs_the_kept_tail_before_reporting_it_durable() {
    let base = tempfile::tempdir().unwrap();
    for torn in [false, true] {
        let dir = base.path().join(format!("d{torn}"));
        let segs = build(&dir, 20, 1 << 20);
        if torn {
            let p = dir.join("wal").join(segment_file_name(segs[0]));
            let mut bytes = fs::read(&p).unwrap();
            bytes.truncate(bytes.len() - 3);
            fs::write(&p, &bytes).unwrap();
        }
        let e = Engine::open(&dir, opts(SyncMode::Never, 1 << 20)).unwrap();
        assert_eq!(e.wal().durable_seq(), if torn { 19 } else { 20 });
        assert_eq!(e.wal().stats().syncs, 1, "torn {torn}");
    }
    // No segment: nothing to sync.
    let e = Engine::create(base.path().join("empty"), opts(SyncMode::Never, 1 << 20)).unwrap();
    assert_eq!(e.wal().stats().syncs, 0);
}

/// CRC32 (IEEE), bit by bit: the v1 segments below are built without the
/// library's framing code.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for b in parts.iter().flat_map(|p| p.iter()) {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A version-1 segment as the first release wrote it: header version 1,
/// records whose CRC covers `seq LE || payload` only.
fn v1_segment(first: u64, payloads: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"SYWL");
    b.push(1);
    b.extend_from_slice(&[0, 0, 0]);
    b.extend_from_slice(&first.to_le_bytes());
    for (i, p) in payloads.iter().enumerate() {
        let seq = first + i as u64;
        b.extend_from_slice(&(p.len() as u32).to_le_bytes());
        b.extend_from_slice(&crc32(&[&seq.to_le_bytes(), p]).to_le_bytes());
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(p);
    }
    b
}

/// Backward compatibility: a store whose WAL was written in version 1 opens,
/// replays, repairs a torn v1 tail, and continues in a new version-2
/// segment without touching a byte of the v1 one; checkpoints cover both.
#[test]
fn a_version_1_segment_is_read_and_never_appended_to() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("d");
    drop(Engine::create(&dir, opts(SyncMode::Never, 1 << 20)).unwrap());
    let payloads: Vec<&[u8]> = vec![b"one", b"", b"three", b"four"];
    let v1 = v1_segment(1, &payloads);
    let v1_path = dir.join("wal").join(segment_file_name(1));
    // A torn fifth record after the four.
    let mut torn = v1.clone();
    torn.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
    fs::write(&v1_path, &torn).unwrap();

    let e = Engine::open(&dir, opts(SyncMode::Never, 1 << 20)).unwrap();
    assert_eq!(e.open_report().wal.truncated.len(), 1);
    assert_eq!(fs::read(&v1_path).unwrap(), v1);
    let want: Vec<(u64, Vec<u8>)> = (1..=4)
        .map(|s| (s, payloads[s as usize - 1].to_vec()))
        .collect();
    assert_eq!(collect(e.replay_head().unwrap()), want);
    assert_eq!(e.append(b"five").unwrap(), 5);
    e.checkpoint(Some(0), "both versions").unwrap();
    assert_eq!(e.append(b"six").unwrap(), 6);
    drop(e);
    // The v1 segment is unchanged; the new records went to a v2 segment.
    assert_eq!(fs::read(&v1_path).unwrap(), v1);
    assert_eq!(list_segments(&dir.join("wal")).unwrap(), vec![1, 5]);
    let v2 = fs::read(dir.join("wal").join(segment_file_name(5))).unwrap();
    assert_eq!(&v2[..5], b"SYWL\x02");

    let e = Engine::open(&dir, opts(SyncMode::Never, 1 << 20)).unwrap();
    assert!(!e.open_report().repaired());
    let mut all = want.clone();
    all.push((5, b"five".to_vec()));
    all.push((6, b"six".to_vec()));
    // The checkpoint's chunks (over both versions) and then the live tail.
    assert_eq!(collect(e.replay_head().unwrap()), all);
    let committed = collect(e.replay("refs/heads/main").unwrap());
    assert_eq!(committed, all[..5].to_vec());
}

/// A version-1 segment holding no record (an old writer crashed right after
/// creating it) becomes a version-2 one in place: appends may go there.
#[test]
fn an_empty_version_1_last_segment_is_upgraded_in_place() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("d");
    drop(Engine::create(&dir, opts(SyncMode::Never, 1 << 20)).unwrap());
    let wal = dir.join("wal");
    fs::write(wal.join(segment_file_name(1)), v1_segment(1, &[b"a", b"b"])).unwrap();
    fs::write(wal.join(segment_file_name(3)), v1_segment(3, &[])).unwrap();
    let e = Engine::open(&dir, opts(SyncMode::Never, 1 << 20)).unwrap();
    assert_eq!(e.append(b"c").unwrap(), 3);
    drop(e);
    assert_eq!(list_segments(&wal).unwrap(), vec![1, 3]);
    assert_eq!(
        &fs::read(wal.join(segment_file_name(3))).unwrap()[..5],
        b"SYWL\x02"
    );
    let e = Engine::open(&dir, opts(SyncMode::Never, 1 << 20)).unwrap();
    let got: Vec<u64> = collect(e.replay_head().unwrap())
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(got, vec![1, 2, 3]);
}

fn flip_crc_of(dir: &std::path::Path, seq: u64) -> (std::path::PathBuf, Vec<u8>, usize) {
    let path = dir.join("wal").join(segment_file_name(1));
    let mut bytes = fs::read(&path).unwrap();
    let off = record_offset(&bytes, 1, seq);
    bytes[off + 4] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    (path, bytes, off)
}

/// A crash between the repair's two steps (gap segment published, damaged
/// segment not yet cut) leaves a log open refuses; running the repair
/// again finishes the cut without writing a second gap.
#[test]
fn an_interrupted_repair_is_finished_by_running_it_again() {
    use sydra_engine::wal::repair::Diagnosis;
    let base = tempfile::tempdir().unwrap();
    let done = base.path().join("done");
    build(&done, 300, 1 << 20);
    let (_, damaged, off) = flip_crc_of(&done, 100);
    let crashed = base.path().join("crashed");
    copy_dir(&done, &crashed);
    let (Diagnosis::Damaged(plan), false) = Engine::repair_wal(&done, None).unwrap() else {
        panic!("no plan")
    };
    assert_eq!(
        (plan.first_lost, plan.last_lost, plan.offset),
        (100, 300, off as u64)
    );
    assert!(Engine::repair_wal(&done, Some(&plan)).unwrap().1);
    // The crashed copy: the gap segment is there, the cut is not.
    let gap = segment_file_name(100);
    fs::copy(done.join("wal").join(&gap), crashed.join("wal").join(&gap)).unwrap();
    let err = Engine::open(&crashed, opts(SyncMode::Never, 1 << 20)).unwrap_err();
    assert!(err.to_string().contains(&format!("offset {off}")), "{err}");
    let (Diagnosis::Damaged(again), false) = Engine::repair_wal(&crashed, None).unwrap() else {
        panic!("no plan after the crash")
    };
    assert!(again.resumed && again.first_lost == 100 && again.last_lost == 300);
    assert!(Engine::repair_wal(&crashed, Some(&again)).unwrap().1);
    for d in [&done, &crashed] {
        let seg1 = fs::read(d.join("wal").join(segment_file_name(1))).unwrap();
        assert_eq!(seg1, damaged[..off]);
        let e = Engine::open(d, opts(SyncMode::Never, 1 << 20)).unwrap();
        assert!(!e.open_report().repaired());
        assert_eq!(e.append(b"next").unwrap(), 301);
        let seqs: Vec<u64> = collect(e.replay_head().unwrap())
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(seqs, (1..100).chain([301]).collect::<Vec<_>>());
    }
}

/// A bad first record of the last segment: the gap segment takes the
/// damaged segment's name and replaces it in one rename.
#[test]
fn a_repair_of_the_first_record_of_a_segment_replaces_it() {
    use sydra_engine::wal::repair::Diagnosis;
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("d");
    build(&dir, 5, 1 << 20);
    flip_crc_of(&dir, 1);
    let (Diagnosis::Damaged(plan), _) = Engine::repair_wal(&dir, None).unwrap() else {
        panic!()
    };
    assert_eq!((plan.first_lost, plan.last_lost), (1, 5));
    assert!(Engine::repair_wal(&dir, Some(&plan)).unwrap().1);
    assert_eq!(list_segments(&dir.join("wal")).unwrap(), vec![1]);
    let e = Engine::open(&dir, opts(SyncMode::Never, 1 << 20)).unwrap();
    assert_eq!(e.append(b"six").unwrap(), 6);
    assert_eq!(
        collect(e.replay_head().unwrap()),
        vec![(6, b"six".to_vec())]
    );
}

/// Records the head checkpoint committed are never cut: damage there is a
/// restore job, and the repair says so instead of planning.
#[test]
fn a_repair_refuses_damage_under_the_head_checkpoint() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("d");
    {
        let e = Engine::create(&dir, opts(SyncMode::Never, 1 << 20)).unwrap();
        for i in 1..=50 {
            e.append(&payload(i)).unwrap();
        }
        e.checkpoint(None, "all").unwrap();
    }
    let (path, bytes, _) = flip_crc_of(&dir, 20);
    let err = Engine::repair_wal(&dir, None).unwrap_err().to_string();
    assert!(
        err.contains("head checkpoint") && err.contains("seq 20"),
        "{err}"
    );
    assert_eq!(fs::read(&path).unwrap(), bytes);
}
