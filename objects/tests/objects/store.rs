use std::fs;
use std::io::Write;

use sydra_objects::{Durability, Error, Kind, ObjectId, Prefix};

use super::common::{count, store, store_with};

#[test]
fn write_read_dedup_and_stat() {
    let (_d, s) = store_with(Durability::Each);
    let id = s.put(Kind::Blob, b"hello").unwrap();
    assert_eq!(id, ObjectId::compute(Kind::Blob, b"hello"));
    let obj = s.get(&id).unwrap();
    assert_eq!(obj.kind, Kind::Blob);
    assert_eq!(&*obj.data, b"hello");
    assert!(!obj.data.is_mapped());
    let st = s.stat(&id).unwrap();
    assert_eq!((st.kind, st.size, st.file_len), (Kind::Blob, 5, 65));
    assert!(s.contains(&id).unwrap());
    // Dedup: same id, still one object, mtime freshened.
    let path = s.path_of(&id);
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert_eq!(s.put(Kind::Blob, b"hello").unwrap(), id);
    assert_eq!(count(&s), 1);
    assert!(
        fs::metadata(&path).unwrap().modified().unwrap() > old,
        "dedup hit must freshen mtime"
    );
    assert!(matches!(
        s.get(&ObjectId::compute(Kind::Blob, b"nope")),
        Err(Error::NotFound(_))
    ));
    assert!(s.delete(&id).unwrap());
    assert!(!s.delete(&id).unwrap());
    assert!(!s.contains(&id).unwrap());
}

#[test]
fn flipped_byte_is_detected_by_crc_and_names_the_object() {
    let (_d, s) = store();
    let id = s.put(Kind::Blob, b"some payload bytes").unwrap();
    let path = s.path_of(&id);
    let orig = fs::read(&path).unwrap();
    for i in 0..orig.len() {
        let mut b = orig.clone();
        b[i] ^= 0x01;
        fs::write(&path, &b).unwrap();
        let err = s.get(&id).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Corrupt { .. }), "byte {i}: {msg}");
        assert!(
            msg.contains(&id.to_hex()),
            "error must name the object: {msg}"
        );
    }
}

#[test]
fn header_id_must_match_path() {
    let (_d, s) = store();
    let a = s.put(Kind::Blob, b"a").unwrap();
    let b = ObjectId::compute(Kind::Blob, b"b");
    let dst = s.path_of(&b);
    fs::create_dir_all(dst.parent().unwrap()).unwrap();
    fs::copy(s.path_of(&a), &dst).unwrap();
    let err = s.get(&b).unwrap_err().to_string();
    assert!(err.contains("header names object"), "{err}");
    assert!(s.stat(&b).is_err());
}

#[test]
fn zero_filled_and_torn_files_are_replaced_on_put() {
    let (_d, s) = store_with(Durability::Each);
    let id = s.put(Kind::Blob, b"precious").unwrap();
    let path = s.path_of(&id);
    let len = fs::metadata(&path).unwrap().len() as usize;
    // A zero-filled file, as a crash on some filesystems leaves behind.
    fs::write(&path, vec![0u8; len]).unwrap();
    assert!(s.get(&id).is_err());
    assert_eq!(s.put(Kind::Blob, b"precious").unwrap(), id);
    assert_eq!(&*s.get(&id).unwrap().data, b"precious");
    // A torn (truncated) file.
    let full = fs::read(&path).unwrap();
    fs::write(&path, &full[..full.len() - 3]).unwrap();
    assert_eq!(s.put(Kind::Blob, b"precious").unwrap(), id);
    assert_eq!(&*s.get(&id).unwrap().data, b"precious");
}

#[test]
fn verified_read_recomputes_blake3() {
    let (_d, s) = store();
    let id = s.put(Kind::Blob, b"abc").unwrap();
    // Rewrite the payload and fix up the CRC: only BLAKE3 can tell.
    let path = s.path_of(&id);
    let mut b = fs::read(&path).unwrap();
    b[56] = b'x';
    let n = b.len() - 4;
    let crc = crc32(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, &b).unwrap();
    assert!(s.get(&id).is_ok());
    let err = s.get_verified(&id).unwrap_err().to_string();
    assert!(err.contains("hashes to"), "{err}");
}

fn crc32(b: &[u8]) -> u32 {
    // Bitwise IEEE CRC32, independent of the crate under test.
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn large_objects_are_mapped_and_streamed() {
    let (_d, s) = store_with(Durability::Batch);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let id = s
        .put_reader(Kind::Blob, big.len() as u64, &big[..])
        .unwrap();
    assert_eq!(id, ObjectId::compute(Kind::Blob, &big));
    let obj = s.get_verified(&id).unwrap();
    assert!(obj.data.is_mapped());
    assert_eq!(&*obj.data, &big[..]);
    // put (in memory) of the same bytes dedups to the same file.
    assert_eq!(s.put(Kind::Blob, &big).unwrap(), id);
    // Wrong declared length is refused and leaves no temp file.
    let err = s.put_reader(Kind::Blob, 10, &b"short"[..]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                expected: 10,
                actual: 5,
                ..
            }
        ),
        "{err}"
    );
    let err = s.put_reader(Kind::Blob, 2, &b"longer"[..]).unwrap_err();
    assert!(
        matches!(err, Error::LengthMismatch { expected: 2, .. }),
        "{err}"
    );
    assert_eq!(super::common::tmp_files(&s), 0);
}

#[test]
fn iter_and_prefix_lookup() {
    let (_d, s) = store();
    let mut ids: Vec<ObjectId> = (0..300)
        .map(|i| s.put(Kind::Blob, format!("{i}").as_bytes()).unwrap())
        .collect();
    ids.sort();
    let mut listed: Vec<ObjectId> = s.iter().unwrap().map(Result::unwrap).collect();
    listed.sort();
    assert_eq!(listed, ids);
    // Stray files are not ids.
    fs::File::create(s.dir().join("junk"))
        .unwrap()
        .write_all(b"x")
        .unwrap();
    assert_eq!(s.iter().unwrap().count(), 300);
    let id = ids[17];
    let p: Prefix = id.to_hex()[..12].parse().unwrap();
    assert_eq!(s.resolve_prefix(&p).unwrap(), id);
    // With 300 objects some 2-hex shard holds two ids: a 2+ digit shared prefix.
    let (a, b) = ids
        .windows(2)
        .map(|w| (w[0], w[1]))
        .find(|(a, b)| a.to_hex()[..4] == b.to_hex()[..4])
        .unwrap_or_else(|| {
            let w = ids
                .windows(2)
                .find(|w| w[0].to_hex()[..2] == w[1].to_hex()[..2])
                .unwrap();
            (w[0], w[1])
        });
    let common = a
        .to_hex()
        .chars()
        .zip(b.to_hex().chars())
        .take_while(|(x, y)| x == y)
        .count();
    if common >= 4 {
        let p: Prefix = a.to_hex()[..common].parse().unwrap();
        assert!(matches!(s.resolve_prefix(&p), Err(Error::Ambiguous { .. })));
    }
    let p: Prefix = "ffffffffffff".parse().unwrap();
    assert!(s.resolve_prefix(&p).is_err());
}
