//! File handling for the CLI: memory-mapped inputs, atomic outputs that never clobber an input,
//! and the progress bar for long work.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use memmap2::Mmap;

/// An input file, memory-mapped (or empty: mapping a zero-length file is not allowed).
pub struct Input {
    map: Option<Mmap>,
}

impl Input {
    pub fn open(path: &Path) -> Result<Input, String> {
        let f = File::open(path).map_err(|e| io_error("open", path, e))?;
        let len = f.metadata().map_err(|e| io_error("stat", path, e))?.len();
        if len == 0 {
            return Ok(Input { map: None });
        }
        // SAFETY: the map is read-only; a concurrent writer could change the bytes under us,
        // which at worst makes the result wrong (checksums catch it on decode), never unsound
        // for our byte-slice reads.
        let map = unsafe { Mmap::map(&f) }.map_err(|e| io_error("map", path, e))?;
        Ok(Input { map: Some(map) })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// Refuses to write `out` when it is one of `inputs` or (without `force`) already exists.
pub fn check_output(out: &Path, inputs: &[&Path], force: bool) -> Result<(), String> {
    if let Ok(om) = fs::metadata(out) {
        use std::os::unix::fs::MetadataExt;
        for i in inputs {
            if let Ok(im) = fs::metadata(i) {
                if im.dev() == om.dev() && im.ino() == om.ino() {
                    return Err(format!("refusing to overwrite the input file {}", out.display()));
                }
            }
        }
        if !force {
            return Err(format!("{} already exists (use --force to overwrite)", out.display()));
        }
    }
    Ok(())
}

/// The message of a failed file operation, as zstd words it: `cannot open x: No such file or
/// directory`.
pub fn io_error(action: &'static str, path: &Path, e: std::io::Error) -> String {
    weightzip::Error::io(action, Some(path), e).to_string()
}

/// Writes `data` to `out` atomically: a temporary file in the same directory, fsync, rename.
/// On any failure the temporary file is removed and `out` is untouched.
pub fn write_atomic(out: &Path, data: &[u8]) -> Result<(), String> {
    weightzip::atomic::write_file(out, |w| w.write_all(data).map_err(|e| weightzip::Error::io("write", None, e)))
        .map_err(|e| crate::archive_cmd::err(out, e))
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
                weightzip::atomic::remove_temporaries();
                eprintln!("weightzip: interrupted; no output written");
                libc::_exit(128 + sig);
            }
        });
    }
}

/// Runs `work` with a progress counter; draws a bar on a terminal when the work is large.
pub fn with_progress<T>(label: &str, total: u64, work: impl FnOnce(Arc<AtomicU64>) -> T) -> T {
    let counter = Arc::new(AtomicU64::new(0));
    let show = total >= (64 << 20) && std::io::IsTerminal::is_terminal(&std::io::stderr());
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
