//! Per-kind codecs. A frame names its data kind (what the bytes are) and its method (how they were
//! coded); this module maps both to code.

pub mod bf16;
pub mod q4k;

use crate::error::{Error, Result};

/// What the bytes of a frame are. The numbers are part of the format and of the C ABI (`WZ_KIND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Little-endian bfloat16 values.
    Bf16,
    /// ggml Q4_K blocks (144 bytes per 256 weights).
    Q4K,
}

impl Kind {
    pub fn from_u32(v: u32) -> Result<Kind> {
        match v {
            1 => Ok(Kind::Bf16),
            16 => Ok(Kind::Q4K),
            _ => Err(Error::UnknownKind),
        }
    }

    pub fn id(self) -> u32 {
        match self {
            Kind::Bf16 => 1,
            Kind::Q4K => 16,
        }
    }

    /// Size of one element: inputs must be a whole number of them.
    pub fn element_size(self) -> usize {
        match self {
            Kind::Bf16 => 2,
            Kind::Q4K => crate::codec::q4k::BLOCK,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Bf16 => "bf16",
            Kind::Q4K => "q4k",
        }
    }

    pub fn from_name(s: &str) -> Result<Kind> {
        match s {
            "bf16" => Ok(Kind::Bf16),
            "q4k" | "q4_k" => Ok(Kind::Q4K),
            _ => Err(Error::UnknownKind),
        }
    }

    pub const ALL: [Kind; 2] = [Kind::Bf16, Kind::Q4K];
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
}

impl Method {
    pub fn from_u8(v: u8) -> Result<Method> {
        match v {
            0 => Ok(Method::Stored),
            1 => Ok(Method::Bf16Hist),
            2 => Ok(Method::Q4kCtx),
            _ => Err(Error::CorruptHeader),
        }
    }

    /// Whether frames of `kind` may use this method.
    pub fn valid_for(self, kind: Kind) -> bool {
        match self {
            Method::Stored => true,
            Method::Bf16Hist => kind == Kind::Bf16,
            Method::Q4kCtx => kind == Kind::Q4K,
        }
    }
}
