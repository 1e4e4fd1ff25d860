//! Errors of the Rust API. Each variant maps to one frozen `wz_status` code of the C ABI
//! (see `ffi::status`); the numbers are assigned there and never reused.

use std::ffi::CStr;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// A file could not be read or written.
    Io,
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
        Error::Io,
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

impl Error {
    /// A short, static, human-readable description.
    pub fn message(self) -> &'static str {
        // The C strings are ASCII literals, so this never fails.
        self.message_c().to_str().unwrap_or("error")
    }

    /// The same description as a NUL-terminated static string, for `wz_status_str`.
    pub fn message_c(self) -> &'static CStr {
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
            Error::Io => c"I/O error",
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
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}
