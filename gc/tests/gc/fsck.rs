use std::fs;

use sydra_gc::{Error, FsckOptions, FsckReport, NoProgress, NoVisitor, collect, fsck};
use sydra_objects::{Kind, ObjectId};

use super::common::{Fixture, eager};

/// main -> commit -> root tree -> dir/ -> file blob, plus a snapshot.
fn repo() -> (Fixture, ObjectId) {
    let f = Fixture::new();
    let a = f.simple_commit(&[], "a");
    let b = f.simple_commit(&[a], "b");
    f.set_ref("refs/heads/main", b);
    f.set_ref("refs/snapshots/a", a);
    (f, b)
}

fn check(f: &Fixture) -> FsckReport {
    fsck(
        &f.refs,
        &FsckOptions::default(),
        &mut NoVisitor,
        &NoProgress,
    )
    .unwrap()
}

/// The blob under `dir/file` of commit `c`, and the `dir` tree.
fn parts(f: &Fixture, c: ObjectId) -> (ObjectId, ObjectId) {
    let root = f.store().get(&c).unwrap().commit().unwrap().tree;
    let dir = f.store().get(&root).unwrap().tree().unwrap().entries[0].id;
    let blob = f.store().get(&dir).unwrap().tree().unwrap().entries[0].id;
    (dir, blob)
}

#[test]
fn a_sound_store_is_clean_and_leftovers_are_only_notes() {
    let (f, _) = repo();
    fs::write(f.store().tmp_dir().join("obj-999999999-3.tmp"), b"x").unwrap();
    fs::write(f.dir.path().join("refs/heads/main.lock"), b"").unwrap();
    let r = check(&f);
    assert!(r.is_clean(), "{:#?}", r.problems);
    assert_eq!(r.commits.count, 2);
    assert_eq!(r.reachable.objects(), r.objects().count);
    assert!(
        r.notes
            .iter()
            .any(|n| n.check == "leftover" && n.message.contains("orphaned"))
    );
    assert!(r.notes.iter().any(|n| n.message.contains("main.lock")));
}

fn corrupt_with(f: &Fixture, id: &ObjectId, damage: impl FnOnce(&mut Vec<u8>)) {
    let path = f.path_of(id);
    let mut bytes = fs::read(&path).unwrap();
    damage(&mut bytes);
    fs::write(&path, bytes).unwrap();
}

#[test]
fn a_flipped_byte_a_truncation_and_zero_fill_are_each_reported_with_id_and_path() {
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 3] = [
        ("flipped", |b| {
            let i = b.len() - 6;
            b[i] ^= 0x20;
        }),
        ("truncated", |b| b.truncate(b.len() - 2)),
        ("zeroed", |b| b.iter_mut().for_each(|x| *x = 0)),
    ];
    for (what, damage) in damages {
        let (f, tip) = repo();
        let (_, blob) = parts(&f, tip);
        corrupt_with(&f, &blob, damage);
        let r = check(&f);
        assert_eq!(r.problems.len(), 1, "{what}: {:#?}", r.problems);
        let p = &r.problems[0];
        assert_eq!((p.check, p.id), ("object", Some(blob)), "{what}");
        assert_eq!(p.path.as_deref(), Some(f.path_of(&blob).to_str().unwrap()));
        assert!(
            p.message.contains(&format!(
                "refs/heads/main -> commit {tip} -> tree dir -> blob {blob}"
            )),
            "{what}: {}",
            p.message
        );
        assert_eq!(r.corrupt, 1);
        // GC neither deletes it nor crashes; it is reachable, so kept.
        collect(&f.refs, &eager(), &NoProgress).unwrap();
        assert!(f.path_of(&blob).exists(), "{what}");
    }
}

#[test]
fn a_ref_to_a_missing_object_is_reported() {
    let (f, _) = repo();
    let ghost = ObjectId::compute(Kind::Commit, b"never written");
    fs::write(f.dir.path().join("refs/heads/ghost"), format!("{ghost}\n")).unwrap();
    let r = check(&f);
    let p = r
        .problems
        .iter()
        .find(|p| p.check == "ref")
        .expect("a ref problem");
    assert_eq!(p.id, Some(ghost));
    assert!(p.path.as_deref().unwrap().ends_with("refs/heads/ghost"));
    assert!(p.message.contains("missing object"));
    assert!(
        r.problems
            .iter()
            .any(|p| p.check == "connectivity" && p.id == Some(ghost))
    );
    assert!(matches!(
        collect(&f.refs, &eager(), &NoProgress),
        Err(Error::Damaged { .. })
    ));
}

#[test]
fn a_missing_subtree_is_reported_by_the_path_that_reaches_it() {
    let (f, tip) = repo();
    let (dir, _) = parts(&f, tip);
    fs::remove_file(f.path_of(&dir)).unwrap();
    let r = check(&f);
    assert_eq!(r.problems.len(), 1, "{:#?}", r.problems);
    let p = &r.problems[0];
    assert_eq!((p.check, p.id), ("connectivity", Some(dir)));
    assert_eq!(
        p.path.as_deref(),
        Some(format!("refs/heads/main -> commit {tip} -> tree / -> tree {dir}").as_str())
    );
    assert!(p.message.contains("is missing"));
}

#[test]
fn a_corrupt_reflog_and_a_stray_ref_file_are_problems() {
    let (f, _) = repo();
    fs::write(
        f.dir.path().join("logs/refs/heads/main"),
        b"not a reflog line\n",
    )
    .unwrap();
    fs::write(f.dir.path().join("refs/heads/bad name"), b"x").unwrap();
    let r = check(&f);
    assert!(
        r.problems.iter().any(|p| p.check == "reflog"),
        "{:#?}",
        r.problems
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.check == "ref" && p.message.contains("bad name"))
    );
}

/// Starts a GC with a horizon of one commit at the first commit fsck's
/// walk reaches: what a GC in another process may do at any moment.
struct GcMidWalk<'a> {
    refs: &'a sydra_refs::RefStore,
    outcome: Option<Result<sydra_gc::GcReport, Error>>,
}

impl sydra_gc::Visitor for GcMidWalk<'_> {
    fn commit(
        &mut self,
        _id: &ObjectId,
        _commit: &sydra_objects::CommitRef<'_>,
        _via: sydra_gc::Via<'_>,
    ) {
        if self.outcome.is_none() {
            let options = sydra_gc::GcOptions {
                retain: Some(sydra_gc::Keep::Commits(std::num::NonZeroU64::MIN)),
                ..eager()
            };
            self.outcome = Some(collect(self.refs, &options, &NoProgress));
        }
    }
}

/// A GC that cut history while fsck walked it made fsck report the commits
/// it deleted as missing (a race, not damage). fsck holds the GC lock for
/// the whole check, so such a GC is refused.
#[test]
fn a_gc_cannot_start_under_fsck() {
    let f = Fixture::new();
    let mut tip = f.simple_commit(&[], "0");
    for i in 1..6 {
        tip = f.simple_commit(&[tip], &i.to_string());
    }
    f.set_ref("refs/heads/main", tip);
    let mut gc = GcMidWalk {
        refs: &f.refs,
        outcome: None,
    };
    let report = fsck(&f.refs, &FsckOptions::default(), &mut gc, &NoProgress).unwrap();
    match gc.outcome {
        Some(Err(e)) => assert!(e.is_running(), "{e}"),
        Some(Ok(r)) => panic!("a GC ran under fsck: {r:?}"),
        None => panic!("the walk reached no commit"),
    }
    assert!(report.is_clean(), "{:?}", report.problems);
    // And once fsck is done, GC runs.
    collect(&f.refs, &eager(), &NoProgress).unwrap();
}

/// fsck waits for a running GC (here: its lock held) instead of failing.
#[test]
fn fsck_waits_for_a_running_gc() {
    let (f, _) = repo();
    let lock = sydra_gc::GcLock::acquire(f.dir.path()).unwrap();
    std::thread::scope(|s| {
        let checking = s.spawn(|| check(&f));
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!checking.is_finished(), "fsck ran while a GC held the lock");
        drop(lock);
        let report = checking.join().unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
    });
}

/// Without a usable GC lock (here: a directory in its place) fsck still
/// runs, and says that it ran without it.
#[test]
fn fsck_without_the_gc_lock_runs_and_says_so() {
    let (f, _) = repo();
    fs::create_dir(f.dir.path().join(sydra_gc::GC_LOCK_FILE)).unwrap();
    let report = check(&f);
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.message.contains("without the GC lock")),
        "{:?}",
        report.notes
    );
}

/// A pack and its index appear by two renames and go by two unlinks, in
/// batches and automatic repacks that take no GC lock: fsck waits for a
/// pair caught half-way to settle, and reports only one that stays so.
#[test]
fn a_pack_without_its_index_is_reported_only_when_it_stays_so() {
    let (f, _) = repo();
    let mut b = f.store().batch(sydra_objects::Durability::None);
    for i in 0..4 {
        b.put(Kind::Blob, format!("packed {i}").as_bytes()).unwrap();
    }
    let (_, stats) = b.commit().unwrap();
    let hash = stats.pack.unwrap();
    let dir = f.store().pack_dir().to_path_buf();
    let pack = dir.join(sydra_objects::pack::file_name(&hash, "pack"));
    let idx = dir.join(sydra_objects::pack::file_name(&hash, "idx"));
    let aside = f.dir.path().join("aside");
    assert!(check(&f).is_clean());

    // The index arrives while fsck looks: clean.
    fs::rename(&idx, &aside).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            fs::rename(&aside, &idx).unwrap();
        });
        let r = check(&f);
        assert!(r.is_clean(), "{:?}", r.problems);
    });
    assert!(idx.exists());

    // The pack goes, then its index, while fsck looks: clean.
    fs::rename(&pack, &aside).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            fs::remove_file(&idx).unwrap();
        });
        let r = check(&f);
        assert!(r.is_clean(), "{:?}", r.problems);
    });

    // An index that stays without its pack, and a pack that stays
    // without its index, are each reported.
    let reports = |what: &str| {
        let r = check(&f);
        assert!(
            r.problems.iter().any(|p| p.message.contains(what)),
            "{what}: {:?}",
            r.problems
        );
    };
    fs::write(&idx, b"an index").unwrap();
    reports("has no pack beside it");
    fs::remove_file(&idx).unwrap();
    fs::rename(&aside, &pack).unwrap();
    reports("no index beside it");
}
