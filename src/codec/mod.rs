//! Per-kind codecs. A frame names its data kind (what the bytes are) and its method (how they were
//! coded); this module maps both to code.

pub mod bf16;
pub mod blocks;
pub mod f32split;
pub mod grouped;
pub mod q4k;

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
}

/// (kind, id, name, ggml type id, safetensors dtype)
const KINDS: [(Kind, u32, &str, Option<u32>, Option<&str>); 11] = [
    (Kind::Bf16, 1, "bf16", Some(30), Some("BF16")),
    (Kind::Q4K, 16, "q4_k", Some(12), None),
    (Kind::Q6K, 17, "q6_k", Some(14), None),
    (Kind::Q8_0, 18, "q8_0", Some(8), None),
    (Kind::Q5_0, 19, "q5_0", Some(6), None),
    (Kind::Q5_1, 20, "q5_1", Some(7), None),
    (Kind::Q4_0, 21, "q4_0", Some(2), None),
    (Kind::Q4_1, 22, "q4_1", Some(3), None),
    (Kind::Bytes, 2, "bytes", None, None),
    (Kind::F32, 3, "f32", Some(0), Some("F32")),
    (Kind::F16, 4, "f16", Some(1), Some("F16")),
];

impl Kind {
    fn row(self) -> &'static (Kind, u32, &'static str, Option<u32>, Option<&'static str>) {
        KINDS.iter().find(|r| r.0 == self).expect("every kind has a row")
    }

    pub fn from_u32(v: u32) -> Result<Kind> {
        KINDS.iter().find(|r| r.1 == v).map(|r| r.0).ok_or(Error::UnknownKind)
    }

    pub fn id(self) -> u32 {
        self.row().1
    }

    pub fn name(self) -> &'static str {
        self.row().2
    }

    pub fn from_name(s: &str) -> Result<Kind> {
        let s = s.to_ascii_lowercase().replace("_k", "k");
        KINDS.iter().find(|r| r.2.replace("_k", "k") == s).map(|r| r.0).ok_or(Error::UnknownKind)
    }

    /// The ggml tensor type this kind holds, if any.
    pub fn ggml_type(self) -> Option<u32> {
        self.row().3
    }

    /// The safetensors dtype this kind holds, if any.
    pub fn safetensors_dtype(self) -> Option<&'static str> {
        self.row().4
    }

    /// The block layout of the generic block codec, for the kinds it serves.
    pub fn layout(self) -> Option<blocks::Layout> {
        Some(match self {
            Kind::Q6K => blocks::Layout::Q6K,
            Kind::Q8_0 => blocks::Layout::Q8_0,
            Kind::Q5_0 => blocks::Layout::Q5_0,
            Kind::Q5_1 => blocks::Layout::Q5_1,
            Kind::Q4_0 => blocks::Layout::Q4_0,
            Kind::Q4_1 => blocks::Layout::Q4_1,
            Kind::Bf16 | Kind::Q4K | Kind::Bytes | Kind::F32 | Kind::F16 => return None,
        })
    }

    /// Size of one element (a value, or a quantized block): inputs must be a whole number of them.
    pub fn element_size(self) -> usize {
        match self {
            Kind::Bf16 | Kind::F16 => 2,
            Kind::F32 => 4,
            Kind::Bytes => 1,
            Kind::Q4K => q4k::BLOCK,
            k => k.layout().map_or(1, |l| l.block()),
        }
    }

    pub const ALL: [Kind; 11] = [
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
    ];
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
            _ => Err(Error::CorruptHeader),
        }
    }

    /// Whether frames of `kind` may use this method.
    pub fn valid_for(self, kind: Kind) -> bool {
        match self {
            Method::Stored => true,
            Method::Bf16Hist => matches!(kind, Kind::Bf16 | Kind::F16),
            Method::F32Split => kind == Kind::F32,
            Method::Q4kCtx => kind == Kind::Q4K,
            Method::Blocks => kind.layout().is_some(),
            Method::Grouped => true,
        }
    }
}
