#!/usr/bin/env bash
# Installs the Debian (bookworm) packages atasker-cpp needs to build, test and
# benchmark. Idempotent: when everything is already installed it touches
# nothing and does not even run `apt-get update`.
#
#   bash scripts/install-deps.sh
#
# Works as root; otherwise uses sudo when something is missing.
set -euo pipefail

packages=(
  g++ meson ninja-build pkg-config cmake
  libboost1.81-dev libboost-fiber1.81-dev libboost-context1.81-dev
  libboost-program-options1.81-dev
  libfmt-dev doctest-dev libcereal-dev
  # oneTBB: its scalable allocator holds the library's tasks; the rest of it
  # is a peer in the benchmarks
  libtbb-dev
  # peers for the benchmarks
  libthread-pool-dev
  # benchmark plots and helper scripts (optional for the library itself)
  gnuplot-nox python3
  # the API reference (meson compile -C build docs; optional for the library)
  doxygen
  # the remote lane (meson option 'remote'): the Redis client library, and
  # the server its tests and benchmark start on 127.0.0.1
  libhiredis-dev redis-server
  # peers of the remote lane in the benchmarks, run with /usr/bin/python3
  python3-celery python3-rq
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: these Debian packages are missing: ${missing[*]}" >&2
  echo "install-deps: run this script as root, or install them with:" >&2
  echo "  apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: done"
