//! Opt-in: llama.cpp runs a model read straight from a weightzip archive and gives the same
//! output, bit for bit, as from the original GGUF. Needs a llama.cpp build:
//!
//!     scripts/build_llama_cpp.sh /work/cache/llama
//!     WZ_LLAMA_DIR=/work/cache/llama/llama.cpp WZ_CORPUS_DIR=/work/cache \
//!         cargo test --release --test llama -- --ignored --nocapture --test-threads 1
//!
//! Two parts: the example program (below) and llama.cpp's own patched tools (`cli_and_completion_identical`,
//! `server_completions_identical`, `bench_speed_equal`, which need the three corpus models and curl; see
//! the comment above them).
//!
//! `minilm_embeddings_identical` needs only WZ_LLAMA_DIR (its model is the MiniLM fixture);
//! `qwen_greedy_identical` also needs qwen2.5-coder-1.5b-instruct-q4_k_m.gguf in WZ_CORPUS_DIR
//! (`scripts/fetch_corpora.sh DIR qwen15`), and `tied_embeddings_greedy_identical` the SmolLM2
//! and Gemma 3 files (`... DIR smollm`, `... DIR gemma`). Run explicitly, a missing variable or
//! file is a failure, not a skip.
//!
//! Each test runs c_examples/llama_from_archive (built by `make -C c_examples llama`) on the
//! original and on its archive and compares the stdout of the runs byte for byte:
//!   - loader "tensors" (llama_model_init_from_user, each tensor decoded into llama.cpp's buffer)
//!     against the original loaded with --no-repack, as that API turns CPU weight repacking off;
//!   - loader "memfd" (the GGUF rebuilt in memory, checked equal to the original with --check,
//!     then llama.cpp's own file loader) against the original with llama.cpp's defaults.
//!   - loader "file" on the archive's path (llama.cpp's own loader with the weightzip patch that
//!     scripts/build_llama_cpp.sh applies) against the original with llama.cpp's defaults.

mod common;

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
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

fn llama_dir() -> PathBuf {
    let dir = required_dir(
        "WZ_LLAMA_DIR",
        "a llama.cpp build, from scripts/build_llama_cpp.sh CACHE_DIR (CACHE_DIR/llama.cpp)",
    );
    assert!(dir.join("include/llama.h").is_file(), "{}: no include/llama.h", dir.display());
    dir
}

/// A fresh scratch directory under cargo's target directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(d) if !d.is_empty() => root().join(d),
            _ => root().join("target"),
        };
        let dir = target.join(format!("llama-test-{name}-{}", std::process::id()));
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

/// `LD_LIBRARY_PATH` without the directories cargo adds, so the example finds its libraries
/// through its rpaths, as a user's program would.
fn ld_library_path() -> Option<OsString> {
    let current = std::env::var_os("LD_LIBRARY_PATH")?;
    let kept: Vec<PathBuf> =
        std::env::split_paths(&current).filter(|p| !p.starts_with(root().join("target"))).collect();
    std::env::join_paths(kept).ok()
}

fn run(what: &str, cmd: &mut Command) -> (String, String) {
    match ld_library_path() {
        Some(p) => cmd.env("LD_LIBRARY_PATH", p),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{what} failed: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}", out.status);
    (stdout, stderr)
}

/// Builds c_examples/build/llama_from_archive against WZ_LLAMA_DIR (once per test process: the
/// tests run in parallel) and returns its path.
fn build_example() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let make = std::env::var("MAKE").ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "make".into());
        let mut cmd = Command::new(make);
        cmd.current_dir(root()).args(["-C", "c_examples", "llama"]).arg(format!("LLAMA_DIR={}", llama_dir().display()));
        run("make -C c_examples llama", &mut cmd);
        let exe = root().join("c_examples/build/llama_from_archive");
        assert!(exe.is_file(), "{} missing after make llama", exe.display());
        exe
    })
    .clone()
}

/// Compresses `model` into `dir` with the weightzip CLI and returns the archive's path.
fn compress(model: &Path, dir: &Path) -> PathBuf {
    let archive = dir.join(format!("{}.wz", model.file_name().unwrap().to_string_lossy()));
    let mut cmd = common::wz();
    cmd.arg("compress").arg(model).arg("-o").arg(&archive);
    run("weightzip compress", &mut cmd);
    archive
}

/// The "timing:" line of a run's stderr, for the log.
fn timing(stderr: &str) -> &str {
    stderr.lines().rev().find(|l| l.starts_with("timing:")).unwrap_or("(no timing line)")
}

/// Runs the example on the original and on the archive with every loader at `threads`, asserts
/// the pairs described at the top are identical, and returns the stdout of the original's
/// default run and the stderr of the tensors loader's run.
fn compare_loaders(exe: &Path, original: &Path, archive: &Path, threads: u32, args: &[&str]) -> (String, String) {
    let t = threads.to_string();
    let go = |model: &Path, extra: &[&str]| {
        let mut cmd = Command::new(exe);
        cmd.arg(model).args(["--threads", &t]).args(extra).args(args);
        let what = format!("llama_from_archive {} {}", model.display(), extra.join(" "));
        let (out, err) = run(&what, &mut cmd);
        println!(
            "  {:<52} {}",
            format!("{} {}", model.file_name().unwrap().to_string_lossy(), extra.join(" ")),
            timing(&err)
        );
        (out, err)
    };
    let check = original.to_str().unwrap();
    let (file, _) = go(original, &["--loader", "file"]);
    let (memfd, memfd_err) = go(archive, &["--loader", "memfd", "--check", check]);
    let (file_nr, _) = go(original, &["--loader", "file", "--no-repack"]);
    let (tensors, tensors_err) = go(archive, &["--loader", "tensors"]);
    // llama.cpp's own loader, patched (scripts/llama.cpp-weightzip.patch), on the archive's path.
    let (patched, patched_err) = go(archive, &["--loader", "file", "--verbose"]);
    assert!(patched_err.contains("reading a weightzip archive"), "patched loader run:\n{patched_err}");
    assert!(
        patched == file,
        "threads {threads}: llama.cpp's loader on the archive differs from the original\n--- original ---\n{file}\n--- archive ---\n{patched}"
    );
    assert!(memfd_err.contains("--check: the rebuilt GGUF equals"), "memfd run did not check its bytes:\n{memfd_err}");
    assert!(
        tensors_err.contains("tensors decoded into llama.cpp's buffers from the archive's"),
        "tensors run:\n{tensors_err}"
    );
    assert!(!file.is_empty(), "no output");
    assert!(
        memfd == file,
        "threads {threads}: memfd loader differs from the original\n--- original ---\n{file}\n--- memfd ---\n{memfd}"
    );
    assert!(
        tensors == file_nr,
        "threads {threads}: tensors loader differs from the original (--no-repack)\n--- original ---\n{file_nr}\n--- tensors ---\n{tensors}"
    );
    (file, tensors_err)
}

/// Token ids of a few sentences, [CLS] words [SEP] as the bert-base-uncased WordPiece vocabulary
/// numbers them (the comments say which words): the MiniLM fixture carries no tokenizer, so the
/// example takes ids. The test needs only fixed, valid ids.
const MINILM_SENTENCES: [&str; 4] = [
    "ids:101,7592,2088,102",                                           // hello world
    "ids:101,1996,4248,2829,4419,14523,2058,1996,13971,3899,1012,102", // the quick brown fox jumps over the lazy dog.
    "ids:101,1037,4937,2938,2006,1996,13523,1012,102",                 // a cat sat on the mat.
    "ids:101,1045,2066,2000,3191,2808,1012,102",                       // i like to read books.
];

/// (i) all-MiniLM-L6-v2 Q4_K_M (BERT, mean pooling): the embeddings of four sentences from the
/// archive equal those from the original GGUF bit for bit, at 1 and 2 threads.
#[test]
#[ignore = "needs a llama.cpp build: WZ_LLAMA_DIR (scripts/build_llama_cpp.sh)"]
fn minilm_embeddings_identical() {
    embeddings_identical(&root().join("tests/data/minilm-l6-q4_k_m.gguf"));
}

/// The presets people download besides Q4_K_M, Q5_K_M and IQ4_XS (their Q5_K, IQ4_XS and IQ4_NL
/// tensors go through those codecs; scripts/make_quant_models.sh DIR LLAMA_DIR makes the files in
/// WZ_CORPUS_DIR): MiniLM's embeddings, and Gemma 3 270M's greedy tokens (that model requantized
/// from its Q4_K_M file, which is fine for a loader test and why no ratio is reported on it).
#[test]
#[ignore = "needs a llama.cpp build (WZ_LLAMA_DIR) and scripts/make_quant_models.sh's files in WZ_CORPUS_DIR"]
fn quant_presets_identical() {
    let corpus = required_dir("WZ_CORPUS_DIR", "scripts/make_quant_models.sh DIR LLAMA_DIR");
    let file = |name: &str| {
        let f = corpus.join(name);
        assert!(f.is_file(), "{} is missing: run scripts/make_quant_models.sh", f.display());
        f
    };
    for preset in ["q5_k_m", "iq4_xs"] {
        embeddings_identical(&file(&format!("minilm-l6-{preset}.gguf")));
        tied_greedy_identical(&file(&format!("gemma-3-270m-requant-{preset}.gguf")));
    }
}

fn embeddings_identical(original: &Path) {
    let exe = build_example();
    // One directory per model: tests run in parallel unless told otherwise.
    let scratch = Scratch::new(&format!("emb-{}", original.file_stem().unwrap().to_string_lossy()));
    let archive = compress(original, &scratch.0);
    let mut args = vec!["--embed", "--no-vocab"];
    args.extend(MINILM_SENTENCES);
    for threads in [1, 2] {
        let (out, _) = compare_loaders(&exe, original, &archive, threads, &args);
        let rows: Vec<Vec<f64>> = out
            .lines()
            .map(|l| {
                assert!(l.starts_with("embedding "), "unexpected line {l}");
                l.split(": ").nth(1).unwrap().split(' ').map(hex_float).collect()
            })
            .collect();
        assert_eq!(rows.len(), MINILM_SENTENCES.len());
        for r in &rows {
            assert_eq!(r.len(), 384);
            assert!(r.iter().all(|x| x.is_finite()) && r.iter().any(|x| *x != 0.0), "degenerate embedding");
        }
        assert!(rows[0] != rows[1], "two sentences gave the same embedding");
        println!(
            "{}, {threads} thread(s): {} embeddings of 384 floats identical from original and archive",
            original.file_name().unwrap().to_string_lossy(),
            rows.len()
        );
    }
}

/// Parses C99 "%a" output as printed by glibc for doubles: [-]0x1.HHHHp[+-]E or [-]0x0p+0.
fn hex_float(s: &str) -> f64 {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let s = s.strip_prefix("0x").unwrap_or_else(|| panic!("not a hex float: {s}"));
    let (mant, exp) = s.split_once('p').unwrap_or_else(|| panic!("not a hex float: {s}"));
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut v = u64::from_str_radix(int, 16).unwrap() as f64;
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16).unwrap() as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp.parse::<i32>().unwrap());
    if neg {
        -v
    } else {
        v
    }
}

/// Eight coding prompts for the greedy test.
const QWEN_PROMPTS: [&str; 8] = [
    "def fibonacci(n):",
    "// C function that reverses a string in place\nvoid reverse(char *s) {",
    "Write a Python function that checks whether a number is prime.",
    "SELECT name, COUNT(*) FROM orders",
    "fn main() {\n    let v: Vec<u32> =",
    "Explain what a hash map is in one sentence.",
    "#include <stdio.h>\n\nint main(void) {",
    "class Stack:\n    def __init__(self):",
];

/// (ii) Qwen2.5-Coder-1.5B-Instruct Q4_K_M: greedy decoding of 32 tokens for 8 prompts gives the
/// same token ids from the archive as from the original GGUF; and llama.cpp's own llama-simple
/// agrees with the example on the original.
#[test]
#[ignore = "needs WZ_LLAMA_DIR and the qwen15 corpus in WZ_CORPUS_DIR"]
fn qwen_greedy_identical() {
    let corpus = required_dir("WZ_CORPUS_DIR", "the corpus directory (scripts/fetch_corpora.sh DIR qwen15)");
    let original = corpus.join("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
    assert!(original.is_file(), "{} missing: scripts/fetch_corpora.sh {} qwen15", original.display(), corpus.display());
    let exe = build_example();
    let scratch = Scratch::new("qwen");
    let archive = compress(&original, &scratch.0);
    let mut args = vec!["--generate", "32"];
    args.extend(QWEN_PROMPTS);
    let (out, _) = compare_loaders(&exe, &original, &archive, 2, &args);
    let generated: Vec<&str> = out.lines().filter(|l| l.starts_with("generated ")).collect();
    assert_eq!(generated.len(), QWEN_PROMPTS.len(), "{out}");
    for g in &generated {
        let ids = g.split(": ").nth(1).unwrap_or("").split_whitespace().count();
        assert!((1..=32).contains(&ids), "{g}");
    }
    println!("Qwen2.5-Coder-1.5B Q4_K_M: 8 prompts x 32 greedy tokens identical from original and archive:\n{out}");

    // The reference: llama.cpp's own llama-simple (greedy, default parameters) prints the prompt
    // and the generated text; the example's text for the same prompt must follow the prompt there.
    let simple = llama_dir().join("build/bin/llama-simple");
    let texts: Vec<String> = out.lines().filter(|l| l.starts_with("text ")).map(|l| l.to_string()).collect();
    for (i, prompt) in QWEN_PROMPTS.iter().enumerate().take(2) {
        let mut cmd = Command::new(&simple);
        cmd.arg("-m").arg(&original).args(["-n", "32", prompt]);
        let (ref_out, _) = run("llama-simple", &mut cmd);
        let ours = unescape(texts[i].split_once(": ").unwrap().1);
        assert!(
            ref_out.starts_with(prompt)
                && ref_out[prompt.len()..].trim_end_matches('\n') == ours.trim_end_matches('\n'),
            "prompt {i}: llama-simple printed\n{ref_out}\nthe example generated\n{ours}"
        );
    }
    println!("llama-simple agrees with the example on the first two prompts");
}

/// Undoes the example's C-escaped, quoted text.
fn unescape(s: &str) -> String {
    let s = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).expect("quoted text");
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b[i + 1] {
                b'n' => out.push(b'\n'),
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Models with tied output embeddings (no output.weight: the logits use token_embd.weight),
/// SmolLM2-135M-Instruct Q4_1 and Gemma 3 270M Q4_K_M: greedy decoding of 16 tokens for 4 prompts
/// is identical from the archive, where the tensors loader decodes token_embd.weight twice.
#[test]
#[ignore = "needs WZ_LLAMA_DIR and the smollm and gemma corpora in WZ_CORPUS_DIR"]
fn tied_embeddings_greedy_identical() {
    let corpus = required_dir("WZ_CORPUS_DIR", "the corpus directory (scripts/fetch_corpora.sh DIR smollm|gemma)");
    for name in ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"] {
        let original = corpus.join(name);
        assert!(original.is_file(), "{} missing: scripts/fetch_corpora.sh", original.display());
        tied_greedy_identical(&original);
    }
}

/// Greedy decoding of 16 tokens for 4 prompts is identical from `original` (a model with tied
/// output embeddings) and its archive, through every loader.
fn tied_greedy_identical(original: &Path) {
    let exe = build_example();
    let scratch = Scratch::new(&format!("tied-{}", original.file_stem().unwrap().to_string_lossy()));
    let name = original.file_name().unwrap().to_string_lossy();
    let archive = compress(original, &scratch.0);
    let mut args = vec!["--generate", "16"];
    args.extend(&QWEN_PROMPTS[..4]);
    let (out, tensors_err) = compare_loaders(&exe, original, &archive, 2, &args);
    assert!(tensors_err.contains("also as the tied output.weight"), "{name}: not loaded as tied:\n{tensors_err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("generated ")).count(), 4, "{out}");
    println!("{name}: 4 prompts x 16 greedy tokens identical from original and archive");
}

// llama.cpp's own tools, built with the weightzip patch (scripts/llama.cpp-weightzip.patch, applied
// by scripts/build_llama_cpp.sh), take `model.gguf.wz` where they take `model.gguf`, and give the
// same output as from the original at default settings: llama-cli (one turn, `-st`),
// llama-completion, llama-server's /completion endpoint (needs curl) and llama-bench, on
// Qwen2.5-Coder-1.5B-Instruct Q4_K_M, Gemma 3 270M Q4_K_M and SmolLM2-135M-Instruct Q4_1 from
// WZ_CORPUS_DIR. Greedy decoding (`--temp 0`, the one setting that is not a default: the tools
// sample at random otherwise); everything else, mmap and CPU weight repacking included, as
// llama.cpp sets it. (The MiniLM embedding fixture has no tokenizer, so llama-embedding cannot
// take it: `minilm_embeddings_identical` above runs it through llama.cpp's patched loader with
// token ids, at defaults.)

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

const CORPUS_MODELS: [&str; 3] =
    ["qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "gemma-3-270m-q4_k_m.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"];

const TOOL_PROMPTS: [&str; 3] = ["The capital of France is", "def fibonacci(n):", "Write one sentence about the sea."];

fn command(exe: &Path) -> Command {
    let mut cmd = Command::new(exe);
    match ld_library_path() {
        Some(p) => cmd.env("LD_LIBRARY_PATH", p),
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    cmd.stdin(Stdio::null());
    cmd
}

/// llama-cli, one turn per prompt (`-st`), and llama-completion (plain text completion): stdout from
/// the archive equals stdout from the original, at 1 and 2 threads, for every model.
#[test]
#[ignore = "needs WZ_LLAMA_DIR (patched build) and WZ_CORPUS_DIR"]
fn cli_and_completion_identical() {
    let scratch = Scratch::new("tools-cli");
    for name in CORPUS_MODELS {
        let original = corpus_model(name);
        let archive = compress(&original, &scratch.0);
        for threads in ["1", "2"] {
            for prompt in TOOL_PROMPTS {
                for (exe, mode) in [("llama-cli", "-st"), ("llama-completion", "-no-cnv")] {
                    let go = |m: &Path| {
                        let what = format!("{exe} {} -t {threads}", m.display());
                        let mut cmd = command(&tool(exe));
                        cmd.arg("-m").arg(m).args(["-p", prompt, mode, "-n", "24", "--temp", "0", "-t", threads]);
                        run(&what, &mut cmd)
                    };
                    // llama-cli prints its speed ("[ Prompt: 31.9 t/s | Generation: 7.9 t/s ]"), a spinner
                    // as long as the load takes and the model's path with the text: not output of the model
                    let text = |(out, err): (String, String)| {
                        let timing = |l: &&str| {
                            l.starts_with("[ Prompt:") || l.contains("Loading model...") || l.starts_with("model ")
                        };
                        let kept: Vec<&str> = out.lines().filter(|l| !timing(l)).collect();
                        (kept.join("\n"), err)
                    };
                    let (want, _) = text(go(&original));
                    let (got, err) = text(go(&archive));
                    // Neither tool logs the loader's lines by default; that it ran on the .wz path is the
                    // proof (an unpatched build stops at "invalid magic characters").
                    let _ = err;
                    assert!(!want.trim().is_empty(), "{exe}: no output");
                    assert!(
                        got == want,
                        "{name} {exe} -t {threads} {prompt:?}: archive differs\n--- original ---\n{want}\n--- archive ---\n{got}"
                    );
                }
            }
            println!("{name}: llama-cli and llama-completion, {} prompts, -t {threads}: identical", TOOL_PROMPTS.len());
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
    let scratch = Scratch::new("tools-server");
    for name in CORPUS_MODELS {
        let original = corpus_model(name);
        let archive = compress(&original, &scratch.0);
        for threads in ["1", "2"] {
            let complete = |m: &Path| {
                let s = Server::start(m, threads);
                let replies: Vec<String> = TOOL_PROMPTS
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
            let loading = format!("loading model '{}'", archive.display());
            assert!(log.contains(&loading), "llama-server did not load the archive:\n{log}");
            for ((w, g), p) in want.iter().zip(&got).zip(TOOL_PROMPTS) {
                let (wt, gt) = (json_field(w, "tokens"), json_field(g, "tokens"));
                assert!(wt.len() > 2, "{name}: no tokens for {p:?}: {w}");
                assert_eq!(gt, wt, "{name} -t {threads} {p:?}: tokens differ");
                assert_eq!(json_field(g, "content"), json_field(w, "content"), "{name} -t {threads} {p:?}");
            }
            println!(
                "{name}: llama-server /completion, {} prompts, -t {threads}: identical tokens",
                TOOL_PROMPTS.len()
            );
        }
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
    let scratch = Scratch::new("tools-bench");
    let original = corpus_model(CORPUS_MODELS[0]);
    let archive = compress(&original, &scratch.0);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let mut cmd = command(&tool("llama-bench"));
        cmd.arg("-m")
            .arg(&original)
            .arg("-m")
            .arg(&archive)
            .args(["-p", "0", "-n", "32", "-r", "3", "-t", "2", "-o", "json"]);
        let (out, _) = run("llama-bench", &mut cmd);
        let tg = bench_tg(&out);
        assert_eq!(tg.len(), 2, "{out}");
        a.push(tg[0]);
        b.push(tg[1]);
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (ma, mb) = (a[1], b[1]);
    println!(
        "llama-bench tg32, 2 threads, medians of 3 runs of 3: original {ma:.2} tok/s, archive {mb:.2} tok/s ({:.3}x)",
        mb / ma
    );
    assert!((mb / ma - 1.0).abs() < 0.15, "archive {mb:.2} vs original {ma:.2} tok/s");
}
