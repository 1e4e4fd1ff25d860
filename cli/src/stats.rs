//! Entropy statistics of bf16 data: the byte-marginal bound the paper calls a ceiling, and the
//! entropy of the model weightzip codes with.

use weightzip::codec::bf16;
use weightzip::entropy::table::entropy_bits;

#[derive(Clone, Debug, PartialEq)]
pub struct Bf16Stats {
    pub values: u64,
    /// Order-0 entropy of the high byte (sign and top 7 exponent bits), bits per value.
    pub h_high: f64,
    /// Order-0 entropy of the low byte (last exponent bit and 7 mantissa bits), bits per value.
    pub h_low: f64,
    /// 16 / (h_high + h_low): the best ratio of any coder that codes the two bytes independently.
    pub r_marginal: f64,
    /// H(exponent) + H(sign, mantissa | exponent): the joint model without table costs.
    pub h_joint_exp_mant: f64,
    /// Entropy of weightzip's model: H(12-bit symbol) + 4 raw bits, bits per value.
    pub h_model: f64,
    /// 16 / h_model.
    pub r_model: f64,
    /// The model with the sign in the symbol (the signed split: sign, exponent, top 3 mantissa
    /// bits) + 4 raw bits: what the frame header's SIGN_IN_SYMBOL flag codes.
    pub h_model_signed: f64,
}

pub fn bf16_stats(data: &[u8]) -> Bf16Stats {
    let mut hi = vec![0u64; 256];
    let mut lo = vec![0u64; 256];
    let mut exp_sm = vec![0u64; 256 * 256];
    for v in data.chunks_exact(2) {
        lo[v[0] as usize] += 1;
        hi[v[1] as usize] += 1;
        let w = u16::from_le_bytes([v[0], v[1]]);
        let e = ((w >> 7) & 0xFF) as usize;
        let sm = (((w >> 8) & 0x80) | (w & 0x7F)) as usize;
        exp_sm[e * 256 + sm] += 1;
    }
    let values = (data.len() / 2) as u64;
    let mut sym = vec![0u64; bf16::SYMBOLS];
    bf16::histogram(data, bf16::Split::Magnitude, &mut sym);
    let mut signed = vec![0u64; bf16::SYMBOLS];
    bf16::histogram(data, bf16::Split::Signed, &mut signed);
    let (h_high, h_low) = (entropy_bits(&hi), entropy_bits(&lo));
    let exp: Vec<u64> = exp_sm.chunks(256).map(|r| r.iter().sum()).collect();
    let h_cond: f64 = exp_sm
        .chunks(256)
        .map(|row| {
            let n: u64 = row.iter().sum();
            if values == 0 {
                0.0
            } else {
                n as f64 / values as f64 * entropy_bits(row)
            }
        })
        .sum();
    let h_model = entropy_bits(&sym) + 4.0;
    Bf16Stats {
        values,
        h_high,
        h_low,
        r_marginal: ratio(h_high + h_low),
        h_joint_exp_mant: entropy_bits(&exp) + h_cond,
        h_model,
        r_model: ratio(h_model),
        h_model_signed: entropy_bits(&signed) + 4.0,
    }
}

fn ratio(bits: f64) -> f64 {
    if bits > 0.0 {
        16.0 / bits
    } else {
        f64::INFINITY
    }
}

/// Order-0 entropy, in bits, of byte position `k` of the `width`-byte elements of `data`.
pub fn byte_plane_entropy(data: &[u8], width: usize, k: usize) -> f64 {
    let mut c = [0u64; 256];
    for e in data.chunks_exact(width) {
        c[e[k] as usize] += 1;
    }
    weightzip::entropy::table::entropy_bits(&c)
}

/// The byte-marginal ratio bound of `width`-byte values: 8·width / Σ_k H(byte k), the paper's
/// "ceiling" generalised (width 2: 16 / (H(high) + H(low)); width 4: 32 / (H(b0) + ... + H(b3))).
/// None when the data is empty.
pub fn r_marginal(data: &[u8], width: usize) -> Option<f64> {
    let bits: f64 = (0..width).map(|k| byte_plane_entropy(data, width, k)).sum();
    (data.len() >= width && bits > 0.0).then(|| 8.0 * width as f64 / bits)
}

/// What the scales of a matrix's rows and columns tell about its values: weightzip's bf16 model
/// (the 12-bit symbol, plus 4 raw bits) with each value's symbol in the context of its row's
/// scale, its column's, or both. Totals in bits over all values (tables not charged: a bound, as
/// R_marginal is), and the side information the contexts need (4 bits per row or column).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScaleContexts {
    /// Values of the matrices measured.
    pub values: u64,
    /// The model's bits with no context, then in the context of the row, the column, and both.
    pub plain: f64,
    pub row: f64,
    pub col: f64,
    pub row_col: f64,
    /// Side information: 4 bits per row, 4 per column.
    pub side_row: f64,
    pub side_col: f64,
}

/// Scale buckets: log2 of a row's (or column's) RMS relative to the matrix's, in half-octave
/// steps, 16 of them around the matrix's own (one 4-bit symbol of side information each).
const SCALE_BUCKETS: usize = 16;

fn scale_buckets(sum_sq: &[f64], n_each: usize, total_rms: f64) -> Vec<usize> {
    sum_sq
        .iter()
        .map(|&s| {
            let rms = (s / n_each as f64).sqrt();
            if rms > 0.0 && total_rms > 0.0 && rms.is_finite() {
                let b = (2.0 * (rms / total_rms).log2()).floor() + (SCALE_BUCKETS / 2) as f64;
                b.clamp(0.0, (SCALE_BUCKETS - 1) as f64) as usize
            } else {
                0
            }
        })
        .collect()
}

fn bf16_values(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|v| u16::from_le_bytes([v[0], v[1]]))
}

/// Adds the scale-context statistics of one bf16 matrix (`data`, row-major, `cols` values per
/// row) to `acc`.
pub fn add_scale_contexts(acc: &mut ScaleContexts, data: &[u8], cols: usize) {
    let n = data.len() / 2;
    if cols < 2 || n < 2 * cols || !n.is_multiple_of(cols) {
        return;
    }
    let rows = n / cols;
    let matrix_rows = || data[..2 * n].chunks_exact(2 * cols);
    let (mut row_sq, mut col_sq, mut all_sq) = (vec![0f64; rows], vec![0f64; cols], 0f64);
    for (row, sq) in matrix_rows().zip(row_sq.iter_mut()) {
        for (v, csq) in bf16_values(row).zip(col_sq.iter_mut()) {
            let x = f32::from_bits((v as u32) << 16) as f64;
            // Infinities and NaNs would poison the sums: they count as zero here.
            let x2 = if x.is_finite() { x * x } else { 0.0 };
            *sq += x2;
            *csq += x2;
            all_sq += x2;
        }
    }
    let total_rms = (all_sq / n as f64).sqrt();
    let rb = scale_buckets(&row_sq, cols, total_rms);
    let cb = scale_buckets(&col_sq, rows, total_rms);
    let syms = bf16::SYMBOLS;
    let mut plain = vec![0u64; syms];
    let mut by_row = vec![0u64; SCALE_BUCKETS * syms];
    let mut by_col = vec![0u64; SCALE_BUCKETS * syms];
    let mut by_both = vec![0u64; SCALE_BUCKETS * SCALE_BUCKETS * syms];
    for (row, &r) in matrix_rows().zip(&rb) {
        for (v, &c) in bf16_values(row).zip(&cb) {
            // weightzip's symbol: bits 3..15 of the value (see codec::bf16).
            let s = ((v >> 3) & 0xFFF) as usize;
            plain[s] += 1;
            by_row[r * syms + s] += 1;
            by_col[c * syms + s] += 1;
            by_both[(r * SCALE_BUCKETS + c) * syms + s] += 1;
        }
    }
    // Total bits of a set of contexts' histograms: each context coded with its own table.
    let bits = |h: &[u64]| -> f64 {
        h.chunks(syms).map(|t| t.iter().sum::<u64>() as f64 * entropy_bits(t)).sum::<f64>() + 4.0 * n as f64
    };
    acc.values += n as u64;
    acc.plain += bits(&plain);
    acc.row += bits(&by_row);
    acc.col += bits(&by_col);
    acc.row_col += bits(&by_both);
    acc.side_row += 4.0 * rows as f64;
    acc.side_col += 4.0 * cols as f64;
}
