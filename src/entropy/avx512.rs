//! The AVX-512 renormalisation step shared by the decode kernels: 32 lanes as two vectors of
//! sixteen.

use std::arch::x86_64::*;

use super::packed::{with_scale, Cursor, PackedPart};
use super::rans::{LANES, RANS_L};

/// Renormalises the new states `xn` of all 32 lanes: lanes in `need` take the next words of the
/// stream at byte `*at` of `words` in lane order (`expand` places consecutive words into exactly
/// those lanes), and `*at` moves past them. The second vector's offset is a prefix count of the
/// first's, so the two loads do not wait on each other. The kernels keep `words` and `at` in
/// registers across their loop (through a decoder behind a reference they would be reloaded
/// from memory at every group).
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL, and `words[*at..]` must hold at least `LANES`
/// words: the loads then stay in bounds (the second 32-byte load starts at most 32 bytes in).
#[inline(always)]
pub unsafe fn renorm_at(words: *const u8, at: &mut usize, xn: &[__m512i; 2], need: &[u16; 2]) -> [__m512i; 2] {
    let mut x = *xn;
    let base = *at;
    let first = 2 * need[0].count_ones() as usize;
    for (k, off) in [0, first].into_iter().enumerate() {
        let w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(words.add(base + off) as *const __m256i));
        x[k] =
            _mm512_mask_or_epi32(xn[k], need[k], _mm512_slli_epi32::<16>(xn[k]), _mm512_maskz_expand_epi32(need[k], w));
    }
    *at = base + first + 2 * need[1].count_ones() as usize;
    x
}

/// A part being decoded by the AVX-512 kernel, its position and states held in registers.
struct Part<'a> {
    x: [__m512i; 2],
    cur: Cursor<'a>,
    out: *mut u8,
    groups: usize,
    g: usize,
    words: *const u8,
    end: usize,
    pos: usize,
    table: *const i32,
}

impl<'a> Part<'a> {
    #[inline(always)]
    unsafe fn load(p: &mut PackedPart<'a, '_, '_>) -> Self {
        let out = p.out.as_mut_ptr().add(p.done);
        let d = &*p.d;
        let s = d.states.as_ptr();
        Part {
            x: [_mm512_loadu_si512(s as *const _), _mm512_loadu_si512(s.add(16) as *const _)],
            cur: Cursor::new(p.tables, p.done / LANES),
            out,
            groups: (p.out.len() - p.done) / LANES,
            g: 0,
            words: d.words.as_ptr(),
            end: d.words.len(),
            pos: d.pos,
            table: p.packed.as_ptr() as *const i32,
        }
    }

    /// A whole group of symbols is left and a whole group's words remain (so the loads in
    /// `renorm_at` stay in bounds).
    #[inline(always)]
    fn can_step(&self) -> bool {
        self.g < self.groups && self.end - self.pos >= 2 * LANES
    }

    /// Decodes the next group with tables of scale `S`. The caller has checked `can_step`.
    #[inline(always)]
    unsafe fn step<const S: u32>(&mut self) {
        let slot_mask = _mm512_set1_epi32((1 << S) - 1);
        let f_mask = _mm512_set1_epi32(0xFFF);
        let one = _mm512_set1_epi32(1);
        let bound = _mm512_set1_epi32(RANS_L as i32);
        let o = self.out.add(self.g * LANES);
        let offs = self.cur.group();
        let runs = self.cur.runs();
        let mut xn = [_mm512_setzero_si512(); 2];
        let mut need = [0u16; 2];
        for k in 0..2 {
            let off = match (self.cur.one(), runs) {
                (Some(b), _) => _mm512_set1_epi32(b as i32),
                // The vector's runs, from its first on, spread to the lanes.
                (_, Some((subs, pat, at))) => {
                    let j = 2 * at + k;
                    let first = _mm512_loadu_si512(subs.add(*pat.start16.get_unchecked(j) as usize) as *const _);
                    _mm512_permutexvar_epi32(_mm512_loadu_si512(pat.idx16.as_ptr().add(j) as *const _), first)
                }
                _ => _mm512_loadu_si512(offs.add(16 * k) as *const _),
            };
            let e = _mm512_i32gather_epi32::<4>(_mm512_add_epi32(off, _mm512_and_si512(self.x[k], slot_mask)), self.table);
            let f = _mm512_add_epi32(_mm512_and_si512(e, f_mask), one);
            let bias = _mm512_and_si512(_mm512_srli_epi32::<12>(e), f_mask);
            xn[k] = _mm512_add_epi32(_mm512_mullo_epi32(f, _mm512_srli_epi32::<S>(self.x[k])), bias);
            need[k] = _mm512_cmplt_epu32_mask(xn[k], bound);
            _mm_storeu_si128(o.add(16 * k) as *mut __m128i, _mm512_cvtepi32_epi8(_mm512_srli_epi32::<24>(e)));
        }
        self.x = renorm_at(self.words, &mut self.pos, &xn, &need);
        self.cur.advance();
        self.g += 1;
    }

    #[inline(always)]
    unsafe fn store(&self, p: &mut PackedPart) {
        let d = &mut *p.d;
        d.pos = self.pos;
        let s = d.states.as_mut_ptr();
        _mm512_storeu_si512(s as *mut _, self.x[0]);
        _mm512_storeu_si512(s.add(16) as *mut _, self.x[1]);
        p.done += self.g * LANES;
    }
}

/// Decodes whole groups of `LANES` byte symbols with packed tables (see
/// `packed::decode_stream`) while the stream holds a group's words, advancing `p.done`.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL; every offset must leave a whole table inside
/// `p.packed`, and `Tables::Runs` must hold an offset for every run of `p.out` and `RUN_PAD` more.
pub unsafe fn decode_packed(p: &mut PackedPart) {
    with_scale!(p.scale, packed(p))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
unsafe fn packed<const S: u32>(p: &mut PackedPart) {
    debug_assert_eq!(p.scale, S);
    let mut a = Part::load(p);
    while a.can_step() {
        a.step::<S>();
    }
    a.store(p);
}

/// `decode_packed` for two independent streams, a group of each in turn while both can go on:
/// two chains of gathers for the core to overlap.
///
/// # Safety
/// As `decode_packed`, for both.
pub unsafe fn decode_packed_pair(pa: &mut PackedPart, pb: &mut PackedPart) {
    if pa.scale == pb.scale {
        with_scale!(pa.scale, packed_pair(pa, pb))
    } else {
        decode_packed(pa);
        decode_packed(pb);
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,popcnt")]
unsafe fn packed_pair<const S: u32>(pa: &mut PackedPart, pb: &mut PackedPart) {
    let (mut a, mut b) = (Part::load(pa), Part::load(pb));
    while a.can_step() && b.can_step() {
        a.step::<S>();
        b.step::<S>();
    }
    a.store(pa);
    b.store(pb);
}
