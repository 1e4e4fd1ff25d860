//! The AVX2 decode kernel: the 32 lanes as four vectors of eight, with one table gather per
//! vector for frequency and bias and one for the output bits.

use std::arch::x86_64::*;

use super::context::CTX_SCALE;
use super::{patch_escapes, ChunkDecode, Cursor, ESC_MARK, SCALE};
use crate::entropy::avx2::renorm_at;
use crate::entropy::gather::{self, Gather, Hardware, Loads, Mode};
use crate::entropy::encode_x86::{put_groups_avx2, put_groups_pair_avx2, PairLeft, VecEncTable};
use crate::entropy::rans::{RansEncoder, LANES};
use crate::error::Result;

const V: usize = LANES / 8;
const SCALE_I: i32 = SCALE as i32;

/// A chunk's lane states in registers, and where the kernel is in it.
struct Lanes {
    x: [__m256i; V],
    at: Cursor,
}

#[inline(always)]
unsafe fn load(c: &ChunkDecode) -> Lanes {
    let mut x = [_mm256_setzero_si256(); V];
    for (k, xk) in x.iter_mut().enumerate() {
        *xk = _mm256_loadu_si256(c.d.states.as_ptr().add(8 * k) as *const __m256i);
    }
    Lanes { x, at: Cursor::of(c) }
}

#[inline(always)]
unsafe fn store(c: &mut ChunkDecode, l: &Lanes) {
    for (k, xk) in l.x.iter().enumerate() {
        _mm256_storeu_si256(c.d.states.as_mut_ptr().add(8 * k) as *mut __m256i, *xk);
    }
    l.at.save(c);
}

/// Decodes group `l.at.g` of chunk `c`. The caller has checked `Cursor::can_step`.
/// With `CTX` (method 6) each lane's table is the one `l.at.lanes` names.
#[inline(always)]
unsafe fn step<G: Gather, const CTX: bool>(c: &mut ChunkDecode, l: &mut Lanes) -> Result<()> {
    // Gathered u64 entries of lanes 0..4 and 4..8 -> low halves (frequency and bias) and high
    // halves (output bits), each as eight u32 in lane order.
    let evens = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    let slot_mask = _mm256_set1_epi32((1 << if CTX { CTX_SCALE } else { SCALE }) - 1);
    let lo16 = _mm256_set1_epi32(0xFFFF);
    let shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    let nib_mask = _mm256_set1_epi32(0xF);
    let seven = _mm256_set1_epi32(7);
    let eight = _mm256_set1_epi32(8);
    // Where the nibble's bit 3 goes: the sign (bit 15), or bit 3 (`Split`).
    let nibble_shift = _mm256_set1_epi32(l.at.nibble_shift as i32);
    let one = _mm256_set1_epi32(ESC_MARK as i32);

    let g = l.at.g;
    let nb = l.at.nib.add(g * LANES / 2);
    let mut out = [_mm256_setzero_si256(); V];
    let mut escaped = 0u64; // bit i: lane i of the group decoded `ESC`
    let mut xn = [_mm256_setzero_si256(); V];
    for k in 0..V {
        let mut slot = _mm256_and_si256(l.x[k], slot_mask);
        if CTX {
            let t = _mm256_cvtepu8_epi32(_mm_loadl_epi64(l.at.lanes.add(8 * k) as *const __m128i));
            slot = _mm256_or_si256(slot, _mm256_slli_epi32::<{ CTX_SCALE as i32 }>(t));
        }
        let e0 = G::g64(l.at.table, _mm256_castsi256_si128(slot));
        let e1 = G::g64(l.at.table, _mm256_extracti128_si256::<1>(slot));
        // Per 128-bit half, put the low dwords first: [l0 l1 h0 h1 | l2 l3 h2 h3] -> then
        // unpack the 64-bit halves of e0 and e1 into lows and highs.
        let p0 = _mm256_permutevar8x32_epi32(e0, evens); // l0 l1 l2 l3 h0 h1 h2 h3
        let p1 = _mm256_permutevar8x32_epi32(e1, evens); // l4 .. l7 h4 .. h7
        let e = _mm256_permute2x128_si256::<0x20>(p0, p1);
        let v = _mm256_permute2x128_si256::<0x31>(p0, p1);
        let xs = if CTX {
            _mm256_srli_epi32::<{ CTX_SCALE as i32 }>(l.x[k])
        } else {
            _mm256_srli_epi32::<SCALE_I>(l.x[k])
        };
        xn[k] = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_and_si256(e, lo16), xs), _mm256_srli_epi32::<16>(e));
        // Output word: symbol bits | sign from nibble bit 3 | low mantissa from bits 0..3.
        let nbits = std::ptr::read_unaligned(nb.add(4 * k) as *const u32);
        let nv = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(nbits as i32), shifts), nib_mask);
        let sign = _mm256_sllv_epi32(_mm256_and_si256(nv, eight), nibble_shift);
        let v = _mm256_and_si256(v, lo16);
        let is_esc = _mm256_cmpeq_epi32(_mm256_and_si256(v, one), one);
        escaped |= (_mm256_movemask_ps(_mm256_castsi256_ps(is_esc)) as u64) << (8 * k);
        out[k] = _mm256_or_si256(_mm256_or_si256(v, sign), _mm256_and_si256(nv, seven));
    }
    // `can_step` left a whole group's words.
    l.x = renorm_at(l.at.words, &mut l.at.pos, &xn);
    // Taken afresh at every group: `patch_escapes` writes through `c.dst` too.
    let p = c.dst.as_mut_ptr().add(g * 2 * LANES) as *mut __m256i;
    for h in 0..V / 2 {
        // packus interleaves 128-bit halves; permute4x64 puts the 16 values back in order.
        let mut packed = _mm256_permute4x64_epi64::<0xD8>(_mm256_packus_epi32(out[2 * h], out[2 * h + 1]));
        if CTX {
            // The lanes' columns' sign flips.
            packed = _mm256_xor_si256(packed, _mm256_loadu_si256(l.at.signs.add(32 * h) as *const __m256i));
        }
        _mm256_storeu_si256(p.add(h), packed);
    }
    if escaped != 0 {
        patch_escapes(escaped, g, c)?;
    }
    l.at.g += 1;
    if CTX {
        l.at.next_lanes();
    }
    Ok(())
}

/// Decodes the whole groups the fast path allows, advancing `c.done`.
///
/// # Safety
/// The CPU must support AVX2.
pub unsafe fn decode_groups<const CTX: bool>(c: &mut ChunkDecode) -> Result<()> {
    match gather::mode() {
        Mode::Hardware => groups::<Hardware, CTX>(c),
        Mode::Loads => groups::<Loads, CTX>(c),
    }
}

#[target_feature(enable = "avx2,popcnt")]
unsafe fn groups<G: Gather, const CTX: bool>(c: &mut ChunkDecode) -> Result<()> {
    let mut l = load(c);
    let r = (|| {
        while l.at.can_step() {
            step::<G, CTX>(c, &mut l)?;
        }
        Ok(())
    })();
    store(c, &l);
    r
}

/// `decode_groups` for two chunks, one group of each per iteration while both can go on: two
/// independent chains of gathers for the core to overlap.
///
/// # Safety
/// The CPU must support AVX2.
pub unsafe fn decode_pair<const CTX: bool>(a: &mut ChunkDecode, b: &mut ChunkDecode) -> Result<()> {
    match gather::mode() {
        Mode::Hardware => pair::<Hardware, CTX>(a, b),
        Mode::Loads => pair::<Loads, CTX>(a, b),
    }
}

#[target_feature(enable = "avx2,popcnt")]
unsafe fn pair<G: Gather, const CTX: bool>(a: &mut ChunkDecode, b: &mut ChunkDecode) -> Result<()> {
    let (mut la, mut lb) = (load(a), load(b));
    let r = (|| {
        while la.at.can_step() && lb.at.can_step() {
            step::<G, CTX>(a, &mut la)?;
            step::<G, CTX>(b, &mut lb)?;
        }
        while la.at.can_step() {
            step::<G, CTX>(a, &mut la)?;
        }
        while lb.at.can_step() {
            step::<G, CTX>(b, &mut lb)?;
        }
        Ok(())
    })();
    store(a, &la);
    store(b, &lb);
    r
}

/// `avx512::put_groups` with AVX2.
///
/// # Safety
/// The CPU must support AVX2; `src` must be valid for `64 * n` bytes of reads.
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn put_groups(e: &mut RansEncoder, t: &VecEncTable, src: *const u8, n: usize, shift: u32) -> usize {
    let mask = _mm256_set1_epi32(0xFFF);
    // Split::symbol: bits shift..shift+12 of each value.
    let shift = _mm256_set1_epi32(shift as i32);
    put_groups_avx2(e, t, n, |g| {
        let at = src.add(64 * g);
        [0, 1, 2, 3].map(|k| {
            let v = _mm256_cvtepu16_epi32(_mm_loadu_si128(at.add(16 * k) as *const __m128i));
            _mm256_and_si256(_mm256_srlv_epi32(v, shift), mask)
        })
    })
}

/// `avx512::put_groups_ctx` with AVX2.
///
/// # Safety
/// As `put_groups`; `tabs(g)` must be valid for `LANES` bytes of reads for every group.
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn put_groups_ctx(
    e: &mut RansEncoder,
    t: &VecEncTable,
    src: *const u8,
    n: usize,
    shift: u32,
    tabs: impl Fn(usize) -> *const u8,
    table_len: u32,
) -> usize {
    let mask = _mm256_set1_epi32(0xFFF);
    let shift = _mm256_set1_epi32(shift as i32);
    let len = _mm256_set1_epi32(table_len as i32);
    put_groups_avx2(e, t, n, |g| ctx_indices(src.add(64 * g), tabs(g), shift, mask, len))
}

/// `avx512::ctx_indices` with AVX2: four registers of eight lanes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn ctx_indices(at: *const u8, tabs: *const u8, shift: __m256i, mask: __m256i, len: __m256i) -> [__m256i; 4] {
    [0, 1, 2, 3].map(|k| {
        let v = _mm256_cvtepu16_epi32(_mm_loadu_si128(at.add(16 * k) as *const __m128i));
        let sym = _mm256_and_si256(_mm256_srlv_epi32(v, shift), mask);
        let tab = _mm256_cvtepu8_epi32(_mm_loadl_epi64(tabs.add(8 * k) as *const __m128i));
        _mm256_add_epi32(_mm256_mullo_epi32(tab, len), sym)
    })
}

/// `avx512::put_groups_pair` with AVX2.
///
/// # Safety
/// As `put_groups`, for both chunks.
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn put_groups_pair(e: [&mut RansEncoder; 2], t: &VecEncTable, src: [*const u8; 2], n: [usize; 2], shift: u32) -> PairLeft {
    let mask = _mm256_set1_epi32(0xFFF);
    let shift = _mm256_set1_epi32(shift as i32);
    put_groups_pair_avx2(e, t, n, |s, g| {
        let at = src[s].add(64 * g);
        [0, 1, 2, 3].map(|k| {
            let v = _mm256_cvtepu16_epi32(_mm_loadu_si128(at.add(16 * k) as *const __m128i));
            _mm256_and_si256(_mm256_srlv_epi32(v, shift), mask)
        })
    })
}

/// `avx512::put_groups_ctx_pair` with AVX2.
///
/// # Safety
/// As `put_groups_ctx`, for both chunks.
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn put_groups_ctx_pair(
    e: [&mut RansEncoder; 2],
    t: &VecEncTable,
    src: [*const u8; 2],
    n: [usize; 2],
    shift: u32,
    tabs: impl Fn(usize, usize) -> *const u8,
    table_len: u32,
) -> PairLeft {
    let mask = _mm256_set1_epi32(0xFFF);
    let shift = _mm256_set1_epi32(shift as i32);
    let len = _mm256_set1_epi32(table_len as i32);
    put_groups_pair_avx2(e, t, n, |s, g| ctx_indices(src[s].add(64 * g), tabs(s, g), shift, mask, len))
}

/// `avx512::pack_nibbles` with AVX2: groups of 16 values.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn pack_nibbles(src: &[u8], out: &mut [u8], nibble_shift: u32) -> usize {
    let groups = (src.len() / 32).min(out.len() / 8);
    let shift = _mm_cvtsi32_si128(nibble_shift as i32);
    let (eight, seven, low) = (_mm256_set1_epi16(8), _mm256_set1_epi16(7), _mm256_set1_epi32(0xF));
    // Byte 0 of each 32-bit lane, in each 128-bit half.
    let pick = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1,
    );
    for g in 0..groups {
        let v = _mm256_loadu_si256(src.as_ptr().add(32 * g) as *const __m256i);
        let n = _mm256_or_si256(_mm256_and_si256(_mm256_srl_epi16(v, shift), eight), _mm256_and_si256(v, seven));
        let b = _mm256_shuffle_epi8(_mm256_or_si256(_mm256_and_si256(n, low), _mm256_srli_epi32::<12>(n)), pick);
        let bytes = _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256::<1>(b));
        _mm_storel_epi64(out.as_mut_ptr().add(8 * g) as *mut __m128i, bytes);
    }
    16 * groups
}
