/*
 * test_agent_libc.c: the agent's own stand-ins for musl functions, each
 * against the C library's: agent/printf.c (snprintf, over the conversions
 * the library uses, at every buffer size around the result) and
 * agent/libc.c (strstr, getpwuid_r); agent/malloc.c against what malloc
 * promises (alignment, contents kept by realloc, zeroed calloc, threads).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
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
void *mg__agent_malloc(size_t n);
void mg__agent_free(void *p);
void *mg__agent_calloc(size_t m, size_t n);
void *mg__agent_realloc(void *p, size_t n);

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

/* Fills n bytes with a pattern seeded by k; checks them with the same. */
static void fill(unsigned char *p, size_t n, unsigned k)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + k);
}

static int filled(const unsigned char *p, size_t n, unsigned k)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(i * 7 + k))
			return 0;
	return 1;
}

TEST(agent_malloc_sizes_and_realloc)
{
	static const size_t sizes[] = {0,    1,     15,     16,     17,     100,
	                               4000, 65536, 131056, 131057, 300000, 5 << 20};
	unsigned char *p, *q;
	size_t i, n;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		n = sizes[i];
		CHECK((p = mg__agent_malloc(n)) != NULL);
		CHECK_EQ((uintptr_t)p % 16, 0);
		fill(p, n, (unsigned)i);
		/* Grown across the small and mapped kinds, then shrunk back:
		 * what fits is kept each time. */
		CHECK((q = mg__agent_realloc(p, n * 3 + 200000)) != NULL);
		CHECK(filled(q, n, (unsigned)i));
		CHECK((p = mg__agent_realloc(q, n / 2)) != NULL);
		CHECK(filled(p, n / 2, (unsigned)i));
		mg__agent_free(p);
		CHECK((p = mg__agent_calloc(n + 1, 3)) != NULL);
		for (size_t j = 0; j < (n + 1) * 3; j++)
			CHECK_EQ(p[j], 0);
		mg__agent_free(p);
	}
	mg__agent_free(NULL);
	CHECK((p = mg__agent_realloc(NULL, 10)) != NULL);
	mg__agent_free(p);
	errno = 0;
	CHECK(mg__agent_malloc(SIZE_MAX - 8) == NULL);
	CHECK_EQ(errno, ENOMEM);
	CHECK(mg__agent_calloc(SIZE_MAX / 2, 3) == NULL);
	/* A freed block is reused, and calloc clears what it held. */
	CHECK((p = mg__agent_malloc(40)) != NULL);
	memset(p, 0xff, 40);
	mg__agent_free(p);
	CHECK((q = mg__agent_calloc(1, 40)) != NULL);
	CHECK(q == p);
	for (i = 0; i < 40; i++)
		CHECK_EQ(q[i], 0);
	mg__agent_free(q);
}

static void *malloc_worker(void *arg)
{
	unsigned k = (unsigned)(uintptr_t)arg, seed = k;
	unsigned char *held[64] = {0};
	size_t len[64] = {0};

	for (int round = 0; round < 20000; round++) {
		unsigned slot = (seed = seed * 1103515245u + 12345u) >> 26;
		size_t n = (seed >> 8) % (round % 97 == 0 ? 200000 : 3000);

		if (held[slot] != NULL) {
			if (!filled(held[slot], len[slot], k + slot))
				return (void *)1;
			mg__agent_free(held[slot]);
		}
		if ((held[slot] = mg__agent_malloc(n)) == NULL)
			return (void *)1;
		len[slot] = n;
		fill(held[slot], n, k + slot);
	}
	for (int i = 0; i < 64; i++)
		mg__agent_free(held[i]);
	return NULL;
}

TEST(agent_malloc_threads)
{
	pthread_t t[4];
	void *r;

	for (uintptr_t i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, malloc_worker, (void *)i), 0);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(pthread_join(t[i], &r), 0);
		CHECK(r == NULL);
	}
}
