use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let ts = weightzip::safetensors::read_tensors(&bytes).unwrap();
    let t = ts.iter().find(|t| t.name.contains("layer.0.attention.output.LayerNorm.weight")).unwrap();
    let d = &bytes[t.offset as usize..(t.offset + t.len) as usize];
    let o = weightzip::Options::with_threads(1);
    let f = weightzip::compress(weightzip::Kind::Bf16, d, &o).unwrap();
    let mut out = vec![0u8; d.len()];
    let s = Instant::now();
    for _ in 0..100000 { weightzip::decompress_into(&f, &mut out, &o).unwrap(); }
    println!("{:.2} us per decode", s.elapsed().as_secs_f64() / 100000.0 * 1e6);
}
