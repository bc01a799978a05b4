//! The replication wire format: transfer files (docs/FORMAT.md §21).
//!
//! `transfer`: any bytes through `parse_transfer` never panic and allocate
//! only what the input pays for; an accepted transfer's sections lie
//! inside the input and its pack goes through the pack scanner without a
//! panic, and the receiver's streaming scan (fed in pieces of 1 to 64
//! bytes) accepts exactly what the whole-pack scan accepts, with the same
//! entries. With the first byte's low bit set, the rest of the input is
//! wrapped as a well-formed version 1 transfer (a trailer computed over
//! it; version 2, which a sender writes, is read too) so the fuzzer
//! reaches the section framing behind the hash. An accepted
//! transfer's index (docs/FORMAT.md §22) reads back equal, and the raw
//! input (with its trailer recomputed when the low bit is set) goes
//! through the index parser too.

use sydra_engine::objects::pack;
use sydra_engine::remote::tindex::TransferIndex;
use sydra_engine::remote::{TRANSFER_MAGIC, parse_transfer};

fn wrap(rest: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(rest.len() + 40);
    b.extend_from_slice(&TRANSFER_MAGIC);
    b.extend_from_slice(&[1, 0, 0, 0]);
    b.extend_from_slice(rest);
    let h = blake3::hash(&b);
    b.extend_from_slice(h.as_bytes());
    b
}

/// The `transfer` fuzz target's check.
pub fn transfer(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let bytes = if flags & 1 == 1 {
        wrap(rest)
    } else {
        rest.to_vec()
    };
    index(flags, rest);
    let Ok(v) = parse_transfer(&bytes) else {
        // A wrapped input fails only on its framing, never its trailer.
        if flags & 1 == 1 {
            let e = parse_transfer(&bytes).unwrap_err();
            assert!(
                !e.contains("trailer"),
                "wrapped input refused for its trailer: {e}"
            );
        }
        return;
    };
    let total: usize = v.pack.len()
        + v.ranges.iter().map(|(_, r)| r.len() + 40).sum::<usize>()
        + 32 * v.shallow.len();
    assert!(
        total <= bytes.len(),
        "sections claim more than the input holds"
    );
    if !v.pack.is_empty() {
        let _ = pack::scan(v.pack, flags & 2 == 2, |_| Ok(()));
        // The receiver's streaming scan, in pieces of 1 to 64 bytes, agrees
        // with the whole-pack scan.
        let mut whole = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let scanned = pack::scan(v.pack, true, |e| {
            if !seen.insert(e.id) {
                return Err("an object appears twice".into());
            }
            whole.push(e);
            Ok(())
        });
        let streamed = pack::scan_streamed(v.pack, usize::from(flags >> 2) + 1);
        match (&scanned, &streamed) {
            (Ok(_), Ok(got)) => assert_eq!(got, &whole, "streamed entries differ"),
            (Err(_), Err(_)) => {}
            _ => panic!("whole scan {scanned:?}, streamed scan {streamed:?}"),
        }
    }
    if let Ok(ix) = TransferIndex::build(&bytes) {
        let len = bytes.len() as u64;
        let back = TransferIndex::parse(&ix.encode(), &ix.transfer, len);
        assert_eq!(back.as_ref(), Ok(&ix), "an index does not read back");
    }
    // Any flipped byte of an accepted transfer is refused: by the trailer
    // in version 1; in version 2 outside the pack's entries and the
    // ranges' bytes (those are checked against their own hashes, the
    // pack's by the scan below, a range's by its chunk on receipt).
    if !bytes.is_empty() {
        let mut flipped = bytes.clone();
        let at = usize::from(flags) * 7919 % flipped.len();
        flipped[at] ^= 0x20;
        let base = bytes.as_ptr() as usize;
        let inside = |s: &[u8], tail: usize| {
            let start = s.as_ptr() as usize - base;
            (start..start + s.len().saturating_sub(tail)).contains(&at)
        };
        let in_bodies =
            v.version == 2 && (inside(v.pack, 32) || v.ranges.iter().any(|(_, r)| inside(r, 0)));
        if !in_bodies {
            assert!(parse_transfer(&flipped).is_err(), "flip at {at} accepted");
        } else if inside(v.pack, 32) && pack::scan(v.pack, true, |_| Ok(())).is_ok() {
            let p0 = v.pack.as_ptr() as usize - base;
            let p = &flipped[p0..p0 + v.pack.len()];
            assert!(
                pack::scan(p, true, |_| Ok(())).is_err(),
                "pack flip at {at} accepted"
            );
        }
    }
}

/// Any bytes through the transfer index parser: no panic; what it accepts
/// encodes back to the same bytes.
fn index(flags: u8, rest: &[u8]) {
    let mut b = rest.to_vec();
    if flags & 1 == 1 && b.len() >= 32 + 64 {
        let body = b.len() - 32;
        let h = blake3::hash(&b[..body]);
        b[body..].copy_from_slice(h.as_bytes());
    }
    let Some(of) = b
        .get(8..40)
        .and_then(sydra_engine::objects::ObjectId::from_slice)
    else {
        return;
    };
    if let Ok(ix) = TransferIndex::parse(&b, &of, u64::MAX) {
        assert_eq!(ix.encode(), b, "an accepted index encodes differently");
    }
}
