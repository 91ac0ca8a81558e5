#!/usr/bin/env bash
# tests/format_check.sh: the tree follows the committed .clang-format.
# Prints the files that do not and fails; the last line is the runner's
# "N passed, N failed" form.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
	echo "clang-format is missing (tests/deps.sh installs it)"
	echo "0 passed, 1 failed"
	exit 1
fi
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find src include tests bench agent examples fuzz -name '*.[ch]')
bad=$(clang-format --dry-run "${files[@]}" 2>&1 | grep -o '^[^:]*:[0-9]*' | cut -d: -f1 | sort -u)
if [ -n "$bad" ]; then
	echo "not formatted (run clang-format -i on them):"
	echo "$bad" | sed 's/^/    /'
	echo "0 passed, 1 failed"
	exit 1
fi
echo "${#files[@]} files formatted"
echo "1 passed, 0 failed"
