"""Output buffers for the library to decode into.

bytearray(n) writes n zeros before the library writes every byte again; for a large output that
pass costs a third of the decoding time (measured on MiniLM's 45 MB of bf16, one thread: decode
into a reused buffer 2850 MB/s, into bytearray(n) 1406 MB/s, into an uninitialised bytearray 1457
to 2088 MB/s, the rest being the page faults of fresh memory). So outputs are created
uninitialised (CPython's PyByteArray_FromStringAndSize with no source). This is safe only because
every caller hands the buffer to a library call that writes all of it when it succeeds, and drops
it unreturned when the call fails: callers must keep it that way. Other Pythons (no
ctypes.pythonapi) get bytearray(n).

Why not also ask for transparent huge pages (madvise MADV_HUGEPAGE), which would cut the faults
512-fold: measured, the same decode then ran at 2100-2280 MB/s in some runs and 440 MB/s in
others, when the kernel compacted memory to find huge pages at fault time ("defrag: madvise", a
common default). A library call should not have that spread.
"""

import ctypes

# Below this, zero-filling is cheap.
_LARGE = 4 << 20

try:
    _from_string_and_size = ctypes.pythonapi.PyByteArray_FromStringAndSize
    _from_string_and_size.restype = ctypes.py_object
    _from_string_and_size.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
except (AttributeError, ValueError):  # not CPython
    _from_string_and_size = None


def output_bytearray(size):
    """A bytearray of `size` bytes whose contents are undefined until the library fills it (see
    the module docstring for the rule that makes this safe)."""
    if size < _LARGE or _from_string_and_size is None:
        return bytearray(size)
    return _from_string_and_size(None, size)
