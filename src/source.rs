//! Where the bytes of a frame, an archive or a model file come from: memory the caller lends us,
//! or a file read with `pread`, never memory-mapped.
//!
//! Why not a mapping: a mapped file that another process truncates (`cp new.wz model.wz` does
//! exactly that while a server has the old archive open) makes the next access to a page past
//! the new end raise SIGBUS, which kills the host; a library cannot catch it safely (a handler is
//! process-wide and the host may have its own). `pread` instead returns short, which becomes an
//! I/O error, and bytes rewritten in place fail the frame checksums. What a mapping saved is a copy
//! of the compressed bytes; decoders read each chunk (at most a few hundred KiB) into a buffer of
//! their own thread just before decoding it, so the copy is parallel and lands in cache.

use std::borrow::Cow;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A readable byte range: a slice (reads borrow it) or a file of known length (reads copy).
pub enum Source<'a> {
    Slice(&'a [u8]),
    File { file: File, len: u64, path: PathBuf },
}

impl<'a> Source<'a> {
    /// The regular file at `path`, its length taken now. Other file types are refused: a pipe
    /// or a FIFO has no length and no random access (the caller streams those instead).
    pub fn open(path: &Path) -> Result<Source<'static>> {
        let file = File::open(path).map_err(|e| Error::io("open", Some(path), e))?;
        Source::from_file(file, path)
    }

    /// An open regular file (`path` names it in errors), its length taken now.
    pub fn from_file(file: File, path: &Path) -> Result<Source<'static>> {
        let meta = file.metadata().map_err(|e| Error::io("read", Some(path), e))?;
        if !meta.is_file() {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
            return Err(Error::io("read", Some(path), e));
        }
        Ok(Source::File { file, len: meta.len(), path: path.to_path_buf() })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> u64 {
        match self {
            Source::Slice(s) => s.len() as u64,
            Source::File { len, .. } => *len,
        }
    }

    /// Bytes `[at, at + n)`, which must lie within `len()` (callers check against the length
    /// first, and get TRUNCATED-style statuses of their own when they do not). From a slice
    /// they are borrowed; from a file they are read, and a file that has shrunk since it was
    /// opened gives an I/O error.
    pub fn read(&self, at: u64, n: usize) -> Result<Cow<'_, [u8]>> {
        match self {
            Source::Slice(s) => Ok(Cow::Borrowed(slice(s, at, n)?)),
            Source::File { .. } => {
                let mut v = Vec::new();
                self.read_into(at, n, &mut v)?;
                Ok(Cow::Owned(v))
            }
        }
    }

    /// Bytes `[at, at + n)` of a slice source, borrowed (Some); None for a file, which must be
    /// read.
    pub fn borrow(&self, at: u64, n: usize) -> Option<Result<&'a [u8]>> {
        match self {
            Source::Slice(s) => Some(slice(s, at, n)),
            Source::File { .. } => None,
        }
    }

    /// Like `read`, reusing `buf` for a file's bytes (a decoder's per-thread buffer).
    pub fn read_with<'s>(&'s self, at: u64, n: usize, buf: &'s mut Vec<u8>) -> Result<&'s [u8]> {
        match self {
            Source::Slice(s) => slice(s, at, n),
            Source::File { .. } => {
                self.read_into(at, n, buf)?;
                Ok(&buf[..])
            }
        }
    }

    /// Bytes `[at, at + out.len())` into `out`: copied from a slice, read straight in from a file.
    pub fn read_to(&self, at: u64, out: &mut [u8]) -> Result<()> {
        match self {
            Source::Slice(s) => {
                out.copy_from_slice(slice(s, at, out.len())?);
                Ok(())
            }
            Source::File { file, len, path } => {
                if at.checked_add(out.len() as u64).is_none_or(|end| end > *len) {
                    return Err(Error::Truncated);
                }
                file.read_exact_at(out, at).map_err(|e| read_error(path, e))
            }
        }
    }

    fn read_into(&self, at: u64, n: usize, buf: &mut Vec<u8>) -> Result<()> {
        let Source::File { file, len, path } = self else { unreachable!("read_into is for files") };
        if at.checked_add(n as u64).is_none_or(|end| end > *len) {
            return Err(Error::Truncated);
        }
        buf.clear();
        if buf.capacity() < n {
            buf.try_reserve_exact(n).map_err(|_| Error::OutOfMemory)?;
            // A new block: its pages are touched first by the read below (`advise_huge`).
            crate::memory::advise_huge(buf.as_mut_ptr(), buf.capacity());
        }
        // Read straight into the spare capacity: zero-filling it first cost a memset of every
        // stored byte (5% of a Q4_K decode).
        let spare = &mut buf.spare_capacity_mut()[..n];
        pread_exact(file, spare.as_mut_ptr() as *mut u8, n, at).map_err(|e| read_error(path, e))?;
        // SAFETY: `pread_exact` wrote all `n` bytes.
        unsafe { buf.set_len(n) };
        Ok(())
    }
}

/// `read_exact_at` into memory that need not be initialised.
fn pread_exact(file: &File, mut dst: *mut u8, mut n: usize, mut at: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    while n > 0 {
        // SAFETY: `dst` is valid for writes of `n` bytes (a Vec's spare capacity); pread writes
        // at most that many.
        let r = unsafe { libc::pread(file.as_raw_fd(), dst as *mut libc::c_void, n, at as libc::off_t) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let r = r as usize;
        // SAFETY: r <= n, so dst stays within the buffer.
        dst = unsafe { dst.add(r) };
        n -= r;
        at += r as u64;
    }
    Ok(())
}

/// A failed read of `path`: a short read means the file shrank since it was opened.
fn read_error(path: &Path, e: std::io::Error) -> Error {
    let e = if e.kind() == std::io::ErrorKind::UnexpectedEof {
        std::io::Error::new(e.kind(), "the file ended early (was it truncated or replaced while open?)")
    } else {
        e
    };
    Error::io("read", Some(path), e)
}

fn slice(s: &[u8], at: u64, n: usize) -> Result<&[u8]> {
    let at = usize::try_from(at).map_err(|_| Error::Truncated)?;
    s.get(at..at.checked_add(n).ok_or(Error::Truncated)?).ok_or(Error::Truncated)
}
