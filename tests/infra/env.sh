#!/usr/bin/env bash
# tests/infra/env.sh: the real machinery the ssh/sudo/su/doas tests run
# against, all on loopback: test users with known passwords, ssh keys (one
# with a passphrase), a private sshd on 127.0.0.1..127.0.0.N, sudo rules,
# doas rules.  Needs root and Debian 12 (installs what is missing).
#
#   bash tests/infra/env.sh up|down|status|install
#   . tests/infra/env.sh; infra_up; ...; infra_down
#
# up is idempotent (a second up keeps the running sshd and its port) and
# writes $MG_INFRA_DIR/infra.env last, so its presence means "ready".  down
# removes only what up made, as recorded in $MG_INFRA_STATE/created, and
# leaves nothing running.  See README.md beside this file.

# Settings (environment overrides).  Passwords are test-only and public.
: "${MG_INFRA_DIR:=/run/mitogen-test}"     # keys, configs, sshd (0700)
: "${MG_INFRA_STATE:=/var/lib/mitogen-test}" # what up made (survives /run)
: "${MG_INFRA_PORT:=2222}"                 # first port tried
: "${MG_INFRA_ADDRS:=60}"                  # listen on 127.0.0.1..127.0.0.N

INFRA_GECOS="mitogen-c test user"
INFRA_MARK="# Made by mitogen-c tests/infra/env.sh; removed by 'env.sh down'."
INFRA_USER=mgtest   INFRA_PASSWORD=mgtest-pw-1    # logs in over ssh
INFRA_USER2=mgtest2 INFRA_PASSWORD2=mgtest2-pw-1  # sudo/su/doas target
INFRA_USER3=mgtest3                               # NOPASSWD target, locked
INFRA_KEY_PASSPHRASE=mgtest-key-pp
INFRA_SUDOERS=/etc/sudoers.d/mitogen-test
INFRA_DOAS=/etc/doas.conf
INFRA_SSHD=/usr/sbin/sshd
# Serializes up and down machine-wide (checkouts share users, /etc files and
# ports).  Suites hold it shared while they use the infra (infra.h), so a
# down waits for them.  The one file that stays after down: an empty lock.
INFRA_LOCK=/run/lock/mitogen-test.lock
INFRA_PER_SSHD=16 # OpenSSH's MAX_LISTEN_SOCKS: one sshd binds at most 16
INFRA_PKGS="openssh-server openssh-client sudo opendoas iproute2 passwd
            busybox-static dash procps util-linux python3"

infra__log() { echo "infra: $*" >&2; }
infra__die() { infra__log "error: $*"; exit 1; }

# Records that up made THING (one line in the state file), once.
infra__made() {
	install -d -m 0700 "$MG_INFRA_STATE"
	grep -qxF "$1" "$MG_INFRA_STATE/created" 2>/dev/null ||
		echo "$1" >>"$MG_INFRA_STATE/created"
}

infra__addrs() { seq -f '127.0.0.%g' 1 "$MG_INFRA_ADDRS"; }
infra__ninst() { echo $(((MG_INFRA_ADDRS + INFRA_PER_SSHD - 1) / INFRA_PER_SSHD)); }

# Pids of our sshd listeners, found by the config path in their command
# line (the listener rewrites its title but keeps the original argv in it).
# Builtins only: a fork per process made this take seconds under load.
infra__sshd_pids() {
	local f cmd
	local -a argv
	for f in /proc/[0-9]*/cmdline; do
		mapfile -d '' -t argv 2>/dev/null <"$f" || continue
		cmd="${argv[*]}"
		case $cmd in *"$INFRA_SSHD -f $MG_INFRA_DIR/sshd_config."*)
			f=${f#/proc/}; echo "${f%/cmdline}" ;;
		esac
	done
}

# Prints PID's descendants, deepest first.
infra__tree() {
	local c
	for c in $(pgrep -P "$1" || true); do
		infra__tree "$c"
		echo "$c"
	done
}

# Sends TERM to the given pids, then KILL to whatever is left after 3 s.
infra__kill() {
	local i p left
	[ $# -gt 0 ] || return 0
	kill -TERM "$@" 2>/dev/null || true
	for i in $(seq 30); do
		left=
		for p in "$@"; do [ -d "/proc/$p" ] && left="$left $p"; done
		[ -z "$left" ] && return 0
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $left 2>/dev/null || true
}

# Runs "$@" holding the lock exclusively, unless the caller already holds
# it (MG_INFRA_LOCK_HELD=1, as test_infra does for a whole cycle).
infra__locked() {
	if [ "${MG_INFRA_LOCK_HELD:-}" = 1 ]; then
		"$@"
		return
	fi
	mkdir -p "$(dirname $INFRA_LOCK)"
	exec 9>>$INFRA_LOCK
	if ! flock -x -n 9; then
		infra__log "waiting for $INFRA_LOCK (held by a running test?)"
		flock -x -w 900 9 || infra__die "timed out waiting for $INFRA_LOCK"
	fi
	"$@"
	exec 9>&-
}

# Installs the Debian packages that are missing, without starting services.
infra_install() (
	set -euo pipefail
	local p missing=
	for p in $INFRA_PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	infra__log "installing:$missing"
	# A fresh install of openssh-server would start the system's sshd on
	# port 22; policy-rc.d's 101 ("action forbidden") prevents that.
	local policy=/usr/sbin/policy-rc.d ours=
	if [ ! -e $policy ]; then
		printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy && ours=1
		trap 'rm -f '$policy EXIT
	fi
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >/dev/null ||
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing >/dev/null; }
	[ -n "$ours" ] && rm -f $policy
	return 0
)

# Refuses, before changing anything, to take over what someone else made.
infra__preflight() {
	local u gecos
	[ "$(id -u)" = 0 ] || infra__die "needs root"
	for u in $INFRA_USER $INFRA_USER2 $INFRA_USER3; do
		gecos=$(getent passwd "$u" | cut -d: -f5) || continue
		[ "$gecos" = "$INFRA_GECOS" ] ||
			infra__die "user $u exists and was not made by this script (GECOS '$gecos')"
	done
	if [ -e $INFRA_SUDOERS ] && ! grep -qxF "$INFRA_MARK" $INFRA_SUDOERS; then
		infra__die "$INFRA_SUDOERS exists and was not made by this script"
	fi
}

# Creates user NAME (or adopts our own leftover) and sets its password.
infra__user() {
	local name=$1 password=$2 shell=$3
	if ! getent passwd "$name" >/dev/null; then
		useradd -m -d "/home/$name" -s "$shell" -c "$INFRA_GECOS" -U "$name"
	fi
	infra__made "user $name"
	if [ -n "$password" ]; then
		echo "$name:$password" | chpasswd
	fi
}

# Writes one sshd config for instance I, binding the given addresses.
infra__sshd_config() {
	local i=$1 port=$2 a
	shift 2
	{
		echo "$INFRA_MARK"
		for a in "$@"; do echo "ListenAddress $a:$port"; done
		cat <<-EOF
			HostKey $MG_INFRA_DIR/ssh_host_ed25519_key
			PidFile $MG_INFRA_DIR/sshd.$i.pid
			AllowUsers $INFRA_USER
			PermitRootLogin no
			PubkeyAuthentication yes
			PasswordAuthentication yes
			KbdInteractiveAuthentication no
			UsePAM yes
			UseDNS no
			MaxStartups 200:30:300
			MaxSessions 200
			MaxAuthTries 6
			LoginGraceTime 30
			PrintMotd no
			PrintLastLog no
			X11Forwarding no
			AllowTcpForwarding yes
			AcceptEnv LANG LC_* LANGUAGE
			Subsystem sftp /usr/lib/openssh/sftp-server
		EOF
	} >"$MG_INFRA_DIR/sshd_config.$i"
}

# True when every sshd instance of ours is running on PORT.
infra__sshd_up() {
	local port=$1 n
	[ -n "$port" ] || return 1
	n=$(infra__sshd_pids | wc -l)
	[ "$n" -eq "$(infra__ninst)" ] || return 1
	n=$(ss -Hltn "sport = :$port" | grep -c '127\.0\.0\.' || true)
	[ "$n" -eq "$MG_INFRA_ADDRS" ]
}

# Picks the first port from MG_INFRA_PORT on which nothing listens.
infra__free_port() {
	local p
	for p in $(seq "$MG_INFRA_PORT" $((MG_INFRA_PORT + 200))); do
		if [ -z "$(ss -Hltn "sport = :$p")" ]; then echo "$p"; return 0; fi
	done
	infra__die "no free port in $MG_INFRA_PORT..$((MG_INFRA_PORT + 200))"
}

# Starts the sshd instances (each binding up to 16 addresses) on PORT.
infra__sshd_start() {
	local port=$1 i=0 n
	local -a addrs
	mapfile -t addrs < <(infra__addrs)
	# Debian's privilege-separation directory (systemd normally makes it).
	if [ ! -d /run/sshd ]; then
		mkdir -m 0755 /run/sshd
		infra__made "dir /run/sshd"
	fi
	while [ $((i * INFRA_PER_SSHD)) -lt "$MG_INFRA_ADDRS" ]; do
		infra__sshd_config $i "$port" "${addrs[@]:$((i * INFRA_PER_SSHD)):$INFRA_PER_SSHD}"
		$INFRA_SSHD -t -f "$MG_INFRA_DIR/sshd_config.$i"
		# sshd daemonizes (setsid, stdio on /dev/null, other fds closed),
		# so it outlives the caller's process group and holds none of its
		# pipes.  -E keeps its log for debugging failed logins.
		# 9>&-: the daemon must not hold the lock.
		$INFRA_SSHD -f "$MG_INFRA_DIR/sshd_config.$i" -E "$MG_INFRA_DIR/sshd.$i.log" 9>&-
		i=$((i + 1))
	done
	for n in $(seq 100); do
		infra__sshd_up "$port" && return 0
		sleep 0.05
	done
	tail -n 5 "$MG_INFRA_DIR"/sshd.*.log >&2 || true
	infra__die "sshd did not come up on $port for all $MG_INFRA_ADDRS addresses"
}

# Client side: known_hosts for every address (the right key and, for host
# key tests, a changed one), and an ssh_config for `ssh -F`.
infra__client_files() {
	local port=$1 dir=$2 id=$3 kh=$4 a hk bad
	hk=$(cut -d' ' -f1,2 "$MG_INFRA_DIR/ssh_host_ed25519_key.pub")
	bad=$(cut -d' ' -f1,2 "$MG_INFRA_DIR/other_host_ed25519_key.pub")
	: >"$dir/known_hosts.tmp"
	: >"$dir/known_hosts_changed.tmp"
	for a in $(infra__addrs) localhost; do
		echo "[$a]:$port $hk" >>"$dir/known_hosts.tmp"
		echo "[$a]:$port $bad" >>"$dir/known_hosts_changed.tmp"
	done
	mv "$dir/known_hosts.tmp" "$dir/known_hosts"
	mv "$dir/known_hosts_changed.tmp" "$dir/known_hosts_changed"
	cat >"$dir/$5" <<-EOF
		$INFRA_MARK
		Host 127.* localhost
		  Port $port
		  IdentityFile $id
		  IdentitiesOnly yes
		  IdentityAgent none
		  UserKnownHostsFile $kh
		  GlobalKnownHostsFile /dev/null
		  StrictHostKeyChecking yes
		  CheckHostIP no
		  UpdateHostKeys no
		  GSSAPIAuthentication no
		  PreferredAuthentications publickey,password
		  ControlMaster no
		  ControlPath none
		  LogLevel ERROR
	EOF
}

# Writes and validates the sudo rules.
infra__sudoers() {
	local tmp
	tmp=$(mktemp /etc/sudoers.d/.mitogen-test.XXXXXX)
	cat >"$tmp" <<-EOF
		$INFRA_MARK
		# No cached credentials, no lecture: every sudo asks, the same way.
		Defaults:$INFRA_USER !requiretty, lecture=never, timestamp_timeout=0
		Defaults:$INFRA_USER2 !requiretty, lecture=never, timestamp_timeout=0
		$INFRA_USER ALL=($INFRA_USER2, root) ALL
		$INFRA_USER ALL=($INFRA_USER3) NOPASSWD: ALL
	EOF
	chmod 0440 "$tmp"
	visudo -cqf "$tmp" || { rm -f "$tmp"; infra__die "sudoers rules do not validate"; }
	mv "$tmp" $INFRA_SUDOERS
	infra__made sudoers
	visudo -cq || infra__die "visudo -c fails with our rules in place"
}

# Writes the doas rules, keeping a previous /etc/doas.conf's rules in front
# (doas applies the last match) and its file to restore on down.
infra__doas() {
	local backup=$MG_INFRA_STATE/doas.conf.orig tmp
	if [ -e $INFRA_DOAS ] && ! grep -qxF "$INFRA_MARK" $INFRA_DOAS && [ ! -e "$backup" ]; then
		cp -p $INFRA_DOAS "$backup"
	fi
	tmp=$(mktemp /etc/.doas.conf.XXXXXX)
	{
		echo "$INFRA_MARK"
		if [ -e "$backup" ]; then
			echo "# Rules of the previous $INFRA_DOAS, restored by down:"
			cat "$backup"
			echo
		fi
		cat <<-EOF
			permit $INFRA_USER as $INFRA_USER2
			permit $INFRA_USER as root
			permit nopass $INFRA_USER as $INFRA_USER3
			permit nopass keepenv root
		EOF
	} >"$tmp"
	chmod 0400 "$tmp"
	doas -C "$tmp" || { rm -f "$tmp"; infra__die "doas rules do not validate"; }
	mv "$tmp" $INFRA_DOAS
	infra__made doas
}

# Writes infra.env: the settings tests read (KEY=VALUE, no quoting needed).
infra__env() {
	local port=$1 d=$MG_INFRA_DIR
	cat >"$d/infra.env.tmp" <<-EOF
		MG_INFRA_VERSION=$(infra__version)
		MG_INFRA_DIR=$d
		MG_INFRA_PORT=$port
		MG_INFRA_ADDRS=$MG_INFRA_ADDRS
		MG_INFRA_SSH_CONFIG=$d/ssh_config
		MG_INFRA_KNOWN_HOSTS=$d/known_hosts
		MG_INFRA_KNOWN_HOSTS_CHANGED=$d/known_hosts_changed
		MG_INFRA_KEY=$d/id_ed25519
		MG_INFRA_KEY_PP=$d/id_ed25519_pp
		MG_INFRA_KEY_PASSPHRASE=$INFRA_KEY_PASSPHRASE
		MG_INFRA_HOST_KEY_PUB=$d/ssh_host_ed25519_key.pub
		MG_INFRA_USER=$INFRA_USER
		MG_INFRA_PASSWORD=$INFRA_PASSWORD
		MG_INFRA_USER2=$INFRA_USER2
		MG_INFRA_PASSWORD2=$INFRA_PASSWORD2
		MG_INFRA_USER3=$INFRA_USER3
		MG_INFRA_BUSYBOX=$(command -v busybox)
		MG_INFRA_BUSYBOX_BIN=$d/busybox-bin
		MG_INFRA_DASH=$(command -v dash)
	EOF
	mv "$d/infra.env.tmp" "$d/infra.env"
}

# This script's hash: an up by a changed script redoes everything.
infra__version() { sha256sum "${BASH_SOURCE[0]}" | cut -c1-16; }

# True when a complete infra made by this same script is running.
infra__ready() {
	local env=$MG_INFRA_DIR/infra.env u
	[ -e "$env" ] || return 1
	grep -qxF "MG_INFRA_VERSION=$(infra__version)" "$env" || return 1
	infra__sshd_up "$(sed -n 's/^MG_INFRA_PORT=//p' "$env")" || return 1
	for u in $INFRA_USER $INFRA_USER2 $INFRA_USER3; do
		getent passwd "$u" >/dev/null || return 1
	done
	grep -qxF "$INFRA_MARK" $INFRA_SUDOERS 2>/dev/null &&
		grep -qxF "$INFRA_MARK" $INFRA_DOAS 2>/dev/null
}

infra__up() {
	local d=$MG_INFRA_DIR port='' h u
	infra__preflight
	if infra__ready; then
		infra__log "up already: $d/infra.env"
		return 0
	fi
	rm -f "$d/infra.env" # not ready until written again
	infra_install
	mkdir -p "$d"
	chmod 0700 "$d"
	infra__made "dir $d"

	infra__user $INFRA_USER $INFRA_PASSWORD /bin/bash
	infra__user $INFRA_USER2 $INFRA_PASSWORD2 /bin/sh
	infra__user $INFRA_USER3 "" /bin/bash

	# Keys: client (plain and with a passphrase), host, and a second host
	# key that stands for "the host key changed".
	[ -e "$d/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C mgtest -f "$d/id_ed25519"
	[ -e "$d/id_ed25519_pp" ] ||
		ssh-keygen -q -t ed25519 -N "$INFRA_KEY_PASSPHRASE" -C mgtest-pp -f "$d/id_ed25519_pp"
	[ -e "$d/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C host -f "$d/ssh_host_ed25519_key"
	[ -e "$d/other_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C other -f "$d/other_host_ed25519_key"

	# The same key and client setup in ~mgtest, so a context running as
	# mgtest can ssh on to another address (two hops) without our files.
	h=/home/$INFRA_USER/.ssh
	install -d -m 0700 -o $INFRA_USER -g $INFRA_USER "$h"
	cat "$d/id_ed25519.pub" "$d/id_ed25519_pp.pub" >"$h/authorized_keys"
	install -m 0600 "$d/id_ed25519" "$h/id_ed25519"
	install -m 0644 "$d/id_ed25519.pub" "$h/id_ed25519.pub"

	# Reuse a running sshd (and its port) started by this same script;
	# otherwise start afresh.
	grep -qxF "MG_INFRA_VERSION=$(infra__version)" "$d/infra.env" 2>/dev/null &&
		port=$(sed -n 's/^MG_INFRA_PORT=//p' "$d/infra.env")
	if ! infra__sshd_up "$port"; then
		infra__stop_sshd
		port=$(infra__free_port)
		infra__sshd_start "$port"
	fi

	infra__client_files "$port" "$d" "$d/id_ed25519" "$d/known_hosts" ssh_config
	# shellcheck disable=SC2088 # a literal ~ for ssh to expand
	infra__client_files "$port" "$h" "~/.ssh/id_ed25519" "~/.ssh/known_hosts" config
	chown -R $INFRA_USER:$INFRA_USER "$h"
	# The key sshd serves must be the one in known_hosts.
	ssh-keyscan -p "$port" -t ed25519 127.0.0.1 2>/dev/null | grep -qF \
		"$(cut -d' ' -f2 "$d/ssh_host_ed25519_key.pub")" ||
		infra__die "ssh-keyscan does not see our host key on 127.0.0.1:$port"

	infra__sudoers
	infra__doas
	[ -e /etc/pam.d/su ] || infra__die "/etc/pam.d/su is missing"

	# busybox's applets alone, for first-stage tests with PATH=<this>.
	if [ ! -e "$d/busybox-bin/sh" ]; then
		mkdir -p "$d/busybox-bin"
		busybox --install -s "$d/busybox-bin"
	fi

	infra__env "$port"
	infra__log "up: sshd on 127.0.0.1..127.0.0.$MG_INFRA_ADDRS port $port; env in $d/infra.env"
}

# up, undoing itself if it fails (so nothing half-made is left behind);
# run holding the lock, so the undo never races another up.
infra__up_or_undo() {
	# shellcheck disable=SC2154
	trap 'r=$?; if [ $r -ne 0 ]; then infra__log "up failed; undoing"; infra__down || true; fi' EXIT
	infra__up
}

infra_up() (
	set -euo pipefail
	# Already up: no lock needed (a caller holding it shared must not block).
	if infra__ready; then
		infra__log "up already: $MG_INFRA_DIR/infra.env"
		return 0
	fi
	infra__locked infra__up_or_undo
)

# Stops our sshd listeners and every process they started.
infra__stop_sshd() {
	local p all=
	for p in $(infra__sshd_pids); do
		all="$all $(infra__tree "$p" | tr '\n' ' ') $p"
	done
	# shellcheck disable=SC2086
	infra__kill $all
	rm -f "$MG_INFRA_DIR"/sshd.*.pid
}

infra__down() {
	local what name pids err="" backup=$MG_INFRA_STATE/doas.conf.orig
	[ "$(id -u)" = 0 ] || infra__die "needs root"
	infra__stop_sshd
	[ -f "$MG_INFRA_STATE/created" ] || { rm -rf "$MG_INFRA_DIR"; return 0; }
	# Newest first, so the runtime dir goes last and an interrupted down
	# can simply be run again (the record is removed only at the end).
	tac "$MG_INFRA_STATE/created" | while read -r what name; do
		case $what in
		user)
			# Whatever still runs as our users was started by the tests:
			# kill it (again, if more appeared) until userdel succeeds.
			for _ in 1 2 3 4 5; do
				getent passwd "$name" >/dev/null || break
				pids=$(pgrep -u "$name" | tr '\n' ' ' || true)
				# shellcheck disable=SC2086
				infra__kill $pids
				err=$(userdel -r "$name" 2>&1) || sleep 0.2
			done
			! getent passwd "$name" >/dev/null || infra__die "userdel $name: $err"
			! getent group "$name" >/dev/null || groupdel "$name"
			rm -rf "/run/sudo/ts/$name" "/var/lib/sudo/lectured/$name"
			;;
		sudoers) rm -f $INFRA_SUDOERS ;;
		doas)
			if [ -e "$backup" ]; then mv "$backup" $INFRA_DOAS; else rm -f $INFRA_DOAS; fi
			;;
		dir) rm -rf "$name" ;;
		esac
	done
	rm -f "$MG_INFRA_STATE/created"
	rmdir "$MG_INFRA_STATE" 2>/dev/null || true
	rm -rf "$MG_INFRA_DIR"
}

infra_down() (
	set -euo pipefail
	infra__locked infra__down
	infra__log "down"
)

# Prints what is up; returns 0 only when everything is.
infra_status() (
	set -euo pipefail
	local port='' ok=0 u
	[ -e "$MG_INFRA_DIR/infra.env" ] && port=$(sed -n 's/^MG_INFRA_PORT=//p' "$MG_INFRA_DIR/infra.env")
	if [ -e "$MG_INFRA_DIR/infra.env" ]; then
		echo "runtime dir: $MG_INFRA_DIR (ready)"
	else
		ok=1
		echo "runtime dir: $MG_INFRA_DIR absent or not ready"
	fi
	echo "sshd: $(infra__sshd_pids | wc -l) of $(infra__ninst) instances, port ${port:-none}"
	infra__sshd_up "$port" || ok=1
	for u in $INFRA_USER $INFRA_USER2 $INFRA_USER3; do
		getent passwd "$u" >/dev/null && echo "user $u: present" || { ok=1; echo "user $u: absent"; }
	done
	[ -e $INFRA_SUDOERS ] && echo "sudoers: $INFRA_SUDOERS" || { ok=1; echo "sudoers: absent"; }
	grep -qxF "$INFRA_MARK" $INFRA_DOAS 2>/dev/null && echo "doas: $INFRA_DOAS" || { ok=1; echo "doas: not ours"; }
	return $ok
)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	case ${1:-} in
	up) infra_up ;;
	down) infra_down ;;
	status) infra_status ;;
	install) infra_install ;;
	*) echo "usage: $0 up|down|status|install" >&2; exit 2 ;;
	esac
fi
