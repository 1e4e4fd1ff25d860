//! The f32 codec. The high 16 bits of an f32 are a bf16 value (sign, the 8 exponent bits, the top
//! 7 mantissa bits), so they take the bf16 codec's model and coding as they are. The low 16
//! mantissa bits of trained weights are close to uniform (measured on all-MiniLM-L6-v2's F32
//! tensors: 7.84 and 7.92 bits per byte), but are all zero in weights widened from bf16 or f16;
//! byte-grouped zstd takes the small skew of the first case and collapses the second, and stores
//! incompressible blocks raw, so decoding them costs little more than a copy.
//!
//! Coded chunk: u32 LE length of the high-half coding, the high halves coded as a bf16 chunk
//! (section 4.3 of docs/FORMAT.md), then a zstd frame of the low halves grouped (every value's
//! byte 0, then every value's byte 1).

use super::bf16;
use crate::zstd;
use crate::entropy::rans::EncTable;
use crate::error::{Error, Result};

/// zstd level of the low halves: higher levels find nothing more in near-random bytes.
const LO_LEVEL: i32 = 3;

/// A chunk of f32 values split in two.
#[derive(Default)]
pub struct Halves {
    /// The high halves as little-endian u16 (a bf16 stream).
    pub hi: Vec<u8>,
    /// The low halves grouped: byte 0 of every value, then byte 1 of every value.
    pub lo: Vec<u8>,
}

/// Splits `src` (a whole number of f32 values).
pub fn split(src: &[u8]) -> Halves {
    let n = src.len() / 4;
    let (mut hi, mut lo) = (vec![0u8; 2 * n], vec![0u8; 2 * n]);
    for (i, v) in src.chunks_exact(4).enumerate() {
        lo[i] = v[0];
        lo[n + i] = v[1];
        hi[2 * i] = v[2];
        hi[2 * i + 1] = v[3];
    }
    Halves { hi, lo }
}

/// Encodes a split chunk with the bf16 encoder `enc` for the high halves.
pub fn encode_chunk(enc: &EncTable, h: &Halves, out: &mut Vec<u8>) -> Result<()> {
    let mut hi = Vec::new();
    bf16::encode_chunk(enc, &h.hi, &mut hi)?;
    out.extend_from_slice(&(hi.len() as u32).to_le_bytes());
    out.extend_from_slice(&hi);
    out.extend_from_slice(&zstd::compress(&h.lo, LO_LEVEL, 1)?);
    Ok(())
}

/// Decodes a chunk written by `encode_chunk` into `dst` (a whole number of f32 values).
pub fn decode_chunk(dec: &bf16::Decoder, src: &[u8], dst: &mut [u8]) -> Result<()> {
    let n = dst.len() / 4;
    let len = src.get(..4).ok_or(Error::CorruptData)?;
    let hlen = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let his = src.get(4..4usize.checked_add(hlen).ok_or(Error::CorruptData)?).ok_or(Error::CorruptData)?;
    let los = &src[4 + hlen..];
    let (mut hi, mut lo) = (vec![0u8; 2 * n], vec![0u8; 2 * n]);
    bf16::decode_chunk(dec, his, &mut hi)?;
    zstd::decompress_into(los, &mut lo).map_err(|_| Error::CorruptData)?;
    for (i, v) in dst.chunks_exact_mut(4).enumerate() {
        v.copy_from_slice(&[lo[i], lo[n + i], hi[2 * i], hi[2 * i + 1]]);
    }
    Ok(())
}

/// The smallest a coded chunk of `orig` bytes can be: the length, the high halves' smallest
/// bf16 coding, a zstd frame header.
pub fn min_coded_len(orig: u64) -> u64 {
    4 + bf16::min_coded_len(orig / 2) + 9
}
