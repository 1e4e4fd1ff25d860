//! Efficiency of the rANS coder on real weight streams, and exact decoding.
//!
//! Two bounds, both 0.005 bits/symbol over the empirical order-0 entropy:
//! * the coding loss proper (normalised frequencies plus rANS renormalisation), on every stream;
//! * the whole coded size, serialized table and final states included, on streams of at least
//!   a million symbols, where those fixed per-stream costs (a few hundred bytes) are amortised as
//!   they are in real frames. Smaller streams are reported with their breakdown.

mod common;
/// The bounds the tool reports (R_marginal, the model's entropy), from the tool's own source.
#[allow(dead_code)]
#[path = "../cli/src/stats.rs"]
mod stats;

use common::{raw_fixture, st_tensors, RAW_FIXTURE};
use weightzip::entropy::bits::{BitReader, BitWriter};
use weightzip::entropy::rans::{decode_symbols, encode_symbols, DecTable, STATE_BYTES};
use weightzip::entropy::table::{entropy_bits, FreqTable};

/// Allowed coding loss, bits per symbol.
const MAX_GAP: f64 = 0.005;
/// Streams at least this long must meet the bound with their table and final states included.
const AMORTISED: usize = 1 << 20;

struct Measure {
    name: String,
    symbols: usize,
    alphabet_used: usize,
    scale: u32,
    entropy: f64,
    table_bytes: usize,
    stream_bytes: usize,
    /// Ideal cost of the symbols under the normalised table, bits (no side information).
    model_bits: f64,
}

impl Measure {
    fn bits_per_symbol(&self) -> f64 {
        8.0 * (self.stream_bytes + self.table_bytes) as f64 / self.symbols as f64
    }
    fn gap(&self) -> f64 {
        self.bits_per_symbol() - self.entropy
    }
    fn per(&self, bits: f64) -> f64 {
        bits / self.symbols as f64
    }
    /// Loss from coding with quantised frequencies instead of the exact counts.
    fn quantisation(&self) -> f64 {
        self.per(self.model_bits) - self.entropy
    }
    /// The serialized table.
    fn table(&self) -> f64 {
        self.per(8.0 * self.table_bytes as f64)
    }
    /// The final states at the head of the stream (fixed per stream).
    fn flush(&self) -> f64 {
        self.per(8.0 * STATE_BYTES as f64)
    }
    /// What the rANS coder adds beyond the ideal cost of its table (renormalisation granularity).
    fn coder(&self) -> f64 {
        self.per(8.0 * (self.stream_bytes - STATE_BYTES) as f64 - self.model_bits)
    }
}

/// Builds the table, writes it, reads it back, codes and decodes the stream; checks the exact
/// roundtrip and returns the sizes.
fn measure(name: &str, symbols: &[u16], alphabet: usize, scale: u32) -> Measure {
    let mut counts = vec![0u64; alphabet];
    for &s in symbols {
        counts[s as usize] += 1;
    }
    let table =
        FreqTable::from_counts(&counts, scale).unwrap_or_else(|e| panic!("{name}: table at scale {scale}: {e:?}"));
    assert_eq!(table.freq.iter().map(|&f| f as u64).sum::<u64>(), 1 << scale, "{name}: frequencies sum to 2^scale");
    for (s, (&c, &f)) in counts.iter().zip(&table.freq).enumerate() {
        assert_eq!(c == 0, f == 0, "{name}: symbol {s} count {c} freq {f}");
    }
    let mut w = BitWriter::new();
    table.write(&mut w);
    let table_bytes = w.finish();
    // The decoder rebuilds the table from its serialized form.
    let read = FreqTable::read(&mut BitReader::new(&table_bytes), alphabet)
        .unwrap_or_else(|e| panic!("{name}: table read: {e:?}"));
    assert_eq!(read, table, "{name}: serialized table does not read back identically");

    let mut stream = Vec::new();
    encode_symbols(symbols, &table, &mut stream).unwrap_or_else(|e| panic!("{name}: encode: {e:?}"));
    let dt = DecTable::new(&read, |s| s as u16);
    let mut back = vec![0u16; symbols.len()];
    decode_symbols(&stream, &dt, &mut back).unwrap_or_else(|e| panic!("{name}: decode: {e:?}"));
    assert!(back == symbols, "{name}: decoded symbols differ");
    // A stream cut short never decodes.
    assert!(decode_symbols(&stream[..stream.len() - 2], &dt, &mut back).is_err(), "{name}: truncated stream decoded");

    Measure {
        name: name.to_string(),
        symbols: symbols.len(),
        alphabet_used: counts.iter().filter(|&&c| c > 0).count(),
        scale,
        entropy: entropy_bits(&counts),
        table_bytes: table_bytes.len(),
        stream_bytes: stream.len(),
        model_bits: table.cost_bits(&counts),
    }
}

/// The real streams: the raw fixture and the three largest safetensors tensors.
fn sources() -> Vec<(String, &'static [u8])> {
    let mut v = vec![(RAW_FIXTURE.to_string(), raw_fixture())];
    let mut ts = st_tensors();
    ts.sort_by(|a, b| b.data.len().cmp(&a.data.len()).then(a.name.cmp(&b.name)));
    v.extend(ts.into_iter().take(3).map(|t| (t.name, t.data)));
    v
}

fn values(data: &[u8]) -> impl Iterator<Item = u16> + '_ {
    data.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn report_and_check(title: &str, ms: &[Measure]) {
    println!("{title}");
    println!(
        "{:<58} {:>8} {:>4} {:>5} {:>8} {:>5} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8}",
        "stream", "symbols", "used", "scale", "H", "table", "coded", "gap", "quant", "table", "flush", "coder"
    );
    for m in ms {
        println!(
            "{:<58} {:>8} {:>4} {:>5} {:>8.5} {:>4}B {:>8.5} {:>+8.5} | {:>+8.5} {:>+8.5} {:>+8.5} {:>+8.5}",
            m.name,
            m.symbols,
            m.alphabet_used,
            m.scale,
            m.entropy,
            m.table_bytes,
            m.bits_per_symbol(),
            m.gap(),
            m.quantisation(),
            m.table(),
            m.flush(),
            m.coder()
        );
        assert!((m.quantisation() + m.table() + m.flush() + m.coder() - m.gap()).abs() < 1e-9);
    }
    println!("(bits/symbol; gap = quant + table + flush + coder: quantised frequencies, serialized table, final rANS states, renormalisation)");
    for m in ms {
        // Coding cannot beat the empirical entropy by more than the flush's fixed bytes allow.
        assert!(m.gap() > -0.001, "{}: coded size {:.5} below entropy {:.5}?", m.name, m.bits_per_symbol(), m.entropy);
    }
    let bad: Vec<String> = ms
        .iter()
        .filter(|m| m.quantisation() + m.coder() > MAX_GAP || (m.symbols >= AMORTISED && m.gap() > MAX_GAP))
        .map(|m| {
            format!(
                "{} (scale {}, {} symbols): gap {:.5} bits/symbol (H {:.5}, coded {:.5}); of which quantisation {:.5}, table {:.5} ({} B), flush {:.5}, coder {:.5}",
                m.name, m.scale, m.symbols, m.gap(), m.entropy, m.bits_per_symbol(), m.quantisation(), m.table(), m.table_bytes, m.flush(), m.coder()
            )
        })
        .collect();
    assert!(bad.is_empty(), "coding loss above {MAX_GAP} bits/symbol:\n{}", bad.join("\n"));
}

#[test]
fn high_and_low_bytes_scale_15() {
    let mut ms = Vec::new();
    for (name, data) in sources() {
        let hi: Vec<u16> = data.chunks_exact(2).map(|b| b[1] as u16).collect();
        let lo: Vec<u16> = data.chunks_exact(2).map(|b| b[0] as u16).collect();
        ms.push(measure(&format!("{name} high byte"), &hi, 256, 15));
        ms.push(measure(&format!("{name} low byte"), &lo, 256, 15));
    }
    report_and_check("byte streams, scale 15", &ms);
}

#[test]
fn high_and_low_bytes_scale_12() {
    let mut ms = Vec::new();
    for (name, data) in sources() {
        let hi: Vec<u16> = data.chunks_exact(2).map(|b| b[1] as u16).collect();
        let lo: Vec<u16> = data.chunks_exact(2).map(|b| b[0] as u16).collect();
        ms.push(measure(&format!("{name} high byte"), &hi, 256, 12));
        ms.push(measure(&format!("{name} low byte"), &lo, 256, 12));
    }
    report_and_check("byte streams, scale 12", &ms);
}

#[test]
fn bf16_12bit_symbols_with_the_codecs_escapes() {
    // The stream the bf16 codec actually codes: 12-bit symbols at the codec's scale, with the
    // symbols its model escapes replaced by ESC and charged 16 bits each in the escape list.
    use weightzip::codec::bf16::{Model, ESC, SCALE, SYMBOLS};
    let mut ms = Vec::new();
    for (name, data) in sources() {
        let sym: Vec<u16> = values(data).map(|v| (v >> 3) & 0xFFF).collect();
        let mut counts = vec![0u64; SYMBOLS];
        for &s in &sym {
            counts[s as usize] += 1;
        }
        let model = Model::from_counts(&counts).unwrap();
        let coded: Vec<u16> =
            sym.iter().map(|&s| if model.table.freq[s as usize] == 0 { ESC as u16 } else { s }).collect();
        let escapes = sym.len() - coded.iter().filter(|&&s| s != ESC as u16).count();
        let mut m = measure(&format!("{name} 12-bit symbols, {escapes} escaped"), &coded, SYMBOLS + 1, SCALE);
        // Measure against the entropy of the original symbols, with the escape list in the stream.
        m.entropy = entropy_bits(&counts);
        m.stream_bytes += (12 * escapes).div_ceil(8);
        m.model_bits += 12.0 * escapes as f64;
        ms.push(m);
    }
    report_and_check("bf16 12-bit symbols as the codec codes them (the codec's scale, escapes)", &ms);
}

#[test]
fn codec_overhead_over_its_model_entropy() {
    // For reference next to the raw coder: the whole frame (escapes, per-run tables, chunk
    // table, header) against the entropy of weightzip's model, H(12-bit symbol) + 4 raw bits.
    for (name, data) in sources() {
        let f = weightzip::compress(weightzip::Kind::Bf16, data, &weightzip::Options::default()).unwrap();
        assert!(weightzip::decompress(&f, &weightzip::Options::default()).unwrap() == data);
        let s = stats::bf16_stats(data);
        let bits = 8.0 * f.len() as f64 / s.values as f64;
        println!(
            "{name}: frame {bits:.5} bits/value, model entropy {:.5}, overhead {:+.5}",
            s.h_model,
            bits - s.h_model
        );
        // A frame of real weights costs no more than 0.02 bit/value above its model's entropy.
        assert!(bits - s.h_model < 0.02, "{name}: frame overhead {:.5} bits/value", bits - s.h_model);
    }
}
