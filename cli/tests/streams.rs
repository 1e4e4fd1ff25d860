//! What users do to files, through the tool: pipes, FIFOs and process substitution, `-` and `-c`,
//! several inputs, `--rm`, permissions, long names, names with control characters, `--kind` on a
//! model file, files truncated while the tool reads them, and frames that claim far more than
//! they hold. Everything that succeeds is checked byte for byte; everything that fails must exit
//! 1 (never a signal) with a message, and leave no output or temporary file.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/common/gguf_synth.rs"]
mod gguf_synth;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{data_path, raw_fixture, wz, TempDir, RAW_FIXTURE};
use weightzip::{Kind, Options};

const GGUF: &str = "minilm-l6-q4_k_m.gguf";

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: {:?}\nstderr: {}", o.status, stderr(o));
}

/// A failure is exit status 1 with a message, never a signal.
#[track_caller]
fn fails(o: &Output, what: &str, says: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: {:?} (signal {:?})\nstderr: {}",
        o.status,
        o.status.signal(),
        stderr(o)
    );
    assert!(stderr(o).contains(says), "{what}: stderr {:?} does not mention {says:?}", stderr(o));
}

/// Runs the tool with `input` on its standard input.
fn with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut c = wz().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut w = c.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = w.write_all(&data);
    });
    let o = c.wait_with_output().unwrap();
    feeder.join().unwrap();
    o
}

fn run(dir: &TempDir, args: &[&str]) -> Output {
    wz().current_dir(&dir.path).args(args).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn pipes_and_dashes_roundtrip_byte_exact() {
    let dir = TempDir::new("streams-pipes");
    let raw = raw_fixture();
    // The same frame from a file and from a pipe (the input is under one segment).
    let from_file = dir.join("file.wz");
    ok(&run(&dir, &["compress", "--kind", "bf16", p(&data_path(RAW_FIXTURE)), "-o", p(&from_file)]), "file");
    let o = with_stdin(&["compress", "--kind", "bf16", "-", "-o", "-"], raw);
    ok(&o, "stdin to stdout");
    assert!(o.stdout == std::fs::read(&from_file).unwrap(), "a pipe gives the frame a file gives");
    // No input argument with a pipe on stdin: stdin, to stdout.
    let o = with_stdin(&["compress", "--kind", "bf16"], raw);
    ok(&o, "implicit stdin");
    let frame = o.stdout;
    // -c, -d, and decompression from stdin.
    let o = with_stdin(&["-d", "-c"], &frame);
    ok(&o, "-d -c from stdin");
    assert!(o.stdout == raw, "decompressed from a pipe");
    let o = run(&dir, &["decompress", "-c", p(&from_file)]);
    ok(&o, "decompress -c FILE");
    assert!(o.stdout == raw);
    // Process substitution (a pipe named /dev/fd/N).
    let cmd = format!(
        "{} compress --kind bf16 <(cat {}) -o {}",
        common::cli_exe().display(),
        p(&data_path(RAW_FIXTURE)),
        p(&dir.join("subst.wz"))
    );
    let o = Command::new("bash").arg("-c").arg(&cmd).output().expect("bash");
    ok(&o, "process substitution");
    assert!(std::fs::read(dir.join("subst.wz")).unwrap() == std::fs::read(&from_file).unwrap());
    // verify against an original on a pipe.
    let o = with_stdin(&["verify", p(&from_file), "-"], raw);
    ok(&o, "verify against stdin");
    let mut other = raw.to_vec();
    other[1000] ^= 1;
    fails(&with_stdin(&["verify", p(&from_file), "-"], &other), "verify against a different stdin", "byte 1000");
    // An empty input is an empty frame, which restores it.
    let o = with_stdin(&["compress", "--kind", "bf16", "-c"], b"");
    ok(&o, "empty stdin");
    assert_eq!(weightzip::decompress(&o.stdout, &Options::default()).unwrap(), Vec::<u8>::new());
}

#[test]
fn a_fifo_is_read_once_and_never_hangs() {
    let dir = TempDir::new("streams-fifo");
    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(&fifo, raw_fixture()).unwrap())
    };
    let out = dir.join("f.wz");
    let mut child = wz().args(["compress", "--kind", "bf16", p(&fifo), "-o", p(&out)]).spawn().unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("compress from a FIFO hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().unwrap();
    assert!(status.success());
    assert!(weightzip::decompress(&std::fs::read(&out).unwrap(), &Options::default()).unwrap() == raw_fixture());
    // A model file on a FIFO: refused with a reason, nothing written, no hang.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let _ = std::fs::write(&fifo, std::fs::read(data_path(GGUF)).unwrap());
        })
    };
    let o = run(&dir, &["compress", p(&fifo), "-o", "m.wz"]);
    fails(&o, "a GGUF file on a FIFO", "pipe");
    writer.join().unwrap();
    assert!(!dir.join("m.wz").exists());
}

#[test]
fn a_long_stream_becomes_a_stream_of_frames() {
    // 15 copies of the fixture (70.8 MB) through a pipe: more than one 64 MiB segment.
    let raw: Vec<u8> = raw_fixture().repeat(15);
    let o = with_stdin(&["compress", "--kind", "bf16", "-c", "-q"], &raw);
    ok(&o, "compress a long pipe");
    let info = weightzip::read_info(&o.stdout).unwrap();
    assert_eq!(info.original_size, weightzip::frame::STREAM_SEGMENT as u64, "the first frame is one segment");
    assert!(o.stdout.len() as u64 > info.frame_size, "a second frame follows");
    let d = with_stdin(&["-d", "-c"], &o.stdout);
    ok(&d, "decompress the stream");
    assert!(d.stdout == raw, "the stream restores its input");
    // The library reads it too.
    let mut back = Vec::new();
    weightzip::frame::decompress_stream(&o.stdout[..], &mut back, &Options::default()).unwrap();
    assert!(back == raw);
    // Cut anywhere, it fails: inside the second frame's header, and inside its payload.
    for cut in [info.frame_size as usize + 10, o.stdout.len() - 1] {
        fails(&with_stdin(&["-d", "-c"], &o.stdout[..cut]), &format!("stream cut at {cut}"), "truncated");
    }
}

#[test]
fn archives_through_pipes() {
    let dir = TempDir::new("streams-archives");
    let gguf = std::fs::read(data_path(GGUF)).unwrap();
    let a = dir.join("m.wz");
    ok(&run(&dir, &["compress", p(&data_path(GGUF)), "-o", p(&a)]), "compress");
    // To stdout: the same bytes.
    let o = run(&dir, &["compress", "-c", p(&data_path(GGUF))]);
    ok(&o, "compress -c");
    assert!(o.stdout == std::fs::read(&a).unwrap());
    // From a pipe: decompress, verify and ls read it.
    let arc = std::fs::read(&a).unwrap();
    let o = with_stdin(&["decompress", "-c"], &arc);
    ok(&o, "decompress an archive from stdin");
    assert!(o.stdout == gguf);
    ok(&with_stdin(&["verify", "-"], &arc), "verify from stdin");
    let o = with_stdin(&["ls", "-"], &arc);
    ok(&o, "ls from stdin");
    assert!(String::from_utf8_lossy(&o.stdout).contains("101 tensors"));
    // A model file from a pipe cannot be archived: refused, with the way out.
    let o = with_stdin(&["compress", "-o", "x.wz"], &gguf);
    fails(&o, "GGUF on stdin", "save it to a file first");
    assert_eq!(with_stdin(&["compress", "-c"], &gguf).stdout.len(), 0, "nothing written to stdout");
}

#[test]
fn several_inputs_rm_and_errors() {
    let dir = TempDir::new("streams-many");
    let raw = raw_fixture();
    for n in ["a.bf16", "b.bf16"] {
        std::fs::write(dir.join(n), raw).unwrap();
    }
    // Each input to its own output; a missing one fails the run but not the others.
    let o = run(&dir, &["compress", "--kind", "bf16", "a.bf16", "missing.bf16", "b.bf16"]);
    fails(&o, "one input missing", "cannot open missing.bf16: No such file or directory");
    assert!(dir.join("a.bf16.wz").exists() && dir.join("b.bf16.wz").exists());
    // -o with several inputs is refused.
    fails(&run(&dir, &["compress", "--kind", "bf16", "a.bf16", "b.bf16", "-o", "x.wz"]), "-o", "-o names one output");
    // --rm removes the input only once the output is complete.
    ok(&run(&dir, &["decompress", "--rm", "a.bf16.wz", "-o", "a2.bf16"]), "decompress --rm");
    assert!(!dir.join("a.bf16.wz").exists(), "--rm removed the input");
    assert!(std::fs::read(dir.join("a2.bf16")).unwrap() == raw);
    // A failing run keeps its input: a corrupt frame with --rm.
    let mut bad = std::fs::read(dir.join("b.bf16.wz")).unwrap();
    let n = bad.len();
    bad[n - 100] ^= 0x10;
    std::fs::write(dir.join("bad.wz"), &bad).unwrap();
    fails(&run(&dir, &["decompress", "--rm", "bad.wz", "-o", "bad.out"]), "corrupt --rm", "corrupt");
    assert!(dir.join("bad.wz").exists(), "a failed run removed its input");
    assert!(!dir.join("bad.out").exists());
    dir.assert_no_temporaries("--rm");
    // -c does not remove.
    let o = run(&dir, &["decompress", "--rm", "-c", "b.bf16.wz"]);
    ok(&o, "--rm -c");
    assert!(dir.join("b.bf16.wz").exists());
    // Usage errors exit 1, like zstd's.
    assert_eq!(run(&dir, &["compress", "--no-such-option"]).status.code(), Some(1));
    assert_eq!(run(&dir, &["--help"]).status.code(), Some(0));
    // -q: nothing on stderr; -T is --threads.
    let o = run(&dir, &["compress", "-q", "-T", "1", "--kind", "bf16", "b.bf16", "-o", "q.wz"]);
    ok(&o, "-q -T 1");
    assert!(o.stderr.is_empty(), "-q printed {}", stderr(&o));
}

#[test]
fn outputs_take_the_inputs_permissions_and_long_names_work() {
    let dir = TempDir::new("streams-perms");
    let src = dir.join("private.bf16");
    std::fs::write(&src, raw_fixture()).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(&run(&dir, &["compress", "--kind", "bf16", "private.bf16"]), "compress");
    let mode = |f: &str| std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("private.bf16.wz"), 0o600, "the output has the input's permissions");
    // Replacing a private file with --force never makes it more readable.
    std::fs::write(dir.join("open.bf16"), raw_fixture()).unwrap();
    std::fs::set_permissions(dir.join("open.bf16"), std::fs::Permissions::from_mode(0o644)).unwrap();
    ok(&run(&dir, &["compress", "-f", "--kind", "bf16", "open.bf16", "-o", "private.bf16.wz"]), "--force");
    assert_eq!(mode("private.bf16.wz"), 0o600, "--force made a private file readable");
    // An output name of 250 bytes (the limit is 255): the temporary name must still fit.
    let long = format!("{}.wz", "n".repeat(247));
    ok(&run(&dir, &["compress", "--kind", "bf16", "private.bf16", "-o", &long]), "a 250-byte name");
    assert!(dir.join(&long).exists());
    dir.assert_no_temporaries("long name");
}

#[test]
fn kind_on_a_model_file_is_refused_without_force() {
    let dir = TempDir::new("streams-kind");
    let o = run(&dir, &["compress", "--kind", "bf16", p(&data_path(GGUF)), "-o", "x.wz"]);
    fails(&o, "--kind on a GGUF file", "drop --kind to make an archive");
    assert!(!dir.join("x.wz").exists());
    // With --force it is a raw frame of the file's bytes, as asked.
    ok(&run(&dir, &["compress", "--force", "--kind", "bytes", p(&data_path(GGUF)), "-o", "x.wz"]), "--force");
    let f = std::fs::read(dir.join("x.wz")).unwrap();
    assert_eq!(weightzip::read_info(&f).unwrap().kind, Kind::Bytes);
    // ls and verify read frames.
    let o = run(&dir, &["ls", "x.wz"]);
    ok(&o, "ls on a frame");
    assert!(String::from_utf8_lossy(&o.stdout).contains("frame of bytes"));
    ok(&run(&dir, &["verify", "x.wz", p(&data_path(GGUF))]), "verify a frame against its original");
}

#[test]
fn ls_escapes_control_characters_in_names() {
    use gguf_synth::{gt, Builder, Tensor};
    let dir = TempDir::new("streams-names");
    let evil = b"blk.0\nfake.row F32 1 2 3\x1b[31mred\\";
    let built = Builder::new()
        .tensor(Tensor::random("plain", gt::F32, &[64], 1))
        .tensor(Tensor::raw(evil, gt::F32, &[16], vec![0u8; 64]))
        .build();
    std::fs::write(dir.join("evil.gguf"), &built.bytes).unwrap();
    ok(&run(&dir, &["compress", "evil.gguf"]), "compress");
    let o = run(&dir, &["ls", "evil.gguf.wz"]);
    ok(&o, "ls");
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(!table.contains('\x1b'), "an escape sequence reached the terminal: {table:?}");
    assert!(table.contains("blk.0\\x0afake.row F32 1 2 3\\x1b[31mred\\\\"), "{table}");
    assert_eq!(table.lines().count(), 5, "a name forged a row: {table}");
    let o = run(&dir, &["ls", "--json", "evil.gguf.wz"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["tensors"][1]["name"].as_str().unwrap().as_bytes(), evil, "JSON keeps the name exactly");
}

/// Truncates (or rewrites) `file` from another process at several moments while the tool reads
/// it: the tool either finishes (before the change) with correct output or fails with exit 1 and
/// a message naming the file; never a signal, never a temporary file left behind.
#[test]
fn files_truncated_under_the_tool_fail_cleanly() {
    let dir = TempDir::new("streams-truncate");
    let gguf = std::fs::read(data_path(GGUF)).unwrap();
    let arc_path = dir.join("m.wz");
    ok(&run(&dir, &["compress", p(&data_path(GGUF)), "-o", p(&arc_path)]), "compress");
    let arc = std::fs::read(&arc_path).unwrap();
    let mut failures = 0;
    for (cmd, delay_ms) in [
        ("decompress", 0u64),
        ("decompress", 5),
        ("decompress", 20),
        ("verify", 5),
        ("verify", 30),
        ("compress", 5),
        ("compress", 30),
    ] {
        let (target, args): (_, Vec<String>) = match cmd {
            "compress" => {
                let g = dir.join("in.gguf");
                std::fs::write(&g, &gguf).unwrap();
                (
                    g.clone(),
                    vec![
                        "compress".into(),
                        "-f".into(),
                        "-T".into(),
                        "1".into(),
                        p(&g).into(),
                        "-o".into(),
                        "out.wz".into(),
                    ],
                )
            }
            _ => {
                std::fs::write(&arc_path, &arc).unwrap();
                let mut a = vec![cmd.to_string(), "-T".into(), "1".into(), p(&arc_path).into()];
                if cmd == "decompress" {
                    a.extend(["-f".into(), "-o".into(), "out.gguf".into()]);
                }
                (arc_path.clone(), a)
            }
        };
        let child =
            wz().current_dir(&dir.path).args(&args).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let t = Command::new("truncate").args(["-s", "100000"]).arg(&target).status().expect("truncate");
        assert!(t.success());
        let o = child.wait_with_output().unwrap();
        assert!(o.status.signal().is_none(), "{cmd} after {delay_ms} ms: killed by signal {:?}", o.status.signal());
        match o.status.code() {
            Some(0) => {
                // It finished first: the output must be right.
                if cmd == "decompress" {
                    assert!(std::fs::read(dir.join("out.gguf")).unwrap() == gguf, "{cmd} after {delay_ms} ms");
                }
            }
            Some(1) => {
                failures += 1;
                let e = stderr(&o);
                assert!(e.contains(p(&target)) || e.contains("truncated"), "{cmd} after {delay_ms} ms: {e}");
            }
            c => panic!("{cmd} after {delay_ms} ms: exit {c:?}: {}", stderr(&o)),
        }
        dir.assert_no_temporaries(&format!("{cmd} after {delay_ms} ms"));
        let _ = std::fs::remove_file(dir.join("out.gguf"));
        let _ = std::fs::remove_file(dir.join("out.wz"));
    }
    // Truncated before the run starts, every command fails cleanly (and at 0 ms it usually has).
    assert!(failures >= 1, "no run saw the truncation");
}

/// A frame of 600 KB that claims 4 GiB of zeros: verify and decompress stream it in windows, so
/// they run under a 1 GiB address-space limit.
#[test]
fn a_frame_claiming_4_gib_verifies_in_bounded_memory() {
    let dir = TempDir::new("streams-claim");
    let frame = common::zeros_frame(4 << 30);
    assert!(frame.len() < 2 << 20, "{} bytes", frame.len());
    std::fs::write(dir.join("big.wz"), &frame).unwrap();
    let limited = |args: &str| {
        let cmd = format!("ulimit -v 1048576 && exec {} {args}", common::cli_exe().display());
        Command::new("bash").arg("-c").arg(&cmd).current_dir(&dir.path).output().expect("bash")
    };
    let o = limited("verify -T 2 big.wz");
    ok(&o, "verify under a 1 GiB address-space limit");
    assert!(String::from_utf8_lossy(&o.stdout).contains("4294967296"), "{}", String::from_utf8_lossy(&o.stdout));
    // /dev/null needs no --force (as with zstd); another existing output still does.
    let o = limited("decompress -T 2 big.wz -o /dev/null -q");
    ok(&o, "decompress to /dev/null under the limit");
    std::fs::write(dir.join("taken"), b"x").unwrap();
    fails(&limited("decompress big.wz -o taken -q"), "decompress onto an existing file", "already exists");
    assert_eq!(std::fs::read(dir.join("taken")).unwrap(), b"x");
}
