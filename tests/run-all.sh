#!/usr/bin/env bash
# tests/run-all.sh: the test command.  Installs what is missing (Debian 12,
# as root), configures, builds everything and runs every suite with ctest,
# then prints each suite's line and the total, "N passed, N failed, N
# skipped", last.  Exits non-zero when any suite failed.
#
# Environment (.ci/run uses these for the sanitizer builds):
#   MG_BUILD_DIR     build directory (default: build)
#   MG_CMAKE_ARGS    extra configure arguments, e.g. -DMG_SANITIZE=address
#   MG_TEST_WRAPPER  a command ctest runs under, e.g. "setarch x86_64 -R"
#   MG_CTEST_ARGS    extra ctest arguments, e.g. "-R test_router"
set -euo pipefail
cd "$(dirname "$0")/.."

build=${MG_BUILD_DIR:-build}
bash tests/deps.sh

# Ninja for a new build directory; an existing one keeps its generator.
gen=()
[ -f "$build/CMakeCache.txt" ] || gen=(-G Ninja)
# shellcheck disable=SC2086 # the argument strings are meant to split
cmake -S . -B "$build" "${gen[@]}" ${MG_CMAKE_ARGS:-}
cmake --build "$build"

rc=0
# shellcheck disable=SC2086
(cd "$build" && ${MG_TEST_WRAPPER:-} ctest --output-on-failure ${MG_CTEST_ARGS:-}) || rc=$?
echo "== $build: suites"
bash tests/summary.sh "$build"
exit $rc
