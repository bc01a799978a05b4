//! The ids of many small objects at once. A BLAKE3 chunk (1 KiB of an
//! id's input: the 9-byte prefix, then the payload) is hashed one 64-byte
//! block after another, and the `blake3` crate spreads only the chunks of
//! one input across SIMD lanes, never its last chunk. A pack's objects are
//! mostly a few KiB: a receiver verifying hundreds of thousands of them
//! spent a sixth of its CPU in that one-lane path. Here the chunks of
//! many objects go through the compression function side by side, one
//! per 32-bit lane (sixteen in AVX-512 registers, eight in AVX2's), and
//! the `blake3` crate's own `hazmat` functions join each object's chunk
//! values into its id (DECISIONS 77).
//!
//! The crate keeps its multi-input kernel private (asking for a public
//! one: BLAKE3-team/BLAKE3#478). Until it has one, this module holds the
//! compression function as the BLAKE3 paper specifies it, and nothing
//! else. Every id it computes is checked against the crate in the tests,
//! at every length up to [`MAX_PAYLOAD`] and across chunk edges, with
//! each kernel the machine has. On a machine with neither AVX-512 nor
//! AVX2 (or not x86-64) every id is the crate's.

use crate::{Kind, ObjectId};

/// The largest payload hashed here (16 chunks with the prefix); larger
/// objects hash well enough alone (the crate spreads their chunks).
pub(crate) const MAX_PAYLOAD: usize = 16 * CHUNK - PREFIX;

/// Kind byte and the payload's length, u64 LE: what an id hashes before
/// the payload ([`crate::IdHasher`]).
const PREFIX: usize = 9;

/// The most chunks hashed side by side.
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
    ids_with(Kernel::detect(), objects, out);
}

/// How chunks are compressed side by side on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// Sixteen lanes (AVX-512F).
    Wide,
    /// Eight lanes (AVX2).
    Narrow,
    /// None: every id is the `blake3` crate's.
    Crate,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Wide;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Kernel::Narrow;
            }
        }
        Kernel::Crate
    }

    fn lanes(self) -> usize {
        match self {
            Kernel::Wide => 16,
            Kernel::Narrow => 8,
            Kernel::Crate => 1,
        }
    }

    /// The chaining values (or, for a root job, the hash) of at most
    /// [`Kernel::lanes`] jobs.
    fn compress(self, group: &[Job<'_>], out: &mut [[u8; 32]]) {
        match self {
            // SAFETY: the CPU has the kernel's feature (checked here, a
            // cached load, so no caller can run a kernel the CPU lacks);
            // `ids_with` hands at most `lanes()` jobs of at most a chunk
            // each.
            #[cfg(target_arch = "x86_64")]
            Kernel::Wide if std::arch::is_x86_feature_detected!("avx512f") => unsafe {
                simd::wide(group, out)
            },
            #[cfg(target_arch = "x86_64")]
            Kernel::Narrow if std::arch::is_x86_feature_detected!("avx2") => unsafe {
                simd::narrow(group, out)
            },
            _ => unreachable!("this machine has no {self:?} kernel"),
        }
    }
}

/// [`ids`] with the given kernel.
fn ids_with(kernel: Kernel, objects: &[(Kind, &[u8])], out: &mut Vec<ObjectId>) {
    out.clear();
    if kernel == Kernel::Crate {
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
    let lanes = kernel.lanes();
    for (group, out) in jobs.chunks(lanes).zip(values.chunks_mut(lanes)) {
        kernel.compress(group, out);
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
mod simd {
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

    /// A register of 32-bit lanes. A mask is a register too: all ones in
    /// the lanes it selects. Every method is an intrinsic of the target
    /// feature its implementation names, so each may be called only from
    /// a function compiled with that feature, on a CPU that has it.
    trait Lanes: Copy {
        const N: usize;
        unsafe fn splat(x: i32) -> Self;
        /// The first `N` of `a`.
        unsafe fn load(a: &[i32; LANES]) -> Self;
        unsafe fn store(self, a: &mut [i32; LANES]);
        unsafe fn add(self, o: Self) -> Self;
        unsafe fn sub(self, o: Self) -> Self;
        unsafe fn xor(self, o: Self) -> Self;
        unsafe fn or(self, o: Self) -> Self;
        unsafe fn and(self, o: Self) -> Self;
        unsafe fn min(self, o: Self) -> Self;
        unsafe fn max(self, o: Self) -> Self;
        unsafe fn lt(self, o: Self) -> Self;
        unsafe fn eq(self, o: Self) -> Self;
        /// `self` where `mask`, else `other`.
        unsafe fn select(mask: Self, this: Self, other: Self) -> Self;
        /// The i32 at `base + 4 * at` in the masked lanes, 0 in the others
        /// (which read nothing).
        unsafe fn gather(mask: Self, at: Self, base: *const i32) -> Self;
        unsafe fn ror16(self) -> Self;
        unsafe fn ror12(self) -> Self;
        unsafe fn ror8(self) -> Self;
        unsafe fn ror7(self) -> Self;
    }

    impl Lanes for __m512i {
        const N: usize = 16;
        #[inline(always)]
        unsafe fn splat(x: i32) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm512_set1_epi32(x) }
        }
        #[inline(always)]
        unsafe fn load(a: &[i32; LANES]) -> Self {
            // SAFETY: 64 bytes of `a`.
            unsafe { _mm512_loadu_si512(a.as_ptr().cast()) }
        }
        #[inline(always)]
        unsafe fn store(self, a: &mut [i32; LANES]) {
            // SAFETY: 64 bytes of `a`.
            unsafe { _mm512_storeu_si512(a.as_mut_ptr().cast(), self) }
        }
        #[inline(always)]
        unsafe fn add(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm512_add_epi32(self, o) }
        }
        #[inline(always)]
        unsafe fn sub(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm512_sub_epi32(self, o) }
        }
        #[inline(always)]
        unsafe fn xor(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm512_xor_si512(self, o) }
        }
        #[inline(always)]
        unsafe fn or(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm512_or_si512(self, o) }
        }
        #[inline(always)]
        unsafe fn and(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm512_and_si512(self, o) }
        }
        #[inline(always)]
        unsafe fn min(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm512_min_epi32(self, o) }
        }
        #[inline(always)]
        unsafe fn max(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm512_max_epi32(self, o) }
        }
        #[inline(always)]
        unsafe fn lt(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe {
                _mm512_maskz_mov_epi32(_mm512_cmplt_epi32_mask(self, o), _mm512_set1_epi32(-1))
            }
        }
        #[inline(always)]
        unsafe fn eq(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe {
                _mm512_maskz_mov_epi32(_mm512_cmpeq_epi32_mask(self, o), _mm512_set1_epi32(-1))
            }
        }
        #[inline(always)]
        unsafe fn select(mask: Self, this: Self, other: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe {
                let k = _mm512_test_epi32_mask(mask, mask);
                _mm512_mask_blend_epi32(k, other, this)
            }
        }
        #[inline(always)]
        unsafe fn gather(mask: Self, at: Self, base: *const i32) -> Self {
            // SAFETY: the caller's: each masked lane's address is readable.
            unsafe {
                let k = _mm512_test_epi32_mask(mask, mask);
                _mm512_mask_i32gather_epi32::<4>(_mm512_setzero_si512(), k, at, base.cast())
            }
        }
        #[inline(always)]
        unsafe fn ror16(self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm512_ror_epi32::<16>(self) }
        }
        #[inline(always)]
        unsafe fn ror12(self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm512_ror_epi32::<12>(self) }
        }
        #[inline(always)]
        unsafe fn ror8(self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm512_ror_epi32::<8>(self) }
        }
        #[inline(always)]
        unsafe fn ror7(self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm512_ror_epi32::<7>(self) }
        }
    }

    impl Lanes for __m256i {
        const N: usize = 8;
        #[inline(always)]
        unsafe fn splat(x: i32) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_set1_epi32(x) }
        }
        #[inline(always)]
        unsafe fn load(a: &[i32; LANES]) -> Self {
            // SAFETY: the first 32 bytes of `a`.
            unsafe { _mm256_loadu_si256(a.as_ptr().cast()) }
        }
        #[inline(always)]
        unsafe fn store(self, a: &mut [i32; LANES]) {
            // SAFETY: the first 32 bytes of `a`.
            unsafe { _mm256_storeu_si256(a.as_mut_ptr().cast(), self) }
        }
        #[inline(always)]
        unsafe fn add(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_add_epi32(self, o) }
        }
        #[inline(always)]
        unsafe fn sub(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_sub_epi32(self, o) }
        }
        #[inline(always)]
        unsafe fn xor(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_xor_si256(self, o) }
        }
        #[inline(always)]
        unsafe fn or(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_or_si256(self, o) }
        }
        #[inline(always)]
        unsafe fn and(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_and_si256(self, o) }
        }
        #[inline(always)]
        unsafe fn min(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_min_epi32(self, o) }
        }
        #[inline(always)]
        unsafe fn max(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_max_epi32(self, o) }
        }
        #[inline(always)]
        unsafe fn lt(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_cmpgt_epi32(o, self) }
        }
        #[inline(always)]
        unsafe fn eq(self, o: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_cmpeq_epi32(self, o) }
        }
        #[inline(always)]
        unsafe fn select(mask: Self, this: Self, other: Self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_blendv_epi8(other, this, mask) }
        }
        #[inline(always)]
        unsafe fn gather(mask: Self, at: Self, base: *const i32) -> Self {
            // SAFETY: the caller's: each masked lane's address is readable.
            unsafe { _mm256_mask_i32gather_epi32::<4>(_mm256_setzero_si256(), base, at, mask) }
        }
        #[inline(always)]
        unsafe fn ror16(self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe {
                let bytes = _mm256_setr_epi8(
                    2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5,
                    10, 11, 8, 9, 14, 15, 12, 13,
                );
                _mm256_shuffle_epi8(self, bytes)
            }
        }
        #[inline(always)]
        unsafe fn ror12(self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_or_si256(_mm256_srli_epi32::<12>(self), _mm256_slli_epi32::<20>(self)) }
        }
        #[inline(always)]
        unsafe fn ror8(self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe {
                let bytes = _mm256_setr_epi8(
                    1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4,
                    9, 10, 11, 8, 13, 14, 15, 12,
                );
                _mm256_shuffle_epi8(self, bytes)
            }
        }
        #[inline(always)]
        unsafe fn ror7(self) -> Self {
            // SAFETY: an intrinsic of the feature this impl names (see `Lanes`).
            unsafe { _mm256_or_si256(_mm256_srli_epi32::<7>(self), _mm256_slli_epi32::<25>(self)) }
        }
    }

    /// The quarter-round on four rows of the state.
    #[inline(always)]
    unsafe fn g<V: Lanes>(s: &mut [V; 16], (a, b, c, d): (usize, usize, usize, usize), x: V, y: V) {
        // SAFETY: register arithmetic, inlined into a kernel compiled for
        // V's feature.
        unsafe {
            s[a] = s[a].add(s[b]).add(x);
            s[d] = s[d].xor(s[a]).ror16();
            s[c] = s[c].add(s[d]);
            s[b] = s[b].xor(s[c]).ror12();
            s[a] = s[a].add(s[b]).add(y);
            s[d] = s[d].xor(s[a]).ror8();
            s[c] = s[c].add(s[d]);
            s[b] = s[b].xor(s[c]).ror7();
        }
    }

    /// Sixteen lanes.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn wide(group: &[Job<'_>], out: &mut [[u8; 32]]) {
        // SAFETY: this function's feature is the kernel's.
        unsafe { compress::<__m512i>(group, out) }
    }

    /// Eight lanes.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn narrow(group: &[Job<'_>], out: &mut [[u8; 32]]) {
        // SAFETY: this function's feature is the kernel's.
        unsafe { compress::<__m256i>(group, out) }
    }

    /// Writes each job's chaining value (its hash for a root job) into
    /// `out`, in order, `V::N` jobs side by side.
    ///
    /// # Safety
    /// Inlined only into a function compiled for V's feature.
    #[inline(always)]
    unsafe fn compress<V: Lanes>(group: &[Job<'_>], out: &mut [[u8; 32]]) {
        assert!(group.len() <= V::N && out.len() >= group.len());
        // Each lane's chunk laid out whole, its last block padded with
        // zeros; what lies past that is never read.
        let mut chunks = MaybeUninit::<[[u8; CHUNK]; LANES]>::uninit();
        let base = chunks.as_mut_ptr().cast::<u8>();
        let [mut lens, mut blocks, mut roots, mut low, mut high, mut used] = [[0i32; LANES]; 6];
        let mut most = 0;
        for (lane, job) in group.iter().enumerate() {
            let len = job.head.len() + job.body.len();
            assert!(len <= CHUNK);
            // An empty input is one block of zeros.
            let padded = len.div_ceil(BLOCK).max(1) * BLOCK;
            // SAFETY: lane < LANES, so this lane's CHUNK bytes lie within
            // `chunks`, and len <= padded <= CHUNK; head and body are
            // other memory. Raw writes: the bytes are not yet initialized,
            // so no slice is made of them; they are written before any
            // read.
            unsafe {
                let chunk = base.add(lane * CHUNK);
                std::ptr::copy_nonoverlapping(job.head.as_ptr(), chunk, job.head.len());
                let body = chunk.add(job.head.len());
                std::ptr::copy_nonoverlapping(job.body.as_ptr(), body, job.body.len());
                std::ptr::write_bytes(chunk.add(len), 0, padded - len);
            }
            lens[lane] = len as i32;
            blocks[lane] = (padded / BLOCK) as i32;
            roots[lane] = if job.root { ROOT } else { 0 };
            low[lane] = job.counter as u32 as i32;
            high[lane] = (job.counter >> 32) as u32 as i32;
            used[lane] = -1;
            most = most.max(padded / BLOCK);
        }
        // Word w of lane l's block b is at i32 index l*256 + b*16 + w.
        let lane_at: [i32; LANES] = std::array::from_fn(|l| (l * CHUNK / 4) as i32);
        // SAFETY (of every `Lanes` call below): inlined into a kernel
        // compiled for V's feature; loads and stores of local arrays.
        unsafe {
            let (lens, blocks, roots, low, high, used, lane_at) = (
                V::load(&lens),
                V::load(&blocks),
                V::load(&roots),
                V::load(&low),
                V::load(&high),
                V::load(&used),
                V::load(&lane_at),
            );
            let mut cv = [V::splat(0); 8];
            for (c, &w) in cv.iter_mut().zip(&IV) {
                *c = V::splat(w as i32);
            }
            for b in 0..most {
                let bv = V::splat(b as i32);
                // The lanes whose chunk has a block b: only they are read,
                // and only their chaining values change.
                let live = bv.lt(blocks).and(used);
                let mut m = [V::splat(0); 16];
                for (w, word) in m.iter_mut().enumerate() {
                    let at = lane_at.add(V::splat((b * 16 + w) as i32));
                    // For a live lane, block b lies within its padded
                    // chunk, written above; other lanes are not read.
                    *word = V::gather(live, at, base.cast_const().cast());
                }
                let left = lens.sub(V::splat((b * BLOCK) as i32));
                let block_len = left.min(V::splat(BLOCK as i32)).max(V::splat(0));
                let last = V::splat(b as i32 + 1).eq(blocks);
                let mut flags = last.and(V::splat(CHUNK_END).or(roots));
                if b == 0 {
                    flags = flags.or(V::splat(CHUNK_START));
                }
                let mut s = [V::splat(0); 16];
                s[..8].copy_from_slice(&cv);
                for (row, &w) in s[8..12].iter_mut().zip(&IV[..4]) {
                    *row = V::splat(w as i32);
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
                    *c = V::select(live, s[i].xor(s[i + 8]), *c);
                }
            }
            let mut words = [[0i32; LANES]; 8];
            for (row, c) in words.iter_mut().zip(&cv) {
                c.store(row);
            }
            for (lane, v) in out.iter_mut().enumerate().take(group.len()) {
                for (i, row) in words.iter().enumerate() {
                    v[i * 4..i * 4 + 4].copy_from_slice(&row[lane].to_le_bytes());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The kernels this machine runs (the crate's always). A machine
    /// without AVX-512 or AVX2 tests fewer and says so; under `CI=true`
    /// that fails instead, so CI never passes without testing a kernel.
    fn kernels() -> Vec<Kernel> {
        let mut k = vec![Kernel::Crate];
        #[cfg(target_arch = "x86_64")]
        for (feature, found, kernel) in [
            (
                "AVX2",
                std::arch::is_x86_feature_detected!("avx2"),
                Kernel::Narrow,
            ),
            (
                "AVX-512F",
                std::arch::is_x86_feature_detected!("avx512f"),
                Kernel::Wide,
            ),
        ] {
            if found {
                k.push(kernel);
            } else if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and no {feature} here: the {kernel:?} kernel cannot be tested");
            } else {
                eprintln!("no {feature} here: the {kernel:?} kernel is not tested");
            }
        }
        k
    }

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
        // And each chunk edge exactly, and one byte either side.
        let edges = (1..=17).flat_map(|k| [k * CHUNK - 10, k * CHUNK - 9, k * CHUNK - 8]);
        let lengths = (0..=3 * CHUNK)
            .chain((3 * CHUNK..=MAX_PAYLOAD + 100).step_by(13))
            .chain(edges);
        let payloads: Vec<Vec<u8>> = lengths.map(|n| payload(n, n as u8)).collect();
        let kinds = [Kind::Blob, Kind::Tree, Kind::Commit];
        let objects: Vec<(Kind, &[u8])> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (kinds[i % 3], &p[..]))
            .collect();
        for kernel in kernels() {
            let mut out = Vec::new();
            ids_with(kernel, &objects, &mut out);
            assert_eq!(out.len(), objects.len());
            for (&(k, p), id) in objects.iter().zip(&out) {
                assert_eq!(
                    *id,
                    ObjectId::compute(k, p),
                    "{kernel:?}, {} bytes",
                    p.len()
                );
            }
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
            let expected: Vec<ObjectId> = objects.iter().map(|&(k, p)| ObjectId::compute(k, p)).collect();
            for kernel in kernels() {
                let mut out = vec![ObjectId::from_bytes([7; 32])];
                ids_with(kernel, &objects, &mut out);
                prop_assert_eq!(&out, &expected, "{:?}", kernel);
            }
        }
    }
}
