//! Inputs and outputs as the command line names them: files, `-` for standard input and output,
//! pipes, FIFOs, sockets and devices; atomic outputs that never clobber an input; the progress
//! bar; cleanup on signals.
//!
//! An input is opened once (a FIFO opened twice waits for a writer that has gone) and never
//! memory-mapped: a regular file is read with `pread`, anything else as a stream. A file
//! truncated while we read it is then an error with its name, never a SIGBUS.

use std::fs::{self, File};
use std::io::{BufWriter, IsTerminal, Read, Seek, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use weightzip::atomic::{self, WriteOptions};

/// The message of a failed file operation, as zstd words it: `cannot open x: No such file or
/// directory`.
pub fn io_error(action: &'static str, path: &Path, e: std::io::Error) -> String {
    weightzip::Error::io(action, Some(path), e).to_string()
}

/// An error about `name`: an I/O error names its own file, any other is prefixed with `name`.
pub fn err(name: &str, e: weightzip::Error) -> String {
    match e {
        weightzip::Error::Io(_) => e.to_string(),
        e => format!("{name}: {e}"),
    }
}

/// An opened input.
pub enum Input {
    /// A regular file, read with `pread`.
    File { path: PathBuf, file: File, len: u64 },
    /// Standard input, a pipe, a FIFO, a socket or a device: read once, front to back. `head`
    /// holds what `peek` read ahead.
    Stream { name: String, reader: Box<dyn Read + Send>, head: Vec<u8> },
}

impl Input {
    /// Opens `arg`: `-` is standard input.
    pub fn open(arg: &Path) -> Result<Input, String> {
        if arg.as_os_str() == "-" {
            return Ok(Input::Stream { name: "stdin".into(), reader: Box::new(std::io::stdin()), head: Vec::new() });
        }
        let file = File::open(arg).map_err(|e| io_error("open", arg, e))?;
        let meta = file.metadata().map_err(|e| io_error("stat", arg, e))?;
        if meta.is_dir() {
            return Err(io_error("read", arg, std::io::Error::from_raw_os_error(libc::EISDIR)));
        }
        if meta.is_file() {
            return Ok(Input::File { path: arg.to_path_buf(), file, len: meta.len() });
        }
        Ok(Input::Stream { name: arg.display().to_string(), reader: Box::new(file), head: Vec::new() })
    }

    /// The input's name in messages.
    pub fn name(&self) -> String {
        match self {
            Input::File { path, .. } => path.display().to_string(),
            Input::Stream { name, .. } => name.clone(),
        }
    }

    /// The path of a regular file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Input::File { path, .. } => Some(path),
            Input::Stream { .. } => None,
        }
    }

    pub fn is_stream(&self) -> bool {
        matches!(self, Input::Stream { .. })
    }

    /// The permission bits of a regular file (what its output gets, as zstd does).
    pub fn mode(&self) -> Option<u32> {
        match self {
            Input::File { file, .. } => file.metadata().ok().map(|m| m.permissions().mode() & 0o777),
            Input::Stream { .. } => None,
        }
    }

    /// Up to the first `n` bytes (fewer when the input is shorter), without consuming them.
    pub fn peek(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let name = self.name();
        match self {
            Input::File { file, len, path } => {
                let mut b = vec![0u8; n.min(*len as usize)];
                file.read_exact_at(&mut b, 0).map_err(|e| io_error("read", path, e))?;
                Ok(b)
            }
            Input::Stream { reader, head, .. } => {
                while head.len() < n {
                    let mut b = vec![0u8; n - head.len()];
                    match reader.read(&mut b) {
                        Ok(0) => break,
                        Ok(k) => head.extend_from_slice(&b[..k]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(io_error("read", Path::new(&name), e)),
                    }
                }
                Ok(head[..n.min(head.len())].to_vec())
            }
        }
    }

    /// The whole input as a reader, from its first byte (what `peek` read included).
    pub fn into_reader(self) -> Box<dyn Read + Send> {
        match self {
            Input::File { file, .. } => Box::new(std::io::BufReader::with_capacity(1 << 20, ReadAt { file, at: 0 })),
            Input::Stream { reader, head, .. } => Box::new(std::io::Cursor::new(head).chain(reader)),
        }
    }

    /// Everything the input holds, in memory. A file is read straight into a buffer of its
    /// length from the allocator's zeroed pages (huge pages where the kernel has them):
    /// `read_to_end` zeroed the room first, and the page faults of that first touch took 15% of
    /// compressing a 45 MB bf16 stream. A file that is not that long any more, or longer, is an
    /// error.
    pub fn read_all(self) -> Result<Vec<u8>, String> {
        let name = self.name();
        if let Input::File { file, len, path } = &self {
            let mut v = weightzip::memory::alloc_zeroed(*len).map_err(|e| format!("{name}: {e}"))?;
            let changed = || format!("{name}: the file changed size while it was read");
            file.read_exact_at(&mut v, 0).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => changed(),
                _ => io_error("read", path, e),
            })?;
            match file.read_at(&mut [0u8], *len) {
                Ok(0) => return Ok(v),
                Ok(_) => return Err(changed()),
                Err(e) => return Err(io_error("read", path, e)),
            }
        }
        let mut v = Vec::new();
        self.into_reader().read_to_end(&mut v).map_err(|e| io_error("read", Path::new(&name), e))?;
        Ok(v)
    }

    /// The input as an open regular file: a file as it is; a stream copied first into an
    /// unnamed temporary file (for what needs random access: an archive's index is at its end).
    pub fn into_file(self) -> Result<(File, PathBuf), String> {
        match self {
            Input::File { file, path, .. } => Ok((file, path)),
            stream => {
                let name = stream.name();
                let mut f = spool_file()?;
                std::io::copy(&mut stream.into_reader(), &mut f).map_err(|e| io_error("read", Path::new(&name), e))?;
                Ok((f, PathBuf::from(name)))
            }
        }
    }
}

/// A file read front to back with `pread`, so that a truncation under us reads short instead of
/// faulting (the same file descriptor's position is never used).
struct ReadAt {
    file: File,
    at: u64,
}

impl Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// An unnamed temporary file in the temporary directory (removed when closed, even if we are
/// killed).
pub fn spool_file() -> Result<File, String> {
    let dir = std::env::temp_dir();
    let path = dir.join(format!(".weightzip-spool-{}-{}", std::process::id(), next_id()));
    let f = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| io_error("create", &path, e))?;
    fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
    Ok(f)
}

fn next_id() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Whether `m` is the null device (character device 1:3 on Linux), whatever its path.
fn is_dev_null(m: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    m.file_type().is_char_device() && fs::metadata("/dev/null").is_ok_and(|n| n.rdev() == m.rdev())
}

/// Where an output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Path(PathBuf),
}

impl Output {
    pub fn name(&self) -> String {
        match self {
            Output::Stdout => "stdout".into(),
            Output::Path(p) => p.display().to_string(),
        }
    }

    /// Refuses to write a path that is the input or (without `force`) already exists.
    pub fn check(&self, input: &Input, force: bool) -> Result<(), String> {
        let Output::Path(out) = self else { return Ok(()) };
        if let Ok(om) = fs::metadata(out) {
            if let Input::File { file, .. } = input {
                if let Ok(im) = file.metadata() {
                    if im.dev() == om.dev() && im.ino() == om.ino() {
                        return Err(format!("refusing to overwrite the input file {}", out.display()));
                    }
                }
            }
            // /dev/null is where a timing run sends its output: zstd takes `-o /dev/null`
            // without --force, and so does this (it is written in place, never replaced).
            if !force && !is_dev_null(&om) {
                return Err(format!("{} already exists (use --force to overwrite)", out.display()));
            }
        }
        Ok(())
    }

    /// Writes the output through `fill`: a path atomically (a temporary file renamed into place;
    /// on any error nothing is left), standard output directly. The error is `fill`'s (the
    /// caller names its input in it) or an I/O error naming the output.
    pub fn write(
        &self,
        wo: &WriteOptions,
        fill: impl FnOnce(&mut (dyn Write + Send)) -> weightzip::Result<()>,
    ) -> weightzip::Result<()> {
        match self {
            Output::Path(p) => atomic::write_file_with(p, wo, |w| fill(w)),
            Output::Stdout => {
                // `Stdout`, not a lock of it: the writer may be handed to another thread.
                let mut w = BufWriter::with_capacity(1 << 20, std::io::stdout());
                fill(&mut w).map_err(|e| e.with_path(Path::new("stdout")))?;
                w.flush().map_err(|e| weightzip::Error::io("write", Some(Path::new("stdout")), e))
            }
        }
    }

    /// Like `write`, for writers that seek (an archive's header is written last): standard output
    /// gets the bytes of an unnamed temporary file once it is complete. An error of `fill` other
    /// than I/O (which names its file) is named after `input`, whose bytes caused it.
    pub fn write_seekable(
        &self,
        input: &str,
        wo: &WriteOptions,
        fill: impl FnOnce(&mut BufWriter<File>) -> weightzip::Result<()>,
    ) -> Result<(), String> {
        match self {
            Output::Path(p) => atomic::write_file_with(p, wo, fill).map_err(|e| err(input, e)),
            Output::Stdout => {
                let mut w = BufWriter::with_capacity(1 << 20, spool_file()?);
                fill(&mut w).map_err(|e| err(input, e.with_path(Path::new("stdout"))))?;
                let mut f = w.into_inner().map_err(|e| io_error("write", Path::new("spool"), e.into_error()))?;
                f.rewind().map_err(|e| io_error("read", Path::new("spool"), e))?;
                let mut out = std::io::stdout().lock();
                std::io::copy(&mut f, &mut out).map_err(|e| io_error("write", Path::new("stdout"), e))?;
                out.flush().map_err(|e| io_error("write", Path::new("stdout"), e))
            }
        }
    }
}

/// Whether standard output is a terminal (compressed bytes are never written to one).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Removes the input `path` once its output is complete (`--rm`).
pub fn remove_input(path: &Path) -> Result<(), String> {
    fs::remove_file(path).map_err(|e| io_error("remove", path, e))
}

/// Makes SIGINT, SIGTERM and SIGHUP remove the outputs being written before the process exits
/// (status 128 + signal), so an interrupted run leaves no partial file. Call first in `main`,
/// before any thread starts: the signals are blocked in every thread and taken by one thread
/// that waits for them, so the cleanup runs as ordinary code, not in a signal handler.
pub fn clean_up_on_signals() {
    // SAFETY: sigset operations on a local set; pthread_sigmask before other threads exist.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
            let mut sig = 0;
            if libc::sigwait(&set, &mut sig) == 0 {
                // An output renamed into place before the signal is complete and stays; one
                // still being written is removed.
                match atomic::remove_temporaries() {
                    0 => eprintln!("weightzip: interrupted"),
                    _ => eprintln!("weightzip: interrupted; the output being written was removed"),
                }
                libc::_exit(128 + sig);
            }
        });
    }
}

/// Runs `work` with a progress counter; draws a bar on a terminal when the work is large and
/// `show` allows it (not with -q).
pub fn with_progress<T>(label: &str, total: u64, show: bool, work: impl FnOnce(Arc<AtomicU64>) -> T) -> T {
    let counter = Arc::new(AtomicU64::new(0));
    let show = show && total >= (64 << 20) && std::io::stderr().is_terminal();
    if !show {
        return work(counter);
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = std::thread::scope(|s| {
        let (c, d, b) = (counter.clone(), done.clone(), bar.clone());
        s.spawn(move || {
            while !d.load(Ordering::Relaxed) {
                b.set_position(c.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let r = work(counter.clone());
        done.store(true, Ordering::Relaxed);
        r
    });
    bar.finish_and_clear();
    r
}

/// Writes bytes nowhere but compares them with what `expected` yields, in order, without
/// storing either (verify against an original of any size, on a pipe too).
pub struct Compare<R: Read> {
    pub expected: R,
    pub at: u64,
    /// The offset of the first difference, or of the end of the shorter side.
    pub differs: Option<u64>,
    buf: Vec<u8>,
}

impl<R: Read> Compare<R> {
    pub fn new(expected: R) -> Compare<R> {
        Compare { expected, at: 0, differs: None, buf: Vec::new() }
    }

    /// After the last write: whether the expected side had more bytes.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if self.differs.is_none() {
            let mut one = [0u8; 1];
            if self.expected.read(&mut one)? > 0 {
                self.differs = Some(self.at);
            }
        }
        Ok(())
    }
}

impl<R: Read> Write for Compare<R> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.differs.is_none() {
            self.buf.resize(b.len(), 0);
            let mut got = 0;
            while got < b.len() {
                match self.expected.read(&mut self.buf[got..])? {
                    0 => break,
                    n => got += n,
                }
            }
            // Whole slices first (memcmp); the byte position only when they differ.
            if got < b.len() || b[..got] != self.buf[..got] {
                let same = b[..got].iter().zip(&self.buf[..got]).take_while(|(x, y)| x == y).count();
                self.differs = Some(self.at + same as u64);
            }
        }
        self.at += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Escapes what a terminal would act on in a name: control characters, DEL and backslash as
/// `\xNN` / `\\`; invalid UTF-8 bytes as `\xNN`. Names print on one line and cannot forge rows or
/// send escape sequences.
pub fn escape_name(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    for b in c.to_string().bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}
