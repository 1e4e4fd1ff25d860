//! Reading the tensor table of a `.safetensors` file, treating it as hostile input.
//!
//! Layout: u64 LE header length N, N bytes of JSON (`{"name": {"dtype", "shape", "data_offsets"}, ...,
//! "__metadata__": {...}}`), then the data section; offsets are relative to the data section.
//!
//! Errors are specific: a file shorter than its header says `ContainerTruncated`; a header that
//! is not a JSON object of tensor entries, a dtype whose size disagrees with shape and offsets, or
//! a header length above `MAX_HEADER_LEN` `BadContainer`; a tensor starting past the end of the
//! data `TensorOutOfRange`, one starting inside it but ending past it `ContainerTruncated`, two
//! sharing bytes `TensorOverlap`.

use crate::error::{Error, Result};

/// A header larger than this is refused before it is read (real headers are kilobytes).
pub const MAX_HEADER_LEN: u64 = 100 << 20;

/// A safetensors dtype this crate knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dtype {
    /// The code an archive records as the tensor's container type (docs/FORMAT.md, 8.7).
    pub code: u32,
    pub name: &'static str,
    /// Bytes per element.
    pub size: u64,
}

const fn d(code: u32, name: &'static str, size: u64) -> Dtype {
    Dtype { code, name, size }
}

/// Every dtype this crate knows; the codes are part of the archive format.
pub const DTYPES: &[Dtype] = &[
    d(0, "BOOL", 1),
    d(1, "U8", 1),
    d(2, "I8", 1),
    d(3, "I16", 2),
    d(4, "U16", 2),
    d(5, "F16", 2),
    d(6, "BF16", 2),
    d(7, "I32", 4),
    d(8, "U32", 4),
    d(9, "F32", 4),
    d(10, "F64", 8),
    d(11, "I64", 8),
    d(12, "U64", 8),
    d(13, "F8_E4M3", 1),
    d(14, "F8_E5M2", 1),
];

/// The container type code of a dtype this crate does not know (its bytes pass through).
pub const UNKNOWN_DTYPE: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Absolute byte offset of the tensor's data in the file.
    pub offset: u64,
    pub len: u64,
}

impl TensorInfo {
    /// The dtype's code (`DTYPES`), or `UNKNOWN_DTYPE`.
    pub fn dtype_code(&self) -> u32 {
        DTYPES.iter().find(|d| d.name == self.dtype).map_or(UNKNOWN_DTYPE, |d| d.code)
    }
}

/// The name of a dtype code, or "unknown".
pub fn dtype_name(code: u32) -> &'static str {
    DTYPES.iter().find(|d| d.code == code).map_or("unknown", |d| d.name)
}

/// Bytes per element of a safetensors dtype, if known.
pub fn dtype_size(dtype: &str) -> Option<u64> {
    DTYPES.iter().find(|d| d.name == dtype).map(|d| d.size)
}

/// Whether `file` looks like a safetensors file: a header length, then a JSON object.
pub fn looks_like(file: &[u8]) -> bool {
    match file.get(..8) {
        Some(b) => {
            let n = u64::from_le_bytes(b.try_into().unwrap());
            // The size limit is `read`'s to enforce, with its own error.
            n >= 2 && file.get(8) == Some(&b'{')
        }
        None => false,
    }
}

/// The parsed header of a safetensors file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafeTensors {
    /// 8 + the header length: where the data section starts.
    pub data_start: u64,
    /// Tensors sorted by offset (then name).
    pub tensors: Vec<TensorInfo>,
}

/// Parses the header of `file` (see the module comment for the errors).
pub fn read(file: &[u8]) -> Result<SafeTensors> {
    read_sized(file, file.len() as u64)
}

/// `read` for a file of `file_len` bytes of which `file` is a prefix holding at least the
/// header (its first 8 + N bytes).
pub(crate) fn read_sized(file: &[u8], file_len: u64) -> Result<SafeTensors> {
    let bad = || Error::BadContainer;
    let n = u64::from_le_bytes(file.get(..8).ok_or(Error::ContainerTruncated)?.try_into().unwrap());
    if n > MAX_HEADER_LEN {
        return Err(bad());
    }
    if n > file_len - 8 || n > file.len() as u64 - 8 {
        return Err(Error::ContainerTruncated);
    }
    let data_start = 8 + n;
    let data_len = file_len - data_start;
    let json: serde_json::Value = serde_json::from_slice(&file[8..data_start as usize]).map_err(|_| bad())?;
    let obj = json.as_object().ok_or(bad())?;
    let mut out = Vec::with_capacity(obj.len());
    for (name, v) in obj {
        if name == "__metadata__" {
            continue;
        }
        let dtype = v.get("dtype").and_then(|d| d.as_str()).ok_or(bad())?.to_string();
        let shape: Vec<u64> = v
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or(bad())?
            .iter()
            .map(|d| d.as_u64().ok_or(bad()))
            .collect::<Result<_>>()?;
        if shape.len() > 8 {
            return Err(bad());
        }
        let offs = v.get("data_offsets").and_then(|o| o.as_array()).ok_or(bad())?;
        if offs.len() != 2 {
            return Err(bad());
        }
        let (b, e) = (offs[0].as_u64().ok_or(bad())?, offs[1].as_u64().ok_or(bad())?);
        if b > e {
            return Err(bad());
        }
        let elems = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or(bad())?;
        if let Some(sz) = dtype_size(&dtype) {
            if elems.checked_mul(sz) != Some(e - b) {
                return Err(bad());
            }
        }
        if data_start.checked_add(e).is_none() {
            return Err(Error::TensorOutOfRange);
        }
        out.push(TensorInfo { name: name.clone(), dtype, shape, offset: data_start + b, len: e - b });
    }
    out.sort_by(|a, b| (a.offset, a.len, &a.name).cmp(&(b.offset, b.len, &b.name)));
    let mut prev_end = data_start;
    for t in &out {
        if t.offset - data_start > data_len {
            return Err(Error::TensorOutOfRange);
        }
        if t.offset + t.len > file_len {
            return Err(Error::ContainerTruncated);
        }
        if t.offset < prev_end {
            return Err(Error::TensorOverlap);
        }
        prev_end = t.offset + t.len;
    }
    Ok(SafeTensors { data_start, tensors: out })
}

/// Parses the header of `file` and returns its tensors sorted by offset (see `read`).
pub fn read_tensors(file: &[u8]) -> Result<Vec<TensorInfo>> {
    Ok(read(file)?.tensors)
}
