//! How the `weightzip` CLI fails, for every way in and out: compress of a GGUF file, of a
//! safetensors file and of a raw stream (`--kind`), and decompress of a GGUF archive, a
//! safetensors archive and a frame. For each: a write error on the output, an unreadable input,
//! an existing output without --force, SIGINT and SIGTERM in the middle of the work. Each must exit
//! non-zero with a message that says what went wrong, leave no partial output and no temporary
//! file, and never change its input (SHA-256 before and after).
//!
//! Write errors are made with RLIMIT_FSIZE (the child ignores SIGXFSZ, so writes past the limit
//! fail with EFBIG): it needs no special file system and works as root. Device outputs
//! (/dev/full, /dev/null) are tested on device nodes made with mknod in the test's own directory,
//! never on the real /dev: `--force` onto a device must write into it, not replace the node
//! (as it once did).

#[path = "../../tests/common/mod.rs"]
mod common;

use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use common::{data_path, TempDir};
use sha2::{Digest, Sha256};

fn wz() -> Command {
    let mut c = common::wz();
    c.stdin(Stdio::null());
    c
}

fn sha(path: &Path) -> [u8; 32] {
    Sha256::digest(std::fs::read(path).unwrap()).into()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One way of running the CLI: the arguments before the output path, its input, and the bytes a
/// successful run writes.
struct Mode {
    name: &'static str,
    /// Subcommand and options; the input follows, then `-o OUT`.
    args: Vec<&'static str>,
    input: PathBuf,
    expected: Vec<u8>,
}

impl Mode {
    fn cmd(&self, out: &Path, force: bool) -> Command {
        let mut c = wz();
        c.args(&self.args);
        if force {
            c.arg("--force");
        }
        c.arg(&self.input).arg("-o").arg(out);
        c
    }
}

/// Only the entries of `dir` that are not in `keep`: leftovers (outputs, temporaries).
#[track_caller]
fn assert_only(dir: &TempDir, keep: &[&str], what: &str) {
    let extra: Vec<String> = dir.entries().into_iter().filter(|e| !keep.contains(&e.as_str())).collect();
    assert!(extra.is_empty(), "{what}: left {extra:?} behind");
}

/// The six modes, with their inputs written into `dir`. `scale` tiles the inputs (for the
/// interruption tests, which need runs long enough to interrupt).
fn modes(dir: &TempDir, scale: usize) -> Vec<Mode> {
    let gguf =
        std::fs::read(data_path(if scale > 1 { "minilm-l6-q4_k_m.gguf" } else { "qwen25coder15b-q4km-mini.gguf" }))
            .unwrap();
    let st = if scale > 1 {
        big_safetensors(scale)
    } else {
        std::fs::read(data_path("minilm-l6-layer0-bf16.safetensors")).unwrap()
    };
    let raw: Vec<u8> = std::fs::read(data_path("minilm-l6-ffn01.bf16")).unwrap().repeat(scale);
    let put = |name: &str, b: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    let archive = |file: &[u8]| {
        let mut c = std::io::Cursor::new(Vec::new());
        weightzip::archive::compress_any(file, &mut c, &weightzip::Options::default()).unwrap();
        c.into_inner()
    };
    let frame = weightzip::compress(weightzip::Kind::Bf16, &raw, &weightzip::Options::default()).unwrap();
    let (ga, sa) = (archive(&gguf), archive(&st));
    vec![
        Mode {
            name: "compress gguf",
            args: vec!["compress", "--threads", "1"],
            input: put("m.gguf", &gguf),
            expected: ga.clone(),
        },
        Mode {
            name: "compress safetensors",
            args: vec!["compress", "--threads", "1"],
            input: put("m.safetensors", &st),
            expected: sa.clone(),
        },
        Mode {
            name: "compress raw",
            args: vec!["compress", "--kind", "bf16", "--threads", "1"],
            input: put("m.bf16", &raw),
            expected: frame.clone(),
        },
        Mode {
            name: "decompress gguf archive",
            args: vec!["decompress", "--threads", "1"],
            input: put("g.wz", &ga),
            expected: gguf,
        },
        Mode {
            name: "decompress safetensors archive",
            args: vec!["decompress", "--threads", "1"],
            input: put("s.wz", &sa),
            expected: st,
        },
        Mode {
            name: "decompress frame",
            args: vec!["decompress", "--threads", "1"],
            input: put("f.wz", &frame),
            expected: raw,
        },
    ]
}

const INPUTS: [&str; 6] = ["m.gguf", "m.safetensors", "m.bf16", "g.wz", "s.wz", "f.wz"];

/// A safetensors file of `copies` copies of the fixture's tensors (renamed), for long runs.
fn big_safetensors(copies: usize) -> Vec<u8> {
    let file = std::fs::read(data_path("minilm-l6-layer0-bf16.safetensors")).unwrap();
    let st = weightzip::safetensors::read(&file).unwrap();
    let mut entries = Vec::new();
    let mut data = Vec::new();
    for c in 0..copies {
        for t in &st.tensors {
            let shape: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
            entries.push(format!(
                r#""{c}.{}":{{"dtype":"{}","shape":[{}],"data_offsets":[{},{}]}}"#,
                t.name,
                t.dtype,
                shape.join(","),
                data.len(),
                data.len() as u64 + t.len
            ));
            data.extend_from_slice(&file[t.offset as usize..(t.offset + t.len) as usize]);
        }
    }
    let json = format!("{{{}}}", entries.join(","));
    let mut o = (json.len() as u64).to_le_bytes().to_vec();
    o.extend_from_slice(json.as_bytes());
    o.extend_from_slice(&data);
    o
}

// Write errors -------------------------------------------------------------------------------

/// Runs `c` with a file-size limit of `limit` bytes and SIGXFSZ ignored: writing past the limit
/// fails with EFBIG, as a full disk fails with ENOSPC.
fn with_fsize_limit(c: &mut Command, limit: u64) -> Output {
    // SAFETY: between fork and exec the child only calls async-signal-safe functions.
    unsafe {
        c.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let r = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.output().unwrap()
}

#[test]
fn a_write_error_fails_cleanly() {
    let dir = TempDir::new("clif-write");
    for m in modes(&dir, 1) {
        let before = sha(&m.input);
        let out = dir.join("out");
        let o = with_fsize_limit(&mut m.cmd(&out, false), 64 << 10);
        let what = format!("{}: output larger than RLIMIT_FSIZE", m.name);
        assert!(!o.status.success(), "{what}: succeeded");
        assert_eq!(o.status.code(), Some(1), "{what}: exit {:?}, stderr {}", o.status, stderr(&o));
        let err = stderr(&o);
        assert!(err.starts_with("weightzip: error: "), "{what}: stderr {err:?}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(err.contains("I/O error") || err.contains("too large"), "{what}: stderr {err:?} does not say why");
        assert_only(&dir, &INPUTS, &what);
        assert_eq!(sha(&m.input), before, "{what}: input changed");
    }
}

/// A write error names the file that could not be written: archives report "IN -> OUT: I/O
/// error", frames "cannot write OUT: I/O error".
#[test]
fn write_errors_name_the_output() {
    let dir = TempDir::new("clif-write-name");
    let mut failures = Vec::new();
    for m in modes(&dir, 1) {
        let out = dir.join("out-name-check");
        let o = with_fsize_limit(&mut m.cmd(&out, false), 64 << 10);
        let err = stderr(&o);
        assert!(!o.status.success());
        if !err.contains("out-name-check") {
            failures.push(format!("{}: {:?}", m.name, err.trim_end()));
        }
    }
    assert!(failures.is_empty(), "write errors that do not name the output:\n{}", failures.join("\n"));
}

/// Device nodes made in the test's directory (mknod needs CAP_MKNOD: without it, None).
fn device(dir: &TempDir, name: &str, minor: u32) -> Option<PathBuf> {
    let p = dir.join(name);
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, minor)) };
    (r == 0).then_some(p)
}

#[test]
fn an_existing_device_output_is_refused_without_force() {
    let dir = TempDir::new("clif-dev");
    let Some(full) = device(&dir, "full", 7) else {
        eprintln!("skipped: mknod is not permitted here");
        return;
    };
    for m in modes(&dir, 1) {
        let before = sha(&m.input);
        let o = m.cmd(&full, false).output().unwrap();
        assert!(!o.status.success(), "{}: -o full succeeded", m.name);
        assert!(stderr(&o).contains("--force"), "{}: {}", m.name, stderr(&o));
        assert!(std::fs::symlink_metadata(&full).unwrap().file_type().is_char_device());
        assert_eq!(sha(&m.input), before);
    }
}

/// `-o /dev/full --force` must fail with a write error, and `-o /dev/null --force` must not
/// destroy /dev/null: an existing output that is not a regular file is written in place, never
/// renamed over (run as root, a rename would replace the device node). This test uses device nodes
/// made in its own directory.
#[test]
fn force_onto_a_device_writes_into_the_device() {
    let dir = TempDir::new("clif-dev-force");
    let (Some(full), Some(null)) = (device(&dir, "full", 7), device(&dir, "null", 3)) else {
        eprintln!("skipped: mknod is not permitted here");
        return;
    };
    let mut failures = Vec::new();
    for m in modes(&dir, 1) {
        for dev in [&full, &null] {
            let o = m.cmd(dev, true).output().unwrap();
            let still = std::fs::symlink_metadata(dev).map(|md| md.file_type().is_char_device()).unwrap_or(false);
            if !still {
                failures.push(format!(
                    "{} -o {} --force: exit {:?}, the device node is now a regular file",
                    m.name,
                    dev.file_name().unwrap().to_string_lossy(),
                    o.status.code()
                ));
                let _ = std::fs::remove_file(dev);
                device(&dir, dev.file_name().unwrap().to_str().unwrap(), if dev == &full { 7 } else { 3 });
            } else if dev == &full && o.status.success() {
                failures.push(format!("{} -o full --force: exit 0 after writing to /dev/full", m.name));
            }
        }
        assert_only(&dir, &[&INPUTS[..], &["full", "null"]].concat(), m.name);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// Unreadable inputs --------------------------------------------------------------------------

#[test]
fn an_unreadable_input_fails_cleanly() {
    let dir = TempDir::new("clif-unreadable");
    let ms = modes(&dir, 1);
    // chmod 000 blocks reads unless we are root (or have CAP_DAC_OVERRIDE): then only the other
    // kinds of unreadable path are tried.
    let locked = dir.join("locked");
    std::fs::write(&locked, b"GGUF").unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let chmod_blocks = std::fs::File::open(&locked).is_err();
    let subdir = dir.join("adir");
    std::fs::create_dir(&subdir).unwrap();
    let mut paths: Vec<(&str, PathBuf)> = vec![
        ("a directory", subdir.clone()),
        ("a path under a regular file", ms[0].input.join("x")),
        ("a missing file", dir.join("missing")),
    ];
    if chmod_blocks {
        paths.push(("a file with mode 000", locked.clone()));
    } else {
        eprintln!("running as root: chmod 000 does not block reads; using the other cases");
    }
    for m in &ms {
        for (what_path, p) in &paths {
            let mut c = wz();
            c.args(&m.args).arg(p).arg("-o").arg(dir.join("out"));
            let o = c.output().unwrap();
            let what = format!("{} of {what_path}", m.name);
            assert_eq!(o.status.code(), Some(1), "{what}: exit {:?}, stderr {}", o.status, stderr(&o));
            let err = stderr(&o);
            assert!(err.starts_with("weightzip: error: "), "{what}: {err:?}");
            assert!(err.contains(p.to_str().unwrap()), "{what}: the message does not name the input: {err:?}");
            assert!(!err.contains("panicked"), "{what}: {err}");
            assert_only(&dir, &[&INPUTS[..], &["locked", "adir"]].concat(), &what);
        }
    }
}

// Existing outputs ---------------------------------------------------------------------------

#[test]
fn an_existing_output_is_kept_without_force() {
    let dir = TempDir::new("clif-exists");
    for m in modes(&dir, 1) {
        let before = sha(&m.input);
        let out = dir.join("out");
        std::fs::write(&out, b"precious").unwrap();
        let o = m.cmd(&out, false).output().unwrap();
        let what = format!("{} onto an existing file", m.name);
        assert_eq!(o.status.code(), Some(1), "{what}: exit {:?}", o.status);
        assert!(stderr(&o).contains("already exists") && stderr(&o).contains("--force"), "{what}: {}", stderr(&o));
        assert_eq!(std::fs::read(&out).unwrap(), b"precious", "{what}: output changed");
        assert_eq!(sha(&m.input), before, "{what}: input changed");
        // With --force it is replaced by the complete output.
        let o = m.cmd(&out, true).output().unwrap();
        assert!(o.status.success(), "{} --force: {}", m.name, stderr(&o));
        assert!(std::fs::read(&out).unwrap() == m.expected, "{} --force: wrong output", m.name);
        assert_eq!(sha(&m.input), before, "{} --force: input changed", m.name);
        std::fs::remove_file(&out).unwrap();
        assert_only(&dir, &INPUTS, &what);
    }
}

// Signals ------------------------------------------------------------------------------------

/// SIGINT and SIGTERM part-way through each mode (at fractions of the time a full run takes):
/// status 130 or 143 with a message, no output, no temporary file; or, if the run had already
/// finished, the complete output. The input never changes.
#[test]
fn interrupted_runs_leave_nothing_and_exit_128_plus_the_signal() {
    let dir = TempDir::new("clif-signal");
    let mut late_signals = 0;
    for m in modes(&dir, 8) {
        let before = sha(&m.input);
        let out = dir.join("out");
        let t = Instant::now();
        let o = m.cmd(&out, false).output().unwrap();
        let full = t.elapsed();
        assert!(o.status.success(), "{}: {}", m.name, stderr(&o));
        assert!(std::fs::read(&out).unwrap() == m.expected, "{}: wrong output", m.name);
        std::fs::remove_file(&out).unwrap();
        for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
            let mut interrupted = 0;
            for frac in [0.2, 0.5, 0.8] {
                let child = m.cmd(&out, false).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
                std::thread::sleep(full.mul_f64(frac));
                // SAFETY: signalling our own child, which has not been waited for.
                unsafe { libc::kill(child.id() as i32, sig) };
                let o = child.wait_with_output().unwrap();
                let what = format!("{} with signal {sig} after {:.0}% of {full:?}", m.name, frac * 100.0);
                if o.status.success() {
                    assert!(std::fs::read(&out).unwrap() == m.expected, "{what}: finished with wrong bytes");
                    std::fs::remove_file(&out).unwrap();
                } else if o.status.signal() == Some(sig) {
                    // Delivered before main() blocked the signal (a loaded machine): the default
                    // action, before any output could exist.
                } else {
                    interrupted += 1;
                    assert_eq!(o.status.code(), Some(code), "{what}: exit {:?}, stderr {}", o.status, stderr(&o));
                    assert!(stderr(&o).contains("interrupted"), "{what}: {}", stderr(&o));
                    if out.exists() {
                        // The signal came after the output was renamed into place: it is complete.
                        assert!(
                            std::fs::read(&out).unwrap() == m.expected,
                            "{what}: exit {code} left a partial output"
                        );
                        late_signals += 1;
                        std::fs::remove_file(&out).unwrap();
                    }
                }
                assert_only(&dir, &INPUTS, &what);
                assert_eq!(sha(&m.input), before, "{what}: input changed");
            }
            assert!(interrupted > 0, "{}: signal {sig} never interrupted a run of {full:?}", m.name);
        }
    }
    eprintln!("{late_signals} runs exited 128 + signal after writing their complete output");
}

/// An input the codecs refuse (a truncated GGUF file, a raw stream that is not whole blocks) is
/// named in the message, to a file and to standard output, not the output it was being written
/// to (archives once named the output).
#[test]
fn input_errors_name_the_input() {
    let dir = TempDir::new("clif-input-name");
    let gguf = std::fs::read(data_path("minilm-l6-q4_k_m.gguf")).unwrap();
    let cut = dir.join("cut-model.gguf");
    std::fs::write(&cut, &gguf[..4096]).unwrap();
    let odd = dir.join("odd-blocks.q4k");
    std::fs::write(&odd, vec![7u8; 144 * 3 + 5]).unwrap();
    let cases: [(&[&str], &Path, &str); 2] =
        [(&["compress"], &cut, "cut-model.gguf"), (&["compress", "--kind", "q4_k"], &odd, "odd-blocks.q4k")];
    for (args, input, name) in cases {
        for to_file in [true, false] {
            let out = dir.join("named-output.wz");
            let mut c = wz();
            c.args(args).arg(input).arg("-o");
            if to_file {
                c.arg(&out);
            } else {
                c.arg("-");
            }
            let o = c.stdout(Stdio::null()).output().unwrap();
            let err = stderr(&o);
            assert!(!o.status.success(), "{name}: {err}");
            assert!(err.contains(name) && !err.contains("named-output"), "{name} (to a file: {to_file}): {err:?}");
            assert!(!out.exists(), "{name}: an output was left");
        }
    }
}

/// A raw stream is written a window at a time to a file that can seek; a FIFO named as the
/// output cannot, and gets the same frame in one piece; a stream that does not compress is
/// stored, also where the output is a device with no length to cut (a null device node).
#[test]
fn raw_streams_to_a_fifo_and_incompressible_ones_to_a_device() {
    let dir = TempDir::new("clif-raw-outputs");
    let raw = common::Lcg::new(11).bytes(144 * 2000);
    let real = std::fs::read(data_path("minilm-l6-ffn-down0.q5_k")).unwrap();
    for (name, bytes, kind) in [("random.q4k", &raw, "q4_k"), ("real.q5k", &real, "q5_k")] {
        let input = dir.join(name);
        std::fs::write(&input, bytes).unwrap();
        let file = dir.join(&format!("{name}.wz"));
        let o = wz().args(["compress", "-q", "--kind", kind]).arg(&input).arg("-o").arg(&file).output().unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let frame = std::fs::read(&file).unwrap();
        let info = weightzip::read_info(&frame).unwrap();
        assert_eq!(info.frame_size, frame.len() as u64, "{name}: trailing bytes after the frame");
        assert_eq!(info.method == weightzip::codec::Method::Stored, name.starts_with("random"), "{name}");
        let back = dir.join(&format!("{name}.back"));
        let o = wz().args(["decompress", "-q"]).arg(&file).arg("-o").arg(&back).output().unwrap();
        assert!(o.status.success() && std::fs::read(&back).unwrap() == *bytes, "{name}: {}", stderr(&o));

        let fifo = dir.join(&format!("{name}.fifo"));
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        let o =
            wz().args(["compress", "-q", "--force", "--kind", kind]).arg(&input).arg("-o").arg(&fifo).output().unwrap();
        assert!(o.status.success(), "{name} to a FIFO: {}", stderr(&o));
        assert!(reader.join().unwrap() == frame, "{name}: the FIFO got other bytes than the file");

        if let Some(null) = device(&dir, &format!("{name}.null"), 3) {
            let o = wz()
                .args(["compress", "-q", "--force", "--kind", kind])
                .arg(&input)
                .arg("-o")
                .arg(&null)
                .output()
                .unwrap();
            assert!(o.status.success(), "{name} to a null device: {}", stderr(&o));
        }
    }
}
