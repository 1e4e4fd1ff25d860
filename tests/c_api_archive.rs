//! The archive half of the C ABI (`wz_archive_*`) called directly from Rust, as a C loader would:
//! NULL arguments, versioned structs, statuses and their frozen numbers, tensor info against the
//! GGUF reader, reads into caller buffers, the metadata pointer, atomic restore and compress
//! (never over an input), hostile GGUF files, and one handle shared by several threads.

#[path = "common/capi.rs"]
mod capi;
mod common;
#[path = "common/gguf_synth.rs"]
mod gguf_synth;

use std::ffi::{c_char, c_void, CStr, CString};
use std::io::Cursor;
use std::path::Path;
use std::ptr::{null, null_mut};
use std::sync::OnceLock;

use capi::{cpath, garbage_handle, open_path, Handle};
use common::{data_path, TempDir};
use gguf_synth::{gt, mixed, noise, Built, Tensor};
use sha2::{Digest, Sha256};
use weightzip::archive::{self, Archive};
use weightzip::ffi::archive::*;
use weightzip::ffi::*;
use weightzip::{gguf, Options};

const OK: u32 = 0;
const MINILM: &str = "minilm-l6-q4_k_m.gguf";
const QWEN: &str = "qwen25coder15b-q4km-mini.gguf";

fn st(s: wz_status) -> u32 {
    s as u32
}

use wz_status::*;

struct Fixture {
    name: &'static str,
    file: Vec<u8>,
    arc: Vec<u8>,
}

/// Both fixtures with their archives, made once.
fn fixtures() -> &'static [Fixture] {
    static F: OnceLock<Vec<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        [QWEN, MINILM]
            .into_iter()
            .map(|name| {
                let file = std::fs::read(data_path(name)).unwrap();
                let arc = rust_archive(&file);
                Fixture { name, file, arc }
            })
            .collect()
    })
}

fn rust_archive(file: &[u8]) -> Vec<u8> {
    let mut c = Cursor::new(Vec::new());
    archive::compress_gguf(file, &mut c, &Options::default()).unwrap();
    c.into_inner()
}

fn qwen() -> &'static Fixture {
    &fixtures()[0]
}

fn open_memory(arc: &[u8]) -> Handle {
    capi::open_memory(arc).unwrap_or_else(|s| panic!("wz_archive_open_memory: status {s}"))
}

fn open_memory_status(bytes: &[u8]) -> u32 {
    let mut a = garbage_handle();
    let s = st(unsafe { wz_archive_open_memory(bytes.as_ptr() as *const c_void, bytes.len(), &mut a) });
    if s == OK {
        unsafe { wz_archive_close(a) };
    } else {
        assert!(a.is_null(), "*archive not set to NULL on failure ({s})");
    }
    s
}

fn tensor_info(a: &Handle, i: usize) -> Result<wz_tensor_info, u32> {
    let mut t = blank_tensor_info();
    let s = st(unsafe { wz_archive_tensor_info(a.0, i, &mut t) });
    if s == OK {
        Ok(t)
    } else {
        Err(s)
    }
}

fn blank_tensor_info() -> wz_tensor_info {
    wz_tensor_info {
        struct_size: std::mem::size_of::<wz_tensor_info>() as u32,
        container_type: 0xDEAD,
        kind: 0xDEAD,
        n_dims: 0xDEAD,
        dims: [0xDEAD; 8],
        name: null(),
        name_len: 0xDEAD,
        original_offset: 0xDEAD,
        original_size: 0xDEAD,
        archive_offset: 0xDEAD,
        archive_size: 0xDEAD,
        sha256: [0xDE; 32],
        type_name: null(),
    }
}

fn archive_info(a: *const wz_archive) -> Result<wz_archive_info, u32> {
    let mut i = wz_archive_info {
        struct_size: std::mem::size_of::<wz_archive_info>() as u32,
        container: 0xDEAD,
        tensor_count: 0xDEAD,
        original_size: 0xDEAD,
        archive_size: 0xDEAD,
        metadata_size: 0xDEAD,
    };
    let s = st(unsafe { wz_archive_get_info(a, &mut i) });
    if s == OK {
        Ok(i)
    } else {
        Err(s)
    }
}

fn read(a: &Handle, i: usize, dst: &mut [u8], o: *const wz_options) -> u32 {
    st(unsafe { wz_archive_read_tensor(a.0, i, dst.as_mut_ptr() as *mut c_void, dst.len(), o) })
}

fn metadata(a: &Handle) -> Result<(*const c_void, usize), u32> {
    let (mut p, mut n) = (null(), usize::MAX);
    let s = st(unsafe { wz_archive_metadata(a.0, &mut p, &mut n) });
    if s == OK {
        Ok((p, n))
    } else {
        Err(s)
    }
}

fn default_opts() -> wz_options {
    let mut o = wz_options { struct_size: 0, threads: 99, chunk_size: 99, flags: 99 };
    assert_eq!(st(unsafe { wz_options_init(&mut o) }), OK);
    o
}

fn kind_of(ggml_type: u32) -> u32 {
    match ggml_type {
        0 => WZ_KIND_F32,
        1 => WZ_KIND_F16,
        2 => WZ_KIND_Q4_0,
        3 => WZ_KIND_Q4_1,
        6 => WZ_KIND_Q5_0,
        7 => WZ_KIND_Q5_1,
        8 => WZ_KIND_Q8_0,
        10 => WZ_KIND_Q2_K,
        11 => WZ_KIND_Q3_K,
        12 => WZ_KIND_Q4_K,
        13 => WZ_KIND_Q5_K,
        14 => WZ_KIND_Q6_K,
        20 => WZ_KIND_IQ4_NL,
        23 => WZ_KIND_IQ4_XS,
        30 => WZ_KIND_BF16,
        _ => WZ_KIND_BYTES,
    }
}

// Statuses -------------------------------------------------------------------------------------

#[test]
fn archive_status_numbers_are_frozen() {
    assert_eq!(st(WZ_STATUS_BAD_CONTAINER), 19);
    assert_eq!(st(WZ_STATUS_CONTAINER_TRUNCATED), 20);
    assert_eq!(st(WZ_STATUS_CONTAINER_BAD_MAGIC), 21);
    assert_eq!(st(WZ_STATUS_CONTAINER_VERSION), 22);
    assert_eq!(st(WZ_STATUS_TENSOR_OUT_OF_RANGE), 23);
    assert_eq!(st(WZ_STATUS_TENSOR_OVERLAP), 24);
    assert_eq!(st(WZ_STATUS_NOT_FOUND), 25);
    assert_eq!(WZ_CONTAINER_GGUF, 1);
    for c in 19..=25 {
        let s = unsafe { CStr::from_ptr(wz_status_str(c)) }.to_str().unwrap();
        assert!(!s.is_empty() && s != "unknown status code", "status {c}: {s:?}");
    }
}

// NULL arguments -------------------------------------------------------------------------------

#[test]
fn null_arguments() {
    let f = qwen();
    let np = st(WZ_STATUS_NULL_POINTER);
    let mut a = garbage_handle();
    assert_eq!(st(unsafe { wz_archive_open(null(), &mut a) }), np);
    assert!(a.is_null(), "open(NULL path) leaves *archive NULL");
    let p = cpath(&data_path(QWEN));
    assert_eq!(st(unsafe { wz_archive_open(p.as_ptr(), null_mut()) }), np);
    let mut a = garbage_handle();
    assert_eq!(st(unsafe { wz_archive_open_memory(null(), 10, &mut a) }), np);
    assert!(a.is_null());
    assert_eq!(st(unsafe { wz_archive_open_memory(f.arc.as_ptr() as *const c_void, f.arc.len(), null_mut()) }), np);
    let mut a = garbage_handle();
    assert_eq!(st(unsafe { wz_archive_open_memory(null(), 0, &mut a) }), st(WZ_STATUS_TRUNCATED), "empty input");
    assert!(a.is_null());

    let h = open_memory(&f.arc);
    let nul: *const wz_archive = null();
    let mut ai = wz_archive_info {
        struct_size: 40,
        container: 0,
        tensor_count: 0,
        original_size: 0,
        archive_size: 0,
        metadata_size: 0,
    };
    let mut ti = blank_tensor_info();
    let mut buf = [0u8; 16];
    let mut idx = 7usize;
    let (mut mp, mut ms) = (null(), 0usize);
    let name = c"output.weight";
    let out = cpath(&std::env::temp_dir().join("weightzip-never-written"));
    unsafe {
        assert_eq!(st(wz_archive_get_info(nul, &mut ai)), np);
        assert_eq!(st(wz_archive_get_info(h.0, null_mut())), np);
        assert_eq!(wz_archive_tensor_count(nul), 0);
        assert_eq!(st(wz_archive_tensor_info(nul, 0, &mut ti)), np);
        assert_eq!(st(wz_archive_tensor_info(h.0, 0, null_mut())), np);
        assert_eq!(st(wz_archive_find_tensor(nul, name.as_ptr(), &mut idx)), np);
        assert_eq!(st(wz_archive_find_tensor(h.0, null(), &mut idx)), np);
        assert_eq!(st(wz_archive_find_tensor(h.0, name.as_ptr(), null_mut())), np);
        assert_eq!(idx, 7, "index written on failure");
        assert_eq!(st(wz_archive_read_tensor(nul, 0, buf.as_mut_ptr() as *mut c_void, 16, null())), np);
        assert_eq!(st(wz_archive_read_tensor(h.0, 0, null_mut(), 16, null())), np);
        assert_eq!(st(wz_archive_metadata(nul, &mut mp, &mut ms)), np);
        assert_eq!(st(wz_archive_metadata(h.0, null_mut(), &mut ms)), np);
        assert_eq!(st(wz_archive_metadata(h.0, &mut mp, null_mut())), np);
        assert!(mp.is_null() && ms == 0, "metadata outputs written on failure");
        assert_eq!(st(wz_archive_restore(nul, out.as_ptr(), null())), np);
        assert_eq!(st(wz_archive_restore(h.0, null(), null())), np);
        assert_eq!(st(wz_archive_verify(nul, null())), np);
        assert_eq!(st(wz_archive_compress_file(null(), out.as_ptr(), null())), np);
        assert_eq!(st(wz_archive_compress_file(p.as_ptr(), null(), null())), np);
        wz_archive_close(null_mut());
    }
    assert!(!Path::new(out.to_str().unwrap()).exists());
}

// Opening --------------------------------------------------------------------------------------

#[test]
fn open_failures_leave_the_handle_null() {
    let dir = TempDir::new("capi-archive-open");
    let f = qwen();
    let write = |name: &str, b: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    let missing = dir.join("missing.wz");
    assert_eq!(open_path(&missing).err(), Some(st(WZ_STATUS_IO)));
    // The status says "I/O error"; the last error message says which file and why.
    assert_eq!(last_error(), format!("cannot open {}: No such file or directory", missing.display()));
    assert_eq!(open_path(&write("empty.wz", b"")).err(), Some(st(WZ_STATUS_TRUNCATED)));
    assert_eq!(last_error(), "input is truncated");
    assert_eq!(open_path(&write("cut.wz", &f.arc[..f.arc.len() - 1])).err(), Some(st(WZ_STATUS_TRUNCATED)));
    assert_eq!(open_path(&write("x.gguf", &f.file)).err(), Some(st(WZ_STATUS_BAD_MAGIC)));
    let mut trailing = f.arc.clone();
    trailing.push(0);
    assert_eq!(open_path(&write("trailing.wz", &trailing)).err(), Some(st(WZ_STATUS_TRAILING_DATA)));
    let mut hdr = f.arc.clone();
    hdr[20] ^= 1;
    assert_eq!(open_path(&write("header.wz", &hdr)).err(), Some(st(WZ_STATUS_CORRUPT_HEADER)));
    let mut index = f.arc.clone();
    let n = index.len();
    index[n - 5] ^= 1;
    assert_eq!(open_path(&write("index.wz", &index)).err(), Some(st(WZ_STATUS_CORRUPT_HEADER)));
    // The same through memory.
    assert_eq!(open_memory_status(&f.arc[..100]), st(WZ_STATUS_TRUNCATED));
    assert_eq!(open_memory_status(&f.file), st(WZ_STATUS_BAD_MAGIC));
    assert_eq!(open_memory_status(&trailing), st(WZ_STATUS_TRAILING_DATA));
    assert_eq!(open_memory_status(&hdr), st(WZ_STATUS_CORRUPT_HEADER));
    assert_eq!(open_memory_status(&f.arc), OK);
    // A directory.
    assert_eq!(open_path(&dir.path).err(), Some(st(WZ_STATUS_IO)));
}

// Archive info ---------------------------------------------------------------------------------

#[test]
fn get_info() {
    for f in fixtures() {
        let h = open_memory(&f.arc);
        let i = archive_info(h.0).unwrap();
        let g = gguf::read(&f.file).unwrap();
        assert_eq!(i.struct_size, 40, "struct_size is the caller's and stays");
        assert_eq!(i.container, WZ_CONTAINER_GGUF);
        assert_eq!(i.tensor_count, g.tensors.len() as u64, "{}", f.name);
        assert_eq!(i.original_size, f.file.len() as u64);
        assert_eq!(i.archive_size, f.arc.len() as u64);
        assert_eq!(i.metadata_size, g.data_start);
        assert_eq!(unsafe { wz_archive_tensor_count(h.0) }, g.tensors.len());
    }
    assert_eq!(std::mem::size_of::<wz_archive_info>(), 40);
}

/// A caller's struct of any size inside a buffer of canary bytes.
#[repr(C, align(8))]
struct Raw {
    bytes: [u8; 320],
}

const CANARY: u8 = 0xCC;

fn raw(struct_size: u32) -> Raw {
    let mut r = Raw { bytes: [CANARY; 320] };
    r.bytes[..4].copy_from_slice(&struct_size.to_le_bytes());
    r
}

/// `call` fills a struct of `ours` bytes: every struct_size writes exactly its prefix (up to ours),
/// bad sizes write nothing.
fn check_versioned(ours: usize, call: &dyn Fn(*mut u8) -> u32, what: &str) {
    let mut full = raw(ours as u32);
    assert_eq!(call(full.bytes.as_mut_ptr()), OK, "{what}");
    for size in (4..=ours as u32).step_by(4).chain([ours as u32 + 8, 200, 256]) {
        let mut r = raw(size);
        assert_eq!(call(r.bytes.as_mut_ptr()), OK, "{what}: struct_size {size}");
        let n = (size as usize).min(ours);
        assert_eq!(&r.bytes[..4], &size.to_le_bytes(), "{what}: struct_size {size}: size field changed");
        assert_eq!(&r.bytes[4..n], &full.bytes[4..n], "{what}: struct_size {size}: fields differ");
        assert!(r.bytes[n..].iter().all(|&b| b == CANARY), "{what}: struct_size {size}: wrote past {n} bytes");
    }
    for size in [0u32, 1, 3, 257, 1 << 20, u32::MAX] {
        let mut r = raw(size);
        assert_eq!(call(r.bytes.as_mut_ptr()), st(WZ_STATUS_INVALID_ARGUMENT), "{what}: struct_size {size}");
        assert!(r.bytes[4..].iter().all(|&b| b == CANARY), "{what}: struct_size {size}: written on failure");
    }
}

#[test]
fn info_structs_are_versioned() {
    let h = open_memory(&qwen().arc);
    let a = h.0 as usize;
    check_versioned(
        std::mem::size_of::<wz_archive_info>(),
        &|p| st(unsafe { wz_archive_get_info(a as *const wz_archive, p as *mut wz_archive_info) }),
        "wz_archive_get_info",
    );
    assert_eq!(std::mem::size_of::<wz_tensor_info>(), 168);
    check_versioned(
        std::mem::size_of::<wz_tensor_info>(),
        &|p| st(unsafe { wz_archive_tensor_info(a as *const wz_archive, 3, p as *mut wz_tensor_info) }),
        "wz_archive_tensor_info",
    );
}

// Tensor info ----------------------------------------------------------------------------------

fn name_of(t: &wz_tensor_info) -> Vec<u8> {
    assert!(!t.name.is_null());
    let b = unsafe { std::slice::from_raw_parts(t.name.cast::<u8>(), t.name_len + 1) };
    assert_eq!(b[t.name_len], 0, "name is NUL-terminated");
    b[..t.name_len].to_vec()
}

/// Every tensor's info against the GGUF reader (offsets, sizes, types, dims, names) and the Rust
/// archive (frames, digests). `sizes[i]` is the size of tensor i.
fn check_tensor_infos(file: &[u8], arc: &[u8], sizes: &[u64]) {
    let h = open_memory(arc);
    let g = gguf::read(file).unwrap();
    let r = Archive::from_bytes(arc).unwrap();
    let n = unsafe { wz_archive_tensor_count(h.0) };
    assert_eq!(n, g.tensors.len());
    for (i, gt) in g.tensors.iter().enumerate() {
        let t = tensor_info(&h, i).unwrap();
        assert_eq!(name_of(&t), gt.name_bytes, "tensor {i}");
        assert_eq!(t.container_type, gt.ggml_type, "tensor {i}");
        let tn = unsafe { CStr::from_ptr(t.type_name) }.to_str().unwrap();
        assert_eq!(tn, gguf::type_name(gt.ggml_type), "tensor {i}: type_name");
        let kind = if gt.len.is_some() { kind_of(gt.ggml_type) } else { WZ_KIND_BYTES };
        assert_eq!(t.kind, kind, "tensor {i}: kind");
        assert_eq!(t.n_dims as usize, gt.dims.len(), "tensor {i}");
        assert_eq!(&t.dims[..gt.dims.len()], &gt.dims[..], "tensor {i}");
        assert!(t.dims[gt.dims.len()..].iter().all(|&d| d == 0), "tensor {i}: unused dims not 0");
        assert_eq!(t.original_offset, gt.offset, "tensor {i}");
        assert_eq!(t.original_size, sizes[i], "tensor {i}");
        let e = &r.tensors()[i];
        assert_eq!((t.archive_offset, t.archive_size), (e.arc_offset, e.arc_size), "tensor {i}");
        let bytes = &file[t.original_offset as usize..(t.original_offset + t.original_size) as usize];
        assert_eq!(t.sha256, <[u8; 32]>::from(Sha256::digest(bytes)), "tensor {i}");
        // The name pointer is the archive's own, the same on every call.
        assert_eq!(tensor_info(&h, i).unwrap().name, t.name);
    }
    let mut t = blank_tensor_info();
    for i in [n, n + 1, usize::MAX] {
        assert_eq!(st(unsafe { wz_archive_tensor_info(h.0, i, &mut t) }), st(WZ_STATUS_INVALID_ARGUMENT), "index {i}");
        assert_eq!(t.container_type, 0xDEAD, "written on failure");
    }
}

#[test]
fn tensor_info_matches_the_gguf_reader() {
    for f in fixtures() {
        let g = gguf::read(&f.file).unwrap();
        let sizes: Vec<u64> = g.tensors.iter().map(|t| t.len.unwrap()).collect();
        check_tensor_infos(&f.file, &f.arc, &sizes);
    }
    // Synthetic: an unknown type (size up to the next tensor), zero-size, duplicate and odd names.
    let b = synthetic();
    let sizes: Vec<u64> = b.expected.iter().map(|e| e.size).collect();
    let arc = rust_archive(&b.bytes);
    check_tensor_infos(&b.bytes, &arc, &sizes);
    // Type names spelled out: a known type and an unknown one.
    let h = open_memory(&arc);
    let name =
        |i: usize| unsafe { CStr::from_ptr(tensor_info(&h, i).unwrap().type_name) }.to_str().unwrap().to_string();
    assert_eq!(name(1), "Q4_K");
    assert_eq!(name(2), "unknown");
    assert_eq!(name(0), "F32");
}

fn synthetic() -> Built {
    let mut b = mixed();
    b.tensors.push(Tensor::random("zero", gt::F32, &[0, 4], 1));
    b.tensors.push(Tensor::random("a.f32", gt::F32, &[3], 2)); // a duplicate name
    b.tensors.push(Tensor::raw(&[0xFF, b'!'], gt::BF16, &[2], noise(3, 4))); // not UTF-8
    b.tensors.push(Tensor::random("", gt::F16, &[1], 4)); // empty name
    b.build()
}

// Finding and reading --------------------------------------------------------------------------

#[test]
fn find_tensor() {
    let b = synthetic();
    let arc = rust_archive(&b.bytes);
    let h = open_memory(&arc);
    for (i, e) in b.expected.iter().enumerate() {
        let first = b.expected.iter().position(|x| x.name == e.name).unwrap();
        let name = CString::new(e.name.clone()).unwrap();
        let mut idx = usize::MAX;
        assert_eq!(st(unsafe { wz_archive_find_tensor(h.0, name.as_ptr(), &mut idx) }), OK, "tensor {i}");
        assert_eq!(idx, first, "tensor {i}: the first of its name");
    }
    for missing in [c"nope", c"a.f3", c"a.f32 "] {
        let mut idx = 12345usize;
        assert_eq!(
            st(unsafe { wz_archive_find_tensor(h.0, missing.as_ptr(), &mut idx) }),
            st(WZ_STATUS_NOT_FOUND),
            "{missing:?}"
        );
        assert_eq!(idx, 12345, "index written on failure");
    }
    // The fixtures' names.
    for f in fixtures() {
        let h = open_memory(&f.arc);
        let g = gguf::read(&f.file).unwrap();
        for (i, t) in g.tensors.iter().enumerate() {
            let name = CString::new(t.name_bytes.clone()).unwrap();
            let mut idx = usize::MAX;
            assert_eq!(st(unsafe { wz_archive_find_tensor(h.0, name.as_ptr() as *const c_char, &mut idx) }), OK);
            assert_eq!(idx, i);
        }
    }
}

#[test]
fn read_tensor_into_caller_buffers() {
    for f in fixtures() {
        let h = open_memory(&f.arc);
        let n = unsafe { wz_archive_tensor_count(h.0) };
        let o1 = wz_options { threads: 1, ..default_opts() };
        for i in 0..n {
            let t = tensor_info(&h, i).unwrap();
            let want = &f.file[t.original_offset as usize..(t.original_offset + t.original_size) as usize];
            let mut dst = vec![0u8; want.len()];
            let o = if i % 2 == 0 { null() } else { &o1 as *const wz_options };
            assert_eq!(read(&h, i, &mut dst, o), OK, "{} tensor {i}", f.name);
            assert!(dst == want, "{} tensor {i}", f.name);
        }
        let t0 = tensor_info(&h, 0).unwrap();
        let size = t0.original_size as usize;
        let mut small = vec![0xA5u8; size - 1];
        assert_eq!(read(&h, 0, &mut small, null()), st(WZ_STATUS_DST_TOO_SMALL));
        assert!(small.iter().all(|&b| b == 0xA5), "written on failure");
        let mut big = vec![0xA5u8; size + 1];
        assert_eq!(read(&h, 0, &mut big, null()), st(WZ_STATUS_DST_SIZE_MISMATCH));
        assert!(big.iter().all(|&b| b == 0xA5), "written on failure");
        let mut empty = [];
        for i in [n, usize::MAX] {
            assert_eq!(read(&h, i, &mut empty, null()), st(WZ_STATUS_INVALID_ARGUMENT), "index {i}");
        }
    }
    // A zero-size tensor reads into (NULL, 0).
    let b = synthetic();
    let arc = rust_archive(&b.bytes);
    let h = open_memory(&arc);
    let z = b.expected.iter().position(|e| e.name == b"zero").unwrap();
    assert_eq!(st(unsafe { wz_archive_read_tensor(h.0, z, null_mut(), 0, null()) }), OK);
}

/// Options of any struct_size: `struct_size`, then `fields`, then `tail`.
#[repr(C, align(8))]
struct RawOpts {
    bytes: [u8; 64],
}

fn raw_opts(struct_size: u32, fields: &[u32], tail: &[u8]) -> RawOpts {
    let mut b = [0u8; 64];
    b[..4].copy_from_slice(&struct_size.to_le_bytes());
    for (i, f) in fields.iter().enumerate() {
        b[4 + 4 * i..8 + 4 * i].copy_from_slice(&f.to_le_bytes());
    }
    b[16..16 + tail.len()].copy_from_slice(tail);
    RawOpts { bytes: b }
}

#[test]
fn options_structs_are_versioned() {
    let f = qwen();
    let h = open_memory(&f.arc);
    let t = tensor_info(&h, 0).unwrap();
    let want = &f.file[t.original_offset as usize..(t.original_offset + t.original_size) as usize];
    let ok = OK;
    let bad = st(WZ_STATUS_INVALID_ARGUMENT);
    for (what, o, expect) in [
        ("default", raw_opts(16, &[0, 0, 0], &[]), ok),
        ("threads 1", raw_opts(16, &[1, 0, 0], &[]), ok),
        ("struct_size 8 (threads only)", raw_opts(8, &[2, 0xFFFF, 0xFFFF], &[]), ok),
        ("struct_size 4", raw_opts(4, &[0xFFFF, 0xFFFF, 0xFFFF], &[]), ok),
        ("larger, zero tail", raw_opts(32, &[1, 0, 0], &[0; 16]), ok),
        ("larger, non-zero tail", raw_opts(32, &[1, 0, 0], &[0, 0, 0, 0, 0, 0, 0, 1]), bad),
        ("WZ_FLAG_FAST (ignored when decoding)", raw_opts(16, &[1, 0, WZ_FLAG_FAST], &[]), ok),
        ("unknown flag", raw_opts(16, &[1, 0, 2], &[]), bad),
        ("struct_size 0", raw_opts(0, &[1, 0, 0], &[]), bad),
        ("struct_size 3", raw_opts(3, &[1, 0, 0], &[]), bad),
        ("struct_size 1000", raw_opts(1000, &[1, 0, 0], &[]), bad),
    ] {
        let p = o.bytes.as_ptr() as *const wz_options;
        let mut dst = vec![0xA5u8; want.len()];
        assert_eq!(read(&h, 0, &mut dst, p), expect, "read_tensor, options {what}");
        if expect == OK {
            assert!(dst == want, "{what}");
        } else {
            assert!(dst.iter().all(|&b| b == 0xA5), "{what}: dst written although the options were rejected");
        }
        assert_eq!(st(unsafe { wz_archive_verify(h.0, p) }), expect, "verify, options {what}");
    }
}

// Metadata -------------------------------------------------------------------------------------

#[test]
fn metadata_pointer_is_stable_and_equals_the_prefix() {
    for f in fixtures() {
        let h = open_memory(&f.arc);
        let ds = gguf::read(&f.file).unwrap().data_start as usize;
        let (p, n) = metadata(&h).unwrap();
        assert_eq!(n, ds, "{}", f.name);
        let m = unsafe { std::slice::from_raw_parts(p as *const u8, n) };
        assert!(m == &f.file[..ds], "{}: metadata differs from the file's prefix", f.name);
        // Reads in between do not move it.
        let mut dst = vec![0u8; tensor_info(&h, 1).unwrap().original_size as usize];
        assert_eq!(read(&h, 1, &mut dst, null()), OK);
        for _ in 0..3 {
            assert_eq!(metadata(&h).unwrap(), (p, n), "{}: a second call moved the metadata", f.name);
        }
        assert!(unsafe { std::slice::from_raw_parts(p as *const u8, n) } == &f.file[..ds]);
        assert_eq!(archive_info(h.0).unwrap().metadata_size, n as u64);
    }
    // Damaged metadata frame: CORRUPT_DATA, outputs untouched, every time.
    let f = qwen();
    let r = Archive::from_bytes(&f.arc).unwrap();
    let ex = r.index().extra;
    let mut m = f.arc.clone();
    m[(ex.offset + ex.size / 2) as usize] ^= 0x10;
    let h = open_memory(&m);
    for _ in 0..2 {
        let (mut p, mut n) = (null(), 777usize);
        assert_eq!(st(unsafe { wz_archive_metadata(h.0, &mut p, &mut n) }), st(WZ_STATUS_CORRUPT_DATA));
        assert!(p.is_null() && n == 777, "outputs written on failure");
    }
}

// Restore, verify, compress ---------------------------------------------------------------------

#[test]
fn restore_writes_atomically_and_never_over_the_archive() {
    let dir = TempDir::new("capi-archive-restore");
    let f = qwen();
    let wz = dir.join("m.wz");
    std::fs::write(&wz, &f.arc).unwrap();
    let h = open_path(&wz).unwrap();
    let out = dir.join("m.gguf");
    assert_eq!(st(unsafe { wz_archive_restore(h.0, cpath(&out).as_ptr(), null()) }), OK);
    assert!(std::fs::read(&out).unwrap() == f.file);

    // Over the archive itself, through another spelling, a symlink or a hard link: refused.
    let sym = dir.join("sym");
    std::os::unix::fs::symlink(&wz, &sym).unwrap();
    let hard = dir.join("hard");
    std::fs::hard_link(&wz, &hard).unwrap();
    let dotted = dir.path.join(".").join("m.wz");
    for p in [&wz, &sym, &hard, &dotted] {
        assert_eq!(
            st(unsafe { wz_archive_restore(h.0, cpath(p).as_ptr(), null()) }),
            st(WZ_STATUS_INVALID_ARGUMENT),
            "{}",
            p.display()
        );
    }
    assert!(std::fs::read(&wz).unwrap() == f.arc, "the archive changed");

    // Another existing file is replaced by a rename: a hard link to the old file keeps the old
    // contents (the new file was written elsewhere and moved in, not written in place).
    let other = dir.join("other.gguf");
    std::fs::write(&other, b"old contents").unwrap();
    let old_link = dir.join("old-link");
    std::fs::hard_link(&other, &old_link).unwrap();
    assert_eq!(st(unsafe { wz_archive_restore(h.0, cpath(&other).as_ptr(), null()) }), OK);
    assert!(std::fs::read(&other).unwrap() == f.file);
    assert_eq!(std::fs::read(&old_link).unwrap(), b"old contents");

    // A missing directory: an I/O error and nothing written.
    let nowhere = dir.join("no-such-dir").join("x.gguf");
    assert_eq!(st(unsafe { wz_archive_restore(h.0, cpath(&nowhere).as_ptr(), null()) }), st(WZ_STATUS_IO));
    assert_eq!(last_error(), format!("cannot create {}: No such file or directory", nowhere.display()));
    // Bad options: refused before anything is written.
    let o = wz_options { flags: 2, ..default_opts() };
    let fresh = dir.join("fresh.gguf");
    assert_eq!(st(unsafe { wz_archive_restore(h.0, cpath(&fresh).as_ptr(), &o) }), st(WZ_STATUS_INVALID_ARGUMENT));
    dir.assert_no_temporaries("restore");
    assert_eq!(dir.entries(), vec!["hard", "m.gguf", "m.wz", "old-link", "other.gguf", "sym"]);

    // An archive opened from memory restores anywhere, and a damaged one leaves nothing.
    let hm = open_memory(&f.arc);
    let out2 = dir.join("from-memory.gguf");
    assert_eq!(st(unsafe { wz_archive_restore(hm.0, cpath(&out2).as_ptr(), null()) }), OK);
    assert!(std::fs::read(&out2).unwrap() == f.file);
    let r = Archive::from_bytes(&f.arc).unwrap();
    let t = &r.tensors()[2];
    let mut m = f.arc.clone();
    m[(t.arc_offset + t.arc_size - 3) as usize] ^= 0x40;
    let hd = open_memory(&m);
    let out3 = dir.join("damaged.gguf");
    let s = st(unsafe { wz_archive_restore(hd.0, cpath(&out3).as_ptr(), null()) });
    assert!([st(WZ_STATUS_CORRUPT_DATA), st(WZ_STATUS_CORRUPT_MODEL)].contains(&s), "status {s}");
    assert!(!out3.exists());
    dir.assert_no_temporaries("damaged restore");
}

#[test]
fn verify_statuses() {
    let f = qwen();
    let h = open_memory(&f.arc);
    assert_eq!(st(unsafe { wz_archive_verify(h.0, null()) }), OK);
    let o = wz_options { threads: 1, ..default_opts() };
    assert_eq!(st(unsafe { wz_archive_verify(h.0, &o) }), OK);
    let r = Archive::from_bytes(&f.arc).unwrap();
    // A damaged tensor payload, and a damaged metadata frame.
    let t = &r.tensors()[4];
    let mut m = f.arc.clone();
    m[(t.arc_offset + t.arc_size / 2) as usize] ^= 0x08;
    let hd = open_memory(&m);
    let s = st(unsafe { wz_archive_verify(hd.0, null()) });
    assert!([10, 11, 12].contains(&s), "damaged tensor: status {s}");
    let ex = r.index().extra;
    let mut m = f.arc.clone();
    m[(ex.offset + 1) as usize] ^= 0x08;
    let hd = open_memory(&m);
    assert_eq!(st(unsafe { wz_archive_verify(hd.0, null()) }), st(WZ_STATUS_CORRUPT_DATA));
}

#[test]
fn compress_file_matches_the_rust_api_and_never_writes_over_its_input() {
    let dir = TempDir::new("capi-archive-compress");
    let f = qwen();
    let src = dir.join("m.gguf");
    std::fs::write(&src, &f.file).unwrap();
    let dst = dir.join("m.gguf.wz");
    assert_eq!(st(unsafe { wz_archive_compress_file(cpath(&src).as_ptr(), cpath(&dst).as_ptr(), null()) }), OK);
    assert!(std::fs::read(&dst).unwrap() == f.arc, "C API archive differs from compress_gguf's");
    // Thread count does not change the bytes.
    let o = wz_options { threads: 1, ..default_opts() };
    let dst1 = dir.join("m1.wz");
    assert_eq!(st(unsafe { wz_archive_compress_file(cpath(&src).as_ptr(), cpath(&dst1).as_ptr(), &o) }), OK);
    assert!(std::fs::read(&dst1).unwrap() == f.arc);

    let sym = dir.join("sym");
    std::os::unix::fs::symlink(&src, &sym).unwrap();
    let hard = dir.join("hard");
    std::fs::hard_link(&src, &hard).unwrap();
    for p in [&src, &sym, &hard] {
        let s = st(unsafe { wz_archive_compress_file(cpath(&src).as_ptr(), cpath(p).as_ptr(), null()) });
        assert_eq!(s, st(WZ_STATUS_INVALID_ARGUMENT), "output {}", p.display());
    }
    assert!(std::fs::read(&src).unwrap() == f.file, "the input changed");
    let missing = dir.join("missing.gguf");
    let out = dir.join("out.wz");
    assert_eq!(
        st(unsafe { wz_archive_compress_file(cpath(&missing).as_ptr(), cpath(&out).as_ptr(), null()) }),
        st(WZ_STATUS_IO)
    );
    let bad = wz_options { flags: 6, ..default_opts() };
    assert_eq!(
        st(unsafe { wz_archive_compress_file(cpath(&src).as_ptr(), cpath(&out).as_ptr(), &bad) }),
        st(WZ_STATUS_INVALID_ARGUMENT)
    );
    dir.assert_no_temporaries("compress");
    assert_eq!(dir.entries(), vec!["hard", "m.gguf", "m.gguf.wz", "m1.wz", "sym"]);
}

#[test]
fn compress_file_of_hostile_gguf_gives_specific_statuses() {
    let dir = TempDir::new("capi-archive-hostile");
    let b = mixed().build();
    let align_kv = mixed().kvs.iter().position(|(k, _)| k == b"general.alignment").unwrap();
    let cases: Vec<(&str, Vec<u8>, u32)> = vec![
        ("truncated header", b.bytes[..40].to_vec(), 20),
        ("truncated at the infos", b.bytes[..b.infos_end - 3].to_vec(), 20),
        ("bad magic", b.with_u32(0, u32::from_le_bytes(*b"GGUX")), 21),
        ("version 1", b.with_u32(b.pos_version, 1), 22),
        ("version 4", b.with_u32(b.pos_version, 4), 22),
        ("offset past the end", b.with_u64(b.info_pos[0].offset, 1 << 40), 23),
        ("extent overflows", b.with_u64(b.info_pos[0].dims, 1 << 62), 23),
        ("overlap", b.with_u64(b.info_pos[1].offset, 8), 24),
        ("alignment 0", b.with_u32(b.kv_value_pos[align_kv], 0), 19),
        ("alignment 3", b.with_u32(b.kv_value_pos[align_kv], 3), 19),
        ("cut in the data", b.bytes[..b.expected[1].offset as usize + 100].to_vec(), 20),
        ("tensor count 2^64-1", b.with_u64(b.pos_n_tensors, u64::MAX), 20),
    ];
    for (what, bytes, want) in cases {
        let src = dir.join("bad.gguf");
        std::fs::write(&src, &bytes).unwrap();
        let out = dir.join("bad.gguf.wz");
        let s = st(unsafe { wz_archive_compress_file(cpath(&src).as_ptr(), cpath(&out).as_ptr(), null()) });
        assert_eq!(s, want, "{what}");
        assert_eq!(dir.entries(), vec!["bad.gguf"], "{what}: output or temporary file left behind");
    }
    // The numbers are the statuses' own.
    assert_eq!(st(WZ_STATUS_CONTAINER_TRUNCATED), 20);
    assert_eq!(st(WZ_STATUS_TENSOR_OVERLAP), 24);
    // And an existing output stays as it was.
    let src = dir.join("bad.gguf");
    std::fs::write(&src, b.with_u32(b.pos_version, 9)).unwrap();
    let out = dir.join("keep.wz");
    std::fs::write(&out, b"keep").unwrap();
    let s = st(unsafe { wz_archive_compress_file(cpath(&src).as_ptr(), cpath(&out).as_ptr(), null()) });
    assert_eq!(s, st(WZ_STATUS_CONTAINER_VERSION));
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
}

#[test]
fn open_memory_works_on_a_vec() {
    let b = synthetic();
    let arc = rust_archive(&b.bytes);
    let h = open_memory(&arc);
    assert_eq!(unsafe { wz_archive_tensor_count(h.0) }, b.expected.len());
    for (i, e) in b.expected.iter().enumerate() {
        let mut dst = vec![0u8; e.size as usize];
        assert_eq!(read(&h, i, &mut dst, null()), OK);
        assert!(dst == b.tensor_bytes(i), "tensor {i}");
    }
    let (p, n) = metadata(&h).unwrap();
    assert!(unsafe { std::slice::from_raw_parts(p as *const u8, n) } == b.metadata());
    assert_eq!(st(unsafe { wz_archive_verify(h.0, null()) }), OK);
}

// Threads --------------------------------------------------------------------------------------

#[test]
fn threads_share_one_handle() {
    let dir = TempDir::new("capi-archive-threads");
    let f = &fixtures()[1]; // minilm
    let wz = dir.join("m.wz");
    std::fs::write(&wz, &f.arc).unwrap();
    let h = open_path(&wz).unwrap();
    let n = unsafe { wz_archive_tensor_count(h.0) };
    // (offset, size, name pointer) of each tensor.
    let infos: Vec<(u64, u64, usize)> = (0..n)
        .map(|i| tensor_info(&h, i).unwrap())
        .map(|t| (t.original_offset, t.original_size, t.name as usize))
        .collect();
    let largest = (0..n).max_by_key(|&i| infos[i].1).unwrap();
    let ptrs: Vec<(usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4usize)
            .map(|t| {
                let (h, infos, file) = (&h, &infos, &f.file);
                s.spawn(move || {
                    // The first metadata calls race: every thread must get the same bytes.
                    let (p, m) = metadata(h).unwrap();
                    let o = wz_options { threads: 1 + (t as u32 % 2), ..default_opts() };
                    let mut mine: Vec<usize> = (0..n).filter(|i| i % 4 == t).collect();
                    mine.extend([0, largest, 0]);
                    for i in mine {
                        let (off, size, name) = infos[i];
                        let mut dst = vec![0u8; size as usize];
                        assert_eq!(read(h, i, &mut dst, &o), OK, "thread {t}: tensor {i}");
                        assert!(dst == file[off as usize..(off + size) as usize], "thread {t}: tensor {i} differs");
                        assert_eq!(tensor_info(h, i).unwrap().name as usize, name);
                    }
                    (p as usize, m)
                })
            })
            .collect();
        handles.into_iter().map(|j| j.join().unwrap()).collect()
    });
    assert!(ptrs.windows(2).all(|w| w[0] == w[1]), "threads saw different metadata pointers: {ptrs:?}");
    let m = unsafe { std::slice::from_raw_parts(ptrs[0].0 as *const u8, ptrs[0].1) };
    assert!(m == &f.file[..m.len()]);
    // And the handle still verifies afterwards.
    assert_eq!(st(unsafe { wz_archive_verify(h.0, null()) }), OK);
}

#[test]
fn restore_fd_writes_the_original_to_a_descriptor_and_leaves_it_open() {
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::fd::AsRawFd;
    let dir = TempDir::new("c-archive-restore-fd");
    for f in fixtures() {
        let a = open_memory(&f.arc);
        // A prefix already in the file: the restore starts at the descriptor's position.
        let mut out =
            std::fs::File::options().read(true).write(true).create(true).truncate(true).open(dir.join(f.name)).unwrap();
        out.write_all(b"prefix").unwrap();
        let s = unsafe { wz_archive_restore_fd(a.0, out.as_raw_fd(), null()) };
        assert_eq!(st(s), OK, "{}", f.name);
        // Still open: it can be read back through the same File.
        out.seek(SeekFrom::Start(0)).unwrap();
        let mut back = Vec::new();
        out.read_to_end(&mut back).unwrap();
        assert!(back.len() == f.file.len() + 6 && back[..6] == *b"prefix" && back[6..] == f.file[..], "{}", f.name);
        assert_eq!(st(unsafe { wz_archive_restore_fd(a.0, -1, null()) }), WZ_STATUS_INVALID_ARGUMENT as u32);
        assert_eq!(
            st(unsafe { wz_archive_restore_fd(null(), out.as_raw_fd(), null()) }),
            WZ_STATUS_NULL_POINTER as u32
        );
    }
    // A descriptor open for reading only cannot take the bytes: an IO error, not a crash.
    let a = open_memory(&qwen().arc);
    let ro = std::fs::File::open(data_path(QWEN)).unwrap();
    assert_eq!(st(unsafe { wz_archive_restore_fd(a.0, ro.as_raw_fd(), null()) }), WZ_STATUS_IO as u32);
}

/// `wz_last_error_message` of this thread.
fn last_error() -> String {
    let p = wz_last_error_message();
    assert!(!p.is_null());
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// `wz_archive_pread` gives the original file's bytes at any offset and `wz_archive_read_tensor_range`
/// any run of a tensor's bytes, each equal to the original's; a range inside one chunk decodes
/// that chunk only (`wz_archive_decoded_bytes`). Archives made with 64 KiB chunks, so that ranges
/// start, end and cross chunks, tensors, padding and the metadata.
#[test]
fn pread_and_tensor_ranges_equal_the_original() {
    const CS: u64 = 64 << 10;
    let o = Options { chunk_size: CS as u32, ..Options::default() };
    let mut seed = 0x5eed_7a9e_u64;
    let mut rnd = |n: u64| weightzip::test_rng::lcg(&mut seed) % n.max(1);
    for f in fixtures() {
        let mut c = Cursor::new(Vec::new());
        archive::compress_gguf(&f.file, &mut c, &o).unwrap();
        let arc = c.into_inner();
        let h = open_memory(&arc);
        let size = f.file.len() as u64;
        let pread = |off: u64, n: usize| -> Result<Vec<u8>, u32> {
            let mut v = vec![0xAB; n];
            let s = st(unsafe { wz_archive_pread(h.0, off, v.as_mut_ptr().cast(), n, null()) });
            if s == OK {
                Ok(v)
            } else {
                Err(s)
            }
        };
        assert_eq!(pread(0, size as usize).unwrap(), f.file, "{}: whole file", f.name);
        // Ranges starting at and around every tensor's start and end, and at random places.
        let mut starts = vec![0, size - 1];
        for i in 0..unsafe { wz_archive_tensor_count(h.0) } {
            let t = tensor_info(&h, i).unwrap();
            for b in [t.original_offset, t.original_offset + t.original_size] {
                starts.extend([b.saturating_sub(3), b, (b + 5).min(size - 1)]);
            }
        }
        starts.extend((0..200).map(|_| rnd(size)));
        for &off in &starts {
            let n = match rnd(4) {
                0 => rnd(16) + 1,
                1 => rnd(CS) + 1,
                _ => rnd(4 * CS) + 1,
            }
            .min(size - off) as usize;
            let want = &f.file[off as usize..off as usize + n];
            assert!(pread(off, n).unwrap() == want, "{}: pread({off}, {n})", f.name);
        }
        assert_eq!(pread(size, 0).unwrap(), Vec::<u8>::new());
        assert_eq!(pread(size - 4, 5), Err(st(WZ_STATUS_INVALID_ARGUMENT)), "past the end");
        assert_eq!(pread(u64::MAX, 1), Err(st(WZ_STATUS_INVALID_ARGUMENT)), "offset overflows");

        // Tensor ranges, and what they cost.
        for i in 0..unsafe { wz_archive_tensor_count(h.0) } {
            let t = tensor_info(&h, i).unwrap();
            let (start, len) = (t.original_offset as usize, t.original_size);
            let orig = &f.file[start..start + len as usize];
            // The tensor's chunk size: 64 KiB rounded to whole elements.
            let cs = weightzip::frame::read_info(&arc[t.archive_offset as usize..]).unwrap().chunk_size as u64;
            for _ in 0..6 {
                let off = rnd(len);
                let n = rnd(len - off).min(3 * CS) as usize;
                let mut v = vec![0xCD; n];
                let before = unsafe { wz_archive_decoded_bytes(h.0) };
                let s = st(unsafe { wz_archive_read_tensor_range(h.0, i, off, v.as_mut_ptr().cast(), n, null()) });
                assert_eq!(s, OK);
                assert!(v == orig[off as usize..off as usize + n], "{}: tensor {i} range {off}+{n}", f.name);
                let cost = unsafe { wz_archive_decoded_bytes(h.0) } - before;
                // Exactly the chunks the range touches, the last one possibly short.
                let want = if n == 0 { 0 } else { ((off + n as u64).div_ceil(cs) * cs).min(len) - off / cs * cs };
                assert_eq!(cost, want, "{}: tensor {i} range {off}+{n} decoded {cost} bytes", f.name);
            }
            let mut v = vec![0u8; 2];
            let s = st(unsafe { wz_archive_read_tensor_range(h.0, i, len - 1, v.as_mut_ptr().cast(), 2, null()) });
            assert_eq!(s, st(WZ_STATUS_INVALID_ARGUMENT), "range past the tensor's end");
            assert!(v.iter().all(|&b| b == 0), "dst zero-filled on error");
        }
        let s = st(unsafe { wz_archive_read_tensor_range(h.0, usize::MAX, 0, null_mut(), 0, null()) });
        assert_eq!(s, st(WZ_STATUS_INVALID_ARGUMENT), "no such tensor");
        let s = st(unsafe { wz_archive_pread(h.0, 0, null_mut(), 4, null()) });
        assert_eq!(s, st(WZ_STATUS_NULL_POINTER));
        let s = st(unsafe { wz_archive_pread(null(), 0, null_mut(), 0, null()) });
        assert_eq!(s, st(WZ_STATUS_NULL_POINTER));
        assert_eq!(unsafe { wz_archive_decoded_bytes(null()) }, 0);
    }
}
