//! The committed C header must be exactly what cbindgen generates from `src/ffi` (the build script
//! generates it into OUT_DIR and passes the path), and the version macros must match Cargo.toml.

use std::path::Path;

#[test]
fn committed_header_matches_generated() {
    let generated = std::fs::read_to_string(env!("WZ_GENERATED_HEADER")).expect("generated header");
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/weightzip.h"))
        .expect("include/weightzip.h");
    assert!(
        generated == committed,
        "include/weightzip.h is stale: the C ABI in src/ffi changed. Review the change and run `WZ_BLESS_HEADER=1 cargo build`."
    );
}

fn define(header: &str, name: &str) -> String {
    let prefix = format!("#define {name} ");
    header
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{name} not defined in the header"))
        .trim()
        .to_string()
}

#[test]
fn version_macros_match_cargo_toml() {
    let h = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/weightzip.h")).unwrap();
    assert_eq!(define(&h, "WZ_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MAJOR"));
    assert_eq!(define(&h, "WZ_VERSION_MINOR"), env!("CARGO_PKG_VERSION_MINOR"));
    assert_eq!(define(&h, "WZ_VERSION_PATCH"), env!("CARGO_PKG_VERSION_PATCH"));
    let major: u32 = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap();
    let minor: u32 = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap();
    let patch: u32 = env!("CARGO_PKG_VERSION_PATCH").parse().unwrap();
    let number = major * 10000 + minor * 100 + patch;
    assert_eq!(define(&h, "WZ_VERSION_NUMBER"), number.to_string());
    assert_eq!(weightzip::ffi::wz_version(), number);
    let s = unsafe { std::ffi::CStr::from_ptr(weightzip::ffi::wz_version_string()) };
    assert_eq!(s.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    assert_eq!(define(&h, "WZ_FORMAT_VERSION"), weightzip::frame::FORMAT_VERSION.to_string());
    assert_eq!(define(&h, "WZ_FRAME_HEADER_SIZE"), weightzip::frame::HEADER_LEN.to_string());
}

#[test]
fn every_exported_function_runs_inside_the_panic_guard() {
    // Each `extern "C" fn` body in src/ffi must start by calling `guard(` or `guard_value(`.
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi/mod.rs")).unwrap();
    let mut count = 0;
    for (i, _) in src.match_indices("extern \"C\" fn ") {
        let body_start = src[i..].find('{').map(|j| i + j).unwrap();
        let body = &src[body_start + 1..];
        let first = body.trim_start();
        assert!(
            first.starts_with("guard(") || first.starts_with("guard_value("),
            "exported function at byte {i} of src/ffi/mod.rs does not start with the panic guard"
        );
        count += 1;
    }
    assert!(count >= 9, "found only {count} exported functions");
}

#[test]
fn kind_macros_match_the_library() {
    let h = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/weightzip.h")).unwrap();
    for kind in weightzip::Kind::ALL {
        let name =
            format!("WZ_KIND_{}", kind.name().to_ascii_uppercase().replace("Q4K", "Q4_K").replace("Q6K", "Q6_K"));
        assert_eq!(define(&h, &name), kind.id().to_string(), "{name}");
    }
}
