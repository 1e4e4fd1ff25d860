//! The fuzz targets (`fuzz/targets.rs`) on stable Rust, without libFuzzer: each runs over its seed
//! corpus (cut from the fixtures by `fuzz/seeds.rs`), every committed regression input in
//! `fuzz/regressions/<target>/`, and a few thousand deterministic mutations of the seeds. What
//! libFuzzer finds in long campaigns (scripts/fuzz.sh) is added to `fuzz/regressions` so this
//! test keeps it fixed on every machine, nightly or not.
//!
//! `WZ_FUZZ_SMOKE_SCALE` multiplies the mutation counts (default 1; e.g. 10 for a longer local
//! run). The ignored test `write_seed_corpora` writes the seeds for libFuzzer
//! (`fuzz/make_seeds.sh` runs it).

#[path = "../fuzz/seeds.rs"]
mod seeds;
#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::time::Instant;

use seeds::{Fixtures, Lcg};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> &'static Fixtures {
    static FX: std::sync::OnceLock<Fixtures> = std::sync::OnceLock::new();
    FX.get_or_init(|| Fixtures::load(&root().join("tests/data")))
}

fn target(name: &str) -> fn(&[u8]) {
    targets::TARGETS.iter().find(|t| t.0 == name).unwrap_or_else(|| panic!("no target {name}")).1
}

/// The committed inputs that once failed (or that guard a fixed bug), for one target.
fn regressions(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = root().join("fuzz/regressions").join(name);
    let mut v: Vec<(PathBuf, Vec<u8>)> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .map(|p| {
                let b = std::fs::read(&p).unwrap();
                (p, b)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Runs `f` on `input`, naming the input in the panic message if it fails.
fn run_one(name: &str, what: &dyn Fn() -> String, f: fn(&[u8]), input: &[u8]) {
    if let Err(e) = std::panic::catch_unwind(|| f(input)) {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let keep = std::env::temp_dir().join(format!("wz-fuzz-smoke-{name}-failure"));
        let _ = std::fs::write(&keep, input);
        panic!("target {name} failed on {} ({msg}); input saved to {}", what(), keep.display());
    }
}

fn scale() -> usize {
    std::env::var("WZ_FUZZ_SMOKE_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1)
}

/// Seeds, regressions, then `mutations` mutated seeds (fixed RNG seed per target).
fn smoke(name: &str, mutations: usize) {
    let t = Instant::now();
    let f = target(name);
    let seeds = seeds::seeds(name, fixtures());
    assert!(!seeds.is_empty());
    for (sname, s) in &seeds {
        run_one(name, &|| format!("seed {sname}"), f, s);
    }
    let regs = regressions(name);
    for (p, b) in &regs {
        run_one(name, &|| format!("regression {}", p.display()), f, b);
    }
    let mut r = Lcg::new(name.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)));
    let n = mutations * scale();
    for i in 0..n {
        let a = r.below_usize(seeds.len());
        let b = r.below_usize(seeds.len());
        let m = seeds::mutate(&mut r, &seeds[a].1, &seeds[b].1);
        run_one(name, &|| format!("mutation {i} of seed {}", seeds[a].0), f, &m);
    }
    eprintln!(
        "fuzz_smoke {name}: {} seeds, {} regressions, {n} mutations in {:.2} s",
        seeds.len(),
        regs.len(),
        t.elapsed().as_secs_f64()
    );
}

#[test]
fn smoke_frame_decode() {
    smoke("frame_decode", 20000);
}

#[test]
fn smoke_entropy() {
    smoke("entropy", 20000);
}

#[test]
fn smoke_gguf() {
    smoke("gguf", 50000);
}

#[test]
fn smoke_safetensors() {
    smoke("safetensors", 50000);
}

/// The archive seeds are archives that restore to their fixtures (a seed the reader rejects
/// would start the fuzzer outside the format), the GGUF split among them.
#[test]
fn archive_seeds_restore() {
    let mut methods = std::collections::BTreeSet::new();
    for (name, arc) in seeds::archive_seeds(fixtures()) {
        let a = weightzip::archive::Archive::from_bytes(&arc).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut out = Vec::new();
        a.restore_to(&mut out, &weightzip::Options::with_threads(1)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(out.len() as u64 == a.original_size(), "{name}");
        methods.insert(a.index().extra.method);
    }
    assert_eq!(methods, [0, 1, 2].into(), "every extra method among the seeds");
}

#[test]
fn smoke_archive() {
    smoke("archive", 6000);
}

#[test]
fn smoke_c_api() {
    smoke("c_api", 6000);
}

#[test]
fn smoke_roundtrip() {
    smoke("roundtrip", 1500);
}

/// Every target has seeds, a cargo-fuzz binary and a place in scripts/fuzz.sh's list.
#[test]
fn every_target_is_wired_up() {
    let script = std::fs::read_to_string(root().join("scripts/fuzz.sh")).unwrap();
    let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).unwrap();
    for (name, _) in targets::TARGETS {
        assert!(root().join(format!("fuzz/fuzz_targets/{name}.rs")).is_file(), "fuzz/fuzz_targets/{name}.rs");
        assert!(manifest.contains(&format!("name = \"{name}\"")), "fuzz/Cargo.toml lacks {name}");
        assert!(script.contains(name), "scripts/fuzz.sh does not list {name}");
    }
}

/// Writes every target's seeds to `$WZ_FUZZ_SEED_DIR/<target>/` (default `fuzz/seeds`).
#[test]
#[ignore = "writes files; run by fuzz/make_seeds.sh"]
fn write_seed_corpora() {
    let base = std::env::var_os("WZ_FUZZ_SEED_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("fuzz/seeds"));
    for (name, _) in targets::TARGETS {
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let seeds = seeds::seeds(name, fixtures());
        let mut bytes = 0;
        for (sname, s) in &seeds {
            std::fs::write(dir.join(sname), s).unwrap();
            bytes += s.len();
        }
        eprintln!("{}: {} seeds, {bytes} bytes", dir.display(), seeds.len());
    }
}
