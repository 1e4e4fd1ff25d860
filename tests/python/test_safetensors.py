"""The Archive bindings of the weightzip package (python/) on safetensors files, checked against the PyPI
package `safetensors` reading the original files.

    python3 tests/python/test_safetensors.py [--derive] MODEL.safetensors...

For each file: compress it with compress_file, open the archive, and for every tensor compare the
index (dtype code and name, shape, byte range) with the file's JSON header, read_tensor with the
bytes safetensors.deserialize gives, and read_numpy (default and bf16="ml_dtypes") with the array
safe_open(framework="np") gives: same dtype, shape and bits. (numpy has no bfloat16: safetensors
returns BF16 only once ml_dtypes is imported, as ml_dtypes.bfloat16, so this script needs
ml_dtypes; it cannot return the F8 dtypes at all, which are compared as bytes.) Then restore
the file, check it is byte-identical and that safetensors loads the same tensors from it, verify
the archive, and compare `ls --json` of the module's script and of the CLI (WEIGHTZIP_CLI).

With --derive, each (BF16) file also gives three more files, checked the same way: its F32
version (every BF16 value widened exactly, by a 16-bit shift of its bits), its F16 version (that
F32 rounded by numpy), and a file of every dtype safetensors knows (random values, a scalar, an
empty tensor, 8 dimensions, a non-ASCII name, and C64, a dtype weightzip does not know), all
written by safetensors' own writer.

Prints one line ending in "OK" per file checked.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile

from _common import Timer, expect_raises, same_file, wz

import ml_dtypes
import numpy as np
import safetensors
from safetensors import safe_open
from safetensors.numpy import save_file

#: dtype name -> (code weightzip reports as container_type, dtype read_numpy gives by default).
#: Written out here rather than taken from the module under test.
DTYPES = {
    "BOOL": (0, np.dtype(bool)),
    "U8": (1, np.dtype(np.uint8)),
    "I8": (2, np.dtype(np.int8)),
    "I16": (3, np.dtype("<i2")),
    "U16": (4, np.dtype("<u2")),
    "F16": (5, np.dtype("<f2")),
    "BF16": (6, np.dtype("<u2")),
    "I32": (7, np.dtype("<i4")),
    "U32": (8, np.dtype("<u4")),
    "F32": (9, np.dtype("<f4")),
    "F64": (10, np.dtype("<f8")),
    "I64": (11, np.dtype("<i8")),
    "U64": (12, np.dtype("<u8")),
    "F8_E4M3": (13, np.dtype(np.uint8)),
    "F8_E5M2": (14, np.dtype(np.uint8)),
}
UNKNOWN_CODE = 0xFFFFFFFF
BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


def parse_header(original):
    """(data start, {name: (dtype, shape, begin, end)}, __metadata__ or None) from the file's JSON
    header (u64 LE length, then the JSON object); begin/end are absolute offsets."""
    n = int.from_bytes(original[:8], "little")
    header = json.loads(original[8 : 8 + n])
    start = 8 + n
    meta = header.pop("__metadata__", None)
    entries = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        entries[name] = (e["dtype"], tuple(e["shape"]), start + b, start + end)
    return start, entries, meta


def package_view(original):
    """{name: (dtype, shape, bytes)} as safetensors.deserialize reads the file."""
    return {
        name: (v["dtype"], tuple(v["shape"]), bytes(v["data"]))
        for name, v in safetensors.deserialize(original)
    }


def package_array(f, name, dtype):
    """safe_open(framework="np")'s array for a tensor, or None for the F8 dtypes, which it cannot
    give in numpy (it asks numpy for a float8 type numpy does not have)."""
    try:
        return f.get_tensor(name)
    except (AttributeError, TypeError):
        if dtype.startswith("F8_"):
            return None
        raise


def same_bits(a, b):
    return a.dtype.itemsize == b.dtype.itemsize and a.shape == b.shape and a.tobytes() == b.tobytes()


def check_numpy(archive, t, dtype, shape, data, f):
    """read_numpy against the package's bytes and safe_open's array."""
    arr = archive.read_numpy(t.name)
    arr_ml = archive.read_numpy(t.name, bf16="ml_dtypes", threads=1)
    if dtype not in DTYPES:
        # A dtype weightzip does not know: its bytes, flat.
        assert arr.dtype == np.uint8 and arr.shape == (t.original_size,), (t, arr.dtype, arr.shape)
        assert arr.tobytes() == data and arr_ml.tobytes() == data, t.name
        return "bytes"
    want_dtype = DTYPES[dtype][1]
    assert arr.dtype == want_dtype and arr.shape == shape, (t.name, dtype, arr.dtype, arr.shape, shape)
    assert arr.flags.c_contiguous and arr.tobytes() == data, t.name
    if dtype == "BF16":
        assert arr_ml.dtype == BFLOAT16 and arr_ml.shape == shape, (t.name, arr_ml.dtype)
        assert np.array_equal(arr_ml.view(np.uint16), arr), t.name
    else:
        assert arr_ml.dtype == arr.dtype and same_bits(arr_ml, arr), t.name

    ref = package_array(f, t.name, dtype)
    if ref is None:
        return "bytes"
    assert ref.shape == shape, (t.name, ref.shape, shape)
    if dtype == "BF16":
        assert ref.dtype == BFLOAT16, (t.name, ref.dtype)
        assert np.array_equal(arr, ref.view(np.uint16)), t.name
        assert same_bits(arr_ml, ref), t.name
        # The same values, not just the same bits: widened to float32 both ways.
        widened = (arr.astype(np.uint32) << 16).view(np.float32)
        assert np.array_equal(widened, ref.astype(np.float32), equal_nan=True), t.name
    else:
        assert arr.dtype == ref.dtype, (t.name, arr.dtype, ref.dtype)
        # Bits (which tells -0.0 from 0.0 and keeps NaN payloads), and values.
        assert same_bits(arr, ref), t.name
        equal_nan = arr.dtype.kind in "fc"
        assert np.array_equal(arr, ref, equal_nan=equal_nan), t.name
    return "values"


def check_ls_json(archive, arc_path):
    """`python3 -m weightzip ls --json` and the CLI's `weightzip ls --json` agree with the
    bindings. Returns whether the CLI was checked."""
    out = subprocess.run([sys.executable, "-m", "weightzip", "ls", "--json", arc_path], check=True, capture_output=True)
    doc = json.loads(out.stdout)
    assert doc["container_name"] == "safetensors" and len(doc["tensors"]) == len(archive), doc["container_name"]
    for t, d in zip(archive.tensors, doc["tensors"]):
        assert d == dict(t._asdict(), dims=list(t.dims)), (t, d)
    cli = os.environ.get("WEIGHTZIP_CLI")
    if not cli:
        return False
    out = subprocess.run([cli, "ls", "--json", arc_path], check=True, capture_output=True)
    doc = json.loads(out.stdout)
    assert doc["container"] == "safetensors", doc["container"]
    assert len(doc["tensors"]) == len(archive)
    for t, d in zip(archive.tensors, doc["tensors"]):
        assert d["name"] == t.name and d["type_id"] == t.container_type and d["type"] == t.type_name, (t, d)
        assert d["dims"] == list(t.dims) and d["sha256"] == t.sha256, (t, d)
        for key in ("original_offset", "original_size", "archive_offset", "archive_size"):
            assert d[key] == getattr(t, key), (key, t, d)
    return True


def check_bf16_keyword(archive):
    """bf16= takes "uint16" or "ml_dtypes" only; "ml_dtypes" without ml_dtypes is an ImportError
    (only for a BF16 tensor: the others do not need it)."""
    t = archive.tensors[0]
    expect_raises("bf16=bogus", lambda: archive.read_numpy(t.index, bf16="bogus"), ValueError)
    expect_raises("bf16=None", lambda: archive.read_numpy(t.index, bf16=None), ValueError)
    saved = sys.modules.get("ml_dtypes")
    sys.modules["ml_dtypes"] = None  # makes `import ml_dtypes` raise ImportError
    try:
        for t in archive.tensors:
            if t.type_name == "BF16":
                expect_raises("bf16=ml_dtypes without it", lambda: archive.read_numpy(t.index, bf16="ml_dtypes"), ImportError)
                assert archive.read_numpy(t.index).dtype == np.uint16
            else:
                archive.read_numpy(t.index, bf16="ml_dtypes")
    finally:
        sys.modules["ml_dtypes"] = saved


def check_restored(restored, model, original, names):
    """The restored file is the original, and safetensors reads the same tensors and metadata
    from it."""
    assert same_file(restored, model), "%s: restored file differs from the original" % model
    with open(restored, "rb") as f:
        again = f.read()
    assert package_view(again) == package_view(original)
    with safe_open(model, framework="np") as f, safe_open(restored, framework="np") as g:
        assert f.metadata() == g.metadata()
        assert sorted(g.keys()) == sorted(names)
        for name in names:
            dtype = g.get_slice(name).get_dtype()
            a, b = package_array(f, name, dtype), package_array(g, name, dtype)
            assert (a is None) == (b is None) and (a is None or (a.dtype == b.dtype and same_bits(a, b))), name


def check_model(model, tmp):
    timer = Timer()
    with open(model, "rb") as f:
        original = f.read()
    start, entries, meta = parse_header(original)
    ref = package_view(original)
    # The header as parsed here and as the package reads it agree (so either is the reference).
    assert {n: e[:2] for n, e in entries.items()} == {n: r[:2] for n, r in ref.items()}
    for name, (_, _, b, e) in entries.items():
        assert original[b:e] == ref[name][2], name

    arc_path = os.path.join(tmp, os.path.basename(model) + ".wz")
    wz.compress_file(model, arc_path)
    one_thread = os.path.join(tmp, "one-thread.wz")
    wz.compress_file(model, one_thread, threads=1)
    assert same_file(arc_path, one_thread), "archive bytes depend on the thread count"
    os.remove(one_thread)

    compared = {"values": 0, "bytes": 0}
    with wz.Archive(arc_path) as archive, safe_open(model, framework="np") as f:
        info = archive.info
        assert info.container == wz.WZ_CONTAINER_SAFETENSORS and info.container_name == "safetensors", info
        assert info.original_size == len(original) and info.archive_size == os.path.getsize(arc_path), info
        assert info.tensor_count == len(archive) == len(entries), (info, len(entries))
        assert info.metadata_size == start, (info, start)
        assert archive.metadata() == original[:start]

        names = [t.name for t in archive.tensors]
        assert sorted(names) == sorted(entries), "tensor names differ from the header's"
        offsets = [t.original_offset for t in archive.tensors]
        assert offsets == sorted(offsets), "tensors are not in file order"
        for t in archive.tensors:
            dtype, shape, b, e = entries[t.name]
            assert t.container == wz.WZ_CONTAINER_SAFETENSORS, t
            if dtype in DTYPES:
                assert t.container_type == DTYPES[dtype][0] and t.type_name == dtype, (t, dtype)
                assert dtype in wz.SAFETENSORS_DTYPES, t
            else:
                assert t.container_type == UNKNOWN_CODE and t.type_name == "unknown", (t, dtype)
                assert t.kind_name == "bytes", t
            # safetensors' order (outermost first) in dims and shape alike.
            assert t.dims == shape and t.shape == shape, (t, shape)
            assert t.n_elements == int(np.prod(shape, dtype=np.int64)), t
            assert (t.original_offset, t.original_size) == (b, e - b), (t, b, e)
            assert archive.tensor(t.name) == t and archive.find(t.name) == t.index

            data = ref[t.name][2]
            got = archive.read_tensor(t.name)
            assert got == data, "%s: read_tensor differs from safetensors' bytes" % t.name
            assert hashlib.sha256(got).hexdigest() == t.sha256, t.name
            compared[check_numpy(archive, t, dtype, shape, data, f)] += 1

        check_bf16_keyword(archive)
        restored = os.path.join(tmp, "restored.safetensors")
        archive.restore(restored)
        check_restored(restored, model, original, names)
        os.remove(restored)
        archive.verify()
        archive.verify(threads=1)
        cli_checked = check_ls_json(archive, arc_path)
    os.remove(arc_path)

    types = sorted({e[0] for e in entries.values()})
    print(
        "%s: %d tensors (%s), %d -> %d bytes (ratio %.4f); vs safetensors: %d arrays by value, "
        "%d by bytes; restore, verify, ls --json%s: %s OK"
        % (
            os.path.basename(model),
            len(entries),
            " ".join(types),
            info.original_size,
            info.archive_size,
            info.original_size / info.archive_size,
            compared["values"],
            compared["bytes"],
            " (CLI too)" if cli_checked else "",
            timer,
        )
    )
    return types


def derive(model, tmp):
    """Writes the F32, F16 and every-dtype files made from the (BF16) file at `model`; returns
    their paths."""
    with safe_open(model, framework="np") as f:
        meta = f.metadata()
        bits = {name: f.get_tensor(name) for name in f.keys()}
    f32, f16 = {}, {}
    for name, x in bits.items():
        if x.dtype == BFLOAT16:
            # Exact: a bfloat16 is the top half of the float32 of the same value.
            wide = (x.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            assert np.array_equal(wide, x.astype(np.float32), equal_nan=True), name
        else:
            wide = x
        f32[name] = wide
        f16[name] = wide.astype(np.float16) if wide.dtype == np.float32 else wide
    paths = []
    for suffix, tensors, extra in (("f32", f32, "bf16 -> f32 by 16-bit shift"), ("f16", f16, "bf16 -> f32 -> f16 by numpy")):
        path = os.path.join(tmp, "derived-%s.safetensors" % suffix)
        save_file(tensors, path, metadata=dict(meta or {}, derived=extra))
        paths.append(path)

    rng = np.random.default_rng(20240611)
    weights = next(x for x in bits.values() if x.ndim == 2)
    every = {
        "bool": rng.integers(0, 2, (3, 4)).astype(bool),
        "u8": rng.integers(0, 256, (7,), dtype=np.uint8),
        "i8": rng.integers(-128, 128, (7,), dtype=np.int8),
        "u16": rng.integers(0, 2**16, (3, 5), dtype=np.uint16),
        "i16": rng.integers(-(2**15), 2**15, (5,), dtype=np.int16),
        "f16": rng.standard_normal((4, 6)).astype(np.float16),
        "bf16": weights[:64],
        "i32": rng.integers(-(2**31), 2**31, (5,), dtype=np.int32),
        "u32": rng.integers(0, 2**32, (5,), dtype=np.uint32),
        "f32": rng.standard_normal((2, 3, 4)).astype(np.float32),
        "f64": rng.standard_normal((3,)),
        "i64": rng.integers(-(2**62), 2**62, (2, 2), dtype=np.int64),
        "u64": rng.integers(0, 2**64 - 1, (3,), dtype=np.uint64, endpoint=True),
        "f8_e4m3": rng.standard_normal((16,)).astype(ml_dtypes.float8_e4m3fn),
        "f8_e5m2": rng.standard_normal((4, 4)).astype(ml_dtypes.float8_e5m2),
        "scalar": np.array(-0.0, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "eight.dims": rng.standard_normal((1, 2, 1, 2, 1, 2, 1, 2)).astype(np.float32),
        "special.f32": np.array([np.nan, -np.inf, np.inf, -0.0, 1e-45], dtype=np.float32),
        "c64": (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype(np.complex64),
        "\u540d\u524d.weight": rng.standard_normal((5,)).astype(np.float32),
    }
    path = os.path.join(tmp, "every-dtype.safetensors")
    save_file(every, path, metadata={"written by": "tests/python/test_safetensors.py"})
    paths.append(path)
    return paths


def main(argv):
    args = argv[1:]
    derive_more = args[:1] == ["--derive"]
    if derive_more:
        args = args[1:]
    if not args:
        print("usage: %s [--derive] MODEL.safetensors..." % argv[0], file=sys.stderr)
        return 2
    for model in args:
        with tempfile.TemporaryDirectory(prefix="weightzip-py-") as tmp:
            types = check_model(model, tmp)
            if derive_more:
                f32_path, f16_path, every_path = derive(model, tmp)
                widened = {"F32" if t == "BF16" else t for t in types}
                assert check_model(f32_path, tmp) == sorted(widened)
                assert check_model(f16_path, tmp) == sorted({"F16" if t == "F32" else t for t in widened})
                # Every dtype weightzip knows, and one it does not.
                assert check_model(every_path, tmp) == sorted(set(DTYPES) | {"C64"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
