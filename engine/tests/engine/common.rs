use std::path::Path;

use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options, Replay};

pub fn opts(sync: SyncMode, segment_size: u64) -> Options {
    Options {
        wal: WalOptions {
            sync,
            segment_size,
            max_record: 4096.min(segment_size as usize / 2),
            ..WalOptions::default()
        },
        ..Options::default()
    }
}

pub fn open(dir: &Path) -> Engine {
    Engine::create(dir, opts(SyncMode::Never, 64 << 20)).unwrap()
}

pub fn collect(mut r: Replay) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(x) = r.next_record() {
        let (s, d) = x.unwrap();
        out.push((s, d.to_vec()));
    }
    out
}

pub fn payload(i: u64) -> Vec<u8> {
    format!("record-{i}-{}", "x".repeat((i % 37) as usize)).into_bytes()
}
