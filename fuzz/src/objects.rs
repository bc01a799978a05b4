//! Properties of the `sydra-objects` decoders, checked on arbitrary bytes.
//!
//! Shared by the fuzz targets (`fuzz/fuzz_targets/*.rs`) and by
//! `objects/tests/fuzz_regressions.rs`, which includes this file with
//! `#[path]` (with `scratch.rs`) so that the seeds and every past finding run in `cargo test`
//! on stable. Only `std`, `sydra_objects` and `tempfile` may be used here.
//!
//! Every check: no panic on any input; anything a decoder accepts encodes
//! back to exactly the input; the store reads a file exactly as the
//! in-memory parser does.

use std::cell::RefCell;

use sydra_objects::store::header::{HEADER_LEN, TRAILER_LEN, encode_file, parse_file};
use sydra_objects::{
    CommitRef, Durability, IdHasher, Kind, ObjectId, Options, Prefix, Store, Tree, TreeRef,
};

/// A tree payload: `TreeRef::decode(b)` ok => `encode() == b`, and the
/// owned form and the builder accept the same entries.
pub fn tree(data: &[u8]) {
    // The GC's framing-only read never panics, and accepts every tree
    // `decode` accepts, with the same entries.
    let raw = TreeRef::raw_entries(data);
    let Ok(t) = TreeRef::decode(data) else { return };
    let raw = raw.unwrap_or_else(|e| panic!("tree: decodes but raw_entries refuses: {e}"));
    assert_eq!(raw.len(), t.entries.len(), "tree: raw entry count");
    for (r, e) in raw.iter().zip(&t.entries) {
        assert_eq!((r.kind, r.name, r.id), (e.kind, e.name.as_bytes(), e.id));
    }
    assert_eq!(t.encode(), data, "tree: decode then encode differs");
    let owned = t.to_owned();
    assert_eq!(owned.encode(), data, "tree: owned encode differs");
    let rebuilt = Tree::from_entries(owned.entries().to_vec())
        .unwrap_or_else(|e| panic!("tree: decoded entries are refused by Tree: {e}"));
    assert_eq!(rebuilt, owned, "tree: rebuilt from entries differs");
    for e in &t.entries {
        assert_eq!(t.find(e.name), Some(e), "tree: find({:?})", e.name);
    }
}

/// A commit payload: `CommitRef::decode(b)` ok => `encode() == b`, also
/// through the owned form.
pub fn commit(data: &[u8]) {
    let Ok(c) = CommitRef::decode(data) else {
        return;
    };
    assert_eq!(c.encode(), data, "commit: decode then encode differs");
    let owned = c.to_owned();
    let bytes = owned
        .encode()
        .unwrap_or_else(|e| panic!("commit: owned form does not encode: {e}"));
    assert_eq!(bytes, data, "commit: owned encode differs");
    assert_eq!(owned.as_ref(), c, "commit: as_ref differs");
    for (k, v) in &c.meta {
        assert_eq!(c.meta(k), Some(*v), "commit: meta({k:?})");
    }
    let _ = c.meta_u64("wal.applied_seq");
}

thread_local! {
    /// One scratch store per thread (tests run in parallel); every check
    /// removes what it wrote, so it stays small however long a run is.
    static STORE: RefCell<Option<(tempfile::TempDir, Store)>> = const { RefCell::new(None) };
}

fn with_store<R>(f: impl FnOnce(&Store) -> R) -> R {
    STORE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (_, store) = slot.get_or_insert_with(|| {
            let dir = super::scratch::tempdir("objects");
            let options = Options {
                durability: Durability::None,
                ..Options::default()
            };
            let store = Store::create(dir.path().join("objects"), options)
                .unwrap_or_else(|e| panic!("scratch store: {e}"));
            (dir, store)
        });
        f(store)
    })
}

/// A loose object file: `parse_file(b)` ok => `encode_file` of what it
/// parsed is `b`; tree and commit payloads go through their decoders; and
/// the store, reading the same bytes from disk, agrees with the parser on
/// every verdict (`get`, `get_verified`, `stat`).
pub fn loose_object(data: &[u8]) {
    let parsed = parse_file(data, None);
    if let Ok((h, range)) = &parsed {
        assert_eq!(*range, HEADER_LEN..data.len() - TRAILER_LEN);
        let payload = &data[range.clone()];
        assert_eq!(h.payload_len, payload.len() as u64);
        assert_eq!(
            encode_file(h.kind, h.id, payload),
            data,
            "loose object: parse then encode differs"
        );
        match h.kind {
            Kind::Tree => tree(payload),
            Kind::Commit => commit(payload),
            Kind::Blob => {}
        }
    }
    // Store the bytes under the id their header names (or a fixed id when
    // they are too short to name one) and read them back.
    let id = data
        .get(16..48)
        .and_then(ObjectId::from_slice)
        .unwrap_or_else(|| ObjectId::from_bytes([0x5a; 32]));
    let expected = parse_file(data, Some(&id));
    with_store(|store| {
        let path = store.path_of(&id);
        let shard = path.parent().unwrap_or_else(|| panic!("no shard dir"));
        std::fs::create_dir_all(shard).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, data).unwrap_or_else(|e| panic!("{e}"));
        let got = store.get(&id);
        match (&expected, &got) {
            (Ok((h, range)), Ok(obj)) => {
                assert_eq!(obj.kind, h.kind);
                assert_eq!(&*obj.data, &data[range.clone()]);
                // Typed access never panics, whatever the payload.
                let _ = obj.tree().map(|t| t.entries.len());
                let _ = obj.commit().map(|c| c.parents.len());
                let verified = store.get_verified(&id);
                let hashes = ObjectId::compute(h.kind, &obj.data) == id;
                assert_eq!(verified.is_ok(), hashes, "get_verified vs BLAKE3");
            }
            (Err(_), Err(e)) => {
                let _ = e.to_string();
            }
            (want, got) => panic!(
                "store and parse_file disagree: parse_file {:?}, store {:?}",
                want.as_ref().map(|_| ()),
                got.as_ref().map(|_| ())
            ),
        }
        // `stat` checks everything but the CRC: it accepts whatever `get`
        // accepts, and reports the same kind and size.
        match (store.stat(&id), &expected) {
            (Ok(st), Ok((h, _))) => {
                assert_eq!((st.kind, st.size), (h.kind, h.payload_len));
                assert_eq!(st.file_len, data.len() as u64);
            }
            (Err(e), Ok(_)) => panic!("stat refuses a file get accepts: {e}"),
            _ => {}
        }
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{e}"));
    });
}

/// A blob payload: any bytes are a blob. The id is the same computed at
/// once or piecewise; the store writes exactly `encode_file` and reads back
/// the payload; dedup (a second put) changes nothing. Tree and commit
/// decoders must not panic on the same bytes.
pub fn blob(data: &[u8]) {
    let id = ObjectId::compute(Kind::Blob, data);
    let mut h = IdHasher::new(Kind::Blob, data.len() as u64);
    for piece in data.chunks(7) {
        h.update(piece);
    }
    assert_eq!(h.finalize(), id, "piecewise id differs");
    let file = encode_file(Kind::Blob, id, data);
    let (hdr, range) =
        parse_file(&file, Some(&id)).unwrap_or_else(|e| panic!("encode_file output refused: {e}"));
    assert_eq!(hdr.kind, Kind::Blob);
    assert_eq!(&file[range], data);
    tree(data);
    commit(data);
    with_store(|store| {
        let put = store
            .put(Kind::Blob, data)
            .unwrap_or_else(|e| panic!("put: {e}"));
        assert_eq!(put, id);
        let again = store
            .put(Kind::Blob, data)
            .unwrap_or_else(|e| panic!("put (dedup): {e}"));
        assert_eq!(again, id);
        let on_disk = std::fs::read(store.path_of(&id)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(on_disk, file, "stored file differs from encode_file");
        let obj = store
            .get_verified(&id)
            .unwrap_or_else(|e| panic!("get_verified: {e}"));
        assert_eq!((obj.kind, &*obj.data), (Kind::Blob, data));
        assert!(store.delete(&id).unwrap_or_else(|e| panic!("{e}")));
    });
}

/// Object ids and prefixes from text: accepted iff 64 (resp. 4 to 64) hex
/// digits of either case; the parsed value prints as the lowercase input.
pub fn object_id(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let all_hex = s.bytes().all(|b| b.is_ascii_hexdigit());
    match s.parse::<ObjectId>() {
        Ok(id) => {
            assert!(all_hex && s.len() == ObjectId::HEX_LEN, "accepted {s:?}");
            assert_eq!(id.to_hex(), s.to_ascii_lowercase());
            assert_eq!(id.to_string(), id.to_hex());
            assert_eq!(ObjectId::from_slice(id.as_bytes()), Some(id));
        }
        Err(e) => {
            assert!(!(all_hex && s.len() == ObjectId::HEX_LEN), "refused {s:?}");
            let _ = e.to_string();
        }
    }
    match s.parse::<Prefix>() {
        Ok(p) => {
            assert!(all_hex && (ObjectId::MIN_PREFIX_LEN..=ObjectId::HEX_LEN).contains(&s.len()));
            assert_eq!(p.as_str(), s.to_ascii_lowercase());
            assert_eq!(p.shard(), &p.as_str()[..2]);
            match p.as_full() {
                Some(id) => {
                    assert_eq!(s.len(), ObjectId::HEX_LEN);
                    assert!(p.matches(&id));
                }
                None => assert!(s.len() < ObjectId::HEX_LEN),
            }
            // Padding the prefix with zeros gives an id it matches.
            let full = format!("{:0<64}", p.as_str());
            let id: ObjectId = full
                .parse()
                .unwrap_or_else(|e| panic!("padded prefix: {e}"));
            assert!(p.matches(&id));
        }
        Err(e) => {
            assert!(
                !(all_hex && (ObjectId::MIN_PREFIX_LEN..=ObjectId::HEX_LEN).contains(&s.len())),
                "refused prefix {s:?}"
            );
            let _ = e.to_string();
        }
    }
}
