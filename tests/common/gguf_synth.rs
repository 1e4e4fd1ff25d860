//! A GGUF writer for tests, written from the layout in `src/gguf.rs`: magic, u32 version, u64
//! tensor count, u64 key/value count, the key/values (string key, u32 value type, value), the
//! tensor infos (string name, u32 n_dims, n_dims × u64 dims, u32 ggml type, u64 offset relative to
//! the data section), padding to the alignment, then the data section.
//!
//! It makes the files real GGUF writers make and the ones they do not: any version, alignment,
//! info order, padding content (zeros or garbage), trailing bytes, zero-size and unknown-type
//! tensors. `Built` records where every header field is, so hostile variants are made by patching
//! a valid file, and what an archive of the file must hold (`expected`).
//!
//! Included with `#[path = "common/gguf_synth.rs"] mod gguf_synth;`; not every crate uses every item.
#![allow(dead_code)]

/// GGUF value type ids.
pub mod vt {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// ggml type ids used by the tests.
pub mod gt {
    pub const F32: u32 = 0;
    pub const F16: u32 = 1;
    pub const Q4_0: u32 = 2;
    pub const Q8_0: u32 = 8;
    pub const Q2_K: u32 = 10;
    pub const Q4_K: u32 = 12;
    pub const Q6_K: u32 = 14;
    pub const I32: u32 = 26;
    pub const BF16: u32 = 30;
    /// Not a ggml type this crate (or ggml) knows.
    pub const UNKNOWN: u32 = 99;
}

/// (ggml type, weights per block, bytes per block), written out here from the ggml block layouts
/// so the tests do not take the sizes from the code under test.
const BLOCKS: &[(u32, u64, u64)] = &[
    (gt::F32, 1, 4),
    (gt::F16, 1, 2),
    (gt::Q4_0, 32, 18),
    (gt::Q8_0, 32, 34),
    (gt::Q2_K, 256, 84),
    (gt::Q4_K, 256, 144),
    (gt::Q6_K, 256, 210),
    (gt::I32, 1, 4),
    (gt::BF16, 1, 2),
];

/// Bytes of a tensor of a known type, or None for a type this table does not have.
pub fn ggml_size(ggml_type: u32, dims: &[u64]) -> Option<u64> {
    let &(_, per, bytes) = BLOCKS.iter().find(|b| b.0 == ggml_type)?;
    let elems: u64 = dims.iter().product();
    assert_eq!(elems % per, 0, "type {ggml_type}: {elems} weights is not a whole number of blocks");
    Some(elems / per * bytes)
}

/// A key/value's value.
#[derive(Clone, Debug)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(Vec<u8>),
    /// Element type, elements (each of that type).
    Array(u32, Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(s.as_bytes().to_vec())
    }

    pub fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => vt::U8,
            Value::I8(_) => vt::I8,
            Value::U16(_) => vt::U16,
            Value::I16(_) => vt::I16,
            Value::U32(_) => vt::U32,
            Value::I32(_) => vt::I32,
            Value::F32(_) => vt::F32,
            Value::Bool(_) => vt::BOOL,
            Value::Str(_) => vt::STRING,
            Value::Array(..) => vt::ARRAY,
            Value::U64(_) => vt::U64,
            Value::I64(_) => vt::I64,
            Value::F64(_) => vt::F64,
        }
    }

    /// The value's bytes, without its type id.
    pub fn write(&self, o: &mut Vec<u8>) {
        match self {
            Value::U8(v) => o.push(*v),
            Value::I8(v) => o.push(*v as u8),
            Value::U16(v) => o.extend_from_slice(&v.to_le_bytes()),
            Value::I16(v) => o.extend_from_slice(&v.to_le_bytes()),
            Value::U32(v) => o.extend_from_slice(&v.to_le_bytes()),
            Value::I32(v) => o.extend_from_slice(&v.to_le_bytes()),
            Value::F32(v) => o.extend_from_slice(&v.to_le_bytes()),
            Value::Bool(v) => o.push(*v as u8),
            Value::Str(s) => put_str(o, s),
            Value::Array(t, items) => {
                o.extend_from_slice(&t.to_le_bytes());
                o.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for it in items {
                    assert_eq!(it.type_id(), *t, "array element of the wrong type");
                    it.write(o);
                }
            }
            Value::U64(v) => o.extend_from_slice(&v.to_le_bytes()),
            Value::I64(v) => o.extend_from_slice(&v.to_le_bytes()),
            Value::F64(v) => o.extend_from_slice(&v.to_le_bytes()),
        }
    }
}

pub fn put_str(o: &mut Vec<u8>, s: &[u8]) {
    o.extend_from_slice(&(s.len() as u64).to_le_bytes());
    o.extend_from_slice(s);
}

/// One key/value of every value type, arrays of numbers and of strings, and an empty array.
pub fn every_value_type() -> Vec<(Vec<u8>, Value)> {
    let k = |s: &str| s.as_bytes().to_vec();
    vec![
        (k("general.architecture"), Value::str("synthetic")),
        (k("t.u8"), Value::U8(200)),
        (k("t.i8"), Value::I8(-3)),
        (k("t.u16"), Value::U16(65000)),
        (k("t.i16"), Value::I16(-30000)),
        (k("t.u32"), Value::U32(4_000_000_000)),
        (k("t.i32"), Value::I32(-2_000_000_000)),
        (k("t.f32"), Value::F32(1.5)),
        (k("t.bool"), Value::Bool(true)),
        (k("t.string"), Value::Str(vec![0xE2, 0x9C, 0x93, 0xFF, 0x00, b'x'])),
        (k("t.u64"), Value::U64(u64::MAX)),
        (k("t.i64"), Value::I64(i64::MIN)),
        (k("t.f64"), Value::F64(-0.25)),
        (k("t.array.u32"), Value::Array(vt::U32, (0..17).map(Value::U32).collect())),
        (k("t.array.bool"), Value::Array(vt::BOOL, vec![Value::Bool(false), Value::Bool(true)])),
        (k("tokenizer.ggml.tokens"), Value::Array(vt::STRING, ["<s>", "</s>", "a", "", "é"].map(Value::str).to_vec())),
        (k("t.array.empty"), Value::Array(vt::F64, vec![])),
        (k(""), Value::U8(0)), // an empty key
    ]
}

/// A tensor: its info and its bytes.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: Vec<u8>,
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Its bytes in the data section. For a known type, exactly `ggml_size` bytes; for an unknown
    /// type, whatever the test wants there.
    pub data: Vec<u8>,
}

impl Tensor {
    /// A tensor of a known type filled with random bytes.
    pub fn random(name: &str, ggml_type: u32, dims: &[u64], seed: u64) -> Tensor {
        let n = ggml_size(ggml_type, dims).expect("a type in the table") as usize;
        Tensor { name: name.as_bytes().to_vec(), dims: dims.to_vec(), ggml_type, data: noise(seed, n) }
    }
    /// A tensor with the given bytes (for unknown types, or deliberately inconsistent sizes).
    pub fn raw(name: &[u8], ggml_type: u32, dims: &[u64], data: Vec<u8>) -> Tensor {
        Tensor { name: name.to_vec(), dims: dims.to_vec(), ggml_type, data }
    }
}

/// Deterministic bytes (xorshift64*), never all zero.
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        v.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(n);
    v
}

/// What fills padding gaps.
#[derive(Clone, Copy, Debug)]
pub enum Fill {
    Zero,
    /// Non-zero noise from this seed.
    Garbage(u64),
}

#[derive(Clone, Debug)]
pub struct Builder {
    pub version: u32,
    pub kvs: Vec<(Vec<u8>, Value)>,
    /// The alignment the layout uses. Set the key with `align`, or leave the default 32.
    pub alignment: u64,
    /// Tensors in data-section order.
    pub tensors: Vec<Tensor>,
    /// `info_order[j]` is the tensor (index into `tensors`) whose info is written j-th.
    pub info_order: Option<Vec<usize>>,
    /// Extra bytes placed before tensor i's data (beyond the alignment padding), in data order.
    pub extra_gap: Vec<u64>,
    pub fill: Fill,
    /// Bytes after the data section's last padding.
    pub tail: Vec<u8>,
    /// Pad the end of the tensor infos to the alignment (GGUF writers do when there are tensors).
    pub pad_infos: bool,
    /// Pad after the last tensor to the alignment (ggml and gguf-py do).
    pub pad_last: bool,
}

/// Where a tensor info's fields are in the built file.
#[derive(Clone, Debug)]
pub struct InfoPos {
    pub name_len: usize,
    pub n_dims: usize,
    pub dims: usize,
    pub ggml_type: usize,
    pub offset: usize,
}

/// What an archive entry of the file must say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub name: Vec<u8>,
    pub ggml_type: u32,
    pub dims: Vec<u64>,
    pub offset: u64,
    pub size: u64,
    /// Whether the type is one whose size the reader knows (else the tensor extends to the next).
    pub known: bool,
}

#[derive(Clone, Debug)]
pub struct Built {
    pub bytes: Vec<u8>,
    /// Offset of the version, tensor count, key/value count.
    pub pos_version: usize,
    pub pos_n_tensors: usize,
    pub pos_n_kv: usize,
    /// Where each key/value's value type id is, in key/value order.
    pub kv_type_pos: Vec<usize>,
    /// Where each key/value's value is.
    pub kv_value_pos: Vec<usize>,
    /// End of the tensor infos.
    pub infos_end: usize,
    /// Start of the data section (the metadata is everything before it).
    pub data_start: u64,
    /// Per tensor info (in info order): where its fields are.
    pub info_pos: Vec<InfoPos>,
    /// Per tensor info (in info order): what an archive must hold.
    pub expected: Vec<Expected>,
}

impl Built {
    pub fn metadata(&self) -> &[u8] {
        &self.bytes[..self.data_start as usize]
    }
    /// The bytes of expected tensor `i` (info order).
    pub fn tensor_bytes(&self, i: usize) -> &[u8] {
        let e = &self.expected[i];
        &self.bytes[e.offset as usize..(e.offset + e.size) as usize]
    }
    /// The file with the u64 at `at` replaced.
    pub fn with_u64(&self, at: usize, v: u64) -> Vec<u8> {
        let mut b = self.bytes.clone();
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        b
    }
    /// The file with the u32 at `at` replaced.
    pub fn with_u32(&self, at: usize, v: u32) -> Vec<u8> {
        let mut b = self.bytes.clone();
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        b
    }
}

fn pad_to(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            version: 3,
            kvs: vec![(b"general.architecture".to_vec(), Value::str("synthetic"))],
            alignment: 32,
            tensors: Vec::new(),
            info_order: None,
            extra_gap: Vec::new(),
            fill: Fill::Zero,
            tail: Vec::new(),
            pad_infos: true,
            pad_last: true,
        }
    }
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Sets the layout alignment and writes `general.alignment` as a u32.
    pub fn align(mut self, a: u64) -> Builder {
        self.alignment = a;
        self.kvs.push((b"general.alignment".to_vec(), Value::U32(a as u32)));
        self
    }

    pub fn kv(mut self, key: &str, v: Value) -> Builder {
        self.kvs.push((key.as_bytes().to_vec(), v));
        self
    }

    pub fn tensor(mut self, t: Tensor) -> Builder {
        self.tensors.push(t);
        self
    }

    pub fn build(&self) -> Built {
        let a = self.alignment;
        let n = self.tensors.len();
        let order: Vec<usize> = self.info_order.clone().unwrap_or_else(|| (0..n).collect());
        assert_eq!(order.len(), n);
        // Relative offsets in data order.
        let mut rel = vec![0u64; n];
        let mut at = 0u64;
        for (i, t) in self.tensors.iter().enumerate() {
            at += self.extra_gap.get(i).copied().unwrap_or(0);
            at = pad_to(at, a);
            rel[i] = at;
            at += t.data.len() as u64;
        }
        let mut gen = match self.fill {
            Fill::Zero => None,
            Fill::Garbage(seed) => Some(seed),
        };
        let mut fill = |o: &mut Vec<u8>, upto: usize| {
            if o.len() < upto {
                let k = upto - o.len();
                match &mut gen {
                    None => o.resize(upto, 0),
                    Some(seed) => {
                        *seed += 1;
                        o.extend(noise(*seed, k).into_iter().map(|b| b | 1));
                    }
                }
            }
        };

        let mut o = Vec::new();
        o.extend_from_slice(b"GGUF");
        let pos_version = o.len();
        o.extend_from_slice(&self.version.to_le_bytes());
        let pos_n_tensors = o.len();
        o.extend_from_slice(&(n as u64).to_le_bytes());
        let pos_n_kv = o.len();
        o.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        let (mut kv_type_pos, mut kv_value_pos) = (Vec::new(), Vec::new());
        for (k, v) in &self.kvs {
            put_str(&mut o, k);
            kv_type_pos.push(o.len());
            o.extend_from_slice(&v.type_id().to_le_bytes());
            kv_value_pos.push(o.len());
            v.write(&mut o);
        }
        let mut info_pos = Vec::new();
        for &i in &order {
            let t = &self.tensors[i];
            let name_len = o.len();
            put_str(&mut o, &t.name);
            let n_dims = o.len();
            o.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            let dims = o.len();
            for d in &t.dims {
                o.extend_from_slice(&d.to_le_bytes());
            }
            let ggml_type = o.len();
            o.extend_from_slice(&t.ggml_type.to_le_bytes());
            let offset = o.len();
            o.extend_from_slice(&rel[i].to_le_bytes());
            info_pos.push(InfoPos { name_len, n_dims, dims, ggml_type, offset });
        }
        let infos_end = o.len();
        let data_start = pad_to(infos_end as u64, a);
        if self.pad_infos {
            fill(&mut o, data_start as usize);
        }
        for (i, t) in self.tensors.iter().enumerate() {
            fill(&mut o, (data_start + rel[i]) as usize);
            o.extend_from_slice(&t.data);
        }
        if self.pad_last && n > 0 {
            let end = pad_to(o.len() as u64 - data_start, a) + data_start;
            fill(&mut o, end as usize);
        }
        o.extend_from_slice(&self.tail);

        // What the archive must hold, in info order.
        let file_len = o.len() as u64;
        let abs: Vec<u64> = (0..n).map(|i| data_start + rel[i]).collect();
        let mut by_offset: Vec<usize> = (0..n).collect();
        // Ties (zero-size and unknown-type tensors sharing an offset): the smaller known size
        // first, then the info order.
        let size_or_0 = |i: usize| ggml_size(self.tensors[i].ggml_type, &self.tensors[i].dims).unwrap_or(0);
        by_offset.sort_by_key(|&i| (abs[i], size_or_0(i), order.iter().position(|&j| j == i).unwrap()));
        let expected = order
            .iter()
            .map(|&i| {
                let t = &self.tensors[i];
                let known = ggml_size(t.ggml_type, &t.dims);
                let size = known.unwrap_or_else(|| {
                    let k = by_offset.iter().position(|&j| j == i).unwrap();
                    by_offset.get(k + 1).map_or(file_len, |&j| abs[j]) - abs[i]
                });
                if let Some(s) = known {
                    assert_eq!(s, t.data.len() as u64, "tensor {:?}: data of the wrong size", t.name);
                }
                Expected {
                    name: t.name.clone(),
                    ggml_type: t.ggml_type,
                    dims: t.dims.clone(),
                    offset: abs[i],
                    size,
                    known: known.is_some(),
                }
            })
            .collect();
        Built {
            bytes: o,
            pos_version,
            pos_n_tensors,
            pos_n_kv,
            kv_type_pos,
            kv_value_pos,
            infos_end,
            data_start,
            info_pos,
            expected,
        }
    }
}

/// A small file with tensors of several types, garbage padding and trailing bytes: the standard
/// synthetic input of the hostile-input and C API tests.
pub fn mixed() -> Builder {
    let mut b = Builder::new().align(32);
    b.kvs.extend(every_value_type());
    b.fill = Fill::Garbage(7);
    b.tail = b"trailing bytes".to_vec();
    b.tensor(Tensor::random("a.f32", gt::F32, &[33, 3], 1))
        .tensor(Tensor::random("b.q4k", gt::Q4_K, &[512, 2], 2))
        .tensor(Tensor::raw(b"c.unknown", gt::UNKNOWN, &[5], noise(3, 45)))
        .tensor(Tensor::random("d.f16", gt::F16, &[101], 4))
        .tensor(Tensor::random("e.q8_0", gt::Q8_0, &[64, 3], 5))
}
