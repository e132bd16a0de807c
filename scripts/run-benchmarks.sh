#!/usr/bin/env bash
# The library's main job: builds atasker-cpp (release) into build/ and runs
# the benchmark suite, build/bench/atasker-bench, passing on any arguments.
#
#   bash scripts/run-benchmarks.sh
#   bash scripts/run-benchmarks.sh --help     # the benchmark runner's options
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

builddir=build
if [[ ! -f "$builddir/meson-private/coredata.dat" ]]; then
  echo "run-benchmarks: configuring $builddir"
  meson setup "$builddir"
fi
meson compile -C "$builddir"

if [[ ! -x "$builddir/bench/atasker-bench" ]]; then
  echo "run-benchmarks: $builddir/bench/atasker-bench was not built; turn the 'benchmarks' option on:" >&2
  echo "  meson configure $builddir -Dbenchmarks=true" >&2
  exit 1
fi
exec "$builddir/bench/atasker-bench" "$@"

