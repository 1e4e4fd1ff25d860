//! Writing a file atomically: a temporary file in the same directory, fsync, rename. Readers
//! see either the old file or the complete new one, and a failure leaves no partial output.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Writes `path` through `fill`, atomically. On any error (from `fill` or the file system) the
/// temporary file is removed, `path` is untouched, and the error is returned.
pub fn write_file<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> Result<()>,
{
    let tmp = temp_path(path)?;
    let r = (|| {
        let f = File::options().write(true).create_new(true).open(&tmp).map_err(|_| Error::Io)?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|_| Error::Io)?;
        f.sync_all().map_err(|_| Error::Io)?;
        fs::rename(&tmp, path).map_err(|_| Error::Io)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
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
