//! Reading the tensor table of a `.safetensors` file, treating it as hostile input.
//!
//! Layout: u64 LE header length N, N bytes of JSON (`{"name": {"dtype", "shape", "data_offsets"}, ...,
//! "__metadata__": {...}}`), then the data section; offsets are relative to the data section.

use crate::error::{Error, Result};

/// A header larger than this is refused before it is read (real headers are kilobytes).
pub const MAX_HEADER_LEN: u64 = 100 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Absolute byte offset of the tensor's data in the file.
    pub offset: u64,
    pub len: u64,
}

/// Bytes per element of a safetensors dtype, if known.
pub fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
        "BF16" | "F16" | "I16" | "U16" => 2,
        "F32" | "I32" | "U32" => 4,
        "F64" | "I64" | "U64" => 8,
        _ => return None,
    })
}

/// Parses the header of `file` and returns its tensors sorted by offset. Every offset is checked
/// against the file and against dtype x shape.
pub fn read_tensors(file: &[u8]) -> Result<Vec<TensorInfo>> {
    let bad = || Error::BadContainer;
    let n = u64::from_le_bytes(file.get(..8).ok_or(bad())?.try_into().unwrap());
    if n > MAX_HEADER_LEN || n > file.len() as u64 - 8 {
        return Err(bad());
    }
    let data_start = 8 + n;
    let data_len = file.len() as u64 - data_start;
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
        let offs = v.get("data_offsets").and_then(|o| o.as_array()).ok_or(bad())?;
        if offs.len() != 2 {
            return Err(bad());
        }
        let (b, e) = (offs[0].as_u64().ok_or(bad())?, offs[1].as_u64().ok_or(bad())?);
        if b > e || e > data_len {
            return Err(bad());
        }
        let elems = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or(bad())?;
        if let Some(sz) = dtype_size(&dtype) {
            if elems.checked_mul(sz) != Some(e - b) {
                return Err(bad());
            }
        }
        out.push(TensorInfo { name: name.clone(), dtype, shape, offset: data_start + b, len: e - b });
    }
    out.sort_by(|a, b| a.offset.cmp(&b.offset).then(a.name.cmp(&b.name)));
    for w in out.windows(2) {
        if w[0].offset + w[0].len > w[1].offset {
            return Err(bad());
        }
    }
    Ok(out)
}
