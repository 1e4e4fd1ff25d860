//! `weightzip bench --whole` (and the last table of a plain `weightzip bench`): whole model files
//! through an archive, next to whole-file zstd -3 and -19 (and, for GGUF, the paper's
//! five-stream method), all on the same file in the same run; for safetensors also the
//! byte-marginal bound of each float dtype.

use std::io::Cursor;

use serde_json::json;
use weightzip::archive::{self, Archive};
use weightzip::{zstd, Options};

use crate::baseline::paper;
use crate::bench::{mbps, time, MethodResult, Settings};

/// With `--quick`, whole-file zstd -19 is left out for files larger than this.
pub const QUICK_LIMIT: u64 = 256 << 20;

/// Measures one model file (GGUF or safetensors). Times are medians of `s.reps` runs (zstd -19
/// compression: one run).
pub fn run(name: &str, file: &[u8], s: &Settings) -> Result<serde_json::Value, String> {
    let total = file.len() as u64;
    let nt = s.threads;
    let (o1, on) = (Options::with_threads(1), Options::with_threads(nt));
    let mut results = Vec::new();

    let compress = |o: &Options| {
        let mut c = Cursor::new(Vec::new());
        archive::compress_any(file, &mut c, o).map(|_| c.into_inner()).map_err(|e| format!("{name}: {e}"))
    };
    let (mut arc, mut arc_n) = (Ok(Vec::new()), Ok(Vec::new()));
    let c1 = time(1, || arc = compress(&o1));
    let cn = time(s.reps.min(3), || arc_n = compress(&on));
    let arc = arc?;
    if arc_n? != arc {
        return Err(format!("{name}: archive depends on the thread count"));
    }
    let a = Archive::from_bytes(&arc).map_err(|e| e.to_string())?;
    let mut back = Vec::with_capacity(file.len());
    a.restore_to(&mut back, &on).map_err(|e| e.to_string())?;
    if back != file {
        return Err(format!("{name}: archive does not restore the file"));
    }
    drop(back);
    // Random access: opening reads only the header and index; reading one tensor costs in
    // proportion to that tensor. Timed for the smallest and the largest tensor.
    let open_s = time(s.reps, || {
        std::hint::black_box(Archive::from_bytes(&arc).unwrap());
    });
    let by_size = |big: bool| {
        let it = a.tensors().iter().enumerate().filter(|(_, t)| t.orig_size > 0);
        if big {
            it.max_by_key(|(_, t)| t.orig_size)
        } else {
            it.min_by_key(|(_, t)| t.orig_size)
        }
    };
    let mut access = Vec::new();
    for big in [false, true] {
        if let Some((i, t)) = by_size(big) {
            let mut buf = vec![0u8; t.orig_size as usize];
            let secs = time(s.reps, || a.read_tensor(i, &mut buf, &on).unwrap());
            access.push(json!({"tensor": String::from_utf8_lossy(&t.name), "bytes": t.orig_size, "seconds": secs}));
        }
    }
    // Decoding into a sink: the restore pipeline without the file system, whose write speed is
    // the machine's, not the codec's.
    let dtime = |o: &Options| time(s.reps, || a.restore_to(&mut std::io::sink(), o).unwrap());
    let (d1, dn) = (dtime(&o1), dtime(&on));
    results.push(MethodResult {
        name: "weightzip archive".into(),
        compressed: arc.len() as u64,
        per_tensor: Vec::new(),
        comp_1t: mbps(total, c1),
        comp_nt: Some(mbps(total, cn)),
        decomp_1t: mbps(total, d1),
        decomp_nt: Some(mbps(total, dn)),
    });

    let mut stream_sizes: Vec<(usize, usize)> = Vec::new();
    if a.container() == archive::Container::Gguf {
        // The paper's five streams, each zstd -19 (one after another; the all-threads column
        // gives each stream zstd's multi-threaded compressor). Decoding is the five zstd frames
        // one after another, then the join that puts the file back together.
        let streams = paper::gguf_split(file).map_err(|e| format!("{name}: {e}"))?;
        let mut zs: Vec<Vec<u8>> = Vec::new();
        let c1 = time(1, || zs = streams.iter().map(|x| zstd::compress(x, 19, 1).unwrap()).collect());
        let cn = (!s.quick).then(|| {
            time(1, || {
                for x in &streams {
                    std::hint::black_box(zstd::compress(x, 19, nt).unwrap());
                }
            })
        });
        stream_sizes = streams.iter().zip(&zs).map(|(x, z)| (x.len(), z.len())).collect();
        let mut dec: [Vec<u8>; 5] = streams.clone();
        drop(streams);
        let mut joined = Vec::new();
        let mut ctx = zstd::DCtx::new().map_err(|e| e.to_string())?;
        let d1 = time(s.reps, || {
            for (d, z) in dec.iter_mut().zip(&zs) {
                ctx.decompress_into(z, d).unwrap();
            }
            paper::gguf_join_into(&dec, total, &mut joined).unwrap();
        });
        if joined != file {
            return Err(format!("{name}: five-stream roundtrip mismatch"));
        }
        results.push(MethodResult {
            name: "paper: 5 streams zstd-19".into(),
            compressed: zs.iter().map(|z| z.len() as u64).sum(),
            per_tensor: Vec::new(),
            comp_1t: mbps(total, c1),
            comp_nt: cn.map(|t| mbps(total, t)),
            decomp_1t: mbps(total, d1),
            decomp_nt: None,
        });
    }
    // Whole-file zstd at -3 and -19 (the ratio is the single-threaded output's; its
    // multi-threaded compressor, timed for the all-threads column, cuts the input into jobs).
    // With --quick, zstd -19 of a file over QUICK_LIMIT bytes is left out: the per-domain tables
    // already give zstd -19 on the same tensors.
    let mut buf = vec![0u8; file.len()];
    for level in [3, 19] {
        let slow = level >= 19;
        if slow && s.quick && total > QUICK_LIMIT {
            continue;
        }
        let creps = if slow { 1 } else { s.reps };
        let mut z = Vec::new();
        let c1 = time(creps, || z = zstd::compress(file, level, 1).unwrap());
        let cn = (!(slow && s.quick)).then(|| {
            time(creps, || {
                std::hint::black_box(zstd::compress(file, level, nt).unwrap());
            })
        });
        buf.fill(0xA5);
        let d1 = time(s.reps, || zstd::decompress_into(&z, &mut buf).unwrap());
        if buf != file {
            return Err(format!("{name}: zstd roundtrip mismatch"));
        }
        results.push(MethodResult {
            name: format!("zstd -{level} (whole file)"),
            compressed: z.len() as u64,
            per_tensor: Vec::new(),
            comp_1t: mbps(total, c1),
            comp_nt: cn.map(|t| mbps(total, t)),
            decomp_1t: mbps(total, d1),
            decomp_nt: None,
        });
    }
    drop(buf);

    // Byte-marginal bounds per float dtype, byte-weighted over tensors (each tensor's own
    // entropies, as the paper computes them).
    let mut bounds = serde_json::Map::new();
    for (dtype, width) in [("BF16", 2), ("F16", 2), ("F32", 4)] {
        let (mut bytes, mut cost) = (0u64, 0.0);
        for t in a.tensors().iter().filter(|t| a.container().type_name(t.container_type) == dtype) {
            let data = &file[t.orig_offset as usize..(t.orig_offset + t.orig_size) as usize];
            if let Some(r) = crate::stats::r_marginal(data, width) {
                bytes += data.len() as u64;
                cost += data.len() as f64 / r;
            }
        }
        if bytes > 0 {
            bounds.insert(dtype.into(), json!({"bytes": bytes, "r_marginal": bytes as f64 / cost}));
        }
    }

    Ok(json!({
        "file": name,
        "domain": "whole file",
        "bytes": total,
        "tensors": a.tensors().len(),
        "threads": nt,
        "reps": s.reps,
        "quick": s.quick,
        "container": a.container().name(),
        "open_seconds": open_s,
        "read_one_tensor": access,
        "r_marginal_by_dtype": bounds,
        "paper_streams": stream_sizes.iter().map(|(r, c)| json!({"raw": r, "zstd19": c})).collect::<Vec<_>>(),
        "methods": results.iter().map(|m| m.to_json(&[total])).collect::<Vec<_>>(),
    }))
}
