//! The frame header's flags (docs/FORMAT.md 2.3).
//!
//! Flag 1, the float codecs' sign-in-symbol split (4.1): the symbol holds the sign, the exponent
//! and three mantissa bits, and bits 3..0 go raw. On the real 1-D tensors of the GGUF fixture
//! (norm weights, all positive, and biases) the encoder chooses it for bf16, f16 and f32, and it
//! codes them smaller than the default split; frames with it roundtrip at every thread count,
//! chunk by chunk and with every kernel level, in method 1, 5 and 6 frames.
//!
//! Flag 2, the generic path's differences of words (6.1): MiniLM's I64 position ids take it and
//! beat zstd -19 by far; every word width and a trailing partial word roundtrip; its model
//! section is checked.
//!
//! Flag 4, method 6's column sign flips (6.4): the fixture's FFN up-projection, whose columns lean
//! to one sign or the other, takes them in bf16, f16 and f32 with the signed split (flags 5), and
//! roundtrips with chunks that start mid-row; the flips' bits are checked.
//!
//! A frame header whose flags its method does not allow is CORRUPT_HEADER.

mod common;

use half::f16;
use weightzip::codec::bf16::{encode_chunk, histogram, read_models, write_models, Encoder, Model, Split, SYMBOLS};
use weightzip::codec::Method;
use weightzip::frame::MIN_CHUNK_SIZE;
use weightzip::{decompress, read_info, safetensors, Error, Kind, Options};
use xxhash_rust::xxh3::xxh3_64;

fn opts(threads: u32, chunk_size: u32, row_len: u64) -> Options {
    Options { threads, chunk_size, progress: None, fast: false, row_len }
}

/// Every 1-D F32 tensor of the GGUF fixture (all-MiniLM-L6-v2's norm weights and biases), in
/// file order: 30,720 values.
fn vectors_f32() -> Vec<u8> {
    let file = std::fs::read(common::data_path("minilm-l6-q4_k_m.gguf")).unwrap();
    let mut out = Vec::new();
    for t in weightzip::gguf::read_tensors(&file).unwrap() {
        if t.ggml_type == 0 && t.dims.len() == 1 {
            out.extend_from_slice(&file[t.offset as usize..(t.offset + t.len.unwrap()) as usize]);
        }
    }
    assert_eq!(out.len(), 4 * 30_720);
    out
}

/// f32 bytes rounded to bf16 (to nearest, ties to even; no NaNs here).
fn to_bf16(f32s: &[u8]) -> Vec<u8> {
    f32s.chunks_exact(4)
        .flat_map(|b| {
            let u = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) as u16).to_le_bytes()
        })
        .collect()
}

fn to_f16(f32s: &[u8]) -> Vec<u8> {
    f32s.chunks_exact(4)
        .flat_map(|b| f16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_bits().to_le_bytes())
        .collect()
}

/// Bytes of one chunk of little-endian 16-bit values coded under `split` with one table of
/// their own, model section included.
fn coded_len(src: &[u8], split: Split) -> usize {
    let mut counts = vec![0u64; SYMBOLS];
    histogram(src, split, &mut counts);
    let m = Model::from_counts(&counts).unwrap();
    let model = write_models(&[m]);
    let m = read_models(&model).unwrap().remove(0);
    let mut out = Vec::new();
    encode_chunk(&Encoder::new(m.encoder(), split), src, &mut out).unwrap();
    model.len() + out.len()
}

#[test]
fn real_norms_and_biases_take_the_signed_split() {
    let f32s = vectors_f32();
    for (kind, src) in [(Kind::F32, f32s.clone()), (Kind::Bf16, to_bf16(&f32s)), (Kind::F16, to_f16(&f32s))] {
        for cs in [0, MIN_CHUNK_SIZE] {
            let label = format!("{kind:?} chunk {cs}");
            let f = common::frame_roundtrips(kind, &src, 0, cs, &label);
            let info = read_info(&f).unwrap();
            assert_eq!(info.flags, 1, "{label}: the split");
            let want = if kind == Kind::F32 { Method::F32Split } else { Method::Bf16Hist };
            assert_eq!(info.method, want, "{label}");
        }
        if kind != Kind::F32 {
            // What the choice is worth here: the same values under each split, one table each.
            let (plain, signed) = (coded_len(&src, Split::Magnitude), coded_len(&src, Split::Signed));
            assert!(signed < plain, "{kind:?}: signed {signed} vs plain {plain}");
        }
    }
}

/// The fixture's FFN up-projection (1536 x 384 bf16, real values).
fn ffn_up() -> Vec<u8> {
    let file = common::st_file();
    let t = safetensors::read_tensors(file)
        .unwrap()
        .into_iter()
        .find(|t| t.dtype == "BF16" && t.name.ends_with("intermediate.dense.weight"))
        .unwrap();
    file[t.offset as usize..(t.offset + t.len) as usize].to_vec()
}

/// `bf16` values as rows of 384 in bf16, f16 and f32 (low halves made up), each with default
/// and 64 KiB chunks (which start mid-row): every frame roundtrips; the header flags of each, and
/// its label, go to `check`.
fn matrix_frames(bf16: Vec<u8>, check: impl Fn(u32, &str)) {
    let f32s: Vec<u8> = bf16.chunks_exact(2).enumerate().flat_map(|(i, b)| [(i * 37) as u8, 0, b[0], b[1]]).collect();
    for (kind, src) in [(Kind::Bf16, bf16.clone()), (Kind::F16, to_f16(&f32s)), (Kind::F32, f32s.clone())] {
        for cs in [0, MIN_CHUNK_SIZE] {
            let label = format!("{kind:?} chunk {cs}");
            let f = common::frame_roundtrips(kind, &src, 384, cs, &label);
            let info = read_info(&f).unwrap();
            assert_eq!(info.method, Method::Bf16Ctx, "{label}");
            check(info.flags, &label);
        }
    }
}

#[test]
fn matrices_with_skewed_signs_take_contexts_and_the_signed_split() {
    // The FFN up-projection with the signs of three values in four cleared: method 6 pays on
    // its rows, and the sign is now worth modelling. The columns whose one value in four keeps
    // its sign may lean negative: flipped or not, the sign is in the symbol.
    let bf16: Vec<u8> = ffn_up()
        .chunks_exact(2)
        .enumerate()
        .flat_map(|(i, b)| {
            let v = u16::from_le_bytes([b[0], b[1]]);
            (if i % 4 == 0 { v } else { v & 0x7FFF }).to_le_bytes()
        })
        .collect();
    matrix_frames(bf16, |flags, label| assert_eq!(flags & 1, 1, "{label}"));
}

#[test]
fn matrices_whose_columns_lean_take_column_sign_flips() {
    // Its columns' signs lean (0.984 bits a sign given the column, against 1.000 over the
    // tensor): the encoder flips those that lean negative and puts the sign in the symbol.
    matrix_frames(ffn_up(), |flags, label| assert_eq!(flags, 5, "{label}"));
}

#[test]
fn column_sign_bits_are_checked() {
    let golden = |n: &str| std::fs::read(common::root().join("tests/golden").join(n)).unwrap();
    // The flag taken from a frame that has the bits, or given to one without: the model section
    // no longer parses, or the chunks decode to other bytes (their checksums catch it).
    for (name, flags) in [("bf16-ctx-signs.wzf", 1), ("f32-ctx-signs.wzf", 1), ("bf16-ctx.wzf", 4), ("f32-ctx.wzf", 4)]
    {
        let g = with_flags(&golden(name), flags);
        assert!(decompress(&g, &opts(1, 0, 0)).is_err(), "{name} with flags {flags}");
    }
    // The flag on the other float methods.
    for name in ["bf16.wzf", "f32.wzf", "bf16-signed.wzf"] {
        assert!(matches!(read_info(&with_flags(&golden(name), 4 | 1)), Err(Error::CorruptHeader)), "{name}");
    }
}

/// `f` with header flags `flags` and the header checksum made right again.
fn with_flags(f: &[u8], flags: u32) -> Vec<u8> {
    let mut g = f.to_vec();
    g[28..32].copy_from_slice(&flags.to_le_bytes());
    let h = xxh3_64(&g[..40]);
    g[40..48].copy_from_slice(&h.to_le_bytes());
    g
}

#[test]
fn flags_the_method_does_not_allow_are_corrupt_headers() {
    let golden = |n: &str| std::fs::read(common::root().join("tests/golden").join(n)).unwrap();
    let signed = golden("bf16-signed.wzf");
    assert_eq!(read_info(&signed).unwrap().flags, 1);
    // Unknown bits, on a method that has flags.
    for bad in [2, 1 << 31, 3] {
        assert!(matches!(read_info(&with_flags(&signed, bad)), Err(Error::CorruptHeader)), "flags {bad}");
    }
    // The flag on methods without flags: blocks, q4k-ctx, grouped, stored.
    for name in ["q6_k.wzf", "q4_k.wzf", "grouped-abc.wzf", "stored.wzf"] {
        let f = golden(name);
        assert_eq!(read_info(&f).unwrap().flags, 0, "{name}");
        assert!(matches!(read_info(&with_flags(&f, 1)), Err(Error::CorruptHeader)), "{name}");
    }
    // The flag added to, or taken from, a frame of the float methods: a valid header, but the
    // chunks decode to other bytes, which their checksums catch.
    for (name, flags) in [("bf16.wzf", 1), ("f32.wzf", 1), ("bf16-ctx.wzf", 1), ("bf16-signed.wzf", 0)] {
        let g = with_flags(&golden(name), flags);
        assert!(decompress(&g, &opts(1, 0, 0)).is_err(), "{name} with flags {flags}");
    }
}

#[test]
fn integer_position_ids_take_differences_and_beat_zstd() {
    let src = std::fs::read(common::data_path("minilm-position-ids.i64")).unwrap();
    let f = common::frame_roundtrips(Kind::Bytes, &src, 0, 0, "position ids");
    let info = read_info(&f).unwrap();
    assert_eq!((info.method, info.flags), (Method::Grouped, 2));
    let z = zstd_19(&src);
    // The frame's 80 bytes of header and table included (zstd -19: 547 bytes).
    assert!(f.len() * 4 < z, "{} vs zstd -19 {}", f.len(), z);
}

fn zstd_19(src: &[u8]) -> usize {
    weightzip::zstd::compress(src, 19, 1).unwrap().len()
}

#[test]
fn differences_of_every_width_roundtrip() {
    // Integer-like bytes: the position ids, counted down and wrapped, with odd tails.
    let ids = std::fs::read(common::data_path("minilm-position-ids.i64")).unwrap();
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for w in [2usize, 4, 8] {
        // The ids as w-byte words, descending through zero (the differences wrap).
        let v: Vec<u8> = ids
            .chunks_exact(8)
            .flat_map(|b| {
                let x = 100u64.wrapping_sub(u64::from_le_bytes(b.try_into().unwrap()));
                x.to_le_bytes()[..w].to_vec()
            })
            .collect();
        cases.push(v.clone());
        let mut odd = v;
        odd.extend_from_slice(&[7, 1, 3][..w.min(3) - 1]);
        cases.push(odd);
    }
    for (i, src) in cases.iter().enumerate() {
        let f = common::frame_roundtrips(Kind::Bytes, src, 0, 0, &format!("case {i}"));
        assert_eq!(read_info(&f).unwrap().flags, 2, "case {i}: {} bytes", src.len());
    }
}

#[test]
fn delta_model_sections_are_checked() {
    let golden = std::fs::read(common::root().join("tests/golden/bytes-delta.wzf")).unwrap();
    // Model section: bytes 48..50, [stride 1, width 8]. Widths other than 2, 4, 8, and a one-byte
    // model with the flag, are CORRUPT_MODEL; the flag taken away, CORRUPT_MODEL too.
    for w in [0u8, 1, 3, 5, 16, 255] {
        let mut g = golden.clone();
        g[49] = w;
        let g = reseal_table(&g);
        assert!(matches!(decompress(&g, &opts(1, 0, 0)), Err(Error::CorruptModel)), "width {w}");
    }
    assert!(matches!(decompress(&with_flags(&golden, 0), &opts(1, 0, 0)), Err(Error::CorruptModel)));
    let plain = std::fs::read(common::root().join("tests/golden/bytes.wzf")).unwrap();
    assert!(matches!(decompress(&with_flags(&plain, 2), &opts(1, 0, 0)), Err(Error::CorruptModel)));
}

/// `f` with its table check recomputed (the model section and chunk table changed).
fn reseal_table(f: &[u8]) -> Vec<u8> {
    let info = read_info(f).unwrap();
    let end = 48 + info.model_size as usize + 16 * info.chunk_count as usize;
    let mut g = f.to_vec();
    let c = xxh3_64(&g[48..end]);
    g[end..end + 8].copy_from_slice(&c.to_le_bytes());
    g
}
