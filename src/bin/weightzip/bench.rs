//! `weightzip bench`: weightzip and its baselines on the same tensors, in the same run.
//!
//! Every method codes each tensor as its own frame (as an archive does), and is timed over all
//! tensors together; times are medians over repetitions, because the machine is shared and noisy.

use std::time::Instant;

use serde_json::json;
use weightzip::baseline::{paper, zstd};
use weightzip::{frame, stats, Kind, Options};

pub struct Tensor<'a> {
    pub name: String,
    pub data: &'a [u8],
}

pub struct MethodResult {
    pub name: String,
    pub compressed: u64,
    /// MB/s at 1 thread and at `threads` threads (None where the method has no such mode).
    pub comp_1t: f64,
    pub comp_nt: Option<f64>,
    pub decomp_1t: f64,
    pub decomp_nt: Option<f64>,
}

impl MethodResult {
    pub fn to_json(&self, total: u64) -> serde_json::Value {
        json!({
            "name": self.name,
            "compressed_bytes": self.compressed,
            "ratio": total as f64 / self.compressed as f64,
            "compress_mbps_1t": self.comp_1t,
            "compress_mbps_nt": self.comp_nt,
            "decompress_mbps_1t": self.decomp_1t,
            "decompress_mbps_nt": self.decomp_nt,
        })
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
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

pub fn run(
    kind: Kind,
    tensors: &[Tensor],
    threads: u32,
    reps: usize,
) -> Result<(Vec<MethodResult>, serde_json::Value), String> {
    let total: u64 = tensors.iter().map(|t| t.data.len() as u64).sum();
    let nt = weightzip_threads(threads);
    let mut results = Vec::new();

    // weightzip
    let o1 = Options::with_threads(1);
    let on = Options::with_threads(nt);
    let frames: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| frame::compress(kind, t.data, &on))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("compress: {e}"))?;
    for (t, f) in tensors.iter().zip(&frames) {
        let back = frame::decompress(f, &on).map_err(|e| format!("decompress {}: {e}", t.name))?;
        if back != t.data {
            return Err(format!("roundtrip mismatch on {}", t.name));
        }
        // Thread count must not change the bytes.
        if frame::compress(kind, t.data, &o1).map_err(|e| e.to_string())? != *f {
            return Err(format!("output depends on thread count on {}", t.name));
        }
    }
    let mut bufs: Vec<Vec<u8>> = tensors.iter().map(|t| vec![0u8; t.data.len()]).collect();
    let ctime = |o: &Options| {
        time(reps, || {
            for t in tensors {
                std::hint::black_box(frame::compress(kind, t.data, o).unwrap());
            }
        })
    };
    let (c1, cn) = (ctime(&o1), ctime(&on));
    let mut dtime = |o: &Options| {
        time(reps, || {
            for (f, b) in frames.iter().zip(bufs.iter_mut()) {
                frame::decompress_into(f, b, o).unwrap();
            }
        })
    };
    let (d1, dn) = (dtime(&o1), dtime(&on));
    results.push(MethodResult {
        name: "weightzip".into(),
        compressed: frames.iter().map(|f| f.len() as u64).sum(),
        comp_1t: mbps(total, c1),
        comp_nt: Some(mbps(total, cn)),
        decomp_1t: mbps(total, d1),
        decomp_nt: Some(mbps(total, dn)),
    });

    // zstd at -3 and -19 on the raw bytes. zstd has a multi-threaded compressor but no
    // multi-threaded decoder, so its decode speed is reported at one thread only.
    for level in [3, 19] {
        let creps = if level >= 19 { 1 } else { reps };
        let zf: Vec<Vec<u8>> = tensors
            .iter()
            .map(|t| zstd::compress(t.data, level, 1))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let c1 = time(creps, || {
            for t in tensors {
                std::hint::black_box(zstd::compress(t.data, level, 1).unwrap());
            }
        });
        let cn = time(creps, || {
            for t in tensors {
                std::hint::black_box(zstd::compress(t.data, level, nt).unwrap());
            }
        });
        let d1 = time(reps, || {
            for (f, b) in zf.iter().zip(bufs.iter_mut()) {
                zstd::decompress_into(f, b).unwrap();
            }
        });
        for (t, b) in tensors.iter().zip(&bufs) {
            if b.as_slice() != t.data {
                return Err(format!("zstd roundtrip mismatch on {}", t.name));
            }
        }
        results.push(MethodResult {
            name: format!("zstd -{level}"),
            compressed: zf.iter().map(|f| f.len() as u64).sum(),
            comp_1t: mbps(total, c1),
            comp_nt: Some(mbps(total, cn)),
            decomp_1t: mbps(total, d1),
            decomp_nt: None,
        });
    }

    // Q4_K: the paper's method (byte-grouped headers and quants, each zstd -19) on the same
    // tensors, and its order-0 bound. zstd -19 compresses at a few MB/s, so once.
    let mut q4k_bound = None;
    if kind == Kind::Q4K {
        let frames: Vec<_> = tensors
            .iter()
            .map(|t| paper::q4k_compress(t.data, 19))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let c1 = time(1, || {
            for t in tensors {
                std::hint::black_box(paper::q4k_compress(t.data, 19).unwrap());
            }
        });
        let d1 = time(reps, || {
            for (f, b) in frames.iter().zip(bufs.iter_mut()) {
                paper::q4k_decompress(f, b).unwrap();
            }
        });
        for (t, b) in tensors.iter().zip(&bufs) {
            if b.as_slice() != t.data {
                return Err(format!("paper baseline roundtrip mismatch on {}", t.name));
            }
        }
        results.push(MethodResult {
            name: "paper: grouped+zstd-19".into(),
            compressed: frames.iter().map(|(a, b)| (a.len() + b.len()) as u64).sum(),
            comp_1t: mbps(total, c1),
            comp_nt: None,
            decomp_1t: mbps(total, d1),
            decomp_nt: None,
        });
        let bits: f64 = tensors.iter().map(|t| paper::q4k_order0_bound_bits(t.data)).sum();
        q4k_bound = Some(total as f64 * 8.0 / bits);
    }

    // Entropy bounds, byte-weighted over tensors: a tensor of n bytes "costs" n / R bytes.
    let mut marg_bytes = 0.0;
    let mut model_bytes = 0.0;
    let mut joint_bytes = 0.0;
    for t in tensors.iter().filter(|_| kind == Kind::Bf16) {
        let s = stats::bf16_stats(t.data);
        marg_bytes += s.values as f64 * (s.h_high + s.h_low) / 8.0;
        model_bytes += s.values as f64 * s.h_model / 8.0;
        joint_bytes += s.values as f64 * s.h_joint_exp_mant / 8.0;
    }
    // The bounds are defined for bf16 only; other kinds report null.
    let r = |b: f64| if b > 0.0 { Some(total as f64 / b) } else { None };
    let json = json!({
        "kind": kind.name(),
        "tensors": tensors.len(),
        "bytes": total,
        "threads": nt,
        "reps": reps,
        "r_marginal": r(marg_bytes),
        "q4k_order0_bound": q4k_bound,
        "r_model_entropy": r(model_bytes),
        "r_joint_exp_mantissa_entropy": r(joint_bytes),
        "methods": results.iter().map(|m| m.to_json(total)).collect::<Vec<_>>(),
    });
    Ok((results, json))
}

pub fn weightzip_threads(threads: u32) -> u32 {
    if threads == 0 {
        std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1)
    } else {
        threads
    }
}

pub fn print_table(json: &serde_json::Value) {
    let f = |v: &serde_json::Value| v.as_f64().map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into());
    if let Some(file) = json["file"].as_str() {
        print!("{file}: {} bytes, {} tensors, whole file", json["bytes"], json["tensors"]);
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
    } else if json["r_marginal"].is_null() {
        print!("{} tensors, {} bytes of {}", json["tensors"], json["bytes"], json["kind"].as_str().unwrap_or(""));
        match json["q4k_order0_bound"].as_f64() {
            Some(b) => println!("; order-0 bound of nibbles + header bytes (the paper's ceiling) = {b:.4}"),
            None => println!(),
        }
    } else {
        println!(
        "{} tensors, {} bytes of {}; R_marginal = {:.4}; entropy of weightzip's model = {:.4}; H(exp)+H(sign,mant|exp) = {:.4}",
        json["tensors"], json["bytes"], json["kind"].as_str().unwrap_or(""),
        json["r_marginal"].as_f64().unwrap_or(f64::NAN),
        json["r_model_entropy"].as_f64().unwrap_or(f64::NAN),
        json["r_joint_exp_mantissa_entropy"].as_f64().unwrap_or(f64::NAN)
    );
    }
    let nt = &json["threads"];
    println!(
        "{:<24} {:>8} {:>12} {:>10} {:>12} {:>10}   (MB/s of original bytes, median of {} runs)",
        "method",
        "ratio",
        "comp 1t",
        format!("comp {nt}t"),
        "decomp 1t",
        format!("decomp {nt}t"),
        json["reps"]
    );
    for m in json["methods"].as_array().into_iter().flatten() {
        println!(
            "{:<24} {:>8.4} {:>12} {:>10} {:>12} {:>10}",
            m["name"].as_str().unwrap_or(""),
            m["ratio"].as_f64().unwrap_or(0.0),
            f(&m["compress_mbps_1t"]),
            f(&m["compress_mbps_nt"]),
            f(&m["decompress_mbps_1t"]),
            f(&m["decompress_mbps_nt"]),
        );
    }
}
