//! The AVX-512 kernel for the block codecs' symbol streams: 32 lanes as two vectors of sixteen,
//! each lane's table given by an offset per symbol (or one offset for the whole stream).

use std::arch::x86_64::*;

use super::SCALE;
use crate::entropy::avx512::renorm;
use crate::entropy::rans::{RansDecoder, LANES, RANS_L};

/// Decodes whole groups of `LANES` symbols into `out` while the stream holds a group's words;
/// symbol i uses the table at `offsets[i]` (or at `base` when `offsets` is None) in `packed`.
/// Returns the symbols done.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL; every offset must leave a whole table inside
/// `packed`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn decode_groups(
    d: &mut RansDecoder,
    packed: &[u32],
    offsets: Option<&[u32]>,
    base: u32,
    out: &mut [u8],
) -> usize {
    let slot_mask = _mm512_set1_epi32((1 << SCALE) - 1);
    let f_mask = _mm512_set1_epi32(0xFFF);
    let one = _mm512_set1_epi32(1);
    let bound = _mm512_set1_epi32(RANS_L as i32);
    let base_v = _mm512_set1_epi32(base as i32);
    let table = packed.as_ptr() as *const i32;
    let mut x =
        [_mm512_loadu_si512(d.states.as_ptr() as *const _), _mm512_loadu_si512(d.states.as_ptr().add(16) as *const _)];
    let mut done = 0;
    for (g, o) in out.chunks_exact_mut(LANES).enumerate() {
        if d.words.len() - d.pos < 2 * LANES {
            break;
        }
        let mut xn = [_mm512_setzero_si512(); 2];
        let mut need = [0u16; 2];
        for k in 0..2 {
            let off = match offsets {
                Some(t) => _mm512_loadu_si512(t.as_ptr().add(g * LANES + 16 * k) as *const _),
                None => base_v,
            };
            let e = _mm512_i32gather_epi32::<4>(_mm512_add_epi32(off, _mm512_and_si512(x[k], slot_mask)), table);
            let f = _mm512_add_epi32(_mm512_and_si512(e, f_mask), one);
            let bias = _mm512_and_si512(_mm512_srli_epi32::<12>(e), f_mask);
            xn[k] = _mm512_add_epi32(_mm512_mullo_epi32(f, _mm512_srli_epi32::<SCALE>(x[k])), bias);
            need[k] = _mm512_cmplt_epu32_mask(xn[k], bound);
            _mm_storeu_si128(
                o.as_mut_ptr().add(16 * k) as *mut __m128i,
                _mm512_cvtepi32_epi8(_mm512_srli_epi32::<24>(e)),
            );
        }
        // The loop head checked that a whole group's words remain.
        x = renorm(d, &xn, &need);
        done += LANES;
    }
    _mm512_storeu_si512(d.states.as_mut_ptr() as *mut _, x[0]);
    _mm512_storeu_si512(d.states.as_mut_ptr().add(16) as *mut _, x[1]);
    done
}
