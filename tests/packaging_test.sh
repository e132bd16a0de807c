#!/usr/bin/env bash
# Packaging test: installs the current build into a temporary directory and
# builds two small consumers against it, one with CMake
# (find_package(atasker CONFIG REQUIRED) + atasker::atasker) and one with
# pkg-config, then runs both against the installed shared library.
#
#   packaging_test.sh <build dir> <source dir> <b_sanitize value> <c++ compiler command...>
#
# Registered in tests/meson.build (suite 'packaging'); run it with
#   meson test -C build --suite packaging --print-errorlogs
set -euo pipefail

if (($# < 4)); then
  echo "usage: $0 <build dir> <source dir> <b_sanitize> <c++ compiler command...>" >&2
  exit 2
fi
builddir=$(cd "$1" && pwd)
srcdir=$(cd "$2" && pwd)
sanitize=$3
shift 3
cxx=("$@")

fail() {
  echo "packaging test FAILED: $*" >&2
  exit 1
}
step() { echo "--- packaging: $*"; }

# meson test points LD_LIBRARY_PATH at the build tree; the consumers must
# only ever see the installed library.
unset LD_LIBRARY_PATH

tmp=$(mktemp -d "${TMPDIR:-/tmp}/atasker-packaging.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"

# The consumers must be built the way the library was: a sanitized
# libatasker.so needs its runtime linked into the executable.
san_flags=()
if [[ -n "$sanitize" && "$sanitize" != none ]]; then
  san_flags=("-fsanitize=$sanitize" -fno-omit-frame-pointer)
fi

step "installing $builddir into $root"
meson install -C "$builddir" --no-rebuild --destdir "$root" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "meson install failed"; }

pc=$(find "$root" -name atasker.pc -path '*/pkgconfig/*' | head -n 1)
[[ -n "$pc" ]] || fail "atasker.pc was not installed"
config=$(find "$root" -name ataskerConfig.cmake | head -n 1)
[[ -n "$config" ]] || fail "ataskerConfig.cmake was not installed"
[[ -n "$(find "$root" -name ataskerConfigVersion.cmake)" ]] || fail "ataskerConfigVersion.cmake was not installed"
[[ -f "$(find "$root" -path '*/include/atasker/atasker.hpp' | head -n 1)" ]] || fail "headers were not installed"
prefix=$(sed -n 's/^prefix=//p' "$pc")
[[ -n "$prefix" ]] || fail "no prefix= line in $pc"
staged_prefix="$root$prefix"
libfile=$(find "$root" -name 'libatasker.so.*' -type f | head -n 1)
[[ -n "$libfile" ]] || fail "libatasker.so was not installed"
libdir=$(dirname "$libfile")

# Proves a consumer runs against the installed library, not the build tree's.
check_runtime() {
  local exe=$1 resolved
  resolved=$(LD_LIBRARY_PATH="$libdir" ldd "$exe" | awk '/libatasker\.so/ {print $3}')
  [[ "$resolved" == "$libdir"/* ]] ||
    fail "$(basename "$exe") loads libatasker from '${resolved:-nowhere}', expected $libdir"
  step "running $(basename "$exe") (libatasker from $resolved)"
  LD_LIBRARY_PATH="$libdir" "$exe" || fail "$(basename "$exe") exited with status $?"
}

# --- CMake consumer ---------------------------------------------------------
step "CMake consumer: find_package(atasker CONFIG REQUIRED) with CMAKE_PREFIX_PATH=$staged_prefix"
compiler=${cxx[-1]}
launcher=("${cxx[@]:0:${#cxx[@]}-1}")
cmake_args=(
  -S "$srcdir/tests/packaging" -B "$tmp/cmake-build" -G Ninja
  -DCMAKE_BUILD_TYPE=Release
  "-DCMAKE_CXX_COMPILER=$compiler"
  "-DCMAKE_PREFIX_PATH=$staged_prefix"
  -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
  "-DCMAKE_CXX_FLAGS=${san_flags[*]}"
  "-DCMAKE_EXE_LINKER_FLAGS=${san_flags[*]}"
)
if ((${#launcher[@]})); then
  cmake_args+=("-DCMAKE_CXX_COMPILER_LAUNCHER=$(IFS=';'; echo "${launcher[*]}")")
fi
cmake "${cmake_args[@]}" >"$tmp/cmake-configure.log" 2>&1 ||
  { cat "$tmp/cmake-configure.log" >&2; fail "cmake could not configure the consumer"; }
found_dir=$(sed -n 's/^atasker_DIR:PATH=//p' "$tmp/cmake-build/CMakeCache.txt")
[[ "$found_dir" == "$root"/* ]] || fail "cmake found atasker in '$found_dir', not in $root"
cmake --build "$tmp/cmake-build" >"$tmp/cmake-build.log" 2>&1 ||
  { cat "$tmp/cmake-build.log" >&2; fail "cmake could not build the consumer"; }
check_runtime "$tmp/cmake-build/cmake_consumer"

# --- pkg-config consumer ----------------------------------------------------
# The installed .pc file names the real prefix ($prefix); a copy with only the
# prefix= line rewritten points pkg-config at the staged install, while fmt's
# own .pc file is read from the system as usual.
step "pkg-config consumer: c++ \$(pkg-config --cflags --libs atasker), prefix rewritten to $staged_prefix"
mkdir -p "$tmp/pkgconfig"
sed "s|^prefix=.*|prefix=$staged_prefix|" "$pc" >"$tmp/pkgconfig/atasker.pc"
pcflags=$(PKG_CONFIG_PATH="$tmp/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
  pkg-config --cflags --libs atasker) ||
  fail "pkg-config does not know atasker"
echo "    pkg-config --cflags --libs atasker: $pcflags"
[[ "$pcflags" == *"-I$staged_prefix/"* && "$pcflags" == *"-L$libdir"* ]] ||
  fail "pkg-config flags do not point into the staged install: $pcflags"
# shellcheck disable=SC2086  # pkg-config output is meant to be word-split
"${cxx[@]}" -std=c++20 -O1 "${san_flags[@]}" "$srcdir/tests/packaging/consumer.cpp" \
  -o "$tmp/pkgconfig_consumer" $pcflags ||
  fail "the pkg-config consumer did not compile or link"
check_runtime "$tmp/pkgconfig_consumer"

echo "packaging test passed: CMake and pkg-config consumers built and ran against $libdir"
