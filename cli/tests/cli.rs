//! The `weightzip` command-line tool, run as a process in a private temporary directory:
//! roundtrips, JSON output, error exits, and the rules for output files (atomic, never clobber an
//! input, no overwrite without --force).

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/common/gguf_synth.rs"]
mod gguf_synth;
#[allow(dead_code)]
#[path = "../src/stats.rs"]
mod stats;

use std::path::Path;
use std::process::{Command, Output};

use common::{data_path, raw_fixture, st_tensors, Lcg, TempDir, RAW_FIXTURE, ST_FIXTURE};
use weightzip::frame::MIN_CHUNK_SIZE;
use weightzip::{Kind, Options};

use common::wz;

fn run(args: &[&str]) -> Output {
    run_cmd(wz().args(args))
}

fn run_cmd(c: &mut Command) -> Output {
    c.output().expect("run weightzip")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_success(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: exit {:?}\nstdout: {}\nstderr: {}", o.status, stdout(o), stderr(o));
}

/// Asserts a failing exit with a message on stderr that contains `needle`.
#[track_caller]
fn assert_failure(o: &Output, what: &str, needle: &str) {
    assert!(!o.status.success(), "{what}: expected failure, got success\nstdout: {}\nstderr: {}", stdout(o), stderr(o));
    let err = stderr(o);
    assert!(!err.trim().is_empty(), "{what}: no message on stderr");
    assert!(err.to_lowercase().contains(&needle.to_lowercase()), "{what}: stderr {err:?} does not mention {needle:?}");
}

fn json(o: &Output, what: &str) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {}", stdout(o)))
}

/// Copies the raw fixture into the temp dir (so no test can touch the original).
fn fixture_copy(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.join("in.bf16");
    std::fs::write(&path, raw_fixture()).unwrap();
    path
}

// Roundtrip ------------------------------------------------------------------------------------

#[test]
fn compress_decompress_verify_roundtrip() {
    let dir = TempDir::new("cli-roundtrip");
    let input = fixture_copy(&dir);
    let frame = dir.join("in.wz");
    let back = dir.join("back.bf16");

    let o = run(&["compress", "--kind", "bf16", p(&input), "-o", p(&frame)]);
    assert_success(&o, "compress");
    assert!(stderr(&o).contains("ratio"), "compress reports its ratio: {}", stderr(&o));
    let f = std::fs::read(&frame).unwrap();
    assert!(f.len() < raw_fixture().len());
    // The CLI writes exactly what the library makes.
    assert!(
        f == weightzip::compress(Kind::Bf16, raw_fixture(), &Options::default()).unwrap(),
        "CLI frame differs from the library's"
    );

    assert_success(&run(&["decompress", p(&frame), "-o", p(&back)]), "decompress");
    assert!(std::fs::read(&back).unwrap() == raw_fixture(), "decompressed bytes differ");

    let o = run(&["verify", p(&frame), p(&input)]);
    assert_success(&o, "verify IN ORIGINAL");
    assert!(stdout(&o).contains("OK"), "{}", stdout(&o));
    assert_success(&run(&["verify", p(&frame)]), "verify IN");

    // Options: thread count and chunk size.
    let frame2 = dir.join("in64k.wz");
    let o =
        run(&["compress", "--kind", "bf16", "--threads", "1", "--chunk-size", "65536", p(&input), "-o", p(&frame2)]);
    assert_success(&o, "compress --threads 1 --chunk-size 65536");
    let f2 = std::fs::read(&frame2).unwrap();
    let lib = weightzip::compress(
        Kind::Bf16,
        raw_fixture(),
        &Options { threads: 2, chunk_size: MIN_CHUNK_SIZE, progress: None, fast: false, row_len: 0 },
    )
    .unwrap();
    assert!(f2 == lib);
    assert_eq!(weightzip::read_info(&f2).unwrap().chunk_size, MIN_CHUNK_SIZE);
    let back2 = dir.join("back2.bf16");
    assert_success(&run(&["decompress", "--threads", "2", p(&frame2), "-o", p(&back2)]), "decompress --threads 2");
    assert!(std::fs::read(&back2).unwrap() == raw_fixture());

    // Nothing but the expected files (no temporaries left behind).
    assert_eq!(dir.entries(), vec!["back.bf16", "back2.bf16", "in.bf16", "in.wz", "in64k.wz"]);
}

#[test]
fn every_decode_kernel_verifies_the_same_frame() {
    // WZ_SIMD caps the decode kernel: the scalar, AVX2 and AVX-512 paths must all decode real data.
    let dir = TempDir::new("cli-simd");
    let input = fixture_copy(&dir);
    let frame = dir.join("in.wz");
    assert_success(
        &run(&["compress", "--kind", "bf16", "--chunk-size", "65536", p(&input), "-o", p(&frame)]),
        "compress",
    );
    for level in ["scalar", "avx2", "avx512"] {
        for threads in ["1", "2"] {
            let o = run_cmd(wz().env("WZ_SIMD", level).args(["verify", "--threads", threads, p(&frame), p(&input)]));
            assert_success(&o, &format!("verify with WZ_SIMD={level}, threads {threads}"));
        }
    }
}

#[test]
fn empty_input_roundtrips() {
    let dir = TempDir::new("cli-empty");
    let input = dir.join("empty.bf16");
    std::fs::write(&input, b"").unwrap();
    let frame = dir.join("empty.wz");
    let back = dir.join("back.bf16");
    assert_success(&run(&["compress", "--kind", "bf16", p(&input), "-o", p(&frame)]), "compress empty");
    assert_eq!(weightzip::read_info(&std::fs::read(&frame).unwrap()).unwrap().original_size, 0);
    assert_success(&run(&["decompress", p(&frame), "-o", p(&back)]), "decompress empty");
    assert_eq!(std::fs::read(&back).unwrap(), Vec::<u8>::new());
    assert_success(&run(&["verify", p(&frame), p(&input)]), "verify empty");
}

#[test]
fn verify_json() {
    let dir = TempDir::new("cli-verify-json");
    let input = fixture_copy(&dir);
    let frame = dir.join("in.wz");
    assert_success(&run(&["compress", "--kind", "bf16", p(&input), "-o", p(&frame)]), "compress");
    let flen = std::fs::metadata(&frame).unwrap().len();

    let o = run(&["verify", "--json", p(&frame), p(&input)]);
    assert_success(&o, "verify --json IN ORIGINAL");
    let j = json(&o, "verify --json");
    assert_eq!(j["ok"], serde_json::Value::Bool(true), "{j}");
    assert_eq!(j["kind"], "bf16");
    assert_eq!(j["original_size"].as_u64(), Some(raw_fixture().len() as u64));
    assert_eq!(j["frame_size"].as_u64(), Some(flen));
    assert_eq!(j["matches_original"], serde_json::Value::Bool(true));
    assert!(j["chunks"].as_u64().unwrap() >= 1);

    let o = run(&["verify", "--json", p(&frame)]);
    assert_success(&o, "verify --json IN");
    let j = json(&o, "verify --json IN");
    assert_eq!(j["ok"], serde_json::Value::Bool(true));
    assert!(j["matches_original"].is_null(), "no ORIGINAL given: {j}");
}

// Stats ----------------------------------------------------------------------------------------

#[test]
fn stats_json_on_the_raw_fixture() {
    let o = run(&["stats", "--kind", "bf16", "--json", p(&data_path(RAW_FIXTURE))]);
    assert_success(&o, "stats --json");
    let j = json(&o, "stats --json");
    for field in ["h_high", "h_low", "r_marginal", "h_model"] {
        assert!(j[field].is_f64(), "field {field} missing or not a number: {j}");
    }
    let r = j["r_marginal"].as_f64().unwrap();
    println!("stats on {RAW_FIXTURE}: {j}");
    assert!((1.4..=1.6).contains(&r), "r_marginal {r}");
    // Consistent with the library, and with its own definition.
    let s = stats::bf16_stats(raw_fixture());
    assert!((r - s.r_marginal).abs() < 1e-9);
    let (hh, hl) = (j["h_high"].as_f64().unwrap(), j["h_low"].as_f64().unwrap());
    assert!((r - 16.0 / (hh + hl)).abs() < 1e-9);
    assert!((0.0..=8.0).contains(&hh) && (0.0..=8.0).contains(&hl));
    let hm = j["h_model"].as_f64().unwrap();
    assert!((4.0..=16.0).contains(&hm));
    // The signed split's model: its symbol keeps the sign and drops a mantissa bit, so on
    // matrices of fair signs it is near the plain model, within a bit either way.
    let hs = j["h_model_sign_in_symbol"].as_f64().unwrap();
    assert!((hs - hm).abs() < 1.0 && (hs - s.h_model_signed).abs() < 1e-9, "{hs} vs {hm}");
    assert_eq!(j["values"].as_u64(), Some(raw_fixture().len() as u64 / 2));
    // The default kind is bf16, and the plain-text form works.
    let o = run(&["stats", p(&data_path(RAW_FIXTURE))]);
    assert_success(&o, "stats (text)");
    assert!(stdout(&o).contains("R_marginal"), "{}", stdout(&o));
}

#[test]
fn stats_on_the_safetensors_fixture() {
    let o = run(&["stats", "--kind", "bf16", "--json", p(&data_path(ST_FIXTURE))]);
    assert_success(&o, "stats --json on safetensors");
    let j = json(&o, "stats on safetensors");
    let total: usize = st_tensors().iter().map(|t| t.data.len()).sum();
    assert_eq!(j["values"].as_u64(), Some(total as u64 / 2), "all BF16 tensors, not the header: {j}");
    let r = j["r_marginal"].as_f64().unwrap();
    assert!((1.3..=1.7).contains(&r), "r_marginal {r}");
    let all: Vec<u8> = st_tensors().iter().flat_map(|t| t.data.iter().copied()).collect();
    assert!((r - stats::bf16_stats(&all).r_marginal).abs() < 1e-9);
    // Rows and columns as contexts: over the matrices (the fixture's 2-D tensors), none, row,
    // column, both; conditioning never adds entropy (side information is counted apart).
    let m = j["matrix_values"].as_u64().unwrap();
    assert!(m > 0 && m <= j["values"].as_u64().unwrap(), "{j}");
    let ctx = j["scale_contexts"].as_array().expect("scale_contexts");
    let bits: Vec<f64> = ctx.iter().map(|c| c["bits_per_value"].as_f64().unwrap()).collect();
    let names: Vec<&str> = ctx.iter().map(|c| c["context"].as_str().unwrap()).collect();
    assert_eq!(names, ["none", "row", "column", "row and column"]);
    assert!(bits[3] <= bits[1] && bits[1] <= bits[0] && bits[3] <= bits[2] && bits[2] <= bits[0], "{bits:?}");
    assert!(bits[0] > 4.0 && bits[0] < 16.0);
    assert_eq!(ctx[0]["side_bits_per_value"].as_f64(), Some(0.0));
    assert!(ctx[3]["side_bits_per_value"].as_f64().unwrap() > 0.0);
    let o = run(&["stats", p(&data_path(ST_FIXTURE))]);
    assert_success(&o, "stats (text) on safetensors");
    assert!(stdout(&o).contains("row and column"), "{}", stdout(&o));
    // A raw stream has no shape: no matrices.
    let o = run(&["stats", "--json", p(&data_path(RAW_FIXTURE))]);
    assert_eq!(json(&o, "stats raw")["matrix_values"].as_u64(), Some(0));
}

// Failures -------------------------------------------------------------------------------------

#[test]
fn missing_input() {
    let dir = TempDir::new("cli-missing");
    let missing = dir.join("nope.bf16");
    let out = dir.join("out");
    for (what, args) in [
        ("compress", vec!["compress", "--kind", "bf16", p(&missing), "-o", p(&out)]),
        ("decompress", vec!["decompress", p(&missing), "-o", p(&out)]),
        ("verify", vec!["verify", p(&missing)]),
        ("stats", vec!["stats", p(&missing)]),
        ("bench", vec!["bench", "--reps", "1", p(&missing)]),
    ] {
        let o = run(&args);
        assert_failure(&o, &format!("{what} of a missing file"), "nope.bf16");
        assert!(dir.entries().is_empty(), "{what}: left files behind: {:?}", dir.entries());
    }
    // verify with a missing ORIGINAL.
    let input = fixture_copy(&dir);
    let frame = dir.join("in.wz");
    assert_success(&run(&["compress", "--kind", "bf16", p(&input), "-o", p(&frame)]), "compress");
    assert_failure(&run(&["verify", p(&frame), p(&missing)]), "verify against a missing original", "nope.bf16");
}

#[test]
fn odd_length_input() {
    let dir = TempDir::new("cli-odd");
    let input = dir.join("odd.bf16");
    std::fs::write(&input, &raw_fixture()[..100_001]).unwrap();
    let out = dir.join("odd.wz");
    let o = run(&["compress", "--kind", "bf16", p(&input), "-o", p(&out)]);
    assert_failure(&o, "compress odd length", "whole number");
    assert_failure(&run(&["stats", p(&input)]), "stats odd length", "whole number");
    assert_eq!(dir.entries(), vec!["odd.bf16"], "no output, no temporary file");
}

#[test]
fn unknown_kind() {
    let dir = TempDir::new("cli-kind");
    let input = fixture_copy(&dir);
    let out = dir.join("x.wz");
    for kind in ["fp8", "bf-16", ""] {
        let o = run(&["compress", "--kind", kind, p(&input), "-o", p(&out)]);
        assert_failure(&o, &format!("compress --kind {kind:?}"), "unknown kind");
        assert_failure(&run(&["stats", "--kind", kind, p(&input)]), &format!("stats --kind {kind:?}"), "unknown kind");
    }
    assert_eq!(dir.entries(), vec!["in.bf16"]);
}

#[test]
fn corrupted_frames() {
    let dir = TempDir::new("cli-corrupt");
    let input = fixture_copy(&dir);
    let frame = dir.join("in.wz");
    assert_success(&run(&["compress", "--kind", "bf16", p(&input), "-o", p(&frame)]), "compress");
    let good = std::fs::read(&frame).unwrap();
    let mut rng = Lcg::new(1);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "payload flip",
            {
                let mut f = good.clone();
                let at = f.len() - 1 - rng.below_usize(f.len() / 2);
                f[at] ^= 0x08;
                f
            },
            "corrupt",
        ),
        (
            "header flip",
            {
                let mut f = good.clone();
                f[12] ^= 1;
                f
            },
            "corrupt",
        ),
        ("truncated", good[..good.len() - 7].to_vec(), "truncated"),
        (
            "bad magic",
            {
                let mut f = good.clone();
                f[0] = b'X';
                f
            },
            "magic",
        ),
        (
            "trailing byte",
            {
                let mut f = good.clone();
                f.push(0);
                f
            },
            "trailing",
        ),
        ("not a frame at all", raw_fixture()[..1000].to_vec(), "magic"),
    ];
    for (case, bytes, needle) in cases {
        let bad = dir.join("bad.wz");
        std::fs::write(&bad, &bytes).unwrap();
        let out = dir.join("out.bf16");
        assert_failure(&run(&["decompress", p(&bad), "-o", p(&out)]), &format!("decompress ({case})"), needle);
        assert!(!out.exists(), "{case}: output created by a failed decompress");
        assert_failure(&run(&["verify", p(&bad)]), &format!("verify ({case})"), needle);
        assert_failure(&run(&["verify", p(&bad), p(&input)]), &format!("verify ({case}) ORIGINAL"), needle);
        let o = run(&["verify", "--json", p(&bad)]);
        assert!(!o.status.success(), "verify --json ({case}) succeeded");
        assert_eq!(dir.entries(), vec!["bad.wz", "in.bf16", "in.wz"], "{case}: stray files");
    }
}

#[test]
fn verify_against_a_different_original() {
    let dir = TempDir::new("cli-verify-diff");
    let input = fixture_copy(&dir);
    let frame = dir.join("in.wz");
    assert_success(&run(&["compress", "--kind", "bf16", p(&input), "-o", p(&frame)]), "compress");
    // One value changed, a shorter file, an empty file.
    let other = dir.join("other.bf16");
    let mut changed = raw_fixture().to_vec();
    changed[12345] ^= 1;
    for (case, bytes) in [
        ("one bit changed", changed),
        ("one value shorter", raw_fixture()[..raw_fixture().len() - 2].to_vec()),
        ("empty", Vec::new()),
    ] {
        std::fs::write(&other, &bytes).unwrap();
        assert_failure(
            &run(&["verify", p(&frame), p(&other)]),
            &format!("verify against a different original ({case})"),
            "does not match",
        );
        let o = run(&["verify", "--json", p(&frame), p(&other)]);
        assert!(!o.status.success(), "verify --json against a different original ({case}) succeeded");
    }
}

#[test]
fn unwritable_output_directory_leaves_nothing() {
    let dir = TempDir::new("cli-nodir");
    let input = fixture_copy(&dir);
    let out = dir.join("no/such/dir/out.wz");
    assert_failure(
        &run(&["compress", "--kind", "bf16", p(&input), "-o", p(&out)]),
        "compress into a missing directory",
        "cannot",
    );
    assert_eq!(dir.entries(), vec!["in.bf16"]);
}

// Output-file rules ----------------------------------------------------------------------------

#[test]
fn refuses_to_overwrite_without_force() {
    let dir = TempDir::new("cli-force");
    let input = fixture_copy(&dir);
    let out = dir.join("out.wz");
    std::fs::write(&out, b"precious").unwrap();
    let o = run(&["compress", "--kind", "bf16", p(&input), "-o", p(&out)]);
    assert_failure(&o, "compress onto an existing file", "--force");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious", "existing output changed without --force");

    for flag in ["--force", "-f"] {
        std::fs::write(&out, b"precious").unwrap();
        assert_success(
            &run(&["compress", "--kind", "bf16", flag, p(&input), "-o", p(&out)]),
            &format!("compress {flag}"),
        );
        let f = std::fs::read(&out).unwrap();
        assert!(weightzip::decompress(&f, &Options::default()).unwrap() == raw_fixture());
    }

    // Same rules for decompress.
    let back = dir.join("back.bf16");
    std::fs::write(&back, b"precious").unwrap();
    assert_failure(&run(&["decompress", p(&out), "-o", p(&back)]), "decompress onto an existing file", "--force");
    assert_eq!(std::fs::read(&back).unwrap(), b"precious");
    assert_success(&run(&["decompress", "--force", p(&out), "-o", p(&back)]), "decompress --force");
    assert!(std::fs::read(&back).unwrap() == raw_fixture());
    assert_eq!(dir.entries(), vec!["back.bf16", "in.bf16", "out.wz"]);
}

#[test]
fn refuses_to_write_onto_its_input() {
    let dir = TempDir::new("cli-self");
    let input = fixture_copy(&dir);
    let original = std::fs::read(&input).unwrap();
    // The same path, the same path spelled differently, a symlink and a hard link to it.
    let link = dir.join("link.bf16");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let hard = dir.join("hard.bf16");
    std::fs::hard_link(&input, &hard).unwrap();
    let dotted = dir.path.join(".").join("in.bf16");
    for target in [&input, &dotted, &link, &hard] {
        for force in [false, true] {
            let mut args = vec!["compress", "--kind", "bf16"];
            if force {
                args.push("--force");
            }
            args.extend([p(&input), "-o", p(target)]);
            let o = run(&args);
            assert_failure(&o, &format!("compress -o {} (force {force})", target.display()), "input");
            assert!(std::fs::read(&input).unwrap() == original, "input changed");
        }
    }
    // decompress -o its own input frame.
    let frame = dir.join("in.wz");
    assert_success(&run(&["compress", "--kind", "bf16", p(&input), "-o", p(&frame)]), "compress");
    let fbytes = std::fs::read(&frame).unwrap();
    let o = run(&["decompress", "--force", p(&frame), "-o", p(&frame)]);
    assert_failure(&o, "decompress -o its input --force", "input");
    assert!(std::fs::read(&frame).unwrap() == fbytes, "frame changed");
    assert_eq!(dir.entries(), vec!["hard.bf16", "in.bf16", "in.wz", "link.bf16"]);
}

// Help -----------------------------------------------------------------------------------------

#[test]
fn help_for_every_subcommand() {
    let o = run(&["--help"]);
    assert_success(&o, "--help");
    let top = stdout(&o);
    for sub in ["compress", "decompress", "verify", "stats", "bench"] {
        assert!(top.contains(sub), "top-level help does not list {sub}");
        for form in [vec![sub, "--help"], vec!["help", sub]] {
            let o = run(&form);
            assert_success(&o, &format!("{form:?}"));
            let h = stdout(&o);
            assert!(h.contains("Usage"), "{form:?}: {h}");
            assert!(h.contains(sub), "{form:?}: {h}");
        }
    }
    // The documented default chunk size is the real one.
    let h = stdout(&run(&["compress", "--help"]));
    let flat = h.split_whitespace().collect::<Vec<_>>().join(" ");
    let tail = flat
        .split("decodable chunk (default ")
        .nth(1)
        .unwrap_or_else(|| panic!("compress --help documents the default chunk size: {h}"));
    let n: u32 = tail.split(')').next().unwrap().parse().expect("a number");
    assert_eq!(n, weightzip::frame::DEFAULT_CHUNK_SIZE, "compress --help says the default chunk size is {n}");
    let o = run(&["--version"]);
    assert_success(&o, "--version");
    assert!(stdout(&o).contains(env!("CARGO_PKG_VERSION")));
    // No subcommand, or an unknown one, is a usage error.
    assert!(!run(&[]).status.success());
    assert!(!run(&["frobnicate"]).status.success());
    // No input: standard input, as zstd reads it (here empty): an empty frame on stdout.
    let o = run(&["compress", "--kind", "bf16"]);
    assert_success(&o, "compress --kind bf16 with empty standard input");
    assert_eq!(weightzip::decompress(&o.stdout, &Options::default()).unwrap(), Vec::<u8>::new());
}

// Bench ----------------------------------------------------------------------------------------

#[test]
fn bench_json_on_the_fixture() {
    let o = run(&["bench", "--kind", "bf16", "--reps", "1", "--json", p(&data_path(RAW_FIXTURE))]);
    assert_success(&o, "bench --json");
    let j = json(&o, "bench --json");
    assert_eq!(j["bytes"].as_u64(), Some(raw_fixture().len() as u64));
    let methods = j["methods"].as_array().expect("methods array");
    let ratio = |name: &str| -> f64 {
        let m = methods.iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("method {name} missing: {j}"));
        let r = m["ratio"].as_f64().unwrap();
        // serde_json's default float parser may be off by an ulp: compare with a tolerance.
        let c = m["compressed_bytes"].as_u64().expect("compressed_bytes");
        let expect = raw_fixture().len() as f64 / c as f64;
        assert!((expect - r).abs() < 1e-12, "{name}: ratio {r} but bytes {} / {c} = {expect}", raw_fixture().len());
        r
    };
    let (w, z3, z19) = (ratio("weightzip"), ratio("zstd -3"), ratio("zstd -19"));
    println!(
        "bench on {RAW_FIXTURE}: weightzip {w:.4}, zstd -3 {z3:.4}, zstd -19 {z19:.4}, R_marginal {}",
        j["r_marginal"]
    );
    assert!(w > z3 && w > z19, "weightzip {w} must beat zstd -3 {z3} and zstd -19 {z19}");
    assert!(w > j["r_marginal"].as_f64().unwrap(), "weightzip beats the byte-marginal bound on real weights");
}

#[test]
fn output_onto_a_directory_fails_cleanly() {
    let dir = TempDir::new("cli-outdir");
    let input = fixture_copy(&dir);
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("keep"), b"x").unwrap();
    for force in [false, true] {
        let mut args = vec!["compress", "--kind", "bf16"];
        if force {
            args.push("--force");
        }
        args.extend([p(&input), "-o", p(&sub)]);
        let o = run(&args);
        assert!(!o.status.success(), "compress -o DIR (force {force}) succeeded");
        assert!(!stderr(&o).trim().is_empty(), "no message");
        assert!(sub.is_dir(), "directory replaced");
        assert_eq!(std::fs::read(sub.join("keep")).unwrap(), b"x");
        assert_eq!(dir.entries(), vec!["in.bf16", "sub"], "stray files (force {force})");
    }
}

// GGUF archives --------------------------------------------------------------------------------

const QWEN_GGUF: &str = "qwen25coder15b-q4km-mini.gguf";

fn qwen_file() -> &'static [u8] {
    static F: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    F.get_or_init(|| std::fs::read(data_path(QWEN_GGUF)).unwrap())
}

/// The library's archive of `file` (default options).
fn library_archive(file: &[u8]) -> Vec<u8> {
    let mut c = std::io::Cursor::new(Vec::new());
    weightzip::archive::compress_gguf(file, &mut c, &Options::default()).unwrap();
    c.into_inner()
}

/// Copies the qwen fixture into the temp dir as `name`.
fn gguf_copy(dir: &TempDir, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, qwen_file()).unwrap();
    path
}

#[track_caller]
fn assert_no_temporaries(dir: &TempDir, what: &str) {
    for n in dir.entries() {
        assert!(!(n.starts_with('.') && n.contains(".tmp-")), "{what}: temporary file {n} left behind");
    }
}

#[test]
fn gguf_compress_and_decompress_with_default_names() {
    let dir = TempDir::new("cli-gguf-names");
    let input = gguf_copy(&dir, "m.gguf");
    let wz = dir.join("m.gguf.wz");
    let o = run(&["compress", p(&input)]);
    assert_success(&o, "compress m.gguf");
    assert!(stderr(&o).contains("tensors") && stderr(&o).contains("ratio"), "{}", stderr(&o));
    let arc = std::fs::read(&wz).expect("compress writes INPUT.wz by default");
    assert!(arc == library_archive(qwen_file()), "the CLI archive differs from the library's");

    // An existing archive is kept without --force, replaced with it.
    std::fs::write(&wz, b"precious").unwrap();
    assert_failure(&run(&["compress", p(&input)]), "compress onto an existing archive", "--force");
    assert_eq!(std::fs::read(&wz).unwrap(), b"precious");
    assert_success(&run(&["compress", "--force", "--threads", "1", p(&input)]), "compress --force");
    assert!(std::fs::read(&wz).unwrap() == arc, "--threads 1 gives the same archive");

    // decompress m.gguf.wz writes m.gguf: refused while the input is there, written once it is gone.
    assert_failure(&run(&["decompress", p(&wz)]), "decompress onto an existing m.gguf", "--force");
    assert!(std::fs::read(&input).unwrap() == qwen_file());
    std::fs::rename(&input, dir.join("orig.gguf")).unwrap();
    assert_success(&run(&["decompress", p(&wz)]), "decompress m.gguf.wz");
    assert!(std::fs::read(&input).unwrap() == qwen_file(), "restored file differs");
    std::fs::write(&input, b"old").unwrap();
    assert_success(&run(&["decompress", "-f", "--threads", "1", p(&wz)]), "decompress -f");
    assert!(std::fs::read(&input).unwrap() == qwen_file());
    assert_no_temporaries(&dir, "names");
    assert_eq!(dir.entries(), vec!["m.gguf", "m.gguf.wz", "orig.gguf"]);
}

#[test]
fn gguf_compress_and_decompress_never_write_over_their_input() {
    let dir = TempDir::new("cli-gguf-self");
    let input = gguf_copy(&dir, "m.gguf");
    let link = dir.join("link.wz");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let hard = dir.join("hard.wz");
    std::fs::hard_link(&input, &hard).unwrap();
    let dotted = dir.path.join(".").join("m.gguf");
    for target in [&input, &dotted, &link, &hard] {
        for force in [false, true] {
            let mut args = vec!["compress"];
            if force {
                args.push("--force");
            }
            args.extend([p(&input), "-o", p(target)]);
            assert_failure(&run(&args), &format!("compress -o {} (force {force})", target.display()), "input");
            assert!(std::fs::read(&input).unwrap() == qwen_file(), "the input changed");
        }
    }
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    // The same for decompress and its archive.
    let wz = dir.join("a.wz");
    assert_success(&run(&["compress", p(&input), "-o", p(&wz)]), "compress");
    let arc = std::fs::read(&wz).unwrap();
    let wlink = dir.join("wlink");
    std::os::unix::fs::symlink(&wz, &wlink).unwrap();
    let whard = dir.join("whard");
    std::fs::hard_link(&wz, &whard).unwrap();
    for target in [&wz, &wlink, &whard] {
        let o = run(&["decompress", "--force", p(&wz), "-o", p(target)]);
        assert_failure(&o, &format!("decompress -o {}", target.display()), "input");
        assert!(std::fs::read(&wz).unwrap() == arc, "the archive changed");
    }
    assert_no_temporaries(&dir, "self");
    assert_eq!(dir.entries(), vec!["a.wz", "hard.wz", "link.wz", "m.gguf", "whard", "wlink"]);
}

#[test]
fn gguf_ls_and_ls_json() {
    let dir = TempDir::new("cli-gguf-ls");
    let wz = dir.join("m.wz");
    std::fs::write(&wz, library_archive(qwen_file())).unwrap();
    let g = weightzip::gguf::read(qwen_file()).unwrap();

    let o = run(&["ls", p(&wz)]);
    assert_success(&o, "ls");
    let text = stdout(&o);
    for t in &g.tensors {
        assert!(text.contains(&t.name), "ls does not list {}", t.name);
    }
    assert!(text.contains(&format!("{} tensors", g.tensors.len())), "{text}");

    let o = run(&["ls", "--json", p(&wz)]);
    assert_success(&o, "ls --json");
    let j = json(&o, "ls --json");
    assert_eq!(j["container"], "gguf");
    assert_eq!(j["original_size"].as_u64(), Some(qwen_file().len() as u64));
    assert_eq!(j["archive_size"].as_u64(), Some(std::fs::metadata(&wz).unwrap().len()));
    assert_eq!(j["metadata_size"].as_u64(), Some(g.data_start));
    assert!(j["ratio"].as_f64().is_some_and(|r| r > 1.0), "{}", j["ratio"]);
    let ts = j["tensors"].as_array().expect("tensors array");
    assert_eq!(ts.len(), g.tensors.len());
    for (t, gt) in ts.iter().zip(&g.tensors) {
        assert_eq!(t["name"], gt.name.as_str());
        assert_eq!(t["type"], gt.type_name());
        assert_eq!(t["type_id"].as_u64(), Some(gt.ggml_type as u64));
        assert_eq!(t["original_offset"].as_u64(), Some(gt.offset));
        assert_eq!(t["original_size"].as_u64(), gt.len);
        let dims: Vec<u64> = t["dims"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
        assert_eq!(dims, gt.dims);
        assert!(t["ratio"].is_number() && t["ratio"].as_f64().unwrap() > 0.0, "{}: ratio {}", gt.name, t["ratio"]);
        assert_eq!(t["sha256"].as_str().map(str::len), Some(64));
    }

    // A frame's header flags, by number and by name.
    let golden = common::root().join("tests/golden/bf16-ctx-signs.wzf");
    let o = run(&["ls", "--json", p(&golden)]);
    assert_success(&o, "ls --json of a frame");
    let j = json(&o, "ls --json of a frame");
    assert_eq!((j["method"].as_str(), j["flags"].as_u64()), (Some("Bf16Ctx"), Some(5)), "{j}");
    assert_eq!(j["flag_names"], serde_json::json!(["sign in symbol", "column signs"]));
    let o = run(&["ls", p(&golden)]);
    assert!(stdout(&o).contains("method Bf16Ctx (sign in symbol, column signs),"), "{}", stdout(&o));

    let o = run(&["ls", "--help"]);
    assert_success(&o, "ls --help");
    assert!(stdout(&o).contains("--json"), "{}", stdout(&o));
    // ls of something that is not an archive.
    let gguf = gguf_copy(&dir, "m.gguf");
    assert_failure(&run(&["ls", p(&gguf)]), "ls of a GGUF", "magic");
}

#[test]
fn gguf_verify_against_the_original() {
    let dir = TempDir::new("cli-gguf-verify");
    let input = gguf_copy(&dir, "m.gguf");
    let wz = dir.join("m.wz");
    assert_success(&run(&["compress", p(&input), "-o", p(&wz)]), "compress");
    let o = run(&["verify", p(&wz), p(&input)]);
    assert_success(&o, "verify ARCHIVE ORIGINAL");
    assert!(stdout(&o).contains("OK"), "{}", stdout(&o));
    assert_success(&run(&["verify", p(&wz)]), "verify ARCHIVE");
    let o = run(&["verify", "--json", p(&wz), p(&input)]);
    assert_success(&o, "verify --json");
    let j = json(&o, "verify --json");
    assert_eq!(j["ok"], true);
    assert_eq!(j["matches_original"], true);
    assert_eq!(j["tensors"].as_u64(), Some(weightzip::gguf::read(qwen_file()).unwrap().tensors.len() as u64));

    // A copy of the original with one byte changed, in a tensor and in the metadata; one byte
    // longer; one byte shorter.
    let g = weightzip::gguf::read(qwen_file()).unwrap();
    let in_tensor = (g.tensors[3].offset + 5) as usize;
    let changed = dir.join("changed.gguf");
    for at in [in_tensor, 20, qwen_file().len() - 1] {
        let mut b = qwen_file().to_vec();
        b[at] ^= 0x01;
        std::fs::write(&changed, &b).unwrap();
        let o = run(&["verify", p(&wz), p(&changed)]);
        assert_failure(&o, &format!("verify against a copy changed at {at}"), &format!("byte {at}"));
    }
    let mut longer = qwen_file().to_vec();
    longer.push(0);
    std::fs::write(&changed, &longer).unwrap();
    assert_failure(&run(&["verify", p(&wz), p(&changed)]), "verify against a longer copy", "does not restore");
    std::fs::write(&changed, &qwen_file()[..qwen_file().len() - 1]).unwrap();
    assert_failure(&run(&["verify", p(&wz), p(&changed)]), "verify against a shorter copy", "does not restore");
}

#[test]
fn gguf_compress_and_decompress_json() {
    let dir = TempDir::new("cli-gguf-json");
    let input = gguf_copy(&dir, "m.gguf");
    let wz = dir.join("m.wz");
    let o = run(&["compress", "--json", p(&input), "-o", p(&wz)]);
    assert_success(&o, "compress --json");
    let j = json(&o, "compress --json");
    // (No "container" field since safetensors archives came; if it comes back it must be right.)
    assert!(j["container"].is_null() || j["container"] == "gguf", "{j}");
    assert_eq!(j["original_size"].as_u64(), Some(qwen_file().len() as u64));
    assert_eq!(j["archive_size"].as_u64(), Some(std::fs::metadata(&wz).unwrap().len()));
    assert_eq!(j["tensors"].as_u64(), Some(weightzip::gguf::read(qwen_file()).unwrap().tensors.len() as u64));
    assert!(j["ratio"].as_f64().is_some_and(|r| r > 1.0));
    assert!(j["seconds"].is_number());
    let back = dir.join("back.gguf");
    let o = run(&["decompress", "--json", p(&wz), "-o", p(&back)]);
    assert_success(&o, "decompress --json");
    let j = json(&o, "decompress --json");
    assert_eq!(j["original_size"].as_u64(), Some(qwen_file().len() as u64));
    assert_eq!(j["archive_size"].as_u64(), Some(std::fs::metadata(&wz).unwrap().len()));
    assert!(std::fs::read(&back).unwrap() == qwen_file());
}

#[test]
fn gguf_compress_of_a_bad_file_leaves_nothing() {
    use gguf_synth::mixed;
    let dir = TempDir::new("cli-gguf-bad");
    let mb = mixed();
    let b = mb.build();
    let align = mb.kvs.iter().position(|(k, _)| k == b"general.alignment").unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated header", b.bytes[..60].to_vec(), "truncated"),
        ("bad magic", b.with_u32(0, u32::from_le_bytes(*b"GGUX")), "gguf"),
        ("version 1", b.with_u32(b.pos_version, 1), "version"),
        ("offset past the end", b.with_u64(b.info_pos[0].offset, 1 << 40), "outside"),
        ("overlap", b.with_u64(b.info_pos[1].offset, 0), "overlap"),
        ("cut in the data", b.bytes[..b.expected[1].offset as usize + 7].to_vec(), "truncated"),
        ("alignment 3", b.with_u32(b.kv_value_pos[align], 3), "malformed"),
        ("empty", Vec::new(), "gguf"),
    ];
    for (what, bytes, needle) in cases {
        let input = dir.join("bad.gguf");
        std::fs::write(&input, &bytes).unwrap();
        assert_failure(&run(&["compress", p(&input)]), &format!("compress {what}"), needle);
        assert_eq!(dir.entries(), vec!["bad.gguf"], "{what}: output or temporary file left behind");
        let out = dir.join("out.wz");
        assert_failure(
            &run(&["compress", "--force", p(&input), "-o", p(&out)]),
            &format!("compress -o {what}"),
            needle,
        );
        assert_eq!(dir.entries(), vec!["bad.gguf"], "{what}: output or temporary file left behind");
    }
}

#[test]
fn gguf_damaged_archive_fails_to_decompress_and_verify() {
    let dir = TempDir::new("cli-gguf-damaged");
    let arc = library_archive(qwen_file());
    let a = weightzip::archive::Archive::from_bytes(&arc).unwrap();
    let k = 4;
    let t = &a.tensors()[k];
    let name = String::from_utf8_lossy(&t.name).into_owned();
    let mut m = arc.clone();
    m[(t.arc_offset + t.arc_size * 2 / 3) as usize] ^= 0x10;
    let wz = dir.join("damaged.wz");
    std::fs::write(&wz, &m).unwrap();
    let out = dir.join("out.gguf");
    assert_failure(&run(&["decompress", p(&wz), "-o", p(&out)]), "decompress a damaged archive", "corrupt");
    assert_eq!(dir.entries(), vec!["damaged.wz"], "output or temporary file left behind");
    // Default output name too.
    assert_failure(&run(&["decompress", p(&wz)]), "decompress a damaged archive", "corrupt");
    assert_eq!(dir.entries(), vec!["damaged.wz"], "output or temporary file left behind");
    let o = run(&["verify", p(&wz)]);
    assert_failure(&o, "verify a damaged archive", &format!("tensor {k}"));
    assert!(stderr(&o).contains(&name), "verify does not name the tensor {name}: {}", stderr(&o));

    // The metadata frame damaged instead.
    let ex = a.index().extra;
    let mut m = arc.clone();
    m[(ex.offset + ex.size / 2) as usize] ^= 0x10;
    std::fs::write(&wz, &m).unwrap();
    assert_failure(&run(&["verify", p(&wz)]), "verify with damaged metadata", "corrupt");
    assert_failure(&run(&["decompress", p(&wz), "-o", p(&out)]), "decompress with damaged metadata", "corrupt");
    assert_eq!(dir.entries(), vec!["damaged.wz"]);
    // A truncated archive.
    std::fs::write(&wz, &arc[..arc.len() / 2]).unwrap();
    assert_failure(&run(&["decompress", p(&wz), "-o", p(&out)]), "decompress a truncated archive", "truncated");
    assert_failure(&run(&["ls", p(&wz)]), "ls a truncated archive", "truncated");
    assert_eq!(dir.entries(), vec!["damaged.wz"]);
}

/// `weightzip ls ARCHIVE | head -1`: once the reader has gone, the tool stops quietly (killed by
/// SIGPIPE like other Unix tools, or a one-line error), never with a panic and a backtrace
/// ("failed printing to stdout: Broken pipe", exit 101, as it did before SIGPIPE was restored).
#[test]
fn ls_into_a_closed_pipe_does_not_panic() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let dir = TempDir::new("cli-gguf-pipe");
    let arc = dir.join("m.wz");
    std::fs::write(&arc, library_archive(qwen_file())).unwrap();
    // A pipe whose reading end is closed before the tool starts: its first write fails (EPIPE).
    let mut fds = [0i32; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read_end);
    let o = wz().args(["ls", p(&arc)]).stdout(std::process::Stdio::from(write_end)).output().unwrap();
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "ls into a closed pipe panics: exit {:?}, stderr {err}", o.status.code());
}

#[test]
fn gguf_compress_with_a_chunk_size() {
    // Any chunk size works on a quantized GGUF: rounded per tensor to whole blocks.
    let dir = TempDir::new("cli-gguf-chunk");
    let input = gguf_copy(&dir, "m.gguf");
    let wz = dir.join("m.wz");
    assert_success(
        &run(&["compress", "--chunk-size", "65536", p(&input), "-o", p(&wz)]),
        "compress --chunk-size 65536",
    );
    let mut c = std::io::Cursor::new(Vec::new());
    let o = Options { threads: 0, chunk_size: MIN_CHUNK_SIZE, progress: None, fast: false, row_len: 0 };
    weightzip::archive::compress_gguf(qwen_file(), &mut c, &o).unwrap();
    assert!(std::fs::read(&wz).unwrap() == c.into_inner(), "CLI and library differ at chunk size 65536");
    assert_success(&run(&["verify", p(&wz), p(&input)]), "verify");
    // Below the frame minimum it is raised to the minimum (rounded to whole blocks): the same
    // archive as 64 KiB.
    let wz2 = dir.join("m2.wz");
    assert_success(&run(&["compress", "--chunk-size", "1000", p(&input), "-o", p(&wz2)]), "chunk size 1000");
    assert!(std::fs::read(&wz2).unwrap() == std::fs::read(&wz).unwrap(), "chunk size 1000 differs from 65536");
}

#[test]
fn gguf_compress_fast() {
    // --fast: the library's fast archive, smaller than 1% over the default one, restored byte
    // for byte by decompress and verify.
    let dir = TempDir::new("cli-gguf-fast");
    let input = gguf_copy(&dir, "m.gguf");
    let wz = dir.join("m.wz");
    assert_success(&run(&["compress", "--fast", p(&input), "-o", p(&wz)]), "compress --fast");
    let mut c = std::io::Cursor::new(Vec::new());
    weightzip::archive::compress_gguf(qwen_file(), &mut c, &Options { fast: true, ..Default::default() }).unwrap();
    let arc = std::fs::read(&wz).unwrap();
    assert!(arc == c.into_inner(), "CLI and library differ with --fast");
    let default = library_archive(qwen_file());
    assert!(arc != default && (arc.len() as f64) < default.len() as f64 * 1.01, "{} vs {}", arc.len(), default.len());
    assert_success(&run(&["verify", p(&wz), p(&input)]), "verify");
    let back = dir.join("back.gguf");
    assert_success(&run(&["decompress", p(&wz), "-o", p(&back)]), "decompress");
    assert!(std::fs::read(&back).unwrap() == qwen_file());
}

/// SIGINT at any moment of a compress or decompress leaves either the complete output or none,
/// and never a temporary file. A signal that arrives after the output was renamed into place
/// (the process has not exited yet) fails the run but leaves the complete output.
#[test]
fn interrupted_runs_leave_no_temporaries() {
    let dir = TempDir::new("cli-gguf-sigint");
    let file = std::fs::read(data_path("minilm-l6-q4_k_m.gguf")).unwrap();
    let input = dir.join("m.gguf");
    std::fs::write(&input, &file).unwrap();
    let wz = dir.join("m.wz");
    assert_success(&run(&["compress", p(&input), "-o", p(&wz)]), "compress");
    let arc = std::fs::read(&wz).unwrap();
    let mut interrupted = 0;
    for (args, out, want) in [
        (vec!["compress", "--threads", "1", p(&input), "-o"], dir.join("c.wz"), &arc),
        (vec!["decompress", "--threads", "1", p(&wz), "-o"], dir.join("d.gguf"), &file),
    ] {
        for delay_ms in [5u64, 20, 40, 70, 110, 160] {
            let _ = std::fs::remove_file(&out);
            let child = wz_cmd_spawn(&args, &out);
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let o = child.wait_with_output().unwrap();
            let what = format!("{} interrupted after {delay_ms} ms", args[0]);
            assert_no_temporaries(&dir, &what);
            if o.status.success() {
                assert!(std::fs::read(&out).unwrap() == *want, "{what}: finished with wrong bytes");
            } else {
                interrupted += 1;
                if out.exists() {
                    assert!(std::fs::read(&out).unwrap() == *want, "{what}: failed and left a wrong output");
                }
                assert!(!stderr(&o).contains("panicked"), "{what}: {}", stderr(&o));
            }
        }
    }
    println!("{interrupted} of 12 runs interrupted");
    assert!(interrupted > 0, "no run was interrupted: the test did not test anything");
}

fn wz_cmd_spawn(args: &[&str], out: &Path) -> std::process::Child {
    wz().args(args).arg(out).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
}
