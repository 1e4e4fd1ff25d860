//! Frame streams: one or more frames back to back (docs/FORMAT.md, section 3.1), written from and
//! read into `Read`/`Write` streams in bounded memory. This is how a raw stream of unknown length
//! (a pipe) is compressed, and how any frame is decoded without holding its whole output.

use std::io::{Read, Write};

use super::reader::{decode_chunks, meta_len, Parsed};
use super::{check_magic, compress, read_info, Options, HEADER_LEN, MAGIC};
use crate::codec::Kind;
use crate::cpu;
use crate::error::{Error, Result};
use crate::source::Source;

/// Input bytes per frame when compressing a stream: large enough that a frame's tables cost
/// nothing (a few KiB against 64 MiB), small enough to hold in memory twice. A stream that ends
/// within the first segment becomes one frame, the same bytes `compress` writes.
pub const STREAM_SEGMENT: usize = 64 << 20;

/// Original bytes decoded at a time (rounded to whole chunks) when decoding a stream.
const DECODE_WINDOW: u64 = 16 << 20;

/// What `compress_stream` wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamInfo {
    /// Bytes read from the input.
    pub original_size: u64,
    /// Bytes written: the frames.
    pub compressed_size: u64,
    /// How many frames.
    pub frames: u64,
}

/// Compresses everything `input` yields, as a raw stream of `kind`, into `out`: one frame per
/// `STREAM_SEGMENT` bytes of input (always at least one, so an empty input gives an empty frame
/// that restores it). Memory is about two segments. An input whose length is not a whole number
/// of elements fails [BAD_LENGTH] after the frames before its last segment were written; a caller
/// writing to a file removes it on any error.
pub fn compress_stream<R: Read, W: Write + ?Sized>(
    kind: Kind,
    mut input: R,
    out: &mut W,
    opts: &Options,
) -> Result<StreamInfo> {
    let mut info = StreamInfo::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = read_up_to(&mut input, &mut buf, STREAM_SEGMENT)?;
        if n == 0 && info.frames > 0 {
            return Ok(info);
        }
        let frame = compress(kind, &buf, opts)?;
        out.write_all(&frame).map_err(|e| Error::io("write", None, e))?;
        info.original_size += n as u64;
        info.compressed_size += frame.len() as u64;
        info.frames += 1;
        if n < STREAM_SEGMENT {
            return Ok(info);
        }
    }
}

/// Decodes a frame stream from `input` into `out`, a window of chunks at a time: memory is a
/// window of output and of input whatever the frames claim. Returns the bytes written. Every
/// frame is validated before its chunks are decoded, and every chunk checked against its
/// checksum before it is written; on an error, what was written before it is valid output of
/// the frames before it, and the caller (writing to a file) removes it.
pub fn decompress_stream<R: Read, W: Write + ?Sized>(mut input: R, out: &mut W, opts: &Options) -> Result<u64> {
    let mut total = 0u64;
    let (mut stored, mut decoded) = (Vec::new(), Vec::new());
    let level = cpu::detect();
    for index in 0u64.. {
        let mut head = Vec::with_capacity(HEADER_LEN);
        let n = read_up_to(&mut input, &mut head, HEADER_LEN)?;
        if n == 0 && index > 0 {
            break;
        }
        // An empty input, or one that ends inside a header, is [TRUNCATED] if what it holds
        // starts like a frame, [BAD_MAGIC] otherwise; after a frame, bytes that are not another
        // one are [TRAILING_DATA].
        match check_magic(&head, &MAGIC, HEADER_LEN) {
            Err(Error::BadMagic) if index > 0 => return Err(Error::TrailingData),
            r => r?,
        }
        let info = read_info(&head)?;
        // The model and chunk table, read as they arrive: a claim bigger than the input costs
        // only what the input holds.
        let rest = meta_len(&info) - HEADER_LEN as u64;
        let mut meta = head;
        if read_up_to(&mut input, &mut meta, rest.try_into().map_err(|_| Error::TooLarge)?)? < rest as usize {
            return Err(Error::Truncated);
        }
        let p = Parsed::from_meta(info, &meta, None)?;
        let cs = info.chunk_size as u64;
        let per_window = (DECODE_WINDOW / cs).max(1) as usize;
        let mut first = 0;
        while first < p.entries.len() {
            let last = (first + per_window).min(p.entries.len());
            let n_stored = p.stored_len(first, last) as usize;
            stored.clear();
            if read_up_to(&mut input, &mut stored, n_stored)? < n_stored {
                return Err(Error::Truncated);
            }
            let n_out = ((last as u64 * cs).min(info.original_size) - first as u64 * cs) as usize;
            if decoded.len() < n_out {
                decoded = crate::memory::alloc_zeroed(n_out as u64)?;
            }
            decode_chunks(&Source::Slice(&stored), 0, &p, first, &mut decoded[..n_out], opts, level)?;
            out.write_all(&decoded[..n_out]).map_err(|e| Error::io("write", None, e))?;
            total += n_out as u64;
            first = last;
        }
    }
    Ok(total)
}

/// Reads from `r` into `buf` until it holds `limit` more bytes or the input ends; returns how
/// many were read. The buffer grows as bytes arrive, never to a size only claimed.
fn read_up_to<R: Read>(r: &mut R, buf: &mut Vec<u8>, limit: usize) -> Result<usize> {
    let start = buf.len();
    r.take(limit as u64).read_to_end(buf).map_err(|e| Error::io("read", None, e))?;
    Ok(buf.len() - start)
}
