//! The format's promise (docs/FORMAT.md, section 10): every golden frame and archive in
//! `tests/golden/`, written by the version-1 library, decodes to the size and SHA-256 in its
//! MANIFEST, at every thread count and every vector kernel level this CPU has; together they
//! cover every kind, every method and both containers; and the test vectors printed in FORMAT.md
//! are those files, byte for byte.
//!
//! Unlike `tests/golden.rs` (which pins what today's encoder writes, and may be re-pinned when the
//! encoder improves), nothing here is ever re-pinned while the format versions stay the same: a
//! change that makes this test fail is a format change, and says so in FORMAT.md's changelog.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::root;
use sha2::{Digest, Sha256};
use weightzip::archive::{Archive, Container};
use weightzip::frame::{self, FrameReader};
use weightzip::{Kind, Method, Options};

fn golden_dir() -> PathBuf {
    root().join("tests/golden")
}

/// (file, decoded size, SHA-256 hex) for every line of the MANIFEST.
fn manifest() -> Vec<(String, u64, String)> {
    let text = std::fs::read_to_string(golden_dir().join("MANIFEST")).expect("read tests/golden/MANIFEST");
    let rows: Vec<_> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "MANIFEST line {l:?}");
            (f[0].to_string(), f[1].parse().expect("size"), f[2].to_string())
        })
        .collect();
    assert!(rows.len() >= 18, "MANIFEST lists {} files", rows.len());
    rows
}

fn sha_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// Decodes frame `f` every way the library can and checks each result against the manifest.
fn check_frame(name: &str, f: &[u8], size: u64, sha: &str) -> (Kind, Method, u32) {
    let info = frame::read_info(f).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(info.original_size, size, "{name}: original size");
    for threads in [1, 2, 0] {
        let out = weightzip::decompress(f, &Options::with_threads(threads)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sha_hex(&out), sha, "{name}: decoded at {threads} threads");
        let mut into = vec![0xA5u8; size as usize];
        weightzip::decompress_into(f, &mut into, &Options::with_threads(threads)).unwrap();
        assert!(into == out, "{name}: decompress_into at {threads} threads");
    }
    // Every kernel the CPU has for this codec, scalar included.
    let reader = FrameReader::new(f).unwrap();
    for level in reader.levels() {
        let out = frame::decompress_at_level(f, &Options::with_threads(2), level).unwrap();
        assert_eq!(sha_hex(&out), sha, "{name}: decoded with the {level:?} kernels");
    }
    // Chunk by chunk through the reader.
    let cs = info.chunk_size as u64;
    let mut whole = Vec::new();
    let mut off = 0;
    while off < size {
        let mut part = vec![0u8; cs.min(size - off) as usize];
        reader.decode_range(off, &mut part, &Options::with_threads(1)).unwrap();
        whole.extend_from_slice(&part);
        off += cs;
    }
    assert_eq!(sha_hex(&whole), sha, "{name}: decoded a chunk at a time");
    (info.kind, info.method, info.flags)
}

/// Restores archive `a` and checks it against the manifest; returns its container and extra
/// method.
fn check_archive(name: &str, bytes: &[u8], size: u64, sha: &str) -> (Container, u32) {
    let a = Archive::from_bytes(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(a.original_size(), size, "{name}: original size");
    for threads in [1, 2] {
        let mut out = Vec::new();
        a.restore_to(&mut out, &Options::with_threads(threads)).unwrap();
        assert_eq!(sha_hex(&out), sha, "{name}: restored at {threads} threads");
        // Every tensor alone is the original file's bytes at its offset.
        for (i, t) in a.tensors().iter().enumerate() {
            let v = a.tensor_vec(i, &Options::with_threads(threads)).unwrap();
            assert!(v[..] == out[t.orig_offset as usize..(t.orig_offset + t.orig_size) as usize], "{name}: tensor {i}");
        }
        assert_eq!(a.metadata().unwrap(), &out[..a.index().extra.metadata_size as usize], "{name}: metadata");
    }
    a.verify(&Options::default()).unwrap_or_else(|(i, e)| panic!("{name}: verify: tensor {i:?}: {e}"));
    (a.container(), a.index().extra.method)
}

#[test]
fn golden_files_decode_to_their_pinned_bytes() {
    let (mut kinds, mut methods, mut containers) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let (mut flagged, mut extras) = (BTreeSet::new(), BTreeSet::new());
    for (name, size, sha) in manifest() {
        let bytes = std::fs::read(golden_dir().join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        if name.ends_with(".wzf") {
            let (kind, method, flags) = check_frame(&name, &bytes, size, &sha);
            kinds.insert(kind.id());
            methods.insert(method as u8);
            if flags != 0 {
                flagged.insert((method as u8, flags));
            }
        } else {
            assert!(name.ends_with(".wza"), "{name}: neither a frame nor an archive");
            let (container, extra) = check_archive(&name, &bytes, size, &sha);
            containers.insert(container as u8);
            extras.insert(extra);
        }
    }
    let all_kinds: BTreeSet<u32> = Kind::ALL.iter().map(|k| k.id()).collect();
    assert_eq!(kinds, all_kinds, "the golden frames cover every kind");
    assert_eq!(methods, (0..=6).collect::<BTreeSet<u8>>(), "the golden frames cover every method");
    // The sign-in-symbol split (header flag 1, revision 7) in a bf16 and an f32 frame, and the
    // generic path's differences (flag 2).
    assert_eq!(flagged, BTreeSet::from([(1, 1), (5, 1), (4, 2), (6, 5)]), "the golden frames with header flags");
    assert_eq!(containers, BTreeSet::from([Container::Gguf as u8, Container::Safetensors as u8]));
    // The extra frame as one zstd frame, as a GGUF split (revision 8) and with numeric columns
    // (revision 9).
    assert_eq!(extras, BTreeSet::from([0, 1, 2]), "the golden archives' extra methods");
}

/// The vectors of docs/FORMAT.md section 10: `<!-- vector FILE: N bytes, sha256 HEX -->`, then
/// a fenced block of the file's bytes in hex.
#[test]
fn format_document_vectors_are_the_golden_files() {
    let doc = std::fs::read_to_string(root().join("docs/FORMAT.md")).unwrap();
    let manifest = manifest();
    let mut seen = 0;
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("<!-- vector ") else { continue };
        let rest = rest.strip_suffix(" -->").expect("vector comment ends with -->");
        let (name, rest) = rest.split_once(": ").expect("vector FILE: ...");
        let (size, sha) = rest.split_once(" bytes, sha256 ").expect("N bytes, sha256 HEX");
        let row = manifest.iter().find(|r| r.0 == name).unwrap_or_else(|| panic!("vector {name} not in MANIFEST"));
        assert_eq!((row.1, row.2.as_str()), (size.parse::<u64>().unwrap(), sha), "vector {name}: size and hash");
        // Skip the description to the fenced block, then read it.
        lines.by_ref().find(|l| l.starts_with("```")).expect("a fenced block follows");
        let mut bytes = Vec::new();
        for l in lines.by_ref().take_while(|l| !l.starts_with("```")) {
            bytes.extend(l.split_whitespace().map(|h| u8::from_str_radix(h, 16).expect("hex byte")));
        }
        let file = std::fs::read(golden_dir().join(name)).unwrap();
        assert!(bytes == file, "vector {name}: the document's bytes differ from tests/golden/{name}");
        let decoded = if name.ends_with(".wza") {
            let mut out = Vec::new();
            Archive::from_bytes(&bytes).unwrap().restore_to(&mut out, &Options::default()).unwrap();
            out
        } else {
            weightzip::decompress(&bytes, &Options::default()).unwrap()
        };
        assert_eq!(sha_hex(&decoded), sha, "vector {name}");
        seen += 1;
    }
    assert!(seen >= 4, "FORMAT.md has {seen} test vectors");
}
