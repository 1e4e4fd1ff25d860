//! Opt-in: llama.cpp's own tools, built with the weightzip patch (scripts/llama.cpp/weightzip.patch,
//! applied by scripts/build_llama_cpp.sh), take `model.gguf.wz` where they take `model.gguf`, and
//! give the same output as from the original at default settings:
//!
//!     scripts/build_llama_cpp.sh /work/cache/llama
//!     WZ_LLAMA_DIR=/work/cache/llama/llama.cpp WZ_CORPUS_DIR=/work/cache \
//!         cargo test --release --test llama_tools -- --ignored --nocapture --test-threads 1
//!
//! The models: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, Gemma 3 270M Q4_K_M and SmolLM2-135M-Instruct
//! Q4_1 from WZ_CORPUS_DIR (`scripts/fetch_corpora.sh DIR qwen15|gemma|smollm`), and the MiniLM
//! fixture for embeddings. Greedy decoding (`--temp 0`, the one setting that is not a default:
//! the tools sample at random otherwise); everything else, mmap and CPU weight repacking
//! included, as llama.cpp sets it. Needs curl for the server's endpoint. A missing variable,
//! file or tool is a failure, not a skip.

mod common;

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn required_dir(var: &str, how: &str) -> PathBuf {
    let dir = std::env::var_os(var).filter(|v| !v.is_empty()).unwrap_or_else(|| panic!("set {var}: {how}"));
    let dir = PathBuf::from(dir);
    assert!(dir.is_dir(), "{var}={} is not a directory ({how})", dir.display());
    dir
}

/// A tool of the patched llama.cpp build.
fn tool(name: &str) -> PathBuf {
    let dir = required_dir("WZ_LLAMA_DIR", "a llama.cpp build from scripts/build_llama_cpp.sh CACHE_DIR");
    let exe = dir.join("build/bin").join(name);
    assert!(exe.is_file(), "{} missing: rerun scripts/build_llama_cpp.sh", exe.display());
    exe
}

fn corpus_model(name: &str) -> PathBuf {
    let dir = required_dir("WZ_CORPUS_DIR", "the corpus directory (scripts/fetch_corpora.sh DIR qwen15 gemma smollm)");
    let p = dir.join(name);
    assert!(p.is_file(), "{} missing: scripts/fetch_corpora.sh {} ...", p.display(), dir.display());
    p
}

const MODELS: [&str; 3] =
    ["qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "gemma-3-270m-q4_k_m.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"];

const PROMPTS: [&str; 3] = [
    "The capital of France is",
    "def fibonacci(n):",
    "Write one sentence about the sea.",
];

/// A scratch directory under cargo's target directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = root().join("target").join(format!("llama-tools-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `LD_LIBRARY_PATH` without cargo's target directories: the tools find libllama and
/// libweightzip through their rpaths, as on a user's machine.
fn ld_library_path() -> Option<OsString> {
    let current = std::env::var_os("LD_LIBRARY_PATH")?;
    let kept: Vec<PathBuf> =
        std::env::split_paths(&current).filter(|p| !p.starts_with(root().join("target"))).collect();
    std::env::join_paths(kept).ok()
}

fn command(exe: &Path) -> Command {
    let mut cmd = Command::new(exe);
    match ld_library_path() {
        Some(p) => cmd.env("LD_LIBRARY_PATH", p),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    cmd.stdin(Stdio::null());
    cmd
}

fn run(what: &str, cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{what} failed: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}", out.status);
    (stdout, stderr)
}

/// Compresses `model` into `dir` with the weightzip CLI.
fn compress(model: &Path, dir: &Path) -> PathBuf {
    let archive = dir.join(format!("{}.wz", model.file_name().unwrap().to_string_lossy()));
    run("weightzip compress", common::wz().arg("compress").arg(model).arg("-o").arg(&archive));
    archive
}

/// The log line the patched loader prints when it reads an archive.
const ARCHIVE_LOG: &str = "reading a weightzip archive";

fn assert_read_archive(stderr: &str, what: &str) {
    assert!(stderr.contains(ARCHIVE_LOG), "{what}: the loader did not say it read an archive:\n{stderr}");
}

/// llama-cli, one turn per prompt (`-st`), and llama-completion (plain text completion): stdout from
/// the archive equals stdout from the original, at 1 and 2 threads, for every model.
#[test]
#[ignore = "needs WZ_LLAMA_DIR (patched build) and WZ_CORPUS_DIR"]
fn cli_and_completion_identical() {
    let scratch = Scratch::new("cli");
    for name in MODELS {
        let original = corpus_model(name);
        let archive = compress(&original, &scratch.0);
        for threads in ["1", "2"] {
            for prompt in PROMPTS {
                for (exe, mode) in [("llama-cli", "-st"), ("llama-completion", "-no-cnv")] {
                    let go = |m: &Path| {
                        let what = format!("{exe} {} -t {threads}", m.display());
                        let mut cmd = command(&tool(exe));
                        cmd.arg("-m").arg(m).args(["-p", prompt, mode, "-n", "24", "--temp", "0", "-t", threads]);
                        run(&what, &mut cmd)
                    };
                    let (want, _) = go(&original);
                    let (got, err) = go(&archive);
                    assert_read_archive(&err, exe);
                    assert!(!want.trim().is_empty(), "{exe}: no output");
                    assert!(
                        got == want,
                        "{name} {exe} -t {threads} {prompt:?}: archive differs\n--- original ---\n{want}\n--- archive ---\n{got}"
                    );
                }
            }
            println!("{name}: llama-cli and llama-completion, {} prompts, -t {threads}: identical", PROMPTS.len());
        }
    }
}

/// A llama-server on a free localhost port, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(model: &Path, threads: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = command(&tool("llama-server"));
        cmd.arg("-m").arg(model).args(["--host", "127.0.0.1", "--port", &port.to_string(), "-t", threads]);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let child = cmd.spawn().expect("start llama-server");
        let mut s = Server { child, port };
        let start = Instant::now();
        while !s.get("/health").contains("\"ok\"") {
            if let Ok(Some(st)) = s.child.try_wait() {
                let mut err = String::new();
                s.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("llama-server {} exited ({st}):\n{err}", model.display());
            }
            assert!(start.elapsed() < Duration::from_secs(180), "llama-server did not become ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        s
    }

    fn curl(&self, path: &str, body: Option<&str>) -> String {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "--max-time", "300"]).arg(format!("http://127.0.0.1:{}{path}", self.port));
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "-d", b]);
        }
        let out = cmd.output().expect("curl (needed for the server test)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn get(&self, path: &str) -> String {
        self.curl(path, None)
    }

    /// The server's log so far (after it is stopped).
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The raw JSON text of `"key":` in `json`: a string with its quotes, or an array with its brackets.
fn json_field<'a>(json: &'a str, key: &str) -> &'a str {
    let at = json.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("no {key} in {json}")) + key.len() + 3;
    let rest = json[at..].trim_start();
    let b = rest.as_bytes();
    let end = match b[0] {
        b'"' => {
            let mut i = 1;
            while b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i + 1
        }
        b'[' => rest.find(']').unwrap() + 1,
        _ => panic!("{key} is neither a string nor an array in {json}"),
    };
    &rest[..end]
}

/// llama-server's /completion endpoint on localhost: the same greedy tokens and text from the
/// archive as from the original, at 1 and 2 threads, for every model.
#[test]
#[ignore = "needs WZ_LLAMA_DIR (patched build), WZ_CORPUS_DIR and curl"]
fn server_completions_identical() {
    let scratch = Scratch::new("server");
    for name in MODELS {
        let original = corpus_model(name);
        let archive = compress(&original, &scratch.0);
        for threads in ["1", "2"] {
            let complete = |m: &Path| {
                let s = Server::start(m, threads);
                let replies: Vec<String> = PROMPTS
                    .iter()
                    .map(|p| {
                        let body = format!(
                            "{{\"prompt\":{p:?},\"n_predict\":24,\"temperature\":0,\"return_tokens\":true,\"cache_prompt\":false}}"
                        );
                        s.curl("/completion", Some(&body))
                    })
                    .collect();
                (replies, s.stop())
            };
            let (want, _) = complete(&original);
            let (got, log) = complete(&archive);
            assert_read_archive(&log, "llama-server");
            for ((w, g), p) in want.iter().zip(&got).zip(PROMPTS) {
                let (wt, gt) = (json_field(w, "tokens"), json_field(g, "tokens"));
                assert!(wt.len() > 2, "{name}: no tokens for {p:?}: {w}");
                assert_eq!(gt, wt, "{name} -t {threads} {p:?}: tokens differ");
                assert_eq!(json_field(g, "content"), json_field(w, "content"), "{name} -t {threads} {p:?}");
            }
            println!("{name}: llama-server /completion, {} prompts, -t {threads}: identical tokens", PROMPTS.len());
        }
    }
}

/// llama-embedding on the MiniLM fixture (BERT, mean pooling): the embeddings from the archive
/// equal those from the original, at 1 and 2 threads.
#[test]
#[ignore = "needs WZ_LLAMA_DIR (patched build)"]
fn embeddings_identical() {
    let scratch = Scratch::new("embedding");
    let original = root().join("tests/data/minilm-l6-q4_k_m.gguf");
    let archive = compress(&original, &scratch.0);
    for threads in ["1", "2"] {
        let go = |m: &Path| {
            let mut cmd = command(&tool("llama-embedding"));
            cmd.arg("-m").arg(m).args(["-p", "hello world", "--embd-output-format", "json", "-t", threads]);
            run("llama-embedding", &mut cmd)
        };
        let (want, _) = go(&original);
        let (got, err) = go(&archive);
        assert_read_archive(&err, "llama-embedding");
        assert!(want.contains("\"embedding\""), "no embedding in {want}");
        assert_eq!(got, want, "-t {threads}: embeddings differ");
        println!("MiniLM: llama-embedding -t {threads}: identical");
    }
}

/// The tg32 tokens/s llama-bench reports for each model file, in its JSON output's order.
fn bench_tg(stdout: &str) -> Vec<f64> {
    stdout
        .split("\"avg_ts\":")
        .skip(1)
        .map(|s| s.trim_start().split([',', '\n', '}']).next().unwrap().trim().parse().unwrap())
        .collect()
}

/// llama-bench: generation speed from the archive equals the original's within noise (the same
/// weights, repacked the same way, in the same run, interleaved).
#[test]
#[ignore = "needs WZ_LLAMA_DIR (patched build) and WZ_CORPUS_DIR"]
fn bench_speed_equal() {
    let scratch = Scratch::new("bench");
    let original = corpus_model(MODELS[0]);
    let archive = compress(&original, &scratch.0);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let mut cmd = command(&tool("llama-bench"));
        cmd.arg("-m").arg(&original).arg("-m").arg(&archive).args(["-p", "0", "-n", "32", "-r", "3", "-t", "2", "-o", "json"]);
        let (out, _) = run("llama-bench", &mut cmd);
        let tg = bench_tg(&out);
        assert_eq!(tg.len(), 2, "{out}");
        a.push(tg[0]);
        b.push(tg[1]);
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (ma, mb) = (a[1], b[1]);
    println!("llama-bench tg32, 2 threads, medians of 3 runs of 3: original {ma:.2} tok/s, archive {mb:.2} tok/s ({:.3}x)", mb / ma);
    assert!((mb / ma - 1.0).abs() < 0.15, "archive {mb:.2} vs original {ma:.2} tok/s");
}
