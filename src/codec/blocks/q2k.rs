//! Q2_K (84 bytes per 256 weights): sixteen bytes each holding a sub-block's 4-bit scale (low
//! nibble) and 4-bit min (high nibble), 64 bytes of two-bit quants, fp16 `d` and `dmin`; weight =
//! d·sc·q − dmin·m.
//!
//! Four neighbouring quants of one sub-block (16 quants) make one 256-symbol value, coded in the
//! context of the sub-block's zero point z = dmin·m / (d·sc) in quarter steps: with two bits per
//! quant, where weight 0 falls between the four levels decides most of their distribution
//! (measured on the derived corpora: 1.915 -> 1.805 bits per quant on Gemma 3's embedding).
//!
//! A block has sixteen sub-blocks, so the zero point is computed without a division per
//! sub-block: the block's ratio 4·dmin/d once, times m/sc from a table of the 256 scale bytes.

use super::bit_pairs::{low_bits, pack_low_bits};
use super::Layout;
use crate::codec::q4k::f16_to_f32;

/// m / sc for every scale byte (sc in the low nibble, m in the high), correctly rounded f32
/// quotients (infinite or NaN where sc = 0).
static MIN_OVER_SCALE: [f32; 256] = {
    let mut t = [0f32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i >> 4) as f32 / (i & 15) as f32;
        i += 1;
    }
    t
};

/// The block's 4·dmin / d.
#[inline(always)]
fn ratio(h: &[u8]) -> f32 {
    let d = f16_to_f32(u16::from_le_bytes([h[0], h[1]]));
    4.0 * f16_to_f32(u16::from_le_bytes([h[2], h[3]])) / d
}

/// round(r · m/sc) clamped to 15, and 0 where that is not finite or negative.
#[inline(always)]
fn zero_point(r: f32, scale_byte: u8) -> u8 {
    let z = r * MIN_OVER_SCALE[scale_byte as usize];
    if z.is_finite() && z >= 0.0 {
        ((z + 0.5) as usize).min(15) as u8
    } else {
        0
    }
}

pub struct Q2K;

impl Layout for Q2K {
    const BLOCK: usize = 84;
    // d low/high byte, dmin low/high byte, then the sixteen scale-and-min bytes.
    const HEADER_TABLES: &'static [usize] = &[256, 256, 256, 256, 256];
    const HEADER_SYMBOLS: usize = 20;
    // Runs of four quants: sub-block j's four are values 4j..4j+4.
    const VALUES: usize = 64;
    const VALUE_ALPHABET: usize = 256;
    const QUANTS_PER_VALUE: usize = 4;
    const CONTEXTS: usize = 16;
    const SUB_BLOCKS: usize = 16;

    #[inline(always)]
    fn header_table(i: usize) -> usize {
        i.min(4)
    }

    #[inline(always)]
    fn context(h: &[u8], i: usize) -> usize {
        zero_point(ratio(h), h[4 + i / 4]) as usize
    }

    #[inline(always)]
    fn sub_block_contexts(h: &[u8], out: &mut [u8]) {
        let r = ratio(h);
        let bytes: &[u8; 16] = h[4..20].try_into().unwrap();
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::detect() != crate::cpu::Level::Scalar {
            // SAFETY: a level above scalar means AVX2 was detected.
            out[..16].copy_from_slice(&unsafe { zero_points_avx2(r, bytes) });
            return;
        }
        for (c, &s) in out[..16].iter_mut().zip(bytes) {
            *c = zero_point(r, s);
        }
    }

    fn split(b: &[u8], h: &mut [u8], v: &mut [u8]) {
        h[..4].copy_from_slice(&b[80..84]);
        h[4..20].copy_from_slice(&b[..16]);
        let qs = &b[16..80];
        // Sub-block j is quants 16j..16j+16 (ggml's order, `bit_pairs`).
        for (k, v) in v.iter_mut().enumerate() {
            *v = (0..4).fold(0, |a, t| a | low_bits(qs, 4 * k + t) << (2 * t));
        }
    }

    fn join(h: &[u8], v: &[u8], b: &mut [u8]) {
        b[80..84].copy_from_slice(&h[..4]);
        b[..16].copy_from_slice(&h[4..20]);
        // The quants in ggml's order first, then each byte gathers its four (`pack_low_bits`).
        let mut q = [0u8; 256];
        for (q, &p) in q.chunks_exact_mut(4).zip(&v[..64]) {
            // The four 2-bit fields of p to four bytes in one u32 (a byte-wise loop did not
            // vectorise).
            let p = p as u32;
            q.copy_from_slice(&((p | p << 6 | p << 12 | p << 18) & 0x0303_0303).to_le_bytes());
        }
        pack_low_bits(&q, &mut b[16..80]);
    }
}

/// `zero_point` of the sixteen sub-blocks, eight lanes at a time: m/sc by an eight-lane division
/// (correctly rounded, so the table's value), then the same multiply, comparisons, + 0.5, clamp
/// and truncation, so the same contexts (the tests compare the two).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn zero_points_avx2(r: f32, bytes: &[u8; 16]) -> [u8; 16] {
    use std::arch::x86_64::*;
    let mut out = [0u8; 16];
    for k in 0..2 {
        let b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(bytes.as_ptr().add(8 * k) as *const __m128i));
        let sc = _mm256_cvtepi32_ps(_mm256_and_si256(b, _mm256_set1_epi32(15)));
        let m = _mm256_cvtepi32_ps(_mm256_srli_epi32::<4>(b));
        let z = _mm256_mul_ps(_mm256_set1_ps(r), _mm256_div_ps(m, sc));
        // Finite and not negative (NaN fails both comparisons): otherwise context 0.
        let ok = _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_GE_OQ>(z, _mm256_setzero_ps()),
            _mm256_cmp_ps::<_CMP_LT_OQ>(z, _mm256_set1_ps(f32::INFINITY)),
        );
        // min before truncating equals truncating before min (the scalar code) for z >= 0.
        let t = _mm256_min_ps(_mm256_add_ps(z, _mm256_set1_ps(0.5)), _mm256_set1_ps(15.0));
        let i = _mm256_and_si256(_mm256_cvttps_epi32(t), _mm256_castps_si256(ok));
        let mut lanes = [0i32; 8];
        _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, i);
        for (o, v) in out[8 * k..8 * k + 8].iter_mut().zip(lanes) {
            *o = v as u8;
        }
    }
    out
}

#[cfg(all(test, target_arch = "x86_64"))] // the kernels tested here are x86-64 only
mod tests {
    use super::*;

    /// The AVX2 contexts against the scalar ones, on every scale byte with d and dmin of every
    /// kind (zero, subnormal, normal, infinite, NaN, negative).
    #[test]
    fn avx2_contexts_equal_the_scalar_ones() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        for &d in &super::super::F16_CASES {
            for &dmin in &super::super::F16_CASES {
                let mut h = [0u8; 20];
                h[..2].copy_from_slice(&d.to_le_bytes());
                h[2..4].copy_from_slice(&dmin.to_le_bytes());
                for first in (0..256).step_by(16) {
                    for (j, b) in h[4..20].iter_mut().enumerate() {
                        *b = (first + j) as u8;
                    }
                    let r = ratio(&h);
                    let want: Vec<u8> = h[4..20].iter().map(|&s| zero_point(r, s)).collect();
                    // SAFETY: AVX2 was detected.
                    let got = unsafe { zero_points_avx2(r, h[4..20].try_into().unwrap()) };
                    assert_eq!(got.to_vec(), want, "d {d:#x} dmin {dmin:#x} bytes from {first}");
                }
            }
        }
    }
}
