//! The f16 and f32 frame kinds: every f16 bit pattern (NaNs, infinities, subnormals, both zeros)
//! and random data roundtrip at 1 and 2 threads and several chunk sizes with the same frame bytes
//! at every thread count; f32 special values, data widened from bf16, and the real F32 tensors of
//! both committed GGUF fixtures roundtrip exactly; the f32-split layout is the one docs/FORMAT.md
//! (6.2, 6.3) describes; odd lengths are refused; damaged f32 and f16 frames never decode to
//! `Ok` with other bytes, never panic, and never leave a partly written destination.
//!
//! Size assertions here are property checks (widened data must shrink far more than random data;
//! the codec must beat zstd -3 on real f32 weights in aggregate), not reported ratios.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null;
use std::sync::OnceLock;

use common::{data_path, raw_fixture, Lcg};
use half::f16;
use weightzip::codec::Method;
use weightzip::frame::{self, FrameReader, CHECK_LEN, CHUNK_ENTRY_LEN, DEFAULT_CHUNK_SIZE, HEADER_LEN, MIN_CHUNK_SIZE};
use weightzip::zstd;
use weightzip::{compress, compress_bound, decompress, decompress_into, gguf, read_info, Error, Kind, Options};
use xxhash_rust::xxh3::xxh3_64;

fn opts(threads: u32, chunk_size: u32) -> Options {
    Options { threads, chunk_size, progress: None, fast: false, row_len: 0 }
}

// Data -----------------------------------------------------------------------------------------

/// A standard normal sample (Box-Muller on two uniform draws).
fn gauss(r: &mut Lcg) -> f64 {
    let u1 = (r.next_u32() as f64 + 0.5) / 4294967296.0;
    let u2 = (r.next_u32() as f64 + 0.5) / 4294967296.0;
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` weight-like f32 values (normal, sd 0.02) as little-endian bytes.
fn weights_f32(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Lcg::new(seed);
    (0..n).flat_map(|_| ((gauss(&mut r) * 0.02) as f32).to_le_bytes()).collect()
}

/// `n` weight-like f16 values (normal, sd 0.05, rounded to nearest) as little-endian bytes.
fn weights_f16(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Lcg::new(seed);
    (0..n).flat_map(|_| f16::from_f64(gauss(&mut r) * 0.05).to_bits().to_le_bytes()).collect()
}

fn u16s_le(v: impl IntoIterator<Item = u16>) -> Vec<u8> {
    v.into_iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u32s_le(v: impl IntoIterator<Item = u32>) -> Vec<u8> {
    v.into_iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes the values of `insert` (whole elements of `es` bytes) over randomly chosen, distinct
/// element positions of `base`.
fn sprinkle(base: &mut [u8], insert: &[u8], es: usize, seed: u64) {
    let n = base.len() / es;
    let k = insert.len() / es;
    assert!(k <= n);
    let mut pos: Vec<usize> = (0..n).collect();
    Lcg::new(seed).shuffle(&mut pos);
    for (j, &p) in pos[..k].iter().enumerate() {
        base[p * es..(p + 1) * es].copy_from_slice(&insert[j * es..(j + 1) * es]);
    }
}

/// f32 bit patterns with a meaning of their own: zeros, subnormals, the normal range's ends,
/// infinities, quiet and signalling NaNs with various payloads and signs.
const F32_SPECIALS: [u32; 24] = [
    0x0000_0000, // +0
    0x8000_0000, // -0
    0x0000_0001, // smallest subnormal
    0x8000_0001,
    0x0000_8000, // subnormal whose high half is zero
    0x007F_FFFF, // largest subnormal
    0x807F_FFFF,
    0x0080_0000, // smallest normal
    0x7F7F_FFFF, // largest finite
    0xFF7F_FFFF,
    0x7F80_0000, // +inf
    0xFF80_0000, // -inf
    0x7FC0_0000, // canonical quiet NaN
    0xFFC0_0000,
    0x7F80_0001, // signalling NaN, payload only in the low half
    0x7FBF_FFFF, // signalling NaN, largest payload
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    0x7FC0_DEAD, // quiet NaN with a payload
    0xFFA5_A5A5,
    0x3F80_0000, // 1.0
    0xBF80_0000,
    0x3380_0000, // 2^-24
    0x0001_0000, // subnormal whose low half is zero
];

/// Every possible high half (a bf16 pattern, so every sign/exponent/top-mantissa combination,
/// NaNs and infinities included), each with a pseudo-random low half.
fn every_high_half() -> Vec<u8> {
    u32s_le((0..=u16::MAX as u32).map(|h| (h << 16) | (h.wrapping_mul(0x9E37) ^ 0x5A5A) & 0xFFFF))
}

// The roundtrip check --------------------------------------------------------------------------

/// Compresses `src` as `kind` at every chunk size in `chunks` and at 1 and 2 threads (the frames
/// must be identical), checks the header and the bound, and decodes every frame at 1 and 2
/// threads through `decompress`, `decompress_into` (dirty destination) and `FrameReader` (chunk
/// by chunk). Returns the frame made at each chunk size.
#[track_caller]
fn roundtrip(kind: Kind, src: &[u8], chunks: &[u32], label: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for &cs in chunks {
        let l = format!("{label} (chunk {cs})");
        let f = compress(kind, src, &opts(1, cs)).unwrap_or_else(|e| panic!("{l}: compress failed: {e:?}"));
        let f2 = compress(kind, src, &opts(2, cs)).unwrap_or_else(|e| panic!("{l}: compress (2 threads): {e:?}"));
        assert!(f == f2, "{l}: the frame depends on the thread count");
        assert!(f.len() <= compress_bound(src.len()).unwrap(), "{l}: frame exceeds compress_bound");
        let info = read_info(&f).unwrap_or_else(|e| panic!("{l}: read_info: {e:?}"));
        assert_eq!(info.kind, kind, "{l}");
        assert_eq!(info.original_size, src.len() as u64, "{l}");
        assert_eq!(info.frame_size, f.len() as u64, "{l}");
        let want_cs = if cs == 0 { DEFAULT_CHUNK_SIZE } else { cs };
        assert_eq!(info.chunk_size, want_cs, "{l}");
        // Frames under 64 KiB may take the generic path at zstd -19 when it is smaller.
        let allowed = match kind {
            Kind::F16 => [Method::Stored, Method::Bf16Hist, Method::Grouped],
            Kind::F32 => [Method::Stored, Method::F32Split, Method::Grouped],
            _ => unreachable!(),
        };
        assert!(allowed.contains(&info.method), "{l}: method {:?}", info.method);
        for threads in [1, 2] {
            let d = opts(threads, 0);
            let back = decompress(&f, &d).unwrap_or_else(|e| panic!("{l}: decompress ({threads} threads): {e:?}"));
            assert!(back == src, "{l}: decompress ({threads} threads) gave other bytes");
            let mut dst = vec![0xA5u8; src.len()];
            decompress_into(&f, &mut dst, &d).unwrap_or_else(|e| panic!("{l}: decompress_into: {e:?}"));
            assert!(dst == src, "{l}: decompress_into ({threads} threads) gave other bytes");
        }
        // Every chunk alone, as a loader restoring a window at a time would.
        let r = FrameReader::new(&f).unwrap();
        let csz = info.chunk_size as usize;
        for (i, want) in src.chunks(csz.max(1)).enumerate() {
            let mut dst = vec![0x5Au8; want.len()];
            r.decode_range((i * csz) as u64, &mut dst, &opts(1, 0))
                .unwrap_or_else(|e| panic!("{l}: decode_range of chunk {i}: {e:?}"));
            assert!(dst == want, "{l}: chunk {i} decoded alone differs");
        }
        out.push(f);
    }
    out
}

const F16_CHUNKS: [u32; 4] = [MIN_CHUNK_SIZE, MIN_CHUNK_SIZE + 2, 3 * MIN_CHUNK_SIZE + 6, 0];
const F32_CHUNKS: [u32; 4] = [MIN_CHUNK_SIZE, MIN_CHUNK_SIZE + 4, 3 * MIN_CHUNK_SIZE + 12, 0];

// f16 ------------------------------------------------------------------------------------------

#[test]
fn f16_every_bit_pattern_in_order_and_shuffled() {
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let in_order = u16s_le(all.iter().copied());
    assert_eq!(in_order.len(), 131_072);
    roundtrip(Kind::F16, &in_order, &F16_CHUNKS, "f16: every pattern in order");
    let mut shuffled = all.clone();
    Lcg::new(16).shuffle(&mut shuffled);
    roundtrip(Kind::F16, &u16s_le(shuffled), &F16_CHUNKS, "f16: every pattern shuffled");
    // Every pattern twice over, each value repeated: runs a model can exploit.
    let doubled = u16s_le(all.iter().flat_map(|&v| [v, v]));
    roundtrip(Kind::F16, &doubled, &F16_CHUNKS, "f16: every pattern, doubled");
}

#[test]
fn f16_every_bit_pattern_among_weights_takes_the_coded_path() {
    // Weight-like values with all 65536 patterns (NaNs, infinities, subnormals, -0) scattered
    // among them: the frame is coded (method 1), and the rare symbols must survive it.
    let mut src = weights_f16(600_000, 1);
    sprinkle(&mut src, &u16s_le(0..=u16::MAX), 2, 2);
    let frames = roundtrip(Kind::F16, &src, &F16_CHUNKS, "f16: weights + every pattern");
    for f in &frames {
        assert_eq!(read_info(f).unwrap().method, Method::Bf16Hist);
        assert!(f.len() < src.len(), "f16 weights must shrink: {} -> {}", src.len(), f.len());
    }
    // Only the special classes, scattered: NaNs of both signs, infinities, subnormals, zeros.
    let classes: Vec<u16> = (0..=u16::MAX).filter(|v| v & 0x7C00 == 0x7C00 || v & 0x7C00 == 0).collect();
    assert_eq!(classes.len(), 4096);
    let mut src = weights_f16(300_001, 3);
    for rep in 0..8u64 {
        sprinkle(&mut src, &u16s_le(classes.iter().copied()), 2, 10 + rep);
    }
    roundtrip(Kind::F16, &src, &F16_CHUNKS, "f16: weights + NaN/inf/subnormal classes");
}

#[test]
fn f16_random_and_edge_sized_inputs() {
    let mut r = Lcg::new(7);
    for n in [0usize, 2, 4, 6, 126, 65_534, 65_536, 65_538, 200_002, 1_000_002] {
        let random = r.bytes(n);
        roundtrip(Kind::F16, &random, &[MIN_CHUNK_SIZE, 0], &format!("f16: {n} random bytes"));
    }
    // Weight-like data of a length that is no multiple of any chunk size.
    let w = weights_f16(500_001, 8);
    let frames = roundtrip(Kind::F16, &w, &F16_CHUNKS, "f16: weights");
    assert!(frames.iter().all(|f| read_info(f).unwrap().method == Method::Bf16Hist));
    // Constant data (one symbol, an extreme model) and all-NaN data.
    for (what, v) in [("zeros", 0u16), ("ones", 0x3C00), ("-inf", 0xFC00), ("NaN", 0x7E01), ("-0", 0x8000)] {
        roundtrip(Kind::F16, &u16s_le(std::iter::repeat_n(v, 200_000)), &[MIN_CHUNK_SIZE, 0], &format!("f16: {what}"));
    }
}

#[test]
fn f16_frames_differ_from_bf16_frames_only_in_kind() {
    // docs/FORMAT.md 6.3: f16 is coded by method 1 with the same bit split, "nothing else differs".
    for (what, src) in [("weights", weights_f16(300_000, 21)), ("random", Lcg::new(22).bytes(200_000))] {
        let a = compress(Kind::F16, &src, &opts(2, MIN_CHUNK_SIZE)).unwrap();
        let b = compress(Kind::Bf16, &src, &opts(2, MIN_CHUNK_SIZE)).unwrap();
        assert_eq!(a.len(), b.len(), "{what}");
        assert_eq!(a[6], Kind::F16.id() as u8, "{what}: kind byte");
        assert_eq!(b[6], Kind::Bf16.id() as u8, "{what}: kind byte");
        let differ: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        assert!(differ.iter().all(|&i| i == 6 || (40..48).contains(&i)), "{what}: frames differ at {differ:?}");
    }
}

// f32 ------------------------------------------------------------------------------------------

#[test]
fn f32_random_and_edge_sized_inputs() {
    let mut r = Lcg::new(30);
    for n in [0usize, 4, 8, 12, 124, 65_532, 65_536, 65_540, 200_004, 1_000_004] {
        roundtrip(Kind::F32, &r.bytes(n), &[MIN_CHUNK_SIZE, 0], &format!("f32: {n} random bytes"));
    }
    let w = weights_f32(250_001, 31);
    let frames = roundtrip(Kind::F32, &w, &F32_CHUNKS, "f32: weights");
    for f in &frames {
        assert_eq!(read_info(f).unwrap().method, Method::F32Split);
        assert!(f.len() < w.len(), "f32 weights must shrink");
    }
    for (what, v) in [("zeros", 0u32), ("ones", 0x3F80_0000), ("NaN", 0x7FC0_0001), ("-0", 0x8000_0000)] {
        let src = u32s_le(std::iter::repeat_n(v, 100_000));
        roundtrip(Kind::F32, &src, &[MIN_CHUNK_SIZE, 0], &format!("f32: constant {what}"));
    }
}

#[test]
fn f32_special_values() {
    // Alone, cycled: a frame of nothing but specials.
    let cycled = u32s_le(F32_SPECIALS.iter().copied().cycle().take(100_000));
    roundtrip(Kind::F32, &cycled, &F32_CHUNKS, "f32: specials cycled");
    // Scattered among weights (so the frame is coded and the specials are rare symbols).
    let mut src = weights_f32(300_000, 40);
    let many = u32s_le(F32_SPECIALS.iter().copied().cycle().take(F32_SPECIALS.len() * 50));
    sprinkle(&mut src, &many, 4, 41);
    let frames = roundtrip(Kind::F32, &src, &F32_CHUNKS, "f32: weights + specials");
    assert!(frames.iter().all(|f| read_info(f).unwrap().method == Method::F32Split));
    // Every high half (every NaN payload class, every exponent, both signs), alone and scattered.
    let every = every_high_half();
    roundtrip(Kind::F32, &every, &F32_CHUNKS, "f32: every high half");
    let mut src = weights_f32(400_000, 42);
    sprinkle(&mut src, &every, 4, 43);
    let frames = roundtrip(Kind::F32, &src, &F32_CHUNKS, "f32: weights + every high half");
    assert!(frames.iter().all(|f| read_info(f).unwrap().method == Method::F32Split));
    // Values are never canonicalised: NaN payloads and -0.0 come back bit for bit.
    let back = decompress(&frames[0], &opts(1, 0)).unwrap();
    for (i, w) in src.chunks_exact(4).enumerate() {
        assert_eq!(back[4 * i..4 * i + 4], *w, "value {i}");
    }
}

/// The first 1 MiB of the real bf16 fixture (524,288 values) widened to f32: low halves zero.
fn widened_from_bf16() -> Vec<u8> {
    raw_fixture()[..1 << 20].chunks_exact(2).flat_map(|h| [0, 0, h[0], h[1]]).collect()
}

#[test]
fn f32_widened_from_bf16_compresses_far_better_than_random() {
    let wide = widened_from_bf16();
    let frames = roundtrip(Kind::F32, &wide, &[MIN_CHUNK_SIZE, 0], "f32 widened from bf16");
    for f in &frames {
        assert_eq!(read_info(f).unwrap().method, Method::F32Split);
        // The high halves are real bf16 weights and the low halves nothing: well under 60%.
        assert!(
            (f.len() as f64) < 0.6 * wide.len() as f64,
            "widened bf16: frame of {} bytes for {} bytes of input",
            f.len(),
            wide.len()
        );
    }
    // The same high halves with random low halves must cost far more: the low halves are where
    // the gain comes from.
    let mut r = Lcg::new(50);
    let mut noisy = wide.clone();
    for v in noisy.chunks_exact_mut(4) {
        v[..2].copy_from_slice(&r.bytes(2));
    }
    let fw = compress(Kind::F32, &wide, &opts(2, 0)).unwrap();
    let fr = compress(Kind::F32, &noisy, &opts(2, 0)).unwrap();
    assert_eq!(decompress(&fr, &opts(2, 0)).unwrap(), noisy);
    assert!(
        (fw.len() as f64) < 0.7 * fr.len() as f64,
        "zero low halves ({} bytes) should code far smaller than random ones ({} bytes)",
        fw.len(),
        fr.len()
    );
    // Random f32 bytes do not shrink at all (the frame is stored).
    let random = Lcg::new(51).bytes(wide.len());
    let f = compress(Kind::F32, &random, &opts(2, 0)).unwrap();
    assert!(f.len() >= random.len(), "random bytes cannot shrink");
    assert_eq!(read_info(&f).unwrap().method, Method::Stored);
}

/// Every F32 tensor (ggml type 0) of both committed GGUF fixtures.
fn gguf_f32_tensors() -> &'static [(String, Vec<u8>)] {
    static T: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    T.get_or_init(|| {
        let mut v = Vec::new();
        for name in ["minilm-l6-q4_k_m.gguf", "qwen25coder15b-q4km-mini.gguf"] {
            let file = std::fs::read(data_path(name)).expect("read GGUF fixture");
            let mut n = 0;
            for t in gguf::read_tensors(&file).expect("fixture parses").iter().filter(|t| t.ggml_type == 0) {
                let len = t.len.expect("F32 has a known size");
                v.push((format!("{name}: {}", t.name), file[t.offset as usize..(t.offset + len) as usize].to_vec()));
                n += 1;
            }
            assert!(n > 0, "{name} holds F32 tensors");
        }
        v
    })
}

#[test]
fn f32_real_gguf_tensors_roundtrip_and_beat_zstd_3() {
    let tensors = gguf_f32_tensors();
    assert!(tensors.len() >= 60, "{} F32 tensors", tensors.len());
    let (mut orig, mut ours, mut theirs) = (0usize, 0usize, 0usize);
    for (name, data) in tensors {
        assert_eq!(data.len() % 4, 0, "{name}");
        let chunks: &[u32] = if data.len() > 2 * MIN_CHUNK_SIZE as usize { &[MIN_CHUNK_SIZE, 0] } else { &[0] };
        let frames = roundtrip(Kind::F32, data, chunks, name);
        let f = frames.last().unwrap();
        orig += data.len();
        ours += f.len();
        theirs += zstd::compress(data, 3, 1).unwrap().len();
        if data.len() >= 1 << 16 {
            assert_eq!(read_info(f).unwrap().method, Method::F32Split, "{name}: a large real tensor is coded");
        }
    }
    assert!(
        ours < theirs,
        "f32 frames ({ours} bytes) must beat zstd -3 ({theirs} bytes) on the {} real F32 tensors ({orig} bytes)",
        tensors.len()
    );
    // All of them as one stream: several chunks of real data.
    let all: Vec<u8> = tensors.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    roundtrip(Kind::F32, &all, &F32_CHUNKS, "f32: every real tensor concatenated");
}

#[test]
fn f32_split_layout_is_the_documented_one() {
    // docs/FORMAT.md 6.2: the model section is method 1's; a coded chunk is u32 L, then L bytes
    // coding the high halves exactly as a method-1 chunk would, then a zstd frame of the low
    // halves grouped (byte 0 of every value, then byte 1). With f32 chunks of 128 KiB, the high
    // halves form 64 KiB chunks: a bf16 frame of them has the same chunks and the same models.
    let src = weights_f32(4 * 32_768 + 1000, 60);
    let hi: Vec<u8> = src.chunks_exact(4).flat_map(|v| [v[2], v[3]]).collect();
    let ff = compress(Kind::F32, &src, &opts(2, 2 * MIN_CHUNK_SIZE)).unwrap();
    let fb = compress(Kind::Bf16, &hi, &opts(2, MIN_CHUNK_SIZE)).unwrap();
    let (i32, ib) = (read_info(&ff).unwrap(), read_info(&fb).unwrap());
    assert_eq!((i32.method, ib.method), (Method::F32Split, Method::Bf16Hist));
    assert_eq!(i32.chunk_count, ib.chunk_count);
    let (m32, mb) = (i32.model_size as usize, ib.model_size as usize);
    assert_eq!(ff[HEADER_LEN..HEADER_LEN + m32], fb[HEADER_LEN..HEADER_LEN + mb], "model sections differ");
    let n = i32.chunk_count as usize;
    let (mut p32, mut pb) =
        (HEADER_LEN + m32 + CHUNK_ENTRY_LEN * n + CHECK_LEN, HEADER_LEN + mb + CHUNK_ENTRY_LEN * n + CHECK_LEN);
    for i in 0..n {
        let e32 = &ff[HEADER_LEN + m32 + CHUNK_ENTRY_LEN * i..][..CHUNK_ENTRY_LEN];
        let eb = &fb[HEADER_LEN + mb + CHUNK_ENTRY_LEN * i..][..CHUNK_ENTRY_LEN];
        let s32 = u32::from_le_bytes(e32[..4].try_into().unwrap()) as usize;
        let sb = u32::from_le_bytes(eb[..4].try_into().unwrap()) as usize;
        assert_eq!((e32[4], eb[4]), (1, 1), "chunk {i}: both coded");
        assert_eq!(e32[5], eb[5], "chunk {i}: same model");
        let raw = &src[i * 2 * MIN_CHUNK_SIZE as usize..]
            [..(src.len() - i * 2 * MIN_CHUNK_SIZE as usize).min(2 * MIN_CHUNK_SIZE as usize)];
        assert_eq!(e32[8..16], xxh3_64(raw).to_le_bytes(), "chunk {i}: checksum of the original bytes");
        let c = &ff[p32..p32 + s32];
        let l = u32::from_le_bytes(c[..4].try_into().unwrap()) as usize;
        assert_eq!(&c[4..4 + l], &fb[pb..pb + sb], "chunk {i}: high halves coded as method 1 codes them");
        let vals = raw.len() / 4;
        let want_lo: Vec<u8> = (0..2).flat_map(|b| raw.chunks_exact(4).map(move |v| v[b])).collect();
        let mut lo = vec![0u8; 2 * vals];
        zstd::decompress_into(&c[4 + l..], &mut lo).expect("the rest is one zstd frame of the low halves");
        assert_eq!(lo, want_lo, "chunk {i}: low halves grouped");
        p32 += s32;
        pb += sb;
    }
    assert_eq!((p32, pb), (ff.len(), fb.len()));
}

// Lengths and options --------------------------------------------------------------------------

#[test]
fn odd_lengths_are_bad_length() {
    let mut r = Lcg::new(70);
    for n in [1usize, 3, 5, 65_537, 200_001] {
        assert_eq!(compress(Kind::F16, &r.bytes(n), &opts(1, 0)), Err(Error::BadLength), "f16, {n} bytes");
    }
    for n in [1usize, 2, 3, 5, 6, 7, 65_538, 200_002, 200_003] {
        assert_eq!(compress(Kind::F32, &r.bytes(n), &opts(1, 0)), Err(Error::BadLength), "f32, {n} bytes");
    }
    // A chunk size that is not a whole number of elements, or out of range.
    let w = weights_f32(100_000, 71);
    for cs in [MIN_CHUNK_SIZE + 2, MIN_CHUNK_SIZE + 1, MIN_CHUNK_SIZE - 4] {
        assert_eq!(compress(Kind::F32, &w, &opts(1, cs)), Err(Error::InvalidArgument), "f32, chunk {cs}");
    }
    assert_eq!(compress(Kind::F16, &w, &opts(1, MIN_CHUNK_SIZE + 1)), Err(Error::InvalidArgument));
}

#[test]
fn decoding_needs_the_exact_destination_size() {
    let src = weights_f32(50_000, 72);
    let f = compress(Kind::F32, &src, &opts(1, 0)).unwrap();
    let mut small = vec![0u8; src.len() - 4];
    assert_eq!(decompress_into(&f, &mut small, &opts(1, 0)), Err(Error::DstTooSmall));
    let mut big = vec![0u8; src.len() + 4];
    assert_eq!(decompress_into(&f, &mut big, &opts(1, 0)), Err(Error::DstSizeMismatch));
}

// Corruption -----------------------------------------------------------------------------------

struct Damaged {
    src: Vec<u8>,
    frame: Vec<u8>,
    /// Payload extent of every chunk, and whether it is coded.
    chunks: Vec<(usize, usize, bool)>,
    payload_start: usize,
}

/// 64 KiB of `kind` values that no model can shrink: every 12-bit symbol (bits 14..3 of a 16-bit
/// half) equally often, with random sign, low bits and (f32) low halves. Plain random bytes are
/// not enough: a model fitted to one chunk gains from the sample's own unevenness (its table is
/// paid for in the model section, not in the chunk).
fn incompressible_chunk(kind: Kind, seed: u64) -> Vec<u8> {
    let mut r = Lcg::new(seed);
    let per = match kind {
        Kind::F32 => MIN_CHUNK_SIZE as usize / 4 / 4096,
        _ => MIN_CHUNK_SIZE as usize / 2 / 4096,
    };
    let mut halves: Vec<u16> = (0..4096u16)
        .flat_map(|s| std::iter::repeat_n(s << 3, per))
        .map(|h| h | (r.next_u32() as u16 & 0x8007))
        .collect();
    r.shuffle(&mut halves);
    match kind {
        Kind::F32 => u32s_le(halves.iter().map(|&h| ((h as u32) << 16) | (r.next_u32() & 0xFFFF))),
        _ => u16s_le(halves),
    }
}

/// A frame of `kind` with coded chunks and one raw chunk (the third).
fn damage_fixture(kind: Kind) -> Damaged {
    let cs = MIN_CHUNK_SIZE as usize;
    let mut src = match kind {
        Kind::F32 => weights_f32(6 * cs / 4 + 1000, 80),
        _ => weights_f16(6 * cs / 2 + 1000, 81),
    };
    src[2 * cs..3 * cs].copy_from_slice(&incompressible_chunk(kind, 82));
    let frame = compress(kind, &src, &opts(2, MIN_CHUNK_SIZE)).unwrap();
    let info = read_info(&frame).unwrap();
    let table = HEADER_LEN + info.model_size as usize;
    let payload_start = table + CHUNK_ENTRY_LEN * info.chunk_count as usize + CHECK_LEN;
    let mut chunks = Vec::new();
    let mut at = payload_start;
    for i in 0..info.chunk_count as usize {
        let e = &frame[table + CHUNK_ENTRY_LEN * i..];
        let size = u32::from_le_bytes(e[..4].try_into().unwrap()) as usize;
        chunks.push((at, size, e[4] == 1));
        at += size;
    }
    assert_eq!(at, frame.len());
    assert_eq!(chunks.iter().map(|c| c.2).collect::<Vec<_>>(), [true, true, false, true, true, true, true]);
    Damaged { src, frame, chunks, payload_start }
}

fn damaged(kind: Kind) -> &'static Damaged {
    static F32: OnceLock<Damaged> = OnceLock::new();
    static F16: OnceLock<Damaged> = OnceLock::new();
    match kind {
        Kind::F32 => F32.get_or_init(|| damage_fixture(Kind::F32)),
        _ => F16.get_or_init(|| damage_fixture(Kind::F16)),
    }
}

/// Decodes `bad` every way: a panic, or `Ok` with bytes other than `src`, or a destination left
/// partly written, is a failure (returned as a message). Returns the error, or None for `Ok`
/// with the original bytes.
fn decode_all_ways(src: &[u8], bad: &[u8]) -> Result<Option<Error>, String> {
    let mut seen = None;
    for threads in [1, 2] {
        let o = opts(threads, 0);
        let r =
            catch_unwind(AssertUnwindSafe(|| decompress(bad, &o))).map_err(|_| "decompress panicked".to_string())?;
        match r {
            Ok(v) if v != src => return Err(format!("decompress ({threads} threads) gave Ok with other bytes")),
            Ok(_) => {}
            Err(e) => seen = Some(e),
        }
        let n = read_info(bad).map_or(src.len(), |i| i.original_size as usize);
        if n > 64 << 20 {
            continue;
        }
        let mut dst = vec![0xA5u8; n];
        let r = catch_unwind(AssertUnwindSafe(|| decompress_into(bad, &mut dst, &o)))
            .map_err(|_| "decompress_into panicked".to_string())?;
        match r {
            Ok(()) if dst != src => {
                return Err(format!("decompress_into ({threads} threads) gave Ok with other bytes"))
            }
            Ok(()) => {}
            Err(e) => {
                if !(dst.iter().all(|&b| b == 0xA5) || dst.iter().all(|&b| b == 0)) {
                    return Err(format!(
                        "decompress_into ({threads} threads) failed with {e:?} leaving partial output"
                    ));
                }
                seen = Some(e);
            }
        }
    }
    Ok(seen)
}

#[track_caller]
fn expect_error(kind: Kind, bad: &[u8], case: &str) -> Error {
    let d = damaged(kind);
    match decode_all_ways(&d.src, bad) {
        Err(msg) => panic!("{kind:?}: {case}: {msg}"),
        Ok(None) => panic!("{kind:?}: {case}: decoded to the original bytes without an error"),
        Ok(Some(e)) => e,
    }
}

#[test]
fn payload_bit_flips_never_give_other_bytes() {
    for kind in [Kind::F32, Kind::F16] {
        let d = damaged(kind);
        let mut r = Lcg::new(90);
        let (mut detected, mut total) = (0, 0);
        for (ci, &(start, size, coded)) in d.chunks.iter().enumerate() {
            // The first and last 8 bytes of every chunk, and 12 random positions in it.
            let mut at: Vec<usize> = (0..8.min(size)).chain(size.saturating_sub(8)..size).collect();
            at.extend((0..12).map(|_| r.below_usize(size)));
            for p in at {
                let mut bad = d.frame.clone();
                let bit = 1u8 << r.below(8);
                bad[start + p] ^= bit;
                let case = format!("chunk {ci} ({}) byte {p} bit {bit:#x}", if coded { "coded" } else { "raw" });
                match decode_all_ways(&d.src, &bad) {
                    Err(msg) => panic!("{kind:?}: {case}: {msg}"),
                    Ok(Some(e)) => {
                        assert_eq!(e, Error::CorruptData, "{kind:?}: {case}");
                        detected += 1;
                    }
                    Ok(None) => assert!(coded, "{kind:?}: {case}: a flipped raw byte decoded to the original"),
                }
                total += 1;
            }
        }
        // A flip can land on a bit no decoder reads (zstd block padding); nearly all must be caught.
        assert!(detected * 100 >= total * 95, "{kind:?}: only {detected} of {total} flips detected");
    }
}

#[test]
fn header_model_and_table_flips_are_caught_by_their_checksums() {
    for kind in [Kind::F32, Kind::F16] {
        let d = damaged(kind);
        let mut r = Lcg::new(91);
        let mut bad = d.frame.clone();
        // Every header and chunk-table byte; every 5th byte of the model section.
        let model = HEADER_LEN..d.payload_start - CHECK_LEN - CHUNK_ENTRY_LEN * d.chunks.len();
        for p in (0..d.payload_start).filter(|p| !model.contains(p) || p % 5 == 0) {
            let bit = 1u8 << r.below(8);
            bad[p] ^= bit;
            let e = expect_error(kind, &bad, &format!("flip at byte {p}"));
            bad[p] ^= bit;
            let want = if p < 4 { Error::BadMagic } else { Error::CorruptHeader };
            assert_eq!(e, want, "{kind:?}: flip at byte {p}");
        }
        assert!(bad == d.frame);
    }
}

#[test]
fn truncations_are_errors() {
    for kind in [Kind::F32, Kind::F16] {
        let d = damaged(kind);
        let mut cuts: Vec<usize> = (0..HEADER_LEN + 16).collect();
        cuts.extend((HEADER_LEN + 16..d.payload_start + 40).step_by(13));
        cuts.extend((d.payload_start + 40..d.frame.len()).step_by(4999));
        cuts.extend(d.chunks.iter().flat_map(|c| [c.0, c.0 + 1, c.0 + c.1 - 1]));
        cuts.push(d.frame.len() - 1);
        for cut in cuts {
            // Even the cuts inside the magic are prefixes of it: truncated, not another format.
            assert_eq!(expect_error(kind, &d.frame[..cut], &format!("cut at {cut}")), Error::Truncated, "{kind:?}");
        }
        // One byte too many.
        let mut long = d.frame.clone();
        long.push(0);
        assert_eq!(expect_error(kind, &long, "trailing byte"), Error::TrailingData, "{kind:?}");
    }
}

/// Rewrites the payload of chunk `i` of a frame to `payload` and fixes the stored size, the
/// payload size, and both checksums (so only the payload's content is wrong).
fn with_payload(d: &Damaged, i: usize, payload: &[u8]) -> Vec<u8> {
    let info = read_info(&d.frame).unwrap();
    let table = HEADER_LEN + info.model_size as usize;
    let mut f = d.frame[..d.payload_start].to_vec();
    let e = table + CHUNK_ENTRY_LEN * i;
    f[e..e + 4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    let old = d.chunks[i].1 as i64;
    let ps = u64::from_le_bytes(f[32..40].try_into().unwrap()) as i64 - old + payload.len() as i64;
    f[32..40].copy_from_slice(&(ps as u64).to_le_bytes());
    let hc = xxh3_64(&f[..40]);
    f[40..48].copy_from_slice(&hc.to_le_bytes());
    let tend = table + CHUNK_ENTRY_LEN * info.chunk_count as usize;
    let tc = xxh3_64(&f[HEADER_LEN..tend]);
    f[tend..tend + 8].copy_from_slice(&tc.to_le_bytes());
    for (j, c) in d.chunks.iter().enumerate() {
        f.extend_from_slice(if j == i { payload } else { &d.frame[c.0..c.0 + c.1] });
    }
    f
}

#[test]
fn crafted_f32_split_chunks_are_corrupt_data() {
    let d = damaged(Kind::F32);
    let (start, size, coded) = d.chunks[1];
    assert!(coded);
    let good = &d.frame[start..start + size];
    let l = u32::from_le_bytes(good[..4].try_into().unwrap()) as usize;
    let (hi, lo) = (&good[4..4 + l], &good[4 + l..]);
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for bad_l in [0u32, 1, l as u32 - 1, l as u32 + 1, (size - 4) as u32, (size - 3) as u32, u32::MAX, u32::MAX - 3] {
        let mut c = good.to_vec();
        c[..4].copy_from_slice(&bad_l.to_le_bytes());
        cases.push((format!("L = {bad_l}"), c));
    }
    let cat = |parts: &[&[u8]]| parts.concat();
    let lbytes = (l as u32).to_le_bytes();
    // The low halves' zstd frame: missing, cut, of too few or too many bytes, not zstd at all.
    let lo_len = 2 * (MIN_CHUNK_SIZE as usize / 4);
    let short = zstd::compress(&vec![0u8; lo_len - 2], 3, 1).unwrap();
    let long = zstd::compress(&vec![0u8; lo_len + 2], 3, 1).unwrap();
    let zeros = zstd::compress(&vec![0u8; lo_len], 3, 1).unwrap();
    cases.push(("no low halves".into(), cat(&[&lbytes, hi])));
    cases.push(("low halves cut".into(), cat(&[&lbytes, hi, &lo[..lo.len() / 2]])));
    cases.push(("low halves one byte short".into(), cat(&[&lbytes, hi, &lo[..lo.len() - 1]])));
    cases.push(("low halves plus a byte".into(), cat(&[&lbytes, hi, lo, &[0]])));
    cases.push(("low halves too few".into(), cat(&[&lbytes, hi, &short])));
    cases.push(("low halves too many".into(), cat(&[&lbytes, hi, &long])));
    cases.push(("low halves other bytes of the right size".into(), cat(&[&lbytes, hi, &zeros])));
    cases.push(("low halves are not zstd".into(), cat(&[&lbytes, hi, &vec![0x55; lo.len()]])));
    cases.push(("two zstd frames".into(), cat(&[&lbytes, hi, &zeros, &zeros])));
    // The high halves: cut, padded, another chunk's.
    let (s0, z0, _) = d.chunks[0];
    let other = &d.frame[s0..s0 + z0];
    let lo_other = u32::from_le_bytes(other[..4].try_into().unwrap()) as usize;
    cases.push(("high halves of another chunk".into(), cat(&[&other[..4 + lo_other], lo])));
    cases.push(("high halves cut".into(), cat(&[&((l / 2) as u32).to_le_bytes(), &hi[..l / 2], lo])));
    cases.push(("only the length".into(), lbytes.to_vec()));
    cases.push(("the whole chunk of another chunk".into(), other.to_vec()));
    // At least the length, the raw nibbles of 16,384 values, rANS states and a zstd header: a
    // payload shorter than that is refused with the table (CORRUPT_HEADER), as the frame's
    // `min_coded_len` allows; this bound is a little above the true minimum.
    let min = 4 + 8192 + 64 + 9;
    for (case, payload) in cases {
        let bad = with_payload(d, 1, &payload);
        let e = expect_error(Kind::F32, &bad, &case);
        let want = if payload.len() < min {
            [Error::CorruptHeader, Error::CorruptData]
        } else {
            [Error::CorruptData, Error::CorruptData]
        };
        assert!(want.contains(&e), "f32: {case}: {e:?}");
    }
    // The unchanged payload through the same rewriting decodes: the rewriting itself is sound.
    let same = with_payload(d, 1, good);
    assert!(same == d.frame);
}

#[test]
fn wrong_kind_or_method_with_valid_checksums() {
    let reseal = |f: &mut Vec<u8>| {
        let hc = xxh3_64(&f[..40]);
        f[40..48].copy_from_slice(&hc.to_le_bytes());
    };
    let d32 = damaged(Kind::F32);
    let d16 = damaged(Kind::F16);
    // An f32-split frame claiming kind f16 or bf16, or method 1; an f16 frame claiming method 5.
    for (case, base, at, v) in [
        ("f32 frame as f16", &d32.frame, 6, Kind::F16.id() as u8),
        ("f32 frame as bf16", &d32.frame, 6, Kind::Bf16.id() as u8),
        ("f32 frame with method 1", &d32.frame, 7, Method::Bf16Hist as u8),
        ("f16 frame with method 5", &d16.frame, 7, Method::F32Split as u8),
        ("f16 frame as f32", &d16.frame, 6, Kind::F32.id() as u8),
    ] {
        let mut f = base.clone();
        f[at] = v;
        reseal(&mut f);
        let src = if std::ptr::eq(base, &d32.frame) { &d32.src } else { &d16.src };
        match decode_all_ways(src, &f) {
            Err(msg) => panic!("{case}: {msg}"),
            Ok(Some(e)) => assert_eq!(e, Error::CorruptHeader, "{case}"),
            Ok(None) => panic!("{case}: decoded without an error"),
        }
    }
    // An f16 frame relabelled bf16 is a valid bf16 frame of the same bytes (section 6.3).
    let mut f = d16.frame.clone();
    f[6] = Kind::Bf16.id() as u8;
    reseal(&mut f);
    assert_eq!(decompress(&f, &opts(2, 0)).unwrap(), d16.src);
}

#[test]
fn fuzz_mutations_of_f32_and_f16_frames() {
    // Random damage (flips, overwrites, cuts, inserted and deleted runs) anywhere: never a panic,
    // never Ok with other bytes, never a partly written destination.
    let mut r = Lcg::new(99);
    for kind in [Kind::F32, Kind::F16] {
        let d = damaged(kind);
        for it in 0..250 {
            let mut bad = d.frame.clone();
            let what = r.below(5);
            let at = if r.below(2) == 0 { r.below_usize(d.payload_start) } else { r.below_usize(bad.len()) };
            match what {
                0 => bad[at] ^= 1 << r.below(8),
                1 => {
                    let n = 1 + r.below_usize(16).min(bad.len() - at - 1);
                    let junk = r.bytes(n);
                    bad[at..at + n].copy_from_slice(&junk);
                }
                2 => bad.truncate(at),
                3 => {
                    let n = 1 + r.below_usize(8);
                    let junk = r.bytes(n);
                    bad.splice(at..at, junk);
                }
                _ => {
                    let n = (1 + r.below_usize(8)).min(bad.len() - at);
                    bad.drain(at..at + n);
                }
            }
            if let Err(msg) = decode_all_ways(&d.src, &bad) {
                panic!("{kind:?}: mutation {it} (type {what} at {at}): {msg}");
            }
        }
    }
}

#[test]
fn frame_reader_reports_damage_in_its_window_only() {
    // A flipped byte in chunk k fails the windows that hold chunk k and no others.
    for kind in [Kind::F32, Kind::F16] {
        let d = damaged(kind);
        let cs = MIN_CHUNK_SIZE as usize;
        for (k, &(start, size, _)) in d.chunks.iter().enumerate() {
            let mut bad = d.frame.clone();
            bad[start + size / 2] ^= 0x10;
            let r = FrameReader::new(&bad).unwrap();
            for (i, want) in d.src.chunks(cs).enumerate() {
                let mut dst = vec![0xA5u8; want.len()];
                let got = r.decode_range((i * cs) as u64, &mut dst, &opts(1, 0));
                if i == k {
                    assert_eq!(got, Err(Error::CorruptData), "{kind:?}: chunk {k} damaged, reading it");
                    assert!(dst.iter().all(|&b| b == 0), "{kind:?}: chunk {k}: destination not zero-filled");
                } else {
                    assert_eq!(got, Ok(()), "{kind:?}: chunk {k} damaged, reading chunk {i}");
                    assert!(dst == want, "{kind:?}: chunk {i} differs");
                }
            }
        }
    }
}

#[test]
fn frames_are_the_same_at_every_thread_count_for_large_inputs() {
    // Many chunks (more than threads), mixed coded and raw: 1, 2 and all threads agree.
    let mut src32 = weights_f32(600_000, 100);
    src32[5 * 65_536..6 * 65_536].copy_from_slice(&incompressible_chunk(Kind::F32, 101));
    let mut src16 = weights_f16(1_200_000, 102);
    src16[7 * 65_536..8 * 65_536].copy_from_slice(&incompressible_chunk(Kind::F16, 103));
    for (kind, src) in [(Kind::F32, &src32), (Kind::F16, &src16)] {
        let frames: Vec<Vec<u8>> =
            [1, 2, 0, 3].iter().map(|&t| compress(kind, src, &opts(t, MIN_CHUNK_SIZE)).unwrap()).collect();
        assert!(frames.windows(2).all(|w| w[0] == w[1]), "{kind:?}: frames depend on the thread count");
        assert_eq!(&decompress(&frames[0], &opts(0, 0)).unwrap(), src);
        let f = frame::read_info(&frames[0]).unwrap();
        assert!(f.chunk_count >= 30, "{kind:?}: {} chunks", f.chunk_count);
    }
}

// Every decode kernel --------------------------------------------------------------------------

const KERNEL_TESTS: [&str; 6] = [
    "vector_encoder_writes_the_scalar_encoders_bytes",
    "f16_every_bit_pattern_in_order_and_shuffled",
    "f16_every_bit_pattern_among_weights_takes_the_coded_path",
    "f32_special_values",
    "f32_real_gguf_tensors_roundtrip_and_beat_zstd_3",
    "frame_reader_reports_damage_in_its_window_only",
];

#[test]
fn scalar_kernel_decodes_the_same() {
    if std::env::var_os("WZ_SIMD").is_some() {
        return; // already a child run
    }
    common::rerun_with_kernel("scalar", &KERNEL_TESTS);
}

#[test]
fn avx2_kernel_decodes_the_same() {
    if std::env::var_os("WZ_SIMD").is_some() {
        return;
    }
    common::rerun_with_kernel("avx2", &KERNEL_TESTS);
}

/// The AVX2 kernels with each way of looking up their tables (`entropy::gather`).
#[test]
fn avx2_kernel_decodes_the_same_with_either_gather() {
    if std::env::var_os("WZ_SIMD").is_some() {
        return;
    }
    for mode in ["hardware", "loads"] {
        common::rerun_with_gather(mode, &KERNEL_TESTS);
    }
}

// The C API and the CLI ------------------------------------------------------------------------

#[test]
fn c_api_frames_of_f32_and_f16() {
    use weightzip::ffi::*;
    let st = |s: wz_status| s as u32;
    assert_eq!((WZ_KIND_F32, WZ_KIND_F16), (3, 4));
    for (kind, src) in [(WZ_KIND_F32, weights_f32(70_001, 110)), (WZ_KIND_F16, weights_f16(140_001, 111))] {
        let bound = wz_compress_bound(src.len());
        let mut frame = vec![0u8; bound];
        let mut n = 0usize;
        let s = unsafe {
            wz_compress(frame.as_mut_ptr().cast(), bound, src.as_ptr().cast(), src.len(), kind, null(), &mut n)
        };
        assert_eq!(st(s), 0, "kind {kind}: wz_compress");
        frame.truncate(n);
        assert!(n < src.len(), "kind {kind}: weights shrink");
        let mut info: wz_frame_info = unsafe { std::mem::zeroed() };
        info.struct_size = std::mem::size_of::<wz_frame_info>() as u32;
        assert_eq!(st(unsafe { wz_frame_get_info(frame.as_ptr().cast(), n, &mut info) }), 0);
        assert_eq!((info.kind, info.original_size, info.frame_size), (kind, src.len() as u64, n as u64));
        let mut dst = vec![0xA5u8; src.len()];
        assert_eq!(
            st(unsafe { wz_decompress(dst.as_mut_ptr().cast(), dst.len(), frame.as_ptr().cast(), n, null()) }),
            0
        );
        assert!(dst == src, "kind {kind}: wz_decompress gave other bytes");
        // A flipped payload byte: CORRUPT_DATA and a zero-filled destination.
        let mut bad = frame.clone();
        bad[n - 100] ^= 0x08;
        let mut dst = vec![0xA5u8; src.len()];
        let s = unsafe { wz_decompress(dst.as_mut_ptr().cast(), dst.len(), bad.as_ptr().cast(), n, null()) };
        assert_eq!(st(s), st(wz_status::WZ_STATUS_CORRUPT_DATA), "kind {kind}");
        assert!(dst.iter().all(|&b| b == 0), "kind {kind}: destination not zero-filled");
        // Odd lengths: BAD_LENGTH (status 4), nothing written.
        let es = if kind == WZ_KIND_F32 { 4 } else { 2 };
        for len in [1, es + 1, src.len() - 1] {
            let mut out = vec![0x5Au8; bound];
            let mut n = 7usize;
            let s =
                unsafe { wz_compress(out.as_mut_ptr().cast(), bound, src.as_ptr().cast(), len, kind, null(), &mut n) };
            assert_eq!(st(s), 4, "kind {kind}, {len} bytes");
            assert_eq!(n, 7, "kind {kind}, {len} bytes: size written on failure");
            assert!(out.iter().all(|&b| b == 0x5A), "kind {kind}, {len} bytes: output written on failure");
        }
    }
}

#[test]
fn cli_raw_f32_and_f16_streams() {
    let dir = common::TempDir::new("float-cli");
    let wz = || {
        let mut c = common::wz();
        c.current_dir(&dir.path);
        c
    };
    for (kind, src) in [("f32", weights_f32(90_000, 120)), ("f16", weights_f16(90_001, 121))] {
        let name = format!("w.{kind}");
        std::fs::write(dir.join(&name), &src).unwrap();
        let o = wz().args(["compress", "--kind", kind, &name]).output().unwrap();
        assert!(o.status.success(), "{kind}: {}", String::from_utf8_lossy(&o.stderr));
        let f = std::fs::read(dir.join(&format!("{name}.wz"))).unwrap();
        assert_eq!(read_info(&f).unwrap().kind, Kind::from_name(kind).unwrap());
        let o = wz().args(["verify", &format!("{name}.wz"), &name]).output().unwrap();
        assert!(o.status.success(), "{kind} verify: {}", String::from_utf8_lossy(&o.stderr));
        let o = wz().args(["decompress", &format!("{name}.wz"), "-o", "back"]).output().unwrap();
        assert!(o.status.success(), "{kind} decompress: {}", String::from_utf8_lossy(&o.stderr));
        assert!(std::fs::read(dir.join("back")).unwrap() == src);
        std::fs::remove_file(dir.join("back")).unwrap();
        // An odd length fails and writes nothing.
        std::fs::write(dir.join("odd"), &src[..src.len() - 1]).unwrap();
        let o = wz().args(["compress", "--kind", kind, "odd"]).output().unwrap();
        assert!(!o.status.success(), "{kind}: odd length accepted");
        assert!(!dir.join("odd.wz").exists());
        assert!(dir.entries().iter().all(|n| !n.contains(".tmp-")), "{kind}: {:?}", dir.entries());
    }
}

/// The encoder's vector step (AVX-512, where the CPU has it) writes exactly the scalar step's
/// bytes, on real weights, for every chunk, including groups with escaped values (which take the
/// scalar step) and the values past a chunk's last whole group.
#[test]
fn vector_encoder_writes_the_scalar_encoders_bytes() {
    use weightzip::codec::bf16::{encode_chunk, encode_chunk_scalar, histogram, Split, Tables, SYMBOLS};
    let raw = raw_fixture();
    // Chunks of odd sizes too: a partial last group of every length.
    for cs in [256 << 10, 4096 + 2 * 17, 64 * 1000 + 2] {
        let chunks: Vec<&[u8]> = raw.chunks(cs).collect();
        let hists: Vec<Vec<u64>> = chunks
            .iter()
            .map(|c| {
                let mut h = vec![0u64; SYMBOLS];
                histogram(c, Split::Magnitude, &mut h);
                h
            })
            .collect();
        let tables = Tables::plan(&hists, 1).unwrap();
        let mut escaped = 0;
        for (i, c) in chunks.iter().enumerate() {
            let (mut v, mut s) = (Vec::new(), Vec::new());
            encode_chunk(tables.encoder(i), c, &mut v).unwrap();
            encode_chunk_scalar(tables.encoder(i), c, &mut s).unwrap();
            assert!(v == s, "chunk size {cs}, chunk {i}: the vector step wrote other bytes");
            // The escape count follows the stored nibbles (docs/FORMAT.md, section 4).
            let nib_len = (c.len() / 2).div_ceil(2);
            let stored = nib_len - 2 * 32.min(nib_len / 2);
            escaped += u32::from_le_bytes(s[stored..stored + 4].try_into().unwrap());
        }
        assert!(escaped > 0, "chunk size {cs}: no escaped value, so the mixed path went untested");
    }
}
