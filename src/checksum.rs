//! XXH3-64 (seed 0, default secret): the checksum of frames' headers, chunk tables and chunks.
//!
//! Why a loop of our own for long inputs: the `xxhash-rust` crate picks its vector width when it
//! is compiled, and a portable build (no `-C target-cpu`) gets its SSE2 loop. Checking every
//! decoded chunk with it took 17% of a one-thread bf16 decode in memory. Inputs longer than 240
//! bytes (every chunk) take an AVX-512 or AVX2 loop chosen at run time instead; shorter ones, and
//! CPUs without AVX2, take the crate's, which is also the reference the tests hold these to.
//!
//! The long-input algorithm, from the XXH3 specification: eight 64-bit accumulators take 64-byte
//! stripes (each lane adds its neighbour's input word, and the product of the two 32-bit halves
//! of the input word XORed with a secret word); after every 16 stripes (a 1024-byte block) the
//! accumulators are scrambled; the last stripe is the input's last 64 bytes; then the
//! accumulators merge into one 64-bit value.

use crate::cpu::{self, Level};

/// The XXH3-64 hash of `data` with seed 0 and the default secret.
pub fn xxh3_64(data: &[u8]) -> u64 {
    if data.len() <= 240 {
        return xxhash_rust::xxh3::xxh3_64(data);
    }
    xxh3_64_long_at(data, cpu::detect())
}

/// `xxh3_64` of an input longer than 240 bytes with the loop of `level` (at most what the CPU
/// has; the scalar level is the crate's).
fn xxh3_64_long_at(data: &[u8], level: Level) -> u64 {
    debug_assert!(data.len() > 240 && level <= cpu::detect());
    #[cfg(target_arch = "x86_64")]
    {
        let mut acc = INIT;
        // SAFETY: `level` is at most what `cpu::detect` found.
        match level {
            Level::Avx512 => unsafe { x86::accumulate_avx512(&mut acc, data) },
            Level::Avx2 => unsafe { x86::accumulate_avx2(&mut acc, data) },
            Level::Scalar => return xxhash_rust::xxh3::xxh3_64(data),
        }
        merge(&acc, data.len())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = level;
        xxhash_rust::xxh3::xxh3_64(data)
    }
}

/// The default secret (`kSecret` of the XXH3 specification).
const SECRET: [u8; 192] = [
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c, 0xde, 0xd4, 0x6d,
    0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f, 0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0,
    0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21, 0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0,
    0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c, 0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b,
    0x1b, 0x53, 0x2e, 0xa3, 0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac,
    0xd8, 0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d, 0x8a, 0x51,
    0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64, 0xea, 0xc5, 0xac, 0x83, 0x34,
    0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb, 0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49,
    0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e, 0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8,
    0xd1, 0x7a, 0xd0, 0x31, 0xce, 0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b,
    0x40, 0x7e,
];

const P32_1: u64 = 0x9E37_79B1;
const P32_2: u64 = 0x85EB_CA77;
const P32_3: u64 = 0xC2B2_AE3D;
const P64_1: u64 = 0x9E37_79B1_85EB_CA87;
const P64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P64_3: u64 = 0x1656_67B1_9E37_79F9;
const P64_4: u64 = 0x85EB_CA77_C2B2_AE63;
const P64_5: u64 = 0x27D4_EB2F_1656_67C5;

/// The accumulators' starting values.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const INIT: [u64; 8] = [P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1];

/// Stripes per block: (secret size - stripe) / 8.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const STRIPES: usize = (192 - 64) / 8;

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn read64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The final step: the accumulators folded in pairs with the secret from byte 11, then avalanched.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn merge(acc: &[u64; 8], len: usize) -> u64 {
    let mut r = (len as u64).wrapping_mul(P64_1);
    for i in 0..4 {
        let a = acc[2 * i] ^ read64(&SECRET, 11 + 16 * i);
        let b = acc[2 * i + 1] ^ read64(&SECRET, 11 + 16 * i + 8);
        let p = a as u128 * b as u128;
        r = r.wrapping_add(p as u64 ^ (p >> 64) as u64);
    }
    r ^= r >> 37;
    r = r.wrapping_mul(0x1656_6791_9E37_79F9);
    r ^ (r >> 32)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{P32_1, SECRET, STRIPES};

    /// The stripes of `data` (longer than 240 bytes) into `acc`: whole blocks, then the rest of the
    /// stripes, then the last 64 bytes with the secret at 192 - 64 - 7. `stripe(acc, input,
    /// secret)` adds one stripe, `scramble(acc)` ends a block.
    #[inline(always)]
    unsafe fn walk<A: Copy>(
        acc: &mut A,
        data: &[u8],
        stripe: impl Fn(&mut A, *const u8, *const u8),
        scramble: impl Fn(&mut A),
    ) {
        let len = data.len();
        let p = data.as_ptr();
        let s = SECRET.as_ptr();
        let block = 64 * STRIPES;
        let blocks = (len - 1) / block;
        for n in 0..blocks {
            for k in 0..STRIPES {
                stripe(acc, p.add(n * block + 64 * k), s.add(8 * k));
            }
            scramble(acc);
        }
        let rest = ((len - 1) - block * blocks) / 64;
        for k in 0..rest {
            stripe(acc, p.add(blocks * block + 64 * k), s.add(8 * k));
        }
        stripe(acc, p.add(len - 64), s.add(192 - 64 - 7));
    }

    /// # Safety
    /// The CPU must support AVX-512 F; `data` must be longer than 240 bytes.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn accumulate_avx512(acc: &mut [u64; 8], data: &[u8]) {
        let mut a = _mm512_loadu_si512(acc.as_ptr() as *const _);
        let prime = _mm512_set1_epi64(P32_1 as i64);
        let last = _mm512_loadu_si512(SECRET.as_ptr().add(192 - 64) as *const _);
        walk(
            &mut a,
            data,
            |a, input, secret| {
                let v = _mm512_loadu_si512(input as *const _);
                let k = _mm512_xor_si512(v, _mm512_loadu_si512(secret as *const _));
                let product = _mm512_mul_epu32(k, _mm512_srli_epi64::<32>(k));
                // Each lane takes its neighbour's input word (lanes 2i and 2i+1 swap).
                let swapped = _mm512_shuffle_epi32::<0x4E>(v);
                *a = _mm512_add_epi64(*a, _mm512_add_epi64(product, swapped));
            },
            |a| {
                let x = _mm512_xor_si512(_mm512_xor_si512(*a, _mm512_srli_epi64::<47>(*a)), last);
                // x * P32_1 mod 2^64 from 32x32-bit products: lo * p + (hi * p) << 32.
                let lo = _mm512_mul_epu32(x, prime);
                let hi = _mm512_mul_epu32(_mm512_srli_epi64::<32>(x), prime);
                *a = _mm512_add_epi64(lo, _mm512_slli_epi64::<32>(hi));
            },
        );
        _mm512_storeu_si512(acc.as_mut_ptr() as *mut _, a);
    }

    /// # Safety
    /// The CPU must support AVX2; `data` must be longer than 240 bytes.
    #[target_feature(enable = "avx2")]
    pub unsafe fn accumulate_avx2(acc: &mut [u64; 8], data: &[u8]) {
        let mut a = [_mm256_loadu_si256(acc.as_ptr() as *const _), _mm256_loadu_si256(acc.as_ptr().add(4) as *const _)];
        let prime = _mm256_set1_epi64x(P32_1 as i64);
        let s = SECRET.as_ptr().add(192 - 64);
        let last = [_mm256_loadu_si256(s as *const _), _mm256_loadu_si256(s.add(32) as *const _)];
        walk(
            &mut a,
            data,
            |a, input, secret| {
                for (h, a) in a.iter_mut().enumerate() {
                    let v = _mm256_loadu_si256(input.add(32 * h) as *const _);
                    let k = _mm256_xor_si256(v, _mm256_loadu_si256(secret.add(32 * h) as *const _));
                    let product = _mm256_mul_epu32(k, _mm256_srli_epi64::<32>(k));
                    let swapped = _mm256_shuffle_epi32::<0x4E>(v);
                    *a = _mm256_add_epi64(*a, _mm256_add_epi64(product, swapped));
                }
            },
            |a| {
                for (h, a) in a.iter_mut().enumerate() {
                    let x = _mm256_xor_si256(_mm256_xor_si256(*a, _mm256_srli_epi64::<47>(*a)), last[h]);
                    let lo = _mm256_mul_epu32(x, prime);
                    let hi = _mm256_mul_epu32(_mm256_srli_epi64::<32>(x), prime);
                    *a = _mm256_add_epi64(lo, _mm256_slli_epi64::<32>(hi));
                }
            },
        );
        _mm256_storeu_si256(acc.as_mut_ptr() as *mut _, a[0]);
        _mm256_storeu_si256(acc.as_mut_ptr().add(4) as *mut _, a[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::lcg;

    /// Every loop this CPU has gives the crate's hash, on lengths around the short/long boundary,
    /// stripes and blocks.
    #[test]
    fn vector_loops_equal_the_reference() {
        let mut seed = 7;
        let data: Vec<u8> = (0..70_000).map(|_| lcg(&mut seed) as u8).collect();
        let mut lens: Vec<usize> = vec![241, 242, 255, 256, 257, 319, 320, 321, 1023, 1024, 1025, 1087, 1088, 1089];
        lens.extend([2047, 2048, 2049, 4096, 65_536, 70_000]);
        lens.extend((0..40).map(|_| 241 + (lcg(&mut seed) as usize % 69_000)));
        for len in lens {
            for off in [0, 3] {
                let d = &data[off..off + len.min(data.len() - off)];
                let want = xxhash_rust::xxh3::xxh3_64(d);
                for level in Level::ALL.into_iter().filter(|&l| l <= cpu::detect()) {
                    assert_eq!(xxh3_64_long_at(d, level), want, "{level:?}, {} bytes at {off}", d.len());
                }
                assert_eq!(xxh3_64(d), want);
            }
        }
        for len in [0, 1, 16, 128, 240] {
            assert_eq!(xxh3_64(&data[..len]), xxhash_rust::xxh3::xxh3_64(&data[..len]));
        }
    }
}
