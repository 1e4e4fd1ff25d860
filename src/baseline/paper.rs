//! The paper's Q4_K method, reimplemented as a baseline: the 16-byte block headers byte-grouped
//! (byte i of every block together) and compressed with zstd, the 128-byte quant sections
//! concatenated and compressed with zstd; and the order-0 entropy bound of nibbles plus header
//! bytes that the paper reports as a ceiling.

use super::zstd;
use crate::entropy::table::entropy_bits;
use crate::error::{Error, Result};

const BLOCK: usize = 144;

/// The two zstd frames: byte-grouped headers, quants.
pub fn q4k_compress(data: &[u8], level: i32) -> Result<(Vec<u8>, Vec<u8>)> {
    if data.len() % BLOCK != 0 {
        return Err(Error::BadLength);
    }
    let nb = data.len() / BLOCK;
    let mut hdr = vec![0u8; 16 * nb];
    let mut qs = Vec::with_capacity(128 * nb);
    for (b, blk) in data.chunks_exact(BLOCK).enumerate() {
        for i in 0..16 {
            hdr[i * nb + b] = blk[i];
        }
        qs.extend_from_slice(&blk[16..]);
    }
    Ok((zstd::compress(&hdr, level, 1)?, zstd::compress(&qs, level, 1)?))
}

/// Decodes what `q4k_compress` made back into blocks in `dst`.
pub fn q4k_decompress(frames: &(Vec<u8>, Vec<u8>), dst: &mut [u8]) -> Result<()> {
    let nb = dst.len() / BLOCK;
    let mut hdr = vec![0u8; 16 * nb];
    let mut qs = vec![0u8; 128 * nb];
    zstd::decompress_into(&frames.0, &mut hdr)?;
    zstd::decompress_into(&frames.1, &mut qs)?;
    for (b, blk) in dst.chunks_exact_mut(BLOCK).enumerate() {
        for i in 0..16 {
            blk[i] = hdr[i * nb + b];
        }
        blk[16..].copy_from_slice(&qs[128 * b..128 * b + 128]);
    }
    Ok(())
}

/// Bits of the order-0 bound: H(nibbles) per nibble plus, per header byte position, H(that byte).
pub fn q4k_order0_bound_bits(data: &[u8]) -> f64 {
    let nb = (data.len() / BLOCK) as f64;
    let mut nib = [0u64; 16];
    let mut hdr = vec![[0u64; 256]; 16];
    for blk in data.chunks_exact(BLOCK) {
        for (i, &b) in blk[..16].iter().enumerate() {
            hdr[i][b as usize] += 1;
        }
        for &b in &blk[16..] {
            nib[(b & 15) as usize] += 1;
            nib[(b >> 4) as usize] += 1;
        }
    }
    256.0 * nb * entropy_bits(&nib) + hdr.iter().map(|h| nb * entropy_bits(h)).sum::<f64>()
}
