//! The frame: the container for one compressed stream. Byte layout in `docs/FORMAT.md`.
//!
//! A frame is a fixed 48-byte header (with its own checksum, so the kind and size can be trusted
//! without reading further), the model, the chunk table, a checksum over model and table, and the
//! chunk payloads. Chunks decode independently given the model, which is what lets decoding use
//! every core and lets a reader seek.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64;

use crate::codec::{bf16, blocks, f32split, grouped, q4k, Kind, Method};
use crate::entropy::rans::EncTable;
use crate::error::{Error, Result};
use crate::parallel;

pub const MAGIC: [u8; 4] = [0x89, b'W', b'Z', b'F'];
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 48;
pub const CHUNK_ENTRY_LEN: usize = 16;
pub const CHECK_LEN: usize = 8;
pub const MIN_CHUNK_SIZE: u32 = 64 << 10;
pub const MAX_CHUNK_SIZE: u32 = 1 << 30;
pub const DEFAULT_CHUNK_SIZE: u32 = 256 << 10;
/// Most original bytes a coded chunk may claim per stored byte. A zstd frame expands at most about
/// 32,768-fold (a run-length block: 4 bytes for 128 KiB); the rANS coders could in principle go
/// further on constant data, so writers store such chunks raw. The rule bounds what a frame can
/// make a reader allocate: at most this many times its own size.
pub const MAX_EXPANSION: u64 = 1 << 15;
/// Upper bound on a model section: a table for 4096 symbols takes at most a few KiB.
pub const MAX_MODEL_SIZE: u32 = 1 << 20;

const CHUNK_RAW: u8 = 0;
const CHUNK_CODED: u8 = 1;

/// Options shared by compression and decompression.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Worker threads; 0 uses every available core. Output bytes never depend on it.
    pub threads: u32,
    /// Bytes of input per chunk (compression only); 0 selects `DEFAULT_CHUNK_SIZE`.
    pub chunk_size: u32,
    /// If set, incremented by the original size of every chunk once it is done.
    pub progress: Option<Arc<AtomicU64>>,
}

impl Options {
    pub fn with_threads(threads: u32) -> Options {
        Options { threads, ..Options::default() }
    }

    pub(crate) fn tick(&self, bytes: usize) {
        if let Some(p) = &self.progress {
            p.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }
}

/// What the fixed header of a frame says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    pub format_version: u16,
    pub kind: Kind,
    pub method: Method,
    pub original_size: u64,
    pub chunk_size: u32,
    pub chunk_count: u32,
    pub model_size: u32,
    pub payload_size: u64,
    /// Total bytes of the frame, header to last payload byte.
    pub frame_size: u64,
}

/// Largest frame `compress` can produce for `n` input bytes (the stored frame, with the chunk
/// table at the smallest chunk size). Same formula as the C macro `WZ_COMPRESS_BOUND`.
pub fn compress_bound(n: usize) -> Option<usize> {
    let entries = n / MIN_CHUNK_SIZE as usize + 1;
    n.checked_add(64)?.checked_add(entries.checked_mul(CHUNK_ENTRY_LEN)?)
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Checks that `src` starts with `magic` and holds a whole fixed header of `header_len` bytes:
/// BAD_MAGIC for other bytes, TRUNCATED for a prefix of a header.
pub(crate) fn check_magic(src: &[u8], magic: &[u8; 4], header_len: usize) -> Result<()> {
    if src.len() < 4 {
        return Err(if magic.starts_with(src) { Error::Truncated } else { Error::BadMagic });
    }
    if src[..4] != magic[..] {
        return Err(Error::BadMagic);
    }
    if src.len() < header_len {
        return Err(Error::Truncated);
    }
    Ok(())
}

/// Reads and validates the fixed header. Needs only the first `HEADER_LEN` bytes.
pub fn read_info(src: &[u8]) -> Result<FrameInfo> {
    check_magic(src, &MAGIC, HEADER_LEN)?;
    let h = &src[..HEADER_LEN];
    if xxh3_64(&h[..40]) != le_u64(h, 40) {
        return Err(Error::CorruptHeader);
    }
    let format_version = le_u16(h, 4);
    if format_version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion);
    }
    let kind = Kind::from_u32(h[6] as u32)?;
    let method = Method::from_u8(h[7])?;
    let original_size = le_u64(h, 8);
    let chunk_size = le_u32(h, 16);
    let chunk_count = le_u32(h, 20);
    let model_size = le_u32(h, 24);
    let reserved = le_u32(h, 28);
    let payload_size = le_u64(h, 32);
    let consistent = method.valid_for(kind)
        && reserved == 0
        && (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size)
        && chunk_size as usize % kind.element_size() == 0
        && original_size % kind.element_size() as u64 == 0
        && original_size.div_ceil(chunk_size as u64) == chunk_count as u64
        && model_size <= MAX_MODEL_SIZE
        && (method != Method::Stored || model_size == 0);
    if !consistent {
        return Err(Error::CorruptHeader);
    }
    let frame_size = (HEADER_LEN as u64 + model_size as u64 + CHECK_LEN as u64)
        .checked_add(chunk_count as u64 * CHUNK_ENTRY_LEN as u64)
        .and_then(|v| v.checked_add(payload_size))
        .ok_or(Error::CorruptHeader)?;
    Ok(FrameInfo {
        format_version,
        kind,
        method,
        original_size,
        chunk_size,
        chunk_count,
        model_size,
        payload_size,
        frame_size,
    })
}

struct ChunkEntry {
    stored_size: u32,
    coded: bool,
    /// Index of the model a coded chunk uses.
    model: u8,
    checksum: u64,
}

/// One chunk's result: its original bytes, and its coded bytes with the model index when coding
/// made it smaller.
struct ChunkOut<'a> {
    raw: &'a [u8],
    coded: Option<(Vec<u8>, u8)>,
    /// XXH3-64 of `raw`, computed in the parallel phase.
    check: u64,
}

impl ChunkOut<'_> {
    fn stored_len(&self) -> usize {
        self.coded.as_ref().map_or(self.raw.len(), |(c, _)| c.len())
    }
}

/// Compresses `src` as a frame of `kind`.
pub fn compress(kind: Kind, src: &[u8], opts: &Options) -> Result<Vec<u8>> {
    let es = kind.element_size();
    if src.len() % es != 0 {
        return Err(Error::BadLength);
    }
    // The default rounds down to whole elements (a Q4_K block is 144 bytes).
    let chunk_size = if opts.chunk_size == 0 { DEFAULT_CHUNK_SIZE / es as u32 * es as u32 } else { opts.chunk_size };
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) || chunk_size as usize % es != 0 {
        return Err(Error::InvalidArgument);
    }
    let cs = chunk_size as usize;
    let chunk_count = u32::try_from(src.len().div_ceil(cs)).map_err(|_| Error::TooLarge)?;
    let chunks: Vec<&[u8]> = src.chunks(cs).collect();

    let coded = match kind {
        _ if src.is_empty() => None,
        // f16 splits like bf16: bits 14..3 (5 exponent, top 7 mantissa bits) form the symbol,
        // sign and the low 3 mantissa bits go raw (see `codec::bf16`).
        Kind::Bf16 | Kind::F16 => Some((Method::Bf16Hist, code_bf16(&chunks, opts)?)),
        Kind::F32 => Some((Method::F32Split, code_f32(&chunks, opts)?)),
        Kind::Q4K => Some((Method::Q4kCtx, code_q4k(&chunks, opts)?)),
        k => match k.layout() {
            Some(layout) => Some((Method::Blocks, code_blocks(layout, &chunks, opts)?)),
            None => Some((Method::Grouped, code_grouped(es, &chunks, opts)?)),
        },
    };
    // The coded frame is used only when it is smaller than the stored one, which keeps every
    // frame within `compress_bound`.
    let stored = frame_len(0, chunks.len(), src.len());
    let (method, model, outs) = match coded {
        Some((method, (model, outs)))
            if frame_len(model.len(), outs.len(), outs.iter().map(ChunkOut::stored_len).sum()) < stored =>
        {
            (method, model, outs)
        }
        _ => {
            let mut outs: Vec<ChunkOut> = chunks.iter().map(|c| ChunkOut { raw: c, coded: None, check: 0 }).collect();
            parallel::for_each_mut(&mut outs, opts.threads, |_, o| {
                o.check = xxh3_64(o.raw);
                Ok(())
            })?;
            (Method::Stored, Vec::new(), outs)
        }
    };

    let payload_size: u64 = outs.iter().map(|o| o.stored_len() as u64).sum();
    let total = frame_len(model.len(), outs.len(), payload_size as usize);
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(kind.id() as u8);
    out.push(method as u8);
    out.extend_from_slice(&(src.len() as u64).to_le_bytes());
    out.extend_from_slice(&chunk_size.to_le_bytes());
    out.extend_from_slice(&chunk_count.to_le_bytes());
    out.extend_from_slice(&(model.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&payload_size.to_le_bytes());
    let hc = xxh3_64(&out[..40]);
    out.extend_from_slice(&hc.to_le_bytes());
    let meta_start = out.len();
    out.extend_from_slice(&model);
    for o in &outs {
        out.extend_from_slice(&(o.stored_len() as u32).to_le_bytes());
        match &o.coded {
            Some((_, m)) => out.extend_from_slice(&[CHUNK_CODED, *m, 0, 0]),
            None => out.extend_from_slice(&[CHUNK_RAW, 0, 0, 0]),
        }
        out.extend_from_slice(&o.check.to_le_bytes());
    }
    let mc = xxh3_64(&out[meta_start..]);
    out.extend_from_slice(&mc.to_le_bytes());
    for o in &outs {
        out.extend_from_slice(o.coded.as_ref().map_or(o.raw, |(c, _)| c));
    }
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

fn frame_len(model: usize, chunks: usize, payload: usize) -> usize {
    HEADER_LEN + model + CHUNK_ENTRY_LEN * chunks + CHECK_LEN + payload
}

/// Codes every chunk with `code` in parallel (computing its checksum too); a chunk whose coded
/// form is not smaller stays raw. Every coded chunk uses model `model_of(i)`.
fn code_chunks<'a>(
    chunks: &[&'a [u8]],
    opts: &Options,
    model_of: impl Fn(usize) -> u8 + Sync,
    code: impl Fn(usize, &[u8], &mut Vec<u8>) -> Result<()> + Sync,
) -> Result<Vec<ChunkOut<'a>>> {
    let mut outs: Vec<ChunkOut> = chunks.iter().map(|c| ChunkOut { raw: c, coded: None, check: 0 }).collect();
    parallel::for_each_mut(&mut outs, opts.threads, |i, o| {
        o.check = xxh3_64(o.raw);
        let mut buf = Vec::new();
        code(i, o.raw, &mut buf)?;
        // A chunk that would expand more than MAX_EXPANSION-fold stays raw (only near-constant
        // data in chunks of megabytes does), so a reader can refuse any larger claim.
        if buf.len() < o.raw.len() && o.raw.len() as u64 <= MAX_EXPANSION * buf.len() as u64 {
            o.coded = Some((buf, model_of(i)));
        }
        opts.tick(o.raw.len());
        Ok(())
    })?;
    Ok(outs)
}

/// bf16: per-chunk histograms (in parallel), the model plan, then every chunk coded with its
/// model; a chunk that does not shrink stays raw.
fn code_bf16<'a>(chunks: &[&'a [u8]], opts: &Options) -> Result<(Vec<u8>, Vec<ChunkOut<'a>>)> {
    let mut hists: Vec<(&[u8], Vec<u64>)> = chunks.iter().map(|c| (*c, Vec::new())).collect();
    parallel::for_each_mut(&mut hists, opts.threads, |_, (c, h)| {
        *h = vec![0u64; bf16::SYMBOLS];
        bf16::histogram(c, h);
        Ok(())
    })?;
    let hists: Vec<Vec<u64>> = hists.into_iter().map(|(_, h)| h).collect();
    code_with_bf16_models(chunks, &hists, opts, |enc, _, raw, buf| bf16::encode_chunk(enc, raw, buf))
}

/// The bf16 model plan from per-chunk histograms, then every chunk coded by `encode(its model's
/// encoder, chunk index, chunk, out)`; returns the model section and the chunks.
fn code_with_bf16_models<'a>(
    chunks: &[&'a [u8]],
    hists: &[Vec<u64>],
    opts: &Options,
    encode: impl Fn(&EncTable, usize, &[u8], &mut Vec<u8>) -> Result<()> + Sync,
) -> Result<(Vec<u8>, Vec<ChunkOut<'a>>)> {
    let (models, assign) = bf16::plan(hists, opts.threads)?;
    let encs: Vec<_> = models.iter().map(|m| m.encoder()).collect();
    let outs = code_chunks(chunks, opts, |i| assign[i], |i, raw, buf| encode(&encs[assign[i] as usize], i, raw, buf))?;
    Ok((bf16::write_models(&models), outs))
}

/// f32: each chunk split into its values' high halves (a bf16 value each, coded like bf16 with
/// the frame's bf16 models) and low halves (byte-grouped zstd); see `codec::f32`.
fn code_f32<'a>(chunks: &[&'a [u8]], opts: &Options) -> Result<(Vec<u8>, Vec<ChunkOut<'a>>)> {
    let mut parts: Vec<(&[u8], f32split::Halves, Vec<u64>)> =
        chunks.iter().map(|c| (*c, Default::default(), Vec::new())).collect();
    parallel::for_each_mut(&mut parts, opts.threads, |_, (c, halves, h)| {
        *halves = f32split::split(c);
        *h = vec![0u64; bf16::SYMBOLS];
        bf16::histogram(&halves.hi, h);
        Ok(())
    })?;
    let hists: Vec<Vec<u64>> = parts.iter_mut().map(|p| std::mem::take(&mut p.2)).collect();
    code_with_bf16_models(chunks, &hists, opts, |enc, i, _, buf| f32split::encode_chunk(enc, &parts[i].1, buf))
}

/// Q4_K: per-chunk counts (in parallel), one model for the frame, then every chunk coded.
fn code_q4k<'a>(chunks: &[&'a [u8]], opts: &Options) -> Result<(Vec<u8>, Vec<ChunkOut<'a>>)> {
    let mut counts: Vec<(&[u8], q4k::Counts)> = chunks.iter().map(|c| (*c, q4k::Counts::new())).collect();
    parallel::for_each_mut(&mut counts, opts.threads, |_, (c, n)| {
        n.add(c);
        Ok(())
    })?;
    let mut total = q4k::Counts::new();
    for (_, c) in &counts {
        total.merge(c);
    }
    let model = q4k::Model::from_counts(&total)?;
    let enc = model.encoder();
    let outs = code_chunks(chunks, opts, |_| 0, |_, raw, buf| q4k::encode_chunk(&enc, raw, buf))?;
    Ok((model.write(), outs))
}

/// Other block types: per-chunk counts (in parallel), one model for the frame, every chunk coded.
fn code_blocks<'a>(
    layout: blocks::Layout,
    chunks: &[&'a [u8]],
    opts: &Options,
) -> Result<(Vec<u8>, Vec<ChunkOut<'a>>)> {
    // Each chunk is split once, counted, and later coded from the same split.
    type Split = (Vec<u8>, Vec<u8>);
    let mut counts: Vec<(&[u8], blocks::Counts, Split)> =
        chunks.iter().map(|c| (*c, blocks::Counts::new(layout), Default::default())).collect();
    parallel::for_each_mut(&mut counts, opts.threads, |_, (c, n, split)| {
        *split = layout.split_all(c);
        n.add_split(layout, &split.0, &split.1);
        Ok(())
    })?;
    let mut total = blocks::Counts::new(layout);
    for (_, c, _) in &counts {
        total.merge(c);
    }
    let model = blocks::Model::from_counts(layout, &total)?;
    let enc = model.encoder();
    let outs = code_chunks(
        chunks,
        opts,
        |_| 0,
        |i, _, buf| blocks::encode_split(&enc, &counts[i].2 .0, &counts[i].2 .1, buf),
    )?;
    Ok((model.write(), outs))
}

/// Generic: every chunk byte-grouped by element and zstd-compressed; the model is the stride.
fn code_grouped<'a>(stride: usize, chunks: &[&'a [u8]], opts: &Options) -> Result<(Vec<u8>, Vec<ChunkOut<'a>>)> {
    let outs = code_chunks(chunks, opts, |_| 0, |_, raw, buf| grouped::encode_chunk(stride, raw, buf))?;
    Ok((vec![stride as u8], outs))
}

/// The models of a frame, parsed and checked.
enum Models {
    None,
    Bf16(Vec<bf16::Model>),
    Q4k(q4k::Model),
    Blocks(blocks::Model),
    /// The element stride of a grouped frame.
    Grouped(usize),
}

impl Models {
    fn count(&self) -> usize {
        match self {
            Models::None => 0,
            Models::Bf16(m) => m.len(),
            Models::Q4k(_) | Models::Blocks(_) | Models::Grouped(_) => 1,
        }
    }
}

/// A validated view of a whole frame, ready to decode.
struct Parsed<'a> {
    info: FrameInfo,
    models: Models,
    entries: Vec<ChunkEntry>,
    payload: &'a [u8],
}

fn parse(src: &[u8]) -> Result<Parsed<'_>> {
    let info = read_info(src)?;
    let model_end = HEADER_LEN + info.model_size as usize;
    let table_end = model_end + CHUNK_ENTRY_LEN * info.chunk_count as usize;
    let meta_end = table_end + CHECK_LEN;
    if src.len() < meta_end {
        return Err(Error::Truncated);
    }
    if xxh3_64(&src[HEADER_LEN..table_end]) != le_u64(src, table_end) {
        return Err(Error::CorruptHeader);
    }
    let mut entries = Vec::with_capacity(info.chunk_count as usize);
    let mut sum = 0u64;
    for (i, e) in src[model_end..table_end].chunks_exact(CHUNK_ENTRY_LEN).enumerate() {
        let stored_size = le_u32(e, 0);
        let coded = match e[4] {
            CHUNK_RAW => false,
            CHUNK_CODED if info.method != Method::Stored => true,
            _ => return Err(Error::CorruptHeader),
        };
        let orig = chunk_len(&info, i);
        // A coded chunk cannot be smaller than its raw parts: this bounds what a frame can make
        // a decoder allocate by a small multiple of the frame's own size.
        let too_small = coded
            && ((stored_size as u64) < min_coded_len(info.method, orig) || orig > MAX_EXPANSION * stored_size as u64);
        if e[6..8] != [0, 0] || (!coded && (stored_size as u64 != orig || e[5] != 0)) || too_small {
            return Err(Error::CorruptHeader);
        }
        sum += stored_size as u64;
        entries.push(ChunkEntry { stored_size, coded, model: e[5], checksum: le_u64(e, 8) });
    }
    if sum != info.payload_size {
        return Err(Error::CorruptHeader);
    }
    if (src.len() as u64) < info.frame_size {
        return Err(Error::Truncated);
    }
    if src.len() as u64 > info.frame_size {
        return Err(Error::TrailingData);
    }
    let models = match info.method {
        Method::Stored => Models::None,
        Method::Bf16Hist | Method::F32Split => Models::Bf16(bf16::read_models(&src[HEADER_LEN..model_end])?),
        Method::Q4kCtx => Models::Q4k(q4k::Model::read(&src[HEADER_LEN..model_end])?),
        Method::Grouped => match src[HEADER_LEN..model_end] {
            [stride] if stride as usize == info.kind.element_size() => Models::Grouped(stride as usize),
            _ => return Err(Error::CorruptModel),
        },
        Method::Blocks => Models::Blocks(blocks::Model::read(
            info.kind.layout().ok_or(Error::CorruptHeader)?,
            &src[HEADER_LEN..model_end],
        )?),
    };
    if entries.iter().any(|e| e.coded && e.model as usize >= models.count()) {
        return Err(Error::CorruptHeader);
    }
    Ok(Parsed { info, models, entries, payload: &src[meta_end..] })
}

/// The smallest a coded chunk of `orig` bytes can be under `method`.
fn min_coded_len(method: Method, orig: u64) -> u64 {
    match method {
        Method::Stored => orig,
        Method::Bf16Hist => bf16::min_coded_len(orig),
        Method::F32Split => f32split::min_coded_len(orig),
        Method::Q4kCtx => q4k::min_coded_len(orig),
        Method::Blocks => blocks::min_coded_len(),
        Method::Grouped => grouped::min_coded_len(),
    }
}

fn chunk_len(info: &FrameInfo, i: usize) -> u64 {
    let start = i as u64 * info.chunk_size as u64;
    (info.original_size - start).min(info.chunk_size as u64)
}

/// Decompresses one whole frame into `dst`, whose length must equal the original size.
/// Errors found while validating the frame leave `dst` untouched; an error found while decoding
/// zeroes it, so no partly decoded data can be mistaken for a result.
pub fn decompress_into(src: &[u8], dst: &mut [u8], opts: &Options) -> Result<()> {
    let p = parse(src)?;
    if (dst.len() as u64) < p.info.original_size {
        return Err(Error::DstTooSmall);
    }
    if dst.len() as u64 > p.info.original_size {
        return Err(Error::DstSizeMismatch);
    }
    let r = decode_chunks(&p, 0, dst, opts);
    if r.is_err() {
        dst.fill(0);
    }
    r
}

/// A validated frame from which any run of whole chunks can be decoded: what lets a reader
/// restore a large tensor a window at a time, with memory bounded by the window.
pub struct FrameReader<'a> {
    p: Parsed<'a>,
}

impl<'a> FrameReader<'a> {
    /// Parses and validates the whole frame `src` (header, model, chunk table, sizes).
    pub fn new(src: &'a [u8]) -> Result<FrameReader<'a>> {
        Ok(FrameReader { p: parse(src)? })
    }

    pub fn info(&self) -> &FrameInfo {
        &self.p.info
    }

    /// Decodes the original bytes `[offset, offset + dst.len())` into `dst`. `offset` must be a
    /// multiple of the chunk size, and the end a multiple of it or the original size
    /// [INVALID_ARGUMENT]. On a decoding error `dst` is zero-filled.
    pub fn decode_range(&self, offset: u64, dst: &mut [u8], opts: &Options) -> Result<()> {
        let cs = self.p.info.chunk_size as u64;
        let end = offset.checked_add(dst.len() as u64).ok_or(Error::InvalidArgument)?;
        if offset % cs != 0 || end > self.p.info.original_size || (end % cs != 0 && end != self.p.info.original_size) {
            return Err(Error::InvalidArgument);
        }
        let r = decode_chunks(&self.p, (offset / cs) as usize, dst, opts);
        if r.is_err() {
            dst.fill(0);
        }
        r
    }

    /// Where, from the frame's first byte, the stored bytes of the chunks holding original bytes
    /// `[offset, end)` lie (`offset` and `end` as for `decode_range`). For a reader that hands
    /// pages back to the kernel as it goes.
    pub fn stored_span(&self, offset: u64, end: u64) -> std::ops::Range<u64> {
        let cs = self.p.info.chunk_size as u64;
        let (first, last) = ((offset / cs) as usize, end.div_ceil(cs) as usize);
        let payload_start = self.p.info.frame_size - self.p.info.payload_size;
        let size = |r: &[ChunkEntry]| r.iter().map(|e| e.stored_size as u64).sum::<u64>();
        let entries = &self.p.entries;
        let start = payload_start + size(&entries[..first.min(entries.len())]);
        start..start + size(&entries[first.min(entries.len())..last.min(entries.len())])
    }
}

/// One chunk to decode: where its output goes, its stored bytes, its table entry.
type Job<'a, 'b> = (&'b mut [u8], &'a [u8], &'a ChunkEntry);

/// Decodes chunks `first..` into `dst`, which starts at chunk `first`'s original bytes.
fn decode_chunks(p: &Parsed, first: usize, dst: &mut [u8], opts: &Options) -> Result<()> {
    let skip: usize = p.entries[..first].iter().map(|e| e.stored_size as usize).sum();
    let mut rest = &p.payload[skip..];
    let mut jobs = Vec::with_capacity(p.entries.len() - first);
    for (out, e) in dst.chunks_mut(p.info.chunk_size as usize).zip(&p.entries[first..]) {
        let (this, tail) = rest.split_at(e.stored_size as usize);
        rest = tail;
        jobs.push((out, this, e));
    }
    let models = match &p.models {
        Models::Bf16(m) if p.info.method == Method::F32Split => {
            // Every model's decoder up front: a frame has few, and f32 chunks go one at a time.
            let decs: Vec<bf16::Decoder> = m.iter().map(|m| m.decoder()).collect();
            return decode_each(&mut jobs, opts, &|src, out, model| {
                f32split::decode_chunk(decs.get(model as usize).ok_or(Error::CorruptHeader)?, src, out)
            });
        }
        Models::Bf16(m) => m,
        Models::Q4k(m) => {
            let dec = m.decoder();
            return decode_each(&mut jobs, opts, &|src, out, _| q4k::decode_chunk(&dec, src, out));
        }
        Models::Blocks(m) => {
            let dec = m.decoder();
            return decode_each(&mut jobs, opts, &|src, out, _| blocks::decode_chunk(&dec, src, out));
        }
        Models::Grouped(stride) => {
            return decode_each(&mut jobs, opts, &|src, out, _| grouped::decode_chunk(*stride, src, out))
        }
        // A stored frame has only raw chunks, which `decode_each` copies.
        Models::None => return decode_each(&mut jobs, opts, &|_, _, _| Err(Error::CorruptHeader)),
    };
    // Chunks go in pairs, which the decoder interleaves (see `bf16::decode_chunk_pair`).
    let mut pairs: Vec<(Job, Option<Job>)> = Vec::with_capacity(jobs.len().div_ceil(2));
    let mut it = jobs.into_iter();
    while let Some(a) = it.next() {
        pairs.push((a, it.next()));
    }
    // Each thread keeps the decoding tables of its last pair: neighbouring chunks often share a
    // model, and a table costs as much to build as a few thousand values cost to decode.
    let no_tables = Vec::<(u8, bf16::Decoder)>::new;
    parallel::for_each_mut_with(&mut pairs, opts.threads, no_tables, |tables, _, (a, b)| {
        let wanted: Vec<u8> =
            [Some(&*a), b.as_ref()].into_iter().flatten().filter(|j| j.2.coded).map(|j| j.2.model).collect();
        tables.retain(|(m, _)| wanted.contains(m));
        for &m in &wanted {
            if !tables.iter().any(|(k, _)| *k == m) {
                tables.push((m, models[m as usize].decoder()));
            }
        }
        let table = |m: u8| tables.iter().find(|(k, _)| *k == m).map(|(_, d)| d).ok_or(Error::CorruptHeader);
        match b {
            Some(b) if a.2.coded && b.2.coded => {
                bf16::decode_chunk_pair((table(a.2.model)?, a.1, &mut *a.0), (table(b.2.model)?, b.1, &mut *b.0))?
            }
            _ => {
                for j in [Some(&mut *a), b.as_mut()].into_iter().flatten() {
                    if j.2.coded {
                        bf16::decode_chunk(table(j.2.model)?, j.1, j.0)?;
                    } else {
                        j.0.copy_from_slice(j.1);
                    }
                }
            }
        }
        for j in [Some(&*a), b.as_ref()].into_iter().flatten() {
            check_chunk(j.0, j.2, opts)?;
        }
        Ok(())
    })
}

/// Decodes chunk by chunk (every method but bf16-hist, whose chunks go in pairs), calling
/// `decode(payload, out, model index)`; raw chunks are copied.
fn decode_each(
    jobs: &mut [Job],
    opts: &Options,
    decode: &(dyn Fn(&[u8], &mut [u8], u8) -> Result<()> + Sync),
) -> Result<()> {
    parallel::for_each_mut(jobs, opts.threads, |_, (out, src, e)| {
        if e.coded {
            decode(src, out, e.model)?;
        } else {
            out.copy_from_slice(src);
        }
        check_chunk(out, e, opts)
    })
}

/// Compares a decoded chunk with its checksum, and counts it as done.
fn check_chunk(out: &[u8], e: &ChunkEntry, opts: &Options) -> Result<()> {
    if xxh3_64(out) != e.checksum {
        return Err(Error::CorruptData);
    }
    opts.tick(out.len());
    Ok(())
}

/// Decompresses one whole frame into a new vector.
pub fn decompress(src: &[u8], opts: &Options) -> Result<Vec<u8>> {
    // Validate the whole frame before allocating what its header claims.
    let p = parse(src)?;
    let n = usize::try_from(p.info.original_size).map_err(|_| Error::TooLarge)?;
    let mut out = crate::archive::alloc_zeroed(n as u64)?;
    decode_chunks(&p, 0, &mut out, opts)?;
    Ok(out)
}
