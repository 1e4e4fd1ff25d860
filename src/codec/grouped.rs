//! The generic path for data without a model of its own (f32, f16, raw bytes, ggml types this
//! crate does not model): bytes grouped by their position in an element (all first bytes, then
//! all second bytes, ...) and compressed with zstd. Grouping puts the sign/exponent bytes of
//! floats together, where zstd finds their redundancy; for single bytes it is plain zstd.

use crate::zstd;
use crate::error::{Error, Result};

/// zstd level: a balance between ratio and the compression speed archives need.
const LEVEL: i32 = 6;

/// Groups `src` (a whole number of `stride`-byte elements) and compresses it.
pub fn encode_chunk(stride: usize, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let grouped = group(stride, src);
    out.extend_from_slice(&zstd::compress(&grouped, LEVEL, 1)?);
    Ok(())
}

/// Decodes a chunk written by `encode_chunk` into `dst`.
pub fn decode_chunk(stride: usize, src: &[u8], dst: &mut [u8]) -> Result<()> {
    if stride == 1 {
        return zstd::decompress_into(src, dst).map_err(|_| Error::CorruptData);
    }
    let mut grouped = vec![0u8; dst.len()];
    zstd::decompress_into(src, &mut grouped).map_err(|_| Error::CorruptData)?;
    let n = dst.len() / stride;
    for (i, e) in dst.chunks_exact_mut(stride).enumerate() {
        for (k, b) in e.iter_mut().enumerate() {
            *b = grouped[k * n + i];
        }
    }
    Ok(())
}

fn group(stride: usize, src: &[u8]) -> Vec<u8> {
    if stride == 1 {
        return src.to_vec();
    }
    let n = src.len() / stride;
    let mut g = vec![0u8; src.len()];
    for (i, e) in src.chunks_exact(stride).enumerate() {
        for (k, &b) in e.iter().enumerate() {
            g[k * n + i] = b;
        }
    }
    g
}

/// The smallest a coded chunk can be: a zstd frame header.
pub fn min_coded_len() -> u64 {
    9
}
