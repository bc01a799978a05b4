//! The ids of many small objects at once. A BLAKE3 chunk (1 KiB of an
//! id's input: the 9-byte prefix, then the payload) is hashed one 64-byte
//! block after another, and the `blake3` crate spreads only the chunks of
//! one input across SIMD lanes, never its last chunk. A pack's objects are
//! mostly a few KiB: a receiver verifying hundreds of thousands of them
//! spent a sixth of its CPU in that one-lane path. Here the chunks of
//! sixteen objects at a time go through the compression function side by
//! side, one per 32-bit lane of AVX-512 registers, and the `blake3`
//! crate's own `hazmat` functions join each object's chunk values into its
//! id (DECISIONS 77).
//!
//! The crate keeps its multi-input kernel private (asking for a public
//! one: BLAKE3-team/BLAKE3#478). Until it has one, this module holds the
//! compression function as the BLAKE3 paper specifies it, and nothing
//! else. Every id it computes is checked against the crate in the tests,
//! at every length up to [`MAX_PAYLOAD`] and across chunk edges. On a
//! machine without AVX-512 (or not x86-64) every id is the crate's.

use crate::{Kind, ObjectId};

/// The largest payload hashed here (16 chunks with the prefix); larger
/// objects hash well enough alone (the crate spreads their chunks).
pub(crate) const MAX_PAYLOAD: usize = 16 * CHUNK - PREFIX;

/// Kind byte and the payload's length, u64 LE: what an id hashes before
/// the payload ([`crate::IdHasher`]).
const PREFIX: usize = 9;

/// Chunks hashed side by side.
const LANES: usize = 16;

/// A BLAKE3 chunk.
const CHUNK: usize = 1024;

/// One chunk of an object's input: `head` (the prefix, for a first
/// chunk) then `body`, at chunk index `counter`; `root` when it is the
/// object's only chunk.
#[derive(Clone, Copy)]
struct Job<'a> {
    head: &'a [u8],
    body: &'a [u8],
    counter: u64,
    root: bool,
}

/// Fills `out` with the ids of `objects` (kind and payload), in order.
/// Payloads of more than [`MAX_PAYLOAD`] bytes are hashed one by one.
pub(crate) fn ids(objects: &[(Kind, &[u8])], out: &mut Vec<ObjectId>) {
    out.clear();
    if !fast() {
        out.extend(objects.iter().map(|&(k, p)| ObjectId::compute(k, p)));
        return;
    }
    let prefixes: Vec<[u8; PREFIX]> = objects
        .iter()
        .map(|&(k, p)| {
            let mut h = [0u8; PREFIX];
            h[0] = k.code();
            h[1..].copy_from_slice(&(p.len() as u64).to_le_bytes());
            h
        })
        .collect();
    // Every chunk of every object, and where each object's values start.
    let mut jobs = Vec::with_capacity(objects.len() * 2);
    let mut first = Vec::with_capacity(objects.len() + 1);
    for (&(_, p), prefix) in objects.iter().zip(&prefixes) {
        first.push(jobs.len());
        if p.len() > MAX_PAYLOAD {
            continue;
        }
        let chunks = (PREFIX + p.len()).div_ceil(CHUNK);
        let split = (CHUNK - PREFIX).min(p.len());
        jobs.push(Job {
            head: prefix,
            body: &p[..split],
            counter: 0,
            root: chunks == 1,
        });
        for (i, body) in p[split..].chunks(CHUNK).enumerate() {
            jobs.push(Job {
                head: &[],
                body,
                counter: i as u64 + 1,
                root: false,
            });
        }
    }
    first.push(jobs.len());
    let mut values = vec![[0u8; 32]; jobs.len()];
    for (group, out) in jobs.chunks(LANES).zip(values.chunks_mut(LANES)) {
        compress_group(group, out);
    }
    out.reserve(objects.len());
    for (i, &(k, p)) in objects.iter().enumerate() {
        let v = &values[first[i]..first[i + 1]];
        out.push(match v {
            [] => ObjectId::compute(k, p),
            [only] => ObjectId::from_bytes(*only),
            _ => root_of(v),
        });
    }
}

/// Whether this machine runs the sixteen-lane kernel.
fn fast() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The chaining values (or, for a root job, the hash) of at most
/// [`LANES`] jobs.
fn compress_group(group: &[Job<'_>], out: &mut [[u8; 32]]) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: only called when `fast()` found AVX-512F; a group holds
        // at most LANES jobs of at most a chunk each (built in `ids`).
        unsafe { avx512::compress(group, out) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (group, out);
        unreachable!("the sixteen-lane kernel runs only on x86-64");
    }
}

/// The id of an input of several chunks, from their chaining values: the
/// left subtree holds the largest power of two of chunks less than all.
fn root_of(values: &[[u8; 32]]) -> ObjectId {
    use blake3::hazmat::{Mode, merge_subtrees_root};
    let left = split(values.len());
    let h = merge_subtrees_root(
        &subtree(&values[..left]),
        &subtree(&values[left..]),
        Mode::Hash,
    );
    ObjectId::from_bytes(*h.as_bytes())
}

/// The chaining value of a (non-root) subtree of chunks.
fn subtree(values: &[[u8; 32]]) -> [u8; 32] {
    use blake3::hazmat::{Mode, merge_subtrees_non_root};
    if let [only] = values {
        return *only;
    }
    let left = split(values.len());
    merge_subtrees_non_root(
        &subtree(&values[..left]),
        &subtree(&values[left..]),
        Mode::Hash,
    )
}

/// The chunks of the left subtree of `n` (at least 2): the largest power
/// of two below `n`.
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{CHUNK, Job, LANES};
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// BLAKE3's initial chaining value (that of SHA-256).
    const IV: [u32; 8] = [
        0x6A09_E667,
        0xBB67_AE85,
        0x3C6E_F372,
        0xA54F_F53A,
        0x510E_527F,
        0x9B05_688C,
        0x1F83_D9AB,
        0x5BE0_CD19,
    ];
    /// The order of the message words from one round to the next.
    const PERMUTE: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
    /// Which message word each round takes in each place: the words stay
    /// where they are, in registers, and the rounds index them.
    const SCHEDULE: [[usize; 16]; 7] = {
        let mut s = [[0; 16]; 7];
        let mut i = 0;
        while i < 16 {
            s[0][i] = i;
            i += 1;
        }
        let mut r = 1;
        while r < 7 {
            let mut i = 0;
            while i < 16 {
                s[r][i] = s[r - 1][PERMUTE[i]];
                i += 1;
            }
            r += 1;
        }
        s
    };
    const CHUNK_START: i32 = 1;
    const CHUNK_END: i32 = 2;
    const ROOT: i32 = 8;
    const BLOCK: usize = 64;

    /// The quarter-round on four rows of the state, sixteen lanes wide.
    #[inline(always)]
    fn g(
        s: &mut [__m512i; 16],
        (a, b, c, d): (usize, usize, usize, usize),
        x: __m512i,
        y: __m512i,
    ) {
        // SAFETY: register arithmetic only; inlined into `compress`, which
        // is compiled for AVX-512F and runs only where the CPU has it.
        unsafe {
            s[a] = _mm512_add_epi32(_mm512_add_epi32(s[a], s[b]), x);
            s[d] = _mm512_ror_epi32::<16>(_mm512_xor_si512(s[d], s[a]));
            s[c] = _mm512_add_epi32(s[c], s[d]);
            s[b] = _mm512_ror_epi32::<12>(_mm512_xor_si512(s[b], s[c]));
            s[a] = _mm512_add_epi32(_mm512_add_epi32(s[a], s[b]), y);
            s[d] = _mm512_ror_epi32::<8>(_mm512_xor_si512(s[d], s[a]));
            s[c] = _mm512_add_epi32(s[c], s[d]);
            s[b] = _mm512_ror_epi32::<7>(_mm512_xor_si512(s[b], s[c]));
        }
    }

    /// Writes each job's chaining value (its hash for a root job) into
    /// `out`, in order.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn compress(group: &[Job<'_>], out: &mut [[u8; 32]]) {
        assert!(group.len() <= LANES && out.len() >= group.len());
        // Each lane's chunk laid out whole, its last block padded with
        // zeros; what lies past that is never read.
        let mut chunks = MaybeUninit::<[[u8; CHUNK]; LANES]>::uninit();
        let base = chunks.as_mut_ptr().cast::<u8>();
        let mut lens = [0i32; LANES];
        let mut blocks = [0i32; LANES];
        let mut roots = [0i32; LANES];
        let mut low = [0i32; LANES];
        let mut high = [0i32; LANES];
        let mut most = 0;
        for (lane, job) in group.iter().enumerate() {
            let len = job.head.len() + job.body.len();
            assert!(len <= CHUNK);
            // An empty input is one block of zeros.
            let padded = len.div_ceil(BLOCK).max(1) * BLOCK;
            // SAFETY: lane < LANES, so this lane's CHUNK bytes lie within
            // `chunks`, and padded <= CHUNK. Written before any read.
            let chunk = unsafe { std::slice::from_raw_parts_mut(base.add(lane * CHUNK), padded) };
            chunk[..job.head.len()].copy_from_slice(job.head);
            chunk[job.head.len()..len].copy_from_slice(job.body);
            chunk[len..].fill(0);
            lens[lane] = len as i32;
            blocks[lane] = (padded / BLOCK) as i32;
            roots[lane] = if job.root { ROOT } else { 0 };
            low[lane] = job.counter as u32 as i32;
            high[lane] = (job.counter >> 32) as u32 as i32;
            most = most.max(padded / BLOCK);
        }
        let used: __mmask16 = if group.len() == LANES {
            u16::MAX
        } else {
            (1u16 << group.len()) - 1
        };
        // SAFETY: loads of 64-byte local arrays.
        let load = |a: &[i32; LANES]| unsafe { _mm512_loadu_si512(a.as_ptr().cast()) };
        let (lens, blocks, roots, low, high) = (
            load(&lens),
            load(&blocks),
            load(&roots),
            load(&low),
            load(&high),
        );
        // Word w of lane l's block b is at i32 index l*256 + b*16 + w.
        let lane_at = _mm512_setr_epi32(
            0, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304, 2560, 2816, 3072, 3328, 3584,
            3840,
        );
        let mut cv = [_mm512_setzero_si512(); 8];
        for (c, &w) in cv.iter_mut().zip(&IV) {
            *c = _mm512_set1_epi32(w as i32);
        }
        for b in 0..most {
            let bv = _mm512_set1_epi32(b as i32);
            // The lanes whose chunk has a block b: only they are read, and
            // only their chaining values change.
            let live = _mm512_cmplt_epi32_mask(bv, blocks) & used;
            let mut m = [_mm512_setzero_si512(); 16];
            for (w, word) in m.iter_mut().enumerate() {
                let at = _mm512_add_epi32(lane_at, _mm512_set1_epi32((b * 16 + w) as i32));
                // SAFETY: for a live lane, block b lies within its padded
                // chunk, written above; other lanes are not read.
                *word = unsafe {
                    _mm512_mask_i32gather_epi32::<4>(
                        _mm512_setzero_si512(),
                        live,
                        at,
                        base.cast_const().cast(),
                    )
                };
            }
            let left = _mm512_sub_epi32(lens, _mm512_set1_epi32((b * BLOCK) as i32));
            let block_len = _mm512_max_epi32(
                _mm512_min_epi32(left, _mm512_set1_epi32(BLOCK as i32)),
                _mm512_setzero_si512(),
            );
            let last = _mm512_cmpeq_epi32_mask(_mm512_set1_epi32(b as i32 + 1), blocks);
            let end = _mm512_or_si512(_mm512_set1_epi32(CHUNK_END), roots);
            let mut flags = _mm512_maskz_mov_epi32(last, end);
            if b == 0 {
                flags = _mm512_or_si512(flags, _mm512_set1_epi32(CHUNK_START));
            }
            let mut s = [_mm512_setzero_si512(); 16];
            s[..8].copy_from_slice(&cv);
            for (row, &w) in s[8..12].iter_mut().zip(&IV[..4]) {
                *row = _mm512_set1_epi32(w as i32);
            }
            s[12] = low;
            s[13] = high;
            s[14] = block_len;
            s[15] = flags;
            for k in &SCHEDULE {
                g(&mut s, (0, 4, 8, 12), m[k[0]], m[k[1]]);
                g(&mut s, (1, 5, 9, 13), m[k[2]], m[k[3]]);
                g(&mut s, (2, 6, 10, 14), m[k[4]], m[k[5]]);
                g(&mut s, (3, 7, 11, 15), m[k[6]], m[k[7]]);
                g(&mut s, (0, 5, 10, 15), m[k[8]], m[k[9]]);
                g(&mut s, (1, 6, 11, 12), m[k[10]], m[k[11]]);
                g(&mut s, (2, 7, 8, 13), m[k[12]], m[k[13]]);
                g(&mut s, (3, 4, 9, 14), m[k[14]], m[k[15]]);
            }
            for (i, c) in cv.iter_mut().enumerate() {
                *c = _mm512_mask_xor_epi32(*c, live, s[i], s[i + 8]);
            }
        }
        let mut words = [[0u32; LANES]; 8];
        for (row, c) in words.iter_mut().zip(&cv) {
            // SAFETY: a store into a local array of 64 bytes.
            unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), *c) };
        }
        for (lane, v) in out.iter_mut().enumerate().take(group.len()) {
            for (i, row) in words.iter().enumerate() {
                v[i * 4..i * 4 + 4].copy_from_slice(&row[lane].to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn payload(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn every_length_hashes_as_the_crate_does() {
        // Every length up to three chunks, then every 13th to a little
        // past MAX_PAYLOAD, in one call, mixed kinds: groups of chunks of
        // different block counts and counters, and objects of every chunk
        // count up to sixteen and beyond.
        let lengths = (0..=3 * CHUNK).chain((3 * CHUNK..=MAX_PAYLOAD + 100).step_by(13));
        let payloads: Vec<Vec<u8>> = lengths.map(|n| payload(n, n as u8)).collect();
        let kinds = [Kind::Blob, Kind::Tree, Kind::Commit];
        let objects: Vec<(Kind, &[u8])> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (kinds[i % 3], &p[..]))
            .collect();
        let mut out = Vec::new();
        ids(&objects, &mut out);
        assert_eq!(out.len(), objects.len());
        for (&(k, p), id) in objects.iter().zip(&out) {
            assert_eq!(*id, ObjectId::compute(k, p), "{} bytes", p.len());
        }
    }

    proptest! {
        #[test]
        fn any_batch_hashes_as_the_crate_does(
            lens in proptest::collection::vec(
                prop_oneof![0usize..=2 * CHUNK, 0usize..=MAX_PAYLOAD + 100],
                0..40,
            ),
            seed in any::<u8>(),
        ) {
            let payloads: Vec<Vec<u8>> = lens.iter().map(|&n| payload(n, seed)).collect();
            let objects: Vec<(Kind, &[u8])> = payloads.iter().map(|p| (Kind::Blob, &p[..])).collect();
            let mut out = vec![ObjectId::from_bytes([7; 32])];
            ids(&objects, &mut out);
            let expected: Vec<ObjectId> = objects.iter().map(|&(k, p)| ObjectId::compute(k, p)).collect();
            prop_assert_eq!(out, expected);
        }
    }
}
