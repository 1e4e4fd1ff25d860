//! The AVX-512 kernel for Q4_K quant pairs: a group of 32 pairs is two vectors of sixteen
//! lanes, each with its own context table (the two sub-blocks of the group), so a table gather
//! per vector fetches everything a lane needs in one packed u32.

use std::arch::x86_64::*;

use super::Decoder;
use crate::entropy::packed::{SCALE, T};
use crate::entropy::avx512::renorm;
use crate::entropy::rans::{RansDecoder, LANES, RANS_L};


/// Decodes whole groups of pairs for `blocks` (their quant bytes, 128 per block, and the
/// contexts of their sub-blocks) while the stream holds a full group's words; returns how many
/// groups were done (the caller finishes with the scalar loop).
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL; every context must have a table.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn decode_groups(dec: &Decoder, d: &mut RansDecoder, qs: &mut [&mut [u8]], ctx: &[[u8; 8]]) -> usize {
    let slot_mask = _mm512_set1_epi32(T as i32 - 1);
    let f_mask = _mm512_set1_epi32(0xFFF);
    let one = _mm512_set1_epi32(1);
    let bound = _mm512_set1_epi32(RANS_L as i32);
    let lo4 = _mm512_set1_epi32(0x0F);
    let hi4 = _mm512_set1_epi32(0xF0);
    let mut x =
        [_mm512_loadu_si512(d.states.as_ptr() as *const _), _mm512_loadu_si512(d.states.as_ptr().add(16) as *const _)];
    let table = dec.pairs.as_ptr() as *const i32;
    let mut done = 0;
    'blocks: for (q, c) in qs.iter_mut().zip(ctx) {
        for j in 0..4 {
            if d.words.len() - d.pos < 2 * LANES {
                break 'blocks;
            }
            let mut sym = [_mm512_setzero_si512(); 2];
            let mut xn = [_mm512_setzero_si512(); 2];
            let mut need = [0u16; 2];
            for k in 0..2 {
                let base = table.add(c[2 * j + k] as usize * T);
                let e = _mm512_i32gather_epi32::<4>(_mm512_and_si512(x[k], slot_mask), base);
                let f = _mm512_add_epi32(_mm512_and_si512(e, f_mask), one);
                let bias = _mm512_and_si512(_mm512_srli_epi32::<12>(e), f_mask);
                xn[k] = _mm512_add_epi32(_mm512_mullo_epi32(f, _mm512_srli_epi32::<SCALE>(x[k])), bias);
                need[k] = _mm512_cmplt_epu32_mask(xn[k], bound);
                sym[k] = _mm512_srli_epi32::<24>(e);
            }
            // The loop head checked that a whole group's words remain.
            x = renorm(d, &xn, &need);
            // Pair p of sub-block 2j is quants 2p, 2p+1 in the low nibbles; of 2j+1, in the high.
            let (a, b) = (sym[0], sym[1]);
            let even = _mm512_or_si512(_mm512_and_si512(a, lo4), _mm512_slli_epi32::<4>(_mm512_and_si512(b, lo4)));
            let odd = _mm512_or_si512(_mm512_srli_epi32::<4>(a), _mm512_and_si512(b, hi4));
            let (even, odd) = (_mm512_cvtepi32_epi8(even), _mm512_cvtepi32_epi8(odd));
            let out = q.as_mut_ptr().add(32 * j) as *mut __m128i;
            _mm_storeu_si128(out, _mm_unpacklo_epi8(even, odd));
            _mm_storeu_si128(out.add(1), _mm_unpackhi_epi8(even, odd));
            done += 1;
        }
    }
    _mm512_storeu_si512(d.states.as_mut_ptr() as *mut _, x[0]);
    _mm512_storeu_si512(d.states.as_mut_ptr().add(16) as *mut _, x[1]);
    done
}
