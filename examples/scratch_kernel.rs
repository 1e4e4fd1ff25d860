// times decompress_into ignoring errors (for kernel experiments that produce wrong output)
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let ts = weightzip::safetensors::read_tensors(&bytes).unwrap();
    let t = ts.iter().find(|t| t.name.contains("word_emb")).unwrap();
    let d = &bytes[t.offset as usize..(t.offset + t.len) as usize];
    let o = weightzip::Options { threads: 1, chunk_size: 32 << 20, progress: None };
    let f = weightzip::compress(weightzip::Kind::Bf16, d, &o).unwrap();
    let mut out = vec![0u8; d.len()];
    let mut best = f64::MAX;
    for _ in 0..20 {
        let s = Instant::now();
        let _ = weightzip::decompress_into(&f, &mut out, &o);
        best = best.min(s.elapsed().as_secs_f64());
    }
    println!("decode best {:.0} MB/s", d.len() as f64 / 1e6 / best);
}
