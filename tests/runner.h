/*
 * runner.h: the test runner.  Each TEST() is registered at load time; the
 * runner forks one process per case with a timeout, so a hang or a crash
 * fails that case alone.  Arguments select cases by substring of their name.
 * Each case must leave the same set of open fds it started with.  The run
 * ends with the line "N passed, N failed, N skipped".
 *
 * Environment: MG_TEST_TIMEOUT scales every timeout (a factor, default 1;
 * the sanitizer builds set it higher).
 */
#ifndef MG_TEST_RUNNER_H
#define MG_TEST_RUNNER_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*mg_test_fn)(void);

void mg_test_register(const char *name, mg_test_fn fn, int timeout_s);
void mg_test_fail(const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4), noreturn));
/* Marks the running case skipped (with a reason) and ends it. */
void mg_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Scale factor for timeouts and iteration counts in slow builds. */
double mg_test_slowdown(void);
/* True when built with a sanitizer. */
int mg_test_sanitized(void);

#define MG_TEST_CAT_(a, b) a##b
#define MG_TEST_CAT(a, b) MG_TEST_CAT_(a, b)

/* TEST_T(name, seconds) declares a case with its own timeout. */
#define TEST_T(name, secs)                                                     \
	static void MG_TEST_CAT(test_, name)(void);                            \
	__attribute__((constructor)) static void MG_TEST_CAT(reg_, name)(void) \
	{                                                                      \
		mg_test_register(#name, MG_TEST_CAT(test_, name), (secs));     \
	}                                                                      \
	static void MG_TEST_CAT(test_, name)(void)
#define TEST(name) TEST_T(name, 30)

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond))                                                  \
			mg_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); \
	} while (0)

#define CHECK_INT(a, op, b)                                                                     \
	do {                                                                                    \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);                 \
		if (!(check_a_ op check_b_))                                                    \
			mg_test_fail(__FILE__, __LINE__,                                        \
			             "%s %s %s\n    left:  %lld\n    right: %lld", #a, #op, #b, \
			             check_a_, check_b_);                                       \
	} while (0)
#define CHECK_EQ(a, b) CHECK_INT(a, ==, b)

#define CHECK_UINT(a, op, b)                                                                    \
	do {                                                                                    \
		unsigned long long check_a_ = (unsigned long long)(a),                          \
		                   check_b_ = (unsigned long long)(b);                          \
		if (!(check_a_ op check_b_))                                                    \
			mg_test_fail(__FILE__, __LINE__,                                        \
			             "%s %s %s\n    left:  %llu\n    right: %llu", #a, #op, #b, \
			             check_a_, check_b_);                                       \
	} while (0)

/* CHECK_OK(expr): expr returned 0; prints mg_strerror() otherwise. */
#define CHECK_OK(expr)                                                                      \
	do {                                                                                \
		int check_r_ = (expr);                                                      \
		if (check_r_ != 0)                                                          \
			mg_test_fail(__FILE__, __LINE__, "%s\n    returned %d (%s)", #expr, \
			             check_r_, mg_strerror(check_r_));                      \
	} while (0)

#define CHECK_STR(a, b)                                                                        \
	do {                                                                                   \
		const char *check_a_ = (a), *check_b_ = (b);                                   \
		if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_) != 0)   \
			mg_test_fail(__FILE__, __LINE__,                                       \
			             "%s == %s\n    left:  \"%s\"\n    right: \"%s\"", #a, #b, \
			             check_a_ ? check_a_ : "(null)",                           \
			             check_b_ ? check_b_ : "(null)");                          \
	} while (0)

#define CHECK_MEM(a, b, n)                                                                     \
	do {                                                                                   \
		const void *check_a_ = (a), *check_b_ = (b);                                   \
		size_t check_n_ = (n);                                                         \
		if (memcmp(check_a_, check_b_, check_n_) != 0)                                 \
			mg_test_fail(__FILE__, __LINE__, "%s == %s (%zu bytes)%s", #a, #b,     \
			             check_n_, mg_test_hexdiff(check_a_, check_b_, check_n_)); \
	} while (0)

/* Returns a static description of the first difference (for CHECK_MEM). */
const char *mg_test_hexdiff(const void *a, const void *b, size_t n);

/* Counts this process's open fds. */
int mg_test_count_fds(void);

#endif
