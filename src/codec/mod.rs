//! The codecs: how the chunks of one kind of data are coded. A frame names its data kind (what
//! the bytes are) and its method (how they were coded); this module maps both to code.
//!
//! Every codec implements `Codec`: it plans a frame's model from the chunks (`plan`, which
//! returns the model's bytes and a `ChunkEncoder`), reads a model back (`read_model`, giving a
//! `Model` whose `ChunkDecoder`s decode chunks), and states the smallest coded chunk it can write
//! (which bounds what a hostile frame can claim). The frame (`frame.rs`) owns everything else: the
//! header, the chunk table, checksums, and which thread codes or decodes which chunk.
//!
//! Adding a codec is one new file here and one row in `KINDS` (with the `Kind` variant that
//! names it). A new ggml block type that fits the split of a block into header fields and
//! values in context is smaller still: one file under `blocks/` implementing `blocks::Layout`.

pub mod bf16;
pub mod blocks;
pub mod f32split;
pub mod grouped;
pub mod q4k;

use std::any::Any;

use crate::cpu::Level;
use crate::error::{Error, Result};

/// What the bytes of a frame are. The ids are part of the format and of the C ABI (`WZ_KIND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Little-endian bfloat16 values.
    Bf16,
    /// ggml Q4_K blocks (144 bytes per 256 weights).
    Q4K,
    /// ggml Q6_K blocks (210 bytes per 256 weights).
    Q6K,
    /// ggml Q8_0 blocks (34 bytes per 32 weights).
    Q8_0,
    /// ggml Q5_0 blocks (22 bytes per 32 weights).
    Q5_0,
    /// ggml Q5_1 blocks (24 bytes per 32 weights).
    Q5_1,
    /// ggml Q4_0 blocks (18 bytes per 32 weights).
    Q4_0,
    /// ggml Q4_1 blocks (20 bytes per 32 weights).
    Q4_1,
    /// Bytes with no structure this crate models (generic path: zstd).
    Bytes,
    /// Little-endian IEEE f32 values: high halves coded as bf16, low halves byte-grouped zstd.
    F32,
    /// Little-endian IEEE f16 values: coded like bf16 (exponent and top mantissa bits modelled).
    F16,
    /// ggml Q5_K blocks (176 bytes per 256 weights).
    Q5K,
    /// ggml IQ4_NL blocks (18 bytes per 32 weights).
    IQ4NL,
    /// ggml IQ4_XS blocks (136 bytes per 256 weights).
    IQ4XS,
    /// ggml Q3_K blocks (110 bytes per 256 weights).
    Q3K,
    /// ggml Q2_K blocks (84 bytes per 256 weights).
    Q2K,
}

/// One row of the kind table: a kind's ids and names, its element size and its codec.
pub(crate) struct KindInfo {
    pub kind: Kind,
    /// The id in frame headers and the C ABI (`WZ_KIND_*`); part of the format.
    pub id: u32,
    /// The name the CLI and the JSON reports use.
    pub name: &'static str,
    /// The ggml tensor type this kind holds, if any.
    pub ggml_type: Option<u32>,
    /// The safetensors dtype this kind holds, if any.
    pub safetensors_dtype: Option<&'static str>,
    /// Bytes of one element (a value, or a quantized block): inputs are whole elements.
    pub element_size: usize,
    /// The codec that compresses this kind.
    pub codec: &'static dyn Codec,
}

/// Every kind, in the order `Kind::ALL` lists them.
static KINDS: [KindInfo; 16] = [
    row(Kind::Bf16, 1, "bf16", Some(30), Some("BF16"), 2, &bf16::Bf16Codec),
    row(Kind::Q4K, 16, "q4_k", Some(12), None, q4k::BLOCK, &q4k::Q4kCodec),
    row(Kind::Q6K, 17, "q6_k", Some(14), None, 210, &blocks::Blocks::<blocks::Q6K>::NEW),
    row(Kind::Q8_0, 18, "q8_0", Some(8), None, 34, &blocks::Blocks::<blocks::Q8_0>::NEW),
    row(Kind::Q5_0, 19, "q5_0", Some(6), None, 22, &blocks::Blocks::<blocks::Q5_0>::NEW),
    row(Kind::Q5_1, 20, "q5_1", Some(7), None, 24, &blocks::Blocks::<blocks::Q5_1>::NEW),
    row(Kind::Q4_0, 21, "q4_0", Some(2), None, 18, &blocks::Blocks::<blocks::Q4_0>::NEW),
    row(Kind::Q4_1, 22, "q4_1", Some(3), None, 20, &blocks::Blocks::<blocks::Q4_1>::NEW),
    row(Kind::Bytes, 2, "bytes", None, None, 1, &grouped::GroupedCodec),
    row(Kind::F32, 3, "f32", Some(0), Some("F32"), 4, &f32split::F32Codec),
    // f16 splits like bf16: bits 14..3 (5 exponent, top 7 mantissa bits) form the symbol, sign
    // and the low 3 mantissa bits go raw (see `bf16`).
    row(Kind::F16, 4, "f16", Some(1), Some("F16"), 2, &bf16::Bf16Codec),
    row(Kind::Q5K, 23, "q5_k", Some(13), None, 176, &blocks::Blocks::<blocks::Q5K>::NEW),
    row(Kind::IQ4NL, 24, "iq4_nl", Some(20), None, 18, &blocks::Blocks::<blocks::IQ4NL>::NEW),
    row(Kind::IQ4XS, 25, "iq4_xs", Some(23), None, 136, &blocks::Blocks::<blocks::IQ4XS>::NEW),
    row(Kind::Q3K, 26, "q3_k", Some(11), None, 110, &blocks::Blocks::<blocks::Q3K>::NEW),
    row(Kind::Q2K, 27, "q2_k", Some(10), None, 84, &blocks::Blocks::<blocks::Q2K>::NEW),
];

const fn row(
    kind: Kind,
    id: u32,
    name: &'static str,
    ggml_type: Option<u32>,
    safetensors_dtype: Option<&'static str>,
    element_size: usize,
    codec: &'static dyn Codec,
) -> KindInfo {
    KindInfo { kind, id, name, ggml_type, safetensors_dtype, element_size, codec }
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::Bf16,
        Kind::Q4K,
        Kind::Q6K,
        Kind::Q8_0,
        Kind::Q5_0,
        Kind::Q5_1,
        Kind::Q4_0,
        Kind::Q4_1,
        Kind::Bytes,
        Kind::F32,
        Kind::F16,
        Kind::Q5K,
        Kind::IQ4NL,
        Kind::IQ4XS,
        Kind::Q3K,
        Kind::Q2K,
    ];

    pub(crate) fn info(self) -> &'static KindInfo {
        // KINDS lists the kinds in the order of `ALL`, and the enum's discriminants follow it.
        let info = &KINDS[self as usize];
        debug_assert_eq!(info.kind, self);
        info
    }

    pub fn from_u32(v: u32) -> Result<Kind> {
        KINDS.iter().find(|r| r.id == v).map(|r| r.kind).ok_or(Error::UnknownKind)
    }

    pub fn id(self) -> u32 {
        self.info().id
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The kind named `s` (case-insensitive; `q4k` and `q4_k` both name Q4_K).
    pub fn from_name(s: &str) -> Result<Kind> {
        let s = s.to_ascii_lowercase().replace("_k", "k");
        KINDS.iter().find(|r| r.name.replace("_k", "k") == s).map(|r| r.kind).ok_or(Error::UnknownKind)
    }

    /// The ggml tensor type this kind holds, if any.
    pub fn ggml_type(self) -> Option<u32> {
        self.info().ggml_type
    }

    /// The safetensors dtype this kind holds, if any.
    pub fn safetensors_dtype(self) -> Option<&'static str> {
        self.info().safetensors_dtype
    }

    /// Size of one element (a value, or a quantized block): inputs must be a whole number of them.
    pub fn element_size(self) -> usize {
        self.info().element_size
    }

    /// Whether this kind is a ggml block-quantized type (coded by Q4_K's codec or the block
    /// codecs), as opposed to floats and bytes.
    pub fn is_quantized(self) -> bool {
        matches!(self.codec().method(), Method::Q4kCtx | Method::Blocks)
    }

    /// The codec that compresses this kind.
    pub(crate) fn codec(self) -> &'static dyn Codec {
        self.info().codec
    }
}

/// How a frame's chunks were coded. Numbers are part of the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Every chunk stored as is; no model.
    Stored = 0,
    /// bf16: 12-bit log-histogram symbol with rANS + raw sign/low-mantissa nibble.
    Bf16Hist = 1,
    /// Q4_K: header fields order-0, quant pairs in the sub-block's zero-point context.
    Q4kCtx = 2,
    /// Other block types: header fields and reassembled values, each with order-0 tables.
    Blocks = 3,
    /// Generic: bytes grouped by position in an element, then zstd.
    Grouped = 4,
    /// f32: high halves as bf16 (method 1's coding), low halves byte-grouped zstd.
    F32Split = 5,
    /// bf16, f16 and f32 matrices: method 1's coding (for f32, of the high halves, in method 5's
    /// chunks) with a table per value chosen by its row's and column's scale classes
    /// (`bf16::context`).
    Bf16Ctx = 6,
}

impl Method {
    pub fn from_u8(v: u8) -> Result<Method> {
        match v {
            0 => Ok(Method::Stored),
            1 => Ok(Method::Bf16Hist),
            2 => Ok(Method::Q4kCtx),
            3 => Ok(Method::Blocks),
            4 => Ok(Method::Grouped),
            5 => Ok(Method::F32Split),
            6 => Ok(Method::Bf16Ctx),
            _ => Err(Error::CorruptHeader),
        }
    }

    /// The frame header flags this method may set: the float methods' split
    /// (`bf16::split::SIGN_IN_SYMBOL`), the generic path's differences (`grouped::DELTA`); none
    /// for the others.
    pub fn flags(self) -> u32 {
        match self {
            Method::Bf16Hist | Method::F32Split => bf16::split::SIGN_IN_SYMBOL,
            Method::Bf16Ctx => bf16::split::SIGN_IN_SYMBOL | bf16::context::COLUMN_SIGNS,
            Method::Grouped => grouped::DELTA,
            _ => 0,
        }
    }

    /// Whether frames of `kind` may use this method: stored and grouped fit every kind, any
    /// other method only the kinds whose codec writes it.
    pub fn valid_for(self, kind: Kind) -> bool {
        matches!(self, Method::Stored | Method::Grouped)
            || kind.codec().method() == self
            || (self == Method::Bf16Ctx && matches!(kind.codec().method(), Method::Bf16Hist | Method::F32Split))
    }

    /// The codec that decodes frames of `kind` coded with this method; None for stored frames.
    pub(crate) fn codec_for(self, kind: Kind) -> Option<&'static dyn Codec> {
        match self {
            Method::Stored => None,
            Method::Grouped => Some(&grouped::GroupedCodec),
            Method::Bf16Ctx => Some(&bf16::Bf16CtxCodec),
            _ => Some(kind.codec()),
        }
    }
}

/// What the frame asks of a codec's plan.
pub(crate) struct Plan {
    /// Threads the analysis may use.
    pub threads: u32,
    /// The fast variant: codecs with packed tables (the block codecs and Q4_K) build them at
    /// `packed::FAST_SCALE` instead of the default scale, for faster decoding at a small cost in
    /// ratio; the others ignore it.
    pub fast: bool,
    /// Values per row of the tensor, 0 if unknown: float codecs model rows and columns of
    /// matrices (`bf16::context`).
    pub cols: usize,
}

/// A way of coding the chunks of a frame. The codec sees whole chunks of whole elements; the
/// frame decides which thread codes or decodes each chunk, and stores a chunk raw when coding
/// does not shrink it.
pub(crate) trait Codec: Sync {
    /// The method id this codec writes in frame headers.
    fn method(&self) -> Method;

    /// Builds the frame's model from its chunks (analysing them on up to `threads` threads):
    /// the model section's bytes, and the encoder every chunk is then coded with.
    fn plan<'a>(&self, kind: Kind, chunks: &[&'a [u8]], p: &Plan) -> Result<Box<dyn ChunkEncoder + 'a>>;

    /// Parses a model section written by `plan`, as hostile input: CORRUPT_MODEL for anything
    /// `plan` could not have written.
    fn read_model(&self, kind: Kind, flags: u32, model: &[u8]) -> Result<Box<dyn Model>>;

    /// The smallest a coded chunk of `orig` original bytes can be. Frame parsing rejects smaller
    /// claims, which bounds what a frame can make a decoder allocate.
    fn min_coded_len(&self, orig: u64) -> u64;

    /// The vector kernels its decoders have besides the scalar path (tests and fuzz targets
    /// compare each with it).
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    fn levels(&self) -> &'static [Level] {
        &[]
    }
}

/// Codes the chunks of one frame with the model `plan` built.
pub(crate) trait ChunkEncoder: Sync {
    /// The method the frame is written with, when the codec chose another than its own.
    fn method(&self) -> Option<Method> {
        None
    }
    /// The frame header's flags (bytes 28..32): 0 but for the float codecs' split.
    fn flags(&self) -> u32 {
        0
    }
    /// The model section.
    fn model(&self) -> Vec<u8>;
    /// The index of the table chunk `i` is coded with (written in its chunk table entry).
    fn table(&self, i: usize) -> u8;
    /// Appends chunk `i` (whose bytes are `src`), coded, to `out`.
    fn encode(&self, i: usize, src: &[u8], out: &mut Vec<u8>) -> Result<()>;
    /// Whether `encode_pair` codes two chunks faster than two calls of `encode` (the frame
    /// writer then hands chunks over in pairs).
    fn pairs(&self) -> bool {
        false
    }
    /// Chunks `i` and `i + 1` (`src[0]`, `src[1]`), each appended to its `out`: the bytes
    /// `encode` gives each.
    fn encode_pair(&self, i: usize, src: [&[u8]; 2], out: [&mut Vec<u8>; 2]) -> Result<()> {
        encode_each(self, i, src, out)
    }
}

/// `ChunkEncoder::encode_pair` one chunk after the other: what encoders that pair do with two
/// chunks they cannot code in turn.
pub(crate) fn encode_each<E: ChunkEncoder + ?Sized>(enc: &E, i: usize, src: [&[u8]; 2], out: [&mut Vec<u8>; 2]) -> Result<()> {
    let [a, b] = out;
    enc.encode(i, src[0], a)?;
    enc.encode(i + 1, src[1], b)
}

/// A frame's model, parsed.
pub(crate) trait Model: Send + Sync {
    /// How many tables chunk entries may name.
    fn tables(&self) -> usize;
    /// Whether its decoders' `decode_pair` interleaves two chunks (the frame then hands chunks
    /// over in pairs).
    fn pairs(&self) -> bool {
        false
    }
    /// The decoding tables of table `table` (below `tables()`), for kernels up to `level`. Each
    /// thread that decodes builds the decoders it needs.
    fn decoder(&self, table: u8, level: Level) -> Box<dyn ChunkDecoder>;
}

/// Decodes the chunks coded with one table.
pub(crate) trait ChunkDecoder: Send + Any {
    /// Decodes the coded chunk `src` into `dst`, whose length is the chunk's original size;
    /// `start` is the chunk's offset in the frame's original bytes (codecs whose contexts follow
    /// a value's row and column need it).
    fn decode(&self, start: u64, src: &[u8], dst: &mut [u8]) -> Result<()>;

    /// Decodes two chunks, `(src, dst)` with this decoder and `b` with `b_dec` (of the same
    /// codec). Codecs whose kernels interleave two chunks override it (and `Model::pairs`).
    fn decode_pair(
        &self,
        a: (u64, &[u8], &mut [u8]),
        b_dec: &dyn ChunkDecoder,
        b: (u64, &[u8], &mut [u8]),
    ) -> Result<()> {
        self.decode(a.0, a.1, a.2)?;
        b_dec.decode(b.0, b.1, b.2)
    }

    fn as_any(&self) -> &dyn Any;
}
