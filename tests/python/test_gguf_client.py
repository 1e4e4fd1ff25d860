"""A real GGUF client on restored files: llama.cpp's own Python reader (PyPI package `gguf`).

    python3 tests/python/test_gguf_client.py MODEL.gguf...

For each file: compress it with compress_file, restore it with Archive.restore, open the original
and the restored file with gguf.GGUFReader, and require the same key/value fields (names, types,
raw bytes, values) and the same tensors (name, type, shape, element and byte counts, offset and
data). Each tensor read straight from the archive (read_numpy) must equal gguf's view of the
original too, with gguf's dtype and shape for element types, and match the index's SHA-256.
Prints one line ending in "OK" per file, with timings.
"""

import hashlib
import os
import sys
import tempfile

from _common import Timer, wz

import gguf
import numpy as np

# ggml types whose gguf data view is typed (the others are rows of bytes).
ELEMENT_TYPES = {"F32", "F16", "F64", "I8", "I16", "I32", "I64"}


def same_value(a, b):
    # repr as a fallback: a float NaN is not equal to itself but prints the same.
    return a == b or repr(a) == repr(b)


def raw(array):
    """The bytes of a numpy array as a flat uint8 array (a view when it is contiguous)."""
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def compare_fields(path, original, restored):
    fo, fr = original.fields, restored.fields
    assert list(fo) == list(fr), "%s: field names differ" % path
    for name in fo:
        a, b = fo[name], fr[name]
        assert a.offset == b.offset and a.types == b.types and a.data == b.data, (path, name)
        assert len(a.parts) == len(b.parts), (path, name)
        for pa, pb in zip(a.parts, b.parts):
            assert pa.dtype == pb.dtype and np.array_equal(raw(pa), raw(pb)), (path, name)
        assert same_value(a.contents(), b.contents()), (path, name)
    return len(fo)


def compare_tensors(path, original, restored):
    to, tr = original.tensors, restored.tensors
    assert len(to) == len(tr), (path, len(to), len(tr))
    for a, b in zip(to, tr):
        assert a.name == b.name and a.tensor_type == b.tensor_type, (path, a.name, b.name)
        assert np.array_equal(a.shape, b.shape), (path, a.name)
        assert a.n_elements == b.n_elements and a.n_bytes == b.n_bytes, (path, a.name)
        assert a.data_offset == b.data_offset, (path, a.name)
        assert a.data.dtype == b.data.dtype and a.data.shape == b.data.shape, (path, a.name)
        assert np.array_equal(raw(a.data), raw(b.data)), "%s: %s: data differs" % (path, a.name)
    return len(to)


def compare_archive(path, archive, original):
    """Every tensor read from the archive against gguf's view of the original file."""
    by_name = {t.name: t for t in original.tensors}
    assert len(by_name) == len(archive), (path, len(by_name), len(archive))
    for t in archive.tensors:
        g = by_name[t.name]
        assert t.container_type == int(g.tensor_type) and t.type_name == g.tensor_type.name, (path, t)
        assert t.dims == tuple(int(d) for d in g.shape), (path, t.dims, g.shape)
        assert t.n_elements == g.n_elements, (path, t.name)
        assert t.original_offset == g.data_offset and t.original_size == g.n_bytes, (path, t, g.n_bytes)
        data = raw(g.data)
        assert hashlib.sha256(data).hexdigest() == t.sha256, (path, t.name)
        arr = archive.read_numpy(t.index)
        if t.type_name in ELEMENT_TYPES:
            # A typed view, just like gguf's.
            assert arr.dtype == g.data.dtype and arr.shape == g.data.shape, (path, t.name, arr.shape, g.data.shape)
        assert np.array_equal(raw(arr), data), "%s: %s: read_numpy differs" % (path, t.name)


def check_model(model, tmp):
    times = []
    timer = Timer()
    arc = os.path.join(tmp, os.path.basename(model) + ".wz")
    wz.compress_file(model, arc)
    times.append("compress %s" % timer)

    timer = Timer()
    restored_path = os.path.join(tmp, os.path.basename(model))
    with wz.Archive(arc) as archive:
        info = archive.info
        archive.restore(restored_path)
        times.append("restore %s" % timer)

        timer = Timer()
        original = gguf.GGUFReader(model)
        restored = gguf.GGUFReader(restored_path)
        times.append("gguf parse x2 %s" % timer)

        timer = Timer()
        n_fields = compare_fields(model, original, restored)
        n_tensors = compare_tensors(model, original, restored)
        times.append("compare %s" % timer)

        timer = Timer()
        compare_archive(model, archive, original)
        times.append("read_numpy %s" % timer)
    del original, restored  # their memory maps, before the directory goes

    print(
        "%s: gguf %s reads the restored file as the original: %d fields, %d tensors; "
        "every tensor read from the archive equals gguf's view (ratio %.4f; %s) OK"
        % (
            os.path.basename(model),
            gguf_version(),
            n_fields,
            n_tensors,
            info.original_size / info.archive_size,
            ", ".join(times),
        )
    )


def gguf_version():
    try:
        from importlib.metadata import version

        return version("gguf")
    except Exception:
        return "(version unknown)"


def main(argv):
    if len(argv) < 2:
        print("usage: %s MODEL.gguf..." % argv[0], file=sys.stderr)
        return 2
    for model in argv[1:]:
        with tempfile.TemporaryDirectory(prefix="weightzip-gguf-") as tmp:
            check_model(model, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
