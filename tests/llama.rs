//! Opt-in: llama.cpp runs a model read straight from a weightzip archive and gives the same
//! output, bit for bit, as from the original GGUF. Needs a llama.cpp build:
//!
//!     scripts/build_llama_cpp.sh /work/cache/llama
//!     WZ_LLAMA_DIR=/work/cache/llama/llama.cpp WZ_CORPUS_DIR=/work/cache \
//!         cargo test --release --test llama -- --ignored --nocapture
//!
//! `minilm_embeddings_identical` needs only WZ_LLAMA_DIR (its model is the MiniLM fixture);
//! `qwen_greedy_identical` also needs qwen2.5-coder-1.5b-instruct-q4_k_m.gguf in WZ_CORPUS_DIR
//! (`scripts/fetch_corpora.sh DIR qwen15`), and `tied_embeddings_greedy_identical` the SmolLM2
//! and Gemma 3 files (`... DIR smollm`, `... DIR gemma`). Run explicitly, a missing variable or
//! file is a failure, not a skip.
//!
//! Each test runs c_examples/llama_from_archive (built by `make -C c_examples llama`) on the
//! original and on its archive and compares the stdout of the runs byte for byte:
//!   - loader "tensors" (llama_model_init_from_user, each tensor decoded into llama.cpp's buffer)
//!     against the original loaded with --no-repack, as that API turns CPU weight repacking off;
//!   - loader "memfd" (the GGUF rebuilt in memory, checked equal to the original with --check,
//!     then llama.cpp's own file loader) against the original with llama.cpp's defaults.
//!   - loader "file" on the archive's path (llama.cpp's own loader with the weightzip patch that
//!     scripts/build_llama_cpp.sh applies) against the original with llama.cpp's defaults.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn required_dir(var: &str, how: &str) -> PathBuf {
    let dir = std::env::var_os(var).filter(|v| !v.is_empty()).unwrap_or_else(|| panic!("set {var}: {how}"));
    let dir = PathBuf::from(dir);
    assert!(dir.is_dir(), "{var}={} is not a directory ({how})", dir.display());
    dir
}

fn llama_dir() -> PathBuf {
    let dir = required_dir(
        "WZ_LLAMA_DIR",
        "a llama.cpp build, from scripts/build_llama_cpp.sh CACHE_DIR (CACHE_DIR/llama.cpp)",
    );
    assert!(dir.join("include/llama.h").is_file(), "{}: no include/llama.h", dir.display());
    dir
}

/// A fresh scratch directory under cargo's target directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(d) if !d.is_empty() => root().join(d),
            _ => root().join("target"),
        };
        let dir = target.join(format!("llama-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `LD_LIBRARY_PATH` without the directories cargo adds, so the example finds its libraries
/// through its rpaths, as a user's program would.
fn ld_library_path() -> Option<OsString> {
    let current = std::env::var_os("LD_LIBRARY_PATH")?;
    let kept: Vec<PathBuf> =
        std::env::split_paths(&current).filter(|p| !p.starts_with(root().join("target"))).collect();
    std::env::join_paths(kept).ok()
}

fn run(what: &str, cmd: &mut Command) -> (String, String) {
    match ld_library_path() {
        Some(p) => cmd.env("LD_LIBRARY_PATH", p),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{what} failed: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}", out.status);
    (stdout, stderr)
}

/// Builds c_examples/build/llama_from_archive against WZ_LLAMA_DIR (once per test process: the
/// tests run in parallel) and returns its path.
fn build_example() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let make = std::env::var("MAKE").ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "make".into());
        let mut cmd = Command::new(make);
        cmd.current_dir(root()).args(["-C", "c_examples", "llama"]).arg(format!("LLAMA_DIR={}", llama_dir().display()));
        run("make -C c_examples llama", &mut cmd);
        let exe = root().join("c_examples/build/llama_from_archive");
        assert!(exe.is_file(), "{} missing after make llama", exe.display());
        exe
    })
    .clone()
}

/// Compresses `model` into `dir` with the weightzip CLI and returns the archive's path.
fn compress(model: &Path, dir: &Path) -> PathBuf {
    let archive = dir.join(format!("{}.wz", model.file_name().unwrap().to_string_lossy()));
    let mut cmd = common::wz();
    cmd.arg("compress").arg(model).arg("-o").arg(&archive);
    run("weightzip compress", &mut cmd);
    archive
}

/// The "timing:" line of a run's stderr, for the log.
fn timing(stderr: &str) -> &str {
    stderr.lines().rev().find(|l| l.starts_with("timing:")).unwrap_or("(no timing line)")
}

/// Runs the example on the original and on the archive with every loader at `threads`, asserts
/// the pairs described at the top are identical, and returns the stdout of the original's
/// default run and the stderr of the tensors loader's run.
fn compare_loaders(exe: &Path, original: &Path, archive: &Path, threads: u32, args: &[&str]) -> (String, String) {
    let t = threads.to_string();
    let go = |model: &Path, extra: &[&str]| {
        let mut cmd = Command::new(exe);
        cmd.arg(model).args(["--threads", &t]).args(extra).args(args);
        let what = format!("llama_from_archive {} {}", model.display(), extra.join(" "));
        let (out, err) = run(&what, &mut cmd);
        println!(
            "  {:<52} {}",
            format!("{} {}", model.file_name().unwrap().to_string_lossy(), extra.join(" ")),
            timing(&err)
        );
        (out, err)
    };
    let check = original.to_str().unwrap();
    let (file, _) = go(original, &["--loader", "file"]);
    let (memfd, memfd_err) = go(archive, &["--loader", "memfd", "--check", check]);
    let (file_nr, _) = go(original, &["--loader", "file", "--no-repack"]);
    let (tensors, tensors_err) = go(archive, &["--loader", "tensors"]);
    // llama.cpp's own loader, patched (scripts/llama.cpp-weightzip.patch), on the archive's path.
    let (patched, patched_err) = go(archive, &["--loader", "file", "--verbose"]);
    assert!(patched_err.contains("reading a weightzip archive"), "patched loader run:\n{patched_err}");
    assert!(
        patched == file,
        "threads {threads}: llama.cpp's loader on the archive differs from the original\n--- original ---\n{file}\n--- archive ---\n{patched}"
    );
    assert!(memfd_err.contains("--check: the rebuilt GGUF equals"), "memfd run did not check its bytes:\n{memfd_err}");
    assert!(
        tensors_err.contains("tensors decoded into llama.cpp's buffers from the archive's"),
        "tensors run:\n{tensors_err}"
    );
    assert!(!file.is_empty(), "no output");
    assert!(
        memfd == file,
        "threads {threads}: memfd loader differs from the original\n--- original ---\n{file}\n--- memfd ---\n{memfd}"
    );
    assert!(
        tensors == file_nr,
        "threads {threads}: tensors loader differs from the original (--no-repack)\n--- original ---\n{file_nr}\n--- tensors ---\n{tensors}"
    );
    (file, tensors_err)
}

/// Token ids of a few sentences, [CLS] words [SEP] as the bert-base-uncased WordPiece vocabulary
/// numbers them (the comments say which words): the MiniLM fixture carries no tokenizer, so the
/// example takes ids. The test needs only fixed, valid ids.
const MINILM_SENTENCES: [&str; 4] = [
    "ids:101,7592,2088,102",                                           // hello world
    "ids:101,1996,4248,2829,4419,14523,2058,1996,13971,3899,1012,102", // the quick brown fox jumps over the lazy dog.
    "ids:101,1037,4937,2938,2006,1996,13523,1012,102",                 // a cat sat on the mat.
    "ids:101,1045,2066,2000,3191,2808,1012,102",                       // i like to read books.
];

/// (i) all-MiniLM-L6-v2 Q4_K_M (BERT, mean pooling): the embeddings of four sentences from the
/// archive equal those from the original GGUF bit for bit, at 1 and 2 threads.
#[test]
#[ignore = "needs a llama.cpp build: WZ_LLAMA_DIR (scripts/build_llama_cpp.sh)"]
fn minilm_embeddings_identical() {
    let exe = build_example();
    let scratch = Scratch::new("minilm");
    let original = root().join("tests/data/minilm-l6-q4_k_m.gguf");
    let archive = compress(&original, &scratch.0);
    let mut args = vec!["--embed", "--no-vocab"];
    args.extend(MINILM_SENTENCES);
    for threads in [1, 2] {
        let (out, _) = compare_loaders(&exe, &original, &archive, threads, &args);
        let rows: Vec<Vec<f64>> = out
            .lines()
            .map(|l| {
                assert!(l.starts_with("embedding "), "unexpected line {l}");
                l.split(": ").nth(1).unwrap().split(' ').map(hex_float).collect()
            })
            .collect();
        assert_eq!(rows.len(), MINILM_SENTENCES.len());
        for r in &rows {
            assert_eq!(r.len(), 384);
            assert!(r.iter().all(|x| x.is_finite()) && r.iter().any(|x| *x != 0.0), "degenerate embedding");
        }
        assert!(rows[0] != rows[1], "two sentences gave the same embedding");
        println!(
            "MiniLM, {threads} thread(s): {} embeddings of 384 floats identical from original and archive",
            rows.len()
        );
    }
}

/// Parses C99 "%a" output as printed by glibc for doubles: [-]0x1.HHHHp[+-]E or [-]0x0p+0.
fn hex_float(s: &str) -> f64 {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let s = s.strip_prefix("0x").unwrap_or_else(|| panic!("not a hex float: {s}"));
    let (mant, exp) = s.split_once('p').unwrap_or_else(|| panic!("not a hex float: {s}"));
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut v = u64::from_str_radix(int, 16).unwrap() as f64;
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16).unwrap() as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp.parse::<i32>().unwrap());
    if neg {
        -v
    } else {
        v
    }
}

/// Eight coding prompts for the greedy test.
const QWEN_PROMPTS: [&str; 8] = [
    "def fibonacci(n):",
    "// C function that reverses a string in place\nvoid reverse(char *s) {",
    "Write a Python function that checks whether a number is prime.",
    "SELECT name, COUNT(*) FROM orders",
    "fn main() {\n    let v: Vec<u32> =",
    "Explain what a hash map is in one sentence.",
    "#include <stdio.h>\n\nint main(void) {",
    "class Stack:\n    def __init__(self):",
];

/// (ii) Qwen2.5-Coder-1.5B-Instruct Q4_K_M: greedy decoding of 32 tokens for 8 prompts gives the
/// same token ids from the archive as from the original GGUF; and llama.cpp's own llama-simple
/// agrees with the example on the original.
#[test]
#[ignore = "needs WZ_LLAMA_DIR and the qwen15 corpus in WZ_CORPUS_DIR"]
fn qwen_greedy_identical() {
    let corpus = required_dir("WZ_CORPUS_DIR", "the corpus directory (scripts/fetch_corpora.sh DIR qwen15)");
    let original = corpus.join("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    assert!(original.is_file(), "{} missing: scripts/fetch_corpora.sh {} qwen15", original.display(), corpus.display());
    let exe = build_example();
    let scratch = Scratch::new("qwen");
    let archive = compress(&original, &scratch.0);
    let mut args = vec!["--generate", "32"];
    args.extend(QWEN_PROMPTS);
    let (out, _) = compare_loaders(&exe, &original, &archive, 2, &args);
    let generated: Vec<&str> = out.lines().filter(|l| l.starts_with("generated ")).collect();
    assert_eq!(generated.len(), QWEN_PROMPTS.len(), "{out}");
    for g in &generated {
        let ids = g.split(": ").nth(1).unwrap_or("").split_whitespace().count();
        assert!((1..=32).contains(&ids), "{g}");
    }
    println!("Qwen2.5-Coder-1.5B Q4_K_M: 8 prompts x 32 greedy tokens identical from original and archive:\n{out}");

    // The reference: llama.cpp's own llama-simple (greedy, default parameters) prints the prompt
    // and the generated text; the example's text for the same prompt must follow the prompt there.
    let simple = llama_dir().join("build/bin/llama-simple");
    let texts: Vec<String> = out.lines().filter(|l| l.starts_with("text ")).map(|l| l.to_string()).collect();
    for (i, prompt) in QWEN_PROMPTS.iter().enumerate().take(2) {
        let mut cmd = Command::new(&simple);
        cmd.arg("-m").arg(&original).args(["-n", "32", prompt]);
        let (ref_out, _) = run("llama-simple", &mut cmd);
        let ours = unescape(texts[i].split_once(": ").unwrap().1);
        assert!(
            ref_out.starts_with(prompt)
                && ref_out[prompt.len()..].trim_end_matches('\n') == ours.trim_end_matches('\n'),
            "prompt {i}: llama-simple printed\n{ref_out}\nthe example generated\n{ours}"
        );
    }
    println!("llama-simple agrees with the example on the first two prompts");
}

/// Undoes the example's C-escaped, quoted text.
fn unescape(s: &str) -> String {
    let s = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).expect("quoted text");
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b[i + 1] {
                b'n' => out.push(b'\n'),
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Models with tied output embeddings (no output.weight: the logits use token_embd.weight),
/// SmolLM2-135M-Instruct Q4_1 and Gemma 3 270M Q4_K_M: greedy decoding of 16 tokens for 4 prompts
/// is identical from the archive, where the tensors loader decodes token_embd.weight twice.
#[test]
#[ignore = "needs WZ_LLAMA_DIR and the smollm and gemma corpora in WZ_CORPUS_DIR"]
fn tied_embeddings_greedy_identical() {
    let corpus = required_dir("WZ_CORPUS_DIR", "the corpus directory (scripts/fetch_corpora.sh DIR smollm|gemma)");
    let exe = build_example();
    let scratch = Scratch::new("tied");
    for name in ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"] {
        let original = corpus.join(name);
        assert!(original.is_file(), "{} missing: scripts/fetch_corpora.sh", original.display());
        let archive = compress(&original, &scratch.0);
        let mut args = vec!["--generate", "16"];
        args.extend(&QWEN_PROMPTS[..4]);
        let (out, tensors_err) = compare_loaders(&exe, &original, &archive, 2, &args);
        assert!(tensors_err.contains("also as the tied output.weight"), "{name}: not loaded as tied:\n{tensors_err}");
        assert_eq!(out.lines().filter(|l| l.starts_with("generated ")).count(), 4, "{out}");
        println!("{name}: 4 prompts x 16 greedy tokens identical from original and archive");
    }
}
