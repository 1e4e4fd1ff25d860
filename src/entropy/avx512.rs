//! The AVX-512 renormalisation step shared by the decode kernels: 32 lanes as two vectors of
//! sixteen.

use std::arch::x86_64::*;

use super::packed::{PackedPart, Tables, SCALE};
use super::rans::{RansDecoder, LANES, RANS_L};

/// Renormalises the new states `xn` of all 32 lanes: lanes in `need` take the next words of the
/// stream in lane order (`expand` places consecutive words into exactly those lanes). The second
/// vector's offset is a prefix sum of the first's count, so the two loads do not wait on each
/// other.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL, and `d.words_left() >= LANES`: the loads then stay
/// in bounds (the second 32-byte load starts at most 32 bytes in).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
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

/// The offsets of group `g`'s sixteen lanes `16k..16k + 16` (`k` 0 or 1).
#[inline(always)]
unsafe fn group_offsets(tables: Tables, g: usize, k: usize) -> __m512i {
    match tables {
        Tables::One(b) => _mm512_set1_epi32(b as i32),
        Tables::Periodic(o) => _mm512_loadu_si512(o.as_ptr().add((g * LANES) % o.len() + 16 * k) as *const _),
        Tables::Each(o) => _mm512_loadu_si512(o.as_ptr().add(g * LANES + 16 * k) as *const _),
    }
}

/// Whether the part's next group can take the fast path: a whole group of symbols is left and a
/// whole group's words remain (so the loads in `renorm` stay in bounds).
#[inline(always)]
fn can_step(p: &PackedPart) -> bool {
    p.done + LANES <= p.out.len() && p.d.words.len() - p.d.pos >= 2 * LANES
}

/// Decodes the part's next group. The caller has checked `can_step`.
#[inline(always)]
unsafe fn step(p: &mut PackedPart, x: &mut [__m512i; 2]) {
    let slot_mask = _mm512_set1_epi32((1 << SCALE) - 1);
    let f_mask = _mm512_set1_epi32(0xFFF);
    let one = _mm512_set1_epi32(1);
    let bound = _mm512_set1_epi32(RANS_L as i32);
    let table = p.packed.as_ptr() as *const i32;
    let g = p.done / LANES;
    let o = p.out.as_mut_ptr().add(p.done);
    let mut xn = [_mm512_setzero_si512(); 2];
    let mut need = [0u16; 2];
    for k in 0..2 {
        let off = group_offsets(p.tables, g, k);
        let e = _mm512_i32gather_epi32::<4>(_mm512_add_epi32(off, _mm512_and_si512(x[k], slot_mask)), table);
        let f = _mm512_add_epi32(_mm512_and_si512(e, f_mask), one);
        let bias = _mm512_and_si512(_mm512_srli_epi32::<12>(e), f_mask);
        xn[k] = _mm512_add_epi32(_mm512_mullo_epi32(f, _mm512_srli_epi32::<SCALE>(x[k])), bias);
        need[k] = _mm512_cmplt_epu32_mask(xn[k], bound);
        _mm_storeu_si128(o.add(16 * k) as *mut __m128i, _mm512_cvtepi32_epi8(_mm512_srli_epi32::<24>(e)));
    }
    *x = renorm(p.d, &xn, &need);
    p.done += LANES;
}

#[inline(always)]
unsafe fn load(p: &PackedPart) -> [__m512i; 2] {
    let s = p.d.states.as_ptr();
    [_mm512_loadu_si512(s as *const _), _mm512_loadu_si512(s.add(16) as *const _)]
}

#[inline(always)]
unsafe fn store(p: &mut PackedPart, x: &[__m512i; 2]) {
    let s = p.d.states.as_mut_ptr();
    _mm512_storeu_si512(s as *mut _, x[0]);
    _mm512_storeu_si512(s.add(16) as *mut _, x[1]);
}

/// Decodes whole groups of `LANES` byte symbols with packed tables (see
/// `packed::decode_stream`) while the stream holds a group's words, advancing `p.done`.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL; every offset must leave a whole table inside
/// `p.packed`, and `Tables::Each` must hold an offset for every symbol of `p.out`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn decode_packed(p: &mut PackedPart) {
    let mut x = load(p);
    while can_step(p) {
        step(p, &mut x);
    }
    store(p, &x);
}

/// `decode_packed` for two independent streams, a group of each in turn while both can go on:
/// two chains of gathers for the core to overlap.
///
/// # Safety
/// As `decode_packed`, for both.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn decode_packed_pair(a: &mut PackedPart, b: &mut PackedPart) {
    let (mut xa, mut xb) = (load(a), load(b));
    while can_step(a) && can_step(b) {
        step(a, &mut xa);
        step(b, &mut xb);
    }
    while can_step(a) {
        step(a, &mut xa);
    }
    while can_step(b) {
        step(b, &mut xb);
    }
    store(a, &xa);
    store(b, &xb);
}
