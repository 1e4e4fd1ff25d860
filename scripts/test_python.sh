#!/usr/bin/env bash
# The Python package as a new user gets it (what .ci/run runs after scripts/test.sh):
#
#   1. a fresh virtual environment, `pip install ./python` (the build runs cargo and puts the
#      library in the package) with the test suite's modules, then pytest of python/tests against
#      the installed package;
#   2. `pip wheel ./python`: the wheel must hold the library, and installed into a second fresh
#      environment it must import and read an archive from a directory with no access to the
#      repository (no WEIGHTZIP_LIBRARY, no PYTHONPATH, the checkout not on sys.path).
#
# Needs python3 with venv, a Rust toolchain, and PyPI (numpy, ml_dtypes, pytest,
# safetensors, gguf; pip fetches setuptools for the build). torch is not installed: its tests
# skip, saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
say() { echo "scripts/test_python.sh: $*" >&2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# setuptools' build directory would carry modules from an earlier build into the wheel.
rm -rf python/build python/weightzip.egg-info

say "fresh venv: pip install ./python pytest safetensors gguf"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check ./python pytest safetensors gguf
# From the repository root: the tests read tests/data, include/weightzip.h and README.md.
# WEIGHTZIP_LIBRARY unset, so the library is the one the package carries (pytest's header says).
env -u WEIGHTZIP_LIBRARY "$work/venv/bin/python" -m pytest -rs -p no:cacheprovider python/tests

say "pip wheel ./python, installed into a second venv, used from outside the repository"
"$work/venv/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps ./python -w "$work/dist"
wheel=$(ls "$work"/dist/weightzip-*.whl)
python3 - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
assert "weightzip/libweightzip.so" in names, names
print("%s: %d files, weightzip/libweightzip.so among them" % (sys.argv[1].rsplit("/", 1)[-1], len(names)))
PY
python3 -m venv "$work/isolated"
"$work/isolated/bin/python" -m pip install -q --disable-pip-version-check "$wheel"
mkdir "$work/elsewhere"
cp tests/data/minilm-l6-layer0-bf16.safetensors "$work/elsewhere/model.safetensors"
cd "$work/elsewhere"
env -u WEIGHTZIP_LIBRARY -u PYTHONPATH "$work/isolated/bin/python" - "$root" <<'PY'
import os, sys
import weightzip
from weightzip.safetensors import safe_open

root = os.path.realpath(sys.argv[1])
for p in (weightzip.__file__, weightzip.library_path()):
    assert not os.path.realpath(p).startswith(root + os.sep), "%s is in the repository" % p
assert os.path.dirname(weightzip.library_path()) == os.path.dirname(weightzip.__file__)
weightzip.compress_file("model.safetensors", "model.safetensors.wz")
with safe_open("model.safetensors.wz") as f:
    name = f.keys()[0]
    x = f.get_tensor(name)
    print("wheel outside the repository: %s, %s %s %s, library %s OK"
          % (weightzip.version(), name, x.dtype, x.shape, weightzip.library_path()))
PY
