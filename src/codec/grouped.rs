//! The generic path for data without a model of its own (raw bytes, integer tensors, ggml types
//! this crate does not model): bytes grouped by their position in an element (all first bytes,
//! then all second bytes, ...) and compressed with zstd. Grouping puts the sign/exponent bytes of
//! floats together, where zstd finds their redundancy; for single bytes it is plain zstd.
//!
//! The model section is one byte, the element stride, which must be the kind's element size.
//!
//! Integer tensors (position ids, token type ids: the `bytes` kind) often count: 0, 1, 2, ...
//! zstd sees no repeats there (MiniLM's 512 I64 position ids: 547 bytes at level 19), their
//! differences are all one. With the header flag `DELTA` a chunk's bytes are little-endian words
//! of 2, 4 or 8 bytes (the model section's second byte), each replaced by its difference from the
//! one before, then grouped by position in a word; small frames of bytes try it (`delta_plans`).

use std::any::Any;

use super::{ChunkDecoder, ChunkEncoder, Codec, Kind, Method, Model, Plan};
use crate::cpu::Level;
use crate::error::{Error, Result};
use crate::zstd;

/// zstd level: a balance between ratio and the compression speed archives need.
const LEVEL: i32 = 6;

/// The grouped codec (method 4). Frames of any kind may use it.
pub struct GroupedCodec;

/// The header flag (docs/FORMAT.md 2.3) of chunks coded as differences of words.
pub const DELTA: u32 = 2;

/// What the codec needs on either side: the element stride, the zstd level the encoder uses, and
/// the word width of the differences (0: none).
#[derive(Clone, Copy)]
struct Stride {
    stride: usize,
    level: i32,
    delta: usize,
}

impl Codec for GroupedCodec {
    fn method(&self) -> Method {
        Method::Grouped
    }

    fn plan<'a>(&self, kind: Kind, _: &[&'a [u8]], _: &Plan) -> Result<Box<dyn ChunkEncoder + 'a>> {
        Ok(Box::new(Stride { stride: kind.element_size(), level: LEVEL, delta: 0 }))
    }

    fn read_model(&self, kind: Kind, flags: u32, model: &[u8]) -> Result<Box<dyn Model>> {
        let es = kind.element_size();
        match (flags & DELTA != 0, model) {
            (false, &[stride]) if stride as usize == es => Ok(Box::new(Stride { stride: es, level: LEVEL, delta: 0 })),
            (true, &[stride, w]) if stride as usize == es && matches!(w, 2 | 4 | 8) && (w as usize).is_multiple_of(es) => {
                Ok(Box::new(Stride { stride: es, level: LEVEL, delta: w as usize }))
            }
            _ => Err(Error::CorruptModel),
        }
    }

    /// A zstd frame header.
    fn min_coded_len(&self, _: u64) -> u64 {
        9
    }
}

/// The grouped path at zstd's strongest level, for the frame's fallback: a small frame whose own
/// codec does worse than this (tiny norms, integer tensors, smooth tables an order-0 model cannot
/// see) is written with it instead.
pub(crate) fn strong_plan<'a>(kind: Kind) -> Box<dyn ChunkEncoder + 'a> {
    Box::new(Stride { stride: kind.element_size(), level: STRONG_LEVEL, delta: 0 })
}

/// The fallback's plans with differences of words, for a small frame of `kind` holding `len`
/// bytes: words of 8, 4 and 2 bytes, for the `bytes` kind (where integer tensors go) only.
pub(crate) fn delta_plans<'a>(kind: Kind, len: usize) -> Vec<Box<dyn ChunkEncoder + 'a>> {
    if kind.element_size() != 1 {
        return Vec::new();
    }
    [8, 4, 2]
        .into_iter()
        .filter(|w| len >= 2 * w)
        .map(|w| Box::new(Stride { stride: 1, level: STRONG_LEVEL, delta: w }) as Box<dyn ChunkEncoder>)
        .collect()
}

/// The fallback's zstd level.
const STRONG_LEVEL: i32 = 19;

impl ChunkEncoder for Stride {
    fn flags(&self) -> u32 {
        if self.delta > 0 {
            DELTA
        } else {
            0
        }
    }

    fn model(&self) -> Vec<u8> {
        if self.delta > 0 {
            vec![self.stride as u8, self.delta as u8]
        } else {
            vec![self.stride as u8]
        }
    }

    fn table(&self, _: usize) -> u8 {
        0
    }

    fn encode(&self, _: usize, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let grouped = match self.delta {
            0 => group(self.stride, src),
            w => {
                // The words' differences grouped, then the bytes past the last whole word.
                let whole = src.len() / w * w;
                let mut g = group(w, &differences(w, &src[..whole]));
                g.extend_from_slice(&src[whole..]);
                g
            }
        };
        out.extend_from_slice(&zstd::compress(&grouped, self.level, 1)?);
        Ok(())
    }
}

impl Model for Stride {
    fn tables(&self) -> usize {
        1
    }

    fn decoder(&self, _: u8, _: Level) -> Box<dyn ChunkDecoder> {
        Box::new(*self)
    }
}

impl ChunkDecoder for Stride {
    fn decode(&self, _: u64, src: &[u8], dst: &mut [u8]) -> Result<()> {
        // With differences, the words are grouped by their width and the trailing bytes follow.
        let width = if self.delta > 0 { self.delta } else { self.stride };
        if width == 1 {
            return zstd::decompress_into(src, dst).map_err(|_| Error::CorruptData);
        }
        let mut grouped = vec![0u8; dst.len()];
        zstd::decompress_into(src, &mut grouped).map_err(|_| Error::CorruptData)?;
        let whole = dst.len() / width * width;
        ungroup(width, &grouped[..whole], &mut dst[..whole]);
        dst[whole..].copy_from_slice(&grouped[whole..]);
        if self.delta > 0 {
            undo_differences(width, &mut dst[..whole]);
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The mask of a `w`-byte word in a u64.
fn word_mask(w: usize) -> u64 {
    if w == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * w)) - 1
    }
}

/// The little-endian `w`-byte word `e`.
fn word(e: &[u8]) -> u64 {
    let mut d = [0u8; 8];
    d[..e.len()].copy_from_slice(e);
    u64::from_le_bytes(d)
}

/// `differences` undone in place: each word the sum of the differences up to it, wrapping.
fn undo_differences(w: usize, words: &mut [u8]) {
    let (mask, mut prev) = (word_mask(w), 0u64);
    for e in words.chunks_exact_mut(w) {
        prev = prev.wrapping_add(word(e)) & mask;
        e.copy_from_slice(&prev.to_le_bytes()[..w]);
    }
}

/// `src` (a whole number of little-endian `w`-byte words) with each word replaced by its
/// difference from the one before (the first from 0), modulo 2^(8w).
fn differences(w: usize, src: &[u8]) -> Vec<u8> {
    let (mask, mut prev) = (word_mask(w), 0u64);
    let mut out = Vec::with_capacity(src.len());
    for e in src.chunks_exact(w) {
        let v = word(e);
        out.extend_from_slice(&(v.wrapping_sub(prev) & mask).to_le_bytes()[..w]);
        prev = v;
    }
    out
}

/// `src` (a whole number of `stride`-byte elements) with its bytes grouped by position.
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

/// The inverse of `group`: `grouped` (a whole number of `stride`-byte elements, grouped) into
/// `dst`.
fn ungroup(stride: usize, grouped: &[u8], dst: &mut [u8]) {
    let n = dst.len() / stride;
    for (i, e) in dst.chunks_exact_mut(stride).enumerate() {
        for (k, b) in e.iter_mut().enumerate() {
            *b = grouped[k * n + i];
        }
    }
}
