//! The paper's bf16 method, reimplemented as a baseline ("bf16_split"): every 16-bit value is
//! split into its high and its low byte, and each byte plane is coded with its own static order-0
//! rANS table, built from the counts of the whole tensor and stored with the data. The same
//! split applies to any element width (f16: two planes; f32: four), which is how the benchmarks
//! use it for f16 and f32 tensors; the paper itself describes the 16-bit case.
//!
//! It uses this crate's entropy coder (`entropy::rans`, 32 interleaved lanes) and table coding
//! (`entropy::table`), so next to weightzip's own bf16 codec the only difference is the model:
//! two independent byte marginals here, against the exponent and top mantissa bits as one symbol
//! there. Its coded size is the byte-marginal bound (`stats::r_marginal`) plus table and stream
//! overhead.
//!
//! The one liberty taken: the planes are cut into segments of `SEGMENT` values, each segment's
//! planes their own rANS streams (with the tensor's tables), so that the baseline decodes on
//! several threads like weightzip does. A segment costs 4 + 128 bytes per plane (length and
//! final states), under 0.03% of a full segment's coded size; tensors below `SEGMENT` values are
//! one segment, exactly the paper's layout.
//!
//! A tensor that the coding would not shrink (a tiny one, where the tables and the final rANS
//! states cost more than they save) is stored as it is, as any practical coder would do.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! u8   width (bytes per element, 1..=8)
//! u8   mode: 0 stored (the raw bytes follow, nothing else), 1 coded
//! u32  segment (values per segment)
//! u64  n (values)
//! per plane, low byte first:  u16 table size, the table (`FreqTable::write`, 256 symbols)
//! per segment, per plane:     u32 stream size, the rANS stream (`RansEncoder::finish`)
//! ```

use weightzip::entropy::bits::{BitReader, BitWriter};
use weightzip::entropy::rans::{DecTable, EncTable, RansDecoder, RansEncoder, LANES};
use weightzip::entropy::table::FreqTable;
use weightzip::error::{Error, Result};
use weightzip::parallel;

/// Values per segment: 1 Mi values (2 MiB of bf16).
pub const SEGMENT: usize = 1 << 20;

/// Frequency scale of the tables: 2^12 slots, as in htscodecs' order-0 rANS. The decoding table
/// (8 bytes a slot, 32 KiB) stays in the L1 cache; a finer scale would gain under 0.01% here.
pub const SCALE: u32 = 12;

const HEADER: usize = 1 + 1 + 4 + 8;
const STORED: u8 = 0;
const CODED: u8 = 1;

/// Compresses `data`, a whole number of `width`-byte elements, on up to `threads` threads (0 =
/// all cores). The output does not depend on `threads`.
pub fn compress(data: &[u8], width: usize, threads: u32) -> Result<Vec<u8>> {
    if !(1..=8).contains(&width) || !data.len().is_multiple_of(width) {
        return Err(Error::BadLength);
    }
    let n = data.len() / width;
    let mut out = Vec::with_capacity(HEADER + data.len());
    out.extend_from_slice(&[width as u8, CODED]);
    out.extend_from_slice(&(SEGMENT as u32).to_le_bytes());
    out.extend_from_slice(&(n as u64).to_le_bytes());
    if n == 0 {
        out[1] = STORED;
        return Ok(out);
    }
    // One histogram per plane, over the whole tensor.
    let mut counts = vec![[0u64; 256]; width];
    for e in data.chunks_exact(width) {
        for (c, &b) in counts.iter_mut().zip(e) {
            c[b as usize] += 1;
        }
    }
    let mut enc = Vec::with_capacity(width);
    for c in &counts {
        let t = FreqTable::from_counts(c, SCALE)?;
        let mut w = BitWriter::new();
        t.write(&mut w);
        let bytes = w.finish();
        out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(&bytes);
        enc.push(EncTable::new(&t));
    }
    // Segments are coded independently, each into its own buffer, then appended in order.
    let mut segs: Vec<(&[u8], Vec<u8>)> = data.chunks(SEGMENT * width).map(|s| (s, Vec::new())).collect();
    parallel::for_each_mut(&mut segs, threads, |_, (src, dst)| {
        let m = src.len() / width;
        for (plane, table) in enc.iter().enumerate() {
            let mut e = RansEncoder::new(m);
            // rANS encodes backwards; symbol i belongs to lane i % LANES.
            for i in (0..m).rev() {
                e.put(i % LANES, table.syms[src[i * width + plane] as usize], table.scale);
            }
            let at = dst.len();
            dst.extend_from_slice(&[0; 4]);
            e.finish(dst);
            let size = (dst.len() - at - 4) as u32;
            dst[at..at + 4].copy_from_slice(&size.to_le_bytes());
        }
        Ok(())
    })?;
    let coded = out.len() + segs.iter().map(|(_, s)| s.len()).sum::<usize>();
    if coded >= HEADER + data.len() {
        out.truncate(HEADER);
        out[1] = STORED;
        out.extend_from_slice(data);
        return Ok(out);
    }
    for (_, s) in &segs {
        out.extend_from_slice(s);
    }
    Ok(out)
}

/// Reads `n` little-endian bytes at `*at`, advancing it.
fn take<'a>(src: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8]> {
    let s = src.get(*at..at.checked_add(n).ok_or(Error::CorruptData)?).ok_or(Error::Truncated)?;
    *at += n;
    Ok(s)
}

/// The original size in bytes of what `compress` made.
#[cfg(test)]
pub fn original_size(src: &[u8]) -> Result<u64> {
    let mut at = 0;
    let width = take(src, &mut at, 1)?[0] as u64;
    at += 5;
    let n = u64::from_le_bytes(take(src, &mut at, 8)?.try_into().unwrap());
    n.checked_mul(width).ok_or(Error::TooLarge)
}

/// Decodes what `compress` made into `dst`, which must have exactly the original size, on up to
/// `threads` threads (0 = all cores).
pub fn decompress_into(src: &[u8], dst: &mut [u8], threads: u32) -> Result<()> {
    let mut at = 0;
    let width = take(src, &mut at, 1)?[0] as usize;
    let mode = take(src, &mut at, 1)?[0];
    let segment = u32::from_le_bytes(take(src, &mut at, 4)?.try_into().unwrap()) as usize;
    let n = u64::from_le_bytes(take(src, &mut at, 8)?.try_into().unwrap());
    if !(1..=8).contains(&width) || mode > CODED || segment == 0 || !segment.is_multiple_of(LANES) {
        return Err(Error::CorruptData);
    }
    if n.checked_mul(width as u64) != Some(dst.len() as u64) {
        return Err(Error::DstSizeMismatch);
    }
    if mode == STORED {
        let raw = take(src, &mut at, dst.len())?;
        if at != src.len() {
            return Err(Error::TrailingData);
        }
        dst.copy_from_slice(raw);
        return Ok(());
    }
    let mut tables = Vec::with_capacity(width);
    for _ in 0..width {
        let size = u16::from_le_bytes(take(src, &mut at, 2)?.try_into().unwrap()) as usize;
        let bytes = take(src, &mut at, size)?;
        let t = FreqTable::read(&mut BitReader::new(bytes), 256)?;
        tables.push(DecTable::new(&t, |s| s as u16));
    }
    // Locate every segment's streams first (cheap), then decode the segments in parallel.
    let mut jobs: Vec<(&mut [u8], Vec<&[u8]>)> = Vec::new();
    for seg in dst.chunks_mut(segment * width) {
        let mut streams = Vec::with_capacity(width);
        for _ in 0..width {
            let size = u32::from_le_bytes(take(src, &mut at, 4)?.try_into().unwrap()) as usize;
            streams.push(take(src, &mut at, size)?);
        }
        jobs.push((seg, streams));
    }
    if at != src.len() {
        return Err(Error::TrailingData);
    }
    parallel::for_each_mut(&mut jobs, threads, |_, (seg, streams)| match width {
        2 => decode_segment::<2>(streams, &tables, seg),
        4 => decode_segment::<4>(streams, &tables, seg),
        _ => {
            for (plane, (table, stream)) in tables.iter().zip(streams.iter()).enumerate() {
                decode_plane(stream, table, seg, width, plane)?;
            }
            Ok(())
        }
    })
}

/// Decodes the `W` planes of one segment together, element by element: `W` times as many
/// independent state chains in flight as one plane alone, and whole elements written at once.
fn decode_segment<const W: usize>(streams: &[&[u8]], tables: &[DecTable], out: &mut [u8]) -> Result<()> {
    let tables: &[DecTable; W] = tables.try_into().map_err(|_| Error::CorruptData)?;
    let mut v = Vec::with_capacity(W);
    for s in streams {
        v.push(RansDecoder::new(s)?);
    }
    let mut decs: [RansDecoder; W] = v.try_into().map_err(|_| Error::CorruptData)?;
    let mut groups = out.chunks_exact_mut(LANES * W);
    for g in groups.by_ref() {
        if decs.iter().any(|d| d.words_left() < LANES) {
            checked_group::<W>(&mut decs, tables, g)?;
            continue;
        }
        for (lane, e) in g.chunks_exact_mut(W).enumerate() {
            for p in 0..W {
                e[p] = tables[p].step(&mut decs[p].states[lane]) as u8;
            }
        }
        for d in &mut decs {
            d.renorm_group();
        }
    }
    checked_group::<W>(&mut decs, tables, groups.into_remainder())?;
    for d in &decs {
        if d.finish()? != [0; LANES] {
            return Err(Error::CorruptData);
        }
    }
    Ok(())
}

/// Up to one group of elements, every renormalisation bounds-checked: the end of a stream.
fn checked_group<const W: usize>(decs: &mut [RansDecoder; W], tables: &[DecTable; W], g: &mut [u8]) -> Result<()> {
    for (lane, e) in g.chunks_exact_mut(W).enumerate() {
        for p in 0..W {
            e[p] = tables[p].step(&mut decs[p].states[lane]) as u8;
            decs[p].renorm_checked(lane)?;
        }
    }
    Ok(())
}

/// Decodes one plane's stream into byte `plane` of every `width`-byte element of `out`.
fn decode_plane(stream: &[u8], table: &DecTable, out: &mut [u8], width: usize, plane: usize) -> Result<()> {
    let mut d = RansDecoder::new(stream)?;
    let mut groups = out.chunks_exact_mut(LANES * width);
    // Whole groups of LANES symbols while a whole group's renormalisation words remain: one
    // step per lane, then every lane renormalised at once (words in lane order, as encoded).
    for g in groups.by_ref() {
        if d.words_left() < LANES {
            // Too close to the end for the unchecked group renormalisation: finish this group
            // lane by lane with bounds checks.
            for (lane, e) in g.chunks_exact_mut(width).enumerate() {
                e[plane] = table.step(&mut d.states[lane]) as u8;
                d.renorm_checked(lane)?;
            }
            continue;
        }
        for (lane, e) in g.chunks_exact_mut(width).enumerate() {
            e[plane] = table.step(&mut d.states[lane]) as u8;
        }
        d.renorm_group();
    }
    // The last partial group, the plain way.
    for (lane, e) in groups.into_remainder().chunks_exact_mut(width).enumerate() {
        e[plane] = table.step(&mut d.states[lane]) as u8;
        d.renorm_checked(lane)?;
    }
    if d.finish()? != [0; LANES] {
        return Err(Error::CorruptData);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weightzip::test_rng::lcg;

    #[test]
    fn roundtrip_widths_lengths_and_threads() {
        let mut seed = 3;
        for width in [1usize, 2, 4] {
            for n in [0usize, 1, 31, 32, 33, 1000, SEGMENT - 1, SEGMENT + 77] {
                // Skewed high bytes, near-uniform low bytes, like weights.
                let data: Vec<u8> = (0..n * width)
                    .map(|i| {
                        let r = lcg(&mut seed);
                        if i % width == width - 1 {
                            0x3c + (r % 7).min(r % 5) as u8
                        } else {
                            r as u8
                        }
                    })
                    .collect();
                let c1 = compress(&data, width, 1).unwrap();
                assert_eq!(compress(&data, width, 2).unwrap(), c1, "width {width} n {n}: depends on threads");
                assert_eq!(original_size(&c1).unwrap(), data.len() as u64);
                for t in [1, 2] {
                    let mut back = vec![0u8; data.len()];
                    decompress_into(&c1, &mut back, t).unwrap();
                    assert_eq!(back, data, "width {width} n {n} threads {t}");
                }
                if n >= 1000 {
                    let mut back = vec![0u8; data.len()];
                    assert!(decompress_into(&c1[..c1.len() - 2], &mut back, 1).is_err());
                    let mut bad = c1.clone();
                    let k = bad.len() - 10;
                    bad[k] ^= 0x40;
                    assert!(decompress_into(&bad, &mut back, 1).is_err() || back != data);
                }
            }
        }
    }

    #[test]
    fn constant_plane() {
        let data = vec![0u8; 2 * 5000];
        let c = compress(&data, 2, 1).unwrap();
        let mut back = vec![1u8; data.len()];
        decompress_into(&c, &mut back, 1).unwrap();
        assert_eq!(back, data);
    }
}
