//! The AVX-512 decode kernel (and the encoder's vector step): the 32 lanes as two vectors of sixteen. Mask registers replace
//! the AVX2 kernel's movemask and permutation table: `expand` places the next words of the stream
//! into exactly the lanes that need them, in lane order.

use std::arch::x86_64::*;

use super::context::CTX_SCALE;
use super::{patch_escapes, ChunkDecode, Cursor, ESC_MARK, SCALE};
use crate::entropy::avx512::renorm_at;
use crate::entropy::encode_x86::{put_groups_avx512, put_groups_pair_avx512, PairLeft, VecEncTable};
use crate::entropy::rans::{RansEncoder, LANES, RANS_L};
use crate::error::Result;

const V: usize = LANES / 16;
const SCALE_U: u32 = SCALE;

/// A chunk's lane states in registers, and where the kernel is in it.
struct Lanes {
    x: [__m512i; V],
    at: Cursor,
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
unsafe fn load(c: &ChunkDecode) -> Lanes {
    let mut x = [_mm512_setzero_si512(); V];
    for (k, xk) in x.iter_mut().enumerate() {
        *xk = _mm512_loadu_si512(c.d.states.as_ptr().add(16 * k) as *const _);
    }
    Lanes { x, at: Cursor::of(c) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
unsafe fn store(c: &mut ChunkDecode, l: &Lanes) {
    for (k, xk) in l.x.iter().enumerate() {
        _mm512_storeu_si512(c.d.states.as_mut_ptr().add(16 * k) as *mut _, *xk);
    }
    l.at.save(c);
}

/// Decodes group `l.at.g` of chunk `c`. The caller has checked `Cursor::can_step`. With `CTX`
/// (method 6) each lane's table is the one `l.at.lanes` names. Always inlined into the drivers,
/// whose target features it runs with (left to the compiler, the variant with contexts was a
/// call per group: 27% slower).
#[inline(always)]
unsafe fn step<const CTX: bool>(c: &mut ChunkDecode, l: &mut Lanes) -> Result<()> {
    // Gathered u64 entries of lanes 0..8 and 8..16 -> their low halves (frequency and bias) and
    // high halves (output bits) as two vectors of sixteen u32.
    let lows = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let highs = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let slot_mask = _mm512_set1_epi32((1 << if CTX { CTX_SCALE } else { SCALE }) - 1);
    let lo16 = _mm512_set1_epi32(0xFFFF);
    let bound = _mm512_set1_epi32(RANS_L as i32);
    // Byte j of the nibbles holds values 2j (low nibble) and 2j+1 (high nibble).
    let nib_shift = _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
    let nib_mask = _mm512_set1_epi32(0xF);
    let seven = _mm512_set1_epi32(7);
    let eight = _mm512_set1_epi32(8);
    // Where the nibble's bit 3 goes: the sign (bit 15), or bit 3 (`Split`).
    let nibble_shift = _mm512_set1_epi32(l.at.nibble_shift as i32);
    let one = _mm512_set1_epi32(ESC_MARK as i32);

    let g = l.at.g;
    let nb = l.at.nib.add(g * LANES / 2);
    // Taken afresh at every group: `patch_escapes` writes through `c.dst` too.
    let out = c.dst.as_mut_ptr().add(g * 2 * LANES);
    let mut escaped = 0u64;
    let mut xn = [_mm512_setzero_si512(); V];
    let mut need = [0u16; V];
    for k in 0..V {
        let mut slot = _mm512_and_si512(l.x[k], slot_mask);
        if CTX {
            let t = _mm512_cvtepu8_epi32(_mm_loadu_si128(l.at.lanes.add(16 * k) as *const __m128i));
            slot = _mm512_or_si512(slot, _mm512_slli_epi32::<CTX_SCALE>(t));
        }
        let e0 = _mm512_i32gather_epi64::<8>(_mm512_castsi512_si256(slot), l.at.table);
        let e1 = _mm512_i32gather_epi64::<8>(_mm512_extracti64x4_epi64::<1>(slot), l.at.table);
        let e = _mm512_permutex2var_epi32(e0, lows, e1);
        let v = _mm512_permutex2var_epi32(e0, highs, e1);
        let xs = if CTX { _mm512_srli_epi32::<CTX_SCALE>(l.x[k]) } else { _mm512_srli_epi32::<SCALE_U>(l.x[k]) };
        xn[k] = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_and_si512(e, lo16), xs), _mm512_srli_epi32::<16>(e));
        need[k] = _mm512_cmplt_epu32_mask(xn[k], bound);
        // Nibbles: 8 bytes -> each byte twice -> 16 lanes -> shift the high nibbles down.
        let b = _mm_loadl_epi64(nb.add(8 * k) as *const __m128i);
        let nv =
            _mm512_and_si512(_mm512_srlv_epi32(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(b, b)), nib_shift), nib_mask);
        let sign = _mm512_sllv_epi32(_mm512_and_si512(nv, eight), nibble_shift);
        let v = _mm512_and_si512(v, lo16);
        escaped |= (_mm512_test_epi32_mask(v, one) as u64) << (16 * k);
        let o = _mm512_or_si512(_mm512_or_si512(v, sign), _mm512_and_si512(nv, seven));
        let mut o = _mm512_cvtepi32_epi16(o);
        if CTX {
            // The lanes' columns' sign flips.
            o = _mm256_xor_si256(o, _mm256_loadu_si256(l.at.signs.add(32 * k) as *const __m256i));
        }
        _mm256_storeu_si256(out.add(32 * k) as *mut __m256i, o);
    }
    // `can_step` left a whole group's words.
    l.x = renorm_at(l.at.words, &mut l.at.pos, &xn, &need);
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
/// The CPU must support AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn decode_groups<const CTX: bool>(c: &mut ChunkDecode) -> Result<()> {
    let mut l = load(c);
    while l.at.can_step() {
        step::<CTX>(c, &mut l)?;
    }
    store(c, &l);
    Ok(())
}

/// `decode_groups` for two chunks, one group of each per iteration while both can go on.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn decode_pair<const CTX: bool>(a: &mut ChunkDecode, b: &mut ChunkDecode) -> Result<()> {
    let (mut la, mut lb) = (load(a), load(b));
    while la.at.can_step() && lb.at.can_step() {
        step::<CTX>(a, &mut la)?;
        step::<CTX>(b, &mut lb)?;
    }
    while la.at.can_step() {
        step::<CTX>(a, &mut la)?;
    }
    while lb.at.can_step() {
        step::<CTX>(b, &mut lb)?;
    }
    store(a, &la);
    store(b, &lb);
    Ok(())
}

/// Encodes groups `n - 1` down to 0 of `LANES` values each from `src` (64 bytes of
/// little-endian bf16 per group) with the vector step: their symbols, then
/// `encode_x86::put_groups_avx512`, which returns as this does (0, or one past a group whose
/// value escapes, which is not coded).
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL; `src` must be valid for `64 * n` bytes of reads.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn put_groups(e: &mut RansEncoder, t: &VecEncTable, src: *const u8, n: usize, shift: u32) -> usize {
    let mask = _mm512_set1_epi32(0xFFF);
    // Split::symbol: bits shift..shift+12 of each value.
    let shift = _mm512_set1_epi32(shift as i32);
    let sym = |p: *const u8| {
        let v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(p as *const __m256i));
        _mm512_and_si512(_mm512_srlv_epi32(v, shift), mask)
    };
    put_groups_avx512(e, t, n, |g| {
        let at = src.add(64 * g);
        [sym(at), sym(at.add(32))]
    })
}

/// `put_groups` for method 6: lane `k` of group `g` is coded in table `tabs(g)[k]` of tables
/// of `table_len` symbols laid end to end (`indexed::Flat`), so its index is
/// `tabs(g)[k] * table_len + symbol`.
///
/// # Safety
/// As `put_groups`; `tabs(g)` must be valid for `LANES` bytes of reads for every group.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn put_groups_ctx(
    e: &mut RansEncoder,
    t: &VecEncTable,
    src: *const u8,
    n: usize,
    shift: u32,
    tabs: impl Fn(usize) -> *const u8,
    table_len: u32,
) -> usize {
    let mask = _mm512_set1_epi32(0xFFF);
    let shift = _mm512_set1_epi32(shift as i32);
    let len = _mm512_set1_epi32(table_len as i32);
    put_groups_avx512(e, t, n, |g| ctx_indices(src.add(64 * g), tabs(g), shift, mask, len))
}

/// The table indices of the group of values at `at` (64 bytes) whose tables are at `tabs` (32
/// bytes): `tab * table_len + symbol`, `len` holding `table_len`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn ctx_indices(at: *const u8, tabs: *const u8, shift: __m512i, mask: __m512i, len: __m512i) -> [__m512i; 2] {
    [0, 1].map(|k| {
        let v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(at.add(32 * k) as *const __m256i));
        let sym = _mm512_and_si512(_mm512_srlv_epi32(v, shift), mask);
        let tab = _mm512_cvtepu8_epi32(_mm_loadu_si128(tabs.add(16 * k) as *const __m128i));
        _mm512_add_epi32(_mm512_mullo_epi32(tab, len), sym)
    })
}

/// `put_groups` for two chunks at once, `src[s]` holding `n[s]` groups
/// (`encode_x86::put_groups_pair_avx512`, which returns as this does).
///
/// # Safety
/// As `put_groups`, for both chunks.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn put_groups_pair(e: [&mut RansEncoder; 2], t: &VecEncTable, src: [*const u8; 2], n: [usize; 2], shift: u32) -> PairLeft {
    let mask = _mm512_set1_epi32(0xFFF);
    let shift = _mm512_set1_epi32(shift as i32);
    let sym = |p: *const u8| {
        let v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(p as *const __m256i));
        _mm512_and_si512(_mm512_srlv_epi32(v, shift), mask)
    };
    put_groups_pair_avx512(e, t, n, |s, g| {
        let at = src[s].add(64 * g);
        [sym(at), sym(at.add(32))]
    })
}

/// `put_groups_ctx` for two chunks at once (`tabs(s, g)` the lookup row of group `g` of chunk
/// `s`).
///
/// # Safety
/// As `put_groups_ctx`, for both chunks.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn put_groups_ctx_pair(
    e: [&mut RansEncoder; 2],
    t: &VecEncTable,
    src: [*const u8; 2],
    n: [usize; 2],
    shift: u32,
    tabs: impl Fn(usize, usize) -> *const u8,
    table_len: u32,
) -> PairLeft {
    let mask = _mm512_set1_epi32(0xFFF);
    let shift = _mm512_set1_epi32(shift as i32);
    let len = _mm512_set1_epi32(table_len as i32);
    put_groups_pair_avx512(e, t, n, |s, g| ctx_indices(src[s].add(64 * g), tabs(s, g), shift, mask, len))
}

/// Packs the nibbles of the values of `src` (little-endian 16-bit) two per byte into `out`, the
/// first value in the low nibble, for as many whole groups of 32 values as both hold; returns
/// how many values it packed. A value's nibble is its bit `3 + nibble_shift` as bit 3 over its
/// bits 2..0 (`Split::nibble`).
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn pack_nibbles(src: &[u8], out: &mut [u8], nibble_shift: u32) -> usize {
    let groups = (src.len() / 64).min(out.len() / 16);
    let shift = _mm_cvtsi32_si128(nibble_shift as i32);
    let (eight, seven, low) = (_mm512_set1_epi16(8), _mm512_set1_epi16(7), _mm512_set1_epi32(0xF));
    for g in 0..groups {
        let v = _mm512_loadu_si512(src.as_ptr().add(64 * g) as *const _);
        let n = _mm512_or_si512(_mm512_and_si512(_mm512_srl_epi16(v, shift), eight), _mm512_and_si512(v, seven));
        // Two values per 32-bit lane: the first's nibble in bits 0..4, the second's in 16..20.
        let b = _mm512_or_si512(_mm512_and_si512(n, low), _mm512_srli_epi32::<12>(n));
        _mm_storeu_si128(out.as_mut_ptr().add(16 * g) as *mut __m128i, _mm512_cvtepi32_epi8(b));
    }
    32 * groups
}
