use std::collections::BTreeSet;
use std::num::NonZeroU64;

use sydra_engine::gc::{GcOptions, Keep};
use sydra_engine::objects::ObjectId;

use super::common::{
    closure, collect, deletable_segments, fsck, head_applied, needed_segments, objects, open,
    payload, ref_tips, segments,
};

fn recs(r: std::ops::RangeInclusive<u64>) -> Vec<(u64, Vec<u8>)> {
    r.map(|s| (s, payload(s))).collect()
}

#[test]
fn retaining_n_commits_reclaims_older_history_and_wal_while_head_and_old_snapshots_replay() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), 1024);
    let mut seq = 0;
    let mut cps = Vec::new();
    for i in 0..12 {
        for _ in 0..30 {
            seq = e.append(&payload(seq + 1)).unwrap();
        }
        // Leave the last 10 records unapplied at each checkpoint.
        let cp = e.checkpoint(Some(seq - 10), &format!("cp{i}")).unwrap();
        cps.push(cp);
        if i == 3 {
            e.snapshot(Some("old")).unwrap();
        }
    }
    for _ in 0..5 {
        seq = e.append(&payload(seq + 1)).unwrap();
    }
    let store = e.repo().objects().clone();
    let segs_before = segments(dir.path());
    let old_snapshot: Vec<_> = collect(e.replay("old").unwrap());
    assert_eq!(old_snapshot, recs(cps[3].applied_seq + 1..=cps[3].last_seq));

    let horizon = e
        .retain(Keep::Commits(NonZeroU64::new(3).unwrap()))
        .unwrap();
    // main keeps cp11 cp10 cp9; the snapshot keeps cp3 cp2 cp1.
    let want: BTreeSet<ObjectId> = [cps[9].commit, cps[1].commit].into_iter().collect();
    assert_eq!(
        horizon
            .boundaries()
            .iter()
            .copied()
            .collect::<BTreeSet<_>>(),
        want
    );
    let expected = closure(&store, &ref_tips(e.repo()), &want);
    let expected_wal = deletable_segments(
        &segs_before,
        head_applied(&e),
        &needed_segments(&store, &expected),
    );
    assert!(!expected_wal.is_empty(), "the test must reclaim some WAL");

    // Default reflog expiry: the horizon still cuts the reflog's history.
    let s = e
        .gc(&GcOptions {
            grace: std::time::Duration::ZERO,
            ..GcOptions::default()
        })
        .unwrap();
    assert_eq!(objects(&store), expected);
    for cp in cps[4..9].iter().chain(&cps[..1]) {
        assert!(!store.contains(&cp.commit).unwrap(), "{}", cp.commit);
    }
    for cp in cps[1..4].iter().chain(&cps[9..]) {
        assert!(store.contains(&cp.commit).unwrap());
    }
    assert_eq!(s.wal.deleted, expected_wal);
    let left = segments(dir.path());
    assert_eq!(left.len(), segs_before.len() - expected_wal.len());
    assert!(s.wal.bytes_freed > 0);

    // Replay from the head (chunks, then the live tail) and from the old
    // snapshot, beyond the horizon, still work; so does fsck.
    let applied = head_applied(&e);
    assert_eq!(collect(e.replay_head().unwrap()), recs(applied + 1..=seq));
    assert_eq!(collect(e.replay("old").unwrap()), old_snapshot);
    let r = fsck(e.repo());
    assert!(r.is_clean(), "{:#?}", r.problems);

    // The horizon survives reopen; so does every answer.
    drop(e);
    let e = open(dir.path(), 1024);
    assert_eq!(e.horizon().unwrap(), horizon);
    assert_eq!(collect(e.replay_head().unwrap()), recs(applied + 1..=seq));
    assert_eq!(collect(e.replay("old").unwrap()), old_snapshot);
    let s = e.gc(&super::common::eager()).unwrap();
    assert_eq!((s.objects.swept.deleted, s.wal.deleted.len()), (0, 0));
    assert_eq!(s.objects.boundaries_reached, 2);
    // The engine keeps writing and checkpointing on top of the horizon.
    for _ in 0..40 {
        seq = e.append(&payload(seq + 1)).unwrap();
    }
    e.checkpoint(Some(seq), "after").unwrap();
    assert!(fsck(e.repo()).is_clean());
}

#[test]
fn retaining_a_duration_keeps_recent_history_only() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), 1024);
    let mut seq = 0;
    for i in 0..4 {
        for _ in 0..20 {
            seq = e.append(&payload(seq + 1)).unwrap();
        }
        e.checkpoint(Some(seq), &format!("cp{i}")).unwrap();
    }
    // All commits are seconds old: a zero duration keeps only the tips.
    let s = e
        .gc(&GcOptions {
            retain: Some(Keep::Within(std::time::Duration::ZERO)),
            ..super::common::eager()
        })
        .unwrap();
    assert_eq!(s.objects.reachable.commits, 1);
    assert_eq!(s.objects.horizon.boundaries().len(), 1);
    assert!(fsck(e.repo()).is_clean());
    // A week keeps everything that is left: the old boundary and cp4.
    for _ in 0..10 {
        seq = e.append(&payload(seq + 1)).unwrap();
    }
    let cp3 = e.head().unwrap().unwrap();
    e.checkpoint(Some(seq), "cp4").unwrap();
    let s = e
        .gc(&GcOptions {
            retain: Some("7d".parse().unwrap()),
            ..super::common::eager()
        })
        .unwrap();
    assert_eq!(s.objects.reachable.commits, 2, "cp4 and the old boundary");
    assert!(e.repo().objects().contains(&cp3).unwrap());
    assert_eq!(s.objects.horizon.boundaries(), &[cp3]);
}
