//! Small inputs through the code paths that hold `unsafe`, sized for Miri
//! (`scripts/check_sanitizers.sh miri` runs `cargo +nightly miri test --test miri_smoke` with
//! WZ_SIMD=scalar, since Miri does not implement the AVX-512 intrinsics of the kernels). Also a
//! quick ordinary test on stable.
//!
//! Covered: the C ABI's pointer handling (`in_slice`/`out_slice`, versioned structs, NULL checks,
//! the panic guard) for frames and in-memory archives; the archive's calloc-style `alloc` (a Vec
//! built from a raw allocation); the decoders of every rANS method on valid and on damaged
//! frames. Not covered under Miri: zstd (C code: the grouped and f32 methods, archives' extra
//! frame), memory maps, the SIMD kernels (valgrind and the fuzzers cover those).

#[path = "../fuzz/seeds.rs"]
mod seeds;
#[path = "../fuzz/targets.rs"]
mod targets;

use std::ffi::c_void;

use seeds::Lcg;
use weightzip::archive::{Archive, Container, Entry, Extra, Header, Index};
use weightzip::ffi::archive as fa;
use weightzip::ffi::{self, wz_frame_info, wz_options};
use weightzip::{frame, Error, Kind, Options};

/// Values with the shape of real weights: bf16 of small normal-ish floats.
fn bf16_like(r: &mut Lcg, n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|_| {
            let u = (r.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let v = u * u * u * 0.2;
            ((v.to_bits() >> 16) as u16).to_le_bytes()
        })
        .collect()
}

/// Blocks whose leading f16 scale is small and positive, the rest random.
fn blocks_like(r: &mut Lcg, kind: Kind, blocks: usize) -> Vec<u8> {
    let es = kind.element_size();
    let mut v = Vec::with_capacity(es * blocks);
    for _ in 0..blocks {
        let mut b: Vec<u8> = (0..es).map(|_| (r.next_u64() >> 56) as u8).collect();
        b[1] = 0x1c + (b[1] & 3);
        v.extend_from_slice(&b);
    }
    v
}

/// Kinds whose frames decode without zstd (C code Miri cannot run), with small inputs.
fn inputs() -> Vec<(Kind, Vec<u8>)> {
    let mut r = Lcg::new(5);
    vec![
        (Kind::Bf16, bf16_like(&mut r, 700)),
        (Kind::F16, bf16_like(&mut r, 300)),
        (Kind::Q4K, blocks_like(&mut r, Kind::Q4K, 3)),
        (Kind::Q6K, blocks_like(&mut r, Kind::Q6K, 2)),
        (Kind::Q8_0, blocks_like(&mut r, Kind::Q8_0, 20)),
        (Kind::Q4_0, blocks_like(&mut r, Kind::Q4_0, 20)),
    ]
}

fn one() -> Options {
    Options::with_threads(1)
}

#[test]
fn frames_roundtrip_and_damaged_frames_fail() {
    let mut r = Lcg::new(9);
    for (kind, data) in inputs() {
        let f = frame::compress(kind, &data, &one()).unwrap();
        assert!(frame::decompress(&f, &one()).unwrap() == data, "{kind:?}");
        // Damaged copies, checksums recomputed so the decoders see the damage.
        for _ in 0..4 {
            let mut m = seeds::mutate(&mut r, &f, &f);
            targets::fix_frame(&mut m);
            let _ = frame::decompress(&m, &one());
        }
    }
}

#[test]
fn c_abi_frames() {
    // SAFETY: every pointer passed is valid for the size given, or NULL where NULL is tested.
    unsafe {
        let mut o = std::mem::MaybeUninit::<wz_options>::zeroed().assume_init();
        assert_eq!(ffi::wz_options_init(&mut o) as u32, 0);
        o.threads = 1;
        assert_ne!(ffi::wz_options_init(std::ptr::null_mut()) as u32, 0);
        for (kind, data) in inputs() {
            let cap = ffi::wz_compress_bound(data.len());
            let mut dst = vec![0u8; cap];
            let mut n = 0usize;
            let s =
                ffi::wz_compress(dst.as_mut_ptr().cast(), cap, data.as_ptr().cast(), data.len(), kind.id(), &o, &mut n);
            assert_eq!(s as u32, 0, "{kind:?}");
            // Too small a destination: an error, nothing written past it.
            let mut small = vec![0u8; 10];
            let mut n2 = 0usize;
            let s = ffi::wz_compress(
                small.as_mut_ptr().cast(),
                10,
                data.as_ptr().cast(),
                data.len(),
                kind.id(),
                &o,
                &mut n2,
            );
            assert_ne!(s as u32, 0);
            // NULL with a size, and NULL with size 0.
            let s =
                ffi::wz_compress(std::ptr::null_mut(), cap, data.as_ptr().cast(), data.len(), kind.id(), &o, &mut n2);
            assert_ne!(s as u32, 0);
            let mut info = std::mem::MaybeUninit::<wz_frame_info>::zeroed().assume_init();
            info.struct_size = std::mem::size_of::<wz_frame_info>() as u32;
            assert_eq!(ffi::wz_frame_get_info(dst.as_ptr().cast(), n, &mut info) as u32, 0);
            assert_eq!(info.original_size, data.len() as u64);
            let mut back = vec![0u8; data.len()];
            let s = ffi::wz_decompress(back.as_mut_ptr().cast(), back.len(), dst.as_ptr().cast(), n, &o);
            assert_eq!(s as u32, 0);
            assert!(back == data);
            let s =
                ffi::wz_decompress(back.as_mut_ptr().cast(), back.len() - 1, dst.as_ptr().cast(), n, std::ptr::null());
            assert_eq!(s as u32, Error::ALL.iter().position(|e| *e == Error::DstTooSmall).unwrap() as u32 + 1);
            let s = ffi::wz_decompress(back.as_mut_ptr().cast(), back.len(), std::ptr::null(), n, &o);
            assert_ne!(s as u32, 0);
            let s = ffi::wz_frame_get_info(dst.as_ptr().cast(), 3, &mut info);
            assert_ne!(s as u32, 0);
        }
        assert!(!ffi::wz_status_str(9999).is_null());
        let _ = std::ffi::CStr::from_ptr(ffi::wz_version_string());
    }
}

/// An archive built in memory from bf16 and Q4_K frames: header, frames, a stand-in extra frame
/// (never decoded here), index.
fn archive_in_memory() -> (Vec<u8>, Vec<Vec<u8>>) {
    let ins = inputs();
    let picks = [&ins[0], &ins[2]];
    let mut a = vec![0u8; weightzip::archive::format::HEADER_LEN];
    let mut tensors = Vec::new();
    let mut orig = 0u64;
    for (i, (kind, data)) in picks.iter().enumerate() {
        let f = frame::compress(*kind, data, &one()).unwrap();
        let name = format!("t{i}").into_bytes();
        let mut name_c = name.clone();
        name_c.push(0);
        tensors.push(Entry {
            name,
            name_c,
            container_type: kind.ggml_type().unwrap(),
            kind: *kind,
            dims: vec![data.len() as u64 / kind.element_size() as u64],
            orig_offset: orig,
            orig_size: data.len() as u64,
            arc_offset: a.len() as u64,
            arc_size: f.len() as u64,
            sha256: [0; 32],
        });
        orig += data.len() as u64;
        a.extend_from_slice(&f);
    }
    let extra = Extra { method: 0, offset: a.len() as u64, size: 9, raw_size: 0, metadata_size: 0, sha256: [0; 32] };
    a.extend_from_slice(&[0x28, 0xB5, 0x2F, 0xFD, 0x20, 0, 1, 0, 0]);
    let ib = Index { extra, tensors }.write();
    let hd = Header {
        container: Container::Gguf,
        original_size: orig,
        index_offset: a.len() as u64,
        index_size: ib.len() as u64,
        index_check: xxhash_rust::xxh3::xxh3_64(&ib),
    };
    a.extend_from_slice(&ib);
    a[..64].copy_from_slice(&hd.write());
    (a, picks.iter().map(|p| p.1.clone()).collect())
}

#[test]
fn archives_in_memory_rust_and_c() {
    let (a, want) = archive_in_memory();
    let ar = Archive::from_bytes(&a).unwrap();
    for (i, w) in want.iter().enumerate() {
        assert!(ar.tensor_vec(i, &one()).unwrap() == *w);
    }
    // SAFETY: valid pointers and sizes; the handle is closed once.
    unsafe {
        let mut h: *mut fa::wz_archive = std::ptr::null_mut();
        assert_eq!(fa::wz_archive_open_memory(a.as_ptr() as *const c_void, a.len(), &mut h) as u32, 0);
        assert_eq!(fa::wz_archive_tensor_count(h), 2);
        let mut idx = 0usize;
        assert_eq!(fa::wz_archive_find_tensor(h, c"t1".as_ptr(), &mut idx) as u32, 0);
        assert_eq!(idx, 1);
        assert_ne!(fa::wz_archive_find_tensor(h, c"nope".as_ptr(), &mut idx) as u32, 0);
        for (i, w) in want.iter().enumerate() {
            let mut info = std::mem::MaybeUninit::<fa::wz_tensor_info>::zeroed().assume_init();
            info.struct_size = std::mem::size_of::<fa::wz_tensor_info>() as u32;
            assert_eq!(fa::wz_archive_tensor_info(h, i, &mut info) as u32, 0);
            assert_eq!(info.original_size, w.len() as u64);
            let name = std::ffi::CStr::from_ptr(info.name);
            assert_eq!(name.to_bytes(), format!("t{i}").as_bytes());
            let mut dst = vec![0u8; w.len()];
            let s = fa::wz_archive_read_tensor(h, i, dst.as_mut_ptr().cast(), dst.len(), std::ptr::null());
            assert_eq!(s as u32, 0);
            assert!(dst == *w);
        }
        let mut dst = [0u8; 4];
        assert_ne!(fa::wz_archive_read_tensor(h, 7, dst.as_mut_ptr().cast(), 4, std::ptr::null()) as u32, 0);
        fa::wz_archive_close(h);
        fa::wz_archive_close(std::ptr::null_mut());
        // A damaged index: opening fails and leaves the handle NULL.
        let mut bad = a.clone();
        let n = bad.len();
        bad[n - 5] ^= 1;
        let mut h2: *mut fa::wz_archive = std::ptr::NonNull::dangling().as_ptr();
        assert_ne!(fa::wz_archive_open_memory(bad.as_ptr() as *const c_void, bad.len(), &mut h2) as u32, 0);
        assert!(h2.is_null());
    }
}
