//! Baselines that benchmarks run next to weightzip on the same bytes: zstd at any level, the
//! paper's byte-plane rANS coder for 16-bit floats (`byte_planes`), and its Q4_K and whole-GGUF
//! methods (`paper`).

pub mod byte_planes;
pub mod paper;
