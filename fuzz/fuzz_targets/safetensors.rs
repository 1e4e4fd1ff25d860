//! cargo-fuzz target `safetensors`: see fuzz/targets.rs for what it checks.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::safetensors_parse(data));
