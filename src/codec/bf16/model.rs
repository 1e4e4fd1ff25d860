//! The bf16 coding model: frequency tables over the 12-bit symbols plus an escape, and the plan
//! that decides which chunks of a frame share a table.

use super::{Decoder, SCALE, SYMBOLS};
use crate::entropy::bits::{BitReader, BitWriter};
use crate::entropy::rans::EncTable;
use crate::entropy::table::{count_to_level, log2_int, FreqTable, MAX_LEVEL};
use crate::error::{Error, Result};

/// The escape symbol: stands for any symbol too rare to be worth a table entry; the symbol itself
/// follows in the chunk's escape list.
pub const ESC: usize = SYMBOLS;

/// Escape thresholds the encoder tries: symbols seen at most this often are escaped.
const ESC_THRESHOLDS: [u64; 10] = [0, 1, 2, 3, 4, 6, 8, 12, 16, 24];

/// Bits an escaped symbol costs in the escape list.
const ESC_BITS: f64 = 12.0;

/// The coding model of one frame: a frequency table over the 12-bit symbols plus `ESC`.
///
/// Why escapes: every symbol in a table needs a frequency of at least 1 in `1 << SCALE`. A tensor
/// has tens of symbols seen only a handful of times in a million, and giving each of them
/// 1/32768 takes probability from everything else: measured on MiniLM this costs 0.004 bit per
/// value. Escaping them costs a few bytes each instead, so the encoder picks the threshold that
/// minimises the total.
pub struct Model {
    pub table: FreqTable,
}

impl Model {
    #[cfg(any(test, feature = "internals"))]
    pub fn from_counts(counts: &[u64]) -> Result<Model> {
        Ok(Model::from_counts_costed(counts, SCALE)?.0)
    }

    /// `from_counts` at frequency precision `scale`, and the bits the model codes `counts` in:
    /// the symbols (escapes included) under its quantised frequencies, and the table as written.
    pub fn from_counts_costed(counts: &[u64], scale: u32) -> Result<(Model, f64)> {
        debug_assert_eq!(counts.len(), SYMBOLS);
        let mut best: Option<(f64, FreqTable, Vec<u64>)> = None;
        let mut worse = 0;
        // Bits of the data (escapes included) and of the table.
        let cost_of = |t: &FreqTable, merged: &[u64], esc: u64| {
            // The table's bytes as `write` would write them (padded to a byte).
            t.cost_bits(merged) + esc as f64 * ESC_BITS + 8.0 * t.written_bits().div_ceil(8) as f64
        };
        for &t in &ESC_THRESHOLDS {
            // The cost falls and then rises with the threshold: stop two steps past the best.
            if worse >= 2 {
                break;
            }
            let mut merged = Vec::with_capacity(SYMBOLS + 1);
            let mut esc = 0u64;
            for &c in counts {
                if c <= t {
                    esc += c;
                    merged.push(0);
                } else {
                    merged.push(c);
                }
            }
            merged.push(esc);
            let Ok(table) = FreqTable::from_counts(&merged, scale) else {
                continue;
            };
            let cost = cost_of(&table, &merged, esc);
            if best.as_ref().is_none_or(|(b, _, _)| cost < *b) {
                best = Some((cost, table, merged));
                worse = 0;
            } else {
                worse += 1;
            }
        }
        let (cost, table, merged) = best.ok_or(Error::InvalidArgument)?;
        // At the best threshold, levels that trade a little precision for cheaper deltas, if
        // that is smaller.
        let (mut table, mut cost) = (table, cost);
        let esc = merged[SYMBOLS];
        // (Also trying weights 0.002 and 0.0007 per step, and keeping the smallest, gained 196
        // bytes on all-MiniLM-L6-v2 as f16: not worth three times the time.)
        if let Ok(smooth) = FreqTable::from_levels(smooth_levels(&merged, 0.0054), scale) {
            let c = cost_of(&smooth, &merged, esc);
            if c < cost {
                (table, cost) = (smooth, c);
            }
        }
        Ok((Model { table }, cost))
    }

    pub fn encoder(&self) -> EncTable {
        EncTable::new(&self.table)
    }

    /// The decoding table, for kernels up to `level`.
    pub fn decoder(&self, level: crate::cpu::Level, split: super::Split) -> Decoder {
        Decoder::new(&self.table, level, split)
    }
}

/// Levels for `counts` that cost fewer bits to send than the nearest ones, for a little coding
/// precision: each present symbol's level lies within `REACH` steps of its nearest, chosen (by
/// dynamic programming over the symbols in order) to minimise the bits of the deltas between
/// consecutive levels (as `FreqTable::write` sends them) plus the coding loss of the errors,
/// about `LOSS * count * steps^2` bits each (a step changes a probability by 2^(1/8): the
/// relative entropy of that, to second order).
///
/// Why: a table's levels are a delta per present symbol; f16's 12-bit symbols use 1,500-1,800 of
/// them in a 384 x 384 matrix, and there the table cost more than the rare symbols' precision
/// is worth (all-MiniLM-L6-v2 as f16: 15 KB smaller with a greedy choice, more with this one).
fn smooth_levels(counts: &[u64], loss_per_step: f64) -> Vec<u32> {
    const REACH: i64 = 3;
    const W: usize = 2 * REACH as usize + 1;
    let seg = |d: i64| {
        let z = ((d << 1) ^ (d >> 63)) as u64;
        (2 * (63 - (z + 1).leading_zeros()) + 1) as f64
    };
    let present: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] > 0).collect();
    let near: Vec<i64> = present.iter().map(|&i| count_to_level(counts[i]) as i64).collect();
    let level = |j: usize, k: usize| (near[j] + k as i64 - REACH).clamp(1, MAX_LEVEL as i64);
    // cost[k]: the cheapest way to the current symbol at option k; from[j][k]: its predecessor.
    let mut cost = [0.0f64; W];
    let mut from: Vec<[u8; W]> = Vec::with_capacity(present.len());
    for (j, &i) in present.iter().enumerate() {
        let mut next = [f64::MAX; W];
        let mut back = [0u8; W];
        for (k, nk) in next.iter_mut().enumerate() {
            let l = level(j, k);
            let loss = loss_per_step * counts[i] as f64 * ((k as i64 - REACH) as f64).powi(2);
            if j == 0 {
                *nk = seg(l) + loss;
                continue;
            }
            for (p, &cp) in cost.iter().enumerate() {
                let c = cp + seg(l - level(j - 1, p)) + loss;
                if c < *nk {
                    *nk = c;
                    back[k] = p as u8;
                }
            }
        }
        cost = next;
        from.push(back);
    }
    let mut levels = vec![0u32; counts.len()];
    let mut k = (0..W).min_by(|&a, &b| cost[a].total_cmp(&cost[b])).unwrap_or(REACH as usize);
    for j in (0..present.len()).rev() {
        levels[present[j]] = level(j, k) as u32;
        k = from[j][k] as usize;
    }
    levels
}

/// Most tables one frame may hold (a chunk names its table in one byte).
pub const MAX_MODELS: usize = 256;

/// Decides which chunks share a table: returns the models, per chunk its model's index, and the
/// estimated size of the coded chunks and tables in bits (see `estimate_bits`).
///
/// Why more than one table per frame: weights are not stationary. Rows of an embedding matrix,
/// or the tensors of a file concatenated into one stream, have different scales, and a table fit
/// to each stretch codes it better than one fit to the average (measured on MiniLM: per-512-KiB
/// tables reach 1.5213 where one table per tensor reaches 1.5175, before table costs). A table
/// costs a couple of hundred bytes, so stretches are merged while merging saves bits: greedy
/// merging of adjacent runs of chunks, best saving first, on an estimate of the coded size.
#[cfg(any(test, feature = "internals"))]
pub fn plan(chunk_hists: &[Vec<u64>], threads: u32) -> Result<(Vec<Model>, Vec<u8>, f64)> {
    let d = plan_at_most(chunk_hists, MAX_MODELS, SCALE);
    let bits = d.bits;
    let (models, assign) = d.build(threads)?;
    Ok((models, assign, bits))
}

/// A plan before its tables are built: each run's histogram, each unit's run, the estimated
/// size in bits. The encoder estimates several plans and builds the tables of one.
pub struct Draft {
    hists: Vec<Vec<u64>>,
    assign: Vec<u8>,
    scale: u32,
    pub bits: f64,
}

impl Draft {
    /// Each unit's run (its table once built).
    pub fn assign(&self) -> &[u8] {
        &self.assign
    }

    /// The runs' tables (built in parallel: they are independent), and each unit's table.
    pub fn build(self, threads: u32) -> Result<(Vec<Model>, Vec<u8>)> {
        let (models, assign, _) = self.build_costed(threads)?;
        Ok((models, assign))
    }

    /// `build`, and the bits the tables code the runs in (`Model::from_counts_costed`): where
    /// `bits` estimates, this is exact but for the chunks' fixed overheads.
    pub fn build_costed(mut self, threads: u32) -> Result<(Vec<Model>, Vec<u8>, f64)> {
        let mut built: Vec<(Vec<u64>, Option<Model>, f64)> = self.hists.drain(..).map(|h| (h, None, 0.0)).collect();
        let scale = self.scale;
        crate::parallel::for_each_mut(&mut built, threads, |_, (hist, model, bits)| {
            let (m, b) = Model::from_counts_costed(hist, scale)?;
            (*model, *bits) = (Some(m), b);
            Ok(())
        })?;
        let bits = built.iter().map(|b| b.2).sum();
        let models = built.into_iter().map(|(_, m, _)| m.ok_or(Error::InvalidArgument)).collect::<Result<Vec<_>>>()?;
        Ok((models, self.assign, bits))
    }

    /// The mean number of symbols present in the runs' histograms.
    pub fn mean_present(&self) -> f64 {
        let present: usize = self.hists.iter().map(|h| h.iter().filter(|&&c| c > 0).count()).sum();
        present as f64 / self.hists.len().max(1) as f64
    }
}

/// `plan` with at most `max_tables` tables at frequency precision `scale`: runs are merged,
/// least costly first, past the point where merging stops saving bits until no more than that
/// many are left.
pub fn plan_at_most(chunk_hists: &[Vec<u64>], max_tables: usize, scale: u32) -> Draft {
    use std::collections::BinaryHeap;

    struct Run {
        end: usize, // exclusive chunk index
        hist: Vec<u64>,
        /// The histogram's total and the span of its present symbols (None: empty).
        n: u64,
        span: Option<(usize, usize)>,
        bits: f64,
        alive: bool,
    }
    let n = chunk_hists.len();
    let mut runs: Vec<Run> = chunk_hists
        .iter()
        .enumerate()
        .map(|(i, h)| Run { end: i + 1, hist: h.clone(), n: h.iter().sum(), span: span(h), bits: estimate_bits(h), alive: true })
        .collect();
    // Runs are identified by their first chunk; `next[i]` is the run after run i.
    let mut next: Vec<usize> = (1..=n).collect();
    let mut prev: Vec<Option<usize>> = (0..n).map(|i| i.checked_sub(1)).collect();
    let mut version = vec![0u32; n];
    // The span of two runs' merged histogram: counts add, so its present symbols are theirs.
    let joined = |a: &Run, b: &Run| match (a.span, b.span) {
        (Some((l0, h0)), Some((l1, h1))) => Some((l0.min(l1), h0.max(h1))),
        (s, None) | (None, s) => s,
    };
    // The estimate of two runs merged, without making their histogram: every candidate merge
    // is estimated and few are made (the same bits as `estimate_bits` of the sum).
    let merged_bits = |a: &Run, b: &Run| match joined(a, b) {
        Some((lo, hi)) => {
            estimate_span(a.n + b.n, a.hist[lo..=hi].iter().zip(&b.hist[lo..=hi]).map(|(x, y)| x + y))
        }
        None => 0.0,
    };
    // Heap entries: (saving in millibits, tie-break on position, left run, versions).
    let key = |saving: f64| (saving * 1000.0).round() as i64;
    let mut heap = BinaryHeap::new();
    for i in 0..n.saturating_sub(1) {
        let bits = merged_bits(&runs[i], &runs[i + 1]);
        heap.push((key(runs[i].bits + runs[i + 1].bits - bits), std::cmp::Reverse(i), 0u32, 0u32));
    }
    let mut count = n;
    while let Some((saving, std::cmp::Reverse(a), va, vb)) = heap.pop() {
        let b = next[a];
        if !runs[a].alive || b >= n || version[a] != va || version[b] != vb {
            continue; // stale entry
        }
        if saving <= 0 && count <= max_tables {
            break;
        }
        let bits = merged_bits(&runs[a], &runs[b]);
        let hist_b = std::mem::take(&mut runs[b].hist);
        let span = joined(&runs[a], &runs[b]);
        if let Some((lo, hi)) = span {
            for (x, y) in runs[a].hist[lo..=hi].iter_mut().zip(&hist_b[lo..=hi]) {
                *x += y;
            }
        }
        runs[a].n += runs[b].n;
        runs[a].span = span;
        runs[a].bits = bits;
        runs[a].end = runs[b].end;
        runs[b].alive = false;
        next[a] = next[b];
        if next[a] < n {
            prev[next[a]] = Some(a);
        }
        version[a] += 1;
        count -= 1;
        if let Some(p) = prev[a] {
            let bits = merged_bits(&runs[p], &runs[a]);
            heap.push((key(runs[p].bits + runs[a].bits - bits), std::cmp::Reverse(p), version[p], version[a]));
        }
        if next[a] < n {
            let c = next[a];
            let bits = merged_bits(&runs[a], &runs[c]);
            heap.push((key(runs[a].bits + runs[c].bits - bits), std::cmp::Reverse(a), version[a], version[c]));
        }
    }
    let mut assign = vec![0u8; n];
    let mut hists = Vec::new();
    let mut bits = 0.0;
    let mut i = 0;
    while i < n {
        bits += runs[i].bits;
        for a in &mut assign[i..runs[i].end] {
            *a = hists.len() as u8;
        }
        hists.push(std::mem::take(&mut runs[i].hist));
        i = runs[i].end;
    }
    Draft { hists, assign, scale, bits }
}

/// The first and last present symbols of `h` (None: none is).
fn span(h: &[u64]) -> Option<(usize, usize)> {
    Some((h.iter().position(|&c| c > 0)?, h.iter().rposition(|&c| c > 0)?))
}

/// Bits to code histogram `h` with a table of its own: order-0 entropy, the raw nibbles, and the
/// table's levels as `FreqTable::write` sends them (run lengths and level deltas, computed here
/// without writing them: the planner calls this for every candidate merge). An estimate for
/// planning only.
pub(super) fn estimate_bits(h: &[u64]) -> f64 {
    match span(h) {
        Some((lo, hi)) => estimate_span(h.iter().sum(), h[lo..=hi].iter().copied()),
        None => 0.0,
    }
}

/// `estimate_bits` of a histogram of total `n` whose counts from its first present symbol to its
/// last are `counts`.
#[inline(always)]
fn estimate_span(n: u64, counts: impl Iterator<Item = u64>) -> f64 {
    fn eg(x: u64) -> u32 {
        2 * (63 - (x + 1).leading_zeros()) + 1
    }
    fn seg(d: i64) -> u32 {
        eg(((d << 1) ^ (d >> 63)) as u64)
    }
    let nf = n as f64;
    let mut data = 0.0;
    let mut table = 3 + 13 + eg(0); // scale, first index, end mark
    let (mut prev, mut run, mut gap) = (0i64, 0u64, 0u64);
    for c in counts {
        if c == 0 {
            if run > 0 {
                table += eg(run - 1);
                run = 0;
            }
            gap += 1;
            continue;
        }
        if gap > 0 {
            table += eg(gap);
            gap = 0;
        }
        run += 1;
        // Sum of c log2(c); the data's bits are n log2(n) less it (below).
        data += c as f64 * log2_int(c);
        let l = count_to_level(c) as i64;
        table += seg(l - prev);
        prev = l;
    }
    table += eg(run - 1);
    nf * log2_int(n) - data + 4.0 * nf + table as f64
}

/// Serialises a frame's models: their count, then each table.
pub fn write_models(models: &[Model]) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.put_exp_golomb(models.len() as u32 - 1);
    for m in models {
        m.table.write(&mut w);
    }
    w.finish()
}

/// Parses what `write_models` wrote; every byte must be used.
pub fn read_models(bytes: &[u8]) -> Result<Vec<Model>> {
    read_models_at(bytes, SCALE)
}

/// `read_models` for tables of precision `scale`.
pub fn read_models_at(bytes: &[u8], scale: u32) -> Result<Vec<Model>> {
    let mut r = BitReader::new(bytes);
    let count = r.get_exp_golomb()? as usize + 1;
    if count > MAX_MODELS {
        return Err(Error::CorruptModel);
    }
    let mut models = Vec::with_capacity(count);
    for _ in 0..count {
        let table = FreqTable::read(&mut r, SYMBOLS + 1)?;
        if table.scale != scale {
            return Err(Error::CorruptModel);
        }
        models.push(Model { table });
    }
    if r.bytes_consumed() != bytes.len() || !r.padding_is_zero() {
        return Err(Error::CorruptModel);
    }
    Ok(models)
}
