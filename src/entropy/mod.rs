//! The entropy coder: static interleaved rANS (`rans`), frequency tables and their coding
//! (`table`), and the bit IO that tables use (`bits`).

#[cfg(target_arch = "x86_64")]
pub mod avx512;
pub mod bits;
pub mod rans;
pub mod table;
