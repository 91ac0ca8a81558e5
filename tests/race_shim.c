/*
 * race_shim.c: preloaded into a shell by test_bootstrap_hostile, it plays a local
 * user on the target who wins the race for the first stage's file name
 * (which a real one cannot even know: it comes from the kernel's random
 * uuid): right before the shell's noclobber open of the name, it puts a
 * symbolic link there, to MG_RACE_TARGET, or with MG_RACE_MOVE set moves
 * MG_RACE_TARGET itself there (a FIFO, a file, a link).  Only names under MG_RACE_DIR
 * that are "mitogen-agent." and a uuid are touched.  Built without
 * sanitizers: the system's shells load it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int open_fn(const char *, int, ...);

static void race(const char *path, int flags)
{
	const char *dir = getenv("MG_RACE_DIR"), *target = getenv("MG_RACE_TARGET");
	size_t n;

	if (dir == NULL || target == NULL || (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL))
		return;
	/* The shell's own name (a uuid), not the names mktemp tries. */
	n = strlen(dir);
	if (strncmp(path, dir, n) == 0 && strncmp(path + n, "/mitogen-agent.", 15) == 0 &&
	    strlen(path + n + 15) == 36) {
		if (getenv("MG_RACE_MOVE") != NULL)
			(void)rename(target, path);
		else
			(void)symlink(target, path);
	}
}

/* dash calls open64, bash open: the same on x86_64. */

int open(const char *path, int flags, ...)
{
	open_fn *real = (open_fn *)dlsym(RTLD_NEXT, "open");
	va_list ap;
	int mode;

	va_start(ap, flags);
	mode = (flags & O_CREAT) ? va_arg(ap, int) : 0;
	va_end(ap);
	race(path, flags);
	return real(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	int mode;

	va_start(ap, flags);
	mode = (flags & O_CREAT) ? va_arg(ap, int) : 0;
	va_end(ap);
	return open(path, flags, mode);
}
