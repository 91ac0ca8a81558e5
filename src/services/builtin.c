/*
 * builtin.c: mg.ping, mg.echo and mg.sysinfo, the functions every agent
 * answers.  They use only the public API: a service is an exported
 * function like any user's, which keeps the context layer honest about
 * what an exported function can do.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "services/services.h"

const char *const mg__builtin_services[] = {"mg.ping", "mg.echo", "mg.sysinfo", NULL};

MG_EXPORT_AS("mg.ping", builtin_ping)
static int builtin_ping(struct mg_call *call)
{
	/* Arguments are checked even here, so a caller's mistake in the
	 * simplest call is reported rather than silently ignored. */
	if (mg_call_args(call, "") != 0)
		return -1;
	return mg_call_return(call, "b", 1);
}

MG_EXPORT_AS("mg.echo", builtin_echo)
static int builtin_echo(struct mg_call *call)
{
	const void *v;
	size_t n;

	/* 'v' hands over the argument's encoded bytes, whatever their type, and
	 * returning them with 'v' re-emits them unchanged: the reply is the
	 * argument bit for bit, with no decode/encode in between. */
	if (mg_call_args(call, "v", &v, &n) != 0)
		return -1;
	return mg_call_return(call, "v", v, n);
}

/* Reads a small text file whole (a /proc entry); NULL when it cannot.
 * Returns buf. */
static char *slurp(const char *path, char *buf, size_t size)
{
	size_t used = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	while (used + 1 < size) {
		r = read(fd, buf + used, size - 1 - used);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		used += (size_t)r;
	}
	close(fd);
	buf[used] = '\0';
	return buf;
}

/* strcasestr without relying on it being in every libc the agent is
 * built with. */
static bool contains_nocase(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; hay != NULL && *hay != '\0'; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

bool mg__sysinfo_is_wsl(const char *osrelease, const char *version, const char *distro)
{
	/* WSL sets WSL_DISTRO_NAME for processes started from Windows; its
	 * kernels say "Microsoft" (WSL 1: "4.4.0-19041-Microsoft") or
	 * "microsoft-standard-WSL2" in their release and version strings.
	 * Either sign is enough: a WSL 2 distribution may run a custom kernel,
	 * and a process started outside Windows' launcher lacks the variable. */
	if (distro != NULL && distro[0] != '\0')
		return true;
	return contains_nocase(osrelease, "microsoft") || contains_nocase(osrelease, "wsl") ||
	       contains_nocase(version, "microsoft") || contains_nocase(version, "wsl");
}

static void user_name(uid_t uid, char *out, size_t size)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	/* getpwuid_r rather than getpwuid: a user's program may be looking up
	 * passwd entries on another thread while the dispatcher runs this. */
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL &&
	    res->pw_name != NULL) {
		snprintf(out, size, "%s", res->pw_name);
		return;
	}
	/* No entry (a container's arbitrary uid): the number is what `id -un`
	 * users would fall back to, and it never lies. */
	snprintf(out, size, "%lu", (unsigned long)uid);
}

int mg__sysinfo_collect(struct mg__sysinfo *si)
{
	char osrelease[256], version[1024];
	struct utsname u;

	if (uname(&u) != 0)
		return -errno;
	memset(si, 0, sizeof(*si));
	si->pid = (int64_t)getpid();
	si->uid = (int64_t)getuid();
	user_name(getuid(), si->user, sizeof(si->user));
	snprintf(si->hostname, sizeof(si->hostname), "%s", u.nodename);
	snprintf(si->os, sizeof(si->os), "%s", u.sysname);
	snprintf(si->arch, sizeof(si->arch), "%s", u.machine);
	snprintf(si->kernel, sizeof(si->kernel), "%s", u.release);
	si->wsl = mg__sysinfo_is_wsl(
	        slurp("/proc/sys/kernel/osrelease", osrelease, sizeof(osrelease)),
	        slurp("/proc/version", version, sizeof(version)), getenv("WSL_DISTRO_NAME"));
	return 0;
}

MG_EXPORT_AS("mg.sysinfo", builtin_sysinfo)
static int builtin_sysinfo(struct mg_call *call)
{
	struct mg__sysinfo si;
	int rc;

	if (mg_call_args(call, "") != 0)
		return -1;
	if ((rc = mg__sysinfo_collect(&si)) != 0)
		return mg_call_fail(call, "OSError", "uname: %s", mg_strerror(rc));
	/* A map, so callers look fields up by name and new fields can be added
	 * without breaking them. */
	return mg_call_return(call, "{si si ss ss ss ss ss sb}", "pid", si.pid, "uid", si.uid,
	                      "user", si.user, "hostname", si.hostname, "os", si.os, "arch",
	                      si.arch, "kernel", si.kernel, "wsl", (int)si.wsl);
}
