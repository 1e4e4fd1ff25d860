//! Codecs for ggml's block-quantized types other than Q4_K (Q6_K, Q5_K, Q3_K, Q2_K, IQ4_XS,
//! IQ4_NL, Q8_0, Q5_0, Q5_1, Q4_0, Q4_1):
//! each block is split into its header fields and its quantized values, which are coded as two
//! streams: one order-0 table per header field, and value tables chosen by a context taken from
//! the block's header (one table for the types that have no useful context).
//!
//! Why split: a byte coder sees fp16 scales, packed high bits and quants interleaved, so one
//! byte distribution has to serve all of them. Coded apart, each field gets its own statistics;
//! the values are reassembled first where ggml splits them across bytes (Q6_K's 4+2 bits, Q5's
//! high-bit words), so that the table sees the quantized value itself. Alphabets are at most 256
//! symbols, so a decode table entry packs into one u32 (`entropy::packed`).
//!
//! A block type is a `Layout`, one file each: how a block splits into symbols and back, the
//! alphabets, and the context of a value. `Blocks<L>` is the codec for any layout (method 3).

mod bit_pairs;
mod iq4xs;
mod q2k;
mod q3k;
mod q4;
mod q5;
mod q5k;
mod q6k;
mod q8_0;

use std::any::Any;
use std::marker::PhantomData;

pub use iq4xs::IQ4XS;
pub use q2k::Q2K;
pub use q3k::Q3K;
pub use q4::{IQ4NL, Q4_0, Q4_1};
pub use q5::{Q5_0, Q5_1};
pub use q5k::Q5K;
pub use q6k::Q6K;
pub use q8_0::Q8_0;

use super::{ChunkDecoder, ChunkEncoder, Codec, Kind, Method, Plan};
use crate::cpu::{self, Level};
use crate::entropy::bits::{BitReader, BitWriter};
use crate::entropy::indexed::Flat;
use crate::entropy::packed::{self, decode_part, decode_part_pair, PackedPart, RunPattern, Tables, FAST_SCALE, RUN_PAD, SCALE};
use crate::entropy::rans::{EncTable, RansDecoder, LANES};
use crate::entropy::table::FreqTable;
use crate::error::{Error, Result};
use crate::parallel;

/// How a block type splits into header symbols and value symbols, and back. `split` and `join`
/// must be inverse bijections between blocks and symbol sequences (every byte pattern, valid
/// ggml or not, must roundtrip), with every symbol below its table's alphabet.
pub trait Layout: Send + Sync + 'static {
    /// Bytes per block.
    const BLOCK: usize;
    /// Alphabet size of each header table (at most 256).
    const HEADER_TABLES: &'static [usize];
    /// Header symbols per block; symbol i uses table `header_table(i)`.
    const HEADER_SYMBOLS: usize;
    /// Value symbols per block, and their alphabet (a power of two, at most 256).
    const VALUES: usize;
    const VALUE_ALPHABET: usize;
    /// Value contexts: how many value tables there are.
    const CONTEXTS: usize = 1;
    /// Quants packed in each value symbol, in equal bit fields from the lowest (the order-0
    /// bound of `order0_bound_bits` counts the quants, not the symbols).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // only that bound reads it
    const QUANTS_PER_VALUE: usize = 1;
    /// Runs of values that share a context (values `VALUES / SUB_BLOCKS` at a time).
    const SUB_BLOCKS: usize = 1;

    /// The table of header symbol `i` of a block.
    #[inline(always)]
    fn header_table(i: usize) -> usize {
        i
    }

    /// The context (below `CONTEXTS`) of value `i` of a block with header symbols `h`.
    #[inline(always)]
    fn context(h: &[u8], i: usize) -> usize {
        let _ = (h, i);
        0
    }

    /// The contexts of a block's `SUB_BLOCKS` runs of values, into `out`: `context` for each
    /// (a layout overrides it where a block's contexts are cheaper computed together).
    #[inline(always)]
    fn sub_block_contexts(h: &[u8], out: &mut [u8]) {
        let run = Self::VALUES / Self::SUB_BLOCKS;
        for (j, c) in out.iter_mut().enumerate() {
            *c = Self::context(h, j * run) as u8;
        }
    }

    /// Splits block `b` into its header symbols `h` and value symbols `v`.
    fn split(b: &[u8], h: &mut [u8], v: &mut [u8]);

    /// The inverse of `split`.
    fn join(h: &[u8], v: &[u8], b: &mut [u8]);
}

/// Splits whole blocks into a flat header stream and a flat value stream.
#[cfg(any(test, feature = "internals"))]
fn split_all<L: Layout>(src: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut h, mut v) = (Vec::new(), Vec::new());
    split_into::<L>(src, &mut h, &mut v);
    (h, v)
}

/// `split_all` into `h` and `v` (resized to fit).
fn split_into<L: Layout>(src: &[u8], h: &mut Vec<u8>, v: &mut Vec<u8>) {
    let nb = src.len() / L::BLOCK;
    h.resize(nb * L::HEADER_SYMBOLS, 0);
    v.resize(nb * L::VALUES, 0);
    for ((b, h), v) in src.chunks_exact(L::BLOCK).zip(h.chunks_exact_mut(L::HEADER_SYMBOLS)).zip(v.chunks_exact_mut(L::VALUES)) {
        L::split(b, h, v);
    }
}

thread_local! {
    /// A chunk's split, made again for each use in buffers this thread keeps: splitting is cheap
    /// (4% of compressing Q6_K), and keeping every chunk's split from planning to coding cost
    /// the input's size in fresh memory, whose page faults took a quarter of the time.
    static SPLIT: crate::memory::Spares<Split> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on the split of `src` (header symbols, value symbols).
fn with_split<L: Layout, R>(src: &[u8], f: impl FnOnce(&[u8], &[u8]) -> R) -> R {
    let (mut h, mut v) = crate::memory::take_spare(&SPLIT);
    split_into::<L>(src, &mut h, &mut v);
    let r = f(&h, &v);
    crate::memory::keep_spare(&SPLIT, (h, v));
    r
}

/// The order-0 bound of a block stream: the entropy in bits of its quants (one histogram over
/// every quant of every block) plus its headers stored raw, the baseline a block codec is
/// measured against (`weightzip bench`). None for kinds that are not block layouts here and for
/// Q6_K, whose layout moves each sub-block's smallest quant into its header.
#[cfg(feature = "internals")]
pub fn order0_bound_bits(kind: Kind, data: &[u8]) -> Option<f64> {
    fn bound<L: Layout>(data: &[u8]) -> f64 {
        let (_, v) = split_all::<L>(data);
        let bits = L::VALUE_ALPHABET.trailing_zeros() as usize / L::QUANTS_PER_VALUE;
        let mut counts = vec![0u64; 1 << bits];
        for &x in &v {
            for k in 0..L::QUANTS_PER_VALUE {
                counts[(x as usize >> (bits * k)) & ((1 << bits) - 1)] += 1;
            }
        }
        // The value symbols hold the block's quants at their own width (log2 of the alphabet
        // bits per symbol); the rest of the block is header.
        let quant_bits = L::VALUE_ALPHABET.trailing_zeros() as usize * L::VALUES;
        let header_bits = (8 * L::BLOCK - quant_bits) * (data.len() / L::BLOCK);
        let quants = counts.iter().sum::<u64>() as f64;
        quants * crate::entropy::table::entropy_bits(&counts) + header_bits as f64
    }
    Some(match kind {
        Kind::Q5K => bound::<Q5K>(data),
        Kind::Q8_0 => bound::<Q8_0>(data),
        Kind::Q5_0 => bound::<Q5_0>(data),
        Kind::Q5_1 => bound::<Q5_1>(data),
        Kind::Q4_0 => bound::<Q4_0>(data),
        Kind::Q4_1 => bound::<Q4_1>(data),
        Kind::IQ4NL => bound::<IQ4NL>(data),
        Kind::IQ4XS => bound::<IQ4XS>(data),
        Kind::Q3K => bound::<Q3K>(data),
        Kind::Q2K => bound::<Q2K>(data),
        _ => return None,
    })
}

/// Where the table of each header symbol of a block starts in the header tables laid end to
/// end (`HEADER_TABLES` in order): symbol `j` with value `s` is entry `offsets[j] + s`.
fn header_symbol_offsets<L: Layout>() -> Vec<u32> {
    let starts: Vec<usize> = L::HEADER_TABLES.iter().scan(0, |at, &n| Some(std::mem::replace(at, *at + n))).collect();
    (0..L::HEADER_SYMBOLS).map(|j| starts[L::header_table(j)] as u32).collect()
}

/// A chunk's blocks split: the header stream and the value stream.
type Split = (Vec<u8>, Vec<u8>);

/// The block codec for layout `L`.
pub struct Blocks<L>(PhantomData<fn() -> L>);

impl<L: Layout> Blocks<L> {
    pub const NEW: Blocks<L> = Blocks(PhantomData);
}

impl<L: Layout> Codec for Blocks<L> {
    fn method(&self) -> Method {
        Method::Blocks
    }

    /// Every chunk split and counted (in parallel), one model for the frame; chunks are split
    /// again when they are coded.
    fn plan<'a>(&self, _: Kind, chunks: &[&'a [u8]], p: &Plan) -> Result<Box<dyn ChunkEncoder + 'a>> {
        let mut parts: Vec<(&[u8], Counts)> = chunks.iter().map(|c| (*c, Counts::new::<L>())).collect();
        parallel::for_each_mut(&mut parts, p.threads, |_, (c, n)| {
            with_split::<L, _>(c, |h, v| n.add_split::<L>(h, v));
            Ok(())
        })?;
        let mut total = Counts::new::<L>();
        for (_, c) in &parts {
            total.merge(c);
        }
        let model = Model::<L>::from_counts(&total, if p.fast { FAST_SCALE } else { SCALE })?;
        let enc = Encoder::<L>::new(&model.tables.iter().map(EncTable::new).collect::<Vec<_>>());
        Ok(Box::new(FrameEncoder { section: model.write(), enc }))
    }

    fn read_model(&self, _: Kind, _: u32, model: &[u8]) -> Result<Box<dyn super::Model>> {
        Ok(Box::new(Model::<L>::read(model)?))
    }

    /// The header-stream length and two streams' states.
    fn min_coded_len(&self, _: u64) -> u64 {
        4 + 2 * crate::entropy::rans::STATE_BYTES as u64
    }

    fn levels(&self) -> &'static [Level] {
        &[Level::Avx2, Level::Avx512]
    }
}

/// Histograms of a run of blocks: one per header table, one per value context.
struct Counts {
    header: Vec<Vec<u64>>,
    values: Vec<Vec<u64>>,
}

impl Counts {
    fn new<L: Layout>() -> Counts {
        Counts {
            header: L::HEADER_TABLES.iter().map(|&n| vec![0u64; n]).collect(),
            values: vec![vec![0u64; L::VALUE_ALPHABET]; L::CONTEXTS],
        }
    }

    /// Counts blocks already split by `split_all`, a block and a sub-block at a time (the values
    /// of a sub-block share a context: it is computed once for them, not once per value).
    fn add_split<L: Layout>(&mut self, h: &[u8], v: &[u8]) {
        let (hn, vn, a) = (L::HEADER_SYMBOLS, L::VALUES, L::VALUE_ALPHABET);
        const { assert!(L::VALUE_ALPHABET.is_power_of_two()) };
        debug_assert!(v.iter().all(|&s| (s as usize) < a));
        let run = vn / L::SUB_BLOCKS;
        let mut ctx = [0u8; 256];
        // Header counts in one array, the tables end to end, through each symbol's offset (a
        // table looked up per symbol through a Vec of Vecs cost a load and a check each).
        let offsets = header_symbol_offsets::<L>();
        let mut header = vec![0u32; L::HEADER_TABLES.iter().sum()];
        // Value counts in two u32 copies that alternate value by value, so that equal
        // neighbours do not make each increment wait for the last (as in the Q4_K codec);
        // a part holds fewer than 2^32 values.
        for (hp, vp) in h.chunks(hn << 20).zip(v.chunks(vn << 20)) {
            let mut twin = vec![0u32; 2 * a * L::CONTEXTS];
            for (hb, vb) in hp.chunks_exact(hn).zip(vp.chunks_exact(vn)) {
                for (&o, &s) in offsets.iter().zip(hb) {
                    header[o as usize + s as usize] += 1;
                }
                L::sub_block_contexts(hb, &mut ctx[..L::SUB_BLOCKS]);
                for (j, vr) in vb.chunks_exact(run).enumerate() {
                    let c: &mut [u32] = &mut twin[2 * a * ctx[j] as usize..][..2 * a];
                    // Symbols are below the alphabet (`Layout::split`), a power of two: the mask
                    // only tells the compiler so, which then drops the bounds checks.
                    let pairs = vr.chunks_exact(2);
                    for &s in pairs.remainder() {
                        c[s as usize & (a - 1)] += 1;
                    }
                    for p in pairs {
                        c[p[0] as usize & (a - 1)] += 1;
                        c[a + (p[1] as usize & (a - 1))] += 1;
                    }
                }
            }
            for (t, c) in self.values.iter_mut().zip(twin.chunks_exact(2 * a)) {
                for (k, x) in t.iter_mut().enumerate() {
                    *x += (c[k] + c[a + k]) as u64;
                }
            }
            let mut at = 0;
            for t in self.header.iter_mut() {
                for (x, c) in t.iter_mut().zip(&mut header[at..]) {
                    *x += std::mem::take(c) as u64;
                }
                at += t.len();
            }
        }
    }

    fn merge(&mut self, o: &Counts) {
        for (a, b) in self.header.iter_mut().chain(self.values.iter_mut()).zip(o.header.iter().chain(&o.values)) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }
}

/// The tables of a frame: the header tables, then one value table per context, all of scale
/// `scale`.
struct Model<L> {
    tables: Vec<FreqTable>,
    scale: u32,
    _l: PhantomData<fn() -> L>,
}

/// The table of `counts`, or any valid table for a field no block uses (an empty frame).
fn table_for(counts: &[u64], scale: u32) -> Result<FreqTable> {
    if counts.iter().any(|&c| c > 0) {
        FreqTable::from_counts(counts, scale)
    } else {
        let mut c = vec![0u64; counts.len()];
        c[0] = 1;
        FreqTable::from_counts(&c, scale)
    }
}

impl<L: Layout> Model<L> {
    fn from_counts(c: &Counts, scale: u32) -> Result<Model<L>> {
        let tables = c.header.iter().chain(&c.values).map(|h| table_for(h, scale)).collect::<Result<_>>()?;
        Ok(Model { tables, scale, _l: PhantomData })
    }

    fn write(&self) -> Vec<u8> {
        let mut w = BitWriter::new();
        for t in &self.tables {
            t.write(&mut w);
        }
        w.finish()
    }

    /// Every table must have the first one's scale, which packed tables must allow.
    fn read(bytes: &[u8]) -> Result<Model<L>> {
        let mut r = BitReader::new(bytes);
        let sizes = L::HEADER_TABLES.iter().copied().chain(std::iter::repeat_n(L::VALUE_ALPHABET, L::CONTEXTS));
        let tables = sizes.map(|n| FreqTable::read(&mut r, n)).collect::<Result<Vec<_>>>()?;
        let scale = tables[0].scale;
        if !packed::scale_ok(scale) || tables.iter().any(|t| t.scale != scale) {
            return Err(Error::CorruptModel);
        }
        if r.bytes_consumed() != bytes.len() || !r.padding_is_zero() {
            return Err(Error::CorruptModel);
        }
        Ok(Model { tables, scale, _l: PhantomData })
    }
}

impl<L: Layout> super::Model for Model<L> {
    fn tables(&self) -> usize {
        1
    }

    fn pairs(&self) -> bool {
        true
    }

    fn decoder(&self, _: u8, level: Level) -> Box<dyn ChunkDecoder> {
        let mut packed = Vec::with_capacity(self.tables.len() << self.scale);
        for t in &self.tables {
            packed::pack(t, &mut packed);
        }
        let runs = RunPattern::new(L::VALUES / L::SUB_BLOCKS);
        Box::new(Decoder::<L> { packed, scale: self.scale, runs, simd: level.min(cpu::detect()), _l: PhantomData })
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Values per window of value indices (`Flat::encode_windows`), rounded down to whole blocks:
/// 64 KiB of indices.
const WINDOW_VALUES: usize = 16384;

struct Encoder<L> {
    /// The header tables end to end, and where each starts.
    header: Flat,
    header_offsets: Vec<u32>,
    /// The value tables end to end (one per context, `VALUE_ALPHABET` symbols each).
    values: Flat,
    _l: PhantomData<fn() -> L>,
}

impl<L: Layout> Encoder<L> {
    /// From a model's tables: the header tables, then the value tables.
    fn new(tables: &[EncTable]) -> Encoder<L> {
        let (h, v) = tables.split_at(L::HEADER_TABLES.len());
        Encoder { header: Flat::new(h), header_offsets: header_symbol_offsets::<L>(), values: Flat::new(v), _l: PhantomData }
    }
}

/// The frame's model section and its encoder.
struct FrameEncoder<L> {
    section: Vec<u8>,
    enc: Encoder<L>,
}

impl<L: Layout> ChunkEncoder for FrameEncoder<L> {
    fn model(&self) -> Vec<u8> {
        self.section.clone()
    }

    fn table(&self, _: usize) -> u8 {
        0
    }

    /// u32 LE length of the header stream, the header stream, the value stream. Both are coded
    /// last symbol first (as rANS requires) a block at a time, and the values a sub-block at a
    /// time: a table is looked up once per run of symbols that share it.
    fn encode(&self, _: usize, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
        with_split::<L, _>(src, |h, v| {
            crate::entropy::indexed::with_index_buffer(|idx| self.encode_headers(h, idx, out))?;
            let window = self.window();
            self.enc.values.encode_windows(v.len(), window, out, |start, w| {
                self.fill_values(h, v, start, w);
                Ok(())
            })
        })
    }

    fn pairs(&self) -> bool {
        true
    }

    /// Two chunks of one length: their value streams coded in turn (`Flat::encode_windows_pair`).
    fn encode_pair(&self, i: usize, src: [&[u8]; 2], out: [&mut Vec<u8>; 2]) -> Result<()> {
        if src[0].len() != src[1].len() {
            return super::encode_each(self, i, src, out);
        }
        let [oa, ob] = out;
        with_split::<L, _>(src[0], |ha, va| {
            with_split::<L, _>(src[1], |hb, vb| {
                crate::entropy::indexed::with_index_buffer(|idx| {
                    self.encode_headers(ha, idx, oa)?;
                    self.encode_headers(hb, idx, ob)
                })?;
                let (h, v) = ([ha, hb], [va, vb]);
                self.enc.values.encode_windows_pair(va.len(), self.window(), [oa, ob], |k, start, w| {
                    self.fill_values(h[k], v[k], start, w);
                    Ok(())
                })
            })
        })
    }
}

impl<L: Layout> FrameEncoder<L> {
    /// A chunk's coded form starts with its header stream: its length (u32 LE), then the
    /// stream of the chunk's header symbols `h`, with `idx` as the index array (any contents,
    /// its allocation reused). The value stream follows. Both streams are coded last symbol
    /// first (as rANS requires) a block at a time, and the values a sub-block at a time: a table
    /// is looked up once per run of symbols that share it.
    fn encode_headers(&self, h: &[u8], idx: &mut Vec<u32>, out: &mut Vec<u8>) -> Result<()> {
        let hn = L::HEADER_SYMBOLS;
        // Each symbol as an index into its stream's tables end to end (see entropy::indexed),
        // written in place: `extend` from an iterator per run did not vectorise.
        let offsets = &self.enc.header_offsets;
        let idx = crate::entropy::indexed::index_slice(idx, h.len());
        for (hb, o) in h.chunks_exact(hn).zip(idx.chunks_exact_mut(hn)) {
            for ((o, &s), &t) in o.iter_mut().zip(hb).zip(offsets) {
                *o = t + s as u32;
            }
        }
        let mut hs = Vec::new();
        self.enc.header.encode(&idx[..h.len()], &mut hs)?;
        out.extend_from_slice(&(hs.len() as u32).to_le_bytes());
        out.extend_from_slice(&hs);
        Ok(())
    }

    /// Values per window of the value stream: its indices are made and coded a window of blocks
    /// at a time, while they are in the cache (a chunk's whole index array is megabytes); whole
    /// blocks, and whole groups of lanes (Q6_K's 240 values need blocks in pairs).
    fn window(&self) -> usize {
        let vn = L::VALUES;
        let step = crate::entropy::rans::LANES / gcd(vn, crate::entropy::rans::LANES);
        (WINDOW_VALUES / vn / step).max(1) * step * vn
    }

    /// The value indices of symbols `start..start + w.len()` of the chunk split into `h`, `v`
    /// (`start` at a block's start).
    fn fill_values(&self, h: &[u8], v: &[u8], start: usize, w: &mut [u32]) {
        let (hn, vn) = (L::HEADER_SYMBOLS, L::VALUES);
        let run = vn / L::SUB_BLOCKS;
        let alphabet = L::VALUE_ALPHABET as u32;
        let first = start / vn;
        let mut ctx = [0u8; 256];
        let mut bases = [0u32; 256];
        for (k, (hb, ob)) in h[first * hn..].chunks_exact(hn).zip(w.chunks_exact_mut(vn)).enumerate() {
            L::sub_block_contexts(hb, &mut ctx[..L::SUB_BLOCKS]);
            for (b, &c) in bases.iter_mut().zip(&ctx[..L::SUB_BLOCKS]) {
                *b = c as u32 * alphabet;
            }
            fill_runs(&bases[..L::SUB_BLOCKS], &v[start + k * vn..], ob, run);
        }
    }
}

/// Writes the value indices of one block: `o[i] = bases[i / run] + v[i]` for the `bases.len()`
/// runs of `run` values (`v` may run on past the block).
#[inline(always)]
fn fill_runs(bases: &[u32], v: &[u8], o: &mut [u32], run: usize) {
    #[cfg(target_arch = "x86_64")]
    if run <= 16 && cpu::detect() >= Level::Avx2 {
        // SAFETY: AVX2 was detected.
        unsafe { fill_runs_avx2(bases, v, o, run) };
        return;
    }
    fill_runs_scalar(bases, v, o, run);
}

/// `fill_runs` without vectors.
fn fill_runs_scalar(bases: &[u32], v: &[u8], o: &mut [u32], run: usize) {
    for (j, &b) in bases.iter().enumerate() {
        for (d, &s) in o[j * run..][..run].iter_mut().zip(&v[j * run..][..run]) {
            *d = b + s as u32;
        }
    }
}

/// `fill_runs` for runs of at most 16 values, 16 at a time: each run's 16 indices are written
/// over the start of the next run (which is written after it), while the block and `v` allow.
/// (A loop of 15, Q6_K's run, stayed scalar: 14% of compressing Q6_K.)
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fill_runs_avx2(bases: &[u32], v: &[u8], o: &mut [u32], run: usize) {
    use std::arch::x86_64::*;
    let n = bases.len() * run;
    assert!(run <= 16 && o.len() >= n && v.len() >= n);
    let room = n.min(v.len());
    for (j, &b) in bases.iter().enumerate() {
        let at = j * run;
        if at + 16 <= room {
            let b = _mm256_set1_epi32(b as i32);
            // SAFETY: at + 16 <= n <= o.len() and at + 16 <= v.len().
            let s = _mm_loadu_si128(v.as_ptr().add(at) as *const __m128i);
            let d = o.as_mut_ptr().add(at) as *mut __m256i;
            _mm256_storeu_si256(d, _mm256_add_epi32(b, _mm256_cvtepu8_epi32(s)));
            _mm256_storeu_si256(d.add(1), _mm256_add_epi32(b, _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(s))));
        } else {
            fill_runs_scalar(&bases[j..j + 1], &v[at..], &mut o[at..], run);
        }
    }
}

/// Decoding tables, packed: the header tables, then the value tables, `1 << scale` entries
/// each; and where the values' sub-blocks fall in the kernels' lanes.
struct Decoder<L> {
    packed: Vec<u32>,
    scale: u32,
    runs: RunPattern,
    simd: Level,
    _l: PhantomData<fn() -> L>,
}

/// Values and joining go a batch of blocks at a time, so that a batch's values (and, with
/// contexts, their table offsets) stay in cache from decoding to joining. A batch is a whole
/// number of lane groups (`BATCH * VALUES` is a multiple of `LANES`).
const BATCH: usize = LANES;

/// A chunk being decoded: its header symbols, its value stream, its output, and the batch
/// buffers (values, and with contexts the table offset of each sub-block).
struct Chunk<'a> {
    h: Vec<u8>,
    d: RansDecoder<'a>,
    dst: &'a mut [u8],
    v: Vec<u8>,
    tab: Vec<u32>,
}

impl<L: Layout> Decoder<L> {
    /// Splits a chunk written by `FrameEncoder::encode` into its header stream (a decoder of
    /// it) and its value stream.
    fn streams<'a>(&self, src: &'a [u8], dst: &'a mut [u8]) -> Result<(RansDecoder<'a>, Chunk<'a>)> {
        let nb = dst.len() / L::BLOCK;
        let len = src.get(..4).ok_or(Error::CorruptData)?;
        let hlen = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let hs = src.get(4..4usize.checked_add(hlen).ok_or(Error::CorruptData)?).ok_or(Error::CorruptData)?;
        let vs = &src[4 + hlen..];
        let tab = vec![0u32; if L::CONTEXTS > 1 { BATCH * L::SUB_BLOCKS + RUN_PAD } else { 0 }];
        let c = Chunk { h: vec![0u8; nb * L::HEADER_SYMBOLS], d: RansDecoder::new(vs)?, dst, v: vec![0u8; BATCH * L::VALUES], tab };
        Ok((RansDecoder::new(hs)?, c))
    }

    /// Header symbol i uses table header_table(i % HEADER_SYMBOLS): one block's offsets,
    /// repeated to whole groups of lanes.
    fn header_tables(&self) -> Vec<u32> {
        let pattern: Vec<u32> = (0..L::HEADER_SYMBOLS).map(|i| (L::header_table(i) << self.scale) as u32).collect();
        packed::periodic(&pattern)
    }

    /// Batches in a chunk.
    fn batches(c: &Chunk) -> usize {
        (c.dst.len() / L::BLOCK).div_ceil(BATCH)
    }

    /// Batch `k` of a chunk as a packed-stream part: the value tables from its headers.
    fn batch<'p, 'a>(&'p self, c: &'p mut Chunk<'a>, k: usize) -> PackedPart<'p, 'p, 'a> {
        let (hn, vn) = (L::HEADER_SYMBOLS, L::VALUES);
        let nb = (c.dst.len() / L::BLOCK - k * BATCH).min(BATCH);
        let vt = L::HEADER_TABLES.len();
        let tables = if L::CONTEXTS == 1 {
            Tables::One((vt << self.scale) as u32)
        } else {
            let sb = L::SUB_BLOCKS;
            let (tab, h) = (&mut c.tab[..nb * sb], &c.h[k * BATCH * hn..]);
            // The scale a constant in each loop: with a variable shift the loop ran at half the
            // speed (a few percent of Q6_K's decoding time).
            match self.scale {
                12 => sub_block_offsets::<L, 12>(tab, h),
                11 => sub_block_offsets::<L, 11>(tab, h),
                _ => sub_block_offsets::<L, 10>(tab, h),
            }
            Tables::Runs { subs: &c.tab, pattern: &self.runs }
        };
        PackedPart { d: &mut c.d, packed: &self.packed, scale: self.scale, tables, out: &mut c.v[..nb * vn], done: 0 }
    }

    /// Joins batch `k`'s blocks from their headers and the decoded values.
    fn join(c: &mut Chunk, k: usize) {
        let (hn, vn) = (L::HEADER_SYMBOLS, L::VALUES);
        let blocks = c.dst[k * BATCH * L::BLOCK..].chunks_exact_mut(L::BLOCK).take(BATCH);
        for ((b, h), v) in blocks.zip(c.h[k * BATCH * hn..].chunks_exact(hn)).zip(c.v.chunks_exact(vn)) {
            L::join(h, v, b);
        }
    }

    fn finish(c: Chunk) -> Result<()> {
        if c.d.finish()? != [0; LANES] {
            return Err(Error::CorruptData);
        }
        Ok(())
    }
}

/// The end of a header stream: it must end exactly, with no payload.
fn end_headers(d: RansDecoder) -> Result<()> {
    if d.finish()? != [0; LANES] {
        return Err(Error::CorruptData);
    }
    Ok(())
}

impl<L: Layout> ChunkDecoder for Decoder<L> {
    /// Decodes a chunk written by `FrameEncoder::encode` into `dst` (a whole number of blocks).
    fn decode(&self, _: u64, src: &[u8], dst: &mut [u8]) -> Result<()> {
        let (mut hd, mut c) = self.streams(src, dst)?;
        decode_part(&mut hd, &self.packed, self.scale, Tables::Periodic(&self.header_tables()), self.simd, &mut c.h)?;
        end_headers(hd)?;
        for k in 0..Self::batches(&c) {
            decode_part_pair_or_one(self.batch(&mut c, k), None, self.simd)?;
            Self::join(&mut c, k);
        }
        Self::finish(c)
    }

    /// Two chunks at once: their streams are independent, so the kernel interleaves them (two
    /// chains of table gathers for the core to overlap).
    fn decode_pair(
        &self,
        a: (u64, &[u8], &mut [u8]),
        b_dec: &dyn ChunkDecoder,
        b: (u64, &[u8], &mut [u8]),
    ) -> Result<()> {
        let Some(bd) = b_dec.as_any().downcast_ref::<Decoder<L>>() else {
            self.decode(a.0, a.1, a.2)?;
            return b_dec.decode(b.0, b.1, b.2);
        };
        let level = self.simd.min(bd.simd);
        let ((mut ha, mut ca), (mut hb, mut cb)) = (self.streams(a.1, a.2)?, bd.streams(b.1, b.2)?);
        let (hta, htb) = (self.header_tables(), bd.header_tables());
        let pa = PackedPart {
            d: &mut ha,
            packed: &self.packed,
            scale: self.scale,
            tables: Tables::Periodic(&hta),
            out: &mut ca.h,
            done: 0,
        };
        let pb =
            PackedPart { d: &mut hb, packed: &bd.packed, scale: bd.scale, tables: Tables::Periodic(&htb), out: &mut cb.h, done: 0 };
        decode_part_pair(pa, pb, level)?;
        end_headers(ha)?;
        end_headers(hb)?;
        let (na, nb) = (Self::batches(&ca), Self::batches(&cb));
        for k in 0..na.max(nb) {
            match (k < na, k < nb) {
                (true, true) => decode_part_pair(self.batch(&mut ca, k), bd.batch(&mut cb, k), level)?,
                (true, false) => decode_part_pair_or_one(self.batch(&mut ca, k), None, level)?,
                _ => decode_part_pair_or_one(bd.batch(&mut cb, k), None, level)?,
            }
            if k < na {
                Self::join(&mut ca, k);
            }
            if k < nb {
                Self::join(&mut cb, k);
            }
        }
        Self::finish(ca)?;
        Self::finish(cb)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The table offset of each sub-block of the blocks whose header symbols start `h`, one block
/// per `L::SUB_BLOCKS` entries of `tab`, for tables of scale `S`.
#[inline(always)]
fn sub_block_offsets<L: Layout, const S: u32>(tab: &mut [u32], h: &[u8]) {
    let (hn, vt) = (L::HEADER_SYMBOLS, L::HEADER_TABLES.len());
    let mut c = [0u8; 256];
    for (t, hb) in tab.chunks_exact_mut(L::SUB_BLOCKS).zip(h.chunks_exact(hn)) {
        L::sub_block_contexts(hb, &mut c[..L::SUB_BLOCKS]);
        for (t, &c) in t.iter_mut().zip(&c) {
            *t = ((vt + c as usize) << S) as u32;
        }
    }
}

/// One part, or two interleaved.
fn decode_part_pair_or_one(a: PackedPart, b: Option<PackedPart>, level: Level) -> Result<()> {
    match b {
        Some(b) => decode_part_pair(a, b, level),
        None => {
            let PackedPart { d, packed, scale, tables, out, .. } = a;
            decode_part(d, packed, scale, tables, level, out)
        }
    }
}

/// fp16 bit patterns of every kind (zero, subnormal, normal, largest, infinite, NaN, negative),
/// for the tests holding a layout's vector contexts to its scalar ones.
#[cfg(all(test, target_arch = "x86_64"))]
const F16_CASES: [u16; 12] = [0x0000, 0x0001, 0x03ff, 0x0400, 0x1234, 0x2e66, 0x3c00, 0x7bff, 0x7c00, 0x7e00, 0x8000, 0xbc00];

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 index fill writes what the scalar one does: every run length the layouts use,
    /// blocks at the end of the values (no room to read past) and with room.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn index_fill_kernel_matches_scalar() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut seed = 5u64;
        for run in [1, 4, 8, 15, 16] {
            for subs in [1, 8, 16] {
                let n = run * subs;
                let bases: Vec<u32> = (0..subs).map(|_| crate::test_rng::lcg(&mut seed) as u32 % 4096).collect();
                for extra in [0, 1, 15, 16, 40] {
                    let v: Vec<u8> = (0..n + extra).map(|_| crate::test_rng::lcg(&mut seed) as u8).collect();
                    let (mut a, mut b) = (vec![7u32; n], vec![9u32; n]);
                    fill_runs_scalar(&bases, &v, &mut a, run);
                    // SAFETY: AVX2 was detected.
                    unsafe { fill_runs_avx2(&bases, &v, &mut b, run) };
                    assert_eq!(a, b, "run {run}, {subs} runs, {extra} values past the block");
                }
            }
        }
    }

    fn roundtrip_random_blocks<L: Layout>(seed: &mut u64) {
        for _ in 0..500 {
            let b: Vec<u8> = (0..L::BLOCK).map(|_| crate::test_rng::lcg(seed) as u8).collect();
            let (h, v) = split_all::<L>(&b);
            let mut back = vec![0u8; L::BLOCK];
            L::join(&h, &v, &mut back);
            assert_eq!(back, b, "{}", std::any::type_name::<L>());
            assert!(v.iter().all(|&s| (s as usize) < L::VALUE_ALPHABET));
            for (i, &s) in h.iter().enumerate() {
                assert!((s as usize) < L::HEADER_TABLES[L::header_table(i)]);
            }
        }
    }

    /// A model's tables share one scale, from `FAST_SCALE` to `SCALE`: anything else is
    /// CORRUPT_MODEL.
    #[test]
    fn models_of_one_allowed_scale_read_back_and_others_are_corrupt() {
        let mut c = Counts::new::<Q6K>();
        let mut seed = 5u64;
        let b: Vec<u8> = (0..Q6K::BLOCK * 40).map(|_| crate::test_rng::lcg(&mut seed) as u8).collect();
        let (h, v) = split_all::<Q6K>(&b);
        c.add_split::<Q6K>(&h, &v);
        for scale in [FAST_SCALE, 11, SCALE] {
            let m = Model::<Q6K>::from_counts(&c, scale).unwrap();
            assert_eq!(Model::<Q6K>::read(&m.write()).unwrap().scale, scale);
        }
        let mut mixed = Model::<Q6K>::from_counts(&c, SCALE).unwrap();
        mixed.tables[3] = Model::<Q6K>::from_counts(&c, FAST_SCALE).unwrap().tables[3].clone();
        assert_eq!(Model::<Q6K>::read(&mixed.write()).err(), Some(Error::CorruptModel));
        let coarse = Model::<Q6K>::from_counts(&c, FAST_SCALE - 1).unwrap();
        assert_eq!(Model::<Q6K>::read(&coarse.write()).err(), Some(Error::CorruptModel));
    }

    #[test]
    fn split_and_join_are_inverse_on_random_blocks() {
        let mut seed = 3u64;
        roundtrip_random_blocks::<Q6K>(&mut seed);
        roundtrip_random_blocks::<Q8_0>(&mut seed);
        roundtrip_random_blocks::<Q5_0>(&mut seed);
        roundtrip_random_blocks::<Q5_1>(&mut seed);
        roundtrip_random_blocks::<Q4_0>(&mut seed);
        roundtrip_random_blocks::<Q4_1>(&mut seed);
        roundtrip_random_blocks::<Q5K>(&mut seed);
        roundtrip_random_blocks::<IQ4XS>(&mut seed);
        roundtrip_random_blocks::<Q3K>(&mut seed);
        roundtrip_random_blocks::<Q2K>(&mut seed);
    }
}
