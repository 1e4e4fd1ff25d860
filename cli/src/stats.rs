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
    bf16::histogram(data, &mut sym);
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
