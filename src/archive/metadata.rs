//! The extra frame of a GGUF archive split into streams (FORMAT.md 8.3, extra methods 1 and 2).
//!
//! A GGUF file's metadata is mostly its tokenizer: arrays of strings (tokens, merges), each
//! string a u64 length then its bytes. Interleaved, the eight-byte lengths break zstd's matches
//! and cost it the long ones; apart, the text compresses at zstd level 12 smaller than the whole
//! does at level 19, in a tenth of the time (Qwen2.5-Coder-1.5B's 5.95 MB of extra bytes: 1,269,269
//! bytes with method 2, 1,269,054 with method 1, against 1,371,170; zstd -19 on them takes 2.2 s
//! here). The split gives three streams: the *skeleton* (every byte of the extra bytes except
//! the elements of string arrays), the *lengths* of those elements (LEB128 varints) and their
//! *characters*, end to end; each is one zstd frame.
//!
//! Method 2 (*columns*) is the same split with every array of 2-, 4- or 8-byte numbers stored in
//! the skeleton as the wrapping differences of its elements, byte planes apart (all elements'
//! first bytes, then their second bytes, ...). SentencePiece vocabularies carry a score per
//! token that falls by one from token to token, and a token type that is nearly always 1:
//! Gemma 3's 262,144 of each took zstd 190,135 bytes at level 19 (0.3 s, a third of the CPU time
//! of compressing the whole 253 MB file) and take 2,401 as columns at level 12 (20 ms).
//!
//! `split` walks the key/values of the GGUF header at the start of the extra bytes and gives up
//! (the writer then uses one zstd frame, method 0) on anything it does not know. `join` walks the
//! same structure in the skeleton as hostile input: every length is checked against what remains
//! and against the size the index gives, so no claim makes it read or allocate past them.

use crate::error::{Error, Result};
use crate::zstd;

/// zstd levels of the three streams: the skeleton (mostly the numeric arrays, which as columns
/// are nearly constant) at 12; the lengths are small, and 19 costs little there; the characters
/// are most of the bytes, and 12 keeps them fast. (Method 1's skeleton, written before columns,
/// was at 19.)
const SKELETON_LEVEL: i32 = 12;
const LENGTHS_LEVEL: i32 = 19;
const CHARS_LEVEL: i32 = 12;

/// Bytes of the split frame's own header: raw and coded sizes of the three streams.
const HEAD: usize = 48;

/// GGUF value types: 0..=7 and 10..=12 are fixed-size scalars, 8 a string, 9 an array.
const STRING: u32 = 8;
const ARRAY: u32 = 9;

/// Size of a fixed-size GGUF value type, None for strings, arrays and unknown types.
fn scalar_size(t: u32) -> Option<usize> {
    Some(match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

/// The three streams of a split.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub skeleton: Vec<u8>,
    pub lengths: Vec<u8>,
    pub chars: Vec<u8>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

fn put_varint(o: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        o.push(v as u8 | 0x80);
        v >>= 7;
    }
    o.push(v as u8);
}

/// Whether the numeric array of element size `size` is stored as columns (method 2).
fn as_columns(columns: bool, size: usize) -> bool {
    columns && size >= 2
}

/// Appends the `n` elements of `size` bytes at `b` as columns: each element (a little-endian
/// unsigned integer) less the one before it (the first less zero), wrapping, then the bytes of
/// those differences a plane at a time.
fn put_columns(o: &mut Vec<u8>, b: &[u8], size: usize) {
    let n = b.len() / size;
    let start = o.len();
    o.resize(start + b.len(), 0);
    let out = &mut o[start..];
    let mut prev = 0u64;
    for (i, e) in b.chunks_exact(size).enumerate() {
        let mut w = [0u8; 8];
        w[..size].copy_from_slice(e);
        let v = u64::from_le_bytes(w);
        let d = v.wrapping_sub(prev).to_le_bytes();
        prev = v;
        for (k, &byte) in d[..size].iter().enumerate() {
            out[k * n + i] = byte;
        }
    }
}

/// The inverse of `put_columns`: `out` (`n` elements of `size` bytes) from its columns `c`.
fn get_columns(c: &[u8], size: usize, out: &mut [u8]) {
    let n = out.len() / size;
    let mask = if size == 8 { u64::MAX } else { (1u64 << (8 * size)) - 1 };
    let mut prev = 0u64;
    for (i, e) in out.chunks_exact_mut(size).enumerate() {
        let mut w = [0u8; 8];
        for (k, b) in w[..size].iter_mut().enumerate() {
            *b = c[k * n + i];
        }
        prev = prev.wrapping_add(u64::from_le_bytes(w)) & mask;
        e.copy_from_slice(&prev.to_le_bytes()[..size]);
    }
}

/// Splits the extra bytes `raw` of a GGUF archive (its metadata first), with numeric arrays as
/// columns when `columns` (method 2; method 1 without). None when they do not start with a GGUF
/// version 2 or 3 header whose key/values are all of known types, with no array of arrays: the
/// caller then stores them as one zstd frame.
pub fn split(raw: &[u8], columns: bool) -> Option<Split> {
    if raw.get(..4)? != b"GGUF" || !matches!(u32_at(raw, 4)?, 2 | 3) {
        return None;
    }
    let n_kv = u64_at(raw, 16)?;
    let mut s = Split::default();
    let mut at = 24;
    // Bytes from `at` on that stay in the skeleton as they are: copied in runs, up to the
    // next string array's elements.
    let mut run_start = 0;
    let string_end =
        |at: usize| -> Option<usize> { at.checked_add(8)?.checked_add(usize::try_from(u64_at(raw, at)?).ok()?) };
    for _ in 0..n_kv {
        at = string_end(at)?; // the key
        let t = u32_at(raw, at)?;
        at += 4;
        match t {
            STRING => at = string_end(at)?,
            ARRAY => {
                let et = u32_at(raw, at)?;
                let n = u64_at(raw, at + 4)?;
                at += 12;
                if et == STRING {
                    s.skeleton.extend_from_slice(&raw[run_start..at]);
                    for _ in 0..n {
                        let end = string_end(at)?;
                        put_varint(&mut s.lengths, (end - at - 8) as u64);
                        s.chars.extend_from_slice(raw.get(at + 8..end)?);
                        at = end;
                    }
                    run_start = at;
                } else {
                    let size = scalar_size(et)?;
                    let end = at.checked_add(usize::try_from(n).ok()?.checked_mul(size)?)?;
                    if as_columns(columns, size) {
                        s.skeleton.extend_from_slice(&raw[run_start..at]);
                        put_columns(&mut s.skeleton, raw.get(at..end)?, size);
                        run_start = end;
                    }
                    at = end;
                }
            }
            _ => at = at.checked_add(scalar_size(t)?)?,
        }
        if at > raw.len() {
            return None;
        }
    }
    s.skeleton.extend_from_slice(&raw[run_start..]);
    Some(s)
}

/// Reads the skeleton, lengths and characters in step and rebuilds the extra bytes into `out`,
/// which must come out exactly full.
struct Joiner<'a> {
    /// Numeric arrays are columns in the skeleton (method 2).
    columns: bool,
    skeleton: &'a [u8],
    lengths: &'a [u8],
    chars: &'a [u8],
    out: &'a mut [u8],
    /// Read positions in the three streams, write position in `out`.
    s: usize,
    l: usize,
    c: usize,
    o: usize,
}

impl Joiner<'_> {
    /// Copies `n` bytes of the skeleton to the output.
    fn copy(&mut self, n: u64) -> Result<()> {
        let n = usize::try_from(n).map_err(|_| Error::CorruptData)?;
        let src =
            self.skeleton.get(self.s..self.s.checked_add(n).ok_or(Error::CorruptData)?).ok_or(Error::CorruptData)?;
        self.put(src)?;
        self.s += n;
        Ok(())
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        let dst = self.out.get_mut(self.o..self.o + b.len()).ok_or(Error::CorruptData)?;
        dst.copy_from_slice(b);
        self.o += b.len();
        Ok(())
    }

    /// The skeleton's next u32 / u64, copied to the output.
    fn u32(&mut self) -> Result<u32> {
        let v = u32_at(self.skeleton, self.s).ok_or(Error::CorruptData)?;
        self.copy(4)?;
        Ok(v)
    }

    fn u64(&mut self) -> Result<u64> {
        let v = u64_at(self.skeleton, self.s).ok_or(Error::CorruptData)?;
        self.copy(8)?;
        Ok(v)
    }

    /// `n` elements of `size` bytes from the skeleton: as they are, or from columns.
    fn numbers(&mut self, n: u64, size: usize) -> Result<()> {
        let len = n.checked_mul(size as u64).ok_or(Error::CorruptData)?;
        if !as_columns(self.columns, size) {
            return self.copy(len);
        }
        let len = usize::try_from(len).map_err(|_| Error::CorruptData)?;
        let end = self.s.checked_add(len).ok_or(Error::CorruptData)?;
        let src = self.skeleton.get(self.s..end).ok_or(Error::CorruptData)?;
        let dst =
            self.out.get_mut(self.o..self.o.checked_add(len).ok_or(Error::CorruptData)?).ok_or(Error::CorruptData)?;
        get_columns(src, size, dst);
        self.s = end;
        self.o += len;
        Ok(())
    }

    /// A string of the skeleton (length and bytes), copied.
    fn string(&mut self) -> Result<()> {
        let n = self.u64()?;
        self.copy(n)
    }

    /// The next element of a string array: its length from the lengths stream, its bytes from
    /// the characters.
    fn element(&mut self) -> Result<()> {
        let mut v = 0u64;
        for shift in (0..).step_by(7) {
            let b = *self.lengths.get(self.l).ok_or(Error::CorruptData)?;
            self.l += 1;
            // A tenth byte may hold only the top bit of a u64.
            if shift == 63 && b > 1 {
                return Err(Error::CorruptData);
            }
            v |= ((b & 0x7F) as u64) << shift;
            if b < 0x80 {
                break;
            }
        }
        self.put(&v.to_le_bytes())?;
        let n = usize::try_from(v).map_err(|_| Error::CorruptData)?;
        let src = self.chars.get(self.c..self.c.checked_add(n).ok_or(Error::CorruptData)?).ok_or(Error::CorruptData)?;
        let dst =
            self.out.get_mut(self.o..self.o.checked_add(n).ok_or(Error::CorruptData)?).ok_or(Error::CorruptData)?;
        dst.copy_from_slice(src);
        self.c += n;
        self.o += n;
        Ok(())
    }
}

/// The inverse of `split` (with the same `columns`): the extra bytes, into `out` (exactly their
/// size). Every stream must be used up and `out` filled exactly [CORRUPT_DATA].
pub fn join(sp: &Split, columns: bool, out: &mut [u8]) -> Result<()> {
    let mut j =
        Joiner { columns, skeleton: &sp.skeleton, lengths: &sp.lengths, chars: &sp.chars, out, s: 0, l: 0, c: 0, o: 0 };
    if sp.skeleton.get(..4) != Some(b"GGUF") {
        return Err(Error::CorruptData);
    }
    j.copy(4)?;
    if !matches!(j.u32()?, 2 | 3) {
        return Err(Error::CorruptData);
    }
    j.u64()?; // tensor count
    let n_kv = j.u64()?;
    // Every key/value takes at least 12 bytes of the skeleton, so a hostile count ends at its end.
    for _ in 0..n_kv {
        j.string()?;
        match j.u32()? {
            STRING => j.string()?,
            ARRAY => {
                let et = j.u32()?;
                let n = j.u64()?;
                if et == STRING {
                    // Each element takes at least one byte of the lengths stream.
                    if n > (j.lengths.len() - j.l) as u64 {
                        return Err(Error::CorruptData);
                    }
                    for _ in 0..n {
                        j.element()?;
                    }
                } else {
                    j.numbers(n, scalar_size(et).ok_or(Error::CorruptData)?)?;
                }
            }
            t => j.copy(scalar_size(t).ok_or(Error::CorruptData)? as u64)?,
        }
    }
    j.copy((j.skeleton.len() - j.s) as u64)?;
    if j.l != j.lengths.len() || j.c != j.chars.len() || j.o != j.out.len() {
        return Err(Error::CorruptData);
    }
    Ok(())
}

/// The extra frame of method 2 (`columns`) or 1 for `raw`, or None when `split` gives up or a
/// stream would break the frames' expansion rule (a reader refuses those).
pub fn encode(raw: &[u8], columns: bool) -> Result<Option<Vec<u8>>> {
    let Some(sp) = split(raw, columns) else { return Ok(None) };
    // Method 1's skeleton held the numeric arrays as they are, which level 19 coded far better.
    let skeleton_level = if columns { SKELETON_LEVEL } else { 19 };
    let streams = [(&sp.skeleton, skeleton_level), (&sp.lengths, LENGTHS_LEVEL), (&sp.chars, CHARS_LEVEL)];
    let coded = streams.iter().map(|(s, level)| zstd::compress(s, *level, 1)).collect::<Result<Vec<_>>>()?;
    if streams.iter().zip(&coded).any(|((s, _), z)| !within_expansion(s.len() as u64, z.len() as u64)) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(HEAD + coded.iter().map(Vec::len).sum::<usize>());
    for (s, _) in &streams {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    }
    for z in &coded {
        out.extend_from_slice(&(z.len() as u64).to_le_bytes());
    }
    for z in &coded {
        out.extend_from_slice(z);
    }
    Ok(Some(out))
}

fn within_expansion(raw: u64, coded: u64) -> bool {
    raw <= (coded + 1).saturating_mul(crate::frame::MAX_EXPANSION)
}

/// Decodes an extra frame of method 2 (`columns`) or 1 into `out` (its `raw_size` bytes). Stream sizes are
/// checked before anything is allocated: the skeleton and characters together at most `out`'s
/// size, the lengths at most twice it (a varint takes at most ten bytes for a length that takes
/// eight), and each within the frames' expansion rule [CORRUPT_DATA].
pub fn decode(z: &[u8], columns: bool, out: &mut [u8]) -> Result<()> {
    let bad = || Error::CorruptData;
    let size = |i: usize| u64_at(z, 8 * i).ok_or_else(bad);
    let (raw, coded) = ([size(0)?, size(1)?, size(2)?], [size(3)?, size(4)?, size(5)?]);
    let total = out.len() as u64;
    let coded_sum = coded.iter().try_fold(HEAD as u64, |a, &c| a.checked_add(c)).ok_or_else(bad)?;
    if coded_sum != z.len() as u64
        || raw[0].checked_add(raw[2]).is_none_or(|n| n > total)
        || raw[1] > total.saturating_mul(2)
        || raw.iter().zip(&coded).any(|(&r, &c)| !within_expansion(r, c))
    {
        return Err(bad());
    }
    let mut at = HEAD;
    let mut streams = Vec::with_capacity(3);
    for (&r, &c) in raw.iter().zip(&coded) {
        let mut v = crate::memory::alloc_zeroed(r)?;
        zstd::decompress_into(&z[at..at + c as usize], &mut v).map_err(|_| bad())?;
        at += c as usize;
        streams.push(v);
    }
    let chars = streams.pop().unwrap_or_default();
    let lengths = streams.pop().unwrap_or_default();
    let skeleton = streams.pop().unwrap_or_default();
    join(&Split { skeleton, lengths, chars }, columns, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF header with every value type, a string array and an array of u32, then
    /// tensor-info-like bytes and padding.
    fn sample() -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&8u64.to_le_bytes());
        let key = |b: &mut Vec<u8>, k: &str, t: u32| {
            b.extend_from_slice(&(k.len() as u64).to_le_bytes());
            b.extend_from_slice(k.as_bytes());
            b.extend_from_slice(&t.to_le_bytes());
        };
        key(&mut b, "general.name", STRING);
        b.extend_from_slice(&5u64.to_le_bytes());
        b.extend_from_slice(b"model");
        key(&mut b, "tokens", ARRAY);
        b.extend_from_slice(&STRING.to_le_bytes());
        let tokens: [&[u8]; 4] = [b"a", b"", b"hello world", &[0xC4; 200]];
        b.extend_from_slice(&(tokens.len() as u64).to_le_bytes());
        for t in tokens {
            b.extend_from_slice(&(t.len() as u64).to_le_bytes());
            b.extend_from_slice(t);
        }
        key(&mut b, "types", ARRAY);
        b.extend_from_slice(&5u32.to_le_bytes());
        b.extend_from_slice(&3u64.to_le_bytes());
        for v in [1i32, 1, 3] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        // Numeric arrays of every element size: bytes, u16, a falling f32 score, u64.
        key(&mut b, "flags", ARRAY);
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&5u64.to_le_bytes());
        b.extend_from_slice(&[1, 0, 255, 3, 1]);
        key(&mut b, "ids", ARRAY);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&3u64.to_le_bytes());
        for v in [65535u16, 0, 7] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        key(&mut b, "scores", ARRAY);
        b.extend_from_slice(&6u32.to_le_bytes());
        b.extend_from_slice(&6u64.to_le_bytes());
        for v in [-1000.0f32, -1000.0, 0.0, -1.0, -2.0, -3.0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        key(&mut b, "offsets", ARRAY);
        b.extend_from_slice(&10u32.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        for v in [u64::MAX, 5] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        key(&mut b, "eps", 6);
        b.extend_from_slice(&1e-6f32.to_le_bytes());
        b.extend_from_slice(&[7u8; 37]);
        b
    }

    #[test]
    fn split_and_join_restore_the_bytes() {
        let raw = sample();
        for columns in [false, true] {
            let sp = split(&raw, columns).unwrap();
            assert_eq!(sp.chars.len(), 1 + 11 + 200);
            assert_eq!(sp.lengths, vec![1, 0, 11, 200 & 0x7F | 0x80, 1]);
            assert_eq!(sp.skeleton.len() + sp.chars.len() + 4 * 8, raw.len(), "columns take the bytes they hold");
            let mut out = vec![0u8; raw.len()];
            join(&sp, columns, &mut out).unwrap();
            assert!(out == raw, "columns {columns}");
            let z = encode(&raw, columns).unwrap().unwrap();
            let mut out = vec![0u8; raw.len()];
            decode(&z, columns, &mut out).unwrap();
            assert!(out == raw, "columns {columns}");
            // A frame read as the other method does not give the bytes back.
            let mut other = vec![0u8; raw.len()];
            assert!(decode(&z, !columns, &mut other).is_err() || other != raw);
        }
    }

    /// Columns: the differences of the elements, byte planes apart; one-byte arrays as they are.
    #[test]
    fn numeric_arrays_are_columns() {
        let mut c = Vec::new();
        let scores: Vec<u8> = [-1.0f32, -2.0, -3.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        put_columns(&mut c, &scores, 4);
        let d1 = (-2.0f32).to_bits().wrapping_sub((-1.0f32).to_bits()).to_le_bytes();
        let d2 = (-3.0f32).to_bits().wrapping_sub((-2.0f32).to_bits()).to_le_bytes();
        let first = (-1.0f32).to_bits().to_le_bytes();
        let want: Vec<u8> = (0..4).flat_map(|k| [first[k], d1[k], d2[k]]).collect();
        assert_eq!(c, want);
        let mut back = vec![0u8; scores.len()];
        get_columns(&c, 4, &mut back);
        assert_eq!(back, scores);
        let raw = sample();
        let (plain, cols) = (split(&raw, false).unwrap(), split(&raw, true).unwrap());
        let flags = [1u8, 0, 255, 3, 1];
        let at = |s: &[u8]| s.windows(5).position(|w| w == flags);
        assert!(at(&plain.skeleton).is_some() && at(&cols.skeleton).is_some(), "one-byte arrays stay as they are");
        assert!(plain.skeleton != cols.skeleton);
    }

    #[test]
    fn what_split_does_not_know_is_left_to_zstd() {
        let raw = sample();
        let mut v1 = raw.clone();
        v1[4] = 1;
        for columns in [false, true] {
            assert!(split(&v1, columns).is_none(), "version 1");
            assert!(split(&raw[..100], columns).is_none(), "cut inside the key/values");
            let mut nested = raw.clone();
            // The u32 array's element type made an array.
            let at = raw.windows(5).position(|w| w == b"types").unwrap() + 5 + 4;
            nested[at..at + 4].copy_from_slice(&ARRAY.to_le_bytes());
            assert!(split(&nested, columns).is_none(), "array of arrays");
            assert!(split(b"not gguf at all, but long enough to hold a header", columns).is_none());
            // Cut inside a numeric array's elements.
            let end = raw.windows(7).position(|w| w == b"offsets").unwrap() + 7 + 12 + 4;
            assert!(split(&raw[..end], columns).is_none(), "cut inside a numeric array");
        }
    }

    /// Damage to any stream or size is an error, never a panic, an out-of-bounds access or an
    /// allocation beyond the output's size.
    #[test]
    fn damaged_frames_are_corrupt_data() {
        let raw = sample();
        for columns in [false, true] {
            let z = encode(&raw, columns).unwrap().unwrap();
            let mut out = vec![0u8; raw.len()];
            for i in 0..z.len() {
                for flip in [1u8, 0x80, 0xFF] {
                    let mut d = z.clone();
                    d[i] ^= flip;
                    let r = decode(&d, columns, &mut out);
                    // Every size is checked; damage inside a stream may decode to other bytes of
                    // the right sizes, which the archive's SHA-256 of the extra bytes catches.
                    assert!(i >= HEAD || r.is_err(), "size byte {i} ^ {flip:#x} was accepted");
                }
            }
            for n in [0, 10, HEAD, z.len() - 1] {
                assert!(decode(&z[..n], columns, &mut out).is_err(), "cut at {n}");
            }
            let mut short = vec![0u8; raw.len() - 1];
            assert!(decode(&z, columns, &mut short).is_err());
            let mut long = vec![0u8; raw.len() + 1];
            assert!(decode(&z, columns, &mut long).is_err());
            // Lengths that claim more characters than there are, or a varint too long for a u64.
            let mut sp = split(&raw, columns).unwrap();
            sp.lengths[2] = 100;
            assert!(join(&sp, columns, &mut out).is_err());
            sp.lengths = vec![0xFF; 10];
            assert!(join(&sp, columns, &mut out).is_err());
            // A skeleton cut anywhere.
            let sp = split(&raw, columns).unwrap();
            for cut in 0..sp.skeleton.len() {
                let short = Split {
                    skeleton: sp.skeleton[..cut].to_vec(),
                    lengths: sp.lengths.clone(),
                    chars: sp.chars.clone(),
                };
                assert!(join(&short, columns, &mut out).is_err(), "skeleton cut at {cut}");
            }
        }
    }
}
