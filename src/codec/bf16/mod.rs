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

use std::any::Any;

use super::{ChunkDecoder, ChunkEncoder, Codec, Kind, Method, Plan};

use crate::cpu::{self, Level};
use crate::entropy::rans::{EncTable, RansDecoder, RansEncoder, LANES};
use crate::entropy::table::FreqTable;
use crate::error::{Error, Result};
use crate::parallel;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod context;
mod model;
pub mod split;
mod squares;

#[cfg(any(test, feature = "internals"))]
pub use model::plan;
pub use model::{read_models, write_models, Model, ESC};
/// For the tool's `ls`, which names a frame's flags.
#[cfg(feature = "internals")]
pub use context::COLUMN_SIGNS;
pub use split::Split;

/// The bf16 codec (method 1), also used for f16, whose bits 14..3 (5 exponent bits, the top 7
/// mantissa bits) take the place of the 12-bit symbol.
pub struct Bf16Codec;

impl Codec for Bf16Codec {
    fn method(&self) -> Method {
        Method::Bf16Hist
    }

    /// The plain method's plan, and for matrices (`p.cols`) method 6's, whichever the estimate
    /// says is smaller.
    fn plan<'a>(&self, kind: Kind, chunks: &[&'a [u8]], p: &Plan) -> Result<Box<dyn ChunkEncoder + 'a>> {
        // For a matrix, the rows' sums of squares are taken in the same pass as the histograms.
        let rows = context::takes_rows(p.cols).then_some((kind, p.cols));
        let (split, hists, row_sums) = split_and_histograms(chunks, p.threads, rows)?;
        let plain = Tables::draft(&hists);
        let ctx = if p.cols > 0 { context::plan_ctx(kind, chunks, p.cols, p.threads, split, row_sums)? } else { None };
        let values = chunks.iter().map(|c| c.len() / 2).sum();
        Ok(match choose(plain, ctx, values, p.threads)? {
            Chosen::Ctx(plan) => Box::new(CtxEncoder { plan: *plan, starts: value_starts(chunks).collect() }),
            Chosen::Plain(models, assign) => Box::new(Tables::of(models, assign, split)),
        })
    }

    fn read_model(&self, _: Kind, flags: u32, model: &[u8]) -> Result<Box<dyn super::Model>> {
        Ok(Box::new(Models(read_models(model)?, Split::of_flags(flags))))
    }

    fn min_coded_len(&self, orig: u64) -> u64 {
        min_coded_len(orig)
    }

    fn levels(&self) -> &'static [Level] {
        &[Level::Avx2, Level::Avx512]
    }
}

/// The plan a frame takes: the plain method's tables and each chunk's, or method 6's.
pub(crate) enum Chosen {
    Plain(Vec<Model>, Vec<u8>),
    Ctx(Box<context::CtxPlan>),
}

/// Where method 6's estimate is below the plain method's by this fraction or less, the call is
/// too close for a frame whose tables are dense (see `choose`). Measured on all-MiniLM-L6-v2's
/// matrices of 100,000 values or more as f16 (39 frames), the sizes under the built tables
/// came out up to 0.31% of the frame worse for method 6 than the estimates said (its word
/// embedding, estimated 0.15% smaller in method 6, came out 0.11% or 21.7 KB larger); as bf16
/// and f32, within 0.07%.
const TOO_CLOSE: f64 = 0.004;

/// Frames of fewer values take the estimates' choice however close: building both plans'
/// tables costs the same whatever the frame's size.
const CLOSE_CALL_MIN_VALUES: usize = 1 << 20;

/// Of the plain method's plan and (for a matrix of `values` values) method 6's, the smaller: by
/// the estimates, or where they are too close to call, by the sizes under both plans' tables,
/// built.
///
/// Why the estimates miss: they leave out what quantising the frequencies to the tables'
/// precision costs, which grows with the symbols a table holds against its slots, and method 6's
/// tables have half the plain method's slots. f16's 12-bit symbols (5 exponent and 7 mantissa
/// bits) fill a table with 1,500-1,800 of them, bf16's a few hundred; so a call is too close only
/// where method 6's tables hold on average more than an eighth of their slots (bf16 frames, whose
/// estimates are near exact, keep the estimates' choice without building both: 2% of
/// compressing all-MiniLM-L6-v2 otherwise).
pub(crate) fn choose(plain: model::Draft, ctx: Option<context::CtxDraft>, values: usize, threads: u32) -> Result<Chosen> {
    choose_within(plain, ctx, values, threads, TOO_CLOSE)
}

/// `choose` with calls within `too_close` too close.
fn choose_within(
    plain: model::Draft,
    ctx: Option<context::CtxDraft>,
    values: usize,
    threads: u32,
    too_close: f64,
) -> Result<Chosen> {
    let Some(ctx) = ctx else {
        let (models, assign) = plain.build(threads)?;
        return Ok(Chosen::Plain(models, assign));
    };
    let (c, p) = (ctx.bits(), plain.bits);
    let dense = ctx.mean_present() > (1u64 << context::CTX_SCALE) as f64 / 8.0;
    if values >= CLOSE_CALL_MIN_VALUES && dense && c <= p && p - c <= too_close * p {
        let (models, assign, p) = plain.build_costed(threads)?;
        let (plan, c) = ctx.build_costed(threads)?;
        return Ok(if c < p { Chosen::Ctx(Box::new(plan)) } else { Chosen::Plain(models, assign) });
    }
    Ok(if c < p {
        Chosen::Ctx(Box::new(ctx.build(threads)?))
    } else {
        let (models, assign) = plain.build(threads)?;
        Chosen::Plain(models, assign)
    })
}

/// The index of each chunk's first value in the stream of 16-bit values `chunks` cut into.
pub(crate) fn value_starts<'a>(chunks: &'a [&[u8]]) -> impl Iterator<Item = usize> + 'a {
    chunks.iter().scan(0, |at, c| {
        let first = *at;
        *at += c.len() / 2;
        Some(first)
    })
}

/// A chunk's stretches' sums of squares as (row, sum) (`context::chunk_row_sums`).
pub(crate) type Stretches = Vec<(usize, f64)>;
/// Each chunk's `Stretches`, in chunk order.
pub(crate) type RowSums = Vec<Stretches>;

/// The split of a frame's values (`split::choose`) and each chunk's symbol histogram under it,
/// counted on up to `threads` threads; with `rows` (the values' kind and row length), each
/// chunk's `context::chunk_row_sums` too, in the same pass over it.
pub(crate) fn split_and_histograms(
    chunks: &[&[u8]],
    threads: u32,
    rows: Option<(Kind, usize)>,
) -> Result<(Split, Vec<Vec<u64>>, Option<RowSums>)> {
    let mut wide: Vec<(usize, &[u8], Vec<u32>, Stretches)> =
        value_starts(chunks).zip(chunks).map(|(f, c)| (f, *c, Vec::new(), Vec::new())).collect();
    parallel::for_each_mut(&mut wide, threads, |_, (first, c, h, sums)| {
        *h = vec![0u32; split::WIDE];
        split::wide_histogram(c, h);
        if let Some((kind, cols)) = rows {
            context::chunk_row_sums(kind, *first, c, cols, sums);
        }
        Ok(())
    })?;
    let mut total = vec![0u64; split::WIDE];
    for (_, _, h, _) in &wide {
        for (t, &c) in total.iter_mut().zip(h) {
            *t += c as u64;
        }
    }
    let s = split::choose(&total);
    let hists = wide.iter().map(|(_, _, h, _)| s.fold(h)).collect();
    Ok((s, hists, rows.map(|_| wide.into_iter().map(|w| w.3).collect())))
}

/// A frame's tables as the encoder uses them: the models, their encoders, and each chunk's
/// table. Shared with the f32 codec, whose high halves are bf16 values.
pub struct Tables {
    models: Vec<Model>,
    encoders: Vec<Encoder>,
    assign: Vec<u8>,
    split: Split,
}

/// A table as the encoder uses it, and its vector form where the CPU has the vector step.
pub struct Encoder {
    table: EncTable,
    split: Split,
    /// The vector step's table, and the kernel level it runs at (AVX2 or AVX-512).
    #[cfg(target_arch = "x86_64")]
    vector: Option<(crate::entropy::encode_x86::VecEncTable, Level)>,
}

impl Encoder {
    pub fn new(table: EncTable, split: Split) -> Encoder {
        Encoder {
            split,
            #[cfg(target_arch = "x86_64")]
            vector: crate::entropy::encode_x86::VecEncTable::for_cpu(&table.syms, table.scale),
            table,
        }
    }
}

impl Tables {
    /// The plan (see `model::plan`) for chunks with symbol histograms `hists`.
    #[cfg(any(test, feature = "internals"))]
    pub fn plan(hists: &[Vec<u64>], threads: u32) -> Result<Tables> {
        let (models, assign, _) = plan(hists, threads)?;
        Ok(Tables::of(models, assign, Split::Magnitude))
    }

    /// The plain method's plan for chunks with symbol histograms `hists`, tables not yet built.
    pub(crate) fn draft(hists: &[Vec<u64>]) -> model::Draft {
        model::plan_at_most(hists, model::MAX_MODELS, SCALE)
    }

    /// The tables of a plan built by `Draft::build`.
    pub(crate) fn of(models: Vec<Model>, assign: Vec<u8>, split: Split) -> Tables {
        let encoders = models.iter().map(|m| Encoder::new(m.encoder(), split)).collect();
        Tables { models, encoders, assign, split }
    }

    /// The frame header's flags: which split the tables code.
    pub fn flags(&self) -> u32 {
        self.split.flags()
    }

    /// The model section: every table.
    pub fn write(&self) -> Vec<u8> {
        write_models(&self.models)
    }

    pub fn table(&self, i: usize) -> u8 {
        self.assign[i]
    }

    /// The encoder of chunk `i`.
    pub fn encoder(&self, i: usize) -> &Encoder {
        &self.encoders[self.assign[i] as usize]
    }
}

impl ChunkEncoder for Tables {
    fn flags(&self) -> u32 {
        self.split.flags()
    }

    fn model(&self) -> Vec<u8> {
        self.write()
    }

    fn table(&self, i: usize) -> u8 {
        self.assign[i]
    }

    fn encode(&self, i: usize, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
        encode_chunk(self.encoder(i), src, out)
    }

    fn pairs(&self) -> bool {
        true
    }

    /// Two chunks of one table are coded in turn; of two tables, one after the other.
    fn encode_pair(&self, i: usize, src: [&[u8]; 2], out: [&mut Vec<u8>; 2]) -> Result<()> {
        if self.assign[i] != self.assign[i + 1] {
            return super::encode_each(self, i, src, out);
        }
        encode_chunk_pair(self.encoder(i), src, out)
    }
}

/// Method 6's encoder: its plan, and the index of every chunk's first value.
struct CtxEncoder {
    plan: context::CtxPlan,
    starts: Vec<usize>,
}

impl ChunkEncoder for CtxEncoder {
    fn method(&self) -> Option<Method> {
        Some(Method::Bf16Ctx)
    }

    fn flags(&self) -> u32 {
        self.plan.flags()
    }

    fn model(&self) -> Vec<u8> {
        self.plan.write()
    }

    fn table(&self, _: usize) -> u8 {
        0
    }

    fn encode(&self, i: usize, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.plan.encode_chunk(self.starts[i], src, out)
    }

    fn pairs(&self) -> bool {
        true
    }

    fn encode_pair(&self, i: usize, src: [&[u8]; 2], out: [&mut Vec<u8>; 2]) -> Result<()> {
        self.plan.encode_chunk_pair([self.starts[i], self.starts[i + 1]], src, out)
    }
}

/// The codec that reads method 6's frames (the bf16 codec writes them).
pub struct Bf16CtxCodec;

impl Codec for Bf16CtxCodec {
    fn method(&self) -> Method {
        Method::Bf16Ctx
    }

    fn plan<'a>(&self, kind: Kind, chunks: &[&'a [u8]], p: &Plan) -> Result<Box<dyn ChunkEncoder + 'a>> {
        Bf16Codec.plan(kind, chunks, p)
    }

    fn read_model(&self, kind: Kind, flags: u32, model: &[u8]) -> Result<Box<dyn super::Model>> {
        let m = CtxModels::read(model, flags)?;
        if kind == Kind::F32 {
            return Ok(Box::new(super::f32split::CtxModels(m)));
        }
        Ok(Box::new(m))
    }

    fn min_coded_len(&self, orig: u64) -> u64 {
        // The smaller of a bf16 chunk's and an f32 chunk's (method 6 codes both kinds).
        min_coded_len(orig).min(super::f32split::min_coded_len(orig))
    }

    fn levels(&self) -> &'static [Level] {
        Bf16Codec.levels()
    }
}

/// Method 6's model, parsed: one decoder holds every table.
pub(crate) struct CtxModels {
    lut: std::sync::Arc<context::Lut>,
    models: Vec<Model>,
    split: Split,
}

impl CtxModels {
    pub(crate) fn read(model: &[u8], flags: u32) -> Result<CtxModels> {
        let (layout, models) = context::read(model, flags)?;
        Ok(CtxModels { lut: std::sync::Arc::new(layout.lut()), models, split: Split::of_flags(flags) })
    }

    /// The decoder of every table, for kernels up to `level`.
    pub(crate) fn decoder_of(&self, level: Level) -> Decoder {
        let ts: Vec<&FreqTable> = self.models.iter().map(|m| &m.table).collect();
        Decoder::with_tables(&ts, Some(self.lut.clone()), level, self.split)
    }
}

impl super::Model for CtxModels {
    fn tables(&self) -> usize {
        1
    }

    fn pairs(&self) -> bool {
        true
    }

    fn decoder(&self, _: u8, level: Level) -> Box<dyn ChunkDecoder> {
        Box::new(self.decoder_of(level))
    }
}

/// A frame's models, parsed, and the split of its values.
pub struct Models(pub Vec<Model>, pub Split);

impl super::Model for Models {
    fn tables(&self) -> usize {
        self.0.len()
    }

    fn pairs(&self) -> bool {
        true
    }

    fn decoder(&self, table: u8, level: Level) -> Box<dyn ChunkDecoder> {
        Box::new(self.0[table as usize].decoder(level, self.1))
    }
}

impl ChunkDecoder for Decoder {
    fn decode(&self, start: u64, src: &[u8], dst: &mut [u8]) -> Result<()> {
        decode_chunk(self, start, src, dst)
    }

    fn decode_pair(
        &self,
        a: (u64, &[u8], &mut [u8]),
        b_dec: &dyn ChunkDecoder,
        b: (u64, &[u8], &mut [u8]),
    ) -> Result<()> {
        match b_dec.as_any().downcast_ref::<Decoder>() {
            Some(bd) => decode_chunk_pair((self, a.0, a.1, a.2), (bd, b.0, b.1, b.2)),
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

/// Number of distinct symbols: 8 exponent bits and 4 mantissa bits.
pub const SYMBOLS: usize = 1 << 12;
/// Frequency precision. With escapes for rare symbols (see `model`), 14 bits keep the coding
/// loss (normalisation and renormalisation) near 0.004 bit/symbol on real tensors, inside the
/// 0.005 budget; 13 bits would lose 0.007. The 128 KiB decode table stays in L2.
pub const SCALE: u32 = 14;

/// Adds the symbol histogram of `src` (little-endian bf16) under `split` to `counts`.
#[cfg(any(test, feature = "internals"))]
pub fn histogram(src: &[u8], split: Split, counts: &mut [u64]) {
    debug_assert_eq!(counts.len(), SYMBOLS);
    for v in src.chunks_exact(2) {
        counts[split.symbol(u16::from_le_bytes([v[0], v[1]]))] += 1;
    }
}

/// Nibble bytes that travel in the rANS lane payloads rather than in the nibble section: two
/// per lane, taken from the end of the nibbles, as many as there are (see `entropy::rans`).
fn carried_nibble_bytes(nib_len: usize) -> usize {
    2 * LANES.min(nib_len / 2)
}

/// The smallest a coded chunk of `chunk_bytes` original bytes can be: its stored nibbles, the
/// escape count and the rANS states. Frame parsing rejects smaller claims.
pub fn min_coded_len(chunk_bytes: u64) -> u64 {
    let nib_len = (chunk_bytes / 2).div_ceil(2) as usize;
    (nib_len - carried_nibble_bytes(nib_len)) as u64 + 4 + crate::entropy::rans::STATE_BYTES as u64
}

/// A chunk being coded, values last to first (either method): its rANS encoder, the escaped
/// symbols so far, its nibbles (`nibble_bytes`, of which `stored` bytes go in the nibble
/// section) and its whole groups not yet coded.
pub(crate) struct Pending {
    pub e: RansEncoder,
    pub escapes: Vec<u16>,
    nib: Vec<u8>,
    stored: usize,
    pub left: usize,
}

impl Pending {
    /// The chunk `src`'s nibbles packed and its encoder made with their payloads; every group
    /// left (the values past the last whole group are the caller's to code first).
    pub(crate) fn new(src: &[u8], split: Split) -> Pending {
        debug_assert!(src.len().is_multiple_of(2));
        let n = src.len() / 2;
        let (nib, stored, payload) = nibble_bytes(src, split);
        Pending { e: RansEncoder::with_payload(n, payload), escapes: Vec::new(), nib, stored, left: n / LANES }
    }

    /// Appends the coded chunk to `out`: the stored nibbles, the escape list, the rANS stream.
    pub(crate) fn finish(self, out: &mut Vec<u8>) {
        let Pending { e, mut escapes, nib, stored, .. } = self;
        out.extend_from_slice(&nib[..stored]);
        escapes.reverse(); // collected from the last value back
        write_escapes(&escapes, out);
        e.finish(out);
    }
}

impl AsMut<Pending> for Pending {
    fn as_mut(&mut self) -> &mut Pending {
        self
    }
}

/// A chunk of the plain method being coded: its table and split, and its state.
struct Coder<'a> {
    t: &'a EncTable,
    split: Split,
    p: Pending,
}

impl AsMut<Pending> for Coder<'_> {
    fn as_mut(&mut self) -> &mut Pending {
        &mut self.p
    }
}

impl Coder<'_> {
    /// Codes the values at `range` of `src`, last to first.
    fn put_values(&mut self, src: &[u8], range: std::ops::Range<usize>) -> Result<()> {
        let esc = self.t.syms[ESC];
        for i in range.rev() {
            let sym = self.split.symbol(u16::from_le_bytes([src[2 * i], src[2 * i + 1]]));
            let mut s = self.t.syms[sym];
            if s.freq == 0 {
                if esc.freq == 0 {
                    return Err(Error::InvalidArgument); // the model was not built from this data
                }
                self.p.escapes.push(sym as u16);
                s = esc;
            }
            self.p.e.put(i % LANES, s, self.t.scale);
        }
        Ok(())
    }
}

/// Encodes one chunk of little-endian bf16 (even length). Layout: raw nibbles (two per byte, the
/// first value in the low nibble) except the last `carried_nibble_bytes`, which ride in the rANS
/// lane payloads; the escape count (u32 LE) and the escaped symbols (in value
/// order, 12 bits each, packed LSB-first); then the rANS stream.
pub fn encode_chunk(enc: &Encoder, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
    encode_chunk_with(enc, true, src, out)
}

/// `encode_chunk` with the scalar step only: the reference the vector step is tested against.
#[cfg(any(test, feature = "internals"))]
pub fn encode_chunk_scalar(enc: &Encoder, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
    encode_chunk_with(enc, false, src, out)
}

fn encode_chunk_with(enc: &Encoder, vector: bool, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let mut c = Coder::begin(enc, src)?;
    c.groups(enc, vector, src)?;
    c.p.finish(out);
    Ok(())
}

/// Encodes two chunks coded with one table (`src[s]` appended to `out[s]`, the bytes
/// `encode_chunk` gives each), their whole groups in turn with the vector step
/// (`encode_x86::put_groups_pair_avx512`).
fn encode_chunk_pair(enc: &Encoder, src: [&[u8]; 2], out: [&mut Vec<u8>; 2]) -> Result<()> {
    let mut c = [Coder::begin(enc, src[0])?, Coder::begin(enc, src[1])?];
    #[cfg(target_arch = "x86_64")]
    if let Some((v, level)) = enc.vector.as_ref() {
        let shift = enc.split.shift();
        let ptrs = src.map(|s| s.as_ptr());
        pair_groups(&mut c, |c, left| {
            let [a, b] = c;
            // SAFETY: `level` is what the CPU has (`Encoder::new`), at least AVX2; groups
            // 0..left[s] lie inside `src[s]`.
            unsafe {
                match level {
                    Level::Avx512 => avx512::put_groups_pair([&mut a.p.e, &mut b.p.e], v, ptrs, left, shift),
                    _ => avx2::put_groups_pair([&mut a.p.e, &mut b.p.e], v, ptrs, left, shift),
                }
            }
        }, |c, s, g| c[s].put_values(src[s], g * LANES..(g + 1) * LANES))?;
    }
    for ((c, src), out) in c.into_iter().zip(src).zip(out) {
        let mut c = c;
        c.groups(enc, true, src)?;
        c.p.finish(out);
    }
    Ok(())
}

/// Codes two chunks' whole groups in turn while both have groups left (`Pending::left`,
/// lowered as they are coded): `pair(c, left)` runs a pair kernel from there, and a group that
/// escapes goes to `scalar(c, s, g)`. The rest is each chunk's own.
pub(crate) fn pair_groups<C: AsMut<Pending>>(
    c: &mut [C; 2],
    mut pair: impl FnMut(&mut [C; 2], [usize; 2]) -> crate::entropy::encode_x86::PairLeft,
    mut scalar: impl FnMut(&mut [C; 2], usize, usize) -> Result<()>,
) -> Result<()> {
    loop {
        let left = [c[0].as_mut().left, c[1].as_mut().left];
        if left[0] == 0 || left[1] == 0 {
            return Ok(());
        }
        let stop = pair(c, left);
        for s in 0..2 {
            let mut left = stop.left[s];
            if stop.escaped[s] {
                left -= 1;
                scalar(c, s, left)?;
            }
            c[s].as_mut().left = left;
        }
    }
}

impl<'a> Coder<'a> {
    /// A chunk's coding begun: its nibbles packed, its encoder with their payloads, and the
    /// values past its last whole group coded (values are coded last to first).
    fn begin(enc: &'a Encoder, src: &[u8]) -> Result<Coder<'a>> {
        let mut c = Coder { t: &enc.table, split: enc.split, p: Pending::new(src, enc.split) };
        c.put_values(src, c.p.left * LANES..src.len() / 2)?;
        Ok(c)
    }

    /// Codes the whole groups left, with the vector step where the CPU has it (and `vector`
    /// allows: the scalar step is the reference); a group with an escaped value takes the
    /// scalar step.
    fn groups(&mut self, enc: &Encoder, vector: bool, src: &[u8]) -> Result<()> {
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (enc, vector);
        while self.p.left > 0 {
            #[cfg(target_arch = "x86_64")]
            if let Some((v, level)) = enc.vector.as_ref().filter(|_| vector) {
                let (e, left) = (&mut self.p.e, self.p.left);
                // SAFETY: `level` is what the CPU has (`Encoder::new`), at least AVX2; groups
                // 0..left lie inside `src`.
                self.p.left = match level {
                    Level::Avx512 => unsafe { avx512::put_groups(e, v, src.as_ptr(), left, enc.split.shift()) },
                    _ => unsafe { avx2::put_groups(e, v, src.as_ptr(), left, enc.split.shift()) },
                };
                if self.p.left == 0 {
                    break;
                }
            }
            // Group left - 1 has an escape (or there is no vector step).
            self.p.left -= 1;
            let g = self.p.left;
            self.put_values(src, g * LANES..(g + 1) * LANES)?;
        }
        Ok(())
    }
}

/// A chunk's nibbles (two per byte, the first value in the low nibble), how many of those bytes
/// the nibble section stores, and the rest as the lane payloads.
fn nibble_bytes(src: &[u8], split: Split) -> (Vec<u8>, usize, [u16; LANES]) {
    let n = src.len() / 2;
    let mut nib = vec![0u8; n.div_ceil(2)];
    pack_nibbles(src, &mut nib, split);
    let stored = nib.len() - carried_nibble_bytes(nib.len());
    let mut payload = [0u16; LANES];
    for (p, b) in payload.iter_mut().zip(nib[stored..].chunks_exact(2)) {
        *p = u16::from_le_bytes([b[0], b[1]]);
    }
    (nib, stored, payload)
}

/// Packs the nibbles of `src` two per byte into `out` (`src.len() / 4` bytes, rounded up), the
/// first value in the low nibble, with the vector kernel where the CPU has one.
fn pack_nibbles(src: &[u8], out: &mut [u8], split: Split) {
    // SAFETY: the level is what the CPU has.
    #[cfg(target_arch = "x86_64")]
    let done = match cpu::detect() {
        Level::Avx512 => unsafe { avx512::pack_nibbles(src, out, split.nibble_shift()) },
        Level::Avx2 => unsafe { avx2::pack_nibbles(src, out, split.nibble_shift()) },
        Level::Scalar => 0,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    // The rest (all of it without a kernel), a loop per split with its shifts constant.
    let (src, out) = (&src[2 * done..], &mut out[done / 2..]);
    match split {
        Split::Magnitude => pack_nibbles_scalar(src, out, |v| Split::Magnitude.nibble(v)),
        Split::Signed => pack_nibbles_scalar(src, out, |v| Split::Signed.nibble(v)),
    }
}

/// The scalar `pack_nibbles`, for values that start at an even position (a whole byte).
#[inline(always)]
fn pack_nibbles_scalar(src: &[u8], out: &mut [u8], nibble: impl Fn(u16) -> u8) {
    // A byte per two values, written once (an or into a zeroed byte per value ran at a third of
    // the speed: it does not vectorise).
    let value = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
    let pairs = src.chunks_exact(4);
    let odd = pairs.remainder();
    let mut o = out.iter_mut();
    for (p, b) in pairs.zip(&mut o) {
        *b = nibble(value(&p[..2])) | nibble(value(&p[2..])) << 4;
    }
    if let (false, Some(b)) = (odd.is_empty(), o.next()) {
        *b = nibble(value(odd));
    }
}

/// Appends the escape count (u32 LE) and the escaped symbols, in value order, 12 bits each,
/// packed LSB-first.
fn write_escapes(escapes: &[u16], out: &mut Vec<u8>) {
    out.extend_from_slice(&(escapes.len() as u32).to_le_bytes());
    for pair in escapes.chunks(2) {
        let (a, b) = (pair[0], pair.get(1).copied().unwrap_or(0));
        out.extend_from_slice(
            &[a as u8, (a >> 8) as u8 | (b << 4) as u8, (b >> 4) as u8][..if pair.len() == 2 { 3 } else { 2 }],
        );
    }
}

/// Value-table entry of the escape symbol.
const ESC_MARK: u16 = 1;

/// Bytes of an escape list of `count` symbols: 12 bits each, packed LSB-first.
fn escape_list_len(count: usize) -> usize {
    (12 * count).div_ceil(8)
}

/// The escaped symbols of a chunk, read in order.
struct Escapes<'a> {
    list: &'a [u8],
    count: usize,
    read: usize,
    split: Split,
}

impl Escapes<'_> {
    /// The output bits of the next escaped symbol.
    #[inline]
    fn next(&mut self) -> Result<u16> {
        if self.read >= self.count {
            return Err(Error::CorruptData);
        }
        // Symbol k sits at bits [12k, 12k + 12): two per three bytes.
        let at = 3 * self.read / 2;
        let (a, b) = (self.list[at] as u16, self.list[at + 1] as u16);
        let sym = if self.read.is_multiple_of(2) { a | (b & 0xF) << 8 } else { a >> 4 | b << 4 };
        self.read += 1;
        Ok(self.split.base(sym))
    }

    /// Every escape was used, and the padding bits of an odd count are zero.
    fn all_used(&self) -> bool {
        self.read == self.count && (self.count.is_multiple_of(2) || self.list[self.list.len() - 1] >> 4 == 0)
    }
}

/// The decoding table of a model: one u64 per slot of `[0, 1 << SCALE)` holding the symbol's
/// frequency (bits 0..16), `slot - cum` (bits 16..32) and the symbol's output bits (bits 32..48:
/// `Split::base(symbol)`, or `ESC_MARK`).
///
/// Why one wide entry rather than two narrow tables: on the x86 cores we measured, a gather costs
/// about one element per cycle whatever the element size, so fetching everything a lane needs in
/// one 64-bit element nearly halves the decoder's gather work (measured +40% decode speed).
pub struct Decoder {
    /// The tables end to end, `1 << scale` entries each.
    entries: Vec<u64>,
    /// Their precision: `SCALE`, or `context::CTX_SCALE` for method 6.
    scale: u32,
    simd: Level,
    /// Method 6: which table each value of the frame takes (None: the one table).
    ctx: Option<std::sync::Arc<context::Lut>>,
    /// Which bits of a value the symbols hold.
    split: Split,
}

thread_local! {
    /// The last decoding table this thread dropped, kept for reuse: a 256 KiB table freshly
    /// allocated per frame costs page faults that, for a tensor of a few hundred KiB, take
    /// longer than building the table (measured: 20% of the decode time of a 384x384 tensor).
    static SPARE_TABLE: std::cell::Cell<Vec<u64>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let t = std::mem::take(&mut self.entries);
        let _ = SPARE_TABLE.try_with(|s| s.set(t));
    }
}

impl Decoder {
    /// The decoding table of `t`, for kernels up to `level` (and what this CPU has).
    fn new(t: &FreqTable, level: Level, split: Split) -> Decoder {
        Decoder::with_tables(&[t], None, level, split)
    }

    /// The decoding tables `ts` end to end, and the lookup of which one each value takes.
    fn with_tables(
        ts: &[&FreqTable],
        ctx: Option<std::sync::Arc<context::Lut>>,
        level: Level,
        split: Split,
    ) -> Decoder {
        // Method 6's tables are at `CTX_SCALE`, the others at `SCALE` (`read_models_at` checked).
        let scale = if ctx.is_some() { context::CTX_SCALE } else { SCALE };
        let mut entries = SPARE_TABLE.try_with(|s| s.take()).unwrap_or_default();
        entries.resize(ts.len() << scale, 0);
        for (t, table) in ts.iter().zip(entries.chunks_exact_mut(1 << scale)) {
            let mut at = 0;
            for (sym, &f) in t.freq.iter().enumerate().filter(|(_, &f)| f != 0) {
                // Bits 0..3 of an output word come from the nibble, so bit 0 is free to mark `ESC`.
                let v = if sym == ESC { ESC_MARK } else { split.base(sym as u16) };
                let base = f as u64 | (v as u64) << 32;
                for (k, e) in table[at..at + f as usize].iter_mut().enumerate() {
                    *e = base | (k as u64) << 16;
                }
                at += f as usize;
            }
            debug_assert_eq!(at, 1 << scale);
        }
        Decoder { entries, scale, simd: level.min(cpu::detect()), ctx, split }
    }

    /// Decodes one rANS step on a state with table `t`, returning the output bits of the symbol.
    #[inline(always)]
    fn step(&self, t: usize, x: &mut u32) -> u16 {
        let e = self.entries[t << self.scale | (*x & ((1 << self.scale) - 1)) as usize];
        *x = (e & 0xFFFF) as u32 * (*x >> self.scale) + ((e >> 16) & 0xFFFF) as u32;
        (e >> 32) as u16
    }
}

/// A chunk being decoded: its sections located and checked, and how far decoding has got.
/// Decoding runs in three stages: a SIMD kernel over whole groups, the scalar loop over the
/// groups the kernel left, and a checked tail (`finish`).
struct ChunkDecode<'a> {
    dec: &'a Decoder,
    nib_len: usize,
    /// Nibble bytes in the nibble section; the rest ride in the lane payloads.
    stored: usize,
    nib: &'a [u8],
    esc: Escapes<'a>,
    d: RansDecoder<'a>,
    dst: &'a mut [u8],
    /// Values decoded so far.
    done: usize,
    /// The index of the chunk's first value in the frame.
    first: usize,
}

impl<'a> ChunkDecode<'a> {
    fn new(dec: &'a Decoder, start: u64, src: &'a [u8], dst: &'a mut [u8]) -> Result<Self> {
        debug_assert!(dst.len().is_multiple_of(2));
        let n = dst.len() / 2;
        let first = (start / 2) as usize;
        if let Some(l) = &dec.ctx {
            // The frame's values are the layout's rows (a hostile frame may claim more).
            if first.checked_add(n).is_none_or(|end| end > l.rows * l.cols) {
                return Err(Error::CorruptData);
            }
        }
        let nib_len = n.div_ceil(2);
        let stored = nib_len - carried_nibble_bytes(nib_len);
        let count = src.get(stored..stored + 4).ok_or(Error::CorruptData)?;
        let esc_count = u32::from_le_bytes([count[0], count[1], count[2], count[3]]) as usize;
        if esc_count > n {
            return Err(Error::CorruptData);
        }
        let esc_end = stored + 4 + escape_list_len(esc_count);
        if src.len() < esc_end {
            return Err(Error::CorruptData);
        }
        Ok(ChunkDecode {
            dec,
            nib_len,
            stored,
            nib: &src[..stored],
            esc: Escapes { list: &src[stored + 4..esc_end], count: esc_count, read: 0, split: dec.split },
            d: RansDecoder::new(&src[esc_end..])?,
            dst,
            done: 0,
            first,
        })
    }



    /// Whole groups the fast paths may decode: the group's nibbles must be in the nibble
    /// section (the kernels also need a full group's words left, which they check as they go).
    #[cfg(target_arch = "x86_64")]
    fn fast_groups(&self) -> usize {
        // With contexts, the kernels need groups that start at whole groups of their rows.
        if self.dec.ctx.is_some() && !self.first.is_multiple_of(LANES) {
            return 0;
        }
        (self.dst.len() / 2 / LANES).min(self.nib.len() / (LANES / 2))
    }

    /// The scalar fast path for the groups a kernel left, then the checked tail and the final
    /// integrity checks.
    fn finish(mut self) -> Result<()> {
        let n = self.dst.len() / 2;
        let (dec, nib) = (self.dec, self.nib);
        let d = &mut self.d;
        let mut done = self.done;
        for (out, nb) in self.dst[2 * done..].chunks_exact_mut(2 * LANES).zip(nib[done / 2..].chunks_exact(LANES / 2)) {
            if d.words_left() < LANES {
                break;
            }
            // All lanes' steps first, then renormalisation: the word offsets form a short chain
            // of adds instead of a chain through every lane's table load.
            let mut tables = [0u8; LANES];
            if let Some(l) = &dec.ctx {
                l.group_tables(self.first + done, &mut tables);
            }
            let mut base = [0u16; LANES];
            for (lane, b) in base.iter_mut().enumerate() {
                *b = dec.step(tables[lane] as usize, &mut d.states[lane]);
            }
            d.renorm_group();
            for (lane, b) in base.iter_mut().enumerate() {
                if *b == ESC_MARK {
                    *b = self.esc.next()?;
                }
                let mut v = dec.split.join(*b, (nb[lane / 2] >> (4 * (lane & 1))) as u32);
                if let Some(l) = dec.ctx.as_ref().filter(|l| l.flips) {
                    v ^= l.sign_of(self.first + done + lane);
                }
                out[2 * lane..2 * lane + 2].copy_from_slice(&v.to_le_bytes());
            }
            done += LANES;
        }
        let tail = done;

        // Tail: the obviously correct, fully checked path. Values whose nibbles ride in the lane
        // payloads get them once decoding is complete.
        for i in done..n {
            let lane = i % LANES;
            let t = dec.ctx.as_ref().map_or(0, |l| l.table_of(self.first + i));
            let mut base = dec.step(t, &mut d.states[lane]);
            d.renorm_checked(lane)?;
            if base == ESC_MARK {
                base = self.esc.next()?;
            }
            let nibble = nib.get(i / 2).map_or(0, |b| (b >> (4 * (i & 1))) as u32);
            self.dst[2 * i..2 * i + 2].copy_from_slice(&dec.split.join(base, nibble).to_le_bytes());
        }
        if !self.esc.all_used() {
            return Err(Error::CorruptData);
        }
        let payload = d.finish()?;
        let carried_lanes = (self.nib_len - self.stored) / 2;
        if payload[carried_lanes..].iter().any(|&p| p != 0) {
            return Err(Error::CorruptData);
        }
        let carried: Vec<u8> = payload.iter().flat_map(|p| p.to_le_bytes()).collect();
        for i in 2 * self.stored..n {
            let nibble = (carried[i / 2 - self.stored] >> (4 * (i & 1))) as u32;
            let v = u16::from_le_bytes([self.dst[2 * i], self.dst[2 * i + 1]]) | dec.split.join(0, nibble);
            self.dst[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
        }
        // Method 6's flipped columns, flipped back in the tail once its values are whole (the
        // kernels and the loop above flip their groups' values as they write them).
        if let Some(l) = dec.ctx.as_ref().filter(|l| l.flips) {
            context::flip_columns(self.first + tail, l.cols, &l.sign_bytes, &mut self.dst[2 * tail..]);
        }
        Ok(())
    }
}

/// Where a vector kernel is in a chunk, held in registers across its loop (through `c.d` the
/// stream position would be reloaded from memory at every group): the group, how many groups the
/// fast path may take, the table, the stream's words and position, the nibbles. The kernels keep
/// their lane states beside it, one vector width each.
#[cfg(target_arch = "x86_64")]
struct Cursor {
    g: usize,
    groups: usize,
    table: *const i64,
    words: *const u8,
    end: usize,
    pos: usize,
    nib: *const u8,
    /// Method 6: the lookup, the tables of the group's lanes (`LANES` bytes), and the group's
    /// row and column. Null and unused otherwise.
    lut: *const context::Lut,
    lanes: *const u8,
    /// Method 6: the sign flips of the group's lanes (`2 * LANES` bytes of `Lut::sign_bytes`).
    signs: *const u8,
    row: usize,
    col: usize,
    /// `Split::nibble_shift`: where the nibble's bit 3 goes.
    nibble_shift: u32,
}

#[cfg(target_arch = "x86_64")]
impl Cursor {
    fn of(c: &ChunkDecode) -> Cursor {
        let g = c.done / LANES;
        let (mut lut, mut lanes, mut signs, mut row, mut col) = (std::ptr::null(), std::ptr::null(), std::ptr::null(), 0, 0);
        if let Some(l) = &c.dec.ctx {
            let v = c.first + g * LANES;
            if v < l.rows * l.cols {
                (lut, lanes, row, col) = (&**l as *const context::Lut, l.lanes_at(v), v / l.cols, v % l.cols);
                signs = l.sign_bytes[2 * col..].as_ptr();
            }
        }
        Cursor {
            g,
            groups: c.fast_groups(),
            table: c.dec.entries.as_ptr() as *const i64,
            words: c.d.words.as_ptr(),
            end: c.d.words.len(),
            pos: c.d.pos,
            nib: c.nib.as_ptr(),
            lut,
            lanes,
            signs,
            row,
            col,
            nibble_shift: c.dec.split.nibble_shift(),
        }
    }

    /// Method 6: moves the lanes' tables to the next group.
    ///
    /// # Safety
    /// `self.lut` is set (the decoder has contexts and the chunk's first value starts a group).
    #[inline(always)]
    unsafe fn next_lanes(&mut self) {
        let l = &*self.lut;
        self.col += LANES;
        if self.col < l.cols {
            self.lanes = self.lanes.add(LANES);
            self.signs = self.signs.add(2 * LANES);
        } else {
            self.col = 0;
            self.row += 1;
            self.signs = l.sign_bytes.as_ptr();
            if self.row < l.rows {
                self.lanes = l.tab.as_ptr().add(l.row_class[self.row] as usize * l.cols);
            }
        }
    }

    /// Whether the next group can take the fast path: its nibbles are stored and a full group's
    /// renormalisation words remain (so the kernels' unchecked loads stay in bounds).
    #[inline(always)]
    fn can_step(&self) -> bool {
        self.g < self.groups && self.end - self.pos >= 2 * LANES
    }

    /// Records how far the kernel got in `c`.
    fn save(&self, c: &mut ChunkDecode) {
        c.done = self.g * LANES;
        c.d.pos = self.pos;
    }
}

/// Decodes one chunk written by `encode_chunk` into `dst` (whose length fixes the value count).
pub fn decode_chunk(dec: &Decoder, start: u64, src: &[u8], dst: &mut [u8]) -> Result<()> {
    let mut c = ChunkDecode::new(dec, start, src, dst)?;
    decode_groups(&mut c)?;
    c.finish()
}

/// Decodes two chunks at once: their lanes are independent, so interleaving their groups gives
/// the core twice the work to overlap while a table gather is in flight (each lane's decode is a
/// chain through that gather). Same results as two `decode_chunk` calls.
pub fn decode_chunk_pair(
    a: (&Decoder, u64, &[u8], &mut [u8]),
    b: (&Decoder, u64, &[u8], &mut [u8]),
) -> Result<()> {
    let mut ca = ChunkDecode::new(a.0, a.1, a.2, a.3)?;
    let mut cb = ChunkDecode::new(b.0, b.1, b.2, b.3)?;
    decode_groups_pair(&mut ca, &mut cb)?;
    ca.finish()?;
    cb.finish()
}

/// Decodes as many whole groups as the chunk's kernel allows, advancing `c.done`. The kernels
/// decode whole groups of `LANES` values while the stream has room for a full group's
/// renormalisation words; `ChunkDecode::finish` does the rest.
fn decode_groups(c: &mut ChunkDecode) -> Result<()> {
    let ctx = c.dec.ctx.is_some();
    match c.dec.simd {
        // SAFETY: a decoder's level is never above `cpu::detect()` (see `Decoder::new`); the
        // kernels with contexts run only for decoders that have them.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 if ctx => unsafe { avx512::decode_groups::<true>(c) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { avx512::decode_groups::<false>(c) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 if ctx => unsafe { avx2::decode_groups::<true>(c) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { avx2::decode_groups::<false>(c) },
        _ => {
            let _ = ctx;
            Ok(())
        }
    }
}

/// `decode_groups` for two chunks, interleaving them where the kernel can.
fn decode_groups_pair(a: &mut ChunkDecode, b: &mut ChunkDecode) -> Result<()> {
    let (ctx, same) = (a.dec.ctx.is_some(), a.dec.ctx.is_some() == b.dec.ctx.is_some());
    match a.dec.simd.min(b.dec.simd) {
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 if same && ctx => unsafe { avx512::decode_pair::<true>(a, b) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 if same => unsafe { avx512::decode_pair::<false>(a, b) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 if same && ctx => unsafe { avx2::decode_pair::<true>(a, b) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 if same => unsafe { avx2::decode_pair::<false>(a, b) },
        _ => {
            let _ = (ctx, same);
            decode_groups(a)?;
            decode_groups(b)
        }
    }
}

/// Patches the lanes of group `g` that decoded `ESC` (bit i of `escaped` = lane i), in lane
/// order, from the escape list. Shared by the SIMD kernels; rare, so kept simple.
#[cfg(target_arch = "x86_64")]
fn patch_escapes(mut escaped: u64, g: usize, c: &mut ChunkDecode) -> Result<()> {
    let (esc, nib) = (&mut c.esc, c.nib);
    while escaped != 0 {
        let lane = escaped.trailing_zeros() as usize;
        escaped &= escaped - 1;
        let i = g * LANES + lane;
        let mut v = c.dec.split.join(esc.next()?, (nib[i / 2] >> (4 * (i & 1))) as u32);
        if let Some(l) = c.dec.ctx.as_ref().filter(|l| l.flips) {
            v ^= l.sign_of(c.first + i);
        }
        c.dst[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture layer's matrices of 384 columns (attention and FFN up-projection, 1.18 M
    /// values) as one f16 matrix: real weights, enough values for a close call.
    fn f16_matrix() -> Vec<u8> {
        let file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/minilm-l6-layer0-bf16.safetensors")).unwrap();
        let st = crate::safetensors::read(&file).unwrap();
        let mut out = Vec::new();
        for t in st.tensors.iter().filter(|t| t.dtype == "BF16" && t.shape.len() == 2 && t.shape[1] == 384) {
            for v in file[t.offset as usize..][..t.len as usize].chunks_exact(2) {
                let x = half::bf16::from_le_bytes([v[0], v[1]]).to_f32();
                out.extend_from_slice(&half::f16::from_f32(x).to_le_bytes());
            }
        }
        out
    }

    /// A close call (`choose`) takes whichever plan codes smaller under its built tables: the
    /// f16 fixture matrix, whose method 6 tables are dense and estimated 0.4% smaller, taken as
    /// a close call at margins around that estimate; past the margin the estimate decides.
    #[test]
    fn close_calls_go_to_the_smaller_built_plan() {
        let data = f16_matrix();
        let chunks: Vec<&[u8]> = data.chunks(crate::frame::DEFAULT_CHUNK_SIZE as usize).collect();
        let values = data.len() / 2;
        assert!(values >= CLOSE_CALL_MIN_VALUES, "{values} values");
        let drafts = || {
            let (split, hists, sums) = split_and_histograms(&chunks, 1, Some((Kind::F16, 384))).unwrap();
            let ctx = context::plan_ctx(Kind::F16, &chunks, 384, 1, split, sums).unwrap().unwrap();
            (Tables::draft(&hists), ctx)
        };
        let (plain, ctx) = drafts();
        let (c, p) = (ctx.bits(), plain.bits);
        assert!(c < p, "estimates: method 6 {c}, plain {p}");
        assert!(ctx.mean_present() > (1u64 << context::CTX_SCALE) as f64 / 8.0, "tables not dense");
        let exact_plain = plain.build_costed(1).unwrap().2;
        let exact_ctx = ctx.build_costed(1).unwrap().1;
        let margin = (p - c) / p;
        for (too_close, close) in [(margin * 1.01, true), (1.0, true), (margin * 0.99, false), (0.0, false)] {
            let (plain, ctx) = drafts();
            let chosen = choose_within(plain, Some(ctx), values, 1, too_close).unwrap();
            let took_ctx = matches!(chosen, Chosen::Ctx(_));
            if close {
                assert_eq!(took_ctx, exact_ctx < exact_plain, "margin {too_close}: built {exact_ctx} vs {exact_plain}");
            } else {
                assert!(took_ctx, "margin {too_close}: the estimate says method 6");
            }
            // A frame below the size for close calls takes the estimate's choice.
            let (plain, ctx) = drafts();
            let chosen = choose_within(plain, Some(ctx), CLOSE_CALL_MIN_VALUES - 1, 1, too_close).unwrap();
            assert!(matches!(chosen, Chosen::Ctx(_)));
        }
    }

    #[test]
    fn nibble_kernels_pack_as_the_scalar_loop() {
        let mut r = crate::test_rng::Lcg::new(5);
        for n in (0..200usize).chain([1023, 1024, 65537]) {
            let src: Vec<u8> = (0..2 * n).map(|_| r.below(256) as u8).collect();
            for split in [Split::Magnitude, Split::Signed] {
                let mut want = vec![0u8; n.div_ceil(2)];
                pack_nibbles_scalar(&src, &mut want, |v| split.nibble(v));
                let mut got = vec![0u8; n.div_ceil(2)];
                pack_nibbles(&src, &mut got, split);
                assert_eq!(got, want, "{n} values, {split:?}");
                #[cfg(target_arch = "x86_64")]
                for level in [Level::Avx2, Level::Avx512] {
                    if cpu::detect() < level {
                        continue;
                    }
                    let mut got = vec![0u8; n.div_ceil(2)];
                    // SAFETY: the CPU has `level`.
                    let done = unsafe {
                        match level {
                            Level::Avx512 => avx512::pack_nibbles(&src, &mut got, split.nibble_shift()),
                            _ => avx2::pack_nibbles(&src, &mut got, split.nibble_shift()),
                        }
                    };
                    assert!(done <= n && got[..done / 2] == want[..done / 2], "{n} values, {split:?}, {level:?}");
                }
            }
        }
    }

    #[test]
    fn every_bit_pattern_roundtrips() {
        // NaNs, infinities, subnormals and both zeros included, under both splits.
        let src: Vec<u8> = (0..=u16::MAX).rev().flat_map(|v| v.to_le_bytes()).collect();
        for split in [Split::Magnitude, Split::Signed] {
            let mut counts = vec![0u64; SYMBOLS];
            histogram(&src, split, &mut counts);
            let m = Model::from_counts(&counts).unwrap();
            let m = read_models(&write_models(&[m])).unwrap().remove(0);
            let mut buf = Vec::new();
            encode_chunk(&Encoder::new(m.encoder(), split), &src, &mut buf).unwrap();
            for level in Level::ALL {
                let dec = m.decoder(level, split);
                let mut back = vec![0u8; src.len()];
                decode_chunk(&dec, 0, &buf, &mut back).unwrap();
                assert_eq!(back, src);
            }
        }
    }
}
