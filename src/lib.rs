//! weightzip: lossless compression of LLM weights, with a stable C ABI (`include/weightzip.h`).
//!
//! Data flows one way: input bytes → per-kind codec (`codec`) → entropy coder (`entropy`) →
//! frame (`frame`), and back. Archives (`archive`) hold a whole model file as one frame per
//! tensor. The C ABI (`ffi`) is a thin layer over this Rust API.
//!
//! The public Rust API is what this page lists without the `internals` feature: frames
//! (`compress`, `decompress`, `FrameReader`), archives, the GGUF and safetensors parsers, `Kind`,
//! `Options` and `Error`. Everything else is the library's own.

pub mod archive;
pub mod error;
pub mod frame;
pub mod gguf;
pub mod safetensors;

/// Declares modules that are the library's own, made public by the `internals` feature for this
/// workspace's tool, fuzz targets and tests (never a stable API).
macro_rules! internal_modules {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        $(#[$doc])*
        #[cfg(not(feature = "internals"))]
        mod $name;
    )*};
}

internal_modules! {
    /// Atomic file output: temporary, fsync, rename.
    atomic;
    /// XXH3-64, the frames' checksum, with vector loops chosen at run time.
    checksum;
    /// The codecs behind the frame, one per method.
    codec;
    /// Run-time choice of vector kernels.
    cpu;
    /// SHA-256 of tensors, fed from the cache.
    digest;
    /// The entropy coder: rANS, frequency tables, bit IO and their SIMD kernels.
    entropy;
    /// The C ABI.
    ffi;
    /// Zeroed allocation, page size.
    memory;
    /// Bytes from memory or from a file read with pread.
    source;
    /// Running chunk jobs on the worker pool.
    parallel;
    /// The zstd wrapper (generic byte path, f32 low halves, archive metadata).
    zstd;
}

/// The seeded generator of the unit tests, shared with the tool's tests.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod test_rng;
#[cfg(all(test, not(feature = "internals")))]
mod test_rng;

pub use codec::{Kind, Method};
pub use error::{Error, IoError, Result};
pub use frame::{compress, compress_bound, decompress, decompress_into, read_info, FrameInfo, FrameReader, Options};
