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

use std::any::Any;

use super::{bf16, ChunkDecoder, ChunkEncoder, Codec, Kind, Method, Model, Plan};
use crate::cpu::Level;
use crate::error::{Error, Result};
use crate::{parallel, zstd};

/// zstd level of the low halves: higher levels find nothing more in near-random bytes.
const LO_LEVEL: i32 = 3;

/// The f32 codec (method 5).
pub struct F32Codec;

impl Codec for F32Codec {
    fn method(&self) -> Method {
        Method::F32Split
    }

    /// Every chunk split once (in parallel) and histogrammed; the bf16 plan over the high
    /// halves; the chunks coded later from the same split.
    fn plan<'a>(&self, _: Kind, chunks: &[&'a [u8]], p: &Plan) -> Result<Box<dyn ChunkEncoder + 'a>> {
        let mut halves: Vec<(&[u8], Halves)> = chunks.iter().map(|c| (*c, Default::default())).collect();
        parallel::for_each_mut(&mut halves, p.threads, |_, (c, h)| {
            *h = split(c);
            Ok(())
        })?;
        let halves: Vec<Halves> = halves.into_iter().map(|p| p.1).collect();
        let his: Vec<&[u8]> = halves.iter().map(|h| &h.hi[..]).collect();
        let rows = bf16::context::takes_rows(p.cols).then_some((Kind::Bf16, p.cols));
        let (sp, hists, row_sums) = bf16::split_and_histograms(&his, p.threads, rows)?;
        let plain = bf16::Tables::draft(&hists);
        // Matrices: the high halves in their rows' and columns' contexts (method 6) where that
        // is smaller (the low halves cost the same either way).
        let ctx = if p.cols > 0 { bf16::context::plan_ctx(Kind::Bf16, &his, p.cols, p.threads, sp, row_sums)? } else { None };
        let starts: Vec<usize> = bf16::value_starts(&his).collect();
        let values = his.iter().map(|c| c.len() / 2).sum();
        drop(his);
        Ok(match bf16::choose(plain, ctx, values, p.threads)? {
            bf16::Chosen::Ctx(plan) => Box::new(CtxEncoder { plan: *plan, halves, starts }),
            bf16::Chosen::Plain(models, assign) => Box::new(Encoder { tables: bf16::Tables::of(models, assign, sp), halves }),
        })
    }

    fn read_model(&self, _: Kind, flags: u32, model: &[u8]) -> Result<Box<dyn Model>> {
        Ok(Box::new(Models(bf16::read_models(model)?, bf16::Split::of_flags(flags))))
    }

    fn min_coded_len(&self, orig: u64) -> u64 {
        min_coded_len(orig)
    }

    fn levels(&self) -> &'static [Level] {
        bf16::Bf16Codec.levels()
    }
}

struct Encoder {
    tables: bf16::Tables,
    halves: Vec<Halves>,
}

impl ChunkEncoder for Encoder {
    fn flags(&self) -> u32 {
        self.tables.flags()
    }

    fn model(&self) -> Vec<u8> {
        self.tables.write()
    }

    fn table(&self, i: usize) -> u8 {
        self.tables.table(i)
    }

    fn encode(&self, i: usize, _: &[u8], out: &mut Vec<u8>) -> Result<()> {
        encode_chunk(self.tables.encoder(i), &self.halves[i], out)
    }
}

/// Method 6 for f32: the high halves' plan, the split chunks, the index of every chunk's first
/// value.
struct CtxEncoder {
    plan: bf16::context::CtxPlan,
    halves: Vec<Halves>,
    starts: Vec<usize>,
}

impl ChunkEncoder for CtxEncoder {
    fn method(&self) -> Option<Method> {
        Some(Method::Bf16Ctx)
    }

    fn flags(&self) -> u32 {
        self.plan.flags()
    }

    fn model(&self) -> Vec<u8> {
        self.plan.write()
    }

    fn table(&self, _: usize) -> u8 {
        0
    }

    fn encode(&self, i: usize, _: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let h = &self.halves[i];
        let mut hi = Vec::new();
        self.plan.encode_chunk(self.starts[i], &h.hi, &mut hi)?;
        put_chunk(&hi, h, out)
    }
}

/// Method 6's model of an f32 frame, whose decoder decodes f32 chunks.
pub(crate) struct CtxModels(pub(crate) bf16::CtxModels);

impl Model for CtxModels {
    fn tables(&self) -> usize {
        1
    }

    fn decoder(&self, _: u8, level: Level) -> Box<dyn ChunkDecoder> {
        Box::new(Decoder(self.0.decoder_of(level)))
    }
}

/// The bf16 models of a frame, whose decoders decode f32 chunks.
struct Models(Vec<bf16::Model>, bf16::Split);

impl Model for Models {
    fn tables(&self) -> usize {
        self.0.len()
    }

    fn decoder(&self, table: u8, level: Level) -> Box<dyn ChunkDecoder> {
        Box::new(Decoder(self.0[table as usize].decoder(level, self.1)))
    }
}

struct Decoder(bf16::Decoder);

impl ChunkDecoder for Decoder {
    fn decode(&self, start: u64, src: &[u8], dst: &mut [u8]) -> Result<()> {
        decode_chunk(&self.0, start, src, dst)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

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
pub fn encode_chunk(enc: &bf16::Encoder, h: &Halves, out: &mut Vec<u8>) -> Result<()> {
    let mut hi = Vec::new();
    bf16::encode_chunk(enc, &h.hi, &mut hi)?;
    put_chunk(&hi, h, out)
}

/// Appends a chunk: the high halves' coding `hi`, then the low halves of `h` through zstd.
fn put_chunk(hi: &[u8], h: &Halves, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(&(hi.len() as u32).to_le_bytes());
    out.extend_from_slice(hi);
    out.extend_from_slice(&zstd::compress(&h.lo, LO_LEVEL, 1)?);
    Ok(())
}

/// Decodes a chunk written by `encode_chunk` into `dst` (a whole number of f32 values), the
/// chunk starting at byte `start` of the frame's original.
pub fn decode_chunk(dec: &bf16::Decoder, start: u64, src: &[u8], dst: &mut [u8]) -> Result<()> {
    let n = dst.len() / 4;
    let len = src.get(..4).ok_or(Error::CorruptData)?;
    let hlen = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let his = src.get(4..4usize.checked_add(hlen).ok_or(Error::CorruptData)?).ok_or(Error::CorruptData)?;
    let los = &src[4 + hlen..];
    let (mut hi, mut lo) = (vec![0u8; 2 * n], vec![0u8; 2 * n]);
    // The high halves are a bf16 stream of half the bytes.
    bf16::decode_chunk(dec, start / 2, his, &mut hi)?;
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
