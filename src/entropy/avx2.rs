//! The AVX2 renormalisation step shared by the decode kernels: 32 lanes as four vectors of eight.

use std::arch::x86_64::*;

use super::packed::{PackedPart, Tables, SCALE};
use super::rans::{RansDecoder, LANES, RANS_L};

/// For each 8-bit mask of the lanes that need a word, the index of the word each lane takes.
/// Lane i takes word popcount(mask & ((1 << i) - 1)), so the set lanes take the next words in
/// lane order, exactly as the scalar decoder reads them.
static RENORM_PERM8: [[u32; 8]; 256] = {
    let mut t = [[0u32; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut i, mut k) = (0, 0);
        while i < 8 {
            if m & (1 << i) != 0 {
                t[m][i] = k;
                k += 1;
            }
            i += 1;
        }
        m += 1;
    }
    t
};

/// Renormalises the new states `xn` of all 32 lanes: lanes below `RANS_L` take the next words of
/// the stream in lane order. Each vector's offset is a prefix sum of the earlier vectors' counts,
/// so the four loads do not wait on each other.
///
/// # Safety
/// The CPU must support AVX2, and `d.words_left() >= LANES`: the loads then stay in bounds (a
/// vector's 16-byte load starts at most 48 bytes in).
#[inline]
#[target_feature(enable = "avx2")]
pub unsafe fn renorm(d: &mut RansDecoder, xn: &[__m256i; 4]) -> [__m256i; 4] {
    debug_assert!(d.words_left() >= LANES);
    // x < RANS_L as unsigned, computed with a signed compare on sign-flipped values.
    let flip = _mm256_set1_epi32(i32::MIN);
    let bound = _mm256_set1_epi32((RANS_L as i32) ^ i32::MIN);
    let mut x = *xn;
    let mut at = d.pos;
    for k in 0..4 {
        let need = _mm256_cmpgt_epi32(bound, _mm256_xor_si256(xn[k], flip));
        let mask = _mm256_movemask_ps(_mm256_castsi256_ps(need)) as usize;
        let w = _mm256_cvtepu16_epi32(_mm_loadu_si128(d.words.as_ptr().add(at) as *const __m128i));
        let w = _mm256_permutevar8x32_epi32(w, _mm256_loadu_si256(RENORM_PERM8[mask].as_ptr() as *const __m256i));
        x[k] = _mm256_blendv_epi8(xn[k], _mm256_or_si256(_mm256_slli_epi32::<16>(xn[k]), w), need);
        at += 2 * mask.count_ones() as usize;
    }
    d.pos = at;
    x
}

/// The offsets of group `g`'s eight lanes `8k..8k + 8` (`k` 0 to 3).
#[inline(always)]
unsafe fn group_offsets(tables: Tables, g: usize, k: usize) -> __m256i {
    match tables {
        Tables::One(b) => _mm256_set1_epi32(b as i32),
        Tables::Periodic(o) => _mm256_loadu_si256(o.as_ptr().add((g * LANES) % o.len() + 8 * k) as *const __m256i),
        Tables::Each(o) => _mm256_loadu_si256(o.as_ptr().add(g * LANES + 8 * k) as *const __m256i),
    }
}

/// `avx512::decode_packed` with four vectors of eight lanes, advancing `p.done`.
///
/// # Safety
/// The CPU must support AVX2; every offset must leave a whole table inside `p.packed`, and
/// `Tables::Each` must hold an offset for every symbol of `p.out`.
#[target_feature(enable = "avx2")]
pub unsafe fn decode_packed(p: &mut PackedPart) {
    let (d, tables) = (&mut *p.d, p.tables);
    let packed = p.packed;
    let g0 = p.done / LANES;
    let out = &mut p.out[p.done..];
    let slot_mask = _mm256_set1_epi32((1 << SCALE) - 1);
    let f_mask = _mm256_set1_epi32(0xFFF);
    let one = _mm256_set1_epi32(1);
    let table = packed.as_ptr() as *const i32;
    // Bytes 0, 4, 8, 12 of each 128-bit half: the symbol byte of each lane after the shift.
    let pick = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1,
    );
    let mut x = [_mm256_setzero_si256(); 4];
    for (k, xk) in x.iter_mut().enumerate() {
        *xk = _mm256_loadu_si256(d.states.as_ptr().add(8 * k) as *const __m256i);
    }
    let mut done = 0;
    for (g, o) in out.chunks_exact_mut(LANES).enumerate() {
        if d.words.len() - d.pos < 2 * LANES {
            break;
        }
        let mut xn = [_mm256_setzero_si256(); 4];
        for k in 0..4 {
            let off = group_offsets(tables, g0 + g, k);
            let e = _mm256_i32gather_epi32::<4>(table, _mm256_add_epi32(off, _mm256_and_si256(x[k], slot_mask)));
            let f = _mm256_add_epi32(_mm256_and_si256(e, f_mask), one);
            let bias = _mm256_and_si256(_mm256_srli_epi32::<12>(e), f_mask);
            xn[k] = _mm256_add_epi32(_mm256_mullo_epi32(f, _mm256_srli_epi32::<{ SCALE as i32 }>(x[k])), bias);
            // The eight symbol bytes: one shuffle per half, then the halves' low dwords.
            let b = _mm256_shuffle_epi8(_mm256_srli_epi32::<24>(e), pick);
            let lo = _mm256_cvtsi256_si32(b) as u32;
            let hi = _mm256_extract_epi32::<4>(b) as u32;
            let w = (lo as u64) | (hi as u64) << 32;
            std::ptr::write_unaligned(o.as_mut_ptr().add(8 * k) as *mut u64, w.to_le());
        }
        // The loop head checked that a whole group's words remain.
        x = renorm(d, &xn);
        done += LANES;
    }
    for (k, xk) in x.iter().enumerate() {
        _mm256_storeu_si256(d.states.as_mut_ptr().add(8 * k) as *mut __m256i, *xk);
    }
    p.done += done;
}
