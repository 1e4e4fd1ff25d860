//! Choice of decode kernel. The kernels decode whole groups of `LANES` values while the stream
//! has room for a full group's renormalisation words; the scalar loop in `mod.rs` finishes.

use super::ChunkDecode;
use crate::error::Result;

/// Vector instruction sets a decoder may use, best last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Scalar,
    Avx2,
    Avx512,
}

/// The best level this CPU supports (detected at run time, so one binary serves every x86-64),
/// capped by the environment variable `WZ_SIMD` (`scalar`, `avx2` or `avx512`) when set: a way to
/// compare kernels and to rule one out when chasing a bug.
pub fn detect() -> Level {
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = match std::env::var("WZ_SIMD").as_deref() {
            Ok("scalar") => Level::Scalar,
            Ok("avx2") => Level::Avx2,
            _ => Level::Avx512,
        };
        cpu_level().min(cap)
    })
}

fn cpu_level() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vl") {
            return Level::Avx512;
        }
        if has!("avx2") {
            return Level::Avx2;
        }
    }
    Level::Scalar
}

/// Decodes as many whole groups as the chunk's kernel allows, advancing `c.done`.
pub(super) fn decode_groups(c: &mut ChunkDecode) -> Result<()> {
    match c.dec.simd {
        // SAFETY: a decoder's level is never above `detect()` (see `Decoder::with_level`).
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { super::avx512::decode_groups(c) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { super::avx2::decode_groups(c) },
        _ => Ok(()),
    }
}

/// Like `decode_groups` for two chunks, interleaving them where the kernel can.
pub(super) fn decode_pair(a: &mut ChunkDecode, b: &mut ChunkDecode) -> Result<()> {
    match a.dec.simd.min(b.dec.simd) {
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { super::avx512::decode_pair(a, b) },
        _ => {
            decode_groups(a)?;
            decode_groups(b)
        }
    }
}
