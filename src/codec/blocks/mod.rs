//! Codecs for ggml's other block-quantized types (Q6_K, Q8_0, Q5_0, Q5_1, Q4_0, Q4_1): each block
//! is split into its header fields and its quantized values, which are coded as two streams with
//! order-0 tables: one table per header field, one for the values.
//!
//! Why split: a byte coder sees fp16 scales, packed high bits and quants interleaved, so one
//! byte distribution has to serve all of them. Coded apart, each field gets its own statistics;
//! the values are reassembled first where ggml splits them across bytes (Q6_K's 4+2 bits, Q5's
//! high-bit words), so that the table sees the quantized value itself. Alphabets are at most 256
//! symbols, so a decode table entry packs into one u32 (see `Packed`).

#[cfg(target_arch = "x86_64")]
mod avx512;

use crate::entropy::bits::{BitReader, BitWriter};
use crate::entropy::rans::{EncTable, RansDecoder, RansEncoder, LANES};
use crate::entropy::table::FreqTable;
use crate::error::{Error, Result};

const SCALE: u32 = 12;
const T: usize = 1 << SCALE;

/// How a block type splits into header symbols and value symbols, and back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Q6K,
    Q8_0,
    Q5_0,
    Q5_1,
    Q4_0,
    Q4_1,
}

impl Layout {
    /// Bytes per block.
    pub const fn block(self) -> usize {
        match self {
            Layout::Q6K => 210,
            Layout::Q8_0 => 34,
            Layout::Q5_0 => 22,
            Layout::Q5_1 => 24,
            Layout::Q4_0 => 18,
            Layout::Q4_1 => 20,
        }
    }

    /// Alphabet size of each header table. Header symbol i of a block uses table
    /// `header_table(i)`.
    fn header_tables(self) -> &'static [usize] {
        match self {
            // d low byte, d high byte, the sixteen int8 scales, then per sub-block the position
            // (16) and the value (64) of its smallest quant.
            Layout::Q6K => &[256, 256, 256, 16, 64],
            // d low/high byte (and m low/high byte where the type has a min).
            Layout::Q8_0 | Layout::Q5_0 | Layout::Q4_0 => &[256, 256],
            Layout::Q5_1 | Layout::Q4_1 => &[256, 256, 256, 256],
        }
    }

    fn header_symbols(self) -> usize {
        match self {
            Layout::Q6K => 50,
            Layout::Q8_0 | Layout::Q5_0 | Layout::Q4_0 => 2,
            Layout::Q5_1 | Layout::Q4_1 => 4,
        }
    }

    fn header_table(self, i: usize) -> usize {
        match self {
            Layout::Q6K => match i {
                0 | 1 => i,
                2..18 => 2,
                18..34 => 3,
                _ => 4,
            },
            _ => i,
        }
    }

    /// Value symbols per block and their alphabet.
    fn values(self) -> (usize, usize) {
        match self {
            // The 15 quants of each sub-block other than its smallest.
            Layout::Q6K => (240, 64),
            Layout::Q8_0 => (32, 256),
            Layout::Q5_0 | Layout::Q5_1 => (32, 32),
            // The quant bytes themselves: each holds quants j and j+16 of the block.
            Layout::Q4_0 | Layout::Q4_1 => (16, 256),
        }
    }

    /// Value contexts: how many tables the values have.
    fn contexts(self) -> usize {
        match self {
            Layout::Q6K => 32,
            _ => 1,
        }
    }

    /// Runs of values that share a context (Q6_K: its 16 sub-blocks).
    fn sub_blocks(self) -> usize {
        match self {
            Layout::Q6K => 16,
            _ => 1,
        }
    }

    /// The context of value `i` of a block with header symbols `h`.
    ///
    /// Q6_K: the magnitude of the value's sub-block scale in 16 buckets, and whether the
    /// sub-block's smallest quant is 0 or more. ggml quantizes a sub-block so that its largest
    /// weight lands on the bottom quant (0, or 1 after its scale refinement), and spreads the rest
    /// by the sub-block's scale relative to the block's. So the smallest quant and its position
    /// are sent with the header, and the other 15 are coded knowing the bottom is taken (measured
    /// on Qwen2.5's output.weight: 5.784 -> 5.716 bits per quant, position and minimum included).
    #[inline(always)]
    fn context(self, h: &[u8], i: usize) -> usize {
        match self {
            Layout::Q6K => {
                let sub = i / 15;
                let scale = ((h[2 + sub] as i8).unsigned_abs() >> 3).min(15) as usize;
                16 * (h[34 + sub] > 0) as usize + scale
            }
            _ => 0,
        }
    }

    /// Splits a block into its header and value symbols.
    fn split(self, b: &[u8], h: &mut [u8], v: &mut [u8]) {
        match self {
            Layout::Q6K => {
                let (ql, qh) = (&b[..128], &b[128..192]);
                h[0] = b[208];
                h[1] = b[209];
                h[2..18].copy_from_slice(&b[192..208]);
                // Quant y in ggml's order; sub-block j holds quants 16j..16j+16.
                let mut q = [0u8; 256];
                for n in 0..2 {
                    let (ql, qh, y) = (&ql[64 * n..], &qh[32 * n..], 128 * n);
                    for l in 0..32 {
                        q[y + l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
                        q[y + l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
                        q[y + l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                        q[y + l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                    }
                }
                for (j, sub) in q.chunks_exact(16).enumerate() {
                    let mut pos = 0;
                    for t in 1..16 {
                        if sub[t] < sub[pos] {
                            pos = t;
                        }
                    }
                    h[18 + j] = pos as u8;
                    h[34 + j] = sub[pos];
                    let o = &mut v[15 * j..15 * j + 15];
                    o[..pos].copy_from_slice(&sub[..pos]);
                    o[pos..].copy_from_slice(&sub[pos + 1..]);
                }
            }
            Layout::Q8_0 => {
                h.copy_from_slice(&b[..2]);
                v.copy_from_slice(&b[2..34]);
            }
            Layout::Q5_0 | Layout::Q5_1 => {
                let o = if self == Layout::Q5_0 { 2 } else { 4 };
                h.copy_from_slice(&b[..o]);
                let qh = u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
                let qs = &b[o + 4..o + 20];
                for j in 0..16 {
                    v[j] = (qs[j] & 0xF) | ((((qh >> j) & 1) as u8) << 4);
                    v[j + 16] = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
                }
            }
            Layout::Q4_0 | Layout::Q4_1 => {
                let o = if self == Layout::Q4_0 { 2 } else { 4 };
                h.copy_from_slice(&b[..o]);
                v.copy_from_slice(&b[o..o + 16]);
            }
        }
    }

    /// The inverse of `split` (each split is a bijection between blocks and symbol sequences).
    fn join(self, h: &[u8], v: &[u8], b: &mut [u8]) {
        match self {
            Layout::Q6K => {
                b[208] = h[0];
                b[209] = h[1];
                b[192..208].copy_from_slice(&h[2..18]);
                let mut q = [0u8; 256];
                for (j, sub) in q.chunks_exact_mut(16).enumerate() {
                    // `pos` < 16: it was decoded with a 16-symbol table.
                    // Selects rather than copies of variable length, which become memmove calls.
                    let (pos, m, o) = ((h[18 + j] & 15) as usize, h[34 + j], &v[15 * j..15 * j + 15]);
                    for (t, x) in sub.iter_mut().enumerate() {
                        let before = o[t.min(14)];
                        let after = o[t.saturating_sub(1)];
                        *x = if t < pos {
                            before
                        } else if t == pos {
                            m
                        } else {
                            after
                        };
                    }
                }
                let (ql, qh) = b[..192].split_at_mut(128);
                for n in 0..2 {
                    let (ql, qh, y) = (&mut ql[64 * n..], &mut qh[32 * n..], 128 * n);
                    for l in 0..32 {
                        let (a, c, e, g) = (q[y + l], q[y + l + 32], q[y + l + 64], q[y + l + 96]);
                        ql[l] = (a & 0xF) | (e << 4);
                        ql[l + 32] = (c & 0xF) | (g << 4);
                        qh[l] = (a >> 4) | ((c >> 4) << 2) | ((e >> 4) << 4) | ((g >> 4) << 6);
                    }
                }
            }
            Layout::Q8_0 => {
                b[..2].copy_from_slice(h);
                b[2..34].copy_from_slice(v);
            }
            Layout::Q5_0 | Layout::Q5_1 => {
                let o = if self == Layout::Q5_0 { 2 } else { 4 };
                b[..o].copy_from_slice(h);
                let mut qh = 0u32;
                for j in 0..16 {
                    b[o + 4 + j] = (v[j] & 0xF) | (v[j + 16] << 4);
                    qh |= ((v[j] >> 4) as u32) << j | ((v[j + 16] >> 4) as u32) << (j + 16);
                }
                b[o..o + 4].copy_from_slice(&qh.to_le_bytes());
            }
            Layout::Q4_0 | Layout::Q4_1 => {
                let o = if self == Layout::Q4_0 { 2 } else { 4 };
                b[..o].copy_from_slice(h);
                b[o..o + 16].copy_from_slice(v);
            }
        }
    }

    /// Splits whole blocks into a flat header stream and a flat value stream (what
    /// `Counts::add_split` and `encode_split` take; the encoder splits each chunk once).
    pub fn split_all(self, src: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (hn, (vn, _)) = (self.header_symbols(), self.values());
        let nb = src.len() / self.block();
        let (mut h, mut v) = (vec![0u8; nb * hn], vec![0u8; nb * vn]);
        for ((b, h), v) in src.chunks_exact(self.block()).zip(h.chunks_exact_mut(hn)).zip(v.chunks_exact_mut(vn)) {
            self.split(b, h, v);
        }
        (h, v)
    }
}

/// Histograms of a run of blocks: one per header table, one for the values.
pub struct Counts {
    header: Vec<Vec<u64>>,
    /// One histogram per value context.
    values: Vec<Vec<u64>>,
}

impl Counts {
    pub fn new(l: Layout) -> Counts {
        Counts {
            header: l.header_tables().iter().map(|&n| vec![0u64; n]).collect(),
            values: vec![vec![0u64; l.values().1]; l.contexts()],
        }
    }

    /// Counts blocks already split by `Layout::split_all`.
    pub fn add_split(&mut self, l: Layout, h: &[u8], v: &[u8]) {
        for (i, &s) in h.iter().enumerate() {
            self.header[l.header_table(i % l.header_symbols())][s as usize] += 1;
        }
        let (hn, vn) = (l.header_symbols(), l.values().0);
        for (i, &s) in v.iter().enumerate() {
            let b = i / vn;
            self.values[l.context(&h[b * hn..b * hn + hn], i % vn)][s as usize] += 1;
        }
    }

    pub fn merge(&mut self, o: &Counts) {
        for (a, b) in self.header.iter_mut().chain(self.values.iter_mut()).zip(o.header.iter().chain(&o.values)) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }
}

/// The tables of a frame: one per header field, one for the values.
pub struct Model {
    layout: Layout,
    tables: Vec<FreqTable>, // header tables, then one value table per context
}

fn table_for(counts: &[u64]) -> Result<FreqTable> {
    if counts.iter().any(|&c| c > 0) {
        FreqTable::from_counts(counts, SCALE)
    } else {
        let mut c = vec![0u64; counts.len()];
        c[0] = 1;
        FreqTable::from_counts(&c, SCALE)
    }
}

impl Model {
    pub fn from_counts(layout: Layout, c: &Counts) -> Result<Model> {
        let tables = c.header.iter().chain(&c.values).map(|h| table_for(h)).collect::<Result<_>>()?;
        Ok(Model { layout, tables })
    }

    pub fn write(&self) -> Vec<u8> {
        let mut w = BitWriter::new();
        for t in &self.tables {
            t.write(&mut w);
        }
        w.finish()
    }

    pub fn read(layout: Layout, bytes: &[u8]) -> Result<Model> {
        let mut r = BitReader::new(bytes);
        let sizes =
            layout.header_tables().iter().copied().chain(std::iter::repeat(layout.values().1).take(layout.contexts()));
        let tables = sizes
            .map(|n| {
                let t = FreqTable::read(&mut r, n)?;
                if t.scale != SCALE {
                    return Err(Error::CorruptModel);
                }
                Ok(t)
            })
            .collect::<Result<Vec<_>>>()?;
        if r.bytes_consumed() != bytes.len() || !r.padding_is_zero() {
            return Err(Error::CorruptModel);
        }
        Ok(Model { layout, tables })
    }

    pub fn encoder(&self) -> Encoder {
        Encoder { layout: self.layout, tables: self.tables.iter().map(EncTable::new).collect() }
    }

    pub fn decoder(&self) -> Decoder {
        let mut packed = Vec::with_capacity(self.tables.len() * T);
        for t in &self.tables {
            for (sym, &f) in t.freq.iter().enumerate() {
                for k in 0..f {
                    packed.push((f - 1) | (k << 12) | ((sym as u32) << 24));
                }
            }
        }
        Decoder { layout: self.layout, packed }
    }
}

pub struct Encoder {
    layout: Layout,
    tables: Vec<EncTable>,
}

/// Decoding tables, packed: per slot `freq - 1` (bits 0..12), `slot - cum` (12..24), symbol
/// (24..32); the header tables, then the value tables, `1 << SCALE` entries each.
pub struct Decoder {
    layout: Layout,
    packed: Vec<u32>,
}

/// Codes a flat stream in which symbol i uses table `table_of(i)`.
fn encode_stream(syms: &[u8], tables: &[EncTable], table_of: impl Fn(usize) -> usize, out: &mut Vec<u8>) -> Result<()> {
    let mut e = RansEncoder::new(syms.len());
    for (i, &s) in syms.iter().enumerate().rev() {
        let sym = tables[table_of(i)].syms[s as usize];
        if sym.freq == 0 {
            return Err(Error::InvalidArgument); // the model was not built from this data
        }
        e.put(i % LANES, sym, SCALE);
    }
    e.finish(out);
    Ok(())
}

#[inline(always)]
fn step(t: &[u32], x: &mut u32) -> u8 {
    let e = t[(*x & (T as u32 - 1)) as usize];
    *x = ((e & 0xFFF) + 1) * (*x >> SCALE) + ((e >> 12) & 0xFFF);
    (e >> 24) as u8
}

/// Decodes a flat stream of `out.len()` symbols in which symbol i uses the packed table at
/// `offsets[i]` (or at `base` for every symbol when `offsets` is None). Whole groups of LANES take
/// a SIMD kernel or the branch-free scalar path while a group's words remain; the rest is
/// bounds-checked.
fn decode_stream(stream: &[u8], packed: &[u32], offsets: Option<&[u32]>, base: u32, out: &mut [u8]) -> Result<()> {
    let table_of = |i: usize| offsets.map_or(base, |o| o[i]) as usize;
    let mut d = RansDecoder::new(stream)?;
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::codec::bf16::simd::detect() == crate::codec::bf16::simd::Level::Avx512 {
        // SAFETY: AVX-512 was detected; every offset names a whole table (the caller builds
        // them from table indices below the table count).
        done = unsafe { avx512::decode_groups(&mut d, packed, offsets, base, out) };
    }
    while done + LANES <= out.len() && d.words_left() >= LANES {
        for lane in 0..LANES {
            let t = table_of(done + lane);
            out[done + lane] = step(&packed[t..t + T], &mut d.states[lane]);
        }
        d.renorm_group();
        done += LANES;
    }
    for i in done..out.len() {
        let t = table_of(i);
        out[i] = step(&packed[t..t + T], &mut d.states[i % LANES]);
        d.renorm_checked(i % LANES)?;
    }
    if d.finish()? != [0; LANES] {
        return Err(Error::CorruptData);
    }
    Ok(())
}

/// The smallest a coded chunk can be: the header-stream length and two streams' states.
pub fn min_coded_len() -> u64 {
    4 + 2 * crate::entropy::rans::STATE_BYTES as u64
}

/// Encodes a chunk of whole blocks: u32 LE length of the header stream, the header stream, the
/// value stream.
pub fn encode_chunk(enc: &Encoder, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let (h, v) = enc.layout.split_all(src);
    encode_split(enc, &h, &v, out)
}

/// `encode_chunk` for blocks already split by `Layout::split_all`.
pub fn encode_split(enc: &Encoder, h: &[u8], v: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let l = enc.layout;
    let hn = l.header_symbols();
    let mut hs = Vec::new();
    encode_stream(h, &enc.tables, |i| l.header_table(i % hn), &mut hs)?;
    out.extend_from_slice(&(hs.len() as u32).to_le_bytes());
    out.extend_from_slice(&hs);
    let (vt, vn) = (l.header_tables().len(), l.values().0);
    encode_stream(v, &enc.tables, |i| vt + l.context(&h[i / vn * hn..i / vn * hn + hn], i % vn), out)
}

/// Decodes a chunk written by `encode_chunk` into `dst` (a whole number of blocks).
pub fn decode_chunk(dec: &Decoder, src: &[u8], dst: &mut [u8]) -> Result<()> {
    let l = dec.layout;
    let nb = dst.len() / l.block();
    let (hn, (vn, _)) = (l.header_symbols(), l.values());
    let len = src.get(..4).ok_or(Error::CorruptData)?;
    let hlen = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let hs = src.get(4..4usize.checked_add(hlen).ok_or(Error::CorruptData)?).ok_or(Error::CorruptData)?;
    let vs = &src[4 + hlen..];
    let (mut h, mut v) = (vec![0u8; nb * hn], vec![0u8; nb * vn]);
    // Header symbol i uses table header_table(i % hn): one block's offsets, repeated (a division
    // per symbol here cost as much as the header stream's whole decode).
    let pattern: Vec<u32> = (0..hn).map(|i| (l.header_table(i) * T) as u32).collect();
    let mut hoff = Vec::with_capacity(nb * hn);
    for _ in 0..nb {
        hoff.extend_from_slice(&pattern);
    }
    decode_stream(hs, &dec.packed, Some(&hoff), 0, &mut h)?;
    let vt = l.header_tables().len();
    if l.contexts() == 1 {
        decode_stream(vs, &dec.packed, None, (vt * T) as u32, &mut v)?;
    } else {
        // The values' tables, from the decoded headers, once per value.
        let mut tab = vec![0u32; nb * vn];
        let run = vn / l.sub_blocks(); // values of a sub-block share a context
        for (b, t) in tab.chunks_exact_mut(vn).enumerate() {
            let hb = &h[b * hn..b * hn + hn];
            for (j, t) in t.chunks_exact_mut(run).enumerate() {
                t.fill(((vt + l.context(hb, j * run)) * T) as u32);
            }
        }
        decode_stream(vs, &dec.packed, Some(&tab), 0, &mut v)?;
    }
    for ((b, h), v) in dst.chunks_exact_mut(l.block()).zip(h.chunks_exact(hn)).zip(v.chunks_exact(vn)) {
        l.join(h, v, b);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join_are_inverse_on_random_blocks() {
        let mut seed = 3u64;
        for l in [Layout::Q6K, Layout::Q8_0, Layout::Q5_0, Layout::Q5_1, Layout::Q4_0, Layout::Q4_1] {
            for _ in 0..500 {
                let b: Vec<u8> = (0..l.block())
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        (seed >> 56) as u8
                    })
                    .collect();
                let (h, v) = l.split_all(&b);
                let mut back = vec![0u8; l.block()];
                l.join(&h, &v, &mut back);
                assert_eq!(back, b, "{l:?}");
                assert!(v.iter().all(|&s| (s as usize) < l.values().1));
            }
        }
    }
}
