//! A model file or an archive changed by another process while the library has it open: the
//! library reads with `pread`, never through a mapping, so a truncated file gives an I/O status
//! (with its errno and message) and a rewritten one a CORRUPT_* status, never SIGBUS (which would
//! kill this test process). Through the Rust API and the C API, at several truncation points:
//! inside a tensor's frame, inside the extra frame, and the whole file.

#[path = "common/capi.rs"]
mod capi;
mod common;

use std::ffi::CStr;
use std::path::Path;
use std::process::Command;

use common::{data_path, TempDir};
use weightzip::archive::Archive;
use weightzip::ffi::archive::*;
use weightzip::ffi::wz_status::{self, *};
use weightzip::ffi::{wz_last_error_errno, wz_last_error_message};
use weightzip::{Error, Options};

const GGUF: &str = "qwen25coder15b-q4km-mini.gguf";

/// Truncates `path` to `len` bytes from another process, as `cp` or a crashed writer would.
fn truncate(path: &Path, len: u64) {
    let s = Command::new("truncate").arg("-s").arg(len.to_string()).arg(path).status().expect("run truncate");
    assert!(s.success());
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(wz_last_error_message()) }.to_string_lossy().into_owned()
}

/// A fresh archive of the Qwen fixture in `dir`, its bytes, and its tensors' archive extents.
fn archive(dir: &TempDir) -> (std::path::PathBuf, Vec<u8>, Vec<(u64, u64)>) {
    let path = dir.join("m.wz");
    weightzip::archive::compress_file(&data_path(GGUF), &path, &Options::default()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let a = Archive::from_bytes(&bytes).unwrap();
    let spans = a.tensors().iter().map(|t| (t.arc_offset, t.arc_size)).collect();
    (path, bytes.clone(), spans)
}

#[test]
fn truncated_under_an_open_archive_is_an_io_error_not_a_signal() {
    let dir = TempDir::new("changing-truncate");
    let (path, bytes, spans) = archive(&dir);
    let big_span = *spans.iter().max_by_key(|s| s.1).unwrap();
    let extra = Archive::from_bytes(&bytes).unwrap().index().extra;
    let original = std::fs::read(data_path(GGUF)).unwrap();
    for cut in [big_span.0 + big_span.1 / 2, big_span.0 + 10, extra.offset + 5, 0] {
        std::fs::write(&path, &bytes).unwrap();
        // Rust API and C API, both opened before the change, as a loader would be.
        let a = Archive::open_path(&path).unwrap();
        let h = capi::open_path(&path).unwrap();
        truncate(&path, cut);
        for (i, &(off, size)) in spans.iter().enumerate() {
            let ti = capi::tensor_info(&h, i);
            let mut buf = vec![0xA5u8; ti.original_size as usize];
            let s =
                unsafe { wz_archive_read_tensor(h.0, i, buf.as_mut_ptr().cast(), buf.len(), std::ptr::null()) } as u32;
            let r = a.tensor_vec(i, &Options::default());
            if off + size <= cut {
                // Wholly before the cut: still read, and right.
                assert_eq!(s, 0, "cut at {cut}: tensor {i}");
                let want = &original[ti.original_offset as usize..(ti.original_offset + ti.original_size) as usize];
                assert!(buf == want && r.unwrap() == want, "cut at {cut}: tensor {i}");
                continue;
            }
            assert_eq!(s, WZ_STATUS_IO as u32, "cut at {cut}: tensor {i}");
            assert!(last_error().contains(path.to_str().unwrap()), "cut at {cut}: {}", last_error());
            assert!(last_error().contains("ended early"), "cut at {cut}: {}", last_error());
            assert_eq!(wz_last_error_errno(), 0, "a short read has no errno");
            assert!(buf.iter().all(|&b| b == 0) || buf.iter().all(|&b| b == 0xA5), "cut at {cut}: partial data");
            let e = r.unwrap_err();
            assert_eq!(e, Error::Io(weightzip::IoError::UNKNOWN), "cut at {cut}: {e}");
        }
        // The metadata lives in the extra frame, after every tensor: past every cut here.
        let mut data = std::ptr::null();
        let mut size = 0usize;
        assert_eq!(unsafe { wz_archive_metadata(h.0, &mut data, &mut size) } as u32, WZ_STATUS_IO as u32);
        assert_eq!(unsafe { wz_archive_verify(h.0, std::ptr::null()) } as u32, WZ_STATUS_IO as u32, "verify");
        // Restoring fails and leaves nothing.
        let out = dir.join("restored.gguf");
        assert!(a.restore_file(&out, &Options::default()).is_err());
        assert!(!out.exists());
        dir.assert_no_temporaries(&format!("cut at {cut}"));
    }
}

#[test]
fn rewritten_under_an_open_archive_is_a_corruption_error() {
    let dir = TempDir::new("changing-rewrite");
    let (path, bytes, spans) = archive(&dir);
    let a = Archive::open_path(&path).unwrap();
    let h = capi::open_path(&path).unwrap();
    // Another archive's bytes written over this one in place (same length, different content).
    let mut other = bytes.clone();
    for (off, len) in &spans {
        for b in &mut other[(*off + len / 2) as usize..(*off + len / 2 + 64).min(off + len) as usize] {
            *b = b.wrapping_add(1);
        }
    }
    std::fs::write(&path, &other).unwrap();
    for i in 0..spans.len() {
        let e = a.tensor_vec(i, &Options::default()).unwrap_err();
        assert!(matches!(e, Error::CorruptData | Error::CorruptHeader | Error::CorruptModel), "tensor {i}: {e}");
        let ti = capi::tensor_info(&h, i);
        let mut buf = vec![0u8; ti.original_size as usize];
        let s = unsafe { wz_archive_read_tensor(h.0, i, buf.as_mut_ptr().cast(), buf.len(), std::ptr::null()) } as u32;
        assert!(
            [WZ_STATUS_CORRUPT_DATA, WZ_STATUS_CORRUPT_HEADER, WZ_STATUS_CORRUPT_MODEL].map(|s| s as u32).contains(&s),
            "tensor {i}: status {s}"
        );
    }
}

#[test]
fn a_model_file_truncated_while_compressing_is_an_error() {
    // The writer reads the model with pread as it goes; a file cut before it starts reading the
    // tensors (its metadata intact) fails with a container or I/O status, and writes nothing.
    let dir = TempDir::new("changing-compress");
    let src = dir.join("m.gguf");
    let file = std::fs::read(data_path(GGUF)).unwrap();
    let g = weightzip::gguf::read(&file).unwrap();
    std::fs::write(&src, &file).unwrap();
    let f = std::fs::File::open(&src).unwrap();
    truncate(&src, g.data_start + 1000);
    let mut out = std::io::Cursor::new(Vec::new());
    let e = weightzip::archive::compress_open_file(f, &src, &mut out, &Options::default()).unwrap_err();
    assert!(matches!(e, Error::Io(_) | Error::ContainerTruncated), "{e}");
}

#[test]
fn the_c_api_gives_the_errno_of_io_errors() {
    let dir = TempDir::new("changing-errno");
    let missing = dir.join("missing.wz");
    assert_eq!(capi::open_path(&missing).err(), Some(WZ_STATUS_IO as u32));
    assert_eq!(wz_last_error_errno(), 2, "ENOENT");
    assert!(last_error().contains("No such file or directory"));
    // A status other than IO has no errno.
    let empty = dir.join("empty.wz");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(capi::open_path(&empty).err(), Some(wz_status::WZ_STATUS_TRUNCATED as u32));
    assert_eq!(wz_last_error_errno(), 0);
    // A directory where an archive should be written: EISDIR.
    let h = capi::open_memory(&archive(&dir).1).unwrap();
    let s = unsafe { wz_archive_restore(h.0, capi::cpath(&dir.path).as_ptr(), std::ptr::null()) } as u32;
    assert_eq!(s, WZ_STATUS_IO as u32);
    assert_eq!(wz_last_error_errno(), 21, "EISDIR");
}
