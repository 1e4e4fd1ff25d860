//! Writing a file atomically: a temporary file in the same directory, renamed over the target
//! when complete. Readers see either the old file or the complete new one, and a failure leaves
//! no partial output.
//!
//! No fsync unless asked (`WriteOptions::sync`): the rename is atomic for other processes, and
//! the input is never touched, so a crash before the data reaches the disk loses nothing that
//! cannot be made again. zstd and gzip decide the same way; a caller about to delete the input
//! (the CLI's `--rm`) asks for the sync.

use std::fs::{self, File};
use std::io::BufWriter;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// How `write_file_with` finishes its file.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteOptions {
    /// fsync the file before it is renamed into place.
    pub sync: bool,
    /// Permission bits for the new file (for example the input's, as zstd does); None keeps
    /// what creating a file gives (0666 less the umask). Either way, a file that replaces an
    /// existing one is never more readable than the one it replaces.
    pub mode: Option<u32>,
}

/// Writes `path` through `fill`, atomically, with default options (see `write_file_with`).
pub fn write_file<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    write_file_with(path, &WriteOptions::default(), fill)
}

/// Writes `path` through `fill`, atomically. On any error (from `fill` or the file system) the
/// temporary file is removed, `path` is untouched, and the error is returned. An existing path
/// that is not a regular file (a device, a pipe) is written in place instead, not atomically.
pub fn write_file_with<F>(path: &Path, o: &WriteOptions, fill: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    // Errors name `path`, the caller's file, even where the temporary file failed: its name is
    // this module's detail.
    let io = |action| move |e| Error::io(action, Some(path), e);
    let existing = fs::metadata(path).ok();
    if let Some(m) = &existing {
        if m.is_dir() {
            return Err(io("write")(std::io::Error::from_raw_os_error(libc::EISDIR)));
        }
        // A device, pipe or socket is written in place: renaming a file over it would replace
        // the node itself (as root, /dev/null would become a regular file).
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
        // Permissions first, while the file is empty: a private input's bytes are never
        // readable by others, not even for a moment.
        let created = f.metadata().map_err(io("create"))?.permissions().mode() & 0o777;
        let mut mode = o.mode.map_or(created, |m| m & 0o777);
        if let Some(m) = &existing {
            mode &= m.permissions().mode() & 0o777;
        }
        if mode != created {
            f.set_permissions(fs::Permissions::from_mode(mode)).map_err(io("create"))?;
        }
        let mut w = BufWriter::with_capacity(1 << 20, f);
        fill(&mut w).map_err(|e| e.with_path(path))?;
        let f = w.into_inner().map_err(|e| io("write")(e.into_error()))?;
        if o.sync {
            f.sync_all().map_err(io("sync"))?;
        }
        rename_registered(&tmp, path).map_err(io("rename to"))
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

/// Renames a registered temporary file into place and forgets it, under the registry's lock:
/// `remove_temporaries` then sees either the temporary (and the rename never happens) or the
/// complete output, never a rename half way.
fn rename_registered(tmp: &Path, path: &Path) -> std::io::Result<()> {
    let mut list = IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
    fs::rename(tmp, path)?;
    list.retain(|p| p != tmp);
    Ok(())
}

/// Removes every temporary file still being written and returns how many it removed. For a
/// program about to exit on a signal (call it from a normal thread, not from a signal handler,
/// and exit without releasing control): the outputs it removes were never renamed into place,
/// so nothing partial is left behind; outputs already renamed are complete and stay.
#[cfg(feature = "internals")]
pub fn remove_temporaries() -> usize {
    let list = IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
    let removed = list.iter().filter(|p| fs::remove_file(p).is_ok()).count();
    // The lock is kept by the caller's exit: no rename may follow the removal.
    std::mem::forget(list);
    removed
}

/// Bytes of the target's name a temporary name keeps: enough to tell whose it is, short enough
/// that a target name near the file system's limit (255 bytes) still leaves room.
const TEMP_NAME_PREFIX: usize = 48;

/// A name next to `path` that no other writer (thread or process) uses:
/// `.NAME.tmp-PID-N`, NAME cut to its first `TEMP_NAME_PREFIX` bytes.
fn temp_path(path: &Path) -> Result<PathBuf> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or(Error::InvalidArgument)?.as_bytes();
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut tmp = b".".to_vec();
    tmp.extend_from_slice(&name[..name.len().min(TEMP_NAME_PREFIX)]);
    tmp.extend_from_slice(format!(".tmp-{}-{n}", std::process::id()).as_bytes());
    Ok(dir.join(std::ffi::OsString::from_vec(tmp)))
}

/// Whether two paths name the same existing file (through links too).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}
