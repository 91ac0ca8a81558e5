#!/usr/bin/env bash
# tests/summary.sh BUILD_DIR: reads the last ctest run's full log and
# prints each suite's "N passed, N failed, N skipped" line, then their sum
# as the last line.  A test that failed without printing such a line
# (crashed, timed out, not built) counts as one failure, as does a suite
# that failed although its line says 0 failed; one that passed without a
# line (a script test) counts as one pass.
set -euo pipefail

log=${1:?usage: summary.sh BUILD_DIR}/Testing/Temporary/LastTest.log
[ -r "$log" ] || { echo "summary: no ctest log at $log" >&2; exit 1; }

awk '
	# A block per test: "3/20 Test: name" ... output ... "Test Passed."
	/^[0-9]+\/[0-9]+ Test: / { name = $3; line = ""; next }
	/^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$/ { line = $0; next }
	/^Test (Passed|Failed)|^Test not available|^Unable to find executable/ {
		if (name == "")
			next
		ok = ($0 ~ /^Test Passed/)
		if (line != "") {
			n = split(line, f, /[ ,]+/)
			p = f[1]; fl = f[3]; s = (n >= 5) ? f[5] : 0
			# Failed after all its cases passed (a sanitizer report at
			# exit, say): still a failure.
			if (!ok && fl == 0) {
				fl = 1
				line = line " (+1: the suite itself failed)"
			}
		} else {
			p = ok; fl = !ok; s = 0
			line = ok ? "(no summary line)" : "(no summary line: crashed, timed out or missing)"
		}
		printf "  %-28s %s%s\n", name, line, ok ? "" : "  <- FAILED"
		tp += p; tf += fl; ts += s; name = ""
	}
	END { printf "%d passed, %d failed, %d skipped\n", tp, tf, ts }
' "$log"
