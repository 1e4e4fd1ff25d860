//! Runs the C programs against the real shared library: the example in `c_examples/` (the one a
//! new user reads: compress, load, compare) and the conformance programs in `tests/c/` (the
//! roundtrip with every documented error path, and the llama.cpp-style GGUF loader with its own
//! GGUF parser and several reader threads), plain and under AddressSanitizer/UBSan/LeakSanitizer;
//! the header's standalone compile as C99 and C++11; and the Python ctypes bindings.
//!
//! These tests need `make`, a C and a C++ compiler and `python3`. A missing tool is a failure
//! with a message saying which, never a silent pass.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use weightzip::ffi;
use weightzip::ffi::wz_status::{
    WZ_STATUS_BAD_MAGIC as BAD_MAGIC, WZ_STATUS_DST_SIZE_MISMATCH as DST_SIZE_MISMATCH,
    WZ_STATUS_DST_TOO_SMALL as DST_TOO_SMALL, WZ_STATUS_NOT_FOUND as NOT_FOUND,
};

/// Everything that runs `make` (or cargo through it) holds this: the targets share
/// `c_examples/build/` and cargo's target directory, so parallel test threads must not race.
static MAKE_LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    // A test that failed while holding the lock poisons it; the build dir is still usable.
    MAKE_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    root().join("tests/data/minilm-l6-ffn01.bf16")
}

/// Cargo's target directory as the Makefile computes it: `$CARGO_TARGET_DIR` (relative to the
/// repository root) or `target/`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => root().join("target"),
    }
}

/// The value of an environment variable naming a tool, or `default`.
fn tool(var: &str, default: &str) -> String {
    std::env::var(var).ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| default.to_string())
}

/// Fails the test with a clear message unless `program --version` runs. (Tool variables such as
/// `CC="ccache cc"` are checked by their first word.)
fn require_tool(program: &str, purpose: &str) {
    let first = program.split_whitespace().next().unwrap_or(program);
    match Command::new(first).arg("--version").output() {
        Ok(_) => {}
        Err(e) => panic!(
            "required tool `{first}` could not be run ({e}); it is needed to {purpose}. \
             Install it or put it on PATH (this test does not skip)."
        ),
    }
}

/// `LD_LIBRARY_PATH` without the directories cargo adds for test binaries, so the example finds
/// libweightzip through its rpath, as a user's program would.
fn ld_library_path_without_target() -> Option<OsString> {
    let current = std::env::var_os("LD_LIBRARY_PATH")?;
    let target = target_dir();
    let kept: Vec<PathBuf> = std::env::split_paths(&current).filter(|p| !p.starts_with(&target)).collect();
    std::env::join_paths(kept).ok()
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd`, fails the test (showing stdout and stderr) unless it exits 0, returns stdout.
fn run_ok(what: &str, cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    if !out.status.success() {
        panic!("{}", describe(&format!("{what} failed"), &out));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `make -C c_examples TARGET` from the repository root; the caller holds the lock.
fn make(target: &str) -> String {
    make_with(target, &[])
}

/// `make -C c_examples TARGET VAR=VALUE...`; the caller holds the lock.
fn make_with(target: &str, vars: &[String]) -> String {
    require_tool(&tool("MAKE", "make"), "run c_examples/Makefile");
    require_tool(&tool("CC", "cc"), "compile the C example");
    let mut cmd = Command::new(tool("MAKE", "make"));
    cmd.current_dir(root()).arg("-C").arg("c_examples").arg(target).args(vars);
    with_example_env(&mut cmd);
    run_ok(&format!("make -C c_examples {target} {}", vars.join(" ")), &mut cmd)
}

/// Makes `cmd` find libweightzip through the example's rpath only.
fn with_example_env(cmd: &mut Command) -> &mut Command {
    match ld_library_path_without_target() {
        Some(p) => cmd.env("LD_LIBRARY_PATH", p),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    }
}

/// Asserts that `stdout` has one line ending in "OK" per run of the example.
fn assert_ok_lines(what: &str, stdout: &str, at_least: usize) {
    let ok = stdout.lines().filter(|l| l.trim_end().ends_with(" OK")).count();
    assert!(ok >= at_least, "{what}: expected at least {at_least} line(s) ending in \"OK\", stdout:\n{stdout}");
}

#[test]
fn c_example_loads_every_committed_model() {
    let _g = lock();
    let stdout = make("example");
    assert_ok_lines("make example", &stdout, 3);
    for name in ["minilm-l6-q4_k_m.gguf", "qwen25coder15b-q4km-mini.gguf", "minilm-l6-layer0-bf16.safetensors"] {
        let line = stdout
            .lines()
            .find(|l| l.contains(name) && l.ends_with(" OK"))
            .unwrap_or_else(|| panic!("{name}: no OK line:\n{stdout}"));
        let size = std::fs::metadata(root().join("tests/data").join(name)).unwrap().len();
        assert!(line.contains(&format!("{size} -> ")), "{name}: the line lacks the file's size {size}: {line}");
    }
}

#[test]
fn c_roundtrip_runs() {
    let _g = lock();
    let stdout = make("roundtrip");
    assert_ok_lines("make run", &stdout, 1);
    let size = std::fs::metadata(fixture()).expect("fixture").len();
    assert!(stdout.contains(&format!("{size} bytes")), "make run: summary lacks the input size {size}:\n{stdout}");
}

#[test]
fn c_roundtrip_under_sanitizers() {
    let _g = lock();
    let stdout = make("roundtrip-asan");
    assert_ok_lines("make roundtrip-asan", &stdout, 1);
}

/// The GGUF fixtures `make loader` compresses and loads (the Makefile's GGUF_FIXTURES).
const GGUF_FIXTURES: [&str; 2] = ["minilm-l6-q4_k_m.gguf", "qwen25coder15b-q4km-mini.gguf"];

fn build_dir() -> PathBuf {
    root().join("c_examples/build")
}

/// The tensor count in a GGUF file's header, read here rather than taken from the loader.
fn gguf_tensor_count(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..4], b"GGUF", "{} is not a GGUF file", path.display());
    u64::from_le_bytes(bytes[8..16].try_into().unwrap())
}

/// Checks the loader's output for the GGUF file `gguf`, compressed to `archive`: the --compress
/// line, and at least one load whose summary says every tensor matched the original.
fn assert_loaded(what: &str, stdout: &str, gguf: &Path, archive: &Path) {
    let n = gguf_tensor_count(gguf);
    let (gguf, archive) = (gguf.display().to_string(), archive.display().to_string());
    let compressed = format!("{gguf} -> {archive}: {n} tensors, ");
    assert!(
        stdout.lines().any(|l| l.starts_with(&compressed) && l.ends_with(" OK")),
        "{what}: no line starting \"{compressed}\" and ending in OK:\n{stdout}"
    );
    let loaded = format!("{archive}: {n} tensors, ");
    let runs = stdout
        .lines()
        .filter(|l| l.starts_with(&loaded) && l.contains("all tensors matched the original") && l.ends_with(" OK"))
        .count();
    assert!(runs >= 1, "{what}: no summary \"{loaded}... all tensors matched the original ... OK\":\n{stdout}");
    // The error paths the loader provokes, each printed as "-> NUMBER: wz_status_str(NUMBER)".
    for status in [DST_TOO_SMALL, DST_SIZE_MISMATCH, NOT_FOUND, BAD_MAGIC] {
        let code = status as u32;
        let line = format!("-> {code:>2}: {}", status_str(code));
        assert!(stdout.contains(&line), "{what}: no error-path line \"{line}\":\n{stdout}");
    }
}

fn status_str(code: u32) -> String {
    // SAFETY: wz_status_str returns a static NUL-terminated string for every code.
    unsafe { std::ffi::CStr::from_ptr(ffi::wz_status_str(code)) }.to_string_lossy().into_owned()
}

#[test]
fn gguf_loader_runs() {
    let _g = lock();
    let stdout = make("loader");
    for name in GGUF_FIXTURES {
        let archive = build_dir().join(format!("{name}.wz"));
        assert_loaded("make loader", &stdout, &root().join("tests/data").join(name), &archive);
    }
    loader_rejects_damage();
}

#[test]
fn gguf_loader_under_sanitizers() {
    let _g = lock();
    let stdout = make("loader-asan");
    for name in GGUF_FIXTURES {
        let archive = build_dir().join(format!("{name}.asan.wz"));
        assert_loaded("make loader-asan", &stdout, &root().join("tests/data").join(name), &archive);
    }
}

/// Runs the loader built by `make loader` and returns its output; it must fail.
fn loader_fails(what: &str, args: &[&Path]) -> String {
    let mut cmd = Command::new(build_dir().join("gguf_loader"));
    cmd.args(args);
    let out = with_example_env(&mut cmd).output().unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    assert!(!out.status.success(), "{}", describe(&format!("{what}: the loader did not fail"), &out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The loader exits non-zero, naming the tensor, when the archive or the original is damaged or
/// the original is another model. Runs after `make loader` (the caller holds the lock).
fn loader_rejects_damage() {
    use weightzip::archive::Archive;
    let original = root().join("tests/data").join(GGUF_FIXTURES[0]);
    let archive = build_dir().join(format!("{}.wz", GGUF_FIXTURES[0]));
    let (largest, frame_at, data_at) = {
        let a = Archive::open_path(&archive).expect("the archive make loader wrote");
        let t = a.tensors().iter().max_by_key(|t| t.orig_size).expect("tensors");
        (String::from_utf8_lossy(&t.name).into_owned(), t.arc_offset + t.arc_size / 2, t.orig_offset + t.orig_size / 2)
    };
    let flipped = |from: &Path, at: u64, to: &Path| {
        let mut bytes = std::fs::read(from).unwrap();
        bytes[at as usize] ^= 0x10;
        std::fs::write(to, bytes).unwrap();
    };

    // A byte flipped in the middle of the largest tensor's frame: its chunk checksum fails.
    let damaged_archive = build_dir().join("damaged.gguf.wz");
    flipped(&archive, frame_at, &damaged_archive);
    let stderr = loader_fails("damaged archive", &[&damaged_archive, &original]);
    assert!(stderr.contains(&format!("FAIL: reading tensor '{largest}'")), "damaged archive:\n{stderr}");

    // A byte flipped in that tensor's data in the original: the comparison names it.
    let damaged_original = build_dir().join("damaged.gguf");
    flipped(&original, data_at, &damaged_original);
    let stderr = loader_fails("damaged original", &[&archive, &damaged_original]);
    assert!(stderr.contains(&format!("FAIL: {largest} differs from the original")), "damaged original:\n{stderr}");

    // Another model as the original.
    let other = root().join("tests/data").join(GGUF_FIXTURES[1]);
    let stderr = loader_fails("another model", &[&archive, &other]);
    assert!(stderr.contains("FAIL:"), "another model:\n{stderr}");

    for p in [damaged_archive, damaged_original] {
        std::fs::remove_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

#[test]
fn header_compiles_as_c99_and_cxx11() {
    let _g = lock();
    require_tool(&tool("CXX", "c++"), "compile weightzip.h as C++11");
    let stdout = make("header-check");
    assert!(stdout.contains("OK"), "make header-check printed no OK:\n{stdout}");
}

/// Builds the library (through the Makefile, so cargo is invoked the same way) and returns the
/// environment the Python bindings need to find it.
fn python_env() -> (String, PathBuf) {
    let python = tool("PYTHON3", "python3");
    require_tool(&python, "run the Python package in python/");
    {
        let _g = lock();
        make("lib");
    }
    let lib = target_dir().join("release/libweightzip.so");
    assert!(lib.is_file(), "{} does not exist after `make -C c_examples lib`", lib.display());
    (python, lib)
}

const PYTHON_TEST: &str = r#"
import sys
sys.path.insert(0, sys.argv[1])
import weightzip as wz

data = open(sys.argv[2], "rb").read()
assert wz.version() == sys.argv[3], (wz.version(), sys.argv[3])

frame = wz.compress(data, kind="bf16")
info = wz.frame_info(frame)
assert info["original_size"] == len(data), info
assert info["frame_size"] == len(frame), info
assert info["kind"] == wz.WZ_KIND_BF16 and info["kind_name"] == "bf16", info
assert wz.frame_info(frame[:wz.WZ_FRAME_HEADER_SIZE]) == info
assert wz.decompress(frame) == data
assert wz.decompress(bytearray(frame), threads=1) == data
assert wz.compress(data, threads=1) == frame, "output depends on the thread count"

def expect_error(what, fn, status=None):
    try:
        fn()
    except wz.WeightzipError as e:
        assert e.status != 0 and e.message, (what, e.status, e.message)
        assert status is None or e.status == status, (what, str(e))
        return e
    raise AssertionError(what + ": no WeightzipError")

bad = bytearray(frame)
bad[-10] ^= 0x40
expect_error("flipped payload byte", lambda: wz.decompress(bytes(bad)))
expect_error("truncated frame", lambda: wz.decompress(frame[:-1]))
expect_error("trailing byte", lambda: wz.decompress(frame + b"\0"), wz.WZ_STATUS_TRAILING_DATA)
expect_error("odd length", lambda: wz.compress(data[:-1]), wz.WZ_STATUS_BAD_LENGTH)
expect_error("unknown kind 999", lambda: wz.compress(data, kind=999), wz.WZ_STATUS_UNKNOWN_KIND)
expect_error("unknown kind name", lambda: wz.compress(data, kind="nope"), wz.WZ_STATUS_UNKNOWN_KIND)
expect_error("not a frame", lambda: wz.frame_info(b"\0" * 64), wz.WZ_STATUS_BAD_MAGIC)
assert wz.decompress(wz.compress(b"")) == b""

print("python roundtrip: %d -> %d bytes, ratio %.4f OK" % (len(data), len(frame), len(data) / len(frame)))
"#;

#[test]
fn python_bindings_roundtrip() {
    let (python, lib) = python_env();
    let stdout = run_ok(
        "python3 -c <weightzip test>",
        Command::new(&python)
            .current_dir(root())
            .env("WEIGHTZIP_LIBRARY", &lib)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg("-c")
            .arg(PYTHON_TEST)
            .arg(root().join("python"))
            .arg(fixture())
            .arg(env!("CARGO_PKG_VERSION")),
    );
    assert!(stdout.contains("OK"), "python test printed no OK:\n{stdout}");
}

#[test]
fn python_module_main() {
    let (python, lib) = python_env();
    let stdout = run_ok(
        "python3 -m weightzip FIXTURE 2",
        Command::new(&python)
            .current_dir(root())
            .env("WEIGHTZIP_LIBRARY", &lib)
            .env("PYTHONPATH", root().join("python"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args(["-m", "weightzip"])
            .arg(fixture())
            .arg("2"),
    );
    assert_ok_lines("python3 -m weightzip", &stdout, 1);
    assert!(stdout.contains("ratio"), "no ratio in:\n{stdout}");
}

/// A GGUF file made here for the loader, with what the fixtures lack: key/values of every value
/// type (arrays of numbers, of strings, an empty one), `general.alignment` 64, padding filled
/// with non-zero bytes, many ggml types, a 4-dimensional and an empty tensor (at the same offset as
/// the next, as ggml writes it), and bytes after the last tensor. Tensor infos are in data order,
/// as ggml requires.
fn synthetic_gguf() -> Vec<u8> {
    fn string(o: &mut Vec<u8>, s: &[u8]) {
        o.extend((s.len() as u64).to_le_bytes());
        o.extend(s);
    }
    const ALIGN: usize = 64;
    // (key, value type, value bytes)
    let mut kvs: Vec<(&str, u32, Vec<u8>)> = vec![
        ("general.architecture", 8, [9u64.to_le_bytes().as_slice(), b"synthetic"].concat()),
        ("general.alignment", 4, (ALIGN as u32).to_le_bytes().to_vec()),
        ("t.u8", 0, vec![200]),
        ("t.i8", 1, vec![0xfd]),
        ("t.u16", 2, 65000u16.to_le_bytes().to_vec()),
        ("t.i16", 3, (-3i16).to_le_bytes().to_vec()),
        ("t.u32", 4, 4_000_000_000u32.to_le_bytes().to_vec()),
        ("t.i32", 5, (-7i32).to_le_bytes().to_vec()),
        ("t.f32", 6, 1.5f32.to_le_bytes().to_vec()),
        ("t.bool", 7, vec![1]),
        ("t.u64", 10, u64::MAX.to_le_bytes().to_vec()),
        ("t.i64", 11, i64::MIN.to_le_bytes().to_vec()),
        ("t.f64", 12, (-0.25f64).to_le_bytes().to_vec()),
        ("", 0, vec![0]), // an empty key
    ];
    let mut strings = Vec::new(); // a string holding a NUL and bytes that are not UTF-8
    string(&mut strings, &[0xe2, 0x9c, 0x93, 0xff, 0, b'x']);
    kvs.push(("t.string", 8, strings));
    let mut array = [4u32.to_le_bytes().as_slice(), &17u64.to_le_bytes()].concat();
    (0..17u32).for_each(|v| array.extend(v.to_le_bytes()));
    kvs.push(("t.array.u32", 9, array));
    let mut tokens = [8u32.to_le_bytes().as_slice(), &5u64.to_le_bytes()].concat();
    for t in ["<s>", "</s>", "a", "", "é"] {
        string(&mut tokens, t.as_bytes());
    }
    kvs.push(("tokenizer.ggml.tokens", 9, tokens));
    kvs.push(("t.array.empty", 9, [12u32.to_le_bytes().as_slice(), &0u64.to_le_bytes()].concat()));

    // (name, ggml type, dims, bytes), in data order; sizes written out from the ggml block layouts.
    let tensors: Vec<(&str, u32, Vec<u64>, usize)> = vec![
        ("t.f32", 0, vec![33, 3], 33 * 3 * 4),
        ("t.f16", 1, vec![101], 202),
        ("t.q4_0", 2, vec![64, 2], 4 * 18),
        ("t.q5_1", 7, vec![32, 3], 3 * 24),
        ("t.q8_0", 8, vec![64, 3], 6 * 34),
        ("t.q2_k", 10, vec![256], 84),
        ("t.q3_k", 11, vec![256, 2], 2 * 110),
        ("t.empty", 0, vec![4, 0], 0),
        ("t.q5_k", 13, vec![256], 176),
        ("t.q6_k", 14, vec![256, 1, 2], 2 * 210),
        ("t.i8", 24, vec![5], 5),
        ("t.f64", 28, vec![3], 24),
        ("t.bf16", 30, vec![8, 2, 2, 3], 96 * 2),
    ];
    let pad = |n: usize| n.div_ceil(ALIGN) * ALIGN;
    let mut offsets = Vec::new();
    let mut at = 0;
    for t in &tensors {
        offsets.push(at);
        at = pad(at + t.3);
    }
    let mut noise = 0x9e37_79b9_7f4a_7c15u64;
    let mut fill = |o: &mut Vec<u8>, upto: usize| {
        while o.len() < upto {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            o.push((noise >> 24) as u8 | 1); // never zero: padding is not assumed to be
        }
    };

    let mut o = b"GGUF".to_vec();
    o.extend(3u32.to_le_bytes());
    o.extend((tensors.len() as u64).to_le_bytes());
    o.extend((kvs.len() as u64).to_le_bytes());
    for (key, ty, value) in &kvs {
        string(&mut o, key.as_bytes());
        o.extend(ty.to_le_bytes());
        o.extend(value);
    }
    for (i, (name, ty, dims, _)) in tensors.iter().enumerate() {
        string(&mut o, name.as_bytes());
        o.extend((dims.len() as u32).to_le_bytes());
        dims.iter().for_each(|d| o.extend(d.to_le_bytes()));
        o.extend(ty.to_le_bytes());
        o.extend((offsets[i] as u64).to_le_bytes());
    }
    let data_start = pad(o.len());
    for (i, t) in tensors.iter().enumerate() {
        fill(&mut o, data_start + offsets[i]);
        let end = o.len() + t.3;
        fill(&mut o, end);
    }
    let end = pad(o.len()); // data_start is aligned, so this pads the data section too
    fill(&mut o, end);
    o.extend(b"trailing bytes");
    o
}

#[test]
fn gguf_loader_on_synthetic_gguf() {
    let _g = lock();
    std::fs::create_dir_all(build_dir()).unwrap();
    let gguf = build_dir().join("synthetic.gguf");
    std::fs::write(&gguf, synthetic_gguf()).unwrap();
    let fixtures = format!("GGUF_FIXTURES={}", gguf.display());
    for (target, archive) in [("loader", "synthetic.gguf.wz"), ("loader-asan", "synthetic.gguf.asan.wz")] {
        let stdout = make_with(target, std::slice::from_ref(&fixtures));
        assert_loaded(&format!("make {target} {fixtures}"), &stdout, &gguf, &build_dir().join(archive));
    }
}
