#!/usr/bin/env bash
# tests/infra/floors.sh [RUNS]: the operating system's floors for the
# benchmark, against the running infra (env.sh up): the median wall time of
# `ssh host true`, `sudo -u U true` and friends over RUNS runs (default 20).
# Prints a table, then one JSON line.  Timing includes bash's fork+exec
# (about a millisecond).  Needs root.
set -euo pipefail

runs=${1:-20}
: "${MG_INFRA_DIR:=/run/mitogen-test}"
# Hold the infra shared while we use it, so a down elsewhere waits (not
# when our caller holds the lock already: test_infra).
if [ "${MG_INFRA_LOCK_HELD:-}" != 1 ]; then
	exec 8>>/run/lock/mitogen-test.lock
	flock -s -w 900 8
fi
# shellcheck disable=SC1091
. "$MG_INFRA_DIR/infra.env"
U=$MG_INFRA_USER U2=$MG_INFRA_USER2 U3=$MG_INFRA_USER3
ssh_=(ssh -F "$MG_INFRA_SSH_CONFIG" -o BatchMode=yes)
as_user=(setpriv --reuid="$U" --regid="$U" --init-groups --reset-env --)

# median NAME CMD...: runs CMD $runs times (stdin from $input), prints the
# median and the minimum in ms and appends to the JSON.
json=
median() {
	local name=$1 t0 t
	local -a ts=()
	shift
	"$@" <<<"${input:-}" >/dev/null 2>&1 || { echo "floors: $name fails: $*" >&2; return 1; }
	for _ in $(seq "$runs"); do
		t0=$EPOCHREALTIME
		"$@" <<<"${input:-}" >/dev/null 2>&1
		t=$EPOCHREALTIME
		ts+=("$(awk -v a="$t0" -v b="$t" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
	done
	read -r med min < <(printf '%s\n' "${ts[@]}" | sort -n |
		awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
		       printf "%.2f %.2f\n", m, v[1] }')
	printf '%-44s %9s ms %9s ms\n' "$name" "$med" "$min"
	json="$json${json:+, }\"$name\": {\"median_ms\": $med, \"min_ms\": $min}"
}

printf '%-44s %12s %12s   (%s runs, load %s)\n' floor median min "$runs" "$(cut -d' ' -f1 /proc/loadavg)"
input='' median "ssh host true (key)" "${ssh_[@]}" "$U@127.0.0.1" true
input='' median "ssh 127.0.0.37 true (key)" "${ssh_[@]}" "$U@127.0.0.37" true
input='' median "root: sudo true" sudo true
input='' median "root: sudo -u $U2 true" sudo -u "$U2" true
input='' median "$U: sudo -n -u $U3 true (NOPASSWD)" "${as_user[@]}" sudo -n -u "$U3" true
input=$MG_INFRA_PASSWORD median "$U: sudo -S -u $U2 true (password)" "${as_user[@]}" sudo -S -p '' -u "$U2" true
input=$MG_INFRA_PASSWORD median "ssh host 'sudo -S -u $U2 true' (password)" "${ssh_[@]}" "$U@127.0.0.1" sudo -S -p "''" -u "$U2" true
input='' median "root: su $U2 -c true" su "$U2" -c true
input='' median "root: doas -u $U2 true" doas -u "$U2" true
input='' median "$U: doas -n -u $U3 true (nopass)" "${as_user[@]}" doas -n -u "$U3" true
echo "{\"runs\": $runs, $json}"
