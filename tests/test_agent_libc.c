/*
 * test_agent_libc.c: the agent's own stand-ins for musl functions, each
 * against the C library's: agent/printf.c (snprintf, over the conversions
 * the library uses, at every buffer size around the result) and
 * agent/libc.c (strstr, getpwuid_r, getenv, unsetenv, strcasecmp,
 * atexit); agent/sys.c (the clock, file status and fcntl); agent/malloc.c against what malloc
 * promises (alignment, contents kept by realloc, zeroed calloc, threads);
 * agent/pthread.c against what mutexes and condition variables promise
 * (exclusion, no lost wake-up, timeouts on either clock).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

int mg__agent_snprintf(char *buf, size_t size, const char *fmt, ...);
char *mg__agent_strstr(const char *hay, const char *needle);
int mg__agent_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t size, struct passwd **res);
void *mg__agent_malloc(size_t n);
void mg__agent_free(void *p);
void *mg__agent_calloc(size_t m, size_t n);
void *mg__agent_realloc(void *p, size_t n);
int mg__agent_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a);
int mg__agent_mutex_destroy(pthread_mutex_t *m);
int mg__agent_mutex_lock(pthread_mutex_t *m);
int mg__agent_mutex_trylock(pthread_mutex_t *m);
int mg__agent_mutex_unlock(pthread_mutex_t *m);
int mg__agent_condattr_init(pthread_condattr_t *a);
int mg__agent_condattr_destroy(pthread_condattr_t *a);
int mg__agent_condattr_setclock(pthread_condattr_t *a, clockid_t clk);
int mg__agent_cond_init(pthread_cond_t *c, const pthread_condattr_t *a);
int mg__agent_cond_destroy(pthread_cond_t *c);
int mg__agent_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
int mg__agent_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *ts);
int mg__agent_cond_signal(pthread_cond_t *c);
int mg__agent_cond_broadcast(pthread_cond_t *c);
int mg__agent_once(pthread_once_t *o, void (*fn)(void));
char *mg__agent_getenv(const char *name);
int mg__agent_unsetenv(const char *name);
int mg__agent_strcasecmp(const char *a, const char *b);
int mg__agent_strncasecmp(const char *a, const char *b, size_t n);
int mg__agent_atexit(void (*fn)(void));
void mg__agent_funcs_on_exit(void);
int mg__agent_clock_gettime(clockid_t clk, struct timespec *ts);
int mg__agent_fstatat(int dirfd, const char *path, struct stat *st, int flags);
int mg__agent_fstat(int fd, struct stat *st);
int mg__agent_stat(const char *path, struct stat *st);
int mg__agent_lstat(const char *path, struct stat *st);
int mg__agent_futimens(int fd, const struct timespec times[2]);
int mg__agent_utimensat(int dirfd, const char *path, const struct timespec times[2], int flags);
int mg__agent_fcntl(int fd, int cmd, ...);

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

/* Shared by the mutex and condition variable tests: a counter under the
 * agent's mutex, and a turn passed between threads with its cond. */
struct sync_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	long count;
	int turn, waiting, go;
	int failed;
};

static void *count_worker(void *arg)
{
	struct sync_state *s = arg;

	for (int i = 0; i < 50000; i++) {
		mg__agent_mutex_lock(&s->lock);
		s->count++;
		mg__agent_mutex_unlock(&s->lock);
	}
	return NULL;
}

TEST(agent_mutex_excludes)
{
	static struct sync_state s = {.lock = PTHREAD_MUTEX_INITIALIZER};
	pthread_t t[4];

	CHECK_EQ(mg__agent_mutex_trylock(&s.lock), 0);
	CHECK_EQ(mg__agent_mutex_trylock(&s.lock), EBUSY);
	CHECK_EQ(mg__agent_mutex_unlock(&s.lock), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, count_worker, &s), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	CHECK_EQ(s.count, 4 * 50000L);
	CHECK_EQ(mg__agent_mutex_destroy(&s.lock), 0);
}

static void deadline_in(clockid_t clk, long ms, struct timespec *ts)
{
	clock_gettime(clk, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000L + (t1.tv_nsec - t0->tv_nsec) / 1000000L;
}

TEST(agent_cond_times_out_on_its_clock)
{
	static const clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME};
	struct timespec ts, t0;
	int r;

	for (int i = 0; i < 2; i++) {
		pthread_mutex_t m;
		pthread_cond_t c;
		pthread_condattr_t a;

		CHECK_EQ(mg__agent_condattr_init(&a), 0);
		CHECK_EQ(mg__agent_condattr_setclock(&a, clocks[i]), 0);
		CHECK_EQ(mg__agent_cond_init(&c, &a), 0);
		CHECK_EQ(mg__agent_condattr_destroy(&a), 0);
		CHECK_EQ(mg__agent_mutex_init(&m, NULL), 0);
		CHECK_EQ(mg__agent_mutex_lock(&m), 0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		deadline_in(clocks[i], 60, &ts);
		/* Spurious wake-ups are allowed: wait until the deadline. */
		while ((r = mg__agent_cond_timedwait(&c, &m, &ts)) == 0)
			;
		CHECK_EQ(r, ETIMEDOUT);
		CHECK_INT(ms_since(&t0), >=, 59);
		/* The mutex is held again on return. */
		CHECK_EQ(mg__agent_mutex_trylock(&m), EBUSY);
		ts.tv_nsec = 1000000000L;
		CHECK_EQ(mg__agent_cond_timedwait(&c, &m, &ts), EINVAL);
		CHECK_EQ(mg__agent_mutex_unlock(&m), 0);
		CHECK_EQ(mg__agent_cond_destroy(&c), 0);
	}
	/* A clock other than those two is refused. */
	{
		pthread_condattr_t a;

		CHECK_EQ(mg__agent_condattr_init(&a), 0);
		CHECK_EQ(mg__agent_condattr_setclock(&a, CLOCK_PROCESS_CPUTIME_ID), EINVAL);
	}
}

/* Waits for its turn (id), then passes it on, rounds times: a lost
 * wake-up shows as a timeout rather than a hang. */
static void *turn_worker(void *arg)
{
	struct sync_state *s = arg;
	struct timespec ts;
	int id, r = 0;

	mg__agent_mutex_lock(&s->lock);
	id = s->waiting++;
	mg__agent_mutex_unlock(&s->lock);
	for (int round = 0; round < 2000; round++) {
		mg__agent_mutex_lock(&s->lock);
		deadline_in(CLOCK_REALTIME, 20000, &ts);
		while (s->turn != id && r == 0)
			r = mg__agent_cond_timedwait(&s->cond, &s->lock, &ts);
		if (r != 0) {
			s->failed = 1;
			s->turn = -1;
			mg__agent_cond_broadcast(&s->cond);
			mg__agent_mutex_unlock(&s->lock);
			return NULL;
		}
		s->turn = !id;
		mg__agent_cond_signal(&s->cond);
		mg__agent_mutex_unlock(&s->lock);
	}
	return NULL;
}

TEST(agent_cond_signal_passes_turns)
{
	static struct sync_state s = {.lock = PTHREAD_MUTEX_INITIALIZER,
	                              .cond = PTHREAD_COND_INITIALIZER};
	pthread_t t[2];

	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, turn_worker, &s), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	CHECK_EQ(s.failed, 0);
}

static void *go_worker(void *arg)
{
	struct sync_state *s = arg;

	mg__agent_mutex_lock(&s->lock);
	s->waiting++;
	mg__agent_cond_broadcast(&s->cond);
	while (!s->go)
		mg__agent_cond_wait(&s->cond, &s->lock);
	s->count++;
	mg__agent_mutex_unlock(&s->lock);
	return NULL;
}

TEST(agent_cond_broadcast_wakes_all)
{
	static struct sync_state s = {.lock = PTHREAD_MUTEX_INITIALIZER,
	                              .cond = PTHREAD_COND_INITIALIZER};
	pthread_t t[5];

	for (int i = 0; i < 5; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, go_worker, &s), 0);
	mg__agent_mutex_lock(&s.lock);
	while (s.waiting < 5)
		mg__agent_cond_wait(&s.cond, &s.lock);
	s.go = 1;
	CHECK_EQ(mg__agent_cond_broadcast(&s.cond), 0);
	mg__agent_mutex_unlock(&s.lock);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	CHECK_EQ(s.count, 5);
}

static int once_runs;

static void once_fn(void)
{
	/* Long enough for the other threads to arrive and wait. */
	usleep(20000);
	__atomic_fetch_add(&once_runs, 1, __ATOMIC_SEQ_CST);
}

static void *once_worker(void *arg)
{
	mg__agent_once(arg, once_fn);
	/* Whoever returns finds the function run. */
	return (void *)(intptr_t)__atomic_load_n(&once_runs, __ATOMIC_SEQ_CST);
}

TEST(agent_once_runs_once)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_t t[4];
	void *r;

	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, once_worker, &once), 0);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(pthread_join(t[i], &r), 0);
		CHECK_EQ((intptr_t)r, 1);
	}
	CHECK_EQ(mg__agent_once(&once, once_fn), 0);
	CHECK_EQ(once_runs, 1);
}

TEST(agent_env)
{
	static char a[] = "MG_T_ENV=one", b[] = "MG_T_ENVX=two", c[] = "MG_T_ENV=dup",
	            d[] = "OTHER=3";
	char *env[] = {a, b, c, d, NULL}, **saved = environ;

	environ = env;
	CHECK_STR(mg__agent_getenv("MG_T_ENV"), "one");
	CHECK_STR(mg__agent_getenv("MG_T_ENVX"), "two");
	CHECK(mg__agent_getenv("MG_T_EN") == NULL);
	CHECK(mg__agent_getenv("") == NULL);
	CHECK(mg__agent_getenv("MG_T_ENV=one") == NULL);
	errno = 0;
	CHECK_EQ(mg__agent_unsetenv("A=B"), -1);
	CHECK_EQ(errno, EINVAL);
	CHECK_EQ(mg__agent_unsetenv(""), -1);
	/* Every entry of the name goes; the rest keep their order. */
	CHECK_EQ(mg__agent_unsetenv("MG_T_ENV"), 0);
	CHECK(env[0] == b && env[1] == d && env[2] == NULL);
	CHECK(mg__agent_getenv("MG_T_ENV") == NULL);
	CHECK_EQ(mg__agent_unsetenv("ABSENT"), 0);
	environ = NULL;
	CHECK(mg__agent_getenv("OTHER") == NULL);
	CHECK_EQ(mg__agent_unsetenv("OTHER"), 0);
	environ = saved;
}

TEST(agent_strcasecmp)
{
	static const char *const w[] = {"",   "a", "A", "abc", "ABD", "abcd",     "Io",  "iO",
	                                "io", "[", "{", "@",   "`",   "\xc3\x80", "\xe0"};
	size_t n = sizeof(w) / sizeof(w[0]);

#define SIGN(x) (((x) > 0) - ((x) < 0))
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			CHECK_EQ(SIGN(mg__agent_strcasecmp(w[i], w[j])),
			         SIGN(strcasecmp(w[i], w[j])));
			for (size_t k = 0; k < 5; k++)
				CHECK_EQ(SIGN(mg__agent_strncasecmp(w[i], w[j], k)),
				         SIGN(strncasecmp(w[i], w[j], k)));
		}
#undef SIGN
}

static char exit_order[40];

static void exit_note(char c)
{
	size_t n = strlen(exit_order);

	if (n + 1 < sizeof(exit_order))
		exit_order[n] = c;
}

static void exit_a(void)
{
	exit_note('a');
}

static void exit_b(void)
{
	exit_note('b');
}

static void exit_c(void)
{
	exit_note('c');
}

TEST(agent_atexit_runs_last_first)
{
	char want[40] = "";

	CHECK_EQ(mg__agent_atexit(exit_a), 0);
	CHECK_EQ(mg__agent_atexit(exit_b), 0);
	/* 32 in all, then refused. */
	for (int i = 2; i < 32; i++)
		CHECK_EQ(mg__agent_atexit(exit_c), 0);
	CHECK_EQ(mg__agent_atexit(exit_a), -1);
	mg__agent_funcs_on_exit();
	memset(want, 'c', 30);
	strcat(want, "ba");
	CHECK_STR(exit_order, want);
	/* Each runs once. */
	mg__agent_funcs_on_exit();
	CHECK_STR(exit_order, want);
}

TEST(agent_sys_calls)
{
	char dir[] = "/tmp/mg-agent-sys-XXXXXX", path[64], link[64];
	struct stat a, b;
	struct timespec t0, t1, times[2] = {{1000000, 5}, {2000000, 7}};
	int fd, dfd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/f", dir);
	snprintf(link, sizeof(link), "%s/l", dir);
	CHECK((fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)) >= 0);
	CHECK_EQ(write(fd, "hello", 5), 5);
	CHECK_EQ(symlink("f", link), 0);
	/* The same answers as the C library's. */
	CHECK_EQ(mg__agent_fstat(fd, &a), 0);
	CHECK_EQ(fstat(fd, &b), 0);
	CHECK(a.st_ino == b.st_ino && a.st_size == 5 && a.st_mode == b.st_mode);
	CHECK_EQ(mg__agent_stat(link, &a), 0);
	CHECK(a.st_ino == b.st_ino && S_ISREG(a.st_mode));
	CHECK_EQ(mg__agent_lstat(link, &a), 0);
	CHECK(S_ISLNK(a.st_mode));
	CHECK((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0);
	CHECK_EQ(mg__agent_fstatat(dfd, "f", &a, 0), 0);
	CHECK(a.st_ino == b.st_ino);
	errno = 0;
	CHECK_EQ(mg__agent_fstatat(dfd, "absent", &a, 0), -1);
	CHECK_EQ(errno, ENOENT);
	CHECK_EQ(mg__agent_futimens(fd, times), 0);
	CHECK_EQ(stat(path, &a), 0);
	CHECK(a.st_atim.tv_sec == 1000000 && a.st_mtim.tv_sec == 2000000 && a.st_mtim.tv_nsec == 7);
	CHECK_EQ(mg__agent_utimensat(AT_FDCWD, path, NULL, 0), 0);
	CHECK_EQ(stat(path, &a), 0);
	CHECK_INT(a.st_mtim.tv_sec, >, 2000000);
	CHECK_EQ(mg__agent_fcntl(fd, F_GETFD), FD_CLOEXEC);
	CHECK_EQ(mg__agent_fcntl(fd, F_SETFD, 0), 0);
	CHECK_EQ(fcntl(fd, F_GETFD), 0);
	CHECK_EQ(mg__agent_fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY);
	CHECK_EQ(mg__agent_fcntl(-1, F_GETFD), -1);
	CHECK_EQ(errno, EBADF);
	close(fd);
	close(dfd);
	CHECK_EQ(unlink(link), 0);
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(rmdir(dir), 0);
	/* The clock agrees with the C library's, and moves forward. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(mg__agent_clock_gettime(CLOCK_MONOTONIC, &t1), 0);
	CHECK(t1.tv_sec > t0.tv_sec || (t1.tv_sec == t0.tv_sec && t1.tv_nsec >= t0.tv_nsec));
	CHECK_EQ(mg__agent_clock_gettime(CLOCK_REALTIME, &t1), 0);
	CHECK_INT(t1.tv_sec, >, 1600000000);
	CHECK_EQ(mg__agent_clock_gettime((clockid_t)-100, &t1), -1);
}
