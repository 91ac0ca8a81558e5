/*
 * libc.c: small stand-ins for musl functions whose implementations
 * are large for what the agent asks of them; every byte of the static
 * agent goes over the wire at a first connect (DESIGN.md section 5).
 * Linked ahead of libc.a, they keep musl's from being pulled in.
 *
 *  - strstr: musl's is the two-way algorithm (~1.3 KB).  The agent looks
 *    for short markers in short texts (a prompt, an error line), where the
 *    plain search is as fast.
 *  - getpwuid_r: musl's reads /etc/passwd through stdio and asks nscd
 *    (~6.5 KB with what it drags in).  This one reads /etc/passwd alone;
 *    the agent only wants the user's name (services/builtin.c), and falls
 *    back to the number where there is no entry.
 *  - getenv, unsetenv, strcasecmp, strncasecmp: plain loops, as musl's
 *    but without the helpers they pull in.
 *  - atexit: a fixed table of 32 (the least POSIX allows), without musl's
 *    allocation and locks; the library registers one function.
 *  - stdout, stderr, setvbuf, __fpurge: see below (~1.5 KB).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* tests/test_agent_libc.c builds this file under other names, beside the
 * C library's own. */
#ifdef MG_AGENT_LIBC_TEST
#define strstr mg__agent_strstr
#define getpwuid_r mg__agent_getpwuid_r
#define getenv mg__agent_getenv
#define unsetenv mg__agent_unsetenv
#define strcasecmp mg__agent_strcasecmp
#define strncasecmp mg__agent_strncasecmp
#define atexit mg__agent_atexit
#define __funcs_on_exit mg__agent_funcs_on_exit
char *strstr(const char *hay, const char *needle);
char *getenv(const char *name);
int unsetenv(const char *name);
int strcasecmp(const char *a, const char *b);
int strncasecmp(const char *a, const char *b, size_t n);
int atexit(void (*fn)(void));
int getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t size, struct passwd **res);
#endif

char *strstr(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	if (n == 0)
		return (char *)hay;
	for (; *hay != '\0'; hay++)
		if (*hay == *needle && strncmp(hay, needle, n) == 0)
			return (char *)hay;
	return NULL;
}

/* As musl's: no match for a name that is empty or holds '='. */
char *getenv(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || strchr(name, '=') != NULL || environ == NULL)
		return NULL;
	for (char **e = environ; *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* As musl's when nothing calls setenv (the library does not): the
 * entries are dropped from environ, not freed. */
int unsetenv(const char *name)
{
	size_t n = strlen(name);
	char **e, **keep;

	if (n == 0 || strchr(name, '=') != NULL) {
		errno = EINVAL;
		return -1;
	}
	if (environ == NULL)
		return 0;
	for (e = keep = environ; *e != NULL; e++)
		if (strncmp(*e, name, n) != 0 || (*e)[n] != '=')
			*keep++ = *e;
	*keep = NULL;
	return 0;
}

/* ASCII only, as in musl's C locale. */
static int lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Both compare at most n bytes; strcasecmp passes no bound. */
static int casecmp(const char *a, const char *b, size_t n)
{
	for (; n > 0; n--, a++, b++)
		if (lower((unsigned char)*a) != lower((unsigned char)*b) || *a == '\0')
			return lower((unsigned char)*a) - lower((unsigned char)*b);
	return 0;
}

int strncasecmp(const char *a, const char *b, size_t n)
{
	return casecmp(a, b, n);
}

int strcasecmp(const char *a, const char *b)
{
	return casecmp(a, b, (size_t)-1);
}

static void (*exit_fns[32])(void);
static int exit_count;

int atexit(void (*fn)(void))
{
	int i = __atomic_fetch_add(&exit_count, 1, __ATOMIC_SEQ_CST);

	if (i >= 32) {
		__atomic_fetch_sub(&exit_count, 1, __ATOMIC_SEQ_CST);
		return -1;
	}
	__atomic_store_n(&exit_fns[i], fn, __ATOMIC_SEQ_CST);
	return 0;
}

/* musl's exit() calls this first; the last registered runs first.  Kept
 * through LTO (used): libc.a's exit joins the link after the IR is
 * compiled. */
void __funcs_on_exit(void);
__attribute__((used)) void __funcs_on_exit(void)
{
	int n = __atomic_load_n(&exit_count, __ATOMIC_SEQ_CST);

	/* Past 32 only for a moment, while atexit refuses one. */
	for (int i = n < 32 ? n : 32; i > 0; i--) {
		void (*fn)(void) = __atomic_exchange_n(&exit_fns[i - 1], NULL, __ATOMIC_SEQ_CST);

		if (fn != NULL)
			fn();
	}
}

/* Splits a passwd line (NUL-terminated, in place) into pw; false when it
 * is not one or is not uid's. */
static int parse_line(char *line, uid_t uid, struct passwd *pw)
{
	char *f[7];
	unsigned long id[2];
	int i;

	for (i = 0; i < 7; i++) {
		f[i] = line;
		line = strchr(line, ':');
		if (line == NULL)
			break;
		*line++ = '\0';
	}
	if (i != 6)
		return 0;
	for (i = 0; i < 2; i++) {
		const char *p = f[2 + i];

		id[i] = 0;
		if (*p == '\0')
			return 0;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9' || id[i] > 0xffffffffUL / 10)
				return 0;
			id[i] = id[i] * 10 + (unsigned long)(*p - '0');
		}
	}
	if (id[0] != (unsigned long)uid)
		return 0;
	pw->pw_name = f[0];
	pw->pw_passwd = f[1];
	pw->pw_uid = (uid_t)id[0];
	pw->pw_gid = (gid_t)id[1];
	pw->pw_gecos = f[4];
	pw->pw_dir = f[5];
	pw->pw_shell = f[6];
	return 1;
}

/* As POSIX: 0 with *res NULL when there is no entry, an errno value on
 * error.  A line that does not fit in buf is passed over, as if absent. */
int getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t size, struct passwd **res)
{
	char chunk[1024];
	size_t len = 0;
	int fd, r = 0, overlong = 0;
	ssize_t got;

	*res = NULL;
	if (size == 0)
		return ERANGE;
	if ((fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : errno;
	for (;;) {
		got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = errno;
			break;
		}
		/* At the end, a last line without its newline still counts. */
		if (got == 0 && len == 0)
			break;
		for (ssize_t i = 0; i < got || (got == 0 && i == 0); i++) {
			char c = got == 0 ? '\n' : chunk[i];

			if (c != '\n') {
				if (len + 1 < size)
					buf[len++] = c;
				else
					overlong = 1;
				continue;
			}
			buf[len] = '\0';
			if (!overlong && parse_line(buf, uid, pw)) {
				*res = pw;
				goto out;
			}
			len = 0;
			overlong = 0;
		}
		if (got == 0)
			break;
	}
out:
	close(fd);
	return r;
}

#ifndef MG_AGENT_LIBC_TEST
/* No stdio stream is ever written in the agent (its snprintf family is
 * printf.c's, all output goes through file descriptors), so the library's
 * only stdio calls, setvbuf (context/stdio.c) and __fpurge (connect/
 * fork.c), have nothing to act on.  These keep musl's FILE objects and
 * their write and flush code out (~1.5 KB).  A null stream makes any
 * later stdio output in the agent fail loudly rather than quietly. */
FILE *const stdout = NULL, *const stderr = NULL;

int __fpurge(FILE *f)
{
	return 0;
}

int setvbuf(FILE *restrict f, char *restrict buf, int mode, size_t size)
{
	return 0;
}
#endif
