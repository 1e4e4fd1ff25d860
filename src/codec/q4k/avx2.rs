//! The AVX2 kernel for Q4_K quant pairs: a group of 32 pairs is four vectors of eight lanes;
//! vectors 0-1 use the context table of sub-block 2j, vectors 2-3 that of sub-block 2j+1.

use std::arch::x86_64::*;

use super::{ChunkDecode, BLOCK};
use crate::entropy::avx2::renorm_at;
use crate::entropy::gather::{self, Gather, Hardware, Loads, Mode};
use crate::entropy::packed::with_scale;
use crate::entropy::rans::LANES;

/// A chunk's lane states and stream position in registers (through a reference they would be
/// reloaded at every group).
struct Lanes {
    x: [__m256i; 4],
    words: *const u8,
    end: usize,
    pos: usize,
}

#[target_feature(enable = "avx2,popcnt")]
unsafe fn load(c: &ChunkDecode) -> Lanes {
    let mut x = [_mm256_setzero_si256(); 4];
    for (k, xk) in x.iter_mut().enumerate() {
        *xk = _mm256_loadu_si256(c.d.states.as_ptr().add(8 * k) as *const __m256i);
    }
    Lanes { x, words: c.d.words.as_ptr(), end: c.d.words.len(), pos: c.d.pos }
}

#[target_feature(enable = "avx2,popcnt")]
unsafe fn store(c: &mut ChunkDecode, l: &Lanes) {
    c.d.pos = l.pos;
    for (k, xk) in l.x.iter().enumerate() {
        _mm256_storeu_si256(c.d.states.as_mut_ptr().add(8 * k) as *mut __m256i, *xk);
    }
}

/// As in the AVX-512 kernel.
#[inline(always)]
fn can_step(c: &ChunkDecode, l: &Lanes) -> bool {
    c.groups_done < 4 * c.ctx.len() && l.end - l.pos >= 2 * LANES
}

/// Decodes the chunk's next group of 32 pairs with tables of scale `S` (the chunk's). The caller
/// has checked `can_step`.
#[inline(always)]
unsafe fn step<G: Gather, const S: i32>(c: &mut ChunkDecode, l: &mut Lanes) {
    let slot_mask = _mm256_set1_epi32((1 << S) - 1);
    let f_mask = _mm256_set1_epi32(0xFFF);
    let one = _mm256_set1_epi32(1);
    let lo4 = _mm256_set1_epi32(0x0F);
    let hi4 = _mm256_set1_epi32(0xF0);
    let (bi, j) = (c.groups_done / 4, c.groups_done % 4);
    let ctx = c.ctx.get_unchecked(bi);
    let table = c.dec.pairs.as_ptr() as *const i32;
    let mut sym = [_mm256_setzero_si256(); 4];
    let mut xn = [_mm256_setzero_si256(); 4];
    for k in 0..4 {
        let base = table.add((ctx[2 * j + k / 2] as usize) << S);
        let e = G::g32(base, _mm256_and_si256(l.x[k], slot_mask));
        let f = _mm256_add_epi32(_mm256_and_si256(e, f_mask), one);
        let bias = _mm256_and_si256(_mm256_srli_epi32::<12>(e), f_mask);
        xn[k] = _mm256_add_epi32(_mm256_mullo_epi32(f, _mm256_srli_epi32::<S>(l.x[k])), bias);
        sym[k] = _mm256_srli_epi32::<24>(e);
    }
    l.x = renorm_at(l.words, &mut l.pos, &xn);
    // Pairs 0..16 of sub-block 2j are in sym[0..2], of 2j+1 in sym[2..4].
    let out = c.dst.as_mut_ptr().add(bi * BLOCK + 16 + 32 * j);
    for h in 0..2 {
        let (a, b) = (sym[h], sym[2 + h]);
        let even = _mm256_or_si256(_mm256_and_si256(a, lo4), _mm256_slli_epi32::<4>(_mm256_and_si256(b, lo4)));
        let odd = _mm256_or_si256(_mm256_srli_epi32::<4>(a), _mm256_and_si256(b, hi4));
        // Interleave to bytes e0 o0 e1 o1 ...: as u16 lanes (e | o << 8), then pack.
        let w = _mm256_or_si256(even, _mm256_slli_epi32::<8>(odd));
        let packed = _mm256_packus_epi32(w, w); // 16-bit words, per 128-bit half
        let packed = _mm256_permute4x64_epi64::<0x08>(packed); // halves' low quadwords together
        _mm_storeu_si128(out.add(16 * h) as *mut __m128i, _mm256_castsi256_si128(packed));
    }
    c.groups_done += 1;
}

/// Decodes the whole groups the fast path allows, advancing `c.groups_done`.
///
/// # Safety
/// The CPU must support AVX2 and POPCNT; every context must have a table.
pub unsafe fn decode_groups(c: &mut ChunkDecode) {
    match gather::mode() {
        Mode::Hardware => with_scale!(c.dec.scale, groups::<Hardware>(c)),
        Mode::Loads => with_scale!(c.dec.scale, groups::<Loads>(c)),
    }
}

#[target_feature(enable = "avx2,popcnt")]
unsafe fn groups<G: Gather, const S: i32>(c: &mut ChunkDecode) {
    debug_assert_eq!(c.dec.scale as i32, S);
    let mut l = load(c);
    while can_step(c, &l) {
        step::<G, S>(c, &mut l);
    }
    store(c, &l);
}

/// `decode_groups` for two chunks, a group of each in turn while both can go on: two chains of
/// gathers to overlap. Their states do not all fit in sixteen registers; the spills cost less
/// than the gather latency the second chain hides.
///
/// # Safety
/// As `decode_groups`, for both chunks.
pub unsafe fn decode_pair(a: &mut ChunkDecode, b: &mut ChunkDecode) {
    if a.dec.scale == b.dec.scale {
        match gather::mode() {
            Mode::Hardware => with_scale!(a.dec.scale, pair::<Hardware>(a, b)),
            Mode::Loads => with_scale!(a.dec.scale, pair::<Loads>(a, b)),
        }
    } else {
        decode_groups(a);
        decode_groups(b);
    }
}

#[target_feature(enable = "avx2,popcnt")]
unsafe fn pair<G: Gather, const S: i32>(a: &mut ChunkDecode, b: &mut ChunkDecode) {
    let (mut la, mut lb) = (load(a), load(b));
    while can_step(a, &la) && can_step(b, &lb) {
        step::<G, S>(a, &mut la);
        step::<G, S>(b, &mut lb);
    }
    while can_step(a, &la) {
        step::<G, S>(a, &mut la);
    }
    while can_step(b, &lb) {
        step::<G, S>(b, &mut lb);
    }
    store(a, &la);
    store(b, &lb);
}

/// `contexts` for one block with eight-lane float arithmetic: the same IEEE operations in the
/// same order (dmin·m, d·sc, their quotient, + 0.5), each correctly rounded in both, so the
/// contexts are bit-for-bit those of the scalar function, which the encoder uses.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn contexts(d: f32, dmin: f32, sc: &[u8; 8], m: &[u8; 8]) -> [u8; 8] {
    zero_points(d, dmin, sc, m, super::CONTEXTS)
}

/// `zero_point` (clamped below `contexts`) of eight sub-blocks: `contexts` for any k-quant with
/// mins (Q5_K's layout uses it too).
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2,popcnt")]
pub(crate) unsafe fn zero_points(d: f32, dmin: f32, sc: &[u8; 8], m: &[u8; 8], contexts: usize) -> [u8; 8] {
    let to_ps = |b: &[u8; 8]| _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(b.as_ptr() as *const __m128i)));
    let num = _mm256_mul_ps(_mm256_set1_ps(dmin), to_ps(m));
    let den = _mm256_mul_ps(_mm256_set1_ps(d), to_ps(sc));
    let z = _mm256_div_ps(num, den);
    // Finite and not negative (NaN fails both comparisons): otherwise context 0.
    let ok = _mm256_and_ps(
        _mm256_cmp_ps::<_CMP_GE_OQ>(z, _mm256_setzero_ps()),
        _mm256_cmp_ps::<_CMP_LT_OQ>(z, _mm256_set1_ps(f32::INFINITY)),
    );
    // min before truncating equals truncating before min (the scalar code) for z >= 0.
    let t = _mm256_min_ps(_mm256_add_ps(z, _mm256_set1_ps(0.5)), _mm256_set1_ps((contexts - 1) as f32));
    let i = _mm256_and_si256(_mm256_cvttps_epi32(t), _mm256_castps_si256(ok));
    let mut out = [0i32; 8];
    _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, i);
    out.map(|v| v as u8)
}
