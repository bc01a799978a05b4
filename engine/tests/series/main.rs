//! Integration tests of the time-series layer, one module per part of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// What the model tests share: units, options, a seeded generator.
mod common;

/// Line protocol: the parser against a model of what each line says, and
/// the canonical writer read back.
mod lineproto;

/// Column codecs: round trips on any values and on real-data shapes.
mod codec;

/// Series WAL records: builders and decoder round trips.
mod record;

/// The appender and the head: log order, rebuild at open, types.
mod append;

/// SIGKILL while ingesting: every acknowledged point survives once.
mod crash;

/// `sydra write` and `sydra export` end to end.
mod cli;

/// Compaction from the head: a model through reopens, late points, as-of.
mod compact;

/// Range queries and aggregates: a model at the head and as of snapshots.
mod query;

/// Series diff between versions: a model of random snapshot pairs, the
/// pruning, and `sydra diff --series`.
mod diff;

/// Deletes: a model through compactions, reopens and as-of; rewritten and
/// removed segments; no resurrection at a reopen; `sydra delete`.
mod delete;
