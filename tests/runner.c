/*
 * runner.c: forks each registered case with a timeout and reports.  A case
 * passes when its process exits 0, fails on a failed CHECK, a signal, a
 * timeout or an fd left open, and is skipped when it calls mg_test_skip().
 */
#include "runner.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 512
#define EXIT_SKIP 77
#define EXIT_FDLEAK 78

struct test_case {
	const char *name;
	mg_test_fn fn;
	int timeout_s;
};

static struct test_case cases[MAX_TESTS];
static int n_cases;

void mg_test_register(const char *name, mg_test_fn fn, int timeout_s)
{
	if (n_cases == MAX_TESTS) {
		fprintf(stderr, "runner: too many tests\n");
		abort();
	}
	cases[n_cases].name = name;
	cases[n_cases].fn = fn;
	cases[n_cases].timeout_s = timeout_s;
	n_cases++;
}

void mg_test_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "    %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(1);
}

void mg_test_skip(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "    skipped: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(EXIT_SKIP);
}

int mg_test_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
	return 1;
#else
	return 0;
#endif
#else
	return 0;
#endif
}

double mg_test_slowdown(void)
{
	const char *s = getenv("MG_TEST_TIMEOUT");
	double f = s ? atof(s) : 0;

	if (f <= 0)
		f = mg_test_sanitized() ? 4 : 1;
	return f;
}

const char *mg_test_hexdiff(const void *a, const void *b, size_t n)
{
	static char out[160];
	const unsigned char *x = a, *y = b;
	size_t i;

	for (i = 0; i < n && x[i] == y[i]; i++)
		;
	if (i == n)
		return "";
	snprintf(out, sizeof(out), "\n    first difference at byte %zu: left 0x%02x, right 0x%02x",
	         i, x[i], y[i]);
	return out;
}

int mg_test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static int selected(const char *name, int argc, char **argv)
{
	int i;

	if (argc < 2)
		return 1;
	for (i = 1; i < argc; i++)
		if (strstr(name, argv[i]) != NULL)
			return 1;
	return 0;
}

static void run_child(const struct test_case *tc)
{
	int before = mg_test_count_fds(), after;

	tc->fn();
	fflush(stdout);
	after = mg_test_count_fds();
	if (after != before) {
		fprintf(stderr, "    %d fd(s) open before the case, %d after: leaked\n", before,
		        after);
		_exit(EXIT_FDLEAK);
	}
	_exit(0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one case; returns 0 passed, 1 failed, 2 skipped. */
static int run_case(const struct test_case *tc)
{
	double limit = tc->timeout_s * mg_test_slowdown(), start = now_s();
	int status = 0;
	pid_t pid, w;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		run_child(tc);
	}
	setpgid(pid, pid);
	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return 1;
		if (now_s() - start > limit) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			printf("FAIL %s (timed out after %.0f s)\n", tc->name, limit);
			return 1;
		}
		usleep(w == 0 && now_s() - start < 0.05 ? 200 : 5000);
	}
	/* Kill anything the case left in its process group. */
	kill(-pid, SIGKILL);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("ok   %s (%.3f s)\n", tc->name, now_s() - start);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SKIP) {
		printf("skip %s\n", tc->name);
		return 2;
	}
	if (WIFSIGNALED(status))
		printf("FAIL %s (killed by signal %d: %s)\n", tc->name, WTERMSIG(status),
		       strsignal(WTERMSIG(status)));
	else
		printf("FAIL %s (exit %d)\n", tc->name, WEXITSTATUS(status));
	return 1;
}

int main(int argc, char **argv)
{
	int counts[3] = {0, 0, 0}, i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (i = 0; i < n_cases; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	for (i = 0; i < n_cases; i++)
		if (selected(cases[i].name, argc, argv))
			counts[run_case(&cases[i])]++;
	printf("%d passed, %d failed, %d skipped\n", counts[0], counts[1], counts[2]);
	return counts[1] ? 1 : 0;
}
