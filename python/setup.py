"""Builds libweightzip with cargo and puts it inside the package, so the wheel carries it.

Why a custom step in setuptools rather than maturin or setuptools-rust: the package is pure
Python over the C ABI (ctypes, no Python extension module), so all the build has to do is run
`cargo build --release` and copy one file. This step is that, in a few lines that need nothing
but setuptools; maturin (bindings = "cdylib") and setuptools-rust (Binding.NoBinding) would do
the same through a tool with its own conventions for where the library goes and what it is
called. The wheel is tagged py3-none-PLATFORM: any Python 3, no Python ABI, this platform.

Needs a Rust toolchain (cargo on PATH, or $CARGO) and the repository around this directory.
$CARGO_TARGET_DIR is honoured.
"""

import os
import shutil
import subprocess
import sys

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

if sys.platform == "darwin":
    LIBRARY = "libweightzip.dylib"
elif sys.platform == "win32":
    LIBRARY = "weightzip.dll"
else:
    LIBRARY = "libweightzip.so"


def build_library():
    """Runs cargo in the repository; returns the path of the built library."""
    if not os.path.isfile(os.path.join(ROOT, "Cargo.toml")):
        sys.exit("weightzip: build from a checkout of the repository (no Cargo.toml in %s)" % ROOT)
    cargo = os.environ.get("CARGO") or shutil.which("cargo")
    if not cargo:
        sys.exit("weightzip: building the package needs a Rust toolchain (cargo not found; see https://rustup.rs)")
    # --lib: the library alone, not the workspace's command-line tool.
    subprocess.check_call([cargo, "build", "--release", "--lib", "-p", "weightzip"], cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR") or "target"
    return os.path.join(ROOT, target, "release", LIBRARY)


class build_py_with_library(build_py):
    def run(self):
        super().run()
        built = build_library()
        dest = os.path.join(self.build_lib, "weightzip", LIBRARY)
        self.mkpath(os.path.dirname(dest))
        self.copy_file(built, dest)


class with_platform_code(Distribution):
    # The library is platform code: the wheel is not "pure", and installs at the top of the
    # platform-specific site-packages like any package with a compiled part.
    def has_ext_modules(self):
        return True


class platform_wheel(bdist_wheel):
    def get_tag(self):
        _python, _abi, platform = super().get_tag()
        return "py3", "none", platform


setup(distclass=with_platform_code, cmdclass={"build_py": build_py_with_library, "bdist_wheel": platform_wheel})
