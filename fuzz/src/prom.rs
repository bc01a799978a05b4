//! Prometheus's streamed remote-read answer (`serve::chunks`): XOR chunks
//! and the CRC-framed stream.
//!
//! `prom_chunks`: with the first byte even, the rest goes through the XOR
//! chunk decoder; a chunk it accepts holds exactly its declared count,
//! and its samples, encoded again, decode to the same times and value
//! bits. With the first byte odd, the rest goes through the frame
//! splitter; the frames it accepts, framed again, are the input byte for
//! byte, and each frame's message goes through the chunk decoder too.
//! Neither may panic or allocate beyond the input's declared counts.

use sydra_engine::serve::chunks::{decode_xor, encode_xor, frames, put_frame};

fn chunk(data: &[u8]) {
    let Ok((ts, vs)) = decode_xor(data) else {
        return;
    };
    assert_eq!(
        ts.len(),
        usize::from(u16::from_be_bytes([data[0], data[1]]))
    );
    let again = encode_xor(&ts, &vs).expect("a decoded chunk encodes");
    let (t2, v2) = decode_xor(&again).expect("an encoded chunk decodes");
    assert_eq!(t2, ts);
    assert!(
        v2.iter()
            .map(|v| v.to_bits())
            .eq(vs.iter().map(|v| v.to_bits())),
        "values changed through encode and decode"
    );
}

/// The `prom_chunks` fuzz target's check.
pub fn prom_chunks(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        chunk(rest);
        return;
    }
    let Ok(msgs) = frames(rest) else {
        return;
    };
    let mut again = Vec::with_capacity(rest.len());
    for m in &msgs {
        put_frame(&mut again, m);
        chunk(m);
    }
    assert_eq!(again, rest, "frames read and written again differ");
}
