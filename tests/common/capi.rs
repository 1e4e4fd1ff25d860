//! Safe handles over the C API's archive functions, for the tests that call the C ABI from Rust
//! (`#[path = "common/capi.rs"] mod capi;`).
#![allow(dead_code)]

use std::ffi::{c_void, CString};
use std::path::Path;

use weightzip::ffi::archive::*;

/// A NUL-terminated copy of a path, for the C functions that take one.
pub fn cpath(p: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).expect("a path without NUL bytes")
}

/// A non-NULL pointer no handle has: what an out-parameter holds before a call, so a test can see
/// that a failing open set it to NULL.
pub fn garbage_handle() -> *mut wz_archive {
    std::ptr::NonNull::<wz_archive>::dangling().as_ptr()
}

/// An open archive handle, closed on drop.
pub struct Handle(pub *mut wz_archive);

// The C API says a handle may be shared by threads for reads.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        unsafe { wz_archive_close(self.0) };
    }
}

/// `wz_archive_open`: the handle, or the status (after checking the handle was set to NULL).
pub fn open_path(p: &Path) -> Result<Handle, u32> {
    let mut a = garbage_handle();
    let s = unsafe { wz_archive_open(cpath(p).as_ptr(), &mut a) } as u32;
    if s != 0 {
        assert!(a.is_null(), "*archive not set to NULL on failure ({s})");
        return Err(s);
    }
    Ok(Handle(a))
}

/// `wz_archive_open_memory`, likewise. `bytes` must outlive the handle.
pub fn open_memory(bytes: &[u8]) -> Result<Handle, u32> {
    let mut a = garbage_handle();
    let s = unsafe { wz_archive_open_memory(bytes.as_ptr() as *const c_void, bytes.len(), &mut a) } as u32;
    if s != 0 {
        assert!(a.is_null(), "*archive not set to NULL on failure ({s})");
        return Err(s);
    }
    Ok(Handle(a))
}

/// `wz_archive_tensor_info` of tensor `i`, which must succeed.
pub fn tensor_info(a: &Handle, i: usize) -> wz_tensor_info {
    // SAFETY: a plain C struct; all-zero is a valid value (NULL pointers, zero numbers).
    let mut ti: wz_tensor_info = unsafe { std::mem::zeroed() };
    ti.struct_size = std::mem::size_of::<wz_tensor_info>() as u32;
    assert_eq!(unsafe { wz_archive_tensor_info(a.0, i, &mut ti) } as u32, 0, "tensor_info {i}");
    ti
}
