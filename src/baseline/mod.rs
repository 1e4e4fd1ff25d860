//! Baselines that benchmarks run next to weightzip on the same bytes: zstd at any level.

pub mod paper;
pub mod zstd;
