//! `wz_status`: the one result code of the C ABI. Numbers are frozen once released: never reuse or
//! renumber one; add new codes at the end.

use std::ffi::{c_char, CStr};

use crate::error::Error;

/// Result of every fallible `wz_*` call. 0 is success; anything else is an error whose
/// description `wz_status_str` returns.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wz_status {
    WZ_STATUS_OK = 0,
    WZ_STATUS_NULL_POINTER = 1,
    WZ_STATUS_INVALID_ARGUMENT = 2,
    WZ_STATUS_UNKNOWN_KIND = 3,
    WZ_STATUS_BAD_LENGTH = 4,
    WZ_STATUS_DST_TOO_SMALL = 5,
    WZ_STATUS_DST_SIZE_MISMATCH = 6,
    WZ_STATUS_BAD_MAGIC = 7,
    WZ_STATUS_UNSUPPORTED_VERSION = 8,
    WZ_STATUS_TRUNCATED = 9,
    WZ_STATUS_CORRUPT_HEADER = 10,
    WZ_STATUS_CORRUPT_MODEL = 11,
    WZ_STATUS_CORRUPT_DATA = 12,
    WZ_STATUS_TRAILING_DATA = 13,
    WZ_STATUS_TOO_LARGE = 14,
    WZ_STATUS_OUT_OF_MEMORY = 15,
    WZ_STATUS_IO = 16,
    WZ_STATUS_PANIC = 17,
    WZ_STATUS_KIND_MISMATCH = 18,
    WZ_STATUS_BAD_CONTAINER = 19,
    WZ_STATUS_CONTAINER_TRUNCATED = 20,
    WZ_STATUS_CONTAINER_BAD_MAGIC = 21,
    WZ_STATUS_CONTAINER_VERSION = 22,
    WZ_STATUS_TENSOR_OUT_OF_RANGE = 23,
    WZ_STATUS_TENSOR_OVERLAP = 24,
    WZ_STATUS_NOT_FOUND = 25,
}

impl From<Error> for wz_status {
    fn from(e: Error) -> wz_status {
        use wz_status::*;
        match e {
            Error::NullPointer => WZ_STATUS_NULL_POINTER,
            Error::InvalidArgument => WZ_STATUS_INVALID_ARGUMENT,
            Error::UnknownKind => WZ_STATUS_UNKNOWN_KIND,
            Error::BadLength => WZ_STATUS_BAD_LENGTH,
            Error::DstTooSmall => WZ_STATUS_DST_TOO_SMALL,
            Error::DstSizeMismatch => WZ_STATUS_DST_SIZE_MISMATCH,
            Error::BadMagic => WZ_STATUS_BAD_MAGIC,
            Error::UnsupportedVersion => WZ_STATUS_UNSUPPORTED_VERSION,
            Error::Truncated => WZ_STATUS_TRUNCATED,
            Error::CorruptHeader => WZ_STATUS_CORRUPT_HEADER,
            Error::CorruptModel => WZ_STATUS_CORRUPT_MODEL,
            Error::CorruptData => WZ_STATUS_CORRUPT_DATA,
            Error::TrailingData => WZ_STATUS_TRAILING_DATA,
            Error::TooLarge => WZ_STATUS_TOO_LARGE,
            Error::OutOfMemory => WZ_STATUS_OUT_OF_MEMORY,
            Error::Io(_) => WZ_STATUS_IO,
            Error::Panic => WZ_STATUS_PANIC,
            Error::KindMismatch => WZ_STATUS_KIND_MISMATCH,
            Error::BadContainer => WZ_STATUS_BAD_CONTAINER,
            Error::ContainerTruncated => WZ_STATUS_CONTAINER_TRUNCATED,
            Error::ContainerBadMagic => WZ_STATUS_CONTAINER_BAD_MAGIC,
            Error::ContainerVersion => WZ_STATUS_CONTAINER_VERSION,
            Error::TensorOutOfRange => WZ_STATUS_TENSOR_OUT_OF_RANGE,
            Error::TensorOverlap => WZ_STATUS_TENSOR_OVERLAP,
            Error::NotFound => WZ_STATUS_NOT_FOUND,
        }
    }
}

/// The static description of a status number; unknown numbers get a description too.
pub fn status_cstr(status: u32) -> *const c_char {
    let s: &'static CStr = match status {
        0 => c"success",
        n => match Error::ALL.get(n as usize - 1) {
            Some(e) => e.message_c(),
            None => c"unknown status code",
        },
    };
    s.as_ptr()
}
