"""Python bindings for libweightzip's C API (include/weightzip.h), using only ctypes.

The shared library is found through the environment variable WEIGHTZIP_LIB (a path to the .so),
or else at ../target/release/libweightzip.so relative to this file (build it with
`cargo build --release`).

    import weightzip
    frame = weightzip.compress(data, kind="bf16")
    assert weightzip.decompress(frame) == data
    weightzip.frame_info(frame)["original_size"]

Whole model files go through archives: compress a GGUF or safetensors file into one, then read
any tensor of it without decoding the rest, or restore the original file byte for byte.

    weightzip.compress_file("model.gguf", "model.gguf.wz")
    with weightzip.Archive("model.gguf.wz") as archive:
        for t in archive.tensors:
            data = archive.read_tensor(t.name)        # bytes, exactly as in model.gguf
        weights = archive.read_numpy("output_norm.weight")
        archive.restore("model-restored.gguf")

    weightzip.compress_file("model.safetensors", "model.safetensors.wz")
    with weightzip.Archive("model.safetensors.wz") as archive:
        archive.info.container_name                   # "safetensors"
        w = archive.read_numpy("embeddings.word_embeddings.weight")  # BF16: uint16 bits
        w = archive.read_numpy("embeddings.word_embeddings.weight", bf16="ml_dtypes")

Every non-OK status from the library raises WeightzipError(status, message).

Run as a script:
    python3 weightzip.py FILE.bf16 [THREADS]           roundtrip a raw bf16 file through a frame
    python3 weightzip.py compress MODEL [ARCHIVE]      compress a GGUF or safetensors model
                                                       (ARCHIVE: MODEL.wz)
    python3 weightzip.py ls [--json] ARCHIVE           list an archive's tensors
    python3 weightzip.py verify ARCHIVE                check every tensor against its SHA-256
    python3 weightzip.py restore ARCHIVE OUT           restore the original file
"""

import collections
import contextlib
import ctypes
import json
import operator
import os
import sys
import threading

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
    "compress_file",
    "Archive",
    "ArchiveInfo",
    "TensorInfo",
    "ggml_type_name",
    "KINDS",
    "STATUS_NAMES",
    "GGML_TYPES",
    "SAFETENSORS_DTYPES",
    "CONTAINERS",
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
WZ_STATUS_CONTAINER_TRUNCATED = 20
WZ_STATUS_CONTAINER_BAD_MAGIC = 21
WZ_STATUS_CONTAINER_VERSION = 22
WZ_STATUS_TENSOR_OUT_OF_RANGE = 23
WZ_STATUS_TENSOR_OVERLAP = 24
WZ_STATUS_NOT_FOUND = 25

#: Status names by number, e.g. STATUS_NAMES[12] == "WZ_STATUS_CORRUPT_DATA".
STATUS_NAMES = {v: k for k, v in list(globals().items()) if k.startswith("WZ_STATUS_")}

#: Container formats of archives (WZ_CONTAINER_*), by number: ArchiveInfo.container_name.
WZ_CONTAINER_GGUF = 1
WZ_CONTAINER_SAFETENSORS = 2
CONTAINERS = {WZ_CONTAINER_GGUF: "gguf", WZ_CONTAINER_SAFETENSORS: "safetensors"}

#: The container_type of a safetensors tensor whose dtype the library does not know.
WZ_DTYPE_UNKNOWN = 0xFFFFFFFF

#: ggml tensor types by id: (name, elements per block, bytes per block, numpy dtype of one element
#: or None for block-quantized types). From ggml.h / ggml-common.h; ids 4, 5, 31-33 and 36-38 are
#: retired, and Q8_1 (9) is left out because it only exists in memory, never in files.
GGML_TYPES = {
    0: ("F32", 1, 4, "<f4"),
    1: ("F16", 1, 2, "<f2"),
    2: ("Q4_0", 32, 18, None),
    3: ("Q4_1", 32, 20, None),
    6: ("Q5_0", 32, 22, None),
    7: ("Q5_1", 32, 24, None),
    8: ("Q8_0", 32, 34, None),
    10: ("Q2_K", 256, 84, None),
    11: ("Q3_K", 256, 110, None),
    12: ("Q4_K", 256, 144, None),
    13: ("Q5_K", 256, 176, None),
    14: ("Q6_K", 256, 210, None),
    15: ("Q8_K", 256, 292, None),
    16: ("IQ2_XXS", 256, 66, None),
    17: ("IQ2_XS", 256, 74, None),
    18: ("IQ3_XXS", 256, 98, None),
    19: ("IQ1_S", 256, 50, None),
    20: ("IQ4_NL", 32, 18, None),
    21: ("IQ3_S", 256, 110, None),
    22: ("IQ2_S", 256, 82, None),
    23: ("IQ4_XS", 256, 136, None),
    24: ("I8", 1, 1, "i1"),
    25: ("I16", 1, 2, "<i2"),
    26: ("I32", 1, 4, "<i4"),
    27: ("I64", 1, 8, "<i8"),
    28: ("F64", 1, 8, "<f8"),
    29: ("IQ1_M", 256, 56, None),
    # bfloat16 has no numpy dtype: read_numpy gives its bits as uint16 (x.astype(np.uint32) << 16,
    # viewed as float32, is the value).
    30: ("BF16", 1, 2, "<u2"),
    34: ("TQ1_0", 256, 54, None),
    35: ("TQ2_0", 256, 66, None),
    39: ("MXFP4", 32, 17, None),
    40: ("NVFP4", 64, 36, None),
    41: ("Q1_0", 128, 18, None),
}

#: safetensors dtypes by the code the library reports as a tensor's container_type (DTYPES in
#: src/safetensors.rs): (name, numpy dtype of one element). numpy has no bfloat16 and no 8-bit
#: floats: BF16 gives its bits as uint16 (or ml_dtypes.bfloat16, see Archive.read_numpy), the F8
#: types their bytes as uint8.
SAFETENSORS_DTYPES = {
    0: ("BOOL", "?"),
    1: ("U8", "u1"),
    2: ("I8", "i1"),
    3: ("I16", "<i2"),
    4: ("U16", "<u2"),
    5: ("F16", "<f2"),
    6: ("BF16", "<u2"),
    7: ("I32", "<i4"),
    8: ("U32", "<u4"),
    9: ("F32", "<f4"),
    10: ("F64", "<f8"),
    11: ("I64", "<i8"),
    12: ("U64", "<u8"),
    13: ("F8_E4M3", "u1"),
    14: ("F8_E5M2", "u1"),
}

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


class wz_archive_info(ctypes.Structure):
    """struct wz_archive_info: what an archive holds."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("container", ctypes.c_uint32),
        ("tensor_count", ctypes.c_uint64),
        ("original_size", ctypes.c_uint64),
        ("archive_size", ctypes.c_uint64),
        ("metadata_size", ctypes.c_uint64),
    ]


class wz_tensor_info(ctypes.Structure):
    """struct wz_tensor_info: one tensor of an archive."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("container_type", ctypes.c_uint32),
        ("kind", ctypes.c_uint32),
        ("n_dims", ctypes.c_uint32),
        ("dims", ctypes.c_uint64 * 8),
        # const char *: declared void* so that ctypes does not stop at a NUL; name_len bytes.
        ("name", ctypes.c_void_p),
        ("name_len", ctypes.c_size_t),
        ("original_offset", ctypes.c_uint64),
        ("original_size", ctypes.c_uint64),
        ("archive_offset", ctypes.c_uint64),
        ("archive_size", ctypes.c_uint64),
        ("sha256", ctypes.c_uint8 * 32),
        # const char *, static in the library: the name of container_type ("Q4_K", "BF16",
        # "unknown"). NULL (None) from a library older than this field.
        ("type_name", ctypes.c_char_p),
    ]


# The header's layout on every platform weightzip supports (64-bit); a mismatch here means this
# file and the header have drifted apart.
assert ctypes.sizeof(wz_options) == 16, ctypes.sizeof(wz_options)
assert ctypes.sizeof(wz_frame_info) == 40, ctypes.sizeof(wz_frame_info)
assert ctypes.sizeof(wz_archive_info) == 40, ctypes.sizeof(wz_archive_info)
assert ctypes.sizeof(wz_tensor_info) == 168, ctypes.sizeof(wz_tensor_info)


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

    u32, size_t, vp, cp = ctypes.c_uint32, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_char_p
    status = ctypes.c_uint32  # wz_status is a uint32_t in C
    opts_p = ctypes.POINTER(wz_options)
    handle_p = ctypes.POINTER(vp)  # wz_archive ** (the handle is opaque: a void* here)
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
        "wz_archive_open": (status, [cp, handle_p]),
        "wz_archive_open_memory": (status, [vp, size_t, handle_p]),
        "wz_archive_close": (None, [vp]),
        "wz_archive_get_info": (status, [vp, ctypes.POINTER(wz_archive_info)]),
        "wz_archive_tensor_count": (size_t, [vp]),
        "wz_archive_tensor_info": (status, [vp, size_t, ctypes.POINTER(wz_tensor_info)]),
        "wz_archive_find_tensor": (status, [vp, cp, ctypes.POINTER(size_t)]),
        "wz_archive_read_tensor": (status, [vp, size_t, vp, size_t, opts_p]),
        "wz_archive_metadata": (status, [vp, ctypes.POINTER(vp), ctypes.POINTER(size_t)]),
        "wz_archive_restore": (status, [vp, cp, opts_p]),
        "wz_archive_verify": (status, [vp, opts_p]),
        "wz_archive_compress_file": (status, [cp, cp, opts_p]),
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
    """Decompresses one whole frame (bytes-like) and returns the original bytes, as a bytearray
    the library decoded into (no second copy: peak memory is the frame and its output).

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
        return bytearray()
    if size > sys.maxsize:
        _check(WZ_STATUS_TOO_LARGE)
    out = bytearray(size)
    # from_buffer exports the bytearray for the call, so it cannot be resized under the library.
    dst = (ctypes.c_char * size).from_buffer(out)
    status = _lib.wz_decompress(dst, size, src, len(src), ctypes.byref(opts))
    del dst
    _check(status)
    return out


# ---- Archives -----------------------------------------------------------------------------------


def ggml_type_name(type_id):
    """The name of a ggml type id ("Q4_K"), or "type N" for one this module does not know."""
    entry = GGML_TYPES.get(type_id)
    return entry[0] if entry else "type %d" % type_id


def _type_name(container, container_type):
    # Only for a library that does not fill wz_tensor_info.type_name.
    if container == WZ_CONTAINER_SAFETENSORS:
        entry = SAFETENSORS_DTYPES.get(container_type)
        return entry[0] if entry else "unknown"
    return ggml_type_name(container_type)


def _element_layout(t, bf16):
    """How read_numpy shapes tensor t: (elements per block, bytes per block, numpy dtype of one
    element or None for blocks of bytes), or None when its type is not known here."""
    import numpy as np

    if t.container == WZ_CONTAINER_SAFETENSORS:
        entry = SAFETENSORS_DTYPES.get(t.container_type)
        if entry is None:
            return None
        name, dtype = entry
        dtype = np.dtype(dtype)
        per_block, block_bytes = 1, dtype.itemsize
    elif t.container == WZ_CONTAINER_GGUF:
        entry = GGML_TYPES.get(t.container_type)
        if entry is None:
            return None
        name, per_block, block_bytes, dtype = entry
        dtype = None if dtype is None else np.dtype(dtype)
    else:
        return None
    if name == "BF16" and bf16 == "ml_dtypes":
        try:
            import ml_dtypes
        except ImportError as e:
            raise ImportError(
                'weightzip.Archive.read_numpy(bf16="ml_dtypes") needs ml_dtypes (pip install ml_dtypes)'
            ) from e
        dtype = np.dtype(ml_dtypes.bfloat16)
    return per_block, block_bytes, dtype


def _path_arg(path, what):
    # A path becomes the bytes the OS uses. ctypes would pass a path with a NUL in it cut short,
    # i.e. name some other file, so that is refused here.
    raw = os.fsencode(os.fspath(path))
    if b"\0" in raw:
        raise ValueError("%s contains a NUL byte: %r" % (what, path))
    return raw


def _name_bytes(name):
    # Tensor names are UTF-8 in GGUF; TensorInfo.name decodes other bytes with surrogateescape,
    # so encoding it back the same way gives the stored bytes.
    if isinstance(name, str):
        return name.encode("utf-8", "surrogateescape")
    if isinstance(name, (bytes, bytearray)):
        return bytes(name)
    raise TypeError("a tensor name must be str or bytes, not %s" % type(name).__name__)


def compress_file(src_path, dst_path, threads=0):
    """Compresses the model file at `src_path` (GGUF or safetensors, told apart by their
    contents) into an archive at `dst_path`.

    The archive is written to a temporary file and renamed into place when complete. Refuses
    (WZ_STATUS_INVALID_ARGUMENT) to write over its input; a malformed model raises a specific
    status (WZ_STATUS_CONTAINER_*, WZ_STATUS_TENSOR_*, WZ_STATUS_BAD_CONTAINER).
    """
    src = _path_arg(src_path, "src_path")
    dst = _path_arg(dst_path, "dst_path")
    opts = _options(threads)
    _check(_lib.wz_archive_compress_file(src, dst, ctypes.byref(opts)))


#: What Archive.info holds (sizes in bytes; container_name "gguf" or "safetensors").
ArchiveInfo = collections.namedtuple(
    "ArchiveInfo",
    "container container_name tensor_count original_size archive_size metadata_size",
)


class TensorInfo(
    collections.namedtuple(
        "TensorInfo",
        "index name container_type type_name kind kind_name dims original_offset original_size "
        "archive_offset archive_size sha256 container",
    )
):
    """One tensor of an archive.

    ``name`` (str); ``container_type``, whose meaning depends on the archive's ``container``
    (WZ_CONTAINER_GGUF: the ggml type id, GGML_TYPES; WZ_CONTAINER_SAFETENSORS: the dtype code,
    SAFETENSORS_DTYPES, WZ_DTYPE_UNKNOWN for a dtype the library does not know) and
    ``type_name``, the library's name for it ("Q4_K", "BF16", "unknown"); ``kind`` (the WZ_KIND_*
    its frame holds) and ``kind_name``; ``dims`` in the container's order (GGUF: innermost first,
    safetensors: outermost first); the byte ranges ``original_offset``/``original_size`` (in the
    model file) and ``archive_offset``/``archive_size`` (the frame in the archive); ``sha256``
    (hex digest of the original bytes). ``shape`` is the shape in numpy's order (outermost
    first) for either container.
    """

    __slots__ = ()

    @property
    def shape(self):
        if self.container == WZ_CONTAINER_GGUF:
            return tuple(reversed(self.dims))
        return tuple(self.dims)

    @property
    def n_elements(self):
        n = 1
        for d in self.dims:
            n *= d
        return n


class Archive:
    """An open weightzip archive: ``Archive(path)`` (read with pread as tensors are asked for) or ``Archive.from_bytes(data)``.

    Use it as a context manager or call close(). Tensors are named by index (negative counts from
    the end) or by name. The read methods may be called from several threads at once; close()
    waits for the calls in progress.
    """

    def __init__(self, path):
        raw = _path_arg(path, "path")
        self._open(lambda out: _lib.wz_archive_open(raw, out), None, os.fspath(path))

    @classmethod
    def from_bytes(cls, data):
        """Opens an archive held in memory.

        A bytes object is used in place (and kept alive until close); any other buffer is copied
        once, since the library reads the bytes for as long as the archive is open. To avoid
        holding a large archive in memory, open it by path instead.
        """
        src = _as_bytes(data, "data")
        self = cls.__new__(cls)
        self._open(lambda out: _lib.wz_archive_open_memory(src, len(src), out), src, None)
        return self

    def _open(self, opener, src, path):
        # Set before anything can fail, so that close() and __del__ always work.
        self._handle = None
        self._busy = 0
        self._cond = threading.Condition()
        self.path = path
        handle = ctypes.c_void_p()
        _check(opener(ctypes.byref(handle)))
        self._handle = handle.value
        # wz_archive_open_memory borrows the bytes: they must outlive the handle.
        self._src = src
        try:
            self._info, self._tensors = self._load_index()
        except BaseException:
            self.close()
            raise

    def _load_index(self):
        with self._use() as h:
            ai = wz_archive_info()
            ai.struct_size = ctypes.sizeof(wz_archive_info)
            _check(_lib.wz_archive_get_info(h, ctypes.byref(ai)))
            count = _lib.wz_archive_tensor_count(h)
            if count != ai.tensor_count:
                raise AssertionError(
                    "wz_archive_tensor_count says %d, wz_archive_get_info %d" % (count, ai.tensor_count)
                )
            kind_names = {number: name for name, number in KINDS.items()}
            tensors = []
            ti = wz_tensor_info()
            for i in range(count):
                ctypes.memset(ctypes.byref(ti), 0, ctypes.sizeof(ti))
                ti.struct_size = ctypes.sizeof(wz_tensor_info)
                _check(_lib.wz_archive_tensor_info(h, i, ctypes.byref(ti)))
                name = ctypes.string_at(ti.name, ti.name_len) if ti.name_len else b""
                if ti.type_name is not None:
                    type_name = ti.type_name.decode("ascii", "replace")
                else:  # a library older than the field: this module's own table
                    type_name = _type_name(ai.container, ti.container_type)
                tensors.append(
                    TensorInfo(
                        index=i,
                        name=name.decode("utf-8", "surrogateescape"),
                        container_type=ti.container_type,
                        type_name=type_name,
                        kind=ti.kind,
                        kind_name=kind_names.get(ti.kind, "kind %d" % ti.kind),
                        dims=tuple(ti.dims[: ti.n_dims]),
                        original_offset=ti.original_offset,
                        original_size=ti.original_size,
                        archive_offset=ti.archive_offset,
                        archive_size=ti.archive_size,
                        sha256=bytes(ti.sha256).hex(),
                        container=ai.container,
                    )
                )
        info = ArchiveInfo(
            container=ai.container,
            container_name=CONTAINERS.get(ai.container, "container %d" % ai.container),
            tensor_count=ai.tensor_count,
            original_size=ai.original_size,
            archive_size=ai.archive_size,
            metadata_size=ai.metadata_size,
        )
        return info, tuple(tensors)

    @contextlib.contextmanager
    def _use(self):
        # Every call into the library holds one "use" of the handle, so close() (which frees it)
        # cannot run while a read on another thread is still inside the library.
        with self._cond:
            if self._handle is None:
                raise ValueError("I/O operation on a closed weightzip archive")
            self._busy += 1
            handle = self._handle
        try:
            yield handle
        finally:
            with self._cond:
                self._busy -= 1
                if self._busy == 0:
                    self._cond.notify_all()

    def close(self):
        """Closes the archive (waiting for reads in progress); later calls raise ValueError."""
        cond = getattr(self, "_cond", None)
        if cond is None:
            return
        with cond:
            handle, self._handle = self._handle, None
            while self._busy:
                cond.wait()
        if handle:
            _lib.wz_archive_close(handle)
        self._src = None

    @property
    def closed(self):
        return self._handle is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass  # interpreter shutdown: the module's globals may be gone already

    def __repr__(self):
        if self.closed:
            return "<weightzip.Archive (closed)>"
        where = repr(self.path) if self.path is not None else "in memory"
        return "<weightzip.Archive %s: %d tensors>" % (where, len(self._tensors))

    def __len__(self):
        return len(self._tensors)

    @property
    def info(self):
        """ArchiveInfo: container, container_name, tensor_count, original_size, archive_size,
        metadata_size."""
        return self._info

    @property
    def tensors(self):
        """The tensors (TensorInfo), in the model file's order."""
        return list(self._tensors)

    def find(self, name):
        """The index of the first tensor named `name` (str or bytes); KeyError if there is none."""
        raw = _name_bytes(name)
        if b"\0" in raw:
            raise KeyError(name)  # the C call would see a shorter name
        index = ctypes.c_size_t(0)
        with self._use() as h:
            status = _lib.wz_archive_find_tensor(h, raw, ctypes.byref(index))
        if status == WZ_STATUS_NOT_FOUND:
            raise KeyError(name)
        _check(status)
        return index.value

    def _index(self, key):
        if isinstance(key, (str, bytes, bytearray)):
            return self.find(key)
        if isinstance(key, bool):
            raise TypeError("a tensor is named by an int index or a str name, not bool")
        i = operator.index(key)
        n = len(self._tensors)
        if not -n <= i < n:
            raise IndexError("tensor index %d out of range (archive has %d tensors)" % (i, n))
        return i + n if i < 0 else i

    def tensor(self, index_or_name):
        """The TensorInfo of one tensor."""
        return self._tensors[self._index(index_or_name)]

    def read_tensor_into(self, index_or_name, buffer, threads=0):
        """Decodes a tensor into `buffer`: any writable, C-contiguous buffer (bytearray, mmap,
        numpy array, ...) of exactly the tensor's original_size bytes. A smaller buffer raises
        WZ_STATUS_DST_TOO_SMALL, a larger one WZ_STATUS_DST_SIZE_MISMATCH. Returns the size.
        """
        i = self._index(index_or_name)
        opts = _options(threads)
        with memoryview(buffer) as view:
            if view.readonly:
                raise TypeError("buffer must be writable")
            if not view.c_contiguous:
                raise ValueError("buffer must be C-contiguous")
            size = view.nbytes
        # from_buffer holds the buffer exported for the call, so a bytearray cannot be resized
        # while the library writes into it (the call runs without the GIL).
        dst = (ctypes.c_char * size).from_buffer(buffer) if size else None
        with self._use() as h:
            _check(_lib.wz_archive_read_tensor(h, i, dst, size, ctypes.byref(opts)))
        return size

    def read_tensor(self, index_or_name, threads=0):
        """A tensor's original bytes (read_tensor_into a buffer of your own saves one copy)."""
        i = self._index(index_or_name)
        size = self._tensors[i].original_size
        if size > sys.maxsize:
            _check(WZ_STATUS_TOO_LARGE)
        buf = bytearray(size)
        self.read_tensor_into(i, buf, threads)
        return bytes(buf)

    def read_numpy(self, index_or_name, threads=0, bf16="uint16"):
        """A tensor as a numpy array (numpy is imported only here).

        Element types give their dtype and shape (numpy order: ``TensorInfo.shape``): F32
        float32, F16 float16, F64 float64, I8..I64 int8..int64, U8..U64 uint8..uint64 and BOOL
        bool (safetensors), F8_E4M3 and F8_E5M2 uint8 (their bytes; safetensors), and BF16 uint16,
        the raw bits (``x.astype(np.uint32) << 16`` viewed as float32 is the value), or with
        ``bf16="ml_dtypes"`` an ml_dtypes.bfloat16 array of the same bits (ImportError without
        ml_dtypes). Block-quantized GGUF types (Q4_K, Q8_0, ...) give the raw blocks as uint8 of
        shape (n_blocks, bytes_per_block); a type this module does not know, or a size that
        disagrees with the dims, gives the bytes as flat uint8.
        """
        if bf16 not in ("uint16", "ml_dtypes"):
            raise ValueError('bf16 must be "uint16" or "ml_dtypes", got %r' % (bf16,))
        try:
            import numpy as np
        except ImportError as e:
            raise ImportError("weightzip.Archive.read_numpy needs numpy (pip install numpy)") from e
        i = self._index(index_or_name)
        t = self._tensors[i]
        layout = _element_layout(t, bf16)  # before reading: a missing ml_dtypes fails early
        if t.original_size > sys.maxsize:
            _check(WZ_STATUS_TOO_LARGE)
        raw = np.empty(t.original_size, dtype=np.uint8)
        self.read_tensor_into(i, raw, threads)
        if layout is None:
            return raw
        per_block, block_bytes, dtype = layout
        n = t.n_elements
        # Shaped only when the size agrees with the dims (the archive stores the bytes as they
        # were, whatever the dims say).
        if n % per_block or n // per_block * block_bytes != t.original_size:
            return raw
        if dtype is not None:
            return raw.view(dtype).reshape(t.shape)
        return raw.reshape(n // per_block, block_bytes)

    def metadata(self):
        """The model file's bytes before its data section (GGUF: header, key/values, tensor
        infos, padding; safetensors: the 8-byte header length and the JSON header), exactly as
        in the original."""
        data = ctypes.c_void_p()
        size = ctypes.c_size_t(0)
        with self._use() as h:
            _check(_lib.wz_archive_metadata(h, ctypes.byref(data), ctypes.byref(size)))
            # Copied while the handle is certainly open: the bytes belong to it.
            return ctypes.string_at(data.value, size.value) if size.value else b""

    def restore(self, path, threads=0):
        """Writes the original model file, byte for byte, to `path` (atomically)."""
        raw = _path_arg(path, "path")
        opts = _options(threads)
        with self._use() as h:
            _check(_lib.wz_archive_restore(h, raw, ctypes.byref(opts)))

    def verify(self, threads=0):
        """Decodes every tensor and checks it and the metadata against their SHA-256 digests;
        raises WeightzipError on the first mismatch."""
        opts = _options(threads)
        with self._use() as h:
            _check(_lib.wz_archive_verify(h, ctypes.byref(opts)))


_USAGE = """usage: %(prog)s FILE.bf16 [THREADS]            roundtrip a raw bf16 file through a frame
       %(prog)s compress MODEL [ARCHIVE]       compress a GGUF or safetensors model (ARCHIVE: MODEL.wz)
       %(prog)s ls [--json] ARCHIVE            list an archive's tensors
       %(prog)s verify ARCHIVE                 check every tensor against its SHA-256
       %(prog)s restore ARCHIVE OUT            restore the original file"""


def _archive_main(argv):
    command, args = argv[1], argv[2:]
    as_json = command == "ls" and args[:1] == ["--json"]
    if as_json:
        args = args[1:]
    wanted = {"compress": (1, 2), "ls": (1, 1), "verify": (1, 1), "restore": (2, 2)}[command]
    if not wanted[0] <= len(args) <= wanted[1]:
        print(_USAGE % {"prog": argv[0]}, file=sys.stderr)
        return 2
    try:
        if command == "compress":
            dst = args[1] if len(args) == 2 else args[0] + ".wz"
            compress_file(args[0], dst)
            with Archive(dst) as archive:
                info = archive.info
            print(
                "%s -> %s: %d tensors, %d -> %d bytes, ratio %.4f"
                % (args[0], dst, info.tensor_count, info.original_size, info.archive_size,
                   info.original_size / info.archive_size)
            )
            return 0
        with Archive(args[0]) as archive:
            if command == "verify":
                archive.verify()
                print("%s: %d tensors verified OK" % (args[0], len(archive)))
            elif command == "restore":
                archive.restore(args[1])
                print("%s -> %s: %d bytes" % (args[0], args[1], archive.info.original_size))
            elif as_json:
                out = archive.info._asdict()
                out["tensors"] = [t._asdict() for t in archive.tensors]
                print(json.dumps(out, indent=2))
            else:
                print("%-44s %8s %16s %12s %12s" % ("name", "type", "dims", "original", "archive"))
                for t in archive.tensors:
                    dims = "x".join(str(d) for d in t.dims)
                    print("%-44s %8s %16s %12d %12d"
                          % (t.name, t.type_name, dims, t.original_size, t.archive_size))
    except BrokenPipeError:
        # `ls | head`: the reader left; point stdout at /dev/null so the exit flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (WeightzipError, OSError) as e:
        print("%s: %s" % (args[0], e), file=sys.stderr)
        return 1
    return 0


def _main(argv):
    if len(argv) >= 2 and argv[1] in ("compress", "ls", "verify", "restore"):
        return _archive_main(argv)
    if len(argv) not in (2, 3):
        print(_USAGE % {"prog": argv[0]}, file=sys.stderr)
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
