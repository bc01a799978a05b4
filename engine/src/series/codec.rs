//! Column codecs of the time-series layer (DESIGN.md §10): timestamps,
//! floats, integers and booleans, encoded at the bit level and chosen per
//! column by size.
//!
//! Every column starts with `varint(count)` then a one-byte mode; the mode
//! and the parameters after it (interval, decimal digits) are the encoder's
//! choice: it tries each mode and keeps the smallest, ties to the lower
//! mode, so encoding is deterministic. Decoders accept any in-range choice
//! and are otherwise strict: no truncation, no trailing bytes, zero
//! padding, no code wider than its value needs, a scale exponent that is
//! the largest common one, no arithmetic overflow, and never an allocation
//! the input cannot justify. Re-encoding decoded values gives the same
//! values (what the fuzz target checks); not always in fewer bytes, since
//! the encoder's nominal interval is the median delta, not the best one.
//!
//! ## Residual streams
//!
//! The shared tail of every numeric mode: a sequence of `u64` residuals
//! (zigzagged signed differences), written as `u8 k`, `u8 m`
//! (`k <= m <= 64`) and a bit stream, most significant bit first, padded
//! with zero bits to a byte. With `x = r - 1` for a residual `r > 0`:
//!
//! | code | residual |
//! |---|---|
//! | `0` | `r = 0` |
//! | `10` + k bits of `x` | `x < 2^k` |
//! | `110` + m bits of `x` | `2^k <= x < 2^m` |
//! | `111` + 64 bits of `r` | `x >= 2^m` |
//!
//! `k` and `m` are chosen to minimise the stream from a histogram of the
//! residuals' bit lengths (ties to the smaller `k`, then `m`). A code longer
//! than the residual needs is refused by the decoder.
//!
//! ## Timestamps (`encode_timestamps`)
//!
//! `varint(count)`; for `count > 0`: `u8 mode`, `u8 e` — every timestamp
//! is a multiple of `10^e` (`e <= 18`) and is stored divided by it, so
//! millisecond data stored as ns costs nothing for its six zero digits —
//! then `zigzag varint` of the first scaled value, and for `count > 1`:
//!
//! - mode 0, delta of delta: `zigzag varint` of the first delta, then the
//!   residuals `d[i] - d[i-1]` for the later deltas;
//! - mode 1, delta from a nominal interval: `zigzag varint N` (the encoder
//!   writes the median delta), then the residuals `d[i] - N` for every delta. Scrape
//!   timestamps jitter around a fixed interval; a delta of delta doubles
//!   that jitter's spread, a delta from the interval does not.
//!
//! Differences are taken with wrapping arithmetic, so every i64 sequence
//! round-trips.
//!
//! ## Floats (`encode_f64`)
//!
//! `varint(count)`, `u8 mode`:
//! - mode 0, XOR: the XOR bit stream of [`crate::codec::encode_f64`]
//!   (without its count): Gorilla's scheme, any bit pattern;
//! - mode 1, decimal: `u8 d` (`d <= 18`), then an integer column body
//!   (below, without its count) of `n[i]` where `v[i] == n[i] / 10^d`
//!   exactly, bit for bit, and `|n[i]| <= 2^53`. Sensor readings with two
//!   decimals (`39.02`) become small integers whose deltas are a few bits,
//!   where XOR spends most of the mantissa (the idea of ALP, without its
//!   exceptions: a column with one value that is not such a decimal is
//!   XOR-coded whole).
//!
//! ## Integers (`encode_i64`)
//!
//! `varint(count)`; for `count > 0`: `u8 mode`, `zigzag varint` first
//! value, and for `count > 1`: mode 0, delta: residuals `v[i] - v[i-1]`;
//! mode 1, delta of delta: `zigzag varint` first delta, residuals
//! `d[i] - d[i-1]` (steady counters).
//!
//! ## Booleans (`encode_bool`)
//!
//! `varint(count)`; for `count > 0`: `u8` first value (0 or 1), then the
//! run lengths (each `>= 1`, alternating values) as varints summing to
//! `count`.

use crate::codec::CodecError;
use crate::varint::{len as varint_len, put as put_varint, unzigzag, zigzag};

/// The most values one column holds. Segments and head chunks are far
/// smaller; the bound keeps a boolean column's run lengths (which expand)
/// from claiming memory its few bytes cannot justify.
pub const MAX_COLUMN_VALUES: u64 = 1 << 24;

/// Exact powers of ten as f64 (each is representable: 5^e < 2^53).
const POW10_F64: [f64; 19] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];

/// Powers of ten as i64 up to 10^18.
const POW10_I64: [i64; 19] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
];

/// The largest integer every f64 up to which is exact.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// A byte cursor, then a bit cursor over the same input.
struct Input<'a> {
    b: &'a [u8],
    /// Position in bits.
    bit: usize,
    codec: &'static str,
}

impl<'a> Input<'a> {
    fn new(b: &'a [u8], codec: &'static str) -> Input<'a> {
        Input { b, bit: 0, codec }
    }

    fn err(&self, reason: &'static str) -> CodecError {
        CodecError {
            codec: self.codec,
            offset: self.bit / 8,
            reason,
        }
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        debug_assert!(self.bit.is_multiple_of(8));
        let Some(&v) = self.b.get(self.bit / 8) else {
            return Err(self.err("truncated"));
        };
        self.bit += 8;
        Ok(v)
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        debug_assert!(self.bit.is_multiple_of(8));
        let mut pos = self.bit / 8;
        let r = crate::varint::read(self.b, &mut pos);
        self.bit = pos * 8;
        r.map_err(|reason| self.err(reason))
    }

    fn svarint(&mut self) -> Result<i64, CodecError> {
        self.varint().map(unzigzag)
    }

    /// A count of items, each needing at least `min_bits` of the remaining
    /// input: refused before anything is allocated for them.
    fn count(&mut self, min_bits: usize) -> Result<usize, CodecError> {
        let n = self.varint()?;
        if n > MAX_COLUMN_VALUES {
            return Err(self.err("more values than a column may hold"));
        }
        let left = (self.b.len() * 8).saturating_sub(self.bit);
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_bits) <= left + 64 * 8 => Ok(n),
            _ => Err(self.err("count larger than the input can hold")),
        }
    }

    fn bits(&mut self, n: u32) -> Result<u64, CodecError> {
        if n == 0 {
            return Ok(0);
        }
        if self.bit + n as usize > self.b.len() * 8 {
            return Err(self.err("truncated bit stream"));
        }
        let at = self.bit / 8;
        let used = (self.bit % 8) as u32;
        if used + n <= 64
            && let Some(w) = self.b.get(at..at + 8)
        {
            // Eight whole bytes from here hold all `n` bits: one read.
            let w = u64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            self.bit += n as usize;
            return Ok((w << used) >> (64 - n));
        }
        // Near the end, or 64 bits not starting on a byte: bit by byte.
        let mut v: u64 = 0;
        let mut need = n;
        while need > 0 {
            let byte = self.b[self.bit / 8];
            let used = (self.bit % 8) as u32;
            let avail = 8 - used;
            let take = avail.min(need);
            let chunk = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            v = (v << take) | chunk;
            self.bit += take as usize;
            need -= take;
        }
        Ok(v)
    }

    /// End of a bit stream: the rest of the byte must be zero padding.
    fn align(&mut self) -> Result<(), CodecError> {
        let rem = self.bit % 8;
        if rem != 0 {
            let pad = self.bits(8 - rem as u32)?;
            if pad != 0 {
                return Err(self.err("nonzero padding bits"));
            }
        }
        Ok(())
    }

    fn end(&self) -> Result<(), CodecError> {
        if self.bit / 8 != self.b.len() {
            return Err(self.err("trailing bytes"));
        }
        Ok(())
    }
}

/// MSB-first bit output, padded with zero bits at the end.
struct Bits<'a> {
    out: &'a mut Vec<u8>,
    /// The `n` (< 8) bits not yet written, in the low bits.
    acc: u128,
    n: u32,
}

impl<'a> Bits<'a> {
    fn new(out: &'a mut Vec<u8>) -> Bits<'a> {
        Bits { out, acc: 0, n: 0 }
    }

    /// Append the low `width` (<= 64) bits of `v`.
    fn put(&mut self, v: u64, width: u32) {
        if width == 0 {
            return;
        }
        let v = if width == 64 {
            v
        } else {
            v & ((1u64 << width) - 1)
        };
        self.acc = (self.acc << width) | u128::from(v);
        self.n += width;
        while self.n >= 8 {
            self.n -= 8;
            self.out.push((self.acc >> self.n) as u8);
        }
        self.acc &= (1u128 << self.n) - 1;
    }

    fn finish(self) {
        if self.n > 0 {
            self.out.push((self.acc << (8 - self.n)) as u8);
        }
    }
}

fn bit_len(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// The (k, m) that make the residual stream smallest, and its size in bits.
fn choose_widths(residuals: &[u64]) -> (u32, u32, u64) {
    // hist[L] = residuals r > 0 with bit_len(r - 1) == L.
    let mut hist = [0u64; 65];
    let mut zeros = 0u64;
    for &r in residuals {
        if r == 0 {
            zeros += 1;
        } else {
            hist[bit_len(r - 1) as usize] += 1;
        }
    }
    // prefix[L] = residuals with bit length < L.
    let mut prefix = [0u64; 66];
    for l in 0..65 {
        prefix[l + 1] = prefix[l] + hist[l];
    }
    let total = prefix[65];
    // Widths past the longest residual only cost more: search up to it.
    let longest = (0..65u32)
        .rev()
        .find(|&l| hist[l as usize] > 0)
        .unwrap_or(0);
    let mut best = (0u32, 0u32, u64::MAX);
    for k in 0..=longest {
        let in1 = prefix[k as usize + 1];
        for m in k..=longest {
            let in2 = prefix[m as usize + 1] - in1;
            let in3 = total - in1 - in2;
            let cost = zeros + in1 * (2 + u64::from(k)) + in2 * (3 + u64::from(m)) + in3 * (3 + 64);
            if cost < best.2 {
                best = (k, m, cost);
            }
        }
    }
    best
}

fn put_residuals(out: &mut Vec<u8>, residuals: &[u64]) {
    let (k, m, _) = choose_widths(residuals);
    out.push(k as u8);
    out.push(m as u8);
    let mut bits = Bits::new(out);
    for &r in residuals {
        if r == 0 {
            bits.put(0, 1);
            continue;
        }
        let x = r - 1;
        let l = bit_len(x);
        if l <= k {
            bits.put(0b10, 2);
            bits.put(x, k);
        } else if l <= m {
            bits.put(0b110, 3);
            bits.put(x, m);
        } else {
            bits.put(0b111, 3);
            bits.put(r, 64);
        }
    }
    bits.finish();
}

/// Read `n` residuals (k, m, bits) and hand each to `each`.
fn get_residuals(
    input: &mut Input<'_>,
    n: usize,
    mut each: impl FnMut(u64) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let k = u32::from(input.byte()?);
    let m = u32::from(input.byte()?);
    if k > m || m > 64 {
        return Err(input.err("residual widths out of range"));
    }
    for _ in 0..n {
        let at = input.bit / 8;
        #[cfg(test)]
        let at = if tests::SLOW.with(|s| s.get()) {
            usize::MAX - 8
        } else {
            at
        };
        if let Some(w) = input.b.get(at..at + 8) {
            // Eight whole bytes from here: at least 57 bits in one word,
            // enough for the code and a payload of up to 54 bits.
            let used = (input.bit % 8) as u32;
            let w = u64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) << used;
            let (code, width) = match w.leading_ones() {
                0 => (1, 0),
                1 => (2, k),
                2 => (3, m),
                _ => (0, 0),
            };
            if code > 0 && code + width <= 57 {
                input.bit += (code + width) as usize;
                let r = if code == 1 {
                    0
                } else {
                    // `width` bits after the code (none: zero).
                    let x = (w << code).checked_shr(64 - width).unwrap_or(0);
                    if code == 3 && bit_len(x) <= k {
                        return Err(input.err("residual coded wider than it needs"));
                    }
                    x + 1
                };
                each(r)?;
                continue;
            }
        }
        let r = if input.bits(1)? == 0 {
            0
        } else if input.bits(1)? == 0 {
            let x = input.bits(k)?;
            x.checked_add(1)
                .ok_or_else(|| input.err("residual out of range"))?
        } else if input.bits(1)? == 0 {
            let x = input.bits(m)?;
            if bit_len(x) <= k {
                return Err(input.err("residual coded wider than it needs"));
            }
            x.checked_add(1)
                .ok_or_else(|| input.err("residual out of range"))?
        } else {
            let r = input.bits(64)?;
            if r == 0 || bit_len(r - 1) <= m {
                return Err(input.err("residual coded wider than it needs"));
            }
            r
        };
        each(r)?;
    }
    input.align()
}

/// Bits a residual needs at least (the `0` code): bounds counts.
const MIN_RESIDUAL_BITS: usize = 1;

// ---------------------------------------------------------------- timestamps

/// Encode timestamps (any i64 sequence; time order is not required, only
/// cheaper).
pub fn encode_timestamps(ts: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ts.len() / 2 + 16);
    put_varint(&mut out, ts.len() as u64);
    if ts.is_empty() {
        return out;
    }
    let mut e = 18;
    while e > 0 && ts.iter().any(|&t| t % POW10_I64[e] != 0) {
        e -= 1;
    }
    let scaled: Vec<i64> = ts.iter().map(|&t| t / POW10_I64[e]).collect();
    out.extend_from_slice(&best_body(scaled.len(), |mode| {
        ts_body(&scaled, mode, e as u8)
    }));
    out
}

/// The smaller of a column's body in mode 0 and in mode 1 (which needs at
/// least three values); ties go to mode 0.
fn best_body(n: usize, body: impl Fn(u8) -> Vec<u8>) -> Vec<u8> {
    let a = body(0);
    if n < 3 {
        return a;
    }
    let b = body(1);
    if b.len() < a.len() { b } else { a }
}

fn deltas(s: &[i64]) -> Vec<i64> {
    s.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect()
}

fn median(v: &[i64]) -> i64 {
    let mut sorted = v.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

fn ts_body(scaled: &[i64], mode: u8, e: u8) -> Vec<u8> {
    let mut out = vec![mode, e];
    put_varint(&mut out, zigzag(scaled[0]));
    if scaled.len() < 2 {
        return out;
    }
    let d = deltas(scaled);
    match mode {
        0 => {
            put_varint(&mut out, zigzag(d[0]));
            let r: Vec<u64> = d
                .windows(2)
                .map(|w| zigzag(w[1].wrapping_sub(w[0])))
                .collect();
            put_residuals(&mut out, &r);
        }
        _ => {
            let nominal = median(&d);
            put_varint(&mut out, zigzag(nominal));
            let r: Vec<u64> = d.iter().map(|&x| zigzag(x.wrapping_sub(nominal))).collect();
            put_residuals(&mut out, &r);
        }
    }
    out
}

/// Decode a timestamp column.
pub fn decode_timestamps(b: &[u8]) -> Result<Vec<i64>, CodecError> {
    let mut input = Input::new(b, "timestamp");
    let n = input.count(MIN_RESIDUAL_BITS)?;
    let mut out = Vec::with_capacity(n);
    if n > 0 {
        let mode = input.byte()?;
        let e = usize::from(input.byte()?);
        if mode > 1 {
            return Err(input.err("unknown timestamp mode"));
        }
        if e > 18 {
            return Err(input.err("scale exponent above 18"));
        }
        let mut scaled = Vec::with_capacity(n);
        let mut prev = input.svarint()?;
        scaled.push(prev);
        if n > 1 {
            if mode == 0 {
                let mut delta = input.svarint()?;
                prev = prev.wrapping_add(delta);
                scaled.push(prev);
                get_residuals(&mut input, n - 2, |r| {
                    delta = delta.wrapping_add(unzigzag(r));
                    prev = prev.wrapping_add(delta);
                    scaled.push(prev);
                    Ok(())
                })?;
            } else {
                if n < 3 {
                    return Err(input.err("nominal-interval mode for fewer than 3 values"));
                }
                let nominal = input.svarint()?;
                get_residuals(&mut input, n - 1, |r| {
                    prev = prev.wrapping_add(nominal.wrapping_add(unzigzag(r)));
                    scaled.push(prev);
                    Ok(())
                })?;
            }
        }
        let p = POW10_I64[e];
        for s in scaled {
            let Some(t) = s.checked_mul(p) else {
                return Err(input.err("timestamp overflows i64 when scaled"));
            };
            out.push(t);
        }
        if e < 18 && out.iter().all(|&t| t % POW10_I64[e + 1] == 0) {
            return Err(input.err("scale exponent is not the largest common one"));
        }
    }
    input.end()?;
    Ok(out)
}

// ------------------------------------------------------------------ integers

/// Encode signed integers.
pub fn encode_i64(values: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / 2 + 16);
    put_varint(&mut out, values.len() as u64);
    if values.is_empty() {
        return out;
    }
    out.extend_from_slice(&int_body_best(values));
    out
}

fn int_body(values: &[i64], mode: u8) -> Vec<u8> {
    let mut out = vec![mode];
    put_varint(&mut out, zigzag(values[0]));
    if values.len() < 2 {
        return out;
    }
    let d = deltas(values);
    if mode == 0 {
        let r: Vec<u64> = d.iter().map(|&x| zigzag(x)).collect();
        put_residuals(&mut out, &r);
    } else {
        put_varint(&mut out, zigzag(d[0]));
        let r: Vec<u64> = d
            .windows(2)
            .map(|w| zigzag(w[1].wrapping_sub(w[0])))
            .collect();
        put_residuals(&mut out, &r);
    }
    out
}

fn get_int_body(input: &mut Input<'_>, n: usize) -> Result<Vec<i64>, CodecError> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    let mode = input.byte()?;
    if mode > 1 {
        return Err(input.err("unknown integer mode"));
    }
    let mut prev = input.svarint()?;
    out.push(prev);
    if n > 1 {
        if mode == 0 {
            get_residuals(input, n - 1, |r| {
                prev = prev.wrapping_add(unzigzag(r));
                out.push(prev);
                Ok(())
            })?;
        } else {
            if n < 3 {
                return Err(input.err("delta-of-delta mode for fewer than 3 values"));
            }
            let mut delta = input.svarint()?;
            prev = prev.wrapping_add(delta);
            out.push(prev);
            get_residuals(input, n - 2, |r| {
                delta = delta.wrapping_add(unzigzag(r));
                prev = prev.wrapping_add(delta);
                out.push(prev);
                Ok(())
            })?;
        }
    }
    Ok(out)
}

/// Decode an integer column.
pub fn decode_i64(b: &[u8]) -> Result<Vec<i64>, CodecError> {
    let mut input = Input::new(b, "integer");
    let n = input.count(MIN_RESIDUAL_BITS)?;
    let out = get_int_body(&mut input, n)?;
    input.end()?;
    Ok(out)
}

// -------------------------------------------------------------------- floats

/// The decimal digits `d` (≤ 18) and integers `n[i]` with
/// `v[i] == n[i] / 10^d` bit for bit, if every value is such a decimal.
fn as_decimals(values: &[f64]) -> Option<(u8, Vec<i64>)> {
    let exact_at = |v: f64, d: usize| -> Option<i64> {
        let n = (v * POW10_F64[d]).round();
        if n.is_nan() || n.abs() > MAX_EXACT {
            return None;
        }
        // Checked through the integer, as the decoder computes it: -0.0
        // becomes 0 and would come back as +0.0, so it is no decimal.
        let n = n as i64;
        ((n as f64 / POW10_F64[d]).to_bits() == v.to_bits()).then_some(n)
    };
    let mut d = 0usize;
    for &v in values {
        while exact_at(v, d).is_none() {
            d += 1;
            if d > 18 {
                return None;
            }
        }
    }
    let ints = values
        .iter()
        .map(|&v| exact_at(v, d))
        .collect::<Option<Vec<i64>>>()?;
    Some((d as u8, ints))
}

/// Encode floats (any bit patterns, NaNs included).
pub fn encode_f64(values: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() + 16);
    put_varint(&mut out, values.len() as u64);
    if values.is_empty() {
        return out;
    }
    let xor = crate::codec::encode_f64(values);
    // The old codec's body without its own count.
    let xor_body = &xor[varint_len(values.len() as u64)..];
    if let Some((d, ints)) = as_decimals(values) {
        let mut dec = vec![1u8, d];
        dec.extend_from_slice(&int_body_best(&ints));
        if dec.len() < 1 + xor_body.len() {
            out.extend_from_slice(&dec);
            return out;
        }
    }
    out.push(0);
    out.extend_from_slice(xor_body);
    out
}

fn int_body_best(values: &[i64]) -> Vec<u8> {
    best_body(values.len(), |mode| int_body(values, mode))
}

/// Decode a float column.
pub fn decode_f64(b: &[u8]) -> Result<Vec<f64>, CodecError> {
    let mut input = Input::new(b, "float");
    let n = input.count(MIN_RESIDUAL_BITS)?;
    if n == 0 {
        input.end()?;
        return Ok(Vec::new());
    }
    let mode = input.byte()?;
    match mode {
        0 => {
            let body = &b[input.bit / 8..];
            let mut framed = Vec::with_capacity(body.len() + 10);
            put_varint(&mut framed, n as u64);
            framed.extend_from_slice(body);
            crate::codec::decode_f64(&framed).map_err(|e| CodecError {
                codec: "float",
                offset: (input.bit / 8 + e.offset).saturating_sub(varint_len(n as u64)),
                reason: e.reason,
            })
        }
        1 => {
            let d = usize::from(input.byte()?);
            if d > 18 {
                return Err(input.err("more than 18 decimal digits"));
            }
            let ints = get_int_body(&mut input, n)?;
            input.end()?;
            let mut out = Vec::with_capacity(n);
            for i in ints {
                if i.unsigned_abs() > MAX_EXACT as u64 {
                    return Err(input.err("decimal mantissa above 2^53"));
                }
                out.push(i as f64 / POW10_F64[d]);
            }
            Ok(out)
        }
        _ => Err(input.err("unknown float mode")),
    }
}

// ------------------------------------------------------------------ booleans

/// Encode booleans as runs.
pub fn encode_bool(values: &[bool]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, values.len() as u64);
    let Some(&first) = values.first() else {
        return out;
    };
    out.push(u8::from(first));
    let mut run = 0u64;
    let mut cur = first;
    for &v in values {
        if v == cur {
            run += 1;
        } else {
            put_varint(&mut out, run);
            cur = v;
            run = 1;
        }
    }
    put_varint(&mut out, run);
    out
}

/// Decode a boolean column.
pub fn decode_bool(b: &[u8]) -> Result<Vec<bool>, CodecError> {
    let mut input = Input::new(b, "boolean");
    let n = input.varint()?;
    if n > MAX_COLUMN_VALUES {
        return Err(input.err("more values than a column may hold"));
    }
    let mut out = Vec::new();
    if n > 0 {
        let mut cur = match input.byte()? {
            0 => false,
            1 => true,
            _ => return Err(input.err("first value is not 0 or 1")),
        };
        let mut left = n;
        while left > 0 {
            let run = input.varint()?;
            if run == 0 || run > left {
                return Err(input.err("run length zero or past the count"));
            }
            // Runs are bounded by the count, and the count by what was
            // pushed so far plus this run: grow as runs are read, so a huge
            // count with no runs behind it allocates nothing.
            let run_len = usize::try_from(run).map_err(|_| input.err("run too long"))?;
            out.try_reserve(run_len)
                .map_err(|_| input.err("run too long to hold"))?;
            out.extend(std::iter::repeat_n(cur, run_len));
            left -= run;
            cur = !cur;
        }
    }
    input.end()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Residuals read bit by byte only (the path near a column's end).
        pub(super) static SLOW: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    #[test]
    fn the_word_wide_residual_reader_agrees_with_the_bytewise_one() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for case in 0..3000 {
            let n = (next() % 300) as usize;
            let spread = 1 + next() % 64;
            let ints: Vec<i64> = (0..n)
                .map(|_| ((next() >> (64 - spread)) as i64).wrapping_sub(1 << (spread - 1).min(40)))
                .collect();
            let mut ts = ints.clone();
            ts.sort_unstable();
            let floats: Vec<f64> = ints.iter().map(|&i| i as f64 / 100.0).collect();
            let mut blobs = vec![
                encode_timestamps(&ts),
                encode_i64(&ints),
                encode_f64(&floats),
            ];
            // Damaged copies: a flipped bit and a cut.
            for b in blobs.clone() {
                if b.is_empty() {
                    continue;
                }
                let mut f = b.clone();
                let at = (next() as usize) % (f.len() * 8);
                f[at / 8] ^= 1 << (at % 8);
                blobs.push(f);
                blobs.push(b[..(next() as usize) % b.len()].to_vec());
            }
            for b in &blobs {
                let fast = (
                    decode_timestamps(b),
                    decode_i64(b),
                    decode_f64(b).map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>()),
                );
                SLOW.with(|s| s.set(true));
                let slow = (
                    decode_timestamps(b),
                    decode_i64(b),
                    decode_f64(b).map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>()),
                );
                SLOW.with(|s| s.set(false));
                assert_eq!(fast, slow, "case {case}: {b:?}");
            }
        }
    }

    #[test]
    fn residual_widths_fit_the_bulk() {
        // Mostly small, a few large: k covers the small ones.
        let mut r = vec![3u64; 1000];
        r.extend([1_000_000u64; 5]);
        let (k, m, _) = choose_widths(&r);
        assert_eq!(k, 2);
        assert!(m >= 20, "{m}");
        assert_eq!(choose_widths(&[0, 0, 0]).2, 3);
    }

    #[test]
    fn millisecond_scrapes_with_jitter_cost_under_half_a_byte() {
        // 1 s scrapes, ms precision stored as ns, ±3 ms jitter, one missed
        // scrape.
        let mut ts = Vec::new();
        let mut t = 1_700_000_000_000i64;
        for i in 0..3600i64 {
            let jitter = [0, 1, 0, 2, 1, 0, 0, 1, 2, 0, 1][(i % 11) as usize];
            ts.push((t + jitter) * 1_000_000);
            t += if i == 1000 { 2000 } else { 1000 };
        }
        let b = encode_timestamps(&ts);
        assert_eq!(decode_timestamps(&b), Ok(ts.clone()));
        let per = b.len() as f64 / ts.len() as f64;
        let old = crate::codec::encode_timestamps(&ts).len() as f64 / ts.len() as f64;
        assert!(
            per < 0.5 && per * 3.0 < old,
            "{per} bytes per timestamp (old codec {old})"
        );
        assert_eq!(
            b[varint_len(ts.len() as u64)],
            1,
            "nominal-interval mode chosen"
        );
    }

    #[test]
    fn two_decimal_readings_use_the_decimal_mode() {
        let v: Vec<f64> = (0..8760)
            .map(|i| ((3902 + (i * 37 % 200) - 100) as f64) / 100.0)
            .collect();
        let b = encode_f64(&v);
        assert_eq!(b[varint_len(v.len() as u64)], 1);
        assert_eq!(b[varint_len(v.len() as u64) + 1], 2, "two digits");
        let back = decode_f64(&b).unwrap_or_else(|e| panic!("{e}"));
        assert!(back.iter().zip(&v).all(|(a, b)| a.to_bits() == b.to_bits()));
        let xor = crate::codec::encode_f64(&v);
        assert!(
            b.len() * 2 < xor.len(),
            "decimal {} vs xor {}",
            b.len(),
            xor.len()
        );
    }

    #[test]
    fn odd_floats_fall_back_to_xor_bit_exactly() {
        let v = [0.1 + 0.2, -0.0, f64::NAN, f64::INFINITY, 1e-300, 5e-324];
        let b = encode_f64(&v);
        assert_eq!(b[1], 0);
        let back = decode_f64(&b).unwrap_or_else(|e| panic!("{e}"));
        assert!(back.iter().zip(&v).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn strictness() {
        // A huge count with nothing behind it.
        let mut b = Vec::new();
        put_varint(&mut b, u64::MAX >> 1);
        assert!(decode_timestamps(&b).is_err());
        assert!(decode_i64(&b).is_err());
        assert!(decode_f64(&b).is_err());
        assert!(decode_bool(&b).is_err());
        // Trailing byte.
        let mut t = encode_timestamps(&[1, 2, 3]);
        t.push(0);
        assert!(decode_timestamps(&t).is_err());
        // A scale exponent that is not the largest.
        // [1000, 2000] as e = 2, scaled [10, 20]: decodes only with e = 3.
        assert_eq!(
            decode_timestamps(&[2, 0, 3, 2, 2, 0, 0]),
            Ok(vec![1000, 2000])
        );
        assert!(decode_timestamps(&[2, 0, 2, 20, 20, 0, 0]).is_err());
        // All-ones residual bits with k = 64 (and with m = 64) would make
        // x + 1 overflow: refused, not wrapped to a zero residual.
        let mut ones = vec![3u8, 1, 0, 0, 64, 64, 0b1011_1111];
        ones.extend([0xff; 8]);
        ones.push(0xc0);
        assert!(decode_i64(&ones).is_err());
        let mut ones = vec![3u8, 1, 0, 0, 0, 64, 0b1101_1111];
        ones.extend([0xff; 8]);
        ones.push(0xe0);
        assert!(decode_i64(&ones).is_err());
        // Booleans: run past the count, zero run.
        assert!(decode_bool(&[2, 1, 3]).is_err());
        assert!(decode_bool(&[2, 1, 0, 2]).is_err());
        assert_eq!(decode_bool(&[3, 1, 2, 1]), Ok(vec![true, true, false]));
        // A run claiming 2^40 values from six bytes (a fuzz finding) is
        // refused before anything is allocated for it.
        let mut huge = Vec::new();
        put_varint(&mut huge, 1 << 40);
        huge.push(1);
        put_varint(&mut huge, 1 << 40);
        assert!(decode_bool(&huge).is_err());
    }
}
