//! A seeded generator for unit tests: deterministic data, so a failing case can be replayed.

/// One step of a 64-bit linear congruential generator (Knuth's MMIX constants); returns the
/// high 31 bits, the well-mixed ones.
pub fn lcg(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *seed >> 33
}
