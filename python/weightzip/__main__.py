"""`python -m weightzip`: the package's commands, for trying it out without writing code.

    python -m weightzip FILE.bf16 [THREADS]           roundtrip a raw bf16 file through a frame
    python -m weightzip compress MODEL [ARCHIVE]      compress a GGUF or safetensors model
                                                      (ARCHIVE: MODEL.wz)
    python -m weightzip ls [--json] ARCHIVE           list an archive's tensors
    python -m weightzip verify ARCHIVE                check every tensor against its SHA-256
    python -m weightzip restore ARCHIVE OUT           restore the original file

Outputs that exist are not replaced, as with the `weightzip` command-line tool.
"""

import json
import os
import sys

from . import Archive, WeightzipError, compress, compress_file, decompress, frame_info, restore_file, version

_USAGE = """usage: %(prog)s FILE.bf16 [THREADS]            roundtrip a raw bf16 file through a frame
       %(prog)s compress MODEL [ARCHIVE]       compress a GGUF or safetensors model (ARCHIVE: MODEL.wz)
       %(prog)s ls [--json] ARCHIVE            list an archive's tensors
       %(prog)s verify ARCHIVE                 check every tensor against its SHA-256
       %(prog)s restore ARCHIVE OUT            restore the original file"""


def _archive_main(argv):
    command, args = argv[1], argv[2:]
    as_json = command == "ls" and args[:1] == ["--json"]
    if as_json:
        args = args[1:]
    wanted = {"compress": (1, 2), "ls": (1, 1), "verify": (1, 1), "restore": (2, 2)}[command]
    if not wanted[0] <= len(args) <= wanted[1]:
        print(_USAGE % {"prog": argv[0]}, file=sys.stderr)
        return 2
    try:
        if command == "compress":
            dst = args[1] if len(args) == 2 else args[0] + ".wz"
            compress_file(args[0], dst)
            with Archive(dst) as archive:
                info = archive.info
            print(
                "%s -> %s: %d tensors, %d -> %d bytes, ratio %.4f"
                % (args[0], dst, info.tensor_count, info.original_size, info.archive_size,
                   info.original_size / info.archive_size)
            )
            return 0
        with Archive(args[0]) as archive:
            if command == "verify":
                archive.verify()
                print("%s: %d tensors verified OK" % (args[0], len(archive)))
            elif command == "restore":
                restore_file(args[0], args[1])
                print("%s -> %s: %d bytes" % (args[0], args[1], archive.info.original_size))
            elif as_json:
                out = archive.info._asdict()
                out["tensors"] = [t._asdict() for t in archive.tensors]
                print(json.dumps(out, indent=2))
            else:
                print("%-44s %8s %16s %12s %12s" % ("name", "type", "dims", "original", "archive"))
                for t in archive.tensors:
                    dims = "x".join(str(d) for d in t.dims)
                    print("%-44s %8s %16s %12d %12d"
                          % (t.name, t.type_name, dims, t.original_size, t.archive_size))
    except BrokenPipeError:
        # `ls | head`: the reader left; point stdout at /dev/null so the exit flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (WeightzipError, OSError) as e:
        print("%s: %s" % (args[0], e), file=sys.stderr)
        return 1
    return 0


def _main(argv):
    if len(argv) >= 2 and argv[1] in ("compress", "ls", "verify", "restore"):
        return _archive_main(argv)
    if len(argv) not in (2, 3):
        print(_USAGE % {"prog": argv[0]}, file=sys.stderr)
        return 2
    path = argv[1]
    threads = int(argv[2]) if len(argv) == 3 else 0
    with open(path, "rb") as f:
        data = f.read()
    try:
        frame = compress(data, "bf16", threads)
        info = frame_info(frame)
        restored = decompress(frame, threads)
    except WeightzipError as e:
        print("%s: weightzip error: %s" % (path, e), file=sys.stderr)
        return 1
    if info["original_size"] != len(data) or info["frame_size"] != len(frame):
        print("%s: frame_info disagrees with the data: %r" % (path, info), file=sys.stderr)
        return 1
    if restored != data:
        print("%s: decompressed bytes differ from the input" % path, file=sys.stderr)
        return 1
    ratio = len(data) / len(frame) if frame else 0.0
    print(
        "%s: %d bytes -> %d bytes, ratio %.4f (weightzip %s via ctypes) OK"
        % (path, len(data), len(frame), ratio, version())
    )
    return 0


if __name__ == "__main__":
    sys.exit(_main(["python -m weightzip"] + sys.argv[1:]))
