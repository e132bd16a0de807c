#!/usr/bin/env bash
# Checks that src/ keeps its layers: every file lives in a layer folder, and
# includes private headers only from its own layer or a lower one. Services
# use the public API only. Run from anywhere; exits 1 after reporting every
# include that breaks the rule.
#
#   sync < core < thread < process < fiber < remote < services
#
#   bash scripts/check-layers.sh            # the project's src/
#   bash scripts/check-layers.sh DIR        # another tree laid out the same way (tests/layers_test.sh)
set -euo pipefail
cd "${1:-$(dirname "$0")/../src}"

layers=(sync core thread process fiber remote services)
rank() {
    local i
    for i in "${!layers[@]}"; do
        if [[ ${layers[$i]} == "$1" ]]; then echo "$i"; return; fi
    done
    echo -1
}

status=0
while IFS= read -r file; do
    layer=${file%%/*}
    if [[ $file != */* || $(rank "$layer") -lt 0 ]]; then
        echo "src/$file: not in a layer folder (${layers[*]})"
        status=1
        continue
    fi
    own=$(rank "$layer")
    while IFS=: read -r line target; do
        dep=${target%%/*}
        dep_rank=$(rank "$dep")
        if [[ $target != */* || $dep_rank -lt 0 ]]; then
            echo "src/$file:$line: includes \"$target\", which names no layer; write \"<layer>/$target\""
            status=1
        elif [[ $layer == services ]]; then
            echo "src/$file:$line: services use the public API only, not \"$target\""
            status=1
        elif ((dep_rank > own)); then
            echo "src/$file:$line: the $layer layer includes \"$target\" from the higher $dep layer"
            status=1
        fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" |
             sed -E 's/^([0-9]+):[^"]*"([^"]+)".*/\1:\2/')
done < <(find . -type f \( -name '*.cpp' -o -name '*.hpp' \) | sed 's#^\./##' | sort)

if ((status == 0)); then echo "layers: every include in src/ goes to its own layer or a lower one"; fi
exit "$status"
