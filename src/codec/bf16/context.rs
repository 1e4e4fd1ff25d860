//! bf16 and f16 matrices with each value in the context of its row's and its column's scale
//! (method 6, `Bf16Ctx`).
//!
//! Why: the rows (output channels) and columns (input channels) of a weight matrix have scales
//! of their own, so a value's magnitude is better predicted from its row and column than from
//! the tensor's histogram alone. Measured on all-MiniLM-L6-v2's bf16 matrices (order-0 entropy of
//! the 12-bit symbol, before table costs): one table per tensor 6.542 bits per value, one per
//! context as below 6.482; the word-embedding table gains most (rows are tokens).
//!
//! The model: every row gets a class in `0..CLASSES` and every column one (log2 of the RMS in
//! quarter octaves around the median; for columns, of the values divided by their row's RMS),
//! sent as side information, 4 bits each. A value's context is the sum of the two, its predicted
//! scale, and the encoder maps the `CONTEXTS` contexts to tables: neighbouring contexts share a
//! table where one of their own does not pay (`model::plan` over the contexts in order, the
//! planner that merges neighbouring chunks of the plain method). A value's table is known before
//! its symbol is decoded, so the vector kernels only add a table offset per lane; chunks keep the
//! plain method's layout (`bf16::encode_chunk`), with each value's symbol coded in its table.
//!
//! The encoder picks this method for a frame only when its estimate (symbols, tables and side
//! information) is below the plain method's.

use super::squares;
use super::model::{plan_at_most, read_models_at, write_models, Draft, Model};
use super::{Pending, RowSums, Split, Stretches, ESC, SYMBOLS};
use crate::codec::Kind;
use crate::entropy::bits::{BitReader, BitWriter};
use crate::entropy::indexed::Flat;
use crate::entropy::rans::{EncTable, RansEncoder, LANES};
#[cfg(target_arch = "x86_64")]
use crate::cpu::Level;
use crate::error::{Error, Result};
use crate::parallel;

/// Classes of rows and of columns (4 bits of side information each).
pub const CLASSES: usize = 16;
/// Contexts: a row class plus a column class.
pub const CONTEXTS: usize = 2 * CLASSES - 1;
/// Largest row length the method takes (the decoder's lookup table is `CLASSES` bytes per
/// column).
pub const MAX_COLS: usize = 1 << 17;
/// Most rows (their classes must fit in a model section).
pub const MAX_ROWS: usize = 1 << 21;
/// Frequency precision of the method's tables. Lower than the plain method's `SCALE`: a frame has
/// several tables, and the decoder builds all of them and gathers from all of them (a 14-bit
/// table is 128 KiB). Measured on all-MiniLM-L6-v2 (decoding to /dev/null on one thread, medians
/// of 11, against 36-38 ms for its plain frames): up to 16 tables at 14 bits 1.5237, 24% slower;
/// at 13 bits 1.5234, 13% slower; at 12 bits 1.5224, 11% slower.
pub const CTX_SCALE: u32 = 13;
/// Most tables a frame of this method has; a frame of `n` values has at most `n / 2^17` (and two):
/// building a table costs as much as decoding tens of thousands of values, and the 384 x 384
/// matrices of MiniLM decoded 16% slower with six tables (its 30522 x 384 embedding not slower).
const MAX_TABLES: usize = 8;
/// The flag of an escaped symbol in `CtxPlan::index`.
const ESCAPED: u32 = 1 << 31;
/// Class steps per octave.
const STEPS: f64 = 4.0;
/// The frame header's flag (`flags`, bytes 28..32) of a method 6 frame whose model section
/// holds a sign flip per column (`Layout::col_sign`).
pub const COLUMN_SIGNS: u32 = 4;
/// How much the columns' sign entropy must be below one bit, on average and beyond the bias of
/// estimating it from the sampled rows, for the encoder to try the flips (`column_signs`).
const SIGN_GAIN_MIN: f64 = 0.002;

/// Where a frame's values sit in their matrix, and which table each row and column takes.
#[derive(Clone)]
pub struct Layout {
    pub rows: usize,
    /// Values per row: a multiple of `LANES`, so that the vector kernels' groups never straddle
    /// two rows.
    pub cols: usize,
    pub row_class: Vec<u8>,
    pub col_class: Vec<u8>,
    /// Table of each context.
    pub assign: [u8; CONTEXTS],
    /// Per column, what its values' bits are XORed with (0, or 0x8000: the sign flipped); empty
    /// when no column is (the frame has no `COLUMN_SIGNS` flag).
    pub col_sign: Vec<u16>,
}

/// The table of every value, as the coders look it up: `tab[c * cols + j]` is the table of
/// column `j` in a row of class `c`.
pub struct Lut {
    pub rows: usize,
    pub cols: usize,
    pub row_class: Vec<u8>,
    pub tab: Vec<u8>,
    /// `Layout::col_sign` as the bytes of the values' XOR masks (little-endian, two per column;
    /// all zero when no column is flipped): the vector kernels XOR a group's outputs with the
    /// group's `2 * LANES` bytes of them.
    pub sign_bytes: Vec<u8>,
    /// Whether any column is flipped.
    pub flips: bool,
}

impl Layout {
    pub fn lut(&self) -> Lut {
        let mut tab = vec![0u8; CLASSES * self.cols];
        for (c, row) in tab.chunks_exact_mut(self.cols).enumerate() {
            for (t, &cc) in row.iter_mut().zip(&self.col_class) {
                *t = self.assign[c + cc as usize];
            }
        }
        let sign_bytes = match self.col_sign.is_empty() {
            true => vec![0; 2 * self.cols],
            false => self.col_sign.iter().flat_map(|m| m.to_le_bytes()).collect(),
        };
        let flips = !self.col_sign.is_empty();
        Lut { rows: self.rows, cols: self.cols, row_class: self.row_class.clone(), tab, sign_bytes, flips }
    }

    /// The frame header's flags this layout needs beyond the split's.
    pub fn flags(&self) -> u32 {
        if self.col_sign.is_empty() {
            0
        } else {
            COLUMN_SIGNS
        }
    }
}

/// Flips the signs of the columns that `sign_bytes` (`Lut::sign_bytes`) flips in
/// `bytes`, 16-bit values whose first is value `first` of rows of `cols`: the encoder's
/// transform of its input, and the decoder's of its output (a flip undoes itself).
pub fn flip_columns(first: usize, cols: usize, sign_bytes: &[u8], bytes: &mut [u8]) {
    let mut j = first % cols;
    let mut rest = bytes;
    while !rest.is_empty() {
        let take = (2 * (cols - j)).min(rest.len());
        let (line, tail) = rest.split_at_mut(take);
        for (b, &m) in line.iter_mut().zip(&sign_bytes[2 * j..]) {
            *b ^= m;
        }
        rest = tail;
        j = 0;
    }
}

impl Lut {
    /// What value `v` of the frame (below `rows * cols`) is XORed with: its column's sign flip.
    #[inline]
    pub fn sign_of(&self, v: usize) -> u16 {
        let j = v % self.cols;
        u16::from_le_bytes([self.sign_bytes[2 * j], self.sign_bytes[2 * j + 1]])
    }

    /// The table of value `v` of the frame (below `rows * cols`).
    #[inline]
    pub fn table_of(&self, v: usize) -> usize {
        let (r, j) = (v / self.cols, v % self.cols);
        self.tab[self.row_class[r] as usize * self.cols + j] as usize
    }

    /// The tables of the `LANES` values from value `v` on (all below `rows * cols`): one lookup
    /// row when they lie in one row, value by value otherwise.
    pub fn group_tables(&self, v: usize, out: &mut [u8; LANES]) {
        let (r, j) = (v / self.cols, v % self.cols);
        if j + LANES <= self.cols {
            let at = self.row_class[r] as usize * self.cols + j;
            out.copy_from_slice(&self.tab[at..at + LANES]);
        } else {
            for (k, t) in out.iter_mut().enumerate() {
                *t = self.table_of(v + k) as u8;
            }
        }
    }

    /// The lookup row of the `LANES` values from value `v` on (`v` a multiple of `LANES`).
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub fn lanes_at(&self, v: usize) -> *const u8 {
        let (r, j) = (v / self.cols, v % self.cols);
        // SAFETY of the callers' reads: j + LANES <= cols (cols and v multiples of LANES).
        self.tab[self.row_class[r] as usize * self.cols + j..].as_ptr()
    }
}

/// Serialises the layout, then the tables (as `write_models`).
pub fn write(l: &Layout, models: &[Model]) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.put_exp_golomb((l.cols / LANES - 1) as u32);
    w.put_exp_golomb((l.rows - 1) as u32);
    for &a in &l.assign {
        w.put_exp_golomb(a as u32);
    }
    put_classes(&mut w, &l.row_class);
    put_classes(&mut w, &l.col_class);
    for &m in &l.col_sign {
        w.put((m >> 15) as u32, 1);
    }
    let mut out = w.finish();
    out.extend_from_slice(&write_models(models));
    out
}

/// Parses what `write` wrote, as hostile input; `flags` are the frame header's.
pub fn read(bytes: &[u8], flags: u32) -> Result<(Layout, Vec<Model>)> {
    let mut r = BitReader::new(bytes);
    let cols = (r.get_exp_golomb()? as usize + 1) * LANES;
    let rows = r.get_exp_golomb()? as usize + 1;
    if cols > MAX_COLS || !(2..=MAX_ROWS).contains(&rows) {
        return Err(Error::CorruptModel);
    }
    let mut assign = [0u8; CONTEXTS];
    for a in &mut assign {
        *a = u8::try_from(r.get_exp_golomb()?).map_err(|_| Error::CorruptModel)?;
    }
    let row_class = get_classes(&mut r, rows)?;
    let col_class = get_classes(&mut r, cols)?;
    let mut col_sign = Vec::new();
    if flags & COLUMN_SIGNS != 0 {
        col_sign = (0..cols).map(|_| r.get(1).map(|b| (b as u16) << 15)).collect::<Result<_>>()?;
    }
    if !r.padding_is_zero() {
        return Err(Error::CorruptModel);
    }
    let models = read_models_at(&bytes[r.bytes_consumed()..], CTX_SCALE)?;
    if assign.iter().any(|&a| a as usize >= models.len()) {
        return Err(Error::CorruptModel);
    }
    Ok((Layout { rows, cols, row_class, col_class, assign, col_sign }, models))
}

/// Writes classes (each below `CLASSES`) with a prefix code fitted to them: a flag, then either
/// the one class they all are, or each class's code length (4 bits, 0 for an absent class) and
/// the classes' canonical codes, most significant bit first.
///
/// Why not 4 bits each: rows' scales cluster around the median, and the classes of the
/// embedding's 30522 rows in all-MiniLM-L6-v2 carry 2.15 bits each; at 4 bits their side
/// information took back a third of what the contexts gained on that tensor.
fn put_classes(w: &mut BitWriter, classes: &[u8]) {
    let mut counts = [0u64; CLASSES];
    for &c in classes {
        counts[c as usize] += 1;
    }
    let used: Vec<usize> = (0..CLASSES).filter(|&c| counts[c] > 0).collect();
    if let [only] = used[..] {
        w.put(1, 1);
        w.put(only as u32, 4);
        return;
    }
    w.put(0, 1);
    let lengths = code_lengths(&counts);
    for &l in &lengths {
        w.put(l as u32, 4);
    }
    let codes = canonical(&lengths);
    for &c in classes {
        let (code, len) = (codes[c as usize], lengths[c as usize]);
        for b in (0..len).rev() {
            w.put((code >> b) & 1, 1);
        }
    }
}

/// Reads `n` classes written by `put_classes`, as hostile input.
fn get_classes(r: &mut BitReader, n: usize) -> Result<Vec<u8>> {
    if r.get(1)? == 1 {
        return Ok(vec![r.get(4)? as u8; n]);
    }
    let mut lengths = [0u8; CLASSES];
    for l in &mut lengths {
        *l = r.get(4)? as u8;
    }
    // A prefix code: the Kraft sum at most one, and at least two codes (one class is the flag's
    // case).
    let kraft: u32 = lengths.iter().filter(|&&l| l > 0).map(|&l| 1u32 << (15 - l)).sum();
    if kraft > 1 << 15 || lengths.iter().filter(|&&l| l > 0).count() < 2 {
        return Err(Error::CorruptModel);
    }
    // Canonical decoding: the codes of one length are consecutive, from `first[len]`, and
    // belong to the classes of that length in order (`by_len`, from `start[len]`).
    let (mut first, mut count, mut start) = ([0u32; 16], [0u32; 16], [0usize; 16]);
    let mut by_len: Vec<u8> = Vec::with_capacity(CLASSES);
    let mut code = 0u32;
    for len in 1..=15 {
        first[len] = code;
        start[len] = by_len.len();
        for (c, &l) in lengths.iter().enumerate() {
            if l as usize == len {
                by_len.push(c as u8);
                count[len] += 1;
            }
        }
        code = (code + count[len]) << 1;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (mut code, mut len) = (0u32, 0usize);
        let class = loop {
            code = code << 1 | r.get(1)?;
            len += 1;
            if code.wrapping_sub(first[len]) < count[len] {
                break by_len[start[len] + (code - first[len]) as usize];
            }
            if len == 15 {
                return Err(Error::CorruptModel);
            }
        };
        out.push(class);
    }
    Ok(out)
}

/// Huffman code lengths for `counts` (at least two non-zero), at most 15 bits: with 16 symbols a
/// Huffman tree is at most 15 deep.
fn code_lengths(counts: &[u64; CLASSES]) -> [u8; CLASSES] {
    // Nodes: (weight, lowest class as the tie-break, the classes below it).
    let mut nodes: Vec<(u64, usize, Vec<usize>)> =
        (0..CLASSES).filter(|&c| counts[c] > 0).map(|c| (counts[c], c, vec![c])).collect();
    let mut lengths = [0u8; CLASSES];
    while nodes.len() > 1 {
        // Heaviest first, so the two lightest are popped.
        nodes.sort_by_key(|n| std::cmp::Reverse((n.0, n.1)));
        let (wa, ta, a) = nodes.pop().unwrap_or_default();
        let (wb, tb, b) = nodes.pop().unwrap_or_default();
        for &s in a.iter().chain(&b) {
            lengths[s] += 1;
        }
        nodes.push((wa + wb, ta.min(tb), [a, b].concat()));
    }
    lengths
}

/// Canonical codes for `lengths`: shorter codes first, then by class.
fn canonical(lengths: &[u8; CLASSES]) -> [u32; CLASSES] {
    let mut codes = [0u32; CLASSES];
    let mut code = 0u32;
    for len in 1..=15u8 {
        for c in 0..CLASSES {
            if lengths[c] == len {
                codes[c] = code;
                code += 1;
            }
        }
        code <<= 1;
    }
    codes
}

/// Squares of the f16 values by their bit patterns without the sign (infinities and NaNs count
/// as zero), built once: the scale estimates' input for f16 (bf16's are computed, `squares`).
fn f16_squares() -> &'static [f32] {
    static F16: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    F16.get_or_init(|| {
        (0..1u32 << 15)
            .map(|b| {
                let v = half::f16::from_bits(b as u16).to_f32();
                if v.is_finite() {
                    v * v
                } else {
                    0.0
                }
            })
            .collect()
    })
}

/// Classes of log-scales `l` (None: an all-zero line): quarter octaves around their median,
/// `center` being the median's class.
fn classes(l: &[Option<f64>], center: i64) -> Vec<u8> {
    let mut known: Vec<f64> = l.iter().flatten().copied().collect();
    if known.is_empty() {
        return vec![0; l.len()];
    }
    let mid = known.len() / 2;
    let (_, &mut median, _) = known.select_nth_unstable_by(mid, f64::total_cmp);
    l.iter()
        .map(|x| x.map_or(0, |x| (((x - median) * STEPS).round() as i64 + center).clamp(0, CLASSES as i64 - 1) as u8))
        .collect()
}

/// The values of `chunks` (consecutive pieces of one stream) in jobs of whole chunks of at least
/// `min_values` values each (but the last), each job with the index of its first value.
///
/// Why a size and not a thread count: the scale estimates add floating-point sums job by job,
/// and the output must not depend on the thread count.
fn jobs<'a>(chunks: &[&'a [u8]], min_values: usize) -> Vec<(usize, Vec<&'a [u8]>)> {
    let mut out: Vec<(usize, Vec<&[u8]>)> = Vec::new();
    let (mut first, mut size) = (0, usize::MAX);
    for &c in chunks {
        if size >= min_values {
            out.push((first, Vec::new()));
            size = 0;
        }
        if let Some(j) = out.last_mut() {
            j.1.push(c);
        }
        size += c.len() / 2;
        first += c.len() / 2;
    }
    out
}

/// Calls `f(row, first column, bytes)` on every stretch of `cs` (whose first value is value
/// `first`) that lies in one row, in order.
#[inline]
fn each_stretch(first: usize, cs: &[&[u8]], cols: usize, mut f: impl FnMut(usize, usize, &[u8])) {
    let (mut r, mut j) = (first / cols, first % cols);
    for c in cs {
        let mut c: &[u8] = c;
        while !c.is_empty() {
            let take = (2 * (cols - j)).min(c.len());
            f(r, j, &c[..take]);
            c = &c[take..];
            j += take / 2;
            if j == cols {
                j = 0;
                r += 1;
            }
        }
    }
}

/// The values of little-endian 16-bit `bytes`.
#[inline]
fn values(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes.chunks_exact(2).map(|v| u16::from_le_bytes([v[0], v[1]]))
}

/// The encoder's plan for the method: the layout, the tables, and their coding form.
pub struct CtxPlan {
    pub layout: Layout,
    pub lut: Lut,
    pub models: Vec<Model>,
    /// Per table and symbol (`t << 12 | symbol`), the symbol's index in `flat`, with `ESCAPED`
    /// set when the table escapes it (the index is then its table's `ESC`).
    index: Vec<u32>,
    flat: Flat,
    /// Symbols per table in `flat`, when all its tables have the same number (the vector step
    /// computes a symbol's index as `table * table_len + symbol`).
    table_len: Option<u32>,
    /// Which bits of a value the symbols hold.
    pub split: Split,
}

/// Whether rows of `cols` values can take the method (the rest of the checks are `plan_ctx`'s):
/// callers count rows' sums of squares ahead of it only for such rows.
pub(crate) fn takes_rows(cols: usize) -> bool {
    cols > 0 && cols.is_multiple_of(LANES) && cols <= MAX_COLS
}

/// Appends the sum of the squares of each stretch of chunk `c` (whose first value is value
/// `first` of a matrix of rows of `cols` values of `kind`, bf16 or f16) that lies in one row, as
/// (row, sum), in order. The encoder counts these with the chunk's histogram, in one pass over
/// it (`bf16::split_and_histograms`); a row's sum is its stretches' sums added in chunk order.
pub(crate) fn chunk_row_sums(kind: Kind, first: usize, c: &[u8], cols: usize, out: &mut Stretches) {
    if kind == Kind::F16 {
        let sq = f16_squares();
        each_stretch(first, &[c], cols, |r, _, b| out.push((r, values(b).map(|v| sq[(v & 0x7FFF) as usize] as f64).sum())));
    } else {
        each_stretch(first, &[c], cols, |r, _, b| out.push((r, squares::sum(b))));
    }
}

/// The classes of the rows and of the columns of the matrix whose values `work` holds (`jobs`),
/// from the stretches' sums of squares of every chunk (`chunk_row_sums`, in chunk order), and the
/// column sign flips worth trying (`column_signs`).
/// `add_weighted(out, b, w)` adds each value's square times `w` to its entry of `out`.
fn scale_classes(
    work: &[(usize, Vec<&[u8]>)],
    row_parts: &[Stretches],
    rows: usize,
    cols: usize,
    threads: u32,
    add_weighted: impl Fn(&mut [f64], &[u8], f64) + Sync,
) -> Result<(Vec<u8>, Vec<u8>, Vec<u16>)> {
    let mut row_ms = vec![0.0f64; rows];
    for &(r, s) in row_parts.iter().flatten() {
        *row_ms.get_mut(r).ok_or(Error::InvalidArgument)? += s;
    }
    for m in &mut row_ms {
        *m /= cols as f64;
    }
    let log_scale = |ms: f64| (ms > 0.0 && ms.is_finite()).then(|| 0.5 * ms.log2());
    let row_class = classes(&row_ms.iter().map(|&m| log_scale(m)).collect::<Vec<_>>(), 8);

    // Column scales, of the values divided by their row's RMS, and the columns' negative
    // values, from every row or (tall matrices) an evenly spaced sample of 4096 of them. (The
    // signs from a sample of 256 rows flipped columns wrongly enough to lose 8 KB of the 45 KB
    // the flips gain on all-MiniLM-L6-v2.)
    let step = rows.div_ceil(4096);
    let inv: Vec<f64> = row_ms
        .iter()
        .enumerate()
        .map(|(r, &m)| if r % step == 0 && m > 0.0 && m.is_finite() { 1.0 / m } else { 0.0 })
        .collect();
    let mut col_parts: Vec<(Vec<f64>, Vec<u16>)> = vec![Default::default(); work.len()];
    let mut pairs: Vec<_> = work.iter().zip(&mut col_parts).collect();
    parallel::for_each_mut(&mut pairs, threads, |_, ((first, cs), (out, neg))| {
        *out = vec![0.0; cols];
        *neg = vec![0; cols];
        each_stretch(*first, cs, cols, |r, j, b| {
            if inv[r] > 0.0 {
                add_weighted(&mut out[j..], b, inv[r]);
                // At most 4096 sampled rows: u16 counts do not overflow.
                squares::add_signs(&mut neg[j..], b);
            }
        });
        Ok(())
    })?;
    let live = inv.iter().filter(|&&i| i > 0.0).count();
    let live_rows = live.max(1) as f64;
    let col_ms: Vec<Option<f64>> =
        (0..cols).map(|j| log_scale(col_parts.iter().map(|p| p.0[j]).sum::<f64>() / live_rows)).collect();
    let neg: Vec<u64> = (0..cols).map(|j| col_parts.iter().map(|p| p.1[j] as u64).sum()).collect();
    Ok((row_class, classes(&col_ms, 7), column_signs(&neg, live as u64)))
}

/// The column sign flips worth trying, from each column's count of negative values `neg` among
/// `n` sampled rows: the columns with more negative values than positive, when the columns'
/// signs are far enough from fair coins (`SIGN_GAIN_MIN`); empty otherwise.
///
/// Why: some matrices' columns lean to one sign (an embedding's dimensions have means of their
/// own; FFN up-projections' input channels too), and their values' magnitudes lean with it. With
/// the sign in the symbol (`Split::Signed`), flipping the columns that lean negative makes them
/// all lean the same way, which one table per context then learns. Measured on
/// all-MiniLM-L6-v2 (order-0 entropy of the symbol in its context, before table costs): the word
/// embedding 10.458 -> 10.432 bits a value, the FFN up-projections about 0.01 bits; the other
/// matrices' columns are fair coins.
fn column_signs(neg: &[u64], n: u64) -> Vec<u16> {
    if n < 2 || !neg.iter().any(|&k| 2 * k > n) {
        return Vec::new();
    }
    let h = |p: f64| if p <= 0.0 || p >= 1.0 { 0.0 } else { -(p * p.log2() + (1.0 - p) * (1.0 - p).log2()) };
    let gain = neg.iter().map(|&k| 1.0 - h(k as f64 / n as f64)).sum::<f64>() / neg.len() as f64;
    // The plug-in entropy of n coin tosses is low by about 1 / (2 n ln 2) bits.
    let bias = 1.0 / (2.0 * n as f64 * std::f64::consts::LN_2);
    if gain < bias + SIGN_GAIN_MIN {
        return Vec::new();
    }
    neg.iter().map(|&k| if 2 * k > n { 0x8000 } else { 0 }).collect()
}

/// Plans the method for the values of `chunks` (one stream, cut in chunks whose sizes are
/// multiples of `LANES` values but the last) as rows of `cols` values, with each chunk's
/// `chunk_row_sums` when the caller has them (made here otherwise). None where it does not
/// apply: a row length that is not a multiple of `LANES`, fewer than two rows, too many.
pub fn plan_ctx(
    kind: Kind,
    chunks: &[&[u8]],
    cols: usize,
    threads: u32,
    split: Split,
    row_sums: Option<RowSums>,
) -> Result<Option<CtxDraft>> {
    let n: usize = chunks.iter().map(|c| c.len() / 2).sum();
    let aligned = chunks.split_last().is_none_or(|(_, init)| init.iter().all(|c| (c.len() / 2).is_multiple_of(LANES)));
    if !takes_rows(cols) || !n.is_multiple_of(cols) || !aligned {
        return Ok(None);
    }
    let rows = n / cols;
    if !(2..=MAX_ROWS).contains(&rows) {
        return Ok(None);
    }
    let row_parts = match row_sums {
        Some(p) if p.len() == chunks.len() => p,
        _ => {
            let mut parts: Vec<(usize, &[u8], Stretches)> =
                super::value_starts(chunks).zip(chunks).map(|(f, c)| (f, *c, Vec::new())).collect();
            parallel::for_each_mut(&mut parts, threads, |_, (first, c, out)| {
                chunk_row_sums(kind, *first, c, cols, out);
                Ok(())
            })?;
            parts.into_iter().map(|p| p.2).collect()
        }
    };
    let work = jobs(chunks, (1 << 20).max(128 * cols));
    let (row_class, col_class, col_sign) = if kind == Kind::F16 {
        let sq = f16_squares();
        let add = |out: &mut [f64], b: &[u8], w: f64| {
            for (o, v) in out.iter_mut().zip(values(b)) {
                *o += sq[(v & 0x7FFF) as usize] as f64 * w;
            }
        };
        scale_classes(&work, &row_parts, rows, cols, threads, add)?
    } else {
        scale_classes(&work, &row_parts, rows, cols, threads, squares::add_weighted)?
    };

    let layout = Layout { rows, cols, row_class, col_class, assign: [0; CONTEXTS], col_sign: Vec::new() };
    // Column sign flips, with the sign in the symbol, where the columns lean enough to try them
    // and a sample of the rows codes smaller with them.
    #[cfg(test)]
    let col_sign = if NO_SIGNS.with(|c| c.get()) { Vec::new() } else { col_sign };
    let (layout, split) = match !col_sign.is_empty() && flips_pay(chunks, &layout, split, &col_sign) {
        true => (Layout { col_sign, ..layout }, Split::Signed),
        false => (layout, split),
    };
    draft_of(chunks, n, threads, layout, split)
}

/// Rows of the sample on which `flips_pay` decides.
const SIGN_SAMPLE_ROWS: usize = 256;

/// Whether flipping the columns `col_sign` and putting the sign in the symbol codes the matrix
/// `chunks` in `layout` (whose values are split by `split`) smaller, judged on an evenly spaced
/// sample of its rows: the symbols' bits in their contexts (one table each, before table costs)
/// either way, and the flips' bit per column.
///
/// Why a sample: counting the whole matrix's histograms both ways made compressing
/// all-MiniLM-L6-v2 17% slower; the flips' gain, where they are tried, is 0.01 to 0.03 bits a
/// value, far above what a sample of 256 rows misjudges (the two counts are of the same values).
fn flips_pay(chunks: &[&[u8]], layout: &Layout, split: Split, col_sign: &[u16]) -> bool {
    let step = layout.rows.div_ceil(SIGN_SAMPLE_ROWS);
    let without = sample_bits(chunks, layout, step, |v, _| split.symbol(v));
    let with = sample_bits(chunks, layout, step, |v, j| Split::Signed.symbol(v ^ col_sign[j]));
    with + layout.cols as f64 <= without
}

/// Bits of the symbols `symbol(value, column)` of every `step`-th row of the matrix `chunks` in
/// `layout`, coded with one table per context (order-0 entropy, before table costs).
fn sample_bits(chunks: &[&[u8]], layout: &Layout, step: usize, symbol: impl Fn(u16, usize) -> usize) -> f64 {
    let mut h = vec![0u32; CONTEXTS * SYMBOLS];
    each_stretch(0, chunks, layout.cols, |r, j, b| {
        if r % step != 0 {
            return;
        }
        let at = (layout.row_class[r] as usize).min(CLASSES - 1) * SYMBOLS;
        for (k, (&c, v)) in layout.col_class[j..].iter().zip(values(b)).enumerate() {
            h[at + (c as usize & (CLASSES - 1)) * SYMBOLS + (symbol(v, j + k) & (SYMBOLS - 1))] += 1;
        }
    });
    let xlog = |x: f64| if x > 0.0 { x * x.log2() } else { 0.0 };
    h.chunks_exact(SYMBOLS)
        .map(|c| {
            let n: u64 = c.iter().map(|&x| x as u64).sum();
            xlog(n as f64) - c.iter().filter(|&&x| x > 0).map(|&x| xlog(x as f64)).sum::<f64>()
        })
        .sum()
}

#[cfg(test)]
thread_local! {
    /// Test switch: plans without column sign flips (to compare frames with and without).
    pub(crate) static NO_SIGNS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

thread_local! {
    /// Chunks with their columns' signs flipped, for the encoder to code (`CtxPlan::flipped`).
    static FLIPPED: crate::memory::Spares<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Method 6's plan of `chunks` (`n` values) in `layout` (its tables' assignment yet to make)
/// with the values split by `split`: the symbol histograms of the contexts, the tables over them.
fn draft_of(chunks: &[&[u8]], n: usize, threads: u32, mut layout: Layout, split: Split) -> Result<Option<CtxDraft>> {
    // Symbol histograms per context (sums of integers: any split gives the same), a job per
    // thread, of at most 2^31 values (so that u32 counts do not overflow).
    let per_thread = n.div_ceil(parallel::effective_threads(threads, chunks.len()).max(1));
    let mut work = jobs(chunks, per_thread.min(1 << 31));
    let mut hist_parts: Vec<Vec<u32>> = vec![Vec::new(); work.len()];
    let mut pairs: Vec<_> = work.iter_mut().zip(&mut hist_parts).collect();
    let cols = layout.cols;
    parallel::for_each_mut(&mut pairs, threads, |_, ((first, cs), h)| {
        **h = vec![0u32; CONTEXTS * SYMBOLS];
        let (rc, cc, signs) = (&layout.row_class[..], &layout.col_class[..], &layout.col_sign[..]);
        // A loop per split, its shift constant.
        match split {
            Split::Magnitude => count_contexts(h, *first, cs, cols, rc, cc, signs, |v| Split::Magnitude.symbol(v)),
            Split::Signed => count_contexts(h, *first, cs, cols, rc, cc, signs, |v| Split::Signed.symbol(v)),
        }
        Ok(())
    })?;
    // Tables over the contexts that occur, neighbours merged where that saves bits; a context
    // that never occurs takes its lower neighbour's table. (Measured and dropped: trying rows
    // only, columns only and half-octave classes as well, and keeping the smallest, gained 63
    // bytes on all-MiniLM-L6-v2 and halved the speed of compression.) Only the contexts that
    // occur get a histogram of their own (a copy of an empty one for each of the 31 was 1% of
    // compressing MiniLM).
    let (mut used, mut used_hists) = (Vec::new(), Vec::new());
    let mut h = vec![0u64; SYMBOLS];
    for c in 0..CONTEXTS {
        for part in &hist_parts {
            for (a, &b) in h.iter_mut().zip(&part[c * SYMBOLS..(c + 1) * SYMBOLS]) {
                *a += b as u64;
            }
        }
        if h.iter().any(|&x| x > 0) {
            used.push(c);
            used_hists.push(std::mem::replace(&mut h, vec![0u64; SYMBOLS]));
        }
    }
    if used.is_empty() {
        return Ok(None);
    }
    let max = (n >> 17).clamp(2, MAX_TABLES);
    let draft = plan_at_most(&used_hists, max, CTX_SCALE);
    let used_assign = draft.assign().to_vec();
    let mut last = used_assign[0];
    for (c, a) in layout.assign.iter_mut().enumerate() {
        if let Some(k) = used.iter().position(|&u| u == c) {
            last = used_assign[k];
        }
        *a = last;
    }
    let side = 8.0 * write(&layout, &[]).len() as f64;
    Ok(Some(CtxDraft { layout, draft, side, split }))
}

/// Adds the symbol histogram of each context of the values of `cs` (whose first value is value
/// `first` of a matrix of rows of `cols`) to `h` (`CONTEXTS` histograms end to end), each value
/// XORed with its column's `signs` entry first when there are any.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn count_contexts(
    h: &mut [u32],
    first: usize,
    cs: &[&[u8]],
    cols: usize,
    row_class: &[u8],
    col_class: &[u8],
    signs: &[u16],
    symbol: impl Fn(u16) -> usize,
) {
    each_stretch(first, cs, cols, |r, j, b| {
        // The histograms a row's class reaches; masked indices into them need no bounds checks.
        let at = (row_class[r] as usize).min(CLASSES - 1) * SYMBOLS;
        let h: &mut [u32; CLASSES * SYMBOLS] = (&mut h[at..at + CLASSES * SYMBOLS]).try_into().expect("CONTEXTS covers it");
        if signs.is_empty() {
            for (&c, v) in col_class[j..].iter().zip(values(b)) {
                h[(c as usize & (CLASSES - 1)) * SYMBOLS + (symbol(v) & (SYMBOLS - 1))] += 1;
            }
        } else {
            for ((&c, v), &m) in col_class[j..].iter().zip(values(b)).zip(&signs[j..]) {
                h[(c as usize & (CLASSES - 1)) * SYMBOLS + (symbol(v ^ m) & (SYMBOLS - 1))] += 1;
            }
        }
    });
}

/// Method 6's plan before its tables are built (see `model::Draft`).
pub struct CtxDraft {
    layout: Layout,
    draft: Draft,
    /// Bits of the layout's side information.
    side: f64,
    split: Split,
}

impl CtxDraft {
    /// Estimated size of the frame's coded chunks, tables and side information, in bits.
    pub fn bits(&self) -> f64 {
        self.draft.bits + self.side
    }

    /// The mean number of symbols present in the tables' histograms (`Draft::mean_present`).
    pub fn mean_present(&self) -> f64 {
        self.draft.mean_present()
    }

    /// The plan with its tables.
    pub fn build(self, threads: u32) -> Result<CtxPlan> {
        Ok(self.build_costed(threads)?.0)
    }

    /// `build`, and the bits of the frame's symbols, tables and side information under the
    /// built tables (`Draft::build_costed`).
    pub fn build_costed(self, threads: u32) -> Result<(CtxPlan, f64)> {
        let (models, _, bits) = self.draft.build_costed(threads)?;
        let bits = bits + self.side;
        let encs: Vec<EncTable> = models.iter().map(|m| m.encoder()).collect();
        let offsets = Flat::offsets(&encs);
        let mut index = Vec::with_capacity(encs.len() * SYMBOLS);
        for (e, &o) in encs.iter().zip(&offsets) {
            index.extend(e.syms[..SYMBOLS].iter().enumerate().map(|(s, x)| {
                if x.freq == 0 {
                    (o + ESC as u32) | ESCAPED
                } else {
                    o + s as u32
                }
            }));
        }
        let flat = Flat::new(&encs);
        let len = encs.first().map_or(0, |e| e.syms.len());
        let table_len = encs.iter().all(|e| e.syms.len() == len).then_some(len as u32);
        let plan = CtxPlan { lut: self.layout.lut(), layout: self.layout, models, index, flat, table_len, split: self.split };
        Ok((plan, bits))
    }
}

impl CtxPlan {
    /// The model section.
    pub fn write(&self) -> Vec<u8> {
        write(&self.layout, &self.models)
    }

    /// The frame header's flags: the split's, and `COLUMN_SIGNS` if columns are flipped.
    pub fn flags(&self) -> u32 {
        self.split.flags() | self.layout.flags()
    }

    /// `src` (whose first value is value `first`) as the coders take it: with its columns'
    /// signs flipped where the plan flips them, in a buffer of this thread's
    /// (`keep_flipped` takes it back); None where it flips none.
    fn flipped(&self, first: usize, src: &[u8]) -> Option<Vec<u8>> {
        if self.layout.col_sign.is_empty() {
            return None;
        }
        let mut buf = crate::memory::take_spare(&FLIPPED);
        buf.clear();
        buf.extend_from_slice(src);
        flip_columns(first, self.layout.cols, &self.lut.sign_bytes, &mut buf);
        Some(buf)
    }

    /// Encodes the chunk `src` whose first value is value `first` of the frame, in the layout
    /// of `bf16::encode_chunk`: values last to first, a group at a time with the vector step
    /// where the CPU has one (the group's table indices made in registers from its symbols and
    /// its lookup row), value by value past the last whole group and in a group with an escape.
    pub fn encode_chunk(&self, first: usize, src: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let flipped = self.flipped(first, src);
        let src = flipped.as_deref().unwrap_or(src);
        let mut c = self.begin(first, src)?;
        self.groups(&mut c, first, src)?;
        c.finish(out);
        if let Some(b) = flipped {
            crate::memory::keep_spare(&FLIPPED, b);
        }
        Ok(())
    }

    /// `encode_chunk` of two chunks (`src[s]`, whose first value is `first[s]`, appended to
    /// `out[s]`), their whole groups coded in turn (`encode_x86::put_groups_pair_avx512`).
    pub fn encode_chunk_pair(&self, first: [usize; 2], src: [&[u8]; 2], out: [&mut Vec<u8>; 2]) -> Result<()> {
        let flipped = [self.flipped(first[0], src[0]), self.flipped(first[1], src[1])];
        let src = [flipped[0].as_deref().unwrap_or(src[0]), flipped[1].as_deref().unwrap_or(src[1])];
        let mut c = [self.begin(first[0], src[0])?, self.begin(first[1], src[1])?];
        #[cfg(target_arch = "x86_64")]
        if let (Some((v, level)), Some(len)) = (self.flat.vector(), self.table_len) {
            let shift = self.split.shift();
            let ptrs = src.map(|s| s.as_ptr());
            let tabs = |s: usize, g: usize| self.lut.lanes_at(first[s] + g * LANES);
            super::pair_groups(
                &mut c,
                |c, left| {
                    let [a, b] = c;
                    // SAFETY: as in `groups`, for both chunks.
                    unsafe {
                        match level {
                            Level::Avx512 => super::avx512::put_groups_ctx_pair([&mut a.e, &mut b.e], v, ptrs, left, shift, tabs, len),
                            _ => super::avx2::put_groups_ctx_pair([&mut a.e, &mut b.e], v, ptrs, left, shift, tabs, len),
                        }
                    }
                },
                |c, s, g| {
                    let c = &mut c[s];
                    self.put_values(&mut c.e, &mut c.escapes, first[s], src[s], g * LANES..(g + 1) * LANES)
                },
            )?;
        }
        for (((mut c, first), src), out) in c.into_iter().zip(first).zip(src).zip(out) {
            self.groups(&mut c, first, src)?;
            c.finish(out);
        }
        for b in flipped.into_iter().flatten() {
            crate::memory::keep_spare(&FLIPPED, b);
        }
        Ok(())
    }

    /// A chunk's coding begun: its nibbles packed, its encoder with their payloads, and the
    /// values past its last whole group coded.
    fn begin(&self, first: usize, src: &[u8]) -> Result<Pending> {
        let mut c = Pending::new(src, self.split);
        self.put_values(&mut c.e, &mut c.escapes, first, src, c.left * LANES..src.len() / 2)?;
        Ok(c)
    }

    /// Codes the whole groups of `c` (the chunk `src`, whose first value is `first`) left, last
    /// to first.
    fn groups(&self, c: &mut Pending, first: usize, src: &[u8]) -> Result<()> {
        while c.left > 0 {
            #[cfg(target_arch = "x86_64")]
            if let (Some((v, level)), Some(len)) = (self.flat.vector(), self.table_len) {
                let tabs = |g: usize| self.lut.lanes_at(first + g * LANES);
                // SAFETY: `level` is what the CPU has, at least AVX2 (`Flat::new`); groups
                // 0..left lie inside `src`; each group lies in one row (`first` and the row
                // length are multiples of `LANES`), whose lookup row has `LANES` entries from it.
                c.left = unsafe {
                    match level {
                        Level::Avx512 => super::avx512::put_groups_ctx(&mut c.e, v, src.as_ptr(), c.left, self.split.shift(), tabs, len),
                        _ => super::avx2::put_groups_ctx(&mut c.e, v, src.as_ptr(), c.left, self.split.shift(), tabs, len),
                    }
                };
                if c.left == 0 {
                    break;
                }
            }
            // Group left - 1 has an escape (or there is no vector step).
            c.left -= 1;
            self.put_values(&mut c.e, &mut c.escapes, first, src, c.left * LANES..(c.left + 1) * LANES)?;
        }
        Ok(())
    }

    /// The scalar step for the values at `range` of `src`, last to first, collecting the
    /// escaped symbols.
    fn put_values(
        &self,
        e: &mut RansEncoder,
        escapes: &mut Vec<u16>,
        first: usize,
        src: &[u8],
        range: std::ops::Range<usize>,
    ) -> Result<()> {
        for i in range.rev() {
            let sym = self.split.symbol(u16::from_le_bytes([src[2 * i], src[2 * i + 1]]));
            let idx = self.index[self.lut.table_of(first + i) << 12 | sym];
            if idx & ESCAPED != 0 {
                escapes.push(sym as u16);
            }
            self.flat.put_symbol(e, i % LANES, idx & !ESCAPED)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture layer's FFN up-projection (1536 x 384 bf16, real values), whose columns lean
    /// to one sign or the other.
    fn ffn_up() -> Vec<u8> {
        let file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/minilm-l6-layer0-bf16.safetensors")).unwrap();
        let st = crate::safetensors::read(&file).unwrap();
        let t = st.tensors.iter().find(|t| t.dtype == "BF16" && t.name.ends_with("intermediate.dense.weight")).unwrap();
        file[t.offset as usize..][..t.len as usize].to_vec()
    }

    fn frame(src: &[u8], signs: bool) -> Vec<u8> {
        NO_SIGNS.with(|c| c.set(!signs));
        let opts = crate::frame::Options { threads: 1, row_len: 384, ..Default::default() };
        let f = crate::frame::compress(Kind::Bf16, src, &opts).unwrap();
        NO_SIGNS.with(|c| c.set(false));
        assert_eq!(crate::frame::decompress(&f, &opts).unwrap(), src);
        f
    }

    /// The flips are kept only where their plan is smaller: on the FFN matrix they are, and the
    /// frame with them is smaller than the one without; on a matrix whose columns are fair coins
    /// (the same values with every sign drawn at random) none is tried.
    #[test]
    fn column_flips_go_where_they_pay() {
        let src = ffn_up();
        let (with, without) = (frame(&src, true), frame(&src, false));
        let flags = |f: &[u8]| crate::frame::read_info(f).unwrap().flags;
        assert_eq!((flags(&with), flags(&without) & COLUMN_SIGNS), (COLUMN_SIGNS | 1, 0));
        assert!(with.len() + 300 < without.len(), "{} vs {}", with.len(), without.len());
        let mut rng = crate::test_rng::Lcg::new(7);
        let fair: Vec<u8> = src
            .chunks_exact(2)
            .flat_map(|b| (u16::from_le_bytes([b[0], b[1]]) & 0x7FFF | (rng.next_u32() as u16 & 1) << 15).to_le_bytes())
            .collect();
        assert_eq!(flags(&frame(&fair, true)) & COLUMN_SIGNS, 0);
    }

    /// The format lets the flips come with either split (the encoder pairs them with the signed
    /// one): with the magnitude split the sign rides in the raw nibble, and every decoding path
    /// (the kernels, the scalar groups, the tail whose nibbles ride in the lane payloads) must
    /// flip it after the value is whole. Chunks coded from a plan made by hand, decoded at every
    /// kernel level, chunk starts mid-row included.
    #[test]
    fn flips_with_either_split_decode_at_every_level() {
        let src = ffn_up();
        let n = src.len() / 2;
        // Whole groups per chunk (the method's rule), the second starting mid-row, a short last.
        let cut = [0, 36_992 * 2, 2 * 96 * 384 * 3, src.len() - 2 * 1024, src.len()];
        let chunks: Vec<&[u8]> = cut.windows(2).map(|w| &src[w[0]..w[1]]).collect();
        let col_sign: Vec<u16> = (0..384).map(|j| if j % 3 == 1 { 0x8000 } else { 0 }).collect();
        for split in [Split::Magnitude, Split::Signed] {
            let draft = plan_ctx(Kind::Bf16, &chunks, 384, 1, split, None).unwrap().unwrap();
            let layout = Layout { col_sign: col_sign.clone(), ..draft.layout };
            let plan = draft_of(&chunks, n, 1, layout, split).unwrap().unwrap().build(1).unwrap();
            assert_eq!(plan.flags() & COLUMN_SIGNS, COLUMN_SIGNS);
            let models = super::super::CtxModels::read(&plan.write(), plan.flags()).unwrap();
            let mut at = 0;
            for c in &chunks {
                let mut coded = Vec::new();
                plan.encode_chunk(at / 2, c, &mut coded).unwrap();
                for level in crate::cpu::Level::ALL.into_iter().filter(|&l| l <= crate::cpu::detect()) {
                    let mut out = vec![0u8; c.len()];
                    super::super::decode_chunk(&models.decoder_of(level), at as u64, &coded, &mut out).unwrap();
                    assert!(out == *c, "{split:?} {level:?} chunk at {at}");
                }
                at += c.len();
            }
        }
    }

    /// `flip_columns` flips exactly the columns' sign bits, from any first value, and undoes
    /// itself.
    #[test]
    fn flips_touch_only_their_columns_signs() {
        let cols = 64;
        let signs: Vec<u16> = (0..cols).map(|j| if j % 3 == 0 { 0x8000 } else { 0 }).collect();
        let sign_bytes: Vec<u8> = signs.iter().flat_map(|m| m.to_le_bytes()).collect();
        let src: Vec<u8> = (0..1000u32).flat_map(|i| (i.wrapping_mul(2654435761) as u16).to_le_bytes()).collect();
        for first in [0, 1, 63, 64, 130] {
            let mut b = src.clone();
            flip_columns(first, cols, &sign_bytes, &mut b);
            for (i, (x, y)) in src.chunks_exact(2).zip(b.chunks_exact(2)).enumerate() {
                let (x, y) = (u16::from_le_bytes([x[0], x[1]]), u16::from_le_bytes([y[0], y[1]]));
                assert_eq!(x ^ y, signs[(first + i) % cols], "first {first} value {i}");
            }
            flip_columns(first, cols, &sign_bytes, &mut b);
            assert_eq!(b, src);
        }
    }

    /// A layout with flips reads back as written; its model section cut anywhere, or read
    /// without the flag, is an error or another layout, never a crash.
    #[test]
    fn layouts_with_flips_read_back() {
        let (rows, cols) = (5, 64);
        let layout = Layout {
            rows,
            cols,
            row_class: vec![3, 4, 4, 5, 8],
            col_class: (0..cols).map(|j| (j % 5) as u8).collect(),
            assign: [0; CONTEXTS],
            col_sign: (0..cols).map(|j| if j % 7 == 2 { 0x8000 } else { 0 }).collect(),
        };
        let mut counts = vec![0u64; SYMBOLS];
        counts[..4].copy_from_slice(&[10, 0, 5, 1]);
        let model = Model::from_counts_costed(&counts, CTX_SCALE).unwrap().0;
        let bytes = write(&layout, std::slice::from_ref(&model));
        let (back, _) = read(&bytes, COLUMN_SIGNS).unwrap();
        assert_eq!((back.row_class, back.col_class, back.col_sign), (layout.row_class, layout.col_class, layout.col_sign));
        for cut in 1..bytes.len() {
            let _ = read(&bytes[..cut], COLUMN_SIGNS);
        }
        assert!(read(&bytes, 0).is_err() || read(&bytes, 0).unwrap().0.col_sign.is_empty());
    }
}
