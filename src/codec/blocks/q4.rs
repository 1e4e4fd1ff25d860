//! Q4_0 (18 bytes per 32 weights: fp16 `d`) and Q4_1 (20 bytes: fp16 `d` and `m`), then 16
//! bytes of nibbles. The values are the quant bytes themselves: each holds quants j and j+16 of
//! the block, and a byte-pair table captures both.

use super::Layout;

/// A Q4 block whose header (d, and m for Q4_1) takes `H` bytes.
pub struct Q4<const H: usize>;

pub type Q4_0 = Q4<2>;
/// IQ4_NL has Q4_0's block exactly (fp16 `d`, then byte j holding the 4-bit values j and j+16),
/// its values being indices into ggml's non-linear grid rather than linear quants: the same
/// layout, the same tables (measured on the derived corpora, Gemma 3's embedding: 1.0661 against
/// the order-0 bound of its indices 1.0344, most of it from coding `d`).
pub type IQ4NL = Q4<2>;
pub type Q4_1 = Q4<4>;

impl<const H: usize> Layout for Q4<H> {
    const BLOCK: usize = H + 16;
    // d low/high byte (and m low/high byte for Q4_1).
    const HEADER_TABLES: &'static [usize] = &[256; H];
    const HEADER_SYMBOLS: usize = H;
    const VALUES: usize = 16;
    const VALUE_ALPHABET: usize = 256;
    const QUANTS_PER_VALUE: usize = 2;

    fn split(b: &[u8], h: &mut [u8], v: &mut [u8]) {
        h.copy_from_slice(&b[..H]);
        v.copy_from_slice(&b[H..H + 16]);
    }

    fn join(h: &[u8], v: &[u8], b: &mut [u8]) {
        b[..H].copy_from_slice(h);
        b[H..H + 16].copy_from_slice(v);
    }
}
