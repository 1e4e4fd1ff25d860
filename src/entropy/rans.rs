//! Static rANS with `LANES` interleaved 32-bit states and 16-bit renormalisation.
//!
//! State invariant: every state lies in `[RANS_L, RANS_L << 16)` between symbols. With a
//! frequency scale of at most 15 bits, decoding one symbol shrinks a state by at most 15 bits, so
//! exactly zero or one 16-bit word brings it back into range: the decoder never loops.
//!
//! Why interleave: one rANS state is a serial dependency chain (table load, multiply, add,
//! compare). Independent states let the core overlap chains. 32 lanes is what the SIMD decoders
//! need: four vectors of eight 32-bit states, so four table gathers are in flight at once while
//! each waits out its latency; a scalar decoder simply walks the lanes in order. Symbol `i` always
//! belongs to lane `i % LANES`, and within a group of `LANES` symbols renormalisation words are
//! consumed in lane order, so scalar and SIMD decoders read the same stream.
//!
//! Stream layout (what `RansEncoder::finish` writes): the final encoder states, `LANES` x u32 LE,
//! then the renormalisation words, u16 LE, in the order the decoder consumes them. The encoder
//! starts every lane at `RANS_L + p` where `p < 2^16` is an optional payload of the caller's (see
//! below), so a decoder that consumed its input exactly must end with every lane in
//! `[RANS_L, 2 * RANS_L)` and no word left over: a free integrity check that
//! `RansDecoder::finish` makes before handing the payloads back.
//!
//! Why a payload: the final states cost 32 bits per lane, but an encoder that starts at the fixed
//! state `RANS_L` spends 16 of them restating that constant. Starting at `RANS_L + p` carries 16
//! bits of real data in each lane instead, which halves the flush cost (64 bytes per stream).

use super::table::FreqTable;
use crate::error::{Error, Result};

pub const LANES: usize = 32;
pub const RANS_L: u32 = 1 << 16;
/// Bytes taken by the final states at the head of every stream.
pub const STATE_BYTES: usize = LANES * 4;

#[derive(Clone, Copy, Default, Debug)]
pub struct EncSymbol {
    /// `u64::MAX / freq + 1`: with it, `x / freq` is the high half of a 64x64-bit product, exact
    /// for every 32-bit `x` (Lemire, Kaser and Kurz, "Faster remainder by direct computation",
    /// 2019). A multiply instead of a division roughly doubles encoding speed.
    pub rcp: u64,
    /// A state at or above this bound must shed 16 bits before this symbol is encoded.
    pub x_max: u64,
    pub freq: u32,
    pub cum: u32,
}

impl EncSymbol {
    /// The rANS encoding step without renormalisation: `(x / f) << scale + x % f + cum`.
    #[inline(always)]
    pub fn apply(&self, x: u32, scale: u32) -> u32 {
        let q = if self.freq == 1 { x } else { ((self.rcp as u128 * x as u128) >> 64) as u32 };
        ((q << scale) + (x - q * self.freq)) + self.cum
    }
}

/// Per-symbol encoder parameters of a frequency table.
pub struct EncTable {
    pub scale: u32,
    pub syms: Vec<EncSymbol>,
}

impl EncTable {
    pub fn new(t: &FreqTable) -> EncTable {
        let cum = t.cumulative();
        let syms = t
            .freq
            .iter()
            .zip(cum)
            .map(|(&freq, cum)| EncSymbol {
                rcp: if freq > 1 { u64::MAX / freq as u64 + 1 } else { 0 },
                x_max: (freq as u64) << (32 - t.scale),
                freq,
                cum,
            })
            .collect();
        EncTable { scale: t.scale, syms }
    }
}

/// Encodes symbols in *reverse* order (last symbol first), as rANS requires.
pub struct RansEncoder {
    states: [u32; LANES],
    /// Room for one word per symbol, the most renormalisation can emit; `words[..used]` are real.
    words: Vec<u16>,
    used: usize,
}

thread_local! {
    /// The word buffers of the last encoders this thread finished, for the next ones: a fresh
    /// buffer per chunk (a megabyte for a Q4_K chunk) cost page faults and zeroing, a tenth of
    /// the time of compressing Q4_K.
    static SPARE_WORDS: crate::memory::Spares<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl RansEncoder {
    /// An encoder for at most `symbols` symbols.
    #[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
    pub fn new(symbols: usize) -> Self {
        Self::with_payload(symbols, [0; LANES])
    }

    /// An encoder for at most `symbols` symbols whose lane `j` starts at `RANS_L + payload[j]`;
    /// the decoder's `finish` returns the payloads.
    pub fn with_payload(symbols: usize, payload: [u16; LANES]) -> Self {
        // LANES words of slack: a vector step stores a whole vector of words past the used ones.
        // A reused buffer keeps its length and stale words: only `words[..used]`, written by
        // this encoder, is ever read, and a longer buffer is only more room.
        let mut words = crate::memory::take_spare(&SPARE_WORDS);
        if words.len() < symbols + 1 + LANES {
            words.resize(symbols + 1 + LANES, 0);
        }
        RansEncoder { states: payload.map(|p| RANS_L + p as u32), words, used: 0 }
    }

    #[cfg(target_arch = "x86_64")]
    /// Words there is room for past the used ones.
    pub(crate) fn room(&self) -> usize {
        self.words.len() - self.used
    }

    #[cfg(target_arch = "x86_64")]
    /// The lane states, for a vector step.
    pub(crate) fn states_mut(&mut self) -> &mut [u32; LANES] {
        &mut self.states
    }

    #[cfg(target_arch = "x86_64")]
    /// Where the next word goes, for a vector step, which stores up to `room()` words there and
    /// then keeps the first `n` of them with `keep_words`.
    pub(crate) fn next_words(&mut self) -> *mut u16 {
        // SAFETY: used <= words.len().
        unsafe { self.words.as_mut_ptr().add(self.used) }
    }

    #[cfg(target_arch = "x86_64")]
    /// Keeps `n` more words, stored at `next_words()`.
    pub(crate) fn keep_words(&mut self, n: usize) {
        assert!(n <= self.room());
        self.used += n;
    }

    /// Encodes one symbol on `lane`. The symbol must have a non-zero frequency.
    #[inline(always)]
    pub fn put(&mut self, lane: usize, s: EncSymbol, scale: u32) {
        debug_assert!(s.freq > 0);
        let x = self.states[lane];
        // Branch-free renormalisation (the branch would be taken about two times in three, at
        // random): always store the low word, keep it only when the state must shrink.
        let need = x as u64 >= s.x_max;
        self.words[self.used] = x as u16;
        self.used += need as usize;
        let x = x >> (16 * need as u32); // a shift, not a select: the compiler would branch
        self.states[lane] = s.apply(x, scale);
    }

    /// Appends the finished stream (states, then words in decoding order) to `out`.
    pub fn finish(self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + STATE_BYTES + 2 * self.used, 0);
        let (st, w) = out[start..].split_at_mut(STATE_BYTES);
        for (o, s) in st.chunks_exact_mut(4).zip(self.states) {
            o.copy_from_slice(&s.to_le_bytes());
        }
        for (o, &x) in w.chunks_exact_mut(2).zip(self.words[..self.used].iter().rev()) {
            o.copy_from_slice(&x.to_le_bytes());
        }
        crate::memory::keep_spare(&SPARE_WORDS, self.words);
    }
}

/// Reads the states of a stream and hands out its renormalisation words with bounds checks.
pub struct RansDecoder<'a> {
    pub states: [u32; LANES],
    /// The renormalisation words, two bytes each.
    pub words: &'a [u8],
    /// Byte offset of the next unread word in `words`.
    pub pos: usize,
}

impl<'a> RansDecoder<'a> {
    pub fn new(stream: &'a [u8]) -> Result<Self> {
        if stream.len() < STATE_BYTES || !(stream.len() - STATE_BYTES).is_multiple_of(2) {
            return Err(Error::CorruptData);
        }
        let mut states = [0u32; LANES];
        for (i, s) in states.iter_mut().enumerate() {
            let b = &stream[4 * i..4 * i + 4];
            *s = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if !(RANS_L..=u32::MAX).contains(s) {
                return Err(Error::CorruptData);
            }
        }
        Ok(RansDecoder { states, words: &stream[STATE_BYTES..], pos: 0 })
    }

    /// Number of words not yet read.
    #[inline(always)]
    pub fn words_left(&self) -> usize {
        (self.words.len() - self.pos) / 2
    }

    /// Bounds-checked renormalisation of one lane (the slow, obviously correct path).
    #[inline(always)]
    pub fn renorm_checked(&mut self, lane: usize) -> Result<()> {
        let x = self.states[lane];
        if x < RANS_L {
            let b = self.words.get(self.pos..self.pos + 2).ok_or(Error::CorruptData)?;
            self.states[lane] = (x << 16) | u16::from_le_bytes([b[0], b[1]]) as u32;
            self.pos += 2;
        }
        Ok(())
    }

    /// Renormalises every lane after a whole group of steps: lanes below `RANS_L` take the next
    /// words in lane order. The caller checks `words_left() >= LANES` first.
    ///
    /// Shifts and masks rather than a select, which the compiler turns into a branch that is
    /// taken about two times in three, at random.
    #[inline(always)]
    pub fn renorm_group(&mut self) {
        let words = &self.words[self.pos..self.pos + 2 * LANES];
        let mut used = 0;
        for x in self.states.iter_mut() {
            let need = (*x < RANS_L) as u32;
            let w = u16::from_le_bytes([words[used], words[used + 1]]) as u32;
            *x = (*x << (16 * need)) | (w & 0u32.wrapping_sub(need));
            used += 2 * need as usize;
        }
        self.pos += used;
    }

    /// Checks that decoding ended exactly where encoding began, and returns the lanes' payloads.
    pub fn finish(&self) -> Result<[u16; LANES]> {
        if self.pos != self.words.len() || self.states.iter().any(|&s| !(RANS_L..2 * RANS_L).contains(&s)) {
            return Err(Error::CorruptData);
        }
        Ok(self.states.map(|s| (s - RANS_L) as u16))
    }
}

/// Decoding table for a generic alphabet: one entry per slot of `[0, 1 << scale)`.
/// Entry layout: bits 0..16 frequency, 16..32 `slot - cum`, 32..48 symbol.
///
/// Packing all three into one u64 means one load per decoded symbol.
#[cfg(any(test, feature = "internals"))]
pub struct DecTable {
    pub scale: u32,
    pub entries: Vec<u64>,
}

#[cfg(any(test, feature = "internals"))]
impl DecTable {
    /// `value_of(sym)` is the 16-bit value stored for a symbol: the symbol itself for generic
    /// streams, or a pre-shifted partial output word for codecs that can use one.
    pub fn new(t: &FreqTable, value_of: impl Fn(usize) -> u16) -> DecTable {
        let mut entries = Vec::with_capacity(1 << t.scale);
        for (sym, &f) in t.freq.iter().enumerate() {
            let v = value_of(sym) as u64;
            for k in 0..f {
                entries.push(f as u64 | (k as u64) << 16 | v << 32);
            }
        }
        debug_assert_eq!(entries.len(), 1 << t.scale);
        DecTable { scale: t.scale, entries }
    }

    /// Decodes one symbol from state `x` (before renormalisation), returning its stored value.
    #[inline(always)]
    pub fn step(&self, x: &mut u32) -> u16 {
        let mask = (1u32 << self.scale) - 1;
        // SAFETY of the index: `x & mask < 1 << scale == entries.len()`, checked by the slice index.
        let e = self.entries[(*x & mask) as usize];
        *x = (e & 0xFFFF) as u32 * (*x >> self.scale) + ((e >> 16) & 0xFFFF) as u32;
        (e >> 32) as u16
    }
}

/// Order-0 coding of a whole symbol stream with a given table (used for side streams and tests).
#[cfg(any(test, feature = "internals"))]
pub fn encode_symbols(symbols: &[u16], table: &FreqTable, out: &mut Vec<u8>) -> Result<()> {
    let enc = EncTable::new(table);
    let mut e = RansEncoder::new(symbols.len());
    for (i, &s) in symbols.iter().enumerate().rev() {
        let sym = *enc.syms.get(s as usize).ok_or(Error::InvalidArgument)?;
        if sym.freq == 0 {
            return Err(Error::InvalidArgument);
        }
        e.put(i % LANES, sym, enc.scale);
    }
    e.finish(out);
    Ok(())
}

/// Decodes `out.len()` symbols written by `encode_symbols` with the same table.
#[cfg(any(test, feature = "internals"))]
pub fn decode_symbols(stream: &[u8], table: &DecTable, out: &mut [u16]) -> Result<()> {
    let mut d = RansDecoder::new(stream)?;
    for (i, o) in out.iter_mut().enumerate() {
        let lane = i % LANES;
        *o = table.step(&mut d.states[lane]);
        d.renorm_checked(lane)?;
    }
    if d.finish()? != [0; LANES] {
        return Err(Error::CorruptData);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::lcg;

    #[test]
    fn roundtrip_skewed_and_uniform() {
        let mut seed = 7;
        // Miri interprets every operation: the long streams are shorter there (still many groups).
        let long = if cfg!(miri) { 3_000 } else { 100_000 };
        for &(n, alphabet, skew) in
            &[(0usize, 4usize, 1u64), (1, 4, 1), (13, 2, 1), (long, 256, 1), (long, 300, 8), (5_000, 1, 1)]
        {
            let syms: Vec<u16> = (0..n)
                .map(|_| {
                    let mut v = lcg(&mut seed) % alphabet as u64;
                    for _ in 1..skew {
                        v = v.min(lcg(&mut seed) % alphabet as u64);
                    }
                    v as u16
                })
                .collect();
            let mut counts = vec![0u64; alphabet];
            for &s in &syms {
                counts[s as usize] += 1;
            }
            if n == 0 {
                counts[0] = 1;
            }
            for scale in [10, 12, 15] {
                let t = FreqTable::from_counts(&counts, scale).unwrap();
                let mut buf = Vec::new();
                encode_symbols(&syms, &t, &mut buf).unwrap();
                let dt = DecTable::new(&t, |s| s as u16);
                let mut back = vec![0u16; n];
                decode_symbols(&buf, &dt, &mut back).unwrap();
                assert_eq!(back, syms);
                // A truncated stream never decodes successfully.
                if buf.len() > STATE_BYTES {
                    let r = decode_symbols(&buf[..buf.len() - 2], &dt, &mut back);
                    assert!(r.is_err());
                }
            }
        }
    }
}
