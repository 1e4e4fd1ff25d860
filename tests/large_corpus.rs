//! Opt-in tests on the large real corpora, which are fetched at run time and never committed:
//!
//!     scripts/fetch_corpora.sh corpus minilm
//!     WZ_CORPUS_DIR=corpus cargo test --release --test large_corpus -- --ignored --nocapture
//!
//! (`scripts/fetch_corpora.sh corpus all` fetches every corpus.)
//!
//! Run explicitly, a missing corpus is a failure, not a skip.

/// The bounds the tool reports (R_marginal, the model's entropy), from the tool's own source.
#[allow(dead_code)]
#[path = "../cli/src/stats.rs"]
mod stats;

use std::path::PathBuf;

use weightzip::{compress, decompress, safetensors, Kind, Options};

fn corpus(name: &str) -> Vec<u8> {
    let dir = std::env::var("WZ_CORPUS_DIR").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/corpus").into());
    let path = PathBuf::from(dir).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch_corpora.sh first", path.display()))
}

/// All 103 tensors of all-MiniLM-L6-v2 as bf16: every one roundtrips, and the byte-weighted
/// ratio beats the byte-marginal bound by at least 1%.
#[test]
#[ignore = "needs the MiniLM corpus: scripts/fetch_corpora.sh"]
fn minilm_bf16_all_tensors() {
    let file = corpus("all-minilm-l6-v2-bf16.safetensors");
    let tensors: Vec<_> = safetensors::read_tensors(&file).unwrap().into_iter().filter(|t| t.dtype == "BF16").collect();
    assert_eq!(tensors.len(), 103);
    let (mut total, mut coded, mut marginal) = (0f64, 0f64, 0f64);
    for t in &tensors {
        let data = &file[t.offset as usize..(t.offset + t.len) as usize];
        let frame = compress(Kind::Bf16, data, &Options::default()).unwrap();
        assert_eq!(decompress(&frame, &Options::default()).unwrap(), data, "{}", t.name);
        let s = stats::bf16_stats(data);
        total += data.len() as f64;
        coded += frame.len() as f64;
        marginal += data.len() as f64 / s.r_marginal;
    }
    let (ratio, r_marginal) = (total / coded, total / marginal);
    println!("MiniLM bf16, 103 tensors: ratio {ratio:.4}, byte-weighted R_marginal {r_marginal:.4}, ratio / R_marginal {:.4}", ratio / r_marginal);
    assert!(ratio >= 1.010 * r_marginal, "ratio {ratio:.4} < 1.010 x R_marginal {r_marginal:.4}");
}

/// all-MiniLM-L6-v2 as bf16, f16 and f32, each compressed as an archive (matrices with their
/// rows, as `weightzip compress` does): the tensors of each float type together at or above
/// their byte-weighted R_marginal (f32: of the high halves, which the codec models; the low
/// halves are the generic path's), and the archive restores the file; bf16 at least 1.020 times
/// the R_marginal of all its values together (the paper's bound).
///
///     scripts/fetch_corpora.sh corpus minilm
#[test]
#[ignore = "needs the MiniLM corpus: scripts/fetch_corpora.sh"]
fn minilm_float_archives_at_or_above_r_marginal() {
    for (name, dtype) in [
        ("all-minilm-l6-v2-bf16.safetensors", "BF16"),
        ("all-minilm-l6-v2-f16.safetensors", "F16"),
        ("all-minilm-l6-v2.safetensors", "F32"),
    ] {
        let file = corpus(name);
        let mut out = std::io::Cursor::new(Vec::new());
        let w = weightzip::archive::compress_any(&file, &mut out, &Options::default()).unwrap();
        let archive = out.into_inner();
        let a = weightzip::archive::Archive::from_bytes(&archive).unwrap();
        let mut restored = Vec::new();
        a.restore_to(&mut restored, &Options::default()).unwrap();
        assert!(restored == file, "{name}: the archive does not restore the file");
        let tensors: Vec<_> =
            safetensors::read_tensors(&file).unwrap().into_iter().filter(|t| t.dtype == dtype).collect();
        let (mut total, mut coded, mut marginal) = (0f64, 0f64, 0f64);
        for t in &tensors {
            let e = w.index.tensors.iter().find(|e| e.name == t.name.as_bytes()).unwrap();
            let data = &file[t.offset as usize..(t.offset + t.len) as usize];
            let r = if dtype == "F32" {
                // The byte-marginal bound of the whole f32 values (four byte planes).
                let mut h = [[0u64; 256]; 4];
                for v in data.chunks_exact(4) {
                    for (k, &b) in v.iter().enumerate() {
                        h[k][b as usize] += 1;
                    }
                }
                let n = (data.len() / 4) as f64;
                let bits: f64 =
                    h.iter().flatten().filter(|&&c| c > 0).map(|&c| -(c as f64) * (c as f64 / n).log2()).sum();
                32.0 * n / bits
            } else {
                stats::bf16_stats(data).r_marginal
            };
            total += data.len() as f64;
            coded += e.arc_size as f64;
            marginal += data.len() as f64 / r;
        }
        let (ratio, r_marginal) = (total / coded, total / marginal);
        println!("{name}, {} {dtype} tensors: ratio {ratio:.4}, byte-weighted R_marginal {r_marginal:.4}, ratio / R_marginal {:.5}", tensors.len(), ratio / r_marginal);
        assert!(ratio >= r_marginal, "{name}: ratio {ratio:.4} below R_marginal {r_marginal:.4}");
        if dtype == "BF16" {
            // The paper's bound, over all the file's bf16 values at once (its "ceiling", 1.495 on
            // this model), and the ratio issue's floor: 1.020 times it.
            let all: Vec<u8> = tensors
                .iter()
                .flat_map(|t| file[t.offset as usize..(t.offset + t.len) as usize].iter().copied())
                .collect();
            let whole = stats::bf16_stats(&all).r_marginal;
            println!("{name}: ratio / the file's R_marginal {whole:.4}: {:.5}", ratio / whole);
            assert!(ratio >= 1.020 * whole, "{name}: ratio {ratio:.4} below 1.020 x the file's R_marginal {whole:.4}");
        }
    }
}

/// Qwen2.5-Coder-1.5B-Instruct Q4_K_M: every Q4_K and Q6_K tensor roundtrips, and the
/// byte-weighted ratios reach the floors (Q4_K >= 1.070, Q6_K >= 1.050).
///
///     scripts/fetch_corpora.sh corpus qwen15
#[test]
#[ignore = "needs the qwen15 corpus: scripts/fetch_corpora.sh corpus qwen15"]
fn qwen15_q4k_and_q6k() {
    let file = corpus("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    let tensors = weightzip::gguf::read_tensors(&file).unwrap();
    for (kind, floor, count) in [(Kind::Q4K, 1.070, 169), (Kind::Q6K, 1.050, 29)] {
        let (mut raw, mut coded, mut n) = (0f64, 0f64, 0);
        for t in tensors.iter().filter(|t| Some(t.ggml_type) == kind.ggml_type()) {
            let data = &file[t.offset as usize..(t.offset + t.len.unwrap()) as usize];
            let frame = compress(kind, data, &Options::default()).unwrap();
            assert!(decompress(&frame, &Options::default()).unwrap() == data, "{}", t.name);
            raw += data.len() as f64;
            coded += frame.len() as f64;
            n += 1;
        }
        let ratio = raw / coded;
        println!("qwen15 {}: {n} tensors, ratio {ratio:.4}", kind.name());
        assert_eq!(n, count);
        assert!(ratio >= floor, "{}: {ratio:.4} < {floor}", kind.name());
    }
}
