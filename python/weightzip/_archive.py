"""Archives: a whole GGUF or safetensors file as one frame per tensor (docs/FORMAT.md section 8).

Archive wraps the wz_archive_* functions: the index, whole-tensor and ranged reads (a slice of a
tensor, or of the original file, decoding only the chunks that hold it), the metadata, restore
and verify. compress_file and restore_file are the file-to-file operations, streaming as the C
functions do.
"""

import collections
import contextlib
import ctypes
import operator
import os
import sys
import threading

from . import _capi
from ._capi import WZ_CONTAINER_GGUF, WZ_CONTAINER_SAFETENSORS, WZ_STATUS_NOT_FOUND, WZ_STATUS_TOO_LARGE, check, lib
from ._buffers import output_bytearray
from ._frame import as_bytes
from ._types import GGML_TYPES, SAFETENSORS_DTYPES, numpy_dtype


def _element_layout(t, bf16):
    """How read_numpy shapes tensor t: (elements per block, bytes per block, numpy dtype of one
    element or None for blocks of bytes), or None when its type is not known here."""
    import numpy as np

    if t.container == WZ_CONTAINER_SAFETENSORS:
        name = t.type_name
        if name not in SAFETENSORS_DTYPES:
            return None
        # read_numpy's numpy-only dtypes: BF16 as its bits (uint16), the 8-bit floats as bytes.
        # (weightzip.safetensors gives ml_dtypes' types, as the safetensors package does.)
        dtype = {"BF16": np.dtype("<u2"), "F8_E4M3": np.dtype("u1"), "F8_E5M2": np.dtype("u1")}.get(name)
        dtype = dtype or numpy_dtype(name)
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


def _offset_arg(offset):
    # A uint64_t in C: ctypes would wrap a negative int around to a huge offset.
    if isinstance(offset, bool) or not 0 <= operator.index(offset) < 2**64:
        raise ValueError("offset must be an int from 0 to 2**64 - 1, got %r" % (offset,))
    return operator.index(offset)


def _new_buffer(size):
    # A bytearray for a read of `size` bytes (the library judges whether the range exists).
    if isinstance(size, bool) or operator.index(size) < 0:
        raise ValueError("size must be a non-negative int, got %r" % (size,))
    if size > sys.maxsize:
        check(WZ_STATUS_TOO_LARGE)
    return output_bytearray(size)


def _writable(buffer):
    """(ctypes pointer or None, size) for a writable, C-contiguous buffer. from_buffer holds the
    buffer exported while the pointer lives, so a bytearray cannot be resized while the library
    writes into it (the calls run without the GIL)."""
    with memoryview(buffer) as view:
        if view.readonly:
            raise TypeError("buffer must be writable")
        if not view.c_contiguous:
            raise ValueError("buffer must be C-contiguous")
        size = view.nbytes
    return ((ctypes.c_char * size).from_buffer(buffer) if size else None), size


def _refuse_existing(path, overwrite):
    # The CLI's rule: an existing output is replaced only when asked. (The library itself writes
    # to a temporary file and renames it over the output, so a failure never leaves half a file.)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError("%s exists; pass overwrite=True to replace it" % os.fspath(path))


def compress_file(src, dst, threads=0, overwrite=False, chunk_size=0, fast=False):
    """Compresses the model file at `src` (GGUF or safetensors, told apart by their contents)
    into an archive at `dst`, streaming: the library reads the model a window at a time.

    Refuses (FileExistsError) to replace an existing `dst` unless `overwrite`, and
    (WZ_STATUS_INVALID_ARGUMENT) to write over `src`; a malformed model raises a specific status
    (WZ_STATUS_CONTAINER_*, WZ_STATUS_TENSOR_*, WZ_STATUS_BAD_CONTAINER). `dst` is written to a
    temporary file and renamed into place when complete. `chunk_size` (0: 256 KiB) is the bytes
    per independently decodable chunk: smaller chunks make slices of tensors cheaper to read.
    `fast` writes the fast variant (quantized tensors decode faster for a fraction of a percent
    of ratio; older library versions cannot read it).
    """
    src_raw = _path_arg(src, "src")
    dst_raw = _path_arg(dst, "dst")
    _refuse_existing(dst, overwrite)
    opts = _capi.options(threads, chunk_size, fast)
    check(lib.wz_archive_compress_file(src_raw, dst_raw, ctypes.byref(opts)))


def restore_file(archive, dst, threads=0, overwrite=False):
    """Restores the original model file of the archive at `archive` to `dst`, byte for byte,
    streaming (a few 16 MiB windows of memory whatever the file's size) and atomically.

    Refuses (FileExistsError) to replace an existing `dst` unless `overwrite`.
    """
    _refuse_existing(dst, overwrite)
    with Archive(archive) as a:
        a.restore(dst, threads)


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
    (WZ_CONTAINER_GGUF: the ggml type id, GGML_TYPES; WZ_CONTAINER_SAFETENSORS: the library's
    dtype code, 0xFFFFFFFF for a dtype it does not know) and
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
        self._open(lambda out: lib.wz_archive_open(raw, out), None, os.fspath(path))

    @classmethod
    def from_bytes(cls, data):
        """Opens an archive held in memory.

        A bytes object is used in place (and kept alive until close); any other buffer is copied
        once, since the library reads the bytes for as long as the archive is open. To avoid
        holding a large archive in memory, open it by path instead.
        """
        src = as_bytes(data, "data")
        self = cls.__new__(cls)
        self._open(lambda out: lib.wz_archive_open_memory(src, len(src), out), src, None)
        return self

    def _open(self, opener, src, path):
        # Set before anything can fail, so that close() and __del__ always work.
        self._handle = None
        self._busy = 0
        self._cond = threading.Condition()
        self.path = path
        handle = ctypes.c_void_p()
        check(opener(ctypes.byref(handle)))
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
            ai = _capi.wz_archive_info()
            ai.struct_size = ctypes.sizeof(_capi.wz_archive_info)
            check(lib.wz_archive_get_info(h, ctypes.byref(ai)))
            count = lib.wz_archive_tensor_count(h)
            if count != ai.tensor_count:
                raise AssertionError(
                    "wz_archive_tensor_count says %d, wz_archive_get_info %d" % (count, ai.tensor_count)
                )
            kind_names = {number: name for name, number in _capi.KINDS.items()}
            tensors = []
            ti = _capi.wz_tensor_info()
            for i in range(count):
                ctypes.memset(ctypes.byref(ti), 0, ctypes.sizeof(ti))
                ti.struct_size = ctypes.sizeof(_capi.wz_tensor_info)
                check(lib.wz_archive_tensor_info(h, i, ctypes.byref(ti)))
                name = ctypes.string_at(ti.name, ti.name_len) if ti.name_len else b""
                type_name = ti.type_name.decode("ascii", "replace")
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
            container_name=_capi.CONTAINERS.get(ai.container, "container %d" % ai.container),
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
            lib.wz_archive_close(handle)
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

    def __contains__(self, name):
        try:
            self.find(name)
        except (KeyError, TypeError):
            return False
        return True

    def keys(self):
        """The tensors' names, in the model file's order."""
        return [t.name for t in self._tensors]

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
            status = lib.wz_archive_find_tensor(h, raw, ctypes.byref(index))
        if status == WZ_STATUS_NOT_FOUND:
            raise KeyError(name)
        check(status)
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
        opts = _capi.options(threads)
        dst, size = _writable(buffer)
        with self._use() as h:
            check(lib.wz_archive_read_tensor(h, i, dst, size, ctypes.byref(opts)))
        return size

    def read_range_into(self, index_or_name, offset, buffer, threads=0):
        """Decodes bytes [offset, offset + len(buffer)) of a tensor's original data into
        `buffer` (writable, C-contiguous), decoding only the chunks of its frame that hold them
        (wz_archive_read_tensor_range). A range that is not inside the tensor raises
        WZ_STATUS_INVALID_ARGUMENT. Returns the size.
        """
        i = self._index(index_or_name)
        offset = _offset_arg(offset)
        opts = _capi.options(threads)
        dst, size = _writable(buffer)
        with self._use() as h:
            check(lib.wz_archive_read_tensor_range(h, i, offset, dst, size, ctypes.byref(opts)))
        return size

    def read_range(self, index_or_name, offset, size, threads=0):
        """Bytes [offset, offset + size) of a tensor's original data, as a bytearray, decoding
        only the chunks that hold them: a slice of a large tensor costs the chunks it touches
        (``decoded_bytes`` tells how many bytes those were), not the tensor."""
        buf = _new_buffer(size)
        self.read_range_into(index_or_name, offset, buf, threads)
        return buf

    def pread_into(self, offset, buffer, threads=0):
        """Reads bytes [offset, offset + len(buffer)) of the original model file into `buffer`,
        as os.pread on the original would (wz_archive_pread): metadata and padding as stored,
        tensor data decoded a chunk at a time, only the chunks the range touches. A range past
        the original's end (``info.original_size``) raises WZ_STATUS_INVALID_ARGUMENT."""
        offset = _offset_arg(offset)
        opts = _capi.options(threads)
        dst, size = _writable(buffer)
        with self._use() as h:
            check(lib.wz_archive_pread(h, offset, dst, size, ctypes.byref(opts)))
        return size

    def pread(self, offset, size, threads=0):
        """Bytes [offset, offset + size) of the original model file, as a bytearray (see
        pread_into)."""
        buf = _new_buffer(size)
        self.pread_into(offset, buf, threads)
        return buf

    @property
    def decoded_bytes(self):
        """Original bytes this archive has decoded so far (wz_archive_decoded_bytes), counted in
        whole chunks: a ranged read adds the chunks it touched, a whole-tensor read the tensor's
        size, restore and verify every tensor; the metadata is not counted. For checking that a
        slice decoded only what it needed."""
        with self._use() as h:
            return lib.wz_archive_decoded_bytes(h)

    def read_tensor(self, index_or_name, threads=0):
        """A tensor's original bytes (read_tensor_into a buffer of your own saves one copy)."""
        i = self._index(index_or_name)
        size = self._tensors[i].original_size
        if size > sys.maxsize:
            check(WZ_STATUS_TOO_LARGE)
        buf = output_bytearray(size)
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
            check(WZ_STATUS_TOO_LARGE)
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
            check(lib.wz_archive_metadata(h, ctypes.byref(data), ctypes.byref(size)))
            # Copied while the handle is certainly open: the bytes belong to it.
            return ctypes.string_at(data.value, size.value) if size.value else b""

    def restore(self, path, threads=0):
        """Writes the original model file, byte for byte, to `path` (atomically)."""
        raw = _path_arg(path, "path")
        opts = _capi.options(threads)
        with self._use() as h:
            check(lib.wz_archive_restore(h, raw, ctypes.byref(opts)))

    def verify(self, threads=0):
        """Decodes every tensor and checks it and the metadata against their SHA-256 digests;
        raises WeightzipError on the first mismatch."""
        opts = _capi.options(threads)
        with self._use() as h:
            check(lib.wz_archive_verify(h, ctypes.byref(opts)))
