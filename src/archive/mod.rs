//! Archives: a whole model file (GGUF) compressed tensor by tensor, with an index that lets a
//! loader read any one tensor without touching the others, and restore the file byte for byte.
//!
//! An `Archive` is read-only after `open`: every method takes `&self`, so threads may read
//! different (or the same) tensors through one handle at once.

pub mod format;
mod write;

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::{Mmap, UncheckedAdvice};
use sha2::{Digest, Sha256};

pub use format::{Container, Entry, Extra, Header, Index};
pub use write::{
    compress_any, compress_file, compress_gguf, compress_gguf_file, compress_safetensors, kind_of_dtype, kind_of_ggml,
    Written,
};

use crate::error::{Error, IoError, Result};
use crate::frame::{self, Options};
use crate::memory::{alloc_zeroed, page_size};
use crate::zstd;

/// Whether `src` starts like an archive (as opposed to a single frame).
pub fn is_archive(src: &[u8]) -> bool {
    src.starts_with(&format::MAGIC)
}

enum Backing<'a> {
    Map(Mmap),
    Slice(&'a [u8]),
}

/// An open archive.
pub struct Archive<'a> {
    backing: Backing<'a>,
    header: Header,
    index: Index,
    /// The extra frame decoded, on first need: metadata, gaps, tail.
    extra: OnceLock<Result<Vec<u8>>>,
    /// The file it was opened from, if any: restoring over it is refused.
    path: Option<PathBuf>,
    /// Each name's first tensor, so a loader looking up every tensor pays O(1) each.
    by_name: HashMap<Vec<u8>, usize>,
}

impl Archive<'static> {
    /// Opens the archive at `path`, memory-mapped: pages are read as tensors are asked for.
    pub fn open_path(path: &Path) -> Result<Archive<'static>> {
        let f = File::open(path).map_err(|e| Error::io("open", Some(path), e))?;
        let len = f.metadata().map_err(|e| Error::io("read", Some(path), e))?.len();
        if len == 0 {
            return Err(Error::Truncated);
        }
        // SAFETY: a read-only private map. If another process truncates the file while it is
        // mapped, reads fault (SIGBUS) as they would for any mmap-based loader; changed bytes
        // are caught by the frame checksums.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| Error::io("map", Some(path), e))?;
        let mut a = Archive::new(Backing::Map(map))?;
        a.path = Some(path.to_path_buf());
        Ok(a)
    }
}

impl<'a> Archive<'a> {
    /// Reads an archive held in memory; the bytes are borrowed, not copied.
    pub fn from_bytes(src: &'a [u8]) -> Result<Archive<'a>> {
        Archive::new(Backing::Slice(src))
    }

    fn new(backing: Backing<'a>) -> Result<Archive<'a>> {
        let bytes: &[u8] = match &backing {
            Backing::Map(m) => m,
            Backing::Slice(s) => s,
        };
        let header = Header::read(bytes, bytes.len() as u64)?;
        let index = Index::read(&bytes[header.index_offset as usize..], &header)?;
        let mut by_name = HashMap::with_capacity(index.tensors.len());
        for (i, t) in index.tensors.iter().enumerate() {
            by_name.entry(t.name.clone()).or_insert(i);
        }
        Ok(Archive { backing, header, index, extra: OnceLock::new(), path: None, by_name })
    }

    fn bytes(&self) -> &[u8] {
        match &self.backing {
            Backing::Map(m) => m,
            Backing::Slice(s) => s,
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn container(&self) -> Container {
        self.header.container
    }

    /// Bytes of the restored file.
    pub fn original_size(&self) -> u64 {
        self.header.original_size
    }

    /// Bytes of the archive.
    pub fn archive_size(&self) -> u64 {
        self.header.archive_size()
    }

    /// Tensors in the container's order.
    pub fn tensors(&self) -> &[Entry] {
        &self.index.tensors
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Index of the first tensor named `name`.
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The frame of tensor `i`.
    fn frame(&self, t: &Entry) -> &[u8] {
        &self.bytes()[t.arc_offset as usize..(t.arc_offset + t.arc_size) as usize]
    }

    /// Decodes tensor `i` into `dst`, whose length must equal its original size. Only that
    /// tensor's frame is read; its chunks decode on `opts.threads` threads and are checked
    /// against their checksums. On a decoding error `dst` is zero-filled.
    pub fn read_tensor(&self, i: usize, dst: &mut [u8], opts: &Options) -> Result<()> {
        let t = self.index.tensors.get(i).ok_or(Error::InvalidArgument)?;
        if (dst.len() as u64) < t.orig_size {
            return Err(Error::DstTooSmall);
        }
        if dst.len() as u64 > t.orig_size {
            return Err(Error::DstSizeMismatch);
        }
        let fr = self.frame_reader(t)?;
        // A window of whole chunks at a time, handing each window's compressed pages back to the
        // kernel once decoded: a loader's memory then holds its tensors and a window of the
        // archive, even while it reads a tensor of hundreds of megabytes.
        let cs = fr.info().chunk_size as u64;
        let window = (READ_WINDOW / cs).max(1) * cs;
        let mut off = 0;
        while off < t.orig_size {
            let end = (off + window).min(t.orig_size);
            if let Err(e) = fr.decode_range(off, &mut dst[off as usize..end as usize], opts) {
                dst.fill(0);
                return Err(frame_fault(e));
            }
            let span = fr.stored_span(off, end);
            self.release(t.arc_offset + span.start, span.end - span.start);
            off = end;
        }
        self.release(t.arc_offset, t.arc_size);
        Ok(())
    }

    /// Tensor `i` decoded into a new vector.
    pub fn tensor_vec(&self, i: usize, opts: &Options) -> Result<Vec<u8>> {
        let t = self.index.tensors.get(i).ok_or(Error::InvalidArgument)?;
        // The frame's own header must agree with the index before the size is trusted.
        self.frame_reader(t)?;
        let mut v = alloc_zeroed(t.orig_size)?;
        self.read_tensor(i, &mut v, opts)?;
        Ok(v)
    }

    /// Tells the kernel that mapped archive pages just decoded are not needed again, so a loader's
    /// memory holds its tensors, not also the compressed file. The pages stay in the page cache;
    /// only this process's mapping of them is dropped. Partial pages at the ends are kept.
    fn release(&self, offset: u64, len: u64) {
        if let Backing::Map(m) = &self.backing {
            let page = page_size();
            let start = (offset as usize).div_ceil(page) * page;
            let end = (offset + len) as usize / page * page;
            if end > start {
                // SAFETY: the map is read-only and private, so dropping its pages loses nothing: a
                // later access (by another thread reading a neighbouring tensor) faults them back in
                // from the file.
                let _ = unsafe { m.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start) };
            }
        }
    }

    fn extra(&self) -> Result<&[u8]> {
        let r = self.extra.get_or_init(|| {
            let e = &self.index.extra;
            let z = &self.bytes()[e.offset as usize..(e.offset + e.size) as usize];
            let mut v = alloc_zeroed(e.raw_size)?;
            zstd::decompress_into(z, &mut v).map_err(|_| Error::CorruptData)?;
            if <[u8; 32]>::from(Sha256::digest(&v)) != e.sha256 {
                return Err(Error::CorruptData);
            }
            Ok(v)
        });
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(e.clone()),
        }
    }

    /// The container's metadata: every byte before its data section (for GGUF: header, key/values,
    /// tensor infos and padding), exactly as in the original file.
    pub fn metadata(&self) -> Result<&[u8]> {
        let n = self.index.extra.metadata_size as usize;
        Ok(&self.extra()?[..n])
    }

    /// Writes the original file to `out`. Tensors are decoded a window (about 16 MiB of whole
    /// chunks) at a time while a second thread writes the previous window, so memory use is a
    /// few windows plus the metadata, whatever the file's size.
    pub fn restore_to<W: Write + Send>(&self, out: &mut W, opts: &Options) -> Result<()> {
        let extra = self.extra()?;
        // Pieces of output in order: a run of the extra bytes, or a decoded window.
        enum Piece<'x> {
            Extra(&'x [u8]),
            Window(Vec<u8>, usize),
        }
        const BUFFERS: usize = 3;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Piece>(BUFFERS);
        let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::scope(|s| {
            let writer = s.spawn(move || -> Result<()> {
                for piece in rx {
                    match piece {
                        Piece::Extra(b) => out.write_all(b).map_err(write_error)?,
                        Piece::Window(buf, n) => {
                            out.write_all(&buf[..n]).map_err(write_error)?;
                            let _ = back_tx.send(buf);
                        }
                    }
                }
                out.flush().map_err(write_error)
            });
            let produced = (|| -> Result<()> {
                // A send fails only when the writer has stopped on an error, which its join
                // reports (so the error made here is never the one returned).
                let stopped = || Error::Io(IoError::UNKNOWN);
                let send = |p| tx.send(p).map_err(|_| stopped());
                let meta = self.index.extra.metadata_size;
                send(Piece::Extra(&extra[..meta as usize]))?;
                opts.tick(meta as usize);
                let (mut at, mut ex) = (meta, meta as usize);
                let mut made = 0;
                for i in self.index.in_file_order() {
                    let t = &self.index.tensors[i];
                    let gap = (t.orig_offset - at) as usize;
                    send(Piece::Extra(&extra[ex..ex + gap]))?;
                    ex += gap;
                    let fr = self.frame_reader(t)?;
                    let cs = fr.info().chunk_size as u64;
                    let window = (RESTORE_WINDOW / cs).max(1) * cs;
                    let mut off = 0;
                    while off < t.orig_size {
                        let n = window.min(t.orig_size - off) as usize;
                        let mut buf = if made < BUFFERS {
                            made += 1;
                            Vec::new()
                        } else {
                            back_rx.recv().map_err(|_| stopped())?
                        };
                        if buf.len() < n {
                            buf = alloc_zeroed(n as u64)?;
                        }
                        fr.decode_range(off, &mut buf[..n], opts).map_err(frame_fault)?;
                        let span = fr.stored_span(off, off + n as u64);
                        self.release(t.arc_offset + span.start, span.end - span.start);
                        send(Piece::Window(buf, n))?;
                        off += n as u64;
                    }
                    self.release(t.arc_offset, t.arc_size);
                    at = t.orig_offset + t.orig_size;
                }
                send(Piece::Extra(&extra[ex..]))
            })();
            drop(tx);
            let written = writer.join().map_err(|_| Error::Panic)?;
            // The writer's error explains a producer that stopped because sending failed.
            written.and(produced)
        })
    }

    /// Restores the original file to `path` atomically (see `atomic::write_file`). Refuses
    /// [INVALID_ARGUMENT] to write over the archive it reads.
    pub fn restore_file(&self, path: &Path, opts: &Options) -> Result<()> {
        if self.path.as_deref().is_some_and(|p| crate::atomic::same_file(p, path)) {
            return Err(Error::InvalidArgument);
        }
        crate::atomic::write_file(path, |w| self.restore_to(w, opts))
    }

    /// Decodes every tensor and checks it, and the metadata, against the SHA-256 digests in the
    /// index (on top of the per-chunk checksums every read checks). Returns the first tensor that
    /// fails, with its error.
    pub fn verify(&self, opts: &Options) -> std::result::Result<(), (Option<usize>, Error)> {
        self.extra().map_err(|e| (None, e))?;
        // Every frame's own header must agree with the index before anything is decoded, so a
        // crafted index cannot make this allocate what the frames do not hold.
        let mut readers = Vec::with_capacity(self.index.tensors.len().min(1 << 12));
        for (i, t) in self.index.tensors.iter().enumerate() {
            readers.push(self.frame_reader(t).map_err(|e| (Some(i), e))?);
        }
        // Tensors decode a window at a time into one buffer, hashed as they go.
        let mut buf = Vec::new();
        for i in self.index.in_file_order() {
            let (t, fr) = (&self.index.tensors[i], &readers[i]);
            let cs = fr.info().chunk_size as u64;
            let window = (RESTORE_WINDOW / cs).max(1) * cs;
            let mut sha = Sha256::new();
            let mut off = 0;
            while off < t.orig_size {
                let n = window.min(t.orig_size - off) as usize;
                if buf.len() < n {
                    buf = alloc_zeroed(n as u64).map_err(|e| (Some(i), e))?;
                }
                fr.decode_range(off, &mut buf[..n], opts).map_err(|e| (Some(i), frame_fault(e)))?;
                let span = fr.stored_span(off, off + n as u64);
                self.release(t.arc_offset + span.start, span.end - span.start);
                sha.update(&buf[..n]);
                off += n as u64;
            }
            self.release(t.arc_offset, t.arc_size);
            if <[u8; 32]>::from(sha.finalize()) != t.sha256 {
                return Err((Some(i), Error::CorruptData));
            }
        }
        Ok(())
    }

    /// A reader for tensor `t`'s frame, checked against its index entry.
    fn frame_reader(&self, t: &Entry) -> Result<frame::FrameReader<'_>> {
        let fr = frame::FrameReader::new(self.frame(t)).map_err(frame_fault)?;
        let info = fr.info();
        if info.kind != t.kind || info.original_size != t.orig_size || info.frame_size != t.arc_size {
            return Err(Error::CorruptHeader);
        }
        Ok(fr)
    }
}

/// Bytes of a tensor decoded at a time by `read_tensor` (rounded to whole chunks): enough chunks
/// to keep many cores busy, few enough that the archive pages in flight stay small.
const READ_WINDOW: u64 = 32 << 20;

/// Bytes of output decoded at a time while restoring (rounded to whole chunks).
const RESTORE_WINDOW: u64 = 16 << 20;

/// A failed write to the caller's writer (whose name the caller adds, if it has one).
fn write_error(e: std::io::Error) -> Error {
    Error::io("write", None, e)
}

/// A frame inside an archive whose magic, version or length is wrong is a damaged archive, not
/// something else passed by mistake: such faults become CORRUPT_HEADER.
fn frame_fault(e: Error) -> Error {
    match e {
        Error::BadMagic | Error::UnsupportedVersion | Error::Truncated | Error::TrailingData => Error::CorruptHeader,
        e => e,
    }
}
