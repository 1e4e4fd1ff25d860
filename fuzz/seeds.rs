//! Seed inputs for the fuzz targets, made from the real fixtures in `tests/data`, and the
//! deterministic mutator `tests/fuzz_smoke.rs` uses to run the targets on stable Rust.
//!
//! `fuzz/make_seeds.sh` writes these seeds to `fuzz/seeds/<target>/` for libFuzzer (the files are
//! generated, not committed). Included with `#[path]` by `tests/fuzz_smoke.rs` and
//! `tests/allocation_limits.rs`.
#![allow(dead_code)]

use std::io::Cursor;
use std::path::Path;

pub use weightzip::test_rng::Lcg;
use weightzip::{archive, frame, gguf, safetensors, Kind, Options};

/// Named seeds for one target.
pub type Seeds = Vec<(String, Vec<u8>)>;

/// The fixtures the seeds are cut from, read once per call of `Fixtures::load`.
pub struct Fixtures {
    /// Raw bf16 values (all-MiniLM-L6-v2 FFN weights).
    pub bf16: Vec<u8>,
    /// A bf16 safetensors file.
    pub st: Vec<u8>,
    /// A Q4_K_M GGUF (F32, Q5_0, Q4_K, Q8_0, Q6_K tensors; 6,304 bytes of metadata).
    pub minilm: Vec<u8>,
    /// A cut-down Qwen2.5-Coder GGUF (Q4_K, Q6_K, F32 tensors; 1,632 bytes of metadata).
    pub qwen: Vec<u8>,
}

impl Fixtures {
    pub fn load(data_dir: &Path) -> Fixtures {
        let read = |n: &str| std::fs::read(data_dir.join(n)).unwrap_or_else(|e| panic!("read fixture {n}: {e}"));
        Fixtures {
            bf16: read("minilm-l6-ffn01.bf16"),
            st: read("minilm-l6-layer0-bf16.safetensors"),
            minilm: read("minilm-l6-q4_k_m.gguf"),
            qwen: read("qwen25coder15b-q4km-mini.gguf"),
        }
    }

    /// The first `n` bytes of the first tensor of ggml type `ggml_type` in `file`.
    fn gguf_tensor(file: &[u8], ggml_type: u32, n: usize) -> &[u8] {
        let g = gguf::read(file).expect("fixture GGUF parses");
        let t = g.tensors.iter().find(|t| t.ggml_type == ggml_type).expect("fixture has the type");
        let len = (t.len.unwrap() as usize).min(n);
        &file[t.offset as usize..t.offset as usize + len]
    }

    /// Real-looking data of every kind, `blocks_or_values` elements long (whole elements).
    pub fn data_of(&self, kind: Kind, bytes: usize) -> Vec<u8> {
        let es = kind.element_size();
        let bytes = bytes / es * es;
        let tile = |src: &[u8]| -> Vec<u8> { src.iter().copied().cycle().take(bytes).collect() };
        match kind {
            Kind::Bf16 => tile(&self.bf16[..bytes.min(self.bf16.len())]),
            Kind::F16 => {
                let vals = &self.bf16[..(bytes).min(self.bf16.len())];
                vals.chunks_exact(2)
                    .flat_map(|b| {
                        let f = half::bf16::from_le_bytes([b[0], b[1]]).to_f32();
                        half::f16::from_f32(f).to_le_bytes()
                    })
                    .collect()
            }
            Kind::F32 => tile(Self::gguf_tensor(&self.minilm, 0, bytes)),
            Kind::Q4K => tile(Self::gguf_tensor(&self.qwen, 12, bytes)),
            Kind::Q6K => tile(Self::gguf_tensor(&self.qwen, 14, bytes)),
            Kind::Q8_0 => tile(Self::gguf_tensor(&self.minilm, 8, bytes)),
            Kind::Q5_0 => tile(Self::gguf_tensor(&self.minilm, 6, bytes)),
            // Types the fixtures do not hold: blocks rebuilt from real Q5_0 blocks (22 bytes:
            // f16 scale, 4 bytes of high bits, 16 bytes of nibbles), taking the next block's
            // scale as the minimum where the layout has one.
            Kind::Q4_0 | Kind::Q4_1 | Kind::Q5_1 | Kind::IQ4NL => {
                let q5 = Self::gguf_tensor(&self.minilm, 6, 22 * (bytes / es + 1));
                let blocks: Vec<&[u8]> = q5.chunks_exact(22).collect();
                let mut out = Vec::with_capacity(bytes);
                for w in blocks.windows(2) {
                    let (b, next) = (w[0], w[1]);
                    out.extend_from_slice(&b[..2]);
                    if !matches!(kind, Kind::Q4_0 | Kind::IQ4NL) {
                        out.extend_from_slice(&next[..2]);
                    }
                    if kind == Kind::Q5_1 {
                        out.extend_from_slice(&b[2..6]);
                    }
                    out.extend_from_slice(&b[6..22]);
                }
                tile(&out)
            }
            // Q5_K, which the fixtures do not hold: real Q4_K blocks (d, dmin, scales, 128 bytes
            // of nibbles) with the next block's first 32 nibble bytes as the fifth bits.
            Kind::Q5K => {
                let q4 = Self::gguf_tensor(&self.qwen, 12, 144 * (bytes / es + 1));
                let blocks: Vec<&[u8]> = q4.chunks_exact(144).collect();
                let mut out = Vec::with_capacity(bytes);
                for w in blocks.windows(2) {
                    out.extend_from_slice(&w[0][..16]);
                    out.extend_from_slice(&w[1][16..48]);
                    out.extend_from_slice(&w[0][16..144]);
                }
                tile(&out)
            }
            // IQ4_XS: real Q4_K blocks' d, six bytes of their scales as the packed 6-bit scales,
            // and their 128 nibble bytes as the grid indices.
            Kind::IQ4XS => {
                let q4 = Self::gguf_tensor(&self.qwen, 12, 144 * (bytes / es + 1));
                tile(
                    &q4.chunks_exact(144).flat_map(|b| [&b[..2], &b[4..10], &b[16..144]].concat()).collect::<Vec<u8>>(),
                )
            }
            // Q3_K and Q2_K: real Q4_K blocks' bytes where those layouts keep the like: Q3_K
            // hmask and qs (96 bytes of quants), the 12 scale bytes, d; Q2_K 16 bytes of
            // quants as its scales, 64 of quants, d and dmin.
            Kind::Q3K | Kind::Q2K => {
                let q4 = Self::gguf_tensor(&self.qwen, 12, 144 * (bytes / es + 1));
                let cut = |b: &[u8]| -> Vec<u8> {
                    if kind == Kind::Q3K {
                        [&b[16..112], &b[4..16], &b[..2]].concat()
                    } else {
                        [&b[16..32], &b[32..96], &b[..4]].concat()
                    }
                };
                tile(&q4.chunks_exact(144).flat_map(cut).collect::<Vec<u8>>())
            }
            Kind::Bytes => tile(&self.minilm[..6304]),
        }
    }
}

/// A frame of `kind` over `bytes` bytes of fixture data, with chunk size `chunk` (0: default).
pub fn frame_of(fx: &Fixtures, kind: Kind, bytes: usize, chunk: u32) -> Vec<u8> {
    let es = kind.element_size() as u32;
    let chunk_size = if chunk == 0 { 0 } else { chunk.div_ceil(es) * es };
    let data = fx.data_of(kind, bytes);
    frame::compress(kind, &data, &Options { threads: 1, chunk_size, progress: None, fast: false, row_len: 0 })
        .expect("compress seed")
}

/// Frames of every kind and method: two-chunk frames (a full chunk and a short one), one-chunk
/// frames, empty frames, and stored frames of noise.
pub fn frame_seeds(fx: &Fixtures) -> Seeds {
    let mut v = Seeds::new();
    let two = frame::MIN_CHUNK_SIZE as usize + 2048;
    for kind in Kind::ALL {
        v.push((format!("{}-2chunks", kind.name()), frame_of(fx, kind, two, frame::MIN_CHUNK_SIZE)));
        v.push((format!("{}-small", kind.name()), frame_of(fx, kind, 4096, 0)));
        v.push((format!("{}-tiny", kind.name()), frame_of(fx, kind, kind.element_size() * 3, 0)));
    }
    // bf16 with two different distributions: frames with more than one model.
    let mut mixed = fx.bf16[..frame::MIN_CHUNK_SIZE as usize].to_vec();
    let st = safetensors::read(&fx.st).unwrap();
    let emb = st.tensors.iter().max_by_key(|t| t.len).unwrap();
    mixed.extend_from_slice(&fx.st[emb.offset as usize..][..frame::MIN_CHUNK_SIZE as usize]);
    mixed.extend(std::iter::repeat_n(0u8, frame::MIN_CHUNK_SIZE as usize / 2));
    let opts = Options { threads: 1, chunk_size: frame::MIN_CHUNK_SIZE, progress: None, fast: false, row_len: 0 };
    v.push(("bf16-models".into(), frame::compress(Kind::Bf16, &mixed, &opts).unwrap()));
    v.push(("bf16-empty".into(), frame::compress(Kind::Bf16, &[], &opts).unwrap()));
    // A matrix whose values take their row's and column's context (method 6): the fixture's FFN
    // weights as rows of 384.
    let rows = Options { row_len: 384, ..opts.clone() };
    let ctx = frame::compress(Kind::Bf16, &fx.bf16[..3 * frame::MIN_CHUNK_SIZE as usize], &rows).unwrap();
    assert_eq!(frame::read_info(&ctx).unwrap().method, weightzip::codec::Method::Bf16Ctx);
    // Its columns lean to one sign or the other: the signed split with column flips (flags 1
    // and 4).
    assert_eq!(frame::read_info(&ctx).unwrap().flags, 5);
    v.push(("bf16-ctx".into(), ctx));
    // The same weights with three signs in four cleared: frames of the signed split (header
    // flag 1), plain and with contexts.
    let skewed: Vec<u8> = fx.bf16[..3 * frame::MIN_CHUNK_SIZE as usize]
        .chunks_exact(2)
        .enumerate()
        .flat_map(|(i, b)| if i % 4 == 0 { [b[0], b[1]] } else { [b[0], b[1] & 0x7F] })
        .collect();
    for (name, o) in [("bf16-signed", &opts), ("bf16-ctx-signed", &rows)] {
        let f = frame::compress(Kind::Bf16, &skewed, o).unwrap();
        assert_eq!(frame::read_info(&f).unwrap().flags & 1, 1);
        v.push((name.into(), f));
    }
    // Integers that count (position ids): the generic path's differences (header flag 2).
    let ids: Vec<u8> = (0..512u64).flat_map(|i| i.to_le_bytes()).collect();
    let f = frame::compress(Kind::Bytes, &ids, &opts).unwrap();
    assert_eq!(frame::read_info(&f).unwrap().flags, 2);
    v.push(("bytes-delta".into(), f));
    v.push(("q4k-empty".into(), frame::compress(Kind::Q4K, &[], &Options::with_threads(1)).unwrap()));
    let noise = noise(1, 3000);
    v.push(("bytes-stored".into(), frame::compress(Kind::Bytes, &noise, &opts).unwrap()));
    v.push(("bf16-stored".into(), frame::compress(Kind::Bf16, &noise, &opts).unwrap()));
    v
}

/// Deterministic incompressible bytes.
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut r = Lcg::new(seed);
    (0..n).map(|_| r.next_u64() as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// GGUF

/// A GGUF writer for seeds: version, alignment, raw key/value bytes (with their count), tensors
/// (name, dims, ggml type, data), laid out in order with each tensor's data aligned.
pub struct GgufSpec<'a> {
    pub version: u32,
    pub alignment: u64,
    pub n_kv: u64,
    pub kv: Vec<u8>,
    pub tensors: Vec<(&'a str, Vec<u64>, u32, Vec<u8>)>,
}

pub fn put_str(o: &mut Vec<u8>, s: &[u8]) {
    o.extend_from_slice(&(s.len() as u64).to_le_bytes());
    o.extend_from_slice(s);
}

impl GgufSpec<'_> {
    pub fn build(&self) -> Vec<u8> {
        let mut o = b"GGUF".to_vec();
        o.extend_from_slice(&self.version.to_le_bytes());
        o.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        o.extend_from_slice(&self.n_kv.to_le_bytes());
        o.extend_from_slice(&self.kv);
        let a = self.alignment;
        let mut rel = 0u64;
        for (name, dims, ty, data) in &self.tensors {
            put_str(&mut o, name.as_bytes());
            o.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                o.extend_from_slice(&d.to_le_bytes());
            }
            o.extend_from_slice(&ty.to_le_bytes());
            o.extend_from_slice(&rel.to_le_bytes());
            rel = (rel + data.len() as u64).div_ceil(a) * a;
        }
        o.resize((o.len() as u64).div_ceil(a) as usize * a as usize, 0);
        for (_, _, _, data) in &self.tensors {
            o.extend_from_slice(data);
            o.resize((o.len() as u64).div_ceil(a) as usize * a as usize, 0);
        }
        o
    }
}

/// The key/value section of a GGUF file (bytes and count), found by walking it.
pub fn gguf_kv(file: &[u8]) -> (u64, Vec<u8>) {
    let n_kv = u64::from_le_bytes(file[16..24].try_into().unwrap());
    let mut at = 24usize;
    let u32_at = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().unwrap()) as usize;
    fn skip(at: &mut usize, t: u32, u32_at: &dyn Fn(usize) -> u32, u64_at: &dyn Fn(usize) -> usize) {
        match t {
            0 | 1 | 7 => *at += 1,
            2 | 3 => *at += 2,
            4..=6 => *at += 4,
            10..=12 => *at += 8,
            8 => *at += 8 + u64_at(*at),
            9 => {
                let et = u32_at(*at);
                let n = u64_at(*at + 4);
                *at += 12;
                for _ in 0..n {
                    skip(at, et, u32_at, u64_at);
                }
            }
            _ => panic!("fixture has an unknown GGUF value type {t}"),
        }
    }
    for _ in 0..n_kv {
        at += 8 + u64_at(at);
        let t = u32_at(at);
        at += 4;
        skip(&mut at, t, &u32_at, &u64_at);
    }
    (n_kv, file[24..at].to_vec())
}

/// Key/values of every GGUF value type, including an alignment key.
pub fn synthetic_kv(alignment: u32) -> (u64, Vec<u8>) {
    let mut o = Vec::new();
    let mut n = 0;
    let mut kv = |key: &str, t: u32, val: &[u8]| {
        put_str(&mut o, key.as_bytes());
        o.extend_from_slice(&t.to_le_bytes());
        o.extend_from_slice(val);
        n += 1;
    };
    let mut s = Vec::new();
    put_str(&mut s, b"llama");
    kv("general.architecture", 8, &s);
    kv("general.alignment", 4, &alignment.to_le_bytes());
    kv("u8", 0, &[7]);
    kv("i16", 3, &(-3i16).to_le_bytes());
    kv("f32", 6, &1.5f32.to_le_bytes());
    kv("bool", 7, &[1]);
    kv("u64", 10, &u64::MAX.to_le_bytes());
    kv("f64", 12, &2.5f64.to_le_bytes());
    let mut arr = 8u32.to_le_bytes().to_vec();
    arr.extend_from_slice(&3u64.to_le_bytes());
    for t in [&b"<s>"[..], b"</s>", b"\xe2\x96\x81hello"] {
        put_str(&mut arr, t);
    }
    kv("tokenizer.ggml.tokens", 9, &arr);
    let mut arr = 5u32.to_le_bytes().to_vec();
    arr.extend_from_slice(&2u64.to_le_bytes());
    arr.extend_from_slice(&1i32.to_le_bytes());
    arr.extend_from_slice(&(-1i32).to_le_bytes());
    kv("tokenizer.ggml.token_type", 9, &arr);
    (n, o)
}

/// Small valid GGUF files cut from the fixtures (real key/values, real tensor bytes), with one
/// tensor of each type the codecs handle, an unknown-type tensor and an empty one.
pub fn gguf_files(fx: &Fixtures) -> Seeds {
    let t = |ty, n| Fixtures::gguf_tensor(if ty == 12 || ty == 14 { &fx.qwen } else { &fx.minilm }, ty, n).to_vec();
    let tensors = vec![
        ("blk.0.attn_q.weight", vec![512, 2], 12, t(12, 4 * 144)),
        ("output.weight", vec![256, 2], 14, t(14, 2 * 210)),
        ("norm.weight", vec![40], 0, t(0, 160)),
        ("token_embd.weight", vec![32, 4], 8, t(8, 4 * 34)),
        ("blk.0.ffn_up.weight", vec![64, 2], 6, t(6, 4 * 22)),
        ("bf16", vec![24], 30, fx.bf16[..48].to_vec()),
        ("f16", vec![8, 2], 1, fx.bf16[100..132].to_vec()),
        ("unknown-type", vec![7], 99, noise(7, 40)),
        ("empty", vec![0, 4], 0, Vec::new()),
    ];
    let (qn, qkv) = gguf_kv(&fx.qwen);
    let (sn, skv) = synthetic_kv(64);
    vec![
        (
            "qwen-kv-v3".into(),
            GgufSpec { version: 3, alignment: 32, n_kv: qn, kv: qkv.clone(), tensors: tensors.clone() }.build(),
        ),
        (
            "synthetic-kv-v2-align64".into(),
            GgufSpec { version: 2, alignment: 64, n_kv: sn, kv: skv, tensors: tensors[..4].to_vec() }.build(),
        ),
        ("no-tensors".into(), GgufSpec { version: 3, alignment: 32, n_kv: qn, kv: qkv, tensors: vec![] }.build()),
        // Two chunks of Q4_K: an archive with a multi-chunk frame.
        (
            "q4k-2chunks".into(),
            GgufSpec {
                version: 3,
                alignment: 32,
                n_kv: 0,
                kv: vec![],
                tensors: vec![("big", vec![256 * 460], 12, t(12, 460 * 144))],
            }
            .build(),
        ),
    ]
}

/// GGUF parser seeds: the small files, and the fixtures' real headers cut at several points.
pub fn gguf_seeds(fx: &Fixtures) -> Seeds {
    let mut v = gguf_files(fx);
    let minilm_meta = gguf::read(&fx.minilm).unwrap().data_start as usize;
    let qwen_meta = gguf::read(&fx.qwen).unwrap().data_start as usize;
    v.push(("minilm-metadata".into(), fx.minilm[..minilm_meta].to_vec()));
    v.push(("qwen-metadata".into(), fx.qwen[..qwen_meta].to_vec()));
    v.push(("qwen-metadata+4k".into(), fx.qwen[..qwen_meta + 4096].to_vec()));
    for cut in [3, 4, 8, 20, 24, 100, 700, 1500] {
        v.push((format!("qwen-cut{cut}"), fx.qwen[..cut].to_vec()));
    }
    v
}

// ---------------------------------------------------------------------------------------------
// safetensors

/// A safetensors file: header JSON (entries in the order given, data laid out in that order).
pub fn safetensors_file(tensors: &[(&str, &str, Vec<u64>, Vec<u8>)], metadata: bool) -> Vec<u8> {
    let mut entries = Vec::new();
    if metadata {
        entries.push(r#""__metadata__":{"format":"pt"}"#.to_string());
    }
    let mut at = 0;
    for (name, dtype, shape, data) in tensors {
        let shape: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        entries.push(format!(
            r#""{name}":{{"dtype":"{dtype}","shape":[{}],"data_offsets":[{at},{}]}}"#,
            shape.join(","),
            at + data.len()
        ));
        at += data.len();
    }
    let mut json = format!("{{{}}}", entries.join(",")).into_bytes();
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut o = (json.len() as u64).to_le_bytes().to_vec();
    o.extend_from_slice(&json);
    for (_, _, _, d) in tensors {
        o.extend_from_slice(d);
    }
    o
}

pub fn safetensors_files(fx: &Fixtures) -> Seeds {
    let st = safetensors::read(&fx.st).unwrap();
    let big = st.tensors.iter().max_by_key(|t| t.len).unwrap();
    let real = &fx.st[big.offset as usize..(big.offset + big.len) as usize];
    let f32s = Fixtures::gguf_tensor(&fx.minilm, 0, 48).to_vec();
    vec![
        (
            "mini".into(),
            safetensors_file(
                &[
                    ("embeddings.word_embeddings.weight", "BF16", vec![4, 8], real[..64].to_vec()),
                    ("encoder.layer.0.attention.self.query.bias", "F32", vec![12], f32s),
                    ("position_ids", "I64", vec![1, 3], [0u64, 1, 2].iter().flat_map(|x| x.to_le_bytes()).collect()),
                    ("scales", "F16", vec![2], vec![0, 0x3c, 0, 0xc0]),
                    ("unknown", "F8_E8M0", vec![5], noise(3, 5)),
                    ("empty", "BF16", vec![0], vec![]),
                ],
                true,
            ),
        ),
        (
            "bf16-2chunks".into(),
            safetensors_file(&[("w", "BF16", vec![256, 130], real[..256 * 130 * 2].to_vec())], false),
        ),
    ]
}

pub fn safetensors_seeds(fx: &Fixtures) -> Seeds {
    let mut v = safetensors_files(fx);
    let st = safetensors::read(&fx.st).unwrap();
    let hdr = st.data_start as usize;
    v.push(("fixture-header".into(), fx.st[..hdr].to_vec()));
    v.push(("fixture-header+1k".into(), fx.st[..hdr + 1024].to_vec()));
    v
}

// ---------------------------------------------------------------------------------------------
// Archives and the roundtrip target

/// An archive of `file` (GGUF or safetensors) with the default options.
pub fn archive_of(file: &[u8]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    archive::compress_any(file, &mut out, &Options::with_threads(1)).expect("archive a seed file");
    out.into_inner()
}

pub fn archive_seeds(fx: &Fixtures) -> Seeds {
    let mut v: Seeds = gguf_files(fx)
        .into_iter()
        .chain(safetensors_files(fx))
        .map(|(name, f)| (format!("{name}.wz"), archive_of(&f)))
        .collect();
    // The fixtures' metadata is small and stays one zstd frame: the minilm GGUF's key/values
    // again, with its extra bytes as a GGUF split (extra method 1) and as a split with numeric
    // columns (method 2), the index saying so.
    v.push(("minilm-split.wz".into(), with_split_extra(&archive_of(&fx.minilm), false)));
    v.push(("minilm-columns.wz".into(), with_split_extra(&archive_of(&fx.minilm), true)));
    v
}

/// `arc` (an archive whose extra frame is one zstd frame) rewritten with its extra bytes as a
/// GGUF split (with numeric `columns` or not), the index and header patched to match.
fn with_split_extra(arc: &[u8], columns: bool) -> Vec<u8> {
    use weightzip::archive::format::{Header, EXTRA_GGUF_COLUMNS, EXTRA_GGUF_SPLIT, HEADER_LEN};
    let a = archive::Archive::from_bytes(arc).expect("a seed archive");
    let mut index = a.index().clone();
    let extra = a.extra_bytes().expect("its extra bytes").to_vec();
    let z = archive::split_extra(&extra, columns).expect("split").expect("GGUF key/values that split");
    let mut out = arc[..index.extra.offset as usize].to_vec();
    index.extra.method = if columns { EXTRA_GGUF_COLUMNS } else { EXTRA_GGUF_SPLIT };
    index.extra.size = z.len() as u64;
    out.extend_from_slice(&z);
    let ib = index.write();
    let h = Header {
        index_offset: out.len() as u64,
        index_size: ib.len() as u64,
        index_check: xxhash_rust::xxh3::xxh3_64(&ib),
        ..*a.header()
    };
    out.extend_from_slice(&ib);
    out[..HEADER_LEN].copy_from_slice(&h.write());
    out
}

pub fn roundtrip_seeds(fx: &Fixtures) -> Seeds {
    let mut v = Seeds::new();
    for (i, kind) in Kind::ALL.into_iter().enumerate() {
        for (p, n) in [(0u8, 3000usize), (0x05, 700), (0x02, 64 << 10)] {
            let mut s = vec![i as u8, p];
            s.extend(fx.data_of(kind, n));
            v.push((format!("{}-p{p}", kind.name()), s));
        }
    }
    for (name, f) in gguf_files(fx).into_iter().chain(safetensors_files(fx)) {
        let mut s = vec![0x80, 0];
        s.extend(f);
        v.push((format!("container-{name}"), s));
    }
    v
}

/// Every target's seeds.
pub fn seeds(target: &str, fx: &Fixtures) -> Seeds {
    match target {
        "frame_decode" | "entropy" => frame_seeds(fx),
        "gguf" => gguf_seeds(fx),
        "safetensors" => safetensors_seeds(fx),
        "archive" => archive_seeds(fx),
        "roundtrip" => roundtrip_seeds(fx),
        "c_api" => frame_seeds(fx).into_iter().chain(archive_seeds(fx)).collect(),
        _ => panic!("no seeds for target {target}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Mutation

/// Values that break size arithmetic.
const INTERESTING: [u64; 14] =
    [0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, 1 << 16, 1 << 20, 1 << 30, 1 << 31, u32::MAX as u64, i64::MAX as u64, u64::MAX];

/// A mutation of `input` (one to four edits; `other` is another seed for splicing). Edits land in
/// the first 256 bytes half of the time: that is where the headers and tables are.
pub fn mutate(r: &mut Lcg, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + r.below_usize(4) {
        let n = v.len();
        let pos = |r: &mut Lcg, n: usize| {
            if n == 0 {
                0
            } else if r.below_usize(2) == 0 {
                r.below_usize(n.min(256))
            } else {
                r.below_usize(n)
            }
        };
        match r.below_usize(9) {
            0 if n > 0 => {
                let p = pos(r, n);
                v[p] ^= 1 << r.below_usize(8);
            }
            1 if n > 0 => {
                let p = pos(r, n);
                v[p] = INTERESTING[r.below_usize(6)] as u8;
            }
            2 if n >= 8 => {
                let width = [2, 4, 8][r.below_usize(3)];
                let p = pos(r, n - width + 1).min(n - width);
                let mut val = match r.below_usize(4) {
                    0 => r.next_u64(),
                    1 => n as u64 + r.below_usize(3) as u64 - 1,
                    _ => INTERESTING[r.below_usize(INTERESTING.len())],
                };
                if width < 8 {
                    val &= (1u64 << (8 * width)) - 1;
                }
                v[p..p + width].copy_from_slice(&val.to_le_bytes()[..width]);
            }
            3 => v.truncate(pos(r, n + 1)),
            4 if n > 0 => {
                let p = pos(r, n);
                let len = (1 + r.below_usize(64)).min(n - p);
                v.drain(p..p + len);
            }
            5 => {
                let p = pos(r, n + 1);
                let ins: Vec<u8> = (0..1 + r.below_usize(64)).map(|_| r.next_u64() as u8).collect();
                v.splice(p..p, ins);
            }
            6 if n > 1 => {
                let a = r.below_usize(n);
                let len = (1 + r.below_usize(256)).min(n - a);
                let chunk = v[a..a + len].to_vec();
                let b = pos(r, n);
                v.splice(b..b, chunk);
            }
            7 if !other.is_empty() => {
                let a = pos(r, n + 1);
                let b = r.below_usize(other.len());
                v.truncate(a);
                v.extend_from_slice(&other[b..]);
            }
            8 if n >= 4 => {
                let p = pos(r, n - 3).min(n - 4);
                let x = u32::from_le_bytes(v[p..p + 4].try_into().unwrap());
                let d = r.below_usize(33) as i64 - 16;
                v[p..p + 4].copy_from_slice(&((x as i64 + d) as u32).to_le_bytes());
            }
            _ => {}
        }
    }
    v
}
