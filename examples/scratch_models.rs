fn main() {
    let path = std::env::args().nth(1).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let ts = weightzip::safetensors::read_tensors(&bytes).unwrap();
    let (mut models, mut chunks, mut frames) = (0, 0, 0);
    for t in ts.iter().filter(|t| t.dtype == "BF16") {
        let d = &bytes[t.offset as usize..(t.offset + t.len) as usize];
        let f = weightzip::compress(weightzip::Kind::Bf16, d, &Default::default()).unwrap();
        let info = weightzip::read_info(&f).unwrap();
        if info.model_size > 0 {
            let m = weightzip::codec::bf16::read_models(&f[48..48 + info.model_size as usize]).unwrap();
            models += m.len();
            chunks += info.chunk_count;
            frames += 1;
        }
    }
    println!("coded frames {frames} chunks {chunks} models {models}");
}
