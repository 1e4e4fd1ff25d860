"""Archive.read_numpy on every ggml element type, on a GGUF file written by gguf's own writer.

    python3 tests/python/test_types.py

The committed fixtures hold only F32 and quantized tensors; this script writes a small GGUF with
gguf.GGUFWriter holding F32, F16, BF16, F64 and I8..I64 tensors, quantized blocks (Q8_0, Q4_K,
IQ4_NL, IQ3_S), a non-ASCII name and a tensor whose type id no one knows
(patched in after writing), compresses it and checks that every tensor reads back with the
dtype, shape and values that were written (BF16 also as ml_dtypes.bfloat16). Also checks this
module's ggml type table against gguf's. Prints one line ending in "OK".
"""

import os
import sys
import tempfile

from _common import Timer, same_file, wz

import gguf
import ml_dtypes
import numpy as np
from gguf import GGMLQuantizationType as T


def check_type_table():
    """GGML_TYPES agrees with gguf.constants on every type both know. (gguf lists Q8_1 with 40
    bytes per block, ggml's in-memory block has 36; GGML_TYPES leaves Q8_1 out.)"""
    for type_id, (name, per_block, block_bytes, _dtype) in wz.GGML_TYPES.items():
        t = T(type_id)
        assert t.name == name, (type_id, t.name, name)
        assert gguf.GGML_QUANT_SIZES[t] == (per_block, block_bytes), (name, gguf.GGML_QUANT_SIZES[t])
    assert wz.ggml_type_name(12) == "Q4_K" and wz.ggml_type_name(9999) == "type 9999"


def write_model(path, rng):
    """Writes the test model; returns {name: (ggml type, numpy array as read_numpy must give it)}."""
    expected = {}
    w = gguf.GGUFWriter(path, "llama")
    w.add_uint32("test.u32", 7)
    w.add_string("test.string", "h\u00e9llo")
    w.add_array("test.array", [1, 2, 3])
    w.add_float32("test.f32", 0.5)

    def add(name, array, ggml_type=None, raw=None):
        if raw is None:
            w.add_tensor(name, array)
        else:
            w.add_tensor(name, raw, raw_dtype=ggml_type)
        expected[name] = (ggml_type, array)

    add("f32", rng.standard_normal((3, 5)).astype(np.float32), T.F32)
    add("f16", rng.standard_normal((4, 6)).astype(np.float16), T.F16)
    add("f64", rng.standard_normal((2, 3)).astype(np.float64), T.F64)
    add("i8", rng.integers(-128, 128, (7,), dtype=np.int8), T.I8)
    add("i16", rng.integers(-30000, 30000, (3, 3), dtype=np.int16), T.I16)
    add("i32", rng.integers(-(2**31), 2**31, (5,), dtype=np.int32), T.I32)
    add("i64", rng.integers(-(2**62), 2**62, (2, 2), dtype=np.int64), T.I64)
    add("3d.f32", rng.standard_normal((2, 3, 4)).astype(np.float32), T.F32)
    # bfloat16 bits (a 2x8 tensor: the writer takes its bytes, 16 per row).
    bf16 = rng.integers(0, 2**16, (2, 8), dtype=np.uint16)
    add("bf16", bf16, T.BF16, bf16.view(np.uint8))
    # Quantized blocks (random bytes: the codecs must be lossless on anything), given to the
    # writer as rows of bytes; read_numpy gives them as (n_blocks, bytes per block).
    q8 = rng.integers(0, 256, (2, 2 * 34), dtype=np.uint8)
    add("q8_0", q8.reshape(4, 34), T.Q8_0, q8)
    q4k = rng.integers(0, 256, (3, 144), dtype=np.uint8)
    add("q4_k", q4k, T.Q4_K, q4k)
    iq4 = rng.integers(0, 256, (2, 4 * 18), dtype=np.uint8)
    add("iq4_nl", iq4.reshape(8, 18), T.IQ4_NL, iq4)
    # A block type of known size without a codec of its own: the bytes path.
    iq3 = rng.integers(0, 256, (2, 110), dtype=np.uint8)
    add("iq3_s", iq3, T.IQ3_S, iq3)
    # Written as I8, then given a type id no one knows (below): 40 bytes, 24 of padding after.
    add(UNKNOWN_NAME, rng.integers(-128, 128, (40,), dtype=np.int8), T.I8)
    add("\u540d\u524d.weight", rng.standard_normal((8,)).astype(np.float32), T.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    set_type(path, UNKNOWN_NAME, UNKNOWN_TYPE)
    return expected


UNKNOWN_NAME = "unknown.type"
UNKNOWN_TYPE = 200


def set_type(path, name, type_id):
    """Overwrites the ggml type of tensor `name` in the tensor infos of the GGUF file at path
    (its info: name length u64, name, n_dims u32, dims u64 each, type u32, offset u64)."""
    with open(path, "r+b") as f:
        data = f.read()
        key = len(name).to_bytes(8, "little") + name.encode()
        at = data.index(key) + len(key)
        n_dims = int.from_bytes(data[at : at + 4], "little")
        f.seek(at + 4 + 8 * n_dims)
        f.write(type_id.to_bytes(4, "little"))


def main():
    timer = Timer()
    check_type_table()
    rng = np.random.default_rng(20240601)
    with tempfile.TemporaryDirectory(prefix="weightzip-py-") as tmp:
        model = os.path.join(tmp, "types.gguf")
        expected = write_model(model, rng)
        arc = os.path.join(tmp, "types.gguf.wz")
        wz.compress_file(model, arc)
        with open(model, "rb") as f:
            original = f.read()
        with wz.Archive(arc) as a:
            assert [t.name for t in a.tensors] == list(expected), [t.name for t in a.tensors]
            a.verify()
            for t in a.tensors:
                ggml_type, want = expected[t.name]
                raw = a.read_tensor(t.index)
                assert raw == original[t.original_offset : t.original_offset + t.original_size]
                got = a.read_numpy(t.name)
                n_bytes = want.nbytes
                if t.name == UNKNOWN_NAME:
                    # No block size known: the index keeps the bytes up to the next tensor
                    # (alignment padding included), the kind is plain bytes, and read_numpy
                    # gives them flat. type_name is the library's ("unknown", as the CLI says);
                    # ggml_type_name keeps the number.
                    assert t.container_type == UNKNOWN_TYPE and t.type_name == "unknown", t
                    assert wz.ggml_type_name(t.container_type) == "type %d" % UNKNOWN_TYPE
                    assert t.kind == wz.WZ_KIND_BYTES and t.original_size > n_bytes, t
                    assert raw[:n_bytes] == want.tobytes(), t
                    assert got.dtype == np.uint8 and got.shape == (t.original_size,), got.shape
                    assert got.tobytes() == raw
                    continue
                assert t.container_type == int(ggml_type) and t.type_name == ggml_type.name, t
                # The index's size is the tensor's own (gguf's n_bytes), not the padded gap to the
                # next tensor.
                assert t.original_size == n_bytes, (t, n_bytes)
                assert raw == want.tobytes(), t.name
                assert got.dtype == want.dtype and got.shape == want.shape, (t.name, got.dtype, got.shape, want.shape)
                assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), t.name
                # bf16="ml_dtypes": BF16 as ml_dtypes.bfloat16 (the same bits), the rest as before.
                got_ml = a.read_numpy(t.name, bf16="ml_dtypes")
                if t.type_name == "BF16":
                    assert got_ml.dtype == np.dtype(ml_dtypes.bfloat16) and got_ml.shape == want.shape, got_ml.dtype
                    assert np.array_equal(got_ml.view(np.uint16), want), t.name
                else:
                    assert got_ml.dtype == got.dtype and got_ml.tobytes() == got.tobytes(), t.name
            n_types = len({t.container_type for t in a.tensors})
            kinds = {t.name: t.kind_name for t in a.tensors}
            # IQ4_NL has a codec of its own; a known block type without one (IQ3_S) and a type
            # the library does not know go as bytes.
            assert kinds["iq4_nl"] == "iq4_nl" and kinds["q4_k"] == "q4_k", kinds
            assert kinds["iq3_s"] == "bytes" and kinds["unknown.type"] == "bytes", kinds
            restored = os.path.join(tmp, "restored.gguf")
            a.restore(restored)
            assert same_file(restored, model)
    print("GGUF written by gguf.GGUFWriter, %d tensors of %d types: dtypes, shapes, values: %s OK"
          % (len(expected), n_types, timer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
