//! The AVX-512 kernel for Q4_K quant pairs: a group of 32 pairs is two vectors of sixteen
//! lanes, each with its own context table (the two sub-blocks of the group), so a table gather
//! per vector fetches everything a lane needs in one packed u32.
//!
//! A lane's decode is a chain through its gather, so one chunk keeps the core waiting; two
//! chunks' groups interleaved (`decode_pair`) give it two independent chains to overlap.

use std::arch::x86_64::*;

use super::{ChunkDecode, BLOCK};
use crate::entropy::packed::with_scale;
use crate::entropy::avx512::renorm_at;
use crate::entropy::rans::{LANES, RANS_L};

/// A chunk's lane states and stream position in registers (through `c.d` the position would be
/// reloaded at every group).
struct Lanes {
    x: [__m512i; 2],
    words: *const u8,
    end: usize,
    pos: usize,
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
unsafe fn load(c: &ChunkDecode) -> Lanes {
    let s = c.d.states.as_ptr();
    Lanes {
        x: [_mm512_loadu_si512(s as *const _), _mm512_loadu_si512(s.add(16) as *const _)],
        words: c.d.words.as_ptr(),
        end: c.d.words.len(),
        pos: c.d.pos,
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
unsafe fn store(c: &mut ChunkDecode, l: &Lanes) {
    c.d.pos = l.pos;
    let s = c.d.states.as_mut_ptr();
    _mm512_storeu_si512(s as *mut _, l.x[0]);
    _mm512_storeu_si512(s.add(16) as *mut _, l.x[1]);
}

/// Whether the chunk's next group can take the fast path: a group is left and a whole group's
/// renormalisation words remain (so the loads in `renorm_at` stay in bounds).
#[inline(always)]
fn can_step(c: &ChunkDecode, l: &Lanes) -> bool {
    c.groups_done < 4 * c.ctx.len() && l.end - l.pos >= 2 * LANES
}

/// Decodes the chunk's next group of 32 pairs with tables of scale `S` (the chunk's). The caller
/// has checked `can_step`.
#[inline(always)]
unsafe fn step<const S: u32>(c: &mut ChunkDecode, l: &mut Lanes) {
    let slot_mask = _mm512_set1_epi32((1 << S) - 1);
    let f_mask = _mm512_set1_epi32(0xFFF);
    let one = _mm512_set1_epi32(1);
    let bound = _mm512_set1_epi32(RANS_L as i32);
    let lo4 = _mm512_set1_epi32(0x0F);
    let hi4 = _mm512_set1_epi32(0xF0);
    let (bi, j) = (c.groups_done / 4, c.groups_done % 4);
    let ctx = c.ctx.get_unchecked(bi);
    let table = c.dec.pairs.as_ptr() as *const i32;
    let mut sym = [_mm512_setzero_si512(); 2];
    let mut xn = [_mm512_setzero_si512(); 2];
    let mut need = [0u16; 2];
    for k in 0..2 {
        let base = table.add((ctx[2 * j + k] as usize) << S);
        let e = _mm512_i32gather_epi32::<4>(_mm512_and_si512(l.x[k], slot_mask), base);
        let f = _mm512_add_epi32(_mm512_and_si512(e, f_mask), one);
        let bias = _mm512_and_si512(_mm512_srli_epi32::<12>(e), f_mask);
        xn[k] = _mm512_add_epi32(_mm512_mullo_epi32(f, _mm512_srli_epi32::<S>(l.x[k])), bias);
        need[k] = _mm512_cmplt_epu32_mask(xn[k], bound);
        sym[k] = _mm512_srli_epi32::<24>(e);
    }
    l.x = renorm_at(l.words, &mut l.pos, &xn, &need);
    // Pair p of sub-block 2j is quants 2p, 2p+1 in the low nibbles; of 2j+1, in the high.
    let (a, b) = (sym[0], sym[1]);
    let even = _mm512_or_si512(_mm512_and_si512(a, lo4), _mm512_slli_epi32::<4>(_mm512_and_si512(b, lo4)));
    let odd = _mm512_or_si512(_mm512_srli_epi32::<4>(a), _mm512_and_si512(b, hi4));
    let (even, odd) = (_mm512_cvtepi32_epi8(even), _mm512_cvtepi32_epi8(odd));
    let out = c.dst.as_mut_ptr().add(bi * BLOCK + 16 + 32 * j) as *mut __m128i;
    _mm_storeu_si128(out, _mm_unpacklo_epi8(even, odd));
    _mm_storeu_si128(out.add(1), _mm_unpackhi_epi8(even, odd));
    c.groups_done += 1;
}

/// Decodes the whole groups the fast path allows, advancing `c.groups_done`.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL; every context must have a table.
pub unsafe fn decode_groups(c: &mut ChunkDecode) {
    with_scale!(c.dec.scale, groups(c))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
unsafe fn groups<const S: u32>(c: &mut ChunkDecode) {
    debug_assert_eq!(c.dec.scale, S);
    let mut l = load(c);
    while can_step(c, &l) {
        step::<S>(c, &mut l);
    }
    store(c, &l);
}

/// `decode_groups` for two chunks, a group of each in turn while both can go on.
///
/// # Safety
/// As `decode_groups`, for both chunks.
pub unsafe fn decode_pair(a: &mut ChunkDecode, b: &mut ChunkDecode) {
    if a.dec.scale == b.dec.scale {
        with_scale!(a.dec.scale, pair(a, b))
    } else {
        decode_groups(a);
        decode_groups(b);
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
unsafe fn pair<const S: u32>(a: &mut ChunkDecode, b: &mut ChunkDecode) {
    let (mut la, mut lb) = (load(a), load(b));
    while can_step(a, &la) && can_step(b, &lb) {
        step::<S>(a, &mut la);
        step::<S>(b, &mut lb);
    }
    while can_step(a, &la) {
        step::<S>(a, &mut la);
    }
    while can_step(b, &lb) {
        step::<S>(b, &mut lb);
    }
    store(a, &la);
    store(b, &lb);
}
