#!/usr/bin/env bash
# tests/deps.sh: installs the Debian 12 packages the build, the tests and
# the benchmarks need.  Quick when they are all there already (no apt-get
# update), so reruns cost nothing.  Needs root when something is missing.
set -euo pipefail

# --no-install-recommends leaves out libc6-dev (only recommended by gcc),
# so it is named.  python3 is Debian's /usr/bin/python3, which the
# conformance suite and the Mitogen reference benchmark use.
pkgs=(cmake ninja-build gcc libc6-dev clang clang-format libclang-rt-14-dev pkg-config libmsgpack-dev
      python3 python3-msgpack python3-mitogen musl-tools gnuplot-nox zopfli)

# One dpkg-query for all: installed means "install ok installed", not just
# known to dpkg.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${pkgs[@]}" 2>/dev/null |
	awk '/ ok installed$/ { print $1 }') || true
missing=()
for p in "${pkgs[@]}"; do
	grep -qx "$p" <<<"$installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
