//! cargo-fuzz target `frame_decode`: see fuzz/targets.rs for what it checks.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::frame_decode(data));
