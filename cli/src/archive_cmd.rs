//! The CLI's archive side: whole model files (GGUF) in and out of archives, verified, listed.

use std::io::Write;
use std::path::Path;

use serde_json::json;
use weightzip::archive::{self, Archive};
use weightzip::Options;

use crate::files::{with_progress, Input};

/// An error about `path`: an I/O error names its own file (`cannot open x: No such file or
/// directory`), any other is prefixed with the path.
pub fn err(path: &Path, e: weightzip::Error) -> String {
    match e {
        weightzip::Error::Io(_) => e.to_string(),
        e => format!("{}: {e}", path.display()),
    }
}

/// An error of work that reads `input` and writes `output`: both named, since either may be at
/// fault (an I/O error names the file it concerns).
fn err2(input: &Path, output: &Path, e: weightzip::Error) -> String {
    match e {
        weightzip::Error::Io(_) => e.to_string(),
        e => format!("{} -> {}: {e}", input.display(), output.display()),
    }
}

/// `weightzip compress model.gguf` (or .safetensors): the archive, written atomically.
pub fn compress(input: &Path, output: &Path, threads: u32, chunk_size: u32, json: bool) -> Result<(), String> {
    let size = std::fs::metadata(input).map_err(|e| crate::files::io_error("stat", input, e))?.len();
    let t = std::time::Instant::now();
    let w = with_progress("compress", size, |p| {
        archive::compress_file(input, output, &Options { threads, chunk_size, progress: Some(p) })
    })
    .map_err(|e| err2(input, output, e))?;
    let secs = t.elapsed().as_secs_f64();
    let ratio = w.original_size as f64 / w.archive_size.max(1) as f64;
    if json {
        println!(
            "{}",
            json!({"input": input.display().to_string(), "output": output.display().to_string(),
                   "container": w.container.name(), "tensors": w.index.tensors.len(), "original_size": w.original_size,
                   "archive_size": w.archive_size, "ratio": ratio, "seconds": secs})
        );
    } else {
        eprintln!(
            "{} -> {}: {} tensors, {} -> {} bytes, ratio {ratio:.4} ({:.0} MB/s)",
            input.display(),
            output.display(),
            w.index.tensors.len(),
            w.original_size,
            w.archive_size,
            w.original_size as f64 / 1e6 / secs.max(1e-9)
        );
    }
    Ok(())
}

/// `weightzip decompress model.gguf.wz`: the original file, restored atomically.
pub fn decompress(input: &Path, output: &Path, threads: u32, json: bool) -> Result<(), String> {
    let a = Archive::open_path(input).map_err(|e| err(input, e))?;
    let t = std::time::Instant::now();
    with_progress("decompress", a.original_size(), |p| {
        a.restore_file(output, &Options { threads, progress: Some(p), ..Options::default() })
    })
    .map_err(|e| err2(input, output, e))?;
    let secs = t.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            json!({"input": input.display().to_string(), "output": output.display().to_string(),
                   "original_size": a.original_size(), "archive_size": a.archive_size(), "seconds": secs})
        );
    } else {
        eprintln!(
            "{} -> {}: {} bytes ({:.0} MB/s)",
            input.display(),
            output.display(),
            a.original_size(),
            a.original_size() as f64 / 1e6 / secs.max(1e-9)
        );
    }
    Ok(())
}

/// Compares what is written to it with `expected`, without storing it.
struct Compare<'a> {
    expected: &'a [u8],
    at: usize,
    differs: Option<usize>,
}

impl Write for Compare<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.differs.is_none() {
            let want = self.expected.get(self.at..self.at + b.len());
            if want != Some(b) {
                let first = want.map_or(0, |w| w.iter().zip(b).take_while(|(x, y)| x == y).count());
                self.differs = Some(self.at + first);
            }
        }
        self.at += b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `weightzip verify ARCHIVE [ORIGINAL]`: every tensor against its SHA-256, the metadata against
/// its own, and the restored bytes against ORIGINAL as they stream past.
pub fn verify(input: &Path, original: Option<&Path>, threads: u32, json: bool) -> Result<(), String> {
    let a = Archive::open_path(input).map_err(|e| err(input, e))?;
    let opts = |p| Options { threads, progress: Some(p), ..Options::default() };
    with_progress("verify", a.original_size(), |p| a.verify(&opts(p))).map_err(|(i, e)| match i {
        Some(i) => {
            format!("{}: tensor {} ({}): {e}", input.display(), i, String::from_utf8_lossy(&a.tensors()[i].name))
        }
        None => err(input, e),
    })?;
    let mut matches = None;
    if let Some(orig) = original {
        let o = Input::open(orig)?;
        let mut cmp = Compare { expected: o.bytes(), at: 0, differs: None };
        with_progress("compare", a.original_size(), |p| a.restore_to(&mut cmp, &opts(p))).map_err(|e| err(input, e))?;
        if cmp.at != o.bytes().len() && cmp.differs.is_none() {
            cmp.differs = Some(cmp.at.min(o.bytes().len()));
        }
        if let Some(at) = cmp.differs {
            return Err(format!(
                "{} does not restore {}: first difference at byte {at}",
                input.display(),
                orig.display()
            ));
        }
        matches = Some(true);
    }
    if json {
        println!(
            "{}",
            json!({"ok": true, "container": a.container().name(), "tensors": a.tensors().len(),
                   "original_size": a.original_size(), "archive_size": a.archive_size(), "matches_original": matches})
        );
    } else {
        println!(
            "{}: OK ({} archive, {} tensors, {} -> {} bytes, every tensor matches its SHA-256{})",
            input.display(),
            a.container().name(),
            a.tensors().len(),
            a.archive_size(),
            a.original_size(),
            if matches.is_some() { ", restores the original exactly" } else { "" }
        );
    }
    Ok(())
}

/// `weightzip ls ARCHIVE`: the tensor table with per-tensor ratios.
pub fn ls(input: &Path, json: bool) -> Result<(), String> {
    let a = Archive::open_path(input).map_err(|e| err(input, e))?;
    let ratio = |o: u64, c: u64| o as f64 / c.max(1) as f64;
    if json {
        let tensors: Vec<_> = a
            .tensors()
            .iter()
            .map(|t| {
                json!({"name": String::from_utf8_lossy(&t.name), "type": a.container().type_name(t.container_type),
                       "type_id": t.container_type, "kind": t.kind.name(), "dims": t.dims,
                       "original_offset": t.orig_offset, "original_size": t.orig_size,
                       "archive_offset": t.arc_offset, "archive_size": t.arc_size,
                       "ratio": ratio(t.orig_size, t.arc_size), "sha256": hex(&t.sha256)})
            })
            .collect();
        let e = &a.index().extra;
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "container": a.container().name(), "original_size": a.original_size(),
                "archive_size": a.archive_size(), "ratio": ratio(a.original_size(), a.archive_size()),
                "metadata_size": e.metadata_size, "extra": {"raw_size": e.raw_size, "size": e.size},
                "tensors": tensors}))
            .unwrap_or_default()
        );
        return Ok(());
    }
    println!("{:<48} {:>7} {:>24} {:>12} {:>12} {:>7}", "name", "type", "dims", "original", "archive", "ratio");
    for t in a.tensors() {
        let dims: Vec<String> = t.dims.iter().map(|d| d.to_string()).collect();
        println!(
            "{:<48} {:>7} {:>24} {:>12} {:>12} {:>7.4}",
            String::from_utf8_lossy(&t.name),
            a.container().type_name(t.container_type),
            dims.join("x"),
            t.orig_size,
            t.arc_size,
            ratio(t.orig_size, t.arc_size)
        );
    }
    let e = &a.index().extra;
    println!(
        "{:<48} {:>7} {:>24} {:>12} {:>12} {:>7.4}",
        "(metadata, padding)",
        "",
        "",
        e.raw_size,
        e.size,
        ratio(e.raw_size, e.size)
    );
    println!(
        "{} tensors, {} -> {} bytes, ratio {:.4}",
        a.tensors().len(),
        a.original_size(),
        a.archive_size(),
        ratio(a.original_size(), a.archive_size())
    );
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
