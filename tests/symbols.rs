//! The shared library's dynamic symbol table is the C ABI: every symbol it defines must carry the
//! `wz_` prefix (nothing of Rust's std, zstd or other dependencies may leak out and clash with a
//! host program's), and every function the header declares must be there.
//!
//! Needs `nm` (binutils); a missing `nm` fails the test rather than skipping it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The C functions of `include/weightzip.h`, by name.
const EXPECTED: &[&str] = &[
    "wz_version",
    "wz_version_string",
    "wz_format_version",
    "wz_status_str",
    "wz_compress_bound",
    "wz_options_init",
    "wz_compress",
    "wz_decompress",
    "wz_frame_get_info",
];

/// `nm` symbol types that are definitions in text, initialised data, BSS or read-only data.
const CHECKED_TYPES: &[&str] = &["T", "D", "B", "R"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (a relative one taken from the package root,
/// where cargo runs tests) or `target/`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => root().join("target"),
    }
}

/// Builds the release library (once per test run) and returns the path of the shared object.
/// Always asks cargo (a no-op when it is up to date) so the test never inspects a stale library.
fn shared_library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(build_shared_library).clone()
}

fn build_shared_library() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(&cargo)
        .current_dir(root())
        .args(["build", "--release", "--lib"])
        .output()
        .unwrap_or_else(|e| panic!("could not run `{cargo} build --release --lib`: {e}"));
    assert!(
        out.status.success(),
        "`cargo build --release --lib` failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = target_dir().join("release/libweightzip.so");
    assert!(lib.is_file(), "{} does not exist after `cargo build --release --lib`", lib.display());
    lib
}

/// `(type, name)` of every defined dynamic symbol, names without any `@VERSION` suffix.
fn defined_dynamic_symbols(lib: &Path) -> Vec<(String, String)> {
    let out = Command::new("nm").arg("-D").arg("--defined-only").arg(lib).output().unwrap_or_else(|e| {
        panic!("required tool `nm` could not be run ({e}); install binutils (this test does not skip)")
    });
    assert!(
        out.status.success(),
        "nm -D --defined-only {} failed: {}\n{}",
        lib.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut symbols = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // "ADDRESS TYPE NAME", or "TYPE NAME" for symbols nm prints without an address.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (ty, name) = match fields.as_slice() {
            [_, ty, name] => (*ty, *name),
            [ty, name] => (*ty, *name),
            _ => panic!("unexpected nm output line: {line:?}"),
        };
        let name = name.split('@').next().unwrap_or(name);
        symbols.push((ty.to_string(), name.to_string()));
    }
    symbols
}

/// Names of the functions `include/weightzip.h` declares (identifiers `wz_…` followed by `(`
/// outside comments).
fn header_functions() -> BTreeSet<String> {
    let header = std::fs::read_to_string(root().join("include/weightzip.h")).expect("include/weightzip.h");
    // Drop /* */ and // comments.
    let mut code = String::new();
    let mut rest = header.as_str();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else {
            let c = rest.chars().next().unwrap();
            code.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    let mut names = BTreeSet::new();
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while let Some(off) = code[i..].find("wz_") {
        let start = i + off;
        let mut end = start;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        let starts_word = start == 0 || !is_ident(bytes[start - 1]);
        let next = code[end..].trim_start().chars().next();
        if starts_word && next == Some('(') {
            names.insert(code[start..end].to_string());
        }
        i = end.max(start + 3);
    }
    names
}

#[test]
fn exported_symbols_all_have_wz_prefix() {
    let lib = shared_library();
    let symbols = defined_dynamic_symbols(&lib);
    assert!(!symbols.is_empty(), "nm found no defined dynamic symbols in {}", lib.display());

    let leaked: Vec<String> = symbols
        .iter()
        .filter(|(ty, name)| CHECKED_TYPES.contains(&ty.as_str()) && !name.starts_with("wz_"))
        .map(|(ty, name)| format!("{ty} {name}"))
        .collect();
    assert!(
        leaked.is_empty(),
        "{} exports {} symbol(s) without the wz_ prefix:\n  {}",
        lib.display(),
        leaked.len(),
        leaked.join("\n  ")
    );

    let functions: BTreeSet<&str> = symbols.iter().filter(|(ty, _)| ty == "T").map(|(_, name)| name.as_str()).collect();
    let missing: Vec<&&str> = EXPECTED.iter().filter(|f| !functions.contains(**f)).collect();
    assert!(missing.is_empty(), "{} lacks expected functions {missing:?}; it exports {functions:?}", lib.display());
}

#[test]
fn header_functions_match_exports() {
    let declared = header_functions();
    for f in EXPECTED {
        assert!(declared.contains(*f), "include/weightzip.h does not declare {f}; it declares {declared:?}");
    }
    let lib = shared_library();
    let exported: BTreeSet<String> =
        defined_dynamic_symbols(&lib).into_iter().filter(|(ty, _)| ty == "T").map(|(_, name)| name).collect();
    let undefined: Vec<&String> = declared.difference(&exported).collect();
    assert!(undefined.is_empty(), "declared in weightzip.h but not exported by the library: {undefined:?}");
    let undeclared: Vec<&String> = exported.difference(&declared).collect();
    assert!(undeclared.is_empty(), "exported by the library but not declared in weightzip.h: {undeclared:?}");
}
