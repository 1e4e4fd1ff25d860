//! Reading the tensor table of a GGUF file (versions 2 and 3), treating it as hostile input:
//! every count and length is checked against the bytes that remain before it is used.
//!
//! Layout: magic "GGUF", u32 version, u64 tensor count, u64 key/value count, the key/values
//! (string key, u32 type, value), the tensor infos (string name, u32 n_dims, n_dims × u64 dims,
//! u32 ggml type, u64 offset relative to the data section), padding to `general.alignment`
//! (default 32), then the data section.
//!
//! Errors are specific: a file that ends inside its header is `ContainerTruncated`, a wrong magic
//! `ContainerBadMagic`, a version other than 2 or 3 `ContainerVersion`; a tensor that starts past
//! the end of the file (or whose extent overflows) `TensorOutOfRange`, one that starts inside the
//! file but ends past it `ContainerTruncated` (the file was cut short), two that share bytes
//! `TensorOverlap`; anything else malformed (an unknown value type, a bad alignment, a count the
//! remaining bytes cannot hold) `BadContainer`.

use crate::error::{Error, Result};

/// A ggml tensor type whose block size this crate knows, as ggml's type traits give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GgmlType {
    /// The type id in GGUF tensor infos.
    pub id: u32,
    pub name: &'static str,
    /// Weights per block.
    pub block_weights: u64,
    /// Bytes per block.
    pub block_bytes: u64,
}

const fn t(id: u32, name: &'static str, block_weights: u64, block_bytes: u64) -> GgmlType {
    GgmlType { id, name, block_weights, block_bytes }
}

/// Every ggml type this crate knows the block size of.
pub const GGML_TYPES: &[GgmlType] = &[
    t(0, "F32", 1, 4),
    t(1, "F16", 1, 2),
    t(2, "Q4_0", 32, 18),
    t(3, "Q4_1", 32, 20),
    t(6, "Q5_0", 32, 22),
    t(7, "Q5_1", 32, 24),
    t(8, "Q8_0", 32, 34),
    t(9, "Q8_1", 32, 36),
    t(10, "Q2_K", 256, 84),
    t(11, "Q3_K", 256, 110),
    t(12, "Q4_K", 256, 144),
    t(13, "Q5_K", 256, 176),
    t(14, "Q6_K", 256, 210),
    t(15, "Q8_K", 256, 292),
    t(16, "IQ2_XXS", 256, 66),
    t(17, "IQ2_XS", 256, 74),
    t(18, "IQ3_XXS", 256, 98),
    t(19, "IQ1_S", 256, 50),
    t(20, "IQ4_NL", 32, 18),
    t(21, "IQ3_S", 256, 110),
    t(22, "IQ2_S", 256, 82),
    t(23, "IQ4_XS", 256, 136),
    t(24, "I8", 1, 1),
    t(25, "I16", 1, 2),
    t(26, "I32", 1, 4),
    t(27, "I64", 1, 8),
    t(28, "F64", 1, 8),
    t(29, "IQ1_M", 256, 56),
    t(30, "BF16", 1, 2),
    t(34, "TQ1_0", 256, 54),
    t(35, "TQ2_0", 256, 66),
    t(39, "MXFP4", 32, 17),
    t(40, "NVFP4", 64, 36),
    t(41, "Q1_0", 128, 18),
];

/// The ggml type with id `id`, if this crate knows it.
pub fn ggml_type(id: u32) -> Option<&'static GgmlType> {
    GGML_TYPES.iter().find(|t| t.id == id)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// The name's bytes as stored (GGUF does not promise UTF-8; `name` is a lossy copy).
    pub name_bytes: Vec<u8>,
    pub ggml_type: u32,
    pub dims: Vec<u64>,
    /// Absolute byte offset of the tensor's data in the file.
    pub offset: u64,
    /// Bytes of data, or None for a type whose block size this crate does not know.
    pub len: Option<u64>,
}

impl TensorInfo {
    pub fn type_name(&self) -> &'static str {
        type_name(self.ggml_type)
    }
}

/// The name of a ggml type id, or "unknown".
pub fn type_name(id: u32) -> &'static str {
    ggml_type(id).map_or("unknown", |t| t.name)
}

/// The parsed header of a GGUF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gguf {
    pub version: u32,
    pub alignment: u64,
    /// Offset of the data section: everything before it is metadata (header, key/values, tensor
    /// infos, padding).
    pub data_start: u64,
    /// Tensors in the order of the file's tensor infos.
    pub tensors: Vec<TensorInfo>,
}

/// Most dimensions a tensor may have (ggml has 4; a little room for other writers).
pub const MAX_DIMS: u32 = 8;

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> u64 {
        (self.b.len() - self.pos) as u64
    }
    fn take(&mut self, n: u64) -> Result<&[u8]> {
        if n > self.remaining() {
            return Err(Error::ContainerTruncated);
        }
        let end = self.pos + n as usize;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn string(&mut self) -> Result<&[u8]> {
        let n = self.u64()?;
        self.take(n)
    }
    /// Skips a value of GGUF type `t`, returning it as u64 when it is an unsigned integer.
    fn value(&mut self, t: u32, depth: u32) -> Result<Option<u64>> {
        let fixed = match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 => {
                self.string()?;
                return Ok(None);
            }
            9 if depth == 0 => {
                let et = self.u32()?;
                let n = self.u64()?;
                // Every element takes at least one byte: a count the remaining bytes cannot hold
                // means the file was cut short.
                if n > self.remaining() {
                    return Err(Error::ContainerTruncated);
                }
                for _ in 0..n {
                    self.value(et, depth + 1)?;
                }
                return Ok(None);
            }
            _ => return Err(Error::BadContainer),
        };
        let v = self.take(fixed)?;
        Ok(match t {
            0 => Some(v[0] as u64),
            2 => Some(u16::from_le_bytes([v[0], v[1]]) as u64),
            4 => Some(u32::from_le_bytes(v.try_into().unwrap()) as u64),
            10 => Some(u64::from_le_bytes(v.try_into().unwrap())),
            _ => None,
        })
    }
}

/// Parses the header of `file`; every tensor is checked to lie inside the file and not to
/// overlap another.
pub fn read(file: &[u8]) -> Result<Gguf> {
    read_sized(file, file.len() as u64)
}

/// `read` for a file of `file_len` bytes of which `head` is a prefix holding at least the
/// metadata ([CONTAINER_TRUNCATED] when it does not: read a longer prefix).
pub(crate) fn read_sized(head: &[u8], file_len: u64) -> Result<Gguf> {
    let g = parse_header(head, file_len)?;
    // In file order: the first tensor that does not fit tells whether the file was cut short
    // (it starts inside the file) or the offset is wild (it starts past the end).
    // Ties by size: an empty tensor at the offset where another starts is not an overlap.
    let mut order: Vec<&TensorInfo> = g.tensors.iter().collect();
    order.sort_by_key(|t| (t.offset, t.len.unwrap_or(0)));
    let mut prev_end = g.data_start;
    for t in order {
        let end = t.offset + t.len.unwrap_or(0);
        if t.offset > file_len {
            return Err(Error::TensorOutOfRange);
        }
        if end > file_len {
            return Err(Error::ContainerTruncated);
        }
        if t.offset < prev_end {
            return Err(Error::TensorOverlap);
        }
        prev_end = end;
    }
    Ok(g)
}

/// Parses the metadata at the start of `file` (which may hold only the metadata): the tensors'
/// extents are checked for overflow but not against the file's size or each other.
pub fn read_header_only(file: &[u8]) -> Result<Gguf> {
    parse_header(file, file.len() as u64)
}

/// `read_header_only` of a file of `file_len` bytes whose first bytes are `file`.
fn parse_header(file: &[u8], file_len: u64) -> Result<Gguf> {
    let mut r = Reader { b: file, pos: 0 };
    if file.len() < 4 {
        return Err(if b"GGUF".starts_with(file) { Error::ContainerTruncated } else { Error::ContainerBadMagic });
    }
    if r.take(4)? != b"GGUF" {
        return Err(Error::ContainerBadMagic);
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(Error::ContainerVersion);
    }
    let n_tensors = r.u64()?;
    let n_kv = r.u64()?;
    // A key/value takes at least 13 bytes and a tensor info at least 24.
    if n_tensors > r.remaining() / 24 || n_kv > r.remaining() / 13 {
        return Err(Error::ContainerTruncated);
    }
    let mut alignment = 32u64;
    for _ in 0..n_kv {
        let key = r.string()?.to_vec();
        let t = r.u32()?;
        let v = r.value(t, 0)?;
        if key == b"general.alignment" {
            // ggml writes it as u32; any unsigned integer type is accepted.
            alignment = v.filter(|&a| a > 0 && a.is_power_of_two() && a <= 1 << 30).ok_or(Error::BadContainer)?;
        }
    }
    // Grown as infos are read, not reserved from the count: a lying count must not reserve memory.
    let mut tensors = Vec::new();
    for _ in 0..n_tensors {
        let name_bytes = r.string()?.to_vec();
        let name = String::from_utf8_lossy(&name_bytes).into_owned();
        let nd = r.u32()?;
        if nd > MAX_DIMS {
            return Err(Error::BadContainer);
        }
        let dims = (0..nd).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
        let ggml_type = r.u32()?;
        let rel = r.u64()?;
        let elems = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or(Error::BadContainer)?;
        let len = match self::ggml_type(ggml_type) {
            Some(t) => {
                if !elems.is_multiple_of(t.block_weights) {
                    return Err(Error::BadContainer);
                }
                Some((elems / t.block_weights).checked_mul(t.block_bytes).ok_or(Error::TensorOutOfRange)?)
            }
            None => None,
        };
        tensors.push(TensorInfo { name, name_bytes, ggml_type, dims, offset: rel, len });
    }
    let mut data_start = (r.pos as u64).div_ceil(alignment) * alignment;
    if data_start > file_len {
        // A file without tensors (a vocabulary-only GGUF) may end before the padding.
        if !tensors.is_empty() {
            return Err(Error::ContainerTruncated);
        }
        data_start = file_len;
    }
    for t in &mut tensors {
        t.offset = t.offset.checked_add(data_start).ok_or(Error::TensorOutOfRange)?;
        t.offset.checked_add(t.len.unwrap_or(0)).ok_or(Error::TensorOutOfRange)?;
    }
    Ok(Gguf { version, alignment, data_start, tensors })
}

/// The tensors of `file` in the order of its tensor infos (see `read`).
pub fn read_tensors(file: &[u8]) -> Result<Vec<TensorInfo>> {
    Ok(read(file)?.tensors)
}
