//! Prometheus's `STREAMED_XOR_CHUNKS` remote-read answer: samples in
//! Prometheus's XOR chunk encoding, in `prometheus.ChunkedReadResponse`
//! messages, each framed by its length and a CRC-32C.
//!
//! Facts taken from Prometheus (Apache License 2.0, Copyright the
//! Prometheus Authors): the message names, field numbers and types of
//! `prompb/types.proto` and `prompb/remote.proto`; the bit layout of an
//! XOR chunk (`tsdb/chunkenc`); the frame (`storage/remote/chunked.go`).
//! The code is Sydra's.
//!
//! An XOR chunk is a two-byte big-endian sample count and then one bit
//! stream, most significant bit first:
//!
//! - the first sample: its time as a zigzag varint, its value's 64 bits;
//! - the second: the time since the first as a varint, then the value as
//!   below;
//! - each later one: the change in the time step (`dod`): `0` when none;
//!   `10` and 14 bits, `110` and 17, `1110` and 20 (two's complement,
//!   for `-(2^(n-1)-1) ..= 2^(n-1)`), else `1111` and 64; then the value.
//!
//! A value is XORed with the one before: `0` when equal; otherwise `1`,
//! then `0` and the meaningful bits when they fit inside the previous
//! value's window of leading and trailing zeros, or `1`, the leading
//! zeros in 5 bits (at most 31), the meaningful bit count in 6 (64
//! written as 0) and the meaningful bits.

use super::prompb::ReadSeries;
use crate::varint;

/// `prometheus.ReadRequest.ResponseType.STREAMED_XOR_CHUNKS`.
pub const RESPONSE_STREAMED_XOR_CHUNKS: i32 = 1;

/// `prometheus.Chunk.Encoding.XOR`.
pub const ENCODING_XOR: i32 = 1;

/// The content type of a streamed answer, as Prometheus sends it.
pub const CONTENT_TYPE: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";

/// Samples per chunk, as Prometheus's head cuts them.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// A frame's message is cut after the chunk that takes it past this many
/// bytes (Prometheus's default `--storage.remote.read-max-bytes-in-frame`).
pub const MAX_BYTES_IN_FRAME: usize = 1 << 20;

/// `prometheus.ChunkedReadResponse`: one frame's message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedReadResponse {
    /// Field 1: at most one series per frame; a series may span frames.
    #[prost(message, repeated, tag = "1")]
    pub chunked_series: Vec<ChunkedSeries>,
    /// Field 2: the index of the request's query this answers.
    #[prost(int64, tag = "2")]
    pub query_index: i64,
}

/// `prometheus.ChunkedSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChunkedSeries {
    /// Field 1, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<super::prompb::Label>,
    /// Field 2, in time order.
    #[prost(message, repeated, tag = "2")]
    pub chunks: Vec<Chunk>,
}

/// `prometheus.Chunk`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Chunk {
    /// Field 1: the first sample's time, milliseconds.
    #[prost(int64, tag = "1")]
    pub min_time_ms: i64,
    /// Field 2: the last sample's time, milliseconds.
    #[prost(int64, tag = "2")]
    pub max_time_ms: i64,
    /// Field 3: `Encoding` (1 is XOR).
    #[prost(int32, tag = "3")]
    pub r#type: i32,
    /// Field 4: the encoded chunk.
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

/// The whole `STREAMED_XOR_CHUNKS` answer to a read: per query, per series with samples,
/// chunks of at most 120 samples, and frames of one series each, cut after
/// the chunk that takes a frame past 1 MiB (as Prometheus does).
pub fn encode_streamed(results: &[Vec<ReadSeries>]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    for (qi, series) in results.iter().enumerate() {
        // Sorted by their label sets, as Prometheus streams series.
        let mut sorted: Vec<&ReadSeries> =
            series.iter().filter(|s| !s.timestamps.is_empty()).collect();
        sorted.sort_by(|a, b| label_pairs(a).cmp(label_pairs(b)));
        for s in sorted {
            let labels: usize = s.labels.iter().map(|l| l.name.len() + l.value.len()).sum();
            let room = MAX_BYTES_IN_FRAME.saturating_sub(labels);
            let mut frame = ChunkedSeries {
                labels: s.labels.clone(),
                chunks: Vec::new(),
            };
            let mut used = 0;
            if s.values.len() != s.timestamps.len() {
                return Err(format!(
                    "a series has {} times and {} values",
                    s.timestamps.len(),
                    s.values.len()
                ));
            }
            let cuts = s.timestamps.len().div_ceil(SAMPLES_PER_CHUNK);
            for (i, (ts, vs)) in s
                .timestamps
                .chunks(SAMPLES_PER_CHUNK)
                .zip(s.values.chunks(SAMPLES_PER_CHUNK))
                .enumerate()
            {
                let data = encode_xor(ts, vs)?;
                used += data.len() + 32;
                frame.chunks.push(Chunk {
                    min_time_ms: ts[0],
                    max_time_ms: ts[ts.len() - 1],
                    r#type: ENCODING_XOR,
                    data,
                });
                if used >= room || i + 1 == cuts {
                    let next = ChunkedSeries {
                        labels: s.labels.clone(),
                        chunks: Vec::new(),
                    };
                    let m = ChunkedReadResponse {
                        chunked_series: vec![std::mem::replace(&mut frame, next)],
                        query_index: qi as i64,
                    };
                    put_frame(&mut body, &prost::Message::encode_to_vec(&m));
                    used = 0;
                }
            }
        }
    }
    Ok(body)
}

fn label_pairs(s: &ReadSeries) -> impl Iterator<Item = (&str, &str)> {
    s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str()))
}

/// A most-significant-bit-first writer: bits gather from the top of
/// `acc` (`filled` of them, fewer than 64 after every call) and leave
/// eight bytes at a time.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    filled: u32,
}

impl BitWriter {
    /// Write the low `n` bits of `bits`, `n` from 1 to 64; the bits above
    /// them must be zero.
    fn put(&mut self, bits: u64, n: u32) {
        debug_assert!((1..=64).contains(&n) && (n == 64 || bits >> n == 0));
        let free = 64 - self.filled; // at least 1
        if n < free {
            self.acc |= bits << (free - n);
            self.filled += n;
        } else {
            let spill = n - free; // at most 63
            self.acc |= bits >> spill;
            self.out.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = if spill == 0 { 0 } else { bits << (64 - spill) };
            self.filled = spill;
        }
    }

    fn put_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.put(u64::from(b), 8);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let bytes = self.filled.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_be_bytes()[..bytes]);
        self.out
    }
}

/// Whether `x` fits the `n`-bit bucket of a time step's change.
fn fits(x: i64, n: u32) -> bool {
    -((1i64 << (n - 1)) - 1) <= x && x <= 1i64 << (n - 1)
}

/// Encode samples (times in milliseconds, increasing) as one XOR chunk,
/// bit for bit as Prometheus does. A chunk holds at most 65,535 samples,
/// one value per time; anything else is an error.
pub fn encode_xor(times: &[i64], values: &[f64]) -> Result<Vec<u8>, String> {
    let count = u16::try_from(times.len())
        .ok()
        .filter(|_| times.len() == values.len())
        .ok_or_else(|| {
            format!(
                "a chunk holds up to 65,535 samples, one value per time: {} times, {} values",
                times.len(),
                values.len()
            )
        })?;
    let mut w = BitWriter {
        out: Vec::with_capacity(24 + times.len() * 2),
        acc: 0,
        filled: 0,
    };
    w.put_bytes(&count.to_be_bytes());
    let (mut prev_t, mut prev_v, mut prev_delta) = (0i64, 0u64, 0u64);
    // The window of the value before: leading and trailing zero bits;
    // none yet.
    let (mut leading, mut trailing) = (u32::MAX, 0u32);
    let mut buf = Vec::with_capacity(10);
    // The time's code of the sample at hand, not yet written: (bits, count).
    let mut pending: (u64, u32) = (0, 0);
    for (i, (&t, &v)) in times.iter().zip(values).enumerate() {
        let v = v.to_bits();
        let mut delta = 0u64;
        match i {
            0 => {
                buf.clear();
                varint::put(&mut buf, varint::zigzag(t));
                w.put_bytes(&buf);
                w.put(v, 64);
            }
            _ => {
                delta = t.wrapping_sub(prev_t) as u64;
                if i == 1 {
                    buf.clear();
                    varint::put(&mut buf, delta);
                    w.put_bytes(&buf);
                } else {
                    // The time's code, then the value's: written together
                    // where they fit in one word (the common case by far).
                    let dod = delta.wrapping_sub(prev_delta) as i64;
                    let (code, len) = if dod == 0 {
                        (0, 1)
                    } else if fits(dod, 14) {
                        (0b10 << 14 | (dod as u64 & 0x3fff), 16)
                    } else if fits(dod, 17) {
                        (0b110 << 17 | (dod as u64 & 0x1_ffff), 20)
                    } else if fits(dod, 20) {
                        (0b1110 << 20 | (dod as u64 & 0xf_ffff), 24)
                    } else {
                        w.put(0b1111, 4);
                        (dod as u64, 64)
                    };
                    if len < 64 {
                        pending = (code, len);
                    } else {
                        w.put(code, len);
                    }
                }
                let x = v ^ prev_v;
                let (head, head_len) = std::mem::take(&mut pending);
                if x == 0 {
                    w.put(head << 1, head_len + 1);
                } else {
                    let lz = x.leading_zeros().min(31);
                    let tz = x.trailing_zeros();
                    if leading != u32::MAX && lz >= leading && tz >= trailing {
                        let bits = 64 - leading - trailing;
                        let ctl = head << 2 | 0b10;
                        if head_len + 2 + bits <= 64 {
                            w.put(ctl << bits | x >> trailing, head_len + 2 + bits);
                        } else {
                            w.put(ctl, head_len + 2);
                            w.put(x >> trailing, bits);
                        }
                    } else {
                        leading = lz;
                        trailing = tz;
                        let bits = 64 - lz - tz;
                        // 1 1, 5 bits of leading zeros, 6 of meaningful
                        // bits (64 written as 0).
                        let ctl =
                            head << 13 | 0b11 << 11 | u64::from(lz) << 6 | u64::from(bits & 63);
                        if head_len + 13 + bits <= 64 {
                            w.put(ctl << bits | x >> tz, head_len + 13 + bits);
                        } else {
                            w.put(ctl, head_len + 13);
                            w.put(x >> tz, bits);
                        }
                    }
                }
            }
        }
        prev_t = t;
        prev_v = v;
        prev_delta = delta;
    }
    Ok(w.finish())
}

/// A most-significant-bit-first reader over a chunk's bit stream.
struct BitReader<'a> {
    data: &'a [u8],
    /// The next bit's position, counted from the first byte's top bit.
    at: usize,
}

impl BitReader<'_> {
    fn bits(&mut self, n: u32) -> Result<u64, String> {
        let end = self.at + n as usize;
        if end > self.data.len() * 8 {
            return Err(format!(
                "the chunk ends inside a sample (bit {} of {})",
                self.at,
                self.data.len() * 8
            ));
        }
        let mut out = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = self.data[self.at / 8];
            let used = (self.at % 8) as u32;
            let take = (8 - used).min(left);
            let b = (u64::from(byte) >> (8 - used - take)) & ((1 << take) - 1);
            out = if take == 64 { b } else { (out << take) | b };
            self.at += take as usize;
            left -= take;
        }
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut x = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.bits(8)?;
            if shift == 63 && b > 1 {
                break;
            }
            x |= (b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(x);
            }
        }
        Err(format!("a varint at bit {} overflows 64 bits", self.at))
    }
}

/// Decode one XOR chunk into its samples (times in milliseconds, values).
/// A truncated or inconsistent chunk is an error naming where it broke;
/// it never panics, and it allocates no more than the chunk's declared
/// count, at most 65,535 samples.
pub fn decode_xor(data: &[u8]) -> Result<(Vec<i64>, Vec<f64>), String> {
    if data.len() < 2 {
        return Err(format!("a chunk of {} bytes has no header", data.len()));
    }
    let n = usize::from(u16::from_be_bytes([data[0], data[1]]));
    let mut r = BitReader { data, at: 16 };
    let mut times = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    let (mut t, mut v, mut delta) = (0i64, 0u64, 0u64);
    let (mut leading, mut trailing) = (0u32, 0u32);
    for i in 0..n {
        match i {
            0 => {
                let z = r.varint()?;
                t = varint::unzigzag(z);
                v = r.bits(32)? << 32 | r.bits(32)?;
            }
            _ => {
                if i == 1 {
                    delta = r.varint()?;
                } else {
                    let mut prefix = 0;
                    while prefix < 4 && r.bits(1)? == 1 {
                        prefix += 1;
                    }
                    let width = [0, 14, 17, 20, 64][prefix];
                    if width > 0 {
                        let raw = if width == 64 {
                            r.bits(32)? << 32 | r.bits(32)?
                        } else {
                            r.bits(width)?
                        };
                        let dod = if width < 64 && raw > 1 << (width - 1) {
                            raw as i64 - (1i64 << width)
                        } else {
                            raw as i64
                        };
                        delta = delta.wrapping_add(dod as u64);
                    }
                }
                t = t.wrapping_add(delta as i64);
                if r.bits(1)? == 1 {
                    if r.bits(1)? == 1 {
                        leading = r.bits(5)? as u32;
                        let mut bits = r.bits(6)? as u32;
                        if bits == 0 {
                            bits = 64;
                        }
                        if leading + bits > 64 {
                            return Err(format!(
                                "sample {i}: {leading} leading zeros and {bits} meaningful bits \
                                 exceed 64"
                            ));
                        }
                        trailing = 64 - leading - bits;
                    }
                    let bits = 64 - leading - trailing;
                    let x = if bits > 32 {
                        r.bits(bits - 32)? << 32 | r.bits(32)?
                    } else {
                        r.bits(bits)?
                    };
                    v ^= x << trailing;
                }
            }
        }
        times.push(t);
        values.push(f64::from_bits(v));
    }
    Ok((times, values))
}

/// Append one frame: the message's length as a varint, its CRC-32C
/// (Castagnoli) big-endian, the message.
pub fn put_frame(out: &mut Vec<u8>, message: &[u8]) {
    varint::put(out, message.len() as u64);
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, message) as u32;
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(message);
}

/// Split a streamed answer into its frames' messages, each checked
/// against its CRC. An error names the frame and the byte offset.
pub fn frames(mut body: &[u8]) -> Result<Vec<&[u8]>, String> {
    let total = body.len();
    let mut out = Vec::new();
    while !body.is_empty() {
        let at = total - body.len();
        let mut used = 0;
        let len = varint::read(body, &mut used)
            .map_err(|e| format!("frame {} at byte {at}: its length: {e}", out.len()))?;
        let rest = &body[used..];
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| rest.len().checked_sub(4).is_some_and(|room| l <= room))
            .ok_or_else(|| {
                format!(
                    "frame {} at byte {at}: {len} bytes declared, {} left",
                    out.len(),
                    rest.len()
                )
            })?;
        let crc = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let msg = &rest[4..4 + len];
        let got = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, msg) as u32;
        if got != crc {
            return Err(format!(
                "frame {} at byte {at}: CRC {got:08x}, the frame says {crc:08x}",
                out.len()
            ));
        }
        out.push(msg);
        body = &rest[4 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(x: &mut u64) -> u64 {
        *x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *x >> 11
    }

    /// Random samples whose time steps and values exercise every bucket
    /// and both value windows.
    fn samples(x: &mut u64, n: usize) -> (Vec<i64>, Vec<f64>) {
        let steps = [
            0i64, 1, 8191, 8192, 8193, 65535, 65536, 65537, 524_287, 524_288, 524_289,
        ];
        let mut t = (lcg(x) % 2_000_000_000_000) as i64 - 1_000_000_000_000;
        let mut step = 15_000i64;
        let mut v = 0.0f64;
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        for _ in 0..n {
            ts.push(t);
            vs.push(v);
            let r = lcg(x);
            step = match r % 5 {
                0 => step,
                1 => (step + steps[(r as usize / 5) % steps.len()]).max(1),
                2 => (step - steps[(r as usize / 5) % steps.len()]).max(1),
                3 => 1 + (r >> 20) as i64 % 10_000_000_000,
                _ => 15_000 + (r as i64 % 3) - 1,
            };
            t += step;
            v = match lcg(x) % 6 {
                0 => v,
                1 => v + 1.0,
                2 => f64::from_bits(lcg(x) << 11 | lcg(x) & 0x7ff),
                3 => [f64::NAN, -0.0, f64::INFINITY, 1e-310, f64::MAX][(r % 5) as usize],
                4 => f64::from_bits(v.to_bits() ^ 1),
                _ => f64::from_bits(v.to_bits() ^ (1 << 63)),
            };
        }
        (ts, vs)
    }

    #[test]
    fn a_chunk_reads_back_bit_for_bit() {
        let mut x = 11u64;
        for case in 0..2_000 {
            let n = (lcg(&mut x) % 200) as usize;
            let (ts, vs) = samples(&mut x, n);
            let chunk = encode_xor(&ts, &vs).unwrap();
            let (t2, v2) = decode_xor(&chunk).unwrap_or_else(|e| panic!("case {case}: {e}"));
            assert_eq!(t2, ts, "case {case}");
            let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&v2), bits(&vs), "case {case}");
        }
    }

    #[test]
    fn known_bytes_of_a_small_chunk() {
        // Worked by hand from the layout: count 3; time 1000 as a zigzag
        // varint (2000 = d0 0f); 1.0's bits; the step 15 as a varint (0f).
        let chunk = encode_xor(&[1000, 1015, 1030], &[1.0, 1.0, 2.0]).unwrap();
        assert_eq!(&chunk[..2], &[0, 3]);
        assert_eq!(&chunk[2..4], &[0xd0, 0x0f]);
        assert_eq!(&chunk[4..12], &1.0f64.to_bits().to_be_bytes());
        assert_eq!(chunk[12], 0x0f);
        // Then: 0 (same value), 0 (same step), 1 1 (new window),
        // 00001 (one leading zero: 1.0 ^ 2.0 = 0x7ff0_0000_0000_0000),
        // 001011 (11 meaningful bits), 11111111111.
        let rest: String = chunk[13..].iter().map(|b| format!("{b:08b}")).collect();
        assert_eq!(&rest[..2 + 2 + 5 + 6 + 11], "00110000100101111111111111");
        assert_eq!(decode_xor(&chunk).unwrap().0, vec![1000, 1015, 1030]);
    }

    #[test]
    fn damaged_chunks_are_errors_never_panics() {
        let mut x = 5u64;
        let (ts, vs) = samples(&mut x, 150);
        let chunk = encode_xor(&ts, &vs).unwrap();
        for cut in 0..chunk.len() {
            assert!(decode_xor(&chunk[..cut]).is_err(), "cut at {cut}");
        }
        for _ in 0..5_000 {
            let mut c = chunk.clone();
            let i = (lcg(&mut x) as usize) % c.len();
            c[i] ^= 1 << (lcg(&mut x) % 8);
            let _ = decode_xor(&c);
        }
        // A declared count far beyond the bytes: an error, and bounded.
        assert!(decode_xor(&[0xff, 0xff, 0]).is_err());
    }

    #[test]
    fn a_streamed_answer_splits_series_into_chunks_and_frames() {
        let series = |name: &str, n: usize| ReadSeries {
            labels: vec![super::super::prompb::Label {
                name: "__name__".into(),
                value: name.into(),
            }],
            timestamps: (0..n as i64).map(|i| i * 1000).collect(),
            values: (0..n).map(|i| i as f64).collect(),
        };
        // Two queries; the second's series given out of order, one empty.
        let body = encode_streamed(&[
            vec![series("a", 250)],
            vec![series("c", 1), series("b", 120), series("e", 0)],
        ])
        .unwrap();
        let mut seen = Vec::new();
        for f in frames(&body).unwrap() {
            let m = <ChunkedReadResponse as prost::Message>::decode(f).unwrap();
            for cs in m.chunked_series {
                let sizes: Vec<usize> = cs
                    .chunks
                    .iter()
                    .map(|c| decode_xor(&c.data).unwrap().0.len())
                    .collect();
                seen.push((m.query_index, cs.labels[0].value.clone(), sizes));
            }
        }
        assert_eq!(
            seen,
            vec![
                (0, "a".to_owned(), vec![120, 120, 10]),
                (1, "b".to_owned(), vec![120]),
                (1, "c".to_owned(), vec![1]),
            ]
        );
        let mut bad = series("x", 3);
        bad.values.pop();
        assert!(encode_streamed(&[vec![bad]]).is_err());
        // A series past 1 MiB of chunks spans frames, each under about
        // 1 MiB and one chunk, and keeps every sample.
        let mut x = 3u64;
        let mut big = series("big", 200_000);
        for v in &mut big.values {
            *v = f64::from_bits(lcg(&mut x) << 11 | lcg(&mut x) & 0x7ff);
        }
        let body = encode_streamed(&[vec![big.clone()]]).unwrap();
        let fs = frames(&body).unwrap();
        assert!(fs.len() >= 2, "{} frames", fs.len());
        let mut back = Vec::new();
        for f in fs {
            assert!(f.len() < MAX_BYTES_IN_FRAME + 4096, "{}", f.len());
            let m = <ChunkedReadResponse as prost::Message>::decode(f).unwrap();
            assert_eq!(m.chunked_series.len(), 1);
            for c in &m.chunked_series[0].chunks {
                back.extend(decode_xor(&c.data).unwrap().1.iter().map(|v| v.to_bits()));
            }
        }
        assert!(
            back.iter()
                .copied()
                .eq(big.values.iter().map(|v| v.to_bits()))
        );
    }

    #[test]
    fn frames_carry_a_crc_and_refuse_damage() {
        let mut body = Vec::new();
        put_frame(&mut body, b"first");
        put_frame(&mut body, &[7u8; 300]);
        let f = frames(&body).unwrap();
        assert_eq!(f, vec![&b"first"[..], &[7u8; 300][..]]);
        // CRC-32C of "123456789" is e3069283 (the check value).
        let mut one = Vec::new();
        put_frame(&mut one, b"123456789");
        assert_eq!(&one[1..5], &[0xe3, 0x06, 0x92, 0x83]);
        // A frame of no bytes still has its CRC.
        assert!(
            frames(&[0])
                .unwrap_err()
                .contains("0 bytes declared, 0 left")
        );
        let mut bad = body.clone();
        bad[7] ^= 1;
        assert!(frames(&bad).unwrap_err().contains("CRC"));
        for cut in 1..body.len() {
            if cut != 10 {
                assert!(frames(&body[..cut]).is_err(), "cut at {cut}");
            }
        }
    }
}
