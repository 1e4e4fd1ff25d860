//! Runs the Python tests in `tests/python/` against this build's shared library: the archive
//! bindings of the `weightzip` package (`python/`, imported from the checkout) on the committed GGUF fixtures, `read_numpy` on every
//! ggml element type, llama.cpp's own GGUF reader (the PyPI package `gguf`) on files restored
//! from archives, and the bindings on safetensors files checked against the PyPI package
//! `safetensors` (the committed BF16 fixture, its F32 and F16 versions, and every dtype).
//!
//! These tests need `python3` with `numpy`, `gguf`, `safetensors` and `ml_dtypes`
//! (`python3 -m pip install numpy gguf safetensors ml_dtypes`; `.ci/run` installs them). A
//! missing one is a failure saying which, never a silent pass.
//!
//! The same checks on the large corpora are opt-in (they are fetched at run time, never
//! committed):
//!
//!     scripts/fetch_corpora.sh corpus minilm; scripts/fetch_corpora.sh corpus qwen15
//!     scripts/fetch_corpora.sh corpus gemma; scripts/fetch_corpora.sh corpus smollm
//!     WZ_CORPUS_DIR=corpus cargo test --release --test python -- --ignored --nocapture --test-threads 1

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/data").join(name)
}

const MINILM_GGUF: &str = "minilm-l6-q4_k_m.gguf";
const QWEN_MINI_GGUF: &str = "qwen25coder15b-q4km-mini.gguf";
const MINILM_LAYER0_SAFETENSORS: &str = "minilm-l6-layer0-bf16.safetensors";

/// The Python modules the GGUF scripts import.
const GGUF_MODULES: &[&str] = &["numpy", "gguf"];
/// The Python modules test_types.py imports.
const TYPES_MODULES: &[&str] = &["numpy", "gguf", "ml_dtypes"];
/// The Python modules test_safetensors.py imports.
const SAFETENSORS_MODULES: &[&str] = &["numpy", "safetensors", "ml_dtypes"];

/// The interpreter: `$PYTHON3`, or `python3`.
fn python() -> String {
    std::env::var("PYTHON3").ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "python3".to_string())
}

/// The shared library cargo built next to the CLI for this profile (building the package's
/// library for the tests makes every crate type it declares, the cdylib included).
fn library() -> PathBuf {
    let lib = common::cli_exe().with_file_name("libweightzip.so");
    assert!(lib.is_file(), "{} does not exist: build it with `cargo build --release`", lib.display());
    lib
}

/// Fails the test unless the interpreter runs and imports `modules`.
fn require_python(modules: &[&str]) {
    let py = python();
    let code = format!("import {}", modules.join(", "));
    let out = Command::new(&py).arg("-c").arg(&code).output().unwrap_or_else(|e| {
        panic!("`{py}` could not be run ({e}); these tests need python3 (install it or set PYTHON3; this test does not skip)")
    });
    assert!(
        out.status.success(),
        "`{py} -c \"{code}\"` failed; install the missing module(s) with `{py} -m pip install {}` \
         (.ci/run does; this test does not skip):\n{}",
        modules.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `python3 tests/python/SCRIPT ARGS...` after checking that the interpreter imports
/// `modules`, fails the test (showing its output) unless it exits 0, and checks that it printed
/// at least `ok_lines` lines ending in " OK".
fn run_script<S: AsRef<OsStr>>(modules: &[&str], script: &str, args: &[S], ok_lines: usize) -> String {
    require_python(modules);
    let start = std::time::Instant::now();
    let out = Command::new(python())
        .current_dir(root())
        .env("WEIGHTZIP_LIBRARY", library())
        .env("WEIGHTZIP_CLI", common::cli_exe())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("WZ_SIMD")
        .arg(root().join("tests/python").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{script}: could not start {}: {e}", python()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    let ok = stdout.lines().filter(|l| l.trim_end().ends_with(" OK")).count();
    assert!(ok >= ok_lines, "{script}: expected {ok_lines} line(s) ending in \" OK\", stdout:\n{stdout}");
    // Shown with --nocapture: each script's summary lines, and the time the whole run took.
    print!("{stdout}");
    println!("{script}: {:.2}s", start.elapsed().as_secs_f64());
    stdout
}

#[test]
fn archive_bindings_on_minilm_gguf() {
    run_script(GGUF_MODULES, "test_archive.py", &[fixture(MINILM_GGUF)], 1);
}

#[test]
fn archive_bindings_on_qwen_mini_gguf() {
    run_script(GGUF_MODULES, "test_archive.py", &[fixture(QWEN_MINI_GGUF)], 1);
}

#[test]
fn read_numpy_on_every_element_type() {
    run_script::<&str>(TYPES_MODULES, "test_types.py", &[], 1);
}

#[test]
fn gguf_reader_on_restored_fixtures() {
    run_script(GGUF_MODULES, "test_gguf_client.py", &[fixture(MINILM_GGUF), fixture(QWEN_MINI_GGUF)], 2);
}

/// The BF16 fixture, and the F32, F16 and every-dtype files the script derives from it: four
/// files, four "OK" lines.
#[test]
fn safetensors_package_agrees_on_minilm_layer0() {
    let fixture = fixture(MINILM_LAYER0_SAFETENSORS);
    run_script(SAFETENSORS_MODULES, "test_safetensors.py", &[OsStr::new("--derive"), fixture.as_os_str()], 4);
}

/// A corpus file under `$WZ_CORPUS_DIR` (default `corpus/`); missing is a failure.
fn corpus(name: &str) -> PathBuf {
    let dir = std::env::var("WZ_CORPUS_DIR").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/corpus").into());
    let path = Path::new(&dir).join(name);
    assert!(path.is_file(), "{} does not exist; run scripts/fetch_corpora.sh first", path.display());
    path
}

#[test]
#[ignore = "needs the qwen15 corpus: scripts/fetch_corpora.sh corpus qwen15"]
fn gguf_reader_on_restored_qwen15() {
    run_script(GGUF_MODULES, "test_gguf_client.py", &[corpus("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")], 1);
}

#[test]
#[ignore = "needs the gemma corpus: scripts/fetch_corpora.sh corpus gemma"]
fn gguf_reader_on_restored_gemma3_270m() {
    run_script(GGUF_MODULES, "test_gguf_client.py", &[corpus("gemma-3-270m-q4_k_m.gguf")], 1);
}

#[test]
#[ignore = "needs the smollm corpus: scripts/fetch_corpora.sh corpus smollm"]
fn gguf_reader_on_restored_smollm2_135m() {
    run_script(GGUF_MODULES, "test_gguf_client.py", &[corpus("SmolLM2-135M-Instruct.Q4_1.gguf")], 1);
}

#[test]
#[ignore = "needs the minilm corpus: scripts/fetch_corpora.sh corpus minilm"]
fn safetensors_package_agrees_on_minilm_f32_bf16_f16() {
    let files = [
        corpus("all-minilm-l6-v2.safetensors"),
        corpus("all-minilm-l6-v2-bf16.safetensors"),
        corpus("all-minilm-l6-v2-f16.safetensors"),
    ];
    run_script(SAFETENSORS_MODULES, "test_safetensors.py", &files, 3);
}
