//! Q3_K (110 bytes per 256 weights): 32 bytes of high bits (`hmask`), 64 bytes of low bit pairs
//! (`qs`), sixteen 6-bit sub-block scales packed in 12 bytes, and fp16 `d`; weight =
//! d·(scale − 32)·(q − 4) for a three-bit quant q.
//!
//! The three bits of each quant are reassembled, and two neighbours of one sub-block (16 quants)
//! make one 64-symbol value, coded in the context of the sub-block's scale magnitude
//! |scale − 32| (the quantizer fits each sub-block's scale to its own largest weight, so the
//! scale relative to the block's says how the quants spread; measured on the derived corpora:
//! 2.834 -> 2.808 bits per quant on Gemma 3's embedding). The scales are unpacked and coded with
//! a table of their own.

use super::bit_pairs::{low_bits, pack_low_bits};
use super::Layout;

pub struct Q3K;

// Quant y (0..256, ggml's order; sub-block j is quants 16j..16j+16): its low two bits in `qs`
// (`bit_pairs`), its third bit at bit y div 32 of `hmask[y mod 32]`.

impl Layout for Q3K {
    const BLOCK: usize = 110;
    // d low byte, d high byte, the sixteen 6-bit scales.
    const HEADER_TABLES: &'static [usize] = &[256, 256, 64];
    const HEADER_SYMBOLS: usize = 18;
    // Pairs of neighbouring quants: sub-block j's 8 pairs are values 8j..8j+8.
    const VALUES: usize = 128;
    const VALUE_ALPHABET: usize = 64;
    const QUANTS_PER_VALUE: usize = 2;
    // |scale − 32| in steps of 4 (0..=8).
    const CONTEXTS: usize = 9;
    const SUB_BLOCKS: usize = 16;

    #[inline(always)]
    fn header_table(i: usize) -> usize {
        i.min(2)
    }

    #[inline(always)]
    fn context(h: &[u8], i: usize) -> usize {
        (h[2 + i / 8] as i32 - 32).unsigned_abs() as usize >> 2
    }

    fn split(b: &[u8], h: &mut [u8], v: &mut [u8]) {
        let (hm, qs, s) = (&b[..32], &b[32..96], &b[96..108]);
        h[0] = b[108];
        h[1] = b[109];
        // ggml's packing: the low nibbles of scales 0-7 and (as high nibbles) 8-15 in bytes
        // 0-7, their top bit pairs in bytes 8-11.
        for (i, sc) in h[2..18].iter_mut().enumerate() {
            let low = if i < 8 { s[i] & 15 } else { s[i - 8] >> 4 };
            *sc = low | ((s[8 + i % 4] >> (2 * (i / 4))) & 3) << 4;
        }
        let quant = |y: usize| low_bits(qs, y) | ((hm[y % 32] >> (y / 32)) & 1) << 2;
        for (k, v) in v.iter_mut().enumerate() {
            *v = quant(2 * k) | quant(2 * k + 1) << 3;
        }
    }

    fn join(h: &[u8], v: &[u8], b: &mut [u8]) {
        b[108] = h[0];
        b[109] = h[1];
        let sc = &h[2..18];
        for i in 0..8 {
            b[96 + i] = (sc[i] & 15) | (sc[i + 8] & 15) << 4;
        }
        for k in 0..4 {
            b[104 + k] = (0..4).fold(0, |a, g| a | ((sc[4 * g + k] >> 4) & 3) << (2 * g));
        }
        // The quants in ggml's order first, then each output byte gathers its fields over 32
        // lanes (vectorised, as in `pack_low_bits`).
        let mut q = [0u8; 256];
        for (k, &p) in v[..128].iter().enumerate() {
            q[2 * k] = p & 7;
            q[2 * k + 1] = p >> 3;
        }
        let (hm, qs) = b[..96].split_at_mut(32);
        pack_low_bits(&q, qs);
        for (t, hm) in hm.iter_mut().enumerate() {
            *hm = (0..8).fold(0, |a, k| a | (q[32 * k + t] >> 2) << k);
        }
    }
}
