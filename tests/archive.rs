//! Whole-GGUF archives through the Rust API: both committed GGUF fixtures and synthetic GGUF files
//! (every edge case real files do not have) compress, restore byte for byte, hold the right index
//! and metadata, read any tensor alone, give the same bytes at every thread count, and obey the
//! rules for files (atomic, never over an input). Readers on several threads share one archive.
//!
//! Synthetic tensors are random bytes: fine for roundtrips, never a claim about ratios.
//!
//! Tests for bugs found while writing them (and since fixed) say so in their comments.

mod common;
#[path = "common/gguf_synth.rs"]
mod gguf_synth;

use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::OnceLock;

use common::{data_path, TempDir};
use gguf_synth::{every_value_type, gt, mixed, noise, vt, Builder, Built, Expected, Fill, Tensor, Value};
use sha2::{Digest, Sha256};
use weightzip::archive::{self, Archive, Container};
use weightzip::frame::{self, MIN_CHUNK_SIZE};
use weightzip::{gguf, Error, IoError, Kind, Options};

const MINILM: &str = "minilm-l6-q4_k_m.gguf";
const QWEN: &str = "qwen25coder15b-q4km-mini.gguf";

fn fixture(name: &str) -> &'static [u8] {
    static F: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    let all = F.get_or_init(|| {
        [MINILM, QWEN].iter().map(|n| (n.to_string(), std::fs::read(data_path(n)).expect("read fixture"))).collect()
    });
    &all.iter().find(|(n, _)| n == name).expect("a committed fixture").1
}

fn opts(threads: u32, chunk_size: u32) -> Options {
    Options { threads, chunk_size, progress: None, fast: false, row_len: 0 }
}

/// An archive of `src` made in memory.
fn compress(src: &[u8], o: &Options) -> Vec<u8> {
    let mut c = Cursor::new(Vec::new());
    let w = archive::compress_gguf(src, &mut c, o).expect("compress_gguf");
    let v = c.into_inner();
    assert_eq!(w.archive_size, v.len() as u64, "Written::archive_size");
    assert_eq!(w.original_size, src.len() as u64, "Written::original_size");
    assert_eq!(&w.index, Archive::from_bytes(&v).unwrap().index(), "Written::index is what the archive holds");
    v
}

/// The kind a ggml type's tensor must be coded as (written out here, not taken from the library).
fn expected_kind(ggml_type: u32, known: bool) -> Kind {
    if !known {
        return Kind::Bytes;
    }
    match ggml_type {
        0 => Kind::F32,
        1 => Kind::F16,
        2 => Kind::Q4_0,
        3 => Kind::Q4_1,
        6 => Kind::Q5_0,
        7 => Kind::Q5_1,
        8 => Kind::Q8_0,
        10 => Kind::Q2K,
        11 => Kind::Q3K,
        12 => Kind::Q4K,
        13 => Kind::Q5K,
        14 => Kind::Q6K,
        20 => Kind::IQ4NL,
        23 => Kind::IQ4XS,
        30 => Kind::Bf16,
        _ => Kind::Bytes,
    }
}

/// What an archive of a fixture must hold, from the GGUF reader (the fixtures hold only types
/// whose size it knows).
fn fixture_expected(file: &[u8]) -> (u64, Vec<Expected>) {
    let g = gguf::read(file).expect("fixture parses");
    let e = g
        .tensors
        .iter()
        .map(|t| Expected {
            name: t.name_bytes.clone(),
            ggml_type: t.ggml_type,
            dims: t.dims.clone(),
            offset: t.offset,
            size: t.len.expect("fixture tensors have known types"),
            known: true,
        })
        .collect();
    (g.data_start, e)
}

/// The extra frame's bytes, computed here: the metadata, every gap between tensors, the tail.
fn extra_raw(file: &[u8], data_start: u64, expected: &[Expected]) -> Vec<u8> {
    let mut ext: Vec<(u64, u64)> = expected.iter().map(|e| (e.offset, e.size)).collect();
    ext.sort();
    let mut v = file[..data_start as usize].to_vec();
    let mut at = data_start;
    for (off, size) in ext {
        v.extend_from_slice(&file[at as usize..off as usize]);
        at = off + size;
    }
    v.extend_from_slice(&file[at as usize..]);
    v
}

fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// Checks everything an archive `arc` of `file` must hold against `expected` (in the file's
/// tensor-info order).
#[track_caller]
fn check_archive(arc: &[u8], a: &Archive, file: &[u8], data_start: u64, expected: &[Expected], label: &str) {
    assert_eq!(a.container(), Container::Gguf, "{label}");
    assert_eq!(a.original_size(), file.len() as u64, "{label}: original_size");
    assert_eq!(a.archive_size(), arc.len() as u64, "{label}: archive_size");
    assert!(archive::is_archive(arc), "{label}");
    assert!(a.metadata().unwrap() == &file[..data_start as usize], "{label}: metadata differs from the file's prefix");
    let ex = &a.index().extra;
    assert_eq!(ex.metadata_size, data_start, "{label}: metadata_size");
    let raw = extra_raw(file, data_start, expected);
    assert_eq!(ex.raw_size, raw.len() as u64, "{label}: extra raw_size");
    assert_eq!(ex.sha256, sha(&raw), "{label}: extra sha256");

    let ts = a.tensors();
    assert_eq!(ts.len(), expected.len(), "{label}: tensor count");
    let o1 = opts(1, 0);
    for (i, (t, e)) in ts.iter().zip(expected).enumerate() {
        let l = format!("{label}: tensor {i} {:?}", String::from_utf8_lossy(&e.name));
        assert_eq!(t.name, e.name, "{l}: name");
        let mut c = e.name.clone();
        c.push(0);
        assert_eq!(t.name_c, c, "{l}: name_c");
        assert_eq!(t.container_type, e.ggml_type, "{l}: type");
        assert_eq!(t.dims, e.dims, "{l}: dims");
        assert_eq!(t.orig_offset, e.offset, "{l}: offset");
        assert_eq!(t.orig_size, e.size, "{l}: size");
        assert_eq!(t.kind, expected_kind(e.ggml_type, e.known), "{l}: kind");
        let want = &file[e.offset as usize..(e.offset + e.size) as usize];
        assert_eq!(t.sha256, sha(want), "{l}: sha256");
        // Its frame lies in the archive and says what the index says.
        let f = &arc[t.arc_offset as usize..(t.arc_offset + t.arc_size) as usize];
        let info = frame::read_info(f).unwrap();
        assert_eq!((info.kind, info.original_size, info.frame_size), (t.kind, t.orig_size, t.arc_size), "{l}: frame");
        // Read alone, two ways.
        assert!(a.tensor_vec(i, &o1).unwrap() == want, "{l}: tensor_vec differs");
        let mut dst = vec![0xA5u8; want.len()];
        a.read_tensor(i, &mut dst, &opts(2, 0)).unwrap();
        assert!(dst == want, "{l}: read_tensor differs");
        if !want.is_empty() {
            let mut small = vec![0u8; want.len() - 1];
            assert_eq!(a.read_tensor(i, &mut small, &o1), Err(Error::DstTooSmall), "{l}");
        }
        let mut big = vec![0u8; want.len() + 1];
        assert_eq!(a.read_tensor(i, &mut big, &o1), Err(Error::DstSizeMismatch), "{l}");
        // find gives the first tensor of that name.
        let first = expected.iter().position(|x| x.name == e.name).unwrap();
        assert_eq!(a.find(&e.name), Some(first), "{l}: find");
    }
    assert_eq!(a.tensor_vec(ts.len(), &o1), Err(Error::InvalidArgument), "{label}: index past the end");
    assert_eq!(a.read_tensor(ts.len(), &mut [], &o1), Err(Error::InvalidArgument), "{label}");
    assert_eq!(a.find(b"no such tensor \x01"), None, "{label}");

    // Frames and the extra frame lie apart, after the header, before the index.
    let mut spans: Vec<(u64, u64)> = ts.iter().map(|t| (t.arc_offset, t.arc_size)).collect();
    spans.push((ex.offset, ex.size));
    spans.sort();
    let mut at = archive::format::HEADER_LEN as u64;
    for (off, size) in spans {
        assert!(off >= at, "{label}: frames overlap");
        at = off + size;
    }
    assert!(at <= a.header().index_offset, "{label}");

    let mut out = Vec::new();
    a.restore_to(&mut out, &opts(2, 0)).unwrap();
    assert!(out == file, "{label}: restore_to differs from the original");
    assert_eq!(a.verify(&o1), Ok(()), "{label}: verify");
}

// Fixtures -------------------------------------------------------------------------------------

#[test]
fn fixtures_roundtrip_in_memory_and_through_files() {
    let dir = TempDir::new("archive-fixtures");
    for name in [MINILM, QWEN] {
        let file = fixture(name);
        let (data_start, expected) = fixture_expected(file);
        assert!(expected.len() >= 15, "{name}: {} tensors", expected.len());
        let arc = compress(file, &Options::default());
        assert!(arc.len() < file.len(), "{name}: the archive is smaller than the file");
        let a = Archive::from_bytes(&arc).unwrap();
        check_archive(&arc, &a, file, data_start, &expected, name);

        // compress_gguf_file writes the same bytes; open_path and restore_file give the file back.
        let src = data_path(name);
        let wz = dir.join(&format!("{name}.wz"));
        let w = archive::compress_gguf_file(&src, &wz, &Options::default()).unwrap();
        assert_eq!(w.archive_size, arc.len() as u64);
        assert!(std::fs::read(&wz).unwrap() == arc, "{name}: compress_gguf_file differs from compress_gguf");
        let a = Archive::open_path(&wz).unwrap();
        check_archive(&arc, &a, file, data_start, &expected, &format!("{name} (mapped)"));
        let back = dir.join(&format!("{name}.back"));
        a.restore_file(&back, &Options::default()).unwrap();
        assert!(std::fs::read(&back).unwrap() == file, "{name}: restore_file differs");
    }
    // Nothing else in the directory: no temporary files left.
    let mut want: Vec<String> = [MINILM, QWEN].iter().flat_map(|n| [format!("{n}.back"), format!("{n}.wz")]).collect();
    want.sort();
    assert_eq!(dir.entries(), want);
}

#[test]
fn fixtures_kinds_follow_ggml_types() {
    // The fixtures exercise several codecs, not only the bytes fallback.
    let a_bytes = compress(fixture(QWEN), &Options::default());
    let a = Archive::from_bytes(&a_bytes).unwrap();
    let kinds: std::collections::BTreeSet<&str> = a.tensors().iter().map(|t| t.kind.name()).collect();
    for k in ["q4_k", "q6_k", "f32"] {
        assert!(kinds.contains(k), "qwen archive has no {k} tensor: {kinds:?}");
    }
}

#[test]
fn fixtures_output_is_deterministic_across_threads_and_runs() {
    // Every chunk size on the small fixture; the default on the large one (time).
    let cases = [
        (QWEN, 0, &[2, 0, 1][..]),
        (QWEN, MIN_CHUNK_SIZE, &[2, 0][..]),
        (QWEN, 1 << 20, &[0][..]),
        (MINILM, 0, &[0][..]),
    ];
    for (name, chunk, threads) in cases {
        let file = fixture(name);
        let reference = compress(file, &opts(1, chunk));
        for &threads in threads {
            let again = compress(file, &opts(threads, chunk));
            assert!(again == reference, "{name}: chunk {chunk}, threads {threads} differs from threads 1");
        }
        let a = Archive::from_bytes(&reference).unwrap();
        let mut out = Vec::new();
        a.restore_to(&mut out, &opts(0, 0)).unwrap();
        assert!(out == file, "{name}: chunk {chunk}: restore differs");
        // Restoring does not depend on the thread count either.
        let mut out1 = Vec::new();
        a.restore_to(&mut out1, &opts(1, 0)).unwrap();
        assert!(out1 == out, "{name}: chunk {chunk}: restore with 1 thread differs");
    }
}

/// An explicit chunk size is rounded per tensor to whole elements of its kind (no power of two
/// is a multiple of a Q4_K block's 144 bytes), within the frame's limits; the output still does
/// not depend on the thread count. (It failed with INVALID_ARGUMENT before f993cdc.)
#[test]
fn explicit_chunk_sizes_round_to_whole_blocks() {
    let file = fixture(QWEN);
    for chunk in [MIN_CHUNK_SIZE, 100_001, 1 << 20] {
        let arc = compress(file, &opts(1, chunk));
        assert!(compress(file, &opts(0, chunk)) == arc, "chunk {chunk}: depends on the thread count");
        let a = Archive::from_bytes(&arc).unwrap();
        for t in a.tensors() {
            let f = &arc[t.arc_offset as usize..(t.arc_offset + t.arc_size) as usize];
            let cs = frame::read_info(f).unwrap().chunk_size;
            let es = t.kind.element_size() as u32;
            assert_eq!(cs % es, 0, "chunk {chunk}: {} chunk size {cs}", t.kind.name());
            assert!(cs >= MIN_CHUNK_SIZE && (cs <= chunk || cs < MIN_CHUNK_SIZE + es), "chunk {chunk}: {cs}");
            assert!(chunk - cs < es || cs > chunk, "chunk {chunk}: rounded too far ({cs})");
        }
        let mut out = Vec::new();
        a.restore_to(&mut out, &opts(0, 0)).unwrap();
        assert!(out == file, "chunk {chunk}: restore differs");
    }
}

#[test]
fn random_access_reads_tensors_in_any_order() {
    let file = fixture(MINILM);
    let (_, expected) = fixture_expected(file);
    let arc = compress(file, &Options::default());
    let a = Archive::from_bytes(&arc).unwrap();
    let mut order: Vec<usize> = (0..expected.len()).collect();
    common::Lcg::new(5).shuffle(&mut order);
    for i in order {
        let e = &expected[i];
        let got = a.tensor_vec(i, &opts(1, 0)).unwrap();
        assert!(got == file[e.offset as usize..(e.offset + e.size) as usize], "tensor {i}");
    }
}

// Restoring through a writer -------------------------------------------------------------------

/// A writer that fails once `limit` bytes have been written (or at flush).
struct Failing {
    written: usize,
    limit: usize,
    fail_flush: bool,
}

impl Write for Failing {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.written + b.len() > self.limit {
            return Err(std::io::Error::other("disk full"));
        }
        self.written += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.fail_flush {
            return Err(std::io::Error::other("flush failed"));
        }
        Ok(())
    }
}

#[test]
fn restore_to_a_failing_writer_is_an_io_error() {
    let file = fixture(QWEN);
    let arc = compress(file, &Options::default());
    let a = Archive::from_bytes(&arc).unwrap();
    let meta = a.index().extra.metadata_size as usize;
    for limit in [0, 1, meta, meta + 1, file.len() / 2, file.len() - 1] {
        let mut w = Failing { written: 0, limit, fail_flush: false };
        assert_eq!(
            a.restore_to(&mut w, &opts(2, 0)),
            Err(Error::Io(IoError::UNKNOWN)),
            "writer failing after {limit} bytes"
        );
        assert!(w.written <= limit);
    }
    let mut w = Failing { written: 0, limit: usize::MAX, fail_flush: true };
    assert_eq!(a.restore_to(&mut w, &opts(2, 0)), Err(Error::Io(IoError::UNKNOWN)), "flush fails");
    assert_eq!(w.written, file.len());
    // The archive still works afterwards.
    let mut out = Vec::new();
    a.restore_to(&mut out, &opts(2, 0)).unwrap();
    assert!(out == file);
}

// Synthetic GGUF files -------------------------------------------------------------------------

/// Builds, compresses (one and two threads, the default chunk size and another), checks.
#[track_caller]
fn roundtrip(b: &Builder, label: &str) -> Built {
    let built = b.build();
    let g = gguf::read(&built.bytes).unwrap_or_else(|e| panic!("{label}: the GGUF reader rejects it: {e:?}"));
    assert_eq!(g.data_start, built.data_start, "{label}: data_start");
    assert_eq!(g.version, b.version, "{label}");
    assert_eq!(g.alignment, b.alignment, "{label}");
    for chunk in [0, MIN_CHUNK_SIZE] {
        let arc = compress(&built.bytes, &opts(1, chunk));
        assert!(compress(&built.bytes, &opts(2, chunk)) == arc, "{label}: depends on the thread count");
        let a = Archive::from_bytes(&arc).unwrap();
        check_archive(&arc, &a, &built.bytes, built.data_start, &built.expected, &format!("{label}, chunk {chunk}"));
    }
    built
}

#[test]
fn gguf_versions_2_and_3() {
    for version in [2, 3] {
        let mut b = mixed();
        b.version = version;
        roundtrip(&b, &format!("version {version}"));
    }
}

#[test]
fn alignments() {
    for a in [1u64, 8, 32, 64, 4096] {
        let mut b = Builder::new().align(a);
        b.fill = Fill::Garbage(a);
        let b = b
            .tensor(Tensor::random("x", gt::F16, &[3], 1)) // 6 bytes: the next tensor needs padding
            .tensor(Tensor::raw(b"odd", gt::UNKNOWN, &[1], noise(2, 13)))
            .tensor(Tensor::random("y", gt::F32, &[5], 3));
        let built = roundtrip(&b, &format!("alignment {a}"));
        assert_eq!(built.data_start % a, 0);
        for e in &built.expected {
            assert_eq!(e.offset % a, 0, "alignment {a}: {:?}", e.name);
        }
    }
    // No key: the default, 32.
    let mut b =
        Builder::new().tensor(Tensor::random("x", gt::F16, &[3], 1)).tensor(Tensor::random("y", gt::F32, &[5], 2));
    b.fill = Fill::Garbage(1);
    let built = roundtrip(&b, "default alignment");
    assert_eq!(built.expected[1].offset % 32, 0);
    // The key as any unsigned integer type.
    for (t, v) in [("u8", Value::U8(16)), ("u16", Value::U16(16)), ("u64", Value::U64(16))] {
        let mut b = Builder::new().kv("general.alignment", v);
        b.alignment = 16;
        b.fill = Fill::Garbage(3);
        let b = b.tensor(Tensor::random("x", gt::F16, &[3], 1)).tensor(Tensor::random("y", gt::F32, &[5], 2));
        roundtrip(&b, &format!("alignment as {t}"));
    }
}

#[test]
fn every_key_value_type() {
    let mut b = Builder::new().tensor(Tensor::random("w", gt::F32, &[8], 1));
    b.kvs.extend(every_value_type());
    let built = roundtrip(&b, "every value type");
    assert!(built.metadata().len() > 300);
}

/// The archive writes large frames a window of chunks at a time, its chunk table last; each
/// frame is still the bytes `frame::compress` gives for the tensor (frames of many windows, of
/// one, and small ones).
#[test]
fn archive_frames_are_the_frames_compress_makes() {
    for (file, chunk) in [(QWEN, MIN_CHUNK_SIZE), (QWEN, 0), (MINILM, MIN_CHUNK_SIZE)] {
        let src = fixture(file);
        let arc = compress(src, &opts(2, chunk));
        let a = Archive::from_bytes(&arc).unwrap();
        let mut windows = 0;
        for t in a.tensors() {
            let data = &src[t.orig_offset as usize..(t.orig_offset + t.orig_size) as usize];
            // The archive rounds a chunk size to whole elements, at least the minimum.
            let es = t.kind.element_size() as u32;
            let cs = if chunk == 0 { 0 } else { (chunk / es * es).max(MIN_CHUNK_SIZE.div_ceil(es) * es) };
            let o = Options { threads: 2, chunk_size: cs, row_len: t.dims[0], ..Default::default() };
            let f = frame::compress(t.kind, data, &o).unwrap();
            let name = String::from_utf8_lossy(&t.name);
            assert!(arc[t.arc_offset as usize..(t.arc_offset + t.arc_size) as usize] == f[..], "{file}: {name}");
            windows += (frame::read_info(&f).unwrap().chunk_count > 16) as usize;
        }
        assert!(chunk == 0 || windows > 0, "{file}: no frame of several windows");
    }
}

/// A tokenizer's worth of key/values (over 64 KiB of string arrays, empty strings, strings of
/// every length class of the LEB128 lengths, numeric arrays of every element size, every other
/// value type, an empty array) takes the GGUF split with numeric columns (extra method 2) in
/// both GGUF versions and restores exactly.
#[test]
fn tokenizer_metadata_takes_the_split() {
    for version in [2, 3] {
        let mut b = mixed();
        b.version = version;
        let tokens: Vec<Value> = (0..12_000u32)
            .map(|i| Value::Str(format!("tok{}{}", i, "x".repeat((i % 7) as usize)).into_bytes()))
            .collect();
        let merges: Vec<Value> =
            (0..3_000u32).map(|i| Value::Str(format!("tok{} x{}", i, i * 7).into_bytes())).collect();
        let lengths: Vec<Value> = [0usize, 1, 127, 128, 300, 16_383, 16_384]
            .iter()
            .map(|&n| Value::Str((0..n).map(|k| (k * 31 % 251) as u8).collect()))
            .collect();
        b = b
            .kv("tokenizer.ggml.tokens", Value::Array(vt::STRING, tokens))
            .kv(
                "tokenizer.ggml.token_type",
                Value::Array(vt::I32, (0..12_000).map(|i| Value::I32(1 + (i % 3))).collect()),
            )
            .kv("tokenizer.ggml.merges", Value::Array(vt::STRING, merges))
            .kv("lengths", Value::Array(vt::STRING, lengths))
            .kv("tokenizer.ggml.scores", Value::Array(vt::F32, (0..12_000).map(|i| Value::F32(-(i as f32))).collect()))
            .kv("bytes", Value::Array(vt::U8, (0..999u32).map(|i| Value::U8((i * 7) as u8)).collect()))
            .kv("shorts", Value::Array(vt::I16, (0..999i32).map(|i| Value::I16((i * 301) as i16)).collect()))
            .kv("longs", Value::Array(vt::U64, (0..999u64).map(|i| Value::U64(i.wrapping_mul(u64::MAX / 7))).collect()))
            .kv("empty", Value::Array(vt::STRING, Vec::new()));
        b.kvs.extend(every_value_type());
        let built = roundtrip(&b, &format!("tokenizer, version {version}"));
        assert!(built.metadata().len() > 64 << 10);
        let arc = compress(&built.bytes, &opts(1, 0));
        let a = Archive::from_bytes(&arc).unwrap();
        assert_eq!(a.index().extra.method, 2, "version {version}: the split with columns");
        assert_eq!(a.metadata().unwrap(), built.metadata());
    }
}

#[test]
fn no_tensors() {
    let mut b = Builder::new();
    b.kvs.extend(every_value_type());
    let built = roundtrip(&b, "no tensors, padded");
    assert_eq!(built.bytes.len() as u64, built.data_start);
    // With garbage padding and trailing bytes after the (empty) data section.
    let mut b = Builder::new().align(64);
    b.fill = Fill::Garbage(4);
    b.tail = noise(9, 100);
    roundtrip(&b, "no tensors, garbage padding and a tail");
}

/// A GGUF with no tensors may end right after its key/values, without padding: llama.cpp's
/// vocab-only files (convert_hf_to_gguf `write_vocab`) do, and ggml reads them. The metadata is
/// then the whole file. (Rejected as ContainerTruncated before f993cdc.)
#[test]
fn gguf_without_tensors_or_final_padding() {
    let mut b = Builder::new();
    b.kvs.extend(every_value_type());
    b.pad_infos = false;
    let built = b.build();
    assert_ne!(built.bytes.len() % 32, 0, "the test needs an unpadded end");
    let mut c = Cursor::new(Vec::new());
    let r = archive::compress_gguf(&built.bytes, &mut c, &Options::default());
    assert!(r.is_ok(), "vocab-only GGUF (no tensors, no final padding) rejected: {:?}", r.err());
    let arc = c.into_inner();
    let a = Archive::from_bytes(&arc).unwrap();
    let mut out = Vec::new();
    a.restore_to(&mut out, &Options::default()).unwrap();
    assert!(out == built.bytes);
    assert_eq!(a.tensors().len(), 0);
    assert!(a.metadata().unwrap() == built.bytes, "the metadata is the whole file");
    // And with a few stray bytes after the key/values, still short of the padding: a string
    // value sized so that the key/values end 5 bytes past a multiple of 32.
    let b2 = (0..32)
        .map(|n| {
            let mut b = Builder::new().kv("pad", Value::Str(vec![b'x'; n]));
            b.pad_infos = false;
            b.build().bytes
        })
        .find(|f| f.len() % 32 == 5)
        .unwrap();
    let mut b2 = b2;
    b2.extend_from_slice(&[7, 7, 7]);
    assert_eq!(b2.len() % 32, 8);
    let arc = compress(&b2, &Options::default());
    let a = Archive::from_bytes(&arc).unwrap();
    let mut out = Vec::new();
    a.restore_to(&mut out, &Options::default()).unwrap();
    assert!(out == b2);
}

#[test]
fn unknown_types_extend_to_the_next_tensor() {
    let mut b = Builder::new().align(32);
    b.fill = Fill::Garbage(11);
    b.tail = b"tail after the last tensor".to_vec();
    // Unknown first, in the middle (twice in a row), and last (it then takes the padding and tail).
    let b = b
        .tensor(Tensor::raw(b"u0", gt::UNKNOWN, &[7], noise(1, 7)))
        .tensor(Tensor::random("f", gt::F32, &[9], 2))
        .tensor(Tensor::raw(b"u1", 1000, &[3, 3], noise(3, 40)))
        .tensor(Tensor::raw(b"u2", u32::MAX, &[], noise(4, 1)))
        .tensor(Tensor::raw(b"u-empty", 77, &[0], Vec::new()))
        .tensor(Tensor::random("q", gt::Q8_0, &[32], 5))
        .tensor(Tensor::raw(b"u-last", gt::UNKNOWN, &[2], noise(6, 50)));
    let built = roundtrip(&b, "unknown types");
    let e = &built.expected;
    assert_eq!(e[0].size, 32, "u0 takes its 7 bytes and the padding up to the next tensor");
    assert_eq!(e.last().unwrap().offset + e.last().unwrap().size, built.bytes.len() as u64, "the last extends to EOF");
    assert!(e.iter().filter(|x| !x.known).all(|x| x.size % 32 == 0 || x.name == b"u-last"));
}

#[test]
fn types_without_a_codec_are_bytes() {
    // Q2_K and I32 have sizes the reader knows but no codec: coded as bytes, sizes exact.
    let b = Builder::new()
        .tensor(Tensor::random("q2k", gt::Q2_K, &[256, 2], 1))
        .tensor(Tensor::random("i32", gt::I32, &[10], 2))
        .tensor(Tensor::random("q4_0", gt::Q4_0, &[64], 3));
    let built = roundtrip(&b, "no codec");
    assert_eq!(built.expected[0].size, 168);
    assert_eq!(built.expected[1].size, 40);
}

#[test]
fn garbage_in_padding_gaps_and_trailing_bytes() {
    for (fill, tail) in [(Fill::Garbage(1), noise(5, 3)), (Fill::Garbage(2), Vec::new()), (Fill::Zero, noise(6, 4097))]
    {
        let mut b = mixed();
        b.fill = fill;
        b.tail = tail.clone();
        // Gaps wider than the alignment asks for, too.
        b.extra_gap = vec![0, 100, 0, 1, 4096];
        let built = roundtrip(&b, &format!("fill {fill:?}, tail {}", tail.len()));
        if let Fill::Garbage(_) = fill {
            let gap = &built.bytes[built.infos_end..built.data_start as usize];
            assert!(gap.is_empty() || gap.iter().all(|&x| x != 0), "the padding really is garbage");
        }
    }
}

#[test]
fn zero_size_tensors() {
    let z = |name: &str, t: u32, dims: &[u64]| Tensor::random(name, t, dims, 0);
    let b = Builder::new()
        .tensor(z("z-first", gt::F32, &[0]))
        .tensor(Tensor::random("a", gt::F16, &[10], 1))
        .tensor(z("z-mid", gt::Q4_K, &[256, 0]))
        .tensor(z("z-mid2", gt::BF16, &[0, 7, 3]))
        .tensor(Tensor::random("b", gt::Q4_K, &[256], 2))
        .tensor(z("z-last", gt::F32, &[5, 0]));
    let built = roundtrip(&b, "zero-size tensors");
    assert_eq!(built.expected.iter().filter(|e| e.size == 0).count(), 4);
    // Only zero-size tensors, with a tail.
    let mut b = Builder::new().tensor(z("z1", gt::F32, &[0])).tensor(z("z2", gt::Q8_0, &[0, 32]));
    b.tail = b"tail".to_vec();
    roundtrip(&b, "only zero-size tensors");
}

#[test]
fn tensor_infos_in_another_order_than_the_data() {
    let base = mixed();
    let n = base.tensors.len();
    let mut shuffled: Vec<usize> = (0..n).collect();
    common::Lcg::new(3).shuffle(&mut shuffled);
    for (what, order) in [("reversed", (0..n).rev().collect::<Vec<_>>()), ("shuffled", shuffled)] {
        let mut b = mixed();
        b.info_order = Some(order.clone());
        let built = roundtrip(&b, what);
        // The archive keeps the info order.
        for (j, &i) in order.iter().enumerate() {
            assert_eq!(built.expected[j].name, b.tensors[i].name, "{what}");
        }
    }
}

#[test]
fn duplicate_names() {
    let b = Builder::new()
        .tensor(Tensor::random("same", gt::F32, &[4], 1))
        .tensor(Tensor::random("other", gt::F32, &[4], 2))
        .tensor(Tensor::random("same", gt::F16, &[6], 3))
        .tensor(Tensor::random("same", gt::F32, &[2], 4));
    let built = roundtrip(&b, "duplicate names");
    let arc = compress(&built.bytes, &Options::default());
    let a = Archive::from_bytes(&arc).unwrap();
    assert_eq!(a.find(b"same"), Some(0));
    // Every one of them reads as itself.
    for i in [0, 2, 3] {
        assert!(a.tensor_vec(i, &Options::default()).unwrap() == built.tensor_bytes(i));
    }
}

#[test]
fn typed_tensors_of_every_codec() {
    // Several chunks each, at the default chunk size and at the smallest.
    let b = Builder::new()
        .align(64)
        .tensor(Tensor::random("f32", gt::F32, &[500_000], 1))
        .tensor(Tensor::random("f16", gt::F16, &[700_001], 2))
        .tensor(Tensor::random("bf16", gt::BF16, &[1_000_000], 3))
        .tensor(Tensor::random("q8_0", gt::Q8_0, &[32, 30_000], 4))
        .tensor(Tensor::random("q4_k", gt::Q4_K, &[256, 7000], 5))
        .tensor(Tensor::random("q6_k", gt::Q6_K, &[256, 4000], 6))
        .tensor(Tensor::random("q4_0", gt::Q4_0, &[32, 5], 7));
    let built = roundtrip(&b, "typed tensors");
    assert!(built.expected[2].size > 4 * 256 * 1024);
}

#[test]
fn names_and_dims_at_the_edges() {
    let b = Builder::new()
        .tensor(Tensor::random("", gt::F32, &[1], 1)) // empty name
        .tensor(Tensor::raw(&[0xFF, 0xFE, b'x', 0x80], gt::F32, &[2], noise(2, 8))) // not UTF-8
        .tensor(Tensor::raw(b"nul\0inside", gt::F32, &[1], noise(3, 4))) // a NUL in the name
        .tensor(Tensor::random(&"long".repeat(1000), gt::F16, &[3], 4))
        .tensor(Tensor::random("scalar", gt::F32, &[], 5)) // no dims: one element
        .tensor(Tensor::random("eight-dims", gt::F32, &[1, 2, 1, 3, 1, 2, 1, 2], 6));
    let built = roundtrip(&b, "names and dims");
    assert_eq!(built.expected[4].size, 4);
    assert_eq!(built.expected[5].dims.len(), 8);
}

/// A tensor name longer than an archive index allows (MAX_NAME, 65536 bytes) is refused at
/// compression, with nothing written; one of exactly MAX_NAME bytes is fine. (Before f993cdc the
/// archive was written and then failed to open with CorruptHeader.)
#[test]
fn over_long_tensor_names_are_refused_at_compression() {
    let max = archive::format::MAX_NAME;
    let b = Builder::new().tensor(Tensor::random(&"n".repeat(max + 1), gt::F32, &[4], 1)).build();
    let mut c = Cursor::new(Vec::new());
    assert_eq!(archive::compress_gguf(&b.bytes, &mut c, &Options::default()).err(), Some(Error::BadContainer));
    assert!(c.get_ref().is_empty(), "bytes written for a refused file");
    let b = Builder::new().tensor(Tensor::random(&"n".repeat(max), gt::F32, &[4], 1));
    roundtrip(&b, "a name of MAX_NAME bytes");
}

#[test]
fn tensors_larger_than_the_restore_window() {
    // Restoring decodes 16 MiB windows into three recycled buffers: small tensors first (small
    // buffers), then one of 40 MB (three windows, buffers grown and recycled), then small ones.
    let mut b = Builder::new();
    for i in 0..4 {
        b = b.tensor(Tensor::random(&format!("small{i}"), gt::F32, &[100 + i], i));
    }
    b = b.tensor(Tensor::random("big", gt::BF16, &[20_000_000], 9));
    b = b.tensor(Tensor::random("after", gt::F32, &[77], 10));
    b = b.tensor(Tensor::raw(b"unknown-after", gt::UNKNOWN, &[1], noise(11, 1000)));
    b.fill = Fill::Garbage(12);
    let built = b.build();
    let arc = compress(&built.bytes, &opts(0, 0));
    let a = Archive::from_bytes(&arc).unwrap();
    let mut out = Vec::new();
    a.restore_to(&mut out, &opts(2, 0)).unwrap();
    assert!(out == built.bytes, "restore of a file with a tensor larger than the window differs");
    let big = a.find(b"big").unwrap();
    assert!(a.tensor_vec(big, &opts(0, 0)).unwrap() == built.tensor_bytes(big));
    assert_eq!(a.verify(&opts(0, 0)), Ok(()));
}

// Files ----------------------------------------------------------------------------------------

#[test]
fn compress_file_never_writes_over_its_input() {
    let dir = TempDir::new("archive-input");
    let src = dir.join("m.gguf");
    std::fs::write(&src, fixture(QWEN)).unwrap();
    let o = Options::default();
    assert_eq!(archive::compress_gguf_file(&src, &src, &o).err(), Some(Error::InvalidArgument), "same path");
    let sym = dir.join("sym.wz");
    std::os::unix::fs::symlink(&src, &sym).unwrap();
    assert_eq!(archive::compress_gguf_file(&src, &sym, &o).err(), Some(Error::InvalidArgument), "symlink to input");
    let hard = dir.join("hard.wz");
    std::fs::hard_link(&src, &hard).unwrap();
    assert_eq!(archive::compress_gguf_file(&src, &hard, &o).err(), Some(Error::InvalidArgument), "hard link");
    let dotted = dir.path.join(".").join("m.gguf");
    assert_eq!(archive::compress_gguf_file(&src, &dotted, &o).err(), Some(Error::InvalidArgument), "another spelling");
    assert!(std::fs::read(&src).unwrap() == fixture(QWEN), "the input changed");
    assert!(std::fs::symlink_metadata(&sym).unwrap().file_type().is_symlink());
    dir.assert_no_temporaries("refused compress");
    assert_eq!(dir.entries(), vec!["hard.wz", "m.gguf", "sym.wz"]);
}

#[test]
fn compress_file_errors_leave_nothing_behind() {
    let dir = TempDir::new("archive-compress-errors");
    let o = Options::default();
    let out = dir.join("out.wz");
    let missing = dir.join("missing.gguf");
    let e = archive::compress_gguf_file(&missing, &out, &o).unwrap_err();
    assert_eq!(e, Error::Io(IoError::UNKNOWN));
    // The error keeps its cause and names the file, the way zstd words it.
    assert_eq!(e.to_string(), format!("cannot open {}: No such file or directory", missing.display()));
    let Error::Io(detail) = &e else { unreachable!() };
    assert_eq!(detail.io_error().and_then(|e| e.raw_os_error()), Some(2)); // ENOENT
    assert_eq!(detail.path(), Some(missing.as_path()));
    let empty = dir.join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(archive::compress_gguf_file(&empty, &out, &o).err(), Some(Error::ContainerTruncated));
    let bad = dir.join("bad.gguf");
    std::fs::write(&bad, &mixed().build().bytes[..100]).unwrap();
    assert_eq!(archive::compress_gguf_file(&bad, &out, &o).err(), Some(Error::ContainerTruncated));
    let good = dir.join("good.gguf");
    std::fs::write(&good, mixed().build().bytes).unwrap();
    let nodir = dir.join("no-such-dir").join("out.wz");
    let e = archive::compress_gguf_file(&good, &nodir, &o).unwrap_err();
    assert_eq!(e.to_string(), format!("cannot create {}: No such file or directory", nodir.display()));
    // A directory in the way.
    let d = dir.join("a-directory");
    std::fs::create_dir(&d).unwrap();
    let e = archive::compress_gguf_file(&good, &d, &o).unwrap_err();
    assert_eq!(e.to_string(), format!("cannot write {}: Is a directory", d.display()));
    dir.assert_no_temporaries("compress errors");
    assert_eq!(dir.entries(), vec!["a-directory", "bad.gguf", "empty.gguf", "good.gguf"]);
}

#[test]
fn compress_file_replaces_an_existing_output() {
    let dir = TempDir::new("archive-replace");
    let src = dir.join("m.gguf");
    let built = mixed().build();
    std::fs::write(&src, &built.bytes).unwrap();
    let out = dir.join("m.gguf.wz");
    std::fs::write(&out, b"old contents").unwrap();
    archive::compress_gguf_file(&src, &out, &Options::default()).unwrap();
    assert!(std::fs::read(&out).unwrap() == compress(&built.bytes, &Options::default()));
    assert_eq!(dir.entries(), vec!["m.gguf", "m.gguf.wz"]);
}

#[test]
fn restore_file_never_writes_over_the_archive() {
    let dir = TempDir::new("archive-restore-self");
    let wz = dir.join("m.wz");
    let arc = compress(fixture(QWEN), &Options::default());
    std::fs::write(&wz, &arc).unwrap();
    let sym = dir.join("sym");
    std::os::unix::fs::symlink(&wz, &sym).unwrap();
    let hard = dir.join("hard");
    std::fs::hard_link(&wz, &hard).unwrap();
    let a = Archive::open_path(&wz).unwrap();
    for p in [&wz, &sym, &hard] {
        assert_eq!(a.restore_file(p, &Options::default()), Err(Error::InvalidArgument), "{}", p.display());
    }
    // Opened through the link, the archive itself is refused too.
    let b = Archive::open_path(&sym).unwrap();
    assert_eq!(b.restore_file(&wz, &Options::default()), Err(Error::InvalidArgument));
    assert!(std::fs::read(&wz).unwrap() == arc, "the archive changed");
    dir.assert_no_temporaries("refused restore");
    // Another existing file is replaced; a missing directory is an I/O error.
    let other = dir.join("other.gguf");
    std::fs::write(&other, b"old").unwrap();
    a.restore_file(&other, &Options::default()).unwrap();
    assert!(std::fs::read(&other).unwrap() == fixture(QWEN));
    let nope = dir.join("nope").join("x");
    let e = a.restore_file(&nope, &Options::default()).unwrap_err();
    assert_eq!(e.to_string(), format!("cannot create {}: No such file or directory", nope.display()));
    assert_eq!(dir.entries(), vec!["hard", "m.wz", "other.gguf", "sym"]);
}

#[test]
fn open_path_errors() {
    let dir = TempDir::new("archive-open");
    let missing = dir.join("missing");
    let e = Archive::open_path(&missing).err().unwrap();
    assert_eq!(e.to_string(), format!("cannot open {}: No such file or directory", missing.display()));
    let empty = dir.join("empty.wz");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(Archive::open_path(&empty).err(), Some(Error::Truncated));
    let gguf = dir.join("x.gguf");
    std::fs::write(&gguf, fixture(QWEN)).unwrap();
    assert_eq!(Archive::open_path(&gguf).err(), Some(Error::BadMagic), "a GGUF is not an archive");
    let e = Archive::open_path(Path::new(&dir.path)).err().unwrap();
    assert_eq!(e, Error::Io(IoError::UNKNOWN), "a directory");
    assert!(e.to_string().contains(&dir.path.display().to_string()), "{e}");
    // A single frame is not an archive.
    let f = weightzip::compress(Kind::Bytes, b"hello", &Options::default()).unwrap();
    assert!(!archive::is_archive(&f));
    assert_eq!(Archive::from_bytes(&f).err(), Some(Error::BadMagic));
}

// Threads --------------------------------------------------------------------------------------

#[test]
fn threads_share_one_archive() {
    let dir = TempDir::new("archive-threads");
    let file = fixture(MINILM);
    let (_, expected) = fixture_expected(file);
    let wz = dir.join("m.wz");
    archive::compress_gguf_file(&data_path(MINILM), &wz, &Options::default()).unwrap();
    // Mapped, so reads also drop the pages they decoded while neighbours read theirs.
    let a = Archive::open_path(&wz).unwrap();
    let n = expected.len();
    let largest = (0..n).max_by_key(|&i| expected[i].size).unwrap();
    std::thread::scope(|s| {
        for t in 0..4usize {
            let (a, expected) = (&a, &expected);
            s.spawn(move || {
                for round in 0..2 {
                    // Each thread its own share, plus the same two tensors as everyone else.
                    let mut mine: Vec<usize> = (0..n).filter(|i| i % 4 == t).collect();
                    mine.extend([0, largest]);
                    if round == 1 {
                        mine.reverse();
                    }
                    for i in mine {
                        let e = &expected[i];
                        let got = a.tensor_vec(i, &opts(1 + (t as u32 % 2), 0)).unwrap();
                        assert!(got == file[e.offset as usize..(e.offset + e.size) as usize], "thread {t}: tensor {i}");
                    }
                }
            });
        }
        // And a fifth restoring the whole file meanwhile.
        s.spawn(|| {
            let mut out = Vec::new();
            a.restore_to(&mut out, &opts(1, 0)).unwrap();
            assert!(out == file, "restore alongside readers");
            assert!(a.metadata().unwrap() == &file[..a.index().extra.metadata_size as usize]);
        });
    });
}
