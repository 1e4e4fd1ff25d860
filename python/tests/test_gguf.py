"""weightzip.gguf.GGUFReader against gguf-py's GGUFReader on the original files: every field
(name, offset, types, parts, data indices, contents) and every tensor (name, type, shape, element
and byte counts, data offset, info field, data), on the committed GGUF fixtures and on a file
gguf-py's writer makes here with every element type."""

import subprocess
import sys

import gguf
import numpy as np
import pytest

import weightzip
from weightzip.gguf import GGUFReader

from conftest import GGUF_FIXTURES, fixture_path


def same_value(a, b):
    return a == b or repr(a) == repr(b)  # NaN is not equal to itself but prints the same


def compare(original_path, archive_path):
    a, b = gguf.GGUFReader(original_path), GGUFReader(archive_path)
    assert list(b.fields) == list(a.fields)
    for name, fa in a.fields.items():
        fb = b.fields[name]
        assert (fb.name, fb.offset, fb.types, fb.data) == (fa.name, fa.offset, fa.types, fa.data), name
        assert len(fb.parts) == len(fa.parts), name
        for pa, pb in zip(fa.parts, fb.parts):
            assert pa.dtype == pb.dtype and pa.shape == pb.shape and pa.tobytes() == pb.tobytes(), name
        assert same_value(fb.contents(), fa.contents()), name
    assert (b.alignment, b.data_offset) == (a.alignment, a.data_offset)
    assert len(b.tensors) == len(a.tensors)
    for ta, tb in zip(a.tensors, b.tensors):
        assert (tb.name, tb.tensor_type, tb.n_elements, tb.n_bytes, tb.data_offset) == \
            (ta.name, ta.tensor_type, ta.n_elements, ta.n_bytes, ta.data_offset), ta.name
        assert type(tb.tensor_type) is type(ta.tensor_type)
        assert tb.shape.dtype == ta.shape.dtype and np.array_equal(tb.shape, ta.shape), ta.name
        assert [p.tobytes() for p in tb.field.parts] == [p.tobytes() for p in ta.field.parts], ta.name
        assert tb.data.dtype == ta.data.dtype and tb.data.shape == ta.data.shape, (ta.name, tb.data.shape, ta.data.shape)
        assert tb.data.tobytes() == ta.data.tobytes(), ta.name
    return a, b


@pytest.mark.parametrize("name", GGUF_FIXTURES)
def test_fixture_equals_gguf_py(name, archive_of):
    path = fixture_path(name)
    a, b = compare(path, archive_of(path))
    # Quantized tensors dequantize unchanged, to gguf-py's values for the original.
    quantized = [t for t in b.tensors if t.data.dtype == np.uint8]
    assert quantized
    for tb in quantized[:3]:
        ta = next(t for t in a.tensors if t.name == tb.name)
        x, y = gguf.quants.dequantize(tb.data, tb.tensor_type), gguf.quants.dequantize(ta.data, ta.tensor_type)
        assert x.shape == y.shape == tuple(reversed(ta.shape.tolist())) and np.array_equal(x, y, equal_nan=True)


def test_every_element_type(tmp_path):
    T = gguf.GGMLQuantizationType
    rng = np.random.default_rng(18)
    path = str(tmp_path / "types.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_uint32("test.u32", 7)
    w.add_string("test.string", "h\u00e9llo")
    w.add_array("test.array", [1, 2, 3])
    w.add_array("test.strings", ["a", "bc", ""])
    w.add_array("test.empty", [])
    w.add_float32("test.f32", 0.5)
    w.add_bool("test.bool", True)
    for name, arr in (("f32", rng.standard_normal((3, 5)).astype(np.float32)),
                      ("f16", rng.standard_normal((4, 6)).astype(np.float16)),
                      ("f64", rng.standard_normal((2, 3))),
                      ("i8", rng.integers(-128, 128, (7,), dtype=np.int8)),
                      ("i16", rng.integers(-30000, 30000, (3, 3), dtype=np.int16)),
                      ("i32", rng.integers(-(2**31), 2**31, (5,), dtype=np.int32)),
                      ("i64", rng.integers(-(2**62), 2**62, (2, 2), dtype=np.int64)),
                      ("3d", rng.standard_normal((2, 3, 4)).astype(np.float32))):
        w.add_tensor(name, arr)
    w.add_tensor("bf16", rng.integers(0, 256, (2, 16), dtype=np.uint8), raw_dtype=T.BF16)
    w.add_tensor("q8_0", rng.integers(0, 256, (2, 68), dtype=np.uint8), raw_dtype=T.Q8_0)
    w.add_tensor("q4_k", rng.integers(0, 256, (3, 144), dtype=np.uint8), raw_dtype=T.Q4_K)
    w.add_tensor("iq4_nl", rng.integers(0, 256, (2, 72), dtype=np.uint8), raw_dtype=T.IQ4_NL)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    arc = str(tmp_path / "types.gguf.wz")
    weightzip.compress_file(path, arc)
    compare(path, arc)


def test_type_tables_match_gguf_py():
    from weightzip._types import _OwnQuantizationType, _OwnValueType

    for type_id, (name, per_block, block_bytes, _dtype) in weightzip.GGML_TYPES.items():
        t = gguf.GGMLQuantizationType(type_id)
        assert t.name == name and gguf.GGML_QUANT_SIZES[t] == (per_block, block_bytes), name
        assert _OwnQuantizationType[name] == t
    for v in gguf.GGUFValueType:
        assert _OwnValueType[v.name] == v


def test_without_gguf_py(archive_of):
    """gguf-py is optional: without it, fields and tensors come with this package's own types."""
    path = archive_of(fixture_path(GGUF_FIXTURES[0]))
    code = (
        "import sys; sys.modules['gguf'] = None\n"  # makes `import gguf` fail
        "from weightzip.gguf import GGUFReader, ReaderField, GGMLQuantizationType\n"
        "assert ReaderField.__module__ == 'weightzip.gguf', ReaderField\n"
        "r = GGUFReader(sys.argv[1])\n"
        "print(r.fields['general.architecture'].contents(), r.tensors[0].tensor_type.name, r.tensors[0].data.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, path], check=True, capture_output=True, text=True).stdout
    with GGUFReader(path) as r:
        t = r.tensors[0]
        assert out.split() == [r.fields["general.architecture"].contents(), t.tensor_type.name] + \
            str(t.data.shape).split()


def test_not_a_gguf_archive(archive_of):
    from conftest import SAFETENSORS_FIXTURES

    with pytest.raises(ValueError, match="not of a GGUF file"):
        GGUFReader(archive_of(fixture_path(SAFETENSORS_FIXTURES[0])))
