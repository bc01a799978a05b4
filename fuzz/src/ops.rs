//! Stateful check: an arbitrary sequence of engine operations (appends,
//! checkpoints, compaction commits, snapshots, branches, gc, reopens, torn
//! reopens) on a temp directory, compared with an in-memory model after
//! every reopen.
//!
//! Shared by the `engine_ops` fuzz target and by
//! `engine/tests/fuzz_regressions.rs` (included there with `#[path]`, with
//! `scratch.rs`).
//!
//! The model: every appended payload by seq, and the head checkpoint's
//! applied and last seqs; each snapshot and branch remembers the checkpoint
//! it was taken at. After a reopen (and on `Check`), `replay_head` must
//! yield exactly the records after the head's applied seq, with their exact
//! bytes, and the replay of each snapshot and branch exactly what its
//! commit committed.
//!
//! Adding an operation: a variant of [`Op`], an arm in [`Op::decode`]
//! (append the new tag at the end of the match, so existing seeds keep
//! their meaning), and an arm in [`Run::apply`] that performs it and
//! updates the model.

use std::num::NonZeroU64;
use std::time::Duration;

use sydra_engine::compaction::{ChangeSet, SegmentChange, SegmentData, SegmentKey};
use sydra_engine::gc::{GcOptions, Keep};
use sydra_engine::manifest::{Codec, ColumnStats, ColumnType, SegmentManifest};
use sydra_engine::objects::{Durability, ObjectId};
use sydra_engine::wal::record::{SEGMENT_HEADER_LEN, SEGMENT_VERSION, Step, parse_record};
use sydra_engine::wal::{SyncMode, WalOptions, list_segments, record::segment_file_name};
use sydra_engine::{Engine, Error, Options, Replay};

/// The most operations one input runs.
pub const MAX_OPS: usize = 48;

/// How the applied seq of a checkpoint is chosen, relative to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// `None`: keep the head's.
    Keep,
    /// Everything appended so far.
    All,
    /// A seq between the head's applied seq and the last appended,
    /// chosen by the byte.
    Between(u8),
    /// Past the last appended seq: must be refused.
    TooHigh(u8),
    /// Below the head's applied seq: must be refused.
    BelowHead,
}

/// One engine operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Append one record of `len` bytes (over the limit: refused).
    Append {
        /// Payload length.
        len: u16,
        /// Seed of the payload bytes.
        fill: u8,
    },
    /// Append `n` records at once.
    AppendBatch {
        /// How many.
        n: u8,
        /// Each payload's length.
        len: u16,
        /// Seed of the payload bytes.
        fill: u8,
    },
    /// `Engine::sync`.
    Sync,
    /// `Engine::checkpoint`.
    Checkpoint(Applied),
    /// `Engine::snapshot` of the head.
    Snapshot,
    /// `Engine::branch` from `main` (0) or from a snapshot.
    Branch {
        /// 0: main; k: snapshot (k - 1) modulo their number.
        from: u8,
    },
    /// Drop the engine and open the directory again, then check everything.
    Reopen,
    /// Drop the engine, cut the last segment short as a crash would (only
    /// past what the head checkpoint covers), reopen, check.
    TornReopen {
        /// How many bytes to cut (modulo what may be cut).
        cut: u16,
    },
    /// Check the model without reopening.
    Check,
    /// A compaction commit on series `series % 4`: version 0 removes the
    /// segment (refused if absent), another version adds or replaces it;
    /// optionally advancing the applied seq to everything appended.
    Compact {
        /// Which series.
        series: u8,
        /// Column bytes of the new segment (0: remove).
        version: u8,
        /// Advance `wal.applied_seq` to the last appended seq.
        apply_all: bool,
    },
    /// Garbage collection with zero grace and zero reflog expiry; `retain`
    /// odd sets a horizon of `retain / 2 % 4 + 1` commits per ref.
    Gc {
        /// Retention choice.
        retain: u8,
    },
}

/// Bytes consumed from the front of the input.
#[derive(Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Wrap the input.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }
}

impl Op {
    /// The next operation, or `None` at the end of the input.
    pub fn decode(input: &mut Input<'_>) -> Option<Op> {
        let tag = input.u8()?;
        Some(match tag % 11 {
            0 => Op::Append {
                len: input.u16()?,
                fill: input.u8()?,
            },
            1 => Op::AppendBatch {
                n: input.u8()?,
                len: input.u16()?,
                fill: input.u8()?,
            },
            2 => Op::Sync,
            3 => {
                let b = input.u8()?;
                Op::Checkpoint(match b % 8 {
                    0 | 1 => Applied::Keep,
                    2 | 3 => Applied::All,
                    4 | 5 => Applied::Between(input.u8()?),
                    6 => Applied::TooHigh(input.u8()?),
                    _ => Applied::BelowHead,
                })
            }
            4 => Op::Snapshot,
            5 => Op::Branch { from: input.u8()? },
            6 => Op::Reopen,
            7 => Op::TornReopen { cut: input.u16()? },
            8 => Op::Check,
            9 => Op::Compact {
                series: input.u8()?,
                version: input.u8()?,
                apply_all: input.u8()? % 2 == 1,
            },
            _ => Op::Gc {
                retain: input.u8()?,
            },
        })
    }

    /// Encode (for the seed generator): `decode(encode(op)) == op`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Op::Append { len, fill } => {
                out.push(0);
                out.extend_from_slice(&len.to_le_bytes());
                out.push(fill);
            }
            Op::AppendBatch { n, len, fill } => {
                out.push(1);
                out.push(n);
                out.extend_from_slice(&len.to_le_bytes());
                out.push(fill);
            }
            Op::Sync => out.push(2),
            Op::Checkpoint(a) => {
                out.push(3);
                match a {
                    Applied::Keep => out.push(0),
                    Applied::All => out.push(2),
                    Applied::Between(b) => out.extend_from_slice(&[4, b]),
                    Applied::TooHigh(b) => out.extend_from_slice(&[6, b]),
                    Applied::BelowHead => out.push(7),
                }
            }
            Op::Snapshot => out.push(4),
            Op::Branch { from } => out.extend_from_slice(&[5, from]),
            Op::Reopen => out.push(6),
            Op::TornReopen { cut } => {
                out.push(7);
                out.extend_from_slice(&cut.to_le_bytes());
            }
            Op::Check => out.push(8),
            Op::Compact {
                series,
                version,
                apply_all,
            } => out.extend_from_slice(&[9, series, version, u8::from(apply_all)]),
            Op::Gc { retain } => out.extend_from_slice(&[10, retain]),
        }
    }
}

/// Segment sizes the first input byte chooses from: rotation every few
/// records, every few dozen, and (practically) never.
const SEGMENT_SIZES: [u64; 3] = [300, 2048, 1 << 20];
/// Record limit: small enough for the smallest segment.
const MAX_RECORD: usize = 256;

fn options(segment_size: u64) -> Options {
    Options {
        wal: WalOptions {
            sync: SyncMode::Never,
            segment_size,
            max_record: MAX_RECORD,
            buffer_size: 1024,
        },
        objects: sydra_engine::objects::Options {
            durability: Durability::None,
            ..Default::default()
        },
        ..Options::default()
    }
}

/// A segment whose column bytes are `version`.
fn segment(series: u8, version: u8) -> SegmentData {
    let col = |name: &str| ColumnStats {
        name: name.into(),
        ty: ColumnType::Bytes,
        codec: Codec::Raw,
        value_count: 1,
        null_count: 0,
        min: vec![],
        max: vec![],
        stored_bytes: 4,
    };
    SegmentData {
        manifest: SegmentManifest {
            series: format!("s{series}"),
            rollup: "raw".into(),
            segment: "h0".into(),
            min_ts: 0,
            max_ts: 0,
            row_count: 1,
            columns: vec![col("ts"), col("value")],
            meta: Default::default(),
        },
        columns: vec![
            ("ts".into(), vec![version; 4]),
            ("value".into(), vec![version; 4]),
        ],
    }
}

/// The payload of an append: distinct per seq, so that a record read from
/// the wrong place shows.
fn payload(seq: u64, len: u16, fill: u8) -> Vec<u8> {
    let len = usize::from(len) % (MAX_RECORD + 33);
    (0..len)
        .map(|i| fill ^ (i as u8) ^ (seq as u8).rotate_left(3))
        .collect()
}

/// A checkpoint as the model knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    commit: ObjectId,
    applied: u64,
    last: u64,
}

/// The model and the engine under test.
#[derive(Debug)]
struct Run {
    dir: tempfile::TempDir,
    options: Options,
    engine: Option<Engine>,
    /// Payload of seq `i + 1` at `records[i]`.
    records: Vec<Vec<u8>>,
    head: Option<Head>,
    /// Snapshots and branches: (short name, head at the time).
    named: Vec<(String, Head)>,
    snapshots: usize,
    branches: usize,
    /// Segments on main: series -> version.
    segments: std::collections::BTreeMap<u8, u8>,
}

fn drain(mut r: Replay) -> Result<Vec<(u64, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    while let Some(x) = r.next_record() {
        let (seq, p) = x?;
        out.push((seq, p.to_vec()));
    }
    Ok(out)
}

impl Run {
    fn engine(&self) -> &Engine {
        self.engine
            .as_ref()
            .unwrap_or_else(|| panic!("engine is closed"))
    }

    fn open(&mut self) {
        let e = Engine::open(self.dir.path(), self.options.clone())
            .unwrap_or_else(|e| panic!("reopen: {e}"));
        self.engine = Some(e);
    }

    fn expected(&self, from: u64, to: u64) -> Vec<(u64, Vec<u8>)> {
        (from + 1..=to)
            .map(|s| (s, self.records[(s - 1) as usize].clone()))
            .collect()
    }

    /// Compare the engine with the model.
    fn check(&self) {
        let e = self.engine();
        for (series, version) in &self.segments {
            let rev = format!("main:series/s{series}/raw/h0/columns/ts");
            let id = e
                .repo()
                .resolve(&rev)
                .unwrap_or_else(|err| panic!("{rev}: {err}"));
            let blob = e
                .repo()
                .objects()
                .get(&id)
                .unwrap_or_else(|err| panic!("{rev}: {err}"));
            assert_eq!(&*blob.data, &[*version; 4][..], "{rev}");
        }
        let n = self.records.len() as u64;
        assert_eq!(e.wal().next_seq(), n + 1, "next seq");
        let head = e.head().unwrap_or_else(|err| panic!("head: {err}"));
        assert_eq!(head, self.head.map(|h| h.commit), "head commit");
        let applied = self.head.map_or(0, |h| h.applied);
        let got = drain(
            e.replay_head()
                .unwrap_or_else(|err| panic!("replay_head: {err}")),
        )
        .unwrap_or_else(|err| panic!("replay_head: {err}"));
        assert_eq!(got, self.expected(applied, n), "replay_head");
        for (name, h) in &self.named {
            let got = drain(
                e.replay(name)
                    .unwrap_or_else(|err| panic!("replay {name}: {err}")),
            )
            .unwrap_or_else(|err| panic!("replay {name}: {err}"));
            assert_eq!(got, self.expected(h.applied, h.last), "replay of {name}");
        }
    }

    fn append(&mut self, payloads: Vec<Vec<u8>>) {
        let e = self.engine();
        let too_big = payloads.iter().any(|p| p.len() > MAX_RECORD);
        let first = self.records.len() as u64 + 1;
        let r = if payloads.len() == 1 {
            e.append(&payloads[0]).map(|s| s..=s)
        } else {
            e.append_batch(&payloads)
        };
        match r {
            Ok(range) => {
                assert!(!too_big, "an oversize record was accepted");
                if payloads.is_empty() {
                    assert!(range.is_empty(), "empty batch got seqs {range:?}");
                } else {
                    let last = first + payloads.len() as u64 - 1;
                    assert_eq!(range, first..=last, "assigned seqs");
                }
                self.records.extend(payloads);
            }
            Err(Error::Wal(sydra_engine::wal::WalError::RecordTooLarge { .. })) if too_big => {}
            Err(err) => panic!("append: {err}"),
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Append { len, fill } => {
                let seq = self.records.len() as u64 + 1;
                self.append(vec![payload(seq, len, fill)]);
            }
            Op::AppendBatch { n, len, fill } => {
                let first = self.records.len() as u64 + 1;
                let payloads = (0..u64::from(n % 12))
                    .map(|i| payload(first + i, len.wrapping_add(i as u16 * 17), fill))
                    .collect();
                self.append(payloads);
            }
            Op::Sync => {
                let durable = self.engine().sync().unwrap_or_else(|e| panic!("sync: {e}"));
                assert_eq!(durable, self.records.len() as u64, "durable seq after sync");
            }
            Op::Checkpoint(a) => {
                let n = self.records.len() as u64;
                let prev = self.head.map_or(0, |h| h.applied);
                let (arg, valid) = match a {
                    Applied::Keep => (None, true),
                    Applied::All => (Some(n), true),
                    Applied::Between(b) => (Some(prev + u64::from(b) % (n - prev + 1)), true),
                    Applied::TooHigh(b) => (Some(n + 1 + u64::from(b)), false),
                    Applied::BelowHead if prev > 0 => (Some(prev - 1), false),
                    Applied::BelowHead => (None, true),
                };
                match self.engine().checkpoint(arg, "fuzz") {
                    Ok(c) => {
                        assert!(
                            valid,
                            "checkpoint with applied {arg:?} accepted ({n} records, head applied {prev})"
                        );
                        assert_eq!(c.applied_seq, arg.unwrap_or(prev));
                        assert_eq!(c.last_seq, n, "a checkpoint covers every appended record");
                        self.head = Some(Head {
                            commit: c.commit,
                            applied: c.applied_seq,
                            last: c.last_seq,
                        });
                    }
                    Err(Error::AppliedSeq { .. }) if !valid => {}
                    Err(e) => panic!("checkpoint {arg:?}: {e}"),
                }
            }
            Op::Snapshot => {
                let name = format!("s{}", self.snapshots);
                match (self.engine().snapshot(Some(&name)), self.head) {
                    (Ok((_, id)), Some(h)) => {
                        assert_eq!(id, h.commit);
                        self.snapshots += 1;
                        self.named.push((name, h));
                    }
                    (Err(Error::NoHead(_)), None) => {}
                    (r, h) => panic!("snapshot with head {h:?}: {r:?}"),
                }
            }
            Op::Branch { from } => {
                let snaps: Vec<&(String, Head)> = self
                    .named
                    .iter()
                    .filter(|(n, _)| n.starts_with('s'))
                    .collect();
                let (from, at) = if from == 0 || snaps.is_empty() {
                    ("main".to_owned(), self.head)
                } else {
                    let (n, h) = snaps[usize::from(from - 1) % snaps.len()];
                    (n.clone(), Some(*h))
                };
                let name = format!("b{}", self.branches);
                match (self.engine().branch(&name, &from), at) {
                    (Ok((_, id)), Some(h)) => {
                        assert_eq!(id, h.commit);
                        self.branches += 1;
                        self.named.push((name, h));
                    }
                    (Err(_), None) => {}
                    (r, h) => panic!("branch from {from} at {h:?}: {r:?}"),
                }
            }
            Op::Reopen => {
                self.engine = None;
                self.open();
                assert!(
                    !self.engine().open_report().repaired(),
                    "a clean reopen repaired: {:?}",
                    self.engine().open_report()
                );
                self.check();
            }
            Op::TornReopen { cut } => {
                self.engine = None;
                self.tear(cut);
                self.open();
                self.check();
            }
            Op::Check => self.check(),
            Op::Compact {
                series,
                version,
                apply_all,
            } => self.compact(series % 4, version, apply_all),
            Op::Gc { retain } => {
                let keep = (retain % 2 == 1).then(|| {
                    Keep::Commits(NonZeroU64::MIN.saturating_add(u64::from(retain / 2 % 4)))
                });
                let opts = GcOptions {
                    grace: Duration::ZERO,
                    reflog_expiry: Duration::ZERO,
                    retain: keep,
                    ..GcOptions::default()
                };
                self.engine()
                    .gc(&opts)
                    .unwrap_or_else(|e| panic!("gc: {e}"));
                // Snapshots, branches and the head still replay exactly.
                self.check();
            }
        }
    }

    fn compact(&mut self, series: u8, version: u8, apply_all: bool) {
        let n = self.records.len() as u64;
        let exists = self.segments.contains_key(&series);
        let change = match (version, exists) {
            (0, _) => SegmentChange::Remove(SegmentKey::new(&format!("s{series}"), "raw", "h0")),
            (_, true) => SegmentChange::Replace(segment(series, version)),
            (_, false) => SegmentChange::Add(segment(series, version)),
        };
        let set = ChangeSet {
            changes: vec![change],
            applied_seq: apply_all.then_some(n),
            message: "fuzz compaction".into(),
        };
        let base = self.head.map(|h| h.commit);
        match self.engine().commit_compaction(base, &set) {
            Ok(c) => {
                assert!(
                    version != 0 || exists,
                    "removing an absent segment was accepted"
                );
                assert!(!c.reapplied, "nothing moved the head underneath");
                let prev = self.head.map_or(0, |h| h.applied);
                assert_eq!(c.checkpoint.applied_seq, if apply_all { n } else { prev });
                self.head = Some(Head {
                    commit: c.checkpoint.commit,
                    applied: c.checkpoint.applied_seq,
                    last: c.checkpoint.last_seq,
                });
                if version == 0 {
                    self.segments.remove(&series);
                } else {
                    self.segments.insert(series, version);
                }
            }
            Err(Error::MissingSegment { .. }) if version == 0 && !exists => {}
            Err(e) => panic!("compaction of s{series} v{version}: {e}"),
        }
    }

    /// Cut the last segment short, never into records the head checkpoint
    /// covers, and forget the records that lost bytes.
    fn tear(&mut self, cut: u16) {
        let wal = self.dir.path().join("wal");
        let segs = list_segments(&wal).unwrap_or_else(|e| panic!("{e}"));
        let Some(&last) = segs.last() else { return };
        let path = wal.join(segment_file_name(last));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let covered = self.head.map_or(0, |h| h.last);
        // The smallest length that keeps every covered record whole.
        let mut keep_from = SEGMENT_HEADER_LEN;
        let mut off = SEGMENT_HEADER_LEN;
        let mut ends = Vec::new();
        // The writer only appends to segments of the current version.
        while let Step::Record(r) = parse_record(&bytes, off, None, true, SEGMENT_VERSION) {
            if r.seq <= covered {
                keep_from = r.end;
            }
            ends.push((r.seq, r.end));
            off = r.end;
        }
        assert_eq!(
            off,
            bytes.len(),
            "segment {last} is not whole before the cut"
        );
        let room = bytes.len() - keep_from;
        if room == 0 {
            return;
        }
        let new_len = bytes.len() - (usize::from(cut) % (room + 1));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        f.set_len(new_len as u64).unwrap_or_else(|e| panic!("{e}"));
        // Records that still end within the file survive.
        let survivors = ends
            .iter()
            .filter(|(_, end)| *end <= new_len)
            .map(|(s, _)| *s)
            .max()
            .unwrap_or(last - 1);
        self.records.truncate(survivors as usize);
    }
}

/// Run the operations the input encodes. Input: one byte choosing the
/// segment size, then operations (see [`Op::decode`]).
pub fn engine_ops(data: &[u8]) {
    let mut input = Input::new(data);
    let Some(size) = input.u8() else { return };
    let options = options(SEGMENT_SIZES[usize::from(size) % SEGMENT_SIZES.len()]);
    let mut run = Run {
        dir: super::scratch::tempdir("ops"),
        options,
        engine: None,
        records: Vec::new(),
        head: None,
        named: Vec::new(),
        snapshots: 0,
        branches: 0,
        segments: std::collections::BTreeMap::new(),
    };
    let e = Engine::create(run.dir.path(), run.options.clone())
        .unwrap_or_else(|e| panic!("create: {e}"));
    run.engine = Some(e);
    let mut ops = 0;
    while let Some(op) = Op::decode(&mut input) {
        run.apply(op);
        ops += 1;
        if ops == MAX_OPS {
            break;
        }
    }
    // Every run ends with a reopen and a full check.
    run.apply(Op::Reopen);
}
