//! The C ABI called directly from Rust: argument checks, status codes and strings, versioned
//! structs, the "outputs are written only on success" rule, and a full roundtrip.

mod common;

use std::ffi::{c_void, CStr};
use std::ptr::{null, null_mut};

use common::raw_fixture;
use weightzip::error::Error;
use weightzip::ffi::*;
use weightzip::frame::{self, DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE};
use weightzip::{Kind, Options};

const OK: u32 = 0;

fn st(s: wz_status) -> u32 {
    s as u32
}

fn status_name(code: u32) -> String {
    unsafe { CStr::from_ptr(wz_status_str(code)) }.to_string_lossy().into_owned()
}

fn default_opts() -> wz_options {
    let mut o = wz_options { struct_size: 0, threads: 99, chunk_size: 99, flags: 99 };
    assert_eq!(st(unsafe { wz_options_init(&mut o) }), OK);
    o
}

fn opts(threads: u32, chunk_size: u32) -> wz_options {
    wz_options { threads, chunk_size, ..default_opts() }
}

/// wz_compress into a fresh buffer of `wz_compress_bound` bytes.
fn c_compress(src: &[u8], o: *const wz_options) -> Result<Vec<u8>, u32> {
    let cap = wz_compress_bound(src.len());
    assert!(cap > 0);
    let mut dst = vec![0u8; cap];
    let mut size = usize::MAX;
    let s = unsafe {
        wz_compress(
            dst.as_mut_ptr() as *mut c_void,
            cap,
            src.as_ptr() as *const c_void,
            src.len(),
            WZ_KIND_BF16,
            o,
            &mut size,
        )
    };
    if st(s) != OK {
        assert_eq!(size, usize::MAX, "*dst_size written on failure ({})", status_name(st(s)));
        return Err(st(s));
    }
    assert!(size <= cap);
    dst.truncate(size);
    Ok(dst)
}

fn c_decompress(frame: &[u8], dst: &mut [u8], o: *const wz_options) -> u32 {
    st(unsafe {
        wz_decompress(dst.as_mut_ptr() as *mut c_void, dst.len(), frame.as_ptr() as *const c_void, frame.len(), o)
    })
}

fn small_frame() -> (Vec<u8>, Vec<u8>) {
    let src = raw_fixture()[..300_000].to_vec();
    let f = c_compress(&src, null()).unwrap();
    (src, f)
}

// Status codes ---------------------------------------------------------------------------------

#[test]
fn every_error_maps_to_its_own_status() {
    let mut seen = std::collections::HashSet::new();
    for (i, e) in Error::ALL.iter().enumerate() {
        let code = wz_status::from(e.clone()) as u32;
        assert_eq!(code, i as u32 + 1, "{e:?}");
        assert!(seen.insert(code), "{e:?} shares status {code}");
        assert_eq!(status_name(code), e.message(), "{e:?}");
    }
    assert_eq!(seen.len(), Error::ALL.len());
    // Spot checks of the frozen numbers.
    assert_eq!(wz_status::from(Error::NullPointer) as u32, 1);
    assert_eq!(wz_status::from(Error::CorruptData) as u32, 12);
    assert_eq!(wz_status::from(Error::BadContainer) as u32, 19);
    assert_eq!(wz_status::from(Error::TensorOverlap) as u32, 24);
    assert_eq!(wz_status::from(Error::NotFound) as u32, 25);
}

#[test]
fn status_strings_are_distinct_static_and_non_empty() {
    let mut seen = std::collections::HashSet::new();
    let last = Error::ALL.len() as u32;
    for code in 0..=last {
        let p = wz_status_str(code);
        assert!(!p.is_null(), "status {code}");
        let s = status_name(code);
        assert!(!s.is_empty(), "status {code}");
        assert_ne!(s, "unknown status code", "status {code}");
        assert!(seen.insert(s.clone()), "status {code} repeats the string {s:?}");
        // The same static string every time.
        assert_eq!(wz_status_str(code), p, "status {code}");
    }
    assert_eq!(status_name(0), "success");
    for code in [last + 1, last + 2, 100, 1 << 16, u32::MAX - 1, u32::MAX] {
        assert_eq!(status_name(code), "unknown status code", "status {code}");
    }
}

#[test]
fn versions() {
    assert_eq!(wz_version(), WZ_VERSION_NUMBER);
    assert_eq!(wz_format_version(), WZ_FORMAT_VERSION);
    assert_eq!(WZ_FORMAT_VERSION, frame::FORMAT_VERSION as u32);
    let s = unsafe { CStr::from_ptr(wz_version_string()) }.to_str().unwrap();
    assert_eq!(s, format!("{WZ_VERSION_MAJOR}.{WZ_VERSION_MINOR}.{WZ_VERSION_PATCH}"));
    assert_eq!(WZ_KIND_BF16, Kind::Bf16.id());
    assert_eq!(WZ_FRAME_HEADER_SIZE as usize, frame::HEADER_LEN);
}

// Bound ----------------------------------------------------------------------------------------

#[test]
fn compress_bound_matches_the_rust_bound() {
    for n in [0usize, 1, 2, 63, 64, 65535, 65536, 65537, 1 << 20, 4_718_592, 1 << 40, usize::MAX / 2] {
        assert_eq!(wz_compress_bound(n), frame::compress_bound(n).unwrap(), "n = {n}");
        // The C macro: n + 64 + 16 * (n / 65536 + 1).
        assert_eq!(wz_compress_bound(n), n + 64 + 16 * (n / 65536 + 1), "n = {n}");
    }
    assert_eq!(wz_compress_bound(usize::MAX), 0);
    assert_eq!(wz_compress_bound(usize::MAX - 64), 0);
    // The largest n that still fits.
    let mut lo = usize::MAX / 2;
    let mut hi = usize::MAX;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if frame::compress_bound(mid).is_some() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    assert_ne!(wz_compress_bound(lo), 0);
    assert_eq!(wz_compress_bound(lo + 1), 0);
}

// NULL pointers --------------------------------------------------------------------------------

#[test]
fn null_pointers() {
    let (src, frame) = small_frame();
    let mut dst = vec![0u8; wz_compress_bound(src.len())];
    let mut size = 0usize;
    unsafe {
        // wz_compress: dst_size NULL; src NULL with a size; dst NULL with a capacity.
        let s = wz_compress(
            dst.as_mut_ptr() as *mut c_void,
            dst.len(),
            src.as_ptr() as *const c_void,
            src.len(),
            WZ_KIND_BF16,
            null(),
            null_mut(),
        );
        assert_eq!(s, wz_status::WZ_STATUS_NULL_POINTER);
        let s = wz_compress(dst.as_mut_ptr() as *mut c_void, dst.len(), null(), 2, WZ_KIND_BF16, null(), &mut size);
        assert_eq!(s, wz_status::WZ_STATUS_NULL_POINTER);
        let s =
            wz_compress(null_mut(), 1000, src.as_ptr() as *const c_void, src.len(), WZ_KIND_BF16, null(), &mut size);
        assert_eq!(s, wz_status::WZ_STATUS_NULL_POINTER);
        assert_eq!(size, 0, "*dst_size written on failure");

        // wz_decompress: src NULL with a size; dst NULL with a size.
        let mut out = vec![0u8; src.len()];
        assert_eq!(
            wz_decompress(out.as_mut_ptr() as *mut c_void, out.len(), null(), frame.len(), null()),
            wz_status::WZ_STATUS_NULL_POINTER
        );
        assert_eq!(
            wz_decompress(null_mut(), src.len(), frame.as_ptr() as *const c_void, frame.len(), null()),
            wz_status::WZ_STATUS_NULL_POINTER
        );

        // wz_frame_get_info: info NULL; src NULL with a size.
        assert_eq!(
            wz_frame_get_info(frame.as_ptr() as *const c_void, frame.len(), null_mut()),
            wz_status::WZ_STATUS_NULL_POINTER
        );
        let mut info = info_with_size(std::mem::size_of::<wz_frame_info>() as u32);
        assert_eq!(wz_frame_get_info(null(), 48, &mut info), wz_status::WZ_STATUS_NULL_POINTER);

        // wz_options_init
        assert_eq!(wz_options_init(null_mut()), wz_status::WZ_STATUS_NULL_POINTER);
    }
}

#[test]
fn null_with_size_zero_is_an_empty_buffer() {
    unsafe {
        // Compress nothing from NULL.
        let mut dst = vec![0u8; wz_compress_bound(0)];
        let mut size = usize::MAX;
        let s = wz_compress(dst.as_mut_ptr() as *mut c_void, dst.len(), null(), 0, WZ_KIND_BF16, null(), &mut size);
        assert_eq!(s, wz_status::WZ_STATUS_OK);
        assert!(size > 0 && size <= dst.len());
        let frame = &dst[..size];
        let mut info = info_with_size(std::mem::size_of::<wz_frame_info>() as u32);
        assert_eq!(wz_frame_get_info(frame.as_ptr() as *const c_void, frame.len(), &mut info), wz_status::WZ_STATUS_OK);
        assert_eq!(info.original_size, 0);
        assert_eq!(info.frame_size, size as u64);
        assert_eq!(info.chunk_count, 0);
        // Decompress into NULL of size 0.
        assert_eq!(
            wz_decompress(null_mut(), 0, frame.as_ptr() as *const c_void, frame.len(), null()),
            wz_status::WZ_STATUS_OK
        );
        // NULL src of size 0 is an empty (truncated) frame, not a NULL pointer error.
        assert_eq!(wz_decompress(null_mut(), 0, null(), 0, null()), wz_status::WZ_STATUS_TRUNCATED);
        assert_eq!(wz_frame_get_info(null(), 0, &mut info), wz_status::WZ_STATUS_TRUNCATED);
        // A NULL dst of capacity 0 is just too small.
        let src = [0u8; 4];
        let mut size = 7usize;
        let s = wz_compress(null_mut(), 0, src.as_ptr() as *const c_void, 4, WZ_KIND_BF16, null(), &mut size);
        assert_eq!(s, wz_status::WZ_STATUS_DST_TOO_SMALL);
        assert_eq!(size, 7);
    }
}

#[test]
fn sizes_above_isize_max_are_too_large() {
    let (src, frame) = small_frame();
    let mut dst = vec![0u8; 16];
    let mut size = 5usize;
    unsafe {
        let s = wz_compress(
            dst.as_mut_ptr() as *mut c_void,
            dst.len(),
            src.as_ptr() as *const c_void,
            usize::MAX,
            WZ_KIND_BF16,
            null(),
            &mut size,
        );
        assert_eq!(s, wz_status::WZ_STATUS_TOO_LARGE);
        let s = wz_decompress(
            dst.as_mut_ptr() as *mut c_void,
            usize::MAX,
            frame.as_ptr() as *const c_void,
            frame.len(),
            null(),
        );
        assert_eq!(s, wz_status::WZ_STATUS_TOO_LARGE);
        let s = wz_decompress(
            dst.as_mut_ptr() as *mut c_void,
            src.len(),
            frame.as_ptr() as *const c_void,
            isize::MAX as usize + 1,
            null(),
        );
        assert_eq!(s, wz_status::WZ_STATUS_TOO_LARGE);
    }
    assert_eq!(size, 5);
}

// Kinds and lengths ----------------------------------------------------------------------------

#[test]
fn unknown_kind_and_bad_length() {
    let src = &raw_fixture()[..1000];
    let mut dst = vec![0xCCu8; wz_compress_bound(src.len())];
    for kind in [0u32, 5, 15, 28, 255, u32::MAX] {
        let mut size = 123usize;
        let s = unsafe {
            wz_compress(
                dst.as_mut_ptr() as *mut c_void,
                dst.len(),
                src.as_ptr() as *const c_void,
                src.len(),
                kind,
                null(),
                &mut size,
            )
        };
        assert_eq!(s, wz_status::WZ_STATUS_UNKNOWN_KIND, "kind {kind}");
        assert_eq!(size, 123);
    }
    let mut size = 123usize;
    let s = unsafe {
        wz_compress(
            dst.as_mut_ptr() as *mut c_void,
            dst.len(),
            src.as_ptr() as *const c_void,
            999,
            WZ_KIND_BF16,
            null(),
            &mut size,
        )
    };
    assert_eq!(s, wz_status::WZ_STATUS_BAD_LENGTH);
    assert_eq!(size, 123);
    assert!(dst.iter().all(|&b| b == 0xCC), "dst written on failure");
}

// Options --------------------------------------------------------------------------------------

#[test]
fn options_init_sets_defaults() {
    let o = default_opts();
    assert_eq!(o.struct_size as usize, std::mem::size_of::<wz_options>());
    assert_eq!(o.struct_size, 16);
    assert_eq!((o.threads, o.chunk_size, o.flags), (0, 0, 0));
}

/// A caller's options struct of any size: `struct_size`, then whatever bytes follow.
#[repr(C, align(8))]
struct RawOpts {
    bytes: [u8; 64],
}

impl RawOpts {
    fn new(struct_size: u32, fields: &[u32], tail: &[u8]) -> RawOpts {
        let mut bytes = [0u8; 64];
        bytes[..4].copy_from_slice(&struct_size.to_le_bytes());
        for (i, f) in fields.iter().enumerate() {
            bytes[4 + 4 * i..8 + 4 * i].copy_from_slice(&f.to_le_bytes());
        }
        bytes[4 + 4 * fields.len()..4 + 4 * fields.len() + tail.len()].copy_from_slice(tail);
        RawOpts { bytes }
    }
    fn ptr(&self) -> *const wz_options {
        self.bytes.as_ptr() as *const wz_options
    }
}

fn chunk_size_of(frame: &[u8]) -> u32 {
    weightzip::read_info(frame).unwrap().chunk_size
}

#[test]
fn options_struct_size_versioning() {
    let src = &raw_fixture()[..200_000];
    let reference_64k =
        weightzip::compress(Kind::Bf16, src, &Options { threads: 1, chunk_size: MIN_CHUNK_SIZE, ..Default::default() })
            .unwrap();
    let reference_default = weightzip::compress(Kind::Bf16, src, &Options::default()).unwrap();

    // Full struct.
    let o = RawOpts::new(16, &[1, MIN_CHUNK_SIZE, 0], &[]);
    assert_eq!(c_compress(src, o.ptr()).unwrap(), reference_64k);

    // Older, smaller structs: the missing fields take their defaults, whatever the bytes after
    // the caller's struct hold (they belong to someone else).
    let o = RawOpts::new(12, &[1, MIN_CHUNK_SIZE, 0xDEAD], &[]); // no `flags`
    assert_eq!(c_compress(src, o.ptr()).unwrap(), reference_64k, "struct_size 12 ignores `flags`");
    let o = RawOpts::new(8, &[2, 12345, 0xDEAD], &[]); // threads only; garbage chunk size ignored
    let f = c_compress(src, o.ptr()).unwrap();
    assert_eq!(chunk_size_of(&f), DEFAULT_CHUNK_SIZE);
    assert_eq!(f, reference_default);
    let o = RawOpts::new(4, &[0xFFFF_FFFF, 12345, 0xDEAD], &[]); // struct_size only
    assert_eq!(c_compress(src, o.ptr()).unwrap(), reference_default);

    // Newer, larger structs: unknown trailing fields must be zero.
    let o = RawOpts::new(32, &[1, MIN_CHUNK_SIZE, 0], &[0u8; 16]);
    assert_eq!(c_compress(src, o.ptr()).unwrap(), reference_64k, "larger struct with zero tail");
    let o = RawOpts::new(17, &[1, MIN_CHUNK_SIZE, 0], &[0]);
    assert_eq!(c_compress(src, o.ptr()).unwrap(), reference_64k, "one zero byte more");
    for at in [0usize, 7, 15] {
        let mut tail = [0u8; 16];
        tail[at] = 1;
        let o = RawOpts::new(32, &[1, MIN_CHUNK_SIZE, 0], &tail);
        assert_eq!(
            c_compress(src, o.ptr()),
            Err(wz_status::WZ_STATUS_INVALID_ARGUMENT as u32),
            "non-zero tail byte {at}"
        );
    }

    // Nonsense sizes and unknown flags.
    for size in [0u32, 1, 2, 3] {
        let o = RawOpts::new(size, &[1, MIN_CHUNK_SIZE, 0], &[]);
        assert_eq!(c_compress(src, o.ptr()), Err(wz_status::WZ_STATUS_INVALID_ARGUMENT as u32), "struct_size {size}");
    }
    for flags in [2u32, 3, 0x8000_0000] {
        let o = RawOpts::new(16, &[1, MIN_CHUNK_SIZE, flags], &[]);
        assert_eq!(c_compress(src, o.ptr()), Err(wz_status::WZ_STATUS_INVALID_ARGUMENT as u32), "flags {flags:#x}");
    }
    // Out-of-range chunk sizes.
    for cs in [2u32, 1000, MIN_CHUNK_SIZE - 2, MIN_CHUNK_SIZE + 1, (1 << 30) + 2] {
        let o = opts(1, cs);
        assert_eq!(c_compress(src, &o), Err(wz_status::WZ_STATUS_INVALID_ARGUMENT as u32), "chunk_size {cs}");
    }
}

#[test]
fn decompress_options_versioning() {
    let (src, frame) = small_frame();
    let mut out = vec![0u8; src.len()];
    for (case, o, want) in [
        ("full", RawOpts::new(16, &[2, 0, 0], &[]), OK),
        ("threads only", RawOpts::new(8, &[1, 0xFFFF, 0xFFFF], &[]), OK),
        ("size only", RawOpts::new(4, &[0xFFFF, 0xFFFF, 0xFFFF], &[]), OK),
        ("larger, zero tail", RawOpts::new(24, &[2, 0, 0], &[0; 8]), OK),
        (
            "larger, non-zero tail",
            RawOpts::new(24, &[2, 0, 0], &[0, 0, 0, 9, 0, 0, 0, 0]),
            wz_status::WZ_STATUS_INVALID_ARGUMENT as u32,
        ),
        ("struct_size 0", RawOpts::new(0, &[2, 0, 0], &[]), wz_status::WZ_STATUS_INVALID_ARGUMENT as u32),
        ("struct_size 3", RawOpts::new(3, &[2, 0, 0], &[]), wz_status::WZ_STATUS_INVALID_ARGUMENT as u32),
        ("WZ_FLAG_FAST (ignored)", RawOpts::new(16, &[2, 0, WZ_FLAG_FAST], &[]), OK),
        ("unknown flag", RawOpts::new(16, &[2, 0, 2], &[]), wz_status::WZ_STATUS_INVALID_ARGUMENT as u32),
    ] {
        out.fill(0xCC);
        assert_eq!(c_decompress(&frame, &mut out, o.ptr()), want, "{case}");
        if want == OK {
            assert_eq!(out, src, "{case}");
        } else {
            assert!(out.iter().all(|&b| b == 0xCC), "{case}: dst written although the options were rejected");
        }
    }
}

// Frame info -----------------------------------------------------------------------------------

fn info_with_size(size: u32) -> wz_frame_info {
    wz_frame_info {
        struct_size: size,
        kind: 0,
        format_version: 0,
        chunk_count: 0,
        original_size: 0,
        frame_size: 0,
        chunk_size: 0,
        reserved: 0,
    }
}

/// A caller's info struct of any size inside a buffer of canary bytes.
#[repr(C, align(8))]
struct RawInfo {
    bytes: [u8; 96],
}

const CANARY: u8 = 0xCC;

fn get_info_raw(frame: &[u8], struct_size: u32) -> (u32, RawInfo) {
    let mut r = RawInfo { bytes: [CANARY; 96] };
    r.bytes[..4].copy_from_slice(&struct_size.to_le_bytes());
    let s = unsafe {
        wz_frame_get_info(frame.as_ptr() as *const c_void, frame.len(), r.bytes.as_mut_ptr() as *mut wz_frame_info)
    };
    (st(s), r)
}

#[test]
fn frame_get_info_full_struct() {
    let (src, frame) = small_frame();
    let mut info = info_with_size(std::mem::size_of::<wz_frame_info>() as u32);
    assert_eq!(std::mem::size_of::<wz_frame_info>(), 40);
    assert_eq!(
        unsafe { wz_frame_get_info(frame.as_ptr() as *const c_void, frame.len(), &mut info) },
        wz_status::WZ_STATUS_OK
    );
    assert_eq!(info.struct_size, 40, "struct_size is the caller's and stays");
    assert_eq!(info.kind, WZ_KIND_BF16);
    assert_eq!(info.format_version, WZ_FORMAT_VERSION);
    assert_eq!(info.original_size, src.len() as u64);
    assert_eq!(info.frame_size, frame.len() as u64);
    assert_eq!(info.chunk_size, DEFAULT_CHUNK_SIZE);
    assert_eq!(info.chunk_count as usize, src.len().div_ceil(DEFAULT_CHUNK_SIZE as usize));
    assert_eq!(info.reserved, 0);
    // The header alone suffices.
    let mut h = info_with_size(40);
    assert_eq!(
        unsafe { wz_frame_get_info(frame.as_ptr() as *const c_void, WZ_FRAME_HEADER_SIZE as usize, &mut h,) },
        wz_status::WZ_STATUS_OK
    );
    assert_eq!(h.original_size, info.original_size);
    assert_eq!(h.frame_size, info.frame_size);
}

#[test]
fn frame_get_info_writes_only_within_struct_size() {
    let (src, frame) = small_frame();
    let (_, full) = get_info_raw(&frame, 40);
    for size in [4u32, 8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 64] {
        let (s, r) = get_info_raw(&frame, size);
        assert_eq!(s, OK, "struct_size {size}");
        let n = (size as usize).min(40);
        assert_eq!(&r.bytes[..4], &size.to_le_bytes(), "struct_size {size}: size field changed");
        assert_eq!(&r.bytes[4..n], &full.bytes[4..n], "struct_size {size}: fields differ from the full struct's");
        assert!(
            r.bytes[n..].iter().all(|&b| b == CANARY),
            "struct_size {size}: wrote past the caller's struct (or past our own)"
        );
    }
    // The full struct, decoded by hand.
    let b = &full.bytes;
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    assert_eq!(u32_at(4), WZ_KIND_BF16);
    assert_eq!(u64_at(16), src.len() as u64);
    assert_eq!(u64_at(24), frame.len() as u64);
    // Invalid sizes and failures write nothing.
    for size in [0u32, 1, 3] {
        let (s, r) = get_info_raw(&frame, size);
        assert_eq!(s, wz_status::WZ_STATUS_INVALID_ARGUMENT as u32, "struct_size {size}");
        assert!(r.bytes[4..].iter().all(|&b| b == CANARY), "struct_size {size}: written on failure");
    }
    for (case, bad, want) in [
        ("truncated header", frame[..47].to_vec(), wz_status::WZ_STATUS_TRUNCATED),
        (
            "bad magic",
            {
                let mut f = frame.clone();
                f[0] ^= 1;
                f
            },
            wz_status::WZ_STATUS_BAD_MAGIC,
        ),
        (
            "header flip",
            {
                let mut f = frame.clone();
                f[9] ^= 1;
                f
            },
            wz_status::WZ_STATUS_CORRUPT_HEADER,
        ),
    ] {
        let (s, r) = get_info_raw(&bad, 40);
        assert_eq!(s, want as u32, "{case}");
        assert!(r.bytes[4..].iter().all(|&b| b == CANARY), "{case}: info written on failure");
    }
}

// Compress / decompress ------------------------------------------------------------------------

#[test]
fn compress_into_a_too_small_buffer() {
    let src = &raw_fixture()[..300_000];
    let frame = c_compress(src, null()).unwrap();
    for cap in [0usize, 1, 47, 48, frame.len() / 2, frame.len() - 1] {
        let mut dst = vec![CANARY; cap + 16];
        let mut size = 777usize;
        let s = unsafe {
            wz_compress(
                dst.as_mut_ptr() as *mut c_void,
                cap,
                src.as_ptr() as *const c_void,
                src.len(),
                WZ_KIND_BF16,
                null(),
                &mut size,
            )
        };
        assert_eq!(s, wz_status::WZ_STATUS_DST_TOO_SMALL, "capacity {cap}");
        assert_eq!(size, 777, "capacity {cap}: *dst_size written on failure");
        assert!(dst.iter().all(|&b| b == CANARY), "capacity {cap}: dst written on failure");
    }
    // Exactly the frame size is enough, and nothing past it is touched.
    let mut dst = vec![CANARY; frame.len() + 16];
    let mut size = 0usize;
    let s = unsafe {
        wz_compress(
            dst.as_mut_ptr() as *mut c_void,
            frame.len(),
            src.as_ptr() as *const c_void,
            src.len(),
            WZ_KIND_BF16,
            null(),
            &mut size,
        )
    };
    assert_eq!(s, wz_status::WZ_STATUS_OK);
    assert_eq!(size, frame.len());
    assert_eq!(&dst[..size], &frame[..]);
    assert!(dst[size..].iter().all(|&b| b == CANARY));
}

#[test]
fn full_roundtrip_of_the_fixture_through_the_c_api() {
    let raw = raw_fixture();
    let rust_frame = weightzip::compress(Kind::Bf16, raw, &Options::default()).unwrap();
    let mut frames = Vec::new();
    for threads in [1u32, 2] {
        let o = opts(threads, 0);
        let f = c_compress(raw, &o).unwrap();
        assert!(f.len() < raw.len(), "real weights must shrink");
        assert!(f == rust_frame, "threads {threads}: C frame differs from the Rust API's");
        frames.push(f);
    }
    // NULL options are the defaults.
    assert!(c_compress(raw, null()).unwrap() == rust_frame);
    let f = &frames[0];
    let mut info = info_with_size(40);
    assert_eq!(unsafe { wz_frame_get_info(f.as_ptr() as *const c_void, f.len(), &mut info) }, wz_status::WZ_STATUS_OK);
    assert_eq!(info.original_size, raw.len() as u64);
    for threads in [1u32, 2] {
        let o = opts(threads, 0);
        let mut out = vec![CANARY; info.original_size as usize];
        assert_eq!(c_decompress(f, &mut out, &o), OK, "threads {threads}");
        assert!(out == raw, "threads {threads}: wrong bytes");
    }
    let mut out = vec![0u8; raw.len()];
    assert_eq!(c_decompress(f, &mut out, null()), OK);
    assert!(out == raw);
}

#[test]
fn decompress_errors_and_destination_contents() {
    let (src, frame) = small_frame();
    let n = src.len();
    // Wrong destination sizes: found before decoding, dst untouched.
    for (len, want) in [
        (n - 2, wz_status::WZ_STATUS_DST_TOO_SMALL),
        (0, wz_status::WZ_STATUS_DST_TOO_SMALL),
        (n + 2, wz_status::WZ_STATUS_DST_SIZE_MISMATCH),
    ] {
        let mut out = vec![CANARY; len.max(1)];
        let s = unsafe {
            wz_decompress(out.as_mut_ptr() as *mut c_void, len, frame.as_ptr() as *const c_void, frame.len(), null())
        };
        assert_eq!(s, want, "dst {len}");
        assert!(out.iter().all(|&b| b == CANARY), "dst {len}: written although the size is wrong");
    }
    // Header-level defects: dst untouched.
    for (case, bad, want) in [
        (
            "bad magic",
            {
                let mut f = frame.clone();
                f[1] = 0;
                f
            },
            wz_status::WZ_STATUS_BAD_MAGIC,
        ),
        ("truncated", frame[..frame.len() - 1].to_vec(), wz_status::WZ_STATUS_TRUNCATED),
        (
            "trailing",
            {
                let mut f = frame.clone();
                f.push(0);
                f
            },
            wz_status::WZ_STATUS_TRAILING_DATA,
        ),
        (
            "header flip",
            {
                let mut f = frame.clone();
                f[20] ^= 2;
                f
            },
            wz_status::WZ_STATUS_CORRUPT_HEADER,
        ),
    ] {
        let mut out = vec![CANARY; n];
        assert_eq!(c_decompress(&bad, &mut out, null()), want as u32, "{case}");
        assert!(out.iter().all(|&b| b == CANARY), "{case}: dst written");
    }
    // Payload corruption: zero-filled.
    for threads in [1u32, 2] {
        let mut bad = frame.clone();
        let at = bad.len() - 3;
        bad[at] ^= 0x40;
        let mut out = vec![CANARY; n];
        let o = opts(threads, 0);
        assert_eq!(c_decompress(&bad, &mut out, &o), wz_status::WZ_STATUS_CORRUPT_DATA as u32);
        assert!(out.iter().all(|&b| b == 0), "threads {threads}: dst not zero-filled after CORRUPT_DATA");
    }
}

#[test]
fn concurrent_calls_from_several_threads() {
    let src = &raw_fixture()[..1 << 20];
    let expected = weightzip::compress(Kind::Bf16, src, &Options::default()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let expected = &expected;
            s.spawn(move || {
                for _ in 0..3 {
                    let o = opts(t % 3, 0);
                    let f = c_compress(src, &o).unwrap();
                    assert!(f == *expected);
                    let mut out = vec![0u8; src.len()];
                    assert_eq!(c_decompress(&f, &mut out, &o), OK);
                    assert!(out == src);
                }
            });
        }
    });
}

#[test]
fn documented_default_chunk_size_matches_the_library() {
    // C users learn the default from the header's comment on `wz_options::chunk_size`.
    let h =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("include/weightzip.h")).unwrap();
    let words: Vec<&str> = h.split_whitespace().collect();
    let at = words
        .windows(4)
        .position(|w| w[0] == "(the" && w[1] == "default)" && w[2] == "means")
        .expect("the header documents the default chunk size as '(the default) means N KiB'");
    let kib: u32 = words[at + 3].parse().expect("a number of KiB");
    assert_eq!(words[at + 4].trim_end_matches('.'), "KiB");
    assert_eq!(
        kib << 10,
        DEFAULT_CHUNK_SIZE,
        "include/weightzip.h says the default chunk size is {kib} KiB, the library uses {} KiB",
        DEFAULT_CHUNK_SIZE >> 10
    );
    // And what an all-default wz_compress really does.
    let src = &raw_fixture()[..(3 * DEFAULT_CHUNK_SIZE as usize) / 2];
    let f = c_compress(src, null()).unwrap();
    assert_eq!(chunk_size_of(&f), DEFAULT_CHUNK_SIZE);
}
