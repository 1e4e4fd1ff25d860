//! The panic guard every exported function runs inside, and the pointer checks that turn C
//! arguments into Rust slices.
//!
//! # Safety contract (for every `wz_*` function)
//! Pointers are either NULL or valid for the stated number of bytes for the whole call; buffers
//! passed as `src` and `dst` do not overlap. NULL with a size of 0 is accepted as an empty buffer.
//! Under that contract no `wz_*` function has undefined behaviour: a NULL pointer with a non-zero
//! size, a size above `isize::MAX` and a Rust panic all become status codes.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, UnwindSafe};

use super::status::wz_status;
use crate::error::{Error, Result};

thread_local! {
    /// What `wz_last_error_message` returns: the description of this thread's last failure.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    /// What `wz_last_error_errno` returns: the OS error number of that failure, or 0.
    static LAST_ERRNO: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// Records `e` as this thread's last error.
fn set_last_error(e: &Error) {
    // Paths may hold NUL bytes only in theory (Unix paths cannot); drop any rather than fail.
    let text = CString::new(e.to_string().replace('\0', "")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|l| *l.borrow_mut() = text);
    let errno = match e {
        Error::Io(d) => d.io_error().and_then(|e| e.raw_os_error()).unwrap_or(0),
        _ => 0,
    };
    let _ = LAST_ERRNO.try_with(|l| l.set(errno));
}

/// The OS error number of this thread's last error (see `wz_last_error_errno`).
pub fn last_error_errno() -> i32 {
    LAST_ERRNO.try_with(|l| l.get()).unwrap_or(0)
}

/// The text of this thread's last error (see `wz_last_error_message`).
pub fn last_error_message() -> *const c_char {
    LAST_ERROR.try_with(|l| l.borrow().as_ptr()).unwrap_or(c"".as_ptr())
}

/// Runs `f`, mapping errors to their status and a panic to `WZ_STATUS_PANIC`; a failure is also
/// recorded for `wz_last_error_message`.
pub fn guard<F: FnOnce() -> Result<()> + UnwindSafe>(f: F) -> wz_status {
    match catch_unwind(f) {
        Ok(Ok(())) => wz_status::WZ_STATUS_OK,
        Ok(Err(e)) => {
            set_last_error(&e);
            wz_status::from(e)
        }
        Err(_) => {
            set_last_error(&Error::Panic);
            wz_status::WZ_STATUS_PANIC
        }
    }
}

/// Like `guard`, for functions that return a plain value: `fallback` stands in after a panic.
pub fn guard_value<T, F: FnOnce() -> T + UnwindSafe>(fallback: T, f: F) -> T {
    catch_unwind(f).unwrap_or(fallback)
}

/// # Safety
/// `ptr` must be NULL or valid for reads of `len` bytes for the returned lifetime.
pub unsafe fn in_slice<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::NullPointer);
    }
    if len > isize::MAX as usize {
        return Err(Error::TooLarge);
    }
    Ok(std::slice::from_raw_parts(ptr, len))
}

/// # Safety
/// `ptr` must be NULL or valid for writes of `len` bytes for the returned lifetime.
pub unsafe fn out_slice<'a>(ptr: *mut u8, len: usize) -> Result<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Error::NullPointer);
    }
    if len > isize::MAX as usize {
        return Err(Error::TooLarge);
    }
    Ok(std::slice::from_raw_parts_mut(ptr, len))
}

/// Largest `struct_size` accepted for a versioned struct: far above any version's real size.
const MAX_STRUCT_SIZE: usize = 256;

/// Reads a caller's versioned struct: the first `u32` is its size in bytes as the caller knows
/// it. Fields the caller's version lacks keep their defaults from `init`; fields of a newer
/// caller's version that this library does not know must be zero.
///
/// # Safety
/// `ptr` must be NULL or point to a struct whose first field is its size in bytes.
pub unsafe fn read_versioned<T: Copy>(ptr: *const T, init: T) -> Result<T> {
    if ptr.is_null() {
        return Ok(init);
    }
    let size = (ptr as *const u32).read_unaligned() as usize;
    let ours = std::mem::size_of::<T>();
    // The cap turns an uninitialised struct_size into an error instead of a wild read.
    if !(4..=MAX_STRUCT_SIZE).contains(&size) {
        return Err(Error::InvalidArgument);
    }
    let bytes = std::slice::from_raw_parts(ptr as *const u8, size);
    if size > ours && bytes[ours..].iter().any(|&b| b != 0) {
        return Err(Error::InvalidArgument);
    }
    let mut v = init;
    let n = size.min(ours);
    std::ptr::copy_nonoverlapping(bytes.as_ptr().add(4), (&mut v as *mut T as *mut u8).add(4), n - 4);
    Ok(v)
}

/// Writes the part of `v` that fits in the caller's struct (whose first `u32` is its size).
///
/// # Safety
/// `ptr` must be non-NULL and point to a writable struct whose first field is its size in bytes.
pub unsafe fn write_versioned<T: Copy>(ptr: *mut T, v: &T) -> Result<()> {
    let size = (ptr as *const u32).read_unaligned() as usize;
    if !(4..=MAX_STRUCT_SIZE).contains(&size) {
        return Err(Error::InvalidArgument);
    }
    let n = size.min(std::mem::size_of::<T>());
    std::ptr::copy_nonoverlapping((v as *const T as *const u8).add(4), (ptr as *mut u8).add(4), n - 4);
    Ok(())
}
