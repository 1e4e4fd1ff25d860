//! The paper's Q4_K method, reimplemented as a baseline: the 16-byte block headers byte-grouped
//! (byte i of every block together) and compressed with zstd, the 128-byte quant sections
//! concatenated and compressed with zstd; and the order-0 entropy bound of nibbles plus header
//! bytes that the paper reports as a ceiling.

use weightzip::entropy::table::entropy_bits;
use weightzip::error::{Error, Result};
use weightzip::zstd;

const BLOCK: usize = 144;

/// The two zstd frames: byte-grouped headers, quants.
pub fn q4k_compress(data: &[u8], level: i32) -> Result<(Vec<u8>, Vec<u8>)> {
    if !data.len().is_multiple_of(BLOCK) {
        return Err(Error::BadLength);
    }
    let nb = data.len() / BLOCK;
    let mut hdr = vec![0u8; 16 * nb];
    let mut qs = Vec::with_capacity(128 * nb);
    for (b, blk) in data.chunks_exact(BLOCK).enumerate() {
        for i in 0..16 {
            hdr[i * nb + b] = blk[i];
        }
        qs.extend_from_slice(&blk[16..]);
    }
    Ok((zstd::compress(&hdr, level, 1)?, zstd::compress(&qs, level, 1)?))
}

/// Decodes what `q4k_compress` made (`headers`, `quants`) back into blocks in `dst`, using
/// `scratch` for the two decoded streams and `ctx` for zstd (both kept for the next call, as a
/// decoder of many tensors would keep them).
pub fn q4k_decompress(
    headers: &[u8],
    quants: &[u8],
    dst: &mut [u8],
    scratch: &mut Vec<u8>,
    ctx: &mut zstd::DCtx,
) -> Result<()> {
    if !dst.len().is_multiple_of(BLOCK) {
        return Err(Error::BadLength);
    }
    let nb = dst.len() / BLOCK;
    scratch.resize(BLOCK * nb, 0);
    let (hdr, qs) = scratch.split_at_mut(16 * nb);
    ctx.decompress_into(headers, hdr)?;
    ctx.decompress_into(quants, qs)?;
    for (b, blk) in dst.chunks_exact_mut(BLOCK).enumerate() {
        for i in 0..16 {
            blk[i] = hdr[i * nb + b];
        }
        blk[16..].copy_from_slice(&qs[128 * b..128 * b + 128]);
    }
    Ok(())
}

/// Bits of the order-0 bound: H(nibbles) per nibble plus, per header byte position, H(that byte).
pub fn q4k_order0_bound_bits(data: &[u8]) -> f64 {
    let nb = (data.len() / BLOCK) as f64;
    let mut nib = [0u64; 16];
    let mut hdr = vec![[0u64; 256]; 16];
    for blk in data.chunks_exact(BLOCK) {
        for (i, &b) in blk[..16].iter().enumerate() {
            hdr[i][b as usize] += 1;
        }
        for &b in &blk[16..] {
            nib[(b & 15) as usize] += 1;
            nib[(b >> 4) as usize] += 1;
        }
    }
    256.0 * nb * entropy_bits(&nib) + hdr.iter().map(|h| nb * entropy_bits(h)).sum::<f64>()
}

/// The paper's whole-file method for Q4_K_M GGUF files: five streams, each compressed with zstd
/// -19: (0) the metadata with every padding gap and the tail, (1) the 16-byte Q4_K block headers
/// byte-grouped over all Q4_K tensors, (2) the Q4_K quants (nibbles), (3) the other quantized
/// tensors (Q6_K, ...), (4) the float tensors (F32, F16, BF16). `gguf_join_into` puts the file back
/// together from the streams.
pub fn gguf_split(file: &[u8]) -> Result<[Vec<u8>; 5]> {
    let g = weightzip::gguf::read(file)?;
    let order = file_order(&g, file.len() as u64);
    let mut s: [Vec<u8>; 5] = Default::default();
    s[0].extend_from_slice(&file[..g.data_start as usize]);
    let mut q4k = Vec::new();
    let mut at = g.data_start as usize;
    for &(off, len, ty) in &order {
        s[0].extend_from_slice(&file[at..off]);
        let data = &file[off..off + len];
        match ty {
            12 => q4k.extend_from_slice(data),
            t if is_float(t) => s[4].extend_from_slice(data),
            _ => s[3].extend_from_slice(data),
        }
        at = off + len;
    }
    s[0].extend_from_slice(&file[at..]);
    let nb = q4k.len() / BLOCK;
    s[1] = vec![0u8; 16 * nb];
    for (b, blk) in q4k.chunks_exact(BLOCK).enumerate() {
        for i in 0..16 {
            s[1][i * nb + b] = blk[i];
        }
        s[2].extend_from_slice(&blk[16..]);
    }
    Ok(s)
}

/// Rebuilds the file from the streams of `gguf_split` into `out`, given its size (the first
/// stream holds the metadata, which tells the layout). `out` is cleared first and its capacity
/// reused, so repeated joins of one file do not allocate.
pub fn gguf_join_into(streams: &[Vec<u8>; 5], size: u64, out: &mut Vec<u8>) -> Result<()> {
    let g = weightzip::gguf::read_header_only(&streams[0])?;
    let order = file_order(&g, size);
    out.clear();
    out.reserve(size as usize);
    let (mut meta, mut q_at, mut s3, mut s4) = (g.data_start as usize, 0usize, 0usize, 0usize);
    out.extend_from_slice(&streams[0][..meta]);
    let nb = streams[1].len() / 16;
    let mut at = g.data_start as usize;
    let bad = || Error::CorruptData;
    for &(off, len, ty) in &order {
        let gap = off - at;
        out.extend_from_slice(streams[0].get(meta..meta + gap).ok_or(bad())?);
        meta += gap;
        match ty {
            12 => {
                for _ in 0..len / BLOCK {
                    for i in 0..16 {
                        out.push(*streams[1].get(i * nb + q_at).ok_or(bad())?);
                    }
                    out.extend_from_slice(streams[2].get(128 * q_at..128 * q_at + 128).ok_or(bad())?);
                    q_at += 1;
                }
            }
            t if is_float(t) => {
                out.extend_from_slice(streams[4].get(s4..s4 + len).ok_or(bad())?);
                s4 += len;
            }
            _ => {
                out.extend_from_slice(streams[3].get(s3..s3 + len).ok_or(bad())?);
                s3 += len;
            }
        }
        at = off + len;
    }
    out.extend_from_slice(streams[0].get(meta..).ok_or(bad())?);
    Ok(())
}

/// ggml F32, F16, BF16.
fn is_float(ggml_type: u32) -> bool {
    matches!(ggml_type, 0 | 1 | 30)
}

/// (offset, length, ggml type) of every tensor in file order; a tensor of unknown size extends
/// to the next one.
fn file_order(g: &weightzip::gguf::Gguf, size: u64) -> Vec<(usize, usize, u32)> {
    let mut v: Vec<&weightzip::gguf::TensorInfo> = g.tensors.iter().collect();
    v.sort_by_key(|t| (t.offset, t.len.unwrap_or(0)));
    (0..v.len())
        .map(|k| {
            let t = v[k];
            let len = t.len.unwrap_or_else(|| v.get(k + 1).map_or(size, |n| n.offset) - t.offset);
            (t.offset as usize, len as usize, t.ggml_type)
        })
        .collect()
}
