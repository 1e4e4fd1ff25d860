use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let name = std::env::args().nth(2).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let ts = weightzip::safetensors::read_tensors(&bytes).unwrap();
    let t = ts.iter().find(|t| t.name.contains(&name)).unwrap();
    let d = &bytes[t.offset as usize..(t.offset + t.len) as usize];
    let o = weightzip::Options::with_threads(1);
    let f = weightzip::compress(weightzip::Kind::Bf16, d, &o).unwrap();
    let mut out = vec![0u8; d.len()];
    let mut best = f64::MAX;
    for _ in 0..20 {
        let s = Instant::now();
        weightzip::decompress_into(&f, &mut out, &o).unwrap();
        best = best.min(s.elapsed().as_secs_f64());
    }
    assert_eq!(out, d);
    let mut z = f64::MAX;
    let zf = weightzip::baseline::zstd::compress(d, 3, 1).unwrap();
    for _ in 0..20 {
        let s = Instant::now();
        weightzip::baseline::zstd::decompress_into(&zf, &mut out).unwrap();
        z = z.min(s.elapsed().as_secs_f64());
    }
    println!(
        "{} {} bytes ratio {:.4}: decode best {:.0} MB/s; zstd-3 {:.0} MB/s",
        t.name,
        d.len(),
        d.len() as f64 / f.len() as f64,
        d.len() as f64 / 1e6 / best,
        d.len() as f64 / 1e6 / z
    );
}
