//! Frame streams: one or more frames back to back (docs/FORMAT.md, section 3.1), written from and
//! read into `Read`/`Write` streams in bounded memory. This is how a raw stream of unknown length
//! (a pipe) is compressed, and how any frame is decoded without holding its whole output.

use std::io::{Read, Write};

use super::reader::{decode_chunks, meta_len, Parsed};
use super::{check_magic, read_info, Options, HEADER_LEN, MAGIC};
use crate::codec::Kind;
use crate::cpu;
use crate::error::{Error, Result};
use crate::memory::Window;
use crate::source::Source;

/// Input bytes per frame when compressing a stream: large enough that a frame's tables cost
/// nothing (a few KiB against 64 MiB), small enough to hold in memory twice. A stream that ends
/// within the first segment becomes one frame, the same bytes `compress` writes.
pub const STREAM_SEGMENT: usize = 64 << 20;

/// Original bytes decoded at a time (rounded to whole chunks) when decoding a stream.
const DECODE_WINDOW: u64 = 2 << 20;

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
    // A segment's room at once (address space only until read into): growing by doubling
    // copied and faulted in the segment twice over.
    let mut buf = Vec::with_capacity(STREAM_SEGMENT);
    loop {
        buf.clear();
        let n = read_up_to(&mut input, &mut buf, STREAM_SEGMENT)?;
        if n == 0 && info.frames > 0 {
            return Ok(info);
        }
        // The frame's parts go out as they are, not assembled in a buffer of their own first.
        let e = super::encode(kind, &buf, opts)?;
        e.write_parts(|b| out.write_all(b).map_err(|e| Error::io("write", None, e)))?;
        info.original_size += n as u64;
        info.compressed_size += e.len() as u64;
        info.frames += 1;
        if n < STREAM_SEGMENT {
            return Ok(info);
        }
    }
}

/// Decodes a frame stream from `input` into `out`, a window of chunks at a time: memory is a
/// few windows of output and of input whatever the frames claim. Returns the bytes written.
/// Reading, decoding (on the worker pool) and writing overlap: a reader thread parses frames and
/// reads the next window while this thread decodes the current one and a writer thread writes
/// the previous one. Every frame is validated before its chunks are decoded, and every chunk
/// checked against its checksum before it is written; on an error, what was written before it is
/// valid output of the chunks before it, and the caller (writing to a file) removes it.
pub fn decompress_stream<R, W>(input: R, out: &mut W, opts: &Options) -> Result<u64>
where
    R: Read + Send,
    W: Write + Send + ?Sized,
{
    use std::sync::mpsc::{channel, sync_channel};
    let level = cpu::detect();
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<Result<Piece>>(2);
        let (stored_back, stored_free) = channel::<Window>();
        s.spawn(move || read_pieces(input, &tx, &stored_free));
        let (wtx, wrx) = sync_channel::<(Window, usize)>(2);
        let (out_back, out_free) = channel::<Window>();
        let writer = s.spawn(move || -> Result<()> {
            for (buf, n) in wrx {
                out.write_all(buf.bytes(n)).map_err(|e| Error::io("write", None, e))?;
                let _ = out_back.send(buf);
            }
            Ok(())
        });
        let decoded = (|| -> Result<u64> {
            let (mut total, mut frame, mut made) = (0u64, None, 0);
            for piece in rx {
                match piece? {
                    Piece::Frame(p) => frame = Some(p),
                    Piece::Window { first, last, stored, len } => {
                        let p: &Parsed = frame.as_ref().ok_or(Error::CorruptHeader)?;
                        let cs = p.info.chunk_size as u64;
                        let n = ((last as u64 * cs).min(p.info.original_size) - first as u64 * cs) as usize;
                        // Three output buffers circulate: one decoding, one queued, one writing.
                        let mut buf = if made < 3 {
                            made += 1;
                            Window::default()
                        } else {
                            // The writer hands buffers back; if it stopped on an error, its join
                            // below reports that error.
                            out_free.recv().map_err(|_| Error::Io(crate::IoError::UNKNOWN))?
                        };
                        decode_chunks(&Source::Slice(stored.bytes(len)), 0, p, first, buf.get(n)?, opts, level)?;
                        let _ = stored_back.send(stored);
                        wtx.send((buf, n)).map_err(|_| Error::Io(crate::IoError::UNKNOWN))?;
                        total += n as u64;
                    }
                }
            }
            Ok(total)
        })();
        drop(wtx);
        // A writer's error explains a decoder that stopped because the writer had gone.
        let written = writer.join().map_err(|_| Error::Panic)?;
        written.and(decoded)
    })
}

/// What the reader thread of `decompress_stream` sends: a frame's validated header, model and
/// chunk table, then its payload a window of chunks at a time.
enum Piece {
    Frame(Parsed),
    Window { first: usize, last: usize, stored: Window, len: usize },
}

/// The reader thread of `decompress_stream`: frames and windows in order until the input ends;
/// the first error is sent and ends it. It also stops when the decoder hangs up.
fn read_pieces<R: Read>(
    mut input: R,
    tx: &std::sync::mpsc::SyncSender<Result<Piece>>,
    free: &std::sync::mpsc::Receiver<Window>,
) {
    let r = (|| -> Result<()> {
        for index in 0u64.. {
            let mut head = Vec::with_capacity(HEADER_LEN);
            let n = read_up_to(&mut input, &mut head, HEADER_LEN)?;
            if n == 0 && index > 0 {
                return Ok(());
            }
            // An empty input, or one that ends inside a header, is [TRUNCATED] if what it holds
            // starts like a frame, [BAD_MAGIC] otherwise; after a frame, bytes that are not
            // another one are [TRAILING_DATA].
            match check_magic(&head, &MAGIC, HEADER_LEN) {
                Err(Error::BadMagic) if index > 0 => return Err(Error::TrailingData),
                r => r?,
            }
            let info = read_info(&head)?;
            // The model and chunk table, read as they arrive: a claim bigger than the input
            // costs only what the input holds.
            let rest = meta_len(&info) - HEADER_LEN as u64;
            let mut meta = head;
            if read_up_to(&mut input, &mut meta, rest.try_into().map_err(|_| Error::TooLarge)?)? < rest as usize {
                return Err(Error::Truncated);
            }
            let p = Parsed::from_meta(info, &meta, None)?;
            let (count, per_window) = (p.entries.len(), (DECODE_WINDOW / info.chunk_size as u64).max(1) as usize);
            let sizes: Vec<u64> =
                (0..count).step_by(per_window).map(|f| p.stored_len(f, (f + per_window).min(count))).collect();
            if tx.send(Ok(Piece::Frame(p))).is_err() {
                return Ok(());
            }
            for (w, size) in sizes.into_iter().enumerate() {
                let mut stored = free.try_recv().unwrap_or_default();
                let len = size as usize;
                read_window(&mut input, &mut stored, len)?;
                let first = w * per_window;
                let piece = Piece::Window { first, last: (first + per_window).min(count), stored, len };
                if tx.send(Ok(piece)).is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = r {
        let _ = tx.send(Err(e));
    }
}

/// Reads exactly `size` bytes into the first `size` bytes of `buf` (a recycled window buffer):
/// the buffer keeps its room between windows and grows only as bytes arrive, so its memory is
/// touched once, not zeroed at every window as `read_to_end` would (which cost 5% of a Q4_K
/// restore). An input that ends early is [TRUNCATED].
fn read_window<R: Read>(r: &mut R, buf: &mut Window, size: usize) -> Result<()> {
    // Room at most a 16 MiB step ahead of what has arrived: a window's claimed size alone
    // never allocates.
    const STEP: usize = 16 << 20;
    let mut have = 0;
    while have < size {
        let end = size.min(buf.room().max(have + STEP));
        match r.read(&mut buf.grow(end, have)?[have..end]) {
            Ok(0) => return Err(Error::Truncated),
            Ok(n) => have += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read", None, e)),
        }
    }
    Ok(())
}

/// Reads from `r` into `buf` until it holds `limit` more bytes or the input ends; returns how
/// many were read. The buffer grows as bytes arrive, never to a size only claimed.
fn read_up_to<R: Read>(r: &mut R, buf: &mut Vec<u8>, limit: usize) -> Result<usize> {
    let start = buf.len();
    r.take(limit as u64).read_to_end(buf).map_err(|e| Error::io("read", None, e))?;
    Ok(buf.len() - start)
}
