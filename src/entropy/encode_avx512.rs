//! The rANS encoding step of a whole group of `LANES` symbols at once, with AVX-512: the encoder
//! side of the interleaving the decoders use. Same output as `RansEncoder::put` called for lanes
//! `LANES - 1` down to 0, which is the order a scalar encoder walks a group in (symbols are coded
//! last to first).
//!
//! The scalar step divides by the symbol's frequency with a 64x64-bit multiply (there is no
//! vector form of it); here the quotient comes from double precision: `x * (1 / f)` for a 32-bit
//! `x` is below the true `x / f` by less than 2^-20, while a quotient that is not an integer is at
//! least 1/f >= 2^-15 below the next integer, so truncating gives the exact quotient or, when
//! `x / f` is an integer, one less; one compare corrects that case.

use std::arch::x86_64::*;

use super::rans::{EncTable, RansEncoder, LANES};

/// An encoding table in the form the vector step gathers from: per symbol `freq | cum << 16`, and
/// `1 / freq` (0 for symbols the table does not code).
pub struct VecEncTable {
    packed: Vec<u32>,
    inv: Vec<f64>,
    scale: u32,
}

impl VecEncTable {
    pub fn new(t: &EncTable) -> VecEncTable {
        debug_assert!(t.scale <= 16);
        VecEncTable {
            packed: t.syms.iter().map(|s| s.freq | s.cum << 16).collect(),
            inv: t.syms.iter().map(|s| if s.freq == 0 { 0.0 } else { 1.0 / s.freq as f64 }).collect(),
            scale: t.scale,
        }
    }
}

/// Encodes one group: `syms` holds the symbols of lanes 0..16 and 16..32 (each below the table's
/// symbol count). Returns false, changing nothing, when a symbol has frequency 0 (an escape:
/// the caller codes that group with the scalar step).
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL; `e` must have room for `LANES` more words than it
/// has used (`RansEncoder` keeps that slack).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn put_group(e: &mut RansEncoder, t: &VecEncTable, syms: [__m512i; 2]) -> bool {
    debug_assert!(e.room() >= LANES);
    let lo16 = _mm512_set1_epi32(0xFFFF);
    let zero = _mm512_setzero_si512();
    let reverse = _mm512_setr_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    let scale = _mm_cvtsi32_si128(t.scale as i32);
    let rscale = _mm_cvtsi32_si128(32 - t.scale as i32);
    let mut fc = [zero; 2];
    for k in 0..2 {
        fc[k] = _mm512_i32gather_epi32::<4>(syms[k], t.packed.as_ptr() as *const i32);
        if _mm512_cmpeq_epi32_mask(_mm512_and_si512(fc[k], lo16), zero) != 0 {
            return false;
        }
    }
    let states = e.states_mut().as_mut_ptr();
    // Lanes 16..32 first: the scalar encoder walks a group from its last lane down.
    for k in [1, 0] {
        let x = _mm512_loadu_si512(states.add(16 * k) as *const _);
        let f = _mm512_and_si512(fc[k], lo16);
        let cum = _mm512_srli_epi32::<16>(fc[k]);
        // x >= f << (32 - scale), as the scalar step's 64-bit compare.
        let need = _mm512_cmpge_epu32_mask(_mm512_srl_epi32(x, rscale), f);
        // The low words of the shrinking lanes, highest lane first.
        let need_rev = (need as u16).reverse_bits();
        let words = _mm512_maskz_compress_epi32(need_rev, _mm512_permutexvar_epi32(reverse, x));
        _mm256_storeu_si256(e.next_words() as *mut __m256i, _mm512_cvtepi32_epi16(words));
        e.keep_words(need.count_ones() as usize);
        let x = _mm512_mask_srli_epi32(x, need, x, 16);
        // q = x / f: see the module comment.
        let xl = _mm512_cvtepu32_pd(_mm512_castsi512_si256(x));
        let xh = _mm512_cvtepu32_pd(_mm512_extracti64x4_epi64::<1>(x));
        let il = _mm512_i32gather_pd::<8>(_mm512_castsi512_si256(syms[k]), t.inv.as_ptr());
        let ih = _mm512_i32gather_pd::<8>(_mm512_extracti64x4_epi64::<1>(syms[k]), t.inv.as_ptr());
        let ql = _mm512_cvttpd_epu32(_mm512_mul_pd(xl, il));
        let qh = _mm512_cvttpd_epu32(_mm512_mul_pd(xh, ih));
        let mut q = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(ql), qh);
        let mut r = _mm512_sub_epi32(x, _mm512_mullo_epi32(q, f));
        let low = _mm512_cmpge_epu32_mask(r, f);
        q = _mm512_mask_add_epi32(q, low, q, _mm512_set1_epi32(1));
        r = _mm512_mask_sub_epi32(r, low, r, f);
        let xn = _mm512_add_epi32(_mm512_add_epi32(_mm512_sll_epi32(q, scale), r), cum);
        _mm512_storeu_si512(states.add(16 * k) as *mut _, xn);
    }
    true
}
