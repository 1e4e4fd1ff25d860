//! Helpers shared by the integration tests: the real-data fixtures, a fixed-seed generator,
//! temporary directories and the command-line tool.
//!
//! Each test crate includes this module with `mod common;` (the tool's tests, in `cli/tests/`,
//! with `#[path]`); not every crate uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use weightzip::safetensors;

/// The repository root (the library's package directory; the tool's is `cli/` under it).
pub fn root() -> &'static Path {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("tests/data").is_dir() {
        here
    } else {
        here.parent().expect("the tool's package lies inside the repository")
    }
}

/// Absolute path of a file under `tests/data`.
pub fn data_path(name: &str) -> PathBuf {
    root().join("tests/data").join(name)
}

/// The `weightzip` command-line tool, with the SIMD override of the test environment removed.
/// The tool's own tests get the binary cargo built for them; the library's tests build it
/// with cargo once per test process (a no-op when it is up to date, so never a stale binary).
pub fn wz() -> std::process::Command {
    let mut c = std::process::Command::new(cli_exe());
    c.env_remove("WZ_SIMD");
    c
}

/// Path of the `weightzip` binary (see `wz`).
pub fn cli_exe() -> PathBuf {
    if let Some(exe) = option_env!("CARGO_BIN_EXE_weightzip") {
        return PathBuf::from(exe);
    }
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
        let mut cmd = std::process::Command::new(&cargo);
        cmd.current_dir(root()).args(["build", "-p", "weightzip-cli", "--bin", "weightzip"]);
        if profile == "release" {
            cmd.arg("--release");
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("could not run `{cargo} build`: {e}"));
        assert!(out.status.success(), "building the CLI failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(d) if !d.is_empty() => root().join(d),
            _ => root().join("target"),
        };
        let exe = target.join(profile).join("weightzip");
        assert!(exe.is_file(), "{} missing after cargo build", exe.display());
        exe
    })
    .clone()
}

pub const RAW_FIXTURE: &str = "minilm-l6-ffn01.bf16";
pub const ST_FIXTURE: &str = "minilm-l6-layer0-bf16.safetensors";

/// The raw bf16 fixture (real all-MiniLM-L6-v2 weights), read once.
pub fn raw_fixture() -> &'static [u8] {
    static RAW: OnceLock<Vec<u8>> = OnceLock::new();
    RAW.get_or_init(|| {
        let b = std::fs::read(data_path(RAW_FIXTURE)).expect("read raw fixture");
        assert!(!b.is_empty() && b.len().is_multiple_of(2), "raw fixture must be a non-empty even-length bf16 stream");
        b
    })
}

/// The safetensors fixture file, read once.
pub fn st_file() -> &'static [u8] {
    static ST: OnceLock<Vec<u8>> = OnceLock::new();
    ST.get_or_init(|| std::fs::read(data_path(ST_FIXTURE)).expect("read safetensors fixture"))
}

/// A named real tensor.
pub struct Tensor {
    pub name: String,
    pub data: &'static [u8],
}

/// The BF16 tensors of the safetensors fixture, in file order.
pub fn st_tensors() -> Vec<Tensor> {
    let file = st_file();
    let list = safetensors::read_tensors(file).expect("parse safetensors fixture");
    let v: Vec<Tensor> = list
        .iter()
        .filter(|t| t.dtype == "BF16")
        .map(|t| Tensor { name: t.name.clone(), data: &file[t.offset as usize..(t.offset + t.len) as usize] })
        .collect();
    assert_eq!(v.len(), 19, "the safetensors fixture holds 19 BF16 tensors");
    v
}

/// Every real tensor of both fixtures: the raw stream first, then the safetensors tensors.
pub fn all_tensors() -> Vec<Tensor> {
    let mut v = vec![Tensor { name: RAW_FIXTURE.to_string(), data: raw_fixture() }];
    v.extend(st_tensors());
    v
}

/// The seeded generator every test shares (the library's unit tests and the fuzz seeds too).
#[allow(unused_imports)] // not every test crate draws random data
pub use weightzip::test_rng::Lcg;

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "weightzip-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
    /// Fails unless no temporary output file (`.NAME.tmp-…`, see `atomic::write_file`) is left.
    pub fn assert_no_temporaries(&self, what: &str) {
        for n in self.entries() {
            assert!(!(n.starts_with('.') && n.contains(".tmp-")), "{what}: temporary file {n} left behind");
        }
    }
    /// Names of the entries in the directory, sorted.
    pub fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.path)
            .expect("read temp dir")
            .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A frame of kind `bytes` claiming `n` zero bytes (a multiple of 256 KiB) in 256 KiB chunks,
/// each the same small zstd chunk: a valid frame that decodes to `n` zeros, about 36 bytes of
/// frame per 256 KiB claimed. Built from one real one-chunk frame (`compress` of 256 KiB of
/// zeros) with the chunk table repeated and the checksums recomputed.
pub fn zeros_frame(n: u64) -> Vec<u8> {
    use weightzip::frame::{CHECK_LEN, CHUNK_ENTRY_LEN, HEADER_LEN};
    use xxhash_rust::xxh3::xxh3_64;
    const CHUNK: usize = 256 << 10;
    assert!(n > 0 && n.is_multiple_of(CHUNK as u64));
    let one = weightzip::compress(weightzip::Kind::Bytes, &vec![0u8; CHUNK], &weightzip::Options::default()).unwrap();
    let info = weightzip::read_info(&one).unwrap();
    assert_eq!(
        (info.chunk_count, info.method),
        (1, weightzip::Method::Grouped),
        "256 KiB of zeros codes to one zstd chunk"
    );
    let model = &one[HEADER_LEN..HEADER_LEN + info.model_size as usize];
    let entry_at = HEADER_LEN + model.len();
    let entry = &one[entry_at..entry_at + CHUNK_ENTRY_LEN];
    let payload = &one[entry_at + CHUNK_ENTRY_LEN + CHECK_LEN..];
    let chunks = n / CHUNK as u64;
    let mut h = one[..HEADER_LEN].to_vec();
    h[8..16].copy_from_slice(&n.to_le_bytes());
    h[20..24].copy_from_slice(&(chunks as u32).to_le_bytes());
    h[32..40].copy_from_slice(&(payload.len() as u64 * chunks).to_le_bytes());
    let check = xxh3_64(&h[..40]);
    h[40..48].copy_from_slice(&check.to_le_bytes());
    let mut meta = model.to_vec();
    for _ in 0..chunks {
        meta.extend_from_slice(entry);
    }
    let mut f = h;
    f.extend_from_slice(&meta);
    f.extend_from_slice(&xxh3_64(&meta).to_le_bytes());
    for _ in 0..chunks {
        f.extend_from_slice(payload);
    }
    f
}

/// Runs the named tests of the calling test binary again in a child process with `WZ_SIMD`
/// capped at `level` (`scalar`, `avx2`), so the lower kernels decode the same data the best
/// kernel does in the parent. Each must pass and must have run.
pub fn rerun_with_kernel(level: &str, tests: &[&str]) {
    rerun_with(&[("WZ_SIMD", level)], tests);
}

/// `rerun_with_kernel("avx2", tests)` with the AVX2 kernels' table lookups fixed to `mode`
/// (`WZ_GATHER`: `hardware` gathers or scalar `loads`), so both ways are checked whichever this
/// CPU would pick.
pub fn rerun_with_gather(mode: &str, tests: &[&str]) {
    rerun_with(&[("WZ_SIMD", "avx2"), ("WZ_GATHER", mode)], tests);
}

fn rerun_with(env: &[(&str, &str)], tests: &[&str]) {
    let exe = std::env::current_exe().expect("test binary");
    for name in tests {
        let o = std::process::Command::new(&exe)
            .args(["--exact", name, "--test-threads=1"])
            .envs(env.iter().copied())
            .output()
            .expect("run the test binary");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{name} under {env:?} failed:\n{out}\n{}", String::from_utf8_lossy(&o.stderr));
        assert!(out.contains("1 passed"), "{name} under {env:?} did not run:\n{out}");
    }
}

/// Compresses `src` (with rows of `cols` values, 0: none, and chunks of `cs` bytes, 0: the
/// default) and checks that the frame does not depend on the thread count and decodes to `src`
/// every way: 1 and 2 threads, every kernel level, each chunk alone through the reader and at
/// every level. Returns the frame.
pub fn frame_roundtrips(kind: weightzip::Kind, src: &[u8], cols: u64, cs: u32, label: &str) -> Vec<u8> {
    let f = weightzip::compress(kind, src, &frame_opts(1, cs, cols)).unwrap();
    assert!(
        f == weightzip::compress(kind, src, &frame_opts(2, cs, cols)).unwrap(),
        "{label}: the frame depends on the thread count"
    );
    assert!(
        f == weightzip::compress(kind, src, &frame_opts(0, cs, cols)).unwrap(),
        "{label}: the frame depends on the thread count"
    );
    for threads in [1, 2] {
        assert!(weightzip::decompress(&f, &frame_opts(threads, 0, 0)).unwrap() == src, "{label}: {threads} threads");
    }
    let r = weightzip::FrameReader::new(&f).unwrap();
    for level in r.levels() {
        let out = weightzip::frame::decompress_at_level(&f, &frame_opts(1, 0, 0), level).unwrap();
        assert!(out == src, "{label}: {level:?} kernels");
    }
    let csz = weightzip::read_info(&f).unwrap().chunk_size as usize;
    for (i, want) in src.chunks(csz).enumerate() {
        let mut dst = vec![0x5Au8; want.len()];
        r.decode_range((i * csz) as u64, &mut dst, &frame_opts(1, 0, 0)).unwrap();
        assert!(dst == want, "{label}: chunk {i} decoded alone");
        for level in r.levels() {
            let got = r.decode_chunk_at_level(i, level);
            if let Some(got) = got {
                assert!(got.unwrap() == want, "{label}: chunk {i} at {level:?}");
            }
        }
    }
    f
}

fn frame_opts(threads: u32, chunk_size: u32, row_len: u64) -> weightzip::Options {
    weightzip::Options { threads, chunk_size, progress: None, fast: false, row_len }
}
