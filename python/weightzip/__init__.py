"""weightzip: lossless compression of LLM weights, from Python.

A ctypes binding of libweightzip (its C API, include/weightzip.h), which the wheel carries:

    import weightzip
    weightzip.compress_file("model.safetensors", "model.safetensors.wz")
    weightzip.restore_file("model.safetensors.wz", "restored.safetensors")

Archives of safetensors files read like safetensors files (weightzip.safetensors: load_file,
safe_open, get_slice), archives of GGUF files like gguf-py's GGUFReader (weightzip.gguf). Archive
is the lower level: the index, whole and ranged tensor reads, metadata, restore, verify; compress,
decompress and frame_info work on single frames.

Every non-OK status from the library raises WeightzipError.
"""

from ._archive import Archive, ArchiveInfo, TensorInfo, compress_file, restore_file
from ._capi import (
    CONTAINERS,
    KINDS,
    STATUS_NAMES,
    WeightzipError,
    library_path,
    status_str,
)
from ._capi import lib as _lib
from . import _capi

# The header's constants (WZ_KIND_*, WZ_CONTAINER_*, WZ_STATUS_*, ...) as module attributes.
globals().update({k: v for k, v in vars(_capi).items() if k.startswith("WZ_")})
from ._frame import compress, compress_bound, decompress, frame_info
from ._types import GGML_TYPES, SAFETENSORS_DTYPES, ggml_type_name

__all__ = [
    "WeightzipError",
    "compress",
    "decompress",
    "frame_info",
    "compress_bound",
    "compress_file",
    "restore_file",
    "Archive",
    "ArchiveInfo",
    "TensorInfo",
    "version",
    "version_number",
    "format_version",
    "status_str",
    "library_path",
    "ggml_type_name",
    "KINDS",
    "STATUS_NAMES",
    "GGML_TYPES",
    "SAFETENSORS_DTYPES",
    "CONTAINERS",
]

__version__ = "0.1.0"


def version():
    """The library's version string, e.g. "0.1.0"."""
    return _lib.wz_version_string().decode("ascii")


def version_number():
    """The library's version as major * 10000 + minor * 100 + patch."""
    return _lib.wz_version()


def format_version():
    """The frame format version the library writes."""
    return _lib.wz_format_version()
