"""Shared set-up of the package's test suite: the committed fixtures and their archives.

The suite runs against whichever `weightzip` Python imports: in CI, the package pip installed
into a fresh virtual environment (the header lists the library it loaded). The fixtures are the
repository's tests/data/; archives are made once per session with the package's compress_file.
"""

import os
import shutil

import pytest

import weightzip

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data")
SAFETENSORS_FIXTURES = sorted(f for f in os.listdir(DATA) if f.endswith(".safetensors"))
GGUF_FIXTURES = sorted(f for f in os.listdir(DATA) if f.endswith(".gguf"))


def pytest_report_header(config):
    return "weightzip %s from %s, library %s" % (weightzip.version(), os.path.dirname(weightzip.__file__),
                                                  weightzip.library_path())


def fixture_path(name):
    return os.path.join(DATA, name)


@pytest.fixture(scope="session")
def archive_of(tmp_path_factory):
    """archive_of(path, chunk_size=0): an archive of the model file at `path`, made once."""
    made = {}
    tmp = tmp_path_factory.mktemp("archives")

    def make(path, chunk_size=0):
        key = (path, chunk_size)
        if key not in made:
            dst = os.path.join(tmp, "%d-%d-%s.wz" % (len(made), chunk_size, os.path.basename(path)))
            weightzip.compress_file(path, dst, chunk_size=chunk_size)
            made[key] = dst
        return made[key]

    return make


@pytest.fixture
def workdir(tmp_path):
    """A temporary directory holding copies of the committed fixtures."""
    for name in SAFETENSORS_FIXTURES + GGUF_FIXTURES:
        shutil.copy(fixture_path(name), tmp_path / name)
    return tmp_path
