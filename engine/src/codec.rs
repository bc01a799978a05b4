//! Column codecs for compacted segments.
//!
//! - [`encode_timestamps`]: delta-of-delta. `varint(count)`, then the first
//!   timestamp, the first delta, and each later delta-of-delta as zigzag
//!   LEB128 varints. Regular intervals cost one byte per point.
//! - [`encode_f64`]: Gorilla-style XOR. `varint(count)`, then a bit stream
//!   (MSB first): the first value's 64 bits; for each later value, its XOR
//!   with the previous: `0` if zero; `10` + the meaningful bits if they fit
//!   in the previous window; `11` + 6 bits of leading zeros + 6 bits of
//!   (length − 1) + the meaningful bits otherwise. Padded with zero bits to
//!   a byte; the padding must be zero.
//!
//! Decoders are strict: they reject truncation, trailing bytes, overlong
//! varints and counts the input cannot hold, and never
//! allocate more than the input justifies.

use crate::varint::{put as put_varint, unzigzag, zigzag};

/// Why a column does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {codec} column at byte {offset}: {reason}")]
pub struct CodecError {
    /// Which codec.
    pub codec: &'static str,
    /// Where.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    codec: &'static str,
}

impl Reader<'_> {
    fn err(&self, reason: &'static str) -> CodecError {
        CodecError {
            codec: self.codec,
            offset: self.pos,
            reason,
        }
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut pos = self.pos;
        let r = crate::varint::read(self.b, &mut pos);
        self.pos = pos;
        r.map_err(|reason| self.err(reason))
    }
}

/// Encode timestamps (delta-of-delta).
pub fn encode_timestamps(ts: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ts.len() + 16);
    put_varint(&mut out, ts.len() as u64);
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for (i, &t) in ts.iter().enumerate() {
        match i {
            0 => put_varint(&mut out, zigzag(t)),
            1 => {
                prev_delta = t.wrapping_sub(prev);
                put_varint(&mut out, zigzag(prev_delta));
            }
            _ => {
                let d = t.wrapping_sub(prev);
                put_varint(&mut out, zigzag(d.wrapping_sub(prev_delta)));
                prev_delta = d;
            }
        }
        prev = t;
    }
    out
}

/// Decode timestamps.
pub fn decode_timestamps(b: &[u8]) -> Result<Vec<i64>, CodecError> {
    let mut r = Reader {
        b,
        pos: 0,
        codec: "delta-of-delta",
    };
    let n = r.varint()?;
    if n > (b.len() - r.pos) as u64 {
        return Err(r.err("count exceeds the bytes present"));
    }
    let mut out = Vec::with_capacity(n as usize);
    let (mut prev, mut delta) = (0i64, 0i64);
    for i in 0..n {
        let v = unzigzag(r.varint()?);
        let t = match i {
            0 => v,
            // Wrapping, like the encoder: every varint sequence decodes to
            // exactly one series, which re-encodes to the same bytes.
            1 => {
                delta = v;
                prev.wrapping_add(delta)
            }
            _ => {
                delta = delta.wrapping_add(v);
                prev.wrapping_add(delta)
            }
        };
        out.push(t);
        prev = t;
    }
    if r.pos != b.len() {
        return Err(r.err("trailing bytes"));
    }
    Ok(out)
}

struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl BitWriter {
    fn put(&mut self, value: u64, bits: u32) {
        for i in (0..bits).rev() {
            self.acc = (self.acc << 1) | ((value >> i) & 1);
            self.nbits += 1;
            if self.nbits == 8 {
                self.out.push(self.acc as u8);
                self.acc = 0;
                self.nbits = 0;
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.nbits > 0 {
            self.out.push((self.acc << (8 - self.nbits)) as u8);
        }
        self.out
    }
}

struct BitReader<'a> {
    b: &'a [u8],
    bit: usize,
}

impl BitReader<'_> {
    /// The next `bits` (at most 64) bits, most significant first; `None`
    /// (with the position at the end of the input) when fewer remain.
    fn get(&mut self, bits: u32) -> Option<u64> {
        debug_assert!(bits <= 64);
        let end = self.bit + bits as usize;
        if end > self.b.len() * 8 {
            self.bit = self.b.len() * 8;
            return None;
        }
        if bits == 0 {
            return Some(0);
        }
        // At most 7 + 64 bits from this byte on: one 16-byte window
        // (zero-padded near the end of the input).
        let at = self.bit / 8;
        let window = match self.b.get(at..at + 16) {
            Some(w) => <[u8; 16]>::try_from(w).unwrap_or_default(),
            None => {
                let mut w = [0u8; 16];
                let rest = &self.b[at..];
                w[..rest.len()].copy_from_slice(rest);
                w
            }
        };
        let w = u128::from_be_bytes(window) << (self.bit % 8);
        self.bit = end;
        Some((w >> (128 - bits)) as u64)
    }
}

/// Encode f64 values (Gorilla XOR).
pub fn encode_f64(values: &[f64]) -> Vec<u8> {
    let mut head = Vec::new();
    put_varint(&mut head, values.len() as u64);
    let mut w = BitWriter {
        out: head,
        acc: 0,
        nbits: 0,
    };
    let mut prev = 0u64;
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    for (i, v) in values.iter().enumerate() {
        let bits = v.to_bits();
        if i == 0 {
            w.put(bits, 64);
        } else {
            let x = bits ^ prev;
            if x == 0 {
                w.put(0, 1);
            } else {
                let (l, t) = (x.leading_zeros().min(63), x.trailing_zeros());
                if lead != u32::MAX && l >= lead && t >= trail {
                    w.put(0b10, 2);
                    w.put(x >> trail, 64 - lead - trail);
                } else {
                    let len = 64 - l - t;
                    w.put(0b11, 2);
                    w.put(u64::from(l), 6);
                    w.put(u64::from(len - 1), 6);
                    w.put(x >> t, len);
                    lead = l;
                    trail = t;
                }
            }
        }
        prev = bits;
    }
    w.finish()
}

/// Decode f64 values.
pub fn decode_f64(b: &[u8]) -> Result<Vec<f64>, CodecError> {
    let mut r = Reader {
        b,
        pos: 0,
        codec: "Gorilla XOR",
    };
    let n = r.varint()?;
    let body = &b[r.pos..];
    // Every value after the first costs at least one bit.
    if n > 0 && (body.len() as u64) < 8 + (n - 1) / 8 {
        return Err(r.err("count exceeds the bits present"));
    }
    let mut br = BitReader { b: body, bit: 0 };
    let mut out = Vec::with_capacity(n as usize);
    let mut prev = 0u64;
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    let err = |br: &BitReader<'_>, reason| CodecError {
        codec: "Gorilla XOR",
        offset: r.pos + br.bit / 8,
        reason,
    };
    for i in 0..n {
        let bits = if i == 0 {
            br.get(64)
                .ok_or_else(|| err(&br, "truncated first value"))?
        } else if br.get(1).ok_or_else(|| err(&br, "truncated"))? == 0 {
            prev
        } else if br.get(1).ok_or_else(|| err(&br, "truncated"))? == 0 {
            if lead == u32::MAX {
                return Err(err(&br, "window reuse before any window"));
            }
            let m = br
                .get(64 - lead - trail)
                .ok_or_else(|| err(&br, "truncated bits"))?;
            if m == 0 {
                return Err(err(&br, "a zero XOR must be written as a single 0 bit"));
            }
            prev ^ (m << trail)
        } else {
            let l = br.get(6).ok_or_else(|| err(&br, "truncated"))? as u32;
            let len = br.get(6).ok_or_else(|| err(&br, "truncated"))? as u32 + 1;
            if l + len > 64 {
                return Err(err(&br, "window exceeds 64 bits"));
            }
            let t = 64 - l - len;
            let m = br.get(len).ok_or_else(|| err(&br, "truncated bits"))?;
            if m >> (len - 1) != 1 || m & 1 != 1 {
                return Err(err(&br, "window is not tight (non-canonical)"));
            }
            if lead != u32::MAX && l >= lead && t >= trail {
                return Err(err(
                    &br,
                    "a new window where the previous one fits (non-canonical)",
                ));
            }
            lead = l;
            trail = t;
            prev ^ (m << t)
        };
        out.push(f64::from_bits(bits));
        prev = bits;
    }
    let used = br.bit.div_ceil(8);
    if used != body.len() {
        return Err(err(&br, "trailing bytes"));
    }
    if !br.bit.is_multiple_of(8) && br.get((8 - br.bit % 8) as u32) != Some(0) {
        return Err(err(&br, "non-zero padding"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_reads_match_reading_one_bit_at_a_time() {
        // The reference: bit i of the input, most significant first.
        let bytes: Vec<u8> = (0..40u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let bit = |i: usize| u64::from((bytes[i / 8] >> (7 - i % 8)) & 1);
        let mut seed = 7u64;
        for _ in 0..2000 {
            let mut br = BitReader { b: &bytes, bit: 0 };
            let mut at = 0usize;
            loop {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let n = ((seed >> 33) % 65) as u32;
                let got = br.get(n);
                if at + n as usize > bytes.len() * 8 {
                    assert_eq!(got, None);
                    assert_eq!(br.bit, bytes.len() * 8, "left at the end");
                    break;
                }
                let want = (at..at + n as usize).fold(0u64, |v, i| (v << 1) | bit(i));
                assert_eq!(got, Some(want), "{n} bits at bit {at}");
                at += n as usize;
                assert_eq!(br.bit, at);
            }
        }
    }

    #[test]
    fn timestamps_round_trip_and_are_small() {
        let ts: Vec<i64> = (0..1000)
            .map(|i| 1_700_000_000_000_000_000 + i * 10_000_000_000)
            .collect();
        let b = encode_timestamps(&ts);
        assert!(b.len() < 1000 + 32, "{}", b.len());
        assert_eq!(decode_timestamps(&b).unwrap(), ts);
        for t in [vec![], vec![i64::MIN], vec![i64::MAX, i64::MIN, 0, 5]] {
            assert_eq!(decode_timestamps(&encode_timestamps(&t)).unwrap(), t);
        }
        assert!(decode_timestamps(&[5, 1]).is_err());
        let mut t = b.clone();
        t.push(0);
        assert!(decode_timestamps(&t).is_err());
    }

    #[test]
    fn floats_round_trip_and_compress() {
        let v: Vec<f64> = (0..1000).map(|i| 20.0 + f64::from(i % 7) * 0.5).collect();
        let b = encode_f64(&v);
        assert!(b.len() < 8 * 1000 / 2, "{}", b.len());
        assert_eq!(decode_f64(&b).unwrap(), v);
        for v in [
            vec![],
            vec![f64::NAN],
            vec![0.0, -0.0, f64::INFINITY, 1e-300, 3.5, 3.5],
        ] {
            let d = decode_f64(&encode_f64(&v)).unwrap();
            assert_eq!(
                d.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
        assert!(decode_f64(&[200, 1]).is_err());
    }
}
