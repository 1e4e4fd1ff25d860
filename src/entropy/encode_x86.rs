//! The rANS encoding step of a whole group of `LANES` symbols at once, with AVX-512 or AVX2: the
//! encoder side of the interleaving the decoders use. Same output as `RansEncoder::put` called
//! for lanes `LANES - 1` down to 0, the order a scalar encoder walks a group in (symbols are
//! coded last to first).
//!
//! The scalar step divides by the symbol's frequency with a 64x64-bit multiply (there is no
//! vector form of it). AVX2 divides in double precision: `x / f` rounded to double is exact
//! when it is an integer and below the next integer when it is not, so truncating it gives the
//! quotient. AVX-512 takes it from single precision, sixteen lanes at once, and corrects it:
//! after renormalisation a state is below `f << (32 - scale)`, so the quotient `x / f` is below
//! `2^(32 - scale)`, at most 2^22 for the tables' smallest scale here (`MIN_SCALE`); `x` rounded
//! to `f32` (relative error 2^-24) times 1 / f from the 14-bit estimate and one Newton step
//! (below 1.5 * 2^-24), rounded (2^-24), is within 3.5 * 2^-24 * 2^22 < 1 of the quotient, so
//! its truncation is the quotient or one off either way; the remainder `x - q f` says which.
//! (Double precision took two vectors of eight and two Newton steps; 7-10% of the Q4_K and
//! Q6_K encoders' time. On AVX2 the single-precision form, with its conversion of an unsigned
//! `x` and its corrections, measured 5% slower than the double division.) Neither gathers
//! reciprocals from a table.

use std::arch::x86_64::*;

use super::avx2::COMPRESS8;
use super::gather::{self, Gather, Hardware, Loads, Mode};
use super::rans::{EncSymbol, RansEncoder, LANES};

/// An encoding table in the form the vector step gathers from: per symbol `freq | cum << 16`.
pub struct VecEncTable {
    packed: Vec<u32>,
    scale: u32,
}

/// The smallest table scale the vector step takes (see the module comment); tables of smaller
/// scales keep the scalar step.
pub const MIN_SCALE: u32 = 10;

impl VecEncTable {
    /// Whether tables of `scale` can take the vector step.
    pub fn supports(scale: u32) -> bool {
        (MIN_SCALE..=15).contains(&scale)
    }

    /// The vector table of `syms` at `scale` and the kernel level to run it at, where this CPU
    /// has a vector step (AVX2 or more) and the scale allows it; None keeps the scalar step.
    pub fn for_cpu(syms: &[EncSymbol], scale: u32) -> Option<(VecEncTable, crate::cpu::Level)> {
        let level = crate::cpu::detect();
        (level >= crate::cpu::Level::Avx2 && Self::supports(scale)).then(|| (Self::from_symbols(syms, scale), level))
    }

    /// The table of the symbols `syms` (of one table, or several end to end) at `scale`.
    pub fn from_symbols(syms: &[EncSymbol], scale: u32) -> VecEncTable {
        // Frequencies and cumulative counts below 2^16 share a u32 (every scale here is at most
        // 15, as the rANS state invariant requires); the quotient needs `MIN_SCALE`.
        assert!(Self::supports(scale));
        VecEncTable {
            packed: syms.iter().map(|s| s.freq | s.cum << 16).collect(),
            scale,
        }
    }
}

/// The AVX-512 step's constants for one table, and one stream's part of it: the lookup of a
/// group's symbols and the coding of the group into the stream's lane states. The lanes are kept
/// in reverse order (lane 15 in element 0), so that the renormalisation words come out of the
/// compress highest lane first, the scalar encoder's order, with no permutation of the states
/// nor reversal of the mask on the step's chain.
struct Step512<'t> {
    t: &'t VecEncTable,
    lo16: __m512i,
    reverse: __m512i,
    scale: __m128i,
    rscale: __m128i,
    top: __m512i,
    len: __m512i,
}

impl<'t> Step512<'t> {
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn new(t: &'t VecEncTable) -> Step512<'t> {
        Step512 {
            t,
            lo16: _mm512_set1_epi32(0xFFFF),
            reverse: _mm512_setr_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
            scale: _mm_cvtsi32_si128(t.scale as i32),
            rscale: _mm_cvtsi32_si128(32 - t.scale as i32),
            top: _mm512_set1_epi32(1 << t.scale),
            len: _mm512_set1_epi32(t.packed.len() as i32),
        }
    }

    /// The lane states of `e`, in registers.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(&self, e: &mut RansEncoder) -> [__m512i; 2] {
        let states = e.states_mut().as_ptr();
        [0, 1].map(|k| _mm512_permutexvar_epi32(self.reverse, _mm512_loadu_si512(states.add(16 * k) as *const _)))
    }

    /// Puts the lane states back into `e`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store(&self, e: &mut RansEncoder, x: &[__m512i; 2]) {
        let states = e.states_mut().as_mut_ptr();
        for (k, x) in x.iter().enumerate() {
            _mm512_storeu_si512(states.add(16 * k) as *mut _, _mm512_permutexvar_epi32(self.reverse, *x));
        }
    }

    /// Each lane's `freq | cum << 16`, or None when a symbol escapes (lies outside the table or
    /// has frequency 0).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn lookup(&self, syms: [__m512i; 2]) -> Option<[__m512i; 2]> {
        let mut fc = [_mm512_setzero_si512(); 2];
        for k in 0..2 {
            if _mm512_cmpge_epu32_mask(syms[k], self.len) != 0 {
                return None;
            }
            fc[k] = _mm512_i32gather_epi32::<4>(_mm512_permutexvar_epi32(self.reverse, syms[k]), self.t.packed.as_ptr() as *const i32);
            if _mm512_test_epi32_mask(fc[k], self.lo16) != 0xFFFF {
                return None;
            }
        }
        Some(fc)
    }

    /// Codes a group whose lanes' `freq | cum << 16` are `fc` into the states `x` of `e`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
    unsafe fn code(&self, e: &mut RansEncoder, x: &mut [__m512i; 2], fc: [__m512i; 2]) {
        debug_assert!(e.room() >= LANES);
        // Lanes 16..32 first: the scalar encoder walks a group from its last lane down.
        for k in [1, 0] {
            let f = _mm512_and_si512(fc[k], self.lo16);
            let cum = _mm512_srli_epi32::<16>(fc[k]);
            // x >= f << (32 - scale), as the scalar step's 64-bit compare.
            let need = _mm512_cmpge_epu32_mask(_mm512_srl_epi32(x[k], self.rscale), f);
            // The low words of the shrinking lanes, highest lane first.
            let words = _mm512_maskz_compress_epi32(need, x[k]);
            _mm256_storeu_si256(e.next_words() as *mut __m256i, _mm512_cvtepi32_epi16(words));
            e.keep_words(need.count_ones() as usize);
            let xs = _mm512_mask_srli_epi32(x[k], need, x[k], 16);
            x[k] = next_state_avx512(xs, f, cum, self.scale, self.top);
        }
    }
}

/// Encodes groups `n - 1` down to 0, group `g`'s symbols (lanes 0..16 and 16..32) from
/// `group(g)`, with the lanes' states kept in registers from group to group (through memory,
/// the store and reload of the states lay on the step's chain of dependent instructions).
/// Returns 0 when every group is coded, or `g + 1` when group `g` escapes: a symbol outside the
/// table or of frequency 0 (the caller codes that group with the scalar step, which reports an
/// error for the former); groups past it are coded, it and those before it are not.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL; `e` must have room for `LANES` more words than it
/// has used before every group (`RansEncoder` keeps that slack).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn put_groups_avx512(e: &mut RansEncoder, t: &VecEncTable, n: usize, mut group: impl FnMut(usize) -> [__m512i; 2]) -> usize {
    let s = Step512::new(t);
    let mut x = s.load(e);
    for g in (0..n).rev() {
        let Some(fc) = s.lookup(group(g)) else {
            s.store(e, &x);
            return g + 1;
        };
        s.code(e, &mut x, fc);
    }
    s.store(e, &x);
    0
}

/// Where `put_groups_pair_avx512` (or `_avx2`) stopped: the groups of each stream not coded
/// (0 when all are), and which streams stopped at a group that escapes (it is the last one not
/// coded, `left - 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairLeft {
    pub left: [usize; 2],
    pub escaped: [bool; 2],
}

/// `put_groups_avx512` for two streams at once, stream `s` having `n[s]` groups, given by
/// `group(s, g)`: their groups are coded in turn, `n[0] - 1` with `n[1] - 1` and so down, while
/// both have groups and neither escapes. Each stream's step is a chain of dependent instructions
/// (a group's states come from the previous group's), which one stream leaves mostly waiting; two
/// chains in flight use the cores' vector units twice as well. Each stream gets exactly the bytes
/// `put_groups_avx512` gives it.
///
/// # Safety
/// As `put_groups_avx512`, for both encoders.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn put_groups_pair_avx512(
    e: [&mut RansEncoder; 2],
    t: &VecEncTable,
    n: [usize; 2],
    mut group: impl FnMut(usize, usize) -> [__m512i; 2],
) -> PairLeft {
    let s = Step512::new(t);
    let [ea, eb] = e;
    let (mut xa, mut xb) = (s.load(ea), s.load(eb));
    let mut left = n;
    while left[0] > 0 && left[1] > 0 {
        let (ga, gb) = (left[0] - 1, left[1] - 1);
        let (fa, fb) = (s.lookup(group(0, ga)), s.lookup(group(1, gb)));
        let (Some(fa), Some(fb)) = (fa, fb) else {
            s.store(ea, &xa);
            s.store(eb, &xb);
            return PairLeft { left, escaped: [fa.is_none(), fb.is_none()] };
        };
        s.code(ea, &mut xa, fa);
        s.code(eb, &mut xb, fb);
        left = [ga, gb];
    }
    s.store(ea, &xa);
    s.store(eb, &xb);
    PairLeft { left, escaped: [false; 2] }
}

/// The state after coding a symbol of frequency `f` and cumulative count `cum` from the
/// renormalised state `x`: `(x / f) << scale + x % f + cum`, `top` being `1 << scale`. The
/// quotient estimate of `quotient_avx512` is corrected here without computing the exact quotient
/// and remainder first: when the estimate is one too many (or too few) the state is
/// `top - f` below (above) the one it gives, so both corrections are decided from one remainder
/// at once (they were two compares in a row on the step's chain of dependent instructions).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn next_state_avx512(x: __m512i, f: __m512i, cum: __m512i, scale: __m128i, top: __m512i) -> __m512i {
    let q = quotient_estimate_avx512(x, f);
    let r = _mm512_sub_epi32(x, _mm512_mullo_epi32(q, f));
    let base = _mm512_add_epi32(_mm512_add_epi32(_mm512_sll_epi32(q, scale), cum), r);
    let step = _mm512_sub_epi32(top, f);
    // r lies in [-f, 2f) (as i32): negative when q is one too many, f or more when one too few.
    let over = _mm512_cmplt_epi32_mask(r, _mm512_setzero_si512());
    let under = _mm512_cmpge_epi32_mask(r, f);
    let x = _mm512_mask_add_epi32(base, under, base, step);
    _mm512_mask_sub_epi32(x, over, x, step)
}

/// `x / f` within one, for states `x` below `f << (32 - MIN_SCALE)` and frequencies
/// `1 <= f <= 2^15`: see the module comment.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn quotient_estimate_avx512(x: __m512i, f: __m512i) -> __m512i {
    let ff = _mm512_cvtepu32_ps(f);
    let y = _mm512_rcp14_ps(ff);
    let y = _mm512_fmadd_ps(y, _mm512_fnmadd_ps(ff, y, _mm512_set1_ps(1.0)), y);
    _mm512_cvttps_epu32(_mm512_mul_ps(_mm512_cvtepu32_ps(x), y))
}

/// `Step512` with AVX2: four registers of eight lanes, each in reverse order.
struct Step256<'t, G> {
    t: &'t VecEncTable,
    gather: std::marker::PhantomData<G>,
    lo16: __m256i,
    reverse: __m256i,
    scale: __m128i,
    rscale: __m128i,
    sign: __m256i,
    two31: __m256d,
    last: __m256i,
}

/// Unsigned a >= b: max(a, b) == a.
#[inline(always)]
unsafe fn ge_epu32(a: __m256i, b: __m256i) -> __m256i {
    _mm256_cmpeq_epi32(_mm256_max_epu32(a, b), a)
}

impl<'t, G: Gather> Step256<'t, G> {
    #[inline(always)]
    unsafe fn new(t: &'t VecEncTable) -> Step256<'t, G> {
        Step256 {
            t,
            gather: std::marker::PhantomData,
            lo16: _mm256_set1_epi32(0xFFFF),
            reverse: _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0),
            scale: _mm_cvtsi32_si128(t.scale as i32),
            rscale: _mm_cvtsi32_si128(32 - t.scale as i32),
            sign: _mm256_set1_epi32(i32::MIN),
            two31: _mm256_set1_pd(2147483648.0),
            last: _mm256_set1_epi32(t.packed.len() as i32 - 1),
        }
    }

    #[inline(always)]
    unsafe fn load(&self, e: &mut RansEncoder) -> [__m256i; 4] {
        let states = e.states_mut().as_ptr() as *const __m256i;
        [0, 1, 2, 3].map(|k| _mm256_permutevar8x32_epi32(_mm256_loadu_si256(states.add(k)), self.reverse))
    }

    #[inline(always)]
    unsafe fn store(&self, e: &mut RansEncoder, x: &[__m256i; 4]) {
        let states = e.states_mut().as_mut_ptr() as *mut __m256i;
        for (k, x) in x.iter().enumerate() {
            _mm256_storeu_si256(states.add(k), _mm256_permutevar8x32_epi32(*x, self.reverse));
        }
    }

    #[inline(always)]
    unsafe fn lookup(&self, syms: [__m256i; 4]) -> Option<[__m256i; 4]> {
        let zero = _mm256_setzero_si256();
        let mut fc = [zero; 4];
        for k in 0..4 {
            // Every index at most the last entry, and every frequency above 0.
            if _mm256_movemask_epi8(ge_epu32(self.last, syms[k])) != -1 {
                return None;
            }
            let rev = _mm256_permutevar8x32_epi32(syms[k], self.reverse);
            fc[k] = G::g32(self.t.packed.as_ptr() as *const i32, rev);
            if _mm256_movemask_epi8(_mm256_cmpeq_epi32(_mm256_and_si256(fc[k], self.lo16), zero)) != 0 {
                return None;
            }
        }
        Some(fc)
    }

    #[inline(always)]
    unsafe fn code(&self, e: &mut RansEncoder, x: &mut [__m256i; 4], fc: [__m256i; 4]) {
        debug_assert!(e.room() >= LANES);
        for k in (0..4).rev() {
            let f = _mm256_and_si256(fc[k], self.lo16);
            let cum = _mm256_srli_epi32::<16>(fc[k]);
            let need = ge_epu32(_mm256_srl_epi32(x[k], self.rscale), f);
            let mask = _mm256_movemask_ps(_mm256_castsi256_ps(need)) as u8;
            // The low words of the shrinking lanes, highest lane first, packed to the front.
            let order = _mm256_loadu_si256(COMPRESS8[mask as usize].as_ptr() as *const __m256i);
            let w = _mm256_and_si256(_mm256_permutevar8x32_epi32(x[k], order), self.lo16);
            let w = _mm_packus_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256::<1>(w));
            _mm_storeu_si128(e.next_words() as *mut __m128i, w);
            e.keep_words(mask.count_ones() as usize);
            let xr = _mm256_blendv_epi8(x[k], _mm256_srli_epi32::<16>(x[k]), need);
            // q = x / f in double precision (x as unsigned: flip the sign bit, convert, add 2^31).
            let xs = _mm256_xor_si256(xr, self.sign);
            let xl = _mm256_add_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(xs)), self.two31);
            let xh = _mm256_add_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256::<1>(xs)), self.two31);
            let fl = _mm256_cvtepi32_pd(_mm256_castsi256_si128(f));
            let fh = _mm256_cvtepi32_pd(_mm256_extracti128_si256::<1>(f));
            let ql = _mm256_cvttpd_epi32(_mm256_div_pd(xl, fl));
            let qh = _mm256_cvttpd_epi32(_mm256_div_pd(xh, fh));
            let q = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(ql), qh);
            let r = _mm256_sub_epi32(xr, _mm256_mullo_epi32(q, f));
            x[k] = _mm256_add_epi32(_mm256_add_epi32(_mm256_sll_epi32(q, self.scale), r), cum);
        }
    }
}

/// `put_groups_avx512` with AVX2: `group(g)` gives the symbols of lanes 0..8, 8..16, 16..24 and
/// 24..32 of group `g`.
///
/// # Safety
/// The CPU must support AVX2 and POPCNT; `e` must have room as for `put_groups_avx512`.
#[inline]
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn put_groups_avx2(e: &mut RansEncoder, t: &VecEncTable, n: usize, group: impl FnMut(usize) -> [__m256i; 4]) -> usize {
    match gather::mode() {
        Mode::Hardware => groups_avx2::<Hardware>(e, t, n, group),
        Mode::Loads => groups_avx2::<Loads>(e, t, n, group),
    }
}

#[inline]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn groups_avx2<G: Gather>(e: &mut RansEncoder, t: &VecEncTable, n: usize, mut group: impl FnMut(usize) -> [__m256i; 4]) -> usize {
    let s = Step256::<G>::new(t);
    let mut x = s.load(e);
    for g in (0..n).rev() {
        let Some(fc) = s.lookup(group(g)) else {
            s.store(e, &x);
            return g + 1;
        };
        s.code(e, &mut x, fc);
    }
    s.store(e, &x);
    0
}

/// `put_groups_pair_avx512` with AVX2 (`group(s, g)` as `put_groups_avx2`'s `group(g)`).
///
/// # Safety
/// As `put_groups_avx2`, for both encoders.
#[inline]
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn put_groups_pair_avx2(
    e: [&mut RansEncoder; 2],
    t: &VecEncTable,
    n: [usize; 2],
    group: impl FnMut(usize, usize) -> [__m256i; 4],
) -> PairLeft {
    match gather::mode() {
        Mode::Hardware => groups_pair_avx2::<Hardware>(e, t, n, group),
        Mode::Loads => groups_pair_avx2::<Loads>(e, t, n, group),
    }
}

#[inline]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn groups_pair_avx2<G: Gather>(
    e: [&mut RansEncoder; 2],
    t: &VecEncTable,
    n: [usize; 2],
    mut group: impl FnMut(usize, usize) -> [__m256i; 4],
) -> PairLeft {
    let s = Step256::<G>::new(t);
    let [ea, eb] = e;
    let (mut xa, mut xb) = (s.load(ea), s.load(eb));
    let mut left = n;
    while left[0] > 0 && left[1] > 0 {
        let (ga, gb) = (left[0] - 1, left[1] - 1);
        let (fa, fb) = (s.lookup(group(0, ga)), s.lookup(group(1, gb)));
        let (Some(fa), Some(fb)) = (fa, fb) else {
            s.store(ea, &xa);
            s.store(eb, &xb);
            return PairLeft { left, escaped: [fa.is_none(), fb.is_none()] };
        };
        s.code(ea, &mut xa, fa);
        s.code(eb, &mut xb, fb);
        left = [ga, gb];
    }
    s.store(ea, &xa);
    s.store(eb, &xb);
    PairLeft { left, escaped: [false; 2] }
}

/// Codes the whole groups of `idx` (symbols as table indices, `LANES` per group) last to
/// first with `put_groups_avx512`; returns as it does.
///
/// # Safety
/// As `put_groups_avx512`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn put_indices_avx512(e: &mut RansEncoder, t: &VecEncTable, idx: &[u32]) -> usize {
    let p = idx.as_ptr() as *const __m512i;
    put_groups_avx512(e, t, idx.len() / LANES, |g| [_mm512_loadu_si512(p.add(2 * g) as *const _), _mm512_loadu_si512(p.add(2 * g + 1) as *const _)])
}

/// `put_indices_avx512` with AVX2.
///
/// # Safety
/// As `put_groups_avx2`.
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn put_indices_avx2(e: &mut RansEncoder, t: &VecEncTable, idx: &[u32]) -> usize {
    let p = idx.as_ptr() as *const __m256i;
    put_groups_avx2(e, t, idx.len() / LANES, |g| [0, 1, 2, 3].map(|k| _mm256_loadu_si256(p.add(4 * g + k))))
}

/// `put_indices_avx512` for two index arrays at once (`put_groups_pair_avx512`).
///
/// # Safety
/// As `put_groups_pair_avx512`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
pub unsafe fn put_indices_pair_avx512(e: [&mut RansEncoder; 2], t: &VecEncTable, idx: [&[u32]; 2]) -> PairLeft {
    let p = idx.map(|i| i.as_ptr() as *const __m512i);
    put_groups_pair_avx512(e, t, idx.map(|i| i.len() / LANES), |s, g| {
        [_mm512_loadu_si512(p[s].add(2 * g) as *const _), _mm512_loadu_si512(p[s].add(2 * g + 1) as *const _)]
    })
}

/// `put_indices_pair_avx512` with AVX2.
///
/// # Safety
/// As `put_groups_pair_avx2`.
#[target_feature(enable = "avx2,popcnt")]
pub unsafe fn put_indices_pair_avx2(e: [&mut RansEncoder; 2], t: &VecEncTable, idx: [&[u32]; 2]) -> PairLeft {
    let p = idx.map(|i| i.as_ptr() as *const __m256i);
    put_groups_pair_avx2(e, t, idx.map(|i| i.len() / LANES), |s, g| [0, 1, 2, 3].map(|k| _mm256_loadu_si256(p[s].add(4 * g + k))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX-512 step's next states are exact: every frequency of every scale the step takes,
    /// the smallest and largest cumulative counts, states at and around multiples of the
    /// frequency up to the largest a renormalised state can be (`f << (32 - scale)`), and the
    /// smallest states.
    #[test]
    fn next_states_are_exact() {
        if !std::is_x86_feature_detected!("avx512f") {
            eprintln!("no AVX-512 on this CPU: its step is not used here");
            return;
        }
        for scale in MIN_SCALE..=15 {
            let mut cases = Vec::new();
            for f in 1u32..=1 << scale {
                let top = ((f as u64) << (32 - scale)) - 1;
                let qmax = top / f as u64;
                for k in [0, 1, 2, 3, qmax / 3, qmax / 2, qmax - 1, qmax] {
                    for d in [-1i64, 0, 1] {
                        let x = (k * f as u64) as i64 + d;
                        if (1..=top as i64).contains(&x) {
                            cases.push((x as u32, f, if k % 2 == 0 { 0 } else { (1 << scale) - f }));
                        }
                    }
                }
            }
            for c in cases.chunks(16) {
                let (mut x, mut f, mut cum) = ([1u32; 16], [1u32; 16], [0u32; 16]);
                for (i, &(a, b, s)) in c.iter().enumerate() {
                    (x[i], f[i], cum[i]) = (a, b, s);
                }
                // SAFETY: AVX-512 F is present (checked above); the arrays hold 16 lanes.
                let next = unsafe {
                    let mut next = [0u32; 16];
                    let load = |a: &[u32; 16]| _mm512_loadu_si512(a.as_ptr() as *const _);
                    let shift = _mm_cvtsi32_si128(scale as i32);
                    let v = next_state_avx512(load(&x), load(&f), load(&cum), shift, _mm512_set1_epi32(1 << scale));
                    _mm512_storeu_si512(next.as_mut_ptr() as *mut _, v);
                    next
                };
                for i in 0..c.len() {
                    let want = ((x[i] / f[i]) << scale) + x[i] % f[i] + cum[i];
                    assert_eq!(next[i], want, "scale {scale} x {} f {} cum {}", x[i], f[i], cum[i]);
                }
            }
        }
    }
}
