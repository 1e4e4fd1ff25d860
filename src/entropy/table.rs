//! Frequency tables: from symbol counts to normalised rANS frequencies, and their compact coding.
//!
//! A table is transmitted as one *level* per symbol, not as exact frequencies. A level is the
//! symbol's count on a logarithmic grid with `LEVELS_PER_OCTAVE` steps per doubling (level 0 means
//! "absent"). Both sides turn levels into weights and weights into frequencies with the same
//! integer-only arithmetic, so the decoder rebuilds exactly the encoder's frequencies on any platform.
//!
//! Why levels: the cost of coding with a slightly wrong probability is the KL divergence, which for a
//! relative error `d` is about `d^2 / (2 ln 2)` bits. With 8 steps per octave `d` is at most 4.4%,
//! costing under 0.001 bit per symbol, while neighbouring levels of the smooth histograms found in
//! weights differ by a few steps, so each costs 1 to 5 bits to send instead of 8 to 16.

use super::bits::{BitReader, BitWriter};
use crate::error::{Error, Result};

pub const LEVELS_PER_OCTAVE: u32 = 8;
/// Counts up to 2^48 can be represented; larger counts saturate (a frame never holds that many symbols).
pub const MAX_LEVEL: u32 = 1 + 48 * LEVELS_PER_OCTAVE;
pub const MIN_SCALE: u32 = 8;
pub const MAX_SCALE: u32 = 15;

/// round(2^(j/8) * 2^20) for j in 0..8: the fractional part of a level's weight.
const OCTAVE_STEPS: [u64; 8] = [1048576, 1143480, 1246974, 1359835, 1482910, 1617125, 1763488, 1923097];

/// round(2^((j+0.5)/8) * 2^20): the geometric midpoints between neighbouring steps.
const MID_STEPS: [u64; 8] = [1095000, 1194106, 1302182, 1420040, 1548564, 1688722, 1841564, 2008240];

/// Weight of a level (level >= 1): 2^((level-1)/8) scaled by 2^20, as an exact integer.
fn level_weight(level: u32) -> u128 {
    let l = level - 1;
    (OCTAVE_STEPS[(l % LEVELS_PER_OCTAVE) as usize] as u128) << (l / LEVELS_PER_OCTAVE)
}

/// Counts below this have their level and their base-2 logarithm in tables (`small`).
const SMALL: usize = 1 << 16;

/// `count_to_level` and `log2` of every count below `SMALL`, computed once by the functions
/// themselves (so a lookup gives exactly what the computation would): the planners evaluate
/// them for every symbol of every candidate table, thousands of times per tensor.
struct Small {
    level: Vec<u16>,
    log2: Vec<f64>,
}

fn small() -> &'static Small {
    static SMALL_TABLES: std::sync::OnceLock<Small> = std::sync::OnceLock::new();
    SMALL_TABLES.get_or_init(|| Small {
        level: (0..SMALL as u64).map(|c| level_of(c) as u16).collect(),
        log2: (0..SMALL).map(|c| (c as f64).log2()).collect(),
    })
}

/// `(c as f64).log2()`, from a table for small `c`.
#[inline]
pub fn log2_int(c: u64) -> f64 {
    match small().log2.get(c as usize) {
        Some(&l) => l,
        None => (c as f64).log2(),
    }
}

/// The level whose weight is nearest to `count` in the log domain (integer-only, so deterministic).
pub fn count_to_level(count: u64) -> u32 {
    match small().level.get(count as usize) {
        Some(&l) => l as u32,
        None => level_of(count),
    }
}

/// `count_to_level`, computed.
fn level_of(count: u64) -> u32 {
    if count == 0 {
        return 0;
    }
    let target = (count as u128) << 20;
    // Largest level with weight <= target.
    let octave = 63 - count.leading_zeros(); // floor(log2(count))
    let mut lvl = 1 + octave * LEVELS_PER_OCTAVE;
    while lvl < MAX_LEVEL && level_weight(lvl + 1) <= target {
        lvl += 1;
    }
    if lvl >= MAX_LEVEL {
        return MAX_LEVEL;
    }
    // Round in the log domain: move up when the count lies above the geometric mean of the two
    // neighbouring weights, which is itself a fixed step of the grid (2^((j+0.5)/8)).
    let l = lvl - 1;
    let mid = (MID_STEPS[(l % LEVELS_PER_OCTAVE) as usize] as u128) << (l / LEVELS_PER_OCTAVE);
    if target > mid {
        lvl + 1
    } else {
        lvl
    }
}

/// A normalised frequency table: `freq` sums to `1 << scale`, and a symbol has a non-zero
/// frequency exactly when its level is non-zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreqTable {
    pub scale: u32,
    pub freq: Vec<u32>,
    pub levels: Vec<u32>,
}

impl FreqTable {
    /// Builds the table the decoder will rebuild from the levels of `counts`.
    pub fn from_counts(counts: &[u64], scale: u32) -> Result<FreqTable> {
        let levels: Vec<u32> = counts.iter().map(|&c| count_to_level(c)).collect();
        Self::from_levels(levels, scale)
    }

    /// Integer-only normalisation of level weights to a total of `1 << scale`.
    ///
    /// Each present symbol gets `max(1, round(w * M / W))`; the rounding surplus or deficit is then
    /// spread one unit at a time over the heaviest symbols, where a unit changes the probability least.
    pub fn from_levels(levels: Vec<u32>, scale: u32) -> Result<FreqTable> {
        if !(MIN_SCALE..=MAX_SCALE).contains(&scale) {
            return Err(Error::CorruptModel);
        }
        let m: u64 = 1 << scale;
        // One pass over the alphabet; the rest works on the present symbols only (a table is
        // rebuilt for every frame decoded, and most of a 4097-symbol alphabet is absent).
        let mut present: Vec<usize> = Vec::with_capacity(512);
        let mut top = 0;
        for (i, &l) in levels.iter().enumerate() {
            if l != 0 {
                present.push(i);
                top = top.max(l);
            }
        }
        if present.is_empty() || present.len() as u64 > m || top > MAX_LEVEL {
            return Err(Error::CorruptModel);
        }
        // Weights relative to the heaviest level, so all arithmetic fits in u64: the heaviest
        // weight is below 2^41, the sum of 2^16 of them below 2^57, and w * 2M below 2^58.
        let shift = (level_weight(top).ilog2() + 1).saturating_sub(41);
        let weights: Vec<u64> = present.iter().map(|&i| (level_weight(levels[i]) >> shift) as u64).collect();
        let total: u64 = weights.iter().sum();
        let mut freq = vec![0u32; levels.len()];
        let mut sum = 0i64;
        for (&i, &w) in present.iter().zip(&weights) {
            let f = ((2 * w * m + total) / (2 * total)).max(1) as u32;
            freq[i] = f;
            sum += f as i64;
        }
        let mut diff = m as i64 - sum;
        if diff != 0 {
            // Heaviest first (by level, which orders weights), ties by symbol: deterministic.
            // A counting sort by level, cheaper than a comparison sort here.
            let mut start = vec![0usize; MAX_LEVEL as usize + 2];
            for &i in &present {
                start[(MAX_LEVEL - levels[i]) as usize + 1] += 1;
            }
            for k in 1..start.len() {
                start[k] += start[k - 1];
            }
            let mut order = vec![0usize; present.len()];
            for &i in &present {
                let slot = &mut start[(MAX_LEVEL - levels[i]) as usize];
                order[*slot] = i;
                *slot += 1;
            }
            while diff != 0 {
                let mut changed = false;
                for &i in &order {
                    if diff > 0 {
                        freq[i] += 1;
                        diff -= 1;
                        changed = true;
                    } else if freq[i] > 1 {
                        freq[i] -= 1;
                        diff += 1;
                        changed = true;
                    }
                    if diff == 0 {
                        break;
                    }
                }
                if !changed {
                    return Err(Error::CorruptModel); // unreachable: present <= m guarantees progress
                }
            }
        }
        Ok(FreqTable { scale, freq, levels })
    }

    /// Cumulative frequencies (exclusive prefix sums).
    pub fn cumulative(&self) -> Vec<u32> {
        let mut c = Vec::with_capacity(self.freq.len());
        let mut acc = 0u32;
        for &f in &self.freq {
            c.push(acc);
            acc += f;
        }
        c
    }

    /// Exact coded cost in bits of data with these `counts` under this table (no side information).
    pub fn cost_bits(&self, counts: &[u64]) -> f64 {
        counts
            .iter()
            .zip(&self.freq)
            .filter(|(&c, _)| c > 0)
            .map(|(&c, &f)| c as f64 * (self.scale as f64 - log2_int(f as u64)))
            .sum()
    }

    /// Writes the scale, then the present symbols as alternating runs: a run of present symbols
    /// (its length, then each level as the difference from the previous present level), a run
    /// of absent ones (its length), and so on up to the last present symbol.
    ///
    /// Why runs: a weight histogram is dense over the exponents a tensor uses and empty between
    /// them and the few isolated values (zeros, tiny values) far away; coding each absent symbol
    /// in the gap, even at one bit, cost more than the levels themselves.
    pub fn write(&self, w: &mut BitWriter) {
        w.put(self.scale - MIN_SCALE, 3);
        write_levels(&self.levels, w);
    }

    /// The bits `write` writes, counted without writing them (the encoders compare the sizes
    /// of candidate tables).
    pub fn written_bits(&self) -> u64 {
        3 + levels_bits(&self.levels)
    }

    /// Reads a table written by `write` for an alphabet of `alphabet` symbols.
    pub fn read(r: &mut BitReader, alphabet: usize) -> Result<FreqTable> {
        let abits = alphabet_bits(alphabet);
        let scale = r.get(3)? + MIN_SCALE;
        let mut i = r.get(abits)? as usize;
        let mut levels = vec![0u32; alphabet];
        let mut prev = 0i64;
        loop {
            let run = r.get_exp_golomb()? as usize + 1;
            let end = i.checked_add(run).filter(|&e| e <= alphabet).ok_or(Error::CorruptModel)?;
            for l in &mut levels[i..end] {
                let v = prev + r.get_signed()? as i64;
                if !(1..=MAX_LEVEL as i64).contains(&v) {
                    return Err(Error::CorruptModel);
                }
                *l = v as u32;
                prev = v;
            }
            i = end;
            let gap = r.get_exp_golomb()? as usize;
            if gap == 0 {
                break;
            }
            i = i.checked_add(gap).filter(|&e| e < alphabet).ok_or(Error::CorruptModel)?;
        }
        Self::from_levels(levels, scale)
    }
}

fn write_levels(levels: &[u32], w: &mut BitWriter) {
    let abits = alphabet_bits(levels.len());
    let hi = levels.iter().rposition(|&l| l != 0).unwrap_or(0);
    let mut i = levels.iter().position(|&l| l != 0).unwrap_or(0);
    w.put(i as u32, abits);
    let mut prev = 0i32;
    loop {
        let run = levels[i..=hi].iter().take_while(|&&l| l != 0).count();
        w.put_exp_golomb(run as u32 - 1);
        for &l in &levels[i..i + run] {
            w.put_signed(l as i32 - prev);
            prev = l as i32;
        }
        i += run;
        if i > hi {
            break;
        }
        // A gap is at least one symbol long, so a gap of 0 can mark the end (one bit).
        let gap = levels[i..].iter().take_while(|&&l| l == 0).count();
        w.put_exp_golomb(gap as u32);
        i += gap;
    }
    w.put_exp_golomb(0);
}

/// The bits `write_levels` writes for `levels`.
fn levels_bits(levels: &[u32]) -> u64 {
    // Exp-Golomb of v: 2 floor(log2(v + 1)) + 1 bits.
    let eg = |v: u32| 2 * (63 - (v as u64 + 1).leading_zeros() as u64) + 1;
    let hi = levels.iter().rposition(|&l| l != 0).unwrap_or(0);
    let mut i = levels.iter().position(|&l| l != 0).unwrap_or(0);
    let mut bits = alphabet_bits(levels.len()) as u64;
    let mut prev = 0i32;
    loop {
        let run = levels[i..=hi].iter().take_while(|&&l| l != 0).count();
        bits += eg(run as u32 - 1);
        for &l in &levels[i..i + run] {
            let d = l as i32 - prev;
            bits += eg(((d << 1) ^ (d >> 31)) as u32);
            prev = l as i32;
        }
        i += run;
        if i > hi {
            break;
        }
        let gap = levels[i..].iter().take_while(|&&l| l == 0).count();
        bits += eg(gap as u32);
        i += gap;
    }
    bits + eg(0)
}

fn alphabet_bits(alphabet: usize) -> u32 {
    debug_assert!(alphabet >= 1);
    usize::BITS - (alphabet - 1).max(1).leading_zeros()
}

/// Empirical order-0 entropy in bits per symbol.
#[cfg(feature = "internals")]
pub fn entropy_bits(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let t = total as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / t;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `written_bits` counts what `write` writes, for tables of every shape (gaps, runs, one
    /// symbol, the whole alphabet).
    #[test]
    fn written_bits_counts_what_write_writes() {
        let mut r = crate::test_rng::Lcg::new(3);
        for n in [1usize, 2, 16, 64, 257, 4097] {
            for density in [1u64, 2, 5, 50] {
                let mut counts: Vec<u64> = (0..n).map(|_| if r.below(density) == 0 { 1 + r.below(1 << 20) } else { 0 }).collect();
                if counts.iter().all(|&c| c == 0) {
                    counts[n / 2] = 7;
                }
                for scale in [10, 12, 14] {
                    let Ok(t) = FreqTable::from_counts(&counts, scale) else { continue };
                    let mut w = BitWriter::new();
                    t.write(&mut w);
                    // The writer pads to a byte: the count rounds up to the same bytes.
                    assert_eq!(t.written_bits().div_ceil(8) as usize, w.finish().len(), "{n} symbols, density 1/{density}");
                }
            }
        }
    }

    #[test]
    fn level_of_powers_of_two() {
        assert_eq!(count_to_level(1), 1);
        assert_eq!(count_to_level(2), 1 + LEVELS_PER_OCTAVE);
        assert_eq!(count_to_level(1 << 20), 1 + 20 * LEVELS_PER_OCTAVE);
        assert_eq!(count_to_level(u64::MAX), MAX_LEVEL);
    }

    #[test]
    fn levels_are_monotone_and_near() {
        let mut prev = 0;
        for c in 1..100_000u64 {
            let l = count_to_level(c);
            assert!(l >= prev);
            prev = l;
            let w = level_weight(l) as f64 / (1u64 << 20) as f64;
            let rel = (w / c as f64).log2().abs();
            assert!(rel <= 0.5 / LEVELS_PER_OCTAVE as f64 + 1e-3, "count {c} level {l}");
        }
    }

    #[test]
    fn normalises_to_exact_total_and_roundtrips() {
        let counts: Vec<u64> = (0..300u64).map(|i| if i % 7 == 3 { 0 } else { (i * 37 % 101) * (i + 1) + 1 }).collect();
        for scale in MIN_SCALE + 1..=MAX_SCALE {
            let t = FreqTable::from_counts(&counts, scale).unwrap();
            assert_eq!(t.freq.iter().map(|&f| f as u64).sum::<u64>(), 1 << scale);
            for (c, f) in counts.iter().zip(&t.freq) {
                assert_eq!(*c == 0, *f == 0);
            }
            let mut w = BitWriter::new();
            t.write(&mut w);
            let bytes = w.finish();
            let back = FreqTable::read(&mut BitReader::new(&bytes), counts.len()).unwrap();
            assert_eq!(back, t);
        }
    }

    #[test]
    fn too_many_symbols_for_scale_is_rejected() {
        let counts = vec![1u64; 512];
        assert!(FreqTable::from_counts(&counts, 8).is_err());
        assert!(FreqTable::from_counts(&counts, 9).is_ok());
    }
}
