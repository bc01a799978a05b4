//! The receiving side of a transfer (docs/FORMAT.md §21), read as a stream:
//! whether the bytes come from a socket, a file or the sender's thread,
//! each is read once and written once. The pack section goes straight into
//! the file that becomes the live pack (hashed on the way), the WAL ranges
//! straight into their stored files; both are verified before anything
//! becomes visible, and the pack is published only once the transfer's
//! own trailer has checked out.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use bytes::Bytes;

use sydra_objects::store::{PackIds, StagedPack};
use sydra_objects::{Kind, ObjectId, Pinned};

use super::{TRANSFER_MAGIC, Transfer, TransferFile, add_boundaries, has_range, remote_err};
use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::wal::{Chunk, ranges};

/// Size of the blocks a transfer is copied in.
const BLOCK: usize = 1 << 20;

/// Where a transfer's bytes come from, a block at a time: a pipe hands
/// over the buffers its writer filled (a download's chunks) as they are,
/// a reader's bytes are read into blocks.
pub(super) trait Blocks {
    /// The next bytes, at most `max` (and some when `max` is not 0);
    /// empty at the end of the stream.
    fn next_block(&mut self, max: usize) -> io::Result<Bytes>;
}

/// A [`Read`] as [`Blocks`]: each block read full, up to the end. A read
/// that fails part way through a block returns the bytes before it, and
/// the error at the next call, so the error names its own offset.
struct ReadBlocks<'r> {
    r: &'r mut dyn Read,
    failed: Option<io::Error>,
}

impl Blocks for ReadBlocks<'_> {
    fn next_block(&mut self, max: usize) -> io::Result<Bytes> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let want = max.min(BLOCK);
        let mut b = Vec::with_capacity(want);
        // On an error, the bytes read before it are in `b`.
        match (&mut *self.r).take(want as u64).read_to_end(&mut b) {
            Err(e) if b.is_empty() => Err(e),
            Err(e) => {
                self.failed = Some(e);
                Ok(Bytes::from(b))
            }
            Ok(_) => Ok(Bytes::from(b)),
        }
    }
}

/// A transfer stream being read: every byte counted and hashed (the
/// trailer is the BLAKE3 of all bytes before it), at most `limit` taken.
/// The bytes of the pack and of the ranges are passed on in the buffers
/// they came in, not copied.
struct Stream<'r> {
    src: &'r mut dyn Blocks,
    /// Bytes taken from `src` and not yet consumed.
    pending: Bytes,
    version: u8,
    hasher: blake3::Hasher,
    /// Bytes consumed.
    at: u64,
    limit: u64,
    remote: &'r str,
}

impl Stream<'_> {
    fn bad(&self, reason: String) -> Error {
        bad_transfer(self.remote, reason)
    }

    /// Refuse a stream that needs `n` more bytes than its limit allows.
    fn room_for(&self, n: u64) -> Result<()> {
        if n > self.limit.saturating_sub(self.at) {
            return Err(self.bad(format!("it is longer than {} bytes", self.limit)));
        }
        Ok(())
    }

    /// At most `n` (and at least one) of the next bytes, unhashed; `what`
    /// names the section in the error when the stream ends first.
    fn next(&mut self, n: usize, what: &str) -> Result<Bytes> {
        if self.pending.is_empty() {
            // What was taken is consumed: `at` counts it.
            self.room_for(1)?;
            let room = self.limit - self.at;
            let max = usize::try_from(room).unwrap_or(usize::MAX).min(BLOCK);
            self.pending = self.src.next_block(max).map_err(|e| {
                remote_err(
                    self.remote,
                    format!("reading the transfer at offset {}: {e}", self.at),
                )
            })?;
            if self.pending.is_empty() {
                return Err(self.bad(format!(
                    "the transfer ends inside {what} (offset {})",
                    self.at
                )));
            }
        }
        let b = self.pending.split_to(n.min(self.pending.len()));
        self.at += b.len() as u64;
        Ok(b)
    }

    /// Fill `buf` from the stream, unhashed.
    fn raw(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.room_for(buf.len() as u64)?;
        let mut got = 0;
        while got < buf.len() {
            let b = self.next(buf.len() - got, what)?;
            buf[got..got + b.len()].copy_from_slice(&b);
            got += b.len();
        }
        Ok(())
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        self.raw(buf, what)?;
        self.hasher.update(buf);
        Ok(())
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let mut b = [0u8; 8];
        self.fill(&mut b, what)?;
        Ok(u64::from_le_bytes(b))
    }

    fn id(&mut self, what: &str) -> Result<ObjectId> {
        let mut b = [0u8; 32];
        self.fill(&mut b, what)?;
        Ok(ObjectId::from_bytes(b))
    }

    /// Pass the next `n` bytes to `sink`, piece by piece as they came;
    /// only the last `hashed` of them go into the trailer's hash (all of
    /// them in a version 1 transfer).
    fn copy(
        &mut self,
        n: u64,
        hashed: u64,
        what: &str,
        mut sink: impl FnMut(Bytes) -> Result<()>,
    ) -> Result<()> {
        self.room_for(n)?;
        let hashed = if self.version == 1 { n } else { hashed.min(n) };
        let mut left = n;
        while left > 0 {
            let b = self.next(usize::try_from(left).unwrap_or(usize::MAX), what)?;
            // Of this piece, the bytes within the last `hashed`.
            let skip = (left.saturating_sub(hashed)).min(b.len() as u64) as usize;
            self.hasher.update(&b[skip..]);
            left -= b.len() as u64;
            sink(b)?;
        }
        Ok(())
    }

    /// Whether anything follows the bytes consumed.
    fn at_end(&mut self) -> Result<bool> {
        if !self.pending.is_empty() {
            return Ok(false);
        }
        let more = self.src.next_block(1).map_err(|e| {
            remote_err(self.remote, format!("reading the end of the transfer: {e}"))
        })?;
        Ok(more.is_empty())
    }
}

/// A transfer refused for `reason`, from `remote`.
fn bad_transfer(remote: &str, reason: impl std::fmt::Display) -> Error {
    remote_err(remote, format!("bad transfer: {reason}"))
}

/// Ingest a transfer read from `r` (at most `limit` bytes) into `dst`:
/// the pack is written into place and checked (framing, CRC, BLAKE3 of
/// every object; every tree and commit references only objects in the
/// transfer or already present), the WAL ranges stored (each verified
/// against its chunk), the trailer checked, and only then is the pack
/// published and the shallow boundaries recorded. Refs are the caller's to
/// move, while the returned pins live.
///
/// A transfer refused part way leaves no pack and no object; WAL ranges
/// already stored stay (each verified, named by its chunk; GC removes
/// those no commit needs).
pub fn receive_from(
    dst: &Repository,
    r: &mut dyn Read,
    limit: u64,
    remote: &str,
) -> Result<(Transfer, Option<Pinned>)> {
    let mut src = ReadBlocks { r, failed: None };
    receive_blocks(dst, &mut src, limit, remote)
}

/// [`receive_from`] of a transfer coming as blocks (a [`pipe`]'s).
pub(super) fn receive_blocks(
    dst: &Repository,
    src: &mut dyn Blocks,
    limit: u64,
    remote: &str,
) -> Result<(Transfer, Option<Pinned>)> {
    let mut s = Stream {
        src,
        pending: Bytes::new(),
        version: 1,
        hasher: blake3::Hasher::new(),
        at: 0,
        limit,
        remote,
    };
    let mut head = [0u8; 8];
    s.fill(&mut head, "the header")?;
    if head[..4] != TRANSFER_MAGIC || !matches!(head[4], 1 | 2) || head[5..8] != [0; 3] {
        return Err(s.bad("not a version 1 or 2 Sydra transfer".into()));
    }
    s.version = head[4];
    let store = dst.objects();
    let mut out = Transfer::default();
    // What the received trees and commits reference that had not arrived
    // when they did: resolved once the pack is whole.
    let mut refs = Refs::default();
    let pack_len = s.u64("the pack length")?;
    let staged = if pack_len == 0 {
        None
    } else {
        let as_bad = |s: &Stream<'_>, e: Error| match e {
            Error::Objects(sydra_objects::Error::BadPack { reason, .. }) => {
                s.bad(format!("the pack: {reason}"))
            }
            e => e,
        };
        let mut sink = store
            .receive_pack(pack_len)
            .map_err(|e| as_bad(&s, e.into()))?;
        let mut check = |e: &sydra_objects::pack::Entry, payload: Option<&[u8]>, ids: &PackIds| {
            refs.note(e, payload, ids, store, pack_len)
        };
        // Stopped at the first entry that does not verify. Version 2
        // hashes the pack's trailer (its hash, checked against its bytes
        // by the sink) into the transfer's.
        let copied = s.copy(pack_len, 32, "the pack", |b| {
            sink.write(b, &mut check)?;
            Ok(sink.check_so_far()?)
        });
        copied.map_err(|e| as_bad(&s, e))?;
        let staged = sink.finish().map_err(|e| as_bad(&s, e.into()))?;
        refs.read_back(staged.as_ref())
            .map_err(|r| s.bad(format!("the pack: {r}")))?;
        refs.resolve(store, staged.as_ref())
            .map_err(|r| s.bad(format!("the pack: {r}")))?;
        staged
    };
    out.commits = refs.commits;
    if let Some(p) = &staged {
        out.pack = Some(p.hash());
        out.objects = p.len() as u64;
        out.bytes = p.payload_bytes();
    }
    // Pinned before anything is visible: a GC of this process must not
    // take what arrived before the caller's refs reach it.
    let pinned = store.pin(staged.iter().flat_map(StagedPack::ids));

    let dst_wal = dst.layout().wal();
    let n_ranges = s.u64("the range count")?;
    let mut verified: Vec<ranges::VerifiedRange> = Vec::new();
    // Ranges already here, skipped.
    let mut held = Vec::new();
    // Ranges whose last byte was read, still being written and digested
    // by their threads while the next one is read.
    let mut writing: std::collections::VecDeque<(ranges::RangeWriter, Chunk)> =
        std::collections::VecDeque::new();
    let verify = |w: ranges::RangeWriter, chunk: &Chunk| {
        let id = *w.id();
        w.finish(chunk).map_err(|e| match e {
            Error::ChunkMismatch { reason, .. } => {
                bad_transfer(remote, format!("WAL range {id}: {reason}"))
            }
            e => e,
        })
    };
    for _ in 0..n_ranges {
        let id = s.id("a range id")?;
        let len = s.u64("a range length")?;
        let chunk = chunk_of(store, staged.as_ref(), &id)
            .map_err(|reason| s.bad(format!("WAL range {id}: {reason}")))?;
        let want = crate::wal::record::SEGMENT_HEADER_LEN as u64 + (chunk.end - chunk.start);
        if len != want {
            return Err(s.bad(format!(
                "WAL range {id} is {len} bytes; its chunk needs {want}"
            )));
        }
        // A range's bytes are covered by its chunk, not by the trailer
        // (version 2).
        // A range listed twice is written once (those being written, or
        // verified but not yet placed, are not on disk).
        if verified.iter().any(|v| *v.id() == id) || writing.iter().any(|(w, _)| *w.id() == id) {
            s.copy(len, 0, "a range", |_| Ok(()))?;
            continue;
        }
        if has_range(&dst_wal, &id, &chunk) {
            s.copy(len, 0, "a range", |_| Ok(()))?;
            held.push(id);
            continue;
        }
        let mut w = ranges::RangeWriter::new(&dst_wal, &id)?;
        s.copy(len, 0, "a range", |b| w.write_shared(b))?;
        w.close()?;
        writing.push_back((w, chunk));
        if writing.len() > RANGES_WRITING
            && let Some((w, chunk)) = writing.pop_front()
        {
            verified.push(verify(w, &chunk)?);
        }
        // Each holds an open file until placed.
        if verified.len() == PLACE_RANGES_AT {
            ranges::place(std::mem::take(&mut verified))?;
        }
        out.ranges += 1;
        out.range_bytes += len - crate::wal::record::SEGMENT_HEADER_LEN as u64;
    }
    for (w, chunk) in writing {
        verified.push(verify(w, &chunk)?);
    }
    ranges::place(verified)?;
    ranges::make_held_durable(&dst_wal, &held)?;
    let n_shallow = s.u64("the shallow count")?;
    let mut shallow = HashSet::new();
    for _ in 0..n_shallow {
        shallow.insert(s.id("a shallow id")?);
    }
    let expected = s.hasher.finalize();
    let mut trailer = [0u8; 32];
    s.raw(&mut trailer, "the trailer")?;
    if trailer != *expected.as_bytes() {
        return Err(s.bad("its trailer does not match its content (damaged or cut short)".into()));
    }
    if !s.at_end()? {
        return Err(s.bad("bytes follow the last section".into()));
    }
    if let Some((commit, parent)) = refs.orphans.iter().find(|(c, _)| !shallow.contains(c)) {
        return Err(s.bad(format!(
            "the pack: commit {commit} references parent {parent}, which neither side has"
        )));
    }
    if let Some(p) = staged {
        p.publish()?;
    }
    // A boundary tells this store's GC and fsck that history stops at a
    // commit: recorded only for commits of this pack whose parents neither
    // side has. A listed commit whose parents are here (or that is not in
    // the pack) is no boundary here, and marking it one would let a GC
    // drop the history below it.
    out.shallow = shallow
        .into_iter()
        .filter(|c| refs.orphans.iter().any(|(x, _)| x == c))
        .collect();
    out.shallow.sort();
    if !out.shallow.is_empty() {
        add_boundaries(dst, &out.shallow)?;
    }
    Ok((out, Some(pinned)))
}

/// Ranges received and verified are made durable and visible this many at
/// a time (and at the end): see [`ranges::place`].
const PLACE_RANGES_AT: usize = 64;

/// Ranges a receiver lets their threads finish (write back, digest) while
/// it reads the next: one range waited for at a time held a clone's reader
/// for a range's whole writeback, 25 ms each (DECISIONS 74, 76). Each
/// holds at most a write-behind's 19 blocks, and usually its few MB.
const RANGES_WRITING: usize = 4;

/// Connectivity of a received pack, gathered as its trees and commits
/// arrive (each decoded canonically) and checked when the pack is whole:
/// every id they reference must be in the pack or already here. Each id
/// is kept once, whatever the number of trees naming it; which tree named
/// a missing one is looked up only on failure. A commit's missing parents
/// are allowed for the shallow commits only, which the transfer lists
/// after its ranges.
struct Refs {
    /// Referenced ids, less (after a prune) those the pack or the store
    /// held by then.
    referenced: PackIds,
    /// Prune `referenced` when it reaches this many ids.
    prune_at: usize,
    /// (commit, parent) for every parent.
    parents: Vec<(ObjectId, ObjectId)>,
    commits: u64,
    /// Trees and commits too large to be handed over as they streamed:
    /// read from the staged pack once it is whole.
    deferred: Vec<ObjectId>,
    /// Parents neither side has, once the pack is whole.
    orphans: Vec<(ObjectId, ObjectId)>,
    /// Trees recorded, by their first entry's id (see [`Refs::record_tree`]).
    seen: ahash::AHashMap<ObjectId, SeenTree>,
    /// Payload bytes held in `seen`.
    seen_bytes: usize,
}

/// A tree whose entries were all noted: its payload, and where each entry
/// ends in it.
struct SeenTree {
    payload: Vec<u8>,
    ends: Vec<u32>,
}

/// What [`Refs`] keeps of recorded trees at most; past it, it starts over.
const SEEN_MAX_BYTES: usize = 64 << 20;

/// The id of a tree payload's first entry (after the 4-byte count: kind,
/// name length, name, id), or `None` when it has none or is too short.
fn first_entry_id(payload: &[u8]) -> Option<ObjectId> {
    let name_len = usize::from(*payload.get(5)?);
    let at = 6 + name_len;
    let bytes: [u8; 32] = payload.get(at..at + 32)?.try_into().ok()?;
    Some(ObjectId::from_bytes(bytes))
}

/// How many leading bytes `a` and `b` share.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    // Eight bytes at a time: the first differing bit of the words, read
    // little-endian, is in the first differing byte.
    let word = |s: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(s);
        u64::from_le_bytes(w)
    };
    let mut at = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let d = word(x) ^ word(y);
        if d != 0 {
            return at + (d.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + a[at..]
        .iter()
        .zip(&b[at..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// A tree payload's entry count (its first four bytes).
fn entry_count(payload: &[u8]) -> Option<usize> {
    Some(u32::from_le_bytes(payload.get(..4)?.try_into().ok()?) as usize)
}

/// Where each entry of a decoded tree ends, `from` being where the first
/// one starts.
fn entry_ends(t: &sydra_objects::TreeRef<'_>, from: usize, ends: &mut Vec<u32>) {
    let mut at = from;
    for e in &t.entries {
        at += 2 + e.name.len() + ObjectId::LEN;
        ends.push(at as u32);
    }
}

/// The fewest referenced ids at which [`Refs`] prunes (about 50 MB).
const PRUNE_MIN: usize = 1 << 20;

impl Default for Refs {
    fn default() -> Self {
        Refs {
            referenced: PackIds::default(),
            prune_at: PRUNE_MIN,
            parents: Vec::new(),
            commits: 0,
            deferred: Vec::new(),
            orphans: Vec::new(),
            seen: ahash::AHashMap::new(),
            seen_bytes: 0,
        }
    }
}

impl Refs {
    /// A verified tree or commit of the pack arrived (`payload` `None`:
    /// too large to be handed over; read back later). `ids` are the
    /// pack's entries so far. The ids it references are kept; when they
    /// grow many, those already in the pack or the store are dropped, and
    /// what remains must fit in the entries the rest of the pack
    /// (`pack_len` bytes in all) can hold: a pack of trees naming ids that
    /// exist nowhere is refused early instead of growing this set without
    /// bound.
    fn note(
        &mut self,
        e: &sydra_objects::pack::Entry,
        payload: Option<&[u8]>,
        ids: &PackIds,
        store: &sydra_objects::Store,
        pack_len: u64,
    ) -> std::result::Result<(), String> {
        let Some(payload) = payload else {
            self.deferred.push(e.id);
            return Ok(());
        };
        self.record(e, payload)?;
        if self.referenced.len() < self.prune_at {
            return Ok(());
        }
        self.referenced.retain(|id| !ids.contains(id));
        not_in_store(store, &mut self.referenced);
        let rest = pack_len.saturating_sub(e.offset.saturating_add(e.len));
        let room = rest / sydra_objects::store::header::MIN_FILE_LEN as u64;
        if self.referenced.len() as u64 > room {
            return Err(format!(
                "by entry {} the pack references {} objects that are neither in it nor here, \
                 more than the {room} entries its remaining {rest} bytes can hold",
                e.id,
                self.referenced.len()
            ));
        }
        self.prune_at = self.referenced.len().saturating_mul(2).max(PRUNE_MIN);
        Ok(())
    }

    fn record(
        &mut self,
        e: &sydra_objects::pack::Entry,
        payload: &[u8],
    ) -> std::result::Result<(), String> {
        match e.kind {
            Kind::Tree => self.record_tree(e, payload)?,
            Kind::Commit => {
                let c = sydra_objects::CommitRef::decode(payload)
                    .map_err(|d| format!("commit {}: {d}", e.id))?;
                self.referenced.insert(c.tree);
                self.parents.extend(c.parents.iter().map(|p| (e.id, *p)));
                self.commits += 1;
            }
            Kind::Blob => {}
        }
        Ok(())
    }

    /// Start `seen` over once it holds more than [`SEEN_MAX_BYTES`].
    fn bound_seen(&mut self) {
        if self.seen_bytes > SEEN_MAX_BYTES {
            self.seen.clear();
            self.seen_bytes = 0;
        }
    }

    /// Note a tree's entries. A series' directory keeps its older entries
    /// byte for byte from one compaction to the next (it gains a segment
    /// and rewrites the last), and a transfer sends every version, so a
    /// clone's pack holds the same entries over and over. Against the
    /// longest tree noted before with the same first entry (`seen`), only
    /// the entries after the longest run of whole entries they share are
    /// decoded and noted; the first of those must sort after the last
    /// shared one, and their count must be the tree's count less the
    /// shared ones. The tree is as fully checked as by a whole decode,
    /// and the ids noted are the same set.
    fn record_tree(
        &mut self,
        e: &sydra_objects::pack::Entry,
        payload: &[u8],
    ) -> std::result::Result<(), String> {
        let bad = |d: &dyn std::fmt::Display| format!("tree {}: {d}", e.id);
        let first = first_entry_id(payload);
        if let (Some(f), Some(n)) = (first, entry_count(payload))
            && let Some(prev) = self.seen.get_mut(&f)
        {
            // Whole entries shared: those ending at or before the first
            // byte that differs (past the count).
            let differs = 4 + common_prefix(&payload[4..], &prev.payload[4..]);
            let shared = prev.ends.partition_point(|&end| end as usize <= differs);
            if shared > 0 && shared <= n {
                let from = prev.ends[shared - 1] as usize;
                let mut rest = Vec::with_capacity(4 + payload.len() - from);
                rest.extend_from_slice(&((n - shared) as u32).to_le_bytes());
                rest.extend_from_slice(&payload[from..]);
                let t = sydra_objects::TreeRef::decode(&rest).map_err(|d| bad(&d))?;
                let last_at = if shared >= 2 {
                    prev.ends[shared - 2] as usize
                } else {
                    4
                };
                let last = &prev.payload
                    [last_at + 2..last_at + 2 + usize::from(prev.payload[last_at + 1])];
                if let Some(next) = t.entries.first()
                    && next.name.as_bytes() <= last
                {
                    return Err(bad(&format!(
                        "entry {:?} is not strictly after {:?}",
                        next.name,
                        String::from_utf8_lossy(last)
                    )));
                }
                self.referenced.extend(t.entries.iter().map(|x| x.id));
                // Keep the longer of the two for the trees to come.
                if payload.len() > prev.payload.len() {
                    self.seen_bytes += payload.len() - prev.payload.len();
                    prev.payload.truncate(from);
                    prev.payload.extend_from_slice(&payload[from..]);
                    prev.payload[..4].copy_from_slice(&payload[..4]);
                    prev.ends.truncate(shared);
                    entry_ends(&t, from, &mut prev.ends);
                    self.bound_seen();
                }
                return Ok(());
            }
        }
        let t = sydra_objects::TreeRef::decode(payload).map_err(|d| bad(&d))?;
        // Trees come before what they name in a transfer, so filtering by
        // the pack so far would rarely drop an id: the prune does it in
        // bulk.
        self.referenced.extend(t.entries.iter().map(|x| x.id));
        if let Some(f) = first {
            let mut ends = Vec::with_capacity(t.entries.len());
            entry_ends(&t, 4, &mut ends);
            self.seen_bytes += payload.len();
            let kept = SeenTree {
                payload: payload.to_vec(),
                ends,
            };
            if let Some(old) = self.seen.insert(f, kept) {
                self.seen_bytes -= old.payload.len();
            }
            self.bound_seen();
        }
        Ok(())
    }

    /// Note the references of the entries too large to be handed over,
    /// from the whole pack.
    fn read_back(&mut self, pack: Option<&StagedPack>) -> std::result::Result<(), String> {
        let Some(pack) = pack else {
            return Ok(());
        };
        for id in std::mem::take(&mut self.deferred) {
            let (kind, payload) = pack
                .get(&id)
                .ok_or_else(|| format!("{id} is in the pack's index but cannot be read"))?;
            let e = sydra_objects::pack::Entry {
                id,
                kind,
                offset: 0,
                len: 0,
            };
            self.record(&e, payload)?;
        }
        Ok(())
    }

    /// The pack is whole: every referenced id is in it or here; the
    /// parents that are not become the orphans.
    fn resolve(
        &mut self,
        store: &sydra_objects::Store,
        pack: Option<&StagedPack>,
    ) -> std::result::Result<(), String> {
        let present = |id: &ObjectId| {
            pack.is_some_and(|p| p.contains(id)) || store.contains(id).unwrap_or(false)
        };
        let mut left = std::mem::take(&mut self.referenced);
        if let Some(p) = pack {
            for id in p.ids() {
                left.remove(&id);
            }
        }
        not_in_store(store, &mut left);
        let mut missing: Vec<ObjectId> = left.into_iter().collect();
        missing.sort();
        if let Some(id) = missing.first() {
            return Err(referrer(pack, id).map_or_else(
                || format!("{id} is referenced, and neither side has it"),
                |(by, kind, as_kind)| {
                    format!("{kind} {by} references {as_kind} {id}, which neither side has")
                },
            ));
        }
        self.orphans = std::mem::take(&mut self.parents);
        self.orphans.retain(|(_, p)| !present(p));
        Ok(())
    }
}

/// Keep in `ids` only those the store does not hold. Most references of
/// a fetch name objects the store has packed: the packs' indexes remove
/// them ([`sydra_objects::Store::retain_unpacked`]), and the few left are
/// looked for loose.
fn not_in_store(store: &sydra_objects::Store, ids: &mut PackIds) {
    store.retain_unpacked(ids);
    ids.retain(|id| !store.contains(id).unwrap_or(false));
}

/// A tree or commit of `pack` that references `id`: its id, its kind, and
/// the kind it names `id` as (for an error message).
fn referrer(pack: Option<&StagedPack>, id: &ObjectId) -> Option<(ObjectId, Kind, Kind)> {
    let pack = pack?;
    pack.ids().find_map(|by| match pack.get(&by)? {
        (Kind::Tree, payload) => sydra_objects::TreeRef::decode(payload)
            .ok()?
            .entries
            .iter()
            .find(|x| x.id == *id)
            .map(|x| (by, Kind::Tree, x.kind)),
        (Kind::Commit, payload) => {
            let c = sydra_objects::CommitRef::decode(payload).ok()?;
            (c.tree == *id).then_some((by, Kind::Commit, Kind::Tree))
        }
        _ => None,
    })
}

/// The chunk blob `id`, from the received pack or the store.
fn chunk_of(
    store: &sydra_objects::Store,
    staged: Option<&StagedPack>,
    id: &ObjectId,
) -> std::result::Result<Chunk, String> {
    if let Some((kind, payload)) = staged.and_then(|p| p.get(id)) {
        if kind != Kind::Blob {
            return Err(format!("{id} is a {kind}, not a chunk"));
        }
        return Chunk::decode(payload).map_err(|e| format!("its chunk: {e}"));
    }
    let blob = store
        .get(id)
        .map_err(|e| format!("its chunk is not here: {e}"))?;
    Chunk::decode(&blob.data).map_err(|e| format!("its chunk: {e}"))
}

/// Ingest a transfer file (see [`receive_from`]).
pub fn receive(
    dst: &Repository,
    file: &TransferFile,
    remote: &str,
) -> Result<(Transfer, Option<Pinned>)> {
    let f = sydra_objects::fs::open_regular(&file.path).map_err(Error::io("open", &file.path))?;
    let mut r = io::BufReader::with_capacity(64 << 10, f);
    let mut t = receive_from(dst, &mut r, u64::MAX, remote)?;
    t.0.commits = file.counts.commits.max(t.0.commits);
    Ok(t)
}

/// [`receive_from`] of a transfer arriving as `chunks` (buffers an
/// embedding server's transport filled, say): the pack's and the ranges'
/// bytes are written from the chunks as they are, without a copy. A chunk
/// that is an error ends the transfer with it.
pub fn receive_chunks(
    dst: &Repository,
    chunks: impl IntoIterator<Item = io::Result<Bytes>>,
    limit: u64,
    remote: &str,
) -> Result<(Transfer, Option<Pinned>)> {
    let mut src = Chunks {
        it: chunks.into_iter(),
        cur: Bytes::new(),
    };
    receive_blocks(dst, &mut src, limit, remote)
}

/// An iterator of chunks as [`Blocks`].
struct Chunks<I> {
    it: I,
    cur: Bytes,
}

impl<I: Iterator<Item = io::Result<Bytes>>> Blocks for Chunks<I> {
    fn next_block(&mut self, max: usize) -> io::Result<Bytes> {
        split_next(&mut self.cur, max, || self.it.next())
    }
}

/// At most `max` bytes of `cur`, refilled from `next` while empty; empty
/// once `next` has no more.
fn split_next(
    cur: &mut Bytes,
    max: usize,
    mut next: impl FnMut() -> Option<io::Result<Bytes>>,
) -> io::Result<Bytes> {
    while cur.is_empty() {
        match next() {
            Some(chunk) => *cur = chunk?,
            None => return Ok(Bytes::new()),
        }
    }
    Ok(cur.split_to(max.min(cur.len())))
}

/// [`receive_from`] of transfer bytes already in memory or mapped.
pub fn receive_bytes(
    dst: &Repository,
    b: &[u8],
    remote: &str,
) -> Result<(Transfer, Option<Pinned>)> {
    let mut r = b;
    receive_from(dst, &mut r, b.len() as u64, remote)
}

/// An in-process pipe of blocks, for a sender thread writing a transfer
/// that a receiver reads as it comes (a transfer between two data
/// directories, a download): at most 16 blocks in flight (of 1 MiB, or
/// a download's chunks as they came), so the writer goes on while the
/// reader waits for its own writing threads.
pub(super) fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(16);
    (
        PipeWriter {
            tx,
            buf: Vec::with_capacity(BLOCK),
        },
        PipeReader {
            rx,
            cur: Bytes::new(),
        },
    )
}

/// The writing end of [`pipe`]: buffers a block, sends it when full and
/// at `flush`. Writes fail once the reader is gone.
pub(super) struct PipeWriter {
    tx: SyncSender<Bytes>,
    buf: Vec<u8>,
}

/// The reading end of [`pipe`]: end of stream once the writer is dropped.
pub(super) struct PipeReader {
    rx: Receiver<Bytes>,
    cur: Bytes,
}

impl PipeWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let block = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
        self.send_block(Bytes::from(block))
    }

    fn send_block(&mut self, block: Bytes) -> io::Result<()> {
        self.tx
            .send(block)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the receiver stopped"))
    }

    /// Hand over a buffer whole (a download's chunk), after what was
    /// written before it: the receiver passes it on without a copy.
    #[cfg(feature = "s3")]
    pub(super) fn send_owned(&mut self, chunk: Bytes) -> io::Result<()> {
        self.send()?;
        self.send_block(chunk)
    }
}

impl Write for PipeWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(BLOCK - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() == BLOCK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Blocks for PipeReader {
    fn next_block(&mut self, max: usize) -> io::Result<Bytes> {
        split_next(&mut self.cur, max, || self.rx.recv().ok().map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sydra_objects::{Entry as TreeEntry, Tree};

    #[test]
    fn common_prefix_finds_the_first_differing_byte() {
        let a: Vec<u8> = (0..100u8).collect();
        assert_eq!(common_prefix(&a, &a), 100);
        assert_eq!(common_prefix(&a, &a[..37]), 37);
        assert_eq!(common_prefix(&a[..0], &a), 0);
        for at in 0..100 {
            for bit in [0, 7] {
                let mut b = a.clone();
                b[at] ^= 1 << bit;
                assert_eq!(common_prefix(&a, &b), at, "byte {at}, bit {bit}");
                assert_eq!(common_prefix(&b[..at + 1], &a), at);
            }
        }
    }

    fn tree_of(names: &[(&str, u8)]) -> (sydra_objects::pack::Entry, Vec<u8>) {
        let entries = names
            .iter()
            .map(|&(name, b)| TreeEntry {
                kind: Kind::Blob,
                name: name.to_owned(),
                id: ObjectId::from_bytes([b; 32]),
            })
            .collect();
        let payload = Tree::from_entries(entries)
            .unwrap_or_else(|e| panic!("{e}"))
            .encode();
        (entry_of(&payload), payload)
    }

    fn entry_of(payload: &[u8]) -> sydra_objects::pack::Entry {
        sydra_objects::pack::Entry {
            id: ObjectId::compute(Kind::Tree, payload),
            kind: Kind::Tree,
            offset: 16,
            len: payload.len() as u64,
        }
    }

    /// What `refs` noted since it was last cleared, sorted.
    fn noted(refs: &mut Refs) -> Vec<ObjectId> {
        let mut v: Vec<ObjectId> = refs.referenced.drain().collect();
        v.sort();
        v
    }

    fn ids(bs: &[u8]) -> Vec<ObjectId> {
        let mut v: Vec<ObjectId> = bs.iter().map(|&b| ObjectId::from_bytes([b; 32])).collect();
        v.sort();
        v
    }

    #[test]
    fn trees_that_repeat_entries_noted_before_are_decoded_only_where_they_differ() {
        let mut refs = Refs::default();
        let ok = |refs: &mut Refs, (e, p): &(sydra_objects::pack::Entry, Vec<u8>)| {
            refs.record(e, p).unwrap_or_else(|err| panic!("{err}"));
        };
        // Newest first, as a transfer sends them: the older versions are
        // prefixes and note nothing new.
        ok(
            &mut refs,
            &tree_of(&[("s1", 1), ("s2", 2), ("s3", 3), ("s4", 4)]),
        );
        assert_eq!(noted(&mut refs), ids(&[1, 2, 3, 4]));
        ok(&mut refs, &tree_of(&[("s1", 1), ("s2", 2), ("s3", 3)]));
        ok(&mut refs, &tree_of(&[("s1", 1)]));
        assert_eq!(noted(&mut refs), ids(&[]));
        // Oldest first: each one's new entries only.
        ok(
            &mut refs,
            &tree_of(&[("s1", 1), ("s2", 2), ("s3", 3), ("s4", 4), ("s5", 5)]),
        );
        assert_eq!(noted(&mut refs), ids(&[5]));
        ok(
            &mut refs,
            &tree_of(&[
                ("s1", 1),
                ("s2", 2),
                ("s3", 3),
                ("s4", 4),
                ("s5", 5),
                ("s6", 6),
            ]),
        );
        assert_eq!(noted(&mut refs), ids(&[6]));
        // A rewritten last entry and one more (the next compaction of a
        // series): decoded from the first that differs.
        ok(
            &mut refs,
            &tree_of(&[
                ("s1", 1),
                ("s2", 2),
                ("s3", 3),
                ("s4", 4),
                ("s5", 5),
                ("s6", 8),
                ("s7", 7),
            ]),
        );
        assert_eq!(noted(&mut refs), ids(&[7, 8]));
        // Only the first entry shared: decoded from the second.
        ok(&mut refs, &tree_of(&[("s1", 1), ("t", 9)]));
        assert_eq!(noted(&mut refs), ids(&[9]));
        // A count smaller than the entries shared: decoded whole, refused.
        let (_, two) = tree_of(&[("s1", 1), ("s2", 2)]);
        let mut short = two.clone();
        short[..4].copy_from_slice(&1u32.to_le_bytes());
        assert!(refs.record(&entry_of(&short), &short).is_err());
        // What a whole decode refuses is refused: a new entry that sorts
        // before the last one kept, a damaged new entry, and a prefix that
        // ends inside an entry or claims a wrong count.
        let (_, base) = tree_of(&[("s1", 1), ("t", 9)]);
        let mut before = base.clone();
        before[..4].copy_from_slice(&3u32.to_le_bytes());
        before.extend_from_slice(&[Kind::Blob.code(), 1, b'a']);
        before.extend_from_slice(&[7u8; 32]);
        let err = refs.record(&entry_of(&before), &before).unwrap_err();
        assert!(err.contains("not strictly after"), "{err}");
        let mut cut = base.clone();
        cut[..4].copy_from_slice(&3u32.to_le_bytes());
        cut.extend_from_slice(&[Kind::Blob.code(), 2, b'u']);
        assert!(refs.record(&entry_of(&cut), &cut).is_err());
        let inside = base[..base.len() - 5].to_vec();
        assert!(refs.record(&entry_of(&inside), &inside).is_err());
        let mut miscount = base.clone();
        miscount[..4].copy_from_slice(&1u32.to_le_bytes());
        assert!(refs.record(&entry_of(&miscount), &miscount).is_err());
        for t in [&before, &cut, &inside, &miscount] {
            assert!(sydra_objects::TreeRef::decode(t).is_err());
        }
    }

    #[test]
    fn references_pruned_against_the_store_must_fit_in_the_rest_of_the_pack() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = sydra_objects::Store::create(dir.path(), sydra_objects::Options::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let here = store
            .put(Kind::Blob, b"here")
            .unwrap_or_else(|e| panic!("{e}"));
        let nowhere: Vec<ObjectId> = (0..3u8)
            .map(|i| ObjectId::from_bytes([i + 1; 32]))
            .collect();
        let entries = std::iter::once(here)
            .chain(nowhere.iter().copied())
            .enumerate()
            .map(|(i, id)| TreeEntry {
                kind: Kind::Blob,
                name: format!("e{i}"),
                id,
            })
            .collect();
        let payload = Tree::from_entries(entries)
            .unwrap_or_else(|e| panic!("{e}"))
            .encode();
        let tree = sydra_objects::pack::Entry {
            id: ObjectId::compute(Kind::Tree, &payload),
            kind: Kind::Tree,
            offset: 16,
            len: 300,
        };
        let min = sydra_objects::store::header::MIN_FILE_LEN as u64;
        // Room for three more entries: the three ids it names that exist
        // nowhere may still come; the one the store has is dropped.
        let mut refs = Refs {
            prune_at: 2,
            ..Refs::default()
        };
        let fits = 16 + 300 + 3 * min;
        refs.note(&tree, Some(&payload), &PackIds::default(), &store, fits)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut kept: Vec<ObjectId> = refs.referenced.iter().copied().collect();
        kept.sort();
        assert_eq!(kept, nowhere);
        // Room for two: refused, naming the tree.
        let mut refs = Refs {
            prune_at: 2,
            ..Refs::default()
        };
        let err = refs
            .note(&tree, Some(&payload), &PackIds::default(), &store, fits - 1)
            .unwrap_err();
        assert!(
            err.contains("neither in it nor here") && err.contains(&tree.id.to_string()),
            "{err}"
        );
        // Too large to be handed over: kept for the read-back.
        let mut refs = Refs::default();
        refs.note(&tree, None, &PackIds::default(), &store, fits)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(refs.deferred, vec![tree.id]);
        assert!(refs.referenced.is_empty());
    }
}
