//! Decoding tables for small alphabets, packed one u32 per slot: `freq - 1` (bits 0..12),
//! `slot - cum` (bits 12..24) and the symbol (bits 24..32). With at most 256 symbols and a
//! 12-bit scale, one load (or one gather lane) fetches everything a decoding step needs, which
//! is what the block codecs' kernels are built on.

use super::table::FreqTable;

/// Frequency precision of packed tables.
pub const SCALE: u32 = 12;
/// Slots of one packed table.
pub const T: usize = 1 << SCALE;

/// Appends the packed decoding table of `t` (scale `SCALE`, at most 256 symbols) to `out`.
pub fn pack(t: &FreqTable, out: &mut Vec<u32>) {
    debug_assert!(t.scale == SCALE && t.freq.len() <= 256);
    for (sym, &f) in t.freq.iter().enumerate() {
        for k in 0..f {
            out.push((f - 1) | (k << 12) | ((sym as u32) << 24));
        }
    }
}

/// One decoding step with the packed table `t` (`T` entries), before renormalisation.
#[inline(always)]
pub fn step(t: &[u32], x: &mut u32) -> u8 {
    let e = t[(*x & (T as u32 - 1)) as usize];
    *x = ((e & 0xFFF) + 1) * (*x >> SCALE) + ((e >> 12) & 0xFFF);
    (e >> 24) as u8
}
