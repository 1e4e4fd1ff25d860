//! `weightzip bench --whole`: whole model files through an archive, next to whole-file zstd -19
//! (and, for GGUF, the paper's five-stream method), all on the same file in the same run; for
//! safetensors also the byte-marginal bound of each float dtype.

use std::io::Cursor;

use serde_json::json;
use weightzip::archive::{self, Archive};
use weightzip::baseline::{paper, zstd};
use weightzip::Options;

use crate::bench::{mbps, time, weightzip_threads, MethodResult};

/// Measures one GGUF file. Times are medians of `reps` runs (compression at -19: one run).
pub fn run(name: &str, file: &[u8], threads: u32, reps: usize) -> Result<serde_json::Value, String> {
    let total = file.len() as u64;
    let nt = weightzip_threads(threads);
    let (o1, on) = (Options::with_threads(1), Options::with_threads(nt));
    let mut results = Vec::new();

    let compress = |o: &Options| {
        let mut c = Cursor::new(Vec::new());
        archive::compress_any(file, &mut c, o).map(|_| c.into_inner()).map_err(|e| format!("{name}: {e}"))
    };
    let arc = compress(&on)?;
    if compress(&o1)? != arc {
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
    let open_s = time(reps, || {
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
            let s = time(reps, || a.read_tensor(i, &mut buf, &on).unwrap());
            access.push(json!({"tensor": String::from_utf8_lossy(&t.name), "bytes": t.orig_size, "seconds": s}));
        }
    }
    let c1 = time(1, || {
        std::hint::black_box(compress(&o1).unwrap());
    });
    let cn = time(reps.min(3), || {
        std::hint::black_box(compress(&on).unwrap());
    });
    // Decoding into a sink: the restore pipeline without the file system, whose write speed is
    // the machine's, not the codec's.
    let dtime = |o: &Options| time(reps, || a.restore_to(&mut std::io::sink(), o).unwrap());
    let (d1, dn) = (dtime(&o1), dtime(&on));
    results.push(MethodResult {
        name: "weightzip archive".into(),
        compressed: arc.len() as u64,
        comp_1t: mbps(total, c1),
        comp_nt: Some(mbps(total, cn)),
        decomp_1t: mbps(total, d1),
        decomp_nt: Some(mbps(total, dn)),
    });

    // Whole-file zstd -19 (one thread: the ratio is zstd's own, not that of split jobs).
    let mut z = Vec::new();
    let c1 = time(1, || z = zstd::compress(file, 19, 1).unwrap());
    let mut buf = vec![0u8; file.len()];
    let d1 = time(reps, || zstd::decompress_into(&z, &mut buf).unwrap());
    if buf != file {
        return Err(format!("{name}: zstd roundtrip mismatch"));
    }
    results.push(MethodResult {
        name: "zstd -19 (whole file)".into(),
        compressed: z.len() as u64,
        comp_1t: mbps(total, c1),
        comp_nt: None,
        decomp_1t: mbps(total, d1),
        decomp_nt: None,
    });
    drop(buf);

    let mut stream_sizes: Vec<(usize, usize)> = Vec::new();
    if a.container() == archive::Container::Gguf {
        // The paper's five streams, each zstd -19.
        let streams = paper::gguf_split(file).map_err(|e| format!("{name}: {e}"))?;
        let mut zs: Vec<Vec<u8>> = Vec::new();
        let c1 = time(1, || zs = streams.iter().map(|s| zstd::compress(s, 19, 1).unwrap()).collect());
        stream_sizes = streams.iter().zip(&zs).map(|(s, z)| (s.len(), z.len())).collect();
        let mut dec: [Vec<u8>; 5] = streams.clone();
        let mut joined = Vec::new();
        let d1 = time(reps, || {
            for (d, z) in dec.iter_mut().zip(&zs) {
                zstd::decompress_into(z, d).unwrap();
            }
            joined = paper::gguf_join(&dec, total).unwrap();
        });
        if joined != file {
            return Err(format!("{name}: five-stream roundtrip mismatch"));
        }
        results.push(MethodResult {
            name: "paper: 5 streams zstd-19".into(),
            compressed: zs.iter().map(|z| z.len() as u64).sum(),
            comp_1t: mbps(total, c1),
            comp_nt: None,
            decomp_1t: mbps(total, d1),
            decomp_nt: None,
        });
    }
    // Byte-marginal bounds per float dtype, byte-weighted over tensors (each tensor's own
    // entropies, as the paper computes them).
    let mut bounds = serde_json::Map::new();
    for (dtype, width) in [("BF16", 2), ("F16", 2), ("F32", 4)] {
        let (mut bytes, mut cost) = (0u64, 0.0);
        for t in a.tensors().iter().filter(|t| a.container().type_name(t.container_type) == dtype) {
            let data = &file[t.orig_offset as usize..(t.orig_offset + t.orig_size) as usize];
            if let Some(r) = weightzip::stats::r_marginal(data, width) {
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
        "bytes": total,
        "tensors": a.tensors().len(),
        "threads": nt,
        "reps": reps,
        "container": a.container().name(),
        "open_seconds": open_s,
        "read_one_tensor": access,
        "r_marginal_by_dtype": bounds,
        "paper_streams": stream_sizes.iter().map(|(r, c)| json!({"raw": r, "zstd19": c})).collect::<Vec<_>>(),
        "methods": results.iter().map(|m| m.to_json(total)).collect::<Vec<_>>(),
    }))
}
