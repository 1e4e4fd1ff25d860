"""Archives of safetensors files, read the way the safetensors package reads the files.

    from weightzip.safetensors import load_file, safe_open

    tensors = load_file("model.safetensors.wz")                 # {name: numpy array}
    with safe_open("model.safetensors.wz", framework="np") as f:
        f.metadata()                                            # the header's __metadata__
        for name in f.keys():
            x = f.get_tensor(name)
        rows = f.get_slice("embed.weight")[:16]                 # decodes only those rows' chunks

Names, dtypes, shapes and bytes are those the safetensors package gives for the original file:
dtypes and shapes come from the file's own JSON header (kept in the archive as its metadata).
BF16 is ml_dtypes.bfloat16 for numpy (as safetensors gives it) and torch.bfloat16 for
framework="pt", in both cases a view of the decoded bytes, not a converted copy.

A slice along the first dimension is a byte range of the tensor, so get_slice(name)[a:b] decodes
only the chunks of the tensor's frame that hold rows a..b (Archive.read_range_into); other indexing
reads the whole tensor and indexes it.
"""

import json
import os

from ._archive import Archive
from ._capi import WZ_CONTAINER_SAFETENSORS
from ._types import numpy_dtype

__all__ = ["load_file", "safe_open"]

_FRAMEWORKS = ("np", "numpy", "pt", "torch")


def load_file(filename, framework="np", device="cpu"):
    """Every tensor of the archive `filename` as a dict {name: array}: numpy arrays for
    framework="np", torch tensors for framework="pt" (on `device`)."""
    with safe_open(filename, framework=framework, device=device) as f:
        return {name: f.get_tensor(name) for name in f.keys()}


class safe_open:
    """An archive of a safetensors file, opened like ``safetensors.safe_open``: a context
    manager with keys(), metadata(), get_tensor(name) and get_slice(name).

    ``archive`` is the underlying weightzip.Archive (its ``decoded_bytes`` counts what was decoded).
    """

    def __init__(self, filename, framework="np", device="cpu"):
        if framework not in _FRAMEWORKS:
            raise ValueError("framework must be one of %s, got %r" % (", ".join(_FRAMEWORKS), framework))
        self._torch = framework in ("pt", "torch")
        self._device = device
        self.archive = Archive(filename)
        try:
            if self.archive.info.container != WZ_CONTAINER_SAFETENSORS:
                raise ValueError(
                    "%s is an archive of a %s file, not of a safetensors file"
                    % (os.fspath(filename), self.archive.info.container_name)
                )
            self._entries, self._metadata = _parse_header(self.archive.metadata())
        except BaseException:
            self.archive.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.archive.close()

    def close(self):
        self.archive.close()

    def keys(self):
        """The tensors' names, sorted (as safetensors gives them)."""
        return sorted(self._entries)

    def metadata(self):
        """The header's ``__metadata__`` (a dict of str to str), or None when it has none."""
        return None if self._metadata is None else dict(self._metadata)

    def get_tensor(self, name):
        """The whole tensor `name`."""
        return self.get_slice(name)[...]

    def get_slice(self, name):
        """A lazy view of tensor `name`: get_shape(), get_dtype(), and [...] indexing that
        decodes only what the index needs along the first dimension."""
        if name not in self._entries:
            raise KeyError(name)
        return _Slice(self, name, *self._entries[name])

    def _convert(self, array):
        return _to_torch(array, self._device) if self._torch else array


def _parse_header(metadata):
    """({name: (dtype name, shape)}, __metadata__ or None) from a safetensors file's first bytes:
    a little-endian u64 n, then n bytes of JSON."""
    n = int.from_bytes(metadata[:8], "little")
    header = json.loads(bytes(metadata[8:8 + n]))
    meta = header.pop("__metadata__", None)
    entries = {name: (e["dtype"], tuple(e["shape"])) for name, e in header.items()}
    return entries, meta


class _Slice:
    def __init__(self, owner, name, dtype, shape):
        self._owner = owner
        self._name = name
        self._dtype = dtype
        self._shape = shape

    def get_shape(self):
        return list(self._shape)

    def get_dtype(self):
        return self._dtype

    def __getitem__(self, index):
        import numpy as np

        dtype = numpy_dtype(self._dtype)
        if dtype is None:
            raise TypeError("%s: dtype %s has no numpy type" % (self._name, self._dtype))
        archive = self._owner.archive
        rows = _first_dim_rows(index, self._shape)
        if rows is None:  # an index this does not narrow: the whole tensor, then numpy's indexing
            raw = np.empty(archive.tensor(self._name).original_size, dtype=np.uint8)
            archive.read_tensor_into(self._name, raw)
            result = raw.view(dtype).reshape(self._shape)[index]
        else:
            first, last, narrowed = rows
            row_bytes = dtype.itemsize
            for d in self._shape[1:]:
                row_bytes *= d
            # Rows [first, last) are one byte range of the tensor: the library decodes only the
            # chunks holding it (wz_archive_read_tensor_range), straight into the array.
            raw = np.empty((last - first) * row_bytes, dtype=np.uint8)
            archive.read_range_into(self._name, first * row_bytes, raw)
            part = raw.view(dtype).reshape((last - first,) + self._shape[1:])
            result = part[narrowed]
        # Copies of views (a step, a reversed range) are made here, as safetensors returns
        # arrays that own their memory and are writable.
        if isinstance(result, np.ndarray) and (not result.flags.writeable or not result.flags.c_contiguous):
            result = np.array(result, copy=True, order="C")
        if not isinstance(result, np.ndarray):
            result = np.asarray(result, dtype=dtype)
        return self._owner._convert(result)


def _first_dim_rows(index, shape):
    """For an index made of ints, slices and one Ellipsis: (first row, end row, the index
    relative to first) so that rows [first, end) are all the index touches. None for other
    indexes (None, arrays, booleans, scalars' tensors), which read the whole tensor."""
    if not shape:
        return None
    items = index if isinstance(index, tuple) else (index,)
    if any(item is None or not isinstance(item, (int, slice, type(Ellipsis))) or isinstance(item, bool)
           for item in items):
        return None
    if sum(item is Ellipsis for item in items) > 1:
        return None
    if not items:
        return 0, shape[0], ()
    if items[0] is Ellipsis:
        if len(items) - 1 < len(shape):
            return 0, shape[0], items  # the Ellipsis covers the first dimension: every row
        # The Ellipsis stands for no dimension: the next item indexes the first one.
        inner = _first_dim_rows(items[1:], shape)
        return None if inner is None else inner[:2] + ((Ellipsis,) + inner[2],)
    head, rest = items[0], items[1:]
    n = shape[0]
    if isinstance(head, int):
        k = head + n if head < 0 else head
        if not 0 <= k < n:
            raise IndexError("index %d is out of bounds for dimension 0 with size %d" % (head, n))
        return k, k + 1, (0,) + rest
    start, stop, step = head.indices(n)
    picked = range(start, stop, step)
    if not picked:
        return 0, 0, (slice(0, 0),) + rest
    first, last = min(picked[0], picked[-1]), max(picked[0], picked[-1]) + 1
    stop_rel = picked[-1] - first + (1 if step > 0 else -1)
    relative = slice(picked[0] - first, stop_rel if stop_rel >= 0 else None, step)
    return first, last, (relative,) + rest


def _to_torch(array, device):
    """A torch tensor sharing `array`'s memory (no copy on the CPU)."""
    try:
        import torch
    except ImportError as e:
        raise ImportError('framework="pt" needs torch (pip install torch)') from e
    import numpy as np

    # torch.from_numpy knows neither ml_dtypes' types nor (before torch 2.3) unsigned types
    # wider than a byte: those go through a signed integer view of the same width, then
    # torch's view as the right type.
    special = {
        "bfloat16": (np.int16, "bfloat16"),
        "float8_e4m3fn": (np.int8, "float8_e4m3fn"),
        "float8_e5m2": (np.int8, "float8_e5m2"),
        "uint16": (np.int16, "uint16"),
        "uint32": (np.int32, "uint32"),
        "uint64": (np.int64, "uint64"),
    }.get(array.dtype.name)
    if special is None:
        tensor = torch.from_numpy(array)
    else:
        signed, torch_name = special
        tensor = torch.from_numpy(array.view(signed)).view(getattr(torch, torch_name))
    return tensor if str(device) == "cpu" else tensor.to(device)
