"""Output buffers for the library to decode into.

bytearray(n) writes n zeros before the library writes every byte again; for a large output that
pass, and the page faults it takes on fresh memory, cost as much as decoding (measured on MiniLM's
45 MB of bf16, one thread: decode into a reused buffer 2850 MB/s, into bytearray(n) 1406 MB/s).
So outputs are created uninitialised (CPython's PyByteArray_FromStringAndSize with no source) and,
on Linux, advised to be backed by transparent huge pages (one fault per 2 MiB instead of per 4
KiB; with both, 2250 MB/s). This is safe only because every caller hands the buffer to a library
call that writes all of it when it succeeds, and drops it unreturned when the call fails: callers
must keep it that way. Other Pythons (no ctypes.pythonapi) get bytearray(n).
"""

import ctypes
import sys

# Below this, zero-filling is cheap and huge pages cannot apply.
_LARGE = 4 << 20
_HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE = 14  # Linux

try:
    _from_string_and_size = ctypes.pythonapi.PyByteArray_FromStringAndSize
    _from_string_and_size.restype = ctypes.py_object
    _from_string_and_size.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
except (AttributeError, ValueError):  # not CPython
    _from_string_and_size = None

_madvise = None
if sys.platform.startswith("linux"):
    try:
        _madvise = ctypes.CDLL(None, use_errno=True).madvise
        _madvise.restype = ctypes.c_int
        _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    except (OSError, AttributeError):
        _madvise = None


def output_bytearray(size):
    """A bytearray of `size` bytes whose contents are undefined until the library fills it (see
    the module docstring for the rule that makes this safe)."""
    if size < _LARGE or _from_string_and_size is None:
        return bytearray(size)
    out = _from_string_and_size(None, size)
    if _madvise is not None:
        view = (ctypes.c_char * size).from_buffer(out)
        addr = ctypes.addressof(view)
        start = (addr + _HUGE_PAGE - 1) // _HUGE_PAGE * _HUGE_PAGE
        end = (addr + size) // _HUGE_PAGE * _HUGE_PAGE
        if end > start:
            # Advice only: a kernel without transparent huge pages refuses, and nothing changes.
            _madvise(start, end - start, _MADV_HUGEPAGE)
        del view
    return out
