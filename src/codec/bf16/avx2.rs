//! The AVX2 decode kernel: the 32 lanes as four vectors of eight, with one table gather per
//! vector for frequency and bias and one for the output bits.

use std::arch::x86_64::*;

use super::{patch_escapes, ChunkDecode, ESC_MARK, SCALE};
use crate::entropy::avx2::renorm;
use crate::entropy::rans::LANES;
use crate::error::Result;

const V: usize = LANES / 8;
const SCALE_I: i32 = SCALE as i32;

/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn decode_groups(c: &mut ChunkDecode) -> Result<()> {
    let groups = c.fast_groups();
    let (nib, table) = (c.nib, c.dec.entries.as_ptr() as *const i64);
    // Gathered u64 entries of lanes 0..4 and 4..8 -> low halves (frequency and bias) and high
    // halves (output bits), each as eight u32 in lane order.
    let evens = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    let slot_mask = _mm256_set1_epi32((1 << SCALE) - 1);
    let lo16 = _mm256_set1_epi32(0xFFFF);
    let shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    let nib_mask = _mm256_set1_epi32(0xF);
    let seven = _mm256_set1_epi32(7);
    let eight = _mm256_set1_epi32(8);
    let one = _mm256_set1_epi32(ESC_MARK as i32);
    let mut x = [_mm256_setzero_si256(); V];
    for (k, xk) in x.iter_mut().enumerate() {
        *xk = _mm256_loadu_si256(c.d.states.as_ptr().add(8 * k) as *const __m256i);
    }
    let mut g = c.done / LANES;
    let mut result = Ok(());
    while g < groups && c.d.words.len() - c.d.pos >= 2 * LANES {
        let mut out = [_mm256_setzero_si256(); V];
        let mut escaped = 0u64; // bit i: lane i of the group decoded `ESC`
        let nb = &nib[g * LANES / 2..(g + 1) * LANES / 2];
        // Phase 1: the rANS step of all four vectors, independent of each other.
        let mut xn = [_mm256_setzero_si256(); V];
        for k in 0..V {
            let slot = _mm256_and_si256(x[k], slot_mask);
            let e0 = _mm256_i32gather_epi64::<8>(table, _mm256_castsi256_si128(slot));
            let e1 = _mm256_i32gather_epi64::<8>(table, _mm256_extracti128_si256::<1>(slot));
            // Per 128-bit half, put the low dwords first: [l0 l1 h0 h1 | l2 l3 h2 h3] -> then
            // unpack the 64-bit halves of e0 and e1 into lows and highs.
            let p0 = _mm256_permutevar8x32_epi32(e0, evens); // l0 l1 l2 l3 h0 h1 h2 h3
            let p1 = _mm256_permutevar8x32_epi32(e1, evens); // l4 .. l7 h4 .. h7
            let e = _mm256_permute2x128_si256::<0x20>(p0, p1);
            let v = _mm256_permute2x128_si256::<0x31>(p0, p1);
            let xs = _mm256_srli_epi32::<SCALE_I>(x[k]);
            xn[k] = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_and_si256(e, lo16), xs), _mm256_srli_epi32::<16>(e));
            // Output word: symbol bits | sign from nibble bit 3 | low mantissa from bits 0..3.
            let nbits = u32::from_le_bytes([nb[4 * k], nb[4 * k + 1], nb[4 * k + 2], nb[4 * k + 3]]);
            let nv = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(nbits as i32), shifts), nib_mask);
            let sign = _mm256_slli_epi32::<12>(_mm256_and_si256(nv, eight));
            let v = _mm256_and_si256(v, lo16);
            let is_esc = _mm256_cmpeq_epi32(_mm256_and_si256(v, one), one);
            escaped |= (_mm256_movemask_ps(_mm256_castsi256_ps(is_esc)) as u64) << (8 * k);
            out[k] = _mm256_or_si256(_mm256_or_si256(v, sign), _mm256_and_si256(nv, seven));
        }
        // Phase 2: renormalise (the loop condition left a whole group's words).
        x = renorm(&mut c.d, &xn);
        let p = c.dst.as_mut_ptr().add(g * 2 * LANES) as *mut __m256i;
        for h in 0..V / 2 {
            // packus interleaves 128-bit halves; permute4x64 puts the 16 values back in order.
            let packed = _mm256_permute4x64_epi64::<0xD8>(_mm256_packus_epi32(out[2 * h], out[2 * h + 1]));
            _mm256_storeu_si256(p.add(h), packed);
        }
        if escaped != 0 {
            result = patch_escapes(escaped, g, c);
            if result.is_err() {
                break;
            }
        }
        g += 1;
    }
    for (k, xk) in x.iter().enumerate() {
        _mm256_storeu_si256(c.d.states.as_mut_ptr().add(8 * k) as *mut __m256i, *xk);
    }
    c.done = g * LANES;
    result
}
