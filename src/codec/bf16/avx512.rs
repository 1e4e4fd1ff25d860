//! The AVX-512 decode kernel: the 32 lanes as two vectors of sixteen. Mask registers replace
//! the AVX2 kernel's movemask and permutation table: `expand` places the next words of the stream
//! into exactly the lanes that need them, in lane order.

use std::arch::x86_64::*;

use super::{patch_escapes, Decoder, Escapes, ESC_MARK, SCALE};
use crate::entropy::rans::{RansDecoder, LANES, RANS_L};
use crate::error::Result;

const V: usize = LANES / 16;
const SCALE_U: u32 = SCALE;

/// # Safety
/// The CPU must support AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn decode_groups(
    dec: &Decoder,
    d: &mut RansDecoder,
    esc: &mut Escapes,
    nib: &[u8],
    dst: &mut [u8],
) -> Result<usize> {
    let groups = (dst.len() / 2 / LANES).min(nib.len() / (LANES / 2));
    let table = dec.entries.as_ptr() as *const i64;
    // Gathered u64 entries of lanes 0..8 and 8..16 -> their low halves (frequency and bias) and
    // high halves (output bits) as two vectors of sixteen u32.
    let lows = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let highs = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let slot_mask = _mm512_set1_epi32((1 << SCALE) - 1);
    let lo16 = _mm512_set1_epi32(0xFFFF);
    let bound = _mm512_set1_epi32(RANS_L as i32);
    // Byte j of the nibbles holds values 2j (low nibble) and 2j+1 (high nibble).
    let nib_shift = _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
    let nib_mask = _mm512_set1_epi32(0xF);
    let seven = _mm512_set1_epi32(7);
    let eight = _mm512_set1_epi32(8);
    let one = _mm512_set1_epi32(ESC_MARK as i32);
    let mut x = [_mm512_setzero_si512(); V];
    for (k, xk) in x.iter_mut().enumerate() {
        *xk = _mm512_loadu_si512(d.states.as_ptr().add(16 * k) as *const _);
    }
    let mut g = 0;
    let mut result = Ok(());
    while g < groups && d.words.len() - d.pos >= 2 * LANES {
        let nb = nib.as_ptr().add(g * LANES / 2);
        let mut escaped = 0u64;
        let mut xn = [_mm512_setzero_si512(); V];
        let mut need = [0u16; V];
        for k in 0..V {
            let slot = _mm512_and_si512(x[k], slot_mask);
            let e0 = _mm512_i32gather_epi64::<8>(_mm512_castsi512_si256(slot), table);
            let e1 = _mm512_i32gather_epi64::<8>(_mm512_extracti64x4_epi64::<1>(slot), table);
            let e = _mm512_permutex2var_epi32(e0, lows, e1);
            let v = _mm512_permutex2var_epi32(e0, highs, e1);
            let xs = _mm512_srli_epi32::<SCALE_U>(x[k]);
            xn[k] = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_and_si512(e, lo16), xs), _mm512_srli_epi32::<16>(e));
            need[k] = _mm512_cmplt_epu32_mask(xn[k], bound);
            // Nibbles: 8 bytes -> each byte twice -> 16 lanes -> shift the high nibbles down.
            let b = _mm_loadl_epi64(nb.add(8 * k) as *const __m128i);
            let nv =
                _mm512_and_si512(_mm512_srlv_epi32(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(b, b)), nib_shift), nib_mask);
            let sign = _mm512_slli_epi32::<12>(_mm512_and_si512(nv, eight));
            let v = _mm512_and_si512(v, lo16);
            escaped |= (_mm512_test_epi32_mask(v, one) as u64) << (16 * k);
            let out = _mm512_or_si512(_mm512_or_si512(v, sign), _mm512_and_si512(nv, seven));
            _mm256_storeu_si256(
                dst.as_mut_ptr().add(g * 2 * LANES + 32 * k) as *mut __m256i,
                _mm512_cvtepi32_epi16(out),
            );
        }
        // Renormalise; as in the AVX2 kernel, offsets are prefix sums so loads run in parallel.
        // In bounds: at least 2 * LANES bytes remain and the second 32-byte load starts at most
        // 32 bytes in.
        let mut at = d.pos;
        for k in 0..V {
            let w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(d.words.as_ptr().add(at) as *const __m256i));
            let w = _mm512_maskz_expand_epi32(need[k], w);
            x[k] = _mm512_mask_or_epi32(xn[k], need[k], _mm512_slli_epi32::<16>(xn[k]), w);
            at += 2 * need[k].count_ones() as usize;
        }
        d.pos = at;
        if escaped != 0 {
            result = patch_escapes(escaped, g, esc, nib, dst);
            if result.is_err() {
                break;
            }
        }
        g += 1;
    }
    for (k, xk) in x.iter().enumerate() {
        _mm512_storeu_si512(d.states.as_mut_ptr().add(16 * k) as *mut _, *xk);
    }
    result.map(|()| g * LANES)
}
