use std::num::NonZeroU64;
use std::time::Duration;

use sydra_gc::{GcOptions, Horizon, Keep, NoProgress, Session, collect};
use sydra_objects::ObjectId;

use super::common::{Fixture, closure, eager, now_ns};

fn count(n: u64) -> Keep {
    Keep::Commits(NonZeroU64::new(n).unwrap())
}

/// `n` commits on a first-parent chain after `parent`, oldest first.
fn chain(f: &Fixture, parent: Option<ObjectId>, n: usize, tag: &str) -> Vec<ObjectId> {
    let mut out: Vec<ObjectId> = Vec::new();
    let mut p = parent;
    for i in 0..n {
        let c = f.simple_commit(p.as_slice(), &format!("{tag}{i}"));
        out.push(c);
        p = Some(c);
    }
    out
}

fn tips(f: &Fixture) -> Vec<ObjectId> {
    f.refs
        .list("")
        .unwrap()
        .into_iter()
        .filter_map(|(_, t)| t.object())
        .collect()
}

#[test]
fn retaining_n_commits_cuts_every_chain_and_survives_reopen() {
    let f = Fixture::new();
    let main = chain(&f, None, 10, "m");
    let topic = chain(&f, Some(main[3]), 3, "t");
    f.set_ref("refs/heads/main", main[9]);
    f.set_ref("refs/heads/topic", topic[2]);
    let r = collect(
        &f.refs,
        &GcOptions {
            retain: Some(count(3)),
            ..GcOptions::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert!(r.retained);
    assert_eq!(r.horizon.boundaries(), {
        let mut b = vec![main[7], topic[0]];
        b.sort();
        b
    });
    // Durable: read back from disk, as after a reopen.
    let again = Horizon::read(f.dir.path()).unwrap();
    assert_eq!(again, r.horizon);
    // Within the grace period nothing went; with none, exactly the kept
    // history remains.
    assert_eq!(r.swept.deleted, 0);
    collect(&f.refs, &eager(), &NoProgress).unwrap();
    let expected = closure(f.store(), &tips(&f), again.boundaries());
    assert_eq!(f.objects(), expected);
    for c in &main[..7] {
        assert!(!f.store().contains(c).unwrap());
    }
    for c in main[7..].iter().chain(&topic) {
        assert!(f.store().contains(c).unwrap());
    }
    // A later GC without retention keeps the horizon and finds no damage.
    let r = collect(&f.refs, &eager(), &NoProgress).unwrap();
    assert_eq!(r.swept.deleted, 0);
    assert_eq!(r.boundaries_reached, 2);
}

#[test]
fn overlapping_chains_keep_the_deepest_history_any_ref_asks_for() {
    let f = Fixture::new();
    let c = chain(&f, None, 8, "c");
    f.set_ref("refs/heads/main", c[7]);
    f.set_ref("refs/snapshots/old", c[4]);
    let session = Session::begin(&f.refs).unwrap();
    let h = session.retain(count(3), Duration::ZERO, true).unwrap();
    // main keeps c7 c6 c5; the snapshot keeps c4 c3 c2: c5 is not a
    // boundary (its parent c4 is kept), c2 is.
    assert_eq!(h.boundaries(), &[c[2]]);
}

#[test]
fn retaining_a_duration_keeps_commits_by_timestamp() {
    let f = Fixture::new();
    let day: i64 = 86_400_000_000_000;
    let now = now_ns();
    let tree = f.tree(&[]);
    let mut p: Vec<ObjectId> = Vec::new();
    let mut cs = Vec::new();
    for age in [10, 5, 2, 1, 0] {
        let c = f.commit_at(tree, &p, &format!("{age}d"), now - age * day);
        cs.push(c);
        p = vec![c];
    }
    f.set_ref("refs/heads/main", cs[4]);
    let session = Session::begin(&f.refs).unwrap();
    let h = session
        .retain(
            Keep::Within(Duration::from_secs(3 * 86_400)),
            Duration::ZERO,
            false,
        )
        .unwrap();
    // Kept: the 2d, 1d and 0d commits; the 2d one is the boundary.
    assert_eq!(h.boundaries(), &[cs[2]]);
    assert!(h.since_ns().unwrap() <= now_ns() - 3 * day + day / 100);
    assert!(!Horizon::path(f.dir.path()).exists(), "not written");
}

#[test]
fn reflog_entries_before_the_horizon_stop_protecting_history() {
    let f = Fixture::new();
    let c = chain(&f, None, 4, "c");
    for id in &c {
        f.set_ref("refs/heads/main", *id);
    }
    let side = f.simple_commit(&[], "deleted branch");
    f.set_ref("refs/heads/side", side);
    f.delete_ref("refs/heads/side");
    // Default reflog expiry (90 days) and no grace: only retention can cut.
    let opts = GcOptions {
        grace: Duration::ZERO,
        retain: Some(count(1)),
        ..GcOptions::default()
    };
    collect(&f.refs, &opts, &NoProgress).unwrap();
    assert!(f.store().contains(&c[3]).unwrap());
    for id in c[..3].iter().chain([&side]) {
        assert!(!f.store().contains(id).unwrap());
    }
    // A reflog entry written after the horizon protects again.
    let later = f.simple_commit(&[c[3]], "later");
    f.set_ref("refs/heads/tmp", later);
    f.delete_ref("refs/heads/tmp");
    let no_grace = GcOptions {
        grace: Duration::ZERO,
        ..GcOptions::default()
    };
    collect(&f.refs, &no_grace, &NoProgress).unwrap();
    assert!(f.store().contains(&later).unwrap());
}

#[test]
fn earlier_boundaries_stay_while_their_commits_exist() {
    let f = Fixture::new();
    let c = chain(&f, None, 6, "c");
    f.set_ref("refs/heads/main", c[5]);
    let opts = |n| GcOptions {
        retain: Some(count(n)),
        ..eager()
    };
    collect(&f.refs, &opts(2), &NoProgress).unwrap();
    assert_eq!(Horizon::read(f.dir.path()).unwrap().boundaries(), &[c[4]]);
    // Asking for more history than is left must not walk into the void.
    let r = collect(&f.refs, &opts(100), &NoProgress).unwrap();
    assert_eq!(r.horizon.boundaries(), &[c[4]]);
    assert_eq!(r.reachable.commits, 2);
    // The boundary survives a GC that cuts deeper, until it is gone.
    let more = chain(&f, Some(c[5]), 3, "n");
    f.set_ref("refs/heads/main", more[2]);
    collect(&f.refs, &opts(2), &NoProgress).unwrap();
    let h = Horizon::read(f.dir.path()).unwrap();
    assert!(h.is_boundary(&more[1]));
    assert!(!f.store().contains(&c[4]).unwrap());
    let h2 = Session::begin(&f.refs)
        .unwrap()
        .retain(count(2), Duration::ZERO, false)
        .unwrap();
    assert_eq!(
        h2.boundaries(),
        &[more[1]],
        "the deleted boundary is dropped"
    );
}
