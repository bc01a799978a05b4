//! LEB128 varints and zigzag: the one integer encoding of the column codecs
//! (`codec`, `series::codec`) and the series WAL records.
//!
//! A varint is at most 10 bytes, minimal (no trailing zero byte), and does
//! not overflow 64 bits; [`read`] refuses anything else.

/// Append `v` as a varint.
pub(crate) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes [`put`] writes for `v`.
pub(crate) fn len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Signed to unsigned, small magnitudes to small numbers.
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Read a varint at `*pos`, advancing past every byte read (on an error,
/// `*pos` is where reading stopped, for the caller's message).
pub(crate) fn read(b: &[u8], pos: &mut usize) -> Result<u64, &'static str> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let Some(&byte) = b.get(*pos) else {
            return Err("truncated varint");
        };
        *pos += 1;
        if i == 9 && byte > 1 {
            return Err("varint overflows 64 bits");
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err("overlong varint");
            }
            return Ok(v);
        }
    }
    Err("varint longer than 10 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_lengths() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX >> 1, u64::MAX] {
            let mut b = Vec::new();
            put(&mut b, v);
            assert_eq!(b.len(), len(v), "{v}");
            let mut pos = 0;
            assert_eq!(read(&b, &mut pos), Ok(v));
            assert_eq!(pos, b.len());
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(read(&[0x80, 0], &mut 0), Err("overlong varint"));
        assert_eq!(read(&[0x80], &mut 0), Err("truncated varint"));
        assert_eq!(read(&[0xff; 10], &mut 0), Err("varint overflows 64 bits"));
    }
}
