//! IQ4_XS (136 bytes per 256 weights): fp16 `d`, eight 6-bit sub-block scales packed in a u16 of
//! high bit pairs and four bytes of low nibbles, then 128 bytes of 4-bit indices into ggml's
//! non-linear grid (`kvalues_iq4nl`); weight = d·(ls − 32)·grid[index].
//!
//! The header is unpacked into its fields (d's two bytes, the eight scales). The values are
//! the quant bytes themselves (byte j of sub-block i holds its indices j and j+16), coded in the
//! context of the sub-block's scale magnitude |ls − 32|: the quantizer fits each sub-block's
//! scale to its own largest weight, so the scale relative to the block's says how the indices
//! spread (measured on the derived corpora, Gemma 3's embedding: 3.851 -> 3.818 bits per index
//! with |ls − 32| itself as the context; in steps of 8, as coded, the frame comes out 0.0004 of
//! ratio behind, see `CONTEXTS`).

use super::Layout;

pub struct IQ4XS;

impl Layout for IQ4XS {
    const BLOCK: usize = 136;
    // d low byte, d high byte, the eight 6-bit scales.
    const HEADER_TABLES: &'static [usize] = &[256, 256, 64];
    const HEADER_SYMBOLS: usize = 10;
    const VALUES: usize = 128;
    const VALUE_ALPHABET: usize = 256;
    const QUANTS_PER_VALUE: usize = 2;
    // |ls − 32| in steps of 8 (0..=4). Finer steps fit a large tensor a little better (steps of
    // 2: +0.0004 of ratio on Gemma 3's embedding) and cost a small one more in tables (-0.0044 on
    // one 384 x 1536 matrix): one table of 256 byte symbols per context.
    const CONTEXTS: usize = 5;
    const SUB_BLOCKS: usize = 8;

    #[inline(always)]
    fn header_table(i: usize) -> usize {
        i.min(2)
    }

    #[inline(always)]
    fn context(h: &[u8], i: usize) -> usize {
        let ls = h[2 + i / 16] as i32;
        (ls - 32).unsigned_abs() as usize >> 3
    }

    fn split(b: &[u8], h: &mut [u8], v: &mut [u8]) {
        h[..2].copy_from_slice(&b[..2]);
        let high = u16::from_le_bytes([b[2], b[3]]);
        for (i, s) in h[2..10].iter_mut().enumerate() {
            *s = (b[4 + i / 2] >> (4 * (i % 2))) & 15 | (((high >> (2 * i)) & 3) as u8) << 4;
        }
        v.copy_from_slice(&b[8..136]);
    }

    fn join(h: &[u8], v: &[u8], b: &mut [u8]) {
        b[..2].copy_from_slice(&h[..2]);
        let mut high = 0u16;
        let mut low = [0u8; 4];
        for (i, &s) in h[2..10].iter().enumerate() {
            low[i / 2] |= (s & 15) << (4 * (i % 2));
            high |= ((s >> 4) as u16 & 3) << (2 * i);
        }
        b[2..4].copy_from_slice(&high.to_le_bytes());
        b[4..8].copy_from_slice(&low);
        b[8..136].copy_from_slice(v);
    }
}
