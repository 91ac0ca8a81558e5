/*
 * sys.c: the agent's clock and file-status calls as bare system calls,
 * in place of musl's (~1.2 KB on the wire with what they drag in).  Linked
 * ahead of libc.a, they keep musl's from being pulled in.
 *
 *  - clock_gettime: musl's looks the vDSO up by parsing its ELF tables
 *    (~1 KB of code).  The agent reads the clock about once per wake-up
 *    of its event loop, beside an epoll_wait and a read or write, so one
 *    more system call there does not show.
 *  - fstat, stat, lstat, fstatat, futimens, utimensat, fcntl: musl's carry fallbacks
 *    for kernels older than any the agent supports (before 2.6.39) and
 *    for 32-bit layouts.  Only built where musl's struct stat is the
 *    kernel's and newfstatat exists (x86-64, AArch64); elsewhere musl's
 *    are used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* tests/test_agent_libc.c builds this file under other names (mg__agent_
 * and the function's), beside the C library's own; a macro per name would
 * also rename struct stat. */
#ifdef MG_AGENT_LIBC_TEST
#define NAME(f) mg__agent_##f
int NAME(clock_gettime)(clockid_t clk, struct timespec *ts);
int NAME(fstatat)(int dirfd, const char *restrict path, struct stat *restrict st, int flags);
int NAME(fstat)(int fd, struct stat *st);
int NAME(stat)(const char *restrict path, struct stat *restrict st);
int NAME(lstat)(const char *restrict path, struct stat *restrict st);
int NAME(futimens)(int fd, const struct timespec times[2]);
int NAME(utimensat)(int dirfd, const char *path, const struct timespec times[2], int flags);
int NAME(fcntl)(int fd, int cmd, ...);
#else
#define NAME(f) f
/* musl's time() and others call the clock by this internal name. */
int __clock_gettime(clockid_t clk, struct timespec *ts);
#endif

int NAME(clock_gettime)(clockid_t clk, struct timespec *ts)
{
	return (int)syscall(SYS_clock_gettime, clk, ts);
}

#ifndef MG_AGENT_LIBC_TEST
/* Kept through LTO (used): libc.a's time() may join the link after the
 * IR is compiled. */
__attribute__((used)) int __clock_gettime(clockid_t clk, struct timespec *ts)
{
	return NAME(clock_gettime)(clk, ts);
}
#endif

#if defined(SYS_newfstatat) && (defined(__x86_64__) || defined(__aarch64__))
int NAME(fstatat)(int dirfd, const char *restrict path, struct stat *restrict st, int flags)
{
	return (int)syscall(SYS_newfstatat, dirfd, path, st, flags);
}

int NAME(fstat)(int fd, struct stat *st)
{
	return NAME(fstatat)(fd, "", st, AT_EMPTY_PATH);
}

int NAME(stat)(const char *restrict path, struct stat *restrict st)
{
	return NAME(fstatat)(AT_FDCWD, path, st, 0);
}

int NAME(lstat)(const char *restrict path, struct stat *restrict st)
{
	return NAME(fstatat)(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

int NAME(utimensat)(int dirfd, const char *path, const struct timespec times[2], int flags)
{
	return (int)syscall(SYS_utimensat, dirfd, path, times, flags);
}

int NAME(futimens)(int fd, const struct timespec times[2])
{
	return NAME(utimensat)(fd, NULL, times, 0);
}

/* Every command the library uses takes an int or a pointer, or nothing
 * (then the argument read is ignored by the kernel). */
int NAME(fcntl)(int fd, int cmd, ...)
{
	va_list ap;
	unsigned long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, unsigned long);
	va_end(ap);
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}
#endif
