use std::sync::Arc;

use sydra_engine::Engine;
use sydra_engine::wal::SyncMode;

use super::common::{collect, opts};

#[test]
fn eight_threads_with_always_get_durable_contiguous_seqs_with_fewer_syncs() {
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
    assert!(
        stats.syncs < stats.appends,
        "group commit shared no syncs: {stats:?}"
    );
    eprintln!(
        "group commit: {} appends, {} fdatasyncs, {} writes",
        stats.appends, stats.syncs, stats.writes
    );
    let replayed = collect(e.replay_head().unwrap());
    let want: Vec<(u64, Vec<u8>)> = all.into_iter().map(|(s, p)| (s, p.into_bytes())).collect();
    assert_eq!(replayed, want);
}
