//! Q5_K (176 bytes per 256 weights): `d` and `dmin` (fp16), eight 6-bit scales and eight 6-bit
//! mins packed in 12 bytes as in Q4_K, 32 bytes of fifth bits, 128 bytes of low nibbles; weight =
//! d·sc·q − dmin·m for a five-bit quant q.
//!
//! The header is Q4_K's, so the values take Q4_K's context: the sub-block's zero point
//! z = dmin·m / (d·sc), the quant that stands for weight 0, around which the quants cluster.
//! The five bits of each quant are reassembled into one 32-symbol value.

use super::Layout;
#[cfg(target_arch = "x86_64")]
use crate::codec::q4k::zero_points;
use crate::codec::q4k::{f16_to_f32, pack_scales, unpack_scales, zero_point};

pub struct Q5K;

impl Layout for Q5K {
    const BLOCK: usize = 176;
    // d low/high byte, dmin low/high byte, the eight scales, the eight mins.
    const HEADER_TABLES: &'static [usize] = &[256, 256, 256, 256, 64, 64];
    const HEADER_SYMBOLS: usize = 20;
    // Sub-block j's 32 quants are values 32j..32j+32.
    const VALUES: usize = 256;
    const VALUE_ALPHABET: usize = 32;
    const CONTEXTS: usize = 32;
    const SUB_BLOCKS: usize = 8;

    #[inline(always)]
    fn header_table(i: usize) -> usize {
        match i {
            0..=3 => i,
            4..=11 => 4,
            _ => 5,
        }
    }

    #[inline(always)]
    fn context(h: &[u8], i: usize) -> usize {
        let sub = i / 32;
        let d = f16_to_f32(u16::from_le_bytes([h[0], h[1]]));
        let dmin = f16_to_f32(u16::from_le_bytes([h[2], h[3]]));
        zero_point(d, dmin, h[4 + sub], h[12 + sub], Self::CONTEXTS) as usize
    }

    /// The eight zero points together: d and dmin converted once, and with AVX2 eight divisions
    /// in one instruction (the same IEEE operations, so the same contexts as `context`).
    #[inline(always)]
    fn sub_block_contexts(h: &[u8], out: &mut [u8]) {
        let d = f16_to_f32(u16::from_le_bytes([h[0], h[1]]));
        let dmin = f16_to_f32(u16::from_le_bytes([h[2], h[3]]));
        let (sc, m): (&[u8; 8], &[u8; 8]) = (h[4..12].try_into().unwrap(), h[12..20].try_into().unwrap());
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::detect() != crate::cpu::Level::Scalar {
            // SAFETY: a level above scalar means AVX2 was detected.
            out[..8].copy_from_slice(&unsafe { zero_points(d, dmin, sc, m, Self::CONTEXTS) });
            return;
        }
        for (j, c) in out[..8].iter_mut().enumerate() {
            *c = zero_point(d, dmin, sc[j], m[j], Self::CONTEXTS);
        }
    }

    fn split(b: &[u8], h: &mut [u8], v: &mut [u8]) {
        h[..4].copy_from_slice(&b[..4]);
        let (sc, m) = unpack_scales(&b[4..16]);
        h[4..12].copy_from_slice(&sc);
        h[12..20].copy_from_slice(&m);
        // ggml's order: for j in 0..4, bytes qs[32j..32j+32] hold sub-block 2j in their low
        // nibbles and 2j+1 in their high ones; bit 2j (2j+1) of qh[l] is the fifth bit of quant
        // l of sub-block 2j (2j+1).
        let (qh, qs) = (&b[16..48], &b[48..176]);
        for j in 0..4 {
            for l in 0..32 {
                let (q, hb) = (qs[32 * j + l], qh[l] >> (2 * j));
                v[64 * j + l] = (q & 0xF) | ((hb & 1) << 4);
                v[64 * j + 32 + l] = (q >> 4) | ((hb & 2) << 3);
            }
        }
    }

    fn join(h: &[u8], v: &[u8], b: &mut [u8]) {
        b[..4].copy_from_slice(&h[..4]);
        b[4..16].copy_from_slice(&pack_scales(h[4..12].try_into().unwrap(), h[12..20].try_into().unwrap()));
        let (qh, qs) = b[16..176].split_at_mut(32);
        let v: &[u8; 256] = v[..256].try_into().unwrap();
        // One pass over the 32 lanes, each gathering its fifth bits from the four pairs of
        // sub-blocks: the compiler vectorises it (32 lanes, no read-modify-write of `qh`).
        for l in 0..32 {
            let mut high = 0;
            for j in 0..4 {
                let (a, c) = (v[64 * j + l], v[64 * j + 32 + l]);
                qs[32 * j + l] = (a & 0xF) | (c << 4);
                high |= ((a >> 4) & 1 | ((c >> 4) & 1) << 1) << (2 * j);
            }
            qh[l] = high;
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))] // the kernels tested here are x86-64 only
mod tests {
    use super::*;

    /// The AVX2 zero points equal the scalar ones, on d and dmin of every kind (zero, subnormal,
    /// normal, infinite, NaN, negative) and every scale and min: the encoder and a decoder at
    /// another kernel level must agree.
    #[test]
    fn avx2_zero_points_equal_the_scalar_ones() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        for &d in &super::super::F16_CASES {
            for &dmin in &super::super::F16_CASES {
                let (d, dmin) = (f16_to_f32(d), f16_to_f32(dmin));
                for m in 0..64u8 {
                    for first in (0..64u8).step_by(8) {
                        let sc: [u8; 8] = std::array::from_fn(|j| first + j as u8);
                        let ms = [m; 8];
                        let want: Vec<u8> = (0..8).map(|j| zero_point(d, dmin, sc[j], m, Q5K::CONTEXTS)).collect();
                        // SAFETY: AVX2 was detected.
                        let got = unsafe { zero_points(d, dmin, &sc, &ms, Q5K::CONTEXTS) };
                        assert_eq!(got.to_vec(), want, "d {d} dmin {dmin} m {m} scales from {first}");
                    }
                }
            }
        }
    }
}
