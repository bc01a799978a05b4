//! Properties of packs and pack indexes (`sydra_objects::pack`), checked on
//! arbitrary bytes and on packs built from the input.
//!
//! Shared by the fuzz targets `pack_index` and `pack_scan` and by
//! `objects/tests/fuzz_regressions.rs`, which includes this file with
//! `#[path]` (with `scratch.rs`). Only `std`, `sydra_objects`, `blake3` (a
//! dependency of sydra-objects, so its tests have it too) and `tempfile`
//! may be used here.
//!
//! Both targets read a flag byte first. Flags can rewrite an index's or a
//! pack's framing (header, fanout, order, entry headers, CRCs, ids,
//! trailer) to valid values, so that the fuzzer reaches the checks behind
//! them instead of forging BLAKE3 hashes and CRC32s.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use sydra_objects::pack::index::{self, IndexView, OFF_IDS, index_len};
use sydra_objects::pack::{self, Entry, HEADER, Pack, TRAILER, verify_pack};
use sydra_objects::store::header::{
    HEADER_LEN, MIN_FILE_LEN, TRAILER_LEN, encode_file, parse_file,
};
use sydra_objects::{Kind, ObjectId};

/// Length of an index's trailer hash.
const IDX_TRAILER: usize = 32;
/// Offset of the fanout in an index.
const OFF_FANOUT: usize = 48;

/// `pack_index` flag: magic, version, reserved bytes and count rewritten,
/// the length cut (or zero-padded) to a whole number of entries.
pub const IDX_FIX_HEADER: u8 = 1;
/// `pack_index` flag: ids sorted and deduplicated (offsets follow their
/// ids), count and length adjusted.
pub const IDX_SORT: u8 = 2;
/// `pack_index` flag: fanout recounted from the ids as they stand.
pub const IDX_FIX_FANOUT: u8 = 4;
/// `pack_index` flag: trailer recomputed.
pub const IDX_FIX_TRAILER: u8 = 8;

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn hash_of(bytes: &[u8]) -> ObjectId {
    ObjectId::from_bytes(*blake3::hash(bytes).as_bytes())
}

/// An id from up to 32 bytes, zero-padded.
fn id_from(bytes: &[u8]) -> ObjectId {
    let mut a = [0u8; 32];
    let n = bytes.len().min(32);
    a[..n].copy_from_slice(&bytes[..n]);
    ObjectId::from_bytes(a)
}

/// An index: the first byte holds flags (`IDX_*`), the rest is the index,
/// rewritten per the flags. `IndexView::parse` never panics; what it
/// accepts is consistent (see `check_index`), and `verify` accepts exactly
/// what a model of its rules accepts; a verified index is canonical (it is
/// exactly `index::encode` of what it lists). Independently, the bytes
/// after the flags, read as entries (see `encoded_index`), always encode to
/// an index that parses, verifies and finds every entry at its offset,
/// and in which any one flipped byte is caught.
pub fn pack_index(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut idx = rest.to_vec();
    fix_index(&mut idx, flags);
    check_index(&idx, rest);
    encoded_index(rest);
}

/// Rewrite `idx` in place per `flags` (`IDX_*`).
fn fix_index(idx: &mut Vec<u8>, flags: u8) {
    let min = OFF_IDS + IDX_TRAILER;
    if flags & IDX_FIX_HEADER != 0 {
        if idx.len() < min {
            idx.resize(min, 0);
        }
        let n = (idx.len() - min) / 40;
        idx.truncate(min + 40 * n);
        idx[..4].copy_from_slice(&index::MAGIC);
        idx[4] = index::VERSION;
        idx[5..8].fill(0);
        idx[8..16].copy_from_slice(&(n as u64).to_le_bytes());
    }
    // The other fixes need a length that holds whole entries.
    if idx.len() < min || !(idx.len() - min).is_multiple_of(40) {
        return;
    }
    let mut n = (idx.len() - min) / 40;
    if flags & IDX_SORT != 0 {
        let ids_end = OFF_IDS + 32 * n;
        let mut entries: Vec<(&[u8], &[u8])> = (0..n)
            .map(|i| {
                (
                    &idx[OFF_IDS + 32 * i..OFF_IDS + 32 * (i + 1)],
                    &idx[ids_end + 8 * i..ids_end + 8 * (i + 1)],
                )
            })
            .collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        let mut body = idx[..OFF_IDS].to_vec();
        for (id, _) in &entries {
            body.extend_from_slice(id);
        }
        for (_, off) in &entries {
            body.extend_from_slice(off);
        }
        n = entries.len();
        body[8..16].copy_from_slice(&(n as u64).to_le_bytes());
        body.extend_from_slice(&idx[idx.len() - IDX_TRAILER..]);
        *idx = body;
    }
    if flags & IDX_FIX_FANOUT != 0 {
        let mut counts = [0u32; 256];
        for i in 0..n {
            counts[usize::from(idx[OFF_IDS + 32 * i])] += 1;
        }
        let mut total = 0u32;
        for (b, c) in counts.iter().enumerate() {
            total += c;
            idx[OFF_FANOUT + 4 * b..OFF_FANOUT + 4 * b + 4].copy_from_slice(&total.to_le_bytes());
        }
    }
    if flags & IDX_FIX_TRAILER != 0 {
        let body = idx.len() - IDX_TRAILER;
        let hash = blake3::hash(&idx[..body]);
        idx[body..].copy_from_slice(hash.as_bytes());
    }
}

/// `lower_bound(first, prefix)` stays inside bucket `first`, and in a
/// verified index splits it into the ids below `prefix` and the rest.
fn check_lower_bound(v: &IndexView<'_>, first: u8, prefix: &[u8], verified: bool) {
    let (lo, bucket_end) = v.bucket(first);
    let (at, end) = v.lower_bound(first, prefix);
    assert_eq!(end, bucket_end, "lower_bound: end is not the bucket's");
    assert!(
        lo <= at && at <= end,
        "lower_bound {at} outside {lo}..{end}"
    );
    if verified {
        assert!(
            (lo..at).all(|i| v.id_bytes(i) < prefix),
            "lower_bound skips an id not below {prefix:02x?}"
        );
        assert!(
            (at..end).all(|i| v.id_bytes(i) >= prefix),
            "lower_bound leaves an id below {prefix:02x?}"
        );
    }
}

/// Whatever `IndexView::parse` accepts: its length, header and fanout are
/// consistent, buckets tile the entries, every accessor answers for every
/// position without panicking, `find` only ever returns a position holding
/// the id asked for, and `verify` succeeds exactly when the trailer
/// matches, every id sits in its fanout bucket and the ids strictly
/// ascend. A verified index finds every id it lists at its position (and
/// nothing else), splits buckets at prefixes, and re-encodes to itself.
/// `input` supplies more ids to look up.
fn check_index(idx: &[u8], input: &[u8]) {
    let v = match IndexView::parse(idx) {
        Ok(v) => v,
        Err(e) => {
            assert!(!e.is_empty());
            return;
        }
    };
    let n = v.len();
    assert_eq!(index_len(n as u64), Some(idx.len() as u64));
    assert_eq!(idx[..4], index::MAGIC);
    assert_eq!(idx[4], index::VERSION);
    assert_eq!(u64_at(idx, 8), n as u64);
    assert_eq!(v.is_empty(), n == 0);
    assert_eq!(v.pack_hash().as_bytes()[..], idx[16..48]);
    let mut end = 0;
    for b in 0..=255u8 {
        let (lo, hi) = v.bucket(b);
        assert_eq!(
            lo, end,
            "bucket {b:02x} does not start where {b:02x}-1 ends"
        );
        assert!(lo <= hi && hi <= n, "bucket {b:02x} is {lo}..{hi} of {n}");
        end = hi;
    }
    assert_eq!(end, n, "buckets end at {end}, not {n}");

    // The model of verify.
    let body = idx.len() - IDX_TRAILER;
    let trailer_ok = blake3::hash(&idx[..body]).as_bytes()[..] == idx[body..];
    let in_buckets = (0..=255u8).all(|b| {
        let (lo, hi) = v.bucket(b);
        (lo..hi).all(|i| v.id_bytes(i)[0] == b)
    });
    let ascending = (1..n).all(|i| v.id_bytes(i - 1) < v.id_bytes(i));
    let verdict = v.verify();
    assert_eq!(
        verdict.is_ok(),
        trailer_ok && in_buckets && ascending,
        "verify says {verdict:?}; trailer {trailer_ok}, buckets {in_buckets}, order {ascending}"
    );
    let verified = verdict.is_ok();

    let ids_end = OFF_IDS + 32 * n;
    for i in 0..n {
        let id = v.id(i);
        assert_eq!(
            v.id_bytes(i),
            &idx[OFF_IDS + 32 * i..OFF_IDS + 32 * (i + 1)]
        );
        assert_eq!(id.as_bytes()[..], *v.id_bytes(i));
        assert_eq!(v.offset(i), u64_at(idx, ids_end + 8 * i));
        match v.find(&id) {
            Some(j) => {
                assert_eq!(v.id(j), id, "find({id}) returned position {j}");
                if verified {
                    assert_eq!(j, i, "find({id}) in a verified index");
                }
            }
            None => assert!(!verified, "a verified index misses its own id {i}"),
        }
        let first = id.as_bytes()[0];
        for k in [0, 1, 2, 7, 32] {
            check_lower_bound(&v, first, &id.as_bytes()[..k], verified);
        }
    }

    // Ids from the input, the neighbours of the listed ids, the extremes.
    let mut probes: Vec<ObjectId> = input.chunks(32).take(64).map(id_from).collect();
    for i in 0..n.min(256) {
        let mut a = *v.id(i).as_bytes();
        a[31] = a[31].wrapping_add(1);
        probes.push(ObjectId::from_bytes(a));
        a[0] = a[0].wrapping_sub(1);
        probes.push(ObjectId::from_bytes(a));
    }
    probes.push(ObjectId::from_bytes([0; 32]));
    probes.push(ObjectId::from_bytes([0xff; 32]));
    let listed: HashSet<ObjectId> = (0..n).map(|i| v.id(i)).collect();
    for p in &probes {
        let found = v.find(p);
        if let Some(j) = found {
            assert!(j < n);
            assert_eq!(v.id(j), *p, "find({p}) returned position {j}");
        }
        if verified {
            assert_eq!(found.is_some(), listed.contains(p), "find({p})");
        }
        let b = p.as_bytes();
        for k in [1, 3, 32] {
            check_lower_bound(&v, b[0], &b[..k], verified);
        }
        // A prefix outside its own bucket: bounds only.
        check_lower_bound(&v, b[1], &b[..2], verified);
    }

    if verified {
        let mut entries: Vec<(ObjectId, u64)> = (0..n).map(|i| (v.id(i), v.offset(i))).collect();
        let again = index::encode(&v.pack_hash(), &mut entries)
            .unwrap_or_else(|e| panic!("a verified index does not re-encode: {e}"));
        assert!(
            again == idx,
            "a verified index differs from its re-encoding"
        );
    }
}

/// Entries derived from the input, at most 128: each 4 bytes give an id
/// (two bytes, then the third repeated, so ids share buckets and prefixes
/// and repeat) and an offset.
fn entries_from(input: &[u8]) -> Vec<(ObjectId, u64)> {
    input
        .chunks_exact(4)
        .take(128)
        .map(|c| {
            let mut a = [c[2]; 32];
            a[0] = c[0];
            a[1] = c[1];
            let off = u64::from(c[3]).wrapping_mul(0x0101_0101_0101_0101) >> (c[2] % 64);
            (ObjectId::from_bytes(a), off)
        })
        .collect()
}

/// `index::encode` of entries derived from `input` refuses exactly the
/// lists with a repeated id; without repeats, its output parses, verifies,
/// names the pack, lists every entry at its offset and nothing else, and
/// any one flipped byte (position and mask from the input) is caught by
/// `parse` or `verify`.
fn encoded_index(input: &[u8]) {
    let mut entries = entries_from(input);
    let pack_hash = hash_of(input);
    let mut seen = HashSet::new();
    if !entries.iter().all(|e| seen.insert(e.0)) {
        let refused = index::encode(&pack_hash, &mut entries.clone());
        assert!(refused.is_err(), "encode accepts a repeated id");
        let mut first = HashSet::new();
        entries.retain(|e| first.insert(e.0));
    }
    let want = entries.clone();
    let bytes = index::encode(&pack_hash, &mut entries)
        .unwrap_or_else(|e| panic!("encode refuses entries without repeats: {e}"));
    assert_eq!(index_len(want.len() as u64), Some(bytes.len() as u64));
    let v = IndexView::parse(&bytes).unwrap_or_else(|e| panic!("encoded index: {e}"));
    v.verify()
        .unwrap_or_else(|e| panic!("encoded index does not verify: {e}"));
    assert_eq!(v.len(), want.len());
    assert_eq!(v.pack_hash(), pack_hash);
    for (id, off) in &want {
        let i = v
            .find(id)
            .unwrap_or_else(|| panic!("encoded index misses {id}"));
        assert_eq!(v.offset(i), *off, "encoded index puts {id} elsewhere");
    }
    check_index(&bytes, input);

    let at = usize::from(u16::from_le_bytes([
        input.first().copied().unwrap_or(0),
        input.get(1).copied().unwrap_or(0),
    ])) % bytes.len();
    let mask = input.get(2).copied().filter(|&m| m != 0).unwrap_or(1);
    let mut bad = bytes.clone();
    bad[at] ^= mask;
    let caught = IndexView::parse(&bad).and_then(|v| v.verify()).is_err();
    assert!(
        caught,
        "flipping byte {at} (^{mask:02x}) of a {}-byte index goes unnoticed",
        bytes.len()
    );
    check_index(&bad, input);
}

/// `pack_scan` flag: the rest of the input is not a pack but objects to
/// build one from (see `built_pack`).
pub const PACK_BUILD: u8 = 1;
/// `pack_scan` flag: magic, version and reserved bytes rewritten.
pub const PACK_FIX_HEADER: u8 = 2;
/// `pack_scan` flag: every entry's header made valid (magic, version,
/// kind, codec, reserved, payload length = stored length, the last stored
/// length cut to what is left) and its CRC recomputed, from offset 16 on.
pub const PACK_FIX_ENTRIES: u8 = 4;
/// `pack_scan` flag: with `PACK_FIX_ENTRIES`, each entry's id set to the
/// hash of its payload.
pub const PACK_FIX_IDS: u8 = 8;
/// `pack_scan` flag: the count set to the number of entries that frame.
pub const PACK_FIX_COUNT: u8 = 16;
/// `pack_scan` flag: trailer recomputed.
pub const PACK_FIX_TRAILER: u8 = 32;

/// A pack: the first byte holds flags (`PACK_*`). Without `PACK_BUILD`,
/// the rest is a pack, rewritten per the flags, and goes through
/// `check_pack`. With it, the rest describes objects (see `built_pack`).
/// Nothing panics or allocates in proportion to a declared count.
pub fn pack_scan(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    if flags & PACK_BUILD != 0 {
        built_pack(rest);
        return;
    }
    let mut p = rest.to_vec();
    fix_pack(&mut p, flags);
    check_pack(&p, rest);
}

/// Rewrite `p` in place per `flags` (`PACK_*`).
fn fix_pack(p: &mut [u8], flags: u8) {
    if p.len() < HEADER + TRAILER {
        return;
    }
    if flags & PACK_FIX_HEADER != 0 {
        p[..4].copy_from_slice(&pack::MAGIC);
        p[4] = pack::VERSION;
        p[5..8].fill(0);
    }
    let body = p.len() - TRAILER;
    if flags & PACK_FIX_ENTRIES != 0 {
        let mut at = HEADER;
        while body - at >= MIN_FILE_LEN {
            let e = &mut p[at..body];
            e[..4].copy_from_slice(b"SYOB");
            e[4] = 1;
            if Kind::from_code(e[5]).is_none() {
                e[5] = e[5] % 3 + 1;
            }
            e[6] = 0;
            e[7] = 0;
            let room = (e.len() - MIN_FILE_LEN) as u64;
            let stored = u64_at(e, 48).min(room);
            e[48..56].copy_from_slice(&stored.to_le_bytes());
            e[8..16].copy_from_slice(&stored.to_le_bytes());
            let end = HEADER_LEN + stored as usize;
            if flags & PACK_FIX_IDS != 0 {
                let kind = Kind::from_code(e[5]).unwrap_or(Kind::Blob);
                let id = ObjectId::compute(kind, &e[HEADER_LEN..end]);
                e[16..48].copy_from_slice(id.as_bytes());
            }
            let crc = crc32(&e[..end]);
            e[end..end + TRAILER_LEN].copy_from_slice(&crc.to_le_bytes());
            at += end + TRAILER_LEN;
        }
    }
    if flags & PACK_FIX_COUNT != 0 {
        let mut n = 0u64;
        let mut at = HEADER as u64;
        while let Ok((e, _)) = pack::entry_at(p, at, None, false) {
            n += 1;
            at += e.len;
        }
        p[8..16].copy_from_slice(&n.to_le_bytes());
    }
    if flags & PACK_FIX_TRAILER != 0 {
        let hash = blake3::hash(&p[..body]);
        p[body..].copy_from_slice(hash.as_bytes());
    }
}

/// The CRC32 a loose object file ends with, taken from `encode_file`
/// (the fuzz crate has no crc32 of its own): for a file whose first 56
/// bytes are a raw header, `encode_file` of the same header fields and
/// payload reproduces those bytes, so its last four bytes are the CRC.
fn crc32(file_without_crc: &[u8]) -> u32 {
    let kind = Kind::from_code(file_without_crc[5]).unwrap_or(Kind::Blob);
    let id = id_from(&file_without_crc[16..48]);
    let f = encode_file(kind, id, &file_without_crc[HEADER_LEN..]);
    debug_assert_eq!(&f[..f.len() - TRAILER_LEN], file_without_crc);
    let mut a = [0u8; 4];
    a.copy_from_slice(&f[f.len() - TRAILER_LEN..]);
    u32::from_le_bytes(a)
}

/// Whatever bytes: `scan` without BLAKE3 accepts whatever `scan` with it
/// accepts (same hash); an accepted pack's header parses, its entries tile
/// it from offset 16 to the trailer, number what the header declares, are
/// each exactly what `entry_at` reads there, and the returned hash is the
/// trailer and the BLAKE3 of the rest; BLAKE3 verification fails exactly
/// when some entry's id is not its payload's hash; an error from the
/// callback stops the scan and is its result. Then `probe_entries`.
fn check_pack(p: &[u8], input: &[u8]) {
    let declared = pack::parse_header(p);
    let mut seen = Vec::new();
    let fast = pack::scan(p, false, |e| {
        seen.push(e);
        Ok(())
    });
    let mut seen_full = Vec::new();
    let full = pack::scan(p, true, |e| {
        seen_full.push(e);
        Ok(())
    });
    if full.is_ok() {
        assert_eq!(fast, full, "verify_hash changes the hash scan returns");
    }
    if let Ok(hash) = &fast {
        let n = declared
            .as_ref()
            .unwrap_or_else(|e| panic!("scan accepts a pack whose header is refused: {e}"));
        assert_eq!(seen.len() as u64, *n, "scan yields another count");
        let body = p.len() - TRAILER;
        assert_eq!(
            *hash,
            hash_of(&p[..body]),
            "scan's hash is not the content's"
        );
        assert_eq!(pack::trailer(p), Some(*hash));
        let mut at = HEADER as u64;
        let mut all_hash = true;
        for e in &seen {
            assert_eq!(e.offset, at, "entries do not follow each other");
            let (again, range) = pack::entry_at(p, e.offset, Some(&e.id), false)
                .unwrap_or_else(|r| panic!("entry_at refuses what scan read: {r}"));
            assert_eq!(again, *e);
            let start = at as usize;
            assert_eq!(
                range,
                start + HEADER_LEN..start + e.len as usize - TRAILER_LEN
            );
            assert_eq!(e.id.as_bytes()[..], p[start + 16..start + 48]);
            all_hash &= ObjectId::compute(e.kind, &p[range]) == e.id;
            at += e.len;
        }
        assert_eq!(at, body as u64, "entries do not end at the trailer");
        assert_eq!(full.is_ok(), all_hash, "scan with BLAKE3 says {full:?}");
        if full.is_ok() {
            assert_eq!(seen_full, seen);
        }
        if !seen.is_empty() {
            let k = input.len() % seen.len();
            let mut calls = 0;
            let stopped = pack::scan(p, false, |e| {
                calls += 1;
                if e == seen[k] {
                    Err("stop".to_owned())
                } else {
                    Ok(())
                }
            });
            assert_eq!(stopped, Err("stop".to_owned()));
            assert_eq!(calls, k + 1);
        }
    } else {
        assert!(
            full.is_err(),
            "scan with BLAKE3 accepts what scan without refuses"
        );
    }
    probe_entries(p, input);
}

/// `entry_at` at offsets in and around the pack (every "SYOB" in it, the
/// edges, offsets past its end and near 2^64, two from the input): never
/// a panic; what it reads lies inside the entries, is a whole loose object
/// file recording that id and kind, reads the same when the id is
/// expected, fails when another id is, and verifies BLAKE3 exactly when
/// the id is the payload's hash.
fn probe_entries(p: &[u8], input: &[u8]) {
    let len = p.len() as u64;
    let body = len.saturating_sub(TRAILER as u64);
    let min = MIN_FILE_LEN as u64;
    let mut offsets = vec![
        0,
        1,
        HEADER as u64 - 1,
        HEADER as u64,
        HEADER as u64 + 1,
        body.saturating_sub(min),
        body.saturating_sub(min - 1),
        body,
        body + 1,
        len,
        len + 1,
        u64::from(u32::MAX) + 1,
        u64::MAX - min,
        u64::MAX,
    ];
    offsets.extend(
        p.windows(4)
            .enumerate()
            .filter(|(_, w)| *w == b"SYOB")
            .map(|(i, _)| i as u64)
            .take(64),
    );
    if input.len() >= 8 {
        offsets.push(u64_at(input, 0));
        offsets.push(u64_at(input, input.len() - 8));
    }
    for off in offsets {
        let read = pack::entry_at(p, off, None, false);
        let full = pack::entry_at(p, off, None, true);
        if full.is_ok() {
            assert_eq!(full, read, "verify_hash changes what entry_at reads");
        }
        let Ok((e, range)) = read.clone() else {
            assert!(full.is_err());
            continue;
        };
        assert_eq!(e.offset, off);
        assert!(
            off >= HEADER as u64 && e.len >= min && e.len <= body - off,
            "entry at {off} ({} bytes) outside the entries",
            e.len
        );
        let s = off as usize;
        let file = &p[s..s + e.len as usize];
        assert_eq!(range, s + HEADER_LEN..s + e.len as usize - TRAILER_LEN);
        assert_eq!(e.id.as_bytes()[..], file[16..48]);
        assert_eq!(e.kind.code(), file[5]);
        let (h, r) = parse_file(file, Some(&e.id))
            .unwrap_or_else(|r| panic!("entry at {off} is not a loose object file: {r}"));
        assert_eq!((h.kind, h.id), (e.kind, e.id));
        assert_eq!(r.start + s..r.end + s, range);
        assert_eq!(
            full.is_ok(),
            ObjectId::compute(e.kind, &p[range]) == e.id,
            "entry_at with BLAKE3 at {off}"
        );
        assert_eq!(pack::entry_at(p, off, Some(&e.id), false), read);
        let mut other = *e.id.as_bytes();
        other[31] ^= 1;
        let other = ObjectId::from_bytes(other);
        assert!(pack::entry_at(p, off, Some(&other), false).is_err());
    }
}

/// One object to pack: kind, the id its header records, payload, and
/// whether that id is the payload's hash.
type Object = (Kind, ObjectId, Vec<u8>, bool);

/// Objects from the input: each is a control byte (kind: its value mod 3;
/// bit 7: the header records a wrong id), a length byte and that many
/// payload bytes (fewer at the end of the input). Equal control bytes and
/// payloads give repeated ids.
fn objects_from(input: &[u8]) -> Vec<Object> {
    let mut out = Vec::new();
    let mut rest = input;
    while let Some((&c, r)) = rest.split_first() {
        let (n, r) = match r.split_first() {
            Some((&n, r)) => (usize::from(n).min(r.len()), r),
            None => (0, r),
        };
        let (payload, r) = r.split_at(n);
        rest = r;
        let kind = [Kind::Blob, Kind::Tree, Kind::Commit][usize::from(c % 3)];
        let honest = c & 0x80 == 0;
        let id = if honest {
            ObjectId::compute(kind, payload)
        } else {
            hash_of(payload)
        };
        out.push((kind, id, payload.to_vec(), honest));
    }
    out
}

/// A pack built from input-derived objects (three bytes of flip position
/// and mask, then objects as `objects_from` reads them): `scan` returns
/// its trailer hash and yields every entry at its offset; with BLAKE3 it
/// fails exactly when some header records a wrong id; a callback refusing
/// repeated ids fails exactly when one repeats; its index (without
/// repeats) finds every entry, which `entry_at` then reads back; on disk,
/// `verify_pack` and `Pack::open` agree (see `on_disk`). Flipping any one
/// byte makes `scan` fail, with and without BLAKE3: every byte is covered
/// by an entry's CRC, the count, the framing or the trailer.
fn built_pack(input: &[u8]) {
    let (flip, objects_in) = input.split_at(input.len().min(3));
    let objects = objects_from(objects_in);
    let mut p = Vec::new();
    p.extend_from_slice(&pack::MAGIC);
    p.push(pack::VERSION);
    p.extend_from_slice(&[0; 3]);
    p.extend_from_slice(&(objects.len() as u64).to_le_bytes());
    let mut want = Vec::new();
    for (kind, id, payload, _) in &objects {
        let file = encode_file(*kind, *id, payload);
        want.push(Entry {
            id: *id,
            kind: *kind,
            offset: p.len() as u64,
            len: file.len() as u64,
        });
        p.extend_from_slice(&file);
    }
    let hash = hash_of(&p);
    p.extend_from_slice(hash.as_bytes());
    let honest = objects.iter().all(|o| o.3);
    let unique: HashSet<ObjectId> = objects.iter().map(|o| o.1).collect();
    let repeats = unique.len() != objects.len();

    let mut got = Vec::new();
    let fast = pack::scan(&p, false, |e| {
        got.push(e);
        Ok(())
    });
    assert_eq!(fast, Ok(hash), "scan of a built pack");
    assert_eq!(got, want, "scan yields other entries");
    let full = pack::scan(&p, true, |_| Ok(()));
    if honest {
        assert_eq!(full, Ok(hash), "scan with BLAKE3 of a built pack");
    } else {
        assert!(full.is_err(), "scan with BLAKE3 accepts a wrong id");
    }
    let mut ids = HashSet::new();
    let once = pack::scan(&p, false, |e| {
        if ids.insert(e.id) {
            Ok(())
        } else {
            Err(format!("{} repeats", e.id))
        }
    });
    assert_eq!(once.is_err(), repeats, "refusing repeats: {once:?}");
    check_pack(&p, input);

    let mut entries: Vec<(ObjectId, u64)> = want.iter().map(|e| (e.id, e.offset)).collect();
    match index::encode(&hash, &mut entries) {
        Err(_) => assert!(repeats, "encode refuses a pack without repeats"),
        Ok(idx) => {
            assert!(!repeats, "encode accepts a repeated id");
            let v = IndexView::parse(&idx).unwrap_or_else(|e| panic!("built index: {e}"));
            v.verify()
                .unwrap_or_else(|e| panic!("built index does not verify: {e}"));
            assert_eq!(v.pack_hash(), hash);
            assert_eq!(Ok(v.len() as u64), pack::parse_header(&p));
            for (e, (_, _, payload, ok)) in want.iter().zip(&objects) {
                let i = v
                    .find(&e.id)
                    .unwrap_or_else(|| panic!("built index misses {}", e.id));
                assert_eq!(v.offset(i), e.offset);
                let read = pack::entry_at(&p, v.offset(i), Some(&e.id), *ok);
                let (again, range) =
                    read.unwrap_or_else(|r| panic!("entry_at of an indexed entry: {r}"));
                assert_eq!(again, *e);
                assert_eq!(&p[range], &payload[..]);
            }
            check_index(&idx, input);
            on_disk(&p, &idx, hash, &objects, flip);
        }
    }

    let at = usize::from(u16::from_le_bytes([
        flip.first().copied().unwrap_or(0),
        flip.get(1).copied().unwrap_or(0),
    ])) % p.len();
    let mask = flip.get(2).copied().filter(|&m| m != 0).unwrap_or(1);
    let mut bad = p.clone();
    bad[at] ^= mask;
    for verify_hash in [true, false] {
        let r = pack::scan(&bad, verify_hash, |_| Ok(()));
        assert!(
            r.is_err(),
            "flipping byte {at} (^{mask:02x}) of a {}-byte pack goes unnoticed \
             (verify_hash {verify_hash})",
            p.len()
        );
    }
    check_pack(&bad, input);
}

thread_local! {
    /// One scratch directory per thread; `on_disk` removes what it wrote.
    static DIR: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

fn with_dir<R>(f: impl FnOnce(&Path) -> R) -> R {
    DIR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let dir = slot.get_or_insert_with(|| super::scratch::tempdir("pack"));
        f(dir.path())
    })
}

/// The built pack and its index as files: `verify_pack` finds them clean
/// exactly when every id is its payload's hash, counts every object by
/// kind and hands `check` each payload; `Pack::open` finds and reads every
/// entry. With the flipped byte, `verify_pack` reports a problem.
fn on_disk(p: &[u8], idx: &[u8], hash: ObjectId, objects: &[Object], flip: &[u8]) {
    let honest = objects.iter().all(|o| o.3);
    let payloads: HashMap<ObjectId, &[u8]> =
        objects.iter().map(|o| (o.1, o.2.as_slice())).collect();
    with_dir(|dir| {
        let pack_path = dir.join(pack::file_name(&hash, "pack"));
        let idx_path = dir.join(pack::file_name(&hash, "idx"));
        std::fs::write(&pack_path, p).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&idx_path, idx).unwrap_or_else(|e| panic!("{e}"));
        let mut checked = 0u64;
        let mut check = |e: &Entry, payload: &[u8]| {
            checked += 1;
            assert_eq!(payloads.get(&e.id).copied(), Some(payload));
            Ok(())
        };
        let report = verify_pack(&pack_path, &mut check)
            .unwrap_or_else(|e| panic!("verify_pack of a built pack: {e}"));
        assert_eq!(report.is_clean(), honest, "{:?}", report.problems);
        assert_eq!(report.bytes, p.len() as u64);
        assert_eq!(report.idx_bytes, idx.len() as u64);
        if honest {
            assert_eq!(checked, objects.len() as u64);
            assert_eq!(report.objects, objects.len() as u64);
            let per_kind: u64 = report.kinds.iter().map(|k| k.0).sum();
            assert_eq!(per_kind, objects.len() as u64);
            let bytes: u64 = report.kinds.iter().map(|k| k.1).sum();
            assert_eq!(bytes, (p.len() - HEADER - TRAILER) as u64);
        }
        {
            let opened =
                Pack::open(dir, hash).unwrap_or_else(|e| panic!("Pack::open of a built pack: {e}"));
            assert_eq!(opened.len(), objects.len());
            assert_eq!(opened.bytes(), p);
            for (kind, id, payload, ok) in objects {
                let off = opened
                    .find(id)
                    .unwrap_or_else(|| panic!("Pack::find misses {id}"));
                let (e, range) = opened
                    .entry(id, off, *ok)
                    .unwrap_or_else(|e| panic!("Pack::entry: {e}"));
                assert_eq!(e.kind, *kind);
                assert_eq!(&opened.bytes()[range], &payload[..]);
            }
            // The pack is unmapped before its file is rewritten.
        }
        if honest {
            let at = usize::from(u16::from_le_bytes([
                flip.first().copied().unwrap_or(0),
                flip.get(1).copied().unwrap_or(0),
            ])) % p.len();
            let mut bad = p.to_vec();
            bad[at] ^= flip.get(2).copied().filter(|&m| m != 0).unwrap_or(1);
            std::fs::write(&pack_path, &bad).unwrap_or_else(|e| panic!("{e}"));
            let report = verify_pack(&pack_path, &mut |_, _| Ok(()))
                .unwrap_or_else(|e| panic!("verify_pack of a damaged pack: {e}"));
            assert!(!report.is_clean(), "verify_pack misses the flip at {at}");
        }
        std::fs::remove_file(&pack_path).unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_file(&idx_path).unwrap_or_else(|e| panic!("{e}"));
    });
}
