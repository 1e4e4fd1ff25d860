//! `weightzip bench` without --kind: one table per data domain of a file, then the whole file,
//! written as JSON, Markdown and an SVG plot. Run with --quick and one repetition on the small
//! safetensors fixture, so zstd -19 costs a few seconds; no speed is checked, only structure and
//! ratios that do not depend on the machine.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{data_path, TempDir, ST_FIXTURE};

#[test]
fn bench_writes_domain_tables_markdown_and_plot() {
    let dir = TempDir::new("bench-report");
    let (json, md, svg) = (dir.join("out.json"), dir.join("out.md"), dir.join("out.svg"));
    let input = data_path(ST_FIXTURE);
    let o = common::wz()
        .args(["bench", "--quick", "--reps", "1", "--json"])
        .arg(&json)
        .arg("--markdown")
        .arg(&md)
        .arg("--plot")
        .arg(&svg)
        .arg(&input)
        .output()
        .expect("run weightzip");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "bench failed: {err}");
    // The tables also go to stdout.
    assert!(String::from_utf8_lossy(&o.stdout).contains("paper: byte-plane rANS"));

    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("valid JSON");
    let tables = j.as_array().expect("a list of tables");
    let domains: Vec<&str> = tables.iter().map(|t| t["domain"].as_str().unwrap()).collect();
    assert_eq!(domains, ["BF16", "whole file"]);
    let bf16 = &tables[0];
    let method = |name: &str| {
        bf16["methods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {bf16}"))
            .clone()
    };
    let (w, planes) = (method("weightzip"), method("paper: byte-plane rANS"));
    let r = |m: &serde_json::Value, k: &str| m[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {m}"));
    let bound = bf16["r_marginal"].as_f64().unwrap();
    // The byte-plane coder is the byte-marginal bound plus tables and stream states: just below it.
    assert!(r(&planes, "ratio") < bound && r(&planes, "ratio") > bound * 0.99, "{planes} vs R_marginal {bound}");
    assert!(r(&w, "ratio") > r(&planes, "ratio"));
    for m in [&w, &planes] {
        assert!(r(m, "geomean_ratio") > 1.0 && r(m, "median_ratio") > 1.0, "{m}");
        assert!(m["decompress_mbps_1t"].as_f64().unwrap() > 0.0 && m["decompress_mbps_nt"].as_f64().is_some());
    }
    // --quick: zstd -19 compression timed at one thread only.
    assert!(method("zstd -19")["compress_mbps_nt"].is_null());
    assert!(tables[1]["methods"].as_array().unwrap().iter().any(|m| m["name"] == "weightzip archive"));

    let md = std::fs::read_to_string(&md).expect("markdown written");
    assert!(md.contains("## Summary") && md.contains("### minilm-l6-layer0-bf16.safetensors · BF16"), "{md}");
    let svg = std::fs::read_to_string(&svg).expect("plot written");
    assert!(svg.starts_with("<svg") && svg.contains("R_marginal") && svg.contains("compression ratio"));
}

#[test]
fn bench_without_kind_rejects_raw_streams() {
    let o = common::wz()
        .args(["bench", "--reps", "1"])
        .arg(data_path("minilm-l6-ffn01.bf16"))
        .output()
        .expect("run weightzip");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--kind"));
}
