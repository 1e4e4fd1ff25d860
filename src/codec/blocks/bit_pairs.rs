//! ggml's packing of two-bit quant fields, shared by Q2_K and Q3_K (their `qs`): quant y (0..256)
//! of a block has its two low bits at bits 2j, 2j+1 of byte `32n + y mod 32`, with n = y div 128
//! and j = (y div 32) mod 4. ggml walks two halves of 128 quants, four bit pairs of each byte.

/// The two low bits of quant y from `qs` (64 bytes).
#[inline(always)]
pub(super) fn low_bits(qs: &[u8], y: usize) -> u8 {
    (qs[32 * (y / 128) + y % 32] >> (2 * ((y / 32) % 4))) & 3
}

/// The inverse: the low two bits of 256 quants (in ggml's order) into `qs` (64 bytes). Each byte
/// gathers its four fields, over 32 lanes that the compiler vectorises (placing each quant in turn
/// was a read-modify-write per quant, at a quarter of the speed).
#[inline(always)]
pub(super) fn pack_low_bits(q: &[u8; 256], qs: &mut [u8]) {
    for n in 0..2 {
        for t in 0..32 {
            qs[32 * n + t] = (0..4).fold(0, |a, j| a | (q[128 * n + 32 * j + t] & 3) << (2 * j));
        }
    }
}
