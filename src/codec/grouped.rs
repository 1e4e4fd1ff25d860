//! The generic path for data without a model of its own (raw bytes, integer tensors, ggml types
//! this crate does not model): bytes grouped by their position in an element (all first bytes,
//! then all second bytes, ...) and compressed with zstd. Grouping puts the sign/exponent bytes of
//! floats together, where zstd finds their redundancy; for single bytes it is plain zstd.
//!
//! The model section is one byte, the element stride, which must be the kind's element size.

use std::any::Any;

use super::{ChunkDecoder, ChunkEncoder, Codec, Kind, Method, Model, Plan};
use crate::cpu::Level;
use crate::error::{Error, Result};
use crate::zstd;

/// zstd level: a balance between ratio and the compression speed archives need.
const LEVEL: i32 = 6;

/// The grouped codec (method 4). Frames of any kind may use it.
pub struct GroupedCodec;

/// The element stride, which is all the codec needs on either side, and the zstd level the
/// encoder uses.
struct Stride(usize, i32);

impl Codec for GroupedCodec {
    fn method(&self) -> Method {
        Method::Grouped
    }

    fn plan<'a>(&self, kind: Kind, _: &[&'a [u8]], _: &Plan) -> Result<Box<dyn ChunkEncoder + 'a>> {
        Ok(Box::new(Stride(kind.element_size(), LEVEL)))
    }

    fn read_model(&self, kind: Kind, _: u32, model: &[u8]) -> Result<Box<dyn Model>> {
        match *model {
            [stride] if stride as usize == kind.element_size() => Ok(Box::new(Stride(stride as usize, LEVEL))),
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
    Box::new(Stride(kind.element_size(), STRONG_LEVEL))
}

/// The fallback's zstd level.
const STRONG_LEVEL: i32 = 19;

impl ChunkEncoder for Stride {
    fn model(&self) -> Vec<u8> {
        vec![self.0 as u8]
    }

    fn table(&self, _: usize) -> u8 {
        0
    }

    fn encode(&self, _: usize, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&zstd::compress(&group(self.0, src), self.1, 1)?);
        Ok(())
    }
}

impl Model for Stride {
    fn tables(&self) -> usize {
        1
    }

    fn decoder(&self, _: u8, _: Level) -> Box<dyn ChunkDecoder> {
        Box::new(Stride(self.0, self.1))
    }
}

impl ChunkDecoder for Stride {
    fn decode(&self, _: u64, src: &[u8], dst: &mut [u8]) -> Result<()> {
        let stride = self.0;
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

    fn as_any(&self) -> &dyn Any {
        self
    }
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
