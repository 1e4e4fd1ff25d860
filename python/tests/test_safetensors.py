"""weightzip.safetensors against the safetensors package reading the original files: the
committed fixture, its F32 and F16 versions and a file of every dtype (written here by
safetensors' own writer). Names, dtypes, shapes, bytes, metadata, slices; slices of large
tensors decode only the chunks they need."""

import os

import ml_dtypes  # noqa: F401  (safetensors gives BF16 only once ml_dtypes is imported)
import numpy as np
import pytest
import safetensors.numpy
from safetensors import safe_open as package_open

import weightzip
import weightzip.safetensors as wst

from conftest import SAFETENSORS_FIXTURES, fixture_path

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


def derived_files(src, tmp):
    """The F32 and F16 versions of a BF16 file, and a file of every dtype."""
    tensors = safetensors.numpy.load_file(src)
    with package_open(src, framework="np") as f:
        meta = f.metadata()
    f32 = {k: v.astype(np.float32) for k, v in tensors.items()}
    f16 = {k: v.astype(np.float16) for k, v in f32.items()}
    rng = np.random.default_rng(18)
    every = {
        "bool": rng.integers(0, 2, (3, 4)).astype(bool),
        "u8": rng.integers(0, 256, (7,), dtype=np.uint8),
        "i8": rng.integers(-128, 128, (7,), dtype=np.int8),
        "u16": rng.integers(0, 2**16, (3, 5), dtype=np.uint16),
        "i16": rng.integers(-(2**15), 2**15, (5,), dtype=np.int16),
        "f16": rng.standard_normal((4, 6)).astype(np.float16),
        "bf16": rng.standard_normal((5, 3)).astype(BFLOAT16),
        "i32": rng.integers(-(2**31), 2**31, (5,), dtype=np.int32),
        "u32": rng.integers(0, 2**32, (5,), dtype=np.uint32),
        "f32": rng.standard_normal((2, 3, 4)).astype(np.float32),
        "f64": rng.standard_normal((3,)),
        "i64": rng.integers(-(2**62), 2**62, (2, 2), dtype=np.int64),
        "u64": rng.integers(0, 2**63, (3,), dtype=np.uint64),
        "f8_e4m3": rng.standard_normal((16,)).astype(ml_dtypes.float8_e4m3fn),
        "f8_e5m2": rng.standard_normal((4, 4)).astype(ml_dtypes.float8_e5m2),
        "scalar": np.array(-0.0, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "eight.dims": rng.standard_normal((1, 2, 1, 2, 1, 2, 1, 2)).astype(np.float32),
        "\u540d\u524d.weight": rng.standard_normal((5,)).astype(np.float32),
    }
    paths = []
    for name, tensors, extra in (("f32", f32, {"derived": "f32"}), ("f16", f16, {"derived": "f16"}),
                                 ("every", every, None)):
        path = os.path.join(tmp, "derived-%s.safetensors" % name)
        safetensors.numpy.save_file(tensors, path, metadata=extra if extra is None else dict(meta or {}, **extra))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("safetensors")
    originals = [fixture_path(name) for name in SAFETENSORS_FIXTURES]
    assert originals, "no committed safetensors fixture"
    return originals + derived_files(originals[0], str(tmp))


def package_arrays(path):
    """{name: (dtype name, shape, bytes)} as the safetensors package reads the file."""
    with open(path, "rb") as f:
        return {name: (v["dtype"], tuple(v["shape"]), bytes(v["data"])) for name, v in safetensors.deserialize(f.read())}


def test_every_tensor_equals_the_package(models, archive_of):
    for path in models:
        want = package_arrays(path)
        arc = archive_of(path)
        got = wst.load_file(arc)
        assert sorted(got) == sorted(want), path
        with package_open(path, framework="np") as f, wst.safe_open(arc, framework="np") as g:
            assert g.keys() == f.keys(), path
            assert g.metadata() == f.metadata(), path
            for name in f.keys():
                dtype, shape, data = want[name]
                arr = got[name]
                assert arr.shape == shape and arr.tobytes() == data, (path, name)
                assert g.get_slice(name).get_dtype() == f.get_slice(name).get_dtype() == dtype, (path, name)
                assert g.get_slice(name).get_shape() == f.get_slice(name).get_shape() == list(shape), (path, name)
                if dtype.startswith("F8_"):
                    # The package cannot give these in numpy (it asks numpy for float8 types);
                    # weightzip gives ml_dtypes' types, the bytes compared above.
                    assert arr.dtype == np.dtype(getattr(ml_dtypes, {"F8_E4M3": "float8_e4m3fn"}.get(dtype, "float8_e5m2")))
                    continue
                ref = f.get_tensor(name)
                assert arr.dtype == ref.dtype and arr.shape == ref.shape, (path, name, arr.dtype, ref.dtype)
                assert arr.tobytes() == ref.tobytes(), (path, name)
                assert g.get_tensor(name).tobytes() == data, (path, name)


def test_bf16_is_a_view_of_the_decoded_bytes(archive_of):
    path = fixture_path(SAFETENSORS_FIXTURES[0])
    with wst.safe_open(archive_of(path)) as g:
        name = next(n for n in g.keys() if g.get_slice(n).get_dtype() == "BF16")
        arr = g.get_tensor(name)
        assert arr.dtype == BFLOAT16
        # Not a converted copy: the array views the buffer the library decoded into.
        assert not arr.flags.owndata and arr.base is not None and arr.flags.writeable


INDEXES = [np.s_[...], np.s_[:], np.s_[3], np.s_[-1], np.s_[5:900], np.s_[::7], np.s_[2:3, 4:9],
           np.s_[..., 1], np.s_[1, ...], np.s_[10:20, ..., 3:5], np.s_[7:7], np.s_[100:], np.s_[:, 2]]


@pytest.mark.parametrize("index", INDEXES, ids=[repr(i) for i in INDEXES])
def test_slices_equal_the_package(index, archive_of):
    path = fixture_path(SAFETENSORS_FIXTURES[0])
    with package_open(path, framework="np") as f, wst.safe_open(archive_of(path, 65536)) as g:
        for name in f.keys():
            if len(f.get_slice(name).get_shape()) < 2 and isinstance(index, tuple) and len(index) > 1:
                continue
            try:
                a = f.get_slice(name)[index]
            except Exception:
                # The package refuses what numpy clips (a stop past the end): weightzip indexes
                # as numpy does, so the reference is numpy on the whole tensor.
                a = f.get_tensor(name)[index]
            b = g.get_slice(name)[index]
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), (name, index)


def test_slices_decode_only_the_chunks_they_need(archive_of):
    """Rows a..b of a large tensor: the library's count of decoded bytes (wz_archive_decoded_bytes)
    grows by exactly the chunks holding their bytes, no more; a whole-tensor decode would add the
    tensor's size and fail this."""
    path = fixture_path(SAFETENSORS_FIXTURES[0])
    arc = archive_of(path, 65536)  # the smallest chunks: a 1.1 MB tensor has 18
    with package_open(path, framework="np") as f, wst.safe_open(arc) as g:
        name = max(f.keys(), key=lambda n: np.prod(f.get_slice(n).get_shape()))
        t = g.archive.tensor(name)
        # The chunk size the tensor's frame was made with, from the frame's own header (read from
        # the archive file where the index says the frame starts), not assumed.
        with open(arc, "rb") as fh:
            fh.seek(t.archive_offset)
            info = weightzip.frame_info(fh.read(weightzip.WZ_FRAME_HEADER_SIZE))
        cs = info["chunk_size"]
        assert info["original_size"] == t.original_size and info["frame_size"] == t.archive_size
        assert cs == 65536 and info["chunk_count"] >= 8, info  # BF16: 64 KiB is whole elements
        rows, cols = f.get_slice(name).get_shape()
        row_bytes = cols * 2
        assert g.archive.decoded_bytes == 0  # opening and reading the header decode no tensor
        for a, b in ((0, 1), (rows // 2, rows // 2 + 40), (rows - 3, rows)):
            before = g.archive.decoded_bytes
            got = g.get_slice(name)[a:b]
            assert got.tobytes() == f.get_slice(name)[a:b].tobytes()
            first, last = a * row_bytes // cs, ((b * row_bytes) - 1) // cs + 1
            expected = min(last * cs, t.original_size) - first * cs
            assert last - first <= 2
            delta = g.archive.decoded_bytes - before
            assert delta == expected, (a, b, delta, expected)
            assert delta < t.original_size, (a, b, delta, t.original_size)
        before = g.archive.decoded_bytes
        g.get_tensor(name)
        assert g.archive.decoded_bytes - before == t.original_size


def test_errors(archive_of, tmp_path):
    gguf_arc = archive_of(fixture_path("qwen25coder15b-q4km-mini.gguf"))
    with pytest.raises(ValueError, match="not of a safetensors file"):
        wst.safe_open(gguf_arc)
    arc = archive_of(fixture_path(SAFETENSORS_FIXTURES[0]))
    with pytest.raises(ValueError, match="framework"):
        wst.safe_open(arc, framework="tf")
    with wst.safe_open(arc) as g:
        with pytest.raises(KeyError):
            g.get_tensor("no such tensor")
    with pytest.raises(weightzip.WeightzipError) as e:
        wst.load_file(str(tmp_path / "missing.wz"))
    assert e.value.status == weightzip.WZ_STATUS_IO and "missing.wz" in str(e.value)


def test_torch(archive_of):
    torch = pytest.importorskip("torch", reason="torch is not installed: framework='pt' is not tested")
    path = fixture_path(SAFETENSORS_FIXTURES[0])
    import safetensors.torch

    want = safetensors.torch.load_file(path)
    got = wst.load_file(archive_of(path), framework="pt")
    assert sorted(got) == sorted(want)
    for name, ref in want.items():
        assert got[name].dtype == ref.dtype and got[name].shape == ref.shape and torch.equal(got[name], ref), name
    assert any(t.dtype == torch.bfloat16 for t in got.values())
    with wst.safe_open(archive_of(path), framework="pt") as g:
        name = g.keys()[0]
        assert torch.equal(g.get_slice(name)[:2], want[name][:2])
