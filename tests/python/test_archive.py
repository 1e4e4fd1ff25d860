"""The Archive bindings of the weightzip package (python/) on real GGUF files.

    python3 tests/python/test_archive.py MODEL.gguf...

For each file: compress it with compress_file into a temporary directory, open the archive (by
path and from bytes), read every tensor as bytes and as numpy and compare it with the original
file's bytes and the index's SHA-256, compare the metadata and the restored file with the
original, check the error cases, run the module's own script (compress, verify, restore, ls),
and check that `weightzip ls --json` of the CLI (named by WEIGHTZIP_CLI, if set) and of the
module's script agree with the bindings. Prints one line ending in "OK" per file.
"""

import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys
import tempfile

from _common import Timer, expect_error, expect_raises, same_file, wz

import numpy as np


def check_info(archive, path, arc_path, original):
    info = archive.info
    assert info.container == wz.WZ_CONTAINER_GGUF and info.container_name == "gguf", info
    assert info.original_size == len(original), (info, len(original))
    assert info.archive_size == os.path.getsize(arc_path), info
    assert info.tensor_count == len(archive) == len(archive.tensors) > 0, info
    first_data = min(t.original_offset for t in archive.tensors)
    assert 0 < info.metadata_size <= first_data, (info, first_data)
    assert archive.metadata() == original[: info.metadata_size], "%s: metadata differs" % path


def check_layout(archive, arc_bytes):
    """The index's byte ranges: tensors in file order without overlap, and at each archive range
    a frame (read through the frame API) that agrees with the index."""
    previous_end = archive.info.metadata_size
    for t in sorted(archive.tensors, key=lambda t: t.original_offset):
        assert t.original_offset >= previous_end, ("overlap", t)
        previous_end = t.original_offset + t.original_size
    assert previous_end <= archive.info.original_size
    for t in archive.tensors:
        frame = arc_bytes[t.archive_offset : t.archive_offset + t.archive_size]
        assert len(frame) == t.archive_size, t
        fi = wz.frame_info(frame)
        assert fi["original_size"] == t.original_size, (fi, t)
        assert fi["frame_size"] == t.archive_size, (fi, t)
        assert fi["kind"] == t.kind, (fi, t)


def expected_numpy(t):
    """(dtype, shape) read_numpy must give for t, from the ggml type table."""
    name, per_block, block_bytes, dtype = wz.GGML_TYPES[t.container_type]
    assert name == t.type_name, t
    if dtype is not None:
        return np.dtype(dtype), t.shape
    return np.dtype(np.uint8), (t.n_elements // per_block, block_bytes)


def check_tensors(archive, original):
    names = [t.name for t in archive.tensors]
    assert len(set(names)) == len(names), "duplicate tensor names"
    for t in archive.tensors:
        assert archive.tensor(t.index) == t and archive.tensor(t.name) == t
        assert archive.find(t.name) == t.index
        assert archive.find(t.name.encode("utf-8")) == t.index
        assert len(t.dims) >= 1 and all(d > 0 for d in t.dims), t

        want = original[t.original_offset : t.original_offset + t.original_size]
        assert len(want) == t.original_size, t
        got = archive.read_tensor(t.index)
        assert got == want, "%s: read_tensor bytes differ from the original" % t.name
        assert hashlib.sha256(got).hexdigest() == t.sha256, "%s: sha256" % t.name
        assert archive.read_tensor(t.name, threads=1) == want, t.name

        arr = archive.read_numpy(t.name)
        dtype, shape = expected_numpy(t)
        assert arr.dtype == dtype and arr.shape == shape, (t.name, t.type_name, arr.dtype, arr.shape)
        assert arr.flags.c_contiguous and arr.nbytes == t.original_size, t.name
        assert np.array_equal(arr.reshape(-1).view(np.uint8), np.frombuffer(want, np.uint8)), t.name

        into = np.empty(t.original_size, np.uint8)
        assert archive.read_tensor_into(t.index, into) == t.original_size
        assert into.tobytes() == want, t.name

    # Other writable buffers: a bytearray, and the exact-size window of a larger bytearray (the
    # bytes around it stay as they were).
    t = archive.tensors[-1]
    want = original[t.original_offset : t.original_offset + t.original_size]
    buf = bytearray(t.original_size)
    archive.read_tensor_into(-1, buf, threads=1)
    assert buf == want
    big = bytearray(b"\xab" * (t.original_size + 32))
    archive.read_tensor_into(t.name, memoryview(big)[16 : 16 + t.original_size])
    assert big[16 : 16 + t.original_size] == want
    assert big[:16] == b"\xab" * 16 and big[-16:] == b"\xab" * 16


def check_concurrent_reads(archive, original):
    def read(i):
        return archive.read_tensor(i, threads=1)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for t, got in zip(archive.tensors, pool.map(read, range(len(archive)))):
            assert got == original[t.original_offset : t.original_offset + t.original_size], t.name


def check_errors(archive, arc_path, tmp):
    t = archive.tensors[0]
    expect_raises("find a missing name", lambda: archive.find("no.such.tensor"), KeyError)
    expect_raises("read a missing name", lambda: archive.read_tensor("no.such.tensor"), KeyError)
    expect_raises("find a prefix of a name", lambda: archive.find(t.name[:-1]), KeyError)
    # With a NUL the C call would see only the part before it: refused, not matched.
    expect_raises("find with a NUL", lambda: archive.find(t.name + "\0x"), KeyError)
    expect_raises("index past the end", lambda: archive.read_tensor(len(archive)), IndexError)
    expect_raises("index before the start", lambda: archive.tensor(-len(archive) - 1), IndexError)
    expect_raises("bool index", lambda: archive.read_tensor(True), TypeError)
    expect_raises("read-only buffer", lambda: archive.read_tensor_into(0, bytes(t.original_size)), TypeError)
    expect_raises("bad thread count", lambda: archive.read_tensor(0, threads=-1), ValueError)

    # Wrong-size buffers: the library's statuses, and the buffer left untouched.
    for delta, status in ((-1, wz.WZ_STATUS_DST_TOO_SMALL), (1, wz.WZ_STATUS_DST_SIZE_MISMATCH)):
        buf = bytearray(b"\xcd" * (t.original_size + delta))
        expect_error("buffer of size %+d" % delta, lambda: archive.read_tensor_into(0, buf), status)
        assert buf == b"\xcd" * len(buf), "a failed read wrote into the buffer"
        arr = np.zeros(t.original_size + delta, np.uint8)
        expect_error("numpy buffer of size %+d" % delta, lambda: archive.read_tensor_into(0, arr), status)
    expect_error("empty buffer", lambda: archive.read_tensor_into(0, bytearray()), wz.WZ_STATUS_DST_TOO_SMALL)

    before = os.path.getsize(arc_path)
    expect_error("restore over the archive", lambda: archive.restore(arc_path), wz.WZ_STATUS_INVALID_ARGUMENT)
    assert os.path.getsize(arc_path) == before
    expect_raises("path with a NUL", lambda: archive.restore(os.path.join(tmp, "x\0y")), ValueError)


def check_open_errors(model, tmp):
    expect_error("open the GGUF file itself", lambda: wz.Archive(model), wz.WZ_STATUS_BAD_MAGIC)
    with open(model, "rb") as f:
        head = f.read(4096)
    expect_error("from_bytes of a GGUF", lambda: wz.Archive.from_bytes(head), wz.WZ_STATUS_BAD_MAGIC)
    expect_error("open a missing file", lambda: wz.Archive(os.path.join(tmp, "missing.wz")), wz.WZ_STATUS_IO)
    empty = os.path.join(tmp, "empty.wz")
    open(empty, "wb").close()
    expect_error("open an empty file", lambda: wz.Archive(empty), wz.WZ_STATUS_TRUNCATED)
    expect_error("from_bytes of nothing", lambda: wz.Archive.from_bytes(b""), wz.WZ_STATUS_TRUNCATED)

    # compress_file: refuses its own input, and a non-GGUF or truncated model gives a container
    # status and leaves no output behind.
    # (overwrite=True: without it the binding refuses any existing output before the library
    # sees the call; with it, the library's own refusal is what is tested.)
    expect_error("compress over the input", lambda: wz.compress_file(model, model, overwrite=True),
                 wz.WZ_STATUS_INVALID_ARGUMENT)
    expect_raises("compress over an existing file", lambda: wz.compress_file(model, model), FileExistsError)
    not_gguf = os.path.join(tmp, "not.gguf")
    with open(not_gguf, "wb") as f:
        f.write(b"\0" * 4096)
    out = os.path.join(tmp, "out.wz")
    expect_error("compress a non-GGUF", lambda: wz.compress_file(not_gguf, out), wz.WZ_STATUS_CONTAINER_BAD_MAGIC)
    truncated = os.path.join(tmp, "truncated.gguf")
    with open(model, "rb") as f, open(truncated, "wb") as g:
        g.write(f.read(os.path.getsize(model) - 1))
    expect_error("compress a truncated GGUF", lambda: wz.compress_file(truncated, out), wz.WZ_STATUS_CONTAINER_TRUNCATED)
    assert not os.path.exists(out), "a failed compress_file left its output"


def check_truncated_under_reader(arc_path, tmp):
    """An archive truncated by another program while open: reads raise WeightzipError (I/O, naming
    the file), never kill the interpreter (the library reads with pread, not a mapping)."""
    copy = os.path.join(tmp, "truncated-under-reader.wz")
    with open(arc_path, "rb") as f, open(copy, "wb") as g:
        g.write(f.read())
    with wz.Archive(copy) as archive:
        last = len(archive) - 1
        os.truncate(copy, archive.tensor(last).archive_offset + 1)
        expect_error("read after truncation", lambda: archive.read_tensor(last), wz.WZ_STATUS_IO)
        expect_error("verify after truncation", lambda: archive.verify(), wz.WZ_STATUS_IO)
    os.remove(copy)


def check_from_bytes(arc_path, by_path, original):
    with open(arc_path, "rb") as f:
        arc_bytes = f.read()
    for data in (arc_bytes, bytearray(arc_bytes), memoryview(arc_bytes)):
        with wz.Archive.from_bytes(data) as m:
            assert m.path is None and "in memory" in repr(m)
            assert m.info == by_path.info and m.tensors == by_path.tensors
            assert m.metadata() == by_path.metadata()
            for t in (m.tensors[0], m.tensors[-1]):
                assert m.read_tensor(t.name) == original[t.original_offset : t.original_offset + t.original_size]
    del data
    # The bytes object is kept alive by the archive: dropping every other reference to it must
    # not matter (the library reads the memory it was given until close).
    m = wz.Archive.from_bytes(bytes(arc_bytes))
    t = max(m.tensors, key=lambda t: t.original_size)
    assert m.read_tensor(t.index) == original[t.original_offset : t.original_offset + t.original_size]
    m.verify()
    m.close()
    return arc_bytes


def check_corruption(arc_bytes, original):
    """A flipped byte inside one tensor's frame: that tensor and verify() fail, the others read."""
    with wz.Archive.from_bytes(arc_bytes) as good:
        victim = max(good.tensors, key=lambda t: t.archive_size)
        other = next(t for t in good.tensors if t.index != victim.index)
    bad = bytearray(arc_bytes)
    bad[victim.archive_offset + victim.archive_size // 2] ^= 0x10
    with wz.Archive.from_bytes(bytes(bad)) as b:
        buf = bytearray(b"\xcd" * victim.original_size)
        expect_error("read a corrupt tensor", lambda: b.read_tensor_into(victim.index, buf), wz.WZ_STATUS_CORRUPT_DATA)
        assert buf.count(0) == len(buf), "a corrupt read must zero-fill the buffer"
        expect_error("verify a corrupt archive", b.verify, wz.WZ_STATUS_CORRUPT_DATA)
        assert b.read_tensor(other.index) == original[other.original_offset : other.original_offset + other.original_size]
    bad = bytearray(arc_bytes)
    bad[-5] ^= 0x01  # in the index or its trailer
    expect_error("open with a corrupt index", lambda: wz.Archive.from_bytes(bytes(bad)), wz.WZ_STATUS_CORRUPT_HEADER)
    expect_error("open a truncated archive", lambda: wz.Archive.from_bytes(arc_bytes[:-1]), wz.WZ_STATUS_TRUNCATED)


def check_closed(archive):
    assert archive.closed and "closed" in repr(archive)
    expect_raises("read after close", lambda: archive.read_tensor(0), ValueError)
    expect_raises("metadata after close", archive.metadata, ValueError)
    archive.close()  # a second close does nothing


def module_script(*args):
    """Runs `python3 -m weightzip ARGS...`; returns its stdout."""
    out = subprocess.run([sys.executable, "-m", "weightzip"] + list(args), capture_output=True)
    if out.returncode != 0:
        raise AssertionError("python -m weightzip %s: exit %d\n%s%s"
                             % (" ".join(args), out.returncode, out.stdout.decode(), out.stderr.decode()))
    return out.stdout


def check_module_script(model, arc_path, tmp):
    """The module's own commands: compress makes the same archive, verify and restore work."""
    arc = os.path.join(tmp, "script.wz")
    module_script("compress", model, arc)
    assert same_file(arc, arc_path), "python -m weightzip compress made a different archive"
    assert b" OK" in module_script("verify", arc)
    restored = os.path.join(tmp, "script.gguf")
    module_script("restore", arc, restored)
    assert same_file(restored, model), "python -m weightzip restore made a different file"
    text = module_script("ls", arc).decode()
    with wz.Archive(arc) as a:
        assert len(text.splitlines()) == 1 + len(a), text
    os.remove(arc)
    os.remove(restored)


def check_ls_json(archive, arc_path):
    """`weightzip ls --json` (the Rust CLI) and `python3 -m weightzip ls --json` agree with the
    bindings."""
    doc = json.loads(module_script("ls", "--json", arc_path))
    assert doc["tensor_count"] == len(archive) and len(doc["tensors"]) == len(archive)
    for t, d in zip(archive.tensors, doc["tensors"]):
        assert d == dict(t._asdict(), dims=list(t.dims)), (t, d)

    cli = os.environ.get("WEIGHTZIP_CLI")
    if not cli:
        return False
    out = subprocess.run([cli, "ls", "--json", arc_path], check=True, capture_output=True)
    doc = json.loads(out.stdout)
    info = archive.info
    assert doc["container"] == info.container_name, doc["container"]
    for key in ("original_size", "archive_size", "metadata_size"):
        assert doc[key] == getattr(info, key), (key, doc[key], info)
    assert len(doc["tensors"]) == len(archive)
    for t, d in zip(archive.tensors, doc["tensors"]):
        assert d["name"] == t.name and d["type_id"] == t.container_type and d["type"] == t.type_name, (t, d)
        assert d["dims"] == list(t.dims) and d["sha256"] == t.sha256, (t, d)
        for key in ("original_offset", "original_size", "archive_offset", "archive_size"):
            assert d[key] == getattr(t, key), (key, t, d)
    return True


def check_model(model, tmp):
    timer = Timer()
    with open(model, "rb") as f:
        original = f.read()
    arc_path = os.path.join(tmp, os.path.basename(model) + ".wz")
    wz.compress_file(model, arc_path)
    # Output depends only on the input: same bytes on one thread.
    one_thread = os.path.join(tmp, "one-thread.wz")
    wz.compress_file(model, one_thread, threads=1)
    assert same_file(arc_path, one_thread), "archive bytes depend on the thread count"
    os.remove(one_thread)

    with wz.Archive(arc_path) as archive:
        assert archive.path == arc_path and not archive.closed
        check_info(archive, model, arc_path, original)
        check_tensors(archive, original)
        check_concurrent_reads(archive, original)
        restored = os.path.join(tmp, "restored.gguf")
        archive.restore(restored)
        assert same_file(restored, model), "restored file differs from the original"
        os.remove(restored)
        archive.restore(restored, threads=1)
        assert same_file(restored, model), "restored file (1 thread) differs from the original"
        archive.verify()
        archive.verify(threads=1)
        check_errors(archive, arc_path, tmp)
        arc_bytes = check_from_bytes(arc_path, archive, original)
        check_layout(archive, arc_bytes)
        cli_checked = check_ls_json(archive, arc_path)
        check_module_script(model, arc_path, tmp)
    check_closed(archive)
    check_corruption(arc_bytes, original)
    check_open_errors(model, tmp)
    check_truncated_under_reader(arc_path, tmp)

    info = archive.info
    print(
        "%s: %d tensors, %d -> %d bytes (ratio %.4f), every tensor, metadata, restore, errors, python -m weightzip%s: %s OK"
        % (
            os.path.basename(model),
            info.tensor_count,
            info.original_size,
            info.archive_size,
            info.original_size / info.archive_size,
            ", CLI ls" if cli_checked else "",
            timer,
        )
    )


def main(argv):
    if len(argv) < 2:
        print("usage: %s MODEL.gguf..." % argv[0], file=sys.stderr)
        return 2
    for model in argv[1:]:
        with tempfile.TemporaryDirectory(prefix="weightzip-py-") as tmp:
            check_model(model, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
