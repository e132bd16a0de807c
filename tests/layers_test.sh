#!/usr/bin/env bash
# scripts/check-layers.sh on trees made here: it passes a tree that keeps the
# layers and names each include that breaks them.
set -euo pipefail
check=$1
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/sync" "$tree/core" "$tree/process" "$tree/services"
printf '#pragma once\n' > "$tree/sync/futex.hpp"
printf '#pragma once\n#include "sync/futex.hpp"\n' > "$tree/core/lane.hpp"
printf '#include "core/lane.hpp"\n#include <vector>\n#include <atasker/log.hpp>\n' > "$tree/process/process_lane.cpp"
printf '#include <atasker/supervisor.hpp>\n' > "$tree/services/locker.cpp"

fail() { echo "layers_test: $*" >&2; exit 1; }

out=$(bash "$check" "$tree") || fail "a tree that keeps its layers was refused: $out"

# A lower layer that includes a higher one, an include that names no layer,
# a service that includes a private header, a file outside any layer.
printf '#pragma once\n#include "process/process_lane.hpp"\n#include "lane.hpp"\n' > "$tree/core/lane.hpp"
printf '#include "core/lane.hpp"\n' > "$tree/services/locker.cpp"
printf '\n' > "$tree/stray.cpp"
if out=$(bash "$check" "$tree"); then fail "a tree that breaks its layers passed: $out"; fi
for want in 'src/core/lane.hpp:2: the core layer includes "process/process_lane.hpp" from the higher process layer' \
            'src/core/lane.hpp:3: includes "lane.hpp", which names no layer' \
            'src/services/locker.cpp:1: services use the public API only, not "core/lane.hpp"' \
            'src/stray.cpp: not in a layer folder'; do
    grep -qF "$want" <<<"$out" || fail "missing from the report: $want (it said: $out)"
done
echo "layers_test: the check passes a layered tree and reports each of 4 breaks"
