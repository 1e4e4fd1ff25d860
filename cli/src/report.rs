//! What `weightzip bench` writes besides its terminal tables: Markdown tables (`--markdown`) and
//! an SVG plot (`--plot`) of decompression speed against ratio, both made from the same JSON
//! tables the bench prints with `--json`.

use std::fmt::Write as _;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

/// The file part of a path, for titles.
fn short(file: &str) -> &str {
    file.rsplit('/').next().unwrap_or(file)
}

fn title(t: &Value) -> String {
    format!("{} · {}", short(t["file"].as_str().unwrap_or("")), t["domain"].as_str().unwrap_or(""))
}

fn mb(t: &Value) -> f64 {
    t["bytes"].as_f64().unwrap_or(0.0) / 1e6
}

/// The first method whose name starts with `prefix`.
fn method<'a>(t: &'a Value, prefix: &str) -> Option<&'a Value> {
    t["methods"].as_array()?.iter().find(|m| m["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
}

fn f4(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_default()
}

/// A speed: whole MB/s, with one decimal below 10 (zstd -19 compresses at a few MB/s).
fn f0(v: Option<f64>) -> String {
    match v {
        Some(x) if x < 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.0}"),
        None => "-".into(),
    }
}

/// "1 tensor", "2 tensors".
fn tensors(t: &Value) -> String {
    match t["tensors"].as_u64() {
        Some(1) => "1 tensor".into(),
        n => format!("{} tensors", n.unwrap_or(0)),
    }
}

/// The tables as Markdown: a summary (one row per table, the methods side by side), then each
/// table in full.
pub fn markdown(tables: &[Value]) -> String {
    let mut s = String::new();
    let nt = tables.first().map(|t| t["threads"].as_u64().unwrap_or(1)).unwrap_or(1);
    let _ = writeln!(s, "## Summary\n");
    let _ = writeln!(
        s,
        "| data | domain | tensors | MB | weightzip | the paper's method | zstd -19 | zstd -3 | bound | weightzip decode MB/s, 1t / {nt}t | paper decode | zstd -3 decode |"
    );
    let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for t in tables {
        let r = |m: Option<&Value>| m.and_then(|m| m["ratio"].as_f64());
        let (w, p) = (method(t, "weightzip"), method(t, "paper"));
        let bound = t["bounds"].as_array().and_then(|b| b.first()).map(|b| {
            format!("{} ({})", f4(b["ratio"].as_f64()), b["name"].as_str().unwrap_or("").trim_start_matches("bound: "))
        });
        let speeds = |m: Option<&Value>| match m {
            None => String::new(),
            Some(m) => match m["decompress_mbps_nt"].as_f64() {
                Some(n) => format!("{} / {}", f0(m["decompress_mbps_1t"].as_f64()), f0(Some(n))),
                None => f0(m["decompress_mbps_1t"].as_f64()),
            },
        };
        let best =
            t["methods"].as_array().into_iter().flatten().filter_map(|m| m["ratio"].as_f64()).fold(0.0, f64::max);
        let bold = |m: Option<&Value>| match r(m) {
            Some(x) if x == best => format!("**{x:.4}**"),
            x => f4(x),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {} | {}{} | {} | {} | {} | {} | {} | {} |",
            short(t["file"].as_str().unwrap_or("")),
            t["domain"].as_str().unwrap_or(""),
            t["tensors"],
            mb(t),
            bold(w),
            bold(p),
            p.and_then(|p| p["name"].as_str())
                .map(|n| format!(" ({})", n.trim_start_matches("paper: ")))
                .unwrap_or_default(),
            bold(method(t, "zstd -19")),
            bold(method(t, "zstd -3")),
            bound.unwrap_or_default(),
            speeds(w),
            speeds(p),
            speeds(method(t, "zstd -3")),
        );
    }
    let _ = writeln!(s, "\n## Tables");
    for t in tables {
        let _ = writeln!(s, "\n### {}\n", title(t));
        let mut line = format!(
            "{}, {:.1} MB ({} bytes), coded as `{}`; medians of {} runs.",
            tensors(t),
            mb(t),
            t["bytes"],
            t["kind"].as_str().unwrap_or("archive"),
            t["reps"]
        );
        if !t["open_seconds"].is_null() {
            line = format!(
                "{}, {:.1} MB ({} bytes), the whole file; medians of {} runs.",
                tensors(t),
                mb(t),
                t["bytes"],
                t["reps"]
            );
            for (dtype, b) in t["r_marginal_by_dtype"].as_object().into_iter().flatten() {
                let _ = write!(line, " R_marginal of its {dtype} tensors: {}.", f4(b["r_marginal"].as_f64()));
            }
        }
        if let Some(m) = t["r_model_entropy"].as_f64() {
            let _ = write!(
                line,
                " Entropy of weightzip's bf16 model: {m:.4}; of the full exponent/mantissa joint model: {}.",
                f4(t["r_joint_exp_mantissa_entropy"].as_f64())
            );
        }
        let _ = writeln!(s, "{line}\n");
        let _ = writeln!(
            s,
            "| method | ratio | geomean | median | compress MB/s 1t | {nt}t | decompress MB/s 1t | {nt}t |"
        );
        let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|--:|--:|");
        let rows = t["methods"].as_array().into_iter().flatten().chain(t["bounds"].as_array().into_iter().flatten());
        for m in rows {
            let sp = |k: &str| {
                if m[k].is_null() && m.get("compressed_bytes").is_none() {
                    String::new()
                } else {
                    f0(m[k].as_f64())
                }
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                m["name"].as_str().unwrap_or(""),
                f4(m["ratio"].as_f64()),
                f4(m["geomean_ratio"].as_f64()),
                f4(m["median_ratio"].as_f64()),
                sp("compress_mbps_1t"),
                sp("compress_mbps_nt"),
                sp("decompress_mbps_1t"),
                sp("decompress_mbps_nt"),
            );
        }
    }
    s
}

/// A method's family, which sets its colour in the plot.
fn family(name: &str) -> usize {
    if name.starts_with("weightzip") {
        0
    } else if name.starts_with("paper") {
        1
    } else if name.starts_with("zstd -3") {
        2
    } else {
        3
    }
}

const FAMILIES: [&str; 4] = ["weightzip", "the paper's method", "zstd -3", "zstd -19"];
const COLOURS: [RGBColor; 4] =
    [RGBColor(214, 39, 40), RGBColor(31, 119, 180), RGBColor(44, 160, 44), RGBColor(255, 127, 14)];

/// Indices of the points on the Pareto frontier of (ratio, speed), both to be maximised: those
/// no other point matches or beats on both with a strict gain on one; by increasing ratio.
pub fn pareto(points: &[(f64, f64)]) -> Vec<usize> {
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| {
            let (r, v) = points[i];
            !points.iter().any(|&(r2, v2)| r2 >= r && v2 >= v && (r2 > r || v2 > v))
        })
        .collect();
    front.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0));
    front
}

/// Tables of fewer bytes are not plotted.
pub const PLOT_MIN_BYTES: u64 = 1 << 20;

type PlotResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The plot as an SVG document: one panel per table, decompression MB/s at one thread (log
/// scale) against ratio, one point per method, the Pareto frontier's points filled and joined,
/// and each entropy bound as a dashed vertical line.
pub fn plot_svg(tables: &[Value]) -> Result<String, String> {
    let mut svg = String::new();
    draw(tables, &mut svg).map_err(|e| format!("plot: {e}"))?;
    Ok(svg)
}

fn draw(tables: &[Value], svg: &mut String) -> PlotResult<()> {
    // Domains under PLOT_MIN_BYTES are left out: their timings measure call overhead (and the
    // timer), not a codec.
    let panels: Vec<&Value> = tables
        .iter()
        .filter(|t| t["methods"].as_array().is_some_and(|m| !m.is_empty()))
        .filter(|t| t["bytes"].as_u64().unwrap_or(0) >= PLOT_MIN_BYTES)
        .collect();
    let cols = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(cols).max(1);
    let (pw, ph, legend_h) = (560u32, 400u32, 70u32);
    let root = SVGBackend::with_string(svg, (pw * cols as u32, ph * rows as u32 + legend_h)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(legend_h);
    legend(&top)?;
    for (area, t) in body.split_evenly((rows, cols)).iter().zip(&panels) {
        panel(area, t)?;
    }
    root.present()?;
    Ok(())
}

fn legend(area: &DrawingArea<SVGBackend, plotters::coord::Shift>) -> PlotResult<()> {
    let font = ("sans-serif", 18).into_font();
    let mut x = 20;
    for (name, colour) in FAMILIES.iter().zip(COLOURS) {
        area.draw(&Circle::new((x, 22), 7, colour.filled()))?;
        area.draw(&Text::new(*name, (x + 14, 12), font.clone()))?;
        x += 40 + 11 * name.len() as i32;
    }
    area.draw(&Text::new(
        "x: compression ratio; y: decompression MB/s on one thread, log scale. Filled points joined by the line: the Pareto frontier; hollow: dominated. Dashed: entropy bounds. Domains under 1 MiB: tables only.",
        (20, 44),
        ("sans-serif", 15).into_font(),
    ))?;
    Ok(())
}

fn panel(area: &DrawingArea<SVGBackend, plotters::coord::Shift>, t: &Value) -> PlotResult<()> {
    let mut pts: Vec<(f64, f64, usize)> = Vec::new();
    for m in t["methods"].as_array().into_iter().flatten() {
        if let (Some(r), Some(v)) = (m["ratio"].as_f64(), m["decompress_mbps_1t"].as_f64()) {
            pts.push((r, v, family(m["name"].as_str().unwrap_or(""))));
        }
    }
    let bounds: Vec<(String, f64)> = t["bounds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| Some((b["name"].as_str()?.trim_start_matches("bound: ").to_string(), b["ratio"].as_f64()?)))
        .collect();
    let xs = pts.iter().map(|p| p.0).chain(bounds.iter().map(|b| b.1));
    let (x_lo, x_hi) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let pad = ((x_hi - x_lo) * 0.08).max(0.005);
    let (y_lo, y_hi) = pts.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (y_lo, y_hi) = (y_lo / 1.6, y_hi * 1.6);
    // Ticks at 1, 2 and 5 times the powers of ten in range (plotters' own log ticks are the
    // powers of ten alone, often a single one in a panel).
    let steps: &[f64] = if y_hi / y_lo > 30.0 { &[1.0, 5.0] } else { &[1.0, 2.0, 5.0] };
    let ticks: Vec<f64> = (-1..7)
        .flat_map(|e| steps.iter().map(move |m| m * 10f64.powi(e)))
        .filter(|&v| v >= y_lo && v <= y_hi)
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{} ({:.0} MB)", title(t), mb(t)), ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(x_lo - pad..x_hi + pad, (y_lo..y_hi).log_scale().with_key_points(ticks))?;
    chart
        .configure_mesh()
        .x_desc("compression ratio")
        .y_desc("decompression MB/s (1 thread)")
        .x_labels(6)
        .x_label_formatter(&|x| format!("{x:.3}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (name, r) in &bounds {
        chart.draw_series(DashedLineSeries::new(
            [(*r, y_lo), (*r, y_hi)],
            6,
            4,
            ShapeStyle { color: BLACK.mix(0.55), filled: false, stroke_width: 1 },
        ))?;
        // The label beside the line, on the side with more room.
        let right_half = *r > (x_lo + x_hi) / 2.0;
        let (h, dx) = if right_half { (HPos::Right, -pad / 8.0) } else { (HPos::Left, pad / 8.0) };
        chart.draw_series(std::iter::once(Text::new(
            name.clone(),
            (*r + dx, y_hi / 1.1),
            ("sans-serif", 13).into_font().color(&BLACK.mix(0.8)).pos(Pos::new(h, VPos::Top)),
        )))?;
    }
    let xy: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
    let front = pareto(&xy);
    chart.draw_series(LineSeries::new(
        front.iter().map(|&i| xy[i]),
        ShapeStyle { color: BLACK.mix(0.6), filled: false, stroke_width: 2 },
    ))?;
    for (i, &(r, v, fam)) in pts.iter().enumerate() {
        let style = if front.contains(&i) { COLOURS[fam].filled() } else { COLOURS[fam].stroke_width(3) };
        chart.draw_series(std::iter::once(Circle::new((r, v), 7, style)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front() {
        let p = [(1.0, 100.0), (1.5, 50.0), (1.2, 40.0), (1.5, 60.0), (0.9, 100.0)];
        assert_eq!(pareto(&p), vec![0, 3]);
    }
}
