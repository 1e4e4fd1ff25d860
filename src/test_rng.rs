//! The seeded generators of the tests (unit tests, integration tests, fuzz seeds): deterministic
//! data, so a failing case can be replayed. One step, Knuth's MMIX LCG, everywhere.

/// One step of a 64-bit linear congruential generator (Knuth's MMIX constants); returns the
/// high 31 bits, the well-mixed ones.
pub fn lcg(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *seed >> 33
}

/// A fixed-seed 64-bit LCG (the same step) with its high bits folded into the low ones: the
/// integration tests' and fuzz seeds' generator.
#[derive(Clone)]
pub struct Lcg(pub u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        lcg(&mut self.0);
        // Mix the high half into the low half: the low bits of a power-of-two LCG are weak.
        let x = self.0;
        x ^ (x >> 29) ^ (x >> 43)
    }
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u32() as u64) * n) >> 32
    }
    pub fn below_usize(&mut self, n: usize) -> usize {
        assert!(n > 0);
        if n as u64 <= u32::MAX as u64 {
            self.below(n as u64) as usize
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below_usize(i + 1);
            v.swap(i, j);
        }
    }
}
