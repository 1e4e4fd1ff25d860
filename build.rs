//! Generates the C header from `src/ffi` with cbindgen into `OUT_DIR`, and keeps the committed
//! `include/weightzip.h` honest: when the two differ, the build rewrites the committed file only
//! if `WZ_BLESS_HEADER=1` is set and otherwise warns, and `tests/header.rs` fails. So a change to
//! the C ABI is always a deliberate, reviewed change to the committed header.
//!
//! It also gives the shared library its SONAME, `libweightzip.so.MAJOR`: the ABI version a
//! program records when it links, which changes only with an incompatible C ABI.

use std::path::PathBuf;

fn main() {
    // While the version is 0.x the ABI version is the major, 0; it becomes the major version
    // from 1.0 on.
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libweightzip.so.{major}");
    }
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=include/weightzip.h");
    println!("cargo:rerun-if-env-changed=WZ_BLESS_HEADER");
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("weightzip.h");
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let generated = cbindgen::Builder::new()
        .with_src(dir.join("src/ffi/mod.rs"))
        .with_src(dir.join("src/ffi/status.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    generated.write_to_file(&out);
    println!("cargo:rustc-env=WZ_GENERATED_HEADER={}", out.display());
    let committed = dir.join("include/weightzip.h");
    let new = std::fs::read(&out).expect("generated header");
    if std::fs::read(&committed).ok().as_deref() != Some(new.as_slice()) {
        if std::env::var("WZ_BLESS_HEADER").as_deref() == Ok("1") {
            std::fs::write(&committed, &new).expect("write include/weightzip.h");
        } else {
            println!("cargo:warning=include/weightzip.h differs from the C ABI in src/ffi; review and run `WZ_BLESS_HEADER=1 cargo build` to update it");
        }
    }
}
