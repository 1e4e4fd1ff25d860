//! Reading frames: validating the header, chunk table and model (as hostile input), and decoding
//! runs of chunks on the worker pool, from memory, from a file read with `pread`, or from a
//! window of a stream.

use crate::checksum::xxh3_64;

use super::{le_u32, le_u64, read_info, FrameInfo, Options};
use super::{CHECK_LEN, CHUNK_CODED, CHUNK_ENTRY_LEN, CHUNK_RAW, HEADER_LEN, MAX_EXPANSION};
use crate::codec::{ChunkDecoder, Method, Model};
use crate::cpu::{self, Level};
use crate::error::{Error, Result};
use crate::parallel;
use crate::source::Source;

/// One entry of the chunk table.
pub(crate) struct ChunkEntry {
    pub stored_size: u32,
    pub coded: bool,
    /// Index of the table a coded chunk uses.
    pub model: u8,
    pub checksum: u64,
}

/// A frame's validated header, chunk table and model.
pub(crate) struct Parsed {
    pub info: FrameInfo,
    /// None for a stored frame.
    pub model: Option<Box<dyn Model>>,
    pub entries: Vec<ChunkEntry>,
    /// Bytes from the frame's start to its payload: header, model, chunk table, table check.
    pub meta_len: u64,
    /// `starts[i]`: where chunk i's stored bytes begin, from the payload's start; one more entry
    /// for the payload's end.
    pub starts: Vec<u64>,
    /// Decoders built by earlier calls' workers, for the next ones: a frame decoded a window at
    /// a time would otherwise rebuild its tables at every window (2.4% of a Q6_K restore).
    spare: std::sync::Mutex<Vec<(Level, Built)>>,
}

/// One worker's decoders, by table index.
type Built = Vec<(u8, Box<dyn ChunkDecoder>)>;

impl Parsed {
    /// Reads and validates the frame at `at` in `src`, which has `len` bytes for it (the frame
    /// must fill them exactly: [TRUNCATED] for fewer, [TRAILING_DATA] for more). Only the
    /// header, model and chunk table are read.
    pub fn read(src: &Source, at: u64, len: u64) -> Result<Parsed> {
        let head = src.read(at, len.min(HEADER_LEN as u64) as usize)?;
        let info = read_info(&head)?;
        let meta_len = meta_len(&info);
        if len < meta_len {
            return Err(Error::Truncated);
        }
        let meta = src.read(at, meta_len as usize)?;
        Parsed::from_meta(info, &meta, Some(len))
    }

    /// Validates a frame whose first `meta_len(&info)` bytes are `meta`, checking its size
    /// against `len` when the frame's extent is known (a stream's is not).
    pub fn from_meta(info: FrameInfo, meta: &[u8], len: Option<u64>) -> Result<Parsed> {
        let codec = info.method.codec_for(info.kind);
        let model_end = HEADER_LEN + info.model_size as usize;
        let table_end = model_end + CHUNK_ENTRY_LEN * info.chunk_count as usize;
        if xxh3_64(&meta[HEADER_LEN..table_end]) != le_u64(meta, table_end) {
            return Err(Error::CorruptHeader);
        }
        let mut entries = Vec::with_capacity(info.chunk_count as usize);
        let mut starts = Vec::with_capacity(info.chunk_count as usize + 1);
        let mut sum = 0u64;
        for (i, e) in meta[model_end..table_end].chunks_exact(CHUNK_ENTRY_LEN).enumerate() {
            let stored_size = le_u32(e, 0);
            let coded = match e[4] {
                CHUNK_RAW => false,
                CHUNK_CODED if info.method != Method::Stored => true,
                _ => return Err(Error::CorruptHeader),
            };
            let orig = chunk_len(&info, i);
            // A coded chunk cannot be smaller than its raw parts: this bounds what a frame can
            // make a decoder allocate by a small multiple of the frame's own size.
            let too_small = coded
                && ((stored_size as u64) < codec.map_or(orig, |c| c.min_coded_len(orig))
                    || orig > MAX_EXPANSION * stored_size as u64);
            if e[6..8] != [0, 0] || (!coded && (stored_size as u64 != orig || e[5] != 0)) || too_small {
                return Err(Error::CorruptHeader);
            }
            starts.push(sum);
            sum += stored_size as u64;
            entries.push(ChunkEntry { stored_size, coded, model: e[5], checksum: le_u64(e, 8) });
        }
        starts.push(sum);
        if sum != info.payload_size {
            return Err(Error::CorruptHeader);
        }
        match len {
            Some(len) if len < info.frame_size => return Err(Error::Truncated),
            Some(len) if len > info.frame_size => return Err(Error::TrailingData),
            _ => {}
        }
        let model = codec.map(|c| c.read_model(info.kind, info.flags, &meta[HEADER_LEN..model_end])).transpose()?;
        let tables = model.as_ref().map_or(0, |m| m.tables());
        if entries.iter().any(|e| e.coded && e.model as usize >= tables) {
            return Err(Error::CorruptHeader);
        }
        Ok(Parsed {
            meta_len: table_end as u64 + CHECK_LEN as u64,
            info,
            model,
            entries,
            starts,
            spare: Default::default(),
        })
    }

    /// Checks that original bytes `[offset, offset + n)` are whole chunks (the end may be the
    /// frame's end) [INVALID_ARGUMENT]; returns the first chunk's index.
    pub fn chunk_range(&self, offset: u64, n: usize) -> Result<usize> {
        let cs = self.info.chunk_size as u64;
        let end = offset.checked_add(n as u64).ok_or(Error::InvalidArgument)?;
        if !offset.is_multiple_of(cs)
            || end > self.info.original_size
            || (end % cs != 0 && end != self.info.original_size)
        {
            return Err(Error::InvalidArgument);
        }
        Ok((offset / cs) as usize)
    }

    /// Stored bytes of chunks `[first, last)`.
    pub fn stored_len(&self, first: usize, last: usize) -> u64 {
        self.starts[last] - self.starts[first]
    }
}

/// Bytes from a frame's start to its payload.
pub(crate) fn meta_len(info: &FrameInfo) -> u64 {
    (HEADER_LEN + info.model_size as usize + CHECK_LEN) as u64 + CHUNK_ENTRY_LEN as u64 * info.chunk_count as u64
}

fn chunk_len(info: &FrameInfo, i: usize) -> u64 {
    let start = i as u64 * info.chunk_size as u64;
    (info.original_size - start).min(info.chunk_size as u64)
}

/// Decompresses one whole frame into `dst`, whose length must equal the original size.
/// Errors found while validating the frame leave `dst` untouched; an error found while decoding
/// zeroes it, so no partly decoded data can be mistaken for a result.
pub fn decompress_into(src: &[u8], dst: &mut [u8], opts: &Options) -> Result<()> {
    let source = Source::Slice(src);
    let p = Parsed::read(&source, 0, src.len() as u64)?;
    if (dst.len() as u64) < p.info.original_size {
        return Err(Error::DstTooSmall);
    }
    if dst.len() as u64 > p.info.original_size {
        return Err(Error::DstSizeMismatch);
    }
    let r = decode_chunks(&source, p.meta_len, &p, 0, dst, opts, cpu::detect());
    if r.is_err() {
        dst.fill(0);
    }
    r
}

/// Decompresses one whole frame into a new vector.
pub fn decompress(src: &[u8], opts: &Options) -> Result<Vec<u8>> {
    decompress_at_level(src, opts, cpu::detect())
}

/// `decompress` with kernels up to `level` (tests and fuzz targets compare every level the CPU
/// has with the scalar path).
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub fn decompress_at_level(src: &[u8], opts: &Options, level: Level) -> Result<Vec<u8>> {
    let source = Source::Slice(src);
    // Validate the whole frame before allocating what its header claims.
    let p = Parsed::read(&source, 0, src.len() as u64)?;
    let mut out = crate::memory::alloc_zeroed(p.info.original_size)?;
    decode_chunks(&source, p.meta_len, &p, 0, &mut out, opts, level)?;
    Ok(out)
}

/// The source a reader reads from: its own (a slice it was given) or one it shares (an archive's).
enum Src<'a> {
    Own(Source<'a>),
    Shared(&'a Source<'a>),
}

/// A validated frame from which any run of whole chunks can be decoded: what lets a reader
/// restore a large tensor a window at a time, with memory bounded by the window. Only the
/// header, model and chunk table are held; chunks are read as they are decoded.
pub struct FrameReader<'a> {
    src: Src<'a>,
    /// Where the frame starts in its source.
    at: u64,
    p: Parsed,
}

impl<'a> FrameReader<'a> {
    /// Parses and validates the whole frame `src` (header, model, chunk table, sizes).
    pub fn new(src: &'a [u8]) -> Result<FrameReader<'a>> {
        let s = Source::Slice(src);
        let p = Parsed::read(&s, 0, src.len() as u64)?;
        Ok(FrameReader { src: Src::Own(s), at: 0, p })
    }

    /// The frame that fills `[at, at + len)` of `src`.
    pub(crate) fn at(src: &'a Source<'a>, at: u64, len: u64) -> Result<FrameReader<'a>> {
        Ok(FrameReader { p: Parsed::read(src, at, len)?, src: Src::Shared(src), at })
    }

    fn source(&self) -> &Source<'a> {
        match &self.src {
            Src::Own(s) => s,
            Src::Shared(s) => s,
        }
    }

    pub fn info(&self) -> &FrameInfo {
        &self.p.info
    }

    /// Decodes the original bytes `[offset, offset + dst.len())` into `dst`. `offset` must be a
    /// multiple of the chunk size, and the end a multiple of it or the original size
    /// [INVALID_ARGUMENT]. On a decoding error `dst` is zero-filled.
    pub fn decode_range(&self, offset: u64, dst: &mut [u8], opts: &Options) -> Result<()> {
        let first = self.p.chunk_range(offset, dst.len())?;
        let at = self.at + self.p.meta_len + self.p.starts[first];
        let r = decode_chunks(self.source(), at, &self.p, first, dst, opts, cpu::detect());
        if r.is_err() {
            dst.fill(0);
        }
        r
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
        let at = self.at + self.p.meta_len + self.p.starts[i];
        let src = match self.source().read(at, e.stored_size as usize) {
            Ok(s) => s,
            Err(err) => return Some(Err(err)),
        };
        let mut out = vec![0u8; chunk_len(&self.p.info, i) as usize];
        let start = i as u64 * self.p.info.chunk_size as u64;
        Some(model.decoder(e.model, level).decode(start, &src, &mut out).map(|()| out))
    }
}

/// One chunk to decode: where its output goes, where its stored bytes are in the source, its
/// table entry, and its offset in the frame's original bytes.
type Job<'d, 'p> = (&'d mut [u8], u64, &'p ChunkEntry, u64);

/// What a worker thread keeps between chunks: its decoders, and buffers for the stored bytes of
/// a pair of chunks when they come from a file.
struct Worker<'m> {
    decoders: Decoders<'m>,
    bufs: [Vec<u8>; 2],
    spare: &'m std::sync::Mutex<Vec<(Level, Built)>>,
}

impl Drop for Worker<'_> {
    /// Hands the decoders to the frame's next workers.
    fn drop(&mut self) {
        if let Ok(mut spare) = self.spare.lock() {
            spare.push((self.decoders.level, std::mem::take(&mut self.decoders.built)));
        }
    }
}

/// Decodes chunks `first..` of frame `p` into `dst` (which starts at chunk `first`'s original
/// bytes), with kernels up to `level`; chunk `first`'s stored bytes are at `at` in `src`, the
/// others follow.
pub(crate) fn decode_chunks(
    src: &Source,
    at: u64,
    p: &Parsed,
    first: usize,
    dst: &mut [u8],
    opts: &Options,
    level: Level,
) -> Result<()> {
    let mut jobs: Vec<Job> = Vec::with_capacity(p.entries.len() - first);
    let mut pos = at;
    let cs = p.info.chunk_size as u64;
    for (k, (out, e)) in dst.chunks_mut(cs as usize).zip(&p.entries[first..]).enumerate() {
        jobs.push((out, pos, e, (first + k) as u64 * cs));
        pos += e.stored_size as u64;
    }
    let Some(model) = p.model.as_deref() else {
        // A stored frame has only raw chunks (`Parsed` checked): read them straight into place.
        return parallel::for_each_mut(&mut jobs, opts.threads, |_, (out, at, e, _)| {
            copy_raw(src, *at, out)?;
            check_chunk(out, e, opts)
        });
    };
    let worker = || {
        let spare = p.spare.lock().ok().and_then(|mut v| v.pop());
        let built = spare.filter(|(l, _)| *l == level).map(|(_, b)| b).unwrap_or_default();
        Worker { decoders: Decoders { model, level, built }, bufs: Default::default(), spare: &p.spare }
    };
    // Chunks go in pairs when the codec interleaves two, and there are enough pairs to keep
    // every thread busy (a small tensor's few chunks go one per thread instead).
    if !model.pairs() || jobs.len() < 2 * parallel::effective_threads(opts.threads, jobs.len()) {
        return parallel::for_each_mut_with(&mut jobs, opts.threads, worker, |w, _, (out, at, e, start)| {
            decode_one(w, src, *at, out, e, *start)?;
            check_chunk(out, e, opts)
        });
    }
    // Chunks go in pairs, which the decoder interleaves (see `bf16::decode_chunk_pair`,
    // `q4k::decode_chunk_pair`).
    let mut pairs: Vec<(Job, Option<Job>)> = Vec::with_capacity(jobs.len().div_ceil(2));
    let mut it = jobs.into_iter();
    while let Some(a) = it.next() {
        pairs.push((a, it.next()));
    }
    parallel::for_each_mut_with(&mut pairs, opts.threads, worker, |w, _, (a, b)| {
        match b {
            Some(b) if a.2.coded && b.2.coded => {
                w.decoders.prepare(&[a.2.model, b.2.model]);
                let [ba, bb] = &mut w.bufs;
                let sa = src.read_with(a.1, a.2.stored_size as usize, ba)?;
                let sb = src.read_with(b.1, b.2.stored_size as usize, bb)?;
                let (da, db) = (w.decoders.get(a.2.model)?, w.decoders.get(b.2.model)?);
                da.decode_pair((a.3, sa, &mut *a.0), db, (b.3, sb, &mut *b.0))?;
            }
            _ => {
                for j in [Some(&mut *a), b.as_mut()].into_iter().flatten() {
                    decode_one(w, src, j.1, j.0, j.2, j.3)?;
                }
            }
        }
        for j in [Some(&*a), b.as_ref()].into_iter().flatten() {
            check_chunk(j.0, j.2, opts)?;
        }
        Ok(())
    })
}

/// One thread's decoders, by table index. A thread keeps the decoders of its last chunks:
/// neighbouring chunks usually share a table, and building one costs as much as decoding a few
/// thousand values.
struct Decoders<'m> {
    model: &'m dyn Model,
    level: Level,
    built: Built,
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
fn decode_one(w: &mut Worker, src: &Source, at: u64, out: &mut [u8], e: &ChunkEntry, start: u64) -> Result<()> {
    if !e.coded {
        return copy_raw(src, at, out);
    }
    w.decoders.prepare(&[e.model]);
    let stored = src.read_with(at, e.stored_size as usize, &mut w.bufs[0])?;
    w.decoders.get(e.model)?.decode(start, stored, out)
}

/// A raw chunk's bytes, read or copied into place.
fn copy_raw(src: &Source, at: u64, out: &mut [u8]) -> Result<()> {
    src.read_to(at, out)
}

/// Compares a decoded chunk with its checksum, and counts it as done.
fn check_chunk(out: &[u8], e: &ChunkEntry, opts: &Options) -> Result<()> {
    if xxh3_64(out) != e.checksum {
        return Err(Error::CorruptData);
    }
    opts.tick(out.len());
    Ok(())
}
