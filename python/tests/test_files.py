"""compress_file and restore_file: byte-identical round trips of every committed fixture,
existing outputs left alone unless overwrite=True (as the weightzip CLI does), and errors."""

import filecmp
import os
import subprocess
import sys

import pytest

import weightzip

from conftest import GGUF_FIXTURES, SAFETENSORS_FIXTURES, fixture_path


@pytest.mark.parametrize("name", SAFETENSORS_FIXTURES + GGUF_FIXTURES)
def test_round_trip(name, workdir):
    src = str(workdir / name)
    arc, out = src + ".wz", str(workdir / ("restored-" + name))
    weightzip.compress_file(src, arc, threads=1)
    weightzip.restore_file(arc, out)
    assert filecmp.cmp(src, out, shallow=False)
    with weightzip.Archive(arc) as a:
        assert a.info.original_size == os.path.getsize(src) and a.info.archive_size < a.info.original_size
        a.verify()


def test_existing_outputs_are_kept_unless_told(workdir):
    src = str(workdir / SAFETENSORS_FIXTURES[0])
    arc, out = src + ".wz", str(workdir / "out.safetensors")
    for path in (arc, out):
        with open(path, "wb") as f:
            f.write(b"precious")
    with pytest.raises(FileExistsError):
        weightzip.compress_file(src, arc)
    with open(arc, "rb") as f:
        assert f.read() == b"precious"
    weightzip.compress_file(src, arc, overwrite=True)
    with pytest.raises(FileExistsError):
        weightzip.restore_file(arc, out)
    with open(out, "rb") as f:
        assert f.read() == b"precious"
    weightzip.restore_file(arc, out, overwrite=True)
    assert filecmp.cmp(src, out, shallow=False)


def test_errors(workdir):
    with pytest.raises(weightzip.WeightzipError) as e:
        weightzip.compress_file(str(workdir / "missing.gguf"), str(workdir / "x.wz"))
    assert e.value.status == weightzip.WZ_STATUS_IO and "missing.gguf" in str(e.value)
    assert not os.path.exists(workdir / "x.wz")
    src = str(workdir / GGUF_FIXTURES[0])
    with pytest.raises(weightzip.WeightzipError) as e:  # writing over its own input
        weightzip.compress_file(src, src, overwrite=True)
    assert e.value.status == weightzip.WZ_STATUS_INVALID_ARGUMENT
    junk = workdir / "junk.bin"
    junk.write_bytes(b"not a model" * 100)
    with pytest.raises(weightzip.WeightzipError):
        weightzip.compress_file(str(junk), str(workdir / "junk.wz"))


def test_module_commands(workdir):
    src = str(workdir / GGUF_FIXTURES[0])

    def run(*args):
        return subprocess.run([sys.executable, "-m", "weightzip"] + list(args), capture_output=True, text=True)

    assert run("compress", src).returncode == 0
    assert " OK" in run("verify", src + ".wz").stdout
    again = run("compress", src)
    assert again.returncode == 1 and "exists" in again.stderr
    assert run("restore", src + ".wz", str(workdir / "r.gguf")).returncode == 0
    assert filecmp.cmp(src, str(workdir / "r.gguf"), shallow=False)


@pytest.mark.parametrize("name", [SAFETENSORS_FIXTURES[0], GGUF_FIXTURES[0]])
def test_ranged_reads(name, archive_of):
    """Archive.read_range (wz_archive_read_tensor_range) and Archive.pread (wz_archive_pread)
    against the original file's bytes, from a path and from memory; ranges outside the tensor or
    the file are refused by the library."""
    src = fixture_path(name)
    arc = archive_of(src, 65536)
    with open(src, "rb") as f:
        original = f.read()
    with open(arc, "rb") as f:
        archive_bytes = f.read()
    for a in (weightzip.Archive(arc), weightzip.Archive.from_bytes(archive_bytes)):
        with a:
            t = max(a.tensors, key=lambda t: t.original_size)
            assert t.original_size > 3 * 65536
            whole = original[t.original_offset:t.original_offset + t.original_size]
            for off, size in ((0, 1), (65535, 2), (100000, 70000), (t.original_size - 5, 5), (7, 0),
                              (0, t.original_size)):
                assert a.read_range(t.name, off, size) == whole[off:off + size], (off, size)
            buf = bytearray(300)
            assert a.read_range_into(t.index, 65000, buf) == 300 and buf == whole[65000:65300]
            n = a.info.original_size
            for off, size in ((0, 64), (0, a.info.metadata_size + 1000), (t.original_offset - 3, 70000),
                              (n - 10, 10), (0, n)):
                assert a.pread(off, size) == original[off:off + size], (off, size)
            for call in (lambda: a.read_range(t.name, t.original_size - 1, 2),
                         lambda: a.read_range(t.name, t.original_size + 1, 0),
                         lambda: a.pread(n - 1, 2)):
                with pytest.raises(weightzip.WeightzipError) as e:
                    call()
                assert e.value.status == weightzip.WZ_STATUS_INVALID_ARGUMENT
            with pytest.raises(ValueError):
                a.read_range(t.name, -1, 1)
            with pytest.raises(ValueError):
                a.pread(0, -1)
            assert a.decoded_bytes > 0
    with pytest.raises(ValueError):
        a.decoded_bytes  # closed
