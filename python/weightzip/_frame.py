"""Frames: one compressed stream of one data kind (docs/FORMAT.md, sections 1-3).

compress, decompress and frame_info wrap the C functions of the same names. FrameHead decodes a
byte range of a frame, a few chunks instead of all of them, for slices of large tensors: the C
API has no ranged read (wz_archive_read_tensor decodes a whole tensor), so FrameHead makes a
smaller frame of just the chunks the range needs, as the format allows (every chunk is coded on
its own given the frame's model), and hands it to wz_decompress, which checks it like any other
frame.
"""

import ctypes
import struct
import sys

from . import _capi
from ._capi import WZ_STATUS_CORRUPT_HEADER, WZ_STATUS_DST_TOO_SMALL, WZ_STATUS_OK, WZ_STATUS_TOO_LARGE, check, lib


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


def compress(data, kind="bf16", threads=0):
    """Compresses `data` (bytes-like) of `kind` ("bf16", or a WZ_KIND_* number) into a frame."""
    src = as_bytes(data, "data")
    kind_number = _kind_number(kind)
    opts = _capi.options(threads)
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
    return dst.raw[: written.value]


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
    out = bytearray(size)
    # from_buffer exports the bytearray for the call, so it cannot be resized under the library.
    dst = (ctypes.c_char * size).from_buffer(out)
    status = lib.wz_decompress(dst, size, src, len(src), ctypes.byref(opts))
    del dst
    check(status)
    return out




# The fixed header (docs/FORMAT.md section 2): magic, format_version, kind, method,
# original_size, chunk_size, chunk_count, model_size, reserved, payload_size, header_check.
_HEADER = struct.Struct("<4sHBBQIIIIQQ")
# A chunk table entry (section 3): stored_size, chunk_method, model_index, reserved, chunk_check.
_ENTRY = struct.Struct("<IBBHQ")
_CHECK_LEN = 8


def _xxh3_64(data):
    # The format's checksum (XXH3-64, seed 0). From the xxhash package, imported here so that
    # everything but ranged reads works without it.
    import xxhash

    return xxhash.xxh3_64_intdigest(data)


def _corrupt():
    status = WZ_STATUS_CORRUPT_HEADER
    return _capi.WeightzipError(status, _capi.status_str(status))


class FrameHead:
    """The header, model and chunk table of one frame, read through `read_at(offset, size)` (the
    frame starts at `offset` and is `size` bytes), enough to decode any byte range of it.

    The header is checked by the library (wz_frame_get_info: its own checksum) and the model and
    table against the frame's table check here, before anything in them is used.
    """

    def __init__(self, read_at, offset, size):
        self._read_at = read_at
        self.offset = offset
        head = read_at(offset, min(size, _capi.WZ_FRAME_HEADER_SIZE))
        info = frame_info(head)
        (self.magic, self.version, self.kind, self.method, self.original_size, self.chunk_size,
         self.chunk_count, self.model_size, _reserved, self.payload_size, _check) = _HEADER.unpack(head)
        assert (self.original_size, self.chunk_count) == (info["original_size"], info["chunk_count"])
        if info["frame_size"] != size:
            raise _corrupt()
        self._model_end = _capi.WZ_FRAME_HEADER_SIZE + self.model_size
        table_end = self._model_end + _ENTRY.size * self.chunk_count
        self.meta_len = table_end + _CHECK_LEN
        self._meta = read_at(offset, self.meta_len)
        if _xxh3_64(self._meta[_capi.WZ_FRAME_HEADER_SIZE:table_end]) != int.from_bytes(
            self._meta[table_end:], "little"
        ):
            raise _corrupt()
        # starts[i]: where chunk i's stored bytes begin in the payload; one more for its end.
        self.starts = [0]
        for stored, *_rest in _ENTRY.iter_unpack(self._meta[self._model_end:table_end]):
            self.starts.append(self.starts[-1] + stored)
        if self.starts[-1] != self.payload_size:
            raise _corrupt()

    def chunks_for(self, start, end):
        """The chunks [first, last) that original bytes [start, end) lie in."""
        if not 0 <= start < end <= self.original_size:
            raise ValueError("byte range [%d, %d) is not within the frame's %d bytes" % (start, end, self.original_size))
        return start // self.chunk_size, (end - 1) // self.chunk_size + 1

    def decode_range(self, start, end, threads=0):
        """Original bytes [start, end) (0 <= start < end <= original_size), decoding only the
        chunks they lie in. Returns (bytes-like, number of chunks decoded, archive bytes read)."""
        first, last = self.chunks_for(start, end)
        cs = self.chunk_size
        sub_size = min(last * cs, self.original_size) - first * cs
        payload_len = self.starts[last] - self.starts[first]
        payload = self._read_at(self.offset + self.meta_len + self.starts[first], payload_len)
        # The same frame, cut down to chunks first..last: a header saying so (with its check
        # recomputed), the model as it is, those chunks' table entries, the table check over the
        # model and the new table, and their stored bytes.
        header = _HEADER.pack(self.magic, self.version, self.kind, self.method, sub_size, cs, last - first,
                              self.model_size, 0, payload_len, 0)[:-_CHECK_LEN]
        header += _xxh3_64(header).to_bytes(_CHECK_LEN, "little")
        model = self._meta[_capi.WZ_FRAME_HEADER_SIZE:self._model_end]
        table = self._meta[self._model_end + _ENTRY.size * first:self._model_end + _ENTRY.size * last]
        table_check = _xxh3_64(model + table).to_bytes(_CHECK_LEN, "little")
        frame = b"".join((header, model, table, table_check, payload))
        out = bytearray(sub_size)
        dst = (ctypes.c_char * sub_size).from_buffer(out)
        status = lib.wz_decompress(dst, sub_size, frame, len(frame), ctypes.byref(_capi.options(threads)))
        del dst
        check(status)
        skip = start - first * cs
        return memoryview(out)[skip:skip + end - start], last - first, len(payload)
