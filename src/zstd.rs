//! A minimal safe wrapper over zstd-sys, for the codecs that store bytes as zstd frames (the
//! generic byte-grouped path, f32 low halves, archives' extra frame), and for the tool's zstd
//! baselines (`DCtx`, with the `internals` feature).

use std::ffi::c_void;

use zstd_sys as z;

use crate::error::{Error, Result};

fn check(code: usize) -> Result<usize> {
    if unsafe { z::ZSTD_isError(code) } != 0 {
        Err(Error::CorruptData)
    } else {
        Ok(code)
    }
}

/// Compresses `src` at `level` with `workers` threads (0 or 1: zstd's single-threaded path).
pub fn compress(src: &[u8], level: i32, workers: u32) -> Result<Vec<u8>> {
    unsafe {
        let cap = z::ZSTD_compressBound(src.len());
        let mut out = vec![0u8; cap];
        let cctx = z::ZSTD_createCCtx();
        if cctx.is_null() {
            return Err(Error::OutOfMemory);
        }
        let r = (|| {
            check(z::ZSTD_CCtx_setParameter(cctx, z::ZSTD_cParameter::ZSTD_c_compressionLevel, level))?;
            if workers > 1 {
                check(z::ZSTD_CCtx_setParameter(cctx, z::ZSTD_cParameter::ZSTD_c_nbWorkers, workers as i32))?;
            }
            check(z::ZSTD_compress2(
                cctx,
                out.as_mut_ptr() as *mut c_void,
                cap,
                src.as_ptr() as *const c_void,
                src.len(),
            ))
        })();
        z::ZSTD_freeCCtx(cctx);
        out.truncate(r?);
        Ok(out)
    }
}

/// A decompression's return `code` for a `dst` of `want` bytes: the frame must fill it exactly.
fn filled(code: usize, want: usize) -> Result<()> {
    if check(code)? != want {
        return Err(Error::CorruptData);
    }
    Ok(())
}

/// Decompresses a zstd frame of known original size into `dst`.
pub fn decompress_into(src: &[u8], dst: &mut [u8]) -> Result<()> {
    let code = unsafe {
        z::ZSTD_decompress(dst.as_mut_ptr() as *mut c_void, dst.len(), src.as_ptr() as *const c_void, src.len())
    };
    filled(code, dst.len())
}

/// A reusable decompression context. `decompress_into` allocates and frees zstd's context on
/// every call; a decoder of many frames (a loader decoding tensor after tensor) keeps one.
#[cfg(feature = "internals")]
pub struct DCtx(std::ptr::NonNull<z::ZSTD_DCtx>);

// SAFETY: a ZSTD_DCtx has no thread affinity; it is used by one thread at a time (`&mut self`).
#[cfg(feature = "internals")]
unsafe impl Send for DCtx {}

#[cfg(feature = "internals")]
impl DCtx {
    pub fn new() -> Result<DCtx> {
        std::ptr::NonNull::new(unsafe { z::ZSTD_createDCtx() }).map(DCtx).ok_or(Error::OutOfMemory)
    }

    /// Like `decompress_into`, with this context.
    pub fn decompress_into(&mut self, src: &[u8], dst: &mut [u8]) -> Result<()> {
        let code = unsafe {
            z::ZSTD_decompressDCtx(
                self.0.as_ptr(),
                dst.as_mut_ptr() as *mut c_void,
                dst.len(),
                src.as_ptr() as *const c_void,
                src.len(),
            )
        };
        filled(code, dst.len())
    }
}

#[cfg(feature = "internals")]
impl Drop for DCtx {
    fn drop(&mut self) {
        unsafe { z::ZSTD_freeDCtx(self.0.as_ptr()) };
    }
}
