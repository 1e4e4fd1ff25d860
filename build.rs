//! Regenerates `include/weightzip.h` from `src/ffi` with cbindgen. The header is committed; the
//! build rewrites it only when its content changes, and `tests/header.rs` fails when the committed
//! file differs from what cbindgen makes, so C users always see the ABI the code has.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    match cbindgen::Builder::new()
        .with_src(dir.join("src/ffi/mod.rs"))
        .with_src(dir.join("src/ffi/status.rs"))
        .with_config(config)
        .generate() {
        Ok(b) => {
            b.write_to_file(dir.join("include/weightzip.h"));
        }
        Err(e) => println!("cargo:warning=cbindgen failed, include/weightzip.h not updated: {e}"),
    }
}
