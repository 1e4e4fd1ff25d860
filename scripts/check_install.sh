#!/usr/bin/env bash
# Installs libweightzip into a temporary prefix with `make install` and uses it the way other
# projects do (.ci/run runs this): a C program built with pkg-config against the shared and the
# static library, a C program with its own zstd linked with the static one, a C++ program built
# by CMake find_package (shared and static); then the installed files: the SONAME and its links,
# the shared library's size (under 5 MB), and no global symbol but wz_* in either library.
#
#   scripts/check_install.sh            (installs cmake and pkg-config from apt when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "check_install: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
make -s install PREFIX="$prefix"
lib=$prefix/lib
fail() { echo "check_install: FAILED: $*" >&2; exit 1; }

# The installed files.
soname=$(readelf -d "$lib/libweightzip.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libweightzip.so.0 ] || fail "SONAME is '$soname'"
[ "$(readlink "$lib/libweightzip.so")" = libweightzip.so.0 ] || fail "libweightzip.so link"
[ -L "$lib/libweightzip.so.0" ] || fail "libweightzip.so.0 link"
size=$(stat -L -c %s "$lib/libweightzip.so")
[ "$size" -lt 5000000 ] || fail "the shared library is $size bytes"
others=$(nm -D --defined-only "$lib/libweightzip.so" | awk '{print $3}' | grep -v '^wz_' || true)
[ -z "$others" ] || fail "the shared library exports: $others"
others=$(nm -g --defined-only "$lib/libweightzip.a" | awk 'NF == 3 {print $3}' | grep -v '^wz_' || true)
[ -z "$others" ] || fail "the static library defines global: $(echo "$others" | head -5)"
echo "installed: SONAME $soname, libweightzip.so $size bytes, .a $(stat -c %s "$lib/libweightzip.a") bytes; only wz_* global symbols in both"

export PKG_CONFIG_PATH=$lib/pkgconfig
fixture=tests/data/minilm-l6-ffn01.bf16
# pkg-config, shared.
cc -std=c99 -Wall -Werror tests/install/consumer.c $(pkg-config --cflags --libs weightzip) -Wl,-rpath,"$lib" -o "$work/shared"
"$work/shared" "$fixture"
# ldd's output is kept before grep reads it: `ldd | grep -q` under pipefail fails at random, when grep
# stops at the first match and ldd then dies writing to the closed pipe.
ldd "$work/shared" > "$work/ldd-shared"
grep -q "libweightzip.so.0 => $lib" "$work/ldd-shared" || fail "the shared consumer does not load the installed library"
# pkg-config, static (the archive by its path, then what it needs from the system).
cc -std=c99 -Wall -Werror tests/install/consumer.c $(pkg-config --cflags weightzip) "$lib/libweightzip.a" \
    $(pkg-config --static --libs-only-l weightzip | sed 's/-lweightzip//') -o "$work/static"
"$work/static" "$fixture"
ldd "$work/static" > "$work/ldd-static"
! grep -q libweightzip "$work/ldd-static" || fail "the static consumer loads libweightzip"
# A program with its own zstd, static.
cc -std=c99 -Wall -Werror tests/install/own_zstd.c $(pkg-config --cflags weightzip) "$lib/libweightzip.a" \
    $(pkg-config --static --libs-only-l weightzip | sed 's/-lweightzip//') -o "$work/own_zstd"
"$work/own_zstd"
# CMake, C++, both targets.
cmake -S tests/install/cmake -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/cmake" >/dev/null
for v in shared static; do
  "$work/cmake/consumer_$v" tests/data/qwen25coder15b-q4km-mini.gguf "$work/q-$v.wz"
done
make -s uninstall PREFIX="$prefix"
left=$(find "$prefix" -type f | head -5)
[ -z "$left" ] || fail "uninstall left $left"
echo "check_install: OK"
