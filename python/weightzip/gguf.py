"""Archives of GGUF files, read the way gguf-py's GGUFReader reads the files.

    from weightzip.gguf import GGUFReader        # instead of: from gguf import GGUFReader

    reader = GGUFReader("model.gguf.wz")
    reader.fields["general.architecture"].contents()
    for t in reader.tensors:
        t.name, t.tensor_type, t.shape, t.n_elements, t.n_bytes
        w = gguf.quants.dequantize(t.data, t.tensor_type)

fields and tensors are what GGUFReader gives for the original file: the same names, value types,
parts and values, tensor types, shapes and data arrays (typed for F32, F16, F64 and I8..I64; for
every other type, bytes shaped (..., rows, row bytes), so gguf.quants.dequantize works on them).
The key/values and tensor infos are parsed here from the archive's metadata, which is the GGUF
file's bytes before its data section. A tensor's data is decoded when it is asked for (GGUFReader
maps the file; an archive has to decode) and kept while the caller holds the array.

gguf-py is optional: with it installed, types are its GGMLQuantizationType and GGUFValueType and
fields its ReaderField; without it, IntEnums with the same numbering and a ReaderField of this
module. What GGUFReader has and this does not: `data` (the whole file's bytes; restore the archive
for that) and modes that write to the file.
"""

import typing
import weakref

from ._archive import Archive
from ._capi import WZ_CONTAINER_GGUF
from ._types import GGML_TYPES, gguf_enums

__all__ = ["GGUFReader", "ReaderField", "ReaderTensor", "GGMLQuantizationType", "GGUFValueType"]

GGMLQuantizationType, GGUFValueType = gguf_enums()

GGUF_MAGIC = 0x46554747  # "GGUF" read as a little-endian u32
GGUF_DEFAULT_ALIGNMENT = 32
READER_SUPPORTED_VERSIONS = (2, 3)

# The ggml types gguf-py gives typed arrays for; every other type comes as bytes.
_TYPED = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I8": "i1", "I16": "<i2", "I32": "<i4", "I64": "<i8"}

# Scalar value types and their numpy dtypes (GGUF's numbering).
_SCALARS = {
    "UINT8": "u1",
    "INT8": "i1",
    "UINT16": "<u2",
    "INT16": "<i2",
    "UINT32": "<u4",
    "INT32": "<i4",
    "FLOAT32": "<f4",
    "UINT64": "<u8",
    "INT64": "<i8",
    "FLOAT64": "<f8",
    "BOOL": "?",
}


class _OwnReaderField(typing.NamedTuple):
    """One key/value (or tensor info) as GGUFReader gives it: `parts` are numpy arrays over the
    encoded bytes, `data` the indices of the parts that hold the value, `types` the value type
    (for arrays: ARRAY, then the item type)."""

    offset: int
    name: str
    parts: list = []
    data: list = [-1]
    types: list = []

    def contents(self, index_or_slice=slice(None)):
        """The value as Python objects (str for strings, lists for arrays)."""
        if not self.types:
            return None

        def text(part):
            return str(part.tobytes(), encoding="utf-8")

        if self.types[0] == GGUFValueType.ARRAY:
            indices = self.data[index_or_slice]
            if self.types[-1] == GGUFValueType.STRING:
                return text(self.parts[indices]) if isinstance(index_or_slice, int) else [text(self.parts[i]) for i in indices]
            if isinstance(index_or_slice, int):
                return self.parts[indices].tolist()[0]
            return [v for i in indices for v in self.parts[i].tolist()]
        if self.types[0] == GGUFValueType.STRING:
            return text(self.parts[-1])
        return self.parts[-1].tolist()[0]


try:
    from gguf.gguf_reader import ReaderField
except ImportError:
    ReaderField = _OwnReaderField


def _block_sizes(ggml_type):
    """(elements per block, bytes per block) of a ggml type: gguf-py's table when installed."""
    try:
        from gguf import GGML_QUANT_SIZES

        return GGML_QUANT_SIZES[ggml_type]
    except ImportError:
        _name, per_block, block_bytes, _dtype = GGML_TYPES[int(ggml_type)]
        return per_block, block_bytes


class _Cursor:
    """Reads GGUF's little-endian values from a uint8 array, each as a numpy view (as GGUFReader's
    parts are)."""

    def __init__(self, data):
        self.data = data
        self.offs = 0

    def get(self, dtype, count=1):
        import numpy as np

        dtype = np.dtype(dtype)
        count = int(count)
        end = self.offs + dtype.itemsize * count
        if end > len(self.data):
            raise ValueError("GGUF metadata ends at byte %d, within a value that needs %d" % (len(self.data), end))
        arr = self.data[self.offs:end].view(dtype)
        self.offs = end
        return arr

    def string(self):
        length = self.get("<u8")
        return length, self.get("u1", length[0])


class ReaderTensor:
    """One tensor, with GGUFReader's attributes. `data` is decoded on access."""

    __slots__ = ("name", "tensor_type", "shape", "n_elements", "n_bytes", "data_offset", "field",
                 "_reader", "_dtype", "_np_shape", "_cache")

    def __init__(self, reader, name, tensor_type, shape, n_elements, n_bytes, data_offset, field, dtype, np_shape):
        self.name = name
        self.tensor_type = tensor_type
        self.shape = shape
        self.n_elements = n_elements
        self.n_bytes = n_bytes
        self.data_offset = data_offset
        self.field = field
        self._reader = reader
        self._dtype = dtype
        self._np_shape = np_shape
        self._cache = None

    @property
    def data(self):
        """The tensor's data as GGUFReader gives it (read-only, as its default mode gives it)."""
        import numpy as np

        arr = self._cache() if self._cache is not None else None
        if arr is None:
            raw = np.empty(self.n_bytes, dtype=np.uint8)
            self._reader.archive.read_tensor_into(self.name, raw)
            arr = raw.view(self._dtype).reshape(self._np_shape)
            arr.flags.writeable = self._reader._writeable
            # Held weakly: while the caller keeps the array, asking again costs nothing; once it
            # is dropped, its memory is freed, as a memory map's pages would be.
            self._cache = weakref.ref(arr)
        return arr

    def __repr__(self):
        return "ReaderTensor(name=%r, tensor_type=%r, shape=%r, n_bytes=%d)" % (
            self.name, self.tensor_type, self.shape, self.n_bytes)


class GGUFReader:
    """An archive of a GGUF file, read as gguf.GGUFReader reads the file: `fields` (an ordered
    dict of ReaderField), `tensors` (ReaderTensor), `alignment`, `data_offset`, get_field(key),
    get_tensor(index). mode "r" gives read-only arrays, "c" writable copies (nothing is ever
    written back)."""

    byte_order = "I"

    def __init__(self, path, mode="r"):
        import collections

        import numpy as np

        if mode not in ("r", "c"):
            raise ValueError('mode must be "r" or "c" (an archive cannot be written through), got %r' % (mode,))
        self._writeable = mode == "c"
        self.archive = Archive(path)
        try:
            if self.archive.info.container != WZ_CONTAINER_GGUF:
                raise ValueError("%s is an archive of a %s file, not of a GGUF file" % (path, self.archive.info.container_name))
            self.metadata = np.frombuffer(self.archive.metadata(), dtype=np.uint8)
            self.fields = collections.OrderedDict()
            self.alignment = GGUF_DEFAULT_ALIGNMENT
            self._parse()
        except BaseException:
            self.archive.close()
            raise
        try:
            from gguf import GGUFEndian

            self.endianess = GGUFEndian.LITTLE
        except ImportError:
            self.endianess = 0  # GGUFEndian.LITTLE's value

    def close(self):
        """Closes the archive (tensors' data cannot be read after this)."""
        self.archive.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def get_field(self, key):
        return self.fields.get(key)

    def get_tensor(self, idx):
        return self.tensors[idx]

    def _push(self, field):
        if field.name in self.fields:
            raise KeyError("Duplicate %s already in list at offset %d" % (field.name, field.offset))
        self.fields[field.name] = field

    def _parse(self):
        c = _Cursor(self.metadata)
        if c.get("<u4")[0] != GGUF_MAGIC:
            raise ValueError("GGUF magic invalid")
        version = c.get("<u4")
        if version[0] & 0xFFFF == 0:
            raise ValueError("big-endian GGUF files are not supported")
        if version[0] not in READER_SUPPORTED_VERSIONS:
            raise ValueError("GGUF version %d is not supported" % version[0])
        self._push(ReaderField(4, "GGUF.version", [version], [0], [GGUFValueType.UINT32]))
        counts = c.get("<u8", 2)
        self._push(ReaderField(8, "GGUF.tensor_count", [counts[:1]], [0], [GGUFValueType.UINT64]))
        self._push(ReaderField(16, "GGUF.kv_count", [counts[1:]], [0], [GGUFValueType.UINT64]))
        tensor_count, kv_count = (int(n) for n in counts)
        for _ in range(kv_count):
            start = c.offs
            klen, kdata = c.string()
            raw_type = c.get("<u4")
            parts = [klen, kdata, raw_type]
            value_parts, indices, types = self._value(c, raw_type[0])
            self._push(ReaderField(start, str(bytes(kdata), encoding="utf-8"), parts + value_parts,
                                   [i + len(parts) for i in indices], types))
        infos = []
        for _ in range(tensor_count):
            start = c.offs
            name_len, name = c.string()
            n_dims = c.get("<u4")
            dims = c.get("<u8", n_dims[0])
            raw_dtype = c.get("<u4")
            offset = c.get("<u8")
            infos.append(ReaderField(start, str(bytes(name), encoding="utf-8"),
                                     [name_len, name, n_dims, dims, raw_dtype, offset], [1, 3, 4, 5]))
        align = self.fields.get("general.alignment")
        if align is not None:
            if align.types != [GGUFValueType.UINT32]:
                raise ValueError("Bad type for general.alignment field")
            self.alignment = align.parts[-1][0]
            if self.alignment == 0 or self.alignment & (self.alignment - 1):
                raise ValueError("Invalid alignment: must be a non-zero power of two")
        self.data_offset = c.offs + (-c.offs % int(self.alignment))
        if self.data_offset != len(self.metadata):
            raise ValueError("the archive's metadata (%d bytes) does not end where the GGUF data section "
                             "starts (%d)" % (len(self.metadata), self.data_offset))
        self.tensors = [self._tensor(info) for info in infos]
        names = [t.name for t in self.tensors]
        if len(set(names)) != len(names):
            raise ValueError("duplicated tensor names")

    def _value(self, c, raw_type):
        """(parts, indices of the parts holding the value, types) of a value of `raw_type`."""
        vtype = GGUFValueType(int(raw_type))
        if vtype == GGUFValueType.STRING:
            return list(c.string()), [1], [vtype]
        if vtype.name in _SCALARS:
            return [c.get(_SCALARS[vtype.name])], [0], [vtype]
        if vtype == GGUFValueType.ARRAY:
            item_type = c.get("<u4")
            length = c.get("<u8")
            parts, indices, types = [item_type, length], [], [vtype]
            for i in range(int(length[0])):
                item_parts, item_indices, item_types = self._value(c, item_type[0])
                if i == 0:
                    types += item_types
                indices += [j + len(parts) for j in item_indices]
                parts += item_parts
            return parts, indices, types
        raise ValueError("Unknown/unhandled field type %s" % vtype)

    def _tensor(self, info):
        import numpy as np

        _len, _name, _n_dims, dims, raw_dtype, offset = info.parts
        ggml_type = GGMLQuantizationType(int(raw_dtype[0]))
        n_elements = int(np.prod(dims))
        per_block, block_bytes = _block_sizes(ggml_type)
        n_bytes = n_elements * block_bytes // per_block
        np_shape = tuple(reversed(dims.tolist()))
        dtype = _TYPED.get(ggml_type.name)
        if dtype is None:
            # Bytes, the innermost dimension becoming its rows' byte count (gguf-py's
            # quant_shape_to_byte_shape).
            dtype = "u1"
            np_shape = np_shape[:-1] + (np_shape[-1] // per_block * block_bytes,)
        return ReaderTensor(self, info.name, ggml_type, dims, n_elements, n_bytes,
                            self.data_offset + int(offset[0]), info, np.dtype(dtype), np_shape)
