"""Python bindings for libweightzip's C API (include/weightzip.h), using only ctypes.

The shared library is found through the environment variable WEIGHTZIP_LIB (a path to the .so),
or else at ../target/release/libweightzip.so relative to this file (build it with
`cargo build --release`).

    import weightzip
    frame = weightzip.compress(data, kind="bf16")
    assert weightzip.decompress(frame) == data
    weightzip.frame_info(frame)["original_size"]

Every non-OK status from the library raises WeightzipError(status, message).

Run as a script to roundtrip a file:  python3 weightzip.py FILE.bf16 [THREADS]
"""

import ctypes
import os
import sys

__all__ = [
    "WeightzipError",
    "compress",
    "decompress",
    "frame_info",
    "version",
    "version_number",
    "format_version",
    "status_str",
    "compress_bound",
    "KINDS",
    "STATUS_NAMES",
]

# ---- Constants mirrored from weightzip.h ------------------------------------------------------

WZ_KIND_BF16 = 1
WZ_FRAME_HEADER_SIZE = 48

#: Data kinds by name, as `compress(kind=...)` accepts them.
WZ_KIND_BYTES = 2
WZ_KIND_F32 = 3
WZ_KIND_F16 = 4
WZ_KIND_Q4_K = 16
WZ_KIND_Q6_K = 17
WZ_KIND_Q8_0 = 18
WZ_KIND_Q5_0 = 19
WZ_KIND_Q5_1 = 20
WZ_KIND_Q4_0 = 21
WZ_KIND_Q4_1 = 22
KINDS = {
    "bf16": WZ_KIND_BF16,
    "bytes": WZ_KIND_BYTES,
    "f32": WZ_KIND_F32,
    "f16": WZ_KIND_F16,
    "q4_k": WZ_KIND_Q4_K,
    "q6_k": WZ_KIND_Q6_K,
    "q8_0": WZ_KIND_Q8_0,
    "q5_0": WZ_KIND_Q5_0,
    "q5_1": WZ_KIND_Q5_1,
    "q4_0": WZ_KIND_Q4_0,
    "q4_1": WZ_KIND_Q4_1,
}

# enum wz_status
WZ_STATUS_OK = 0
WZ_STATUS_NULL_POINTER = 1
WZ_STATUS_INVALID_ARGUMENT = 2
WZ_STATUS_UNKNOWN_KIND = 3
WZ_STATUS_BAD_LENGTH = 4
WZ_STATUS_DST_TOO_SMALL = 5
WZ_STATUS_DST_SIZE_MISMATCH = 6
WZ_STATUS_BAD_MAGIC = 7
WZ_STATUS_UNSUPPORTED_VERSION = 8
WZ_STATUS_TRUNCATED = 9
WZ_STATUS_CORRUPT_HEADER = 10
WZ_STATUS_CORRUPT_MODEL = 11
WZ_STATUS_CORRUPT_DATA = 12
WZ_STATUS_TRAILING_DATA = 13
WZ_STATUS_TOO_LARGE = 14
WZ_STATUS_OUT_OF_MEMORY = 15
WZ_STATUS_IO = 16
WZ_STATUS_PANIC = 17
WZ_STATUS_KIND_MISMATCH = 18
WZ_STATUS_BAD_CONTAINER = 19

#: Status names by number, e.g. STATUS_NAMES[12] == "WZ_STATUS_CORRUPT_DATA".
STATUS_NAMES = {v: k for k, v in list(globals().items()) if k.startswith("WZ_STATUS_")}

# ---- Structs, field for field as in weightzip.h -----------------------------------------------


class wz_options(ctypes.Structure):
    """struct wz_options: initialise with wz_options_init, then change fields."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("threads", ctypes.c_uint32),
        ("chunk_size", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    ]


class wz_frame_info(ctypes.Structure):
    """struct wz_frame_info: what a frame's header says."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("kind", ctypes.c_uint32),
        ("format_version", ctypes.c_uint32),
        ("chunk_count", ctypes.c_uint32),
        ("original_size", ctypes.c_uint64),
        ("frame_size", ctypes.c_uint64),
        ("chunk_size", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
    ]


# The header's layout on every platform weightzip supports; a mismatch here means this file and
# the header have drifted apart.
assert ctypes.sizeof(wz_options) == 16, ctypes.sizeof(wz_options)
assert ctypes.sizeof(wz_frame_info) == 40, ctypes.sizeof(wz_frame_info)


class WeightzipError(Exception):
    """A weightzip call returned a non-OK status.

    Attributes: ``status`` (the wz_status number), ``message`` (wz_status_str's description),
    ``name`` (e.g. "WZ_STATUS_CORRUPT_DATA").
    """

    def __init__(self, status, message):
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.name = STATUS_NAMES.get(status, "WZ_STATUS_%d" % status)

    def __str__(self):
        return "%s (%s = %d)" % (self.message, self.name, self.status)


# ---- Loading the library and declaring every function used ------------------------------------


def _library_path():
    path = os.environ.get("WEIGHTZIP_LIB")
    if path:
        return path
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "target", "release", "libweightzip.so"))


def _load():
    path = _library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise OSError(
            "weightzip: cannot load %s (%s); run `cargo build --release` in the repository "
            "or set WEIGHTZIP_LIB to the library's path" % (path, e)
        ) from e

    u32, size_t, vp = ctypes.c_uint32, ctypes.c_size_t, ctypes.c_void_p
    status = ctypes.c_uint32  # wz_status is a uint32_t in C
    sigs = {
        # name: (restype, argtypes)
        "wz_version": (u32, []),
        "wz_version_string": (ctypes.c_char_p, []),
        "wz_format_version": (u32, []),
        "wz_status_str": (ctypes.c_char_p, [u32]),
        "wz_compress_bound": (size_t, [size_t]),
        "wz_options_init": (status, [ctypes.POINTER(wz_options)]),
        "wz_compress": (
            status,
            [vp, size_t, vp, size_t, u32, ctypes.POINTER(wz_options), ctypes.POINTER(size_t)],
        ),
        "wz_decompress": (status, [vp, size_t, vp, size_t, ctypes.POINTER(wz_options)]),
        "wz_frame_get_info": (status, [vp, size_t, ctypes.POINTER(wz_frame_info)]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


_lib = _load()


# ---- Helpers ------------------------------------------------------------------------------------


def status_str(status):
    """wz_status_str: the library's description of a status number."""
    return _lib.wz_status_str(status).decode("utf-8", "replace")


def _check(status):
    if status != 0:
        raise WeightzipError(status, status_str(status))


def _as_bytes(data, what):
    # ctypes passes a bytes object to a void* parameter without copying; other buffers
    # (bytearray, memoryview, mmap) are copied once.
    if isinstance(data, bytes):
        return data
    try:
        return bytes(memoryview(data))
    except TypeError:
        raise TypeError("%s must be a bytes-like object, not %s" % (what, type(data).__name__))


def _options(threads):
    if not isinstance(threads, int) or isinstance(threads, bool) or not 0 <= threads < 2**32:
        raise ValueError("threads must be an int from 0 to 2**32 - 1, got %r" % (threads,))
    opts = wz_options()
    _check(_lib.wz_options_init(ctypes.byref(opts)))
    opts.threads = threads
    return opts


def _kind_number(kind):
    if isinstance(kind, int) and not isinstance(kind, bool):
        return kind  # passed through, so the library itself judges unknown numbers
    number = KINDS.get(str(kind).lower())
    if number is None:
        known = ", ".join(sorted(KINDS))
        message = "%s: %r (known: %s)" % (status_str(WZ_STATUS_UNKNOWN_KIND), kind, known)
        raise WeightzipError(WZ_STATUS_UNKNOWN_KIND, message)
    return number


# ---- Public API ---------------------------------------------------------------------------------


def version():
    """The library's version string, e.g. "0.1.0"."""
    return _lib.wz_version_string().decode("ascii")


def version_number():
    """The library's version as major * 10000 + minor * 100 + patch."""
    return _lib.wz_version()


def format_version():
    """The frame format version the library writes."""
    return _lib.wz_format_version()


def compress_bound(size):
    """The largest frame compress() can make from `size` bytes (0 if it does not fit size_t)."""
    return _lib.wz_compress_bound(size)


def compress(data, kind="bf16", threads=0):
    """Compresses `data` (bytes-like) of `kind` ("bf16", or a WZ_KIND_* number) into a frame."""
    src = _as_bytes(data, "data")
    kind_number = _kind_number(kind)
    opts = _options(threads)
    capacity = _lib.wz_compress_bound(len(src))
    if capacity == 0:
        _check(WZ_STATUS_TOO_LARGE)
    dst = ctypes.create_string_buffer(capacity)
    written = ctypes.c_size_t(0)
    _check(
        _lib.wz_compress(
            dst, capacity, src, len(src), kind_number, ctypes.byref(opts), ctypes.byref(written)
        )
    )
    return dst.raw[: written.value]


def frame_info(frame):
    """Reads a frame's header (the first 48 bytes suffice) into a dict without decoding."""
    src = _as_bytes(frame, "frame")
    info = wz_frame_info()
    info.struct_size = ctypes.sizeof(wz_frame_info)
    _check(_lib.wz_frame_get_info(src, len(src), ctypes.byref(info)))
    names = {number: name for name, number in KINDS.items()}
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
    """Decompresses one whole frame (bytes-like) and returns the original bytes.

    Every chunk is checked against its checksum; corrupt or truncated frames raise
    WeightzipError and never return data.
    """
    src = _as_bytes(frame, "frame")
    opts = _options(threads)
    size = frame_info(src)["original_size"]
    # Before allocating what the header claims, let the library check the frame's structure
    # (length, chunk table, checksums of the metadata): with an empty dst it reports such
    # problems, or else only that dst is too small.
    status = _lib.wz_decompress(None, 0, src, len(src), ctypes.byref(opts))
    if status not in (WZ_STATUS_OK, WZ_STATUS_DST_TOO_SMALL):
        _check(status)
    if size == 0:
        _check(status)
        return b""
    if size > sys.maxsize:
        _check(WZ_STATUS_TOO_LARGE)
    dst = ctypes.create_string_buffer(size)
    _check(_lib.wz_decompress(dst, size, src, len(src), ctypes.byref(opts)))
    return dst.raw


def _main(argv):
    if len(argv) not in (2, 3):
        print("usage: %s FILE.bf16 [THREADS]" % argv[0], file=sys.stderr)
        return 2
    path = argv[1]
    threads = int(argv[2]) if len(argv) == 3 else 0
    with open(path, "rb") as f:
        data = f.read()
    try:
        frame = compress(data, "bf16", threads)
        info = frame_info(frame)
        restored = decompress(frame, threads)
    except WeightzipError as e:
        print("%s: weightzip error: %s" % (path, e), file=sys.stderr)
        return 1
    if info["original_size"] != len(data) or info["frame_size"] != len(frame):
        print("%s: frame_info disagrees with the data: %r" % (path, info), file=sys.stderr)
        return 1
    if restored != data:
        print("%s: decompressed bytes differ from the input" % path, file=sys.stderr)
        return 1
    ratio = len(data) / len(frame) if frame else 0.0
    print(
        "%s: %d bytes -> %d bytes, ratio %.4f (weightzip %s via ctypes) OK"
        % (path, len(data), len(frame), ratio, version())
    )
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
