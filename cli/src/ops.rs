//! What `compress`, `decompress`, `verify` and `ls` do to one input: a model file (archive) or a
//! raw stream of one kind (frames), from a file or a stream, to a file or standard output.

use std::io::{Seek, Write};
use std::path::Path;
use std::time::Instant;

use serde_json::json;
use weightzip::archive::{self, Archive};
use weightzip::atomic::WriteOptions;
use weightzip::{frame, safetensors, Kind, Options};

use crate::files::{err, escape_name, with_progress, Compare, Input, Output};

/// Settings every operation shares.
pub struct Settings {
    pub threads: u32,
    pub chunk_size: u32,
    /// Compress with the fast variant (--fast).
    pub fast: bool,
    /// Values per row of a raw stream (--row-len), 0 if not given.
    pub row_len: u64,
    pub quiet: bool,
    pub verbose: bool,
    pub json: bool,
    pub force: bool,
    /// fsync outputs before they are renamed into place (--sync, --rm).
    pub sync: bool,
}

impl Settings {
    fn options(&self, progress: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Options {
        Options {
            threads: self.threads,
            chunk_size: self.chunk_size,
            progress: Some(progress),
            fast: self.fast,
            row_len: self.row_len,
        }
    }

    fn write_options(&self, input: &Input) -> WriteOptions {
        WriteOptions { sync: self.sync, mode: input.mode() }
    }

    /// The summary line of a finished input, on stderr (stdout may carry the data).
    fn say(&self, line: String) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }
}

/// What a container's first bytes say it is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Content {
    Gguf,
    Safetensors,
    Archive,
    Frame,
    Other,
}

fn content(head: &[u8]) -> Content {
    if head.starts_with(b"GGUF") {
        Content::Gguf
    } else if head.starts_with(&archive::format::MAGIC) {
        Content::Archive
    } else if head.starts_with(&frame::MAGIC) {
        Content::Frame
    } else if safetensors::looks_like(head) {
        Content::Safetensors
    } else {
        Content::Other
    }
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs.max(1e-9)
}

/// `compress`: a GGUF or safetensors file into an archive, or (with `kind`) a raw stream into a
/// frame (one frame per 64 MiB segment when it comes from a stream).
pub fn compress(mut input: Input, out: &Output, kind: Option<Kind>, s: &Settings) -> Result<(), String> {
    let name = input.name();
    let head = input.peek(9)?;
    let found = content(&head);
    let t = Instant::now();
    let Some(kind) = kind else {
        if !matches!(found, Content::Gguf | Content::Safetensors) {
            return Err(format!(
                "{name}: neither a GGUF nor a safetensors file; to compress a raw stream, name its kind with --kind"
            ));
        }
        if input.is_stream() {
            return Err(format!(
                "{name}: cannot make an archive of a model file read from a pipe or device: the archive's index \
                 needs the file's tensor table and random access to it; save it to a file first, or compress \
                 it as a raw stream with --kind"
            ));
        }
        let wo = s.write_options(&input);
        let size = match &input {
            Input::File { len, .. } => *len,
            Input::Stream { .. } => 0,
        };
        let (file, path) = input.into_file()?;
        let mut written = None;
        with_progress("compress", size, !s.quiet, |p| {
            out.write_seekable(&name, &wo, |w| {
                written = Some(archive::compress_open_file(file, &path, w, &s.options(p))?);
                Ok(())
            })
        })?;
        let w = written.ok_or("compress: no archive written")?;
        let secs = t.elapsed().as_secs_f64();
        let ratio = w.original_size as f64 / w.archive_size.max(1) as f64;
        if s.json {
            println!(
                "{}",
                json!({"input": name, "output": out.name(), "container": w.container.name(),
                       "tensors": w.index.tensors.len(), "original_size": w.original_size,
                       "archive_size": w.archive_size, "ratio": ratio, "seconds": secs})
            );
        }
        s.say(format!(
            "{name} -> {}: {} tensors, {} -> {} bytes, ratio {ratio:.4} ({:.0} MB/s)",
            out.name(),
            w.index.tensors.len(),
            w.original_size,
            w.archive_size,
            mbps(w.original_size, secs)
        ));
        return Ok(());
    };
    if matches!(found, Content::Gguf | Content::Safetensors) && !s.force {
        let what = if found == Content::Gguf { "GGUF" } else { "safetensors" };
        return Err(format!(
            "{name} is a {what} file: --kind {} would code it as one raw stream (no per-tensor reads, and each \
             tensor type would not get its own codec); drop --kind to make an archive, or add --force",
            kind.name()
        ));
    }
    let wo = s.write_options(&input);
    let (original, compressed, frames) = match input {
        // A file: one frame, the bytes `weightzip::compress` gives.
        // (`read_all` fails when the file is no longer `len` bytes long.)
        Input::File { len, .. } => {
            let src = input.read_all()?;
            // Written as it is laid out, not assembled in memory first: to a file a window of
            // chunks at a time (frame::compress_seekable), to standard output in one piece.
            let mut size = 0;
            match out {
                Output::Path(_) => with_progress("compress", len, !s.quiet, |p| {
                    out.write_seekable(&name, &wo, |w| {
                        let o = s.options(p);
                        // A path that names a FIFO, or a device that cannot seek, is written in
                        // one piece.
                        if w.stream_position().is_err() {
                            size = frame::compress_to(kind, &src, &o, w)?;
                            return Ok(());
                        }
                        size = match frame::compress_seekable(kind, &src, &o, w)? {
                            Some(n) => n,
                            None => {
                                // The coded frame came out no smaller than storing: it goes, and
                                // the stored frame is written in its place (a device such as
                                // /dev/null has no length to cut).
                                let io = |e| weightzip::Error::io("write", None, e);
                                w.flush().map_err(io)?;
                                if w.get_ref().metadata().map_err(io)?.is_file() {
                                    w.get_mut().set_len(0).map_err(io)?;
                                }
                                frame::compress_to(kind, &src, &Options { progress: None, ..o }, w)?
                            }
                        };
                        Ok(())
                    })
                })?,
                Output::Stdout => with_progress("compress", len, !s.quiet, |p| {
                    out.write(&wo, |w| {
                        size = frame::compress_to(kind, &src, &s.options(p), w)?;
                        Ok(())
                    })
                })
                .map_err(|e| err(&name, e))?,
            }
            (src.len() as u64, size, 1)
        }
        // A stream: frames of 64 MiB segments as they arrive.
        stream => {
            let mut info = frame::StreamInfo::default();
            out.write(&wo, |w| {
                info = frame::compress_stream(kind, stream.into_reader(), w, &s.options(Default::default()))?;
                Ok(())
            })
            .map_err(|e| err(&name, e))?;
            (info.original_size, info.compressed_size, info.frames)
        }
    };
    let ratio = original as f64 / compressed.max(1) as f64;
    if s.json {
        println!(
            "{}",
            json!({"input": name, "output": out.name(), "kind": kind.name(), "original_size": original,
                   "frame_size": compressed, "frames": frames, "ratio": ratio})
        );
    }
    let secs = t.elapsed().as_secs_f64();
    let extra = if s.verbose { format!(" ({:.0} MB/s)", mbps(original, secs)) } else { String::new() };
    let frames = if frames > 1 { format!(", {frames} frames") } else { String::new() };
    s.say(format!("{name} -> {}: {original} -> {compressed} bytes, ratio {ratio:.4}{frames}{extra}", out.name()));
    Ok(())
}

/// `decompress`: an archive restores its file; frames (one, or a stream of them) decode a
/// window at a time.
pub fn decompress(mut input: Input, out: &Output, s: &Settings) -> Result<(), String> {
    let name = input.name();
    let head = input.peek(4)?;
    let t = Instant::now();
    let wo = s.write_options(&input);
    let (written, archive_size) = match content(&head) {
        Content::Archive => {
            let (file, path) = input.into_file()?;
            let a = Archive::open_file(file, &path).map_err(|e| err(&name, e))?;
            with_progress("decompress", a.original_size(), !s.quiet, |p| {
                out.write(&wo, |w| a.restore_to(&mut AsWrite(w), &s.options(p)))
            })
            .map_err(|e| err(&name, e))?;
            (a.original_size(), Some(a.archive_size()))
        }
        Content::Frame => {
            let mut n = 0;
            out.write(&wo, |w| {
                n = frame::decompress_stream(input.into_reader(), w, &s.options(Default::default()))?;
                Ok(())
            })
            .map_err(|e| err(&name, e))?;
            (n, None)
        }
        _ => return Err(format!("{name}: not a weightzip archive or frame (bad magic)")),
    };
    let secs = t.elapsed().as_secs_f64();
    if s.json {
        println!(
            "{}",
            json!({"input": name, "output": out.name(), "original_size": written, "archive_size": archive_size,
                   "seconds": secs})
        );
    }
    s.say(format!("{name} -> {}: {written} bytes ({:.0} MB/s)", out.name(), mbps(written, secs)));
    Ok(())
}

/// A `&mut dyn Write` as a sized writer (what `restore_to` takes).
struct AsWrite<'a>(&'a mut (dyn Write + Send));

impl Write for AsWrite<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// `verify`: an archive's every tensor against its SHA-256 (and the metadata), a frame's every
/// chunk against its checksum; then, with `original`, the restored bytes against it as they
/// stream past. Memory is a window whatever the input claims.
pub fn verify(mut input: Input, original: Option<Input>, s: &Settings) -> Result<(), String> {
    let name = input.name();
    let head = input.peek(4)?;
    let orig_name = original.as_ref().map(|o| o.name());
    let mut cmp = original.map(|o| Compare::new(o.into_reader()));
    let summary = match content(&head) {
        Content::Archive => {
            let (file, path) = input.into_file()?;
            let a = Archive::open_file(file, &path).map_err(|e| err(&name, e))?;
            with_progress("verify", a.original_size(), !s.quiet, |p| a.verify(&s.options(p))).map_err(
                |(i, e)| match i {
                    Some(i) => format!("{name}: tensor {} ({}): {e}", i, escape_name(&a.tensors()[i].name)),
                    None => err(&name, e),
                },
            )?;
            if cmp.is_some() {
                let mut w = sink(&mut cmp);
                with_progress("compare", a.original_size(), !s.quiet, |p| a.restore_to(&mut w, &s.options(p)))
                    .map_err(|e| err(&name, e))?;
            }
            json!({"ok": true, "container": a.container().name(), "tensors": a.tensors().len(),
                   "original_size": a.original_size(), "archive_size": a.archive_size()})
        }
        Content::Frame => {
            let info = frame::read_info(&input.peek(frame::HEADER_LEN)?).map_err(|e| err(&name, e))?;
            let n = frame::decompress_stream(input.into_reader(), &mut sink(&mut cmp), &s.options(Default::default()))
                .map_err(|e| err(&name, e))?;
            // A stream of several frames reports its first frame's kind and sizes, and the total.
            json!({"ok": true, "kind": info.kind.name(), "original_size": n, "frame_size": info.frame_size,
                   "chunks": info.chunk_count})
        }
        _ => return Err(format!("{name}: not a weightzip archive or frame (bad magic)")),
    };
    let mut matches = None;
    if let (Some(c), Some(o)) = (cmp.as_mut(), &orig_name) {
        c.finish().map_err(|e| crate::files::io_error("read", Path::new(o), e))?;
        if let Some(at) = c.differs {
            // An archive restores a file; a frame holds a stream.
            let verb = if summary.get("container").is_some() { "restore" } else { "match" };
            return Err(format!("{name} does not {verb} {o}: first difference at byte {at}"));
        }
        matches = Some(true);
    }
    if s.json {
        let mut j = summary;
        j["matches_original"] = json!(matches);
        j["input"] = json!(name);
        println!("{j}");
    } else {
        let what = match summary.get("container") {
            Some(c) => format!(
                "{} archive, {} tensors, {} -> {} bytes, every tensor matches its SHA-256",
                c.as_str().unwrap_or(""),
                summary["tensors"],
                summary["archive_size"],
                summary["original_size"]
            ),
            None => format!(
                "{} frame, {} -> {} bytes, {} chunks, every chunk matches its checksum",
                summary["kind"].as_str().unwrap_or(""),
                summary["frame_size"],
                summary["original_size"],
                summary["chunks"]
            ),
        };
        let orig = if matches.is_some() { ", restores the original exactly" } else { "" };
        println!("{name}: OK ({what}{orig})");
    }
    Ok(())
}

/// Where decoded bytes go while verifying: the comparison with the original, or nowhere.
fn sink<'a>(cmp: &'a mut Option<Compare<Box<dyn std::io::Read + Send>>>) -> Box<dyn Write + Send + 'a> {
    match cmp {
        Some(c) => Box::new(c),
        None => Box::new(std::io::sink()),
    }
}

/// `ls`: an archive's tensor table with per-tensor ratios (names escaped for the terminal, exact
/// in JSON), or what a frame's header says.
pub fn ls(mut input: Input, json: bool) -> Result<(), String> {
    let name = input.name();
    let head = input.peek(frame::HEADER_LEN)?;
    let ratio = |o: u64, c: u64| o as f64 / c.max(1) as f64;
    match content(&head) {
        Content::Archive => {}
        Content::Frame => {
            let info = frame::read_info(&head).map_err(|e| err(&name, e))?;
            let flags = flag_names(info.flags);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "frame": true, "kind": info.kind.name(), "method": format!("{:?}", info.method),
                        "flags": info.flags, "flag_names": flags,
                        "original_size": info.original_size, "frame_size": info.frame_size,
                        "chunk_size": info.chunk_size, "chunks": info.chunk_count,
                        "ratio": ratio(info.original_size, info.frame_size)}))
                    .unwrap_or_default()
                );
            } else {
                let flags = if flags.is_empty() { String::new() } else { format!(" ({})", flags.join(", ")) };
                println!(
                    "{name}: frame of {}, method {:?}{flags}, {} -> {} bytes, ratio {:.4}, {} chunks of {} bytes",
                    info.kind.name(),
                    info.method,
                    info.original_size,
                    info.frame_size,
                    ratio(info.original_size, info.frame_size),
                    info.chunk_count,
                    info.chunk_size
                );
            }
            return Ok(());
        }
        _ => return Err(format!("{name}: not a weightzip archive or frame (bad magic)")),
    }
    let (file, path) = input.into_file()?;
    let a = Archive::open_file(file, &path).map_err(|e| err(&name, e))?;
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
                "metadata_size": e.metadata_size, "extra": {"raw_size": e.raw_size, "size": e.size, "method": extra_method_name(e.method)},
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
            escape_name(&t.name),
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

/// The name `ls --json` gives an archive's extra method.
fn extra_method_name(m: u32) -> &'static str {
    match m {
        weightzip::archive::format::EXTRA_GGUF_SPLIT => "gguf-split",
        weightzip::archive::format::EXTRA_GGUF_COLUMNS => "gguf-columns",
        _ => "zstd",
    }
}

/// The names of a frame header's flags (docs/FORMAT.md 2.3), in bit order.
fn flag_names(flags: u32) -> Vec<&'static str> {
    use weightzip::codec::{bf16, grouped};
    [(bf16::split::SIGN_IN_SYMBOL, "sign in symbol"), (grouped::DELTA, "delta"), (bf16::COLUMN_SIGNS, "column signs")]
        .into_iter()
        .filter(|&(bit, _)| flags & bit != 0)
        .map(|(_, name)| name)
        .collect()
}
