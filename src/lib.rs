//! weightzip: lossless compression of LLM weights, with a stable C ABI (`include/weightzip.h`).
//!
//! Data flows one way: input bytes → per-kind codec (`codec`) → entropy coder (`entropy`) →
//! frame (`frame`), and back. The C ABI (`ffi`) is a thin layer over this Rust API.

pub mod archive;
pub mod atomic;
pub mod baseline;
pub mod codec;
pub mod entropy;
pub mod error;
pub mod ffi;
pub mod frame;
pub mod gguf;
mod parallel;
pub mod safetensors;
pub mod stats;
#[cfg(test)]
mod test_rng;

pub use codec::Kind;
pub use error::{Error, Result};
pub use frame::{compress, compress_bound, decompress, decompress_into, read_info, FrameInfo, Options};
