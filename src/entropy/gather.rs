//! The table lookups of the AVX2 kernels (the decoders', and the encoder's step): eight (or four
//! 64-bit) entries at the lanes' indices, by `vpgatherdd`/`vpgatherdq` or by scalar loads,
//! whichever this CPU does faster.
//!
//! Why both: the kernels are bound by these lookups, and CPUs differ in how they run a gather.
//! On AMD Zen 3 (an AVX2 VM here) eight scalar loads and inserts decoded Q6_K 1.10-1.25x, Q4_K
//! 1.10-1.17x and bf16 1.06-1.18x faster than `vpgatherdd`, and compressed 1.05-1.06x faster
//! (paired runs in one process); Intel client cores run gathers in a few cycles, and the
//! microcode fix for Intel's gather data sampling made them slow again on others. No rule by
//! vendor or model would stay right, so the choice is measured once, on first use: a few
//! thousand lookups each way in a loop shaped like the kernels' (four independent chains of table
//! lookups), the faster wins. `WZ_GATHER=hardware` or `WZ_GATHER=loads` fixes it instead (for
//! comparisons). Both give the same bytes; only the speed differs. (The AVX-512 kernels keep
//! their gathers: no AVX-512 CPU was at hand to measure the alternative on.)

use std::arch::x86_64::*;
use std::sync::OnceLock;

/// How a kernel looks up its lanes' table entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The AVX2 gather instructions.
    Hardware,
    /// One scalar load per lane, inserted into the vector.
    Loads,
}

impl Mode {
    /// Both modes, for tests that check each.
    #[cfg(any(test, feature = "internals"))]
    pub const ALL: [Mode; 2] = [Mode::Hardware, Mode::Loads];
}

/// A way of looking up table entries, as a type, so that each kernel is compiled once per mode
/// (a branch per lookup would sit in the kernels' hottest loop).
pub trait Gather {
    /// The 32-bit entries of `t` at the eight indices of `ix`.
    ///
    /// # Safety
    /// AVX2; every index must name an entry of the table at `t`.
    unsafe fn g32(t: *const i32, ix: __m256i) -> __m256i;
    /// The 64-bit entries of `t` at the four indices of `ix`.
    ///
    /// # Safety
    /// As `g32`.
    unsafe fn g64(t: *const i64, ix: __m128i) -> __m256i;
}

/// `Mode::Hardware`.
pub struct Hardware;
/// `Mode::Loads`.
pub struct Loads;

impl Gather for Hardware {
    #[inline(always)]
    unsafe fn g32(t: *const i32, ix: __m256i) -> __m256i {
        _mm256_i32gather_epi32::<4>(t, ix)
    }
    #[inline(always)]
    unsafe fn g64(t: *const i64, ix: __m128i) -> __m256i {
        _mm256_i32gather_epi64::<8>(t, ix)
    }
}

impl Gather for Loads {
    #[inline(always)]
    unsafe fn g32(t: *const i32, ix: __m256i) -> __m256i {
        // Indices two at a time out of 64-bit lanes: fewer extracts than one per index.
        let (lo, hi) = (_mm256_castsi256_si128(ix), _mm256_extracti128_si256::<1>(ix));
        let ab = [_mm_cvtsi128_si64(lo) as u64, _mm_extract_epi64::<1>(lo) as u64];
        let cd = [_mm_cvtsi128_si64(hi) as u64, _mm_extract_epi64::<1>(hi) as u64];
        let at = |i: u64| *t.add(i as u32 as usize);
        let half = |p: [u64; 2]| {
            let r = _mm_cvtsi32_si128(at(p[0]));
            let r = _mm_insert_epi32::<1>(r, at(p[0] >> 32));
            let r = _mm_insert_epi32::<2>(r, at(p[1]));
            _mm_insert_epi32::<3>(r, at(p[1] >> 32))
        };
        _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(half(ab)), half(cd))
    }
    #[inline(always)]
    unsafe fn g64(t: *const i64, ix: __m128i) -> __m256i {
        let (a, b) = (_mm_cvtsi128_si64(ix) as u64, _mm_extract_epi64::<1>(ix) as u64);
        let at = |i: u64| *t.add(i as u32 as usize);
        let r0 = _mm_insert_epi64::<1>(_mm_cvtsi64_si128(at(a)), at(a >> 32));
        let r1 = _mm_insert_epi64::<1>(_mm_cvtsi64_si128(at(b)), at(b >> 32));
        _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(r0), r1)
    }
}

#[cfg(any(test, feature = "internals"))]
thread_local! {
    /// `with_mode`'s choice for this thread.
    static FORCED: std::cell::Cell<Option<Mode>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with this thread's kernels looking up entries by `mode` (tests check both modes
/// against the scalar path; the worker pool's threads keep the process's choice).
#[cfg(any(test, feature = "internals"))]
pub fn with_mode<R>(mode: Mode, f: impl FnOnce() -> R) -> R {
    let before = FORCED.with(|c| c.replace(Some(mode)));
    let r = f();
    FORCED.with(|c| c.set(before));
    r
}

/// The mode the AVX2 kernels use: `WZ_GATHER` if set, otherwise the faster one measured on first
/// use. Call it only where AVX2 was detected.
pub fn mode() -> Mode {
    #[cfg(any(test, feature = "internals"))]
    if let Some(m) = FORCED.with(|c| c.get()) {
        return m;
    }
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("WZ_GATHER").as_deref() {
        Ok("hardware") => Mode::Hardware,
        Ok("loads") => Mode::Loads,
        // SAFETY: the callers run AVX2 kernels, so AVX2 was detected.
        _ => unsafe { measure().0 },
    })
}

/// Times both modes on a loop shaped like the kernels (four chains of lookups into a 64 KiB
/// table, each index taken from the entry before) and returns the faster, with the best of three
/// rounds of each in nanoseconds per lookup (hardware, loads). About 0.1 ms.
///
/// # Safety
/// AVX2.
#[target_feature(enable = "avx2")]
unsafe fn measure() -> (Mode, [f64; 2]) {
    const ENTRIES: usize = 1 << 14;
    const STEPS: usize = 1024;
    // Entries that are indices of other entries, scattered (a multiplicative step modulo the size).
    let table: Vec<i32> = (0..ENTRIES).map(|i| ((i * 40503 + 12345) % ENTRIES) as i32).collect();
    #[target_feature(enable = "avx2")]
    unsafe fn chains<G: Gather>(t: &[i32]) -> (f64, i32) {
        let t0 = std::time::Instant::now();
        let mask = _mm256_set1_epi32(t.len() as i32 - 1);
        let mut x = [0, 1, 2, 3].map(|k| _mm256_setr_epi32(k, 8 + k, 16 + k, 24 + k, 32 + k, 40 + k, 48 + k, 56 + k));
        for _ in 0..STEPS {
            for x in x.iter_mut() {
                *x = _mm256_and_si256(_mm256_add_epi32(G::g32(t.as_ptr(), *x), *x), mask);
            }
        }
        let s = x.iter().fold(_mm256_setzero_si256(), |a, x| _mm256_add_epi32(a, *x));
        (t0.elapsed().as_secs_f64() * 1e9 / (STEPS * 32) as f64, _mm256_cvtsi256_si32(s))
    }
    let mut best = [f64::MAX; 2];
    let mut sink = 0;
    for _ in 0..3 {
        let (h, a) = chains::<Hardware>(&table);
        let (l, b) = chains::<Loads>(&table);
        best = [best[0].min(h), best[1].min(l)];
        sink ^= a ^ b;
    }
    std::hint::black_box(sink);
    (if best[1] < best[0] { Mode::Loads } else { Mode::Hardware }, best)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both modes fetch the same entries, at every lane.
    #[test]
    fn modes_agree() {
        if crate::cpu::detect() == crate::cpu::Level::Scalar {
            return;
        }
        let t32: Vec<i32> = (0..1000).map(|i| i * 7919 - 3_000_000).collect();
        let t64: Vec<i64> = (0..1000).map(|i| ((i as i64) << 40) | (i as i64 * 13)).collect();
        let mut seed = 5;
        for _ in 0..200 {
            let ix: [i32; 8] = std::array::from_fn(|_| (crate::test_rng::lcg(&mut seed) % 1000) as i32);
            // SAFETY: AVX2 was detected; every index is below the tables' length.
            unsafe {
                let v = _mm256_loadu_si256(ix.as_ptr() as *const __m256i);
                let h: [i32; 8] = std::mem::transmute(Hardware::g32(t32.as_ptr(), v));
                let l: [i32; 8] = std::mem::transmute(Loads::g32(t32.as_ptr(), v));
                assert_eq!(h, ix.map(|i| t32[i as usize]));
                assert_eq!(l, h);
                let v = _mm_loadu_si128(ix.as_ptr() as *const __m128i);
                let h: [i64; 4] = std::mem::transmute(Hardware::g64(t64.as_ptr(), v));
                let l: [i64; 4] = std::mem::transmute(Loads::g64(t64.as_ptr(), v));
                assert_eq!(h, [0, 1, 2, 3].map(|k| t64[ix[k] as usize]));
                assert_eq!(l, h);
            }
        }
        // SAFETY: AVX2 was detected.
        let (_, ns) = unsafe { measure() };
        assert!(ns.iter().all(|&n| n > 0.0 && n.is_finite()), "{ns:?}");
    }
}
