//! Encoding a stream whose symbols come from several tables: each symbol is given as an index
//! into the tables laid end to end (`offset of its table + symbol`), so the encoder needs no
//! per-symbol table choice, and a whole group of `LANES` symbols can take the vector step
//! (`encode_x86`) where the CPU has one. The block codecs build the index array of a chunk in one
//! pass and encode it here; the bytes are those of `RansEncoder::put` symbol by symbol.

use super::rans::{EncSymbol, EncTable, RansEncoder, LANES};
#[cfg(target_arch = "x86_64")]
use crate::cpu::Level;
use crate::error::{Error, Result};

thread_local! {
    /// An index array for the next chunk this thread codes (see `with_index_buffer`).
    static SPARE_INDEX: std::cell::Cell<Vec<u32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Runs `f` with the index array this thread used last (any length, stale contents: take a
/// slice with `index_slice`): a chunk's indices are megabytes, and fresh pages for each chunk
/// cost page faults, zeroing them again a pass over memory.
pub fn with_index_buffer<R>(f: impl FnOnce(&mut Vec<u32>) -> R) -> R {
    let mut v = SPARE_INDEX.try_with(|s| s.take()).unwrap_or_default();
    let r = f(&mut v);
    let _ = SPARE_INDEX.try_with(|s| s.set(v));
    r
}

/// The first `n` entries of `buf`, grown (zeroed) only if it is shorter: the caller writes all
/// of them.
pub fn index_slice(buf: &mut Vec<u32>, n: usize) -> &mut [u32] {
    if buf.len() < n {
        buf.resize(n, 0);
    }
    &mut buf[..n]
}

/// Several tables of one scale, laid end to end.
pub struct Flat {
    syms: Vec<EncSymbol>,
    scale: u32,
    /// The vector step's form of the same tables, and the kernel level it runs at.
    #[cfg(target_arch = "x86_64")]
    vector: Option<(super::encode_x86::VecEncTable, Level)>,
}

impl Flat {
    /// The tables `ts` (all of one scale) end to end; `offsets()` gives where each starts.
    pub fn new(ts: &[EncTable]) -> Flat {
        let scale = ts.first().map_or(12, |t| t.scale);
        debug_assert!(ts.iter().all(|t| t.scale == scale));
        let syms: Vec<EncSymbol> = ts.iter().flat_map(|t| t.syms.iter().copied()).collect();
        Flat {
            #[cfg(target_arch = "x86_64")]
            vector: super::encode_x86::VecEncTable::for_cpu(&syms, scale),
            syms,
            scale,
        }
    }

    /// Where each of the tables `new` was given starts.
    pub fn offsets(ts: &[EncTable]) -> Vec<u32> {
        ts.iter()
            .scan(0u32, |at, t| {
                let o = *at;
                *at += t.syms.len() as u32;
                Some(o)
            })
            .collect()
    }

    /// Appends the rANS stream of the symbols `idx` (indices into the tables end to end, each
    /// below their total size) to `out`. A symbol of frequency 0 is an error: the tables were not
    /// built from this data.
    pub fn encode(&self, idx: &[u32], out: &mut Vec<u8>) -> Result<()> {
        self.encode_with_payload(idx, [0; LANES], out)
    }

    /// `encode` with lane payloads (see `RansEncoder::with_payload`).
    pub fn encode_with_payload(&self, idx: &[u32], payload: [u16; LANES], out: &mut Vec<u8>) -> Result<()> {
        let mut e = RansEncoder::with_payload(idx.len(), payload);
        self.put_range(&mut e, idx, 0)?;
        e.finish(out);
        Ok(())
    }

    /// Appends the rANS stream of `n` symbols to `out`, their indices made a window at a time
    /// by `fill(start, w)`, which writes the indices of symbols `start..start + w.len()` into
    /// `w`; `window` (a multiple of `LANES`) is the most symbols a window holds. The same bytes
    /// as `encode` of the whole index array, which for a chunk of megabytes is several times
    /// the cache: here the indices are made and coded while they are in it. Windows are filled
    /// last to first, the order rANS codes in.
    pub fn encode_windows(
        &self,
        n: usize,
        window: usize,
        out: &mut Vec<u8>,
        mut fill: impl FnMut(usize, &mut [u32]) -> Result<()>,
    ) -> Result<()> {
        debug_assert!(window > 0 && window.is_multiple_of(LANES));
        let mut e = RansEncoder::new(n);
        with_window_buffer(window, |w| -> Result<()> {
            for start in (0..n.div_ceil(window)).rev().map(|k| k * window) {
                let w = &mut w[..window.min(n - start)];
                fill(start, w)?;
                self.put_range(&mut e, w, start)?;
            }
            Ok(())
        })?;
        e.finish(out);
        Ok(())
    }

    /// `encode_windows` for two streams of `n` symbols each, `fill(s, start, w)` making the
    /// indices of stream `s`: their groups are coded in turn (`put_groups_pair_avx512`), so
    /// that two chains of the vector step are in flight. Stream `s` is appended to `out[s]`, the
    /// bytes `encode_windows` gives it.
    pub fn encode_windows_pair(
        &self,
        n: usize,
        window: usize,
        out: [&mut Vec<u8>; 2],
        mut fill: impl FnMut(usize, usize, &mut [u32]) -> Result<()>,
    ) -> Result<()> {
        debug_assert!(window > 0 && window.is_multiple_of(LANES));
        let mut e = [RansEncoder::new(n), RansEncoder::new(n)];
        with_window_buffer(2 * window, |buf| -> Result<()> {
            let (wa, wb) = buf.split_at_mut(window);
            for start in (0..n.div_ceil(window)).rev().map(|k| k * window) {
                let len = window.min(n - start);
                fill(0, start, &mut wa[..len])?;
                fill(1, start, &mut wb[..len])?;
                self.put_range_pair(&mut e, [&wa[..len], &wb[..len]])?;
            }
            Ok(())
        })?;
        let [ea, eb] = e;
        let [oa, ob] = out;
        ea.finish(oa);
        eb.finish(ob);
        Ok(())
    }

    /// Codes the symbols `idx`, which are symbols `start..start + idx.len()` of the stream
    /// (`start` a multiple of `LANES`), last to first: those past the last whole group, then
    /// each group.
    fn put_range(&self, e: &mut RansEncoder, idx: &[u32], start: usize) -> Result<()> {
        debug_assert!(start.is_multiple_of(LANES));
        let full = idx.len() / LANES;
        self.put_scalar(e, idx, full * LANES..idx.len())?;
        self.put_groups(e, idx, full)
    }

    /// `put_range` for two streams' windows of one length and start, their groups coded in turn
    /// while both have groups left and neither escapes.
    fn put_range_pair(&self, e: &mut [RansEncoder; 2], idx: [&[u32]; 2]) -> Result<()> {
        debug_assert_eq!(idx[0].len(), idx[1].len());
        let full = idx[0].len() / LANES;
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut left = [full; 2];
        for (e, idx) in e.iter_mut().zip(idx) {
            self.put_scalar(e, idx, full * LANES..idx.len())?;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some((v, level)) = &self.vector {
            while left[0] > 0 && left[1] > 0 {
                let [ea, eb] = e;
                let groups = [&idx[0][..left[0] * LANES], &idx[1][..left[1] * LANES]];
                // SAFETY: as in `put_groups`.
                let stop = unsafe {
                    match level {
                        Level::Avx512 => super::encode_x86::put_indices_pair_avx512([ea, eb], v, groups),
                        _ => super::encode_x86::put_indices_pair_avx2([ea, eb], v, groups),
                    }
                };
                left = stop.left;
                for s in 0..2 {
                    if stop.escaped[s] {
                        left[s] -= 1;
                        self.put_scalar(&mut e[s], idx[s], left[s] * LANES..(left[s] + 1) * LANES)?;
                    }
                }
            }
        }
        for ((e, idx), left) in e.iter_mut().zip(idx).zip(left) {
            self.put_groups(e, idx, left)?;
        }
        Ok(())
    }

    /// Codes the first `groups` whole groups of `idx` (which starts at a multiple of `LANES` in
    /// its stream), last to first.
    fn put_groups(&self, e: &mut RansEncoder, idx: &[u32], groups: usize) -> Result<()> {
        #[cfg(target_arch = "x86_64")]
        if let Some((v, level)) = &self.vector {
            let mut left = groups;
            while left > 0 {
                let groups = &idx[..left * LANES];
                // SAFETY: `level` is what the CPU has, at least AVX2 (`new`); the step checks the
                // indices against its table; the encoder keeps a group's room of slack.
                left = unsafe {
                    match level {
                        Level::Avx512 => super::encode_x86::put_indices_avx512(e, v, groups),
                        _ => super::encode_x86::put_indices_avx2(e, v, groups),
                    }
                };
                if left > 0 {
                    // Group left - 1 escaped: the scalar step codes it (or reports the error).
                    left -= 1;
                    self.put_scalar(e, idx, left * LANES..(left + 1) * LANES)?;
                }
            }
            return Ok(());
        }
        for g in (0..groups).rev() {
            self.put_scalar(e, idx, g * LANES..(g + 1) * LANES)?;
        }
        Ok(())
    }

    /// The scalar step for `idx[range]`; lanes follow the position in the stream (`idx` starts
    /// at a multiple of `LANES`).
    fn put_scalar(&self, e: &mut RansEncoder, idx: &[u32], range: std::ops::Range<usize>) -> Result<()> {
        for i in range.rev() {
            self.put_symbol(e, i % LANES, idx[i])?;
        }
        Ok(())
    }

    /// The scalar step for one symbol, index `idx`, in `lane`. A symbol outside the tables or of
    /// frequency 0 is an error: the tables were not built from this data.
    #[inline]
    pub fn put_symbol(&self, e: &mut RansEncoder, lane: usize, idx: u32) -> Result<()> {
        let s = *self.syms.get(idx as usize).ok_or(Error::InvalidArgument)?;
        if s.freq == 0 {
            return Err(Error::InvalidArgument);
        }
        e.put(lane, s, self.scale);
        Ok(())
    }

    /// The vector step's form of the tables and its kernel level, where the CPU has one (for
    /// codecs that make a group's indices in registers and call `encode_x86` themselves).
    #[cfg(target_arch = "x86_64")]
    pub fn vector(&self) -> Option<&(super::encode_x86::VecEncTable, Level)> {
        self.vector.as_ref()
    }
}

thread_local! {
    /// The window `encode_windows` fills, kept per thread.
    static SPARE_WINDOW: std::cell::Cell<Vec<u32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Runs `f` with this thread's window buffer, at least `n` entries long.
fn with_window_buffer<R>(n: usize, f: impl FnOnce(&mut [u32]) -> R) -> R {
    let mut v = SPARE_WINDOW.try_with(|s| s.take()).unwrap_or_default();
    if v.len() < n {
        v.resize(n, 0);
    }
    let r = f(&mut v);
    let _ = SPARE_WINDOW.try_with(|s| s.set(v));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::table::FreqTable;
    use crate::test_rng::Lcg;

    /// The vector step (where the CPU has one) writes the scalar step's bytes: tables of
    /// different alphabets and skews at every scale the block codecs use, streams of every
    /// length modulo a group.
    #[test]
    fn vector_and_scalar_steps_write_the_same_stream() {
        let mut r = Lcg::new(7);
        for scale in [10, 12] {
            let counts: Vec<Vec<u64>> = [256usize, 16, 64]
                .iter()
                .map(|&n| (0..n).map(|k| if k % 5 == 3 { 0 } else { 1 + r.below(1 << (k % 17)) }).collect())
                .collect();
            let tables: Vec<EncTable> =
                counts.iter().map(|c| EncTable::new(&FreqTable::from_counts(c, scale).unwrap())).collect();
            let flat = Flat::new(&tables);
            #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
            let mut scalar = Flat::new(&tables);
            #[cfg(target_arch = "x86_64")]
            {
                scalar.vector = None;
            }
            let offsets = Flat::offsets(&tables);
            // `n` random symbols the tables code (frequency > 0), as indices.
            let mut coded = |n: usize| -> Vec<u32> {
                (0..n)
                    .map(|_| loop {
                        let t = r.below_usize(3);
                        let s = r.below_usize(counts[t].len());
                        if counts[t][s] > 0 {
                            break offsets[t] + s as u32;
                        }
                    })
                    .collect()
            };
            for n in [0, 1, 31, 32, 33, 1000, 4096 + 17] {
                let idx = coded(n);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                flat.encode(&idx, &mut a).unwrap();
                scalar.encode(&idx, &mut b).unwrap();
                assert!(a == b, "scale {scale}, {n} symbols: the streams differ");
            }
            // Made a window at a time: the same stream, for windows of one group up to more
            // than the whole stream.
            let idx = coded(5000);
            let mut whole = Vec::new();
            flat.encode(&idx, &mut whole).unwrap();
            for window in [LANES, 3 * LANES, 1024, 8192] {
                for f in [&flat, &scalar] {
                    let mut w = Vec::new();
                    f.encode_windows(idx.len(), window, &mut w, |start, o| {
                        o.copy_from_slice(&idx[start..start + o.len()]);
                        Ok(())
                    })
                    .unwrap();
                    assert!(w == whole, "scale {scale}, windows of {window}: the streams differ");
                }
            }
            // Two streams coded in turn: each gets the stream it gets alone, for windows of one
            // group up to more than the whole stream, with and without the vector step.
            let other = coded(5000);
            let mut alone = Vec::new();
            flat.encode(&other, &mut alone).unwrap();
            for window in [LANES, 3 * LANES, 1024, 8192] {
                for f in [&flat, &scalar] {
                    let (mut a, mut b) = (vec![7u8], Vec::new());
                    f.encode_windows_pair(idx.len(), window, [&mut a, &mut b], |k, start, o| {
                        o.copy_from_slice(&[&idx, &other][k][start..start + o.len()]);
                        Ok(())
                    })
                    .unwrap();
                    assert!(a[1..] == whole[..] && b == alone, "scale {scale}, pairs in windows of {window}: the streams differ");
                    // A symbol the tables do not code, in either stream, early or late in it.
                    for (k, at) in [(0, 40), (1, 40), (1, 4990), (0, 2000)] {
                        let mut bad = [idx.clone(), other.clone()];
                        bad[k][at] = offsets[0] + 3;
                        let r = f.encode_windows_pair(5000, window, [&mut Vec::new(), &mut Vec::new()], |s, start, o| {
                            o.copy_from_slice(&bad[s][start..start + o.len()]);
                            Ok(())
                        });
                        assert!(r.is_err(), "scale {scale}, stream {k}, symbol {at}");
                    }
                }
            }
            // A symbol the tables do not code is an error on either path.
            let bad = vec![offsets[0] + 3; 64];
            assert!(flat.encode(&bad, &mut Vec::new()).is_err());
            assert!(scalar.encode(&bad, &mut Vec::new()).is_err());
            // So is an index past the tables, in a whole group (the vector step's check) or not.
            for n in [64, 65] {
                let mut past = vec![offsets[2]; n];
                past[n - 40] = u32::MAX;
                assert!(flat.encode(&past, &mut Vec::new()).is_err());
                assert!(scalar.encode(&past, &mut Vec::new()).is_err());
            }
        }
    }
}
