//! Errors of the Rust API. Each variant maps to one frozen `wz_status` code of the C ABI
//! (see `ffi::status`); the numbers are assigned there and never reused. An I/O error also keeps
//! what the operating system said and the file it concerns, which `Display` prints the way zstd
//! does (`cannot open x.gguf: No such file or directory`) and the C API hands out through
//! `wz_last_error_message`.

use std::ffi::CStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A library error. Errors compare equal when they have the same status: an I/O error's cause
/// and path are detail, not identity.
#[derive(Debug, Clone)]
pub enum Error {
    /// A required pointer argument was NULL.
    NullPointer,
    /// An argument is out of range (for example an options field).
    InvalidArgument,
    /// The data kind is not one this library knows.
    UnknownKind,
    /// The input length is not a whole number of elements of its kind (e.g. an odd byte count for bf16).
    BadLength,
    /// The destination buffer is smaller than needed.
    DstTooSmall,
    /// The destination buffer is larger than the frame's original size (decompression wants it exact).
    DstSizeMismatch,
    /// The input does not start with the weightzip frame magic.
    BadMagic,
    /// The frame was written by a newer format version than this library reads.
    UnsupportedVersion,
    /// The input ends before the frame does.
    Truncated,
    /// The frame header or chunk table is inconsistent or fails its checksum.
    CorruptHeader,
    /// The coded model (frequency tables) is malformed.
    CorruptModel,
    /// A chunk payload is malformed or decodes to bytes that fail their checksum.
    CorruptData,
    /// The input has trailing bytes after the frame.
    TrailingData,
    /// A size does not fit the format or the address space.
    TooLarge,
    /// An allocation failed.
    OutOfMemory,
    /// A file could not be read or written: what was being done, to which file, and why.
    Io(IoError),
    /// A Rust panic was caught at the C boundary (a bug: please report it).
    Panic,
    /// The frame holds a different kind of data than the caller asked for.
    KindMismatch,
    /// A container file (safetensors, GGUF) is malformed in a way no more specific status names.
    BadContainer,
    /// A container file (GGUF, safetensors) ends inside its header or inside a tensor's data.
    ContainerTruncated,
    /// The input is not a container this library reads (bad GGUF magic).
    ContainerBadMagic,
    /// The container's version is not one this library reads (GGUF versions 2 and 3 are).
    ContainerVersion,
    /// A tensor's data starts beyond the end of the container file, or its extent overflows.
    TensorOutOfRange,
    /// Two tensors' data overlap in the container file.
    TensorOverlap,
    /// No tensor has the name asked for.
    NotFound,
}

impl Error {
    /// Every variant, in status-number order (`wz_status` value = index + 1).
    pub const ALL: [Error; 25] = [
        Error::NullPointer,
        Error::InvalidArgument,
        Error::UnknownKind,
        Error::BadLength,
        Error::DstTooSmall,
        Error::DstSizeMismatch,
        Error::BadMagic,
        Error::UnsupportedVersion,
        Error::Truncated,
        Error::CorruptHeader,
        Error::CorruptModel,
        Error::CorruptData,
        Error::TrailingData,
        Error::TooLarge,
        Error::OutOfMemory,
        Error::Io(IoError::UNKNOWN),
        Error::Panic,
        Error::KindMismatch,
        Error::BadContainer,
        Error::ContainerTruncated,
        Error::ContainerBadMagic,
        Error::ContainerVersion,
        Error::TensorOutOfRange,
        Error::TensorOverlap,
        Error::NotFound,
    ];
}

pub type Result<T> = std::result::Result<T, Error>;

impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl Eq for Error {}

impl std::hash::Hash for Error {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state)
    }
}

/// The detail of an I/O error: the action (`open`, `read`, `write`, ...), the file, and the
/// operating system's error. Any of them may be missing (a writer handed to the library has no
/// name the library knows).
#[derive(Debug, Clone, Default)]
pub struct IoError {
    action: &'static str,
    path: Option<PathBuf>,
    source: Option<Cause>,
}

/// The operating system's error, shared between clones of an error.
#[derive(Debug, Clone)]
struct Cause(Arc<std::io::Error>);

// An `io::Error` is never changed once made, so observing one after a caught panic is sound; the
// C ABI's panic guard needs errors (and the archives that cache them) to say so.
impl std::panic::UnwindSafe for Cause {}
impl std::panic::RefUnwindSafe for Cause {}

impl IoError {
    /// An I/O error with no detail (the status table's representative).
    pub const UNKNOWN: IoError = IoError { action: "", path: None, source: None };

    /// What was being done when it failed: `open`, `read`, `write`, `create`, `rename`, ...
    pub fn action(&self) -> &'static str {
        self.action
    }

    /// The file concerned, when known.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The operating system's error, when there was one.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        self.source.as_ref().map(|c| &*c.0)
    }
}

impl Error {
    /// An I/O error: `action` (a verb: `open`, `read`, `write`, ...) on `path` failed with `e`.
    pub fn io(action: &'static str, path: Option<&Path>, e: std::io::Error) -> Error {
        Error::Io(IoError { action, path: path.map(Path::to_path_buf), source: Some(Cause(Arc::new(e))) })
    }

    /// This error, with `path` as its file if it is an I/O error that names none yet (for errors
    /// from a writer whose file the caller knows).
    pub fn with_path(self, path: &Path) -> Error {
        match self {
            Error::Io(mut e) if e.path.is_none() => {
                e.path = Some(path.to_path_buf());
                Error::Io(e)
            }
            e => e,
        }
    }
}

impl Error {
    /// A short, static, human-readable description.
    pub fn message(&self) -> &'static str {
        // The C strings are ASCII literals, so this never fails.
        self.message_c().to_str().unwrap_or("error")
    }

    /// The same description as a NUL-terminated static string, for `wz_status_str`.
    pub fn message_c(&self) -> &'static CStr {
        match self {
            Error::NullPointer => c"a required pointer argument is NULL",
            Error::InvalidArgument => c"an argument is out of range",
            Error::UnknownKind => c"unknown data kind",
            Error::BadLength => c"input length is not a whole number of elements of its kind",
            Error::DstTooSmall => c"destination buffer is too small",
            Error::DstSizeMismatch => c"destination buffer size differs from the frame's original size",
            Error::BadMagic => c"not a weightzip frame or archive (bad magic)",
            Error::UnsupportedVersion => c"frame or archive format version is not supported by this library",
            Error::Truncated => c"input is truncated",
            Error::CorruptHeader => c"frame or archive header, index or chunk table is corrupt",
            Error::CorruptModel => c"frame model (frequency tables) is corrupt",
            Error::CorruptData => c"compressed data is corrupt (decode error or checksum mismatch)",
            Error::TrailingData => c"input has trailing bytes after the frame or archive",
            Error::TooLarge => c"size exceeds what the format or platform supports",
            Error::OutOfMemory => c"out of memory",
            Error::Io(_) => c"I/O error",
            Error::Panic => c"internal error (panic caught at the C boundary)",
            Error::KindMismatch => c"frame holds a different data kind than requested",
            Error::BadContainer => c"malformed model container file",
            Error::ContainerTruncated => c"model container file is truncated",
            Error::ContainerBadMagic => c"not a GGUF file (bad magic)",
            Error::ContainerVersion => c"model container version is not supported",
            Error::TensorOutOfRange => c"a tensor's data lies outside the container file",
            Error::TensorOverlap => c"two tensors' data overlap in the container file",
            Error::NotFound => c"no tensor has that name",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => e.fmt(f),
            e => f.write_str(e.message()),
        }
    }
}

impl fmt::Display for IoError {
    /// `cannot ACTION PATH: REASON`, with the parts that are known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.action.is_empty() && self.path.is_none() && self.source.is_none() {
            return f.write_str("I/O error");
        }
        f.write_str("cannot ")?;
        f.write_str(if self.action.is_empty() { "access" } else { self.action })?;
        if let Some(p) = &self.path {
            write!(f, " {}", p.display())?;
        }
        if let Some(Cause(e)) = &self.source {
            // The OS's message without the "(os error N)" that std appends.
            let text = e.to_string();
            let reason = text.rfind(" (os error ").map_or(&text[..], |i| &text[..i]);
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => e.io_error().map(|e| e as &(dyn std::error::Error + 'static)),
            _ => None,
        }
    }
}
