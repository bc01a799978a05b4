//! Verifying a pack's entries as its bytes stream past (a pack received
//! from elsewhere): the framing, the CRC and the BLAKE3 of every entry are
//! computed on the bytes in hand, while they are in cache, so nothing is
//! read back. The same checks, in the same words, as [`super::scan`].
//! Entries of up to [`lanes::MAX_PAYLOAD`] bytes that arrive whole in one
//! piece are hashed together at the end of the piece, sixteen chunks at a
//! time ([`lanes`]), and handed over then, still in the pack's order.

use super::{Entry, HEADER, TRAILER, parse_header};
use crate::ObjectId;
use crate::id::IdHasher;
use crate::lanes;
use crate::store::PackIds;
use crate::store::header::{HEADER_LEN, Header, MIN_FILE_LEN, TRAILER_LEN};

/// Entries a scanner makes room for at once, from the pack's header: the
/// count and the length are the sender's word before any entry arrives,
/// so only a little is set aside on it (a few MiB); the rest grows with
/// the entries that come.
const RESERVE_MAX: u64 = 1 << 16;

/// The entry being read.
#[derive(Debug)]
struct Current {
    entry: Entry,
    /// Payload bytes still to come.
    left: u64,
    crc: crc32fast::Hasher,
    /// `None` for an entry of at most [`lanes::MAX_PAYLOAD`] bytes: its
    /// payload is gathered and its id checked with the next piece's.
    id: Option<IdHasher>,
    stored_crc: [u8; TRAILER_LEN],
    crc_filled: usize,
    /// Whether its payload is gathered (a small entry, or a tree or a
    /// commit of at most [`crate::MAX_TREE_OR_COMMIT_LEN`] bytes).
    keep: bool,
    /// Whether it is handed to the caller (a tree or a commit).
    hand_over: bool,
}

/// A small entry whose id is checked at the end of the piece being fed.
#[derive(Debug)]
struct Pending {
    entry: Entry,
    /// Where its payload starts in the piece; `None`: it is the entry
    /// that arrived across pieces, gathered in `EntryScanner::carried`.
    at: Option<usize>,
    payload_len: usize,
}

impl Pending {
    fn payload<'a>(&self, piece: &'a [u8], carried: &'a [u8]) -> &'a [u8] {
        match self.at {
            Some(at) => &piece[at..at + self.payload_len],
            None => carried,
        }
    }
}

/// What a scanner hands its caller for each verified tree and commit, as
/// it completes: the entry, its payload (`None` for one over
/// [`crate::MAX_TREE_OR_COMMIT_LEN`], which is not gathered in memory: the
/// caller reads it from the pack once the pack is whole), and the ids of
/// the entries so far. Blobs are not handed over.
pub type OnEntry<'a> = dyn FnMut(&Entry, Option<&[u8]>, &PackIds) -> Result<(), String> + 'a;

/// Checks the entries of a pack of `len` bytes fed front to back (the
/// bytes before its trailer; the trailer is the caller's).
#[derive(Debug)]
pub(crate) struct EntryScanner {
    /// Where the trailer starts.
    body: u64,
    /// Offset of the next byte.
    pos: u64,
    declared: u64,
    /// The pack header, then each entry header, as it fills.
    head: [u8; HEADER_LEN],
    filled: usize,
    current: Option<Current>,
    entries: Vec<Entry>,
    ids: PackIds,
    /// The payload of the tree or commit being read.
    payload: Vec<u8>,
    /// Trees and commits of more stored bytes are handed over without
    /// their payload ([`OnEntry`]).
    gather_limit: u64,
    /// Entries of the piece being fed whose ids are checked at its end.
    pending: Vec<Pending>,
    /// The payload of the pending entry that began in an earlier piece
    /// (at most one: the entry being read when the piece began).
    carried: Vec<u8>,
    /// Scratch for their ids.
    hashed: Vec<ObjectId>,
    /// A feed failed: the entries may hold one not verified, so nothing
    /// more is taken and `finish` refuses.
    refused: bool,
}

impl EntryScanner {
    /// A scanner for a pack of `len` bytes (at least a header and a
    /// trailer).
    pub(crate) fn new(len: u64) -> EntryScanner {
        EntryScanner {
            body: len.saturating_sub(TRAILER as u64),
            pos: 0,
            declared: 0,
            head: [0; HEADER_LEN],
            filled: 0,
            current: None,
            entries: Vec::new(),
            ids: PackIds::default(),
            payload: Vec::new(),
            gather_limit: crate::MAX_TREE_OR_COMMIT_LEN,
            pending: Vec::new(),
            carried: Vec::new(),
            hashed: Vec::new(),
            refused: false,
        }
    }

    /// Take the next bytes (none past the body); `on_entry` sees every
    /// tree and commit once verified. Errors name the entry's offset.
    pub(crate) fn feed(&mut self, piece: &[u8], on_entry: &mut OnEntry<'_>) -> Result<(), String> {
        if self.refused {
            return Err(REFUSED.into());
        }
        let start = self.pos;
        let scanned = self.scan(piece, start, on_entry);
        // An entry found bad earlier in the piece is the one named.
        let checked = self.check_pending(piece);
        let handed = match (&checked, &scanned) {
            (Ok(()), Ok(())) => self.hand_over_pending(piece, on_entry),
            _ => Ok(()),
        };
        self.pending.clear();
        let r = checked.and(scanned).and(handed);
        self.refused = r.is_err();
        r
    }

    /// Check the ids of the entries pending in `piece`; the first that
    /// differs is the error.
    fn check_pending(&mut self, piece: &[u8]) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let objects: Vec<(crate::Kind, &[u8])> = self
            .pending
            .iter()
            .map(|p| (p.entry.kind, p.payload(piece, &self.carried)))
            .collect();
        lanes::ids(&objects, &mut self.hashed);
        debug_assert_eq!(self.hashed.len(), self.pending.len());
        for (p, hashed) in self.pending.iter().zip(&self.hashed) {
            check_id(&p.entry, hashed)?;
        }
        Ok(())
    }

    /// Hand the pending trees and commits, checked, to `on_entry`.
    fn hand_over_pending(
        &mut self,
        piece: &[u8],
        on_entry: &mut OnEntry<'_>,
    ) -> Result<(), String> {
        for p in &self.pending {
            if p.entry.kind != crate::Kind::Blob {
                let payload = p.payload(piece, &self.carried);
                let keep = p.payload_len as u64 <= self.gather_limit;
                on_entry(&p.entry, keep.then_some(payload), &self.ids)?;
            }
        }
        Ok(())
    }

    /// [`EntryScanner::feed`]'s walk over the bytes of `piece`.
    fn scan(&mut self, piece: &[u8], start: u64, on_entry: &mut OnEntry<'_>) -> Result<(), String> {
        let mut b = piece;
        while !b.is_empty() {
            if self.pos < HEADER as u64 {
                let n = (HEADER - self.filled).min(b.len());
                self.head[self.filled..self.filled + n].copy_from_slice(&b[..n]);
                self.take(&mut b, n);
                if self.filled == HEADER {
                    let mut h = [0u8; HEADER + TRAILER];
                    h[..HEADER].copy_from_slice(&self.head[..HEADER]);
                    self.declared = parse_header(&h)?;
                    self.filled = 0;
                    // Room for the declared entries, as many as the
                    // pack's length can hold, at most `RESERVE_MAX`.
                    let room = self
                        .declared
                        .min(self.body / MIN_FILE_LEN as u64)
                        .min(RESERVE_MAX);
                    self.ids.reserve(room as usize);
                    self.entries.reserve(room as usize);
                }
                continue;
            }
            let Some(c) = self.current.as_mut() else {
                self.entry_header(&mut b, start)?;
                continue;
            };
            if c.left > 0 {
                let n = usize::try_from(c.left).unwrap_or(usize::MAX).min(b.len());
                c.crc.update(&b[..n]);
                if let Some(id) = &mut c.id {
                    id.update(&b[..n]);
                }
                if c.keep {
                    self.payload.extend_from_slice(&b[..n]);
                }
                c.left -= n as u64;
                self.pos += n as u64;
                b = &b[n..];
                continue;
            }
            let n = (TRAILER_LEN - c.crc_filled).min(b.len());
            c.stored_crc[c.crc_filled..c.crc_filled + n].copy_from_slice(&b[..n]);
            c.crc_filled += n;
            self.pos += n as u64;
            b = &b[n..];
            if c.crc_filled == TRAILER_LEN {
                if c.hand_over && c.id.is_some() && !self.pending.is_empty() {
                    // The entries before it go first.
                    self.check_pending(piece)?;
                    self.hand_over_pending(piece, on_entry)?;
                    self.pending.clear();
                }
                self.end_entry(on_entry)?;
            }
        }
        Ok(())
    }

    /// Consume `n` bytes of `b` into the header buffer's count.
    fn take(&mut self, b: &mut &[u8], n: usize) {
        self.filled += n;
        self.pos += n as u64;
        *b = &b[n..];
    }

    /// Read an entry's header from `b` (the rest of the piece being fed,
    /// which started at pack offset `start`); an entry that is whole in
    /// `b` and small is taken whole, its id left pending.
    fn entry_header(&mut self, b: &mut &[u8], start: u64) -> Result<(), String> {
        if self.filled == 0 && self.body.saturating_sub(self.pos) < MIN_FILE_LEN as u64 {
            return Err(format!(
                "entry at offset {} is cut short by the end of the pack",
                self.pos
            ));
        }
        let n = (HEADER_LEN - self.filled).min(b.len());
        self.head[self.filled..self.filled + n].copy_from_slice(&b[..n]);
        self.take(b, n);
        if self.filled < HEADER_LEN {
            return Ok(());
        }
        self.filled = 0;
        let offset = self.pos - HEADER_LEN as u64;
        let hd =
            Header::decode(&self.head).map_err(|r| format!("entry at offset {offset}: {r}"))?;
        let len = hd
            .file_len()
            .filter(|&l| l <= self.body - offset)
            .ok_or_else(|| {
                format!(
                    "entry at offset {offset} ({}) runs past the end of the pack",
                    hd.id
                )
            })?;
        if self.entries.len() as u64 >= self.declared {
            return Err(format!(
                "entry at offset {offset} is beyond the {} the header declares",
                self.declared
            ));
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&self.head);
        let entry = Entry {
            id: hd.id,
            kind: hd.kind,
            offset,
            len,
        };
        let stored = hd.stored_len as usize;
        if hd.stored_len <= lanes::MAX_PAYLOAD as u64 && b.len() >= stored + TRAILER_LEN {
            crc.update(&b[..stored]);
            let mut stored_crc = [0u8; TRAILER_LEN];
            stored_crc.copy_from_slice(&b[stored..stored + TRAILER_LEN]);
            check_crc(&entry, u32::from_le_bytes(stored_crc), crc.finalize())?;
            self.defer(entry, Some((self.pos - start) as usize), stored)?;
            self.pos += (stored + TRAILER_LEN) as u64;
            *b = &b[stored + TRAILER_LEN..];
            return Ok(());
        }
        let hand_over = hd.kind != crate::Kind::Blob;
        let small = hd.stored_len <= lanes::MAX_PAYLOAD as u64;
        let keep = small || (hand_over && hd.stored_len <= self.gather_limit);
        self.payload.clear();
        self.current = Some(Current {
            entry,
            left: hd.stored_len,
            crc,
            id: (!small).then(|| IdHasher::new(hd.kind, hd.payload_len)),
            stored_crc: [0; TRAILER_LEN],
            crc_filled: 0,
            keep,
            hand_over,
        });
        Ok(())
    }

    fn end_entry(&mut self, on_entry: &mut OnEntry<'_>) -> Result<(), String> {
        let Some(c) = self.current.take() else {
            return Ok(());
        };
        let e = c.entry;
        check_crc(&e, u32::from_le_bytes(c.stored_crc), c.crc.finalize())?;
        let Some(id) = c.id else {
            // Small: checked and handed over with the piece's others.
            std::mem::swap(&mut self.carried, &mut self.payload);
            return self.defer(e, None, self.carried.len());
        };
        check_id(&e, &id.finalize())?;
        self.claim(&e)?;
        if c.hand_over {
            on_entry(&e, c.keep.then_some(&self.payload[..]), &self.ids)?;
        }
        self.entries.push(e);
        Ok(())
    }

    /// Note `e`'s id among the pack's; an id may not repeat.
    fn claim(&mut self, e: &Entry) -> Result<(), String> {
        if !self.ids.insert(e.id) {
            return Err(format!("object {} appears twice", e.id));
        }
        Ok(())
    }

    /// Take a small entry whose CRC is checked, its id to be checked at
    /// the end of the piece (its payload at `at` in the piece, or
    /// `carried`).
    fn defer(&mut self, entry: Entry, at: Option<usize>, payload_len: usize) -> Result<(), String> {
        self.claim(&entry)?;
        self.pending.push(Pending {
            entry,
            at,
            payload_len,
        });
        self.entries.push(entry);
        Ok(())
    }

    /// Every byte of the body has been fed: the entries fill it exactly
    /// and their count is the declared one. Returns them and their ids.
    pub(crate) fn finish(self) -> Result<(Vec<Entry>, PackIds), String> {
        if self.refused {
            return Err(REFUSED.into());
        }
        if self.pos != self.body || self.current.is_some() || self.filled != 0 {
            return Err(format!(
                "the pack's entries end at offset {} of its {}-byte body",
                self.pos, self.body
            ));
        }
        if self.entries.len() as u64 != self.declared {
            return Err(format!(
                "header declares {} entries, the pack holds {}",
                self.declared,
                self.entries.len()
            ));
        }
        Ok((self.entries, self.ids))
    }
}

/// What a scanner answers once a feed has failed.
const REFUSED: &str = "the pack was refused at an earlier entry";

/// An entry's id against the one its bytes hash to.
fn check_id(e: &Entry, hashed: &ObjectId) -> Result<(), String> {
    if *hashed != e.id {
        return Err(format!(
            "entry at offset {} ({}) hashes to {hashed}",
            e.offset, e.id
        ));
    }
    Ok(())
}

/// An entry's stored CRC against the one computed.
fn check_crc(e: &Entry, stored: u32, actual: u32) -> Result<(), String> {
    if stored != actual {
        return Err(format!(
            "entry at offset {} ({}): CRC mismatch: stored {stored:08x}, computed {actual:08x}",
            e.offset, e.id
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;
    use crate::pack::{MAGIC, VERSION, scan_entries};
    use crate::store::header::encode_file;
    use proptest::prelude::*;

    fn pack_of(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&MAGIC);
        p.extend_from_slice(&[VERSION, 0, 0, 0]);
        p.extend_from_slice(&(payloads.len() as u64).to_le_bytes());
        for (i, b) in payloads.iter().enumerate() {
            // Every other entry a tree (the scanner does not decode).
            let kind = if i % 2 == 1 { Kind::Tree } else { Kind::Blob };
            p.extend_from_slice(&encode_file(kind, ObjectId::compute(kind, b), b));
        }
        let h = blake3::hash(&p);
        p.extend_from_slice(h.as_bytes());
        p
    }

    fn streamed(pack: &[u8], step: usize) -> Result<Vec<Entry>, String> {
        streamed_gathering(pack, step, crate::MAX_TREE_OR_COMMIT_LEN)
    }

    /// Scan `pack` fed `step` bytes at a time, gathering payloads of at
    /// most `limit` stored bytes.
    fn streamed_gathering(pack: &[u8], step: usize, limit: u64) -> Result<Vec<Entry>, String> {
        let mut s = EntryScanner::new(pack.len() as u64);
        s.gather_limit = limit;
        let mut handed = Vec::new();
        let mut on = |e: &Entry, payload: Option<&[u8]>, _: &PackIds| {
            handed.push((e.offset, payload.map(<[u8]>::to_vec)));
            Ok(())
        };
        for piece in pack[..pack.len() - TRAILER].chunks(step.max(1)) {
            s.feed(piece, &mut on)?;
        }
        let (entries, _) = s.finish()?;
        // Every tree was handed over, with its payload byte for byte when
        // within the limit; no blob was.
        let trees: Vec<(u64, Option<Vec<u8>>)> = entries
            .iter()
            .filter(|e| e.kind == Kind::Tree)
            .map(|e| {
                let at = e.offset as usize + HEADER_LEN;
                let end = e.offset as usize + e.len as usize - TRAILER_LEN;
                let payload = pack[at..end].to_vec();
                (e.offset, (payload.len() as u64 <= limit).then_some(payload))
            })
            .collect();
        assert_eq!(handed, trees);
        Ok(entries)
    }

    proptest! {
        #[test]
        /// Trees over the gathering limit are handed over too, without
        /// their payload.
        fn streaming_finds_what_a_whole_scan_finds(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            step in 1usize..200,
            limit in prop_oneof![Just(crate::MAX_TREE_OR_COMMIT_LEN), 0u64..300],
        ) {
            let mut unique = payloads.clone();
            unique.sort();
            unique.dedup();
            let pack = pack_of(&unique);
            let mut whole = Vec::new();
            scan_entries(&pack, true, |e| { whole.push(e); Ok(()) }).unwrap();
            prop_assert_eq!(streamed_gathering(&pack, step, limit).unwrap(), whole);
        }

        #[test]
        fn any_flipped_byte_before_the_trailer_is_refused(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..100), 1..4),
            step in 1usize..64,
            at in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut unique = payloads.clone();
            unique.sort();
            unique.dedup();
            let mut pack = pack_of(&unique);
            let i = at.index(pack.len() - TRAILER);
            pack[i] ^= 1 << bit;
            prop_assert!(streamed(&pack, step).is_err(), "flip at {} accepted", i);
        }
    }

    /// A pack of `payloads` as blobs, the one at `wrong` framed (CRC and
    /// all) under another object's id; and that entry's offset.
    fn pack_misnaming(payloads: &[&[u8]], wrong: usize) -> (Vec<u8>, Option<usize>) {
        let mut p = Vec::new();
        p.extend_from_slice(&MAGIC);
        p.extend_from_slice(&[VERSION, 0, 0, 0]);
        p.extend_from_slice(&(payloads.len() as u64).to_le_bytes());
        let mut offset = None;
        for (i, b) in payloads.iter().enumerate() {
            let mut named = ObjectId::compute(Kind::Blob, b);
            if i == wrong {
                offset = Some(p.len());
                named = ObjectId::compute(Kind::Blob, b"someone else");
            }
            p.extend_from_slice(&encode_file(Kind::Blob, named, b));
        }
        let h = blake3::hash(&p);
        p.extend_from_slice(h.as_bytes());
        (p, offset)
    }

    #[test]
    fn an_entry_under_another_id_is_refused_however_it_arrives() {
        // Small and large, whole in one piece (hashed with others at the
        // piece's end) or cut across pieces (hashed as it passes).
        let big = vec![7u8; lanes::MAX_PAYLOAD + 1];
        let mid = vec![9u8; 3000];
        let payloads: Vec<&[u8]> = vec![b"first", &mid, b"third", &big, b"fifth"];
        for wrong in 0..payloads.len() {
            let (pack, offset) = pack_misnaming(&payloads, wrong);
            let named = format!("entry at offset {} (", offset.unwrap());
            for step in [1, 7, 100, 4096, pack.len()] {
                let e = streamed(&pack, step).unwrap_err();
                assert!(
                    e.contains("hashes to") && e.starts_with(&named),
                    "entry {wrong}, step {step}: {e}"
                );
            }
        }
        // The same entries, each under its own id, pass every way.
        let (pack, _) = pack_misnaming(&payloads, usize::MAX);
        for step in [1, 7, 100, 4096, pack.len()] {
            assert_eq!(streamed(&pack, step).unwrap().len(), payloads.len());
        }
    }

    #[test]
    fn trees_large_and_small_are_handed_over_in_the_pack_order() {
        // Odd entries are trees: small ones wait for the end of their
        // piece, the large one (hashed as it passes) for the small ones
        // before it.
        let big = |b: u8| vec![b; lanes::MAX_PAYLOAD + 500];
        let payloads = vec![
            b"a".to_vec(),
            b"small tree".to_vec(),
            b"b".to_vec(),
            big(1),
            big(2),
            b"another small tree".to_vec(),
            b"c".to_vec(),
            big(3),
        ];
        let pack = pack_of(&payloads);
        for step in [1, 50, 1000, 20_000, pack.len()] {
            // `streamed` asserts the trees came in the pack's order.
            assert_eq!(streamed(&pack, step).unwrap().len(), payloads.len());
        }
    }

    #[test]
    fn after_a_refused_piece_nothing_more_is_taken() {
        let payloads: Vec<&[u8]> = vec![b"first", b"second"];
        let (pack, _) = pack_misnaming(&payloads, 0);
        let body = pack.len() - TRAILER;
        let mut s = EntryScanner::new(pack.len() as u64);
        let mut on = |_: &Entry, _: Option<&[u8]>, _: &PackIds| Ok(());
        let first = s.feed(&pack[..body], &mut on).unwrap_err();
        assert!(first.contains("hashes to"), "{first}");
        assert!(s.feed(&[], &mut on).is_err());
        assert!(s.finish().is_err());
    }

    #[test]
    fn a_repeated_object_and_a_wrong_count_are_refused() {
        let b = b"same".to_vec();
        let twice = pack_of(&[b.clone(), b"other".to_vec(), b]);
        assert!(streamed(&twice, 10).unwrap_err().contains("appears twice"));
        let mut short = pack_of(&[b"one".to_vec()]);
        short[8] = 2;
        assert!(streamed(&short, 10).unwrap_err().contains("declares 2"));
    }
}
