"""Frames: one compressed stream of one data kind (docs/FORMAT.md, sections 1-3).

compress, decompress and frame_info wrap the C functions of the same names. Nothing here reads
the format itself: ranged reads of tensors are the library's (wz_archive_read_tensor_range, see
Archive.read_range), so the frame layout is known in one place only, the Rust code.
"""

import ctypes
import sys

from . import _capi
from ._buffers import output_bytearray
from ._capi import WZ_STATUS_DST_TOO_SMALL, WZ_STATUS_OK, WZ_STATUS_TOO_LARGE, check, lib


def as_bytes(data, what):
    # ctypes passes a bytes object to a void* parameter without copying; other buffers
    # (bytearray, memoryview, mmap) are copied once.
    if isinstance(data, bytes):
        return data
    try:
        return bytes(memoryview(data))
    except TypeError:
        raise TypeError("%s must be a bytes-like object, not %s" % (what, type(data).__name__)) from None


def _kind_number(kind):
    if isinstance(kind, int) and not isinstance(kind, bool):
        return kind  # passed through, so the library itself judges unknown numbers
    number = _capi.KINDS.get(str(kind).lower())
    if number is None:
        status = _capi.WZ_STATUS_UNKNOWN_KIND
        known = ", ".join(sorted(_capi.KINDS))
        message = "%s: %r (known: %s)" % (_capi.status_str(status), kind, known)
        raise _capi.WeightzipError(status, _capi.status_str(status), message)
    return number


def compress_bound(size):
    """The largest frame compress() can make from `size` bytes (0 if it does not fit size_t)."""
    return lib.wz_compress_bound(size)


def compress(data, kind="bf16", threads=0, fast=False):
    """Compresses `data` (bytes-like) of `kind` ("bf16", or a WZ_KIND_* number) into a frame;
    `fast` writes the fast variant (block kinds decode faster for a fraction of a percent of
    ratio)."""
    src = as_bytes(data, "data")
    kind_number = _kind_number(kind)
    opts = _capi.options(threads, fast=fast)
    capacity = lib.wz_compress_bound(len(src))
    if capacity == 0:
        check(WZ_STATUS_TOO_LARGE)
    dst = ctypes.create_string_buffer(capacity)
    written = ctypes.c_size_t(0)
    check(
        lib.wz_compress(
            dst, capacity, src, len(src), kind_number, ctypes.byref(opts), ctypes.byref(written)
        )
    )
    # One copy of the frame: `dst.raw[:n]` copied the whole buffer and then the frame again.
    return ctypes.string_at(dst, written.value)


def frame_info(frame):
    """Reads a frame's header (the first 48 bytes suffice) into a dict without decoding."""
    src = as_bytes(frame, "frame")
    info = _capi.wz_frame_info()
    info.struct_size = ctypes.sizeof(_capi.wz_frame_info)
    check(lib.wz_frame_get_info(src, len(src), ctypes.byref(info)))
    names = {number: name for name, number in _capi.KINDS.items()}
    return {
        "kind": info.kind,
        "kind_name": names.get(info.kind, "kind %d" % info.kind),
        "format_version": info.format_version,
        "chunk_count": info.chunk_count,
        "chunk_size": info.chunk_size,
        "original_size": info.original_size,
        "frame_size": info.frame_size,
    }


def decompress(frame, threads=0):
    """Decompresses one whole frame (bytes-like) and returns the original bytes, as a bytearray
    the library decoded into (no second copy: peak memory is the frame and its output).

    Every chunk is checked against its checksum; corrupt or truncated frames raise
    WeightzipError and never return data.
    """
    src = as_bytes(frame, "frame")
    opts = _capi.options(threads)
    size = frame_info(src)["original_size"]
    # Before allocating what the header claims, let the library check the frame's structure
    # (length, chunk table, checksums of the metadata): with an empty dst it reports such
    # problems, or else only that dst is too small.
    status = lib.wz_decompress(None, 0, src, len(src), ctypes.byref(opts))
    if status not in (WZ_STATUS_OK, WZ_STATUS_DST_TOO_SMALL):
        check(status)
    if size == 0:
        check(status)
        return bytearray()
    if size > sys.maxsize:
        check(WZ_STATUS_TOO_LARGE)
    out = output_bytearray(size)
    # from_buffer exports the bytearray for the call, so it cannot be resized under the library.
    dst = (ctypes.c_char * size).from_buffer(out)
    status = lib.wz_decompress(dst, size, src, len(src), ctypes.byref(opts))
    del dst
    check(status)
    return out
