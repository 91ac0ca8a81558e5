#!/usr/bin/env bash
# tests/infra/check.sh: proves each piece of the test infrastructure for
# real, after `env.sh up`: key, passphrase and password logins, every
# loopback address (all at once), host key failures, sudo, su and doas as
# the test user, with right and wrong passwords.  Prints one line per check
# and exits non-zero if any failed.  Needs root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
: "${MG_INFRA_DIR:=/run/mitogen-test}"
# Hold the infra shared while we use it, so a down elsewhere waits (not
# when our caller holds the lock already: test_infra).
if [ "${MG_INFRA_LOCK_HELD:-}" != 1 ]; then
	exec 8>>/run/lock/mitogen-test.lock
	flock -s -w 900 8
fi
[ -r "$MG_INFRA_DIR/infra.env" ] || { echo "check: infra is not up (no $MG_INFRA_DIR/infra.env)" >&2; exit 1; }
# shellcheck disable=SC1091
. "$MG_INFRA_DIR/infra.env"

pass=0 fail=0
answer=(/usr/bin/python3 "$here/pty_answer.py")
prompt='password|passphrase'
ssh_=(ssh -F "$MG_INFRA_SSH_CONFIG" -o BatchMode=yes)
# As the test user, with a clean environment (no root HOME, no tty).
as_user=(setpriv --reuid="$MG_INFRA_USER" --regid="$MG_INFRA_USER" --init-groups --reset-env --)

# Seconds since $1 (an $EPOCHREALTIME), to the millisecond.
took() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f s", b - a }'; }

# check NAME EXPECTED-OUTPUT-REGEX CMD...: the command must succeed and
# print a line matching the regex.
check() {
	local name=$1 want=$2 out t0=$EPOCHREALTIME
	shift 2
	if out=$("$@" 2>&1) && grep -qE "$want" <<<"$out"; then
		echo "ok   $name ($(took "$t0"))"
		pass=$((pass + 1))
	else
		echo "FAIL $name: $(head -c 300 <<<"$out" | tr '\r\n' '  ')"
		fail=$((fail + 1))
	fi
}

# refused NAME EXPECTED-MESSAGE-REGEX CMD...: the command must fail and say
# why.
refused() {
	local name=$1 want=$2 out t0=$EPOCHREALTIME
	shift 2
	if ! out=$("$@" 2>&1) && grep -qE "$want" <<<"$out"; then
		echo "ok   $name ($(took "$t0"))"
		pass=$((pass + 1))
	else
		echo "FAIL $name: $(head -c 300 <<<"$out" | tr '\r\n' '  ')"
		fail=$((fail + 1))
	fi
}

U=$MG_INFRA_USER
check "ssh key login" "^$U\$" "${ssh_[@]}" "$U@127.0.0.1" id -un
check "ssh to 127.0.0.37" "^$U\$" "${ssh_[@]}" "$U@127.0.0.37" id -un
check "ssh to localhost" "^$U\$" "${ssh_[@]}" "$U@localhost" id -un
check "ssh -p PORT" "^$U\$" ssh -F "$MG_INFRA_SSH_CONFIG" -p "$MG_INFRA_PORT" -o BatchMode=yes "$U@127.0.0.1" id -un

# Every address at once: $MG_INFRA_ADDRS concurrent logins.
all_addrs() {
	local i pids=() bad=0
	for i in $(seq 1 "$MG_INFRA_ADDRS"); do
		"${ssh_[@]}" "$U@127.0.0.$i" 'sleep 1' &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || bad=$((bad + 1)); done
	echo "$bad of ${#pids[@]} failed"
}
check "$MG_INFRA_ADDRS concurrent logins, one per address" "^0 of $MG_INFRA_ADDRS failed" all_addrs

pw_ssh=(ssh -F "$MG_INFRA_SSH_CONFIG" -o PubkeyAuthentication=no -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1)
check "ssh password login (pty)" "^$U" "${answer[@]}" "$prompt" 20 "${pw_ssh[@]}" "$U@127.0.0.1" id -un <<<"$MG_INFRA_PASSWORD"
refused "ssh wrong password" "Permission denied" "${answer[@]}" "$prompt" 20 "${pw_ssh[@]}" "$U@127.0.0.1" true <<<"wrong"
check "ssh key passphrase (pty)" "^$U" "${answer[@]}" "$prompt" 20 ssh -F "$MG_INFRA_SSH_CONFIG" \
	-o IdentityFile="$MG_INFRA_KEY_PP" -o PasswordAuthentication=no "$U@127.0.0.1" id -un <<<"$MG_INFRA_KEY_PASSPHRASE"
refused "ssh host key changed" "IDENTIFICATION HAS CHANGED" "${ssh_[@]}" \
	-o UserKnownHostsFile="$MG_INFRA_KNOWN_HOSTS_CHANGED" "$U@127.0.0.1" true
refused "ssh host key unknown" "Host key verification failed" "${ssh_[@]}" \
	-o UserKnownHostsFile=/dev/null "$U@127.0.0.1" true
refused "ssh root login refused" "Permission denied" "${ssh_[@]}" root@127.0.0.1 true

# Two hops: as mgtest on the first address, its own ~/.ssh/config on to
# another; and ProxyJump through the first.
# shellcheck disable=SC2016 # expanded by the remote shells
hop2='echo $USER@${SSH_CONNECTION#* * }'
check "ssh then ssh (mgtest's ~/.ssh)" "^$U@127.0.0.2 " "${ssh_[@]}" "$U@127.0.0.1" \
	ssh -o BatchMode=yes 127.0.0.2 "'$hop2'"
check "ssh -J (ProxyJump)" "^$U@127.0.0.3 " "${ssh_[@]}" -J "$U@127.0.0.1" "$U@127.0.0.3" "$hop2"

# sudo: with a password on stdin (-S), on a pty, NOPASSWD, and a wrong one.
U2=$MG_INFRA_USER2 U3=$MG_INFRA_USER3
check "sudo -S -u $U2" "^$U2\$" "${as_user[@]}" sudo -S -p '' -u "$U2" id -un <<<"$MG_INFRA_PASSWORD"
check "sudo -S -u root" "^root\$" "${as_user[@]}" sudo -S -p '' id -un <<<"$MG_INFRA_PASSWORD"
check "sudo -u $U2 (pty prompt)" "^$U2" "${answer[@]}" "$prompt" 20 "${as_user[@]}" sudo -u "$U2" id -un <<<"$MG_INFRA_PASSWORD"
check "sudo -n -u $U3 (NOPASSWD)" "^$U3\$" "${as_user[@]}" sudo -n -u "$U3" id -un
refused "sudo wrong password" "prompted again|incorrect" "${answer[@]}" "$prompt" 20 "${as_user[@]}" sudo -u "$U2" true <<<"wrong"
refused "sudo -n needs a password" "password is required" "${as_user[@]}" sudo -n -u "$U2" true
check "ssh then sudo" "^$U2\$" "${ssh_[@]}" "$U@127.0.0.1" sudo -S -p "''" -u "$U2" id -un <<<"$MG_INFRA_PASSWORD"

# su: the target's password, on a pty.
check "su $U2 (pty)" "^$U2" "${answer[@]}" "$prompt" 20 "${as_user[@]}" su "$U2" -c 'id -un' <<<"$MG_INFRA_PASSWORD2"
refused "su wrong password" "Authentication failure" "${answer[@]}" "$prompt" 20 "${as_user[@]}" su "$U2" -c true <<<"wrong"

# doas: the caller's password, on a pty; nopass to the third user.
check "doas -u $U2 (pty)" "^$U2" "${answer[@]}" "$prompt" 20 "${as_user[@]}" doas -u "$U2" id -un <<<"$MG_INFRA_PASSWORD"
check "doas -u root (pty)" "^root" "${answer[@]}" "$prompt" 20 "${as_user[@]}" doas id -un <<<"$MG_INFRA_PASSWORD"
check "doas -n -u $U3 (nopass)" "^$U3\$" "${as_user[@]}" doas -n -u "$U3" id -un
refused "doas wrong password" "Authentication failed|prompted again" "${answer[@]}" "$prompt" 20 "${as_user[@]}" doas -u "$U2" true <<<"wrong"

# Shells for the first-stage tests.
check "dash" "^ok\$" "$MG_INFRA_DASH" -c 'echo ok'
check "busybox sh, applets alone" "^Linux" env -i PATH="$MG_INFRA_BUSYBOX_BIN" "$MG_INFRA_BUSYBOX_BIN/sh" -c 'uname -s; command -v head mktemp chmod gzip >/dev/null'

echo "check: $pass ok, $fail failed"
[ "$fail" -eq 0 ]
