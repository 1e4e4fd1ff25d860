//! The frame: the container for one compressed stream. Byte layout in `docs/FORMAT.md`.
//!
//! A frame is a fixed 48-byte header (with its own checksum, so the kind and size can be trusted
//! without reading further), the model, the chunk table, a checksum over model and table, and the
//! chunk payloads. Chunks decode independently given the model, which is what lets decoding use
//! every core and lets a reader seek.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64;

use crate::codec::{ChunkDecoder, ChunkEncoder, Kind, Method, Model};
use crate::cpu::{self, Level};
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
        && (chunk_size as usize).is_multiple_of(kind.element_size())
        && original_size.is_multiple_of(kind.element_size() as u64)
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
    if !src.len().is_multiple_of(es) {
        return Err(Error::BadLength);
    }
    // The default rounds down to whole elements (a Q4_K block is 144 bytes).
    let chunk_size = if opts.chunk_size == 0 { DEFAULT_CHUNK_SIZE / es as u32 * es as u32 } else { opts.chunk_size };
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) || !(chunk_size as usize).is_multiple_of(es) {
        return Err(Error::InvalidArgument);
    }
    let cs = chunk_size as usize;
    let chunk_count = u32::try_from(src.len().div_ceil(cs)).map_err(|_| Error::TooLarge)?;
    let chunks: Vec<&[u8]> = src.chunks(cs).collect();

    let coded = if src.is_empty() {
        None
    } else {
        let codec = kind.codec();
        let enc = codec.plan(kind, &chunks, opts.threads)?;
        let outs = code_chunks(&chunks, opts, &*enc)?;
        Some((codec.method(), (enc.model(), outs)))
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

/// Codes every chunk with `enc` in parallel (computing its checksum too); a chunk whose coded
/// form is not smaller stays raw.
fn code_chunks<'a>(chunks: &[&'a [u8]], opts: &Options, enc: &dyn ChunkEncoder) -> Result<Vec<ChunkOut<'a>>> {
    let mut outs: Vec<ChunkOut> = chunks.iter().map(|c| ChunkOut { raw: c, coded: None, check: 0 }).collect();
    parallel::for_each_mut(&mut outs, opts.threads, |i, o| {
        o.check = xxh3_64(o.raw);
        let mut buf = Vec::new();
        enc.encode(i, o.raw, &mut buf)?;
        // A chunk that would expand more than MAX_EXPANSION-fold stays raw (only near-constant
        // data in chunks of megabytes does), so a reader can refuse any larger claim.
        if buf.len() < o.raw.len() && o.raw.len() as u64 <= MAX_EXPANSION * buf.len() as u64 {
            o.coded = Some((buf, enc.table(i)));
        }
        opts.tick(o.raw.len());
        Ok(())
    })?;
    Ok(outs)
}

/// A validated view of a whole frame, ready to decode.
struct Parsed<'a> {
    info: FrameInfo,
    /// None for a stored frame.
    model: Option<Box<dyn Model>>,
    entries: Vec<ChunkEntry>,
    payload: &'a [u8],
}

fn parse(src: &[u8]) -> Result<Parsed<'_>> {
    let info = read_info(src)?;
    let codec = info.method.codec_for(info.kind);
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
            && ((stored_size as u64) < codec.map_or(orig, |c| c.min_coded_len(orig))
                || orig > MAX_EXPANSION * stored_size as u64);
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
    let model = codec.map(|c| c.read_model(info.kind, &src[HEADER_LEN..model_end])).transpose()?;
    let tables = model.as_ref().map_or(0, |m| m.tables());
    if entries.iter().any(|e| e.coded && e.model as usize >= tables) {
        return Err(Error::CorruptHeader);
    }
    Ok(Parsed { info, model, entries, payload: &src[meta_end..] })
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
    let r = decode_chunks(&p, 0, dst, opts, cpu::detect());
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
        if !offset.is_multiple_of(cs)
            || end > self.p.info.original_size
            || (end % cs != 0 && end != self.p.info.original_size)
        {
            return Err(Error::InvalidArgument);
        }
        let r = decode_chunks(&self.p, (offset / cs) as usize, dst, opts, cpu::detect());
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

/// Hooks for the tests and fuzz targets that compare every kernel with the scalar path.
#[cfg(feature = "internals")]
impl FrameReader<'_> {
    /// The kernel levels this CPU runs for this frame's codec: scalar first, then those of its
    /// vector kernels that `cpu::detect` allows.
    pub fn levels(&self) -> Vec<Level> {
        let codec = self.p.info.method.codec_for(self.p.info.kind);
        let kernels = codec.map_or(&[][..], |c| c.levels());
        std::iter::once(Level::Scalar).chain(kernels.iter().copied().filter(|&l| l <= cpu::detect())).collect()
    }

    /// Decodes coded chunk `i` with kernels up to `level`, without comparing it with its
    /// checksum (so that a kernel and the scalar path can be compared on hostile payloads
    /// too). None for a raw chunk or an index past the end.
    pub fn decode_chunk_at_level(&self, i: usize, level: Level) -> Option<Result<Vec<u8>>> {
        let (e, model) = (self.p.entries.get(i)?, self.p.model.as_deref()?);
        if !e.coded {
            return None;
        }
        let start: usize = self.p.entries[..i].iter().map(|e| e.stored_size as usize).sum();
        let src = &self.p.payload[start..start + e.stored_size as usize];
        let mut out = vec![0u8; chunk_len(&self.p.info, i) as usize];
        Some(model.decoder(e.model, level).decode(src, &mut out).map(|()| out))
    }
}

/// Decodes chunks `first..` into `dst`, which starts at chunk `first`'s original bytes, with
/// kernels up to `level`.
fn decode_chunks(p: &Parsed, first: usize, dst: &mut [u8], opts: &Options, level: Level) -> Result<()> {
    let skip: usize = p.entries[..first].iter().map(|e| e.stored_size as usize).sum();
    let mut rest = &p.payload[skip..];
    let mut jobs = Vec::with_capacity(p.entries.len() - first);
    for (out, e) in dst.chunks_mut(p.info.chunk_size as usize).zip(&p.entries[first..]) {
        let (this, tail) = rest.split_at(e.stored_size as usize);
        rest = tail;
        jobs.push((out, this, e));
    }
    let Some(model) = p.model.as_deref() else {
        // A stored frame has only raw chunks (`parse` checked).
        return parallel::for_each_mut(&mut jobs, opts.threads, |_, (out, src, e)| {
            out.copy_from_slice(src);
            check_chunk(out, e, opts)
        });
    };
    let decoders = || Decoders { model, level, built: Vec::new() };
    if !model.pairs() {
        return parallel::for_each_mut_with(&mut jobs, opts.threads, decoders, |d, _, (out, src, e)| {
            decode_one(d, src, out, e)?;
            check_chunk(out, e, opts)
        });
    }
    // Chunks go in pairs, which the decoder interleaves (see `bf16::decode_chunk_pair`).
    let mut pairs: Vec<(Job, Option<Job>)> = Vec::with_capacity(jobs.len().div_ceil(2));
    let mut it = jobs.into_iter();
    while let Some(a) = it.next() {
        pairs.push((a, it.next()));
    }
    parallel::for_each_mut_with(&mut pairs, opts.threads, decoders, |d, _, (a, b)| {
        match b {
            Some(b) if a.2.coded && b.2.coded => {
                d.prepare(&[a.2.model, b.2.model]);
                let (da, db) = (d.get(a.2.model)?, d.get(b.2.model)?);
                da.decode_pair((a.1, &mut *a.0), db, (b.1, &mut *b.0))?;
            }
            _ => {
                for j in [Some(&mut *a), b.as_mut()].into_iter().flatten() {
                    decode_one(d, j.1, j.0, j.2)?;
                }
            }
        }
        for j in [Some(&*a), b.as_ref()].into_iter().flatten() {
            check_chunk(j.0, j.2, opts)?;
        }
        Ok(())
    })
}

/// One chunk to decode: where its output goes, its stored bytes, its table entry.
type Job<'a, 'b> = (&'b mut [u8], &'a [u8], &'a ChunkEntry);

/// One thread's decoders, by table index. A thread keeps the decoders of its last chunks:
/// neighbouring chunks usually share a table, and building one costs as much as decoding a few
/// thousand values.
struct Decoders<'m> {
    model: &'m dyn Model,
    level: Level,
    built: Vec<(u8, Box<dyn ChunkDecoder>)>,
}

impl Decoders<'_> {
    /// Most decoders a thread keeps: a pair of chunks needs two.
    const KEEP: usize = 2;

    /// Makes sure the decoders of `tables` are built, dropping others first when full.
    fn prepare(&mut self, tables: &[u8]) {
        for &t in tables {
            if self.built.iter().any(|(k, _)| *k == t) {
                continue;
            }
            if self.built.len() >= Self::KEEP {
                if let Some(i) = self.built.iter().position(|(k, _)| !tables.contains(k)) {
                    self.built.remove(i);
                }
            }
            self.built.push((t, self.model.decoder(t, self.level)));
        }
    }

    fn get(&self, table: u8) -> Result<&dyn ChunkDecoder> {
        self.built.iter().find(|(k, _)| *k == table).map(|(_, d)| &**d).ok_or(Error::CorruptHeader)
    }
}

/// Decodes one chunk (a coded one with its table's decoder) or copies it (a raw one).
fn decode_one(d: &mut Decoders, src: &[u8], out: &mut [u8], e: &ChunkEntry) -> Result<()> {
    if e.coded {
        d.prepare(&[e.model]);
        d.get(e.model)?.decode(src, out)
    } else {
        out.copy_from_slice(src);
        Ok(())
    }
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
    let mut out = crate::memory::alloc_zeroed(n as u64)?;
    decode_chunks(&p, 0, &mut out, opts, cpu::detect())?;
    Ok(out)
}

/// `decompress` with kernels up to `level` (tests and fuzz targets compare every level the CPU
/// has with the scalar path).
#[cfg(feature = "internals")]
pub fn decompress_at_level(src: &[u8], opts: &Options, level: Level) -> Result<Vec<u8>> {
    let p = parse(src)?;
    let mut out = crate::memory::alloc_zeroed(p.info.original_size)?;
    decode_chunks(&p, 0, &mut out, opts, level)?;
    Ok(out)
}
