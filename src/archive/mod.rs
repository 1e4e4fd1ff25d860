//! Archives: a whole model file (GGUF) compressed tensor by tensor, with an index that lets a
//! loader read any one tensor without touching the others, and restore the file byte for byte.
//!
//! An `Archive` is read-only after `open`: every method takes `&self`, so threads may read
//! different (or the same) tensors through one handle at once. An archive opened from a path is
//! read with `pread`, never mapped (see `source`): a file truncated or replaced under an open
//! archive makes reads fail with an error, never with a signal.

pub mod format;
mod metadata;

/// An extra frame of method 2 (the GGUF split, numeric arrays as columns) or, without
/// `columns`, 1 for the extra bytes `raw`, or None where they do not split (`metadata::encode`).
#[cfg(feature = "internals")]
pub fn split_extra(raw: &[u8], columns: bool) -> Result<Option<Vec<u8>>> {
    metadata::encode(raw, columns)
}
mod range;
mod write;

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

pub use format::{Container, Entry, Extra, Header, Index};
pub use write::{
    compress_any, compress_file, compress_gguf, compress_gguf_file, compress_open_file, compress_safetensors,
    kind_of_dtype, kind_of_ggml, Written,
};

use crate::error::{Error, IoError, Result};
use crate::frame::{self, Options};
use crate::memory::alloc_zeroed;
use crate::source::Source;
use crate::zstd;

/// Whether `src` starts like an archive (as opposed to a single frame).
pub fn is_archive(src: &[u8]) -> bool {
    src.starts_with(&format::MAGIC)
}

/// An open archive.
pub struct Archive<'a> {
    src: Source<'a>,
    header: Header,
    index: Index,
    /// The extra frame decoded, on first need: metadata, gaps, tail.
    extra: OnceLock<Result<Vec<u8>>>,
    /// The file it was opened from, if any: restoring over it is refused.
    path: Option<PathBuf>,
    /// Each name's first tensor, so a loader looking up every tensor pays O(1) each.
    by_name: HashMap<Vec<u8>, usize>,
    /// The tensors in file order, for `pread`; made on its first call.
    layout: OnceLock<Vec<range::Placed>>,
    /// Original bytes decoded so far (see `decoded_bytes`).
    decoded: AtomicU64,
}

impl Archive<'static> {
    /// Opens the archive at `path`: reads and checks its header and index; tensors are read
    /// (with `pread`) as they are asked for.
    pub fn open_path(path: &Path) -> Result<Archive<'static>> {
        let a = Archive::open_file(File::open(path).map_err(|e| Error::io("open", Some(path), e))?, path)?;
        Ok(Archive { path: Some(path.to_path_buf()), ..a })
    }

    /// The archive in the open regular file `file` (`name` names it in errors), read as
    /// `open_path` reads one.
    pub fn open_file(file: File, name: &Path) -> Result<Archive<'static>> {
        let src = Source::from_file(file, name)?;
        if src.is_empty() {
            return Err(Error::Truncated);
        }
        Archive::new(src)
    }
}

impl<'a> Archive<'a> {
    /// Reads an archive held in memory; the bytes are borrowed, not copied.
    pub fn from_bytes(src: &'a [u8]) -> Result<Archive<'a>> {
        Archive::new(Source::Slice(src))
    }

    fn new(src: Source<'a>) -> Result<Archive<'a>> {
        let head = src.read(0, src.len().min(format::HEADER_LEN as u64) as usize)?;
        let header = Header::read(&head, src.len())?;
        let index = Index::read(&src.read(header.index_offset, header.index_size as usize)?, &header)?;
        let mut by_name = HashMap::with_capacity(index.tensors.len());
        for (i, t) in index.tensors.iter().enumerate() {
            by_name.entry(t.name.clone()).or_insert(i);
        }
        Ok(Archive {
            src,
            header,
            index,
            extra: OnceLock::new(),
            path: None,
            by_name,
            layout: OnceLock::new(),
            decoded: AtomicU64::new(0),
        })
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
        // Each worker reads a chunk's stored bytes just before decoding it: a loader's memory
        // holds its tensors and a chunk or two per thread of the archive, however large the tensor.
        let fr = self.frame_reader(t)?;
        self.decode(&fr, 0, dst, opts)
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

    fn extra(&self) -> Result<&[u8]> {
        let r = self.extra.get_or_init(|| {
            let e = &self.index.extra;
            let z = self.src.read(e.offset, e.size as usize)?;
            let mut v = alloc_zeroed(e.raw_size)?;
            match e.method {
                format::EXTRA_GGUF_SPLIT => metadata::decode(&z, false, &mut v)?,
                format::EXTRA_GGUF_COLUMNS => metadata::decode(&z, true, &mut v)?,
                _ => zstd::decompress_into(&z, &mut v).map_err(|_| Error::CorruptData)?,
            }
            if crate::digest::sha256(&v) != e.sha256 {
                return Err(Error::CorruptData);
            }
            Ok(v)
        });
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(e.clone()),
        }
    }

    /// The extra bytes (metadata, gaps, tail; FORMAT.md 8.3), decoded and checked.
    #[cfg(feature = "internals")]
    pub fn extra_bytes(&self) -> Result<&[u8]> {
        self.extra()
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
                        self.decode(&fr, off, &mut buf[..n], opts)?;
                        send(Piece::Window(buf, n))?;
                        off += n as u64;
                    }
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
                self.decode(fr, off, &mut buf[..n], opts).map_err(|e| (Some(i), e))?;
                crate::digest::update(&mut sha, &buf[..n]);
                off += n as u64;
            }
            if <[u8; 32]>::from(sha.finalize()) != t.sha256 {
                return Err((Some(i), Error::CorruptData));
            }
        }
        Ok(())
    }

    /// A reader for tensor `t`'s frame, checked against its index entry.
    fn frame_reader(&self, t: &Entry) -> Result<frame::FrameReader<'_>> {
        let fr = frame::FrameReader::at(&self.src, t.arc_offset, t.arc_size).map_err(frame_fault)?;
        let info = fr.info();
        if info.kind != t.kind || info.original_size != t.orig_size || info.frame_size != t.arc_size {
            return Err(Error::CorruptHeader);
        }
        Ok(fr)
    }
}

/// Bytes of output decoded at a time while restoring (rounded to whole chunks).
const RESTORE_WINDOW: u64 = 4 << 20;

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
