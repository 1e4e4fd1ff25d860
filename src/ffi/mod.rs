//! The C ABI: thin wrappers over the Rust API. Nothing in the crate calls into this module.
//!
//! Conventions (see `include/weightzip.h`): every fallible function returns `wz_status`; buffers
//! come as `(dst, dst_capacity, src, src_size)` in zstd's order; kinds are passed as integers and
//! unknown values are rejected; outputs are written only on success. Every function is safe to
//! call from several threads at once: the only process-wide state is the worker pool, made on
//! first use.
//!
//! The safety contract for all pointers is stated once, in `guard`.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)] // the contract is stated once, in `guard`
// The `WZ_*` constants are the header's (cbindgen writes them into `include/weightzip.h`); the
// Rust code does not read them.
#![cfg_attr(not(feature = "internals"), allow(dead_code))]

pub mod archive;
mod guard;
pub mod status;

use std::ffi::{c_char, c_void};

use guard::{guard, guard_value, in_slice, out_slice, read_versioned, write_versioned};
pub use status::wz_status;

use crate::codec::Kind;
use crate::error::Error;
use crate::frame::{self, Options};

/// Library version, major part. Matches Cargo.toml (a test checks).
pub const WZ_VERSION_MAJOR: u32 = 0;
/// Library version, minor part.
pub const WZ_VERSION_MINOR: u32 = 1;
/// Library version, patch part.
pub const WZ_VERSION_PATCH: u32 = 0;
/// `WZ_VERSION_MAJOR * 10000 + WZ_VERSION_MINOR * 100 + WZ_VERSION_PATCH`, as `wz_version()` returns.
pub const WZ_VERSION_NUMBER: u32 = 100;
/// On-disk frame format version this library writes (and the newest it reads).
pub const WZ_FORMAT_VERSION: u32 = 1;
/// Bytes of a frame that `wz_frame_get_info` needs: the fixed header.
pub const WZ_FRAME_HEADER_SIZE: u32 = 48;

/// Data kind: little-endian bfloat16 values (an even number of bytes).
pub const WZ_KIND_BF16: u32 = 1;
/// Data kind: bytes of no modelled structure (generic path: zstd).
pub const WZ_KIND_BYTES: u32 = 2;
/// Data kind: little-endian IEEE f32 values (a multiple of 4 bytes).
pub const WZ_KIND_F32: u32 = 3;
/// Data kind: little-endian IEEE f16 values (an even number of bytes).
pub const WZ_KIND_F16: u32 = 4;
/// Data kind: ggml Q4_K blocks (a multiple of 144 bytes).
pub const WZ_KIND_Q4_K: u32 = 16;
/// Data kind: ggml Q6_K blocks (a multiple of 210 bytes).
pub const WZ_KIND_Q6_K: u32 = 17;
/// Data kind: ggml Q8_0 blocks (a multiple of 34 bytes).
pub const WZ_KIND_Q8_0: u32 = 18;
/// Data kind: ggml Q5_0 blocks (a multiple of 22 bytes).
pub const WZ_KIND_Q5_0: u32 = 19;
/// Data kind: ggml Q5_1 blocks (a multiple of 24 bytes).
pub const WZ_KIND_Q5_1: u32 = 20;
/// Data kind: ggml Q4_0 blocks (a multiple of 18 bytes).
pub const WZ_KIND_Q4_0: u32 = 21;
/// Data kind: ggml Q4_1 blocks (a multiple of 20 bytes).
pub const WZ_KIND_Q4_1: u32 = 22;
/// Data kind: ggml Q5_K blocks (a multiple of 176 bytes).
pub const WZ_KIND_Q5_K: u32 = 23;
/// Data kind: ggml IQ4_NL blocks (a multiple of 18 bytes).
pub const WZ_KIND_IQ4_NL: u32 = 24;
/// Data kind: ggml IQ4_XS blocks (a multiple of 136 bytes).
pub const WZ_KIND_IQ4_XS: u32 = 25;
/// Data kind: ggml Q3_K blocks (a multiple of 110 bytes).
pub const WZ_KIND_Q3_K: u32 = 26;
/// Data kind: ggml Q2_K blocks (a multiple of 84 bytes).
pub const WZ_KIND_Q2_K: u32 = 27;

/// `wz_options.flags`: compress with the fast variant. Frames of the block kinds (Q4_K, Q6_K,
/// Q5_K, Q3_K, Q2_K, IQ4_XS, IQ4_NL, Q8_0, Q5_0, Q5_1, Q4_0, Q4_1) then decode in less time (Q4_K about 14% less, Q6_K about 19%,
/// on one core) for a fraction of a percent of ratio (Q4_K 0.12%, Q6_K 0.06% on
/// Qwen2.5-Coder-1.5B); other kinds are unaffected. A library from before this flag existed rejects such frames (CORRUPT_MODEL).
/// Decompression ignores the flag.
pub const WZ_FLAG_FAST: u32 = 1;

/// Options for compression and decompression. Initialise with `wz_options_init`, then change
/// fields. `struct_size` lets the struct grow: the library reads only the fields the caller's
/// version of the header has. Passing NULL wherever options are taken means all defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wz_options {
    /// `sizeof(wz_options)` as the caller compiled it; set by `wz_options_init`.
    pub struct_size: u32,
    /// Worker threads; 0 (the default) uses every available core, and larger requests are capped
    /// at the core count. Output never depends on it.
    pub threads: u32,
    /// Compression only: bytes of input per independently decodable chunk; 0 (the default)
    /// means 256 KiB. For `wz_compress` it must be between 64 KiB and 1 GiB and a multiple of the
    /// element size; for archives it is rounded, per tensor, to whole elements within that range.
    pub chunk_size: u32,
    /// `WZ_FLAG_*` bits (0, the default, for none); any other bit is INVALID_ARGUMENT. (This
    /// field was `reserved`, which had to be 0, before `WZ_FLAG_FAST` existed.)
    pub flags: u32,
}

pub(crate) const OPTIONS_DEFAULT: wz_options =
    wz_options { struct_size: std::mem::size_of::<wz_options>() as u32, threads: 0, chunk_size: 0, flags: 0 };

/// What a frame's header says, filled by `wz_frame_get_info`. Set `struct_size` to
/// `sizeof(wz_frame_info)` before the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wz_frame_info {
    /// `sizeof(wz_frame_info)` as the caller compiled it; the caller sets it.
    pub struct_size: u32,
    /// Data kind (`WZ_KIND_*`).
    pub kind: u32,
    /// Format version the frame was written with.
    pub format_version: u32,
    /// Number of independently decodable chunks.
    pub chunk_count: u32,
    /// Size of the original data in bytes: the exact `dst_size` `wz_decompress` needs.
    pub original_size: u64,
    /// Total size of the frame in bytes.
    pub frame_size: u64,
    /// Bytes of original data per chunk (the last chunk may be shorter).
    pub chunk_size: u32,
    /// Reserved; written as 0.
    pub reserved: u32,
}

pub(crate) fn options(opts: &wz_options) -> Result<Options, Error> {
    if opts.flags & !WZ_FLAG_FAST != 0 {
        return Err(Error::InvalidArgument);
    }
    Ok(Options { threads: opts.threads, chunk_size: opts.chunk_size, progress: None, fast: opts.flags & WZ_FLAG_FAST != 0, row_len: 0 })
}

/// Library version as a number: `major * 10000 + minor * 100 + patch`.
#[no_mangle]
pub extern "C" fn wz_version() -> u32 {
    guard_value(0, || WZ_VERSION_MAJOR * 10000 + WZ_VERSION_MINOR * 100 + WZ_VERSION_PATCH)
}

/// Library version as a static NUL-terminated string, e.g. "0.1.0".
#[no_mangle]
pub extern "C" fn wz_version_string() -> *const c_char {
    guard_value(std::ptr::null(), || concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char)
}

/// Format version this library writes (`WZ_FORMAT_VERSION` of the build).
#[no_mangle]
pub extern "C" fn wz_format_version() -> u32 {
    guard_value(0, || WZ_FORMAT_VERSION)
}

/// A description of the last error a `wz_*` function returned on the calling thread, with what
/// its status alone does not say: for `WZ_STATUS_IO`, the file and the operating system's reason
/// (`cannot open model.gguf: No such file or directory`); for other statuses, the status's own
/// description. An empty string if no call on this thread has failed. Never NULL; the string
/// belongs to the library and stays valid until the next failing `wz_*` call on this thread.
#[no_mangle]
pub extern "C" fn wz_last_error_message() -> *const c_char {
    guard_value(c"".as_ptr(), guard::last_error_message)
}

/// The operating system's error number (`errno`: `ENOENT`, `ENOSPC`, `EACCES`, ...) behind the
/// last error a `wz_*` function returned on the calling thread, when that error was
/// `WZ_STATUS_IO` and came from the operating system; 0 otherwise (including a short read: a file
/// that shrank while the library read it). Like `wz_last_error_message`, it describes the last
/// failing call on this thread.
#[no_mangle]
pub extern "C" fn wz_last_error_errno() -> i32 {
    guard_value(0, guard::last_error_errno)
}

/// A static NUL-terminated description of a status code. Never NULL; unknown codes get a
/// description too. The string must not be freed.
#[no_mangle]
pub extern "C" fn wz_status_str(status: u32) -> *const c_char {
    guard_value(c"internal error".as_ptr(), || status::status_cstr(status))
}

/// Largest compressed size for `src_size` input bytes of any kind, or 0 if that does not fit in
/// `size_t`. Same value as the macro `WZ_COMPRESS_BOUND(src_size)`.
#[no_mangle]
pub extern "C" fn wz_compress_bound(src_size: usize) -> usize {
    guard_value(0, || frame::compress_bound(src_size).unwrap_or(0))
}

/// Sets `*opts` to the defaults, including `struct_size`.
#[no_mangle]
pub unsafe extern "C" fn wz_options_init(opts: *mut wz_options) -> wz_status {
    guard(|| {
        if opts.is_null() {
            return Err(Error::NullPointer);
        }
        opts.write_unaligned(OPTIONS_DEFAULT);
        Ok(())
    })
}

/// Compresses `src_size` bytes of data of `kind` (`WZ_KIND_*`) into one frame in `dst`.
///
/// On success writes the frame's size to `*dst_size` and returns `WZ_STATUS_OK`. A `dst_capacity`
/// of `wz_compress_bound(src_size)` always suffices; a smaller one may give
/// `WZ_STATUS_DST_TOO_SMALL`, in which case `dst` is not written. Output bytes depend only on the
/// input, the kind and `chunk_size`, never on the thread count. `opts` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn wz_compress(
    dst: *mut c_void,
    dst_capacity: usize,
    src: *const c_void,
    src_size: usize,
    kind: u32,
    opts: *const wz_options,
    dst_size: *mut usize,
) -> wz_status {
    guard(|| {
        if dst_size.is_null() {
            return Err(Error::NullPointer);
        }
        let kind = Kind::from_u32(kind)?;
        let opts = options(&read_versioned(opts, OPTIONS_DEFAULT)?)?;
        let src = in_slice(src as *const u8, src_size)?;
        let dst = out_slice(dst as *mut u8, dst_capacity)?;
        // Laid out straight into `dst`: no frame-sized intermediate buffer and copy.
        let frame = frame::encode(kind, src, &opts)?;
        let mut out = dst.get_mut(..frame.len()).ok_or(Error::DstTooSmall)?;
        frame.write_parts(|b| {
            let (head, rest) = std::mem::take(&mut out).split_at_mut(b.len());
            head.copy_from_slice(b);
            out = rest;
            Ok(())
        })?;
        *dst_size = frame.len();
        Ok(())
    })
}

/// Decompresses the frame `src[0..src_size]` into `dst`. `dst_size` must equal the frame's
/// original size exactly (`wz_frame_get_info` tells it): smaller gives `WZ_STATUS_DST_TOO_SMALL`,
/// larger `WZ_STATUS_DST_SIZE_MISMATCH`. Every chunk is checked against its checksum. Errors found
/// before decoding starts (arguments, header, sizes) leave `dst` untouched; an error found while
/// decoding (`WZ_STATUS_CORRUPT_*`) zero-fills `dst`, so corrupt data is never returned.
/// `opts` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn wz_decompress(
    dst: *mut c_void,
    dst_size: usize,
    src: *const c_void,
    src_size: usize,
    opts: *const wz_options,
) -> wz_status {
    guard(|| {
        let opts = options(&read_versioned(opts, OPTIONS_DEFAULT)?)?;
        let src = in_slice(src as *const u8, src_size)?;
        let dst = out_slice(dst as *mut u8, dst_size)?;
        frame::decompress_into(src, dst, &opts)
    })
}

/// Reads a frame's fixed header (the first `WZ_FRAME_HEADER_SIZE` bytes suffice) into `*info`
/// without decoding anything. The header has its own checksum, so the values are trustworthy
/// when this returns `WZ_STATUS_OK`. Set `info->struct_size` before the call.
#[no_mangle]
pub unsafe extern "C" fn wz_frame_get_info(src: *const c_void, src_size: usize, info: *mut wz_frame_info) -> wz_status {
    guard(|| {
        if info.is_null() {
            return Err(Error::NullPointer);
        }
        let src = in_slice(src as *const u8, src_size)?;
        let fi = frame::read_info(src)?;
        let out = wz_frame_info {
            struct_size: 0,
            kind: fi.kind.id(),
            format_version: fi.format_version as u32,
            chunk_count: fi.chunk_count,
            original_size: fi.original_size,
            frame_size: fi.frame_size,
            chunk_size: fi.chunk_size,
            reserved: 0,
        };
        write_versioned(info, &out)
    })
}
