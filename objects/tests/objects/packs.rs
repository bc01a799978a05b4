use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sydra_objects::pack::{self, PackVerify, verify_pack};
use sydra_objects::store::{AUTO_REPACK_PACKS, PackRepair};
use sydra_objects::{
    Commit, Durability, Entry, Kind, ObjectId, Options, Prefix, RepackOptions, Store, Tree,
};

use super::common::{count, store, store_with};

fn pack_files(s: &Store) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match fs::read_dir(s.pack_dir()) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn loose(s: &Store) -> usize {
    s.iter().unwrap().count()
}

/// A batch of `n` blobs, a tree over them and a commit; returns all ids.
fn history(s: &Store, n: usize, tag: &str) -> Vec<ObjectId> {
    let mut b = s.batch(Durability::Batch);
    let mut ids = Vec::new();
    let mut entries = Vec::new();
    for i in 0..n {
        let payload = format!("{tag} blob {i} {}", "x".repeat(i % 50));
        let id = b.put(Kind::Blob, payload.as_bytes()).unwrap();
        entries.push(Entry {
            kind: Kind::Blob,
            name: format!("f{i}"),
            id,
        });
        ids.push(id);
    }
    if n >= 10 {
        // One object above the mmap threshold, different for every tag.
        let big: Vec<u8> = tag.bytes().cycle().take(100 * 1024).collect();
        ids.push(b.put(Kind::Blob, &big).unwrap());
    }
    let tree = Tree::from_entries(entries).unwrap();
    let t = b.put(Kind::Tree, &tree.encode()).unwrap();
    ids.push(t);
    let c = Commit {
        tree: t,
        message: tag.into(),
        ..Commit::default()
    };
    ids.push(b.put(Kind::Commit, &c.encode().unwrap()).unwrap());
    let (_, stats) = b.commit().unwrap();
    assert!(stats.pack.is_some());
    ids
}

fn no_check() -> impl FnMut(&pack::Entry, &[u8]) -> Result<(), String> {
    |_, _| Ok(())
}

#[test]
fn a_batch_becomes_one_pack_and_every_read_goes_through_it() {
    for d in [Durability::None, Durability::Batch, Durability::Each] {
        let (_dir, s) = store_with(d);
        let ids = history(&s, 40, "a");
        assert_eq!(loose(&s), 0, "{d:?}: nothing loose");
        assert_eq!(pack_files(&s).len(), 2, "{d:?}: one .pack and one .idx");
        assert_eq!(count(&s), ids.len());
        let mut r = s.reader();
        for id in &ids {
            let o = s.get_verified(id).unwrap();
            assert!(o.data.is_mapped(), "a packed payload is a slice of the map");
            let st = s.stat(id).unwrap();
            assert_eq!((st.kind, st.size), (o.kind, o.data.len() as u64));
            assert!(s.contains(id).unwrap() && s.contains_packed(id));
            let p = r.read(id, true).unwrap();
            assert_eq!(&p[..], &o.data[..]);
            assert_eq!(r.file_len(id).unwrap(), st.file_len);
            let prefix: Prefix = id.to_hex()[..12].parse().unwrap();
            assert_eq!(s.resolve_prefix(&prefix).unwrap(), *id);
        }
        let absent = ObjectId::compute(Kind::Blob, b"never written");
        assert!(!s.contains(&absent).unwrap());
        assert!(s.get(&absent).unwrap_err().is_not_found());
        assert!(r.read(&absent, false).unwrap_err().is_not_found());
        // The pack lists commits, then trees, then blobs.
        let p = &s.packs()[0];
        let mut kinds = Vec::new();
        pack::scan(p.bytes(), true, |e| {
            kinds.push(e.kind);
            Ok(())
        })
        .unwrap();
        assert_eq!(kinds[0], Kind::Commit);
        assert_eq!(kinds[1], Kind::Tree);
        assert!(kinds[2..].iter().all(|k| *k == Kind::Blob));
        let v = verify_pack(p.path(), &mut no_check()).unwrap();
        assert!(v.is_clean(), "{:?}", v.problems);
        assert_eq!(v.objects as usize, ids.len());
        // Reopened: the same.
        let s2 = Store::open(s.dir(), Options::default()).unwrap();
        for id in &ids {
            s2.get_verified(id).unwrap();
        }
    }
}

#[test]
fn single_puts_stay_loose_and_dedup_sees_packed_copies() {
    let (_dir, s) = store();
    let id = s.put(Kind::Blob, b"single").unwrap();
    assert_eq!(loose(&s), 1);
    assert!(pack_files(&s).is_empty());
    let ids = history(&s, 5, "b");
    let packs = s.packs().len();
    let old = SystemTime::now() - Duration::from_secs(3600);
    let p = s.packs()[0].path().to_path_buf();
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let mut b = s.batch(Durability::Batch);
    b.put(Kind::Blob, b"single").unwrap();
    let again = s.get(&ids[0]).unwrap();
    b.put(again.kind, &again.data).unwrap();
    let (_, stats) = b.commit().unwrap();
    assert_eq!((stats.written, stats.deduped, stats.pack), (0, 2, None));
    assert_eq!(s.packs().len(), packs);
    // The dedup hit freshened the pack (a GC's grace period restarts).
    assert!(fs::metadata(&p).unwrap().modified().unwrap() > old);
    s.get_verified(&id).unwrap();
}

#[test]
fn open_repairs_what_a_crash_between_renames_leaves() {
    let (_dir, s) = store();
    let ids = history(&s, 10, "c");
    let p = s.packs()[0].clone();
    let (pack_path, idx_path) = (p.path().to_path_buf(), p.idx_path());
    drop(p);
    // The index never made it: re-indexed from the pack alone.
    fs::remove_file(&idx_path).unwrap();
    let s2 = Store::open(s.dir(), Options::default()).unwrap();
    assert!(idx_path.exists());
    for id in &ids {
        s2.get_verified(id).unwrap();
    }
    // An index whose pack is gone: removed.
    let orphan = s.pack_dir().join(pack::file_name(
        &ObjectId::compute(Kind::Blob, b"gone"),
        "idx",
    ));
    fs::write(&orphan, b"whatever").unwrap();
    let repairs = s2.rescan_packs().unwrap();
    assert!(repairs.contains(&PackRepair::RemovedIndex(orphan.clone())));
    assert!(!orphan.exists());
    // A torn pack without an index (never live): removed.
    let torn = s.pack_dir().join(pack::file_name(
        &ObjectId::compute(Kind::Blob, b"torn"),
        "pack",
    ));
    let bytes = fs::read(&pack_path).unwrap();
    fs::write(&torn, &bytes[..bytes.len() / 2]).unwrap();
    let repairs = s2.rescan_packs().unwrap();
    assert!(
        repairs
            .iter()
            .any(|r| matches!(r, PackRepair::RemovedPack { path, .. } if *path == torn)),
        "{repairs:?}"
    );
    assert!(!torn.exists());
    // A damaged index is not rebuilt behind anyone's back: the pack is not
    // read, and verify names the index.
    let mut idx = fs::read(&idx_path).unwrap();
    idx[60] ^= 0xff;
    fs::write(&idx_path, &idx).unwrap();
    let s3 = Store::open(s.dir(), Options::default()).unwrap();
    assert!(s3.packs().is_empty());
    assert!(s3.get(&ids[0]).unwrap_err().is_not_found());
    let v: PackVerify = verify_pack(&pack_path, &mut no_check()).unwrap();
    assert!(!v.is_clean());
    assert!(v.problems[0].contains(".idx"), "{:?}", v.problems);
}

#[test]
fn another_handle_finds_new_packs_on_a_miss() {
    let (_dir, a) = store();
    let b = Store::open(a.dir(), Options::default()).unwrap();
    let ids = history(&a, 3, "d");
    // b listed pack/ before the pack existed; a miss lists it again.
    for id in &ids {
        assert!(b.contains(id).unwrap());
        b.get_verified(id).unwrap();
    }
}

#[test]
fn repack_folds_loose_objects_and_merges_packs_keeping_everything() {
    let (_dir, s) = store_with(Durability::Batch);
    let mut all = Vec::new();
    for i in 0..5 {
        all.extend(history(&s, 3 + i, &format!("e{i}")));
        all.push(s.put(Kind::Blob, format!("loose {i}").as_bytes()).unwrap());
    }
    assert_eq!(s.packs().len(), 5);
    assert_eq!(loose(&s), 5);
    let dry = s
        .repack(&RepackOptions {
            all: true,
            loose: true,
            dry_run: true,
            ..RepackOptions::default()
        })
        .unwrap();
    assert_eq!((dry.packs_removed, dry.loose_packed), (5, 5));
    assert_eq!(
        (s.packs().len(), loose(&s)),
        (5, 5),
        "a dry run changes nothing"
    );
    let r = s
        .repack(&RepackOptions {
            all: true,
            loose: true,
            ..RepackOptions::default()
        })
        .unwrap();
    assert_eq!((r.packs_before, r.packs_after, r.packs_removed), (5, 1, 5));
    assert_eq!(r.loose_packed, 5);
    all.sort_unstable();
    all.dedup();
    assert_eq!(r.objects_written as usize, all.len());
    assert_eq!(loose(&s), 0);
    assert_eq!(pack_files(&s).len(), 2);
    for id in &all {
        s.get_verified(id).unwrap();
    }
    let reopened = Store::open(s.dir(), Options::default()).unwrap();
    assert_eq!(reopened.all_ids().unwrap().len(), all.len());
    // Nothing left to do.
    let again = s
        .repack(&RepackOptions {
            all: true,
            loose: true,
            ..RepackOptions::default()
        })
        .unwrap();
    assert_eq!(again.packs_after, 1);
}

#[test]
fn geometric_repack_merges_only_small_packs_and_batches_keep_the_count_bounded() {
    let (_dir, s) = store_with(Durability::None);
    history(&s, 2000, "big");
    let big = s.packs()[0].hash();
    for i in 0..4 {
        history(&s, 2, &format!("small{i}"));
    }
    let r = s.repack(&RepackOptions::default()).unwrap();
    assert_eq!(r.packs_removed, 4, "{r:?}");
    assert!(
        s.packs().iter().any(|p| p.hash() == big),
        "the big pack is kept"
    );
    assert_eq!(s.packs().len(), 2);
    // Many small batches: the automatic merge keeps the pack count low.
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.extend(history(&s, 2, &format!("auto{i}")));
        assert!(
            s.packs().len() <= AUTO_REPACK_PACKS + 1,
            "{}",
            s.packs().len()
        );
    }
    for id in &ids {
        s.get_verified(id).unwrap();
    }
}

/// A store that never repacks on its own, under `dir`.
fn manual_store(dir: &tempfile::TempDir) -> Store {
    Store::create(
        dir.path().join("objects"),
        Options {
            manual_repack: true,
            ..Options::default()
        },
    )
    .unwrap()
}

#[test]
fn a_manual_repack_store_never_merges_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let s = manual_store(&dir);
    for i in 0..(AUTO_REPACK_PACKS + 3) {
        history(&s, 2, &format!("m{i}"));
    }
    assert_eq!(s.packs().len(), AUTO_REPACK_PACKS + 3);
}

#[test]
fn a_repack_whose_output_equals_its_input_keeps_it() {
    let (_dir, s) = store();
    let ids = history(&s, 4, "same");
    // Loose duplicates of packed objects (as a crash after a repack wrote
    // its pack but before it removed the loose files leaves them).
    for id in &ids {
        let o = s.get(id).unwrap();
        let path = s.path_of(id);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(
            &path,
            sydra_objects::store::header::encode_file(o.kind, *id, &o.data),
        )
        .unwrap();
    }
    let before = s.packs()[0].hash();
    let r = s
        .repack(&RepackOptions {
            all: true,
            loose: true,
            ..RepackOptions::default()
        })
        .unwrap();
    assert_eq!(r.new_pack, Some(before), "same objects, same pack");
    assert_eq!(loose(&s), 0);
    let reopened = Store::open(s.dir(), Options::default()).unwrap();
    for id in &ids {
        reopened.get_verified(id).unwrap();
    }
}

#[test]
fn locating_many_ids_at_once_finds_what_one_by_one_reads_find() {
    let dir = tempfile::tempdir().unwrap();
    let s = manual_store(&dir);
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.extend(history(&s, 12, &format!("p{i}")));
    }
    assert_eq!(s.packs().len(), 6);
    let loose_id = s.put(Kind::Blob, b"a loose one").unwrap();
    let missing = ObjectId::from_bytes([7; 32]);
    // Both strategies: a few ids (searched one by one) and most of the
    // store in transfer-like order with repeats (one pass over the
    // indexes).
    let mut many: Vec<ObjectId> = ids.iter().rev().copied().collect();
    many.extend([ids[3], loose_id, missing, ids[3]]);
    for want in [vec![ids[0], loose_id, missing, ids[40]], many] {
        let at = s.locate_packed(&want);
        assert_eq!(at.len(), want.len());
        for (id, at) in want.iter().zip(&at) {
            if *id == loose_id || *id == missing {
                assert!(at.is_none(), "{id} is not packed");
                continue;
            }
            assert!(at.is_some(), "{id} is packed");
            let got = s.get_located(id, at.as_ref()).unwrap();
            let plain = s.get(id).unwrap();
            assert_eq!((got.kind, &got.data[..]), (plain.kind, &plain.data[..]));
            assert_eq!(
                s.stat_located(id, at.as_ref()).unwrap().file_len,
                s.stat(id).unwrap().file_len
            );
        }
        assert!(s.get_located(&missing, None).is_err());
    }
}
