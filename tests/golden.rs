//! Determinism smoke test: the compressed bytes of every committed fixture, pinned.
//!
//! Each fixture is compressed with default options (the raw bf16 stream as a frame, the model
//! files as archives) and the first 16 hex digits of the output's SHA-256 are compared with the
//! value pinned below, next to the ratio it gives. The output must also be the same at 1 and at
//! 2 threads (and at the default, all cores).
//!
//! A failure here means the compressed bytes changed. That is expected when the format or an
//! encoder decision changes on purpose (a new table coding, a different chunk plan, ...): then
//! update the pinned hash and ratio in the same commit, and say in its message why the bytes
//! changed and how the ratio moved. When nothing was meant to change, a failure is a bug: the
//! encoder is not deterministic, or it depends on something it should not (thread count, CPU
//! features, memory layout).

mod common;

use std::io::Cursor;

use common::data_path;
use sha2::{Digest, Sha256};
use weightzip::{archive, frame, Kind, Options};

/// (fixture, how it is compressed, sha256[:16] of the output, ratio = original / compressed).
const GOLDEN: &[(&str, How, &str, f64)] = &[
    ("minilm-l6-ffn01.bf16", How::Frame(Kind::Bf16), "dcd3b6b9d0a22997", 1.5133),
    ("minilm-l6-layer0-bf16.safetensors", How::Archive, "ed04eaeb1766c6eb", 1.5215),
    ("minilm-l6-q4_k_m.gguf", How::Archive, "23e89409a5d5493d", 1.0814),
    ("qwen25coder15b-q4km-mini.gguf", How::Archive, "faf06691a1ce324d", 1.0669),
    ("minilm-l6-ffn-down0.q5_k", How::Frame(Kind::Q5K), "6acda31a5172cd72", 1.0640),
    ("minilm-l6-ffn-down0.iq4_nl", How::Frame(Kind::IQ4NL), "eb6cf2dfb44d3475", 1.0619),
    ("minilm-l6-ffn-down0.iq4_xs", How::Frame(Kind::IQ4XS), "348c87f4d1061429", 1.0442),
    ("minilm-l6-ffn-down0.q3_k", How::Frame(Kind::Q3K), "97325984a84108cd", 1.0680),
    ("minilm-l6-ffn-down0.q2_k", How::Frame(Kind::Q2K), "2513a65f6577fa96", 1.1050),
];

#[derive(Clone, Copy, Debug)]
enum How {
    Frame(Kind),
    Archive,
}

fn compress(how: How, src: &[u8], threads: u32) -> Vec<u8> {
    let opts = Options::with_threads(threads);
    match how {
        How::Frame(kind) => frame::compress(kind, src, &opts).expect("compress"),
        How::Archive => {
            let mut c = Cursor::new(Vec::new());
            archive::compress_any(src, &mut c, &opts).expect("compress archive");
            c.into_inner()
        }
    }
}

fn sha16(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn compressed_fixtures_match_their_pinned_hashes() {
    let mut wrong = Vec::new();
    for &(name, how, hash, ratio) in GOLDEN {
        let src = std::fs::read(data_path(name)).expect("read fixture");
        let out = compress(how, &src, 1);
        // Thread-count independence: the same bytes at 1, 2 and all threads (0).
        for t in [2, 0] {
            assert!(compress(how, &src, t) == out, "{name}: the output at {t} threads differs from 1 thread");
        }
        let (got_hash, got_ratio) = (sha16(&out), src.len() as f64 / out.len() as f64);
        println!("{name}: {got_hash} ratio {got_ratio:.4} ({} -> {} bytes)", src.len(), out.len());
        if got_hash != hash || (got_ratio - ratio).abs() > 5e-5 {
            wrong.push(format!("(\"{name}\", {how:?}, \"{got_hash}\", {got_ratio:.4}) (pinned: {hash}, {ratio:.4})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "compressed bytes changed; if that was meant (a format or encoder change), pin the new values:\n  {}",
        wrong.join("\n  ")
    );
}
