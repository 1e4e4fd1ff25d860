use weightzip::codec::bf16;
use weightzip::entropy::table::entropy_bits;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let ts = weightzip::safetensors::read_tensors(&bytes).unwrap();
    let (mut small_in, mut small_out, mut big_in, mut big_out, mut ideal, mut model, mut chunks, mut est) =
        (0, 0, 0, 0, 0f64, 0, 0, 0f64);
    for t in ts.iter().filter(|t| t.dtype == "BF16") {
        let d = &bytes[t.offset as usize..(t.offset + t.len) as usize];
        let f = weightzip::compress(weightzip::Kind::Bf16, d, &Default::default()).unwrap();
        let info = weightzip::read_info(&f).unwrap();
        let mut c = vec![0u64; bf16::SYMBOLS];
        bf16::histogram(d, &mut c);
        let n: u64 = c.iter().sum();
        if d.len() < 65536 {
            small_in += d.len();
            small_out += f.len();
            continue;
        }
        big_in += d.len();
        big_out += f.len();
        ideal += n as f64 * (entropy_bits(&c) + 4.0) / 8.0;
        let m = bf16::Model::from_counts(&c).unwrap();
        est += m.cost_bits(&c) / 8.0;
        model += info.model_size;
        chunks += info.chunk_count;
    }
    println!("small: {small_in} -> {small_out} ; big: {big_in} -> {big_out} ideal {ideal:.0} est-payload {est:.0} (loss {:.5} bits/value) over {:.0} model {model} chunks {chunks}", (est - ideal) * 8.0 / (big_in as f64 / 2.0), big_out as f64 - ideal);
    println!("total ratio {:.5}", (small_in + big_in) as f64 / (small_out + big_out) as f64);
}
