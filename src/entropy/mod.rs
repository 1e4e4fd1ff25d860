//! The entropy coder: static interleaved rANS (`rans`), frequency tables and their coding
//! (`table`), and the bit IO that tables use (`bits`).

pub mod bits;
pub mod rans;
pub mod table;
