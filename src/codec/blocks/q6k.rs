//! Q6_K (210 bytes per 256 weights): sixteen sub-blocks of 16 six-bit quants, each with an int8
//! scale, and one fp16 `d` for the block.
//!
//! ggml quantizes a sub-block so that its largest weight lands on the bottom quant (0, or 1
//! after its scale refinement), and spreads the rest by the sub-block's scale relative to the
//! block's. So each sub-block's smallest quant and its position are sent with the header, and
//! the other 15 are coded knowing the bottom is taken, in the context of the scale's magnitude
//! (measured on Qwen2.5's output.weight: 5.784 -> 5.716 bits per quant, position and minimum
//! included).

use super::Layout;

pub struct Q6K;

impl Layout for Q6K {
    const BLOCK: usize = 210;
    // d low byte, d high byte, the sixteen int8 scales, then per sub-block the position (16)
    // and the value (64) of its smallest quant.
    const HEADER_TABLES: &'static [usize] = &[256, 256, 256, 16, 64];
    const HEADER_SYMBOLS: usize = 50;
    // The 15 quants of each sub-block other than its smallest.
    const VALUES: usize = 240;
    const VALUE_ALPHABET: usize = 64;
    const CONTEXTS: usize = 32;
    const SUB_BLOCKS: usize = 16;

    #[inline(always)]
    fn header_table(i: usize) -> usize {
        match i {
            0 | 1 => i,
            2..18 => 2,
            18..34 => 3,
            _ => 4,
        }
    }

    /// The magnitude of the value's sub-block scale in 16 buckets, and whether the sub-block's
    /// smallest quant is 0 or more.
    #[inline(always)]
    fn context(h: &[u8], i: usize) -> usize {
        let sub = i / 15;
        let scale = ((h[2 + sub] as i8).unsigned_abs() >> 3).min(15) as usize;
        16 * (h[34 + sub] > 0) as usize + scale
    }

    fn split(b: &[u8], h: &mut [u8], v: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: AVX2 was detected.
            unsafe { split_avx2(b, h, v) };
            return;
        }
        split_scalar(b, h, v);
    }

    fn join(h: &[u8], v: &[u8], b: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            b[208] = h[0];
            b[209] = h[1];
            b[192..208].copy_from_slice(&h[2..18]);
            // SAFETY: AVX2 was detected.
            unsafe { join_quants_avx2(h, v, b) };
            return;
        }
        join_scalar(h, v, b);
    }
}

/// `split` without vectors: the reference the AVX2 kernel is tested against.
fn split_scalar(b: &[u8], h: &mut [u8], v: &mut [u8]) {
    let (ql, qh) = (&b[..128], &b[128..192]);
    h[0] = b[208];
    h[1] = b[209];
    h[2..18].copy_from_slice(&b[192..208]);
    // Quant y in ggml's order; sub-block j holds quants 16j..16j+16.
    let mut q = [0u8; 256];
    for n in 0..2 {
        let (ql, qh, y) = (&ql[64 * n..], &qh[32 * n..], 128 * n);
        for l in 0..32 {
            q[y + l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
            q[y + l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
            q[y + l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
            q[y + l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        }
    }
    // Branch-free: the minimum, its first position, and the other 15 by selects (a search
    // with a branch per quant and copies of variable length, which became memmove calls, took
    // a fifth of Q6_K's compression time).
    for (j, sub) in q.chunks_exact(16).enumerate() {
        let m = sub.iter().fold(u8::MAX, |a, &x| a.min(x));
        let pos = sub.iter().position(|&x| x == m).unwrap_or(0);
        h[18 + j] = pos as u8;
        h[34 + j] = m;
        let o = &mut v[15 * j..15 * j + 15];
        for (t, o) in o.iter_mut().enumerate() {
            *o = if t < pos { sub[t] } else { sub[t + 1] };
        }
    }
}

/// `join` without vectors: the reference the AVX2 kernel is tested against.
fn join_scalar(h: &[u8], v: &[u8], b: &mut [u8]) {
    b[208] = h[0];
    b[209] = h[1];
    b[192..208].copy_from_slice(&h[2..18]);
    let mut q = [0u8; 256];
    for (j, sub) in q.chunks_exact_mut(16).enumerate() {
        // `pos` < 16: it was decoded with a 16-symbol table.
        // Selects rather than copies of variable length, which become memmove calls.
        let (pos, m, o) = ((h[18 + j] & 15) as usize, h[34 + j], &v[15 * j..15 * j + 15]);
        for (t, x) in sub.iter_mut().enumerate() {
            let before = o[t.min(14)];
            let after = o[t.saturating_sub(1)];
            *x = if t < pos {
                before
            } else if t == pos {
                m
            } else {
                after
            };
        }
    }
    pack(&q, b);
}

/// ggml's packing of 256 six-bit quants (in ggml's order) into 128 bytes of low nibbles and 64
/// of high bit pairs. Plain loops over 32 lanes, which the compiler vectorises.
#[inline(always)]
fn pack(q: &[u8; 256], b: &mut [u8]) {
    let (ql, qh) = b[..192].split_at_mut(128);
    for n in 0..2 {
        let (ql, qh, y) = (&mut ql[64 * n..], &mut qh[32 * n..], 128 * n);
        for l in 0..32 {
            let (a, c, e, g) = (q[y + l], q[y + l + 32], q[y + l + 64], q[y + l + 96]);
            ql[l] = (a & 0xF) | (e << 4);
            ql[l + 32] = (c & 0xF) | (g << 4);
            qh[l] = (a >> 4) | ((c >> 4) << 2) | ((e >> 4) << 4) | ((g >> 4) << 6);
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    // Every vector level includes AVX2; WZ_SIMD=scalar turns this path off with the kernels.
    crate::cpu::detect() != crate::cpu::Level::Scalar
}

/// `split` on eight registers: ggml's packing undone (quants 32k..32k+32 in register k, two
/// sub-blocks per register, one per 128-bit half), each half's minimum by four rotations, its
/// first position from a compare mask, and the other 15 quants moved down over it by a byte
/// shuffle. The same as `split_scalar`, which the tests compare it with.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn split_avx2(b: &[u8], h: &mut [u8], v: &mut [u8]) {
    use std::arch::x86_64::*;
    assert!(b.len() >= 210 && h.len() >= 50 && v.len() >= 240);
    h[0] = b[208];
    h[1] = b[209];
    h[2..18].copy_from_slice(&b[192..208]);
    let m = |x: i8| _mm256_set1_epi8(x);
    let iota = _mm256_setr_epi8(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    );
    let (ql, qh) = (b.as_ptr(), b.as_ptr().add(128));
    let mut r = [_mm256_setzero_si256(); 8];
    for n in 0..2 {
        let a = _mm256_loadu_si256(ql.add(64 * n) as *const __m256i);
        let c = _mm256_loadu_si256(ql.add(64 * n + 32) as *const __m256i);
        let x = _mm256_loadu_si256(qh.add(32 * n) as *const __m256i);
        // Shifts are 16-bit (x86 has no byte shift); the masks drop what crosses bytes.
        let lo = |q| _mm256_and_si256(q, m(0x0F));
        let hi = |q| _mm256_and_si256(_mm256_srli_epi16::<4>(q), m(0x0F));
        r[4 * n] = _mm256_or_si256(lo(a), _mm256_and_si256(_mm256_slli_epi16::<4>(x), m(0x30)));
        r[4 * n + 1] = _mm256_or_si256(lo(c), _mm256_and_si256(_mm256_slli_epi16::<2>(x), m(0x30)));
        r[4 * n + 2] = _mm256_or_si256(hi(a), _mm256_and_si256(x, m(0x30)));
        r[4 * n + 3] = _mm256_or_si256(hi(c), _mm256_and_si256(_mm256_srli_epi16::<2>(x), m(0x30)));
    }
    let mut last = [0u8; 16];
    for (k, &q) in r.iter().enumerate() {
        // Each half's minimum in all its bytes: rotations within the 128-bit halves.
        let mut mn = _mm256_min_epu8(q, _mm256_alignr_epi8::<8>(q, q));
        mn = _mm256_min_epu8(mn, _mm256_alignr_epi8::<4>(mn, mn));
        mn = _mm256_min_epu8(mn, _mm256_alignr_epi8::<2>(mn, mn));
        mn = _mm256_min_epu8(mn, _mm256_alignr_epi8::<1>(mn, mn));
        let at = _mm256_movemask_epi8(_mm256_cmpeq_epi8(q, mn)) as u32;
        let (p0, p1) = ((at & 0xFFFF).trailing_zeros(), (at >> 16).trailing_zeros());
        let j = 2 * k;
        h[18 + j] = p0 as u8;
        h[18 + j + 1] = p1 as u8;
        h[34 + j] = _mm256_extract_epi8::<0>(mn) as u8;
        h[34 + j + 1] = _mm256_extract_epi8::<16>(mn) as u8;
        // Lane t takes quant t, or t + 1 from the position on (lane 15 is not stored).
        let pos = _mm256_set_m128i(_mm_set1_epi8(p1 as i8), _mm_set1_epi8(p0 as i8));
        let from = _mm256_cmpgt_epi8(_mm256_add_epi8(iota, m(1)), pos); // -1 where t >= pos
        let out = _mm256_shuffle_epi8(q, _mm256_sub_epi8(iota, from));
        // Sixteen bytes per half: each half's 16th lands on the next sub-block's first value,
        // which the next store writes; the last one goes through `last` (v ends there).
        _mm_storeu_si128(v.as_mut_ptr().add(15 * j) as *mut __m128i, _mm256_castsi256_si128(out));
        if j + 1 < 15 {
            _mm_storeu_si128(v.as_mut_ptr().add(15 * (j + 1)) as *mut __m128i, _mm256_extracti128_si256::<1>(out));
        } else {
            _mm_storeu_si128(last.as_mut_ptr() as *mut __m128i, _mm256_extracti128_si256::<1>(out));
            v[225..240].copy_from_slice(&last[..15]);
        }
    }
}

/// `join`'s quants, packed: each sub-block's smallest put back at its position, two sub-blocks at
/// once (one per 128-bit half; a byte shuffle moves lanes after the position one to their
/// right, a blend writes the minimum), then ggml's packing done on the eight registers, so the
/// 256 quants never go through memory (a quant array between the two steps cost a sixth of
/// Q6_K's decoding time). The same as the scalar loop and `pack`, which the tests compare it with.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn join_quants_avx2(h: &[u8], v: &[u8], b: &mut [u8]) {
    use std::arch::x86_64::*;
    assert!(h.len() >= 50 && v.len() >= 240 && b.len() >= 192);
    let iota = _mm256_setr_epi8(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    );
    // The sixteen positions and minima, in both halves; lanes pick theirs with a shuffle.
    let positions = _mm256_broadcastsi128_si256(_mm_and_si128(
        _mm_loadu_si128(h.as_ptr().add(18) as *const __m128i),
        _mm_set1_epi8(15),
    ));
    let minima = _mm256_broadcastsi128_si256(_mm_loadu_si128(h.as_ptr().add(34) as *const __m128i));
    let mut r = [_mm256_setzero_si256(); 8];
    for (k, r) in r.iter_mut().enumerate() {
        let j = 2 * k;
        // Each half: a sub-block's 15 values; the 16th byte is the next one's first, or (for the
        // last sub-block, whose 16-byte load at 225 would pass the end) a zero shifted in.
        let lo = _mm_loadu_si128(v.as_ptr().add(15 * j) as *const __m128i);
        let hi = if j + 1 < 15 {
            _mm_loadu_si128(v.as_ptr().add(15 * (j + 1)) as *const __m128i)
        } else {
            _mm_srli_si128::<1>(_mm_loadu_si128(v.as_ptr().add(224) as *const __m128i))
        };
        let src = _mm256_set_m128i(hi, lo);
        let which = _mm256_set_m128i(_mm_set1_epi8(j as i8 + 1), _mm_set1_epi8(j as i8));
        let pos = _mm256_shuffle_epi8(positions, which);
        let min = _mm256_shuffle_epi8(minima, which);
        let after = _mm256_cmpgt_epi8(iota, pos); // -1 where t > pos
        let q = _mm256_shuffle_epi8(src, _mm256_add_epi8(iota, after)); // t, or t - 1 after the position
        *r = _mm256_blendv_epi8(q, min, _mm256_cmpeq_epi8(iota, pos));
    }
    // `pack` on registers: quants 32k..32k+32 are r[k]. Shifts are 16-bit (x86 has no byte
    // shift); the masks drop what crosses from the neighbouring byte.
    let m = |x: i8| _mm256_set1_epi8(x);
    let (ql, qh) = b[..192].split_at_mut(128);
    for n in 0..2 {
        let (a, c, e, g) = (r[4 * n], r[4 * n + 1], r[4 * n + 2], r[4 * n + 3]);
        let nib = |x, y| _mm256_or_si256(_mm256_and_si256(x, m(0x0F)), _mm256_and_si256(_mm256_slli_epi16::<4>(y), m(-16)));
        _mm256_storeu_si256(ql.as_mut_ptr().add(64 * n) as *mut __m256i, nib(a, e));
        _mm256_storeu_si256(ql.as_mut_ptr().add(64 * n + 32) as *mut __m256i, nib(c, g));
        let high = _mm256_or_si256(
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16::<4>(a), m(0x03)),
                _mm256_and_si256(_mm256_srli_epi16::<2>(c), m(0x0C)),
            ),
            _mm256_or_si256(_mm256_and_si256(e, m(0x30)), _mm256_and_si256(_mm256_slli_epi16::<2>(g), m(-64))),
        );
        _mm256_storeu_si256(qh.as_mut_ptr().add(32 * n) as *mut __m256i, high);
    }
}

#[cfg(all(test, target_arch = "x86_64"))] // the kernels tested here are x86-64 only
mod tests {
    use super::*;

    /// The AVX2 split against the scalar loop, on random blocks (every byte pattern of the
    /// quants, ties for the minimum included).
    #[test]
    fn avx2_split_equals_the_scalar_loop() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut rng = crate::test_rng::Lcg::new(9);
        for round in 0..4000 {
            let mut b = [0u8; 210];
            b.iter_mut().for_each(|x| *x = rng.next_u32() as u8);
            if round % 2 == 1 {
                // Few distinct quants: many ties for the smallest.
                b[..192].iter_mut().for_each(|x| *x &= 0x11);
            }
            let (mut h0, mut v0) = ([0u8; 50], [0u8; 240]);
            let (mut h1, mut v1) = ([0u8; 50], [0u8; 240]);
            split_scalar(&b, &mut h0, &mut v0);
            // SAFETY: AVX2 was detected.
            unsafe { split_avx2(&b, &mut h1, &mut v1) };
            assert_eq!((h0, v0), (h1, v1), "round {round}");
        }
    }

    /// The AVX2 join against the scalar loop, on random sub-block positions, minima and values
    /// (every quant below 64, as the 64-symbol tables decode them; positions with their high
    /// bits set, which the kernel masks as the loop does).
    #[test]
    fn avx2_join_equals_the_scalar_loop() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut rng = crate::test_rng::Lcg::new(6);
        for _ in 0..2000 {
            let mut h = [0u8; 50];
            let mut v = [0u8; 240];
            h.iter_mut().for_each(|x| *x = rng.next_u32() as u8);
            h[34..50].iter_mut().for_each(|x| *x &= 63);
            v.iter_mut().for_each(|x| *x = rng.next_u32() as u8 & 63);
            let mut want = [0u8; 210];
            join_scalar(&h, &v, &mut want);
            let mut got = [0u8; 210];
            got[192..].copy_from_slice(&want[192..]);
            // SAFETY: AVX2 was detected.
            unsafe { join_quants_avx2(&h, &v, &mut got) };
            assert_eq!(got, want);
        }
    }
}
