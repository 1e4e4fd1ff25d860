//! The Q4_K codec: ggml's 4-bit k-quant blocks, coded as values in context rather than as bytes.
//!
//! A Q4_K block (144 bytes, 256 weights) is `d` and `dmin` (fp16), twelve bytes packing eight
//! 6-bit scales `sc` and eight 6-bit mins `m` (one per sub-block of 32 weights), and 128 bytes of
//! 4-bit quants `q`, where weight = d·sc·q − dmin·m.
//!
//! * The quants are coded in pairs (two neighbours of one sub-block, a 256-symbol alphabet) with a
//!   table chosen by the sub-block's zero point `z = dmin·m / (d·sc)`, the quant value that
//!   stands for weight 0: weights cluster around 0, so the quants cluster around `z`. Measured on
//!   Qwen2.5-Coder-1.5B this takes a quant from 3.86 bits (order 0) to 3.79.
//! * The header fields are unpacked and each coded with its own order-0 table: the low and high
//!   bytes of `d` and of `dmin`, and the 6-bit scales and mins (whose packed bytes mix bits of
//!   different fields, which is what a byte coder sees).
//!
//! All tables live in the frame's model section. Every byte pattern roundtrips: the context is a
//! function of the decoded header alone, computed identically on both sides.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::zero_points;
#[cfg(target_arch = "x86_64")]
mod avx512;

use std::any::Any;

use super::{ChunkDecoder, ChunkEncoder, Codec, Kind, Method, Plan};
use crate::cpu::{self, Level};
use crate::entropy::bits::{BitReader, BitWriter};
use crate::entropy::indexed::{index_slice, Flat};
use crate::entropy::packed::{self, step, PackedPart, Tables, FAST_SCALE, SCALE};
use crate::entropy::rans::{EncTable, RansDecoder, LANES};
use crate::entropy::table::FreqTable;
use crate::error::{Error, Result};
use crate::parallel;

/// The Q4_K codec (method 2).
pub struct Q4kCodec;

impl Codec for Q4kCodec {
    fn method(&self) -> Method {
        Method::Q4kCtx
    }

    /// Per-chunk counts (in parallel), one model for the frame.
    fn plan<'a>(&self, _: Kind, chunks: &[&'a [u8]], p: &Plan) -> Result<Box<dyn ChunkEncoder + 'a>> {
        // Counting finds every block's contexts; they are kept for coding (8 bytes a block)
        // rather than computed again there.
        let mut counts: Vec<(&[u8], Counts, BlockContexts)> =
            chunks.iter().map(|c| (*c, Counts::new(), Vec::new())).collect();
        parallel::for_each_mut(&mut counts, p.threads, |_, (c, n, ctx)| {
            *ctx = n.add_with_contexts(c);
            Ok(())
        })?;
        let mut total = Counts::new();
        for (_, c, _) in &counts {
            total.merge(c);
        }
        let model = Model::from_counts(&total, if p.fast { FAST_SCALE } else { SCALE })?;
        let contexts = counts.into_iter().map(|c| c.2).collect();
        Ok(Box::new(FrameEncoder { section: model.write(), enc: model.encoder(), contexts }))
    }

    fn read_model(&self, _: Kind, _: u32, model: &[u8]) -> Result<Box<dyn super::Model>> {
        Ok(Box::new(Model::read(model)?))
    }

    fn min_coded_len(&self, orig: u64) -> u64 {
        min_coded_len(orig)
    }

    fn levels(&self) -> &'static [Level] {
        &[Level::Avx2, Level::Avx512]
    }
}

/// The frame's one model: its section and its encoder.
struct FrameEncoder {
    section: Vec<u8>,
    enc: Encoder,
    /// Every chunk's blocks' contexts.
    contexts: Vec<BlockContexts>,
}

/// The contexts of the eight sub-blocks of each block of a chunk.
type BlockContexts = Vec<[u8; 8]>;

impl ChunkEncoder for FrameEncoder {
    fn model(&self) -> Vec<u8> {
        self.section.clone()
    }

    fn table(&self, _: usize) -> u8 {
        0
    }

    fn encode(&self, i: usize, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
        crate::entropy::indexed::with_index_buffer(|idx| encode_chunk_with(&self.enc, src, Some(&self.contexts[i]), idx, out))
    }

    fn pairs(&self) -> bool {
        true
    }

    /// Two chunks of one length: their pair streams coded in turn (`Flat::encode_windows_pair`).
    fn encode_pair(&self, i: usize, src: [&[u8]; 2], out: [&mut Vec<u8>; 2]) -> Result<()> {
        if src[0].len() != src[1].len() {
            return super::encode_each(self, i, src, out);
        }
        let [oa, ob] = out;
        let ctx = [&self.contexts[i][..], &self.contexts[i + 1][..]];
        let blocks = src.map(|s| s.len() / BLOCK);
        crate::entropy::indexed::with_index_buffer(|idx| {
            encode_headers(&self.enc, src[0], idx, oa)?;
            encode_headers(&self.enc, src[1], idx, ob)
        })?;
        self.enc.pairs.encode_windows_pair(blocks[0] * PAIRS, WINDOW_BLOCKS * PAIRS, [oa, ob], |k, start, w| {
            fill_pairs(&self.enc, src[k], Some(ctx[k]), None, start, w)
        })
    }
}

impl super::Model for Model {
    fn tables(&self) -> usize {
        1
    }

    fn pairs(&self) -> bool {
        true
    }

    fn decoder(&self, _: u8, level: Level) -> Box<dyn ChunkDecoder> {
        Box::new(Model::decoder(self, level))
    }
}

impl ChunkDecoder for Decoder {
    fn decode(&self, _: u64, src: &[u8], dst: &mut [u8]) -> Result<()> {
        decode_chunk(self, src, dst)
    }

    fn decode_pair(
        &self,
        a: (u64, &[u8], &mut [u8]),
        b_dec: &dyn ChunkDecoder,
        b: (u64, &[u8], &mut [u8]),
    ) -> Result<()> {
        match b_dec.as_any().downcast_ref::<Decoder>() {
            Some(bd) => decode_chunk_pair((self, a.1, a.2), (bd, b.1, b.2)),
            None => {
                self.decode(a.0, a.1, a.2)?;
                b_dec.decode(b.0, b.1, b.2)
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Bytes per block.
pub const BLOCK: usize = 144;
/// Zero-point contexts for the quant pairs.
const CONTEXTS: usize = 16;
/// Header symbols per block: d (2 bytes), dmin (2 bytes), 8 scales, 8 mins.
const HEADER_SYMBOLS: usize = 20;
/// Quant pairs per block.
const PAIRS: usize = 128;

/// Header tables: d low/high byte, dmin low/high byte, scales, mins.
const HEADER_TABLES: [usize; 6] = [256, 256, 256, 256, 64, 64];

/// The table a header symbol at position `i` of its block uses.
const fn header_table(i: usize) -> usize {
    match i {
        0..=3 => i,
        4..=11 => 4,
        _ => 5,
    }
}

/// ggml's packing of eight 6-bit scales and eight 6-bit mins in 12 bytes (`get_scale_min_k4`).
pub(crate) fn unpack_scales(q: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut m) = ([0u8; 8], [0u8; 8]);
    for j in 0..4 {
        sc[j] = q[j] & 63;
        m[j] = q[j + 4] & 63;
    }
    for j in 4..8 {
        sc[j] = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        m[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
    (sc, m)
}

/// The inverse of `unpack_scales` (the packing uses all 96 bits, so it is a bijection).
pub(crate) fn pack_scales(sc: &[u8; 8], m: &[u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..4 {
        q[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        q[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        q[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4);
    }
    q
}

/// The zero-point context of a sub-block: round(dmin·m / (d·sc)) clamped to the contexts, and
/// 0 where that is undefined. Plain IEEE f32 arithmetic, so both sides agree bit for bit.
#[inline]
fn context(d: f32, dmin: f32, sc: u8, m: u8) -> u8 {
    zero_point(d, dmin, sc, m, CONTEXTS)
}

/// round(dmin·m / (d·sc)) clamped below `contexts`, and 0 where that is undefined: the zero point
/// of a sub-block of any k-quant with mins (Q4_K here, Q5_K in the block codecs).
#[inline(always)]
pub(crate) fn zero_point(d: f32, dmin: f32, sc: u8, m: u8, contexts: usize) -> u8 {
    let z = dmin * m as f32 / (d * sc as f32);
    if z.is_finite() && z >= 0.0 {
        ((z + 0.5) as usize).min(contexts - 1) as u8
    } else {
        0
    }
}

/// Exact fp16 -> f32 conversion, inlined: the decoder converts two per block, and a call per
/// value through a run-time CPU dispatch cost more than the arithmetic around it.
#[inline(always)]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1F) as u32;
    let man = (h & 0x3FF) as u32;
    match exp {
        // Zero and subnormals: man * 2^-24, exact in f32.
        0 => f32::from_bits(sign | (man as f32 * (1.0 / 16_777_216.0)).to_bits()),
        31 => f32::from_bits(sign | 0x7F80_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

/// The header symbols of one block, in coding order.
fn header_symbols(b: &[u8]) -> [u8; HEADER_SYMBOLS] {
    let mut h = [0u8; HEADER_SYMBOLS];
    h[..4].copy_from_slice(&b[..4]);
    let (sc, m) = unpack_scales(&b[4..16]);
    h[4..12].copy_from_slice(&sc);
    h[12..20].copy_from_slice(&m);
    h
}

/// Contexts of the eight sub-blocks of a block, from its header symbols.
fn contexts(h: &[u8; HEADER_SYMBOLS]) -> [u8; 8] {
    let d = f16_to_f32(u16::from_le_bytes([h[0], h[1]]));
    let dmin = f16_to_f32(u16::from_le_bytes([h[2], h[3]]));
    std::array::from_fn(|s| context(d, dmin, h[4 + s], h[12 + s]))
}

/// `contexts`, with the AVX2 kernel where the decoder may use it (same results).
#[inline(always)]
fn contexts_fast(h: &[u8; HEADER_SYMBOLS], simd: Level) -> [u8; 8] {
    #[cfg(target_arch = "x86_64")]
    if simd != Level::Scalar {
        let d = f16_to_f32(u16::from_le_bytes([h[0], h[1]]));
        let dmin = f16_to_f32(u16::from_le_bytes([h[2], h[3]]));
        // SAFETY: a level above scalar means AVX2 was detected.
        return unsafe { avx2::contexts(d, dmin, h[4..12].try_into().unwrap(), h[12..20].try_into().unwrap()) };
    }
    let _ = simd;
    contexts(h)
}

/// Pair `k` (0..128) of a block: the sub-block and the first of its two elements. Pairs go by
/// 32: for j in 0..4, the 16 pairs of sub-block 2j, then the 16 of sub-block 2j+1, so that one
/// group of 32 pairs fills quant bytes 32j..32j+32 exactly.
#[cfg(test)]
fn pair_position(k: usize) -> (usize, usize) {
    let j = k / 32;
    let s = 2 * j + (k % 32) / 16;
    (s, 2 * (k % 16))
}


/// The pair symbol of pair `p` (0..16) of sub-block `s` of a block's quant bytes (the pair `k`
/// with `pair_position(k) == (s, 2 * p)`): its two 4-bit quants, low then high.
#[cfg(test)]
fn sub_block_pair(qs: &[u8], s: usize, p: usize) -> u8 {
    let shift = 4 * (s % 2);
    let base = 32 * (s / 2) + 2 * p;
    ((qs[base] >> shift) & 15) | (((qs[base + 1] >> shift) & 15) << 4)
}

/// Every pair symbol of a block's 128 quant bytes, in coding order (pair k at index k: the 16
/// pairs of sub-block s at 16s..16s+16). Straight-line over 16-bit words, so it vectorises (pair
/// by pair through `sub_block_pair`, building the encoder's indices took a quarter of the time of
/// compressing Q4_K).
#[inline(always)]
fn block_pairs(qs: &[u8]) -> [u8; PAIRS] {
    let mut out = [0u8; PAIRS];
    for (q, o) in qs[..128].chunks_exact(32).zip(out.chunks_exact_mut(32)) {
        let (even, odd) = o.split_at_mut(16);
        for ((w, e), d) in q.chunks_exact(2).zip(even.iter_mut()).zip(odd.iter_mut()) {
            let w = u16::from_le_bytes([w[0], w[1]]);
            // Sub-block 2j takes the low nibbles of the two bytes, sub-block 2j+1 the high ones.
            *e = ((w & 0xF) | ((w >> 4) & 0xF0)) as u8;
            *d = (((w >> 4) & 0xF) | ((w >> 8) & 0xF0)) as u8;
        }
    }
    out
}

/// Histograms of a run of blocks: per header table, and per context.
pub struct Counts {
    header: Vec<Vec<u64>>,
    pairs: Vec<Vec<u64>>,
}

impl Counts {
    pub fn new() -> Counts {
        Counts {
            header: HEADER_TABLES.iter().map(|&n| vec![0u64; n]).collect(),
            pairs: vec![vec![0u64; 256]; CONTEXTS],
        }
    }

    /// Adds the counts of `src`'s blocks (a whole number of them).
    #[cfg(any(test, feature = "internals"))]
    pub fn add(&mut self, src: &[u8]) {
        self.add_with_contexts(src);
    }

    /// Adds the counts of `src`'s blocks, returning the contexts of every block.
    fn add_with_contexts(&mut self, src: &[u8]) -> BlockContexts {
        let mut all = Vec::with_capacity(src.len() / BLOCK);
        // Pair counts in two u32 copies that alternate pair by pair: neighbouring pairs of a
        // sub-block are often equal, and one copy would make each increment wait for the last
        // (32 KiB together, in L1; measured 18% -> 11% of compressing Q4_K). Chunks hold far
        // fewer than 2^32 pairs.
        let level = cpu::detect();
        for part in src.chunks(BLOCK << 20) {
            let mut twin = vec![[0u32; 2 * 256]; CONTEXTS];
            for b in part.chunks_exact(BLOCK) {
                let h = header_symbols(b);
                for (i, &v) in h.iter().enumerate() {
                    self.header[header_table(i)][v as usize] += 1;
                }
                let ctx = contexts_fast(&h, level);
                all.push(ctx);
                let pairs = block_pairs(&b[16..]);
                // A sub-block at a time: its table is found once for its 16 pairs.
                for (s, ps) in pairs.chunks_exact(16).enumerate() {
                    let c = &mut twin[ctx[s] as usize];
                    for p in ps.chunks_exact(2) {
                        c[p[0] as usize] += 1;
                        c[256 + p[1] as usize] += 1;
                    }
                }
            }
            for (t, c) in self.pairs.iter_mut().zip(&twin) {
                for (k, x) in t.iter_mut().enumerate() {
                    *x += (c[k] + c[256 + k]) as u64;
                }
            }
        }
        all
    }

    pub fn merge(&mut self, other: &Counts) {
        for (a, b) in self.header.iter_mut().chain(self.pairs.iter_mut()).zip(other.header.iter().chain(&other.pairs)) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }
}

impl Default for Counts {
    fn default() -> Self {
        Self::new()
    }
}

/// A frame's tables: one per header field, one per zero-point context that occurs; all of
/// scale `scale`.
pub struct Model {
    header: Vec<FreqTable>,
    pairs: Vec<Option<FreqTable>>,
    scale: u32,
}

impl Model {
    /// The tables of `c` at `scale` (`SCALE`, or `FAST_SCALE` for the fast variant).
    pub fn from_counts(c: &Counts, scale: u32) -> Result<Model> {
        let header = c
            .header
            .iter()
            .map(|h| {
                if h.iter().any(|&x| x > 0) {
                    FreqTable::from_counts(h, scale)
                } else {
                    one_symbol(h.len(), scale)
                }
            })
            .collect::<Result<_>>()?;
        let pairs = c
            .pairs
            .iter()
            .map(|h| if h.iter().any(|&x| x > 0) { FreqTable::from_counts(h, scale).map(Some) } else { Ok(None) })
            .collect::<Result<_>>()?;
        Ok(Model { header, pairs, scale })
    }

    pub fn write(&self) -> Vec<u8> {
        let mut w = BitWriter::new();
        for t in &self.header {
            t.write(&mut w);
        }
        let present = self.pairs.iter().enumerate().fold(0u32, |a, (i, t)| a | ((t.is_some() as u32) << i));
        w.put(present, CONTEXTS as u32);
        for t in self.pairs.iter().flatten() {
            t.write(&mut w);
        }
        w.finish()
    }

    /// Every table must have the first one's scale, which packed tables must allow.
    pub fn read(bytes: &[u8]) -> Result<Model> {
        let mut r = BitReader::new(bytes);
        let header = HEADER_TABLES.iter().map(|&n| FreqTable::read(&mut r, n)).collect::<Result<Vec<_>>>()?;
        let present = r.get(CONTEXTS as u32)?;
        let mut pairs = Vec::with_capacity(CONTEXTS);
        for i in 0..CONTEXTS {
            pairs.push(if present >> i & 1 == 1 { Some(FreqTable::read(&mut r, 256)?) } else { None });
        }
        if r.bytes_consumed() != bytes.len() || !r.padding_is_zero() {
            return Err(Error::CorruptModel);
        }
        let scale = header[0].scale;
        if !packed::scale_ok(scale) || header.iter().chain(pairs.iter().flatten()).any(|t| t.scale != scale) {
            return Err(Error::CorruptModel);
        }
        Ok(Model { header, pairs, scale })
    }

    pub fn encoder(&self) -> Encoder {
        let header: Vec<EncTable> = self.header.iter().map(EncTable::new).collect();
        let pairs: Vec<EncTable> = self.pairs.iter().flatten().map(EncTable::new).collect();
        let mut at = Flat::offsets(&pairs).into_iter();
        Encoder {
            header: Flat::new(&header),
            header_offsets: Flat::offsets(&header),
            pairs: Flat::new(&pairs),
            pair_offsets: self.pairs.iter().map(|t| t.as_ref().and_then(|_| at.next())).collect(),
        }
    }

    /// The decoding tables, for kernels up to `level`.
    pub fn decoder(&self, level: Level) -> Decoder {
        let mut header = Vec::with_capacity(6 << self.scale);
        for t in &self.header {
            packed::pack(t, &mut header);
        }
        let mut pairs = Vec::with_capacity(CONTEXTS << self.scale);
        let mut present = [false; CONTEXTS];
        for (c, t) in self.pairs.iter().enumerate() {
            match t {
                Some(t) => {
                    packed::pack(t, &mut pairs);
                    present[c] = true;
                }
                None => pairs.resize(pairs.len() + (1 << self.scale), 0),
            }
        }
        Decoder { header, pairs, present, scale: self.scale, simd: level.min(cpu::detect()) }
    }
}

/// A table for a field no block uses (an empty frame): any valid table will do.
fn one_symbol(alphabet: usize, scale: u32) -> Result<FreqTable> {
    let mut c = vec![0u64; alphabet];
    c[0] = 1;
    FreqTable::from_counts(&c, scale)
}

pub struct Encoder {
    /// The header tables end to end (see entropy::indexed), and where each starts.
    header: Flat,
    header_offsets: Vec<u32>,
    /// The pair tables of the contexts that have one, end to end, and where each context's
    /// starts (None: no table, which no chunk of the frame uses).
    pairs: Flat,
    pair_offsets: Vec<Option<u32>>,
}

/// Decoding tables packed for speed: per slot, `freq - 1` (bits 0..12), `slot - cum` (bits
/// 12..24) and the symbol (bits 24..32). Every alphabet here has at most 256 symbols and the
/// scale is at most 12 bits, so one u32 holds all a step needs.
pub struct Decoder {
    /// The six header tables, `1 << scale` entries each.
    header: Vec<u32>,
    /// One table per context, `1 << scale` entries each; `present[c]` says whether context c
    /// has one.
    pairs: Vec<u32>,
    present: [bool; CONTEXTS],
    scale: u32,
    /// The kernels to use (at most what `cpu::detect` allows).
    simd: Level,
}

/// The smallest a coded chunk of `chunk_bytes` original bytes can be: the header-stream length
/// and two streams' states. Frame parsing rejects smaller claims.
pub fn min_coded_len(chunk_bytes: u64) -> u64 {
    let _ = chunk_bytes;
    4 + 2 * crate::entropy::rans::STATE_BYTES as u64
}

/// Encodes a chunk of whole blocks: u32 LE length of the header stream, the header stream (20
/// symbols per block), then the pair stream (128 symbols per block).
#[cfg(any(test, feature = "internals"))]
pub fn encode_chunk(enc: &Encoder, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
    crate::entropy::indexed::with_index_buffer(|idx| encode_chunk_with(enc, src, None, idx, out))
}

/// `encode_chunk` with the blocks' contexts if known (`Counts::add_with_contexts`) and `idx` as
/// the index array (its allocation reused).
fn encode_chunk_with(
    enc: &Encoder,
    src: &[u8],
    known: Option<&[[u8; 8]]>,
    idx: &mut Vec<u32>,
    out: &mut Vec<u8>,
) -> Result<()> {
    debug_assert!(src.len().is_multiple_of(BLOCK));
    let headers = encode_headers(enc, src, idx, out)?;
    let level = cpu::detect();
    // The pair indices are made and coded a window of blocks at a time, while they are in the
    // cache (a chunk's whole index array is several megabytes).
    enc.pairs.encode_windows(src.len() / BLOCK * PAIRS, WINDOW_BLOCKS * PAIRS, out, |start, w| {
        fill_pairs(enc, src, known, Some((&headers, level)), start, w)
    })
}

/// Appends the header stream of the chunk `src` (its length, u32 LE, then the stream) to `out`,
/// with `idx` as the index array (any contents, its allocation reused); returns the blocks'
/// header symbols.
fn encode_headers(enc: &Encoder, src: &[u8], idx: &mut Vec<u32>, out: &mut Vec<u8>) -> Result<Vec<[u8; HEADER_SYMBOLS]>> {
    let headers: Vec<[u8; HEADER_SYMBOLS]> = src.chunks_exact(BLOCK).map(header_symbols).collect();
    // Each symbol as an index into its stream's tables end to end.
    let hidx = index_slice(idx, headers.len() * HEADER_SYMBOLS);
    for (h, o) in headers.iter().zip(hidx.chunks_exact_mut(HEADER_SYMBOLS)) {
        for (j, (o, &s)) in o.iter_mut().zip(h).enumerate() {
            *o = enc.header_offsets[header_table(j)] + s as u32;
        }
    }
    let mut hs = Vec::new();
    enc.header.encode(hidx, &mut hs)?;
    out.extend_from_slice(&(hs.len() as u32).to_le_bytes());
    out.extend_from_slice(&hs);
    Ok(headers)
}

/// The pair indices of pairs `start..start + w.len()` of the chunk `src` (`start` at a block's
/// start), each sub-block in its context: from `known` (the blocks' contexts counting found) or
/// computed from the blocks' header symbols.
fn fill_pairs(
    enc: &Encoder,
    src: &[u8],
    known: Option<&[[u8; 8]]>,
    headers: Option<(&[[u8; HEADER_SYMBOLS]], Level)>,
    start: usize,
    w: &mut [u32],
) -> Result<()> {
    let first = start / PAIRS;
    for (k, out) in (first..).zip(w.chunks_exact_mut(PAIRS)) {
        let ctx = match (known, headers) {
            (Some(c), _) => c[k],
            (None, Some((h, level))) => contexts_fast(&h[k], level),
            (None, None) => return Err(Error::InvalidArgument),
        };
        let block = &src[k * BLOCK..(k + 1) * BLOCK];
        let pairs = block_pairs(&block[16..]);
        // The pairs of one sub-block are consecutive (`block_pairs`), so its table is found
        // once for 16 of them.
        for ((ps, o), &c) in pairs.chunks_exact(16).zip(out.chunks_exact_mut(16)).zip(&ctx) {
            let at = enc.pair_offsets[c as usize].ok_or(Error::InvalidArgument)?;
            for (o, &p) in o.iter_mut().zip(ps) {
                *o = at + p as u32;
            }
        }
    }
    Ok(())
}

/// Blocks per window of pair indices (`Flat::encode_windows`): 64 KiB of indices.
const WINDOW_BLOCKS: usize = 128;

/// A chunk's header stream and pair stream.
fn split(src: &[u8]) -> Result<(&[u8], &[u8])> {
    let len = src.get(..4).ok_or(Error::CorruptData)?;
    let hlen = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let hs = src.get(4..4usize.checked_add(hlen).ok_or(Error::CorruptData)?).ok_or(Error::CorruptData)?;
    Ok((hs, &src[4 + hlen..]))
}

/// The header symbols form one flat stream in which symbol i uses table header_table(i % 20): a
/// periodic table pattern, which the packed-stream kernels decode a group of lanes at a time.
fn header_tables(scale: u32) -> Vec<u32> {
    let pattern: Vec<u32> = (0..HEADER_SYMBOLS).map(|i| (header_table(i) << scale) as u32).collect();
    packed::periodic(&pattern)
}

/// A chunk being decoded: its headers decoded and written, its blocks' contexts known, the pair
/// stream open; `groups_done` groups of 32 pairs (block `g / 4`, quarter `g % 4`) decoded.
struct ChunkDecode<'a> {
    dec: &'a Decoder,
    d: RansDecoder<'a>,
    dst: &'a mut [u8],
    ctx: Vec<[u8; 8]>,
    groups_done: usize,
}

impl<'a> ChunkDecode<'a> {
    /// Decodes the headers of a chunk written by `encode_chunk` (which give the contexts of the
    /// quants) into `dst`, and opens its pair stream.
    fn new(dec: &'a Decoder, src: &'a [u8], dst: &'a mut [u8]) -> Result<ChunkDecode<'a>> {
        let (hs, ps) = split(src)?;
        let mut hsym = vec![0u8; dst.len() / BLOCK * HEADER_SYMBOLS];
        packed::decode_stream(hs, &dec.header, dec.scale, Tables::Periodic(&header_tables(dec.scale)), dec.simd, &mut hsym)?;
        Self::with_headers(dec, &hsym, ps, dst)
    }

    /// `new` for two chunks, their header streams decoded interleaved.
    fn new_pair(
        a: (&'a Decoder, &'a [u8], &'a mut [u8]),
        b: (&'a Decoder, &'a [u8], &'a mut [u8]),
    ) -> Result<(ChunkDecode<'a>, ChunkDecode<'a>)> {
        let ((ha, pa), (hb, pb)) = (split(a.1)?, split(b.1)?);
        let (mut sa, mut sb) =
            (vec![0u8; a.2.len() / BLOCK * HEADER_SYMBOLS], vec![0u8; b.2.len() / BLOCK * HEADER_SYMBOLS]);
        let (mut da, mut db) = (RansDecoder::new(ha)?, RansDecoder::new(hb)?);
        let (hta, htb) = (header_tables(a.0.scale), header_tables(b.0.scale));
        let part_a =
            PackedPart { d: &mut da, packed: &a.0.header, scale: a.0.scale, tables: Tables::Periodic(&hta), out: &mut sa, done: 0 };
        let part_b =
            PackedPart { d: &mut db, packed: &b.0.header, scale: b.0.scale, tables: Tables::Periodic(&htb), out: &mut sb, done: 0 };
        packed::decode_part_pair(part_a, part_b, a.0.simd.min(b.0.simd))?;
        for d in [da, db] {
            if d.finish()? != [0; LANES] {
                return Err(Error::CorruptData);
            }
        }
        Ok((Self::with_headers(a.0, &sa, pa, a.2)?, Self::with_headers(b.0, &sb, pb, b.2)?))
    }

    /// Writes the decoded header symbols `hsym` into the blocks of `dst`, computes the blocks'
    /// contexts and opens the pair stream `ps`.
    fn with_headers(dec: &'a Decoder, hsym: &[u8], ps: &'a [u8], dst: &'a mut [u8]) -> Result<ChunkDecode<'a>> {
        debug_assert!(dst.len().is_multiple_of(BLOCK));
        let mut ctx = vec![[0u8; 8]; dst.len() / BLOCK];
        for ((b, c), h) in dst.chunks_exact_mut(BLOCK).zip(ctx.iter_mut()).zip(hsym.chunks_exact(HEADER_SYMBOLS)) {
            let h: &[u8; HEADER_SYMBOLS] = h.try_into().unwrap();
            b[..4].copy_from_slice(&h[..4]);
            let sc: [u8; 8] = h[4..12].try_into().unwrap();
            let m: [u8; 8] = h[12..20].try_into().unwrap();
            b[4..16].copy_from_slice(&pack_scales(&sc, &m));
            *c = contexts_fast(h, dec.simd);
            if c.iter().any(|&x| !dec.present[x as usize]) {
                return Err(Error::CorruptData);
            }
        }
        Ok(ChunkDecode { dec, d: RansDecoder::new(ps)?, dst, ctx, groups_done: 0 })
    }

    /// The groups the kernels left (the scalar path; checked reads near the stream's end), then
    /// the stream's integrity check.
    fn finish(mut self) -> Result<()> {
        let (dec, d) = (self.dec, &mut self.d);
        for (bi, (b, c)) in self.dst.chunks_exact_mut(BLOCK).zip(&self.ctx).enumerate() {
            let qs = &mut b[16..];
            for j in 0..4 {
                if bi * 4 + j < self.groups_done {
                    continue;
                }
                let (s, n) = (dec.scale, 1usize << dec.scale);
                let (ta, tb) = ((c[2 * j] as usize) << s, (c[2 * j + 1] as usize) << s);
                let (ta, tb) = (&dec.pairs[ta..ta + n], &dec.pairs[tb..tb + n]);
                let mut sym = [0u8; 32];
                if d.words_left() >= LANES {
                    // Fast path: all steps, then renormalisation with unchecked-by-construction reads.
                    for (lane, sy) in sym.iter_mut().enumerate() {
                        *sy = step(if lane < 16 { ta } else { tb }, s, &mut d.states[lane]);
                    }
                    d.renorm_group();
                } else {
                    for (lane, sy) in sym.iter_mut().enumerate() {
                        *sy = step(if lane < 16 { ta } else { tb }, s, &mut d.states[lane]);
                        d.renorm_checked(lane)?;
                    }
                }
                let out = &mut qs[32 * j..32 * j + 32];
                for p in 0..16 {
                    let (a, b) = (sym[p], sym[16 + p]);
                    out[2 * p] = (a & 15) | (b << 4);
                    out[2 * p + 1] = (a >> 4) | (b & 0xF0);
                }
            }
        }
        if d.finish()? != [0; LANES] {
            return Err(Error::CorruptData);
        }
        Ok(())
    }
}

/// Decodes a chunk written by `encode_chunk` into `dst` (a whole number of blocks).
pub fn decode_chunk(dec: &Decoder, src: &[u8], dst: &mut [u8]) -> Result<()> {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))] // the kernels are x86-64 only
    let mut c = ChunkDecode::new(dec, src, dst)?;
    // SAFETY: a decoder's level never exceeds what the CPU has, and `ChunkDecode::new` checked
    // that every block's contexts have tables.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        match dec.simd {
            Level::Avx512 => avx512::decode_groups(&mut c),
            Level::Avx2 => avx2::decode_groups(&mut c),
            Level::Scalar => {}
        }
    }
    c.finish()
}

/// Decodes two chunks at once: their pair streams are independent, so interleaving their groups
/// gives the core two chains of table gathers to overlap. Same results as two `decode_chunk`
/// calls.
pub fn decode_chunk_pair(a: (&Decoder, &[u8], &mut [u8]), b: (&Decoder, &[u8], &mut [u8])) -> Result<()> {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))] // the kernels are x86-64 only
    let (mut ca, mut cb) = ChunkDecode::new_pair(a, b)?;
    // SAFETY: as in `decode_chunk`, for both chunks.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        match ca.dec.simd.min(cb.dec.simd) {
            Level::Avx512 => avx512::decode_pair(&mut ca, &mut cb),
            Level::Avx2 => avx2::decode_pair(&mut ca, &mut cb),
            Level::Scalar => {}
        }
    }
    ca.finish()?;
    cb.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_contexts_equal_scalar_contexts() {
        // Every (sc, m) pair with d and dmin over special values and a pseudo-random sweep of all
        // f16 bit patterns (zeros, subnormals, infinities, NaNs, negatives included).
        let mut fs: Vec<u16> = vec![0, 0x8000, 1, 0x3ff, 0x400, 0x3c00, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0xbc00];
        // Under Miri (which interprets every operation) a much thinner sweep of the same shape.
        let (randoms, sc_step, m_step) = if cfg!(miri) { (3, 21, 9) } else { (300, 3, 1) };
        let mut seed = 0x1234_5678;
        for _ in 0..randoms {
            fs.push(crate::test_rng::lcg(&mut seed) as u16);
        }
        let mut h = [0u8; HEADER_SYMBOLS];
        for &d in &fs {
            for &dmin in fs.iter().step_by(7) {
                h[..2].copy_from_slice(&d.to_le_bytes());
                h[2..4].copy_from_slice(&dmin.to_le_bytes());
                for sc in (0..64u8).step_by(sc_step) {
                    for m in (0..64u8).step_by(m_step) {
                        for s in 0..8 {
                            h[4 + s] = sc.wrapping_add(s as u8 * 5) & 63;
                            h[12 + s] = m.wrapping_add(s as u8 * 11) & 63;
                        }
                        for level in [Level::Avx2, Level::Scalar] {
                            if level == Level::Avx2 && cpu::detect() == Level::Scalar {
                                continue;
                            }
                            assert_eq!(contexts_fast(&h, level), contexts(&h), "d {d:#x} dmin {dmin:#x} h {h:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn scale_packing_is_a_bijection() {
        let mut seed = 1u64;
        for _ in 0..10_000 {
            let q: [u8; 12] = std::array::from_fn(|_| crate::test_rng::lcg(&mut seed) as u8);
            let (sc, m) = unpack_scales(&q);
            assert_eq!(pack_scales(&sc, &m), q);
        }
    }

    #[test]
    fn f16_conversion_is_exact() {
        for h in 0..=u16::MAX {
            let a = f16_to_f32(h);
            let b = half::f16::from_bits(h).to_f32();
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{h:#x}: {a} vs {b}");
        }
    }

    #[test]
    fn pairs_cover_every_quant_once() {
        let mut seen = [0u8; 128];
        for k in 0..PAIRS {
            let (s, e) = pair_position(k);
            for x in [e, e + 1] {
                seen[32 * (s / 2) + x] |= 1 << (s % 2);
            }
        }
        assert!(seen.iter().all(|&b| b == 3));
    }
}

#[cfg(test)]
mod pair_tests {
    use super::*;

    #[test]
    fn block_pairs_match_pair_by_pair() {
        let mut r = crate::test_rng::Lcg::new(7);
        for _ in 0..50 {
            let qs: Vec<u8> = (0..128).map(|_| r.next_u64() as u8).collect();
            let all = block_pairs(&qs);
            for (k, &v) in all.iter().enumerate() {
                let (s, e) = pair_position(k);
                assert_eq!(v, sub_block_pair(&qs, s, e / 2), "pair {k}");
            }
        }
    }
}
