//! What the model tests share: time units, small-store options and a
//! seeded generator.

use sydra_engine::series::CompactOptions;
use sydra_engine::wal::{SyncMode, WalOptions};
use sydra_engine::{Engine, Options};

pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;

/// Small WAL segments and records, no syncs, one-minute blocks.
pub fn opts() -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Never,
            segment_size: 64 << 10,
            max_record: 16 << 10,
            ..WalOptions::default()
        },
        series_block_ns: MINUTE,
        ..Options::default()
    }
}

/// Compact every point of the head (`compact --all`).
pub fn compact_all(e: &Engine) {
    e.compact(CompactOptions {
        all: true,
        ..Default::default()
    })
    .unwrap();
}

/// xorshift64: reproducible per seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
