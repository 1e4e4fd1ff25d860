//! Decoding tables for small alphabets, packed one u32 per slot: `freq - 1` (bits 0..12),
//! `slot - cum` (bits 12..24) and the symbol (bits 24..32). With at most 256 symbols and a
//! 12-bit scale, one load (or one gather lane) fetches everything a decoding step needs, which
//! is what the block codecs' kernels are built on.
//!
//! `decode_stream` decodes a rANS stream of byte symbols in which each symbol names its table
//! (`Tables`), with an AVX-512 or AVX2 kernel over whole groups of lanes and the scalar loop as
//! the reference they are tested against.

use super::rans::{RansDecoder, LANES};
use super::table::FreqTable;
use crate::cpu::Level;
use crate::error::{Error, Result};

/// Frequency precision of packed tables: the default.
pub const SCALE: u32 = 12;
/// The smallest scale packed tables may have: the fast variant's. A table of 2^10 slots is a
/// quarter of the default's, so a model's tables stay in a closer cache level (the kernels are
/// bound by their table gathers); frequencies are coarser, which costs a fraction of a percent.
pub const FAST_SCALE: u32 = 10;

/// Whether packed tables may have `scale` (fields of 12 bits hold `freq - 1` and `slot - cum`
/// below 2^12).
pub fn scale_ok(scale: u32) -> bool {
    (FAST_SCALE..=SCALE).contains(&scale)
}

/// `$f::<S>(args)` (or `$f::<G, S>(args)`) with the scale `$scale` (which `scale_ok` allows) as
/// the constant `S`: the vector kernels are compiled once per scale, since a shift by a run-time
/// count cost them 3-4%.
#[cfg(target_arch = "x86_64")]
macro_rules! with_scale {
    ($scale:expr, $f:ident::<$g:ty>($($arg:expr),*)) => {
        match $scale {
            12 => $f::<$g, 12>($($arg),*),
            11 => $f::<$g, 11>($($arg),*),
            _ => $f::<$g, 10>($($arg),*),
        }
    };
    ($scale:expr, $f:ident($($arg:expr),*)) => {
        match $scale {
            12 => $f::<12>($($arg),*),
            11 => $f::<11>($($arg),*),
            _ => $f::<10>($($arg),*),
        }
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use with_scale;

/// Appends the packed decoding table of `t` (a scale `scale_ok` allows, at most 256 symbols)
/// to `out`: `1 << t.scale` entries.
pub fn pack(t: &FreqTable, out: &mut Vec<u32>) {
    debug_assert!(scale_ok(t.scale) && t.freq.len() <= 256);
    for (sym, &f) in t.freq.iter().enumerate() {
        for k in 0..f {
            out.push((f - 1) | (k << 12) | ((sym as u32) << 24));
        }
    }
}

/// One decoding step with the packed table `t` (`1 << scale` entries), before renormalisation.
#[inline(always)]
pub fn step(t: &[u32], scale: u32, x: &mut u32) -> u8 {
    let e = t[(*x & ((1 << scale) - 1)) as usize];
    *x = ((e & 0xFFF) + 1) * (*x >> scale) + ((e >> 12) & 0xFFF);
    (e >> 24) as u8
}

/// Which packed table each symbol of a stream uses, as offsets into the packed tables (multiples
/// of the tables' size).
#[derive(Clone, Copy)]
pub enum Tables<'a> {
    /// Every symbol the same table.
    One(u32),
    /// Symbol i uses `offsets[i % offsets.len()]`; the length is a multiple of `LANES` (see
    /// `periodic`), so a whole group's offsets are one aligned slice of it.
    Periodic(&'a [u32]),
    /// Symbol i uses `subs[i / pattern.run]`: runs of symbols that share a table (a block's
    /// sub-blocks), one offset per run. The kernels expand the runs' offsets to lanes with a
    /// permute, so the caller writes one offset per run instead of one per symbol. `subs` holds
    /// `RUN_PAD` more offsets than the stream's runs (the kernels load a vector's worth past the
    /// group's first run).
    Runs { subs: &'a [u32], pattern: &'a RunPattern },
}

/// Offsets `Tables::Runs` must hold past the stream's last run.
pub const RUN_PAD: usize = 16;

/// Where the lanes of each group of a `Tables::Runs` stream find their runs. Run boundaries
/// fall at the same lanes every `period` groups (`lcm(run, LANES)` symbols), so for each group
/// of a period and each vector of 8 (AVX2) or 16 (AVX-512) lanes, this holds the vector's first
/// run relative to the period's (`start`) and each lane's run relative to that (`idx`, below the
/// vector's width since a run is at least one symbol).
pub struct RunPattern {
    pub run: usize,
    /// Groups per period, and runs per period.
    pub period: usize,
    pub runs_per_period: usize,
    pub start8: Vec<u32>,
    pub idx8: Vec<[u32; 8]>,
    pub start16: Vec<u32>,
    pub idx16: Vec<[u32; 16]>,
}

impl RunPattern {
    pub fn new(run: usize) -> RunPattern {
        assert!(run > 0);
        let (mut a, mut b) = (run, LANES);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        let symbols = run / a * LANES; // lcm(run, LANES)
        let mut p = RunPattern {
            run,
            period: symbols / LANES,
            runs_per_period: symbols / run,
            start8: Vec::new(),
            idx8: Vec::new(),
            start16: Vec::new(),
            idx16: Vec::new(),
        };
        for first in (0..symbols).step_by(8) {
            p.start8.push((first / run) as u32);
            p.idx8.push(std::array::from_fn(|l| ((first + l) / run - first / run) as u32));
        }
        for first in (0..symbols).step_by(16) {
            p.start16.push((first / run) as u32);
            p.idx16.push(std::array::from_fn(|l| ((first + l) / run - first / run) as u32));
        }
        p
    }
}

impl Tables<'_> {
    #[inline(always)]
    fn of(&self, i: usize) -> usize {
        (match *self {
            Tables::One(b) => b,
            Tables::Periodic(o) => o[i % o.len()],
            Tables::Runs { subs, pattern } => subs[i / pattern.run],
        }) as usize
    }
}

/// A stream's table offsets walked a group at a time, as the vector kernels need them: where
/// the group's `LANES` offsets start (or the one table of `Tables::One`), without a division per
/// group for `Tables::Periodic`.
#[cfg(target_arch = "x86_64")] // the vector kernels are x86-64 only
#[derive(Clone, Copy)]
pub struct Cursor<'a> {
    tables: Tables<'a>,
    /// Index of the group's first offset in `Periodic`'s slice; for `Runs`, the
    /// group's place in its period.
    at: usize,
    /// For `Runs`: the index in `subs` of the period's first run.
    base: usize,
}

#[cfg(target_arch = "x86_64")]
impl<'a> Cursor<'a> {
    /// The cursor at group `g`.
    pub fn new(tables: Tables<'a>, g: usize) -> Self {
        let (at, base) = match tables {
            Tables::One(_) => (0, 0),
            Tables::Periodic(o) => ((g * LANES) % o.len(), 0),
            Tables::Runs { pattern: p, .. } => (g % p.period, g / p.period * p.runs_per_period),
        };
        Cursor { tables, at, base }
    }

    /// The one table of every symbol, for `Tables::One`.
    #[inline(always)]
    pub fn one(&self) -> Option<u32> {
        match self.tables {
            Tables::One(b) => Some(b),
            _ => None,
        }
    }

    /// The current group's offsets (meaningless for `Tables::One`). The caller reads at most
    /// `LANES` of them (`Periodic`'s slice is whole groups).
    #[inline(always)]
    pub fn group(&self) -> *const u32 {
        match self.tables {
            Tables::One(_) | Tables::Runs { .. } => std::ptr::null(),
            Tables::Periodic(o) => o.as_ptr().wrapping_add(self.at),
        }
    }

    /// For `Tables::Runs`: the runs' offsets from the period's first run on, the pattern, and the
    /// group's place in the period. The caller loads at most `RUN_PAD` offsets past a vector's
    /// first run, and only while the group is inside the stream.
    #[inline(always)]
    pub fn runs(&self) -> Option<(*const u32, &'a RunPattern, usize)> {
        match self.tables {
            Tables::Runs { subs, pattern } => Some((subs.as_ptr().wrapping_add(self.base), pattern, self.at)),
            _ => None,
        }
    }

    #[inline(always)]
    pub fn advance(&mut self) {
        match self.tables {
            Tables::One(_) => {}
            Tables::Periodic(o) => {
                self.at += LANES;
                if self.at == o.len() {
                    self.at = 0;
                }
            }
            Tables::Runs { pattern, .. } => {
                self.at += 1;
                if self.at == pattern.period {
                    self.at = 0;
                    self.base += pattern.runs_per_period;
                }
            }
        }
    }
}

/// The offsets of a stream whose symbols cycle through `pattern`, repeated to a whole number of
/// groups (`lcm(pattern.len(), LANES)` entries), for `Tables::Periodic`.
pub fn periodic(pattern: &[u32]) -> Vec<u32> {
    let (mut a, mut b) = (pattern.len(), LANES);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let len = pattern.len() / a * LANES;
    (0..len).map(|i| pattern[i % pattern.len()]).collect()
}

/// One stream being decoded with packed tables: its decoder, tables and output, and how many
/// of its symbols are done.
pub struct PackedPart<'p, 'd, 's> {
    pub d: &'d mut RansDecoder<'s>,
    pub packed: &'p [u32],
    /// The scale of every table the stream uses.
    pub scale: u32,
    pub tables: Tables<'p>,
    pub out: &'d mut [u8],
    pub done: usize,
}

/// Decodes a rANS stream of `out.len()` byte symbols in which symbol i uses the packed table at
/// `tables.of(i)` in `packed` (tables of scale `scale`). Whole groups of `LANES` take a vector
/// kernel (up to `level`) or the branch-free scalar path while a group's words remain; the rest
/// is bounds-checked. The stream must end exactly, with no payload in its final states.
///
/// Every offset must leave a whole table inside `packed` (callers build them from table indices
/// below their table count).
pub fn decode_stream(
    stream: &[u8],
    packed: &[u32],
    scale: u32,
    tables: Tables,
    level: Level,
    out: &mut [u8],
) -> Result<()> {
    let mut d = RansDecoder::new(stream)?;
    decode_part(&mut d, packed, scale, tables, level, out)?;
    if d.finish()? != [0; LANES] {
        return Err(Error::CorruptData);
    }
    Ok(())
}

/// Decodes the next `out.len()` symbols of a stream (as `decode_stream`, without the final
/// check), for a caller that decodes a stream in parts to keep each part in cache. Every part
/// but the last must be a whole number of groups (`LANES` symbols), so that symbol i stays on
/// lane i % LANES.
pub fn decode_part(
    d: &mut RansDecoder,
    packed: &[u32],
    scale: u32,
    tables: Tables,
    level: Level,
    out: &mut [u8],
) -> Result<()> {
    let mut p = PackedPart { d, packed, scale, tables, out, done: 0 };
    kernel(&mut p, level);
    finish_part(p)
}

/// `decode_part` of two independent streams at once: where the kernel can, their groups are
/// interleaved (two chains of table gathers for the core to overlap). Same results as two calls.
pub fn decode_part_pair(a: PackedPart, b: PackedPart, level: Level) -> Result<()> {
    let (mut a, mut b) = (a, b);
    check(&a);
    check(&b);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `kernel`.
    match level {
        Level::Avx512 => unsafe { super::avx512::decode_packed_pair(&mut a, &mut b) },
        Level::Avx2 => unsafe { super::avx2::decode_packed_pair(&mut a, &mut b) },
        Level::Scalar => {}
    }
    kernel(&mut a, level);
    kernel(&mut b, level);
    finish_part(a)?;
    finish_part(b)
}

fn check(p: &PackedPart) {
    assert!(scale_ok(p.scale), "a scale packed tables may have");
    if let Tables::Runs { subs, pattern } = p.tables {
        assert!(subs.len() >= p.out.len().div_ceil(pattern.run) + RUN_PAD, "one table offset per run, and padding");
    }
}

/// The vector kernel's whole groups of `p`, from `p.done` on.
fn kernel(p: &mut PackedPart, level: Level) {
    check(p);
    // SAFETY: `level` never exceeds what `cpu::detect()` found (decoders clamp it), the offsets
    // name whole tables (the callers build them from table indices below their table count),
    // and `Runs` holds an offset per run and its padding (checked above).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        match level {
            Level::Avx512 => super::avx512::decode_packed(p),
            Level::Avx2 => super::avx2::decode_packed(p),
            Level::Scalar => {}
        }
    }
    let _ = level;
}

/// The groups a kernel left (branch-free scalar path while a group's words remain), then the
/// tail with checked reads.
fn finish_part(p: PackedPart) -> Result<()> {
    let PackedPart { d, packed, scale, tables, out, mut done } = p;
    let n = 1 << scale;
    while done + LANES <= out.len() && d.words_left() >= LANES {
        for lane in 0..LANES {
            let t = tables.of(done + lane);
            out[done + lane] = step(&packed[t..t + n], scale, &mut d.states[lane]);
        }
        d.renorm_group();
        done += LANES;
    }
    for (i, o) in out.iter_mut().enumerate().skip(done) {
        let t = tables.of(i);
        *o = step(&packed[t..t + n], scale, &mut d.states[i % LANES]);
        d.renorm_checked(i % LANES)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::rans::{EncTable, RansEncoder};
    use crate::test_rng::lcg;

    /// Runs `f` once per way the AVX2 kernels look up tables (once where there are none).
    fn each_gather(f: impl Fn()) {
        #[cfg(target_arch = "x86_64")]
        for mode in crate::entropy::gather::Mode::ALL {
            crate::entropy::gather::with_mode(mode, &f);
        }
        #[cfg(not(target_arch = "x86_64"))]
        f();
    }

    /// Every kernel decodes what the scalar path decodes, for each way of naming tables, each
    /// table scale and each way of looking up tables, on lengths around whole groups.
    #[test]
    fn kernels_agree_with_the_scalar_path() {
        let mut seed = 11;
        let counts: Vec<Vec<u64>> =
            (0..3).map(|t| (0..256u64).map(|s| if (s + t) % 5 == 0 { 0 } else { 1 + lcg(&mut seed) % 50 }).collect()).collect();
        for scale in [SCALE, 11, FAST_SCALE] {
            let t = 1usize << scale;
            let freqs: Vec<FreqTable> = counts.iter().map(|c| FreqTable::from_counts(c, scale).unwrap()).collect();
            let encs: Vec<EncTable> = freqs.iter().map(EncTable::new).collect();
            let mut packed = Vec::new();
            for f in &freqs {
                pack(f, &mut packed);
            }
            let pattern: Vec<u32> = [0u32, 1, 1, 2, 0, 2, 1].iter().map(|i| i * t as u32).collect();
            let per = periodic(&pattern);
            assert_eq!(per.len() % LANES, 0);
            for n in [0usize, 1, 31, 32, 33, 64 * 7 + 5, 5000] {
                let patterns: Vec<RunPattern> = [15, 1, 7, 32, 40].into_iter().map(RunPattern::new).collect();
                let subs: Vec<Vec<u32>> = patterns
                    .iter()
                    .map(|p| (0..n.div_ceil(p.run) + RUN_PAD).map(|_| (lcg(&mut seed) % 3) as u32 * t as u32).collect())
                    .collect();
                let runs = patterns.iter().zip(&subs).map(|(pattern, subs)| Tables::Runs { subs, pattern });
                for tables in [Tables::One(t as u32), Tables::Periodic(&per)].into_iter().chain(runs) {
                    // Symbols each table can code.
                    let syms: Vec<u8> = (0..n)
                        .map(|i| loop {
                            let s = (lcg(&mut seed) % 256) as u8;
                            if freqs[tables.of(i) / t].freq[s as usize] > 0 {
                                break s;
                            }
                        })
                        .collect();
                    let mut e = RansEncoder::new(n);
                    for (i, &s) in syms.iter().enumerate().rev() {
                        e.put(i % LANES, encs[tables.of(i) / t].syms[s as usize], scale);
                    }
                    let mut stream = Vec::new();
                    e.finish(&mut stream);
                    each_gather(|| {
                            for level in Level::ALL.into_iter().filter(|&l| l <= crate::cpu::detect()) {
                                let mut out = vec![0u8; n];
                                decode_stream(&stream, &packed, scale, tables, level, &mut out).unwrap();
                                assert!(out == syms, "{level:?}, scale {scale}, {n} symbols");
                                // The same stream twice through the interleaved kernel, one cut short (a
                                // pair whose parts end at different groups).
                                let short = n / 2 / LANES * LANES;
                                let (mut da, mut db) = (RansDecoder::new(&stream).unwrap(), RansDecoder::new(&stream).unwrap());
                                let (mut oa, mut ob) = (vec![0u8; n], vec![0u8; short]);
                                let a = PackedPart { d: &mut da, packed: &packed, scale, tables, out: &mut oa, done: 0 };
                                let b = PackedPart { d: &mut db, packed: &packed, scale, tables, out: &mut ob, done: 0 };
                                decode_part_pair(a, b, level).unwrap();
                                assert!(oa == syms && ob[..] == syms[..short], "{level:?}, scale {scale}, pair, {n} symbols");
                                if !stream.is_empty() && n > 0 {
                                    let r = decode_stream(&stream[..stream.len() - 2], &packed, scale, tables, level, &mut out);
                                    assert!(r.is_err(), "{level:?}: a truncated stream decoded");
                                }
                            }
                    });
                }
            }
        }
    }
}
