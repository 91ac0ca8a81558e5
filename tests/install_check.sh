#!/usr/bin/env bash
# tests/install_check.sh BUILD_DIR CC [SANITIZE]: installs the build into a
# temporary prefix with `cmake --install`, then builds a tiny program
# against the installed header through pkg-config, linked once with the
# static and once with the shared library, and runs both (a router made
# and freed).  Removes everything it made.  Prints runner-style lines.
set -euo pipefail

build=${1:?usage: install_check.sh BUILD_DIR CC [SANITIZE]} cc=${2:?} san=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
pass=0 fail=0

ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; shift; printf '    %s\n' "$@"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed, 0 skipped"; [ "$fail" -eq 0 ]; exit; }

# A sanitized library needs its runtime in the program too.
# shellcheck disable=SC2054 # one flag: the comma is the compiler's
case $san in
address) sanflags=(-fsanitize=address,undefined) ;;
thread) sanflags=(-fsanitize=thread) ;;
*) sanflags=() ;;
esac

if cmake --install "$build" --prefix "$prefix" >"$tmp/log" 2>&1; then
	ok install
else
	bad install "$(tail -n 20 "$tmp/log")"
	finish
fi

# Where GNUInstallDirs put it depends on the configured prefix (lib, or
# lib/x86_64-linux-gnu under /usr): find the .pc rather than guess.
pc=$(find "$prefix" -name mitogen.pc -print -quit)
if [ -z "$pc" ]; then
	bad pkgconfig_file "no mitogen.pc under $prefix"
	finish
fi
export PKG_CONFIG_PATH=${pc%/*}
libdir=$(pkg-config --variable=libdir mitogen)

# The .pc must describe this prefix, or the program below would be built
# against whatever sits in the configure-time prefix (/usr/local) instead.
if [ "$(realpath -m "$(pkg-config --variable=prefix mitogen)")" = "$(realpath -m "$prefix")" ]; then
	ok pkgconfig_prefix
else
	bad pkgconfig_prefix "mitogen.pc says prefix=$(pkg-config --variable=prefix mitogen)," \
		"installed with --prefix $prefix: the .pc is configured at configure time, not" \
		"at install time"
	finish
fi

cat >"$tmp/prog.c" <<'PROG'
#include <mitogen.h>
#include <stdio.h>

int main(void)
{
	struct mg_router_opts o;
	struct mg_router *r;
	int rc;

	mg_router_opts_init(&o);
	o.name = "install-check";
	if ((rc = mg_router_new(&o, &r)) != 0) {
		fprintf(stderr, "mg_router_new: %s\n", mg_strerror(rc));
		return 1;
	}
	printf("router %u \"%s\", libmitogen %s\n", mg_router_id(r), mg_router_name(r),
	       MG_VERSION_STRING);
	mg_router_free(r);
	return 0;
}
PROG

# try_prog NAME LIBS...: compiles prog.c strictly against the installed
# header, links with LIBS, runs it.
try_prog() {
	local name=$1 out
	shift
	# shellcheck disable=SC2046 # pkg-config output is a list of words
	if ! out=$("$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror "${sanflags[@]}" \
		$(pkg-config --cflags mitogen) -o "$tmp/$name" "$tmp/prog.c" "$@" 2>&1); then
		bad "$name" "compile/link failed:" "$out"
	elif ! out=$(LD_LIBRARY_PATH=$libdir "$tmp/$name" 2>&1) ||
		! grep -q '^router 0 "install-check"' <<<"$out"; then
		bad "$name" "run failed:" "$out"
	else
		ok "$name"
		return 0
	fi
	return 1
}

# Static: -l:libmitogen.a names the archive, so the shared library beside
# it cannot be picked instead; the program must not need libmitogen.so.
# shellcheck disable=SC2046
if try_prog static $(pkg-config --static --libs mitogen | sed 's/-lmitogen\b/-l:libmitogen.a/'); then
	if readelf -d "$tmp/static" | grep -q 'NEEDED.*libmitogen'; then
		bad static_is_static "$(readelf -d "$tmp/static" | grep NEEDED)"
	fi
fi
# The command-line tool and its man page.
if [ -x "$prefix/bin/mitogen" ] &&
	out=$("$prefix/bin/mitogen" run --local 1 -- echo installed 2>&1) &&
	[ "$out" = "local: installed" ]; then
	ok cli_tool
else
	bad cli_tool "$prefix/bin/mitogen run --local 1 -- echo installed:" "${out:-missing}"
fi
if [ -n "$(find "$prefix" -path '*/man1/mitogen.1' -print -quit)" ]; then
	ok cli_man_page
else
	bad cli_man_page "no man1/mitogen.1 under $prefix"
fi
# Shared: plain pkg-config --libs, as most users build; it must find the
# installed SONAME.
# shellcheck disable=SC2046
if try_prog shared $(pkg-config --libs mitogen); then
	readelf -d "$tmp/shared" | grep -q 'NEEDED.*libmitogen\.so\.0' ||
		bad shared_soname "$(readelf -d "$tmp/shared" | grep NEEDED)"
fi
finish
