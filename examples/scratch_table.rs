use std::time::Instant;
use weightzip::codec::bf16;
fn main() {
    let d = std::fs::read("tests/data/minilm-l6-ffn01.bf16").unwrap();
    let mut c = vec![0u64; bf16::SYMBOLS];
    bf16::histogram(&d, &mut c);
    let m = bf16::Model::from_counts(&c).unwrap();
    let s = Instant::now();
    for _ in 0..2000 {
        std::hint::black_box(m.decoder());
    }
    println!("decoder build {:.1} us", s.elapsed().as_secs_f64() / 2000.0 * 1e6);
    let bytes = bf16::write_models(&[m]);
    let s = Instant::now();
    for _ in 0..2000 {
        std::hint::black_box(bf16::read_models(&bytes).unwrap());
    }
    println!("model parse {:.1} us", s.elapsed().as_secs_f64() / 2000.0 * 1e6);
}
