//! Method 6: bf16, f16 and f32 matrices with each value coded in the context of its row's and
//! column's scale. On the real matrices of the safetensors fixture (all-MiniLM-L6-v2's layer 0,
//! and the same values as f16) and the F32 position embeddings of the GGUF fixture: frames written with the row length roundtrip at 1 and 2 threads,
//! chunk by chunk, and with every kernel level; they do not depend on the thread count; they are
//! never larger than the plain method's frame by more than the header. Rows that the method
//! cannot take (a length not a multiple of 32, not dividing the tensor) give the plain method.
//! Damaged method-6 frames never decode to other bytes, never panic.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{st_file, Lcg};
use half::f16;
use weightzip::codec::Method;
use weightzip::frame::{self, CHUNK_ENTRY_LEN, MIN_CHUNK_SIZE};
use weightzip::{compress, decompress, read_info, safetensors, Kind, Options};
use xxhash_rust::xxh3::xxh3_64;

fn opts(threads: u32, chunk_size: u32, row_len: u64) -> Options {
    Options { threads, chunk_size, progress: None, fast: false, row_len }
}

/// The fixture's 2-D bf16 tensors: (name, rows, cols, bytes).
fn matrices() -> Vec<(String, u64, u64, &'static [u8])> {
    let file = st_file();
    safetensors::read_tensors(file)
        .unwrap()
        .into_iter()
        .filter(|t| t.dtype == "BF16" && t.shape.len() == 2)
        .map(|t| (t.name.clone(), t.shape[0], t.shape[1], &file[t.offset as usize..(t.offset + t.len) as usize]))
        .collect()
}

/// The FFN up-projection (1536 x 384): its rows' scales differ, method 6 pays on it.
fn ffn_up() -> (String, u64, u64, &'static [u8]) {
    matrices().into_iter().find(|m| m.0.ends_with("intermediate.dense.weight")).unwrap()
}

/// The same values as f16 (the fixture's weights are all in f16's range).
fn as_f16(bf16: &[u8]) -> Vec<u8> {
    bf16.chunks_exact(2)
        .flat_map(|b| {
            let v = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16);
            f16::from_f32(v).to_bits().to_le_bytes()
        })
        .collect()
}

#[test]
fn real_matrices_roundtrip_in_their_rows_and_columns() {
    let mut chosen = 0;
    let (mut ctx_bytes, mut plain_bytes) = (0usize, 0usize);
    for (name, rows, cols, data) in matrices() {
        for kind in [Kind::Bf16, Kind::F16] {
            let src = if kind == Kind::F16 { as_f16(data) } else { data.to_vec() };
            // The default chunks, and chunks that start mid-row (64 KiB = 32768 values: 85.3 rows
            // of 384).
            for cs in [0, MIN_CHUNK_SIZE] {
                let label = format!("{name} {kind:?} {rows}x{cols} chunk {cs}");
                let f = common::frame_roundtrips(kind, &src, cols, cs, &label);
                let plain = compress(kind, &src, &opts(1, cs, 0)).unwrap();
                let method = read_info(&f).unwrap().method;
                assert!(matches!(method, Method::Bf16Ctx | Method::Bf16Hist), "{label}: {method:?}");
                // The encoder takes method 6 only when its estimate is smaller; the estimate may
                // err by a little, never by much.
                assert!(f.len() as f64 <= plain.len() as f64 * 1.001, "{label}: {} vs plain {}", f.len(), plain.len());
                if method == Method::Bf16Ctx {
                    chosen += 1;
                    ctx_bytes += f.len();
                    plain_bytes += plain.len();
                }
            }
        }
    }
    // On these weights most matrices take it, and together they shrink.
    assert!(chosen >= 8, "method 6 chosen for {chosen} frames");
    assert!(ctx_bytes < plain_bytes, "{ctx_bytes} vs {plain_bytes}");
}

#[test]
fn real_f32_matrix_roundtrips_in_its_rows_and_columns() {
    // all-MiniLM-L6-v2's position embeddings, F32 as trained: 512 rows of 384.
    let file = std::fs::read(common::data_path("minilm-l6-q4_k_m.gguf")).unwrap();
    let t = weightzip::gguf::read_tensors(&file)
        .unwrap()
        .into_iter()
        .find(|t| t.name == "position_embd.weight")
        .expect("the fixture's position embeddings");
    assert_eq!((t.ggml_type, &t.dims[..]), (0, &[384u64, 512][..]));
    let src = &file[t.offset as usize..(t.offset + t.len.unwrap()) as usize];
    for cs in [0, MIN_CHUNK_SIZE] {
        let label = format!("position_embd f32 chunk {cs}");
        let f = common::frame_roundtrips(Kind::F32, src, 384, cs, &label);
        assert_eq!(read_info(&f).unwrap().method, Method::Bf16Ctx, "{label}");
        let plain = compress(Kind::F32, src, &opts(1, cs, 0)).unwrap();
        assert_eq!(read_info(&plain).unwrap().method, Method::F32Split);
        assert!(f.len() < plain.len(), "{label}: {} vs plain {}", f.len(), plain.len());
    }
}

#[test]
fn rows_the_method_cannot_take_give_the_plain_method() {
    let (_, _, cols, data) = ffn_up();
    let plain = compress(Kind::Bf16, data, &opts(1, 0, 0)).unwrap();
    let n = data.len() as u64 / 2;
    // Not a multiple of 32; not dividing the tensor; one row; the whole tensor as one row.
    for row_len in [cols + 1, cols - 1, 3 * cols / 2 + 32 * 7, n, n + 32] {
        let f = compress(Kind::Bf16, data, &opts(1, 0, row_len)).unwrap();
        assert!(f == plain, "row length {row_len}");
    }
    // Chunks that are not whole groups of 32 values: the plain method.
    let odd = MIN_CHUNK_SIZE + 2;
    let f = compress(Kind::Bf16, data, &opts(1, odd, cols)).unwrap();
    assert_eq!(read_info(&f).unwrap().method, Method::Bf16Hist);
    // Other kinds ignore the row length.
    let q = compress(Kind::Bytes, data, &opts(1, 0, cols)).unwrap();
    assert!(q == compress(Kind::Bytes, data, &opts(1, 0, 0)).unwrap());
}

/// The sprinkled matrix of `special_values_in_a_matrix_roundtrip` (escaped symbols in many
/// groups).
fn sprinkled() -> (u64, Vec<u8>) {
    let (_, _, cols, data) = ffn_up();
    let mut src = data.to_vec();
    let mut r = Lcg::new(7);
    let specials = [0x7F80u16, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81, 0x0000, 0x8000, 0x0001, 0x807F, 0x0040];
    for v in (0..=u16::MAX).step_by(64).chain(specials) {
        let at = 2 * r.below_usize(src.len() / 2);
        src[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    let c = cols as usize * 2;
    src[3 * c..4 * c].fill(0);
    src[10 * c..11 * c].fill(0);
    (cols, src)
}

/// A digest of method-6 frames: every fixture matrix as bf16 and f16, chunks that start
/// mid-row, and the sprinkled matrix.
fn ctx_frames_digest() -> u64 {
    let mut all = Vec::new();
    for (_, _, cols, data) in matrices() {
        for kind in [Kind::Bf16, Kind::F16] {
            let src = if kind == Kind::F16 { as_f16(data) } else { data.to_vec() };
            for cs in [0, MIN_CHUNK_SIZE] {
                all.extend_from_slice(&compress(kind, &src, &opts(1, cs, cols)).unwrap());
            }
        }
    }
    let (cols, src) = sprinkled();
    let f = compress(Kind::Bf16, &src, &opts(1, 0, cols)).unwrap();
    assert_eq!(read_info(&f).unwrap().method, Method::Bf16Ctx);
    all.extend_from_slice(&f);
    xxh3_64(&all)
}

/// Run by `encoder_writes_the_same_bytes_at_every_kernel_level` under each kernel level: writes
/// the digest where `WZ_DIGEST_OUT` says.
#[test]
fn ctx_frames_digest_of_this_level() {
    if let Some(p) = std::env::var_os("WZ_DIGEST_OUT") {
        std::fs::write(p, ctx_frames_digest().to_string()).unwrap();
    }
}

/// The encoder's vector steps (which make a group's table indices in registers) write the
/// scalar step's bytes: the same frames with AVX-512, AVX2 (with either way of looking up its
/// tables) and no vector kernel.
#[test]
fn encoder_writes_the_same_bytes_at_every_kernel_level() {
    if std::env::var_os("WZ_SIMD").is_some() {
        return; // a child run
    }
    let want = ctx_frames_digest();
    let dir = std::env::temp_dir().join(format!("wz-ctx-digest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (level, gather) in [("scalar", ""), ("avx2", "hardware"), ("avx2", "loads"), ("avx512", "")] {
        let out = dir.join(format!("{level}{gather}"));
        let o = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "ctx_frames_digest_of_this_level", "--test-threads=1"])
            .env("WZ_SIMD", level)
            .env("WZ_GATHER", gather)
            .env("WZ_DIGEST_OUT", &out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{level} {gather}: {}", String::from_utf8_lossy(&o.stderr));
        let got: u64 = std::fs::read_to_string(&out).unwrap().parse().unwrap();
        assert_eq!(got, want, "method-6 frames under WZ_SIMD={level} WZ_GATHER={gather} differ");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn special_values_in_a_matrix_roundtrip() {
    // Real weights with special values sprinkled in (NaNs, infinities, zeros, subnormals, every
    // 64th bit pattern) and two all-zero rows: scales of rows and columns must not trip over
    // them.
    let (cols, src) = sprinkled();
    let f = common::frame_roundtrips(Kind::Bf16, &src, cols, 0, "sprinkled");
    assert_eq!(read_info(&f).unwrap().method, Method::Bf16Ctx);
}

#[test]
fn damaged_frames_never_decode_to_other_bytes() {
    let (_, _, cols, data) = ffn_up();
    let f = compress(Kind::Bf16, data, &opts(1, MIN_CHUNK_SIZE, cols)).unwrap();
    let info = read_info(&f).unwrap();
    assert_eq!(info.method, Method::Bf16Ctx);
    let model_at = frame::HEADER_LEN;
    let mut r = Lcg::new(11);
    let mut errors = 0;
    for case in 0..300 {
        let mut bad = f.clone();
        // Mostly the model section (layout, classes, tables), then anywhere.
        let at = if case < 200 { model_at + r.below_usize(info.model_size as usize) } else { r.below_usize(f.len()) };
        bad[at] ^= 1 << r.below(8);
        // The model section and chunk table are checksummed: recompute it, so that the damage
        // reaches the model's parser and the decoders.
        let meta_end = model_at + info.model_size as usize + CHUNK_ENTRY_LEN * info.chunk_count as usize;
        if at < meta_end {
            let c = xxh3_64(&bad[model_at..meta_end]);
            bad[meta_end..meta_end + 8].copy_from_slice(&c.to_le_bytes());
        }
        for threads in [1, 2] {
            let got = catch_unwind(AssertUnwindSafe(|| decompress(&bad, &opts(threads, 0, 0))))
                .unwrap_or_else(|_| panic!("case {case}: byte {at}: panicked"));
            match got {
                Ok(v) => assert!(v == data, "case {case}: byte {at}: Ok with other bytes"),
                Err(_) => errors += 1,
            }
        }
    }
    assert!(errors > 400, "only {errors} of 600 damaged decodes failed");
}
