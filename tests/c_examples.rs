//! Runs what `c_examples/` holds against the real shared library: the C roundtrip example (plain
//! and under AddressSanitizer/UBSan/LeakSanitizer), the header's standalone compile as C99 and
//! C++11, and the Python ctypes bindings.
//!
//! These tests need `make`, a C and a C++ compiler and `python3`. A missing tool is a failure
//! with a message saying which, never a silent pass.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

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
    require_tool(&tool("MAKE", "make"), "run c_examples/Makefile");
    require_tool(&tool("CC", "cc"), "compile the C example");
    let mut cmd = Command::new(tool("MAKE", "make"));
    cmd.current_dir(root()).arg("-C").arg("c_examples").arg(target);
    match ld_library_path_without_target() {
        Some(p) => cmd.env("LD_LIBRARY_PATH", p),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    run_ok(&format!("make -C c_examples {target}"), &mut cmd)
}

/// Asserts that `stdout` has one line ending in "OK" per run of the example.
fn assert_ok_lines(what: &str, stdout: &str, at_least: usize) {
    let ok = stdout.lines().filter(|l| l.trim_end().ends_with(" OK")).count();
    assert!(ok >= at_least, "{what}: expected at least {at_least} line(s) ending in \"OK\", stdout:\n{stdout}");
}

#[test]
fn c_roundtrip_runs() {
    let _g = lock();
    let stdout = make("run");
    assert_ok_lines("make run", &stdout, 1);
    let size = std::fs::metadata(fixture()).expect("fixture").len();
    assert!(stdout.contains(&format!("{size} bytes")), "make run: summary lacks the input size {size}:\n{stdout}");
}

#[test]
fn c_roundtrip_under_sanitizers() {
    let _g = lock();
    let stdout = make("asan");
    assert_ok_lines("make asan", &stdout, 1);
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
    require_tool(&python, "run the Python bindings in c_examples/weightzip.py");
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
            .env("WEIGHTZIP_LIB", &lib)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg("-c")
            .arg(PYTHON_TEST)
            .arg(root().join("c_examples"))
            .arg(fixture())
            .arg(env!("CARGO_PKG_VERSION")),
    );
    assert!(stdout.contains("OK"), "python test printed no OK:\n{stdout}");
}

#[test]
fn python_module_main() {
    let (python, lib) = python_env();
    let stdout = run_ok(
        "python3 c_examples/weightzip.py FIXTURE 2",
        Command::new(&python)
            .current_dir(root())
            .env("WEIGHTZIP_LIB", &lib)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(root().join("c_examples/weightzip.py"))
            .arg(fixture())
            .arg("2"),
    );
    assert_ok_lines("python3 c_examples/weightzip.py", &stdout, 1);
    assert!(stdout.contains("ratio"), "no ratio in:\n{stdout}");
}
