"""Frames through the package: compress, frame_info and decompress on real weights."""

import pytest

import weightzip

from conftest import fixture_path


def bf16_fixture():
    # MiniLM-L6's first two FFN matrices in bf16 (4.7 MB): large enough for decompress to take
    # its uninitialised output buffer (weightzip/_buffers.py).
    with open(fixture_path("minilm-l6-ffn01.bf16"), "rb") as f:
        return f.read()


@pytest.mark.parametrize("threads", [1, 2])
def test_round_trip_large_and_small(threads):
    data = bf16_fixture()
    for part in (data, data[:4096]):
        frame = weightzip.compress(part, kind="bf16", threads=threads)
        assert isinstance(frame, bytes)
        assert len(frame) < len(part)
        info = weightzip.frame_info(frame)
        assert info["original_size"] == len(part) and info["frame_size"] == len(frame)
        out = weightzip.decompress(frame, threads=threads)
        assert isinstance(out, bytearray)
        assert out == part


def test_corrupt_frame_raises_and_returns_nothing():
    data = bf16_fixture()
    frame = bytearray(weightzip.compress(data, kind="bf16"))
    frame[len(frame) // 2] ^= 0x40
    with pytest.raises(weightzip.WeightzipError):
        weightzip.decompress(bytes(frame))
