//! The AVX-512 renormalisation step shared by the decode kernels: 32 lanes as two vectors of
//! sixteen.

use std::arch::x86_64::*;

use super::rans::{RansDecoder, LANES};

/// Renormalises the new states `xn` of all 32 lanes: lanes in `need` take the next words of the
/// stream in lane order (`expand` places consecutive words into exactly those lanes). The second
/// vector's offset is a prefix sum of the first's count, so the two loads do not wait on each
/// other.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL, and `d.words_left() >= LANES`: the loads then stay
/// in bounds (the second 32-byte load starts at most 32 bytes in).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn renorm(d: &mut RansDecoder, xn: &[__m512i; 2], need: &[u16; 2]) -> [__m512i; 2] {
    debug_assert!(d.words_left() >= LANES);
    let mut x = *xn;
    let mut at = d.pos;
    for k in 0..2 {
        let w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(d.words.as_ptr().add(at) as *const __m256i));
        x[k] =
            _mm512_mask_or_epi32(xn[k], need[k], _mm512_slli_epi32::<16>(xn[k]), _mm512_maskz_expand_epi32(need[k], w));
        at += 2 * need[k].count_ones() as usize;
    }
    d.pos = at;
    x
}
