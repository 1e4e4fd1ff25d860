//! Hostile inputs on both sides of an archive, one named case per defect with the exact error:
//! malformed GGUF files given to `gguf::read` and `compress_gguf` (which must write nothing), and
//! damaged archives (truncated, header and index bytes changed, a tensor's frame or the metadata
//! frame damaged, trailing bytes). A damaged tensor fails alone: every other tensor still reads,
//! which also shows that a read touches only its own frame. A mutation fuzzer checks that no
//! damage ever panics or gives wrong bytes with `Ok`.
//!
//! A counting allocator checks that hostile counts and sizes never make the library ask for
//! memory out of proportion to the input; requests above 1 GiB are refused (not served), so a
//! failing case cannot exhaust the machine.
//!

mod common;
#[path = "common/gguf_synth.rs"]
mod gguf_synth;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use common::{data_path, Lcg, TempDir};
use gguf_synth::{gt, mixed, noise, vt, Builder, Built, Tensor, Value};
use weightzip::archive::format::{Header, HEADER_LEN};
use weightzip::archive::{self, Archive, Index};
use weightzip::{gguf, Error, Options};
use xxhash_rust::xxh3::xxh3_64;

// The counting allocator ----------------------------------------------------------------------

struct Counting;

/// Larger requests are recorded and refused.
const REFUSE_ABOVE: usize = 1 << 30;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(n: usize) {
    let _ = LARGEST.try_with(|c| c.set(c.get().max(n)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        if l.size() > REFUSE_ABOVE {
            return std::ptr::null_mut();
        }
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        if l.size() > REFUSE_ABOVE {
            return std::ptr::null_mut();
        }
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note(n);
        if n > REFUSE_ABOVE {
            return std::ptr::null_mut();
        }
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns the largest single allocation it asked for on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|c| c.set(0));
    let r = f();
    (r, LARGEST.with(|c| c.get()))
}

fn one() -> Options {
    Options::with_threads(1)
}

// Hostile GGUF files ---------------------------------------------------------------------------

/// `gguf::read` and `compress_gguf` both give `want`, and `compress_gguf` writes nothing, asking
/// for no more memory than a small multiple of the file.
#[track_caller]
fn expect_gguf_error(file: &[u8], want: Error, case: &str) {
    let bound = 64 * 1024 + 2 * file.len();
    let (r, big) = largest_allocation(|| gguf::read(file));
    assert_eq!(r.as_ref().err(), Some(&want), "{case}: gguf::read");
    assert!(big <= bound, "{case}: gguf::read asked for {big} bytes for a file of {}", file.len());
    let mut out = Cursor::new(Vec::new());
    let (r, big) = largest_allocation(|| archive::compress_gguf(file, &mut out, &one()));
    assert_eq!(r.err(), Some(want), "{case}: compress_gguf");
    assert!(big <= bound, "{case}: compress_gguf asked for {big} bytes for a file of {}", file.len());
    assert!(out.get_ref().is_empty(), "{case}: compress_gguf wrote {} bytes for a bad file", out.get_ref().len());
}

fn base() -> Built {
    mixed().build()
}

/// The position of key/value `key`'s value in `b`.
fn kv_value(builder_keys: &[(Vec<u8>, Value)], b: &Built, key: &str) -> usize {
    let k = builder_keys.iter().position(|(k, _)| k == key.as_bytes()).expect("the key is there");
    b.kv_value_pos[k]
}

#[test]
fn gguf_truncated_anywhere_in_its_header() {
    let b = base();
    for cut in (0..b.data_start as usize).step_by(3).chain([1, 2, 3, 4, 5, b.infos_end, b.data_start as usize - 1]) {
        expect_gguf_error(&b.bytes[..cut], Error::ContainerTruncated, &format!("synthetic cut at {cut}"));
    }
    // The real headers too (every 3rd byte of the fixtures' metadata).
    for name in ["minilm-l6-q4_k_m.gguf", "qwen25coder15b-q4km-mini.gguf"] {
        let file = std::fs::read(data_path(name)).unwrap();
        let ds = gguf::read(&file).unwrap().data_start as usize;
        for cut in (0..ds).step_by(3) {
            assert_eq!(gguf::read(&file[..cut]).err(), Some(Error::ContainerTruncated), "{name} cut at {cut}");
        }
        for cut in (0..ds).step_by(97) {
            expect_gguf_error(&file[..cut], Error::ContainerTruncated, &format!("{name} cut at {cut}"));
        }
    }
}

#[test]
fn gguf_cut_inside_the_data_section() {
    let b = base();
    let len = b.bytes.len();
    // Inside a tensor's bytes, or exactly at its start: the file was cut short.
    for e in &b.expected {
        if !e.known {
            continue;
        }
        for cut in [e.offset, e.offset + 1, e.offset + e.size / 2, e.offset + e.size - 1] {
            expect_gguf_error(
                &b.bytes[..cut as usize],
                Error::ContainerTruncated,
                &format!("cut at {cut} in {:?}", e.name),
            );
        }
    }
    // Inside the padding between tensors the next tensor starts past the end: the reader cannot
    // tell a cut file from a wild offset there and says TensorOutOfRange (as documented: the
    // first tensor that does not fit decides).
    let d = &b.expected[3]; // after the unknown tensor, which the padding gap follows
    let c = &b.expected[2];
    let gap_cut = (c.offset + 45 + 1) as usize; // the unknown tensor holds 45 bytes
    assert!(gap_cut < d.offset as usize);
    expect_gguf_error(&b.bytes[..gap_cut], Error::TensorOutOfRange, "cut in a padding gap");
    // In the padding and tail after the last tensor the file is still whole.
    let last = b.expected.iter().map(|e| e.offset + e.size).filter(|&x| x < len as u64).max().unwrap();
    assert!(gguf::read(&b.bytes[..last as usize]).is_ok());
}

#[test]
fn gguf_bad_magic() {
    let b = base();
    for i in 0..4 {
        for mask in [0x01u8, 0x20, 0xFF] {
            let mut f = b.bytes.clone();
            f[i] ^= mask;
            expect_gguf_error(&f, Error::ContainerBadMagic, &format!("magic byte {i} ^ {mask:#x}"));
        }
    }
    for (what, bytes) in [
        ("lower case", &b"gguf\x03\0\0\0"[..]),
        ("GGML", &b"GGML\x03\0\0\0"[..]),
        ("short and wrong", &b"GX"[..]),
        ("an archive", &[0x89, b'W', b'Z', b'A', 1, 0, 0, 0][..]),
    ] {
        expect_gguf_error(bytes, Error::ContainerBadMagic, what);
    }
    for short in [&b""[..], b"G", b"GG", b"GGU", b"GGUF"] {
        expect_gguf_error(short, Error::ContainerTruncated, &format!("{short:?}"));
    }
}

#[test]
fn gguf_versions() {
    let b = base();
    for v in [0u32, 1, 4, 5, 0x0300_0000, u32::MAX] {
        expect_gguf_error(&b.with_u32(b.pos_version, v), Error::ContainerVersion, &format!("version {v:#x}"));
    }
    for v in [2u32, 3] {
        assert!(gguf::read(&b.with_u32(b.pos_version, v)).is_ok(), "version {v}");
    }
}

#[test]
fn gguf_tensor_offsets_out_of_range() {
    let b = base();
    let len = b.bytes.len() as u64;
    let ds = b.data_start;
    let off0 = b.info_pos[0].offset;
    let cases = [
        ("starts past the end", len, Error::TensorOutOfRange),
        ("starts far past the end", 1 << 40, Error::TensorOutOfRange),
        ("offset + data start overflows", u64::MAX, Error::TensorOutOfRange),
        ("offset + size overflows", u64::MAX - ds - 1, Error::TensorOutOfRange),
        ("starts at the end, ends past it", len - ds, Error::ContainerTruncated),
        ("ends one byte past the end", len - ds - 395, Error::ContainerTruncated),
    ];
    for (what, rel, want) in cases {
        expect_gguf_error(&b.with_u64(off0, rel), want, what);
    }
    // An unknown-type tensor (no size) placed past the end.
    expect_gguf_error(&b.with_u64(b.info_pos[2].offset, len), Error::TensorOutOfRange, "unknown type past the end");
}

#[test]
fn gguf_tensor_extents_that_overflow_or_do_not_fit() {
    let b = base();
    let d = b.info_pos[0].dims; // a.f32, dims [33, 3]
    let with_dims = |d0: u64, d1: u64| {
        let mut f = b.with_u64(d, d0);
        f[d + 8..d + 16].copy_from_slice(&d1.to_le_bytes());
        f
    };
    expect_gguf_error(&with_dims(u64::MAX, 2), Error::BadContainer, "element count overflows");
    expect_gguf_error(&with_dims(1 << 32, 1 << 32), Error::BadContainer, "element count overflows (2^64)");
    expect_gguf_error(&with_dims(1 << 62, 1), Error::TensorOutOfRange, "byte count overflows");
    expect_gguf_error(&with_dims(1 << 40, 1), Error::ContainerTruncated, "4 TiB tensor in a small file");
    // A Q4_K tensor whose weights are not whole blocks.
    expect_gguf_error(&b.with_u64(b.info_pos[1].dims, 100), Error::BadContainer, "partial Q4_K block");
    // Too many dimensions.
    for nd in [9u32, 64, u32::MAX] {
        expect_gguf_error(&b.with_u32(b.info_pos[0].n_dims, nd), Error::BadContainer, &format!("{nd} dims"));
    }
}

#[test]
fn gguf_overlapping_tensors() {
    let b = base();
    let rel = |i: usize| b.expected[i].offset - b.data_start;
    let off = |i: usize| b.info_pos[i].offset;
    expect_gguf_error(&b.with_u64(off(1), rel(0) + 4), Error::TensorOverlap, "second starts inside the first");
    expect_gguf_error(&b.with_u64(off(1), rel(0)), Error::TensorOverlap, "same offset");
    expect_gguf_error(&b.with_u64(off(0), rel(1) + 32), Error::TensorOverlap, "first moved into the second");
    expect_gguf_error(&b.with_u64(off(2), rel(1) + 1), Error::TensorOverlap, "unknown type inside a known tensor");
}

#[test]
fn gguf_bad_alignment() {
    let mb = mixed();
    let b = mb.build();
    let at = kv_value(&mb.kvs, &b, "general.alignment");
    for a in [0u32, 3, 48, 1 << 31, u32::MAX] {
        expect_gguf_error(&b.with_u32(at, a), Error::BadContainer, &format!("alignment {a}"));
    }
    // The key with a type that is not an unsigned integer.
    for (what, v) in
        [("string", Value::str("32")), ("i32", Value::I32(32)), ("f32", Value::F32(32.0)), ("bool", Value::Bool(true))]
    {
        let b = Builder::new().kv("general.alignment", v).tensor(Tensor::random("x", gt::F32, &[8], 1)).build();
        expect_gguf_error(&b.bytes, Error::BadContainer, &format!("alignment as {what}"));
    }
}

#[test]
fn gguf_bad_values() {
    let mb = mixed();
    let b = mb.build();
    for t in [13u32, 99, u32::MAX] {
        expect_gguf_error(&b.with_u32(b.kv_type_pos[3], t), Error::BadContainer, &format!("value type {t}"));
    }
    // An array of arrays.
    let nested = Builder::new().kv("nested", Value::Array(vt::ARRAY, vec![Value::Array(vt::U8, vec![Value::U8(1)])]));
    expect_gguf_error(&nested.build().bytes, Error::BadContainer, "array of arrays");
    // An array whose elements are of an unknown type.
    let k = mb.kvs.iter().position(|(k, _)| k == b"t.array.u32").unwrap();
    expect_gguf_error(&b.with_u32(b.kv_value_pos[k], 77), Error::BadContainer, "array of type 77");
}

#[test]
fn gguf_huge_counts_and_lengths() {
    let mb = mixed();
    let b = mb.build();
    let len = b.bytes.len() as u64;
    let key_len = b.pos_n_kv + 8; // the first key's length
    let arr = mb.kvs.iter().position(|(k, _)| k == b"t.array.u32").unwrap();
    let arr_count = b.kv_value_pos[arr] + 4;
    let name_len = b.info_pos[0].name_len;
    let cases = [
        ("tensor count 2^64-1", b.with_u64(b.pos_n_tensors, u64::MAX)),
        ("tensor count the file cannot hold", b.with_u64(b.pos_n_tensors, len / 24 + 1)),
        ("key/value count 2^64-1", b.with_u64(b.pos_n_kv, u64::MAX)),
        ("key/value count the file cannot hold", b.with_u64(b.pos_n_kv, len / 13 + 1)),
        ("key length 2^64-1", b.with_u64(key_len, u64::MAX)),
        ("key length past the end", b.with_u64(key_len, len)),
        ("array count 2^64-1", b.with_u64(arr_count, u64::MAX)),
        ("array count past the end", b.with_u64(arr_count, len)),
        ("tensor name length 2^64-1", b.with_u64(name_len, u64::MAX)),
        ("tensor name length past the end", b.with_u64(name_len, len)),
    ];
    for (what, f) in cases {
        expect_gguf_error(&f, Error::ContainerTruncated, what);
    }
    // Counts the file could hold but does not: some error, never a large allocation.
    for (what, f) in [
        ("tensor count at the bound", b.with_u64(b.pos_n_tensors, (len - 24) / 24)),
        ("key/value count at the bound", b.with_u64(b.pos_n_kv, (len - 24) / 13)),
        ("one tensor too many", b.with_u64(b.pos_n_tensors, 6)),
        ("one key/value too many", b.with_u64(b.pos_n_kv, mb.kvs.len() as u64 + 1)),
    ] {
        let (r, big) = largest_allocation(|| gguf::read(&f));
        assert!(r.is_err(), "{what}: accepted");
        assert!(big <= 64 * 1024, "{what}: asked for {big} bytes");
        let mut out = Cursor::new(Vec::new());
        assert_eq!(archive::compress_gguf(&f, &mut out, &one()).err(), r.err(), "{what}");
        assert!(out.get_ref().is_empty());
    }
}

/// A corrupt tensor count must not reserve memory in proportion to the file (a `TensorInfo` takes
/// ~100 bytes, so trusting a count bounded only by bytes-left / 24 would ask for ~4x the file in
/// one infallible allocation: an abort, not an error, for a large model). A 4 MB GGUF whose
/// n_tensors is (len - 24) / 24 must fail with no allocation larger than the file.
#[test]
fn tensor_count_does_not_reserve_memory_in_proportion_to_the_file() {
    let b = Builder::new().tensor(Tensor::random("big", gt::F32, &[1 << 20], 1)).build();
    let len = b.bytes.len();
    let f = b.with_u64(b.pos_n_tensors, (len as u64 - 24) / 24);
    let (r, big) = largest_allocation(|| gguf::read(&f));
    assert!(r.is_err());
    assert!(big <= len, "a corrupt tensor count made gguf::read ask for {big} bytes at once (file: {len} bytes)");
}

#[test]
fn gguf_hostile_files_through_compress_gguf_file_leave_nothing() {
    let dir = TempDir::new("archive-hostile-files");
    let b = base();
    let cases: Vec<(&str, Vec<u8>, Error)> = vec![
        ("truncated header", b.bytes[..50].to_vec(), Error::ContainerTruncated),
        ("bad magic", b"GGUX\x03\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec(), Error::ContainerBadMagic),
        ("version 1", b.with_u32(b.pos_version, 1), Error::ContainerVersion),
        ("offset past the end", b.with_u64(b.info_pos[0].offset, 1 << 40), Error::TensorOutOfRange),
        ("overlap", b.with_u64(b.info_pos[1].offset, 0), Error::TensorOverlap),
        ("cut in the data", b.bytes[..b.expected[1].offset as usize + 10].to_vec(), Error::ContainerTruncated),
    ];
    for (what, bytes, want) in cases {
        let src = dir.join("bad.gguf");
        std::fs::write(&src, &bytes).unwrap();
        let out = dir.join("bad.gguf.wz");
        assert_eq!(archive::compress_gguf_file(&src, &out, &one()).err(), Some(want), "{what}");
        assert_eq!(dir.entries(), vec!["bad.gguf"], "{what}: output or temporary file left behind");
    }
}

// Damaged archives -----------------------------------------------------------------------------

struct Fx {
    file: Vec<u8>,
    arc: Vec<u8>,
}

/// The minilm fixture and its archive.
fn fx() -> &'static Fx {
    static F: OnceLock<Fx> = OnceLock::new();
    F.get_or_init(|| {
        let file = std::fs::read(data_path("minilm-l6-q4_k_m.gguf")).unwrap();
        let mut c = Cursor::new(Vec::new());
        archive::compress_gguf(&file, &mut c, &Options::default()).unwrap();
        Fx { file, arc: c.into_inner() }
    })
}

fn tensor_bytes<'a>(file: &'a [u8], a: &Archive, i: usize) -> &'a [u8] {
    let t = &a.tensors()[i];
    &file[t.orig_offset as usize..(t.orig_offset + t.orig_size) as usize]
}

fn open_err(arc: &[u8]) -> Option<Error> {
    Archive::from_bytes(arc).err()
}

#[test]
fn archive_truncated_anywhere() {
    let Fx { arc, .. } = fx();
    let a = Archive::from_bytes(arc).unwrap();
    let idx = a.header().index_offset as usize;
    let len = arc.len();
    let cuts = (0..=80)
        .chain((80..len).step_by(4093))
        .chain((idx.saturating_sub(50)..len).step_by(37))
        .chain(len - 20..len)
        .chain(a.tensors().iter().flat_map(|t| [t.arc_offset as usize, (t.arc_offset + t.arc_size / 2) as usize]));
    let mut n = 0;
    for cut in cuts.filter(|&c| c < len) {
        assert_eq!(open_err(&arc[..cut]), Some(Error::Truncated), "cut at {cut} of {len}");
        n += 1;
    }
    assert!(n > 1000);
}

#[test]
fn archive_trailing_bytes() {
    let Fx { arc, .. } = fx();
    for extra in [&[0u8][..], &[0xFF; 7], &noise(1, 5000), &arc[..]] {
        let mut m = arc.clone();
        m.extend_from_slice(extra);
        assert_eq!(open_err(&m), Some(Error::TrailingData), "{} trailing bytes", extra.len());
    }
}

#[test]
fn archive_header_byte_flips() {
    let Fx { arc, .. } = fx();
    let mut m = arc.clone();
    for i in 0..HEADER_LEN {
        for mask in [0x01u8, 0x80, 0xFF] {
            m[i] ^= mask;
            let want = if i < 4 { Error::BadMagic } else { Error::CorruptHeader };
            assert_eq!(open_err(&m), Some(want), "header byte {i} ^ {mask:#x}");
            m[i] ^= mask;
        }
    }
    assert!(m == *arc);
}

/// The archive with its header rewritten by `edit` (bytes 0..56), the checksum made right again.
fn with_header(arc: &[u8], edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut m = arc.to_vec();
    edit(&mut m[..56]);
    let c = xxh3_64(&m[..56]);
    m[56..64].copy_from_slice(&c.to_le_bytes());
    m
}

#[test]
fn archive_header_fields_with_a_valid_checksum() {
    let Fx { arc, .. } = fx();
    let h = *Archive::from_bytes(arc).unwrap().header();
    let put = |m: &mut [u8], at: usize, v: u64| m[at..at + 8].copy_from_slice(&v.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, Error)> = vec![
        ("version 0", with_header(arc, |m| m[4..6].copy_from_slice(&0u16.to_le_bytes())), Error::UnsupportedVersion),
        ("version 2", with_header(arc, |m| m[4..6].copy_from_slice(&2u16.to_le_bytes())), Error::UnsupportedVersion),
        ("version 0xFFFF", with_header(arc, |m| m[4..6].copy_from_slice(&[0xFF, 0xFF])), Error::UnsupportedVersion),
        ("container 0", with_header(arc, |m| m[6] = 0), Error::CorruptHeader),
        ("container 200", with_header(arc, |m| m[6] = 200), Error::CorruptHeader),
        ("byte 7", with_header(arc, |m| m[7] = 1), Error::CorruptHeader),
        ("reserved 40", with_header(arc, |m| m[40] = 1), Error::CorruptHeader),
        ("reserved 55", with_header(arc, |m| m[55] = 0x80), Error::CorruptHeader),
        ("original size + 1", with_header(arc, |m| put(m, 8, h.original_size + 1)), Error::CorruptHeader),
        ("original size - 1", with_header(arc, |m| put(m, 8, h.original_size - 1)), Error::CorruptHeader),
        ("original size 0", with_header(arc, |m| put(m, 8, 0)), Error::CorruptHeader),
        ("index offset + 1", with_header(arc, |m| put(m, 16, h.index_offset + 1)), Error::Truncated),
        ("index offset - 1", with_header(arc, |m| put(m, 16, h.index_offset - 1)), Error::TrailingData),
        ("index offset in the header", with_header(arc, |m| put(m, 16, 10)), Error::CorruptHeader),
        ("index offset 2^64-1", with_header(arc, |m| put(m, 16, u64::MAX)), Error::CorruptHeader),
        ("index size + 1", with_header(arc, |m| put(m, 24, h.index_size + 1)), Error::Truncated),
        ("index size 2^64-1", with_header(arc, |m| put(m, 24, u64::MAX)), Error::CorruptHeader),
        ("index size 0", with_header(arc, |m| put(m, 24, 0)), Error::CorruptHeader),
        ("index check", with_header(arc, |m| put(m, 32, h.index_check ^ 1)), Error::CorruptHeader),
    ];
    for (what, m, want) in cases {
        assert_eq!(open_err(&m), Some(want), "{what}");
    }
}

#[test]
fn archive_index_byte_flips() {
    let Fx { arc, .. } = fx();
    let idx = Archive::from_bytes(arc).unwrap().header().index_offset as usize;
    let mut m = arc.clone();
    for i in idx..m.len() {
        m[i] ^= 0x10;
        assert_eq!(open_err(&m), Some(Error::CorruptHeader), "index byte {} ^ 0x10", i - idx);
        m[i] ^= 0x10;
    }
}

/// The archive with `index` in place of its own, the header made consistent with it.
fn with_index(arc: &[u8], index: &Index, original_size: u64) -> Vec<u8> {
    let a = Archive::from_bytes(arc).unwrap();
    let h = a.header();
    let ib = index.write();
    let nh = Header {
        container: h.container,
        original_size,
        index_offset: h.index_offset,
        index_size: ib.len() as u64,
        index_check: xxh3_64(&ib),
    };
    let mut m = nh.write().to_vec();
    m.extend_from_slice(&arc[HEADER_LEN..h.index_offset as usize]);
    m.extend_from_slice(&ib);
    m
}

#[test]
fn archive_index_fields_that_do_not_add_up() {
    let Fx { arc, .. } = fx();
    let a = Archive::from_bytes(arc).unwrap();
    let orig = a.original_size();
    let idx0 = a.index().clone();
    // The unchanged index rewritten opens (the helper itself is right).
    assert!(Archive::from_bytes(&with_index(arc, &idx0, orig)).is_ok());
    let order = idx0.in_file_order();
    let (f0, f1) = (order[0], order[1]);
    let edit = |f: &dyn Fn(&mut Index)| {
        let mut i = idx0.clone();
        f(&mut i);
        i
    };
    let big_name = vec![b'n'; archive::format::MAX_NAME + 1];
    let cases: Vec<(&str, Index, u64)> = vec![
        ("frames overlap", edit(&|i| i.tensors[f1].arc_offset = i.tensors[f0].arc_offset + 1), orig),
        ("frame reaches into the index", edit(&|i| i.tensors[f0].arc_size += 1 << 30), orig),
        ("frame extent overflows", edit(&|i| i.tensors[f0].arc_offset = u64::MAX - 3), orig),
        ("frame inside the header", edit(&|i| i.tensors[f0].arc_offset = 8), orig),
        ("extra frame over a tensor frame", edit(&|i| i.extra.offset = i.tensors[f0].arc_offset), orig),
        ("originals overlap", edit(&|i| i.tensors[f1].orig_offset = i.tensors[f0].orig_offset), orig),
        ("tensor inside the metadata", edit(&|i| i.tensors[f0].orig_offset = 0), orig),
        ("tensor past the original", edit(&|i| i.tensors[order[order.len() - 1]].orig_offset = orig), orig),
        ("original extent overflows", edit(&|i| i.tensors[f0].orig_offset = u64::MAX - 10), orig),
        ("sizes do not add up", edit(&|i| i.extra.raw_size -= 1), orig),
        ("metadata larger than the extra bytes", edit(&|i| i.extra.metadata_size = i.extra.raw_size + 1), orig),
        (
            "extra bytes beyond any zstd expansion",
            edit(&|i| i.extra.raw_size += (i.extra.size + 2) << 15),
            orig + ((idx0.extra.size + 2) << 15),
        ),
        ("size not whole elements", edit(&|i| i.tensors[f0].orig_size += 1), orig + 1),
        ("name too long", edit(&|i| i.tensors[f0].name = big_name.clone()), orig),
        ("nine dims", edit(&|i| i.tensors[f0].dims = vec![1; 9]), orig),
    ];
    for (what, index, original_size) in cases {
        assert_eq!(open_err(&with_index(arc, &index, original_size)), Some(Error::CorruptHeader), "{what}");
    }
    // Fields the typed index cannot express, patched in its bytes (the check made right).
    let ib = idx0.write();
    let patched = |at: usize, v: &[u8]| {
        let mut b = ib.clone();
        b[at..at + v.len()].copy_from_slice(v);
        let h = a.header();
        let nh = Header { index_check: xxh3_64(&b), ..*h };
        let mut m = nh.write().to_vec();
        m.extend_from_slice(&arc[HEADER_LEN..h.index_offset as usize]);
        m.extend_from_slice(&b);
        m
    };
    for (what, m) in [
        ("unknown extra method", patched(4, &3u32.to_le_bytes())),
        ("extra method 2^32-1", patched(4, &u32::MAX.to_le_bytes())),
        ("tensor count + 1", patched(0, &(idx0.tensors.len() as u32 + 1).to_le_bytes())),
        ("tensor count - 1", patched(0, &(idx0.tensors.len() as u32 - 1).to_le_bytes())),
        ("tensor count 2^32-1", patched(0, &u32::MAX.to_le_bytes())),
        ("first name length 2^32-1", patched(72, &u32::MAX.to_le_bytes())),
    ] {
        assert_eq!(open_err(&m), Some(Error::CorruptHeader), "{what}");
    }
    // The other known extra methods over this archive's extra frame: the index is well formed,
    // but the frame is not a split of the extra bytes (nor the reverse) [CORRUPT_DATA].
    for other in (0u32..=2).filter(|&m| m != idx0.extra.method) {
        let m = patched(4, &other.to_le_bytes());
        let b = Archive::from_bytes(&m).expect("a known method opens");
        assert_eq!(b.metadata().err(), Some(Error::CorruptData), "extra method {other} over the other's frame");
        assert!(b.restore_to(&mut Vec::new(), &Options::with_threads(1)).is_err());
    }
    let first = &idx0.tensors[0];
    let kind_at = 72 + 4 + first.name.len() + 4;
    assert_eq!(open_err(&patched(kind_at, &99u32.to_le_bytes())), Some(Error::CorruptHeader), "unknown kind");
}

#[test]
fn archive_index_that_disagrees_with_its_frames() {
    // Consistent on its own, so it opens; reading finds the frame does not match the entry.
    let Fx { arc, file } = fx();
    let a = Archive::from_bytes(arc).unwrap();
    let idx0 = a.index().clone();
    let order = idx0.in_file_order();
    // Two tensors of different sizes swap frames.
    let (i, j) = (
        order[0],
        order.iter().copied().find(|&j| idx0.tensors[j].orig_size != idx0.tensors[order[0]].orig_size).unwrap(),
    );
    let mut idx = idx0.clone();
    let (ti, tj) = (idx.tensors[i].clone(), idx.tensors[j].clone());
    idx.tensors[i].arc_offset = tj.arc_offset;
    idx.tensors[i].arc_size = tj.arc_size;
    idx.tensors[j].arc_offset = ti.arc_offset;
    idx.tensors[j].arc_size = ti.arc_size;
    let m = with_index(arc, &idx, a.original_size());
    let b = Archive::from_bytes(&m).unwrap();
    for k in [i, j] {
        assert_eq!(b.tensor_vec(k, &one()), Err(Error::CorruptHeader), "tensor {k}");
    }
    let other = order.iter().copied().find(|&k| k != i && k != j).unwrap();
    assert!(b.tensor_vec(other, &one()).unwrap() == tensor_bytes(file, &b, other));
    assert_eq!(b.restore_to(&mut Vec::new(), &one()), Err(Error::CorruptHeader));
    assert_eq!(b.verify(&one()), Err((Some(i), Error::CorruptHeader)));

    // A tensor's SHA-256 changed: reads (checked by chunk checksums) succeed, verify names it.
    let mut idx = idx0.clone();
    let k = order[5];
    idx.tensors[k].sha256[0] ^= 1;
    let m = with_index(arc, &idx, a.original_size());
    let b = Archive::from_bytes(&m).unwrap();
    assert!(b.tensor_vec(k, &one()).unwrap() == tensor_bytes(file, &b, k));
    assert_eq!(b.verify(&one()), Err((Some(k), Error::CorruptData)));

    // The extra frame's SHA-256 changed: the metadata is refused.
    let mut idx = idx0.clone();
    idx.extra.sha256[31] ^= 0x40;
    let m = with_index(arc, &idx, a.original_size());
    let b = Archive::from_bytes(&m).unwrap();
    assert_eq!(b.metadata().err(), Some(Error::CorruptData));
    assert_eq!(b.verify(&one()), Err((None, Error::CorruptData)));
}

/// The index's checksum is not a MAC: a crafted archive can claim a tensor of any size up to the
/// header's `original_size`. `verify` and `tensor_vec` must compare the claim with the tensor's
/// frame header before allocating. Here the last tensor's orig_size and the header's
/// original_size grow by 16 GiB (index and checksums rewritten): the archive opens, and both
/// report CorruptHeader for that tensor with no large allocation.
#[test]
fn verify_does_not_allocate_the_size_a_hostile_index_claims() {
    let Fx { arc, .. } = fx();
    let a = Archive::from_bytes(arc).unwrap();
    let mut idx = a.index().clone();
    let k = *idx.in_file_order().last().unwrap();
    let d = idx.tensors[k].kind.element_size() as u64 * (1 << 32);
    idx.tensors[k].orig_size += d;
    let m = with_index(arc, &idx, a.original_size() + d);
    let b = Archive::from_bytes(&m).expect("the index is consistent with itself");
    let (r, big) = largest_allocation(|| b.tensor_vec(k, &one()).err());
    assert_eq!(r, Some(Error::CorruptHeader), "tensor_vec of the inflated tensor (asked for {big} bytes)");
    let (r, big) = largest_allocation(|| b.verify(&one()));
    assert_eq!(r, Err((Some(k), Error::CorruptHeader)), "verify (asked for {big} bytes)");
    assert!(big < 256 << 20, "verify asked for {big} bytes at once for a {} byte archive", m.len());
}

fn payload_range(arc: &[u8], t: &weightzip::archive::Entry) -> (usize, usize) {
    let f = &arc[t.arc_offset as usize..(t.arc_offset + t.arc_size) as usize];
    let info = weightzip::read_info(f).unwrap();
    let start = weightzip::frame::HEADER_LEN
        + info.model_size as usize
        + info.chunk_count as usize * weightzip::frame::CHUNK_ENTRY_LEN
        + weightzip::frame::CHECK_LEN;
    (t.arc_offset as usize + start, info.payload_size as usize)
}

fn is_frame_error(e: &Error) -> bool {
    matches!(e, Error::CorruptData | Error::CorruptHeader | Error::CorruptModel)
}

#[test]
fn a_damaged_tensor_fails_alone() {
    let Fx { arc, file } = fx();
    let n = Archive::from_bytes(arc).unwrap().tensors().len();
    let mut m = arc.clone();
    let entries: Vec<_> = Archive::from_bytes(arc).unwrap().tensors().to_vec();
    // Tensors whose neighbours are all read back: the first and last in the file, and a few more.
    let full_check = [0, n / 2, n - 1];
    for (k, t) in entries.iter().enumerate() {
        let (start, size) = payload_range(arc, t);
        if size == 0 {
            continue;
        }
        for at in [start, start + size / 2, start + size - 1] {
            m[at] ^= 0x5A;
            let a = Archive::from_bytes(&m).expect("a payload flip does not stop the archive opening");
            let mut dst = vec![0xA5u8; t.orig_size as usize];
            let e = a.read_tensor(k, &mut dst, &one()).expect_err(&format!("tensor {k}: flip at +{}", at - start));
            assert!(is_frame_error(&e), "tensor {k}: {e:?}");
            assert!(dst.iter().all(|&b| b == 0) || dst.iter().all(|&b| b == 0xA5), "tensor {k}: partial output left");
            if full_check.contains(&k) && at == start + size / 2 {
                for i in (0..n).filter(|&i| i != k) {
                    let got =
                        a.tensor_vec(i, &one()).unwrap_or_else(|e| panic!("tensor {i} after damage to {k}: {e:?}"));
                    assert!(got == tensor_bytes(file, &a, i), "tensor {i} after damage to {k}");
                }
                assert!(a.metadata().is_ok());
                let (i, e) = a.verify(&one()).unwrap_err();
                assert_eq!(i, Some(k), "verify names the damaged tensor");
                assert!(is_frame_error(&e));
                assert!(a.restore_to(&mut Vec::new(), &Options::default()).is_err());
            }
            m[at] ^= 0x5A;
        }
        // The frame header and the chunk table are checked too.
        for at in [t.arc_offset as usize + 10, start - 1] {
            m[at] ^= 0x01;
            let a = Archive::from_bytes(&m).unwrap();
            assert_eq!(a.tensor_vec(k, &one()), Err(Error::CorruptHeader), "tensor {k}: header/table flip");
            m[at] ^= 0x01;
        }
    }
    assert!(m == *arc);
}

#[test]
fn a_damaged_metadata_frame() {
    let Fx { arc, file } = fx();
    let a = Archive::from_bytes(arc).unwrap();
    let ex = a.index().extra;
    let mut m = arc.clone();
    for at in [ex.offset, ex.offset + 3, ex.offset + ex.size / 2, ex.offset + ex.size - 1] {
        m[at as usize] ^= 0x21;
        let b = Archive::from_bytes(&m).unwrap();
        assert_eq!(b.metadata().err(), Some(Error::CorruptData), "extra byte {}", at - ex.offset);
        // Asked again, the same answer.
        assert_eq!(b.metadata().err(), Some(Error::CorruptData));
        for i in [0, b.tensors().len() - 1] {
            assert!(b.tensor_vec(i, &one()).unwrap() == tensor_bytes(file, &b, i));
        }
        assert_eq!(b.restore_to(&mut Vec::new(), &one()), Err(Error::CorruptData));
        assert_eq!(b.verify(&one()), Err((None, Error::CorruptData)));
        m[at as usize] ^= 0x21;
    }
}

#[test]
fn restoring_a_damaged_archive_leaves_no_file() {
    let Fx { arc, .. } = fx();
    let dir = TempDir::new("archive-damaged-restore");
    let a = Archive::from_bytes(arc).unwrap();
    let t = &a.tensors()[a.tensors().len() / 2];
    let (start, size) = payload_range(arc, t);
    let mut m = arc.clone();
    m[start + size / 2] ^= 0x77;
    let wz = dir.join("damaged.wz");
    std::fs::write(&wz, &m).unwrap();
    let b = Archive::open_path(&wz).unwrap();
    let out = dir.join("out.gguf");
    assert!(b.restore_file(&out, &Options::default()).is_err());
    assert_eq!(dir.entries(), vec!["damaged.wz"], "output or temporary file left behind");
    // An existing file stays as it was.
    std::fs::write(&out, b"keep me").unwrap();
    assert!(b.restore_file(&out, &Options::default()).is_err());
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    assert_eq!(dir.entries(), vec!["damaged.wz", "out.gguf"]);
}

// Mutation fuzzing -----------------------------------------------------------------------------

/// Whatever an archive decodes to must be the original or an error, never a panic.
fn check_never_wrong(m: &[u8], b: &Built, what: &str) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let Ok(a) = Archive::from_bytes(m) else { return };
        if let Ok(md) = a.metadata() {
            assert!(md == b.metadata(), "{what}: wrong metadata with Ok");
        }
        // The index is checksummed, so an archive that opens after a random mutation has the
        // original index: every tensor that decodes must decode to its original bytes.
        assert_eq!(a.tensors().len(), b.expected.len(), "{what}");
        for i in 0..b.expected.len() {
            if let Ok(v) = a.tensor_vec(i, &one()) {
                assert!(v == b.tensor_bytes(i), "{what}: tensor {i} wrong with Ok");
            }
        }
        let mut out = Vec::new();
        if a.restore_to(&mut out, &one()).is_ok() {
            assert!(out == b.bytes, "{what}: restore_to Ok with wrong bytes");
        }
        let _ = a.verify(&one());
    }));
    assert!(r.is_ok(), "{what}: panicked");
}

#[test]
fn mutation_fuzz() {
    let mut mb = mixed();
    mb.tensors.push(Tensor::random("big.bf16", gt::BF16, &[200_000], 8));
    let b = mb.build();
    let mut c = Cursor::new(Vec::new());
    archive::compress_gguf(&b.bytes, &mut c, &one()).unwrap();
    let arc = c.into_inner();
    let mut rng = Lcg::new(2024);
    for round in 0..1500 {
        let mut m = arc.clone();
        let what = match round % 5 {
            0 | 1 => {
                let k = 1 + rng.below(4) as usize;
                for _ in 0..k {
                    let at = rng.below_usize(m.len());
                    m[at] ^= 1 << rng.below(8);
                }
                format!("round {round}: {k} bit flips")
            }
            2 => {
                let at = rng.below_usize(m.len());
                m[at] = rng.next_u32() as u8;
                format!("round {round}: byte {at} set")
            }
            3 => {
                let at = rng.below_usize(m.len());
                m.truncate(at);
                format!("round {round}: cut at {at}")
            }
            _ => {
                let at = rng.below_usize(m.len());
                m.insert(at, rng.next_u32() as u8);
                format!("round {round}: byte inserted at {at}")
            }
        };
        check_never_wrong(&m, &b, &what);
    }
}

#[test]
fn a_synthetic_archive_with_every_kind_survives_frame_damage() {
    // The mixed file (F32, Q4_K, bytes, F16, Q8_0 frames): a flip in any tensor's payload fails
    // that tensor only.
    let b = base();
    let mut c = Cursor::new(Vec::new());
    archive::compress_gguf(&b.bytes, &mut c, &one()).unwrap();
    let arc = c.into_inner();
    let entries = Archive::from_bytes(&arc).unwrap().tensors().to_vec();
    for (k, t) in entries.iter().enumerate() {
        let (start, size) = payload_range(&arc, t);
        for at in start..start + size {
            let mut m = arc.clone();
            m[at] ^= 0x04;
            let a = Archive::from_bytes(&m).unwrap();
            match a.tensor_vec(k, &one()) {
                Err(e) => assert!(is_frame_error(&e), "tensor {k} ({}): {e:?}", t.kind.name()),
                Ok(v) => panic!(
                    "tensor {k} ({}): payload byte {} flipped, read Ok (same bytes: {})",
                    t.kind.name(),
                    at - start,
                    v == b.tensor_bytes(k)
                ),
            }
            for i in (0..entries.len()).filter(|&i| i != k) {
                assert!(a.tensor_vec(i, &one()).unwrap() == b.tensor_bytes(i));
            }
        }
    }
}
