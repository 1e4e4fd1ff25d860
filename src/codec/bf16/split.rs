//! Which bits of a 16-bit value the coded symbol holds, and which go raw.
//!
//! The default split (`Magnitude`) codes bits 14..3 (for bf16 the exponent and the top four
//! mantissa bits: a histogram bin of |x|) and stores the sign with the low three bits raw: right
//! for the matrices of trained models, whose signs are fair coins (MiniLM: 0.9998 bits). Some
//! tensors are not like that: norm weights are nearly all positive, and embedding tables of some
//! models have signs that depend on the magnitude (a held-out speech model's token embedding:
//! H(sign) = 0.58 bits, H(sign | exponent) = 0.47). The `Signed` split codes bits 15..4 (the
//! sign, the exponent, three mantissa bits) and stores bits 3..0 raw; it gives up the model of one
//! deep mantissa bit, which is near uniform, to model the sign in the context of the magnitude.
//! The encoder chooses per frame (`choose`), and the frame header's flag says which.

/// The flag of the frame header (`flags`, bytes 28..32) that selects the `Signed` split.
pub const SIGN_IN_SYMBOL: u32 = 1;

/// Bins of the histograms `choose` reads: bits 15..3 of a value, both splits' symbols at once.
pub const WIDE: usize = 1 << 13;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Split {
    /// Symbol bits 14..3; raw nibble: the sign and bits 2..0.
    #[default]
    Magnitude,
    /// Symbol bits 15..4; raw nibble: bits 3..0.
    Signed,
}

impl Split {
    /// The split a frame's header flags name (the caller has checked the flags).
    pub fn of_flags(flags: u32) -> Split {
        if flags & SIGN_IN_SYMBOL != 0 {
            Split::Signed
        } else {
            Split::Magnitude
        }
    }

    /// The header flags that name this split.
    pub fn flags(self) -> u32 {
        match self {
            Split::Magnitude => 0,
            Split::Signed => SIGN_IN_SYMBOL,
        }
    }

    /// Where the symbol starts: symbol = (v >> shift) & 0xFFF.
    #[inline(always)]
    pub fn shift(self) -> u32 {
        match self {
            Split::Magnitude => 3,
            Split::Signed => 4,
        }
    }

    /// How far the raw nibble's bit 3 moves to its place in the value (the sign, bit 15; or
    /// bit 3).
    #[inline(always)]
    pub fn nibble_shift(self) -> u32 {
        match self {
            Split::Magnitude => 12,
            Split::Signed => 0,
        }
    }

    #[inline(always)]
    pub fn symbol(self, v: u16) -> usize {
        ((v >> self.shift()) & 0xFFF) as usize
    }

    #[inline(always)]
    pub fn nibble(self, v: u16) -> u8 {
        (((v >> self.nibble_shift()) & 8) | (v & 7)) as u8
    }

    /// The symbol's bits in their place in the value.
    #[inline(always)]
    pub fn base(self, symbol: u16) -> u16 {
        symbol << self.shift()
    }

    /// The value of `base` (from `base`) and its raw nibble.
    #[inline(always)]
    pub fn join(self, base: u16, nibble: u32) -> u16 {
        base | (((nibble & 8) as u16) << self.nibble_shift()) | (nibble & 7) as u16
    }

    /// This split's symbol histogram from a `WIDE` histogram.
    pub fn fold<C: Copy + Into<u64>>(self, wide: &[C]) -> Vec<u64> {
        let mut h = vec![0u64; 1 << 12];
        for (w, &c) in wide.iter().enumerate() {
            // w holds bits 15..3: the sign is w's bit 12, bit 3 of the value w's bit 0.
            let s = match self {
                Split::Magnitude => w & 0xFFF,
                Split::Signed => w >> 1,
            };
            h[s] += c.into();
        }
        h
    }
}

/// Adds the `WIDE` histogram of `src` (little-endian 16-bit values, fewer than 2^32) to
/// `counts`. (u32 counts: the 32 KiB histogram stays in L1, where u64 counts ran 6% slower.)
/// Values at odd positions count into a second histogram, added at the end: weights repeat a
/// few bins, and two increments of one counter in a row wait for each other (measured on
/// all-MiniLM-L6-v2's embedding: 27% faster; four histograms no faster than two).
pub fn wide_histogram(src: &[u8], counts: &mut [u32]) {
    debug_assert_eq!(counts.len(), WIDE);
    let mut odd = vec![0u32; WIDE];
    let value = |v: &[u8]| (u16::from_le_bytes([v[0], v[1]]) >> 3) as usize;
    let mut pairs = src.chunks_exact(4);
    for p in &mut pairs {
        counts[value(&p[..2])] += 1;
        odd[value(&p[2..])] += 1;
    }
    for v in pairs.remainder().chunks_exact(2) {
        counts[value(v)] += 1;
    }
    for (c, o) in counts.iter_mut().zip(&odd) {
        *c += o;
    }
}

/// The split whose symbols a frame with the `WIDE` histogram `wide` codes smaller: each split's
/// order-0 bits with its table's estimated cost (the raw bits are four a value either way). The
/// signed split must win by a margin (a thousandth of a bit a value, and 8 bytes) that covers
/// the estimate's error (it does not see escapes or chunk plans).
pub fn choose(wide: &[u64]) -> Split {
    let n: u64 = wide.iter().sum();
    if n == 0 {
        return Split::Magnitude;
    }
    let a = super::model::estimate_bits(&Split::Magnitude.fold(wide));
    let b = super::model::estimate_bits(&Split::Signed.fold(wide));
    if b + 0.001 * n as f64 + 64.0 < a {
        Split::Signed
    } else {
        Split::Magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_splits_cover_every_bit_pattern() {
        for split in [Split::Magnitude, Split::Signed] {
            for v in 0..=u16::MAX {
                assert_eq!(split.join(split.base(split.symbol(v) as u16), split.nibble(v) as u32), v);
            }
        }
    }

    #[test]
    fn folds_match_the_splits_symbols() {
        let vals: Vec<u16> = (0..=u16::MAX).step_by(7).collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut wide = vec![0u32; WIDE];
        wide_histogram(&bytes, &mut wide);
        for split in [Split::Magnitude, Split::Signed] {
            let mut h = vec![0u64; 1 << 12];
            for &v in &vals {
                h[split.symbol(v)] += 1;
            }
            assert_eq!(split.fold(&wide), h);
        }
    }
}
