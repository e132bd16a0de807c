#!/bin/sh
# Usage: expect_compile_error.sh SOURCE CASE EXPECTED... -- COMPILER [ARGS...]
# Compiles SOURCE with -DATASKER_CASE=0 (must succeed), then with
# -DATASKER_CASE=CASE (must fail), and checks that the compiler's output holds
# every EXPECTED string.
set -u
source=$1 case=$2
shift 2
expected_file=$(mktemp)
out=$(mktemp)
trap 'rm -f "$expected_file" "$out"' EXIT
while [ "$1" != "--" ]; do printf '%s\n' "$1" >>"$expected_file"; shift; done
shift
if ! "$@" -fsyntax-only -DATASKER_CASE=0 "$source" >"$out" 2>&1; then
    echo "the control program (ATASKER_CASE=0) does not compile; the test's command line is broken:"
    cat "$out"
    exit 1
fi
if "$@" -fsyntax-only -DATASKER_CASE="$case" "$source" >"$out" 2>&1; then
    echo "case $case of $source compiled, but it must fail: the misuse it holds was accepted"
    exit 1
fi
status=0
while IFS= read -r want; do
    if ! grep -qF -- "$want" "$out"; then
        echo "case $case: the compiler output lacks: $want"
        status=1
    fi
done <"$expected_file"
if [ $status -ne 0 ]; then
    echo "--- compiler output ---"
    cat "$out"
fi
exit $status
