//! Q5_0 (22 bytes per 32 weights: fp16 `d`) and Q5_1 (24 bytes: fp16 `d` and `m`): a 32-bit
//! word of fifth bits, then 16 bytes of low nibbles. The five bits of each quant are reassembled
//! into one 32-symbol value, so the table sees the quantized value itself.

use super::Layout;

/// A Q5 block whose header (d, and m for Q5_1) takes `H` bytes.
pub struct Q5<const H: usize>;

pub type Q5_0 = Q5<2>;
pub type Q5_1 = Q5<4>;

impl<const H: usize> Layout for Q5<H> {
    const BLOCK: usize = H + 20;
    // d low/high byte (and m low/high byte for Q5_1).
    const HEADER_TABLES: &'static [usize] = &[256; H];
    const HEADER_SYMBOLS: usize = H;
    const VALUES: usize = 32;
    const VALUE_ALPHABET: usize = 32;

    fn split(b: &[u8], h: &mut [u8], v: &mut [u8]) {
        h.copy_from_slice(&b[..H]);
        let qh = u32::from_le_bytes(b[H..H + 4].try_into().unwrap());
        let qs = &b[H + 4..H + 20];
        for j in 0..16 {
            v[j] = (qs[j] & 0xF) | ((((qh >> j) & 1) as u8) << 4);
            v[j + 16] = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
        }
    }

    fn join(h: &[u8], v: &[u8], b: &mut [u8]) {
        b[..H].copy_from_slice(h);
        let mut qh = 0u32;
        for j in 0..16 {
            b[H + 4 + j] = (v[j] & 0xF) | (v[j + 16] << 4);
            qh |= ((v[j] >> 4) as u32) << j | ((v[j + 16] >> 4) as u32) << (j + 16);
        }
        b[H..H + 4].copy_from_slice(&qh.to_le_bytes());
    }
}
