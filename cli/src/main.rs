//! The `weightzip` command-line tool. Its habits are zstd's: `-` is standard input or output,
//! `-c` writes to standard output, several inputs each get their own output, `-d` decompresses,
//! `-T` sets threads, `-q`/`-v`, `--rm` removes an input once its output is complete and synced,
//! outputs take their input's permission bits, and every error exits 1 with a message.

mod baseline;
mod bench;
mod bench_whole;
mod files;
mod ops;
mod report;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use weightzip::{frame, gguf, safetensors, Kind, Options};

use files::{Input, Output};

#[derive(Parser)]
#[command(name = "weightzip", version, about = "Lossless compression of LLM weights", long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Options of every command that reads and writes files.
#[derive(Args)]
struct Io {
    /// Worker threads (0 = every core). The output never depends on it.
    #[arg(short = 'T', long, default_value_t = 0, value_name = "N")]
    threads: u32,
    /// Write to this path ('-' for standard output). Default: INPUT.wz for compress, INPUT less
    /// its .wz for decompress; standard output when the input is standard input.
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
    /// Write to standard output (with several inputs: one after another).
    #[arg(short = 'c', long = "stdout")]
    stdout: bool,
    /// Replace an output that exists (never an input). Also lets --kind compress a GGUF or
    /// safetensors file as a raw stream.
    #[arg(short, long)]
    force: bool,
    /// Keep the input (the default; accepted for zstd's habit).
    #[arg(short, long)]
    keep: bool,
    /// Remove each input once its output is complete and synced to disk (not with -c, and never
    /// standard input).
    #[arg(long)]
    rm: bool,
    /// fsync each output before it is renamed into place (--rm implies it). Without it the input
    /// is never touched, so a crash loses nothing that cannot be made again.
    #[arg(long)]
    sync: bool,
    /// No summary lines or progress bar on stderr.
    #[arg(short, long)]
    quiet: bool,
    /// More detail on stderr (speeds).
    #[arg(short, long)]
    verbose: bool,
    /// Print a JSON summary of each input on stdout (not with -c).
    #[arg(long)]
    json: bool,
    /// Input files ('-' or none: standard input).
    #[arg(value_name = "INPUT")]
    inputs: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compress model files (GGUF or safetensors: detected) into archives, or raw streams of
    /// --kind values into frames.
    Compress {
        /// Treat each input as a raw stream of this kind: bf16, f16, f32, bytes, or ggml blocks q4_k,
        /// q6_k, q5_k, q3_k, q2_k, iq4_xs, iq4_nl, q8_0, q5_0, q5_1, q4_0, q4_1. Without it, inputs must be GGUF or safetensors files.
        #[arg(long)]
        kind: Option<String>,
        /// Bytes per independently decodable chunk (default 262144).
        #[arg(long, default_value_t = 0, value_name = "BYTES")]
        chunk_size: u32,
        /// The fast variant: quantized tensors (Q4_K, Q6_K and the other block types) decode in
        /// less time (Q4_K about 14% less, Q6_K about 19%, on one core) for a fraction of a
        /// percent of ratio; other kinds are unaffected. Older weightzip versions cannot read the output.
        #[arg(long)]
        fast: bool,
        /// With --kind bf16, f16 or f32: the stream is a matrix with rows of this many values, so each
        /// value may be coded in the context of its row's and column's scale (archives take it
        /// from the tensors' shapes). Older weightzip versions cannot read such frames.
        #[arg(long, default_value_t = 0, value_name = "VALUES")]
        row_len: u64,
        #[command(flatten)]
        io: Io,
    },
    /// Restore original files from archives or frames (detected); `-d` is this command.
    #[command(short_flag = 'd')]
    Decompress {
        #[command(flatten)]
        io: Io,
    },
    /// Check that an archive or frame decodes and passes every checksum (archives: every tensor's
    /// SHA-256); with ORIGINAL, that it restores ORIGINAL byte for byte.
    Verify {
        /// The archive or frame ('-': standard input).
        input: PathBuf,
        /// The file it should restore ('-': standard input).
        original: Option<PathBuf>,
        /// Worker threads (0 = every core).
        #[arg(short = 'T', long, default_value_t = 0, value_name = "N")]
        threads: u32,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
    },
    /// List an archive's tensors with their types, shapes, sizes and ratios, or a frame's header.
    Ls {
        /// Print JSON (tensor names exactly as stored) instead of the table (names escaped).
        #[arg(long)]
        json: bool,
        /// The archive or frame ('-': standard input).
        input: PathBuf,
    },
    /// Entropy statistics of a raw stream (or of the bf16 tensors of a GGUF or safetensors file):
    /// the byte-marginal bound R_marginal, weightzip's model, what the frames spend, and for
    /// matrices the model with each value in the context of its row's and column's scale (how
    /// much of the gap a model of rows and columns could take, before its table costs).
    Stats {
        /// The kind of the raw stream.
        #[arg(long, default_value = "bf16")]
        kind: String,
        /// Print the statistics as JSON.
        #[arg(long)]
        json: bool,
        /// A raw stream, a GGUF or a safetensors file ('-': standard input).
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
        /// GGUF, safetensors or (with --kind) raw files.
        inputs: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away (`ls | head`).
    // SAFETY: restoring the default disposition of SIGPIPE, before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    files::clean_up_on_signals();
    // Exit codes as zstd's: 0 on success, 1 on any error, usage errors included.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    match run(cli) {
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
/// Values per row of a GGUF tensor (ggml's dims run innermost first), if it has two or more
/// dimensions.
fn gguf_cols(dims: &[u64]) -> Option<usize> {
    (dims.iter().filter(|&&d| d > 1).count() >= 2).then(|| dims[0] as usize)
}

/// Values per row of a safetensors tensor (its shape runs outermost first), if it has two or more
/// dimensions.
fn st_cols(shape: &[u64]) -> Option<usize> {
    (shape.iter().filter(|&&d| d > 1).count() >= 2).then(|| *shape.last().unwrap_or(&1) as usize)
}

fn tensors_of<'a>(kind: Kind, path: &Path, bytes: &'a [u8]) -> Result<Vec<bench::Tensor<'a>>, String> {
    let slice = |offset: u64, len: u64| &bytes[offset as usize..(offset + len) as usize];
    let (container, found): (&str, Vec<bench::Tensor>) = if bytes.starts_with(b"GGUF") {
        let list = gguf::read_tensors(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let ggml_type = kind.ggml_type();
        let v = list
            .iter()
            .filter(|t| Some(t.ggml_type) == ggml_type)
            .filter_map(|t| {
                t.len.map(|len| bench::Tensor {
                    name: t.name.clone(),
                    data: slice(t.offset, len),
                    cols: gguf_cols(&t.dims),
                })
            })
            .collect();
        ("GGUF", v)
    } else if let Ok(list) = safetensors::read_tensors(bytes) {
        let dtype = kind.safetensors_dtype();
        let v = list
            .iter()
            .filter(|t| Some(t.dtype.as_str()) == dtype)
            .map(|t| bench::Tensor { name: t.name.clone(), data: slice(t.offset, t.len), cols: st_cols(&t.shape) })
            .collect();
        ("safetensors", v)
    } else {
        if !bytes.len().is_multiple_of(kind.element_size()) {
            return Err(format!("{}: {}", path.display(), weightzip::Error::BadLength));
        }
        return Ok(vec![bench::Tensor { name: path.display().to_string(), data: bytes, cols: None }]);
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
            add(
                t.type_name(),
                kind,
                bench::Tensor { name: t.name.clone(), data: slice(t.offset, len), cols: gguf_cols(&t.dims) },
            );
        }
    } else if safetensors::looks_like(bytes) {
        let list = safetensors::read_tensors(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        for t in &list {
            let kind =
                Kind::ALL.into_iter().find(|k| k.safetensors_dtype() == Some(t.dtype.as_str())).unwrap_or(Kind::Bytes);
            add(
                &t.dtype,
                kind,
                bench::Tensor { name: t.name.clone(), data: slice(t.offset, t.len), cols: st_cols(&t.shape) },
            );
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

/// Writes a small output (a report) atomically.
fn write_small(out: &Path, data: &[u8]) -> Result<(), String> {
    Output::Path(out.to_path_buf())
        .write(&Default::default(), |w| w.write_all(data).map_err(|e| weightzip::Error::io("write", None, e)))
        .map_err(|e| files::err(&out.display().to_string(), e))
}

/// The output of `input` under `io`'s options (`default` names it from the input's path).
fn output_for(io: &Io, input: &Input, default: impl Fn(&Path) -> Result<PathBuf, String>) -> Result<Output, String> {
    if io.stdout {
        return Ok(Output::Stdout);
    }
    match (&io.output, input.path()) {
        (Some(o), _) if o.as_os_str() == "-" => Ok(Output::Stdout),
        (Some(o), _) => Ok(Output::Path(o.clone())),
        (None, None) => Ok(Output::Stdout),
        (None, Some(p)) => Ok(Output::Path(default(p)?)),
    }
}

/// Runs `op` on every input of `io` (each to its own output), going on after a failure as zstd
/// does; the first error is returned after all inputs were tried.
fn each_input(
    io: &Io,
    compressing: bool,
    default: impl Fn(&Path) -> Result<PathBuf, String>,
    op: impl Fn(Input, &Output, &ops::Settings) -> Result<(), String>,
) -> Result<(), String> {
    use std::io::IsTerminal;
    let mut inputs = io.inputs.clone();
    if inputs.is_empty() {
        if std::io::stdin().is_terminal() {
            return Err("no input: name a file, or '-' (standard input)".into());
        }
        inputs.push(PathBuf::from("-"));
    }
    if io.output.is_some() && inputs.len() > 1 {
        return Err("-o names one output: give one input, or use -c".into());
    }
    if io.json && (io.stdout || io.output.as_deref() == Some(Path::new("-"))) {
        return Err("--json prints on stdout, which -c or -o - takes for the data".into());
    }
    let s = ops::Settings {
        threads: io.threads,
        chunk_size: 0,
        fast: false,
        row_len: 0,
        quiet: io.quiet,
        verbose: io.verbose,
        json: io.json,
        force: io.force,
        sync: io.sync || io.rm,
    };
    let mut failed = Vec::new();
    for arg in &inputs {
        let r = (|| {
            let input = Input::open(arg)?;
            let out = output_for(io, &input, &default)?;
            if out == Output::Stdout && compressing && files::stdout_is_terminal() && !io.force {
                return Err("refusing to write compressed data to a terminal (use -o, or --force)".into());
            }
            out.check(&input, io.force)?;
            let path = input.path().map(Path::to_path_buf);
            op(input, &out, &s)?;
            if io.rm {
                match (&path, &out) {
                    (Some(p), Output::Path(_)) => files::remove_input(p)?,
                    _ if !io.quiet => {
                        eprintln!("weightzip: {}: not removed (--rm with standard input or output)", arg.display())
                    }
                    _ => {}
                }
            }
            Ok::<(), String>(())
        })();
        if let Err(e) = r {
            failed.push(e);
        }
    }
    match failed.len() {
        0 => Ok(()),
        // One failure: main prints it.
        1 if inputs.len() == 1 => Err(failed.remove(0)),
        n => {
            for e in &failed {
                eprintln!("weightzip: error: {e}");
            }
            Err(format!("{n} of {} inputs failed", inputs.len()))
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Compress { kind, chunk_size, fast, row_len, io } => {
            let kind = kind.as_deref().map(kind_arg).transpose()?;
            if row_len != 0 && kind.is_none() {
                return Err(
                    "--row-len describes a raw stream: give --kind too (archives take rows from the shapes)".into()
                );
            }
            each_input(
                &io,
                true,
                |p| Ok(with_suffix(p)),
                |input, out, s| {
                    let s = ops::Settings { chunk_size, fast, row_len, ..*s };
                    ops::compress(input, out, kind, &s)
                },
            )
        }
        Cmd::Decompress { io } => each_input(&io, false, without_suffix, ops::decompress),
        Cmd::Verify { input, original, threads, json, quiet } => {
            let s = ops::Settings {
                threads,
                chunk_size: 0,
                fast: false,
                row_len: 0,
                quiet,
                verbose: false,
                json,
                force: false,
                sync: false,
            };
            let original = original.as_deref().map(Input::open).transpose()?;
            ops::verify(Input::open(&input)?, original, &s)
        }
        Cmd::Ls { json, input } => ops::ls(Input::open(&input)?, json),
        Cmd::Stats { kind, json, input } => {
            let kind = kind_arg(&kind)?;
            let bytes = Input::open(&input)?.read_all()?;
            let tensors = tensors_of(kind, &input, &bytes)?;
            let all: Vec<u8>;
            let data: &[u8] = if tensors.len() == 1 {
                tensors[0].data
            } else {
                all = tensors.iter().flat_map(|t| t.data.iter().copied()).collect();
                &all
            };
            let s = stats::bf16_stats(data);
            // What the codec really spends, tables and all: each tensor as its own frame, matrices
            // with their rows (as an archive codes them).
            let mut coded = 0u64;
            for t in &tensors {
                let o = Options { row_len: t.cols.unwrap_or(0) as u64, ..Options::default() };
                coded += frame::compress(kind, t.data, &o).map_err(|e| e.to_string())?.len() as u64;
            }
            let coded_bits = if s.values > 0 { 8.0 * coded as f64 / s.values as f64 } else { 0.0 };
            let ratio = if coded > 0 { data.len() as f64 / coded as f64 } else { 0.0 };
            // The matrices' rows and columns as contexts (shapes from the container).
            let mut sc = stats::ScaleContexts::default();
            for t in &tensors {
                if let Some(cols) = t.cols {
                    stats::add_scale_contexts(&mut sc, t.data, cols);
                }
            }
            let per = |bits: f64| if sc.values > 0 { bits / sc.values as f64 } else { 0.0 };
            let contexts = [
                ("none", per(sc.plain), 0.0),
                ("row", per(sc.row), per(sc.side_row)),
                ("column", per(sc.col), per(sc.side_col)),
                ("row and column", per(sc.row_col), per(sc.side_row + sc.side_col)),
            ];
            if json {
                let ctx: Vec<_> = contexts
                    .iter()
                    .map(|(c, b, side)| {
                        json!({"context": c, "bits_per_value": b, "side_bits_per_value": side,
                                                "ratio": if b + side > 0.0 { 16.0 / (b + side) } else { 0.0 }})
                    })
                    .collect();
                println!(
                    "{}",
                    json!({"kind": kind.name(), "values": s.values, "h_high": s.h_high, "h_low": s.h_low,
                           "r_marginal": s.r_marginal, "h_model": s.h_model, "r_model": s.r_model,
                           "h_model_sign_in_symbol": s.h_model_signed,
                           "h_joint_exp_mantissa": s.h_joint_exp_mant, "coded_bits_per_value": coded_bits,
                           "ratio": ratio, "matrix_values": sc.values, "scale_contexts": ctx})
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
                    "  H(model, signed)  {:.4} bits/value  (sign in the symbol: H(sign, exponent, top 3 mantissa bits) + 4 raw bits)",
                    s.h_model_signed
                );
                println!(
                    "  H(e)+H(s,m|e)     {:.4} bits/value  (full exponent/mantissa joint model)",
                    s.h_joint_exp_mant
                );
                println!(
                    "  coded             {coded_bits:.4} bits/value, ratio {ratio:.4}  (weightzip frames: tables, row and column contexts, escapes, headers)"
                );
                if sc.values > 0 {
                    println!(
                        "  scale contexts: the model's symbol in the context of its row's and column's scale (log2 RMS in\n  \
                         half-octaves, 4 bits of side information each), over the {} values of matrices; before table costs",
                        sc.values
                    );
                    for (c, b, side) in contexts {
                        println!("    {c:<16} {b:.4} bits/value + {side:.4} side  ratio {:.4}", 16.0 / (b + side));
                    }
                }
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
                if input_refs.iter().any(|i| weightzip::atomic::same_file(i, o)) {
                    return Err(format!("refusing to overwrite the input file {}", o.display()));
                }
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
                let maps: Vec<Vec<u8>> = inputs.iter().map(|p| Input::open(p)?.read_all()).collect::<Result<_, _>>()?;
                let mut tensors = Vec::new();
                for (p, m) in inputs.iter().zip(&maps) {
                    tensors.extend(tensors_of(kind, p, m)?);
                }
                let mut j = bench::run(kind, &tensors, &s)?;
                let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
                j["file"] = json!(names.join(", "));
                j["domain"] = json!(kind.name().to_uppercase());
                show(&j);
                tables.push(j);
            } else {
                for p in &inputs {
                    let m = Input::open(p)?.read_all()?;
                    let name = p.display().to_string();
                    if !whole {
                        for (domain, kind, tensors) in domains(p, &m)? {
                            let mb = tensors.iter().map(|t| t.data.len()).sum::<usize>() as f64 / 1e6;
                            eprintln!("bench: {name}: {domain}, {} tensors, {mb:.1} MB", tensors.len());
                            let mut j = bench::run(kind, &tensors, &s).map_err(|e| format!("{name}: {domain}: {e}"))?;
                            j["file"] = json!(name);
                            j["domain"] = json!(domain);
                            show(&j);
                            tables.push(j);
                        }
                    }
                    eprintln!("bench: {name}: whole file, {:.1} MB", m.len() as f64 / 1e6);
                    let j = bench_whole::run(&name, &m, &s)?;
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
                write_small(out, format!("{text}\n").as_bytes())?;
            }
            if let Some(out) = &markdown {
                write_small(out, report::markdown(&tables).as_bytes())?;
            }
            if let Some(out) = &plot {
                let svg = report::plot_svg(&tables)?;
                write_small(out, svg.as_bytes())?;
            }
            Ok(())
        }
    }
}
