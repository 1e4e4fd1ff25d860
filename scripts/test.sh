#!/usr/bin/env bash
# The test suite with its own set-up: what README.md gives a new user, and what .ci/run runs.
#
#   scripts/test.sh [CARGO TEST ARGS...]        e.g. scripts/test.sh --test cli
#
# Needs a Rust toolchain, a C compiler and make. Everything else the tests use is installed here
# when missing, and only then:
#   - system tools: a C++ compiler, nm (binutils), python3 with venv support, and the
#     AddressSanitizer/UBSan runtimes; from the distribution (apt-get; through sudo when not
#     root, and only with WZ_TEST_NO_APT unset);
#   - Python modules numpy, gguf, safetensors and ml_dtypes, into a virtual environment under
#     target/test-venv (never the system's Python): the tests use it through $PYTHON3.
# Then it runs `cargo test --release` with those arguments. A developer whose machine already has
# everything can run plain `cargo test --release` (with python3 on PATH holding the modules).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

say() { echo "scripts/test.sh: $*" >&2; }

# System tools, by what the tests run.
missing=()
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v nm >/dev/null 2>&1 || missing+=(binutils)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
probe=$(mktemp -d)
if ! echo 'int main(void){return 0;}' | cc -x c -fsanitize=address,undefined -o "$probe/a" - >/dev/null 2>&1; then
  missing+=(libasan8 libubsan1)
fi
rm -rf "$probe"
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  if [ -n "${WZ_TEST_NO_APT:-}" ] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing: ${missing[*]}; install them (e.g. apt-get install ${missing[*]}) and run again"
    exit 1
  fi
  say "installing: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
fi

# Python modules, in a virtual environment of the project's own.
venv=target/test-venv
modules=(numpy gguf safetensors ml_dtypes)
imports=$(IFS=,; echo "${modules[*]}")
if ! "$venv/bin/python" -c "import $imports" >/dev/null 2>&1; then
  mkdir -p target
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  say "pip installing into $venv: ${modules[*]}"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${modules[@]}"
fi
PYTHON3=$(cd "$venv/bin" && pwd)/python
export PYTHON3

cargo --version
exec cargo test --release "$@"
