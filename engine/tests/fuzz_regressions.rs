//! The fuzz targets' checks for sydra-engine, run on stable: every seed in
//! `fuzz/seeds/<target>/` (including kept findings, `crash-*`) goes
//! through the same function the fuzz target calls, and each finding also
//! has a test of its own below. The checks live in `fuzz/src/{wal,
//! revision,ops}.rs`; see docs/RELIABILITY.md, "Fuzzing".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use sydra_engine::wal::Chunk;
use sydra_engine::wal::record::{segment_file_name, segment_header};
use sydra_engine::{Engine, Error};

/// Scratch directories for checks that touch the filesystem.
#[allow(dead_code)]
#[path = "../../fuzz/src/scratch.rs"]
mod scratch;

/// Chunk descriptors, WAL segments, WAL recovery.
#[allow(dead_code)]
#[path = "../../fuzz/src/wal.rs"]
mod wal;

/// Segment manifests and column codecs.
#[allow(dead_code)]
#[path = "../../fuzz/src/series.rs"]
mod series;

/// The revision parser against its model.
#[allow(dead_code)]
#[path = "../../fuzz/src/revision.rs"]
mod revision;

/// Engine operations against an in-memory model.
#[allow(dead_code)]
#[path = "../../fuzz/src/ops.rs"]
mod ops;

/// The replication wire format.
#[allow(dead_code)]
#[path = "../../fuzz/src/remote.rs"]
mod remote;

/// Prometheus's streamed remote-read answer.
#[allow(dead_code)]
#[path = "../../fuzz/src/prom.rs"]
mod prom;

/// Seed replay, shared with the other crates' regression tests.
#[path = "../../fuzz/src/seeds.rs"]
mod seeds;

fn replay_seeds(target: &str, check: fn(&[u8])) {
    seeds::replay_seeds(env!("CARGO_MANIFEST_DIR"), target, check);
}

#[test]
fn seeds_chunk() {
    replay_seeds("chunk", wal::chunk);
}

#[test]
fn seeds_wal_segment() {
    replay_seeds("wal_segment", wal::wal_segment);
}

#[test]
fn seeds_wal_recovery() {
    replay_seeds("wal_recovery", wal::wal_recovery);
}

#[test]
fn seeds_manifest() {
    replay_seeds("manifest", series::manifest);
}

#[test]
fn seeds_codecs() {
    replay_seeds("codecs", series::codecs);
}

#[test]
fn seeds_revision() {
    replay_seeds("revision", revision::revision);
}

#[test]
fn seeds_engine_ops() {
    replay_seeds("engine_ops", ops::engine_ops);
}

/// Finding (fuzz target `chunk`): a chunk with first seq 0 and last seq
/// u64::MAX made `last - first + 1` overflow (a panic in debug builds, a
/// wrapped count of 0 accepted in release).
#[test]
fn chunk_spanning_every_seq_is_refused_without_overflow() {
    let c = Chunk {
        segment: 0,
        start: 0,
        end: 1,
        first_seq: 0,
        last_seq: u64::MAX,
        count: 0,
        crc32: 0,
        blake3: [0; 32],
    };
    let err = Chunk::decode(&c.encode()).unwrap_err();
    assert!(err.reason.contains("inconsistent seqs"), "{err}");
}

/// Finding (fuzz target `wal_recovery`): a lone segment file named 0 with
/// a valid header and a torn record made open compute `expect - 1` with
/// `expect = 0` (a panic in debug builds, a next seq of 0 in release).
#[test]
fn segment_named_zero_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("wal")).unwrap();
    let mut seg = segment_header(0).to_vec();
    seg.push(0xeb);
    let path = dir.path().join("wal").join(segment_file_name(0));
    std::fs::write(&path, &seg).unwrap();
    match Engine::create(dir.path(), sydra_engine::Options::default()) {
        Err(Error::Wal(e)) => {
            let msg = e.to_string();
            assert!(msg.contains("seqs start at 1"), "{msg}");
            assert!(msg.contains(&segment_file_name(0)), "{msg}");
        }
        other => panic!("open accepted a segment named 0: {other:?}"),
    }
}

/// Finding (fuzz target `codecs`): the Gorilla decoder accepted a new
/// window where the previous one fits, which the encoder never writes, so
/// decode-then-encode changed the bytes. The decoder now refuses it.
#[test]
fn gorilla_new_window_where_the_old_one_fits_is_refused() {
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/seeds/codecs/crash-gorilla-window-not-reused"),
    )
    .unwrap();
    if let Ok(v) = sydra_engine::codec::decode_f64(&bytes) {
        assert_eq!(sydra_engine::codec::encode_f64(&v), bytes);
    }
}

#[test]
fn seeds_line_protocol() {
    replay_seeds("line_protocol", series::line_protocol);
}

#[test]
fn seeds_series_codecs() {
    replay_seeds("series_codecs", series::series_codecs);
}

#[test]
fn seeds_series_record() {
    replay_seeds("series_record", series::series_record);
}

#[test]
fn seeds_series_segment() {
    replay_seeds("series_segment", series::series_segment);
}

#[test]
fn seeds_transfer() {
    replay_seeds("transfer", remote::transfer);
}

#[test]
fn seeds_prom_chunks() {
    replay_seeds("prom_chunks", prom::prom_chunks);
}
