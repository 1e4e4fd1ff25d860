"""compress_file and restore_file: byte-identical round trips of every committed fixture,
existing outputs left alone unless overwrite=True (as the weightzip CLI does), and errors."""

import filecmp
import os
import subprocess
import sys

import pytest

import weightzip

from conftest import GGUF_FIXTURES, SAFETENSORS_FIXTURES


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
