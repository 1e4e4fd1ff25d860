//! The AVX2 renormalisation step shared by the decode kernels: 32 lanes as four vectors of eight.

use std::arch::x86_64::*;

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
