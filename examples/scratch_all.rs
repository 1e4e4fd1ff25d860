use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let ts = weightzip::safetensors::read_tensors(&bytes).unwrap();
    let o = weightzip::Options::with_threads(1);
    let mut frames = vec![]; let mut outs = vec![]; let mut total = 0;
    for t in ts.iter().filter(|t| t.dtype == "BF16") {
        let d = &bytes[t.offset as usize..(t.offset + t.len) as usize];
        frames.push(weightzip::compress(weightzip::Kind::Bf16, d, &o).unwrap());
        outs.push(vec![0u8; d.len()]); total += d.len();
    }
    let mut best = f64::MAX;
    for _ in 0..30 {
        let s = Instant::now();
        for (f, out) in frames.iter().zip(outs.iter_mut()) { weightzip::decompress_into(f, out, &o).unwrap(); }
        best = best.min(s.elapsed().as_secs_f64());
    }
    println!("all tensors decode best {:.0} MB/s", total as f64 / 1e6 / best);
}
