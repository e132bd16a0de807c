#!/usr/bin/env bash
# Builds atasker-cpp into build/ and runs the whole test suite (unit tests and
# the packaging test). The output ends with meson's summary of passed and
# failed tests; the exit status is non-zero if anything failed.
#
#   bash scripts/run-tests.sh                 # everything
#   bash scripts/run-tests.sh --suite packaging   # extra args go to `meson test`
#
# ATASKER_WERROR=1 builds with -Dwerror=true; ATASKER_WERROR=0
# turns it off again; unset leaves an existing build/ as it is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

builddir=build
werror=
case "${ATASKER_WERROR:-}" in
  '') ;;
  1 | true | yes) werror=true ;;
  0 | false | no) werror=false ;;
  *) echo "run-tests: ATASKER_WERROR must be 1 or 0, not '$ATASKER_WERROR'" >&2; exit 2 ;;
esac

# The current value of a meson option in a configured build directory.
current_option() {
  meson introspect "$builddir" --buildoptions |
    python3 -c 'import json, sys; print(next((str(o["value"]).lower() for o in json.load(sys.stdin) if o["name"] == sys.argv[1]), ""))' "$1"
}

if [[ ! -f "$builddir/meson-private/coredata.dat" ]]; then
  echo "run-tests: configuring $builddir"
  meson setup "$builddir" ${werror:+"-Dwerror=$werror"}
elif [[ -n "$werror" && "$(current_option werror)" != "$werror" ]]; then
  echo "run-tests: setting werror=$werror in $builddir"
  meson configure "$builddir" "-Dwerror=$werror"
fi

meson compile -C "$builddir"
meson test -C "$builddir" --print-errorlogs "$@"
