//! The replication wire format: transfer files (docs/FORMAT.md §21).
//!
//! `transfer`: any bytes through `parse_transfer` never panic and allocate
//! only what the input pays for; an accepted transfer's sections lie
//! inside the input and its pack goes through the pack scanner without a
//! panic. With the first byte's low bit set, the rest of the input is
//! wrapped as a well-formed transfer (a trailer computed over it) so the
//! fuzzer reaches the section framing behind the hash.

use sydra_engine::objects::pack;
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
    }
    // Any flipped byte of an accepted transfer is refused.
    if !bytes.is_empty() {
        let mut flipped = bytes.clone();
        let at = usize::from(flags) * 7919 % flipped.len();
        flipped[at] ^= 0x20;
        assert!(parse_transfer(&flipped).is_err(), "flip at {at} accepted");
    }
}
