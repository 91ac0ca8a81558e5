/*
 * libc.c: small stand-ins for two musl functions whose implementations
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
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

/* tests/test_agent_libc.c builds this file under other names, beside the
 * C library's own. */
#ifdef MG_AGENT_LIBC_TEST
#define strstr mg__agent_strstr
#define getpwuid_r mg__agent_getpwuid_r
char *strstr(const char *hay, const char *needle);
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
