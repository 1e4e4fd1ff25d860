//! The archive half of the C ABI: opening a compressed model file, reading its tensors one by
//! one into the caller's buffers, and restoring or creating whole files.
//!
//! A `wz_archive` is immutable once opened, so any number of threads may call the read
//! functions on one handle at once; only `wz_archive_close` must not race with them.

use std::ffi::{c_char, c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::guard::{guard, guard_value, in_slice, out_slice, read_versioned, write_versioned};
use super::{options, wz_options, wz_status, OPTIONS_DEFAULT};
use crate::archive::{self, Archive};
use crate::error::Error;

/// Container format of an archive: a GGUF file.
pub const WZ_CONTAINER_GGUF: u32 = 1;
/// Container format of an archive: a safetensors file.
pub const WZ_CONTAINER_SAFETENSORS: u32 = 2;

/// An open archive (opaque). Made by `wz_archive_open` or `wz_archive_open_memory`, freed by
/// `wz_archive_close`.
pub struct wz_archive {
    inner: Archive<'static>,
}

/// What an archive holds, filled by `wz_archive_get_info`. Set `struct_size` to
/// `sizeof(wz_archive_info)` before the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wz_archive_info {
    /// `sizeof(wz_archive_info)` as the caller compiled it; the caller sets it.
    pub struct_size: u32,
    /// Container format of the original file (`WZ_CONTAINER_*`).
    pub container: u32,
    /// Number of tensors.
    pub tensor_count: u64,
    /// Bytes of the original file.
    pub original_size: u64,
    /// Bytes of the archive.
    pub archive_size: u64,
    /// Bytes of the original file before its data section (for GGUF: header, key/values, tensor
    /// infos, padding), as `wz_archive_metadata` returns them.
    pub metadata_size: u64,
}

/// One tensor of an archive, filled by `wz_archive_tensor_info`. Set `struct_size` to
/// `sizeof(wz_tensor_info)` before the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wz_tensor_info {
    /// `sizeof(wz_tensor_info)` as the caller compiled it; the caller sets it.
    pub struct_size: u32,
    /// The container's type of the tensor: for GGUF, the ggml type (0 = F32, 1 = F16, 12 = Q4_K,
    /// 14 = Q6_K, 30 = BF16, ...), unknown types included; for safetensors a dtype code (5 = F16,
    /// 6 = BF16, 9 = F32, ...; 0xFFFFFFFF for a dtype this library does not know). `type_name`
    /// names it.
    pub container_type: u32,
    /// Data kind its frame holds (`WZ_KIND_*`; `WZ_KIND_BYTES` for types without a codec).
    pub kind: u32,
    /// Number of dimensions (at most 8).
    pub n_dims: u32,
    /// Dimensions, `n_dims` of them, in the container's order (GGUF: innermost first); the rest 0.
    pub dims: [u64; 8],
    /// The tensor's name, NUL-terminated, valid until the archive is closed.
    pub name: *const c_char,
    /// Length of `name` in bytes, without the NUL.
    pub name_len: usize,
    /// Offset of the tensor's data in the original file.
    pub original_offset: u64,
    /// Bytes of the tensor's data: the exact `dst_size` `wz_archive_read_tensor` needs.
    pub original_size: u64,
    /// Offset of the tensor's frame in the archive.
    pub archive_offset: u64,
    /// Bytes of the tensor's frame.
    pub archive_size: u64,
    /// SHA-256 of the tensor's original bytes.
    pub sha256: [u8; 32],
    /// The name of `container_type` ("Q4_K", "BF16", ...; "unknown"), a static string.
    pub type_name: *const c_char,
}

/// A type name as a static C string (the names are ASCII identifiers).
fn type_name_c(c: archive::Container, t: u32) -> &'static CStr {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    // Names are few and static: each is turned into a C string once and kept for the process.
    static NAMES: OnceLock<Mutex<HashMap<&'static str, &'static CStr>>> = OnceLock::new();
    let name = c.type_name(t);
    let mut m = NAMES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    m.entry(name).or_insert_with(|| {
        let s = std::ffi::CString::new(name).unwrap_or_default();
        Box::leak(s.into_boxed_c_str())
    })
}

unsafe fn path_arg<'a>(p: *const c_char) -> Result<&'a Path, Error> {
    if p.is_null() {
        return Err(Error::NullPointer);
    }
    Ok(Path::new(OsStr::from_bytes(CStr::from_ptr(p).to_bytes())))
}

unsafe fn archive_arg<'a>(a: *const wz_archive) -> Result<&'a Archive<'static>, Error> {
    a.as_ref().map(|a| &a.inner).ok_or(Error::NullPointer)
}

fn boxed(inner: Archive<'static>, out: *mut *mut wz_archive) {
    let b = Box::new(wz_archive { inner });
    // SAFETY: the caller checked `out` is non-NULL.
    unsafe { out.write(Box::into_raw(b)) };
}

/// Opens the archive at `path`. The header and index are read and checked here; a tensor's
/// bytes are read (with `pread`, a chunk at a time) and decoded only when it is read. On success
/// `*archive` is a handle to pass to `wz_archive_close`; on failure it is set to NULL.
///
/// The file is never memory-mapped, so a file truncated or rewritten by another process while
/// the handle is open cannot raise SIGBUS in the caller: reads of the missing bytes fail with
/// `WZ_STATUS_IO`, rewritten bytes with `WZ_STATUS_CORRUPT_*` (every chunk is checksummed). To
/// replace an archive a loader has open, write the new one under another name and rename it over
/// the old (`mv`, not `cp`): the open handle keeps reading the old file, intact.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_open(path: *const c_char, archive: *mut *mut wz_archive) -> wz_status {
    guard(|| {
        if archive.is_null() {
            return Err(Error::NullPointer);
        }
        archive.write(std::ptr::null_mut());
        let a = Archive::open_path(path_arg(path)?)?;
        boxed(a, archive);
        Ok(())
    })
}

/// Opens an archive held in memory. The bytes are not copied: `src` must stay valid and
/// unchanged until `wz_archive_close`. Otherwise as `wz_archive_open`.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_open_memory(
    src: *const c_void,
    src_size: usize,
    archive: *mut *mut wz_archive,
) -> wz_status {
    guard(|| {
        if archive.is_null() {
            return Err(Error::NullPointer);
        }
        archive.write(std::ptr::null_mut());
        let src: &'static [u8] = in_slice(src as *const u8, src_size)?;
        let a = Archive::from_bytes(src)?;
        boxed(a, archive);
        Ok(())
    })
}

/// Closes an archive and frees everything it holds (names and metadata pointers it gave out
/// become invalid). NULL is accepted and does nothing.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_close(archive: *mut wz_archive) {
    guard_value((), || {
        if !archive.is_null() {
            drop(Box::from_raw(archive));
        }
    })
}

/// Fills `*info` with what the archive holds. Set `info->struct_size` before the call.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_get_info(archive: *const wz_archive, info: *mut wz_archive_info) -> wz_status {
    guard(|| {
        let a = archive_arg(archive)?;
        if info.is_null() {
            return Err(Error::NullPointer);
        }
        let out = wz_archive_info {
            struct_size: 0,
            container: a.container() as u32,
            tensor_count: a.tensors().len() as u64,
            original_size: a.original_size(),
            archive_size: a.archive_size(),
            metadata_size: a.index().extra.metadata_size,
        };
        write_versioned(info, &out)
    })
}

/// Number of tensors in the archive (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn wz_archive_tensor_count(archive: *const wz_archive) -> usize {
    guard_value(0, || archive_arg(archive).map_or(0, |a| a.tensors().len()))
}

/// Fills `*info` for tensor `index` (0-based, in the container's order; `WZ_STATUS_INVALID_ARGUMENT`
/// past the end). Set `info->struct_size` before the call.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_tensor_info(
    archive: *const wz_archive,
    index: usize,
    info: *mut wz_tensor_info,
) -> wz_status {
    guard(|| {
        let a = archive_arg(archive)?;
        if info.is_null() {
            return Err(Error::NullPointer);
        }
        let t = a.tensors().get(index).ok_or(Error::InvalidArgument)?;
        let mut dims = [0u64; 8];
        dims[..t.dims.len()].copy_from_slice(&t.dims);
        let out = wz_tensor_info {
            struct_size: 0,
            container_type: t.container_type,
            kind: t.kind.id(),
            n_dims: t.dims.len() as u32,
            dims,
            name: t.name_c.as_ptr() as *const c_char,
            name_len: t.name.len(),
            original_offset: t.orig_offset,
            original_size: t.orig_size,
            archive_offset: t.arc_offset,
            archive_size: t.arc_size,
            sha256: t.sha256,
            type_name: type_name_c(a.container(), t.container_type).as_ptr(),
        };
        write_versioned(info, &out)
    })
}

/// Sets `*index` to the index of the first tensor named `name` (a NUL-terminated string), or
/// returns `WZ_STATUS_NOT_FOUND`.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_find_tensor(
    archive: *const wz_archive,
    name: *const c_char,
    index: *mut usize,
) -> wz_status {
    guard(|| {
        let a = archive_arg(archive)?;
        if name.is_null() || index.is_null() {
            return Err(Error::NullPointer);
        }
        let i = a.find(CStr::from_ptr(name).to_bytes()).ok_or(Error::NotFound)?;
        index.write(i);
        Ok(())
    })
}

/// Decodes tensor `index` into `dst`. `dst_size` must equal the tensor's `original_size`
/// (smaller: `WZ_STATUS_DST_TOO_SMALL`, larger: `WZ_STATUS_DST_SIZE_MISMATCH`). Only this
/// tensor's frame is read; a large tensor decodes on `opts->threads` threads (NULL: all cores).
/// Every chunk is checked against its checksum; on a decoding error `dst` is zero-filled.
/// Safe to call from several threads at once on one archive.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_read_tensor(
    archive: *const wz_archive,
    index: usize,
    dst: *mut c_void,
    dst_size: usize,
    opts: *const wz_options,
) -> wz_status {
    guard(|| {
        let a = archive_arg(archive)?;
        let opts = options(&read_versioned(opts, OPTIONS_DEFAULT)?)?;
        let dst = out_slice(dst as *mut u8, dst_size)?;
        a.read_tensor(index, dst, &opts)
    })
}

/// Decodes bytes `[offset, offset + dst_size)` of tensor `index` into `dst`: a slice of a tensor
/// without decoding the rest of it. Only the chunks holding those bytes are read and decoded (a
/// range that starts or ends inside a chunk costs that whole chunk); every chunk is checked
/// against its checksum. `WZ_STATUS_INVALID_ARGUMENT` unless the range lies inside the tensor;
/// on a decoding error `dst` is zero-filled. Safe to call from several threads at once.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_read_tensor_range(
    archive: *const wz_archive,
    index: usize,
    offset: u64,
    dst: *mut c_void,
    dst_size: usize,
    opts: *const wz_options,
) -> wz_status {
    guard(|| {
        let a = archive_arg(archive)?;
        let opts = options(&read_versioned(opts, OPTIONS_DEFAULT)?)?;
        let dst = out_slice(dst as *mut u8, dst_size)?;
        a.read_tensor_range(index, offset, dst, &opts)
    })
}

/// Reads bytes `[offset, offset + dst_size)` of the original file into `dst`, as `pread` on the
/// original would: metadata and padding from the archive's extra bytes, tensor data decoded
/// chunk by chunk (only the chunks the range touches). For loaders that read a model file at
/// offsets (llama.cpp's `llama_file`): pointed at this call, they read the archive unchanged.
/// `WZ_STATUS_INVALID_ARGUMENT` if the range passes the original's end (its `original_size` in
/// `wz_archive_info`); on an error `dst` is zero-filled. Safe to call from several threads at once.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_pread(
    archive: *const wz_archive,
    offset: u64,
    dst: *mut c_void,
    dst_size: usize,
    opts: *const wz_options,
) -> wz_status {
    guard(|| {
        let a = archive_arg(archive)?;
        let opts = options(&read_versioned(opts, OPTIONS_DEFAULT)?)?;
        let dst = out_slice(dst as *mut u8, dst_size)?;
        a.pread(offset, dst, &opts)
    })
}

/// Original bytes this archive handle has decoded so far, counted in whole chunks: a ranged
/// read adds the chunks it touched, a whole-tensor read the tensor, a restore or verify the file's
/// tensors; the metadata is not counted. Lets a caller check that a slice decoded only what it
/// needed. 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_decoded_bytes(archive: *const wz_archive) -> u64 {
    archive_arg(archive).map_or(0, |a| a.decoded_bytes())
}

/// Sets `*data` and `*size` to the original file's metadata: every byte before its data section
/// (for GGUF: header, key/values, tensor infos and padding), exactly as in the original, ready
/// for the caller's own GGUF parser. Decoded on the first call (and checked against its SHA-256);
/// the bytes stay valid until the archive is closed.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_metadata(
    archive: *const wz_archive,
    data: *mut *const c_void,
    size: *mut usize,
) -> wz_status {
    guard(|| {
        let a = archive_arg(archive)?;
        if data.is_null() || size.is_null() {
            return Err(Error::NullPointer);
        }
        let m = a.metadata()?;
        data.write(m.as_ptr() as *const c_void);
        size.write(m.len());
        Ok(())
    })
}

/// Restores the original file, byte for byte, to `path`: written to a temporary file in the same
/// directory and renamed over `path` only when complete, so a failure leaves no partial file.
/// Memory use is a few 16 MiB windows, whatever the file's size. Refuses
/// (`WZ_STATUS_INVALID_ARGUMENT`) to write over the archive it reads.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_restore(
    archive: *const wz_archive,
    path: *const c_char,
    opts: *const wz_options,
) -> wz_status {
    guard(|| {
        let a = archive_arg(archive)?;
        let opts = options(&read_versioned(opts, OPTIONS_DEFAULT)?)?;
        a.restore_file(path_arg(path)?, &opts)
    })
}

/// Writes the original file, byte for byte, to the open file descriptor `fd`, from its current
/// position, with the same windowed memory use as `wz_archive_restore`. For targets that are not
/// a path one can rename over: an anonymous memory file (`memfd_create`), a pipe, a socket. Not
/// atomic: on an error some bytes may have been written. `fd` is not closed.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_restore_fd(
    archive: *const wz_archive,
    fd: std::ffi::c_int,
    opts: *const wz_options,
) -> wz_status {
    guard(|| {
        use std::os::fd::FromRawFd;
        let a = archive_arg(archive)?;
        let opts = options(&read_versioned(opts, OPTIONS_DEFAULT)?)?;
        if fd < 0 {
            return Err(Error::InvalidArgument);
        }
        // Borrowed, not owned: ManuallyDrop keeps the caller's descriptor open.
        let mut f = std::mem::ManuallyDrop::new(std::fs::File::from_raw_fd(fd));
        a.restore_to(&mut *f, &opts)
    })
}

/// Decodes every tensor and checks it against the SHA-256 digest in the index (on top of the
/// per-chunk checksums every read checks), and the metadata against its own.
#[no_mangle]
pub unsafe extern "C" fn wz_archive_verify(archive: *const wz_archive, opts: *const wz_options) -> wz_status {
    guard(|| {
        let a = archive_arg(archive)?;
        let opts = options(&read_versioned(opts, OPTIONS_DEFAULT)?)?;
        a.verify(&opts).map_err(|(_, e)| e)
    })
}

/// Compresses the model file at `src_path` (GGUF or safetensors, told apart by content) into an archive at `dst_path`, written
/// atomically like `wz_archive_restore`. Every tensor goes through its type's codec. Refuses
/// (`WZ_STATUS_INVALID_ARGUMENT`) to write over its input. A malformed GGUF gives a specific
/// status (`WZ_STATUS_CONTAINER_*`, `WZ_STATUS_TENSOR_*`, `WZ_STATUS_BAD_CONTAINER`).
#[no_mangle]
pub unsafe extern "C" fn wz_archive_compress_file(
    src_path: *const c_char,
    dst_path: *const c_char,
    opts: *const wz_options,
) -> wz_status {
    guard(|| {
        let opts = options(&read_versioned(opts, OPTIONS_DEFAULT)?)?;
        archive::compress_file(path_arg(src_path)?, path_arg(dst_path)?, &opts)?;
        Ok(())
    })
}
