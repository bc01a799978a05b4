use std::fs;
use std::time::{Duration, SystemTime};

use sydra_gc::{GcOptions, NoProgress, NoVisitor, Session, collect};
use sydra_objects::{Durability, Kind};

use super::common::{Fixture, closure, eager};

/// Refs with shared history, a deleted branch, loose garbage.
fn history(f: &Fixture) {
    let a = f.simple_commit(&[], "a");
    let b = f.simple_commit(&[a], "b");
    let c = f.simple_commit(&[b], "c");
    let x = f.simple_commit(&[b], "x");
    let y = f.simple_commit(&[x], "y");
    f.set_ref("refs/heads/main", c);
    f.set_ref("refs/heads/topic", y);
    f.set_ref("refs/snapshots/s1", b);
    f.set_ref("refs/heads/gone", f.simple_commit(&[c], "gone"));
    f.delete_ref("refs/heads/gone");
    f.blob(b"loose garbage");
    f.tree(&[("orphan", Kind::Blob, f.blob(b"orphan blob"))]);
}

fn ref_tips(f: &Fixture) -> Vec<sydra_objects::ObjectId> {
    f.refs
        .list("")
        .unwrap()
        .into_iter()
        .filter_map(|(_, t)| t.object())
        .collect()
}

#[test]
fn gc_deletes_exactly_the_objects_no_ref_reaches() {
    let f = Fixture::new();
    history(&f);
    let expected = closure(f.store(), &ref_tips(&f), &[]);
    let before = f.objects();
    let r = collect(&f.refs, &eager(), &NoProgress).unwrap();
    let after = f.objects();
    assert_eq!(after, expected.iter().copied().collect());
    assert_eq!(r.swept.deleted as usize, before.len() - after.len());
    assert_eq!(r.reachable.objects() as usize, expected.len());
    assert!(r.swept.bytes_freed > 0);
    // Idempotent.
    let r2 = collect(&f.refs, &eager(), &NoProgress).unwrap();
    assert_eq!((r2.swept.deleted, r2.swept.unreachable), (0, 0));
}

#[test]
fn a_dry_run_deletes_nothing_and_reports_the_same_counts() {
    let f = Fixture::new();
    history(&f);
    let before = f.objects();
    let dry = collect(
        &f.refs,
        &GcOptions {
            dry_run: true,
            ..eager()
        },
        &NoProgress,
    )
    .unwrap();
    assert!(dry.dry_run);
    assert_eq!(f.objects(), before);
    let real = collect(&f.refs, &eager(), &NoProgress).unwrap();
    assert_eq!(dry.reachable, real.reachable);
    assert_eq!(dry.swept, real.swept);
    assert!(real.swept.deleted > 0);
}

#[test]
fn the_grace_period_keeps_recent_garbage() {
    let f = Fixture::new();
    history(&f);
    let before = f.objects();
    let opts = GcOptions {
        reflog_expiry: Duration::ZERO,
        ..GcOptions::default()
    };
    let r = collect(&f.refs, &opts, &NoProgress).unwrap();
    assert_eq!(r.swept.deleted, 0);
    assert_eq!(r.swept.kept_recent, r.swept.unreachable);
    assert_eq!(f.objects(), before);
    f.age_objects(Duration::from_secs(2 * 3600));
    let r = collect(&f.refs, &opts, &NoProgress).unwrap();
    assert_eq!(r.swept.kept_recent, 0);
    assert!(r.swept.deleted > 0);
}

#[test]
fn a_corrupt_unreachable_object_is_kept_and_reported_not_deleted() {
    let f = Fixture::new();
    history(&f);
    let bad = f.blob(b"garbage that rots");
    let path = f.path_of(&bad);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let r = collect(&f.refs, &eager(), &NoProgress).unwrap();
    assert_eq!(r.swept.kept_corrupt.len(), 1);
    assert_eq!(r.swept.kept_corrupt[0].id, bad);
    assert_eq!(r.swept.kept_corrupt[0].path, path);
    assert!(r.swept.kept_corrupt[0].reason.contains("CRC"));
    assert!(path.exists());
    assert!(r.swept.deleted > 0, "other garbage still goes");
    // A zero-filled and a truncated one as well.
    let z = f.blob(b"zeroed");
    let zp = f.path_of(&z);
    let len = fs::metadata(&zp).unwrap().len() as usize;
    fs::write(&zp, vec![0u8; len]).unwrap();
    let t = f.blob(b"truncated soon");
    let tp = f.path_of(&t);
    let tb = fs::read(&tp).unwrap();
    fs::write(&tp, &tb[..tb.len() - 3]).unwrap();
    let r = collect(&f.refs, &eager(), &NoProgress).unwrap();
    let kept: Vec<_> = r.swept.kept_corrupt.iter().map(|c| c.id).collect();
    assert!(kept.contains(&bad) && kept.contains(&z) && kept.contains(&t));
    // Whatever the number of sweep threads, the list comes sorted by id.
    assert!(kept.windows(2).all(|w| w[0] < w[1]), "{kept:?}");
    assert!(zp.exists() && tp.exists());
}

#[test]
fn objects_written_or_reused_during_a_session_are_never_swept() {
    let f = Fixture::new();
    history(&f);
    let old_garbage = f.blob(b"old garbage, reused later");
    let session = Session::begin(&f.refs).unwrap();
    // Written after the GC began, never referenced: protected.
    let fresh = f.blob(b"written during the gc");
    // A dedup hit on old garbage after the GC began: protected too.
    let mut batch = f.store().batch(Durability::None);
    assert_eq!(
        batch.put(Kind::Blob, b"old garbage, reused later").unwrap(),
        old_garbage
    );
    let (pinned, stats) = batch.commit().unwrap();
    assert_eq!(stats.deduped, 1);
    drop(pinned);
    let h = session.horizon().unwrap();
    let roots = session.roots(&h, Duration::ZERO).unwrap();
    let m = session
        .mark(&roots, &h, &mut NoVisitor, &NoProgress)
        .unwrap();
    // Grace zero: only protection keeps them, whatever their mtime says.
    let far = GcOptions {
        grace: Duration::ZERO,
        ..GcOptions::default()
    };
    let swept = session.sweep(&m, &far, &NoProgress).unwrap();
    assert!(swept.kept_protected >= 2, "{swept:?}");
    assert!(f.store().contains(&fresh).unwrap());
    assert!(f.store().contains(&old_garbage).unwrap());
    drop(session);
    // The next GC (no writes during it) collects them.
    collect(&f.refs, &eager(), &NoProgress).unwrap();
    assert!(!f.store().contains(&fresh).unwrap());
    assert!(!f.store().contains(&old_garbage).unwrap());
}

#[test]
fn temp_files_of_dead_writers_are_removed_after_the_grace_period() {
    let f = Fixture::new();
    let tmp = f.store().tmp_dir().to_path_buf();
    let old = SystemTime::now() - Duration::from_secs(3 * 3600);
    let mk = |name: &str, aged: bool| {
        let p = tmp.join(name);
        fs::write(&p, b"partial").unwrap();
        if aged {
            fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        p
    };
    // Beyond any pid_max: a dead writer.
    let dead_old = mk("obj-999999999-1.tmp", true);
    let dead_new = mk("obj-999999999-2.tmp", false);
    let ours = mk(&format!("obj-{}-424242.tmp", std::process::id()), true);
    let r = collect(&f.refs, &GcOptions::default(), &NoProgress).unwrap();
    assert_eq!(r.swept.temp_files_removed, 1);
    assert!(!dead_old.exists());
    assert!(dead_new.exists(), "within the grace period");
    assert!(ours.exists(), "this process may still be writing it");
    let r = collect(&f.refs, &eager(), &NoProgress).unwrap();
    assert_eq!(r.swept.temp_files_removed, 1);
    assert!(!dead_new.exists() && ours.exists());
}

#[test]
fn empty_shard_directories_go_once_old_and_writers_recreate_them() {
    let f = Fixture::new();
    let g = f.blob(b"the only object");
    let shard = f.path_of(&g).parent().unwrap().to_path_buf();
    collect(&f.refs, &eager(), &NoProgress).unwrap();
    assert!(shard.is_dir(), "just emptied: too young to remove");
    fs::File::open(&shard)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(600))
        .unwrap();
    let r = collect(&f.refs, &eager(), &NoProgress).unwrap();
    assert_eq!(r.swept.shard_dirs_removed, 1);
    assert!(!shard.exists());
    // A writer finds the shard gone and creates it again.
    assert_eq!(f.blob(b"the only object"), g);
    assert!(f.store().contains(&g).unwrap());
}
