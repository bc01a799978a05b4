use std::sync::Arc;

use sydra_engine::Engine;
use sydra_engine::wal::SyncMode;

use super::common::{collect, opts};

/// Durability and contiguity under real contention. How the appends group
/// depends on scheduling, so this test claims nothing about the number of
/// syncs; the grouping is shown deterministically below.
#[test]
fn eight_threads_with_always_get_durable_contiguous_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(Engine::create(dir.path(), opts(SyncMode::Always, 64 << 20)).unwrap());
    let per = 200u64;
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..per {
                    let seq = e.append(format!("t{t}-{i}").as_bytes()).unwrap();
                    // Acknowledged means durable.
                    assert!(e.wal().durable_seq() >= seq);
                    mine.push((seq, format!("t{t}-{i}")));
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<(u64, String)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    let seqs: Vec<u64> = all.iter().map(|x| x.0).collect();
    assert_eq!(seqs, (1..=8 * per).collect::<Vec<_>>());
    let stats = e.wal().stats();
    assert_eq!(stats.appends, 8 * per);
    eprintln!(
        "group commit: {} appends, {} fdatasyncs, {} writes",
        stats.appends, stats.syncs, stats.writes
    );
    let replayed = collect(e.replay_head().unwrap());
    let want: Vec<(u64, Vec<u8>)> = all.into_iter().map(|(s, p)| (s, p.into_bytes())).collect();
    assert_eq!(replayed, want);
}

/// The grouping itself, forced rather than hoped for: while one durable
/// append's round is held in flight (`Wal::hold_next_io`), N more appenders
/// queue their records; once it is released, all N are made durable by one
/// more write and one more fdatasync, never one each. The waits below are
/// for states (the holder inside its round, N records queued), not for
/// time, so a loaded machine only makes the test slower.
#[test]
fn appends_queued_behind_a_round_in_flight_share_the_next_write_and_fdatasync() {
    for queued in [1u64, 2, 7, 31] {
        let dir = tempfile::tempdir().unwrap();
        let e = Arc::new(Engine::create(dir.path(), opts(SyncMode::Always, 64 << 20)).unwrap());
        let before = e.wal().stats();
        let hold = e.wal().hold_next_io();
        let first = {
            let e = Arc::clone(&e);
            std::thread::spawn(move || e.append(b"first").unwrap())
        };
        hold.wait_entered();
        let rest: Vec<_> = (0..queued)
            .map(|i| {
                let e = Arc::clone(&e);
                std::thread::spawn(move || {
                    let seq = e.append(format!("queued {i}").as_bytes()).unwrap();
                    assert!(e.wal().durable_seq() >= seq);
                    seq
                })
            })
            .collect();
        // Every queued appender has pushed its record and waits.
        while e.wal().stats().queued < queued as usize {
            std::thread::yield_now();
        }
        assert_eq!(e.wal().durable_seq(), 0, "the held round finished early");
        drop(hold);
        assert_eq!(first.join().unwrap(), 1);
        let mut seqs: Vec<u64> = rest.into_iter().map(|h| h.join().unwrap()).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (2..=queued + 1).collect::<Vec<_>>());
        let s = e.wal().stats();
        assert_eq!(s.appends - before.appends, queued + 1);
        // The held round (1 record, its segment's creation aside) and one
        // round for everything queued behind it.
        assert_eq!(s.writes - before.writes, 2, "queued {queued}: {s:?}");
        assert_eq!(s.syncs - before.syncs, 2, "queued {queued}: {s:?}");
        assert_eq!(e.wal().durable_seq(), queued + 1);
    }
}
