//! The bodies of the fuzz targets, shared by the cargo-fuzz crate (`fuzz/fuzz_targets/*.rs`, nightly,
//! libFuzzer) and by the stable test suite (`tests/fuzz_smoke.rs`, which runs every target over the
//! seed corpus and deterministic mutations of it). Both include this file with `#[path]`.
//!
//! Each target takes arbitrary bytes and must never panic, hang or leak; beyond "no crash" each one
//! asserts what the API promises, so a silent wrong answer fails as loudly as a crash:
//!
//! - `frame_decode`: `decompress`, `decompress_into` and `FrameReader` agree with each other, a
//!   failed decode leaves the caller's buffer untouched (validation error) or zeroed (decode
//!   error), and whatever decodes re-compresses to a frame that decodes to the same bytes.
//! - `entropy`: the same, after forcing a valid magic/version and recomputing the header and
//!   table checksums, so mutations reach the model parsers and the rANS/zstd chunk decoders;
//!   every coded chunk is also decoded with each kernel level the CPU has for its codec and the
//!   results compared with the scalar path.
//! - `gguf`, `safetensors`: the parsers either fail with a container error or return tensors
//!   that lie inside the file, in order, without overlapping.
//! - `archive`: `Archive::from_bytes`, then every tensor, the metadata, `restore_to` and `verify`
//!   (the input as given, and with its header and index checksums recomputed).
//! - `c_api`: the same frames and archives through the C ABI (`wz_frame_get_info`,
//!   `wz_decompress`, `wz_archive_open_memory` and the tensor, metadata and verify calls), whose
//!   statuses and bytes must match the Rust API's.
//! - `roundtrip`: compress → decompress is the identity for every kind and chunk size, and for
//!   inputs that parse as GGUF or safetensors, `compress_any` → `restore_to` gives the input back.
//!
//! Decodes are capped at `DECODE_CAP` bytes of output so that the fuzzer measures parsing and
//! decoding, not the allocator: what a hostile header can make the library allocate is the job of
//! `tests/allocation_limits.rs`.
#![allow(dead_code)]

use std::io::Cursor;

use weightzip::archive::{self, Archive};
use weightzip::frame::{self, FrameReader};
use weightzip::{gguf, safetensors, Error, Kind, Options};
use xxhash_rust::xxh3::xxh3_64;

/// Largest output a target decodes (frames, tensors, restored files).
pub const DECODE_CAP: u64 = 8 << 20;

/// Every target, by the name of its cargo-fuzz binary.
/// A fuzz target's body.
pub type Target = fn(&[u8]);

pub const TARGETS: &[(&str, Target)] = &[
    ("frame_decode", frame_decode),
    ("entropy", entropy),
    ("gguf", gguf_parse),
    ("safetensors", safetensors_parse),
    ("archive", archive_open),
    ("roundtrip", roundtrip),
    ("c_api", c_api),
];

fn one_thread() -> Options {
    Options::with_threads(1)
}

/// Threads for a decode: mostly one (fast, deterministic), sometimes two so that the parallel
/// paths (bf16 chunk pairs on two workers) are fuzzed too.
fn threads_for(data: &[u8]) -> u32 {
    if data.len().is_multiple_of(5) {
        2
    } else {
        1
    }
}

// ---------------------------------------------------------------------------------------------
// Frames

pub fn frame_decode(data: &[u8]) {
    check_frame(data, threads_for(data));
}

/// Recomputes the checksums of a frame (header check; the model + chunk table check when the
/// header's sizes fit in `f`) after forcing the magic and version, so mutated fields reach the
/// consistency checks and the decoders instead of stopping at a checksum.
pub fn fix_frame(f: &mut [u8]) {
    if f.len() < frame::HEADER_LEN {
        return;
    }
    f[..4].copy_from_slice(&frame::MAGIC);
    f[4..6].copy_from_slice(&frame::FORMAT_VERSION.to_le_bytes());
    let hc = xxh3_64(&f[..40]);
    f[40..48].copy_from_slice(&hc.to_le_bytes());
    let chunk_count = u32::from_le_bytes(f[20..24].try_into().unwrap()) as usize;
    let model_size = u32::from_le_bytes(f[24..28].try_into().unwrap()) as usize;
    let table_end = frame::HEADER_LEN + model_size + frame::CHUNK_ENTRY_LEN * chunk_count;
    if table_end + frame::CHECK_LEN <= f.len() {
        let mc = xxh3_64(&f[frame::HEADER_LEN..table_end]);
        f[table_end..table_end + 8].copy_from_slice(&mc.to_le_bytes());
    }
}

pub fn entropy(data: &[u8]) {
    let mut f = data.to_vec();
    fix_frame(&mut f);
    check_frame(&f, threads_for(data));
    kernels_agree(&f);
}

/// Decodes `f` every way the API offers and checks that the ways agree.
fn check_frame(f: &[u8], threads: u32) {
    let opts = Options::with_threads(threads);
    let info = frame::read_info(f);
    let reader = FrameReader::new(f);
    match (&info, &reader) {
        (Ok(i), Ok(r)) => assert_eq!(i, r.info(), "read_info and FrameReader disagree"),
        (Err(_), Ok(_)) => panic!("FrameReader accepted a frame read_info rejects"),
        (Ok(_), Err(e)) => assert!(
            matches!(e, Error::Truncated | Error::TrailingData | Error::CorruptHeader | Error::CorruptModel),
            "FrameReader::new: unexpected {e:?} for a frame whose header reads"
        ),
        (Err(_), Err(_)) => {}
    }
    let Ok(info) = info else {
        return;
    };
    assert_eq!(info.chunk_count as u64, info.original_size.div_ceil(info.chunk_size as u64));
    if info.original_size > DECODE_CAP {
        return;
    }
    let n = info.original_size as usize;
    let whole = frame::decompress(f, &opts);
    // decompress_into: a validation error leaves dst as it was, a decode error zeroes it.
    let mut dst = vec![0xA5u8; n];
    let into = frame::decompress_into(f, &mut dst, &opts);
    match (&whole, &into) {
        (Ok(v), Ok(())) => {
            assert_eq!(v.len(), n);
            assert!(v == &dst, "decompress and decompress_into disagree");
        }
        (Err(a), Err(b)) => {
            assert!(!matches!(a, Error::Panic | Error::OutOfMemory), "{a:?}");
            if threads == 1 {
                assert_eq!(a, b, "decompress and decompress_into fail differently");
            }
            assert!(
                dst.iter().all(|&b| b == 0xA5) || dst.iter().all(|&b| b == 0),
                "a failed decompress_into left partly decoded bytes"
            );
        }
        _ => panic!("decompress {:?} but decompress_into {:?}", whole.as_ref().map(|_| ()), into),
    }
    if reader.is_err() {
        assert!(whole.is_err());
        return;
    }
    if n > 0 {
        let mut short = vec![0u8; n - 1];
        assert_eq!(frame::decompress_into(f, &mut short, &opts), Err(Error::DstTooSmall));
    }
    let mut long = vec![0u8; n + 1];
    assert_eq!(frame::decompress_into(f, &mut long, &opts), Err(Error::DstSizeMismatch));

    // FrameReader, chunk by chunk: each chunk either decodes to the same bytes as the whole
    // frame, or fails and is zeroed; a whole-frame success means every chunk succeeds.
    let r = reader.unwrap();
    let cs = info.chunk_size as u64;
    let mut any_failed = false;
    let mut off = 0u64;
    while off < info.original_size {
        let len = cs.min(info.original_size - off) as usize;
        let mut part = vec![0x5Au8; len];
        match r.decode_range(off, &mut part, &one_thread()) {
            Ok(()) => {
                if let Ok(v) = &whole {
                    assert!(part[..] == v[off as usize..off as usize + len], "decode_range disagrees at {off}");
                }
            }
            Err(e) => {
                assert!(whole.is_err(), "chunk at {off} fails ({e:?}) but the whole frame decodes");
                assert!(part.iter().all(|&b| b == 0), "a failed decode_range left partly decoded bytes");
                any_failed = true;
            }
        }
        off += len as u64;
    }
    if whole.is_err() {
        assert!(any_failed, "every chunk decodes but the whole frame fails");
    }
    if info.original_size > 0 {
        // Ranges not on chunk boundaries are refused.
        let mut one = vec![0u8; 1.min(n)];
        let bad_off = if cs < info.original_size { 1 } else { info.original_size };
        assert_eq!(r.decode_range(bad_off, &mut one, &one_thread()), Err(Error::InvalidArgument));
    }
    // The stream decoder (one frame here: the input passed `FrameReader::new`) agrees: the same
    // bytes, or a failure, and on a failure what it wrote is a prefix of valid chunks.
    let mut streamed = Vec::new();
    match (&whole, frame::decompress_stream(f, &mut streamed, &opts)) {
        (Ok(v), Ok(n)) => assert!(n == v.len() as u64 && streamed == *v, "decompress_stream disagrees"),
        (Err(_), Err(_)) => {}
        (w, s) => panic!("decompress {:?} but decompress_stream {:?}", w.as_ref().map(|_| ()), s),
    }
    if let Ok(v) = whole {
        // Nothing lost: what decodes re-compresses to a frame that decodes to the same bytes.
        let again = frame::compress(info.kind, &v, &one_thread()).expect("re-compress decoded bytes");
        assert!(frame::decompress(&again, &one_thread()).expect("decode re-compressed") == v);
    }
}

/// Decodes every coded chunk of a frame with each kernel level the CPU has for its codec: the
/// vector kernels must agree with the scalar path on hostile payloads too (same result, same
/// bytes, before any checksum).
fn kernels_agree(f: &[u8]) {
    let Ok(r) = FrameReader::new(f) else { return };
    let info = *r.info();
    let levels = r.levels();
    if levels.len() < 2 {
        return;
    }
    for i in 0..info.chunk_count as usize {
        let start = i as u64 * info.chunk_size as u64;
        if (info.original_size - start).min(info.chunk_size as u64) > DECODE_CAP {
            continue;
        }
        let results: Vec<_> =
            levels.iter().filter_map(|&l| r.decode_chunk_at_level(i, l).map(|res| (l, res))).collect();
        let Some((_, first)) = results.first() else { continue };
        for (level, res) in &results[1..] {
            match (first, res) {
                (Ok(a), Ok(b)) => assert!(a == b, "chunk {i}: scalar and {level:?} kernels decode differently"),
                (Err(a), Err(b)) => assert_eq!(a, b, "chunk {i}: scalar and {level:?} kernels fail differently"),
                _ => panic!("chunk {i}: scalar {:?}, {level:?} kernel {:?}", first.as_ref().err(), res.as_ref().err()),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Containers

const CONTAINER_ERRORS: &[Error] = &[
    Error::BadContainer,
    Error::ContainerTruncated,
    Error::ContainerBadMagic,
    Error::ContainerVersion,
    Error::TensorOutOfRange,
    Error::TensorOverlap,
];

pub fn gguf_parse(data: &[u8]) {
    let full = gguf::read(data);
    let head = gguf::read_header_only(data);
    if let Err(e) = &full {
        assert!(CONTAINER_ERRORS.contains(e), "gguf::read: unexpected {e:?}");
    }
    if let Err(e) = &head {
        assert!(CONTAINER_ERRORS.contains(e), "gguf::read_header_only: unexpected {e:?}");
        assert!(full.is_err(), "gguf::read accepts what read_header_only rejects");
    }
    assert_eq!(gguf::read_tensors(data).ok(), full.as_ref().ok().map(|g| g.tensors.clone()));
    let Ok(g) = full else { return };
    assert_eq!(Some(&g), head.as_ref().ok(), "read and read_header_only disagree on a valid file");
    assert!(g.version == 2 || g.version == 3);
    assert!(g.alignment.is_power_of_two());
    assert!(g.data_start <= data.len() as u64);
    assert!(g.data_start % g.alignment == 0 || (g.tensors.is_empty() && g.data_start == data.len() as u64));
    let mut spans: Vec<(u64, u64)> = g.tensors.iter().map(|t| (t.offset, t.len.unwrap_or(0))).collect();
    spans.sort_unstable();
    let mut prev = g.data_start;
    for (off, len) in spans {
        assert!(off >= prev, "tensors overlap or start inside the metadata");
        let end = off.checked_add(len).expect("extent overflows");
        assert!(end <= data.len() as u64, "a tensor ends past the file");
        prev = end;
    }
    for t in &g.tensors {
        assert_eq!(t.name, String::from_utf8_lossy(&t.name_bytes));
        assert!(t.dims.len() <= gguf::MAX_DIMS as usize);
        if let Some(ty) = gguf::ggml_type(t.ggml_type) {
            let elems = t.dims.iter().product::<u64>();
            assert_eq!(t.len, Some(elems / ty.block_weights * ty.block_bytes));
        } else {
            assert_eq!(t.len, None);
        }
    }
}

pub fn safetensors_parse(data: &[u8]) {
    let r = safetensors::read(data);
    assert_eq!(safetensors::read_tensors(data).ok(), r.as_ref().ok().map(|s| s.tensors.clone()));
    let st = match r {
        Ok(st) => st,
        Err(e) => {
            assert!(CONTAINER_ERRORS.contains(&e), "safetensors::read: unexpected {e:?}");
            return;
        }
    };
    let n = u64::from_le_bytes(data[..8].try_into().unwrap());
    assert_eq!(st.data_start, 8 + n);
    assert!(st.data_start <= data.len() as u64);
    let mut prev = st.data_start;
    for t in &st.tensors {
        assert!(t.offset >= prev, "tensors overlap, are unsorted or start inside the header");
        prev = t.offset + t.len;
        assert!(prev <= data.len() as u64, "a tensor ends past the file");
        assert!(t.shape.len() <= 8);
        if let Some(sz) = safetensors::dtype_size(&t.dtype) {
            assert_eq!(Some(t.len), t.shape.iter().product::<u64>().checked_mul(sz));
            assert_ne!(t.dtype_code(), safetensors::UNKNOWN_DTYPE);
        } else {
            assert_eq!(t.dtype_code(), safetensors::UNKNOWN_DTYPE);
        }
        assert_ne!(t.name, "__metadata__");
    }
}

// ---------------------------------------------------------------------------------------------
// Archives

/// Recomputes an archive's header check and index check (when the header's index extent lies in
/// `a`), after forcing the magic and version, so mutated index fields reach `Index::check` and
/// the frames.
pub fn fix_archive(a: &mut [u8]) {
    if a.len() < archive::format::HEADER_LEN {
        return;
    }
    a[..4].copy_from_slice(&archive::format::MAGIC);
    a[4..6].copy_from_slice(&archive::format::FORMAT_VERSION.to_le_bytes());
    let off = u64::from_le_bytes(a[16..24].try_into().unwrap());
    let size = u64::from_le_bytes(a[24..32].try_into().unwrap());
    if let Some(end) = off.checked_add(size).filter(|&e| e <= a.len() as u64) {
        let ic = xxh3_64(&a[off as usize..end as usize]);
        a[32..40].copy_from_slice(&ic.to_le_bytes());
    }
    let hc = xxh3_64(&a[..56]);
    a[56..64].copy_from_slice(&hc.to_le_bytes());
}

pub fn archive_open(data: &[u8]) {
    check_archive(data);
    if data.len() >= archive::format::HEADER_LEN {
        let mut fixed = data.to_vec();
        fix_archive(&mut fixed);
        if fixed != data {
            check_archive(&fixed);
        }
    }
}

fn check_archive(data: &[u8]) {
    let a = match Archive::from_bytes(data) {
        Ok(a) => a,
        Err(e) => {
            assert!(
                matches!(
                    e,
                    Error::BadMagic
                        | Error::Truncated
                        | Error::TrailingData
                        | Error::CorruptHeader
                        | Error::UnsupportedVersion
                ),
                "Archive::from_bytes: unexpected {e:?}"
            );
            return;
        }
    };
    assert_eq!(a.archive_size(), data.len() as u64);
    let opts = one_thread();
    let n = a.tensors().len();
    let mut decoded: Vec<Option<Vec<u8>>> = vec![None; n];
    for (i, t) in a.tensors().iter().enumerate() {
        assert_eq!(t.name_c.len(), t.name.len() + 1);
        assert_eq!(t.name_c.last(), Some(&0));
        let first = a.find(&t.name).expect("find a listed name");
        assert!(first <= i && a.tensors()[first].name == t.name);
        assert!(t.orig_offset + t.orig_size <= a.original_size());
        if t.orig_size > DECODE_CAP {
            continue;
        }
        let v = a.tensor_vec(i, &opts);
        let mut dst = vec![0x77u8; t.orig_size as usize];
        let r = a.read_tensor(i, &mut dst, &opts);
        match (&v, &r) {
            (Ok(v), Ok(())) => {
                assert!(v == &dst, "tensor_vec and read_tensor disagree");
                decoded[i] = Some(dst);
            }
            (Err(_), Err(_)) => {
                assert!(dst.iter().all(|&b| b == 0x77) || dst.iter().all(|&b| b == 0), "partial tensor left in dst");
            }
            _ => panic!("tensor_vec {:?} but read_tensor {:?}", v.as_ref().map(|_| ()), r),
        }
        if t.orig_size > 0 {
            let mut short = vec![0u8; t.orig_size as usize - 1];
            assert_eq!(a.read_tensor(i, &mut short, &opts), Err(Error::DstTooSmall));
        }
    }
    assert_eq!(a.read_tensor(n, &mut [], &opts), Err(Error::InvalidArgument));
    if a.original_size() > DECODE_CAP {
        return;
    }
    let meta = a.metadata().map(|m| m.to_vec());
    if let Ok(m) = &meta {
        assert_eq!(m.len() as u64, a.index().extra.metadata_size);
    }
    let mut out = Vec::new();
    let restored = a.restore_to(&mut out, &opts);
    let verified = a.verify(&opts);
    if verified.is_ok() {
        restored.expect("an archive that verifies must restore");
        assert_eq!(out.len() as u64, a.original_size());
        assert!(out[..a.index().extra.metadata_size as usize] == meta.expect("metadata of a verified archive")[..]);
        for (t, d) in a.tensors().iter().zip(&decoded) {
            let d = d.as_ref().expect("every tensor of a verified archive reads");
            assert!(out[t.orig_offset as usize..(t.orig_offset + t.orig_size) as usize] == d[..]);
        }
    } else if restored.is_ok() {
        // restore_to checks chunk checksums, verify also the SHA-256 digests: a restore may pass
        // where verify fails (digest mismatch), but its output still has the original's size.
        assert_eq!(out.len() as u64, a.original_size());
    }
}

// ---------------------------------------------------------------------------------------------
// Roundtrip

/// Input layout: byte 0 selects the kind (and, with its top bit set, the archive path for inputs
/// that parse as GGUF or safetensors), byte 1 the chunk size and tiling, the rest is the data.
pub fn roundtrip(data: &[u8]) {
    let [sel, p, body @ ..] = data else { return };
    if sel & 0x80 != 0 && (body.starts_with(b"GGUF") || safetensors::looks_like(body)) {
        return container_roundtrip(body);
    }
    let kind = Kind::ALL[*sel as usize % Kind::ALL.len()];
    let es = kind.element_size();
    // Tiling the body crosses chunk boundaries with small inputs: up to three chunks.
    let mut src: Vec<u8> = if p & 0x4 != 0 && !body.is_empty() {
        let want =
            (2 * frame::MIN_CHUNK_SIZE as usize + (p >> 3) as usize * 4099).min(3 * frame::MIN_CHUNK_SIZE as usize);
        body.iter().copied().cycle().take(want).collect()
    } else {
        body.to_vec()
    };
    src.truncate(src.len() / es * es);
    let chunk_size = match p & 3 {
        0 => 0,
        1 => frame::MIN_CHUNK_SIZE.div_ceil(es as u32) * es as u32,
        2 => (frame::MIN_CHUNK_SIZE + 4096).div_ceil(es as u32) * es as u32,
        _ => frame::DEFAULT_CHUNK_SIZE / es as u32 * es as u32,
    };
    // Rows (for the float kinds' row and column contexts) of a multiple of 32 values or not.
    let row_len = if sel & 0x40 != 0 { (p >> 3) as u64 * 32 + (p & 1) as u64 } else { 0 };
    let opts = Options { threads: 1, chunk_size, progress: None, fast: false, row_len };
    let f = frame::compress(kind, &src, &opts).expect("compress a whole number of elements");
    assert!(f.len() <= frame::compress_bound(src.len()).unwrap(), "frame exceeds compress_bound");
    let info = frame::read_info(&f).expect("read_info of a fresh frame");
    assert_eq!((info.kind, info.original_size, info.frame_size), (kind, src.len() as u64, f.len() as u64));
    let back = frame::decompress(&f, &opts).expect("decompress a fresh frame");
    assert!(back == src, "roundtrip changed the data ({kind:?}, {} bytes)", src.len());
    // Determinism: the thread count never changes the bytes.
    let f2 = frame::compress(kind, &src, &Options { threads: 2, ..opts.clone() }).unwrap();
    assert!(f == f2, "output depends on the thread count");
    let r = FrameReader::new(&f).unwrap();
    let cs = info.chunk_size as usize;
    for (k, want) in src.chunks(cs.max(1)).enumerate() {
        let mut got = vec![0u8; want.len()];
        r.decode_range((k * cs) as u64, &mut got, &opts).unwrap();
        assert!(got == want);
    }
    // A stream of one segment is the same frame; a frame stream of two frames back to back
    // decodes to both inputs in order.
    let mut streamed = Vec::new();
    frame::compress_stream(kind, &src[..], &mut streamed, &opts).expect("compress_stream");
    assert!(streamed == f, "compress_stream of one segment differs from compress");
    streamed.extend_from_slice(&f);
    let mut back2 = Vec::new();
    let n = frame::decompress_stream(&streamed[..], &mut back2, &opts).expect("decompress_stream of two frames");
    assert!(n == 2 * src.len() as u64 && back2[..src.len()] == src[..] && back2[src.len()..] == src[..]);
    // An odd length is refused, not padded.
    if es > 1 && !src.is_empty() {
        assert_eq!(frame::compress(kind, &src[1..], &opts), Err(Error::BadLength));
    }
}

fn container_roundtrip(body: &[u8]) {
    let parsed = if body.starts_with(b"GGUF") || body.len() < 8 {
        gguf::read(body).map(|_| ())
    } else {
        safetensors::read(body).map(|_| ())
    };
    let mut out = Cursor::new(Vec::new());
    let w = archive::compress_any(body, &mut out, &one_thread());
    match (&parsed, &w) {
        (Ok(()), Ok(_)) => {}
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "compress_any fails differently from the parser");
            return;
        }
        (Ok(()), Err(e)) => {
            // Names longer than an archive holds are the one thing that parses but cannot be archived.
            assert_eq!(*e, Error::BadContainer, "a file that parses failed to compress: {e:?}");
            return;
        }
        (Err(e), Ok(_)) => panic!("compress_any accepted a file its parser rejects ({e:?})"),
    }
    let w = w.unwrap();
    let bytes = out.into_inner();
    assert_eq!(w.archive_size, bytes.len() as u64);
    assert_eq!(w.original_size, body.len() as u64);
    let a = Archive::from_bytes(&bytes).expect("open a fresh archive");
    a.verify(&one_thread()).expect("verify a fresh archive");
    let mut restored = Vec::new();
    a.restore_to(&mut restored, &one_thread()).expect("restore a fresh archive");
    assert!(restored == body, "restore_to differs from the input");
    assert!(a.metadata().unwrap() == &body[..a.index().extra.metadata_size as usize]);
    for (i, t) in a.tensors().iter().enumerate() {
        let v = a.tensor_vec(i, &one_thread()).unwrap();
        assert!(v[..] == body[t.orig_offset as usize..(t.orig_offset + t.orig_size) as usize]);
    }
}

// ---------------------------------------------------------------------------------------------
// The C ABI

/// The status number the C ABI gives an error (`wz_status` = index in `Error::ALL` + 1).
fn status_of(e: &Error) -> u32 {
    Error::ALL.iter().position(|x| x == e).unwrap() as u32 + 1
}

fn status<T>(r: &weightzip::Result<T>) -> u32 {
    r.as_ref().err().map_or(0, status_of)
}

/// The input as a frame (fixed up, as the `entropy` target does, when its first byte is odd) or
/// as an archive (fixed up likewise), through the C ABI, compared with the Rust API.
pub fn c_api(data: &[u8]) {
    use std::ffi::c_void;
    use weightzip::ffi::archive as fa;
    use weightzip::ffi::{self, wz_frame_info};
    let mut buf = data.to_vec();
    if buf.first().is_some_and(|b| b & 1 == 1) {
        if archive::is_archive(&buf) {
            fix_archive(&mut buf);
        } else {
            fix_frame(&mut buf);
        }
    }
    let src = &buf[..];
    // SAFETY: every pointer is valid for the size passed with it; handles are closed once.
    unsafe {
        let mut o = std::mem::MaybeUninit::<ffi::wz_options>::zeroed().assume_init();
        assert_eq!(ffi::wz_options_init(&mut o) as u32, 0);
        o.threads = 1;
        let mut info = std::mem::MaybeUninit::<wz_frame_info>::zeroed().assume_init();
        info.struct_size = std::mem::size_of::<wz_frame_info>() as u32;
        let s = ffi::wz_frame_get_info(src.as_ptr().cast(), src.len(), &mut info) as u32;
        let rust = frame::read_info(src);
        assert_eq!(s, status(&rust), "wz_frame_get_info and read_info disagree");
        if let Ok(ri) = rust {
            assert_eq!(
                (info.original_size, info.frame_size, info.kind),
                (ri.original_size, ri.frame_size, ri.kind.id())
            );
            if ri.original_size <= DECODE_CAP {
                let mut dst = vec![0u8; ri.original_size as usize];
                let s = ffi::wz_decompress(dst.as_mut_ptr().cast(), dst.len(), src.as_ptr().cast(), src.len(), &o);
                let r = frame::decompress(src, &one_thread());
                assert_eq!(s as u32, status(&r), "wz_decompress and decompress disagree");
                if let Ok(v) = r {
                    assert!(v == dst);
                }
            }
        }
        let mut h: *mut fa::wz_archive = std::ptr::null_mut();
        let s = fa::wz_archive_open_memory(src.as_ptr() as *const c_void, src.len(), &mut h) as u32;
        let rust = Archive::from_bytes(src);
        assert_eq!(s, status(&rust), "wz_archive_open_memory and Archive::from_bytes disagree");
        let Ok(a) = rust else {
            assert!(h.is_null());
            return;
        };
        assert_eq!(fa::wz_archive_tensor_count(h), a.tensors().len());
        for (i, t) in a.tensors().iter().enumerate() {
            let mut ti = std::mem::MaybeUninit::<fa::wz_tensor_info>::zeroed().assume_init();
            ti.struct_size = std::mem::size_of::<fa::wz_tensor_info>() as u32;
            assert_eq!(fa::wz_archive_tensor_info(h, i, &mut ti) as u32, 0);
            assert_eq!(
                std::ffi::CStr::from_ptr(ti.name).to_bytes(),
                &t.name[..t.name.iter().position(|&b| b == 0).unwrap_or(t.name.len())]
            );
            assert_eq!(ti.original_size, t.orig_size);
            let mut idx = usize::MAX;
            if fa::wz_archive_find_tensor(h, ti.name, &mut idx) as u32 == 0 {
                assert!(idx <= i || t.name.contains(&0));
            }
            if t.orig_size <= DECODE_CAP {
                let mut dst = vec![0u8; t.orig_size as usize];
                let s = fa::wz_archive_read_tensor(h, i, dst.as_mut_ptr().cast(), dst.len(), &o);
                let r = a.tensor_vec(i, &one_thread());
                assert_eq!(s as u32, status(&r), "wz_archive_read_tensor and tensor_vec disagree");
                if let Ok(v) = r {
                    assert!(v == dst);
                }
            }
        }
        if a.original_size() <= DECODE_CAP {
            let (mut p, mut n): (*const c_void, usize) = (std::ptr::null(), 0);
            let s = fa::wz_archive_metadata(h, &mut p, &mut n) as u32;
            let r = a.metadata();
            assert_eq!(s, status(&r));
            if let Ok(m) = r {
                assert_eq!(std::slice::from_raw_parts(p as *const u8, n), m);
            }
            let s = fa::wz_archive_verify(h, &o) as u32;
            assert_eq!(s, a.verify(&one_thread()).map_err(|e| e.1).err().as_ref().map_or(0, status_of));
        }
        fa::wz_archive_close(h);
    }
}
