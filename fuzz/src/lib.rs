//! Fuzzing support for Sydra: the properties each fuzz target checks.
//!
//! Each module holds the checks for one crate's decoders (or one engine
//! scenario) as plain functions of `&[u8]`. The fuzz targets in
//! `fuzz_targets/` are one-line wrappers, and the crates' regression tests
//! (`*/tests/fuzz_regressions.rs`) include the same files with `#[path]`,
//! so every seed in `seeds/` and every past finding runs in a normal
//! `cargo test` on stable, without libFuzzer.
//!
//! See docs/RELIABILITY.md, "Fuzzing", for how to run the targets.

pub mod alloc_limit;
pub mod objects;
pub mod ops;
pub mod pack;
pub mod prom;
pub mod refs;
pub mod remote;
pub mod revision;
pub mod scratch;
pub mod seeds;
pub mod series;
pub mod wal;
