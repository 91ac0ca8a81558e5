/*
 * race_shim.c: preloaded into a shell by test_bootstrap_hostile, it plays a local
 * user on the target who wins the race for the first stage's file name:
 * right after the shell's last check that the name is free (the lstat of
 * `[ ! -h $f ]`), it puts a symbolic link there, to MG_RACE_TARGET.  Only
 * names under MG_RACE_DIR that start with "mitogen-agent." are touched.
 * Built without sanitizers: the system's shells load it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef int lstat_fn(const char *, struct stat *);

static void race(const char *path)
{
	const char *dir = getenv("MG_RACE_DIR"), *target = getenv("MG_RACE_TARGET");
	size_t n;

	if (dir == NULL || target == NULL)
		return;
	n = strlen(dir);
	if (strncmp(path, dir, n) == 0 && strncmp(path + n, "/mitogen-agent.", 15) == 0)
		(void)symlink(target, path);
}

/* dash calls lstat64, bash lstat: the same on x86_64. */

int lstat(const char *path, struct stat *st)
{
	lstat_fn *real = (lstat_fn *)dlsym(RTLD_NEXT, "lstat");
	int r = real(path, st);

	race(path);
	return r;
}

int lstat64(const char *path, struct stat64 *st)
{
	return lstat(path, (struct stat *)st);
}
