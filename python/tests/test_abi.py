"""The C API mirror in weightzip/_capi.py against include/weightzip.h, the one source of truth:
constants, status codes, struct fields (names, C types, order; and, with a C compiler at hand,
sizes and offsets as C lays them out) and every function's signature."""

import ctypes
import os
import re
import shutil
import subprocess

import pytest

from weightzip import _capi

from conftest import ROOT

HEADER = os.path.join(ROOT, "include", "weightzip.h")

# C scalar types and their ctypes twins.
SCALARS = {
    "uint8_t": ctypes.c_uint8,
    "uint32_t": ctypes.c_uint32,
    "int32_t": ctypes.c_int32,
    "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t,
    "int": ctypes.c_int,
    "wz_status": ctypes.c_uint32,  # a uint32_t in C (an enum with that base in C23 and C++)
}


@pytest.fixture(scope="module")
def header():
    with open(HEADER) as f:
        text = f.read()
    # Comments out (the header's comments quote code and numbers).
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def expected_ctypes(c_type):
    """The ctypes types that may stand for C type `c_type` (a tuple: char pointers may be c_char_p
    or, where the binding reads a length-delimited string, c_void_p)."""
    c_type = re.sub(r"\bconst\b", "", c_type)
    depth = c_type.count("*")
    base = " ".join(c_type.replace("*", " ").split())
    if depth == 0:
        return (None,) if base == "void" else (SCALARS[base],)
    if base in ("struct wz_archive",):  # opaque handle: a void* in the binding
        return (ctypes.c_void_p,) if depth == 1 else (ctypes.POINTER(ctypes.c_void_p),)
    if depth == 2:
        assert base == "void", c_type
        return (ctypes.POINTER(ctypes.c_void_p),)
    if base == "char":
        return (ctypes.c_char_p, ctypes.c_void_p)
    if base == "void":
        return (ctypes.c_void_p,)
    if base.startswith("struct "):
        return (ctypes.POINTER(getattr(_capi, base.split()[1])),)
    return (ctypes.POINTER(SCALARS[base]),)


def test_defines(header):
    defines = dict(re.findall(r"#define (WZ_\w+) (\d+)\b", header))
    mirrored = {k: v for k, v in vars(_capi).items() if k.startswith(("WZ_KIND_", "WZ_CONTAINER_", "WZ_FLAG_")) or
                k in ("WZ_FRAME_HEADER_SIZE", "WZ_FORMAT_VERSION")}
    for name in defines:
        if name.startswith(("WZ_KIND_", "WZ_CONTAINER_", "WZ_FLAG_")) or name in ("WZ_FRAME_HEADER_SIZE", "WZ_FORMAT_VERSION"):
            assert mirrored.get(name) == int(defines[name]), name
    assert set(mirrored) <= set(defines), set(mirrored) - set(defines)
    assert {"WZ_KIND_" + k.upper() for k in _capi.KINDS} == {k for k in defines if k.startswith("WZ_KIND_")}


def test_status_codes(header):
    body = re.search(r"enum wz_status[^{]*\{(.*?)\};", header, re.S).group(1)
    codes = {name: int(value) for name, value in re.findall(r"(WZ_STATUS_\w+) = (\d+)", body)}
    assert codes and codes == {v: k for k, v in _capi.STATUS_NAMES.items()} and len(codes) == len(_capi.STATUS_NAMES)
    assert _capi.status_str(_capi.WZ_STATUS_NOT_FOUND)


def struct_fields(header):
    structs = {}
    for name, body in re.findall(r"typedef struct (wz_\w+) \{(.*?)\} \1;", header, re.S):
        fields = []
        for decl in filter(None, (d.strip() for d in body.split(";"))):
            m = re.fullmatch(r"(.*?)(\w+)(?:\[(\d+)\])?", " ".join(decl.split()))
            fields.append((m.group(2), m.group(1).strip(), int(m.group(3)) if m.group(3) else None))
        structs[name] = fields
    return structs


def test_structs(header):
    structs = struct_fields(header)
    assert sorted(structs) == sorted(s.__name__ for s in _capi.STRUCTS)
    for cls in _capi.STRUCTS:
        fields = structs[cls.__name__]
        assert [f[0] for f in cls._fields_] == [f[0] for f in fields], cls.__name__
        for (name, ctype), (_name, c_type, length) in zip(cls._fields_, fields):
            want = expected_ctypes(c_type)
            if length is not None:
                assert ctype._length_ == length and ctype._type_ in want, (cls.__name__, name)
            else:
                assert ctype in want, (cls.__name__, name, ctype, c_type)


def test_functions(header):
    protos = {}
    for ret, name, args in re.findall(r"([\w \*]+?)\s*\b(wz_\w+)\(([^)]*)\);", header):
        params = [] if args.strip() == "void" else [a.strip() for a in args.split(",")]
        # Each parameter's type is its declaration less the trailing name.
        types = [re.sub(r"\w+$", "", " ".join(p.split())).strip() for p in params]
        protos[name] = (ret.strip(), types)
    assert sorted(protos) == sorted(_capi.FUNCTIONS), set(protos) ^ set(_capi.FUNCTIONS)
    for name, (ret, types) in protos.items():
        restype, argtypes = _capi.FUNCTIONS[name]
        assert restype in expected_ctypes(ret), (name, ret, restype)
        assert len(argtypes) == len(types), name
        for i, (c_type, ctype) in enumerate(zip(types, argtypes)):
            assert ctype in expected_ctypes(c_type), (name, i, c_type, ctype)
        # The loaded library has them with these declarations.
        fn = getattr(_capi.lib, name)
        assert fn.restype is restype and list(fn.argtypes) == argtypes, name


def test_layout_as_c_compiles_it(tmp_path, header):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler: struct sizes and offsets not compared with C's")
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "weightzip.h"', "int main(void) {"]
    for cls in _capi.STRUCTS:
        n = cls.__name__
        lines.append('printf("%s %%zu\\n", sizeof(%s));' % (n, n))
        for field, _ in cls._fields_:
            lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));' % (n, field, n, field))
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-I", os.path.join(ROOT, "include"), str(src), "-o", str(exe)], check=True)
    got = dict(line.split() for line in subprocess.run([str(exe)], check=True, capture_output=True,
                                                        text=True).stdout.splitlines())
    for cls in _capi.STRUCTS:
        n = cls.__name__
        assert int(got[n]) == ctypes.sizeof(cls), n
        for field, _ in cls._fields_:
            assert int(got["%s.%s" % (n, field)]) == getattr(cls, field).offset, (n, field)
