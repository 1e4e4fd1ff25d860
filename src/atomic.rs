//! Writing a file atomically: a temporary file in the same directory, fsync, rename. Readers
//! see either the old file or the complete new one, and a failure leaves no partial output.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Writes `path` through `fill`, atomically. On any error (from `fill` or the file system) the
/// temporary file is removed, `path` is untouched, and the error is returned. An existing path
/// that is not a regular file (a device, a pipe) is written in place instead, not atomically.
pub fn write_file<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    // A device, pipe or socket is written in place: renaming a file over it would replace the
    // node itself (as root, /dev/null would become a regular file).
    // Errors name `path`, the caller's file, even where the temporary file failed: its name is
    // this module's detail.
    let io = |action| move |e| Error::io(action, Some(path), e);
    if let Ok(m) = fs::metadata(path) {
        if m.is_dir() {
            return Err(io("write")(std::io::Error::from_raw_os_error(libc::EISDIR)));
        }
        if !m.is_file() {
            let f = File::options().write(true).open(path).map_err(io("open"))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            fill(&mut w).map_err(|e| e.with_path(path))?;
            return w.into_inner().map(drop).map_err(|e| io("write")(e.into_error()));
        }
    }
    let tmp = temp_path(path)?;
    let _registered = Registered::new(&tmp);
    let r = (|| {
        let f = File::options().write(true).create_new(true).open(&tmp).map_err(io("create"))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        fill(&mut w).map_err(|e| e.with_path(path))?;
        let f = w.into_inner().map_err(|e| io("write")(e.into_error()))?;
        f.sync_all().map_err(io("sync"))?;
        fs::rename(&tmp, path).map_err(io("rename to"))
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

/// Temporary files being written, so a program stopped by a signal can remove them
/// (`remove_temporaries`).
static IN_PROGRESS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Keeps a temporary file's name in `IN_PROGRESS` while it is written.
struct Registered(PathBuf);

impl Registered {
    fn new(p: &Path) -> Registered {
        IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner()).push(p.to_path_buf());
        Registered(p.to_path_buf())
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| *p != self.0);
    }
}

/// Removes every temporary file still being written. For a program about to exit on a signal
/// (call it from a normal thread, not from a signal handler): the outputs were never renamed into
/// place, so removing their temporaries leaves nothing partial behind.
#[cfg(feature = "internals")]
pub fn remove_temporaries() {
    for p in IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = fs::remove_file(p);
    }
}

/// A name next to `path` that no other writer (thread or process) uses.
fn temp_path(path: &Path) -> Result<PathBuf> {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or(Error::InvalidArgument)?;
    let n = N.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!(".{}.tmp-{}-{n}", name.to_string_lossy(), std::process::id())))
}

/// Whether two paths name the same existing file (through links too).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}
