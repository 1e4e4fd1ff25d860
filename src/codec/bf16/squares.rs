//! Sums of squares of bf16 values, the inputs of method 6's row and column scales (`context`):
//! a row's sum, and a row's squares times a weight added into per-column sums. Both run over
//! every value of a matrix, so they have vector kernels; the kernels do the scalar loops'
//! arithmetic in the scalar loops' order (the sums are floating point, and the encoder's output
//! must not depend on the CPU), which the tests below hold them to bit for bit.

#[cfg(target_arch = "x86_64")]
use crate::cpu::{self, Level};

/// Running sums of a row's squares: values at positions `k` modulo `ACC` go to sum `k`.
const ACC: usize = 16;

/// The square of bf16 value `v` in `f32` arithmetic (which overflows to infinity above 2^64);
/// infinities and NaNs count as zero.
#[inline(always)]
pub fn square(v: u16) -> f32 {
    let a = (v & 0x7FFF) as i32;
    let x = f32::from_bits((a as u32) << 16);
    // All ones below the infinities, else zero: a mask, not a branch.
    let finite = ((a - 0x7F80) >> 31) as u32;
    f32::from_bits((x * x).to_bits() & finite)
}

/// The sum of the squares of the little-endian bf16 values `b` (even length), in a fixed
/// order: `ACC` running sums over the values' positions modulo `ACC` (as `f64`), added pairwise
/// (sum k and sum k + w for w = 8, 4, 2, 1), then the values past the last whole `ACC` in
/// order. A plain loop's one chain of dependent additions ran at a fraction of the speed.
pub fn sum(b: &[u8]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if cpu::detect() >= Level::Avx2 {
        // SAFETY: the CPU has AVX2.
        return unsafe { x86::sum_avx2(b) };
    }
    sum_scalar(b)
}

/// `sum` without vector kernels: the reference.
pub fn sum_scalar(b: &[u8]) -> f64 {
    let mut acc = [0.0f64; ACC];
    let mut it = b.chunks_exact(2 * ACC);
    for c in &mut it {
        for (k, a) in acc.iter_mut().enumerate() {
            *a += square(u16::from_le_bytes([c[2 * k], c[2 * k + 1]])) as f64;
        }
    }
    finish(acc, it.remainder())
}

/// The pairwise reduction of `acc`, then the `tail` values added in order.
fn finish(mut acc: [f64; ACC], tail: &[u8]) -> f64 {
    let mut w = ACC;
    while w > 1 {
        w /= 2;
        for k in 0..w {
            acc[k] += acc[k + w];
        }
    }
    tail.chunks_exact(2).fold(acc[0], |s, v| s + square(u16::from_le_bytes([v[0], v[1]])) as f64)
}

/// Adds `square(value) * w` of each little-endian bf16 value of `b` to the entry of `out` at
/// its position (`out` at least as long as `b` has values).
pub fn add_weighted(out: &mut [f64], b: &[u8], w: f64) {
    assert!(out.len() >= b.len() / 2);
    #[cfg(target_arch = "x86_64")]
    if cpu::detect() >= Level::Avx2 {
        // SAFETY: the CPU has AVX2; `out` is long enough (asserted).
        return unsafe { x86::add_weighted_avx2(out, b, w) };
    }
    add_weighted_scalar(out, b, w)
}

/// `add_weighted` without vector kernels: the reference.
pub fn add_weighted_scalar(out: &mut [f64], b: &[u8], w: f64) {
    for (o, v) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o += square(u16::from_le_bytes([v[0], v[1]])) as f64 * w;
    }
}

/// Adds 1 to the entry of `neg` at each little-endian 16-bit value's position in `b` whose
/// sign bit is set (`neg` at least as long as `b` has values): the columns' sign counts of
/// method 6 (`context::column_signs`), over the same sampled rows as `add_weighted`.
pub fn add_signs(neg: &mut [u16], b: &[u8]) {
    assert!(neg.len() >= b.len() / 2);
    #[cfg(target_arch = "x86_64")]
    if cpu::detect() >= Level::Avx2 {
        // SAFETY: the CPU has AVX2; `neg` is long enough (asserted).
        return unsafe { x86::add_signs_avx2(neg, b) };
    }
    add_signs_scalar(neg, b)
}

/// `add_signs` without vector kernels: the reference.
pub fn add_signs_scalar(neg: &mut [u16], b: &[u8]) {
    for (n, v) in neg.iter_mut().zip(b.chunks_exact(2)) {
        *n = n.wrapping_add((v[1] >> 7) as u16);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{finish, ACC};

    /// The squares of the eight bf16 values at `p` as `f32`, as `square` computes them.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn squares8(p: *const u8) -> __m256 {
        let v = _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i));
        let a = _mm256_and_si256(v, _mm256_set1_epi32(0x7FFF));
        let x = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(a));
        let finite = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7F80), a);
        _mm256_and_ps(_mm256_mul_ps(x, x), _mm256_castsi256_ps(finite))
    }

    /// `sum` with AVX2: the `ACC` running sums in four vectors of four.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn sum_avx2(b: &[u8]) -> f64 {
        let mut acc = [_mm256_setzero_pd(); 4];
        let whole = b.len() / (2 * ACC) * (2 * ACC);
        let mut at = 0;
        while at < whole {
            let p = b.as_ptr().add(at);
            let (lo, hi) = (squares8(p), squares8(p.add(16)));
            acc[0] = _mm256_add_pd(acc[0], _mm256_cvtps_pd(_mm256_castps256_ps128(lo)));
            acc[1] = _mm256_add_pd(acc[1], _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(lo)));
            acc[2] = _mm256_add_pd(acc[2], _mm256_cvtps_pd(_mm256_castps256_ps128(hi)));
            acc[3] = _mm256_add_pd(acc[3], _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(hi)));
            at += 2 * ACC;
        }
        let mut sums = [0.0f64; ACC];
        for (k, a) in acc.iter().enumerate() {
            _mm256_storeu_pd(sums.as_mut_ptr().add(4 * k), *a);
        }
        finish(sums, &b[whole..])
    }

    /// `add_weighted` with AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2; `out` must have at least `b.len() / 2` entries.
    #[target_feature(enable = "avx2")]
    pub unsafe fn add_weighted_avx2(out: &mut [f64], b: &[u8], w: f64) {
        let n = b.len() / 2;
        let whole = n / 8 * 8;
        let wv = _mm256_set1_pd(w);
        let o = out.as_mut_ptr();
        for i in (0..whole).step_by(8) {
            let s = squares8(b.as_ptr().add(2 * i));
            let lo = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(s)), wv);
            let hi = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps::<1>(s)), wv);
            _mm256_storeu_pd(o.add(i), _mm256_add_pd(_mm256_loadu_pd(o.add(i)), lo));
            _mm256_storeu_pd(o.add(i + 4), _mm256_add_pd(_mm256_loadu_pd(o.add(i + 4)), hi));
        }
        super::add_weighted_scalar(&mut out[whole..], &b[2 * whole..], w);
    }

    /// `add_signs` with AVX2: sixteen values' sign bits at a time.
    ///
    /// # Safety
    /// The CPU must support AVX2; `neg` must have at least `b.len() / 2` entries.
    #[target_feature(enable = "avx2")]
    pub unsafe fn add_signs_avx2(neg: &mut [u16], b: &[u8]) {
        let n = b.len() / 2;
        let whole = n / 16 * 16;
        let o = neg.as_mut_ptr() as *mut __m256i;
        for i in (0..whole).step_by(16) {
            let v = _mm256_srli_epi16::<15>(_mm256_loadu_si256(b.as_ptr().add(2 * i) as *const __m256i));
            let at = o.byte_add(2 * i);
            _mm256_storeu_si256(at, _mm256_add_epi16(_mm256_loadu_si256(at), v));
        }
        super::add_signs_scalar(&mut neg[whole..], &b[2 * whole..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Lcg;

    /// Every bit pattern squares as `f32` arithmetic does (infinities and NaNs to zero).
    #[test]
    fn squares_are_f32_arithmetic() {
        for v in 0..=u16::MAX {
            let x = f32::from_bits((v as u32) << 16);
            let want = if x.is_finite() { x * x } else { 0.0 };
            assert_eq!(square(v).to_bits(), want.to_bits(), "{v:#06x}");
        }
    }

    /// The kernels give the scalar loops' sums bit for bit: every length modulo the vectors,
    /// values of every magnitude (whose sums round), specials among them.
    #[test]
    fn kernels_sum_as_the_scalar_loops() {
        let mut r = Lcg::new(11);
        for n in (0..100).chain([383, 384, 1536, 4097]) {
            let b: Vec<u8> = (0..n)
                .flat_map(|i| {
                    let v = if i % 7 == 3 { r.below(1 << 16) as u16 } else { 0x3000 + r.below(0x1400) as u16 };
                    v.to_le_bytes()
                })
                .collect();
            assert_eq!(sum(&b).to_bits(), sum_scalar(&b).to_bits(), "n {n}");
            let mut got: Vec<f64> = (0..n).map(|i| i as f64 * 0.25).collect();
            let mut want = got.clone();
            add_weighted(&mut got, &b, 0.37);
            add_weighted_scalar(&mut want, &b, 0.37);
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "n {n}");
            let mut got: Vec<u16> = (0..n).map(|i| i as u16).collect();
            let mut want = got.clone();
            add_signs(&mut got, &b);
            add_signs_scalar(&mut want, &b);
            assert_eq!(got, want, "n {n}");
            let negatives = b.chunks_exact(2).filter(|v| v[1] & 0x80 != 0).count();
            assert_eq!(got.iter().zip(0..n).map(|(&g, i)| (g - i as u16) as usize).sum::<usize>(), negatives, "n {n}");
        }
    }
}
