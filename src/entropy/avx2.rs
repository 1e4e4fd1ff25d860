//! The AVX2 renormalisation step shared by the decode kernels: 32 lanes as four vectors of eight.

use std::arch::x86_64::*;

use super::gather::{self, Gather, Hardware, Loads, Mode};
use super::packed::{with_scale, Cursor, PackedPart};
use super::rans::{LANES, RANS_L};

/// For each 8-bit mask of lanes, the two permutations AVX2 lacks an instruction for: `.0` spreads
/// words to the set lanes (lane i takes word popcount(mask & ((1 << i) - 1)), so the set lanes
/// take the next words in lane order, exactly as the scalar decoder reads them: the decoders'
/// renormalisation); `.1` gathers the set lanes to the front, in lane order (the encoder's).
const LANE_PERMS: ([[u32; 8]; 256], [[u32; 8]; 256]) = {
    let (mut spread, mut pack) = ([[0u32; 8]; 256], [[0u32; 8]; 256]);
    let mut m = 0;
    while m < 256 {
        let (mut i, mut k) = (0, 0);
        while i < 8 {
            if m & (1 << i) != 0 {
                spread[m][i] = k;
                pack[m][k as usize] = i as u32;
                k += 1;
            }
            i += 1;
        }
        m += 1;
    }
    (spread, pack)
};
static RENORM_PERM8: [[u32; 8]; 256] = LANE_PERMS.0;
/// `LANE_PERMS.1`: for each mask, the indices of its set lanes in ascending order (then zeros).
pub static COMPRESS8: [[u32; 8]; 256] = LANE_PERMS.1;

/// Renormalises the new states `xn` of all 32 lanes: lanes below `RANS_L` take the next words of
/// the stream in lane order. Each vector's offset is a prefix sum of the earlier vectors' counts,
/// so the four loads do not wait on each other. The stream's words and position are held by the
/// caller (in registers across a loop, where a decoder behind a reference would be reloaded from
/// memory at every group).
///
/// # Safety
/// The CPU must support AVX2 and POPCNT, and `words[*at..]` must hold at least `LANES` words
/// (`at` counts bytes): the loads then stay in bounds (a vector's 16-byte load starts at most 48
/// bytes in).
#[inline(always)]
pub unsafe fn renorm_at(words: *const u8, at: &mut usize, xn: &[__m256i; 4]) -> [__m256i; 4] {
    // x < RANS_L as unsigned: min(x, RANS_L - 1) == x.
    let below = _mm256_set1_epi32(RANS_L as i32 - 1);
    let mut x = *xn;
    let mut masks = [0usize; 4];
    for k in 0..4 {
        let need = _mm256_cmpeq_epi32(_mm256_min_epu32(xn[k], below), xn[k]);
        masks[k] = _mm256_movemask_ps(_mm256_castsi256_ps(need)) as usize;
    }
    // Each vector's first word: independent prefix counts, not a chain through the loads.
    let all = masks[0] | masks[1] << 8 | masks[2] << 16 | masks[3] << 24;
    let base = *at;
    for k in 0..4 {
        let before = 2 * (all & ((1usize << (8 * k)) - 1)).count_ones() as usize;
        let w = _mm256_cvtepu16_epi32(_mm_loadu_si128(words.add(base + before) as *const __m128i));
        let w = _mm256_permutevar8x32_epi32(w, _mm256_loadu_si256(RENORM_PERM8[masks[k]].as_ptr() as *const __m256i));
        let need = _mm256_cmpeq_epi32(_mm256_min_epu32(xn[k], below), xn[k]);
        x[k] = _mm256_blendv_epi8(xn[k], _mm256_or_si256(_mm256_slli_epi32::<16>(xn[k]), w), need);
    }
    *at = base + 2 * all.count_ones() as usize;
    x
}

/// A part being decoded by the AVX2 kernel, its position and states held in registers.
struct Part<'a> {
    x: [__m256i; 4],
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
        let mut x = [_mm256_setzero_si256(); 4];
        for (k, xk) in x.iter_mut().enumerate() {
            *xk = _mm256_loadu_si256(d.states.as_ptr().add(8 * k) as *const __m256i);
        }
        Part {
            x,
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
    unsafe fn step<G: Gather, const S: i32>(&mut self) {
        let slot_mask = _mm256_set1_epi32((1 << S) - 1);
        let f_mask = _mm256_set1_epi32(0xFFF);
        let one = _mm256_set1_epi32(1);
        // Bytes 0, 4, 8, 12 of each 128-bit half: the symbol byte of each lane after the shift.
        let pick = _mm256_setr_epi8(
            0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1,
            -1, -1, -1, -1,
        );
        let o = self.out.add(self.g * LANES);
        let offs = self.cur.group();
        let runs = self.cur.runs();
        let mut xn = [_mm256_setzero_si256(); 4];
        for (k, xn) in xn.iter_mut().enumerate() {
            let off = match (self.cur.one(), runs) {
                (Some(b), _) => _mm256_set1_epi32(b as i32),
                // The vector's runs, from its first on, spread to the lanes.
                (_, Some((subs, pat, at))) => {
                    let j = 4 * at + k;
                    let first = _mm256_loadu_si256(subs.add(*pat.start8.get_unchecked(j) as usize) as *const __m256i);
                    _mm256_permutevar8x32_epi32(first, _mm256_loadu_si256(pat.idx8.as_ptr().add(j) as *const __m256i))
                }
                _ => _mm256_loadu_si256(offs.add(8 * k) as *const __m256i),
            };
            let e = G::g32(self.table, _mm256_add_epi32(off, _mm256_and_si256(self.x[k], slot_mask)));
            let f = _mm256_add_epi32(_mm256_and_si256(e, f_mask), one);
            let bias = _mm256_and_si256(_mm256_srli_epi32::<12>(e), f_mask);
            *xn = _mm256_add_epi32(_mm256_mullo_epi32(f, _mm256_srli_epi32::<S>(self.x[k])), bias);
            // The eight symbol bytes: one shuffle per half, then the halves' low dwords.
            let b = _mm256_shuffle_epi8(_mm256_srli_epi32::<24>(e), pick);
            let lo = _mm256_cvtsi256_si32(b) as u32;
            let hi = _mm256_extract_epi32::<4>(b) as u32;
            let w = (lo as u64) | (hi as u64) << 32;
            std::ptr::write_unaligned(o.add(8 * k) as *mut u64, w.to_le());
        }
        self.x = renorm_at(self.words, &mut self.pos, &xn);
        self.cur.advance();
        self.g += 1;
    }

    #[inline(always)]
    unsafe fn store(&self, p: &mut PackedPart) {
        let d = &mut *p.d;
        d.pos = self.pos;
        for (k, xk) in self.x.iter().enumerate() {
            _mm256_storeu_si256(d.states.as_mut_ptr().add(8 * k) as *mut __m256i, *xk);
        }
        p.done += self.g * LANES;
    }
}

/// `avx512::decode_packed` with four vectors of eight lanes, advancing `p.done`.
///
/// # Safety
/// The CPU must support AVX2 and POPCNT; every offset must leave a whole table inside `p.packed`,
/// and `Tables::Runs` must hold an offset for every run of `p.out` and `RUN_PAD` more.
pub unsafe fn decode_packed(p: &mut PackedPart) {
    match gather::mode() {
        Mode::Hardware => with_scale!(p.scale, packed::<Hardware>(p)),
        Mode::Loads => with_scale!(p.scale, packed::<Loads>(p)),
    }
}

#[target_feature(enable = "avx2,popcnt")]
unsafe fn packed<G: Gather, const S: i32>(p: &mut PackedPart) {
    debug_assert_eq!(p.scale as i32, S);
    let mut a = Part::load(p);
    while a.can_step() {
        a.step::<G, S>();
    }
    a.store(p);
}

/// `decode_packed` for two independent streams, a group of each in turn while both can go on:
/// two chains of gathers for the core to overlap (their states do not all fit in registers, but
/// the spills cost less than the gathers' latency they hide).
///
/// # Safety
/// As `decode_packed`, for both.
pub unsafe fn decode_packed_pair(pa: &mut PackedPart, pb: &mut PackedPart) {
    if pa.scale == pb.scale {
        match gather::mode() {
            Mode::Hardware => with_scale!(pa.scale, packed_pair::<Hardware>(pa, pb)),
            Mode::Loads => with_scale!(pa.scale, packed_pair::<Loads>(pa, pb)),
        }
    } else {
        decode_packed(pa);
        decode_packed(pb);
    }
}

#[target_feature(enable = "avx2,popcnt")]
unsafe fn packed_pair<G: Gather, const S: i32>(pa: &mut PackedPart, pb: &mut PackedPart) {
    let (mut a, mut b) = (Part::load(pa), Part::load(pb));
    while a.can_step() && b.can_step() {
        a.step::<G, S>();
        b.step::<G, S>();
    }
    a.store(pa);
    b.store(pb);
}
