//! Q8_0 (34 bytes per 32 weights): an fp16 scale `d` and 32 int8 quants, coded as they are.

use super::Layout;

pub struct Q8_0;

impl Layout for Q8_0 {
    const BLOCK: usize = 34;
    // d low and high byte.
    const HEADER_TABLES: &'static [usize] = &[256, 256];
    const HEADER_SYMBOLS: usize = 2;
    const VALUES: usize = 32;
    const VALUE_ALPHABET: usize = 256;

    fn split(b: &[u8], h: &mut [u8], v: &mut [u8]) {
        h.copy_from_slice(&b[..2]);
        v.copy_from_slice(&b[2..34]);
    }

    fn join(h: &[u8], v: &[u8], b: &mut [u8]) {
        b[..2].copy_from_slice(h);
        b[2..34].copy_from_slice(v);
    }
}
