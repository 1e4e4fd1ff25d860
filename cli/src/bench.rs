//! `weightzip bench`: weightzip and its baselines on the same tensors, in the same run.
//!
//! Every method codes each tensor as its own frame (as an archive does), and is timed over all
//! tensors together; times are medians over repetitions, because the machine is shared and noisy.
//! Ratios are given three ways: byte-weighted (all original bytes over all coded bytes, what a
//! whole model costs), and the geometric mean and the median of the per-tensor ratios (what a
//! typical tensor gets, whatever its size).

use std::time::Instant;

use crate::baseline::{byte_planes, paper};
use crate::stats;
use serde_json::json;
use weightzip::{frame, zstd, Kind, Options};

pub struct Tensor<'a> {
    pub name: String,
    pub data: &'a [u8],
    /// Values per row (the innermost dimension) of a tensor of two or more dimensions, from its
    /// container; None for vectors and raw streams.
    pub cols: Option<usize>,
}

/// How a bench measures.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Threads of the "all threads" columns (already resolved: at least 1).
    pub threads: u32,
    /// Timed repetitions; the median is reported.
    pub reps: usize,
    /// Skip the all-threads compression timing of the zstd -19 methods (see `--quick`).
    pub quick: bool,
}

pub struct MethodResult {
    pub name: String,
    pub compressed: u64,
    /// Coded bytes of each tensor, in the tensors' order; empty when the method codes a whole
    /// file as one (then the per-tensor statistics are null).
    pub per_tensor: Vec<u64>,
    /// MB/s at 1 thread and at `threads` threads (None where the method has no such mode).
    pub comp_1t: f64,
    pub comp_nt: Option<f64>,
    pub decomp_1t: f64,
    pub decomp_nt: Option<f64>,
}

impl MethodResult {
    /// `sizes`: the original bytes of each tensor (or one entry, the whole file).
    pub fn to_json(&self, sizes: &[u64]) -> serde_json::Value {
        let total: u64 = sizes.iter().sum();
        let spread = (self.per_tensor.len() == sizes.len())
            .then(|| spread(sizes, &self.per_tensor.iter().map(|&c| c as f64).collect::<Vec<_>>()))
            .flatten();
        json!({
            "name": self.name,
            "compressed_bytes": self.compressed,
            "ratio": total as f64 / self.compressed as f64,
            "geomean_ratio": spread.map(|s| s.0),
            "median_ratio": spread.map(|s| s.1),
            "compress_mbps_1t": self.comp_1t,
            "compress_mbps_nt": self.comp_nt,
            "decompress_mbps_1t": self.decomp_1t,
            "decompress_mbps_nt": self.decomp_nt,
        })
    }
}

/// Geometric mean and median of the per-tensor ratios `orig[i] / coded[i]`, over the tensors
/// that have bytes and a non-zero coded size (a constant tensor's entropy bound is 0 bytes: its
/// ratio is infinite and says nothing about the others). None when no tensor qualifies.
pub fn spread(orig: &[u64], coded: &[f64]) -> Option<(f64, f64)> {
    let r: Vec<f64> = orig.iter().zip(coded).filter(|(&o, &c)| o > 0 && c > 0.0).map(|(&o, &c)| o as f64 / c).collect();
    if r.is_empty() {
        return None;
    }
    let geo = (r.iter().map(|x| x.ln()).sum::<f64>() / r.len() as f64).exp();
    let mut s = r;
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let med = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    Some((geo, med))
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median seconds of `reps` runs of `f`.
pub fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    median(
        (0..reps.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

pub fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs.max(1e-9)
}

/// Compresses a tensor's bytes, given its row length (0 if it has none), at a thread count.
type CompressFn<'a> = Box<dyn Fn(&[u8], usize, u32) -> weightzip::Result<Vec<u8>> + 'a>;
type DecompressFn<'a> = Box<dyn Fn(&[u8], &mut [u8], u32) -> weightzip::Result<()> + 'a>;

/// One method as the bench drives it: compress a tensor, decompress it into an exact-size
/// buffer, each at a given thread count.
struct Method<'a> {
    name: String,
    compress: CompressFn<'a>,
    decompress: DecompressFn<'a>,
    /// Whether compression / decompression use more than one thread when asked to.
    parallel_compress: bool,
    parallel_decompress: bool,
    /// Output bytes must not depend on the thread count (checked).
    deterministic: bool,
    /// Compresses at a few MB/s (zstd -19 and the paper's methods built on it): compression is
    /// timed once, not `reps` times.
    slow: bool,
}

/// Runs one method on every tensor: compression at 1 thread (whose output is kept and
/// decoded), at all threads, a checked roundtrip, then timed decompression.
fn measure(m: &Method, tensors: &[Tensor], s: &Settings, bufs: &mut [Vec<u8>]) -> Result<MethodResult, String> {
    let total: u64 = tensors.iter().map(|t| t.data.len() as u64).sum();
    let creps = if m.slow { 1 } else { s.reps };
    let compress_all = |threads: u32| -> Result<Vec<Vec<u8>>, String> {
        tensors
            .iter()
            .map(|t| {
                (m.compress)(t.data, t.cols.unwrap_or(0), threads)
                    .map_err(|e| format!("{}: compress {}: {e}", m.name, t.name))
            })
            .collect()
    };
    let mut frames = Ok(Vec::new());
    let c1 = time(creps, || frames = compress_all(1));
    let frames = frames?;
    let mut comp_nt = None;
    if m.parallel_compress && !(s.quick && m.slow) {
        let mut fr = Ok(Vec::new());
        let cn = time(creps, || fr = compress_all(s.threads));
        if m.deterministic && fr? != frames {
            return Err(format!("{}: output depends on the thread count", m.name));
        }
        comp_nt = Some(mbps(total, cn));
    }
    // A checked roundtrip first, into buffers filled with a pattern no decoder leaves behind by
    // accident; the timed runs below then decode the same frames again.
    for ((t, f), b) in tensors.iter().zip(&frames).zip(bufs.iter_mut()) {
        b.fill(0xA5);
        (m.decompress)(f, b, 1).map_err(|e| format!("{}: decompress {}: {e}", m.name, t.name))?;
        if b.as_slice() != t.data {
            return Err(format!("{}: roundtrip mismatch on {}", m.name, t.name));
        }
    }
    let mut dtime = |threads: u32| {
        time(s.reps, || {
            for (f, b) in frames.iter().zip(bufs.iter_mut()) {
                (m.decompress)(f, b, threads).expect("decoded once already");
            }
        })
    };
    let decomp_1t = mbps(total, dtime(1));
    let decomp_nt = m.parallel_decompress.then(|| mbps(total, dtime(s.threads)));
    Ok(MethodResult {
        name: m.name.clone(),
        compressed: frames.iter().map(|f| f.len() as u64).sum(),
        per_tensor: frames.iter().map(|f| f.len() as u64).collect(),
        comp_1t: mbps(total, c1),
        comp_nt,
        decomp_1t,
        decomp_nt,
    })
}

/// The two frames of the paper's Q4_K method as one buffer: the first frame's size (u64 LE),
/// then both frames.
fn q4k_pack(data: &[u8]) -> weightzip::Result<Vec<u8>> {
    let (a, b) = paper::q4k_compress(data, 19)?;
    let mut v = Vec::with_capacity(8 + a.len() + b.len());
    v.extend_from_slice(&(a.len() as u64).to_le_bytes());
    v.extend_from_slice(&a);
    v.extend_from_slice(&b);
    Ok(v)
}

fn q4k_unpack(src: &[u8], dst: &mut [u8], scratch: &mut (Vec<u8>, zstd::DCtx)) -> weightzip::Result<()> {
    let bad = || weightzip::Error::CorruptData;
    let n = u64::from_le_bytes(src.get(..8).ok_or_else(bad)?.try_into().unwrap()) as usize;
    let rest = &src[8..];
    let a = rest.get(..n).ok_or_else(bad)?;
    paper::q4k_decompress(a, &rest[n..], dst, &mut scratch.0, &mut scratch.1)
}

/// The methods measured on tensors of `kind`, in table order.
fn methods(kind: Kind) -> Vec<Method<'static>> {
    let mut v = vec![Method {
        name: "weightzip".into(),
        // Matrices with their rows, as archives code them.
        compress: Box::new(move |d, cols, t| {
            frame::compress(kind, d, &Options { row_len: cols as u64, ..Options::with_threads(t) })
        }),
        decompress: Box::new(|f, b, t| frame::decompress_into(f, b, &Options::with_threads(t))),
        parallel_compress: true,
        parallel_decompress: true,
        deterministic: true,
        slow: false,
    }];
    // The fast variant where it differs (the kinds with packed tables: Q4_K and the block
    // codecs): its ratio and decoding speed next to the default's, the two Pareto points.
    if kind.is_quantized() {
        v.push(Method {
            name: "weightzip --fast".into(),
            compress: Box::new(move |d, cols, t| {
                frame::compress(kind, d, &Options { fast: true, row_len: cols as u64, ..Options::with_threads(t) })
            }),
            decompress: Box::new(|f, b, t| frame::decompress_into(f, b, &Options::with_threads(t))),
            parallel_compress: true,
            parallel_decompress: true,
            deterministic: true,
            slow: false,
        });
    }
    // The paper's methods come right after ours.
    let planes = match kind {
        Kind::Bf16 | Kind::F16 => Some(2),
        Kind::F32 => Some(4),
        _ => None,
    };
    if let Some(width) = planes {
        v.push(Method {
            name: "paper: byte-plane rANS".into(),
            compress: Box::new(move |d, _, t| byte_planes::compress(d, width, t)),
            decompress: Box::new(byte_planes::decompress_into),
            parallel_compress: true,
            parallel_decompress: true,
            deterministic: true,
            slow: false,
        });
    }
    if kind == Kind::Q4K {
        v.push(Method {
            name: "paper: grouped+zstd-19".into(),
            compress: Box::new(|d, _, _| q4k_pack(d)),
            decompress: {
                let scratch = std::cell::RefCell::new((Vec::new(), zstd::DCtx::new().expect("a zstd context")));
                Box::new(move |f, b, _| q4k_unpack(f, b, &mut scratch.borrow_mut()))
            },
            parallel_compress: false,
            parallel_decompress: false,
            deterministic: true,
            slow: true,
        });
    }
    // zstd at -3 and -19 on the raw bytes. zstd has a multi-threaded compressor (whose output
    // differs from the single-threaded one: the ratio is the single-threaded output's) but no
    // multi-threaded decoder, so its decode speed is reported at one thread only. Decoding keeps
    // one context for all tensors, as a loader would.
    for level in [3, 19] {
        v.push(Method {
            name: format!("zstd -{level}"),
            compress: Box::new(move |d, _, t| zstd::compress(d, level, if t > 1 { t } else { 0 })),
            decompress: {
                let ctx = std::cell::RefCell::new(zstd::DCtx::new().expect("a zstd context"));
                Box::new(move |f, b, _| ctx.borrow_mut().decompress_into(f, b))
            },
            parallel_compress: true,
            parallel_decompress: false,
            deterministic: false,
            slow: level >= 19,
        });
    }
    v
}

/// An entropy bound as a table row: byte-weighted ratio and the per-tensor spread.
fn bound_json(name: &str, sizes: &[u64], coded: &[f64]) -> serde_json::Value {
    let total: u64 = sizes.iter().sum();
    let bytes: f64 = coded.iter().sum();
    let s = spread(sizes, coded);
    json!({
        "name": name,
        "ratio": (bytes > 0.0).then(|| total as f64 / bytes),
        "geomean_ratio": s.map(|s| s.0),
        "median_ratio": s.map(|s| s.1),
    })
}

/// Measures every method on `tensors` (all of `kind`) and returns the table as JSON.
pub fn run(kind: Kind, tensors: &[Tensor], s: &Settings) -> Result<serde_json::Value, String> {
    let sizes: Vec<u64> = tensors.iter().map(|t| t.data.len() as u64).collect();
    let total: u64 = sizes.iter().sum();
    let mut bufs: Vec<Vec<u8>> = tensors.iter().map(|t| vec![0u8; t.data.len()]).collect();
    let mut results = Vec::new();
    for m in methods(kind) {
        results.push(measure(&m, tensors, s, &mut bufs)?);
    }
    drop(bufs);

    // Entropy bounds, per tensor (each tensor's own statistics, as the paper computes them):
    // a tensor of n bytes with bound R "costs" n / R bytes.
    let mut bounds = Vec::new();
    let width = match kind {
        Kind::Bf16 | Kind::F16 => Some(2),
        Kind::F32 => Some(4),
        _ => None,
    };
    let mut r_marginal = None;
    if let Some(w) = width {
        let coded: Vec<f64> = tensors
            .iter()
            .map(|t| {
                let n = (t.data.len() / w) as f64;
                n * (0..w).map(|k| stats::byte_plane_entropy(t.data, w, k)).sum::<f64>() / 8.0
            })
            .collect();
        let b = bound_json("bound: R_marginal", &sizes, &coded);
        r_marginal = b["ratio"].as_f64();
        bounds.push(b);
    }
    let mut q4k_bound = None;
    if kind == Kind::Q4K {
        let coded: Vec<f64> = tensors.iter().map(|t| paper::q4k_order0_bound_bits(t.data) / 8.0).collect();
        let b = bound_json("bound: order-0 nibbles+headers", &sizes, &coded);
        q4k_bound = b["ratio"].as_f64();
        bounds.push(b);
    }
    // The other block types: the order-0 entropy of their quants, headers stored raw.
    let mut blocks_bound = None;
    if kind.is_quantized() && kind != Kind::Q4K {
        let coded: Option<Vec<f64>> = tensors
            .iter()
            .map(|t| weightzip::codec::blocks::order0_bound_bits(kind, t.data).map(|b| b / 8.0))
            .collect();
        if let Some(coded) = coded {
            let b = bound_json("bound: order-0 quants+raw headers", &sizes, &coded);
            blocks_bound = b["ratio"].as_f64();
            bounds.push(b);
        }
    }
    // The entropy of weightzip's own bf16 model, and of the full exponent/mantissa joint model.
    let (mut model_bytes, mut joint_bytes) = (0.0, 0.0);
    for t in tensors.iter().filter(|_| kind == Kind::Bf16) {
        let st = stats::bf16_stats(t.data);
        model_bytes += st.values as f64 * st.h_model / 8.0;
        joint_bytes += st.values as f64 * st.h_joint_exp_mant / 8.0;
    }
    let r = |b: f64| if b > 0.0 { Some(total as f64 / b) } else { None };
    Ok(json!({
        "kind": kind.name(),
        "tensors": tensors.len(),
        "bytes": total,
        "threads": s.threads,
        "reps": s.reps,
        "quick": s.quick,
        "r_marginal": r_marginal,
        "q4k_order0_bound": q4k_bound,
        "blocks_order0_bound": blocks_bound,
        "r_model_entropy": r(model_bytes),
        "r_joint_exp_mantissa_entropy": r(joint_bytes),
        "methods": results.iter().map(|m| m.to_json(&sizes)).collect::<Vec<_>>(),
        "bounds": bounds,
    }))
}

pub fn weightzip_threads(threads: u32) -> u32 {
    if threads == 0 {
        std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1)
    } else {
        threads
    }
}

/// Prints one table (a domain's, or a whole file's) for a terminal.
pub fn print_table(json: &serde_json::Value) {
    let f1 = |v: &serde_json::Value| v.as_f64().map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into());
    let f4 = |v: &serde_json::Value| v.as_f64().map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into());
    let file = json["file"].as_str().unwrap_or("");
    if !json["open_seconds"].is_null() {
        print!("{file}: whole file, {} bytes, {} tensors", json["bytes"], json["tensors"]);
        for (dtype, b) in json["r_marginal_by_dtype"].as_object().into_iter().flatten() {
            print!("; {dtype} R_marginal {:.4} over {} bytes", b["r_marginal"].as_f64().unwrap_or(0.0), b["bytes"]);
        }
        println!();
        print!("  random access: open {:.1} us", json["open_seconds"].as_f64().unwrap_or(0.0) * 1e6);
        for r in json["read_one_tensor"].as_array().into_iter().flatten() {
            print!(
                "; read {} ({} bytes) {:.1} us",
                r["tensor"].as_str().unwrap_or(""),
                r["bytes"],
                r["seconds"].as_f64().unwrap_or(0.0) * 1e6
            );
        }
        println!();
    } else {
        let head = if file.is_empty() {
            String::new()
        } else {
            format!("{file}: {}, ", json["domain"].as_str().unwrap_or(""))
        };
        print!("{head}{} tensors, {} bytes of {}", json["tensors"], json["bytes"], json["kind"].as_str().unwrap_or(""));
        if let Some(m) = json["r_model_entropy"].as_f64() {
            print!(
                "; entropy of weightzip's model = {m:.4}; H(exp)+H(sign,mant|exp) = {:.4}",
                json["r_joint_exp_mantissa_entropy"].as_f64().unwrap_or(f64::NAN)
            );
        }
        println!();
    }
    let nt = &json["threads"];
    println!(
        "{:<32} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>10}   (MB/s of original bytes, median of {} runs)",
        "method",
        "ratio",
        "geomean",
        "median",
        "comp 1t",
        format!("comp {nt}t"),
        "decomp 1t",
        format!("decomp {nt}t"),
        json["reps"]
    );
    let rows = json["methods"].as_array().into_iter().flatten().chain(json["bounds"].as_array().into_iter().flatten());
    for m in rows {
        println!(
            "{:<32} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>10}",
            m["name"].as_str().unwrap_or(""),
            f4(&m["ratio"]),
            f4(&m["geomean_ratio"]),
            f4(&m["median_ratio"]),
            f1(&m["compress_mbps_1t"]),
            f1(&m["compress_mbps_nt"]),
            f1(&m["decompress_mbps_1t"]),
            f1(&m["decompress_mbps_nt"]),
        );
    }
    println!();
}
