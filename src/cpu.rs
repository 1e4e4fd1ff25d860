//! Which vector kernels this CPU can run. Detected once at run time, so one binary serves every
//! x86-64; every codec's decoder takes its level from here (through the frame), never on its own.

/// Vector instruction sets a decoder may use, best last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Scalar,
    /// AVX2 and POPCNT (every AVX2 CPU has both).
    Avx2,
    /// AVX-512 F, BW and VL, with AVX2 and POPCNT.
    Avx512,
}

impl Level {
    /// Every level, scalar first.
    #[cfg(any(test, feature = "internals"))]
    pub const ALL: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];
}

/// The best level this CPU supports, capped by the environment variable `WZ_SIMD` (`scalar`,
/// `avx2` or `avx512`) when set. The cap is how a user on an AVX-512 machine measures what
/// AVX2-only CPUs get, and how the sanitizer and valgrind runs reach the scalar kernels.
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
        // Every CPU with AVX2 has POPCNT; the kernels count renormalising lanes with it.
        if !has!("popcnt") {
            return Level::Scalar;
        }
        if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx2") {
            return Level::Avx512;
        }
        if has!("avx2") {
            return Level::Avx2;
        }
    }
    Level::Scalar
}
