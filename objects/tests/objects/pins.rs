use std::time::{Duration, SystemTime};

use sydra_objects::{Durability, Error, GcGuard, Kind, ObjectId, SweepCheck, SweepOutcome};

use super::common::store;

fn sweep(gc: &GcGuard, id: &ObjectId, cutoff: SystemTime) -> SweepOutcome {
    let check = SweepCheck {
        cutoff,
        verify_hash: true,
        dry_run: false,
    };
    gc.sweep_one(id, &check).unwrap()
}

#[test]
fn a_gc_session_never_deletes_pinned_or_newly_written_objects() {
    let (_d, s) = store();
    let old = s.put(Kind::Blob, b"old garbage").unwrap();
    let pinned_batch = {
        let mut b = s.batch(Durability::None);
        b.put(Kind::Blob, b"in flight").unwrap();
        b.commit().unwrap().0
    };
    let in_flight = pinned_batch.ids()[0];
    let gc = s.begin_gc().unwrap();
    assert!(matches!(s.begin_gc(), Err(Error::GcRunning)));
    assert_eq!(gc.pinned_roots(), &[in_flight]);
    let future = SystemTime::now() + Duration::from_secs(3600);
    // Written (or dedup-hit) after the GC began: protected.
    let during = s.put(Kind::Blob, b"written during gc").unwrap();
    assert!(matches!(
        sweep(&gc, &during, future),
        SweepOutcome::Protected(_)
    ));
    assert!(matches!(
        sweep(&gc, &in_flight, future),
        SweepOutcome::Protected(_)
    ));
    // Releasing the pin during the GC does not unprotect it.
    drop(pinned_batch);
    assert!(matches!(
        sweep(&gc, &in_flight, future),
        SweepOutcome::Protected(_)
    ));
    // Grace period: a cutoff in the past keeps recent files.
    let past = SystemTime::now() - Duration::from_secs(3600);
    assert!(matches!(sweep(&gc, &old, past), SweepOutcome::Recent(_)));
    assert!(matches!(sweep(&gc, &old, future), SweepOutcome::Deleted(n) if n > 0));
    assert_eq!(sweep(&gc, &old, future), SweepOutcome::Missing);
    drop(gc);
    // After the session, protection is gone.
    let gc = s.begin_gc().unwrap();
    assert!(gc.pinned_roots().is_empty());
    assert!(matches!(
        sweep(&gc, &during, future),
        SweepOutcome::Deleted(_)
    ));
}

/// Writes a loose object file by hand: header, payload, CRC — with a header
/// id and payload of the test's choosing, so the CRC is right but the
/// content may not hash to the name.
fn plant(s: &sydra_objects::Store, name: &ObjectId, kind: Kind, payload: &[u8]) {
    let bytes = sydra_objects::store::header::encode_file(kind, *name, payload);
    let path = s.path_of(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn the_sweep_keeps_what_fails_verification_and_deletes_nothing_when_dry() {
    let (_d, s) = store();
    let future = SystemTime::now() + Duration::from_secs(3600);
    let good = s.put(Kind::Blob, b"unreachable and sound").unwrap();
    let flipped = s.put(Kind::Blob, b"unreachable, bit rot coming").unwrap();
    let mut bytes = std::fs::read(s.path_of(&flipped)).unwrap();
    // A payload byte (the CRC trailer is the last four).
    let at = bytes.len() - 6;
    bytes[at] ^= 0x10;
    std::fs::write(s.path_of(&flipped), bytes).unwrap();
    // CRC and header consistent, content does not hash to the name.
    let forged = ObjectId::compute(Kind::Blob, b"what the name promises");
    plant(&s, &forged, Kind::Blob, b"something else entirely");
    let gc = s.begin_gc().unwrap();

    let dry = SweepCheck {
        cutoff: future,
        verify_hash: true,
        dry_run: true,
    };
    let len = std::fs::metadata(s.path_of(&good)).unwrap().len();
    assert_eq!(
        gc.sweep_one(&good, &dry).unwrap(),
        SweepOutcome::WouldDelete(len)
    );
    assert!(s.path_of(&good).exists(), "a dry run unlinked {good}");

    match sweep(&gc, &flipped, future) {
        SweepOutcome::Corrupt { reason, .. } => assert!(reason.contains("CRC"), "{reason}"),
        other => panic!("flipped byte swept as {other:?}"),
    }
    assert!(s.path_of(&flipped).exists());
    match sweep(&gc, &forged, future) {
        SweepOutcome::Corrupt { reason, .. } => assert!(reason.contains("hashes to"), "{reason}"),
        other => panic!("forged object swept as {other:?}"),
    }
    assert!(s.path_of(&forged).exists());
    // Without BLAKE3, only framing, CRC and the header id are checked.
    let crc_only = SweepCheck {
        cutoff: future,
        verify_hash: false,
        dry_run: true,
    };
    assert!(matches!(
        gc.sweep_one(&forged, &crc_only).unwrap(),
        SweepOutcome::WouldDelete(_)
    ));
    assert!(matches!(
        gc.sweep_one(&flipped, &crc_only).unwrap(),
        SweepOutcome::Corrupt { .. }
    ));

    assert_eq!(sweep(&gc, &good, future), SweepOutcome::Deleted(len));
    assert!(!s.path_of(&good).exists());
}

#[test]
fn the_sweep_refuses_symlinks_and_ids_of_another_shard() {
    let (d, s) = store();
    let future = SystemTime::now() + Duration::from_secs(3600);
    let target = d.path().join("precious");
    std::fs::write(&target, b"not an object").unwrap();
    let id = ObjectId::compute(Kind::Blob, b"linked");
    let path = s.path_of(&id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let gc = s.begin_gc().unwrap();
    match sweep(&gc, &id, future) {
        SweepOutcome::Corrupt { reason, .. } => {
            assert!(reason.contains("symbolic link"), "{reason}")
        }
        other => panic!("symlink swept as {other:?}"),
    }
    assert!(target.exists() && std::fs::symlink_metadata(&path).is_ok());

    let hex = id.to_hex();
    let mut shard = gc.open_shard(&hex[..2]).unwrap().unwrap();
    let other = (0..=255u8)
        .map(|i| ObjectId::compute(Kind::Blob, &[i]))
        .find(|o| o.as_bytes()[0] != id.as_bytes()[0])
        .unwrap();
    let check = SweepCheck {
        cutoff: future,
        verify_hash: true,
        dry_run: false,
    };
    let err = shard.sweep(&other, &check).unwrap_err().to_string();
    assert!(err.contains("does not belong"), "{err}");
    assert!(gc.open_shard("zz").unwrap().is_none());
    assert!(gc.open_shard("abc").is_err());
}

#[test]
fn the_sweep_verifies_mapped_objects_too() {
    // Objects of 64 KiB and more are mapped, not read into the buffer.
    let (_d, s) = store();
    let future = SystemTime::now() + Duration::from_secs(3600);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let sound = s.put(Kind::Blob, &big).unwrap();
    let mut other = big.clone();
    other[0] ^= 1;
    let rotten = s.put(Kind::Blob, &other).unwrap();
    let mut bytes = std::fs::read(s.path_of(&rotten)).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(s.path_of(&rotten), bytes).unwrap();
    let gc = s.begin_gc().unwrap();
    match sweep(&gc, &rotten, future) {
        SweepOutcome::Corrupt { len, reason } => {
            assert!(reason.contains("CRC"), "{reason}");
            assert!(len > 300_000);
        }
        other => panic!("corrupt mapped object swept as {other:?}"),
    }
    assert!(matches!(sweep(&gc, &sound, future), SweepOutcome::Deleted(n) if n > 300_000));
    assert!(!s.path_of(&sound).exists() && s.path_of(&rotten).exists());
}
