/*
 * services.h: the agent's built-in exported functions.
 *
 * Services are written against include/mitogen.h alone, as any user's
 * exported functions would be; this header only lets the test suite reach
 * the pieces of their logic that need no call around them.
 *
 * Built-in (builtin.c):
 *   mg.ping()          -> true
 *   mg.echo(v)         -> v, the one argument's encoded bytes unchanged
 *   mg.sysinfo()       -> {pid, uid, user, hostname, os, arch, kernel, wsl}
 *
 * For tests of the call machinery (testsupport.c):
 *   mg.sleep(ms)       -> true after sleeping ms milliseconds
 *   mg.crash()         raises SIGSEGV on the dispatcher thread
 *   mg.fail(type, msg) fails with that error type and message
 *   mg.stream(h, n)    sends the integers 0..n-1 through Sender h, closes
 *                      it, and returns n
 */
#ifndef MG_SERVICES_H
#define MG_SERVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mitogen.h"

/* What mg.sysinfo reports; every string is NUL-terminated. */
struct mg__sysinfo {
	int64_t pid;
	int64_t uid;
	char user[256]; /* the passwd name, or the uid in decimal */
	char hostname[256];
	char os[128];     /* uname sysname: "Linux" */
	char arch[128];   /* uname machine: "x86_64" */
	char kernel[128]; /* uname release */
	bool wsl;
};

/* Fills si for this process.  0, or -errno when uname() fails.
 * Thread: any. */
int mg__sysinfo_collect(struct mg__sysinfo *si);

/* True when the texts of /proc/sys/kernel/osrelease and /proc/version or
 * the value of WSL_DISTRO_NAME say we run under Windows Subsystem for
 * Linux.  Any argument may be NULL (file missing, variable unset).
 * Thread: any. */
bool mg__sysinfo_is_wsl(const char *osrelease, const char *version, const char *distro);

/* The names every agent answers to, NULL-ended; for tests that check the
 * registrations survived linking. */
extern const char *const mg__builtin_services[];
extern const char *const mg__test_services[];

#endif
