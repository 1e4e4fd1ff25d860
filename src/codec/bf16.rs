//! The bf16 codec: a log-scale histogram model of |x| with the low bits stored raw.
//!
//! A bf16 value is `s eeeeeeee mmmmmmm` (sign, 8-bit exponent, 7-bit mantissa). We split it into
//!
//! * a 12-bit symbol `eeeeeeee mmmm` (exponent and the top four mantissa bits), coded with rANS, and
//! * a raw nibble `s mmm` (sign and the low three mantissa bits), packed two per byte.
//!
//! Why this split: the symbol is the index of a histogram bin of |x| with 16 bins per octave, so one
//! order-0 table over it captures both the exponent distribution *and* the mantissa's dependence on
//! the exponent (inside the outer octaves of a bell-shaped weight distribution the density falls
//! steeply, so small mantissas are more likely). Measured on all-MiniLM-L6-v2 this keeps all but
//! 0.0004 bits/value of the joint model H(exponent) + H(sign, mantissa | exponent), while the sign
//! (measured 0.9998 bits) and the low mantissa bits are close enough to uniform that coding them
//! would cost more table than it saves. The table is smooth, so its levels delta-code cheaply
//! (see `entropy::table`), and decoding costs one rANS step and one nibble per value.

use crate::entropy::bits::{BitReader, BitWriter};
use crate::entropy::rans::{DecTable, EncTable, RansDecoder, RansEncoder, LANES, RANS_L};
use crate::entropy::table::FreqTable;
use crate::error::{Error, Result};

/// Number of distinct symbols: 8 exponent bits and 4 mantissa bits.
pub const SYMBOLS: usize = 1 << 12;
/// Frequency precision. 14 bits keep the normalisation loss far below 0.005 bit/symbol for the
/// few hundred symbols real tensors use, with a 128 KiB decode table that stays in L2.
pub const SCALE: u32 = 14;

#[inline(always)]
fn symbol_of(v: u16) -> usize {
    ((v >> 3) & 0xFFF) as usize
}

#[inline(always)]
fn nibble_of(v: u16) -> u8 {
    (((v >> 12) & 8) | (v & 7)) as u8
}

#[inline(always)]
fn join(base: u16, nibble: u32) -> u16 {
    base | (((nibble & 8) as u16) << 12) | (nibble & 7) as u16
}

/// Adds the symbol histogram of `src` (little-endian bf16) to `counts`.
pub fn histogram(src: &[u8], counts: &mut [u64]) {
    debug_assert_eq!(counts.len(), SYMBOLS);
    for v in src.chunks_exact(2) {
        counts[symbol_of(u16::from_le_bytes([v[0], v[1]]))] += 1;
    }
}

/// The coding model of one frame: a frequency table over the 12-bit symbols.
pub struct Model {
    pub table: FreqTable,
}

impl Model {
    pub fn from_counts(counts: &[u64]) -> Result<Model> {
        Ok(Model { table: FreqTable::from_counts(counts, SCALE)? })
    }

    pub fn serialize(&self) -> Vec<u8> {
        let mut w = BitWriter::new();
        self.table.write(&mut w);
        w.finish()
    }

    pub fn parse(bytes: &[u8]) -> Result<Model> {
        let mut r = BitReader::new(bytes);
        let table = FreqTable::read(&mut r, SYMBOLS)?;
        if r.bytes_consumed() != bytes.len() || table.scale != SCALE {
            return Err(Error::CorruptModel);
        }
        Ok(Model { table })
    }

    /// Estimated payload bits of data with histogram `counts` under this model.
    pub fn cost_bits(&self, counts: &[u64]) -> f64 {
        let n: u64 = counts.iter().sum();
        self.table.cost_bits(counts) + 4.0 * n as f64
    }

    pub fn encoder(&self) -> EncTable {
        EncTable::new(&self.table)
    }

    pub fn decoder(&self) -> DecTable {
        // The stored value is the symbol already shifted into place in the output word.
        DecTable::new(&self.table, |s| (s as u16) << 3)
    }
}

/// Encodes one chunk of little-endian bf16 (even length). Layout: raw nibbles (two per byte, the
/// first value in the low nibble), then the rANS stream.
pub fn encode_chunk(enc: &EncTable, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
    debug_assert!(src.len() % 2 == 0);
    let n = src.len() / 2;
    let start = out.len();
    out.resize(start + n.div_ceil(2), 0);
    let nib = &mut out[start..];
    for (i, v) in src.chunks_exact(2).enumerate() {
        let v = u16::from_le_bytes([v[0], v[1]]);
        nib[i / 2] |= nibble_of(v) << (4 * (i & 1));
    }
    let mut e = RansEncoder::with_capacity(n * 11 / 16 + 16);
    for (i, v) in src.chunks_exact(2).enumerate().rev() {
        let s = enc.syms[symbol_of(u16::from_le_bytes([v[0], v[1]]))];
        if s.freq == 0 {
            return Err(Error::InvalidArgument); // the model was not built from this data
        }
        e.put(i % LANES, s, enc.scale);
    }
    e.finish(out);
    Ok(())
}

/// Decodes one chunk written by `encode_chunk` into `dst` (whose length fixes the value count).
pub fn decode_chunk(dec: &DecTable, src: &[u8], dst: &mut [u8]) -> Result<()> {
    debug_assert!(dst.len() % 2 == 0 && dec.scale == SCALE);
    let n = dst.len() / 2;
    let nib_len = n.div_ceil(2);
    if src.len() < nib_len {
        return Err(Error::CorruptData);
    }
    let (nib, stream) = src.split_at(nib_len);
    let mut d = RansDecoder::new(stream)?;
    let entries = &dec.entries[..1 << SCALE];
    const MASK: u32 = (1 << SCALE) - 1;

    // Fast path: whole groups of LANES values while every lane can renormalise without a check.
    let mut done = 0;
    for (out, nb) in dst.chunks_exact_mut(2 * LANES).zip(nib.chunks_exact(LANES / 2)) {
        if d.words_left() < LANES {
            break;
        }
        let nb = u32::from_le_bytes([nb[0], nb[1], nb[2], nb[3]]);
        let words = &d.words[d.pos..d.pos + 2 * LANES];
        let mut used = 0;
        for lane in 0..LANES {
            let x = d.states[lane];
            let e = entries[(x & MASK) as usize];
            let x = (e & 0xFFFF) as u32 * (x >> SCALE) + ((e >> 16) & 0xFFFF) as u32;
            let v = join((e >> 32) as u16, nb >> (4 * lane));
            out[2 * lane..2 * lane + 2].copy_from_slice(&v.to_le_bytes());
            // Branch-free renormalisation: the branch would be taken about two times in three, at random.
            let need = x < RANS_L;
            let w = u16::from_le_bytes([words[used], words[used + 1]]) as u32;
            d.states[lane] = if need { (x << 16) | w } else { x };
            used += 2 * need as usize;
        }
        d.pos += used;
        done += LANES;
    }

    // Tail: the obviously correct, fully checked path.
    for i in done..n {
        let lane = i % LANES;
        let base = dec.step(&mut d.states[lane]);
        d.renorm_checked(lane)?;
        let v = join(base, (nib[i / 2] >> (4 * (i & 1))) as u32);
        dst[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
    }
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join_cover_every_bit_pattern() {
        for v in 0..=u16::MAX {
            assert_eq!(join((symbol_of(v) as u16) << 3, nibble_of(v) as u32), v);
        }
    }

    #[test]
    fn every_bit_pattern_roundtrips() {
        // NaNs, infinities, subnormals and both zeros included.
        let src: Vec<u8> = (0..=u16::MAX).rev().flat_map(|v| v.to_le_bytes()).collect();
        let mut counts = vec![0u64; SYMBOLS];
        histogram(&src, &mut counts);
        let m = Model::from_counts(&counts).unwrap();
        let m = Model::parse(&m.serialize()).unwrap();
        let mut buf = Vec::new();
        encode_chunk(&m.encoder(), &src, &mut buf).unwrap();
        let mut back = vec![0u8; src.len()];
        decode_chunk(&m.decoder(), &buf, &mut back).unwrap();
        assert_eq!(back, src);
    }
}
