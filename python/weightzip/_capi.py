"""The C API of libweightzip (include/weightzip.h) as ctypes sees it: constants, structs, every
function's signature, and the loaded library.

This is the only place the header is mirrored. It is written by hand (the header is short, and a
build step that parses C would be more code than what it replaces), and checked against the
header by python/tests/test_abi.py: every WZ_* constant, every wz_status value, every struct's
fields in order with their C types, and every function's return and argument types. A change to
the header that is not made here fails that test.
"""

import ctypes
import os
import sys

# ---- Constants (#define WZ_* and enum wz_status) ----------------------------------------------

WZ_FRAME_HEADER_SIZE = 48
WZ_FORMAT_VERSION = 1

WZ_KIND_BF16 = 1
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
WZ_KIND_Q5_K = 23
WZ_KIND_IQ4_NL = 24
WZ_KIND_IQ4_XS = 25
WZ_KIND_Q3_K = 26
WZ_KIND_Q2_K = 27

#: Data kinds by the name `compress(kind=...)` accepts.
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
    "q5_k": WZ_KIND_Q5_K,
    "iq4_nl": WZ_KIND_IQ4_NL,
    "iq4_xs": WZ_KIND_IQ4_XS,
    "q3_k": WZ_KIND_Q3_K,
    "q2_k": WZ_KIND_Q2_K,
}

#: wz_options.flags: compress with the fast variant (block kinds decode faster, a fraction of a
#: percent of ratio; see the C header).
WZ_FLAG_FAST = 1

WZ_CONTAINER_GGUF = 1
WZ_CONTAINER_SAFETENSORS = 2
#: Container formats of archives by number: ArchiveInfo.container_name.
CONTAINERS = {WZ_CONTAINER_GGUF: "gguf", WZ_CONTAINER_SAFETENSORS: "safetensors"}

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

# ---- Structs, field for field -----------------------------------------------------------------


class wz_options(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("threads", ctypes.c_uint32),
        ("chunk_size", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
    ]


class wz_frame_info(ctypes.Structure):
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
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("container", ctypes.c_uint32),
        ("tensor_count", ctypes.c_uint64),
        ("original_size", ctypes.c_uint64),
        ("archive_size", ctypes.c_uint64),
        ("metadata_size", ctypes.c_uint64),
    ]


class wz_tensor_info(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("container_type", ctypes.c_uint32),
        ("kind", ctypes.c_uint32),
        ("n_dims", ctypes.c_uint32),
        ("dims", ctypes.c_uint64 * 8),
        # const char *, declared void* so that ctypes does not stop at a NUL: name_len bytes.
        ("name", ctypes.c_void_p),
        ("name_len", ctypes.c_size_t),
        ("original_offset", ctypes.c_uint64),
        ("original_size", ctypes.c_uint64),
        ("archive_offset", ctypes.c_uint64),
        ("archive_size", ctypes.c_uint64),
        ("sha256", ctypes.c_uint8 * 32),
        ("type_name", ctypes.c_char_p),
    ]


STRUCTS = (wz_options, wz_frame_info, wz_archive_info, wz_tensor_info)

# ---- Functions --------------------------------------------------------------------------------

_u32, _i32, _size, _vp, _cp = ctypes.c_uint32, ctypes.c_int32, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_char_p
_status = ctypes.c_uint32  # wz_status is a uint32_t in C
_opts = ctypes.POINTER(wz_options)
_handle_out = ctypes.POINTER(_vp)  # wz_archive **: the handle is opaque, a void* here

#: name: (restype, argtypes), for every function the header declares.
FUNCTIONS = {
    "wz_version": (_u32, []),
    "wz_version_string": (_cp, []),
    "wz_format_version": (_u32, []),
    "wz_last_error_message": (_cp, []),
    "wz_last_error_errno": (_i32, []),
    "wz_status_str": (_cp, [_u32]),
    "wz_compress_bound": (_size, [_size]),
    "wz_options_init": (_status, [_opts]),
    "wz_compress": (_status, [_vp, _size, _vp, _size, _u32, _opts, ctypes.POINTER(_size)]),
    "wz_decompress": (_status, [_vp, _size, _vp, _size, _opts]),
    "wz_frame_get_info": (_status, [_vp, _size, ctypes.POINTER(wz_frame_info)]),
    "wz_archive_open": (_status, [_cp, _handle_out]),
    "wz_archive_open_memory": (_status, [_vp, _size, _handle_out]),
    "wz_archive_close": (None, [_vp]),
    "wz_archive_get_info": (_status, [_vp, ctypes.POINTER(wz_archive_info)]),
    "wz_archive_tensor_count": (_size, [_vp]),
    "wz_archive_tensor_info": (_status, [_vp, _size, ctypes.POINTER(wz_tensor_info)]),
    "wz_archive_find_tensor": (_status, [_vp, _cp, ctypes.POINTER(_size)]),
    "wz_archive_read_tensor": (_status, [_vp, _size, _vp, _size, _opts]),
    "wz_archive_read_tensor_range": (_status, [_vp, _size, ctypes.c_uint64, _vp, _size, _opts]),
    "wz_archive_pread": (_status, [_vp, ctypes.c_uint64, _vp, _size, _opts]),
    "wz_archive_decoded_bytes": (ctypes.c_uint64, [_vp]),
    "wz_archive_metadata": (_status, [_vp, ctypes.POINTER(_vp), ctypes.POINTER(_size)]),
    "wz_archive_restore": (_status, [_vp, _cp, _opts]),
    "wz_archive_restore_fd": (_status, [_vp, ctypes.c_int, _opts]),
    "wz_archive_verify": (_status, [_vp, _opts]),
    "wz_archive_compress_file": (_status, [_cp, _cp, _opts]),
}

# ---- Loading ----------------------------------------------------------------------------------

if sys.platform == "darwin":
    LIBRARY_NAME = "libweightzip.dylib"
elif sys.platform == "win32":
    LIBRARY_NAME = "weightzip.dll"
else:
    LIBRARY_NAME = "libweightzip.so"

_HERE = os.path.dirname(os.path.abspath(__file__))


def library_path():
    """Where the library is loaded from: the copy inside the package (what a wheel carries),
    else $WEIGHTZIP_LIBRARY (a given build, for tests), else the repository's
    target/release (running from a checkout after `cargo build --release`)."""
    bundled = os.path.join(_HERE, LIBRARY_NAME)
    if os.path.isfile(bundled):
        return bundled
    env = os.environ.get("WEIGHTZIP_LIBRARY")
    if env:
        return env
    return os.path.normpath(os.path.join(_HERE, "..", "..", "target", "release", LIBRARY_NAME))


def _load():
    path = library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise OSError(
            "weightzip: cannot load %s (%s); install the package with pip (its wheel carries the "
            "library), or build it with `cargo build --release` and set WEIGHTZIP_LIBRARY" % (path, e)
        ) from e
    for name, (restype, argtypes) in FUNCTIONS.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


lib = _load()

# ---- Errors -----------------------------------------------------------------------------------


class WeightzipError(Exception):
    """A weightzip call returned a non-OK status.

    ``status`` (the wz_status number), ``message`` (wz_status_str's description), ``name`` (e.g.
    "WZ_STATUS_CORRUPT_DATA") and ``detail`` (wz_last_error_message: for WZ_STATUS_IO, the file
    and the system's reason; else the same as message).
    """

    def __init__(self, status, message, detail=None):
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.detail = detail or message
        self.name = STATUS_NAMES.get(status, "WZ_STATUS_%d" % status)

    def __str__(self):
        return "%s (%s = %d)" % (self.detail, self.name, self.status)


def status_str(status):
    """wz_status_str: the library's description of a status number."""
    return lib.wz_status_str(status).decode("utf-8", "replace")


def check(status):
    """Raises WeightzipError for a non-OK status (right after the failing call, so that
    wz_last_error_message still describes it: it is per thread)."""
    if status != 0:
        detail = lib.wz_last_error_message().decode("utf-8", "replace")
        raise WeightzipError(status, status_str(status), detail)


def options(threads=0, chunk_size=0, fast=False):
    """A wz_options with the library's defaults, then `threads` and `chunk_size` (0: default),
    and WZ_FLAG_FAST if `fast`."""
    for what, value in (("threads", threads), ("chunk_size", chunk_size)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
            raise ValueError("%s must be an int from 0 to 2**32 - 1, got %r" % (what, value))
    opts = wz_options()
    check(lib.wz_options_init(ctypes.byref(opts)))
    opts.threads = threads
    opts.chunk_size = chunk_size
    opts.flags = WZ_FLAG_FAST if fast else 0
    return opts
