//! Roundtrips through the Rust API on the real fixtures and on edge-case inputs: byte-exact
//! output on every path, determinism across thread counts, the frame-size bound, and the
//! compression ratio on real weights against the byte-marginal entropy bound.

mod common;
/// The bounds the tool reports (R_marginal, the model's entropy), from the tool's own source.
#[allow(dead_code)]
#[path = "../cli/src/stats.rs"]
mod stats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{all_tensors, raw_fixture, st_tensors, Lcg};
use weightzip::codec::Method;
use weightzip::frame::{self, DEFAULT_CHUNK_SIZE, HEADER_LEN, MIN_CHUNK_SIZE};
use weightzip::{compress, compress_bound, decompress, decompress_into, read_info, Error, Kind, Options};

fn opts(threads: u32, chunk_size: u32) -> Options {
    Options { threads, chunk_size, progress: None, fast: false, row_len: 0 }
}

/// Compresses with `o`, checks the frame against the bound and its header, and checks that both
/// decompression entry points give back exactly `src` at 1, 2 and all threads. Returns the frame.
fn roundtrip(src: &[u8], o: &Options, what: &str) -> Vec<u8> {
    let f = compress(Kind::Bf16, src, o).unwrap_or_else(|e| panic!("{what}: compress failed: {e:?}"));
    let bound = compress_bound(src.len()).expect("bound fits");
    assert!(f.len() <= bound, "{what}: frame of {} bytes exceeds compress_bound({}) = {bound}", f.len(), src.len());
    let info = read_info(&f).unwrap_or_else(|e| panic!("{what}: read_info failed: {e:?}"));
    assert_eq!(info.kind, Kind::Bf16, "{what}");
    assert_eq!(info.original_size, src.len() as u64, "{what}");
    assert_eq!(info.frame_size, f.len() as u64, "{what}");
    for threads in [1, 2, 0] {
        let d = opts(threads, 0);
        let back =
            decompress(&f, &d).unwrap_or_else(|e| panic!("{what}: decompress (threads {threads}) failed: {e:?}"));
        assert!(back == src, "{what}: decompress (threads {threads}) returned different bytes");
        // A dirty destination must be fully overwritten.
        let mut buf = vec![0xA5u8; src.len()];
        decompress_into(&f, &mut buf, &d)
            .unwrap_or_else(|e| panic!("{what}: decompress_into (threads {threads}) failed: {e:?}"));
        assert!(buf == src, "{what}: decompress_into (threads {threads}) returned different bytes");
    }
    f
}

// (a) ------------------------------------------------------------------------------------------

#[test]
fn every_real_tensor_roundtrips_at_1_2_and_all_threads() {
    let tensors = all_tensors();
    assert_eq!(tensors.len(), 20);
    for t in &tensors {
        let mut frames = Vec::new();
        for threads in [1, 2, 0] {
            frames.push(roundtrip(t.data, &opts(threads, 0), &format!("{} (compress threads {threads})", t.name)));
        }
        assert!(frames.windows(2).all(|w| w[0] == w[1]), "{}: frame depends on the thread count", t.name);
    }
}

#[test]
fn real_tensors_compress_with_the_bf16_method() {
    // Every tensor of at least 64 KiB must actually shrink (method Bf16Hist, smaller than input).
    for t in all_tensors().iter().filter(|t| t.data.len() >= 64 << 10) {
        let f = compress(Kind::Bf16, t.data, &Options::default()).unwrap();
        let info = read_info(&f).unwrap();
        assert_eq!(info.method, Method::Bf16Hist, "{}", t.name);
        assert!(f.len() < t.data.len(), "{}: {} -> {}", t.name, t.data.len(), f.len());
        assert!(info.model_size > 0, "{}", t.name);
    }
}

#[test]
fn concatenated_fixture_tensors_roundtrip() {
    // All safetensors tensors back to back: one non-stationary stream with many chunks, where the
    // planner may pick several models.
    let all: Vec<u8> = st_tensors().iter().flat_map(|t| t.data.iter().copied()).collect();
    for cs in [MIN_CHUNK_SIZE, DEFAULT_CHUNK_SIZE] {
        roundtrip(&all, &opts(0, cs), &format!("concatenated tensors, chunk {cs}"));
    }
}

// (b) ------------------------------------------------------------------------------------------

#[test]
fn output_is_identical_for_every_thread_count_and_every_run() {
    let raw = raw_fixture();
    for cs in [MIN_CHUNK_SIZE, DEFAULT_CHUNK_SIZE] {
        let reference = compress(Kind::Bf16, raw, &opts(1, cs)).unwrap();
        assert!(read_info(&reference).unwrap().chunk_count > 3, "need several chunks for the test to mean anything");
        for threads in [1, 2, 3, 0, 7] {
            for run in 0..3 {
                let f = compress(Kind::Bf16, raw, &opts(threads, cs)).unwrap();
                assert!(f == reference, "chunk {cs}: threads {threads}, run {run} gave different bytes");
            }
        }
        // Written straight to a writer, the same bytes.
        let mut w = Vec::new();
        assert_eq!(frame::compress_to(Kind::Bf16, raw, &opts(2, cs), &mut w).unwrap(), reference.len() as u64);
        assert!(w == reference, "chunk {cs}: compress_to wrote other bytes than compress returns");
        // Written a window at a time to a writer that seeks, after bytes already there: the same.
        let mut c = std::io::Cursor::new(b"before".to_vec());
        c.set_position(6);
        let n = frame::compress_seekable(Kind::Bf16, raw, &opts(2, cs), &mut c).unwrap();
        assert_eq!(n, Some(reference.len() as u64), "chunk {cs}");
        assert_eq!(c.position(), 6 + reference.len() as u64, "chunk {cs}");
        assert!(&c.get_ref()[..6] == b"before" && c.get_ref()[6..] == reference, "chunk {cs}: compress_seekable");
        // And decompression at any thread count gives the input back.
        for threads in [1, 2, 3, 0] {
            assert!(decompress(&reference, &opts(threads, 0)).unwrap() == raw);
        }
    }
}

/// A large frame that does not compress: `compress` stores it, `compress_seekable` says so and
/// goes back to where it started; a small one (coded in memory) is stored by both.
#[test]
fn compress_seekable_gives_back_what_it_cannot_store_as_compress_does() {
    let mut rng = Lcg::new(7);
    for (kind, n) in [(Kind::Q4K, 144 * 4000), (Kind::Bf16, 1 << 20), (Kind::Q4K, 144 * 100)] {
        let raw = rng.bytes(n);
        let reference = compress(kind, &raw, &opts(1, 0)).unwrap();
        assert_eq!(read_info(&reference).unwrap().method, Method::Stored, "{kind:?} {n}");
        let mut c = std::io::Cursor::new(vec![1u8; 3]);
        c.set_position(3);
        match frame::compress_seekable(kind, &raw, &opts(2, 0), &mut c).unwrap() {
            None => {
                assert!(n >= 64 << 10, "{kind:?} {n}: a small frame is coded in memory, stored if need be");
                assert_eq!(c.position(), 3, "{kind:?} {n}: not back at the start");
            }
            Some(len) => {
                assert!(n < 64 << 10, "{kind:?} {n}: a large frame kept a coded form larger than storing");
                assert_eq!(len, reference.len() as u64, "{kind:?} {n}");
                assert!(c.get_ref()[3..] == reference, "{kind:?} {n}: other bytes than compress");
            }
        }
    }
}

#[test]
fn progress_counter_reaches_the_original_size() {
    let raw = raw_fixture();
    let p = Arc::new(AtomicU64::new(0));
    let o = Options { threads: 2, chunk_size: 0, progress: Some(p.clone()), fast: false, row_len: 0 };
    let f = compress(Kind::Bf16, raw, &o).unwrap();
    assert_eq!(p.load(Ordering::Relaxed), raw.len() as u64);
    let p2 = Arc::new(AtomicU64::new(0));
    let back =
        decompress(&f, &Options { threads: 2, chunk_size: 0, progress: Some(p2.clone()), fast: false, row_len: 0 })
            .unwrap();
    assert!(back == raw);
    assert_eq!(p2.load(Ordering::Relaxed), raw.len() as u64);
    // A small frame is coded twice (its codec, and the generic path it may fall back to) and
    // still counted once.
    let small = &raw[..20_000];
    let p3 = Arc::new(AtomicU64::new(0));
    compress(Kind::Bf16, small, &Options { progress: Some(p3.clone()), ..o }).unwrap();
    assert_eq!(p3.load(Ordering::Relaxed), small.len() as u64);
}

#[test]
fn worker_threads_do_not_accumulate_across_calls() {
    // A long-running host calls the library with whatever thread counts its users ask for. The
    // threads of a call must not outlive it in unbounded numbers (e.g. one cached pool per
    // distinct thread count ever requested).
    fn live_threads() -> usize {
        std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
    }
    let src = &raw_fixture()[..40 * MIN_CHUNK_SIZE as usize]; // 40 chunks
    let before = live_threads();
    assert!(before > 0, "/proc/self/task is readable");
    let mut f = Vec::new();
    for threads in 2..=40 {
        f = compress(Kind::Bf16, src, &opts(threads, MIN_CHUNK_SIZE)).unwrap();
        assert!(decompress(&f, &opts(threads, 0)).unwrap() == src);
    }
    assert_eq!(read_info(&f).unwrap().chunk_count, 40);
    let after = live_threads();
    println!("live threads: {before} before, {after} after 39 calls with 2..=40 threads");
    // Other tests of this binary may run at the same time with a few threads each.
    assert!(
        after <= before + 64,
        "{} threads outlive the calls that made them ({before} before, {after} after)",
        after.saturating_sub(before)
    );
}

// (c) ------------------------------------------------------------------------------------------

#[test]
fn chunk_sizes_64k_512k_4m_roundtrip() {
    let raw = raw_fixture();
    let largest = st_tensors().into_iter().max_by_key(|t| t.data.len()).unwrap();
    for (name, data) in [("raw fixture", raw), ("largest tensor", largest.data)] {
        for cs in [64u32 << 10, 512 << 10, 4 << 20] {
            let f = roundtrip(data, &opts(0, cs), &format!("{name}, chunk {cs}"));
            let info = read_info(&f).unwrap();
            assert_eq!(info.chunk_size, cs);
            assert_eq!(info.chunk_count as usize, data.len().div_ceil(cs as usize));
        }
    }
}

#[test]
fn chunk_size_zero_means_the_default() {
    let raw = raw_fixture();
    let a = compress(Kind::Bf16, raw, &opts(0, 0)).unwrap();
    let b = compress(Kind::Bf16, raw, &opts(0, DEFAULT_CHUNK_SIZE)).unwrap();
    assert!(a == b);
    assert_eq!(read_info(&a).unwrap().chunk_size, DEFAULT_CHUNK_SIZE);
}

#[test]
fn odd_and_unusual_chunk_sizes() {
    let raw = &raw_fixture()[..1 << 20];
    // Valid: any even size in range, not only powers of two.
    for cs in [MIN_CHUNK_SIZE + 2, 100_002, 1 << 30] {
        roundtrip(raw, &opts(0, cs), &format!("chunk {cs}"));
    }
    // Invalid: below the minimum, odd, above the maximum.
    for cs in [2, 1000, MIN_CHUNK_SIZE - 2, MIN_CHUNK_SIZE + 1, (1 << 30) + 2, u32::MAX] {
        assert_eq!(compress(Kind::Bf16, raw, &opts(0, cs)), Err(Error::InvalidArgument), "chunk {cs}");
    }
}

// (d) ------------------------------------------------------------------------------------------

fn all_patterns() -> Vec<u16> {
    (0..=u16::MAX).collect()
}

fn to_bytes(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn all_65536_bit_patterns_roundtrip() {
    // NaNs (0x7FC0, 0xFFFF ...), infinities (0x7F80, 0xFF80), subnormals (0x0001..0x007F), -0 (0x8000).
    let ordered = to_bytes(&all_patterns());
    let rev: Vec<u16> = all_patterns().into_iter().rev().collect();
    for (name, src) in [("ordered", ordered), ("reversed", to_bytes(&rev))] {
        for cs in [MIN_CHUNK_SIZE, DEFAULT_CHUNK_SIZE] {
            roundtrip(&src, &opts(0, cs), &format!("all patterns {name}, chunk {cs}"));
        }
    }
}

#[test]
fn all_bit_patterns_shuffled_and_repeated_roundtrip() {
    let mut rng = Lcg::new(0xB16);
    let mut v = all_patterns();
    let mut stream = Vec::new();
    for _ in 0..6 {
        rng.shuffle(&mut v);
        stream.extend_from_slice(&v);
    }
    let src = to_bytes(&stream); // 768 KiB: 12 chunks of 64 KiB
    for cs in [MIN_CHUNK_SIZE, 3 * MIN_CHUNK_SIZE + 2, DEFAULT_CHUNK_SIZE] {
        let f = roundtrip(&src, &opts(0, cs), &format!("shuffled patterns, chunk {cs}"));
        assert!(read_info(&f).unwrap().chunk_count >= 2);
    }
    // Special values mixed into real weights (rare symbols that must be escaped).
    let mut real: Vec<u16> =
        raw_fixture()[..1 << 20].chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
    for (i, special) in
        [0x7F80u16, 0xFF80, 0x7FC0, 0xFFC1, 0x0001, 0x807F, 0x8000, 0x0000, 0x7F7F, 0xFF7F].iter().enumerate()
    {
        let len = real.len();
        let at = rng.below_usize(len);
        real[at] = *special;
        real[(i * 7919) % len] = *special;
    }
    roundtrip(&to_bytes(&real), &opts(0, MIN_CHUNK_SIZE), "real data with special values");
}

#[test]
fn constant_and_two_valued_streams_roundtrip() {
    // Degenerate histograms: a single symbol takes all of the probability mass.
    for v in [0u16, 0x8000, 0x3F80, 0x7FC0, 0xFFFF] {
        let src = to_bytes(&vec![v; 300_000]);
        let f = roundtrip(&src, &opts(0, MIN_CHUNK_SIZE), &format!("constant {v:#06x}"));
        assert!(f.len() < src.len() / 3, "a constant stream must shrink: {} -> {}", src.len(), f.len());
    }
    let mut rng = Lcg::new(2);
    let two: Vec<u16> = (0..200_001).map(|_| if rng.below(100) == 0 { 0x3C00 } else { 0xBC00 }).collect();
    roundtrip(&to_bytes(&two), &opts(0, MIN_CHUNK_SIZE), "two-valued");
}

/// Large random input (random bytes are fine here: this is about the frame's bounds, not a
/// ratio) in every kind that codes: coding cannot pay, so `compress` gives the stored frame,
/// within `compress_bound`, at every thread count and chunk size, and it roundtrips.
#[test]
fn large_incompressible_input_is_stored_within_the_bound() {
    let mut rng = Lcg::new(11);
    let noise: Vec<u8> = (0..300_000).map(|_| rng.next_u64() as u8).collect();
    for kind in Kind::ALL {
        // Whole elements, over 64 KiB and several chunks.
        let src = &noise[..noise.len() / kind.element_size() * kind.element_size()];
        for (threads, cs) in [(1, 0), (2, MIN_CHUNK_SIZE / kind.element_size() as u32 * kind.element_size() as u32)] {
            if cs != 0 && cs < MIN_CHUNK_SIZE {
                continue;
            }
            let f = compress(kind, src, &opts(threads, cs)).unwrap();
            let info = read_info(&f).unwrap();
            assert_eq!(info.method, Method::Stored, "{kind:?}, {threads} threads, chunk {cs}");
            assert!(f.len() <= compress_bound(src.len()).unwrap(), "{kind:?}: over the bound");
            assert!(decompress(&f, &Options::default()).unwrap() == src, "{kind:?}");
        }
    }
}

// (e) ------------------------------------------------------------------------------------------

#[test]
fn empty_input_roundtrips() {
    for cs in [0, MIN_CHUNK_SIZE] {
        let f = compress(Kind::Bf16, &[], &opts(1, cs)).unwrap();
        assert!(f.len() <= compress_bound(0).unwrap());
        let info = read_info(&f).unwrap();
        assert_eq!(info.original_size, 0);
        assert_eq!(info.chunk_count, 0);
        assert_eq!(info.method, Method::Stored);
        assert_eq!(info.frame_size, f.len() as u64);
        assert_eq!(decompress(&f, &Options::default()).unwrap(), Vec::<u8>::new());
        let mut empty: [u8; 0] = [];
        decompress_into(&f, &mut empty, &Options::default()).unwrap();
        // A non-empty destination is the wrong size.
        assert_eq!(decompress_into(&f, &mut [0u8; 2], &Options::default()), Err(Error::DstSizeMismatch));
    }
}

#[test]
fn small_sizes_roundtrip() {
    let raw = raw_fixture();
    let mut rng = Lcg::new(5);
    for n in [2usize, 4, 62, 64, 66, 1000, 65534, 65536, 65538, 131072 + 2] {
        roundtrip(&raw[..n], &Options::default(), &format!("real prefix of {n} bytes"));
        roundtrip(&raw[raw.len() - n..], &opts(0, MIN_CHUNK_SIZE), &format!("real suffix of {n} bytes"));
        roundtrip(&rng.bytes(n), &Options::default(), &format!("random {n} bytes"));
    }
}

#[test]
fn every_value_count_near_lane_and_group_boundaries_roundtrips() {
    // The decoder has a SIMD group path, a scalar group path, a checked tail, and nibbles carried
    // in the lane payloads: sizes around multiples of the 32 lanes exercise every hand-over.
    let raw = raw_fixture();
    let start = 1 << 20;
    for values in (1..=160).chain([255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 4095, 4096, 4097]) {
        let src = &raw[start..start + 2 * values];
        roundtrip(src, &Options::default(), &format!("{values} values"));
    }
}

// (f) ------------------------------------------------------------------------------------------

#[test]
fn odd_byte_count_is_bad_length() {
    let raw = raw_fixture();
    for n in [1usize, 3, 63, 65, 999, 65535, 65537, 1_000_001] {
        for threads in [1, 0] {
            assert_eq!(compress(Kind::Bf16, &raw[..n], &opts(threads, 0)), Err(Error::BadLength), "{n} bytes");
        }
    }
    // BadLength is reported before the chunk size is looked at.
    assert_eq!(compress(Kind::Bf16, &raw[..3], &opts(0, 7)), Err(Error::BadLength));
}

// (g) ------------------------------------------------------------------------------------------

#[test]
fn read_info_reports_kind_size_and_layout() {
    let raw = raw_fixture();
    for cs in [MIN_CHUNK_SIZE, DEFAULT_CHUNK_SIZE] {
        let f = compress(Kind::Bf16, raw, &opts(0, cs)).unwrap();
        let info = read_info(&f).unwrap();
        assert_eq!(info.kind, Kind::Bf16);
        assert_eq!(info.format_version, frame::FORMAT_VERSION);
        assert_eq!(info.original_size, raw.len() as u64);
        assert_eq!(info.chunk_size, cs);
        assert_eq!(info.chunk_count as usize, raw.len().div_ceil(cs as usize));
        assert_eq!(info.frame_size, f.len() as u64);
        let layout = HEADER_LEN as u64
            + info.model_size as u64
            + frame::CHUNK_ENTRY_LEN as u64 * info.chunk_count as u64
            + frame::CHECK_LEN as u64
            + info.payload_size;
        assert_eq!(layout, info.frame_size);
        // The fixed header alone is enough.
        assert_eq!(read_info(&f[..HEADER_LEN]).unwrap(), info);
        assert_eq!(&f[..4], &frame::MAGIC);
    }
}

// (h) ------------------------------------------------------------------------------------------

#[test]
fn ratio_on_real_weights_beats_the_byte_marginal_bound_by_one_percent() {
    let tensors = all_tensors();
    let mut total = 0f64;
    let mut framed = 0f64;
    let mut marginal_bytes = 0f64;
    for t in &tensors {
        let f = compress(Kind::Bf16, t.data, &Options::default()).unwrap();
        assert!(decompress(&f, &Options::default()).unwrap() == t.data, "{}", t.name);
        let s = stats::bf16_stats(t.data);
        assert!(s.r_marginal.is_finite() && s.r_marginal > 1.0, "{}: r_marginal {}", t.name, s.r_marginal);
        let n = t.data.len() as f64;
        total += n;
        framed += f.len() as f64;
        marginal_bytes += n / s.r_marginal;
    }
    let r = total / framed;
    let r_marginal = total / marginal_bytes;
    println!("real fixtures ({} tensors, {} bytes): weightzip ratio {r:.4}, byte-weighted R_marginal {r_marginal:.4}, ratio / R_marginal = {:.4}", tensors.len(), total, r / r_marginal);
    assert!(r >= 1.010 * r_marginal, "weightzip ratio {r:.4} is below 1.010 x R_marginal {r_marginal:.4}");
}

// (i) ------------------------------------------------------------------------------------------

#[test]
fn incompressible_data_stays_within_the_bound() {
    let mut rng = Lcg::new(0xDEAD);
    for n in [0usize, 2, 64, 65534, 65536, 65538, 1 << 20, (3 << 20) + 2] {
        let src = rng.bytes(n);
        for cs in [MIN_CHUNK_SIZE, DEFAULT_CHUNK_SIZE] {
            let f = roundtrip(&src, &opts(0, cs), &format!("random {n} bytes, chunk {cs}"));
            assert!(f.len() <= compress_bound(n).unwrap());
        }
    }
}

#[test]
fn bound_holds_for_many_random_sizes() {
    let mut rng = Lcg::new(77);
    let pool = rng.bytes(300_000);
    for i in 0..120 {
        let n = rng.below_usize(150_001) * 2; // even, 0..=300000
        let src = &pool[..n];
        let cs = if i % 2 == 0 { MIN_CHUNK_SIZE } else { DEFAULT_CHUNK_SIZE };
        let f = compress(Kind::Bf16, src, &opts(0, cs)).unwrap();
        assert!(f.len() <= compress_bound(n).unwrap(), "random {n} bytes, chunk {cs}: {} > bound", f.len());
        assert!(decompress(&f, &Options::default()).unwrap() == src, "random {n} bytes, chunk {cs}");
    }
}

#[test]
fn bound_holds_for_every_short_prefix_of_real_data() {
    let raw = raw_fixture();
    let mut lengths: Vec<usize> = (0..=600).step_by(2).collect();
    lengths.extend([
        4094,
        4096,
        8192,
        65534,
        65536,
        65538,
        131070,
        131072,
        200_000,
        524_286,
        524_288,
        524_290,
        1 << 20,
    ]);
    for n in lengths {
        let src = &raw[..n];
        for cs in [MIN_CHUNK_SIZE, DEFAULT_CHUNK_SIZE] {
            let f = compress(Kind::Bf16, src, &opts(1, cs)).unwrap();
            let bound = compress_bound(n).unwrap();
            assert!(f.len() <= bound, "real prefix of {n} bytes, chunk {cs}: frame {} > bound {bound}", f.len());
            assert!(decompress(&f, &opts(1, 0)).unwrap() == src, "real prefix of {n} bytes, chunk {cs}");
        }
    }
}

#[test]
fn compress_bound_formula() {
    assert_eq!(compress_bound(0), Some(64 + 16));
    assert_eq!(compress_bound(65535), Some(65535 + 64 + 16));
    assert_eq!(compress_bound(65536), Some(65536 + 64 + 32));
    assert_eq!(compress_bound(usize::MAX), None);
    assert_eq!(compress_bound(usize::MAX - 64), None);
    // Monotone.
    let mut prev = 0;
    for n in (0..2_000_000).step_by(997) {
        let b = compress_bound(n).unwrap();
        assert!(b >= prev && b >= n);
        prev = b;
    }
}

#[test]
fn more_distinct_chunks_than_models_fit_in_a_frame() {
    // A frame holds at most 256 models (a chunk names its model in one byte): 300 chunks with
    // very different histograms force the planner to merge beyond what saves bits.
    let cs = MIN_CHUNK_SIZE as usize;
    let raw = raw_fixture();
    let mut src = Vec::with_capacity(300 * cs);
    for i in 0..300usize {
        // Real values scaled by a per-chunk power of two (exponent shift): same shape, different
        // symbols. Every 7th chunk is a constant, every 11th holds real data unchanged.
        let shift = (i % 40) as u16;
        let part = &raw[(i * cs) % (raw.len() - cs)..][..cs];
        for v in part.chunks_exact(2) {
            let v = u16::from_le_bytes([v[0], v[1]]);
            let w = if i % 7 == 0 {
                0x3F80 + i as u16
            } else if i % 11 == 0 {
                v
            } else {
                let e = ((v >> 7) & 0xFF).saturating_sub(shift).max(1);
                (v & 0x807F) | (e << 7)
            };
            src.extend_from_slice(&w.to_le_bytes());
        }
    }
    let f = roundtrip(&src, &opts(0, MIN_CHUNK_SIZE), "300 distinct chunks");
    let info = read_info(&f).unwrap();
    assert_eq!(info.chunk_count, 300);
    assert_eq!(info.method, Method::Bf16Hist);
    assert!(f.len() < src.len());
    // The model indices of the coded chunks: the planner had to stop at 256 models.
    let table = HEADER_LEN + info.model_size as usize;
    let models = (0..300)
        .map(|i| &f[table + frame::CHUNK_ENTRY_LEN * i..][..frame::CHUNK_ENTRY_LEN])
        .filter(|e| e[4] == 1)
        .map(|e| e[5] as usize + 1)
        .max()
        .unwrap();
    println!("300 distinct chunks use {models} models");
    assert_eq!(models, 256, "the planner should be forced to exactly the 256-model cap");
}
