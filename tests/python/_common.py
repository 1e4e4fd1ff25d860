"""Shared by the Python test scripts in this directory (run by tests/python.rs).

Imports the package from the checkout's python/ (the library itself is found through
WEIGHTZIP_LIBRARY, which tests/python.rs sets; PYTHONPATH is set too, for `python -m weightzip` in
subprocesses) and gives the scripts a few checking helpers. Every check raises, so
a failing script exits non-zero with a traceback.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PACKAGE_DIR = os.path.join(ROOT, "python")
sys.path.insert(0, PACKAGE_DIR)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_DIR, os.environ.get("PYTHONPATH")]))

import weightzip as wz  # noqa: E402  (needs the sys.path entry above)


def expect_error(what, fn, status):
    """Runs fn() and returns the WeightzipError it must raise, with the given status."""
    try:
        fn()
    except wz.WeightzipError as e:
        if e.status != status:
            raise AssertionError(
                "%s: expected %s, got %s" % (what, wz.STATUS_NAMES.get(status, status), e)
            )
        if not e.message or e.message != wz.status_str(status):
            raise AssertionError("%s: message %r is not wz_status_str's" % (what, e.message))
        return e
    raise AssertionError("%s: no WeightzipError (expected %s)" % (what, wz.STATUS_NAMES[status]))


def expect_raises(what, fn, exc_type):
    """Runs fn() and returns the exception of type exc_type it must raise."""
    try:
        fn()
    except exc_type as e:
        return e
    raise AssertionError("%s: no %s" % (what, exc_type.__name__))


def same_file(a, b, block=1 << 24):
    """True when the files at a and b hold the same bytes (read in blocks: large files too)."""
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(block), fb.read(block)
            if x != y:
                return False
            if not x:
                return True


class Timer:
    """Seconds since creation, for the lines the scripts print."""

    def __init__(self):
        self.start = time.perf_counter()

    def __str__(self):
        return "%.2fs" % (time.perf_counter() - self.start)
