//! The frame: the container for one compressed stream. Byte layout in `docs/FORMAT.md`. This
//! module writes frames; `reader` validates and decodes them.
//!
//! A frame is a fixed 48-byte header (with its own checksum, so the kind and size can be trusted
//! without reading further), the model, the chunk table, a checksum over model and table, and the
//! chunk payloads. Chunks decode independently given the model, which is what lets decoding use
//! every core and lets a reader seek.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::checksum::xxh3_64;

use crate::codec::{ChunkEncoder, Kind, Method, Plan};
use crate::error::{Error, Result};
use crate::parallel;

mod reader;
mod stream;

#[cfg(feature = "internals")]
pub use reader::decompress_at_level;
pub use reader::{decompress, decompress_into, FrameReader};
pub use stream::{compress_stream, decompress_stream, StreamInfo, STREAM_SEGMENT};

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

/// Frames below this size also try the generic path at zstd -19 (see `compress`): the size of
/// norms and biases. At 1 MiB it also tried small quantized matrices, which made a Qwen2.5-1.5B
/// archive take 13% longer to write for 1 KB.
const STRONG_FALLBACK_MAX: usize = 64 << 10;

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
    /// Compression only: the fast variant, whose frames decode faster for a fraction of a
    /// percent of ratio (block codecs and Q4_K build their tables at a coarser scale; see
    /// docs/FORMAT.md). Other kinds are unaffected.
    pub fast: bool,
    /// Compression only: values per row when the input is a matrix (0: unknown). bf16 and f16
    /// frames then may model each value in the context of its row's and column's scale.
    pub row_len: u64,
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
    /// Options of the method (docs/FORMAT.md 2.3): bit 0, the sign in the float codecs' symbol.
    pub flags: u32,
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
    let flags = le_u32(h, 28);
    let payload_size = le_u64(h, 32);
    let consistent = method.valid_for(kind)
        && flags & !method.flags() == 0
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
        flags,
        payload_size,
        frame_size,
    })
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

    fn stored(&self) -> &[u8] {
        self.coded.as_ref().map_or(self.raw, |(c, _)| c)
    }

    fn entry(&self) -> TableEntry {
        TableEntry { stored_len: self.stored_len() as u32, table: self.coded.as_ref().map(|c| c.1), check: self.check }
    }
}

/// Compresses `src` as a frame of `kind`.
pub fn compress(kind: Kind, src: &[u8], opts: &Options) -> Result<Vec<u8>> {
    // A large frame is written a window of chunks at a time into its final buffer (see
    // `write_frame`): no buffer per chunk of fresh pages, no second copy of the whole frame.
    let mut opts = std::borrow::Cow::Borrowed(opts);
    if src.len() >= STRONG_FALLBACK_MAX {
        let mut c = std::io::Cursor::new(Vec::with_capacity(compress_bound(src.len()).unwrap_or(0)));
        let size = write_frame(kind, src, &opts, &mut c)?;
        let out = c.into_inner();
        if (size as usize) < frame_len(0, le_u32(&out, 20) as usize, src.len()) {
            return Ok(out);
        }
        // Coding did not pay: the stored frame, below (the chunks were counted already).
        opts.to_mut().progress = None;
    }
    let e = encode(kind, src, &opts)?;
    let mut out = Vec::with_capacity(e.len());
    e.write_parts(|b| {
        out.extend_from_slice(b);
        Ok(())
    })?;
    Ok(out)
}

/// Compresses `src` as a frame of `kind` straight into `w` (the bytes `compress` returns, without
/// assembling them in memory first: that copy, and the fresh pages it is made in, cost about 7%
/// of compressing 100 MB of bf16 to a file). Returns the frame's size.
pub fn compress_to<W: std::io::Write + ?Sized>(kind: Kind, src: &[u8], opts: &Options, w: &mut W) -> Result<u64> {
    let e = encode(kind, src, opts)?;
    e.write_parts(|b| w.write_all(b).map_err(|e| Error::io("write", None, e)))?;
    Ok(e.len() as u64)
}

/// Compresses `src` as a frame of `kind` into `w` at its position, a window of chunks at a time,
/// the chunk table written last by seeking back: no buffer of the frame's size, and the same
/// few chunk buffers for every window (`compress_to` codes every chunk into fresh memory first,
/// a page fault per 4 KiB of output: a tenth of compressing 50 MB of Q4_K to /dev/null).
///
/// Returns the frame's size when the bytes written are the ones `compress` returns: every case
/// but one, a large frame whose coded form comes out no smaller than storing it, which
/// `compress` stores instead. Then it returns None with `w` back where it started; what was
/// written after that position is not a frame, and the caller discards it (truncates its file)
/// and writes `compress_to` there.
pub fn compress_seekable<W: std::io::Write + std::io::Seek + ?Sized>(
    kind: Kind,
    src: &[u8],
    opts: &Options,
    w: &mut W,
) -> Result<Option<u64>> {
    let size = write_frame(kind, src, opts, w)?;
    if src.len() >= STRONG_FALLBACK_MAX {
        let (_, chunks) = chunks_of(kind, src, opts)?;
        if size >= frame_len(0, chunks.len(), src.len()) as u64 {
            let back = i64::try_from(size).map_err(|_| Error::TooLarge)?;
            w.seek(std::io::SeekFrom::Current(-back)).map_err(|e| Error::io("write", None, e))?;
            return Ok(None);
        }
    }
    Ok(Some(size))
}

/// A frame coded and not yet laid out: its header, model section and chunk table, then its
/// chunks' payloads in order.
pub(crate) struct Encoded<'a> {
    head: Vec<u8>,
    outs: Vec<ChunkOut<'a>>,
}

impl Encoded<'_> {
    /// The frame's size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.outs.iter().map(ChunkOut::stored_len).sum::<usize>()
    }

    /// Hands the frame's bytes to `put`, in order, a part at a time.
    pub(crate) fn write_parts(&self, mut put: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        put(&self.head)?;
        for o in &self.outs {
            put(o.coded.as_ref().map_or(o.raw, |(c, _)| c))?;
        }
        Ok(())
    }
}

/// The chunk size `opts` asks for (checked against `kind`) and `src` cut into chunks of it.
fn chunks_of<'a>(kind: Kind, src: &'a [u8], opts: &Options) -> Result<(u32, Vec<&'a [u8]>)> {
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
    u32::try_from(src.len().div_ceil(cs)).map_err(|_| Error::TooLarge)?;
    Ok((chunk_size, src.chunks(cs).collect()))
}

/// Codes `src` as a frame of `kind`: everything but laying the bytes out.
pub(crate) fn encode<'a>(kind: Kind, src: &'a [u8], opts: &Options) -> Result<Encoded<'a>> {
    let (chunk_size, chunks) = chunks_of(kind, src, opts)?;

    let coded = if src.is_empty() {
        None
    } else {
        let codec = kind.codec();
        let plan = Plan { threads: opts.threads, fast: opts.fast, cols: opts.row_len as usize };
        let enc = codec.plan(kind, &chunks, &plan)?;
        let outs = code_chunks(&chunks, opts, &*enc)?;
        let mut best = (enc.method().unwrap_or(codec.method()), enc.flags(), (enc.model(), outs));
        // Small frames also try the generic path at zstd's strongest level and keep it when it
        // is smaller: the codecs' order-0 models lose to it on some small tensors (norms, integer
        // tensors, smooth tables), and there it costs little time. Frames of the generic path
        // itself try it too: their own plan is zstd at a middle level (MiniLM's I64 position ids,
        // 4096 bytes: 558 bytes of zstd at level 6, 547 at level 19).
        // Small frames of bytes also try differences of 8-, 4- and 2-byte words (integer tensors).
        if src.len() < STRONG_FALLBACK_MAX {
            let mut plans = vec![crate::codec::grouped::strong_plan(kind)];
            plans.extend(crate::codec::grouped::delta_plans(kind, src.len()));
            for g in plans {
                // The chunks were counted once already: these tries do not tick the progress.
                let gouts = code_chunks(&chunks, &Options { progress: None, ..opts.clone() }, &*g)?;
                let size =
                    |m: &[u8], o: &[ChunkOut]| frame_len(m.len(), o.len(), o.iter().map(ChunkOut::stored_len).sum());
                if size(&g.model(), &gouts) < size(&best.2 .0, &best.2 .1) {
                    best = (Method::Grouped, g.flags(), (g.model(), gouts));
                }
            }
        }
        Some(best)
    };
    // The coded frame is used only when it is smaller than the stored one, which keeps every
    // frame within `compress_bound`.
    let stored = frame_len(0, chunks.len(), src.len());
    let (method, flags, model, outs) = match coded {
        Some((method, flags, (model, outs)))
            if frame_len(model.len(), outs.len(), outs.iter().map(ChunkOut::stored_len).sum()) < stored =>
        {
            (method, flags, model, outs)
        }
        _ => {
            let mut outs: Vec<ChunkOut> = chunks.iter().map(|c| ChunkOut { raw: c, coded: None, check: 0 }).collect();
            parallel::for_each_mut(&mut outs, opts.threads, |_, o| {
                o.check = xxh3_64(o.raw);
                Ok(())
            })?;
            (Method::Stored, 0, Vec::new(), outs)
        }
    };

    let entries: Vec<TableEntry> = outs.iter().map(ChunkOut::entry).collect();
    let head = frame_head(kind, method, flags, src.len() as u64, chunk_size, &model, &entries);
    Ok(Encoded { head, outs })
}

/// A chunk's row of the chunk table.
struct TableEntry {
    stored_len: u32,
    /// The model index of a coded chunk; None for a raw one.
    table: Option<u8>,
    check: u64,
}

/// A frame's header, model section, chunk table and its checksum: everything before the
/// payloads.
fn frame_head(
    kind: Kind,
    method: Method,
    flags: u32,
    original_size: u64,
    chunk_size: u32,
    model: &[u8],
    entries: &[TableEntry],
) -> Vec<u8> {
    let payload_size: u64 = entries.iter().map(|e| e.stored_len as u64).sum();
    let mut out = Vec::with_capacity(frame_len(model.len(), entries.len(), 0));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(kind.id() as u8);
    out.push(method as u8);
    out.extend_from_slice(&original_size.to_le_bytes());
    out.extend_from_slice(&chunk_size.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(model.len() as u32).to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&payload_size.to_le_bytes());
    let hc = xxh3_64(&out[..40]);
    out.extend_from_slice(&hc.to_le_bytes());
    let meta_start = out.len();
    out.extend_from_slice(model);
    for e in entries {
        out.extend_from_slice(&e.stored_len.to_le_bytes());
        match e.table {
            Some(m) => out.extend_from_slice(&[CHUNK_CODED, m, 0, 0]),
            None => out.extend_from_slice(&[CHUNK_RAW, 0, 0, 0]),
        }
        out.extend_from_slice(&e.check.to_le_bytes());
    }
    let mc = xxh3_64(&out[meta_start..]);
    out.extend_from_slice(&mc.to_le_bytes());
    out
}

fn frame_len(model: usize, chunks: usize, payload: usize) -> usize {
    HEADER_LEN + model + CHUNK_ENTRY_LEN * chunks + CHECK_LEN + payload
}

/// Codes every chunk with `enc` in parallel (computing its checksum too); a chunk whose coded
/// form is not smaller stays raw.
fn code_chunks<'a>(chunks: &[&'a [u8]], opts: &Options, enc: &dyn ChunkEncoder) -> Result<Vec<ChunkOut<'a>>> {
    code_chunks_from(chunks, 0, opts, enc, &mut Vec::new())
}

/// `code_chunks` for the chunks `first..` of a frame (`chunks[0]` is chunk `first`), coding into
/// buffers taken from `spare` where it has them (a buffer not kept goes back to it).
fn code_chunks_from<'a>(
    chunks: &[&'a [u8]],
    first: usize,
    opts: &Options,
    enc: &dyn ChunkEncoder,
    spare: &mut Vec<Vec<u8>>,
) -> Result<Vec<ChunkOut<'a>>> {
    let mut work: Vec<(ChunkOut, Vec<u8>)> =
        chunks.iter().map(|c| (ChunkOut { raw: c, coded: None, check: 0 }, spare.pop().unwrap_or_default())).collect();
    // A chunk's checksum, room for its size up front (a coded chunk larger than that is dropped
    // below, and growing from empty copied each chunk's output several times).
    let start = |(o, buf): &mut (ChunkOut, Vec<u8>)| {
        o.check = xxh3_64(o.raw);
        buf.clear();
        buf.reserve(o.raw.len());
    };
    // A chunk that would expand more than MAX_EXPANSION-fold stays raw (only near-constant data
    // in chunks of megabytes does), so a reader can refuse any larger claim.
    let keep = |i: usize, (o, buf): &mut (ChunkOut, Vec<u8>)| {
        if buf.len() < o.raw.len() && o.raw.len() as u64 <= MAX_EXPANSION * buf.len() as u64 {
            o.coded = Some((std::mem::take(buf), enc.table(first + i)));
        }
        opts.tick(o.raw.len());
    };
    // Chunks go in pairs to an encoder that codes two at once faster, when there are pairs
    // enough for every thread.
    let threads = parallel::effective_threads(opts.threads, work.len());
    #[cfg(test)]
    let pairs_off = tests::PAIRS_OFF.with(|p| p.get());
    #[cfg(not(test))]
    let pairs_off = false;
    if enc.pairs() && !pairs_off && work.len() >= 2 * threads {
        let mut pairs: Vec<&mut [(ChunkOut, Vec<u8>)]> = work.chunks_mut(2).collect();
        parallel::for_each_mut(&mut pairs, opts.threads, |k, pair| {
            let i = 2 * k;
            if let [a, b] = pair {
                start(a);
                start(b);
                enc.encode_pair(first + i, [a.0.raw, b.0.raw], [&mut a.1, &mut b.1])?;
                keep(i, a);
                keep(i + 1, b);
            } else {
                let a = &mut pair[0];
                start(a);
                enc.encode(first + i, a.0.raw, &mut a.1)?;
                keep(i, a);
            }
            Ok(())
        })?;
    } else {
        parallel::for_each_mut(&mut work, opts.threads, |i, w| {
            start(w);
            enc.encode(first + i, w.0.raw, &mut w.1)?;
            keep(i, w);
            Ok(())
        })?;
    }
    Ok(work
        .into_iter()
        .map(|(o, buf)| {
            if buf.capacity() > 0 {
                spare.push(buf);
            }
            o
        })
        .collect())
}

/// Chunks per thread coded at once by `write_frame`: enough to keep every core busy, few enough
/// that their buffers stay warm in the cache between coding and writing.
///
/// Why per thread: at the end of a window the threads wait for the last chunk, and then for the
/// window to be written. On two threads, windows of 32 chunks compressed Qwen2.5-Coder-1.5B's
/// archive in 3.79 s where windows of 16 took 4.09 (64: 3.86; 256: 3.82; medians of 6, fresh
/// outputs); on one thread, 64 instead of 16 measured 0-7% slower (Q6_K, 354 MB, to a file).
const WRITE_WINDOW: usize = 16;

/// Writes the frame of `src` (the bytes `compress` returns) to `w` at its position and returns
/// its size. A large frame is coded a window of chunks at a time, each window written before the
/// next is coded into the same buffers: no buffer of the frame's size, no fresh pages for every
/// chunk, and output that leaves the cache once. (Coding the next window while this one was
/// written, on a scoped thread with two buffer pools, measured no faster on two cores: the
/// writes are a small part of a window's time.) The chunk table, known only at the end, is
/// written over a placeholder by seeking back.
///
/// The one difference from `compress`: a large frame whose coded form comes out no smaller than
/// storing it (chunks that do not compress are stored raw anyway, so only its model makes the
/// difference) keeps its coded form, valid but a model's size over `compress_bound`.
pub(crate) fn write_frame<W: std::io::Write + std::io::Seek + ?Sized>(
    kind: Kind,
    src: &[u8],
    opts: &Options,
    w: &mut W,
) -> Result<u64> {
    let io = |e| Error::io("write", None, e);
    if src.len() < STRONG_FALLBACK_MAX {
        let e = encode(kind, src, opts)?;
        e.write_parts(|b| w.write_all(b).map_err(io))?;
        return Ok(e.len() as u64);
    }
    let (chunk_size, chunks) = chunks_of(kind, src, opts)?;
    let codec = kind.codec();
    let plan = Plan { threads: opts.threads, fast: opts.fast, cols: opts.row_len as usize };
    let enc = codec.plan(kind, &chunks, &plan)?;
    let (method, flags, model) = (enc.method().unwrap_or(codec.method()), enc.flags(), enc.model());
    let head_len = frame_len(model.len(), chunks.len(), 0);
    w.write_all(&vec![0u8; head_len]).map_err(io)?;
    let mut entries = Vec::with_capacity(chunks.len());
    let mut spare = Vec::new();
    let per = WRITE_WINDOW * parallel::effective_threads(opts.threads, chunks.len());
    for (k, window) in chunks.chunks(per).enumerate() {
        let outs = code_chunks_from(window, k * per, opts, &*enc, &mut spare)?;
        for o in outs {
            w.write_all(o.stored()).map_err(io)?;
            entries.push(o.entry());
            if let Some((buf, _)) = o.coded {
                spare.push(buf);
            }
        }
    }
    // Relative seeks, from what was written: a device such as /dev/null reports position 0
    // whatever was written to it.
    let payload: u64 = entries.iter().map(|e| e.stored_len as u64).sum();
    let size = head_len as u64 + payload;
    let back = i64::try_from(size).map_err(|_| Error::TooLarge)?;
    w.seek(std::io::SeekFrom::Current(-back)).map_err(io)?;
    w.write_all(&frame_head(kind, method, flags, src.len() as u64, chunk_size, &model, &entries)).map_err(io)?;
    w.seek(std::io::SeekFrom::Current(payload as i64)).map_err(io)?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Chunks are coded one at a time even by encoders that take pairs (set by a test on
        /// the thread that codes a frame).
        pub(super) static PAIRS_OFF: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Real streams of every kind whose encoder codes chunks in pairs, with their row lengths:
    /// Q4_K and Q6_K tensors of the Qwen2.5-Coder fixture, MiniLM's FFN matrix in the other
    /// block types, and the MiniLM fixture layer's matrices of 384 columns as bf16 and f16, as
    /// plain streams (a table per run of chunks) and as matrices (method 6).
    fn pair_streams() -> Vec<(Kind, Vec<u8>, u64)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
        let file = std::fs::read(format!("{dir}qwen25coder15b-q4km-mini.gguf")).unwrap();
        let g = crate::gguf::read(&file).unwrap();
        let mut out = Vec::new();
        for (ggml, kind) in [(12, Kind::Q4K), (14, Kind::Q6K)] {
            let mut s = Vec::new();
            for t in g.tensors.iter().filter(|t| t.ggml_type == ggml) {
                s.extend_from_slice(&file[t.offset as usize..][..t.len.unwrap() as usize]);
            }
            out.push((kind, s, 0));
        }
        for (ext, kind) in [
            ("q5_k", Kind::Q5K),
            ("q3_k", Kind::Q3K),
            ("q2_k", Kind::Q2K),
            ("iq4_xs", Kind::IQ4XS),
            ("iq4_nl", Kind::IQ4NL),
        ] {
            out.push((kind, std::fs::read(format!("{dir}minilm-l6-ffn-down0.{ext}")).unwrap(), 0));
        }
        let file = std::fs::read(format!("{dir}minilm-l6-layer0-bf16.safetensors")).unwrap();
        let (mut bf16, mut f16) = (Vec::new(), Vec::new());
        for t in
            crate::safetensors::read(&file).unwrap().tensors.iter().filter(|t| t.shape.len() == 2 && t.shape[1] == 384)
        {
            for v in file[t.offset as usize..][..t.len as usize].chunks_exact(2) {
                bf16.extend_from_slice(v);
                let x = half::bf16::from_le_bytes([v[0], v[1]]).to_f32();
                f16.extend_from_slice(&half::f16::from_f32(x).to_le_bytes());
            }
        }
        for (kind, data) in [(Kind::Bf16, bf16), (Kind::F16, f16)] {
            out.push((kind, data.clone(), 0));
            out.push((kind, data, 384));
        }
        out
    }

    /// Chunks coded two at a time (`ChunkEncoder::encode_pair`) give the frame that coding them
    /// one at a time gives: every kind that pairs, at 1 and 2 threads, chunks of the smallest
    /// size (an odd number of them, the last one shorter) and the default chunks; default and
    /// fast tables. The frames decode to their input.
    #[test]
    fn chunks_coded_in_pairs_give_the_same_frame() {
        for (kind, mut data, row_len) in pair_streams() {
            let es = kind.element_size();
            // Chunks of the smallest size a frame takes: 9 or more of them, the last one shorter.
            let small = MIN_CHUNK_SIZE.div_ceil(es as u32) * es as u32;
            let one = data.clone();
            while data.len() < 9 * small as usize {
                data.extend_from_slice(&one);
            }
            // The last chunk shorter (by a whole row for a matrix).
            let cut = if row_len > 0 { 2 * row_len as usize } else { es };
            data.truncate((data.len() / cut - 1) * cut);
            let sizes = [small, 0];
            for chunk_size in sizes {
                for threads in [1, 2] {
                    for fast in [false, true] {
                        let opts = Options { threads, chunk_size, fast, row_len, ..Default::default() };
                        let paired = compress(kind, &data, &opts).unwrap();
                        PAIRS_OFF.with(|p| p.set(true));
                        let single = compress(kind, &data, &opts);
                        PAIRS_OFF.with(|p| p.set(false));
                        assert!(
                            paired == single.unwrap(),
                            "{kind:?}, rows of {row_len}, chunks of {chunk_size}, {threads} threads, fast {fast}"
                        );
                        assert_eq!(decompress(&paired, &opts).unwrap(), data, "{kind:?}");
                    }
                }
            }
        }
    }
}
