#!/usr/bin/env bash
# The library's main job: builds atasker-cpp (release) into build/ and runs
# the benchmark suite, build/bench/atasker-bench, passing on any arguments.
# Until that program exists it runs the demo, build/examples/demo.
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

if [[ -x "$builddir/bench/atasker-bench" ]]; then
  exec "$builddir/bench/atasker-bench" "$@"
elif [[ -x "$builddir/examples/demo" ]]; then
  echo "run-benchmarks: no benchmark runner in this build yet; running the demo"
  exec "$builddir/examples/demo" "$@"
else
  echo "run-benchmarks: neither $builddir/bench/atasker-bench nor $builddir/examples/demo was built" >&2
  echo "run-benchmarks: check that the 'benchmarks' and 'examples' options are on: meson configure $builddir" >&2
  exit 1
fi
