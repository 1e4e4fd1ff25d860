//! The entropy coder: static interleaved rANS (`rans`), frequency tables and their coding
//! (`table`), the bit IO that tables use (`bits`), packed decoding tables for small alphabets
//! (`packed`), the vector renormalisation steps every SIMD decoder shares (`avx2`, `avx512`),
//! the encoder's vector step (`encode_x86`), the AVX2 kernels' table lookups, by gather or by
//! loads as this CPU runs faster (`gather`), and streams coded with several tables through it
//! (`indexed`).

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "x86_64")]
pub mod encode_x86;
#[cfg(target_arch = "x86_64")]
pub mod gather;
pub mod bits;
pub mod indexed;
pub mod packed;
pub mod rans;
pub mod table;
