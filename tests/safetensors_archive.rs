//! safetensors archives: the committed fixture (and F32 and F16 versions of it) and synthetic files
//! with every edge case real files rarely have (every dtype and unknown ones, zero-size tensors,
//! JSON order unlike data order, garbage gaps, trailing bytes, padded headers, no tensors, odd
//! names) compress, restore byte for byte, list the right index and read any tensor alone, through
//! the Rust API, the C API and the CLI. Hostile headers give their specific errors, through all
//! three, and leave no output. A damaged archive fails at open (header, index, truncation) or
//! fails only the damaged tensor; restoring it leaves nothing behind.
//!
//! Synthetic tensors are random bytes: fine for roundtrips, never a claim about ratios.

#[path = "common/capi.rs"]
mod capi;
mod common;

use std::ffi::{c_char, CStr};
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::Output;
use std::ptr::null;
use std::sync::OnceLock;

use capi::cpath;
use common::{data_path, st_file, Lcg, TempDir, ST_FIXTURE};
use half::f16;
use sha2::{Digest, Sha256};
use weightzip::archive::format::HEADER_LEN;
use weightzip::archive::{self, Archive, Container};
use weightzip::ffi::archive::*;
use weightzip::ffi::*;
use weightzip::frame::{self, MIN_CHUNK_SIZE};
use weightzip::safetensors::{self, MAX_HEADER_LEN};
use weightzip::{Error, Kind, Options};

fn opts(threads: u32, chunk_size: u32) -> Options {
    Options { threads, chunk_size, progress: None, fast: false, row_len: 0 }
}

fn one() -> Options {
    Options::with_threads(1)
}

fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

// The dtype table, written out here (not taken from the library) --------------------------------

/// (dtype, code reported as the tensor's container type, bytes per element).
const DTYPES: [(&str, u32, u64); 15] = [
    ("BOOL", 0, 1),
    ("U8", 1, 1),
    ("I8", 2, 1),
    ("I16", 3, 2),
    ("U16", 4, 2),
    ("F16", 5, 2),
    ("BF16", 6, 2),
    ("I32", 7, 4),
    ("U32", 8, 4),
    ("F32", 9, 4),
    ("F64", 10, 8),
    ("I64", 11, 8),
    ("U64", 12, 8),
    ("F8_E4M3", 13, 1),
    ("F8_E5M2", 14, 1),
];

const UNKNOWN: u32 = u32::MAX;

fn dtype_code(d: &str) -> u32 {
    DTYPES.iter().find(|x| x.0 == d).map_or(UNKNOWN, |x| x.1)
}

fn dtype_size(d: &str) -> Option<u64> {
    DTYPES.iter().find(|x| x.0 == d).map(|x| x.2)
}

/// The kind a dtype's frame must hold: the three float types have codecs, the rest are bytes.
fn kind_of(d: &str) -> Kind {
    match d {
        "BF16" => Kind::Bf16,
        "F16" => Kind::F16,
        "F32" => Kind::F32,
        _ => Kind::Bytes,
    }
}

fn wz_kind_of(d: &str) -> u32 {
    match d {
        "BF16" => WZ_KIND_BF16,
        "F16" => WZ_KIND_F16,
        "F32" => WZ_KIND_F32,
        _ => WZ_KIND_BYTES,
    }
}

// The synthetic file builder -------------------------------------------------------------------

#[derive(Clone, Debug)]
struct T {
    name: String,
    dtype: String,
    shape: Vec<u64>,
    data: Vec<u8>,
}

/// A tensor of `dtype` and `shape` filled with random bytes (its size from the dtype, or `len`
/// bytes for an unknown dtype).
fn t(name: &str, dtype: &str, shape: &[u64], rng: &mut Lcg) -> T {
    let elems: u64 = shape.iter().product();
    let len = dtype_size(dtype).map_or(elems, |s| s * elems);
    T { name: name.into(), dtype: dtype.into(), shape: shape.to_vec(), data: rng.bytes(len as usize) }
}

fn t_bytes(name: &str, dtype: &str, shape: &[u64], data: Vec<u8>) -> T {
    T { name: name.into(), dtype: dtype.into(), shape: shape.to_vec(), data }
}

/// What a synthetic safetensors file holds and how it is laid out.
#[derive(Clone, Default)]
struct Spec {
    /// Tensors in data order, each with the bytes that come before it (a gap).
    tensors: Vec<(Vec<u8>, T)>,
    /// Bytes after the last tensor.
    tail: Vec<u8>,
    /// The order of the JSON entries (indices into `tensors`); `None` is data order.
    json_order: Option<Vec<usize>>,
    /// `__metadata__` entries, written first unless `metadata_last`.
    metadata: Option<Vec<(String, String)>>,
    metadata_last: bool,
    /// Spaces after the JSON, inside the header length.
    pad: usize,
}

/// Where a tensor must be found: its absolute offset and length.
#[derive(Clone, Debug, PartialEq)]
struct Exp {
    name: String,
    dtype: String,
    shape: Vec<u64>,
    offset: u64,
    len: u64,
}

struct Built {
    bytes: Vec<u8>,
    data_start: u64,
    /// Sorted by (offset, length, name): the order the reader and the archive use.
    expected: Vec<Exp>,
}

fn jstr(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

impl Spec {
    fn new() -> Spec {
        Spec::default()
    }
    fn tensor(mut self, gap: &[u8], t: T) -> Spec {
        self.tensors.push((gap.to_vec(), t));
        self
    }
    fn build(&self) -> Built {
        let mut data = Vec::new();
        let mut offs = Vec::new();
        for (gap, t) in &self.tensors {
            data.extend_from_slice(gap);
            offs.push((data.len() as u64, (data.len() + t.data.len()) as u64));
            data.extend_from_slice(&t.data);
        }
        data.extend_from_slice(&self.tail);
        let order: Vec<usize> = self.json_order.clone().unwrap_or_else(|| (0..self.tensors.len()).collect());
        let mut entries: Vec<String> = order
            .iter()
            .map(|&i| {
                let t = &self.tensors[i].1;
                let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
                format!(
                    "{}:{{\"dtype\":{},\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                    jstr(&t.name),
                    jstr(&t.dtype),
                    shape.join(","),
                    offs[i].0,
                    offs[i].1
                )
            })
            .collect();
        if let Some(m) = &self.metadata {
            let kv: Vec<String> = m.iter().map(|(k, v)| format!("{}:{}", jstr(k), jstr(v))).collect();
            let e = format!("\"__metadata__\":{{{}}}", kv.join(","));
            if self.metadata_last {
                entries.push(e);
            } else {
                entries.insert(0, e);
            }
        }
        let mut json = format!("{{{}}}", entries.join(","));
        json.push_str(&" ".repeat(self.pad));
        let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(json.as_bytes());
        let data_start = bytes.len() as u64;
        bytes.extend_from_slice(&data);
        let mut expected: Vec<Exp> = self
            .tensors
            .iter()
            .zip(&offs)
            .map(|((_, t), &(b, e))| Exp {
                name: t.name.clone(),
                dtype: t.dtype.clone(),
                shape: t.shape.clone(),
                offset: data_start + b,
                len: e - b,
            })
            .collect();
        expected.sort_by(|a, b| (a.offset, a.len, &a.name).cmp(&(b.offset, b.len, &b.name)));
        Built { bytes, data_start, expected }
    }
}

/// A file with header `json` (its length written in front) followed by `data`.
fn raw_file(json: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (json.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v.extend_from_slice(data);
    v
}

/// A file whose header length field says `n`, followed by `rest`.
fn with_len(n: u64, rest: &[u8]) -> Vec<u8> {
    let mut v = n.to_le_bytes().to_vec();
    v.extend_from_slice(rest);
    v
}

// Checking an archive --------------------------------------------------------------------------

/// An archive of `file` made in memory through `compress_any`; `compress_safetensors` must write
/// the same bytes, and `Written` must say what the archive holds.
fn compress(file: &[u8], o: &Options) -> Vec<u8> {
    let mut c = Cursor::new(Vec::new());
    let w = archive::compress_any(file, &mut c, o).unwrap_or_else(|e| panic!("compress_any: {e:?}"));
    let v = c.into_inner();
    assert_eq!(w.archive_size, v.len() as u64, "Written::archive_size");
    assert_eq!(w.original_size, file.len() as u64, "Written::original_size");
    assert_eq!(&w.index, Archive::from_bytes(&v).unwrap().index(), "Written::index");
    let mut c2 = Cursor::new(Vec::new());
    archive::compress_safetensors(file, &mut c2, o).unwrap();
    assert!(c2.into_inner() == v, "compress_safetensors and compress_any differ");
    v
}

/// Checks everything an archive `arc` of `b` must hold, tensor by tensor.
#[track_caller]
fn check(b: &Built, arc: &[u8], label: &str) {
    let file = &b.bytes[..];
    // The library's reader agrees with the builder.
    let st = safetensors::read(file).unwrap_or_else(|e| panic!("{label}: safetensors::read: {e:?}"));
    assert_eq!(st.data_start, b.data_start, "{label}: data_start");
    let got: Vec<Exp> = st
        .tensors
        .iter()
        .map(|t| Exp {
            name: t.name.clone(),
            dtype: t.dtype.clone(),
            shape: t.shape.clone(),
            offset: t.offset,
            len: t.len,
        })
        .collect();
    assert_eq!(got, b.expected, "{label}: safetensors::read");

    let a = Archive::from_bytes(arc).unwrap_or_else(|e| panic!("{label}: open: {e:?}"));
    assert!(archive::is_archive(arc));
    assert_eq!(a.container(), Container::Safetensors, "{label}");
    assert_eq!(a.original_size(), file.len() as u64, "{label}");
    assert_eq!(a.archive_size(), arc.len() as u64, "{label}");
    assert!(a.metadata().unwrap() == &file[..b.data_start as usize], "{label}: metadata is not the first 8+N bytes");
    assert_eq!(a.index().extra.metadata_size, b.data_start, "{label}");
    let tensor_bytes: u64 = b.expected.iter().map(|e| e.len).sum();
    assert_eq!(a.index().extra.raw_size, file.len() as u64 - tensor_bytes, "{label}: extra raw_size");

    assert_eq!(a.tensors().len(), b.expected.len(), "{label}: tensor count");
    let o1 = one();
    for (i, (t, e)) in a.tensors().iter().zip(&b.expected).enumerate() {
        let l = format!("{label}: tensor {i} {:?}", e.name);
        assert_eq!(t.name, e.name.as_bytes(), "{l}: name");
        assert_eq!(t.name_c, [e.name.as_bytes(), &[0]].concat(), "{l}: name_c");
        assert_eq!(t.container_type, dtype_code(&e.dtype), "{l}: dtype code");
        let want_name = if dtype_code(&e.dtype) == UNKNOWN { "unknown" } else { &e.dtype };
        assert_eq!(a.container().type_name(t.container_type), want_name, "{l}: type name");
        assert_eq!(t.kind, kind_of(&e.dtype), "{l}: kind");
        assert_eq!(t.dims, e.shape, "{l}: dims");
        assert_eq!((t.orig_offset, t.orig_size), (e.offset, e.len), "{l}: extent");
        let want = &file[e.offset as usize..(e.offset + e.len) as usize];
        assert_eq!(t.sha256, sha(want), "{l}: sha256");
        let f = &arc[t.arc_offset as usize..(t.arc_offset + t.arc_size) as usize];
        let info = frame::read_info(f).unwrap();
        assert_eq!((info.kind, info.original_size), (t.kind, t.orig_size), "{l}: frame header");
        let mut dst = vec![0xA5u8; want.len()];
        a.read_tensor(i, &mut dst, &opts(2, 0)).unwrap_or_else(|e| panic!("{l}: read_tensor: {e:?}"));
        assert!(dst == want, "{l}: read_tensor gave other bytes");
        assert!(a.tensor_vec(i, &o1).unwrap() == want, "{l}: tensor_vec");
        if !want.is_empty() {
            assert_eq!(a.read_tensor(i, &mut vec![0u8; want.len() - 1], &o1), Err(Error::DstTooSmall), "{l}");
        }
        assert_eq!(a.read_tensor(i, &mut vec![0u8; want.len() + 1], &o1), Err(Error::DstSizeMismatch), "{l}");
        let first = b.expected.iter().position(|x| x.name == e.name).unwrap();
        assert_eq!(a.find(e.name.as_bytes()), Some(first), "{l}: find");
    }
    assert_eq!(a.tensor_vec(a.tensors().len(), &o1), Err(Error::InvalidArgument), "{label}");
    let mut out = Vec::new();
    a.restore_to(&mut out, &opts(2, 0)).unwrap_or_else(|e| panic!("{label}: restore_to: {e:?}"));
    assert!(out == file, "{label}: restore_to differs from the original");
    assert_eq!(a.verify(&o1), Ok(()), "{label}: verify");
}

/// Builds `spec`, compresses it at 1 and 2 threads (same bytes) and checks the archive.
#[track_caller]
fn roundtrip(spec: &Spec, label: &str) -> (Built, Vec<u8>) {
    let b = spec.build();
    let arc = compress(&b.bytes, &opts(1, 0));
    assert!(compress(&b.bytes, &opts(2, 0)) == arc, "{label}: the archive depends on the thread count");
    check(&b, &arc, label);
    (b, arc)
}

// The real fixture -----------------------------------------------------------------------------

fn fixture_built() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| {
        let bytes = st_file().to_vec();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        let data_start = 8 + n;
        // An independent parse of the header, to check the library's reader against.
        let json: serde_json::Value = serde_json::from_slice(&bytes[8..data_start as usize]).unwrap();
        let mut expected: Vec<Exp> = json
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "__metadata__")
            .map(|(k, v)| {
                let o = v["data_offsets"].as_array().unwrap();
                let (b, e) = (o[0].as_u64().unwrap(), o[1].as_u64().unwrap());
                Exp {
                    name: k.clone(),
                    dtype: v["dtype"].as_str().unwrap().into(),
                    shape: v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect(),
                    offset: data_start + b,
                    len: e - b,
                }
            })
            .collect();
        expected.sort_by(|a, b| (a.offset, a.len, &a.name).cmp(&(b.offset, b.len, &b.name)));
        assert_eq!(expected.len(), 19);
        Built { bytes, data_start, expected }
    })
}

fn fixture_archive() -> &'static [u8] {
    static A: OnceLock<Vec<u8>> = OnceLock::new();
    A.get_or_init(|| compress(&fixture_built().bytes, &opts(0, 0)))
}

#[test]
fn fixture_roundtrips_in_memory() {
    let b = fixture_built();
    let arc = fixture_archive();
    assert!(arc.len() < b.bytes.len(), "the archive is smaller than the file");
    check(b, arc, "fixture");
    // Every tensor is BF16, read with the library's reader against the file's bytes.
    let a = Archive::from_bytes(arc).unwrap();
    for (t, info) in a.tensors().iter().zip(safetensors::read_tensors(&b.bytes).unwrap()) {
        assert_eq!(a.container().type_name(t.container_type), "BF16");
        assert_eq!(t.kind, Kind::Bf16);
        let mut dst = vec![0u8; info.len as usize];
        a.read_tensor(a.find(info.name.as_bytes()).unwrap(), &mut dst, &one()).unwrap();
        assert!(dst == b.bytes[info.offset as usize..(info.offset + info.len) as usize], "{}", info.name);
    }
    // The same bytes at 1 and 2 threads; an explicit chunk size restores too.
    assert!(compress(&b.bytes, &opts(1, 0)) == arc);
    assert!(compress(&b.bytes, &opts(2, 0)) == arc);
    let small = compress(&b.bytes, &opts(2, MIN_CHUNK_SIZE));
    check(b, &small, "fixture, 64 KiB chunks");
}

#[test]
fn fixture_through_files() {
    let dir = TempDir::new("st-fixture");
    let src = dir.join("m.safetensors");
    std::fs::write(&src, &fixture_built().bytes).unwrap();
    let wz = dir.join("m.safetensors.wz");
    let w = archive::compress_file(&src, &wz, &opts(2, 0)).unwrap();
    assert_eq!(w.index.tensors.len(), 19);
    assert!(std::fs::read(&wz).unwrap() == fixture_archive(), "compress_file differs from compress_any");
    // Never over its input.
    assert_eq!(archive::compress_file(&src, &src, &one()).err(), Some(Error::InvalidArgument));
    assert_eq!(std::fs::read(&src).unwrap(), fixture_built().bytes);

    let a = Archive::open_path(&wz).unwrap();
    check(fixture_built(), fixture_archive(), "fixture (in memory)");
    let out = dir.join("restored.safetensors");
    a.restore_file(&out, &opts(2, 0)).unwrap();
    assert!(std::fs::read(&out).unwrap() == fixture_built().bytes, "restore_file differs");
    let mut v = Vec::new();
    a.restore_to(&mut v, &one()).unwrap();
    assert!(v == fixture_built().bytes, "restore_to differs");
    assert_eq!(a.verify(&opts(2, 0)), Ok(()));
    assert_eq!(a.metadata().unwrap(), &fixture_built().bytes[..fixture_built().data_start as usize]);
    // Never over the archive it reads.
    assert_eq!(a.restore_file(&wz, &one()), Err(Error::InvalidArgument));
    assert!(std::fs::read(&wz).unwrap() == fixture_archive());
    dir.assert_no_temporaries("fixture through files");
}

/// The fixture with every tensor converted by `conv` (bf16 bytes -> new bytes) and named `dtype`.
fn converted_fixture(dtype: &str, conv: impl Fn(&[u8]) -> Vec<u8>) -> Spec {
    let b = fixture_built();
    let mut spec = Spec::new();
    spec.metadata = Some(vec![("format".into(), "pt".into())]);
    for e in &b.expected {
        let data = conv(&b.bytes[e.offset as usize..(e.offset + e.len) as usize]);
        spec = spec.tensor(&[], t_bytes(&e.name, dtype, &e.shape, data));
    }
    spec
}

#[test]
fn fixture_widened_to_f32_and_narrowed_to_f16() {
    let f32s = converted_fixture("F32", |b| b.chunks_exact(2).flat_map(|h| [0, 0, h[0], h[1]]).collect());
    let (b, arc) = roundtrip(&f32s, "fixture as F32");
    let a = Archive::from_bytes(&arc).unwrap();
    assert!(a.tensors().iter().all(|t| t.kind == Kind::F32 && a.container().type_name(t.container_type) == "F32"));
    // Widened from bf16, the low halves are zero: far smaller than the file.
    assert!((arc.len() as f64) < 0.6 * b.bytes.len() as f64, "{} -> {}", b.bytes.len(), arc.len());

    let f16s = converted_fixture("F16", |b| {
        b.chunks_exact(2)
            .flat_map(|h| {
                let x = f32::from_bits((u16::from_le_bytes([h[0], h[1]]) as u32) << 16);
                f16::from_f32(x).to_bits().to_le_bytes()
            })
            .collect()
    });
    let (b, arc) = roundtrip(&f16s, "fixture as F16");
    let a = Archive::from_bytes(&arc).unwrap();
    assert!(a.tensors().iter().all(|t| t.kind == Kind::F16 && a.container().type_name(t.container_type) == "F16"));
    assert!(arc.len() < b.bytes.len());
}

// Synthetic edge cases -------------------------------------------------------------------------

#[test]
fn every_dtype_and_unknown_dtypes_restore_exactly() {
    let mut r = Lcg::new(1);
    let mut spec = Spec::new();
    for (i, (d, _, _)) in DTYPES.iter().enumerate() {
        spec = spec.tensor(&[], t(&format!("t.{d}"), d, &[3, 5 + i as u64], &mut r));
        // A scalar (shape []) of every dtype too.
        spec = spec.tensor(&[], t(&format!("scalar.{d}"), d, &[], &mut r));
    }
    // Unknown dtypes pass through as bytes whatever their extent.
    spec = spec.tensor(&[], t("e8m0", "F8_E8M0", &[37], &mut r));
    spec = spec.tensor(&[], t_bytes("x99", "X99", &[4], r.bytes(13)));
    spec = spec.tensor(&[], t_bytes("lower", "bf16", &[2], r.bytes(7)));
    spec = spec.tensor(&[], t_bytes("empty dtype", "", &[1, 2, 3], r.bytes(1)));
    // BF16/F16/F32 spanning several chunks, BOOL as 0/1 bytes, a longer I64.
    spec = spec.tensor(&[], t("big.bf16", "BF16", &[300, 512], &mut r));
    spec = spec.tensor(&[], t("big.f16", "F16", &[300, 512], &mut r));
    spec = spec.tensor(&[], t("big.f32", "F32", &[100, 512], &mut r));
    let bools: Vec<u8> = (0..70_000).map(|_| (r.below(2)) as u8).collect();
    spec = spec.tensor(&[], t_bytes("mask", "BOOL", &[70_000], bools));
    spec = spec.tensor(&[], t("ids", "I64", &[9000], &mut r));
    let (_, arc) = roundtrip(&spec, "every dtype");
    let a = Archive::from_bytes(&arc).unwrap();
    let named = |n: &str| &a.tensors()[a.find(n.as_bytes()).unwrap()];
    assert_eq!(named("e8m0").container_type, UNKNOWN);
    assert_eq!(a.container().type_name(named("x99").container_type), "unknown");
    assert_eq!(named("lower").kind, Kind::Bytes);
    assert_eq!(named("big.f16").kind, Kind::F16);
    assert_eq!(named("mask").container_type, 0);
    // Chunked too: an archive's chunk size is rounded to whole elements per tensor and kept in
    // the frame's range, so any value works.
    let b = spec.build();
    for cs in [MIN_CHUNK_SIZE, MIN_CHUNK_SIZE + 1, MIN_CHUNK_SIZE + 2, 100_003, 1, u32::MAX] {
        check(&b, &compress(&b.bytes, &opts(2, cs)), &format!("every dtype, chunk size {cs}"));
    }
}

#[test]
fn zero_size_tensors() {
    let mut r = Lcg::new(2);
    let z = |n: &str, d: &str, shape: &[u64]| t_bytes(n, d, shape, Vec::new());
    let spec = Spec::new()
        .tensor(&[], z("first.empty", "F32", &[0]))
        .tensor(&[], z("also.first", "BF16", &[4, 0]))
        .tensor(&[], t("a", "F32", &[100], &mut r))
        .tensor(&[], z("between", "F16", &[0, 7]))
        .tensor(b"gap!", z("in.gap", "X99", &[0]))
        .tensor(b"more", t("b", "U8", &[33], &mut r))
        .tensor(&[], z("last", "I64", &[0]))
        .tensor(&[], z("last2", "F32", &[1, 0, 3]));
    roundtrip(&spec, "zero-size tensors");
    // Only zero-size tensors, with and without data after them.
    let only = Spec::new().tensor(&[], z("e1", "F32", &[0])).tensor(&[], z("e2", "BF16", &[0]));
    roundtrip(&only, "only zero-size tensors");
    let mut tail = only.clone();
    tail.tail = b"tail bytes".to_vec();
    roundtrip(&tail, "only zero-size tensors, then bytes");
    // A zero-size tensor at the very end of the data section (offset = data length).
    let end = Spec::new().tensor(&[], t("x", "U8", &[10], &mut r)).tensor(&[], z("at.end", "U8", &[0]));
    roundtrip(&end, "zero-size at the end");
}

#[test]
fn json_order_differs_from_data_order() {
    let mut r = Lcg::new(3);
    let mut spec = Spec::new();
    for i in 0..12 {
        let d = ["BF16", "F32", "F16", "U8"][i % 4];
        spec = spec.tensor(&r.bytes(i % 3), t(&format!("layer.{i}"), d, &[40 + i as u64, 3], &mut r));
    }
    spec.json_order = Some((0..12).rev().collect());
    let (b, arc) = roundtrip(&spec, "reversed JSON");
    // The archive lists tensors in data order whatever the JSON order.
    let a = Archive::from_bytes(&arc).unwrap();
    let names: Vec<String> = a.tensors().iter().map(|t| String::from_utf8(t.name.clone()).unwrap()).collect();
    assert_eq!(names, (0..12).map(|i| format!("layer.{i}")).collect::<Vec<_>>());
    assert_eq!(b.expected.len(), 12);
    let mut shuffled: Vec<usize> = (0..12).collect();
    r.shuffle(&mut shuffled);
    spec.json_order = Some(shuffled);
    spec.metadata = Some(vec![("k".into(), "v".into())]);
    spec.metadata_last = true;
    roundtrip(&spec, "shuffled JSON, metadata last");
    // Names whose sorted order is unlike both.
    let spec = Spec::new()
        .tensor(&[], t("zz", "F32", &[8], &mut r))
        .tensor(&[], t("aa", "F32", &[8], &mut r))
        .tensor(&[], t("mm", "F32", &[8], &mut r));
    roundtrip(&spec, "names out of order");
}

#[test]
fn gaps_trailing_bytes_and_padding() {
    let mut r = Lcg::new(4);
    for pad in [0usize, 1, 7, 8, 1000] {
        let mut spec = Spec::new()
            .tensor(&r.bytes(5), t("a", "BF16", &[1000], &mut r))
            .tensor(&r.bytes(1), t("b", "F32", &[333], &mut r))
            .tensor(&[], t("c", "U8", &[17], &mut r))
            .tensor(&r.bytes(4099), t("d", "F16", &[64, 64], &mut r));
        spec.pad = pad;
        spec.tail = r.bytes(pad * 3 + 1);
        spec.metadata = Some(vec![("format".into(), "pt".into()), ("note".into(), "gaps \u{e9}\"\\".into())]);
        let (b, arc) = roundtrip(&spec, &format!("gaps, pad {pad}"));
        // The padding spaces are metadata; the gaps and tail are the extra frame's.
        let a = Archive::from_bytes(&arc).unwrap();
        let m = a.metadata().unwrap();
        assert!(m.ends_with(&vec![b' '; pad]) && m.len() as u64 == b.data_start);
    }
}

#[test]
fn files_without_tensors() {
    for (what, json, data) in [
        ("{}", "{}", &b""[..]),
        ("{} padded", "{}        ", &b""[..]),
        ("metadata only", "{\"__metadata__\":{\"format\":\"pt\"}}", &b""[..]),
        ("{} then bytes", "{}", &b"trailing garbage \x00\x01\xff"[..]),
        ("metadata then bytes", "{\"__metadata__\":{}} ", &[7u8; 100][..]),
    ] {
        let b = Built { bytes: raw_file(json, data), data_start: 8 + json.len() as u64, expected: Vec::new() };
        let arc = compress(&b.bytes, &one());
        check(&b, &arc, what);
    }
}

#[test]
fn names() {
    let mut r = Lcg::new(5);
    let long = "n".repeat(1 << 16);
    let spec = Spec::new()
        .tensor(&[], t("", "F32", &[2], &mut r))
        .tensor(&[], t("ünïcødé.テンソル.🙂", "BF16", &[3], &mut r))
        .tensor(&[], t("quote\"back\\slash/tab\tnl\n", "U8", &[4], &mut r))
        .tensor(&[], t("nul\u{0}inside", "F16", &[5], &mut r))
        .tensor(&[], t(&long, "U8", &[6], &mut r))
        .tensor(&[], t("__metadata__x", "U8", &[1], &mut r));
    let (_, arc) = roundtrip(&spec, "names");
    let a = Archive::from_bytes(&arc).unwrap();
    assert_eq!(a.tensors()[3].name, b"nul\0inside");
    assert_eq!(a.tensors()[4].name.len(), 1 << 16);
    // One byte longer than an archive holds: refused at compression, nothing written.
    let too_long = Spec::new().tensor(&[], t(&"n".repeat((1 << 16) + 1), "U8", &[6], &mut r)).build();
    let mut out = Cursor::new(Vec::new());
    assert_eq!(archive::compress_any(&too_long.bytes, &mut out, &one()).err(), Some(Error::BadContainer));
    assert!(out.get_ref().is_empty(), "a refused file wrote {} bytes", out.get_ref().len());
}

#[test]
fn duplicate_keys_and_odd_metadata_still_restore_exactly() {
    // The JSON reader keeps one entry per key; the other's bytes become a gap, still restored.
    let mut r = Lcg::new(6);
    let data = r.bytes(24);
    let dup = raw_file(
        r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"a":{"dtype":"U8","shape":[8],"data_offsets":[8,16]}}"#,
        &data,
    );
    let arc = compress(&dup, &one());
    let a = Archive::from_bytes(&arc).unwrap();
    assert_eq!(a.tensors().len(), 1);
    let mut out = Vec::new();
    a.restore_to(&mut out, &one()).unwrap();
    assert!(out == dup);
    // `__metadata__` of another shape, and a tensor named `__metadata__`-like.
    for json in [
        r#"{"__metadata__":"a string","t":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
        r#"{"__metadata__":{"nested":{"deep":[1,2,3]}},"t":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
        r#"{"t":{"dtype":"U8","shape":[4],"data_offsets":[0,4],"extra":"field"}}"#,
    ] {
        let f = raw_file(json, &data);
        let arc = compress(&f, &one());
        let a = Archive::from_bytes(&arc).unwrap();
        assert_eq!(a.tensors().len(), 1, "{json}");
        let mut out = Vec::new();
        a.restore_to(&mut out, &one()).unwrap();
        assert!(out == f, "{json}");
    }
}

#[test]
fn large_zero_regions_and_many_tensors() {
    // 8 MiB of zeros as a tensor and 16 MiB of zeros after it: the extra frame expands about as far
    // as zstd allows, and the archive must still open and restore.
    let mut spec = Spec::new().tensor(&[], t_bytes("zeros", "U8", &[8 << 20], vec![0; 8 << 20]));
    spec.tail = vec![0; 16 << 20];
    let b = spec.build();
    let arc = compress(&b.bytes, &opts(2, 0));
    assert!(arc.len() < 64 << 10, "{} bytes", arc.len());
    let a = Archive::from_bytes(&arc).unwrap();
    let mut out = Vec::new();
    a.restore_to(&mut out, &opts(2, 0)).unwrap();
    assert!(out == b.bytes);
    assert_eq!(a.verify(&opts(2, 0)), Ok(()));

    // Thousands of small tensors.
    let mut r = Lcg::new(7);
    let mut spec = Spec::new();
    for i in 0..3000 {
        let d = ["F32", "BF16", "U8", "F16", "X9"][i % 5];
        spec = spec.tensor(&r.bytes(i % 2), t(&format!("t{i}"), d, &[(i % 7) as u64], &mut r));
    }
    let b = spec.build();
    let arc = compress(&b.bytes, &opts(2, 0));
    check(&b, &arc, "3000 tensors");
}

// Hostile headers ------------------------------------------------------------------------------

/// A one-tensor header around `entry` (the tensor's JSON value), over `data`.
fn one_tensor(entry: &str, data: &[u8]) -> Vec<u8> {
    raw_file(&format!("{{\"t\":{entry}}}"), data)
}

/// Hostile files that look like safetensors (a plausible length, then `{`), with the error
/// every entry point must give: `safetensors::read`, `compress_safetensors`, `compress_any`, the
/// C API's `wz_archive_compress_file` (as its status) and the CLI (as a failure).
fn hostile() -> Vec<(String, Vec<u8>, Error)> {
    use Error::*;
    let d16 = [0x11u8; 16];
    let e =
        |dtype: &str, shape: &str, offs: &str| format!(r#"{{"dtype":{dtype},"shape":{shape},"data_offsets":{offs}}}"#);
    let good = e(r#""U8""#, "[8]", "[0,8]");
    let mut v: Vec<(String, Vec<u8>, Error)> = vec![
        ("header length past the end".into(), with_len(100, b"{}"), ContainerTruncated),
        ("header length one past the end".into(), with_len(3, b"{}"), ContainerTruncated),
        ("header length 100 MiB, file small".into(), with_len(MAX_HEADER_LEN, b"{}"), ContainerTruncated),
        ("invalid JSON".into(), raw_file("{\"t\":", &d16), BadContainer),
        ("JSON cut short".into(), raw_file(&format!("{{\"t\":{good}"), &d16), BadContainer),
        ("JSON with a trailing comma".into(), raw_file(&format!("{{\"t\":{good},}}"), &d16), BadContainer),
        ("NUL padding".into(), raw_file("{}\0\0\0", &d16), BadContainer),
        (
            "invalid UTF-8 in a name".into(),
            {
                let j = [&b"{\"t\xff\":"[..], good.as_bytes(), b"}"].concat();
                [&(j.len() as u64).to_le_bytes()[..], &j, &d16].concat()
            },
            BadContainer,
        ),
        ("tensor entry not an object".into(), raw_file("{\"t\":[1,2]}", &d16), BadContainer),
        ("missing dtype".into(), one_tensor(r#"{"shape":[8],"data_offsets":[0,8]}"#, &d16), BadContainer),
        ("missing shape".into(), one_tensor(r#"{"dtype":"U8","data_offsets":[0,8]}"#, &d16), BadContainer),
        ("missing data_offsets".into(), one_tensor(r#"{"dtype":"U8","shape":[8]}"#, &d16), BadContainer),
        ("dtype a number".into(), one_tensor(&e("5", "[8]", "[0,8]"), &d16), BadContainer),
        ("shape not an array".into(), one_tensor(&e(r#""U8""#, "8", "[0,8]"), &d16), BadContainer),
        ("shape negative".into(), one_tensor(&e(r#""U8""#, "[-8]", "[0,8]"), &d16), BadContainer),
        ("shape fractional".into(), one_tensor(&e(r#""U8""#, "[8.5]", "[0,8]"), &d16), BadContainer),
        ("shape of 9 dims".into(), one_tensor(&e(r#""U8""#, "[1,1,1,1,1,1,1,1,8]", "[0,8]"), &d16), BadContainer),
        (
            "shape product overflows".into(),
            one_tensor(&e(r#""U8""#, "[4294967296,4294967296]", "[0,8]"), &d16),
            BadContainer,
        ),
        (
            "shape product overflows, unknown dtype".into(),
            one_tensor(&e(r#""X9""#, "[4294967296,4294967296]", "[0,8]"), &d16),
            BadContainer,
        ),
        ("offsets one number".into(), one_tensor(&e(r#""U8""#, "[8]", "[8]"), &d16), BadContainer),
        ("offsets three numbers".into(), one_tensor(&e(r#""U8""#, "[8]", "[0,8,16]"), &d16), BadContainer),
        ("offsets empty".into(), one_tensor(&e(r#""U8""#, "[8]", "[]"), &d16), BadContainer),
        ("offsets strings".into(), one_tensor(&e(r#""U8""#, "[8]", r#"["0","8"]"#), &d16), BadContainer),
        ("offsets negative".into(), one_tensor(&e(r#""U8""#, "[8]", "[-1,7]"), &d16), BadContainer),
        ("offsets fractional".into(), one_tensor(&e(r#""U8""#, "[8]", "[0.0,8.0]"), &d16), BadContainer),
        ("offsets an object".into(), one_tensor(&e(r#""U8""#, "[8]", r#"{"a":0}"#), &d16), BadContainer),
        ("offsets beyond u64".into(), one_tensor(&e(r#""U8""#, "[8]", "[0,18446744073709551616]"), &d16), BadContainer),
        ("begin > end".into(), one_tensor(&e(r#""U8""#, "[0]", "[8,0]"), &d16), BadContainer),
        ("F32 extent not 4 x shape".into(), one_tensor(&e(r#""F32""#, "[3]", "[0,8]"), &d16), BadContainer),
        ("BF16 extent odd".into(), one_tensor(&e(r#""BF16""#, "[4]", "[0,7]"), &d16), BadContainer),
        ("I64 shape [2], 8 bytes".into(), one_tensor(&e(r#""I64""#, "[2]", "[0,8]"), &d16), BadContainer),
        ("U8 zero-size shape, 8 bytes".into(), one_tensor(&e(r#""U8""#, "[0]", "[0,8]"), &d16), BadContainer),
        ("begins past the end".into(), one_tensor(&e(r#""U8""#, "[4]", "[17,21]"), &d16), TensorOutOfRange),
        (
            "begins far past the end".into(),
            one_tensor(&e(r#""U8""#, "[4]", "[1000000,1000004]"), &d16),
            TensorOutOfRange,
        ),
        ("zero-size past the end".into(), one_tensor(&e(r#""U8""#, "[0]", "[17,17]"), &d16), TensorOutOfRange),
        ("begins inside, ends past".into(), one_tensor(&e(r#""U8""#, "[8]", "[12,20]"), &d16), ContainerTruncated),
        ("begins at the end, ends past".into(), one_tensor(&e(r#""U8""#, "[8]", "[16,24]"), &d16), ContainerTruncated),
        ("ends one past".into(), one_tensor(&e(r#""U8""#, "[17]", "[0,17]"), &d16), ContainerTruncated),
        (
            "overlap".into(),
            raw_file(
                &format!(r#"{{"a":{},"b":{}}}"#, e(r#""U8""#, "[8]", "[0,8]"), e(r#""U8""#, "[8]", "[4,12]")),
                &d16,
            ),
            TensorOverlap,
        ),
        (
            "same extent twice".into(),
            raw_file(
                &format!(r#"{{"a":{},"b":{}}}"#, e(r#""F32""#, "[2]", "[0,8]"), e(r#""U8""#, "[8]", "[0,8]")),
                &d16,
            ),
            TensorOverlap,
        ),
        (
            "one inside another".into(),
            raw_file(
                &format!(r#"{{"a":{},"b":{}}}"#, e(r#""U8""#, "[16]", "[0,16]"), e(r#""U8""#, "[2]", "[3,5]")),
                &d16,
            ),
            TensorOverlap,
        ),
        (
            "overlap by one byte, JSON in reverse".into(),
            raw_file(
                &format!(r#"{{"b":{},"a":{}}}"#, e(r#""U8""#, "[8]", "[7,15]"), e(r#""U8""#, "[8]", "[0,8]")),
                &d16,
            ),
            TensorOverlap,
        ),
    ];
    // Offsets near u64::MAX: overflow must be caught, never wrap.
    let m = u64::MAX;
    for (what, dtype, shape, b, en) in [
        ("[MAX-1, MAX]", "U8", "[1]".to_string(), m - 1, m),
        ("[MAX, MAX]", "U8", "[0]".to_string(), m, m),
        ("[0, MAX], shape MAX", "U8", format!("[{m}]"), 0, m),
        ("[0, MAX], unknown dtype", "X9", "[1]".to_string(), 0, m),
        ("[MAX-8, MAX]", "F32", "[2]".to_string(), m - 8, m),
        ("[2^63, 2^63+4]", "F32", "[1]".to_string(), 1 << 63, (1 << 63) + 4),
        ("[MAX-32, MAX-24] (end+start fits, end+header does not)", "U8", "[8]".to_string(), m - 32, m - 24),
    ] {
        let f = one_tensor(&e(&jstr(dtype), &shape, &format!("[{b},{en}]")), &d16);
        v.push((format!("huge offsets {what}"), f, TensorOutOfRange));
    }
    // A deeply nested value: a parser error, not a stack overflow.
    let deep = format!("{{\"__metadata__\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    v.push(("100000-deep nesting".into(), raw_file(&deep, &d16), BadContainer));
    v
}

#[test]
fn hostile_headers_give_specific_errors() {
    for (case, file, want) in hostile() {
        let r = catch_unwind(AssertUnwindSafe(|| safetensors::read(&file).map(|_| ())));
        assert_eq!(
            r.unwrap_or_else(|_| panic!("{case}: safetensors::read panicked")),
            Err(want.clone()),
            "{case}: read"
        );
        assert_eq!(safetensors::read_tensors(&file).err(), Some(want.clone()), "{case}: read_tensors");
        assert!(safetensors::looks_like(&file), "{case}: looks like safetensors");
        let mut out = Cursor::new(Vec::new());
        assert_eq!(
            archive::compress_safetensors(&file, &mut out, &one()).err(),
            Some(want.clone()),
            "{case}: compress_safetensors"
        );
        assert!(out.get_ref().is_empty(), "{case}: compress_safetensors wrote {} bytes", out.get_ref().len());
        let mut out = Cursor::new(Vec::new());
        assert_eq!(archive::compress_any(&file, &mut out, &one()).err(), Some(want.clone()), "{case}: compress_any");
        assert!(out.get_ref().is_empty(), "{case}: compress_any wrote {} bytes", out.get_ref().len());
    }
}

#[test]
fn malformed_files_that_do_not_look_like_safetensors() {
    use Error::*;
    // The reader's errors; detection by content (`compress_any`) calls them no container at all.
    for (case, file, want_read) in [
        ("empty", vec![], ContainerTruncated),
        ("7 bytes", vec![2, 0, 0, 0, 0, 0, 0], ContainerTruncated),
        ("8 bytes, length 0", with_len(0, b""), BadContainer),
        ("length 0, then data", with_len(0, b"{}"), BadContainer),
        ("length 1", with_len(1, b"{}"), BadContainer),
        ("JSON an array", raw_file("[1,2,3]", b""), BadContainer),
        ("JSON a string", raw_file("\"x\"", b""), BadContainer),
        ("JSON null", raw_file("null", b""), BadContainer),
    ] {
        assert_eq!(safetensors::read(&file).err(), Some(want_read.clone()), "{case}: read");
        let mut out = Cursor::new(Vec::new());
        assert_eq!(archive::compress_safetensors(&file, &mut out, &one()).err(), Some(want_read.clone()), "{case}");
        assert!(!safetensors::looks_like(&file), "{case}");
        let mut out = Cursor::new(Vec::new());
        let got = archive::compress_any(&file, &mut out, &one()).err();
        assert!(matches!(got, Some(ContainerBadMagic | ContainerTruncated)), "{case}: compress_any gave {got:?}");
        assert!(out.get_ref().is_empty(), "{case}");
    }
    // A header length above 100 MiB is refused before anything is read.
    for n in [MAX_HEADER_LEN + 1, 1 << 40, u64::MAX] {
        let f = with_len(n, b"{}");
        assert_eq!(safetensors::read(&f).err(), Some(BadContainer), "header length {n}");
        let mut out = Cursor::new(Vec::new());
        assert_eq!(archive::compress_safetensors(&f, &mut out, &one()).err(), Some(BadContainer), "header length {n}");
        assert!(out.get_ref().is_empty());
    }
}

#[test]
fn oversized_header_is_bad_container_through_every_entry_point() {
    // A file that starts like safetensors (u64 length, then '{') whose header length is above the
    // 100 MiB limit is a malformed safetensors file, not "no container": detection by content
    // must not apply the limit itself. (Once a bug: `looks_like` checked the limit, so
    // `compress_any`, `wz_archive_compress_file` and the CLI said CONTAINER_BAD_MAGIC.)
    let f = with_len(MAX_HEADER_LEN + 1, b"{\"t\":{}}");
    assert!(safetensors::looks_like(&f));
    let mut out = Cursor::new(Vec::new());
    assert_eq!(archive::compress_any(&f, &mut out, &one()).err(), Some(Error::BadContainer));
    assert!(out.get_ref().is_empty());
    let dir = TempDir::new("st-oversized");
    let src = dir.join("big.safetensors");
    std::fs::write(&src, &f).unwrap();
    let dst = dir.join("big.safetensors.wz");
    let s = unsafe { wz_archive_compress_file(cpath(&src).as_ptr(), cpath(&dst).as_ptr(), null()) };
    assert_eq!(s as u32, wz_status::WZ_STATUS_BAD_CONTAINER as u32);
    let o = run(&dir, &["compress", "big.safetensors"]);
    failure(&o, "CLI");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("neither a GGUF nor a safetensors"), "CLI: {err}");
    assert_eq!(dir.entries(), vec!["big.safetensors"]);
}

// The C API ------------------------------------------------------------------------------------

fn cstr(p: *const c_char) -> String {
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Checks through the C API an archive of `b` at `wz`.
fn c_check(b: &Built, wz: &Path, label: &str) {
    let a = capi::open_path(wz).unwrap_or_else(|s| panic!("{label}: wz_archive_open status {s}"));
    let mut info: wz_archive_info = unsafe { std::mem::zeroed() };
    info.struct_size = std::mem::size_of::<wz_archive_info>() as u32;
    assert_eq!(unsafe { wz_archive_get_info(a.0, &mut info) } as u32, 0);
    assert_eq!(info.container, WZ_CONTAINER_SAFETENSORS, "{label}");
    assert_eq!(WZ_CONTAINER_SAFETENSORS, 2);
    assert_eq!(info.tensor_count, b.expected.len() as u64, "{label}");
    assert_eq!(info.original_size, b.bytes.len() as u64, "{label}");
    assert_eq!(info.metadata_size, b.data_start, "{label}");
    for (i, e) in b.expected.iter().enumerate() {
        let ti = capi::tensor_info(&a, i);
        let l = format!("{label}: tensor {i} {:?}", e.name);
        assert_eq!(ti.container_type, dtype_code(&e.dtype), "{l}: container_type");
        let want = if dtype_code(&e.dtype) == UNKNOWN { "unknown" } else { e.dtype.as_str() };
        assert_eq!(cstr(ti.type_name), want, "{l}: type_name");
        assert_eq!(ti.kind, wz_kind_of(&e.dtype), "{l}: kind");
        assert_eq!(ti.n_dims as usize, e.shape.len(), "{l}");
        assert_eq!(&ti.dims[..e.shape.len()], &e.shape[..], "{l}");
        assert_eq!(ti.name_len, e.name.len(), "{l}");
        let name = unsafe { std::slice::from_raw_parts(ti.name.cast::<u8>(), ti.name_len + 1) };
        assert_eq!(name, [e.name.as_bytes(), &[0]].concat(), "{l}: name");
        assert_eq!((ti.original_offset, ti.original_size), (e.offset, e.len), "{l}");
        let mut dst = vec![0xA5u8; e.len as usize];
        let s = unsafe { wz_archive_read_tensor(a.0, i, dst.as_mut_ptr().cast(), dst.len(), null()) } as u32;
        assert_eq!(s, 0, "{l}: read_tensor");
        assert!(dst == b.bytes[e.offset as usize..(e.offset + e.len) as usize], "{l}: bytes");
    }
    assert_eq!(unsafe { wz_archive_verify(a.0, null()) } as u32, 0, "{label}: verify");
}

#[test]
fn c_api_compresses_safetensors_and_names_dtypes() {
    let dir = TempDir::new("st-capi");
    let mut r = Lcg::new(8);
    let mixed = Spec::new()
        .tensor(&[], t("w", "BF16", &[64, 64], &mut r))
        .tensor(b"ab", t("f", "F32", &[100], &mut r))
        .tensor(&[], t("h", "F16", &[9], &mut r))
        .tensor(&[], t("i", "I64", &[3], &mut r))
        .tensor(&[], t("m", "BOOL", &[5], &mut r))
        .tensor(&[], t("u", "F8_E8M0", &[7], &mut r))
        .tensor(&[], t_bytes("z", "F32", &[0], vec![]))
        .build();
    for (label, b) in [("fixture", fixture_built()), ("mixed dtypes", &mixed)] {
        let src = dir.join("in.safetensors");
        std::fs::write(&src, &b.bytes).unwrap();
        let wz = dir.join("in.safetensors.wz");
        let _ = std::fs::remove_file(&wz);
        let s = unsafe { wz_archive_compress_file(cpath(&src).as_ptr(), cpath(&wz).as_ptr(), null()) } as u32;
        assert_eq!(s, 0, "{label}: compress_file");
        assert!(std::fs::read(&wz).unwrap() == compress(&b.bytes, &one()), "{label}: C and Rust archives differ");
        c_check(b, &wz, label);
        let out = dir.join("restored");
        let a = capi::open_path(&wz).unwrap();
        assert_eq!(unsafe { wz_archive_restore(a.0, cpath(&out).as_ptr(), null()) } as u32, 0, "{label}: restore");
        assert!(std::fs::read(&out).unwrap() == b.bytes, "{label}: restored file differs");
        std::fs::remove_file(&out).unwrap();
    }
    dir.assert_no_temporaries("C API");
}

#[test]
fn c_api_compress_file_of_hostile_safetensors_gives_specific_statuses() {
    let dir = TempDir::new("st-capi-hostile");
    let mut cases: Vec<(String, Vec<u8>, u32)> =
        hostile().into_iter().map(|(c, f, e)| (c, f, wz_status::from(e) as u32)).collect();
    // Status numbers are frozen: check the ones these cases use by value.
    assert_eq!(wz_status::from(Error::BadContainer) as u32, 19);
    assert_eq!(wz_status::from(Error::ContainerTruncated) as u32, 20);
    assert_eq!(wz_status::from(Error::TensorOutOfRange) as u32, 23);
    assert_eq!(wz_status::from(Error::TensorOverlap) as u32, 24);
    cases.push(("empty file".into(), vec![], 20));
    cases.push(("7 bytes".into(), vec![2, 0, 0, 0, 0, 0, 0], 21));
    cases.push(("not an object".into(), raw_file("[1]", b""), 21));
    for (case, file, want) in cases {
        let src = dir.join("bad.safetensors");
        std::fs::write(&src, &file).unwrap();
        let out = dir.join("bad.safetensors.wz");
        let s = unsafe { wz_archive_compress_file(cpath(&src).as_ptr(), cpath(&out).as_ptr(), null()) } as u32;
        assert_eq!(s, want, "{case}");
        assert_eq!(dir.entries(), vec!["bad.safetensors"], "{case}: output or temporary file left behind");
    }
}

// The CLI --------------------------------------------------------------------------------------

use common::wz;

fn run(dir: &TempDir, args: &[&str]) -> Output {
    wz().current_dir(&dir.path).args(args).output().expect("run weightzip")
}

#[track_caller]
fn success(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[track_caller]
fn failure(o: &Output, what: &str) {
    assert!(!o.status.success(), "{what}: expected a failure\nstdout: {}", String::from_utf8_lossy(&o.stdout));
    assert!(!o.stderr.is_empty(), "{what}: no message on stderr");
}

fn json_out(o: &Output, what: &str) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

#[test]
fn cli_compress_ls_verify_decompress() {
    let dir = TempDir::new("st-cli");
    std::fs::copy(data_path(ST_FIXTURE), dir.join("x.safetensors")).unwrap();
    let orig = st_file();
    success(&run(&dir, &["compress", "x.safetensors"]), "compress");
    assert!(std::fs::read(dir.join("x.safetensors.wz")).unwrap() == fixture_archive(), "CLI archive differs");

    let o = run(&dir, &["ls", "--json", "x.safetensors.wz"]);
    success(&o, "ls --json");
    let j = json_out(&o, "ls --json");
    if let Some(c) = j.get("container") {
        assert_eq!(c, "safetensors");
    }
    let ts = j["tensors"].as_array().expect("tensors");
    assert_eq!(ts.len(), 19);
    for (t, e) in ts.iter().zip(&fixture_built().expected) {
        assert_eq!(t["name"], e.name.as_str());
        assert_eq!(t["type"], "BF16", "{}", e.name);
        assert_eq!(t["type_id"], 6);
        assert_eq!(t["kind"], "bf16");
        assert_eq!(t["original_size"], e.len);
    }
    let o = run(&dir, &["ls", "x.safetensors.wz"]);
    success(&o, "ls");
    assert!(String::from_utf8_lossy(&o.stdout).contains("BF16"));

    success(&run(&dir, &["verify", "x.safetensors.wz", "x.safetensors"]), "verify against the original");
    let o = run(&dir, &["verify", "--json", "x.safetensors.wz", "x.safetensors"]);
    success(&o, "verify --json");
    let j = json_out(&o, "verify --json");
    assert_eq!(j["ok"], true);
    assert_eq!(j["matches_original"], true);

    success(&run(&dir, &["decompress", "x.safetensors.wz", "-o", "y.safetensors"]), "decompress -o");
    assert!(std::fs::read(dir.join("y.safetensors")).unwrap() == orig);
    // The default output name drops .wz.
    std::fs::remove_file(dir.join("x.safetensors")).unwrap();
    success(&run(&dir, &["decompress", "x.safetensors.wz"]), "decompress");
    assert!(std::fs::read(dir.join("x.safetensors")).unwrap() == orig);
    // A different file is not what the archive restores.
    let mut other = orig.to_vec();
    let last = other.len() - 1;
    other[last] ^= 1;
    std::fs::write(dir.join("other.safetensors"), &other).unwrap();
    failure(&run(&dir, &["verify", "x.safetensors.wz", "other.safetensors"]), "verify against another file");
    dir.assert_no_temporaries("CLI");
}

#[test]
fn cli_lists_every_dtype() {
    let dir = TempDir::new("st-cli-dtypes");
    let mut r = Lcg::new(9);
    let mut spec = Spec::new()
        .tensor(&[], t("a", "F32", &[10], &mut r))
        .tensor(&[], t("b", "F16", &[10], &mut r))
        .tensor(b"gap", t("c", "I64", &[10], &mut r))
        .tensor(&[], t("d", "X99", &[10], &mut r))
        .tensor(&[], t("e", "BOOL", &[10], &mut r))
        .tensor(&[], t("f", "BF16", &[10], &mut r));
    spec.json_order = Some(vec![5, 3, 1, 0, 2, 4]);
    spec.tail = b"tail".to_vec();
    let b = spec.build();
    std::fs::write(dir.join("m.safetensors"), &b.bytes).unwrap();
    success(&run(&dir, &["compress", "m.safetensors"]), "compress");
    let o = run(&dir, &["ls", "--json", "m.safetensors.wz"]);
    success(&o, "ls --json");
    let j = json_out(&o, "ls");
    let got: Vec<(String, String, String)> = j["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (t["name"].as_str().unwrap().into(), t["type"].as_str().unwrap().into(), t["kind"].as_str().unwrap().into())
        })
        .collect();
    let want: Vec<(String, String, String)> = [
        ("a", "F32", "f32"),
        ("b", "F16", "f16"),
        ("c", "I64", "bytes"),
        ("d", "unknown", "bytes"),
        ("e", "BOOL", "bytes"),
        ("f", "BF16", "bf16"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(got, want);
    success(&run(&dir, &["verify", "m.safetensors.wz", "m.safetensors"]), "verify");
    success(&run(&dir, &["decompress", "m.safetensors.wz", "-o", "back"]), "decompress");
    assert!(std::fs::read(dir.join("back")).unwrap() == b.bytes);
}

#[test]
fn cli_refuses_hostile_safetensors_and_leaves_nothing() {
    let dir = TempDir::new("st-cli-hostile");
    let mut cases: Vec<(String, Vec<u8>)> = hostile().into_iter().map(|(c, f, _)| (c, f)).collect();
    cases.push(("7 bytes".into(), vec![2, 0, 0, 0, 0, 0, 0]));
    cases.push(("header length above 100 MiB".into(), with_len(MAX_HEADER_LEN + 1, b"{}")));
    for (case, file) in cases {
        std::fs::write(dir.join("bad.safetensors"), &file).unwrap();
        failure(&run(&dir, &["compress", "bad.safetensors"]), &case);
        assert_eq!(dir.entries(), vec!["bad.safetensors"], "{case}: output or temporary file left behind");
    }
}

// A damaged archive ----------------------------------------------------------------------------

/// Where tensor `i`'s frame payload starts and ends in the archive.
fn payload_span(arc: &[u8], a: &Archive, i: usize) -> (usize, usize) {
    let t = &a.tensors()[i];
    let f = &arc[t.arc_offset as usize..(t.arc_offset + t.arc_size) as usize];
    let info = frame::read_info(f).unwrap();
    let start = frame::HEADER_LEN
        + info.model_size as usize
        + frame::CHUNK_ENTRY_LEN * info.chunk_count as usize
        + frame::CHECK_LEN;
    (t.arc_offset as usize + start, (t.arc_offset + t.arc_size) as usize)
}

#[test]
fn damaged_archive_truncations_and_header_and_index_flips_fail_at_open() {
    let arc = fixture_archive();
    let a = Archive::from_bytes(arc).unwrap();
    let hd = *a.header();
    // Truncated anywhere: the header says how long the archive is.
    let mut cuts: Vec<usize> = (0..HEADER_LEN + 8).collect();
    cuts.extend((HEADER_LEN..arc.len()).step_by(50_021));
    cuts.extend([hd.index_offset as usize, hd.index_offset as usize + 1, arc.len() - 1]);
    for cut in cuts {
        assert_eq!(Archive::from_bytes(&arc[..cut]).err(), Some(Error::Truncated), "cut at {cut}");
    }
    let mut long = arc.to_vec();
    long.push(0);
    assert_eq!(Archive::from_bytes(&long).err(), Some(Error::TrailingData));
    // Every header byte, one bit at a time (flipped in place and back).
    let mut bad = arc.to_vec();
    for at in 0..HEADER_LEN {
        for bit in [0x01u8, 0x80] {
            bad[at] ^= bit;
            let want = if at < 4 { Error::BadMagic } else { Error::CorruptHeader };
            assert_eq!(Archive::from_bytes(&bad).err(), Some(want.clone()), "header byte {at} bit {bit:#x}");
            bad[at] ^= bit;
        }
    }
    // Index bytes (every one; the index is small).
    let mut r = Lcg::new(10);
    for at in hd.index_offset as usize..arc.len() {
        let bit = 1u8 << r.below(8);
        bad[at] ^= bit;
        assert_eq!(Archive::from_bytes(&bad).err(), Some(Error::CorruptHeader), "index byte {at}");
        bad[at] ^= bit;
    }
    assert!(bad == arc);
    // Through files too: open_path refuses the same way.
    let dir = TempDir::new("st-damaged-open");
    let p = dir.join("cut.wz");
    std::fs::write(&p, &arc[..arc.len() / 2]).unwrap();
    assert_eq!(Archive::open_path(&p).err(), Some(Error::Truncated));
    std::fs::write(&p, b"").unwrap();
    assert_eq!(Archive::open_path(&p).err(), Some(Error::Truncated));
}

#[test]
fn a_damaged_tensor_fails_alone() {
    let arc = fixture_archive();
    let b = fixture_built();
    let a0 = Archive::from_bytes(arc).unwrap();
    let n = a0.tensors().len();
    let dir = TempDir::new("st-damaged-tensor");
    for k in 0..n {
        let (ps, pe) = payload_span(arc, &a0, k);
        let t = &a0.tensors()[k];
        // A flip in the payload (CORRUPT_DATA) and in the frame's header (CORRUPT_HEADER).
        for (where_, at, want) in [
            ("payload", (ps + pe) / 2, Error::CorruptData),
            ("payload end", pe - 1, Error::CorruptData),
            ("frame header", t.arc_offset as usize + 10, Error::CorruptHeader),
        ] {
            let case = format!("tensor {k} ({}) {where_}", String::from_utf8_lossy(&t.name));
            let mut bad = arc.to_vec();
            bad[at] ^= 0x04;
            let a = Archive::from_bytes(&bad).unwrap_or_else(|e| panic!("{case}: open failed: {e:?}"));
            for (i, e) in b.expected.iter().enumerate() {
                let mut dst = vec![0xA5u8; e.len as usize];
                let got = a.read_tensor(i, &mut dst, &opts(2, 0));
                if i == k {
                    assert_eq!(got, Err(want.clone()), "{case}");
                    assert!(dst.iter().all(|&x| x == 0) || dst.iter().all(|&x| x == 0xA5), "{case}: partial output");
                } else {
                    assert_eq!(got, Ok(()), "{case}: tensor {i} fails too");
                    assert!(dst == b.bytes[e.offset as usize..(e.offset + e.len) as usize], "{case}: tensor {i}");
                }
            }
            assert_eq!(a.metadata().unwrap(), &b.bytes[..b.data_start as usize], "{case}");
            assert_eq!(a.verify(&one()), Err((Some(k), want.clone())), "{case}: verify");
            let out = dir.join("restored.safetensors");
            assert_eq!(a.restore_file(&out, &opts(2, 0)), Err(want.clone()), "{case}: restore_file");
            assert!(dir.entries().is_empty(), "{case}: restore_file left {:?}", dir.entries());
            let mut sink = Vec::new();
            assert_eq!(a.restore_to(&mut sink, &one()), Err(want.clone()), "{case}: restore_to");
        }
    }
}

#[test]
fn damaged_extra_frame_fails_metadata_and_restore_only() {
    let arc = fixture_archive();
    let b = fixture_built();
    let a0 = Archive::from_bytes(arc).unwrap();
    let ex = a0.index().extra;
    let dir = TempDir::new("st-damaged-extra");
    for at in [ex.offset as usize + ex.size as usize / 2, (ex.offset + ex.size) as usize - 1] {
        let mut bad = arc.to_vec();
        bad[at] ^= 0x10;
        let a = Archive::from_bytes(&bad).unwrap();
        assert_eq!(a.metadata().err(), Some(Error::CorruptData), "extra byte {at}");
        for (i, e) in b.expected.iter().enumerate() {
            assert!(a.tensor_vec(i, &one()).unwrap() == b.bytes[e.offset as usize..(e.offset + e.len) as usize]);
        }
        assert_eq!(a.verify(&one()), Err((None, Error::CorruptData)));
        let out = dir.join("r.safetensors");
        assert_eq!(a.restore_file(&out, &one()), Err(Error::CorruptData));
        assert!(dir.entries().is_empty(), "restore_file left {:?}", dir.entries());
    }
}

#[test]
fn cli_on_a_damaged_archive_fails_and_leaves_nothing() {
    let arc = fixture_archive();
    let a = Archive::from_bytes(arc).unwrap();
    let (ps, pe) = payload_span(arc, &a, a.tensors().len() - 1);
    let mut bad = arc.to_vec();
    bad[(ps + pe) / 2] ^= 0x20;
    let dir = TempDir::new("st-cli-damaged");
    std::fs::write(dir.join("d.safetensors.wz"), &bad).unwrap();
    failure(&run(&dir, &["verify", "d.safetensors.wz"]), "verify");
    failure(&run(&dir, &["decompress", "d.safetensors.wz"]), "decompress");
    assert_eq!(dir.entries(), vec!["d.safetensors.wz"], "decompress left something");
    std::fs::write(dir.join("d.safetensors.wz"), &arc[..arc.len() - 3]).unwrap();
    failure(&run(&dir, &["decompress", "d.safetensors.wz"]), "decompress truncated");
    failure(&run(&dir, &["ls", "d.safetensors.wz"]), "ls truncated");
    assert_eq!(dir.entries(), vec!["d.safetensors.wz"]);
}

#[test]
fn fuzzed_headers_never_panic() {
    // Random edits of a valid header's JSON: any result but a panic, and when it compresses, it
    // restores exactly.
    let mut r = Lcg::new(11);
    let base = Spec::new()
        .tensor(&[], t("a", "F32", &[4], &mut r))
        .tensor(b"xy", t("b", "BF16", &[3], &mut r))
        .tensor(&[], t("c", "U8", &[0], &mut r))
        .build();
    let n = base.data_start as usize;
    let alphabet = b"{}[]\",:0123456789-.eE \\u";
    let (mut ok, mut refused) = (0, 0);
    for it in 0..2000 {
        let mut f = base.bytes.clone();
        for _ in 0..1 + r.below(3) {
            let at = 8 + r.below_usize(n - 8);
            f[at] = alphabet[r.below_usize(alphabet.len())];
        }
        let res = catch_unwind(AssertUnwindSafe(|| {
            let mut out = Cursor::new(Vec::new());
            match archive::compress_any(&f, &mut out, &one()) {
                Ok(_) => {
                    let arc = out.into_inner();
                    let mut back = Vec::new();
                    Archive::from_bytes(&arc).unwrap().restore_to(&mut back, &one()).unwrap();
                    assert!(back == f, "mutant {it} restores other bytes");
                    true
                }
                Err(_) => {
                    assert!(out.get_ref().is_empty(), "mutant {it}: failure wrote bytes");
                    false
                }
            }
        }));
        match res {
            Ok(true) => ok += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!("mutant {it} panicked: {:?}", String::from_utf8_lossy(&f[8..n])),
        }
    }
    // Both outcomes happen: the mutations reach past the JSON parser.
    assert!(ok >= 20 && refused >= 20, "{ok} compressed, {refused} refused");
}

/// A small integer tensor takes zstd's strongest level where that is smaller than the generic
/// path's own middle level. The data is MiniLM's I64 `embeddings.position_ids` (0..511, as every
/// BERT-style safetensors file has it): level 6 made 558 bytes of it, level 19 makes 547.
#[test]
fn small_integer_tensors_get_zstd_at_its_strongest_level() {
    let ids: Vec<u8> = (0..512i64).flat_map(|v| v.to_le_bytes()).collect();
    let f = frame::compress(Kind::Bytes, &ids, &one()).unwrap();
    let strongest = weightzip::zstd::compress(&ids, 19, 1).unwrap();
    let info = frame::read_info(&f).unwrap();
    let overhead = f.len() - info.payload_size as usize;
    assert!(
        info.payload_size as usize <= strongest.len(),
        "payload {} bytes, zstd -19 alone {} (frame {} bytes, {overhead} of them header and tables)",
        info.payload_size,
        strongest.len(),
        f.len()
    );
    assert_eq!(frame::decompress(&f, &one()).unwrap(), ids);
}
