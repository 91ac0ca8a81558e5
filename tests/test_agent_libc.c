/*
 * test_agent_libc.c: the agent's own stand-ins for musl functions, each
 * against the C library's: agent/printf.c (snprintf, over the conversions
 * the library uses, at every buffer size around the result) and
 * agent/libc.c (strstr, getpwuid_r).
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "runner.h"

int mg__agent_snprintf(char *buf, size_t size, const char *fmt, ...);
char *mg__agent_strstr(const char *hay, const char *needle);
int mg__agent_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t size, struct passwd **res);

/* Formats with both, first into a buffer that is large enough, then into
 * every size from 0 to one past the result; both must agree each time. */
#define SAME(...)                                                                   \
	do {                                                                        \
		char want_[256], got_[256];                                         \
		int wn_ = snprintf(want_, sizeof(want_), __VA_ARGS__);              \
		CHECK_EQ(mg__agent_snprintf(got_, sizeof(got_), __VA_ARGS__), wn_); \
		CHECK_STR(got_, want_);                                             \
		for (size_t sz_ = 0; sz_ <= (size_t)wn_ + 1; sz_++) {               \
			memset(got_, 'Z', sizeof(got_));                            \
			memset(want_, 'Z', sizeof(want_));                          \
			CHECK_EQ(mg__agent_snprintf(got_, sz_, __VA_ARGS__), wn_);  \
			snprintf(want_, sz_, __VA_ARGS__);                          \
			CHECK_MEM(got_, want_, sz_ + 1);                            \
		}                                                                   \
	} while (0)

TEST(agent_printf_strings)
{
	SAME("plain text");
	SAME("%s", "");
	SAME("%s and %s", "one", "two");
	SAME("%.3s|%.0s|%.80s", "abcdef", "gone", "short");
	SAME("%.*s|", 4, "abcdefgh");
	SAME("%.*s|", -1, "negative precision is none");
	SAME("[%8s][%-8s][%*s][%-*s]", "ab", "cd", 6, "ef", 6, "gh");
	SAME("%c%c%5c%-3c|", 'a', 'b', 'c', 'd');
	SAME("100%% %s", "done");
}

TEST(agent_printf_integers)
{
	SAME("%d %d %d %i", 0, 42, -42, INT32_MIN);
	SAME("%u %u", 0u, UINT32_MAX);
	SAME("%ld %lu %lld %llu", LONG_MIN, ULONG_MAX, LLONG_MIN, ULLONG_MAX);
	SAME("%zu %zd %jd %td", (size_t)12345, (ssize_t)-7, (intmax_t)INT64_MAX, (ptrdiff_t)-3);
	SAME("%hhd %hhu %hd %hu", 300, 300, 70000, 70000);
	SAME("%08u|%010u|%05d|%-5d|%+d|% d|%+d", 42u, 7u, -42, 42, 5, 5, -5);
	SAME("%x %X %#x %#X %#x %08x %lx", 0xbeefu, 0xbeefu, 255u, 255u, 0u, 0xabu, ULONG_MAX);
	SAME("%o %#o %#o", 8u, 8u, 0u);
	SAME("%.0d|%.0u|%.3d|%5.3d|%-6.2d", 0, 0u, 7, -7, 7);
	SAME("%*d|%-*d|%*d", 6, 1, 6, 2, -6, 3);
}

TEST(agent_printf_unsupported_is_visible)
{
	char buf[64];

	/* Floating point is not there: the conversion comes out as written
	 * (and reads no argument). */
	CHECK_EQ(mg__agent_snprintf(buf, sizeof(buf), "a %f b %d", 7), 8);
	CHECK_STR(buf, "a %f b 7");
	CHECK_EQ(mg__agent_snprintf(buf, sizeof(buf), "end %"), 5);
	CHECK_STR(buf, "end %");
	CHECK_EQ(mg__agent_snprintf(buf, sizeof(buf), "%p", (void *)0x1234), 6);
	CHECK_STR(buf, "0x1234");
}

TEST(agent_strstr)
{
	static const char *const hay[] = {"",
	                                  "a",
	                                  "abc",
	                                  "aab",
	                                  "[sudo] password for x: ",
	                                  "Password:",
	                                  "xx[Errno 2] no such",
	                                  "abababc"};
	static const char *const needle[] = {"",   "a",      "b",  "c",       "ab",       "abc",
	                                     "ba", "bababc", "x:", "[Errno ", "Password", "zz"};

	for (size_t i = 0; i < sizeof(hay) / sizeof(hay[0]); i++)
		for (size_t j = 0; j < sizeof(needle) / sizeof(needle[0]); j++)
			CHECK(mg__agent_strstr(hay[i], needle[j]) == strstr(hay[i], needle[j]));
}

/* The same entry as the C library's, for root and the running user; none
 * for a uid nobody has; a buffer too small for the line finds nothing. */
TEST(agent_getpwuid_r)
{
	uid_t uids[] = {0, getuid()};
	struct passwd pw, *res, want, *wres;
	char buf[4096], wbuf[4096];

	for (size_t i = 0; i < 2; i++) {
		CHECK_EQ(getpwuid_r(uids[i], &want, wbuf, sizeof(wbuf), &wres), 0);
		if (wres == NULL)
			continue;
		CHECK_EQ(mg__agent_getpwuid_r(uids[i], &pw, buf, sizeof(buf), &res), 0);
		CHECK(res == &pw);
		CHECK_EQ(pw.pw_uid, want.pw_uid);
		CHECK_EQ(pw.pw_gid, want.pw_gid);
		const char *got_f[] = {pw.pw_name, pw.pw_passwd, pw.pw_gecos, pw.pw_dir,
		                       pw.pw_shell};
		const char *want_f[] = {want.pw_name, want.pw_passwd, want.pw_gecos, want.pw_dir,
		                        want.pw_shell};
		for (size_t f = 0; f < 5; f++)
			CHECK_STR(got_f[f], want_f[f]);
	}
	res = &pw;
	CHECK_EQ(mg__agent_getpwuid_r(3999999999u, &pw, buf, sizeof(buf), &res), 0);
	CHECK(res == NULL);
	res = &pw;
	CHECK_EQ(mg__agent_getpwuid_r(0, &pw, buf, 8, &res), 0);
	CHECK(res == NULL);
	CHECK_EQ(mg__agent_getpwuid_r(0, &pw, buf, 0, &res), ERANGE);
}
