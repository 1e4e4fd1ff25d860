//! The `weightzip` command-line tool.

mod archive_cmd;
mod baseline;
mod bench;
mod bench_whole;
mod files;
mod report;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;
use weightzip::{archive, frame, gguf, safetensors, Kind, Options};

use files::{check_output, with_progress, write_atomic, Input};

#[derive(Parser)]
#[command(name = "weightzip", version, about = "Lossless compression of LLM weights", long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compress a model file (GGUF or safetensors: detected) into an archive, or a raw stream of --kind values into a frame.
    Compress {
        /// Treat the input as a raw stream of this kind: bf16, f16, f32, bytes, or ggml blocks q4_k, q6_k, q8_0, q5_0, q5_1, q4_0, q4_1. Without it, the input must be a GGUF or safetensors file.
        #[arg(long)]
        kind: Option<String>,
        /// Worker threads (0 = all cores). The output does not depend on it.
        #[arg(long, default_value_t = 0)]
        threads: u32,
        /// Bytes per independently decodable chunk (default 262144).
        #[arg(long, default_value_t = 0)]
        chunk_size: u32,
        /// Overwrite OUT if it exists (never an input).
        #[arg(short, long)]
        force: bool,
        /// Print a JSON summary on stdout.
        #[arg(long)]
        json: bool,
        input: PathBuf,
        /// Output path (default: INPUT.wz).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Restore the original file from an archive or a frame (detected).
    Decompress {
        /// Worker threads (0 = all cores).
        #[arg(long, default_value_t = 0)]
        threads: u32,
        /// Overwrite OUT if it exists (never an input).
        #[arg(short, long)]
        force: bool,
        /// Print a JSON summary on stdout.
        #[arg(long)]
        json: bool,
        input: PathBuf,
        /// Output path (default: INPUT without its .wz suffix).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check that an archive or frame decodes and passes every checksum (archives: every tensor's SHA-256); compare with ORIGINAL if given.
    Verify {
        input: PathBuf,
        original: Option<PathBuf>,
        #[arg(long, default_value_t = 0)]
        threads: u32,
        #[arg(long)]
        json: bool,
    },
    /// List the tensors of an archive with their types, sizes and ratios.
    Ls {
        #[arg(long)]
        json: bool,
        input: PathBuf,
    },
    /// Entropy statistics of a raw stream (or of the bf16 tensors of a .safetensors file).
    Stats {
        #[arg(long, default_value = "bf16")]
        kind: String,
        #[arg(long)]
        json: bool,
        input: PathBuf,
    },
    /// weightzip next to zstd -3 and -19, the paper's methods and the entropy bounds, on the same data: ratios (byte-weighted, geometric mean and median over tensors) and compression and decompression MB/s at one thread and at all threads.
    ///
    /// Without --kind or --whole, each GGUF or safetensors file gets one table per data domain (its tensors grouped by type: BF16, F16, F32, Q4_K, Q6_K, Q8_0, ...; types without a codec of their own as bytes), then one for the whole file.
    Bench {
        /// Only whole files: the archive against whole-file zstd -3 and -19 and, for GGUF, the paper's five streams.
        #[arg(long)]
        whole: bool,
        /// Only tensors of this kind, over all inputs together (GGUF and safetensors: the tensors of that type; any other file: a raw stream of that kind).
        #[arg(long)]
        kind: Option<String>,
        /// Threads for the "all threads" columns (0 = all cores).
        #[arg(long, default_value_t = 0)]
        threads: u32,
        /// Timed repetitions per measurement (the median is reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Shorter: no all-threads compression timing for zstd -19 and the paper's zstd -19 methods, and no whole-file zstd -19 for files over 256 MiB (the per-domain tables have zstd -19 on the same tensors).
        #[arg(long)]
        quick: bool,
        /// Write the results as JSON to OUT.json (a name ending in .json; replaced if it exists). Alone, or followed by any other name (then read as an input), print JSON on stdout instead of the tables.
        #[arg(long, value_name = "OUT.json", num_args = 0..=1, default_missing_value = "-")]
        json: Option<PathBuf>,
        /// Write an SVG plot of decompression MB/s (one thread, log scale) against ratio, one panel per table of 1 MiB or more, the Pareto frontier highlighted (replaced if it exists).
        #[arg(long, value_name = "OUT.svg")]
        plot: Option<PathBuf>,
        /// Write the tables as Markdown, a summary first (replaced if it exists).
        #[arg(long, value_name = "OUT.md")]
        markdown: Option<PathBuf>,
        inputs: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away (`ls | head`).
    // SAFETY: restoring the default disposition of SIGPIPE, before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    files::clean_up_on_signals();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("weightzip: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// `INPUT.wz`, the default name of what `compress` writes.
fn with_suffix(input: &Path) -> PathBuf {
    let mut s = input.as_os_str().to_owned();
    s.push(".wz");
    PathBuf::from(s)
}

/// INPUT without its `.wz` suffix, the default name of what `decompress` writes.
fn without_suffix(input: &Path) -> Result<PathBuf, String> {
    use std::os::unix::ffi::OsStrExt;
    match input.as_os_str().as_bytes().strip_suffix(b".wz") {
        Some(stem) if !stem.is_empty() && !stem.ends_with(b"/") => Ok(PathBuf::from(std::ffi::OsStr::from_bytes(stem))),
        _ => Err(format!("{}: does not end in .wz; name the output with -o", input.display())),
    }
}

fn kind_arg(s: &str) -> Result<Kind, String> {
    Kind::from_name(s).map_err(|_| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown kind '{s}' (known: {})", known.join(", "))
    })
}

/// The tensors of KIND in a file: a GGUF or .safetensors file's tensors of that type, or the
/// whole file as one raw stream.
fn tensors_of<'a>(kind: Kind, path: &Path, bytes: &'a [u8]) -> Result<Vec<bench::Tensor<'a>>, String> {
    let slice = |offset: u64, len: u64| &bytes[offset as usize..(offset + len) as usize];
    let (container, found): (&str, Vec<bench::Tensor>) = if bytes.starts_with(b"GGUF") {
        let list = gguf::read_tensors(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let ggml_type = kind.ggml_type();
        let v = list
            .iter()
            .filter(|t| Some(t.ggml_type) == ggml_type)
            .filter_map(|t| t.len.map(|len| bench::Tensor { name: t.name.clone(), data: slice(t.offset, len) }))
            .collect();
        ("GGUF", v)
    } else if let Ok(list) = safetensors::read_tensors(bytes) {
        let dtype = kind.safetensors_dtype();
        let v = list
            .iter()
            .filter(|t| Some(t.dtype.as_str()) == dtype)
            .map(|t| bench::Tensor { name: t.name.clone(), data: slice(t.offset, t.len) })
            .collect();
        ("safetensors", v)
    } else {
        if !bytes.len().is_multiple_of(kind.element_size()) {
            return Err(format!("{}: {}", path.display(), weightzip::Error::BadLength));
        }
        return Ok(vec![bench::Tensor { name: path.display().to_string(), data: bytes }]);
    };
    if found.is_empty() {
        return Err(format!("{}: {container} file has no {} tensors", path.display(), kind.name()));
    }
    Ok(found)
}

/// The data domains of a GGUF or safetensors file: its tensors grouped by type (ggml type or
/// dtype), each with the kind that codes it (types without a codec of their own: bytes), the
/// largest domain first. Tensors of a ggml type whose size this crate does not know are left out.
fn domains<'a>(path: &Path, bytes: &'a [u8]) -> Result<Vec<(String, Kind, Vec<bench::Tensor<'a>>)>, String> {
    let slice = |offset: u64, len: u64| &bytes[offset as usize..(offset + len) as usize];
    let mut out: Vec<(String, Kind, Vec<bench::Tensor>)> = Vec::new();
    let mut add = |domain: &str, kind: Kind, t: bench::Tensor<'a>| match out.iter_mut().find(|d| d.0 == domain) {
        Some(d) => d.2.push(t),
        None => out.push((domain.to_string(), kind, vec![t])),
    };
    if bytes.starts_with(b"GGUF") {
        let list = gguf::read_tensors(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        for t in &list {
            let Some(len) = t.len else { continue };
            let kind = Kind::ALL.into_iter().find(|k| k.ggml_type() == Some(t.ggml_type)).unwrap_or(Kind::Bytes);
            add(t.type_name(), kind, bench::Tensor { name: t.name.clone(), data: slice(t.offset, len) });
        }
    } else if safetensors::looks_like(bytes) {
        let list = safetensors::read_tensors(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        for t in &list {
            let kind =
                Kind::ALL.into_iter().find(|k| k.safetensors_dtype() == Some(t.dtype.as_str())).unwrap_or(Kind::Bytes);
            add(&t.dtype, kind, bench::Tensor { name: t.name.clone(), data: slice(t.offset, t.len) });
        }
    } else {
        return Err(format!(
            "{}: neither a GGUF nor a safetensors file; to bench a raw stream, name its kind with --kind",
            path.display()
        ));
    }
    out.retain(|d| d.2.iter().any(|t| !t.data.is_empty()));
    out.sort_by_key(|d| std::cmp::Reverse(d.2.iter().map(|t| t.data.len()).sum::<usize>()));
    Ok(out)
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Compress { kind, threads, chunk_size, force, json, input, output } => {
            let output = output.unwrap_or_else(|| with_suffix(&input));
            check_output(&output, &[&input], force)?;
            let Some(kind) = kind else {
                let mut head = Vec::new();
                std::fs::File::open(&input)
                    .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, 9), &mut head))
                    .map_err(|e| files::io_error("read", &input, e))?;
                if !head.starts_with(b"GGUF") && !safetensors::looks_like(&head) {
                    return Err(format!(
                        "{}: neither a GGUF nor a safetensors file; to compress a raw stream, name its kind with --kind",
                        input.display()
                    ));
                }
                return archive_cmd::compress(&input, &output, threads, chunk_size, json);
            };
            let kind = kind_arg(&kind)?;
            let inp = Input::open(&input)?;
            let src = inp.bytes();
            let frame = with_progress("compress", src.len() as u64, |p| {
                frame::compress(kind, src, &Options { threads, chunk_size, progress: Some(p) })
            })
            .map_err(|e| format!("{}: {e}", input.display()))?;
            write_atomic(&output, &frame)?;
            let ratio = src.len() as f64 / frame.len().max(1) as f64;
            if json {
                println!(
                    "{}",
                    json!({"input": input.display().to_string(), "output": output.display().to_string(),
                           "kind": kind.name(), "original_size": src.len(), "frame_size": frame.len(), "ratio": ratio})
                );
            } else {
                eprintln!(
                    "{} -> {}: {} -> {} bytes, ratio {ratio:.4}",
                    input.display(),
                    output.display(),
                    src.len(),
                    frame.len()
                );
            }
            Ok(())
        }
        Cmd::Decompress { threads, force, json, input, output } => {
            let output = match output {
                Some(o) => o,
                None => without_suffix(&input)?,
            };
            check_output(&output, &[&input], force)?;
            let inp = Input::open(&input)?;
            if archive::is_archive(inp.bytes()) {
                drop(inp);
                return archive_cmd::decompress(&input, &output, threads, json);
            }
            let info = frame::read_info(inp.bytes()).map_err(|e| format!("{}: {e}", input.display()))?;
            let data = with_progress("decompress", info.original_size, |p| {
                frame::decompress(inp.bytes(), &Options { threads, progress: Some(p), ..Options::default() })
            })
            .map_err(|e| format!("{}: {e}", input.display()))?;
            write_atomic(&output, &data)?;
            if json {
                println!(
                    "{}",
                    json!({"input": input.display().to_string(), "output": output.display().to_string(),
                           "kind": info.kind.name(), "original_size": info.original_size, "frame_size": info.frame_size})
                );
            }
            Ok(())
        }
        Cmd::Verify { input, original, threads, json } => {
            let inp = Input::open(&input)?;
            if archive::is_archive(inp.bytes()) {
                drop(inp);
                return archive_cmd::verify(&input, original.as_deref(), threads, json);
            }
            let info = frame::read_info(inp.bytes()).map_err(|e| format!("{}: {e}", input.display()))?;
            let data = with_progress("verify", info.original_size, |p| {
                frame::decompress(inp.bytes(), &Options { threads, progress: Some(p), ..Options::default() })
            })
            .map_err(|e| format!("{}: {e}", input.display()))?;
            let mut matches = None;
            if let Some(orig) = &original {
                let o = Input::open(orig)?;
                if o.bytes() != data.as_slice() {
                    return Err(format!("{} does not match {}", input.display(), orig.display()));
                }
                matches = Some(true);
            }
            if json {
                println!(
                    "{}",
                    json!({"ok": true, "kind": info.kind.name(), "original_size": info.original_size,
                           "frame_size": info.frame_size, "chunks": info.chunk_count, "matches_original": matches})
                );
            } else {
                println!(
                    "{}: OK ({} frame, {} -> {} bytes, {} chunks{})",
                    input.display(),
                    info.kind.name(),
                    info.frame_size,
                    info.original_size,
                    info.chunk_count,
                    if matches.is_some() { ", identical to the original" } else { "" }
                );
            }
            Ok(())
        }
        Cmd::Ls { json, input } => archive_cmd::ls(&input, json),
        Cmd::Stats { kind, json, input } => {
            let kind = kind_arg(&kind)?;
            let inp = Input::open(&input)?;
            let tensors = tensors_of(kind, &input, inp.bytes())?;
            let all: Vec<u8>;
            let data: &[u8] = if tensors.len() == 1 {
                tensors[0].data
            } else {
                all = tensors.iter().flat_map(|t| t.data.iter().copied()).collect();
                &all
            };
            let s = stats::bf16_stats(data);
            // What the codec really spends, tables and all: each tensor as its own frame.
            let mut coded = 0u64;
            for t in &tensors {
                coded += frame::compress(kind, t.data, &Options::default()).map_err(|e| e.to_string())?.len() as u64;
            }
            let coded_bits = if s.values > 0 { 8.0 * coded as f64 / s.values as f64 } else { 0.0 };
            let ratio = if coded > 0 { data.len() as f64 / coded as f64 } else { 0.0 };
            if json {
                println!(
                    "{}",
                    json!({"kind": kind.name(), "values": s.values, "h_high": s.h_high, "h_low": s.h_low,
                           "r_marginal": s.r_marginal, "h_model": s.h_model, "r_model": s.r_model,
                           "h_joint_exp_mantissa": s.h_joint_exp_mant, "coded_bits_per_value": coded_bits,
                           "ratio": ratio})
                );
            } else {
                println!("{}: {} bf16 values", input.display(), s.values);
                println!("  H(high byte)      {:.4} bits", s.h_high);
                println!("  H(low byte)       {:.4} bits", s.h_low);
                println!("  R_marginal        {:.4}   (16 / (H_high + H_low))", s.r_marginal);
                println!(
                    "  H(model)          {:.4} bits/value  (H(exponent, top 4 mantissa bits) + 4 raw bits)",
                    s.h_model
                );
                println!("  R_model           {:.4}   (16 / H(model), before table costs)", s.r_model);
                println!(
                    "  H(e)+H(s,m|e)     {:.4} bits/value  (full exponent/mantissa joint model)",
                    s.h_joint_exp_mant
                );
                println!(
                    "  coded             {coded_bits:.4} bits/value, ratio {ratio:.4}  (weightzip frames: per-stretch tables, escapes, headers)"
                );
            }
            Ok(())
        }
        Cmd::Bench { whole, kind, threads, reps, quick, json, plot, markdown, mut inputs } => {
            // `--json` takes an optional value; one that does not name a .json file is the
            // first input, as it was before --json took a value (`bench --json FILE`).
            let json = match json {
                Some(j) if j.as_os_str() != "-" && !j.to_string_lossy().to_ascii_lowercase().ends_with(".json") => {
                    inputs.insert(0, j);
                    Some(PathBuf::from("-"))
                }
                j => j,
            };
            if inputs.is_empty() {
                return Err("bench: name at least one input file".into());
            }
            let json_stdout = json.as_deref() == Some(Path::new("-"));
            let json_file = json.filter(|_| !json_stdout);
            let outputs: Vec<&Path> =
                [&json_file, &plot, &markdown].into_iter().flatten().map(|p| p.as_path()).collect();
            let input_refs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
            for o in &outputs {
                check_output(o, &input_refs, true)?;
                let parent = o.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    return Err(format!("{}: no such directory for {}", parent.display(), o.display()));
                }
            }
            let s = bench::Settings { threads: bench::weightzip_threads(threads), reps, quick };
            let show = |t: &serde_json::Value| {
                if !json_stdout {
                    bench::print_table(t);
                }
            };
            let mut tables = Vec::new();
            if let Some(kind) = kind.as_deref().filter(|_| !whole) {
                let kind = kind_arg(kind)?;
                let maps: Vec<Input> = inputs.iter().map(|p| Input::open(p)).collect::<Result<_, _>>()?;
                let mut tensors = Vec::new();
                for (p, m) in inputs.iter().zip(&maps) {
                    tensors.extend(tensors_of(kind, p, m.bytes())?);
                }
                let mut j = bench::run(kind, &tensors, &s)?;
                let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
                j["file"] = json!(names.join(", "));
                j["domain"] = json!(kind.name().to_uppercase());
                show(&j);
                tables.push(j);
            } else {
                for p in &inputs {
                    let m = Input::open(p)?;
                    let name = p.display().to_string();
                    if !whole {
                        for (domain, kind, tensors) in domains(p, m.bytes())? {
                            let mb = tensors.iter().map(|t| t.data.len()).sum::<usize>() as f64 / 1e6;
                            eprintln!("bench: {name}: {domain}, {} tensors, {mb:.1} MB", tensors.len());
                            let mut j = bench::run(kind, &tensors, &s).map_err(|e| format!("{name}: {domain}: {e}"))?;
                            j["file"] = json!(name);
                            j["domain"] = json!(domain);
                            show(&j);
                            tables.push(j);
                        }
                    }
                    eprintln!("bench: {name}: whole file, {:.1} MB", m.bytes().len() as f64 / 1e6);
                    let j = bench_whole::run(&name, m.bytes(), &s)?;
                    show(&j);
                    tables.push(j);
                }
            }
            // --kind gives one table, printed as one object (as it always was); the others a list.
            let doc = if kind.is_some() && !whole { tables[0].clone() } else { json!(tables) };
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            if json_stdout {
                println!("{text}");
            }
            if let Some(out) = &json_file {
                write_atomic(out, format!("{text}\n").as_bytes())?;
            }
            if let Some(out) = &markdown {
                write_atomic(out, report::markdown(&tables).as_bytes())?;
            }
            if let Some(out) = &plot {
                let svg = report::plot_svg(&tables)?;
                write_atomic(out, svg.as_bytes())?;
            }
            Ok(())
        }
    }
}
